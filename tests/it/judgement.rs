//! Judgement beside the numbers (SPEC.md; issue 16), through the real binary with the
//! clock pinned (`OKRSYNC_NOW`) and values computed by hand: stretch goals against their
//! success line, the owner's confidence beside the number, and the flags `dead`,
//! `checkin_overdue`, `scope_creep`, `output_without_outcome`, `outcome_without_output`.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{issue, json, Db, SourceOpts, TestEnv};

fn at(m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, 9, 0, 0)
        .single()
        .expect("date")
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kr<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .flat_map(|o| o["key_results"].as_array().expect("krs"))
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("no KR {id} in {doc}"))
}

fn flags(k: &Value) -> Vec<String> {
    k["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind").to_string())
        .collect()
}

/// The flag of that kind on a KR document.
fn flag<'a>(k: &'a Value, kind: &str) -> &'a Value {
    k["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} flag in {k}"))
}

fn status(env: &TestEnv, now: &str) -> Value {
    json(&env.cli(&["status", "--json"], Some(now)))
}

/// `n` issues of PAY, the first `done` of them done (resolved on `when`).
fn pay(
    from: u64,
    n: u64,
    done: u64,
    when: DateTime<Utc>,
) -> Vec<okrsync::simulator::jira::SimIssue> {
    (0..n)
        .map(|k| {
            let id = from + k;
            let is_done = k < done;
            issue(
                id,
                &format!("PAY-{id}"),
                "work",
                if is_done { "done" } else { "in_progress" },
                None,
                &[],
                when,
                is_done.then_some(when),
            )
        })
        .collect()
}

const STRETCH: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.stretch"
title = "A stretch goal"
measure = "completion"
kind = "aspirational"

[[objective.kr]]
id = "o.committed"
title = "A committed goal"
measure = "completion"

[[rule]]
krs = ["o.stretch", "o.committed"]
[rule.match]
project = "PAY"
"#;

/// Half way through 2026-Q4, both KRs at 7 of 20 = 0.35: the aspirational one measured
/// against its success line (0.35 ÷ 0.7 = 0.5 ≥ expected − 0.10) is on track, the
/// committed one at risk. A confidence check-in shows beside the number and changes none.
async fn stretch_goals_and_confidence(db: Db) {
    let env = TestEnv::new(db, STRETCH, SourceOpts::default()).await;
    env.seed(pay(1, 20, 7, at(10, 20)));
    let now = "2026-11-15T12:00:00Z";
    ok(&env.cli(&["sync"], Some(now)));
    let doc = status(&env, now);
    let stretch = kr(&doc, "o.stretch");
    let committed = kr(&doc, "o.committed");
    assert_eq!(stretch["progress"], 0.35);
    assert_eq!(stretch["kind"], "aspirational");
    assert_eq!(stretch["success"], 0.7);
    assert_eq!(stretch["status"], "on_track", "{stretch}");
    assert_eq!(committed["kind"], "committed");
    assert_eq!(committed["success"], 1.0);
    assert_eq!(committed["status"], "at_risk", "{committed}");
    assert_eq!(committed["confidence"], Value::Null);

    // A confidence for a completion KR: recorded, nothing computed changes.
    ok(&env.cli(
        &[
            "checkin",
            "o.committed",
            "--confidence",
            "6",
            "--note",
            "the vendor is late",
        ],
        Some("2026-11-15T12:10:00Z"),
    ));
    let after = status(&env, "2026-11-15T12:20:00Z");
    let c = kr(&after, "o.committed");
    assert_eq!(c["current"], committed["current"]);
    assert_eq!(c["progress"], committed["progress"]);
    assert_eq!(c["status"], "at_risk");
    assert_eq!(c["updated_at"], committed["updated_at"]);
    assert_eq!(c["confidence"]["value"], 6.0);
    assert_eq!(c["confidence"]["note"], "the vendor is late");
    assert_eq!(c["confidence"]["at"], "2026-11-15T12:10:00Z");
    // A value is only for manual KRs; a confidence outside 0–10 is refused.
    let refused = env.cli(&["checkin", "o.committed", "5"], Some(now));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("only manual key results"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let refused = env.cli(&["checkin", "o.committed", "--confidence", "11"], Some(now));
    assert!(!refused.status.success());

    // On the last day, both at 14 of 20 = 0.7: the stretch goal reached its success line
    // (on track), the committed one is off track (0.7 < 1 − 0.25).
    for k in 8..=14 {
        env.sim.edit(&format!("PAY-{k}"), |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(at(12, 30));
            i.updated = at(12, 30);
        });
    }
    let end = "2026-12-31T12:00:00Z";
    ok(&env.cli(&["sync"], Some(end)));
    let doc = status(&env, end);
    assert_eq!(kr(&doc, "o.stretch")["progress"], 0.7);
    assert_eq!(kr(&doc, "o.stretch")["status"], "on_track");
    assert_eq!(kr(&doc, "o.committed")["status"], "off_track");
    // The objective is only as bad as its committed KR.
    assert_eq!(doc["objectives"][0]["status"], "off_track");
}
both_backends!(stretch_goals_and_confidence);

const DEAD: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.work"
title = "Ship the work"
measure = "completion"

[[objective.kr]]
id = "o.nps"
title = "Partner NPS"
measure = "manual"
start = 20
target = 40

[[rule]]
kr = "o.work"
[rule.match]
project = "PAY"
"#;

/// `dead` after 21 days without a change of value or evidence, cleared by the next
/// change; `checkin_overdue` on a manual KR 7 days after its last check-in.
async fn dead_and_overdue(db: Db) {
    let env = TestEnv::new(db, DEAD, SourceOpts::default()).await;
    env.seed(pay(1, 4, 1, at(10, 5)));
    ok(&env.cli(&["sync"], Some("2026-10-10T00:00:00Z")));
    ok(&env.cli(&["checkin", "o.nps", "25"], Some("2026-10-03T00:00:00Z")));

    let day20 = status(&env, "2026-10-30T23:00:00Z");
    assert!(flags(kr(&day20, "o.work")).is_empty(), "{day20}");
    let day21 = status(&env, "2026-10-31T00:00:00Z");
    let work = kr(&day21, "o.work");
    assert_eq!(flags(work), ["dead"], "{work}");
    assert_eq!(work["flags"][0]["since"], "2026-10-31T00:00:00Z");
    assert!(
        work["flags"][0]["message"]
            .as_str()
            .expect("message")
            .contains("2026-10-10"),
        "{work}"
    );

    // Checked in on 3 October: due on 10 October, overdue after.
    let oct10 = status(&env, "2026-10-10T00:00:00Z");
    assert!(!flags(kr(&oct10, "o.nps")).contains(&"checkin_overdue".to_string()));
    let oct11 = status(&env, "2026-10-11T00:00:00Z");
    let nps = kr(&oct11, "o.nps");
    assert!(flags(nps).contains(&"checkin_overdue".to_string()), "{nps}");
    assert_eq!(
        flag(nps, "checkin_overdue")["since"],
        "2026-10-10T00:00:00Z"
    );
    // A confidence check-in counts as a check-in.
    ok(&env.cli(
        &["checkin", "o.nps", "--confidence", "8"],
        Some("2026-10-11T06:00:00Z"),
    ));
    let checked = status(&env, "2026-10-12T00:00:00Z");
    assert!(!flags(kr(&checked, "o.nps")).contains(&"checkin_overdue".to_string()));

    // The next change clears `dead`.
    env.sim.edit("PAY-2", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(at(11, 1));
        i.updated = at(11, 1);
    });
    ok(&env.cli(&["sync"], Some("2026-11-01T12:00:00Z")));
    let later = status(&env, "2026-11-01T13:00:00Z");
    assert!(flags(kr(&later, "o.work")).is_empty(), "{later}");
    // The text report says it in words.
    let text = env.cli(&["status"], Some("2026-10-31T00:00:00Z"));
    ok(&text);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("flag dead (since 2026-10-31)"), "{text}");
}
both_backends!(dead_and_overdue);

/// Scope creep: a completion KR whose total grew from 10 to 13 (+30%) since its first
/// snapshot in the period, behind expected; +20% is not enough.
async fn scope_creep(db: Db) {
    let env = TestEnv::new(db, DEAD, SourceOpts::default()).await;
    // Ten items created one a day from 1 October: the history the first sync rebuilds
    // from their dates grows from 1 to 10, which is the scope being found; the baseline
    // is the first recorded total, 10.
    env.seed((0..10u32).flat_map(|k| pay(1 + u64::from(k), 1, u64::from(k < 2), at(10, 2 + k))));
    ok(&env.cli(&["sync"], Some("2026-10-12T00:00:00Z")));
    env.seed(pay(11, 2, 0, at(10, 20)));
    ok(&env.cli(&["sync"], Some("2026-10-21T00:00:00Z")));
    // 12 of 10: +20%.
    let doc = status(&env, "2026-11-16T00:00:00Z");
    assert!(
        !flags(kr(&doc, "o.work")).contains(&"scope_creep".to_string()),
        "{doc}"
    );
    env.seed(pay(13, 1, 0, at(10, 22)));
    ok(&env.cli(&["sync"], Some("2026-10-23T00:00:00Z")));
    let doc = status(&env, "2026-11-16T00:00:00Z");
    let work = kr(&doc, "o.work");
    assert_eq!(work["target"], 13.0);
    assert!(flags(work).contains(&"scope_creep".to_string()), "{work}");
    let f = flag(work, "scope_creep");
    assert!(
        f["message"].as_str().expect("message").contains("30%"),
        "{f}"
    );
}
both_backends!(scope_creep);

const DIVERGE: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.work"
title = "Ship the work"
measure = "completion"

[[objective.kr]]
id = "o.mrr"
title = "MRR"
measure = "metric"
metric = { source = "finance", cell = "B2" }
start = 0
target = 100

[[rule]]
kr = "o.work"
source = "jira"
[rule.match]
project = "PAY"
"#;

/// Work at 0.7 with the metric at 0.1: output without outcome; the metric at 0.8 with the
/// work at 0.2: outcome without output; close together: no flag.
async fn divergence(db: Db) {
    let env = TestEnv::new(db, DIVERGE, SourceOpts::default()).await;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!("{config}\n[sources.finance]\nkind = \"sheet\"\npath = \"metrics.csv\"\nevery = \"1h\"\n"),
    )
    .expect("config");
    let csv = env.dir.path().join("metrics.csv");
    std::fs::write(&csv, "name,value\nMRR,10\n").expect("csv");
    env.seed(pay(1, 10, 7, at(10, 5)));
    ok(&env.cli(&["sync"], Some("2026-10-10T00:00:00Z")));
    let doc = status(&env, "2026-10-12T00:00:00Z");
    let mrr = kr(&doc, "o.mrr");
    assert_eq!(mrr["progress"], 0.1);
    assert_eq!(flags(mrr), ["output_without_outcome"], "{mrr}");
    assert_eq!(mrr["flags"][0]["since"], "2026-10-10T00:00:00Z");
    assert!(flags(kr(&doc, "o.work")).is_empty());

    // The metric catches up: 0.5 against 0.7, no flag.
    std::fs::write(&csv, "name,value\nMRR,50\n").expect("csv");
    ok(&env.cli(&["sync"], Some("2026-10-13T00:00:00Z")));
    let doc = status(&env, "2026-10-14T00:00:00Z");
    assert!(flags(kr(&doc, "o.mrr")).is_empty(), "{doc}");

    // The outcome runs ahead of the work: 0.8 against 0.2 (7 of 10 → 2 of 10 done).
    std::fs::write(&csv, "name,value\nMRR,80\n").expect("csv");
    for k in 3..=7 {
        env.sim.edit(&format!("PAY-{k}"), |i| {
            i.status = "In Progress".into();
            i.status_category = "indeterminate".into();
            i.resolved = None;
            i.updated = at(10, 14);
        });
    }
    ok(&env.cli(&["sync"], Some("2026-10-15T00:00:00Z")));
    let doc = status(&env, "2026-10-16T00:00:00Z");
    assert_eq!(kr(&doc, "o.work")["progress"], 0.2, "{doc}");
    assert_eq!(
        flags(kr(&doc, "o.mrr")),
        ["outcome_without_output"],
        "{doc}"
    );
}
both_backends!(divergence);

/// A healthy KR: changing, checked in, not behind: no flag at all.
async fn no_flag_on_a_clean_scenario(db: Db) {
    let env = TestEnv::new(db, DEAD, SourceOpts::default()).await;
    env.seed(pay(1, 10, 5, at(11, 10)));
    ok(&env.cli(&["sync"], Some("2026-11-10T12:00:00Z")));
    ok(&env.cli(&["checkin", "o.nps", "30"], Some("2026-11-12T12:00:00Z")));
    let doc = status(&env, "2026-11-15T12:00:00Z");
    for id in ["o.work", "o.nps"] {
        assert!(flags(kr(&doc, id)).is_empty(), "{id}: {doc}");
    }
}
both_backends!(no_flag_on_a_clean_scenario);

/// The same through HTTP: the check-in API takes a confidence for any KR and refuses what
/// it cannot record; the dashboard's form needs the token; `/metrics` carries the flags,
/// the success lines and the confidence.
async fn over_http(db: Db) {
    let env = TestEnv::new(db, DEAD, SourceOpts::default()).await;
    env.seed(pay(1, 4, 1, at(10, 5)));
    let served = crate::helpers::Served::start(&env).await;
    let api = |path: &str| format!("{}{path}", served.base);
    let post = |path: &str, body: Value| {
        served
            .http
            .post(api(path))
            .bearer_auth(crate::helpers::API_TOKEN)
            .json(&body)
            .send()
    };
    let r = post(
        "/api/v1/key-results/o.work/checkins",
        serde_json::json!({"confidence": 7, "note": "fine"}),
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 201);
    let kr: Value = r.json().await.expect("json");
    assert_eq!(kr["confidence"]["value"], 7.0);
    assert_eq!(kr["confidence"]["note"], "fine");
    for (body, why) in [
        (serde_json::json!({"value": 3}), "only manual key results"),
        (serde_json::json!({"confidence": 12}), "from 0 to 10"),
        (serde_json::json!({"note": "just words"}), "needs a value"),
    ] {
        let r = post("/api/v1/key-results/o.work/checkins", body.clone())
            .await
            .expect("post");
        assert_eq!(r.status(), 422, "{body}");
        let text = r.text().await.expect("text");
        assert!(text.contains(why), "{body}: {text}");
    }

    // The dashboard's form: a wrong token records nothing, the right one redirects back.
    let form = |token: &str| {
        served
            .http
            .post(api("/kr/o.nps/checkin"))
            .form(&[
                ("value", "31"),
                ("confidence", "4"),
                ("note", "slipping"),
                ("token", token),
            ])
            .send()
    };
    let wrong = form("nope").await.expect("post");
    assert_eq!(wrong.status(), 401);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let good = no_redirects
        .post(api("/kr/o.nps/checkin"))
        .form(&[
            ("value", "31"),
            ("confidence", "4"),
            ("note", "slipping"),
            ("token", crate::helpers::API_TOKEN),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(good.status(), 303);
    assert_eq!(good.headers()["location"], "/kr/o.nps#confidence");
    let nps: Value = served
        .get("/api/v1/key-results/o.nps")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(nps["kr"]["current"], 31.0, "{nps}");
    assert_eq!(nps["kr"]["confidence"]["value"], 4.0);
    assert_eq!(nps["kr"]["confidence"]["author"], "dashboard");

    let (status, metrics) = served.page("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("okrsync_kr_flag{kr=\"o.work\",kind=\"dead\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("okrsync_kr_success{kr=\"o.work\",kind=\"committed\"} 1"));
    assert!(metrics.contains("okrsync_kr_confidence{kr=\"o.nps\"} 4"));
    served.stop().await;
}
both_backends!(over_http);
