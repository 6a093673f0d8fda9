//! Test harness: a simulated Jira on 127.0.0.1, a config written into a temp dir, and a
//! fresh database per test (SQLite file, or a new PostgreSQL database when
//! `OKRSYNC_TEST_DATABASE_URL` is set).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use okrsync::settings::Settings;
use okrsync::simulator::jira::{JiraSim, JiraSimOptions, SimFlavor, SimIssue};
use okrsync::store::Store;
use okrsync::sync::Engine;
use sqlx::Connection;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates a `_sqlite` and a `_postgres` test from one `async fn(Db)`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::postgres_url().is_none() {
                    $crate::helpers::skip_notice(stringify!($name));
                    return;
                }
                super::$name($crate::helpers::Db::Postgres).await
            }
        }
    };
}

/// Says that a PostgreSQL test was skipped. Written to the stderr handle rather than with
/// `eprintln!`, which the test harness captures and hides for passing tests.
pub fn skip_notice(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}::postgres: set OKRSYNC_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it on PostgreSQL"
    );
}

/// A port nothing listens on right now, for a process the test starts (and may restart on
/// the same port). Taken below Linux's ephemeral range (32768–60999): a port from it could
/// meanwhile become the local end of one of the many connections the other tests open, and
/// a server restarted on it would then fail to bind.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn postgres_url() -> Option<String> {
    std::env::var("OKRSYNC_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub const TOKEN: &str = "sim-token";
pub const API_TOKEN: &str = "api-secret";
pub const EMAIL: &str = "bot@test.okrsync.local";

/// A database URL for a new, empty database.
pub async fn fresh_database(db: Db, dir: &Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}/okrsync.db", dir.display()),
        Db::Postgres => {
            let base = postgres_url().expect("OKRSYNC_TEST_DATABASE_URL");
            let name = format!("okrsync_test_{}", uuid_like());
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&base).expect("database url");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

/// A time at the start of a minute, so tests can place edits "in the same minute".
pub fn minute(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 3, h, m, 0)
        .single()
        .expect("time")
}

/// Loads a config, connects, migrates and loads the OKRs, as every command does.
pub async fn engine_for(config: &Path) -> Engine {
    let settings = match Settings::load(config) {
        Ok(s) => Arc::new(s),
        Err(report) => panic!("test config is invalid:\n{report}"),
    };
    let store = Store::connect(&settings.database).await.expect("connect");
    store.migrate().await.expect("migrate");
    let engine = Engine::new(settings, store).expect("engine");
    engine.prepare().await.expect("prepare");
    engine
}

pub struct TestEnv {
    /// Holds the config, OKR files and SQLite database until the test ends.
    #[allow(dead_code)]
    pub dir: TempDir,
    pub sim: JiraSim,
    pub config: PathBuf,
}

/// Options for the `[sources.jira]` section.
pub struct SourceOpts {
    pub flavor: SimFlavor,
    pub page_size: u32,
    pub max_retries: u32,
}

impl Default for SourceOpts {
    fn default() -> Self {
        SourceOpts {
            flavor: SimFlavor::Cloud,
            page_size: 100,
            max_retries: 2,
        }
    }
}

impl TestEnv {
    pub async fn new(db: Db, okrs: &str, opts: SourceOpts) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let flavor = match opts.flavor {
            SimFlavor::Cloud => "cloud",
            SimFlavor::DataCenter => "datacenter",
        };
        let sim = JiraSim::start(JiraSimOptions {
            flavor: opts.flavor,
            email: EMAIL.into(),
            token: TOKEN.into(),
            ..JiraSimOptions::default()
        })
        .await
        .expect("start the Jira simulator");
        let db_url = fresh_database(db, dir.path()).await;
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs dir");
        std::fs::write(dir.path().join("okrs/test.toml"), okrs).expect("write okrs");
        std::fs::write(dir.path().join("jira-token"), format!("{TOKEN}\n")).expect("write token");
        std::fs::write(dir.path().join("api-token"), API_TOKEN).expect("write api token");
        let config = format!(
            r#"okrs = ["okrs/*.toml"]
[server]
listen = "127.0.0.1:0"
api_token_file = "api-token"
[database]
url = "{db_url}"
[log]
level = "warn"
[sources.jira]
kind = "jira"
url = "{url}"
flavor = "{flavor}"
email = "{EMAIL}"
token_file = "jira-token"
jql = "project in (PAY, WEB)"
every = "1m"
freshness = "1h"
story_points_field = "customfield_10016"
page_size = {page_size}
requests_per_second = 1000
max_retries = {max_retries}
retry_backoff = "10ms"
"#,
            url = sim.base_url(),
            page_size = opts.page_size,
            max_retries = opts.max_retries,
        );
        let config_path = dir.path().join("okrsync.toml");
        std::fs::write(&config_path, config).expect("write config");
        TestEnv {
            dir,
            sim,
            config: config_path,
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        match Settings::load(&self.config) {
            Ok(s) => Arc::new(s),
            Err(report) => panic!("test config is invalid:\n{report}"),
        }
    }

    /// Connects, migrates and loads the OKRs, as every command does.
    pub async fn engine(&self) -> Engine {
        engine_for(&self.config).await
    }

    pub fn seed(&self, issues: impl IntoIterator<Item = SimIssue>) {
        for i in issues {
            self.sim.upsert(i);
        }
    }

    /// Runs the real binary with this config.
    pub fn cli(&self, args: &[&str], now: Option<&str>) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("RUST_LOG").env_remove("OKRSYNC_CONFIG");
        match now {
            Some(n) => cmd.env("OKRSYNC_NOW", n),
            None => cmd.env_remove("OKRSYNC_NOW"),
        };
        cmd.output().expect("run okrsync")
    }
}

/// An issue with everything a test usually sets.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    id: u64,
    key: &str,
    summary: &str,
    category: &str,
    points: Option<f64>,
    labels: &[&str],
    updated: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
) -> SimIssue {
    let mut i = SimIssue::new(id, key, summary);
    let (status, cat) = match category {
        "todo" => ("To Do", "new"),
        "in_progress" => ("In Progress", "indeterminate"),
        _ => ("Done", "done"),
    };
    i.status = status.into();
    i.status_category = cat.into();
    i.story_points = points;
    i.labels = labels.iter().map(|s| s.to_string()).collect();
    i.created = updated - chrono::Duration::days(1);
    i.updated = updated;
    i.resolved = resolved;
    i
}

pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "okrsync failed: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// An engine served by the real `Application` on 127.0.0.1, and a client.
pub struct Served {
    pub base: String,
    pub http: reqwest::Client,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Syncs the Jira source once, then serves the engine on port 0.
    pub async fn start(env: &TestEnv) -> Served {
        let engine = env.engine().await;
        engine
            .sync_source("jira", okrsync::sync::Mode::Full)
            .await
            .expect("sync");
        let app = okrsync::server::Application::build(engine, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("build");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(app.run_until_stopped(stopped));
        Served {
            base,
            http: reqwest::Client::new(),
            stop,
            server,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get")
    }

    pub async fn page(&self, path: &str) -> (u16, String) {
        let resp = self.get(path).await;
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    pub async fn stop(self) {
        self.stop.send(true).expect("stop");
        self.server.await.expect("join").expect("server");
    }
}

/// The `X-Hub-Signature-256` value of `body` under `secret` (HMAC-SHA256, as GitHub and
/// okrsync's webhooks use it).
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    okrsync::server::hook_signature(secret.as_bytes(), body)
}
