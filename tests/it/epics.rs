//! Epics and parents (SPEC.md, "Unaligned work"): one whose children move a KR is aligned
//! through them, one whose children are all exempt is exempt; `unaligned`, `moves` and
//! `/metrics` agree. Against the Jira simulator, on SQLite and PostgreSQL.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{issue, json, Db, Served, SourceOpts, TestEnv, API_TOKEN};

const NOW: &str = "2026-11-15T12:00:00Z";

const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Ship the EMEA checkout"
measure = "completion"

[[rule]]
id = "checkout-epic"
kr = "emea.checkout"
source = "jira"
[rule.match]
epic = "PAY-1"

[[rule]]
id = "checkout-label"
kr = "emea.checkout"
[rule.match]
labels = "checkout"

[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#;

/// `(key, type, category, labels, parent)`; done items were resolved on 2026-11-10.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
);

const BACKLOG: &[Row] = &[
    // An epic in progress whose children an `epic = …` rule matches: aligned.
    ("PAY-1", "Epic", "in_progress", &[], None),
    (
        "PAY-2",
        "Story",
        "in_progress",
        &[],
        Some(("PAY-1", "Epic")),
    ),
    ("PAY-3", "Story", "todo", &[], Some(("PAY-1", "Epic"))),
    // An epic whose children are all exempt: exempt.
    ("PAY-10", "Epic", "in_progress", &[], None),
    (
        "PAY-11",
        "Task",
        "done",
        &["on-call"],
        Some(("PAY-10", "Epic")),
    ),
    (
        "PAY-12",
        "Task",
        "todo",
        &["on-call"],
        Some(("PAY-10", "Epic")),
    ),
    // An epic whose children match nothing: unaligned, as are they.
    ("PAY-20", "Epic", "in_progress", &[], None),
    (
        "PAY-21",
        "Story",
        "in_progress",
        &[],
        Some(("PAY-20", "Epic")),
    ),
    // Exempt and unmatched children: neither aligned nor exempt.
    ("PAY-30", "Epic", "done", &[], None),
    (
        "PAY-31",
        "Task",
        "in_progress",
        &["on-call"],
        Some(("PAY-30", "Epic")),
    ),
    ("PAY-32", "Story", "todo", &[], Some(("PAY-30", "Epic"))),
    // A story (not an epic) whose sub-task a label rule matches: aligned as a parent.
    ("PAY-40", "Story", "in_progress", &[], None),
    (
        "PAY-41",
        "Sub-task",
        "in_progress",
        &["checkout"],
        Some(("PAY-40", "Story")),
    ),
];

fn seed(env: &TestEnv) {
    let updated = Utc
        .with_ymd_and_hms(2026, 11, 10, 9, 0, 0)
        .single()
        .expect("time");
    env.seed(
        BACKLOG
            .iter()
            .enumerate()
            .map(|(n, (key, kind, category, labels, parent))| {
                let mut i = issue(
                    20_000 + n as u64,
                    key,
                    &format!("{kind} {key}"),
                    category,
                    Some(1.0),
                    labels,
                    updated,
                    (*category == "done").then_some(updated),
                );
                i.issue_type = kind.to_string();
                i.parent = parent.map(|(k, t)| (k.to_string(), t.to_string()));
                i
            }),
    );
}

fn keys(doc: &Value) -> Vec<String> {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().expect("key").to_string())
        .collect()
}

fn project<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["by_project"]
        .as_array()
        .expect("by_project")
        .iter()
        .find(|p| p["project"] == name)
        .unwrap_or_else(|| panic!("no project {name} in {doc}"))
}

/// What `moves` says for a selector: `(items, [(kr, items, share)])`.
fn moved(env: &TestEnv, selector: &str) -> (Value, Vec<(String, Value, Value)>) {
    let doc = json(&env.cli(&["moves", selector, "--json"], Some(NOW)));
    let krs = doc["key_results"]
        .as_array()
        .expect("key_results")
        .iter()
        .map(|k| {
            (
                k["id"].as_str().expect("id").to_string(),
                k["items"].clone(),
                k["share"].clone(),
            )
        })
        .collect();
    (doc["items"].clone(), krs)
}

async fn epics_are_aligned_or_exempt_through_their_children(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    seed(&env);
    let s = Served::start(&env).await;

    // Unaligned: the in-progress epic PAY-1 (its child PAY-2 moves the KR), the exempt
    // epic PAY-10 and the parent story PAY-40 are not listed; PAY-20 and PAY-30 are.
    let doc = json(&env.cli(&["unaligned", "--json"], Some(NOW)));
    assert_eq!(keys(&doc), vec!["PAY-20", "PAY-21", "PAY-30"], "{doc}");
    let pay = project(&doc, "PAY");
    // In progress or done in the period: all but the three to-do items, epics included.
    assert_eq!(
        (
            pay["items"].clone(),
            pay["unaligned"].clone(),
            pay["share"].clone()
        ),
        (json!(10), json!(3), json!(0.3)),
        "{pay}"
    );
    // The API and the dashboard page read the same report.
    let api: Value = s
        .get("/api/v1/unaligned?period=2026-Q4")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(keys(&api), keys(&doc));
    let (status, page) = s.page("/unaligned?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert!(page.contains("PAY-20") && page.contains("PAY-30"), "{page}");
    for aligned in ["PAY-1<", "PAY-10<", "PAY-40<"] {
        assert!(!page.contains(aligned), "{aligned} listed:\n{page}");
    }

    // Moves: an epic aligned through its children counts toward the KRs they move.
    assert_eq!(
        moved(&env, "item=PAY-1"),
        (
            json!(1),
            vec![("emea.checkout".into(), json!(1), json!(1.0))]
        )
    );
    assert_eq!(moved(&env, "item=PAY-10"), (json!(1), vec![]));
    assert_eq!(moved(&env, "item=PAY-20"), (json!(1), vec![]));
    // `epic=PAY-1` selects its children, not the epic.
    assert_eq!(
        moved(&env, "epic=PAY-1"),
        (
            json!(2),
            vec![("emea.checkout".into(), json!(2), json!(1.0))]
        )
    );
    // project=PAY: PAY-2, PAY-3 and PAY-41 by their own rules, PAY-1 and PAY-40 through
    // their children, of 13 items.
    let (items, krs) = moved(&env, "project=PAY");
    assert_eq!(items, json!(13));
    assert_eq!(krs.len(), 1);
    assert_eq!(
        (krs[0].0.as_str(), krs[0].1.clone()),
        ("emea.checkout", json!(5))
    );
    assert!((krs[0].2.as_f64().expect("share") - 5.0 / 13.0).abs() < 1e-9);

    // /metrics: the same share.
    let scrape = || async { s.get("/metrics").await.text().await.expect("metrics") };
    let metrics = scrape().await;
    assert!(
        metrics.contains("okrsync_unaligned_share{project=\"PAY\"} 0.3\n"),
        "{metrics}"
    );

    // The sub-task loses its label: its parent story no longer moves anything either.
    env.sim.edit("PAY-41", |i| i.labels.clear());
    let synced = s
        .http
        .post(format!("{}/api/v1/sync", s.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("sync");
    assert_eq!(synced.status(), 200);
    let doc = json(&env.cli(&["unaligned", "--json"], Some(NOW)));
    assert_eq!(
        keys(&doc),
        vec!["PAY-20", "PAY-21", "PAY-30", "PAY-40", "PAY-41"],
        "{doc}"
    );
    assert_eq!(moved(&env, "item=PAY-40"), (json!(1), vec![]));
    let metrics = scrape().await;
    assert!(
        metrics.contains("okrsync_unaligned_share{project=\"PAY\"} 0.5\n"),
        "{metrics}"
    );
    s.stop().await;
}
both_backends!(epics_are_aligned_or_exempt_through_their_children);

/// An epic with no children is judged by its own rules, as any item.
async fn an_epic_without_children_is_unaligned_unless_a_rule_matches_it(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    let updated = Utc
        .with_ymd_and_hms(2026, 11, 10, 9, 0, 0)
        .single()
        .expect("time");
    let mut lonely = issue(
        1,
        "PAY-50",
        "Lonely epic",
        "in_progress",
        None,
        &[],
        updated,
        None,
    );
    lonely.issue_type = "Epic".into();
    let mut labelled = issue(
        2,
        "PAY-51",
        "Labelled epic",
        "in_progress",
        None,
        &["checkout"],
        updated,
        None,
    );
    labelled.issue_type = "Epic".into();
    env.seed([lonely, labelled]);
    env.engine()
        .await
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    let doc = json(&env.cli(&["unaligned", "--json"], Some(NOW)));
    assert_eq!(keys(&doc), vec!["PAY-50"], "{doc}");
    assert_eq!(project(&doc, "PAY")["items"], json!(2));
}
both_backends!(an_epic_without_children_is_unaligned_unless_a_rule_matches_it);
