//! `okrsync run` and `okrsync demo` as a user starts them: the real binary.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, issue, minute, Db, SourceOpts, TestEnv};

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
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_syncs_and_stops_cleanly_on_sigterm() {
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
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
        issue(2, "PAY-2", "B", "todo", None, &[], minute(9, 1), None),
    ]);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .arg("run")
        .env("OKRSYNC__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start okrsync run");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // The first sync step runs at start; wait (bounded) until its numbers are served.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut current = serde_json::Value::Null;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/api/v1/objectives")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                current = v["objectives"][0]["key_results"][0]["current"].clone();
                if current == serde_json::json!(1.0) {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        current,
        serde_json::json!(1.0),
        "the daemon synced and serves the result"
    );
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "okrsync did not stop within 20s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        !stderr.contains(crate::helpers::TOKEN),
        "a secret reached the logs"
    );
}

#[test]
fn demo_once_prints_real_numbers() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .args(["demo", "--once", "--dir"])
        .arg(dir.path().join("demo"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "Win the EMEA market",
        "Ship the EMEA checkout",
        "[emea.checkout]",
        "Partner NPS",
    ] {
        assert!(
            stdout.contains(expected),
            "missing «{expected}» in:\n{stdout}"
        );
    }
    assert!(dir.path().join("demo/okrsync.db").exists());
    // The demo's config works with every other command.
    let status = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("demo/okrsync.toml"))
        .args(["explain", "emea.checkout", "--json"])
        .output()
        .expect("explain");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(12));
}

/// Runs `okrsync demo --once` in a new directory (`now`: `OKRSYNC_NOW`), returning its
/// stdout and the directory.
fn demo_once(now: Option<&str>) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrsync"));
    cmd.args(["demo", "--once", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .env_remove("RUST_LOG");
    match now {
        Some(n) => cmd.env("OKRSYNC_NOW", n),
        None => cmd.env_remove("OKRSYNC_NOW"),
    };
    let out = cmd.output().expect("run demo");
    assert!(
        out.status.success(),
        "demo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8_lossy(&out.stdout).into_owned(), dir)
}

/// The status of each KR line of `status` output (`    [bar]  pct  status  title  [id]  …`).
fn kr_statuses(stdout: &str) -> std::collections::BTreeSet<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("    ["))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect()
}

/// A fresh demo tells a story: a mix of statuses, measured values between their start and
/// target, and weeks of history behind the charts.
#[test]
fn the_demo_replays_its_quarter_into_a_mix_of_statuses_with_history() {
    let (stdout, dir) = demo_once(None);
    let statuses = kr_statuses(&stdout);
    assert!(statuses.len() >= 3, "statuses {statuses:?} in:\n{stdout}");
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("[{id}]")))
            .unwrap_or_else(|| panic!("no {id} in:\n{stdout}"))
            .to_string()
    };
    // Metric and manual KRs: the value between start and target, no item count.
    for (id, from_to) in [
        ("company.churn", "(from 5 to 3)"),
        ("emea.mrr", "(from 1200000 to 2000000)"),
        ("company.nps", "(from 20 to 40)"),
    ] {
        let l = line(id);
        assert!(l.contains(from_to) && !l.contains("items)"), "{l}");
    }
    assert!(line("emea.checkout").contains(" of 51 (12 items)"));

    // The history behind the charts: several points on different days.
    let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("okrsync.toml"))
        .args(["explain", "emea.checkout", "--json"])
        .env_remove("OKRSYNC_NOW")
        .output()
        .expect("explain");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let days: std::collections::BTreeSet<String> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|s| s["at"].as_str().expect("at")[..10].to_string())
        .collect();
    assert!(days.len() >= 4, "history on days {days:?}");
    let progress: Vec<f64> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|s| s["progress"].as_f64().expect("progress"))
        .collect();
    assert!(
        progress.first() < progress.last(),
        "the work moved forward: {progress:?}"
    );
}

/// In a quarter's first days nothing can be behind yet; the demo reviews the quarter just
/// ended instead, still with a mix of statuses.
#[test]
fn the_demo_in_the_first_days_of_a_quarter_reviews_the_one_just_ended() {
    let (stdout, _dir) = demo_once(Some("2027-01-03T08:00:00Z"));
    assert!(stdout.contains("(company, 2026-Q4)"), "{stdout}");
    let statuses = kr_statuses(&stdout);
    assert!(
        ["done", "on_track", "at_risk", "off_track"]
            .iter()
            .all(|s| statuses.contains(*s)),
        "statuses {statuses:?} in:\n{stdout}"
    );
    let (stdout, _dir) = demo_once(Some("2027-02-20T08:00:00Z"));
    assert!(stdout.contains("(company, 2027-Q1)"), "{stdout}");
    assert_eq!(kr_statuses(&stdout).len(), 4, "{stdout}");
}
