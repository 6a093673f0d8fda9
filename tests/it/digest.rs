//! The weekly digest (issue 17) for a hand-computed scenario, through the real binary:
//! `okrsync digest --json`, its text, `GET /digest` and `GET /api/v1/digest`, and the
//! digest a notifier with `digest = "…"` receives once per week.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{issue, json as stdout_json, Db, Served, SourceOpts, TestEnv};

// Objective `o` (a completion KR over PAY) and `other` (a manual NPS, 0 to 10).
use crate::notify::OKRS;

fn at(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn the_digest_of_a_hand_computed_week(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    let now = Utc::now();
    let (t1, t2) = (now - Duration::days(10), now - Duration::days(1));
    let old = now - Duration::days(20);
    let web = |id: u64, key: &str, estimate: Option<f64>| {
        issue(
            id,
            key,
            &format!("{key} work"),
            "in_progress",
            estimate,
            &[],
            old,
            None,
        )
    };
    env.seed([
        issue(1, "PAY-1", "One", "done", None, &[], old, Some(old)),
        issue(2, "PAY-2", "Two", "in_progress", None, &[], old, None),
        issue(3, "PAY-3", "Three", "in_progress", None, &[], old, None),
        web(4, "WEB-1", Some(5.0)),
        web(5, "WEB-2", Some(8.0)),
        web(6, "WEB-3", None),
    ]);
    // Ten days ago: 1 of 3 done. Yesterday: 2 of 3; the NPS checked in at 5 of 10.
    assert!(env.cli(&["sync"], Some(&at(t1))).status.success());
    env.sim.edit("PAY-2", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(t2);
    });
    assert!(env.cli(&["sync"], Some(&at(t2))).status.success());
    assert!(env
        .cli(&["checkin", "other.nps", "5"], Some(&at(t2)))
        .status
        .success());
    let doc = stdout_json(&env.cli(&["digest", "--json"], Some(&at(now))));
    let status = stdout_json(&env.cli(&["status", "--json"], Some(&at(now))));
    assert_eq!(doc["from"], json!(at(now - Duration::days(7))));
    assert_eq!(doc["to"], json!(at(now)));
    let o = &doc["objectives"][0];
    assert_eq!(o["id"], "o");
    assert!(
        (o["progress"].as_f64().expect("p") - 2.0 / 3.0).abs() < 1e-9,
        "{o}"
    );
    assert!(
        (o["previous"].as_f64().expect("p") - 1.0 / 3.0).abs() < 1e-9,
        "{o}"
    );
    assert_eq!(o["change"], json!(0.3333));
    assert_eq!(o["moved"].as_array().expect("moved").len(), 1);
    assert_eq!(o["moved"][0]["id"], "o.done");
    let other = &doc["objectives"][1];
    assert_eq!(other["id"], "other");
    assert_eq!(
        (&other["progress"], &other["previous"], &other["change"]),
        (&json!(0.5), &json!(0.0), &json!(0.5))
    );
    assert_eq!(other["moved"][0]["id"], "other.nps");
    // Attention: the KRs at risk, off track or flagged, as `status` shows them now.
    for (i, o) in status["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .enumerate()
    {
        let expected: Vec<&Value> = o["key_results"]
            .as_array()
            .expect("krs")
            .iter()
            .filter(|k| {
                matches!(k["status"].as_str(), Some("at_risk" | "off_track"))
                    || !k["flags"].as_array().expect("flags").is_empty()
            })
            .map(|k| &k["id"])
            .collect();
        let got: Vec<&Value> = doc["objectives"][i]["attention"]
            .as_array()
            .expect("attention")
            .iter()
            .map(|k| &k["id"])
            .collect();
        assert_eq!(got, expected);
    }
    // The largest unaligned work first; without an estimate last.
    let keys: Vec<&str> = doc["unaligned"]
        .as_array()
        .expect("unaligned")
        .iter()
        .map(|i| i["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, ["WEB-2", "WEB-1", "WEB-3"]);
    // The same in words.
    let text = env.cli(&["digest"], Some(&at(now)));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("Objective (o): 67% (+33 points this week)"),
        "{text}"
    );
    assert!(
        text.contains("moved: Finish the work (o.done) 33% → 67%"),
        "{text}"
    );
    assert!(
        text.contains("moved: Partner NPS (other.nps) 0% → 50%"),
        "{text}"
    );
    assert!(
        text.contains("WEB-2 WEB-2 work (WEB, estimate 8)"),
        "{text}"
    );
    // The page and the API.
    let served = Served::start(&env).await;
    let (code, page) = served.page("/digest").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("Weekly digest") && page.contains("Partner NPS") && page.contains("WEB-2"),
        "{page}"
    );
    let api: Value = served
        .get("/api/v1/digest")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(api["objectives"][0]["moved"][0]["id"], "o.done");
    served.stop().await;
    // A notifier whose digest time passed a minute ago gets it once, scoped to its objectives.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock()
                    .expect("lock")
                    .push(serde_json::from_str(&body).expect("json"));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    std::fs::write(
        env.dir.path().join("hook-url"),
        format!("http://{addr}/hook"),
    )
    .expect("url");
    let when = now - Duration::minutes(1);
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"weekly\"\nkind = \"webhook\"\nurl_file = \"hook-url\"\n\
             objectives = [\"other\"]\nevents = []\ndigest = \"{}\"\n",
            when.format("%a %H:%M").to_string().to_lowercase()
        ),
    )
    .expect("config");
    for _ in 0..2 {
        let out = env.cli(&["sync"], Some(&at(now)));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = got.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "digest");
    assert_eq!(got[0]["url"], "http://127.0.0.1:0/digest");
    let message = got[0]["message"].as_str().expect("text");
    assert!(
        message.contains("Another objective (other): 50%"),
        "{message}"
    );
    assert!(
        !message.contains("Objective (o)"),
        "scoped to its objectives: {message}"
    );
}
both_backends!(the_digest_of_a_hand_computed_week);
