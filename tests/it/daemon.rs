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
