//! Crash safety (issue 14): `okrsync run` killed with SIGKILL at random points — while it
//! starts and migrates, during sync steps, while webhooks arrive — again and again, with
//! work happening upstream between the kills. After every kill the store must pass its
//! integrity checks (SQLite: `PRAGMA integrity_check` and `foreign_key_check`), every
//! snapshot a sync wrote must belong to a recorded successful run (none lost with its run,
//! none written without one), no KR's value may be snapshotted twice in a row, and each
//! KR's current value must be its latest snapshot's. At the end, one clean `okrsync sync`
//! must give exactly the KR values of a store that never crashed.
//!
//! CI runs 50 kills per database (`OKRSYNC_CRASH_KILLS` sets another count; the seed is
//! printed and `OKRSYNC_CRASH_SEED` repeats a run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use okrsync::simulator::jira::{JiraSim, JiraSimOptions, SimFlavor, SimIssue};
use rand::{Rng, SeedableRng};
use sqlx::Connection;

use crate::helpers::{free_port, fresh_database, postgres_url, skip_notice, Db, EMAIL, TOKEN};

const HOOK_SECRET: &str = "crash-hook-secret";
const ISSUES: u64 = 2_000;

const OKRS: &str = r#"
[[objective]]
id = "o"
title = "Ship"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the PAY work"
measure = "completion"

[[objective.kr]]
id = "o.count"
title = "Finish 500 items"
measure = "count"
target = 500

[[rule]]
kr = "o.done"
[rule.match]
labels = "okr"

[[rule]]
kr = "o.count"
[rule.match]
project = "PAY"
"#;

fn sim_issue(n: u64, done: bool) -> SimIssue {
    let mut i = SimIssue::new(n, &format!("PAY-{n}"), &format!("Task {n}"));
    i.labels = if n.is_multiple_of(3) {
        vec!["okr".into()]
    } else {
        vec![]
    };
    i.story_points = Some((n % 8 + 1) as f64);
    i.created = Utc::now() - chrono::Duration::days(10);
    i.updated = Utc::now() - chrono::Duration::days(5) + chrono::Duration::seconds(n as i64);
    if done {
        // Finished now: the change is newer than any cursor.
        i.status = "Done".into();
        i.status_category = "done".into();
        i.updated = okrsync::simulator::dataset::millis(Utc::now());
        i.resolved = Some(i.updated);
    }
    i
}

fn config(db_url: &str, jira: &str, port: u16) -> String {
    format!(
        r#"okrs = ["okrs/*.toml"]
[server]
listen = "127.0.0.1:{port}"
[database]
url = "{db_url}"
[log]
level = "error"
[sources.jira]
kind = "jira"
url = "{jira}"
email = "{EMAIL}"
token_file = "token"
jql = "project = PAY"
every = "1s"
overlap = "1s"
requests_per_second = 1000
retry_backoff = "10ms"
webhook_secret_file = "hook-secret"
"#
    )
}

/// A store's invariants, checked with plain SQL on either backend.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Conn {
    async fn open(url: &str) -> Conn {
        if url.starts_with("sqlite:") {
            Conn::Sqlite(
                sqlx::SqliteConnection::connect(url)
                    .await
                    .expect("open SQLite"),
            )
        } else {
            Conn::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("open PostgreSQL"),
            )
        }
    }

    async fn strings(&mut self, sql: &str) -> Vec<String> {
        match self {
            Conn::Sqlite(c) => sqlx::query_scalar::<_, String>(sql)
                .fetch_all(c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Conn::Postgres(c) => sqlx::query_scalar::<_, String>(sql)
                .fetch_all(c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    async fn close(self) {
        let _ = match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres(c) => c.close().await,
        };
    }
}

/// Everything wrong with the store, in words (empty: consistent).
async fn violations(db_url: &str, sqlite: bool) -> Vec<String> {
    let mut conn = Conn::open(db_url).await;
    let mut wrong = Vec::new();
    // Killed before the migrations were all applied (each one is a transaction of its
    // own): the next start applies the rest; the data checks wait until then.
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(if sqlite { "sqlite" } else { "postgres" });
    let migrations = std::fs::read_dir(folder)
        .expect("migrations")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    let has_ledger = conn
        .strings(if sqlite {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        } else {
            "SELECT tablename::text FROM pg_tables WHERE tablename = '_sqlx_migrations'"
        })
        .await;
    let applied = if has_ledger.is_empty() {
        0
    } else {
        conn.strings("SELECT CAST(version AS TEXT) FROM _sqlx_migrations WHERE success")
            .await
            .len()
    };
    if sqlite {
        let integrity = conn.strings("PRAGMA integrity_check").await;
        if integrity != ["ok"] {
            wrong.push(format!("integrity_check: {integrity:?}"));
        }
        let fk = conn
            .strings("SELECT \"table\" || ' ' || parent FROM pragma_foreign_key_check")
            .await;
        if !fk.is_empty() {
            wrong.push(format!("foreign_key_check: {fk:?}"));
        }
    }
    if applied < migrations {
        conn.close().await;
        return wrong;
    }
    // A sync's snapshot is committed with its run: one without a successful run was
    // written by a step that did not commit, or its run was lost.
    let orphans = conn
        .strings(
            "SELECT s.kr_id || ' ' || CAST(s.id AS TEXT) FROM kr_snapshots s \
             LEFT JOIN sync_runs r ON r.id = s.run_id \
             WHERE s.run_id IS NOT NULL AND (r.id IS NULL OR r.outcome <> 'ok')",
        )
        .await;
    if !orphans.is_empty() {
        wrong.push(format!("snapshots without a successful run: {orphans:?}"));
    }
    // A snapshot is kept when the value or the evidence changed: the same value twice in
    // a row with no evidence under the second is a double.
    let doubled = conn
        .strings(
            "SELECT a.kr_id || ' ' || CAST(a.id AS TEXT) || '/' || CAST(b.id AS TEXT) \
             FROM kr_snapshots a JOIN kr_snapshots b ON b.kr_id = a.kr_id AND b.id = ( \
               SELECT MIN(c.id) FROM kr_snapshots c WHERE c.kr_id = a.kr_id AND c.id > a.id \
                 AND c.reconstructed = 0) \
             WHERE a.reconstructed = 0 AND a.checkin_id IS NULL AND b.checkin_id IS NULL \
               AND a.current IS NOT DISTINCT FROM b.current AND a.target IS NOT DISTINCT FROM b.target \
               AND a.progress = b.progress AND a.item_count = b.item_count \
               AND a.rules_hash IS NOT DISTINCT FROM b.rules_hash \
               AND NOT EXISTS (SELECT 1 FROM kr_evidence e WHERE e.snapshot_id = b.id)",
        )
        .await;
    if !doubled.is_empty() {
        wrong.push(format!(
            "the same value snapshotted twice in a row: {doubled:?}"
        ));
    }
    conn.close().await;
    wrong
}

/// The KR values a store serves, as `okrsync status --json` prints them.
fn kr_values(
    config: &std::path::Path,
) -> Vec<(
    String,
    serde_json::Value,
    serde_json::Value,
    serde_json::Value,
)> {
    let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(config)
        .args(["status", "--json"])
        .env_remove("RUST_LOG")
        .output()
        .expect("status");
    let doc = crate::helpers::json(&out);
    let mut krs = Vec::new();
    for o in doc["objectives"].as_array().into_iter().flatten() {
        for k in o["key_results"].as_array().into_iter().flatten() {
            krs.push((
                k["id"].as_str().unwrap_or_default().to_string(),
                k["current"].clone(),
                k["target"].clone(),
                k["items"].clone(),
            ));
        }
    }
    krs
}

async fn kill_again_and_again(db: Db) {
    let kills: usize = std::env::var("OKRSYNC_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("OKRSYNC_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test ({db:?}): {kills} kills, OKRSYNC_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sim = JiraSim::start(JiraSimOptions {
        flavor: SimFlavor::Cloud,
        email: EMAIL.into(),
        token: TOKEN.into(),
        ..JiraSimOptions::default()
    })
    .await
    .expect("jira");
    sim.upsert_all((1..=ISSUES).map(|n| sim_issue(n, false)));

    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let mut configs = Vec::new();
    let mut urls = Vec::new();
    for dir in &dirs {
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
        std::fs::write(dir.path().join("okrs/o.toml"), OKRS).expect("okrs");
        std::fs::write(dir.path().join("token"), TOKEN).expect("token");
        std::fs::write(dir.path().join("hook-secret"), HOOK_SECRET).expect("secret");
        let url = fresh_database(db, dir.path()).await;
        let path = dir.path().join("okrsync.toml");
        std::fs::write(&path, config(&url, &sim.base_url(), free_port())).expect("config");
        configs.push(path);
        urls.push(url);
    }
    let (crashed, calm) = (&configs[0], &configs[1]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let started = Instant::now();
    let mut survived = 0;
    for round in 0..kills {
        // Work happens upstream: some issues are finished.
        for _ in 0..15 {
            let n = rng.random_range(1..=ISSUES);
            sim.upsert(sim_issue(n, true));
        }
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(crashed)
            .arg("run")
            .env("OKRSYNC__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start okrsync run");
        // A random point: from startup and migration through the first steps.
        let until = Instant::now() + Duration::from_millis(rng.random_range(20..1_500));
        let hook_at = Instant::now() + Duration::from_millis(rng.random_range(100..1_200));
        let mut hooked = false;
        while Instant::now() < until {
            if !hooked && Instant::now() >= hook_at {
                hooked = true;
                let body = format!(
                    "{{\"webhookEvent\":\"jira:issue_updated\",\"issue\":{{\"key\":\"PAY-{}\"}}}}",
                    rng.random_range(1..=ISSUES)
                );
                let _ = http
                    .post(format!("http://127.0.0.1:{port}/hooks/jira"))
                    .header(
                        "x-hub-signature-256",
                        crate::helpers::hub_signature(HOOK_SECRET, body.as_bytes()),
                    )
                    .body(body)
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let wrong = violations(&urls[0], db == Db::Sqlite).await;
        assert!(
            wrong.is_empty(),
            "after kill {} (seed {seed}): {}",
            round + 1,
            wrong.join("; ")
        );
        survived += 1;
    }
    // Healed: one clean pass, to its end, on the crashed store and on one that never
    // crashed; the same numbers.
    for config in [crashed, calm] {
        let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(config)
            .arg("sync")
            .env_remove("RUST_LOG")
            .output()
            .expect("sync");
        assert!(
            out.status.success(),
            "sync: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(violations(&urls[0], db == Db::Sqlite).await.is_empty());
    assert_eq!(
        kr_values(crashed),
        kr_values(calm),
        "after {survived} kills the numbers differ from a store that never crashed (seed {seed})"
    );
    eprintln!(
        "crash test ({db:?}): {survived} SIGKILLs survived in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_doubles_nothing_sqlite() {
    kill_again_and_again(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_doubles_nothing_postgres() {
    if postgres_url().is_none() {
        skip_notice("crash::sigkill_at_random_points_loses_and_doubles_nothing");
        return;
    }
    kill_again_and_again(Db::Postgres).await
}
