//! Database faults (issue 14): the SQLite file locked by another process. A sync that cannot
//! get the lock within `database.busy_timeout` fails with words that say so, writes
//! nothing, and the next sync after the lock is gone succeeds with the upstream's changes.

use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};

use crate::helpers::{issue, minute, Db, SourceOpts, TestEnv};

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

fn sync(env: &TestEnv) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .arg("sync")
        .env("OKRSYNC__DATABASE__BUSY_TIMEOUT", "1s")
        .env_remove("RUST_LOG")
        .env_remove("OKRSYNC_NOW")
        .output()
        .expect("sync")
}

fn current(env: &TestEnv) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .args(["status", "--json"])
        .env_remove("RUST_LOG")
        .env_remove("OKRSYNC_NOW")
        .output()
        .expect("status");
    crate::helpers::json(&out)["objectives"][0]["key_results"][0]["current"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_fails_the_sync_clearly_and_the_next_one_recovers() {
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
    let first = sync(&env);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(current(&env), serde_json::json!(1.0));

    // Another process (here: another connection) holds the write lock.
    let db = env.dir.path().join("okrsync.db");
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the file");
    holder.execute("BEGIN EXCLUSIVE").await.expect("lock");
    env.sim.edit("PAY-2", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(chrono::Utc::now());
    });
    let started = Instant::now();
    let locked = sync(&env);
    let stderr = String::from_utf8_lossy(&locked.stderr).to_string();
    assert!(
        !locked.status.success(),
        "the sync must fail while the file is locked"
    );
    assert!(
        stderr.contains("locked") && !stderr.contains("panicked"),
        "says why: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up after busy_timeout, not later: {:?}",
        started.elapsed()
    );
    holder.execute("ROLLBACK").await.expect("unlock");
    holder.close().await.expect("close");
    // Nothing half-written: the value is the one before; then the next sync recovers.
    assert_eq!(current(&env), serde_json::json!(1.0));
    let healed = sync(&env);
    assert!(
        healed.status.success(),
        "{}",
        String::from_utf8_lossy(&healed.stderr)
    );
    assert_eq!(current(&env), serde_json::json!(2.0));
}
