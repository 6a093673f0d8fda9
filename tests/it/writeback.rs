//! Write-back (issue 17) through the real binary against the Jira simulator:
//! `okrsync writeback` labels the unaligned work of the period, takes the label off work
//! aligned since, touches an item once per decision, and changes nothing with `--dry-run`.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{issue, json as stdout_json, minute, Db, SourceOpts, TestEnv};

const OKRS: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the work"
measure = "completion"

[[rule]]
kr = "o.done"
[rule.match]
project = "PAY"

[[rule]]
kr = "o.done"
[rule.match]
labels = ["okr"]
"#;

fn labels(env: &TestEnv, key: &str) -> BTreeSet<String> {
    env.sim
        .issues()
        .into_iter()
        .find(|i| i.key == key)
        .map(|i| i.labels.into_iter().collect())
        .unwrap_or_default()
}

fn puts(env: &TestEnv) -> Vec<String> {
    env.sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| format!("{} {}", r.path, r.status))
        .collect()
}

async fn writeback_labels_unaligned_work_once(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!("{config}writeback = {{ label = \"no-kr\" }}\n"),
    )
    .expect("config");
    let today = chrono::Utc::now();
    env.seed([
        // Aligned (project PAY), no label: nothing.
        issue(
            1,
            "PAY-1",
            "Aligned",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        // Aligned but labelled (by a person, or before a rule was added): label off.
        issue(
            2,
            "PAY-2",
            "Aligned, labelled",
            "in_progress",
            None,
            &["no-kr"],
            minute(9, 0),
            None,
        ),
        // Unaligned, in progress / done in the period: label on.
        issue(
            3,
            "WEB-1",
            "Unaligned",
            "in_progress",
            None,
            &["frontend"],
            minute(9, 0),
            None,
        ),
        issue(
            4,
            "WEB-2",
            "Unaligned, done",
            "done",
            None,
            &[],
            minute(9, 0),
            Some(today),
        ),
        // Unaligned but not started: nothing.
        issue(
            5,
            "WEB-3",
            "Not started",
            "todo",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        // Unaligned and already labelled: nothing.
        issue(
            6,
            "WEB-4",
            "Labelled",
            "in_progress",
            None,
            &["no-kr"],
            minute(9, 0),
            None,
        ),
    ]);
    let out = env.cli(&["sync"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = json!({"add": ["WEB-1", "WEB-2"], "remove": ["PAY-2"]});
    // --dry-run: the same list, nothing written.
    let dry = stdout_json(&env.cli(&["writeback", "--dry-run", "--json"], None));
    assert_eq!(dry, expected);
    assert!(puts(&env).is_empty(), "{:?}", puts(&env));
    assert!(!labels(&env, "WEB-1").contains("no-kr"));
    // The real pass: three edits, one request each.
    let done = stdout_json(&env.cli(&["writeback", "--json"], None));
    assert_eq!(done, expected);
    assert_eq!(puts(&env).len(), 3, "{:?}", puts(&env));
    assert!(puts(&env).iter().all(|p| p.ends_with(" 204")));
    assert_eq!(
        labels(&env, "WEB-1"),
        BTreeSet::from(["frontend".to_string(), "no-kr".to_string()])
    );
    assert!(labels(&env, "WEB-2").contains("no-kr"));
    assert!(!labels(&env, "PAY-2").contains("no-kr"));
    // Again before a sync has seen the edits: each decision was carried out once.
    let again = stdout_json(&env.cli(&["writeback", "--json"], None));
    assert_eq!(again, json!({"add": [], "remove": []}));
    assert_eq!(puts(&env).len(), 3);
    // After a sync (the labels are stored now): still nothing.
    assert!(env.cli(&["sync"], None).status.success());
    let settled = stdout_json(&env.cli(&["writeback", "--json"], None));
    assert_eq!(settled, json!({"add": [], "remove": []}));
    // WEB-1 becomes aligned (a rule matches its new label): the label comes off.
    env.sim.edit("WEB-1", |i| i.labels.push("okr".into()));
    assert!(env.cli(&["sync"], None).status.success());
    let dry = stdout_json(&env.cli(&["writeback", "--dry-run", "--json"], None));
    assert_eq!(dry, json!({"add": [], "remove": ["WEB-1"]}));
    let text = env.cli(&["writeback"], None);
    assert!(text.status.success());
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        "removed the label from WEB-1\n"
    );
    assert_eq!(
        labels(&env, "WEB-1"),
        BTreeSet::from(["frontend".to_string(), "okr".to_string()])
    );
    // The edits went to Jira Cloud's v3 issue endpoint.
    assert!(puts(&env)
        .iter()
        .all(|p| p.starts_with("/rest/api/3/issue/")));
    let _: Value = dry;
}
both_backends!(writeback_labels_unaligned_work_once);

/// `check` refuses write-back where it cannot work.
#[test]
fn check_refuses_writeback_on_a_sheet_and_an_empty_label() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(dir.path().join("okrs/o.toml"), OKRS).expect("okrs");
    std::fs::write(dir.path().join("t"), "token").expect("token");
    std::fs::write(dir.path().join("m.csv"), "a,b\n1,2\n").expect("csv");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        "okrs = [\"okrs/*.toml\"]\n\
         [sources.jira]\nkind = \"jira\"\nurl = \"http://127.0.0.1:9\"\nemail = \"a@b.c\"\ntoken_file = \"t\"\njql = \"project = PAY\"\nwriteback = { label = \" \" }\n\
         [sources.sheet]\nkind = \"sheet\"\npath = \"m.csv\"\nwriteback = { label = \"no-kr\" }\n",
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("okrsync.toml"))
        .arg("check")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources.jira.writeback.label: must not be empty"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "sources.sheet.writeback: write-back labels Jira, GitHub and GitLab items only"
        ),
        "{stderr}"
    );
}

/// The daemon writes back after a sync step (here one asked for over HTTP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_writes_back_after_a_step() {
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!("{config}writeback = {{ label = \"no-kr\" }}\n"),
    )
    .expect("config");
    env.seed([issue(
        1,
        "WEB-1",
        "Unaligned",
        "in_progress",
        None,
        &[],
        minute(9, 0),
        None,
    )]);
    let mut d = crate::service::Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, std::time::Duration::from_secs(30)).await;
    let answer = reqwest::Client::new()
        .post(d.url("/api/v1/sync"))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .expect("sync");
    assert!(answer.status().is_success());
    assert!(labels(&env, "WEB-1").contains("no-kr"), "log:\n{}", d.log());
    let (status, _) = d.stop(std::time::Duration::from_secs(30));
    assert!(status.success());
}
