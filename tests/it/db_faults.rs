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

/// PAY-1 done, PAY-2 in progress: the store every test starts from.
fn two_issues() -> [okrsync::simulator::jira::SimIssue; 2] {
    [
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
    ]
}

/// An engine after its first, successful step, served on 127.0.0.1 (the same process
/// then runs the steps the test makes fail).
struct Served {
    engine: okrsync::sync::Engine,
    base: String,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn start(env: &TestEnv) -> Served {
        let engine = env.engine().await;
        let first = engine
            .sync_source("jira", okrsync::sync::Mode::Full)
            .await
            .expect("first step");
        assert_eq!(first.outcome, "ok", "{:?}", first.error);
        let app = okrsync::server::Application::build(
            engine.clone(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("build");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(app.run_until_stopped(stopped));
        Served {
            engine,
            base,
            stop,
            server,
        }
    }
}

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
    env.seed(two_issues());
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

/// A tmpfs of `size` bytes mounted at `dir`, unmounted when dropped (the test runs as root;
/// without the right to mount, the test says so and is skipped).
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "cannot mount a small tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("cannot run mount: {e}");
                None
            }
        }
    }

    /// Bytes in use on it.
    fn used(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=used", "-B1"])
            .arg(&self.dir)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's used bytes")
    }

    fn resize(&self, size: u64) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("remount");
        assert!(ok.success(), "resizing the tmpfs to {size} bytes failed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where the test database lives on the small disk, and how to clean up after it.
enum Placement {
    /// The SQLite file on the tmpfs.
    File(std::path::PathBuf),
    /// A PostgreSQL database moved to a tablespace on the tmpfs.
    Tablespace {
        url: String,
        database: String,
        tablespace: String,
    },
}

impl Drop for Placement {
    fn drop(&mut self) {
        if let Placement::Tablespace {
            url,
            database,
            tablespace,
        } = self
        {
            let base = url.replace(&format!("/{database}"), "/postgres");
            for sql in [
                format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                format!("DROP TABLESPACE IF EXISTS {tablespace}"),
            ] {
                let _ = Command::new("psql").args([&base, "-qc", &sql]).output();
            }
        }
    }
}

impl Placement {
    async fn count_items(&self) -> (i64, String) {
        match self {
            Placement::File(db) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                        .await
                        .expect("open the file");
                let items: (i64,) = sqlx::query_as("SELECT count(*) FROM items")
                    .fetch_one(&mut conn)
                    .await
                    .expect("count");
                let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
                    .fetch_one(&mut conn)
                    .await
                    .expect("integrity_check");
                conn.close().await.expect("close");
                (items.0, check.0)
            }
            Placement::Tablespace { url, .. } => pg_count_items(url).await,
        }
    }
}

/// The items in a PostgreSQL store, and "ok" when every match still has its item.
async fn pg_count_items(url: &str) -> (i64, String) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let items: (i64,) = sqlx::query_as("SELECT count(*) FROM items")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let orphans: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM matches m WHERE NOT EXISTS \
         (SELECT 1 FROM items i WHERE i.source = m.source AND i.ext_id = m.ext_id)",
    )
    .fetch_one(&mut conn)
    .await
    .expect("orphan matches");
    conn.close().await.expect("close");
    let check = if orphans.0 == 0 {
        "ok".to_string()
    } else {
        format!("{} orphan matches", orphans.0)
    };
    (items.0, check)
}

async fn readyz(base: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Moves the test's SQLite file, or its PostgreSQL database (to a tablespace), onto the
/// small disk.
async fn place(env: &TestEnv, db: Db, disk: &SmallDisk) -> Placement {
    let config = std::fs::read_to_string(&env.config).expect("config");
    match db {
        Db::Sqlite => {
            let file = disk.dir.join("okrsync.db");
            let config = config.replace(
                &format!("sqlite://{}/okrsync.db", env.dir.path().display()),
                &format!("sqlite://{}", file.display()),
            );
            std::fs::write(&env.config, config).expect("config");
            Placement::File(file)
        }
        Db::Postgres => {
            let url = config
                .lines()
                .find_map(|l| l.strip_prefix("url = \"postgres"))
                .map(|rest| format!("postgres{}", rest.trim_end_matches('"')))
                .expect("the database url");
            let database = url.rsplit('/').next().expect("a database name").to_string();
            let tablespace = format!("{database}_small");
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&disk.dir)
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the tmpfs to postgres");
            let base = url.replace(&format!("/{database}"), "/postgres");
            let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect");
            conn.execute(
                format!(
                    "CREATE TABLESPACE {tablespace} LOCATION '{}'",
                    disk.dir.display()
                )
                .as_str(),
            )
            .await
            .expect("create the tablespace");
            conn.execute(format!("ALTER DATABASE {database} SET TABLESPACE {tablespace}").as_str())
                .await
                .expect("move the database");
            conn.close().await.expect("close");
            Placement::Tablespace {
                url,
                database,
                tablespace,
            }
        }
    }
}

/// Disk full: the database on a tmpfs with a little room left after the migrations (the
/// SQLite file; PostgreSQL's database through a tablespace there). A step that needs more
/// fails with the database's words, writes nothing (the items are those of the step
/// before, the store is consistent), `/readyz` answers 503 with the reason; once there is
/// room, the next step of the same process succeeds and readiness comes back, without a
/// restart.
async fn disk_full(db: Db, test: &str) {
    if std::env::var_os("OKRSYNC_SKIP_DISK_FULL").is_some() {
        eprintln!("SKIPPED {test}: OKRSYNC_SKIP_DISK_FULL is set");
        return;
    }
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    // PostgreSQL's server must reach the mount point: not inside the 0700 temp dir.
    let mount_at = match db {
        Db::Sqlite => env.dir.path().join("small"),
        Db::Postgres => std::env::temp_dir().join(format!(
            "okrsync-small-{}",
            env.dir
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x")
        )),
    };
    let Some(disk) = SmallDisk::mount(&mount_at, 64 << 20) else {
        assert!(
            std::env::var_os("OKRSYNC_REQUIRE_DISK_FULL").is_none(),
            "OKRSYNC_REQUIRE_DISK_FULL is set but no tmpfs could be mounted"
        );
        eprintln!("SKIPPED {test}: mounting a tmpfs needs root");
        return;
    };
    let placement = place(&env, db, &disk).await;
    env.seed(two_issues());
    let Served {
        engine,
        base,
        stop,
        server,
    } = Served::start(&env).await;
    assert_eq!(readyz(&base).await.0, 200);

    // 1,500 more issues with long, distinct summaries need megabytes; leave 256 KiB.
    env.seed((0..1500u64).map(|n| {
        let summary: String = (0..250)
            .map(|k| format!("{:08x}", n * 7919 + k * 104729))
            .collect();
        issue(
            100 + n,
            &format!("PAY-{}", 100 + n),
            &summary,
            "todo",
            None,
            &[],
            minute(10, 0),
            None,
        )
    }));
    disk.resize(disk.used().div_ceil(4096) * 4096 + (256 << 10));
    let full = engine.sync_source("jira", okrsync::sync::Mode::Full).await;
    let message = match &full {
        Ok(run) => {
            assert_eq!(run.outcome, "failed", "the step cannot fit");
            run.error.clone().unwrap_or_default()
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(
        message.contains("disk is full") || message.contains("No space left"),
        "says why: {message}"
    );
    let (status, body) = readyz(&base).await;
    assert_eq!(
        status, 503,
        "not ready while nothing can be written: {body}"
    );
    assert!(body.contains("cannot be written"), "{body}");
    let (items, check) = placement.count_items().await;
    assert_eq!((items, check.as_str()), (2, "ok"), "nothing half-written");

    // Room again: the same engine's next step lands, readiness comes back.
    disk.resize(64 << 20);
    let healed = engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("healed step");
    assert_eq!(healed.outcome, "ok", "{:?}", healed.error);
    assert_eq!(readyz(&base).await.0, 200);
    let (items, check) = placement.count_items().await;
    assert_eq!((items, check.as_str()), (1502, "ok"));
    stop.send(true).expect("stop");
    server.await.expect("join").expect("server");
    engine.store().close().await;
    drop(engine);
    drop(placement);
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_step_clearly_writes_nothing_and_recovers_sqlite() {
    disk_full(Db::Sqlite, "db_faults::disk_full::sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_step_clearly_writes_nothing_and_recovers_postgres() {
    if crate::helpers::postgres_url().is_none() {
        crate::helpers::skip_notice("db_faults::disk_full");
        return;
    }
    disk_full(Db::Postgres, "db_faults::disk_full::postgres").await;
}

/// PostgreSQL stopped while a step is under way (its first page written inside the step's
/// transaction, the second page slow to come): the step ends in bounded time with the
/// database's words, `/readyz` answers 503 meanwhile; after PostgreSQL is back the store
/// holds what it held before the step (nothing half-written) and the next step of the same
/// process lands everything, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopping_under_a_step_fails_it_whole_and_the_next_one_lands() {
    use okrsync::simulator::jira::Fault;

    if crate::helpers::postgres_url().is_none() {
        crate::helpers::skip_notice("db_faults::postgresql_stopping_under_a_step");
        return;
    }
    let Some(pg) = crate::service::OwnPostgres::start_new() else {
        panic!("OKRSYNC_TEST_DATABASE_URL is set but no PostgreSQL server binaries (initdb) are installed");
    };
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    let config = std::fs::read_to_string(&env.config)
        .expect("config")
        .replace(
            &format!("sqlite://{}/okrsync.db", env.dir.path().display()),
            &pg.url(),
        )
        .replace(
            "retry_backoff = \"10ms\"",
            "retry_backoff = \"10ms\"\ntimeout = \"3s\"",
        );
    std::fs::write(&env.config, config).expect("config");
    env.seed(two_issues());
    let Served {
        engine,
        base,
        stop,
        server,
    } = Served::start(&env).await;

    // 150 more issues: two pages; the second one hangs until the source's timeout.
    env.seed((0..150u64).map(|n| {
        issue(
            100 + n,
            &format!("PAY-{}", 100 + n),
            "done work",
            "done",
            None,
            &[],
            minute(10, 0),
            Some(minute(10, 0)),
        )
    }));
    env.sim.faults().arm("/search", 2, 1, Fault::Hang);
    let stepping = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.sync_source("jira", okrsync::sync::Mode::Full).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.sim.faults().fired().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the second page was never asked for"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first page is written inside the step's transaction; now the database goes.
    pg.stop();
    let ended = tokio::time::timeout(Duration::from_secs(60), stepping)
        .await
        .expect("the step ended in bounded time")
        .expect("join");
    let message = match &ended {
        Ok(run) => {
            assert_eq!(
                run.outcome, "failed",
                "a step without its database cannot succeed"
            );
            run.error.clone().unwrap_or_default()
        }
        Err(e) => format!("{e:#}"),
    };
    let lower = message.to_lowercase();
    assert!(
        ["connection", "terminating", "pool timed out", "database"]
            .iter()
            .any(|w| lower.contains(w)),
        "says why: {message}"
    );
    let (status, body) = readyz(&base).await;
    assert_eq!(status, 503, "{body}");

    pg.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&base).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (items, check) = pg_count_items(&pg.url()).await;
    assert_eq!((items, check.as_str()), (2, "ok"), "nothing half-written");
    let healed = engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("healed step");
    assert_eq!(healed.outcome, "ok", "{:?}", healed.error);
    assert_eq!(healed.fetched, 152);
    stop.send(true).expect("stop");
    server.await.expect("join").expect("server");
    engine.store().close().await;
}
