//! The HTTP server of `okrsync run`, started on port 0 and driven over real HTTP.

use okrsync::server::Application;
use okrsync::sync::Mode;
use serde_json::json;
use tokio::sync::watch;

use crate::both_backends;
use crate::helpers::{issue, minute, Db, SourceOpts, TestEnv, API_TOKEN};

const OKRS: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the work"
measure = "completion"

[[objective.kr]]
id = "o.nps"
title = "NPS"
measure = "manual"
target = 50

[[rule]]
id = "all-pay"
kr = "o.done"
[rule.match]
project = "PAY"
"#;

async fn routes_answer_with_the_cli_documents(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed([
        issue(
            1,
            "PAY-1",
            "A",
            "done",
            None,
            &[],
            minute(9, 0),
            Some(minute(9, 0)),
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    let engine = env.engine().await;
    engine.sync_source("jira", Mode::Full).await.expect("sync");
    let app = Application::build(engine, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(app.run_until_stopped(stopped));
    let http = reqwest::Client::new();
    let get_json = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let resp = req.send().await.expect("get");
            (
                resp.status().as_u16(),
                resp.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );

    let (status, objectives) = get_json("/api/v1/objectives").await;
    assert_eq!(status, 200);
    let kr = &objectives["objectives"][0]["key_results"][0];
    assert_eq!(
        (
            kr["id"].clone(),
            kr["current"].clone(),
            kr["target"].clone()
        ),
        (json!("o.done"), json!(1.0), json!(2.0))
    );
    let (status, explain) = get_json("/api/v1/key-results/o.done").await;
    assert_eq!(status, 200);
    assert_eq!(explain["items"].as_array().map(Vec::len), Some(2));
    let (status, missing) = get_json("/api/v1/key-results/nope").await;
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap_or("").contains("nope"));
    let (status, moves) = get_json("/api/v1/moves?selector=project=PAY").await;
    assert_eq!((status, moves["items"].clone()), (200, json!(2)));
    assert_eq!(get_json("/api/v1/moves?selector=team=x").await.0, 400);
    assert_eq!(get_json("/api/v1/moves").await.0, 400);
    let (status, unaligned) = get_json("/api/v1/unaligned?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert_eq!(unaligned["periods"], json!(["2026-Q4"]));

    // Prometheus metrics, from the store.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = metrics.text().await.expect("text");
    for line in [
        "okrsync_sync_runs_total{source=\"jira\",outcome=\"ok\"} 1",
        "okrsync_items{source=\"jira\"} 2",
        "okrsync_source_up{source=\"jira\"} 1",
        "okrsync_kr_progress{kr=\"o.done\",objective=\"o\",status=",
        "okrsync_kr_current{kr=\"o.done\"} 1",
        "# TYPE okrsync_unaligned_share gauge",
    ] {
        assert!(text.contains(line), "missing «{line}» in:\n{text}");
    }

    // Writes need the bearer token.
    let url = format!("{base}/api/v1/key-results/o.nps/checkins");
    let refused = http
        .post(&url)
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 401);
    let wrong = http
        .post(&url)
        .bearer_auth("nope")
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(&url)
        .bearer_auth(API_TOKEN)
        .json(&json!({"value": 25}))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), 201);
    let body: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(
        (body["current"].clone(), body["progress"].clone()),
        (json!(25.0), json!(0.5))
    );
    let not_manual = http
        .post(format!("{base}/api/v1/key-results/o.done/checkins"))
        .bearer_auth(API_TOKEN)
        .json(&json!({"value": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(not_manual.status(), 422);
    let sync = http
        .post(format!("{base}/api/v1/sync"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("post");
    assert_eq!(sync.status(), 200);

    stop.send(true).expect("stop");
    server.await.expect("join").expect("server");
}
both_backends!(routes_answer_with_the_cli_documents);
