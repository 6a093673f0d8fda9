//! `okrsync run` as a service: the real binary, stopped and reloaded with real signals,
//! several replicas on one PostgreSQL database, readiness while PostgreSQL stops and
//! starts again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use okrsync::store::Store;

use crate::helpers::{
    free_port, issue, minute, postgres_url, skip_notice, Db, SourceOpts, TestEnv,
};

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
id = "pay"
kr = "o.done"
[rule.match]
project = "PAY"
"#;

/// A running `okrsync run`; killed (by its own pid) if the test ends without stopping it.
pub(crate) struct Daemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(config: &Path, log_dir: &Path, env: &[(&str, String)]) -> Daemon {
        let port = free_port();
        let log = log_dir.join(format!("okrsync-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrsync"));
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .env("OKRSYNC__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .env_remove("OKRSYNC_NOW")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start okrsync run");
        Daemon { child, port, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Waits (bounded) until `/readyz` answers `want`.
    pub(crate) async fn wait_ready(&mut self, want: u16, within: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("okrsync exited ({status}) early; log:\n{}", self.log());
            }
            match http.get(self.url("/readyz")).send().await {
                Ok(r) if r.status().as_u16() == want => return,
                Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "/readyz did not answer {want} within {within:?} (last: {last}); log:\n{}",
            self.log()
        );
    }

    /// SIGKILL: no chance to finish anything (bounded wait for the exit).
    pub(crate) fn kill(self) {
        self.signal("KILL");
        let _ = self.stop_after_signal(Duration::from_secs(10));
    }

    /// SIGTERM, then the exit status (bounded).
    pub(crate) fn stop(self, within: Duration) -> (std::process::ExitStatus, Duration) {
        self.signal("TERM");
        self.stop_after_signal(within)
    }

    /// The exit status (bounded) after a stop signal was sent.
    fn stop_after_signal(mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let asked = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return (s, asked.elapsed());
            }
            assert!(
                asked.elapsed() < within,
                "okrsync did not stop within {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

fn seed(env: &TestEnv) {
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
}

fn with_every(env: &TestEnv, every: &str) {
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace("every = \"1m\"", &format!("every = \"{every}\"")),
    )
    .expect("write config");
}

async fn store_of(env: &TestEnv) -> Store {
    Store::connect(&env.settings().database)
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_rules_and_keeps_them_when_the_new_ones_are_broken() {
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    seed(&env);
    let mut d = Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, Duration::from_secs(30)).await;
    let title = || async {
        let doc = get_json(&d.url("/api/v1/objectives")).await;
        (
            doc["objectives"][0]["key_results"][0]["title"].clone(),
            doc["objectives"][0]["key_results"][0]["items"].clone(),
        )
    };
    // Wait for the first step's numbers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while title().await.1 != serde_json::json!(2) {
        assert!(
            Instant::now() < deadline,
            "no first sync; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken rules file: a rule for a KR that does not exist, and a bad measure.
    let okrs = env.dir.path().join("okrs/test.toml");
    std::fs::write(
        &okrs,
        OKRS.replace("kr = \"o.done\"", "kr = \"o.missing\"")
            .replace("measure = \"completion\"", "measure = \"vibes\""),
    )
    .expect("write");
    d.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal logged:\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d.log().contains("o.missing"),
        "the log says why:\n{}",
        d.log()
    );
    // Still serving, with the old rules and KRs.
    assert_eq!(
        title().await,
        (serde_json::json!("Finish the work"), serde_json::json!(2))
    );

    // A good change takes effect without a restart: the rule now matches only PAY-1.
    std::fs::write(
        &okrs,
        OKRS.replace("title = \"Finish the work\"", "title = \"Finish PAY-1\"")
            .replace("project = \"PAY\"", "project = \"PAY\"\nkey = \"PAY-1\""),
    )
    .expect("write");
    d.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = title().await;
        if now == (serde_json::json!("Finish PAY-1"), serde_json::json!(1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload not applied ({now:?}); log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = d.stop(Duration::from_secs(20));
    assert!(status.success());
}

/// SIGTERM while a step waits on a slow upstream: with a short shutdown timeout the step
/// is rolled back; with a long one it finishes. Either way the store is whole.
async fn sigterm_during_a_sync_step_leaves_the_store_consistent(db: Db) {
    for (timeout, finishes) in [("300ms", false), ("20s", true)] {
        let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
        seed(&env);
        env.sim.set_latency(Duration::from_millis(1500));
        let d = Daemon::start(
            &env.config,
            env.dir.path(),
            &[("OKRSYNC__SERVER__SHUTDOWN_TIMEOUT", timeout.to_string())],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while env.sim.arrived() == 0 {
            assert!(Instant::now() < deadline, "no request; log:\n{}", d.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The step is under way: its first search waits in the simulator.
        let log = d.log.clone();
        let (status, took) = d.stop(Duration::from_secs(30));
        let log = std::fs::read_to_string(log).unwrap_or_default();
        assert!(status.success(), "exit {status}; log:\n{log}");
        let store = store_of(&env).await;
        let runs = store.recent_runs(Some("jira"), 10).await.expect("runs");
        let items: i64 = store
            .item_counts()
            .await
            .expect("counts")
            .iter()
            .map(|(_, n)| n)
            .sum();
        let state = store.source_state("jira").await.expect("state");
        if finishes {
            assert_eq!(runs.len(), 1, "log:\n{log}");
            assert_eq!(runs[0].outcome, "ok");
            assert_eq!(items, 2);
            assert!(state.and_then(|s| s.cursor).is_some());
        } else {
            assert!(took < Duration::from_secs(5), "took {took:?}");
            assert!(log.contains("rolling them back"), "log:\n{log}");
            assert_eq!((runs.len(), items), (0, 0), "a half step was stored");
            assert!(state.and_then(|s| s.cursor).is_none());
        }
        // The KR matches what is stored: no value without items, or the full value.
        let kr = store.kr_state("o.done").await.expect("kr");
        let current = kr.and_then(|k| k.current);
        if finishes {
            assert_eq!(current, Some(1.0));
        } else {
            assert!(current.is_none_or(|c| c == 0.0), "{current:?}");
        }
    }
}
crate::both_backends!(sigterm_during_a_sync_step_leaves_the_store_consistent);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_second_replica() {
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    let mut first = Daemon::start(&env.config, env.dir.path(), &[]);
    first.wait_ready(200, Duration::from_secs(30)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .arg("run")
        .env(
            "OKRSYNC__SERVER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env_remove("OKRSYNC_NOW")
        .output()
        .expect("second run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("SQLite supports one replica") && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(":{}", first.pid())),
        "names the holder: {stderr}"
    );
    let (status, _) = first.stop(Duration::from_secs(20));
    assert!(status.success());
    // The lock goes with the process: a new daemon starts.
    let mut again = Daemon::start(&env.config, env.dir.path(), &[]);
    again.wait_ready(200, Duration::from_secs(30)).await;
    assert!(again.stop(Duration::from_secs(20)).0.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sync_each_interval_once_and_take_over_from_a_dead_one() {
    if postgres_url().is_none() {
        skip_notice(
            "service::three_replicas_sync_each_interval_once_and_take_over_from_a_dead_one",
        );
        return;
    }
    let env = TestEnv::new(Db::Postgres, OKRS, SourceOpts::default()).await;
    seed(&env);
    with_every(&env, "3s");
    let every = Duration::from_secs(3);
    let (tick, _ttl) = okrsync::sync::lease_timing(every);
    let mut replicas: Vec<Daemon> = (0..3)
        .map(|_| Daemon::start(&env.config, env.dir.path(), &[]))
        .collect();
    for r in &mut replicas {
        r.wait_ready(200, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let store = store_of(&env).await;
    let mut runs = store.recent_runs(Some("jira"), 100).await.expect("runs");
    runs.reverse();
    assert!(runs.len() >= 3, "{} runs in 10 s", runs.len());
    let holders: std::collections::BTreeSet<_> =
        runs.iter().filter_map(|r| r.replica.clone()).collect();
    assert_eq!(
        holders.len(),
        1,
        "one replica syncs the source: {holders:?}"
    );
    // A step's recorded start follows the lease check that made it due by a query or two;
    // on a loaded machine that delay varies by a few hundred ms between steps. A second
    // step in one interval would be far closer than this.
    let slack = Duration::from_millis(500);
    // Late by at most one check, plus a second for a loaded CI machine.
    let max_gap = every + tick + Duration::from_secs(1);
    for w in runs.windows(2) {
        let gap = (w[1].started_at - w[0].started_at)
            .to_std()
            .unwrap_or_default();
        assert!(gap + slack >= every, "two steps {gap:?} apart: {runs:#?}");
        assert!(gap <= max_gap, "a step was late ({gap:?}): {runs:#?}");
    }

    // Kill the lease holder outright: another replica takes over within one interval.
    let holder = store.leases().await.expect("leases")[0].holder.clone();
    let pid: u32 = holder
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("host:pid");
    let idx = replicas
        .iter()
        .position(|r| r.pid() == pid)
        .expect("the holder is one of ours");
    // Every replica serves the same view, including who syncs the source.
    for r in &replicas {
        let sources = get_json(&r.url("/api/v1/sources")).await;
        assert_eq!(
            sources["sources"][0]["lease_holder"],
            serde_json::json!(holder)
        );
    }
    let mut dead = replicas.remove(idx);
    let killed_at = Utc::now();
    dead.child.kill().expect("SIGKILL");
    let _ = dead.child.wait();
    let last_before = runs.last().expect("runs").started_at;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut after = store.recent_runs(Some("jira"), 100).await.expect("runs");
    after.reverse();
    let taken: Vec<_> = after
        .iter()
        .filter(|r| r.started_at > last_before)
        .collect();
    assert!(!taken.is_empty(), "nobody took over: {after:#?}");
    let first = taken[0];
    assert_ne!(first.replica.as_deref(), Some(holder.as_str()));
    let late = (first.started_at - killed_at).to_std().unwrap_or_default();
    // The lease lapses at most one interval minus a check after the last renewal, and
    // the next check takes it: within one interval (plus a second for a loaded machine).
    assert!(
        late <= every + Duration::from_secs(1),
        "took over {late:?} after the kill"
    );
    let gap = (first.started_at - last_before)
        .to_std()
        .unwrap_or_default();
    assert!(
        gap + slack >= every,
        "synced twice in one interval: {gap:?}"
    );
    let new_holder = store.leases().await.expect("leases")[0].holder.clone();
    assert_ne!(new_holder, holder);

    for r in replicas {
        let (status, _) = r.stop(Duration::from_secs(20));
        assert!(status.success());
    }
}

/// A PostgreSQL server of the test's own (initdb in a temp dir), so stopping it does not
/// disturb the other tests. Stopped when dropped.
pub(crate) struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn bin_dir() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        dirs.sort();
        dirs.pop()
    }

    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args).output().expect("run a PostgreSQL tool")
    }

    pub(crate) fn start_new() -> Option<OwnPostgres> {
        let bin = OwnPostgres::bin_dir()?;
        let dir = tempfile::tempdir().expect("dir");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let pg = OwnPostgres {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            as_postgres,
            _dir: dir,
        };
        let data = pg.data.display().to_string();
        let out = pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start();
        Some(pg)
    }

    pub(crate) fn start(&self) {
        let data = self.data.display().to_string();
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.data.display()
        );
        let log = format!("{data}/server.log");
        let out = self.run(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start on port {}: {}\nserver.log:\n{}",
            self.port,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub(crate) fn stop(&self) {
        let data = self.data.display().to_string();
        let out = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_postgresql_going_away_and_coming_back() {
    if postgres_url().is_none() {
        skip_notice("service::readiness_follows_postgresql_going_away_and_coming_back");
        return;
    }
    let Some(pg) = OwnPostgres::start_new() else {
        panic!("OKRSYNC_TEST_DATABASE_URL is set but no PostgreSQL server binaries (initdb) are installed");
    };
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    seed(&env);
    let mut d = Daemon::start(
        &env.config,
        env.dir.path(),
        &[("OKRSYNC__DATABASE__URL", pg.url())],
    );
    d.wait_ready(200, Duration::from_secs(30)).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let done = |doc: &serde_json::Value| doc["objectives"][0]["key_results"][0]["current"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = objectives(&http, &d).await;
        if done(&doc) == serde_json::json!(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first sync did not land: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pg.stop();
    d.wait_ready(503, Duration::from_secs(20)).await;
    // An API read while the database is gone answers (no hang, no crash) …
    let read = http
        .get(d.url("/api/v1/objectives"))
        .send()
        .await
        .expect("an answer while the database is gone");
    let read_status = read.status().as_u16();
    let read_body = read.text().await.unwrap_or_default();
    assert_eq!(read_status, 503, "{read_body}");
    assert!(read_body.contains("database is unreachable"), "{read_body}");
    // … and so does a sync asked for: it fails and says why.
    env.sim.edit("PAY-2", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(chrono::Utc::now());
    });
    let asked = http
        .post(d.url("/api/v1/sync"))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .expect("a sync asked for while the database is gone");
    assert!(
        !asked.status().is_success() || asked.text().await.unwrap_or_default().contains("fail"),
        "a sync without a database cannot succeed"
    );
    let why = reqwest::get(d.url("/readyz"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(why.contains("database unreachable"), "{why}");
    // Still alive, and still serving what does not need the database.
    assert_eq!(
        reqwest::get(d.url("/healthz")).await.expect("get").status(),
        200
    );
    pg.start();
    d.wait_ready(200, Duration::from_secs(30)).await;
    // Recovered without a restart: the next sync lands the change made meanwhile.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = http
            .post(d.url("/api/v1/sync"))
            .bearer_auth(crate::helpers::API_TOKEN)
            .send()
            .await;
        let doc = objectives(&http, &d).await;
        if done(&doc) == serde_json::json!(2.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sync landed after the database came back: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = d.log.clone();
    let (status, _) = d.stop(Duration::from_secs(30));
    assert!(
        status.success(),
        "log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_speaks_the_systemd_notify_protocol() {
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    seed(&env);
    let socket_path = env.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut d = Daemon::start(
        &env.config,
        env.dir.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.display().to_string()),
            // A 1 s watchdog: pings every 500 ms.
            ("WATCHDOG_USEC", "1000000".to_string()),
        ],
    );
    let mut seen: Vec<String> = Vec::new();
    let receive_until = |want: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
                if seen.last().is_some_and(|m| m.lines().any(|l| l == want)) {
                    return;
                }
            }
        }
        panic!("no {want} within 20 s; got {seen:?}");
    };
    receive_until("READY=1", &mut seen);
    d.wait_ready(200, Duration::from_secs(10)).await;
    receive_until("WATCHDOG=1", &mut seen);
    receive_until("WATCHDOG=1", &mut seen);
    d.signal("HUP");
    receive_until("RELOADING=1", &mut seen);
    receive_until("READY=1", &mut seen);
    d.signal("TERM");
    receive_until("STOPPING=1", &mut seen);
    let (status, _) = d.stop_after_signal(Duration::from_secs(20));
    assert!(status.success());
}

/// The daemon's `/api/v1/objectives` document (null when it does not answer JSON).
async fn objectives(http: &reqwest::Client, d: &Daemon) -> serde_json::Value {
    http.get(d.url("/api/v1/objectives"))
        .send()
        .await
        .expect("objectives")
        .json()
        .await
        .unwrap_or_default()
}

/// A signed Jira webhook makes the daemon sync now instead of at the end of its (long)
/// interval; unsigned or wrongly signed hooks are refused, and kinds without a secret
/// are disabled.
async fn a_signed_webhook_syncs_at_once(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    seed(&env);
    let secret = "hook-secret";
    std::fs::write(env.dir.path().join("hook-secret"), secret).expect("write");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace(
            "every = \"1m\"",
            "every = \"1h\"\nwebhook_secret_file = \"hook-secret\"",
        ),
    )
    .expect("write config");
    let mut d = Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, Duration::from_secs(30)).await;
    let items = || async {
        get_json(&d.url("/api/v1/objectives")).await["objectives"][0]["key_results"][0]["items"]
            .clone()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while items().await != serde_json::json!(2) {
        assert!(
            Instant::now() < deadline,
            "no first sync; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Jira gets a new issue; the next poll would be an hour away.
    env.seed([issue(
        3,
        "PAY-3",
        "C",
        "todo",
        None,
        &[],
        Utc::now() - chrono::Duration::seconds(1),
        None,
    )]);
    let http = reqwest::Client::new();
    let body = br#"{"timestamp":1,"webhookEvent":"jira:issue_created","issue":{"key":"PAY-3"}}"#;
    let post = |path: &str, signature: Option<String>| {
        let mut req = http
            .post(d.url(path))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("x-hub-signature", s);
        }
        async move { req.send().await.expect("post") }
    };
    assert_eq!(post("/hooks/jira", None).await.status(), 401);
    assert_eq!(
        post(
            "/hooks/jira",
            Some(crate::helpers::hub_signature("wrong", body))
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        post(
            "/hooks/github",
            Some(crate::helpers::hub_signature(secret, body))
        )
        .await
        .status(),
        403,
        "no github source has a webhook secret"
    );
    let accepted = post(
        "/hooks/jira",
        Some(crate::helpers::hub_signature(secret, body)),
    )
    .await;
    assert_eq!(accepted.status(), 202);
    let answer: serde_json::Value = accepted.json().await.expect("json");
    assert_eq!(answer["queued"], serde_json::json!(["jira"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while items().await != serde_json::json!(3) {
        assert!(
            Instant::now() < deadline,
            "the webhook did not trigger a sync; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = d.stop(Duration::from_secs(20));
    assert!(status.success());
}
crate::both_backends!(a_signed_webhook_syncs_at_once);
