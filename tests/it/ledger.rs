//! The evidence ledger through the real binary: `explain --at` between two syncs, and
//! `history` with causes and what entered, left or changed.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{issue, json, Db, SourceOpts, TestEnv};

const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Ship the EMEA checkout"
measure = "completion"
weight_by = "estimate"

[[objective.kr]]
id = "emea.nps"
title = "Partner NPS"
measure = "manual"
start = 20
target = 40

[[rule]]
id = "checkout"
kr = "emea.checkout"
[rule.match]
labels = "checkout"
"#;

fn d(m: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, day, 9, 0, 0)
        .single()
        .expect("date")
}

fn keys(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|i| i["key"].as_str().or(i.as_str()).unwrap_or("").to_string())
        .collect()
}

/// The checkout's three stories: PAY-1 done (3 pts), PAY-2 in progress (5), PAY-3 to do (2).
fn checkout() -> Vec<okrsync::simulator::jira::SimIssue> {
    vec![
        issue(
            1,
            "PAY-1",
            "Cart",
            "done",
            Some(3.0),
            &["checkout"],
            d(11, 1),
            Some(d(11, 1)),
        ),
        issue(
            2,
            "PAY-2",
            "Pay",
            "in_progress",
            Some(5.0),
            &["checkout"],
            d(11, 2),
            None,
        ),
        issue(
            3,
            "PAY-3",
            "Ship",
            "todo",
            Some(2.0),
            &["checkout"],
            d(11, 2),
            None,
        ),
    ]
}

async fn explain_at_and_history_rebuild_past_numbers(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(checkout());
    let first = env.cli(&["sync"], Some("2026-11-10T12:00:00Z"));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Between the syncs: PAY-2 is done, PAY-3 leaves the KR, PAY-4 enters.
    env.sim.edit("PAY-2", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(d(11, 11));
        i.updated = d(11, 11);
    });
    env.sim.edit("PAY-3", |i| {
        i.labels.clear();
        i.updated = d(11, 11);
    });
    env.seed([issue(
        4,
        "PAY-4",
        "Refunds",
        "todo",
        Some(4.0),
        &["checkout"],
        d(11, 11),
        None,
    )]);
    let second = env.cli(&["sync"], Some("2026-11-12T12:00:00Z"));
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let now = json(&env.cli(
        &["explain", "emea.checkout", "--json"],
        Some("2026-11-13T12:00:00Z"),
    ));
    assert_eq!(now["kr"]["current"], 8.0);
    assert_eq!(now["kr"]["target"], 12.0);
    assert!(now.get("at").is_none());

    // As of the day between the syncs: the first sync's number and items.
    let then = json(&env.cli(
        &["explain", "emea.checkout", "--at", "2026-11-11", "--json"],
        Some("2026-11-13T12:00:00Z"),
    ));
    assert_eq!(then["at"], "2026-11-11T23:59:59.999Z");
    assert_eq!(then["kr"]["current"], 3.0, "{then}");
    assert_eq!(then["kr"]["target"], 10.0);
    assert_eq!(then["kr"]["items"], 3);
    assert_eq!(keys(&then["items"]), ["PAY-1", "PAY-2", "PAY-3"]);
    let pay2 = &then["items"][1];
    assert_eq!(pay2["category"], "in_progress");
    assert_eq!(pay2["weight"], 5.0);
    assert_eq!(pay2["counts"], false);
    assert_eq!(pay2["title"], "Pay");
    // Before the first sync there was no number.
    let before = json(&env.cli(
        &[
            "explain",
            "emea.checkout",
            "--at",
            "2026-09-30T00:00:00Z",
            "--json",
        ],
        Some("2026-11-13T12:00:00Z"),
    ));
    assert_eq!(before["kr"]["current"], Value::Null);
    assert_eq!(keys(&before["items"]), Vec::<String>::new());
    // Inside the period before the first sync: the history reconstructed from the items'
    // dates. On Oct 31 only PAY-1 existed (created Oct 31, done Nov 1): 0 of 3.
    let reconstructed = json(&env.cli(
        &["explain", "emea.checkout", "--at", "2026-10-31", "--json"],
        Some("2026-11-13T12:00:00Z"),
    ));
    assert_eq!(reconstructed["kr"]["current"], 0.0, "{reconstructed}");
    assert_eq!(reconstructed["kr"]["target"], 3.0);
    assert_eq!(keys(&reconstructed["items"]), ["PAY-1"]);
    assert_eq!(reconstructed["items"][0]["category"], "in_progress");
    let bad = env.cli(&["explain", "emea.checkout", "--at", "yesterday"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a time like"));

    // A check-in is a cause too.
    let c = env.cli(&["checkin", "emea.nps", "25"], Some("2026-11-12T13:00:00Z"));
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));

    let history = json(&env.cli(
        &["history", "emea.checkout", "--json"],
        Some("2026-11-13T12:00:00Z"),
    ));
    assert_eq!(history["kr"], "emea.checkout");
    let changes = history["changes"].as_array().expect("changes");
    // The reconstructed burn-up, by hand: Oct 1 nothing (0 of 0); Oct 31 PAY-1 exists,
    // not done yet (0 of 3); Nov 1 PAY-1 done, PAY-2 and PAY-3 created (3 of 10).
    let rebuilt: Vec<(String, f64, f64)> = changes
        .iter()
        .filter(|c| c["reconstructed"] == true)
        .map(|c| {
            (
                c["at"].as_str().unwrap_or("").to_string(),
                c["current"].as_f64().unwrap_or(-1.0),
                c["target"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(
        rebuilt,
        [
            ("2026-10-01T23:59:59.999Z".to_string(), 0.0, 0.0),
            ("2026-10-31T23:59:59.999Z".to_string(), 0.0, 3.0),
            ("2026-11-01T23:59:59.999Z".to_string(), 3.0, 10.0),
        ],
        "{history}"
    );
    assert_eq!(changes[0]["cause"], "reconstructed from item dates");
    let syncs: Vec<&Value> = changes
        .iter()
        .filter(|c| c["cause"] == "sync of jira")
        .collect();
    assert_eq!(syncs.len(), 2, "{history}");
    assert_eq!(syncs[0]["at"], "2026-11-10T12:00:00Z");
    assert_eq!(
        syncs[0]["entered"],
        serde_json::json!(["PAY-1", "PAY-2", "PAY-3"])
    );
    assert_eq!(syncs[1]["entered"], serde_json::json!(["PAY-4"]));
    assert_eq!(syncs[1]["left"], serde_json::json!(["PAY-3"]));
    assert_eq!(
        syncs[1]["changed"],
        serde_json::json!([{"key": "PAY-2", "from": "in_progress", "to": "done"}])
    );
    assert!(
        syncs[1]["summary"]
            .as_array()
            .expect("summary")
            .iter()
            .any(|s| s == "PAY-2 done (+5 pts)"),
        "{}",
        syncs[1]["summary"]
    );
    assert_eq!(syncs[1]["current"], 8.0);
    assert!(syncs[1]["rules_hash"]
        .as_str()
        .is_some_and(|h| h.len() >= 16));
    assert!(
        syncs[1]["run_id"].as_i64().is_some(),
        "linked to its sync run"
    );
    let nps = json(&env.cli(
        &["history", "emea.nps", "--json"],
        Some("2026-11-13T12:00:00Z"),
    ));
    let last = nps["changes"]
        .as_array()
        .expect("changes")
        .last()
        .cloned()
        .expect("one");
    assert_eq!(last["cause"], "check-in");
    assert_eq!(last["current"], 25.0);
    assert!(last["checkin_id"].as_i64().is_some());
    // Every stored snapshot's number comes back from its recorded evidence alone.
    let engine = crate::helpers::engine_for(&env.config).await;
    let settings = engine.settings().clone();
    let def = settings
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter())
        .find(|k| k.id == "emea.checkout")
        .expect("kr")
        .clone();
    let snapshots = engine
        .store()
        .snapshots("emea.checkout")
        .await
        .expect("snapshots");
    assert!(snapshots.len() >= 5, "{snapshots:?}");
    for snap in &snapshots {
        let scope = engine
            .store()
            .scope_at("emea.checkout", snap)
            .await
            .expect("scope");
        let (current, target) = okrsync::evidence::value_of(&def, &scope).expect("items");
        assert_eq!(Some(current), snap.current, "{snap:?}");
        assert_eq!(target, snap.target, "{snap:?}");
        assert_eq!(scope.len() as i64, snap.items, "{snap:?}");
    }
    drop(engine);

    // The API serves the same documents.
    let engine = crate::helpers::engine_for(&env.config).await;
    let app = okrsync::server::Application::build(engine, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(app.run_until_stopped(stopped));
    let get = |path: String| async move {
        let resp = reqwest::get(path).await.expect("get");
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.expect("json"),
        )
    };
    let (code, api) = get(format!(
        "{base}/api/v1/key-results/emea.checkout?at=2026-11-11"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(api["kr"]["current"], then["kr"]["current"]);
    assert_eq!(api["items"], then["items"]);
    let (code, _) = get(format!("{base}/api/v1/key-results/emea.checkout?at=soon")).await;
    assert_eq!(code, 400);
    let (code, api) = get(format!("{base}/api/v1/key-results/emea.checkout/history")).await;
    assert_eq!(code, 200);
    assert_eq!(api["changes"], history["changes"]);
    // The KR page: a date picker, the page as of a past day, changes in words, and chart
    // points that link to the page as of then.
    let page = |path: String| async move {
        reqwest::get(path)
            .await
            .expect("get")
            .text()
            .await
            .expect("body")
    };
    let now_page = page(format!("{base}/kr/emea.checkout")).await;
    assert!(
        now_page.contains(r#"<input type="date" id="at" name="at""#),
        "{now_page}"
    );
    assert!(now_page.contains("PAY-2 done (+5 pts)"), "{now_page}");
    assert!(
        now_page.contains("/kr/emea.checkout?at=2026-11-10T12%3A00%3A00.000Z"),
        "{now_page}"
    );
    assert!(!now_page.contains("PAY-3</"), "PAY-3 left the KR");
    let then_page = page(format!("{base}/kr/emea.checkout?at=2026-11-11")).await;
    assert!(then_page.contains("As of"), "{then_page}");
    assert!(
        then_page.contains("PAY-3"),
        "PAY-3 was in scope then: {then_page}"
    );
    assert!(!then_page.contains("PAY-4"), "PAY-4 entered later");
    assert!(
        !then_page.contains("PAY-2 done (+5 pts)"),
        "a later change is not listed"
    );
    stop.send(true).expect("stop");
    server.await.expect("join").expect("server");

    let table = env.cli(&["history", "emea.checkout"], Some("2026-11-13T12:00:00Z"));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("PAY-2 done (+5 pts)"), "{text}");
    assert!(text.contains("PAY-3 left"), "{text}");
}
both_backends!(explain_at_and_history_rebuild_past_numbers);

/// What a store's tables hold, to compare before and after a read-only command.
async fn fingerprint(env: &TestEnv) -> String {
    let engine = crate::helpers::engine_for(&env.config).await;
    let pool = engine.store().pool();
    if engine.store().backend() == okrsync::store::Backend::Sqlite {
        // Pages a closed process left in the WAL go into the file now, so the bytes
        // compared afterwards are the database's, not a later checkpoint's.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
            .expect("checkpoint");
    }
    let mut parts = Vec::new();
    for table in [
        "items",
        "matches",
        "key_results",
        "kr_snapshots",
        "kr_evidence",
        "kr_scope",
        "sync_runs",
        "meta",
    ] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count");
        parts.push(format!("{table}={n}"));
    }
    let rows: Vec<(String, f64, i64)> =
        sqlx::query_as("SELECT id, progress, item_count FROM key_results ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("krs");
    parts.push(format!("{rows:?}"));
    parts.join(" ")
}

async fn rules_diff_prints_the_deltas_and_writes_nothing(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(checkout());
    env.seed([issue(
        5,
        "PAY-5",
        "Refund",
        "done",
        Some(1.0),
        &["refund"],
        d(11, 3),
        Some(d(11, 3)),
    )]);
    let out = env.cli(&["sync"], Some("2026-11-10T12:00:00Z"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The proposed change: refunds count toward the checkout, a new refunds KR, and the
    // NPS KR unchanged.
    let proposed = env.dir.path().join("proposed.toml");
    std::fs::write(
        &proposed,
        OKRS.replace(
            "labels = \"checkout\"",
            "labels = [\"checkout\", \"refund\"]",
        ) + r#"
[[objective]]
id = "care"
title = "Care"
period = "2026-Q4"

[[objective.kr]]
id = "care.refunds"
title = "Two refunds done"
measure = "count"
target = 2

[[rule]]
id = "refunds"
kr = "care.refunds"
[rule.match]
labels = "refund"
"#,
    )
    .expect("write");
    let sqlite_file = env.dir.path().join("okrsync.db");
    let before = fingerprint(&env).await;
    let bytes_before = std::fs::read(&sqlite_file).ok();
    let p = proposed.to_string_lossy().to_string();
    let doc = json(&env.cli(&["rules", "diff", "--against", &p, "--json"], None));
    let krs = doc["key_results"].as_array().expect("krs");
    assert_eq!(krs.len(), 2, "{doc}");
    assert_eq!(krs[0]["id"], "emea.checkout");
    assert_eq!(
        krs[0]["old"],
        serde_json::json!({"progress": 0.3, "current": 3.0, "target": 10.0})
    );
    assert_eq!(krs[0]["new"]["current"], 4.0);
    assert_eq!(krs[0]["new"]["target"], 11.0);
    assert!((krs[0]["new"]["progress"].as_f64().expect("p") - 4.0 / 11.0).abs() < 1e-9);
    assert_eq!(krs[0]["entered"], serde_json::json!(["PAY-5"]));
    assert_eq!(krs[0]["left"], serde_json::json!([]));
    assert_eq!(krs[1]["id"], "care.refunds");
    assert_eq!(krs[1]["old"], Value::Null);
    assert_eq!(
        krs[1]["new"],
        serde_json::json!({"progress": 0.5, "current": 1.0, "target": 2.0})
    );
    assert_eq!(krs[1]["entered"], serde_json::json!(["PAY-5"]));
    let table = env.cli(&["rules", "diff", "--against", &p], None);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("emea.checkout: 30% (3 of 10) → 36% (4 of 11)"),
        "{text}"
    );
    assert!(text.contains("  + PAY-5"), "{text}");
    // Nothing was written.
    let bytes_after = std::fs::read(&sqlite_file).ok();
    assert_eq!(fingerprint(&env).await, before);
    if let Some(b) = bytes_before {
        assert_eq!(bytes_after, Some(b), "the SQLite file is unchanged");
    }
    // Invalid files: exit 2 with the report.
    std::fs::write(
        &proposed,
        "[[rule]]\nkr = \"nope\"\n[rule.match]\nproject = \"PAY\"\n",
    )
    .expect("write");
    let bad = env.cli(&["rules", "diff", "--against", &p], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key result \"nope\""));
}
both_backends!(rules_diff_prints_the_deltas_and_writes_nothing);
