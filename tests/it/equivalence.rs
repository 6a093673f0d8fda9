//! The same results, however the engine computes them: a generated data set goes through
//! a first sync, a step of changes, a full reconcile with deletions, a rules change and a
//! check-in, at pinned times, through the real binary; then every document a user reads
//! (status, explain, explain --at, history, unaligned, moves, allocation, lint) is compared
//! with `tests/golden/equivalence.jsonl`, which the engine before the set-based rewrite
//! produced. Both backends must give exactly those documents.
//!
//! After an intended change of results, regenerate the file with
//! `OKRSYNC_UPDATE_GOLDEN=1 cargo test --test it equivalence::same_documents::sqlite` and
//! review its diff.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use okrsync::simulator::dataset::{self, generate, key_of, millis, move_forward, pick};
use okrsync::simulator::jira::{JiraSim, JiraSimOptions, SimIssue};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{fresh_database, json, Db, EMAIL, TOKEN};

/// The size CI runs; `OKRSYNC_EQUIVALENCE_ITEMS=100000` runs the benchmark's size, compared
/// with the documents' SHA-256 digests in `tests/golden/equivalence-100000.sha256`:
/// `OKRSYNC_EQUIVALENCE_ITEMS=100000 cargo test --release --test it equivalence`.
const ITEMS: usize = 1_500;
const GOLDEN: &str = "tests/golden/equivalence.jsonl";

fn items() -> usize {
    std::env::var("OKRSYNC_EQUIVALENCE_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITEMS)
}

fn digest(doc: &Value) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(doc).expect("json");
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

fn at(hours: i64) -> String {
    (t0() + Duration::hours(hours)).to_rfc3339()
}

/// The data set's OKRs plus a milestone KR (an epic's children) and a manual one, so every
/// measure is covered.
fn okrs(rules_changed: bool) -> String {
    let start = (t0() - Duration::days(30)).format("%Y-%m-%d").to_string();
    let end = (t0() + Duration::days(60)).format("%Y-%m-%d").to_string();
    let mut text = dataset::okrs(&start, &end);
    text.push_str(&format!(
        r#"
[[objective]]
id = "launch"
title = "Launch the API"
start = "{start}"
end = "{end}"
parent = "company"

[[objective.kr]]
id = "launch.epic"
title = "The API epic is done"
measure = "milestone"

[[objective.kr]]
id = "launch.nps"
title = "Developer NPS from 20 to 40"
measure = "manual"
start = 20
target = 40

[[rule]]
id = "api-epic"
kr = "launch.epic"
[rule.match]
epic = "API-1"
"#
    ));
    if rules_changed {
        // Narrow one rule, exempt more work, drop another rule.
        text = text.replace("labels = [\"perf\", \"tech-debt\"]", "labels = [\"perf\"]");
        text = text.replace(
            "[[rule]]\nid = \"customer-bugs\"\nkr = \"quality.bugs\"\n[rule.match]\ntype = \"Bug\"\nlabels = \"customer\"\n",
            "",
        );
        text.push_str(
            r#"
[[rule]]
id = "infra-exempt"
exempt = true
[rule.match]
labels = "infra"
"#,
        );
    }
    text
}

struct Scenario {
    _dir: tempfile::TempDir,
    config: PathBuf,
    okrs: PathBuf,
    url: String,
}

impl Scenario {
    fn cli(&self, args: &[&str], now: &str) -> std::process::Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("RUST_LOG")
            .env_remove("OKRSYNC_CONFIG")
            .env("OKRSYNC_NOW", now);
        cmd.output().expect("run okrsync")
    }

    /// The counts a sync step keeps agree with counting again from items and matches.
    async fn assert_no_drift(&self, after: &str) {
        let store = okrsync::store::Store::connect(&okrsync::settings::DatabaseSettings {
            url: secrecy::SecretString::from(self.url.clone()),
            max_connections: 2,
            busy_timeout: std::time::Duration::from_secs(30),
        })
        .await
        .expect("connect");
        let drift = store.materialized_drift().await.expect("drift");
        store.close().await;
        assert!(drift.is_empty(), "after {after}: {drift:#?}");
    }

    fn sync(&self, args: &[&str], now: &str) {
        let out = self.cli(args, now);
        assert!(
            out.status.success(),
            "okrsync {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn scenario(db: Db, sim: &JiraSim) -> Scenario {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database(db, dir.path()).await;
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs dir");
    let okrs_path = dir.path().join("okrs/data.toml");
    std::fs::write(&okrs_path, okrs(false)).expect("okrs");
    std::fs::write(dir.path().join("jira-token"), TOKEN).expect("token");
    let config = dir.path().join("okrsync.toml");
    std::fs::write(
        &config,
        format!(
            r#"okrs = ["okrs/*.toml"]
[server]
listen = "127.0.0.1:0"
[database]
url = "{url}"
[log]
level = "warn"
[sources.jira]
kind = "jira"
url = "{base}"
flavor = "cloud"
email = "{EMAIL}"
token_file = "jira-token"
jql = "project in ({projects})"
every = "1h"
freshness = "1d"
story_points_field = "customfield_10016"
page_size = 50
requests_per_second = 1000
"#,
            base = sim.base_url(),
            projects = dataset::PROJECTS.join(", "),
        ),
    )
    .expect("config");
    Scenario {
        _dir: dir,
        config,
        okrs: okrs_path,
        url,
    }
}

/// Sorts what has no order of its own (the keys a snapshot's evidence lists), so the
/// comparison is about content.
fn normalize(name: &str, mut doc: Value) -> Value {
    if name.starts_with("history ") {
        if let Some(changes) = doc["changes"].as_array_mut() {
            for c in changes {
                for list in ["entered", "left", "summary"] {
                    if let Some(a) = c[list].as_array_mut() {
                        a.sort_by_key(|v| v.to_string());
                    }
                }
                if let Some(a) = c["changed"].as_array_mut() {
                    a.sort_by_key(|v| v["key"].to_string());
                }
            }
        }
    }
    doc
}

/// Every document of the scenario, with the simulator's address (a new port each run)
/// written as `http://jira.sim`.
fn documents(s: &Scenario, now: &str, base: &str) -> Vec<(String, Value)> {
    let krs: Vec<String> = {
        let status = json(&s.cli(&["status", "--json"], now));
        status["objectives"]
            .as_array()
            .expect("objectives")
            .iter()
            .flat_map(|o| o["key_results"].as_array().cloned().unwrap_or_default())
            .map(|k| k["id"].as_str().expect("id").to_string())
            .collect()
    };
    assert!(krs.len() >= 12, "the scenario's KRs: {krs:?}");
    let mut commands: Vec<Vec<String>> = vec![vec!["status".into(), "--json".into()]];
    for kr in &krs {
        commands.push(vec!["explain".into(), kr.clone(), "--json".into()]);
        commands.push(vec!["history".into(), kr.clone(), "--json".into()]);
    }
    for kr in ["pay.roadmap", "quality.perf", "launch.epic"] {
        commands.push(vec![
            "explain".into(),
            kr.into(),
            "--at".into(),
            at(1),
            "--json".into(),
        ]);
    }
    for selector in [
        "project=PAY",
        "label=perf",
        "epic=API-1",
        "epic=WEB-1",
        "item=PAY-5",
    ] {
        commands.push(vec!["moves".into(), selector.into(), "--json".into()]);
    }
    commands.push(vec!["unaligned".into(), "--json".into()]);
    commands.push(vec!["allocation".into(), "--json".into()]);
    commands.push(vec!["allocation".into(), "--weeks".into(), "--json".into()]);
    commands.push(vec![
        "allocation".into(),
        "--by".into(),
        "objective".into(),
        "--json".into(),
    ]);
    commands.push(vec!["lint".into(), "--json".into()]);
    commands
        .into_iter()
        .map(|args| {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let name = args
                .iter()
                .filter(|a| *a != "--json")
                .cloned()
                .collect::<Vec<_>>()
                .join(" ");
            let out = s.cli(&refs, now);
            let doc = json(&out);
            let text = serde_json::to_string(&doc)
                .expect("json")
                .replace(base, "http://jira.sim");
            let doc = normalize(&name, serde_json::from_str(&text).expect("json"));
            (name, doc)
        })
        .collect()
}

fn read_golden(path: &Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, doc) = l.split_once('\t').expect("name<TAB>document");
            (
                name.to_string(),
                serde_json::from_str(doc).expect("a JSON document"),
            )
        })
        .collect()
}

/// The first difference between two documents, as a path and both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(&format!("{path}.{k}"), va, vb) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(&format!("{path}[{i}]"), va, vb) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: {} items, expected {}", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: {a}, expected {b}")),
    }
}

async fn same_documents(db: Db) {
    let sim = JiraSim::start(JiraSimOptions {
        email: EMAIL.into(),
        token: TOKEN.into(),
        ..JiraSimOptions::default()
    })
    .await
    .expect("simulator");
    let n = items();
    let issues = generate(n, t0());
    sim.upsert_all(issues.clone());
    let s = scenario(db, &sim).await;

    // 1. The first sync: every item, and history rebuilt from their dates.
    s.sync(&["sync"], &at(0));
    // 2. 1% of the issues move forward half an hour later.
    let edited = millis(t0() + Duration::minutes(30));
    let mut by_id: Vec<SimIssue> = issues;
    for id in pick(n, n / 100, 7) {
        let issue = &mut by_id[id as usize - 1];
        move_forward(issue, edited);
        issue.updated = edited;
        sim.upsert(issue.clone());
    }
    s.sync(&["sync"], &at(1));
    s.assert_no_drift("the second step").await;
    // 3. Ten issues are deleted (an epic among them) and five more move; a full pass.
    for id in pick(n, 10, 11) {
        sim.delete(&key_of(id));
    }
    sim.delete("PAY-1");
    let edited = millis(t0() + Duration::minutes(90));
    for id in pick(n, 5, 13) {
        let issue = &mut by_id[id as usize - 1];
        move_forward(issue, edited);
        issue.updated = edited;
        if sim.issues().iter().any(|i| i.key == issue.key) {
            sim.upsert(issue.clone());
        }
    }
    s.sync(&["sync", "--full"], &at(2));
    s.assert_no_drift("the full pass").await;
    // 4. The rules change: every item is matched again.
    std::fs::write(&s.okrs, okrs(true)).expect("okrs");
    s.sync(&["sync"], &at(3));
    s.assert_no_drift("the rules change").await;
    // 5. A check-in.
    s.sync(&["checkin", "launch.nps", "27"], &at(4));

    let docs = documents(&s, &at(4), &sim.base_url());
    let update = std::env::var("OKRSYNC_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    if n != ITEMS {
        // Digests only: the documents of 100,000 items are tens of megabytes.
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/golden/equivalence-{n}.sha256"));
        let text: String = docs
            .iter()
            .map(|(name, doc)| format!("{name}\t{}\n", digest(doc)))
            .collect();
        if update {
            std::fs::write(&path, text).expect("write digests");
            return;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let differing: Vec<&str> = text
            .lines()
            .zip(want.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.split('\t').next().unwrap_or(a))
            .collect();
        assert_eq!(
            text.lines().count(),
            want.lines().count(),
            "documents compared"
        );
        assert!(differing.is_empty(), "documents differ: {differing:?}");
        return;
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if update {
        let mut text = String::new();
        for (name, doc) in &docs {
            text.push_str(name);
            text.push('\t');
            text.push_str(&serde_json::to_string(doc).expect("json"));
            text.push('\n');
        }
        std::fs::create_dir_all(golden.parent().expect("folder")).expect("golden folder");
        std::fs::write(&golden, text).expect("write golden");
        return;
    }
    let expected = read_golden(&golden);
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, expected_names, "the documents compared");
    let mut differences = Vec::new();
    for ((name, doc), (_, want)) in docs.iter().zip(&expected) {
        if let Some(d) = first_difference("", doc, want) {
            differences.push(format!("{name}: {d}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} documents differ from {GOLDEN}:\n{}",
        differences.len(),
        docs.len(),
        differences.join("\n")
    );
}
both_backends!(same_documents);
