//! The sync benchmark: 100,000 Jira issues through the real `okrsync` binary.
//!
//! It starts the simulated Jira on 127.0.0.1 with generated issues (ten projects, epics with
//! children, labels, story points, a realistic mix of done / in progress / to do), writes a
//! config with a dozen key results and their rules into a temporary folder, and measures
//! what the spine promised (issue 2: "design for 100,000 items per source"):
//!
//! 1. the first (full) sync: wall time, items per second, requests, peak memory (VmHWM of
//!    the `okrsync sync` process), and the same for a tenth of the items, so memory that
//!    grows with the item count shows;
//! 2. a sync with nothing changed upstream: one request, nothing written;
//! 3. a sync after 1% of the issues changed: time and key results recomputed;
//! 4. a full reconcile pass with nothing changed;
//! 5. the reports (`status`, `explain`, `moves`, `unaligned`, `allocation` as commands, and
//!    the API and dashboard pages of `okrsync run`, median of several requests, and the
//!    first `/metrics` scrape after a sync step);
//! 6. a recompute: the OKR file replaced by a larger organisation's (100 KRs, 500 rules,
//!    `rules.rs`), so the next `okrsync sync` matches every item again and recomputes every
//!    KR; then the same command with nothing changed, and after a one-rule edit;
//! 7. the API under load: 100 concurrent keep-alive clients over a dashboard's mix of
//!    reads for 10 s, then 10 clients on the heavy reports (`load.rs`);
//! 8. webhook → readable: 1,000 signed `jira:issue_updated` hooks, one at a time, each
//!    after an issue moved to done, timed until the KR's new value shows (`hooks.rs`).
//!
//! Every table shows issue 12's target beside its figure (✓/✗); all figures also go into
//! `target/bench-sync-<database>-<items>.json` (the path is printed).
//!
//!    cargo bench --bench sync                        # 100,000 items on SQLite
//!    cargo bench --bench sync -- --items 20000
//!    cargo bench --bench sync -- --database-url postgres://postgres@127.0.0.1:5432/postgres
//!    cargo bench --bench sync -- --rules 500 --clients 100 --load-secs 10 --webhooks 1000
//!    cargo bench --bench sync -- --heavy-clients 10 --json /tmp/figures.json
//!    OKRSYNC_BENCH_KEEP=1 cargo bench --bench sync    # keep the folder (database, daemon logs)
//!
//! With a PostgreSQL URL a fresh database is created beside the one named and dropped at
//! the end. Under `cargo test` (no `--bench` argument) it runs a small smoke version and
//! checks the invariants (one request when nothing changed, nothing written, every item
//! fetched; the recompute changed KRs, no request failed under load, every webhook's value
//! showed), with small versions of the later steps (50 rules, 10 clients for 1 s, 20
//! webhooks), so the benchmark cannot rot unnoticed. It prints figures; it never fails on
//! speed.

mod figures;
mod hooks;
mod load;
mod rules;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as Days, Utc};
use okrsync::simulator::dataset::{generate, key_of, millis, move_forward, okrs, pick, PROJECTS};
use okrsync::simulator::jira::{JiraSim, JiraSimOptions};
use serde_json::json;

use figures::{kib_to_mib, ms, target_col, Percentiles, Report, Target};

const TOKEN: &str = "bench-token";
const API_TOKEN: &str = "bench-api-token";
const HOOK_SECRET: &str = "bench-hook-secret";

struct Args {
    items: usize,
    changed: usize,
    database_url: Option<String>,
    smoke: bool,
    /// Rules in the recompute step's OKR file (five KRs per 25 rules).
    rules: usize,
    /// Concurrent clients of the API load test, and how long it runs.
    clients: usize,
    load_secs: u64,
    /// Concurrent clients on the heavy reports.
    heavy_clients: usize,
    /// Webhook events, one after another.
    webhooks: usize,
    /// Where the JSON goes (default: target/bench-sync-<database>-<items>.json).
    json: Option<PathBuf>,
}

fn number(it: &mut std::slice::Iter<'_, String>, name: &str) -> Result<usize> {
    it.next()
        .with_context(|| format!("{name} needs a number"))?
        .parse()
        .with_context(|| format!("{name} needs a number"))
}

fn args() -> Result<Args> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !raw.iter().any(|a| a == "--bench");
    let mut a = Args {
        items: if smoke { 3_000 } else { 100_000 },
        changed: 0,
        database_url: std::env::var("OKRSYNC_BENCH_DATABASE_URL").ok(),
        smoke,
        rules: if smoke { 50 } else { 500 },
        clients: if smoke { 10 } else { 100 },
        load_secs: if smoke { 1 } else { 10 },
        heavy_clients: if smoke { 2 } else { 10 },
        webhooks: if smoke { 20 } else { 1_000 },
        json: None,
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--items" => a.items = number(&mut it, "--items")?,
            "--rules" => a.rules = number(&mut it, "--rules")?,
            "--clients" => a.clients = number(&mut it, "--clients")?,
            "--load-secs" => a.load_secs = number(&mut it, "--load-secs")? as u64,
            "--heavy-clients" => a.heavy_clients = number(&mut it, "--heavy-clients")?,
            "--webhooks" => a.webhooks = number(&mut it, "--webhooks")?,
            "--json" => {
                a.json = Some(it.next().context("--json needs a path")?.into());
            }
            "--database-url" => {
                a.database_url = Some(it.next().context("--database-url needs a URL")?.clone());
            }
            // libtest-style arguments cargo may pass (filters, --nocapture): not ours.
            _ => {}
        }
    }
    if a.items < 100 {
        bail!("--items must be at least 100");
    }
    if a.rules < 10 {
        bail!("--rules must be at least 10");
    }
    a.changed = (a.items / 100).max(1);
    Ok(a)
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    /// The database URL the config names.
    database: String,
}

impl Setup {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The OKR period: from 30 days before `now` to 60 days after.
fn period(now: DateTime<Utc>) -> (String, String) {
    (
        (now - Days::days(30)).format("%Y-%m-%d").to_string(),
        (now + Days::days(60)).format("%Y-%m-%d").to_string(),
    )
}

fn write_config(sim: &JiraSim, database: &str, jql: &str, now: DateTime<Utc>) -> Result<Setup> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let database = if database == "sqlite" {
        format!("sqlite://{}", dir.path().join("okrsync.db").display())
    } else {
        database.to_string()
    };
    let config = dir.path().join("okrsync.toml");
    std::fs::create_dir_all(dir.path().join("okrs"))?;
    std::fs::write(dir.path().join("jira-token"), TOKEN)?;
    std::fs::write(dir.path().join("api-token"), API_TOKEN)?;
    std::fs::write(dir.path().join("hook-secret"), HOOK_SECRET)?;
    // `every = "1h"`: the daemon's scheduler runs a step when one interval has passed
    // since the last one, or at once after a webhook; so in `okrsync run` only the start
    // and the webhooks cause steps.
    std::fs::write(
        &config,
        format!(
            r#"okrs = ["okrs/*.toml"]

[server]
listen = "127.0.0.1:{port}"
api_token_file = "api-token"

[database]
url = "{database}"

[log]
format = "json"
level = "warn"

[sources.jira]
kind = "jira"
url = "{url}"
flavor = "cloud"
email = "bench@example.com"
token_file = "jira-token"
webhook_secret_file = "hook-secret"
jql = "{jql}"
every = "1h"
freshness = "1d"
story_points_field = "customfield_10016"
page_size = 100
requests_per_second = 1000
"#,
            url = sim.base_url(),
        ),
    )?;
    let (start, end) = period(now);
    std::fs::write(dir.path().join("okrs/bench.toml"), okrs(&start, &end))?;
    Ok(Setup {
        dir,
        config,
        port,
        database,
    })
}

/// The first row's columns of `sql`, as integers (SQLite or PostgreSQL).
async fn scalars(url: &str, sql: &str) -> Result<Vec<i64>> {
    use sqlx::{Connection, Row};
    let row_values = |row: &dyn Fn(usize) -> Result<i64, sqlx::Error>, n: usize| {
        (0..n)
            .map(|i| row(i).with_context(|| format!("column {i} of {sql}")))
            .collect::<Result<Vec<i64>>>()
    };
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        let row = sqlx::query(sql)
            .fetch_one(&mut conn)
            .await
            .with_context(|| sql.to_string())?;
        row_values(&|i| row.try_get::<i64, _>(i), row.len())
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let row = sqlx::query(sql)
            .fetch_one(&mut conn)
            .await
            .with_context(|| sql.to_string())?;
        row_values(&|i| row.try_get::<i64, _>(i), row.len())
    }
}

/// The evidence ledger's size: evidence rows, snapshots, and the bytes of its three tables
/// with their indexes.
async fn ledger_size(url: &str) -> Result<(i64, i64, i64)> {
    use sqlx::Connection;
    let count = "SELECT (SELECT COUNT(*) FROM kr_evidence), (SELECT COUNT(*) FROM kr_snapshots)";
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await?;
        let (evidence, snapshots): (i64, i64) = sqlx::query_as(count).fetch_one(&mut conn).await?;
        // The ledger's own pages (tables and indexes), from SQLite's dbstat table.
        let (bytes,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ('kr_evidence', \
             'kr_evidence_kr', 'kr_scope', 'sqlite_autoindex_kr_scope_1', 'kr_snapshots', \
             'kr_snapshots_kr')",
        )
        .fetch_one(&mut conn)
        .await?;
        Ok((evidence, snapshots, bytes))
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let (evidence, snapshots): (i64, i64) = sqlx::query_as(count).fetch_one(&mut conn).await?;
        let (bytes,): (i64,) = sqlx::query_as(
            "SELECT (pg_total_relation_size('kr_evidence') + pg_total_relation_size('kr_snapshots') \
             + pg_total_relation_size('kr_scope'))::BIGINT",
        )
        .fetch_one(&mut conn)
        .await?;
        Ok((evidence, snapshots, bytes))
    }
}

/// What one run of the binary cost.
struct Measured {
    wall: Duration,
    /// User + system CPU of the okrsync process (its threads on every core).
    cpu_s: f64,
    peak_rss_kib: u64,
    stdout: String,
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat` (in
/// clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) start at the state (3rd).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The machine's load averages (1, 5, 15 minutes), to tell a shared machine's figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU time (user + system) of this process's children waited for so far, from
/// `/proc/self/stat` (`cutime`, `cstime`, in clock ticks of 1/100 s).
fn children_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(13) + tick(14)) / 100.0
}

/// Runs `okrsync --config CONFIG ARGS…`, sampling its peak memory while it runs; its CPU
/// is what the children's times grew by once it is waited for (no other child of the
/// benchmark ends meanwhile: the daemon is not running during these commands).
fn okrsync(config: &Path, args: &[&str]) -> Result<Measured> {
    let cpu_before = children_cpu_secs();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting okrsync")?;
    let pid = child.id();
    // Drain both pipes while the process runs: a report larger than a pipe's buffer
    // would otherwise block it forever.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    // The peak memory is sampled beside the wait, not between polls of it: the wall time
    // is taken the moment the process ends (a poll every 10 ms added 5 ms on average to
    // every figure, a twentieth of the 1% step's).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // Below a megabyte it is the forked child before `exec`, not okrsync yet.
                if let Some(hwm) = vm_hwm(pid).filter(|k| *k >= 1024) {
                    peak = peak.max(hwm);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let status = child.wait();
    let wall = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0);
    let status = status?;
    let cpu_s = (children_cpu_secs() - cpu_before).max(0.0);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    // OKRSYNC_BENCH_LOGS=DIR keeps what each command logged, numbered in the order run
    // (with OKRSYNC__LOG__LEVEL=debug, every statement and its time: docs/benchmarks.md).
    if let Some(dir) = std::env::var_os("OKRSYNC_BENCH_LOGS") {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{n:02}-{}.log", args.join("_").replace(['/', ' '], ""));
        if let Err(e) = std::fs::write(Path::new(&dir).join(&name), &stderr) {
            println!("  !! cannot keep the log {name}: {e}");
        }
    }
    if !status.success() {
        bail!(
            "okrsync {} exited with {status}:\n{stdout}\n{stderr}",
            args.join(" ")
        );
    }
    Ok(Measured {
        wall,
        cpu_s,
        peak_rss_kib: peak,
        stdout,
    })
}

/// The counts `okrsync sync` prints for one source:
/// `jira: ok (full, 100 fetched, 100 changed, 0 deleted, 2 requests, 3 key results changed)`.
#[derive(Debug, Default, Clone, Copy)]
struct StepCounts {
    fetched: u64,
    changed: u64,
    deleted: u64,
    requests: u64,
    krs_changed: u64,
}

fn step_counts(stdout: &str) -> Result<StepCounts> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("jira: ok ("))
        .with_context(|| format!("no successful jira step in:\n{stdout}"))?;
    let inner = line.trim_start_matches("jira: ok (").trim_end_matches(')');
    let mut c = StepCounts::default();
    for part in inner.split(", ").skip(1) {
        let (n, what) = part.split_once(' ').context("a count")?;
        let n: u64 = n.parse().with_context(|| format!("a count in {line}"))?;
        match what {
            "fetched" => c.fetched = n,
            "changed" => c.changed = n,
            "deleted" => c.deleted = n,
            "requests" => c.requests = n,
            "key results changed" => c.krs_changed = n,
            _ => {}
        }
    }
    Ok(c)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mib(kib: u64) -> String {
    if kib == 0 {
        return "(too quick)".into();
    }
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A step's row: time, counts, memory, and the targets that apply to it.
fn row(
    rep: &mut Report,
    what: &str,
    m: &Measured,
    c: &StepCounts,
    time: Option<Target>,
    rss: Option<Target>,
) {
    let wall = m.wall.as_secs_f64();
    let rss_mib = kib_to_mib(m.peak_rss_kib);
    let rss = rss.filter(|_| m.peak_rss_kib > 0);
    let target = [time.map(|t| t.show(wall)), rss.map(|t| t.show(rss_mib))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{what:<34} {:>10} {:>8.2} s {:>10} {:>9} {:>9} {:>9} {:>12}  {target}",
        secs(m.wall),
        m.cpu_s,
        c.fetched,
        c.changed,
        c.requests,
        c.krs_changed,
        mib(m.peak_rss_kib)
    );
    if let Some(t) = time {
        rep.target(&format!("{what}: time"), wall, t);
    }
    if let Some(t) = rss {
        rep.target(&format!("{what}: peak RSS"), rss_mib, t);
    }
    rep.push(
        "steps",
        json!({
            "step": what,
            "time_s": wall,
            "cpu_s": m.cpu_s,
            "fetched": c.fetched,
            "changed": c.changed,
            "deleted": c.deleted,
            "requests": c.requests,
            "krs_changed": c.krs_changed,
            "peak_rss_mib": (m.peak_rss_kib > 0).then_some(rss_mib),
            "target_time": time.map(|t| t.json(wall)),
            "target_peak_rss": rss.map(|t| t.json(rss_mib)),
        }),
    );
}
/// Checks an invariant: a smoke run fails on it, a benchmark run only says so.
fn expect(smoke: bool, ok: bool, what: String) -> Result<()> {
    if ok {
        return Ok(());
    }
    if smoke {
        bail!("benchmark invariant broken: {what}");
    }
    println!("  !! {what}");
    Ok(())
}

/// A fresh PostgreSQL database next to the one `admin_url` names; dropped by `drop_db`.
async fn create_db(admin_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {admin_url}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn drop_db(admin_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// An untimed `okrsync sync` of a copy of `setup`'s database as it is now (SQLite:
/// `VACUUM INTO` a new file; PostgreSQL: a database made from it as a template), dropped
/// afterwards: it fills the in-process simulator's page cache with the pages the next
/// timed sync of `setup` asks for.
async fn warm_copy(sim: &JiraSim, setup: &Setup, jql: &str, now: DateTime<Utc>) -> Result<()> {
    use sqlx::Connection;
    if setup.database.starts_with("sqlite:") {
        let warm = write_config(sim, "sqlite", jql, now)?;
        let path = warm.database.trim_start_matches("sqlite://").to_string();
        let mut conn = sqlx::SqliteConnection::connect(&setup.database).await?;
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        okrsync(&warm.config, &["sync"]).context("the warm-up sync")?;
        return Ok(());
    }
    // The copy is made from the server's maintenance database: a template must have no
    // sessions.
    let mut admin = url::Url::parse(&setup.database)?;
    let from = admin.path().trim_start_matches('/').to_string();
    admin.set_path("/postgres");
    let admin = admin.to_string();
    let name = format!("okrsync_bench_warm_{}", std::process::id());
    // The first sync's warm-up database, when it was kept.
    drop_db(&admin, &name).await?;
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    // The template must have no sessions: the last okrsync's may still be closing.
    let mut tries = 0;
    loop {
        let made = sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {from}"))
            .execute(&mut conn)
            .await;
        match made {
            Ok(_) => break,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("copying the database for the warm-up"),
        }
    }
    conn.close().await?;
    let warm = write_config(
        sim,
        &setup
            .database
            .replace("okrsync_bench_", "okrsync_bench_warm_"),
        jql,
        now,
    )?;
    okrsync(&warm.config, &["sync"]).context("the warm-up sync")?;
    drop_db(&admin, &name).await?;
    if let Err(e) = checkpoint(&admin).await {
        println!("  !! no CHECKPOINT after the warm-up (it needs a superuser): {e:#}");
    }
    Ok(())
}

/// `CHECKPOINT` on the PostgreSQL server (needs a superuser, as the benchmark's URL is).
async fn checkpoint(admin_url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    Ok(())
}

async fn median_get(http: &reqwest::Client, url: &str, times: usize) -> Result<(Duration, usize)> {
    let mut took = Vec::with_capacity(times);
    let mut size = 0;
    for _ in 0..times {
        let started = Instant::now();
        let resp = http.get(url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        took.push(started.elapsed());
        if !status.is_success() {
            bail!("GET {url}: {status}");
        }
        size = body.len();
    }
    took.sort();
    Ok((took[took.len() / 2], size))
}

/// `okrsync run` on a setup's config, stopped with SIGTERM when dropped (so it releases its
/// lease: a killed daemon's lease would keep the next one from syncing for up to a minute);
/// its log (JSON, level warn) goes to a file in the setup's folder.
struct Daemon {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits until the scheduler holds the source's lease (and has
    /// run its start-up step, if one was due).
    async fn start(setup: &Setup, http: &reqwest::Client, name: &str) -> Result<Daemon> {
        let log = setup.dir.path().join(format!("daemon-{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&setup.config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting okrsync run")?;
        let mut d = Daemon {
            child,
            base: setup.base(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = d.child.try_wait()? {
                bail!("okrsync run exited with {status}:\n{}", d.log_tail());
            }
            let sources = async {
                let r = http
                    .get(format!("{}/api/v1/sources", d.base))
                    .send()
                    .await?;
                anyhow::Ok(r.json::<serde_json::Value>().await?)
            };
            // The holder is `host:pid`.
            let mine = format!(":{}", d.child.id());
            if let Ok(doc) = sources.await {
                let holder = doc["sources"][0]["lease_holder"].as_str().unwrap_or("");
                if holder.ends_with(&mine) {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "okrsync run did not become ready within 120 s:\n{}",
                    d.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The lease is taken just before a due step starts: let it finish (an unchanged
        // incremental step takes tens of milliseconds).
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(d)
    }

    /// The peak memory of the daemon so far (VmHWM).
    fn peak_rss_kib(&self) -> u64 {
        vm_hwm(self.child.id()).unwrap_or(0)
    }

    /// The last lines of its log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Lines of its log at level error.
    fn errors(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM (graceful: the lease is released), SIGKILL after 20 s.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_reports(rep: &mut Report, setup: &Setup, smoke: bool) -> Result<()> {
    let http = reqwest::Client::new();
    let daemon = Daemon::start(setup, &http, "reports").await?;
    let base = daemon.base.clone();
    let times = if smoke { 3 } else { 11 };
    println!();
    println!(
        "{:<44} {:>10} {:>10}  target",
        "okrsync run (median; cached after the first)", "time", "bytes"
    );
    for path in [
        "/api/v1/objectives",
        "/api/v1/key-results/pay.roadmap",
        "/api/v1/moves?selector=project=PAY",
        "/api/v1/unaligned",
        "/api/v1/allocation",
        "/api/v1/allocation?weeks=1&format=csv",
        "/metrics",
        "/",
        "/kr/pay.roadmap",
        "/moves?q=project%3DPAY",
        "/unaligned",
        "/allocation",
    ] {
        let (took, size) = median_get(&http, &format!("{base}{path}"), times).await?;
        let what = format!("GET {path}");
        println!("{what:<44} {:>7.1} ms {:>10}", ms(took), size);
        rep.push(
            "http",
            json!({
                "request": what,
                "median_ms": ms(took),
                "of": times,
                "bytes": size,
                "cached": "every request after the first in a data version is served from the response cache",
            }),
        );
    }
    // The targets are for a document computed, not for one served from the response cache:
    // the first request after a sync step (which changes the data version) pays for it. So
    // per round a step through the API, then one request, a few rounds per document.
    let rounds = if smoke { 2 } else { 5 };
    println!();
    println!(
        "{:<44} {:>10} {:>10}  target",
        "first request after a sync step (median)", "time", "bytes"
    );
    for path in ["/api/v1/unaligned", "/unaligned", "/metrics"] {
        let mut first = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let resp = http
                .post(format!("{base}/api/v1/sync"))
                .bearer_auth(API_TOKEN)
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            if !status.is_success() {
                bail!("POST /api/v1/sync: {status} {text}");
            }
            let started = Instant::now();
            let resp = http.get(format!("{base}{path}")).send().await?;
            let status = resp.status();
            size = resp.bytes().await?.len();
            first.push(started.elapsed());
            if !status.is_success() {
                bail!("GET {path}: {status}");
            }
        }
        let p = Percentiles::of(first);
        let what = format!("GET {path}, first after a sync step");
        let target = Target::Millis(100.0);
        println!(
            "{:<44} {:>7.1} ms {:>10}  {} (median of {rounds}; max {:.1} ms)",
            what,
            ms(p.p50),
            size,
            target.show(ms(p.p50)),
            ms(p.max)
        );
        rep.target(&what, ms(p.p50), target);
        rep.push(
            "http",
            json!({
                "request": what,
                "median_ms": ms(p.p50),
                "max_ms": ms(p.max),
                "of": rounds,
                "bytes": size,
                "target": target.json(ms(p.p50)),
            }),
        );
    }
    expect(
        smoke,
        daemon.errors() == 0,
        format!("okrsync run logged errors:\n{}", daemon.log_tail()),
    )?;
    Ok(())
}

/// The epics' keys per project, as `generate` made them.
fn epics_of(issues: &[okrsync::simulator::jira::SimIssue]) -> BTreeMap<String, Vec<String>> {
    let mut epics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in issues.iter().filter(|i| i.issue_type == "Epic") {
        epics
            .entry(i.project.clone())
            .or_default()
            .push(i.key.clone());
    }
    epics
}

/// Replaces the OKR file with a larger organisation's (`rules.rs`) and times the `okrsync
/// sync` that notices: it matches every item again and recomputes every KR before its
/// step (an incremental one with nothing new upstream: one request, or a few while the
/// issues of the 1% step are inside the overlap window). Then the same command with
/// nothing changed (what the recompute costs is the difference), and after a one-rule edit.
async fn recompute(
    rep: &mut Report,
    a: &Args,
    setup: &Setup,
    epics: &BTreeMap<String, Vec<String>>,
    now: DateTime<Utc>,
) -> Result<rules::Plan> {
    let (start, end) = period(now);
    let objectives = (a.rules / 25).max(1);
    let plan = rules::many_okrs(&start, &end, objectives, a.rules, a.items, epics, false);
    let edited = rules::many_okrs(&start, &end, objectives, a.rules, a.items, epics, true);
    let file = setup.dir.path().join("okrs/bench.toml");
    println!();
    println!(
        "recompute: the OKR file replaced by {} objectives, {} KRs and {} rules ({} exempt), {} kB",
        plan.objectives,
        plan.krs,
        plan.rules,
        plan.exempt,
        plan.text.len() / 1000
    );
    println!(
        "{:<34} {:>10} {:>9} {:>9} {:>9} {:>10} {:>12}  target",
        "okrsync sync", "time", "requests", "changed", "KRs", "items", "peak RSS"
    );
    let db = &setup.database;
    let target = Target::Secs(1.0);
    let mut walls = Vec::new();
    for (what, text) in [
        (
            format!("{} rules replace the 11", plan.rules),
            Some(&plan.text),
        ),
        ("nothing changed (same command)".to_string(), None),
        (
            format!("one rule of {} edited", plan.rules),
            Some(&edited.text),
        ),
    ] {
        if let Some(text) = text {
            std::fs::write(&file, text)?;
        }
        let snap0 = scalars(db, "SELECT COALESCE(MAX(id), 0) FROM kr_snapshots").await?[0];
        let m = okrsync(&setup.config, &["sync"])?;
        let c = step_counts(&m.stdout)?;
        // KRs with a new snapshot, and items that entered or left a KR's scope (or changed
        // category in it), from the evidence ledger.
        let changed = scalars(
            db,
            &format!(
                "SELECT (SELECT COUNT(DISTINCT kr_id) FROM kr_snapshots WHERE id > {snap0}), \
                 (SELECT COUNT(*) FROM (SELECT DISTINCT source, ext_id FROM kr_evidence \
                 WHERE snapshot_id > {snap0}) AS t)"
            ),
        )
        .await?;
        let (krs, items) = (changed[0], changed[1]);
        let time = text.is_some().then_some(target);
        let wall = m.wall.as_secs_f64();
        println!(
            "{what:<34} {:>10} {:>9} {:>9} {:>9} {:>10} {:>12}  {}",
            secs(m.wall),
            c.requests,
            c.changed,
            krs,
            items,
            mib(m.peak_rss_kib),
            target_col(time, wall)
        );
        if let Some(t) = time {
            rep.target(&format!("recompute, {what}: time"), wall, t);
        }
        rep.push(
            "recompute",
            json!({
                "step": what,
                "time_s": wall,
                "requests": c.requests,
                "items_changed_upstream": c.changed,
                "krs_with_new_snapshot": krs,
                "items_entering_leaving_or_changing": items,
                "peak_rss_mib": (m.peak_rss_kib > 0).then_some(kib_to_mib(m.peak_rss_kib)),
                "target_time": time.map(|t| t.json(wall)),
            }),
        );
        // Nothing changed upstream; the step may still read a few pages: the overlap window
        // (2 minutes before the cursor) brings back the issues edited by the 1% step.
        expect(
            a.smoke,
            c.changed == 0 && c.krs_changed == 0,
            format!(
                "{what}: the step itself changed {} items and {} KRs",
                c.changed, c.krs_changed
            ),
        )?;
        expect(
            a.smoke,
            (text.is_some()) == (krs > 0),
            format!("{what}: {krs} KRs got a new snapshot"),
        )?;
        walls.push(m.wall);
    }
    let counts = scalars(
        db,
        "SELECT (SELECT COUNT(*) FROM matches), \
         (SELECT COUNT(*) FROM items WHERE exempt_rule IS NOT NULL), \
         (SELECT COUNT(DISTINCT ext_id) FROM matches)",
    )
    .await?;
    let alone = walls[0].saturating_sub(walls[1]);
    println!(
        "the recompute alone (difference with nothing changed): {}; now {} matches ({} items in a KR), {} items exempt",
        secs(alone),
        counts[0],
        counts[2],
        counts[1]
    );
    rep.set(
        "recompute_summary",
        json!({
            "objectives": plan.objectives,
            "krs": plan.krs,
            "rules": plan.rules,
            "exempt_rules": plan.exempt,
            "recompute_alone_s": alone.as_secs_f64(),
            "matches": counts[0],
            "items_in_a_kr": counts[2],
            "items_exempt": counts[1],
        }),
    );
    // The later steps run on the replaced OKRs (the unedited ones).
    std::fs::write(&file, &plan.text)?;
    okrsync(&setup.config, &["sync"])?;
    Ok(plan)
}

fn load_table(
    rep: &mut Report,
    section: &str,
    title: &str,
    endpoints: &[load::Endpoint],
    r: &load::LoadResult,
    target: Option<Target>,
) {
    println!();
    println!(
        "{title}: {} clients for {}, {} requests ({:.0}/s), {} errors",
        r.clients,
        secs(r.elapsed),
        r.requests(),
        r.rate(),
        r.errors()
    );
    println!(
        "{:<44} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9}  target",
        "request", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut per = Vec::new();
    for (e, (took, errors)) in endpoints.iter().zip(&r.per_endpoint) {
        let p = Percentiles::of(took.clone());
        println!(
            "{:<44} {:>8} {:>6} {}",
            e.label,
            took.len() + errors,
            errors,
            p.columns()
        );
        let mut j = p.json();
        j["request"] = json!(e.label);
        j["errors"] = json!(errors);
        per.push(j);
    }
    let all = Percentiles::of(r.all());
    println!(
        "{:<44} {:>8} {:>6} {}  {}",
        "all",
        r.requests(),
        r.errors(),
        all.columns(),
        target
            .map(|t| format!("p99 {}", t.show(ms(all.p99))))
            .unwrap_or_default()
    );
    for f in &r.failures {
        println!("  !! {f}");
    }
    if let Some(t) = target {
        rep.target(&format!("{title}: p99"), ms(all.p99), t);
    }
    let mut j = all.json();
    j["errors"] = json!(r.errors());
    rep.set(
        section,
        json!({
            "clients": r.clients,
            "seconds": r.elapsed.as_secs_f64(),
            "requests": r.requests(),
            "requests_per_second": r.rate(),
            "errors": r.errors(),
            "all": j,
            "target_p99": target.map(|t| t.json(ms(all.p99))),
            "endpoints": per,
        }),
    );
}

/// The API under load: `okrsync run` on the synced database, a dashboard audience's reads
/// from many keep-alive clients, then the heavy reports from a few.
async fn api_load(rep: &mut Report, a: &Args, setup: &Setup, small: &str) -> Result<()> {
    let http = reqwest::Client::new();
    let daemon = Daemon::start(setup, &http, "load").await?;
    let base = daemon.base.clone();
    let doc: serde_json::Value = http
        .get(format!("{base}/api/v1/key-results/{small}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let small_items = doc["items"].as_array().map_or(0, Vec::len);
    let e = |label: String, path: String, weight: usize| load::Endpoint {
        label,
        path,
        weight,
    };
    let light = vec![
        e(
            "GET /api/v1/objectives".into(),
            "/api/v1/objectives".into(),
            5,
        ),
        e("GET / (overview)".into(), "/".into(), 4),
        e(
            format!("GET /api/v1/key-results/{small}"),
            format!("/api/v1/key-results/{small}"),
            3,
        ),
        e(format!("GET /kr/{small}"), format!("/kr/{small}"), 3),
        e("GET /api/v1/sources".into(), "/api/v1/sources".into(), 3),
        e("GET /healthz".into(), "/healthz".into(), 2),
    ];
    println!();
    println!(
        "the KR read under load: {small}, a milestone KR of {small_items} items; the load generator runs on the same cores as okrsync"
    );
    let timeout = Duration::from_secs(10);
    let cpu = || (cpu_secs(&daemon.child.id().to_string()), cpu_secs("self"));
    let before = cpu();
    let r = load::run(
        &base,
        &light,
        a.clients,
        Duration::from_secs(a.load_secs),
        timeout,
    )
    .await?;
    let after = cpu();
    load_table(
        rep,
        "api_load",
        "API under load (a dashboard's reads)",
        &light,
        &r,
        Some(Target::Millis(20.0)),
    );
    let (okrsync_cpu, generator_cpu) = (after.0 - before.0, after.1 - before.1);
    println!(
        "CPU while it ran: okrsync {okrsync_cpu:.1} s, load generator {generator_cpu:.1} s, of {:.1} s on {} cores (load average {})",
        r.elapsed.as_secs_f64() * cores() as f64,
        cores(),
        loadavg()
    );
    rep.set(
        "api_load_context",
        json!({
            "small_kr": small,
            "small_kr_items": small_items,
            "okrsync_cpu_s": okrsync_cpu,
            "load_generator_cpu_s": generator_cpu,
            "cores": cores(),
            "loadavg": loadavg(),
        }),
    );
    expect(
        a.smoke,
        r.errors() == 0 && r.requests() > 0,
        format!(
            "{} of {} requests failed under load",
            r.errors(),
            r.requests()
        ),
    )?;
    let heavy = vec![
        e(
            "GET /api/v1/unaligned".into(),
            "/api/v1/unaligned".into(),
            1,
        ),
        e("GET /unaligned".into(), "/unaligned".into(), 1),
        e(
            "GET /api/v1/allocation".into(),
            "/api/v1/allocation".into(),
            1,
        ),
        e(
            "GET /api/v1/moves?selector=project=PAY".into(),
            "/api/v1/moves?selector=project=PAY".into(),
            1,
        ),
    ];
    let r = load::run(
        &base,
        &heavy,
        a.heavy_clients,
        Duration::from_secs(a.load_secs),
        Duration::from_secs(120),
    )
    .await?;
    load_table(
        rep,
        "api_heavy",
        "heavy reports under load (no target: each alone is in the table above)",
        &heavy,
        &r,
        None,
    );
    expect(
        a.smoke,
        r.errors() == 0 && r.requests() > 0,
        format!("{} of {} heavy requests failed", r.errors(), r.requests()),
    )?;
    let rss = daemon.peak_rss_kib();
    println!("okrsync run peak memory (VmHWM) after both: {}", mib(rss));
    rep.set("api_daemon_peak_rss_mib", json!(kib_to_mib(rss)));
    expect(
        a.smoke,
        daemon.errors() == 0,
        format!(
            "okrsync run logged errors under load:\n{}",
            daemon.log_tail()
        ),
    )?;
    Ok(())
}

/// Webhook → readable (`hooks.rs`), with the daemon's steps counted from `sync_runs`.
async fn webhooks(
    rep: &mut Report,
    a: &Args,
    sim: &JiraSim,
    setup: &Setup,
    plan: &rules::Plan,
) -> Result<()> {
    let http = reqwest::Client::new();
    let daemon = Daemon::start(setup, &http, "webhooks").await?;
    let base = daemon.base.clone();
    let candidates = hooks::candidates(&http, &base, &plan.completion, a.webhooks).await?;
    expect(
        a.smoke,
        candidates.len() == a.webhooks,
        format!(
            "only {} in-progress items in the completion KRs for {} webhooks",
            candidates.len(),
            a.webhooks
        ),
    )?;
    let db = &setup.database;
    let run0 = scalars(db, "SELECT COALESCE(MAX(id), 0) FROM sync_runs").await?[0];
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    let r = hooks::run(sim, &base, HOOK_SECRET, &candidates, timeout).await?;
    let wall = started.elapsed();
    let steps = scalars(
        db,
        &format!(
            "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(fetched), 0) AS BIGINT), CAST(COALESCE(MAX(fetched), 0) AS BIGINT), \
             CAST(COALESCE(SUM(changed), 0) AS BIGINT), CAST(COALESCE(SUM(requests), 0) AS BIGINT), \
             CAST(COALESCE(SUM(krs_changed), 0) AS BIGINT) \
             FROM sync_runs WHERE id > {run0} AND source = 'jira'"
        ),
    )
    .await?;
    let (n, failed, fetched, max_fetched, changed, requests, krs) = (
        steps[0], steps[1], steps[2], steps[3], steps[4], steps[5], steps[6],
    );
    let per = |x: i64| x as f64 / n.max(1) as f64;
    let readable = Percentiles::of(r.readable.clone());
    let accepted = Percentiles::of(r.accepted.clone());
    let target = Target::Millis(250.0);
    println!();
    println!(
        "webhook → readable: {} events one after another in {} ({} items; POST /hooks/jira, then GET /api/v1/objectives every 2 ms until the KR's value changes; timeout {} s)",
        candidates.len(),
        secs(wall),
        a.items,
        timeout.as_secs()
    );
    println!(
        "{:<44} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9}  target",
        "", "events", "failed", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<44} {:>8} {:>6} {}",
        "POST /hooks/jira answered (202)",
        r.accepted.len() + r.refused,
        r.refused,
        accepted.columns()
    );
    println!(
        "{:<44} {:>8} {:>6} {}  p99 {}",
        "POST sent → new value readable",
        r.readable.len() + r.timeouts,
        r.timeouts,
        readable.columns(),
        target.show(ms(readable.p99))
    );
    // The overlap window (2 minutes) brings every issue edited since back into each step:
    // the first events and the last ones, apart.
    let tenth = (r.readable.len() / 10).max(1);
    let first = Percentiles::of(r.readable[..tenth.min(r.readable.len())].to_vec());
    let last = Percentiles::of(r.readable[r.readable.len().saturating_sub(tenth)..].to_vec());
    for (label, p) in [("first", &first), ("last", &last)] {
        println!(
            "{:<44} {:>8} {:>6} {}",
            format!("  the {label} {tenth} events"),
            p.n,
            "",
            p.columns()
        );
    }
    for f in &r.failures {
        println!("  !! {f}");
    }
    println!(
        "the daemon ran {n} steps ({failed} failed) for {} events: per step {:.1} issues fetched (max {max_fetched}), {:.2} changed, {:.2} requests, {:.2} KRs changed",
        candidates.len(),
        per(fetched),
        per(changed),
        per(requests),
        per(krs)
    );
    rep.target("webhook → readable: p99", ms(readable.p99), target);
    let mut readable_json = readable.json();
    readable_json["timeouts"] = json!(r.timeouts);
    let mut accepted_json = accepted.json();
    accepted_json["refused"] = json!(r.refused);
    rep.set(
        "webhooks",
        json!({
            "events": candidates.len(),
            "seconds": wall.as_secs_f64(),
            "readable": readable_json,
            "readable_first_tenth": first.json(),
            "readable_last_tenth": last.json(),
            "accepted": accepted_json,
            "target_p99": target.json(ms(readable.p99)),
            "steps": n,
            "failed_steps": failed,
            "fetched_per_step": per(fetched),
            "max_fetched": max_fetched,
            "changed_per_step": per(changed),
            "requests_per_step": per(requests),
            "krs_changed_per_step": per(krs),
            "daemon_peak_rss_mib": kib_to_mib(daemon.peak_rss_kib()),
        }),
    );
    expect(
        a.smoke,
        r.timeouts == 0 && r.refused == 0 && failed == 0 && n > 0,
        format!(
            "webhooks: {} timed out, {} refused, {failed} of {n} steps failed",
            r.timeouts, r.refused
        ),
    )?;
    expect(
        a.smoke,
        daemon.errors() == 0,
        format!(
            "okrsync run logged errors during the webhooks:\n{}",
            daemon.log_tail()
        ),
    )?;
    Ok(())
}

async fn bench(
    rep: &mut Report,
    a: &Args,
    sim: &JiraSim,
    database: &str,
    epics: &BTreeMap<String, Vec<String>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let projects = PROJECTS.join(", ");
    let all = write_config(sim, database, &format!("project in ({projects})"), now)?;

    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>12}  target",
        "step", "time", "CPU", "fetched", "changed", "requests", "KRs", "peak RSS"
    );
    let first_target = if database == "sqlite" {
        Target::Secs(3.0)
    } else {
        Target::Secs(5.0)
    };

    // A tenth of the items (one project) in its own database: memory must not grow with
    // the item count.
    let tenth_db = if database == "sqlite" {
        "sqlite".to_string()
    } else {
        database.replace("okrsync_bench_", "okrsync_bench_tenth_")
    };
    let tenth = write_config(sim, &tenth_db, "project = PAY", now)?;
    let m = okrsync(&tenth.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row(rep, "first sync, one project", &m, &c, None, None);
    let tenth_rss = m.peak_rss_kib;

    // The simulated Jira runs in this process, on the same two cores: an untimed first
    // sync into a database of its own fills its page cache with the pages the timed one
    // asks for, so what is timed is okrsync's work, not the server's serializing of them
    // (a real Jira does that on its own machines).
    let warm_db = if database == "sqlite" {
        "sqlite".to_string()
    } else {
        database.replace("okrsync_bench_", "okrsync_bench_warm_")
    };
    let warm = write_config(sim, &warm_db, &format!("project in ({projects})"), now)?;
    okrsync(&warm.config, &["sync"]).context("the warm-up sync")?;
    drop(warm);
    if let Some(admin) = a.database_url.as_deref() {
        // The warm-up's 100,000 rows are still being written out by PostgreSQL's
        // background writer and vacuumed: drop them and flush first, so the timed sync
        // does not share the disk and the cores with that.
        drop_db(admin, &format!("okrsync_bench_warm_{}", std::process::id())).await?;
        checkpoint(admin).await?;
    }

    let m = okrsync(&all.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row(
        rep,
        "first sync, every project",
        &m,
        &c,
        Some(first_target),
        Some(Target::MiB(64.0)),
    );
    expect(
        a.smoke,
        c.fetched == a.items as u64,
        format!("the first sync fetched {} of {} issues", c.fetched, a.items),
    )?;
    let full_rss = m.peak_rss_kib;
    let rate = a.items as f64 / m.wall.as_secs_f64();
    let ledger_first = ledger_size(&all.database).await?;

    let m = okrsync(&all.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row(rep, "nothing changed upstream", &m, &c, None, None);
    expect(
        a.smoke,
        c.requests == 1 && c.changed == 0 && c.krs_changed == 0,
        format!(
            "an unchanged source cost {} requests, {} changed items, {} KRs",
            c.requests, c.changed, c.krs_changed
        ),
    )?;

    // 1% of the issues move forward (to do → in progress, in progress → done).
    let later = millis(Utc::now());
    for id in pick(a.items, a.changed, 7) {
        sim.edit(&key_of(id), |i| move_forward(i, later));
    }
    let ledger_before = ledger_size(&all.database).await?;
    // As before the first sync: an untimed sync of a copy of the database as it is now
    // asks the simulator for the pages the timed one will, so their serializing (a real
    // Jira's work, on its own machines) is not on the cores while the step is timed.
    warm_copy(sim, &all, &format!("project in ({projects})"), now).await?;
    let m = okrsync(&all.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row(
        rep,
        &format!("{} issues changed (1%)", a.changed),
        &m,
        &c,
        Some(Target::Secs(0.1)),
        None,
    );
    let ledger_after = ledger_size(&all.database).await?;
    expect(
        a.smoke,
        c.changed <= a.changed as u64 && c.changed > 0,
        format!("{} changed issues were seen as {}", a.changed, c.changed),
    )?;

    let m = okrsync(&all.config, &["sync", "--full"])?;
    let c = step_counts(&m.stdout)?;
    row(rep, "full reconcile, nothing changed", &m, &c, None, None);
    expect(
        a.smoke,
        c.changed == 0 && c.deleted == 0 && c.krs_changed == 0,
        format!(
            "a reconcile with no change wrote {} items, deleted {}",
            c.changed, c.deleted
        ),
    )?;

    println!();
    println!(
        "first sync: {rate:.0} issues/s; peak memory {} for {} issues vs {} for a tenth",
        mib(full_rss),
        a.items,
        mib(tenth_rss)
    );
    // The evidence ledger: what the first sync recorded (every item entering its KRs, and
    // the reconstructed history), and what a step of changes adds.
    let (rows, snaps, bytes) = ledger_first;
    let (added_rows, added_bytes) = (
        ledger_after.0 - ledger_before.0,
        (ledger_after.2 - ledger_before.2).max(0),
    );
    let per_row = if added_rows > 0 {
        added_bytes as f64 / added_rows as f64
    } else {
        0.0
    };
    let first_per_row = if rows > 0 {
        bytes as f64 / rows as f64
    } else {
        0.0
    };
    println!(
        "ledger after the first sync: {rows} evidence rows, {snaps} snapshots, {} ({first_per_row:.0} bytes/row, tables and indexes)",
        mib(bytes as u64 / 1024),
    );
    println!(
        "ledger growth for {} changed issues: +{added_rows} evidence rows, +{} snapshots, +{:.1} KiB ({per_row:.0} bytes/row)",
        a.changed,
        ledger_after.1 - ledger_before.1,
        added_bytes as f64 / 1024.0,
    );
    // A year: every hour a step like the one above (an upper bound: 1% of the items change
    // category every hour), and the ordinary life of an item (it enters, starts, is done).
    let hourly = added_rows as f64 * 24.0 * 365.0;
    println!(
        "a year of hourly steps like it: +{:.1}M evidence rows ≈ {}; each item entering, starting and finishing once: {}",
        hourly / 1e6,
        mib((hourly * first_per_row / 1024.0) as u64),
        mib((a.items as f64 * 3.0 * first_per_row / 1024.0) as u64)
    );
    rep.set(
        "first_sync",
        json!({
            "items_per_second": rate,
            "peak_rss_mib": kib_to_mib(full_rss),
            "peak_rss_tenth_mib": kib_to_mib(tenth_rss),
        }),
    );
    rep.set(
        "ledger",
        json!({
            "evidence_rows_after_first_sync": rows,
            "snapshots_after_first_sync": snaps,
            "bytes_after_first_sync": bytes,
            "changed_issues": a.changed,
            "evidence_rows_added": added_rows,
            "snapshots_added": ledger_after.1 - ledger_before.1,
            "bytes_added": added_bytes,
        }),
    );

    println!();
    println!(
        "{:<44} {:>10} {:>12} {:>9}  target",
        "command (whole process)", "time", "peak RSS", "covers"
    );
    for args in [
        vec!["status", "--json"],
        vec!["explain", "pay.roadmap", "--json"],
        vec!["unaligned", "--json"],
        vec!["allocation", "--json"],
        vec!["allocation", "--weeks", "--json"],
        vec!["allocation", "--by", "objective", "--json"],
        vec!["moves", "project=PAY", "--json"],
        vec!["moves", "label=perf", "--json"],
    ] {
        let m = okrsync(&all.config, &args)?;
        let doc: serde_json::Value = serde_json::from_str(&m.stdout)
            .with_context(|| format!("okrsync {} printed no JSON", args.join(" ")))?;
        // How many items the document covers (objectives for `status`).
        let covers = match args[0] {
            "status" => doc["objectives"].as_array().map_or(0, Vec::len),
            "moves" => doc["items"].as_u64().unwrap_or(0) as usize,
            // The items the allocation weighs (each item once, in its project's row).
            "allocation" if args.contains(&"objective") => {
                doc["rows"].as_array().map_or(0, Vec::len)
            }
            "allocation" => doc["rows"].as_array().map_or(0, |rows| {
                rows.iter()
                    .map(|r| r["items"].as_u64().unwrap_or(0) as usize)
                    .sum()
            }),
            _ => doc["items"].as_array().map_or(0, Vec::len),
        };
        let what = format!("okrsync {}", args.join(" "));
        let target = (args == ["allocation", "--json"]).then_some(Target::Millis(200.0));
        let took = ms(m.wall);
        println!(
            "{what:<44} {:>10} {:>12} {:>9}  {}",
            secs(m.wall),
            mib(m.peak_rss_kib),
            covers,
            target_col(target, took)
        );
        if let Some(t) = target {
            rep.target(&what, took, t);
        }
        rep.push(
            "commands",
            json!({
                "command": what,
                "time_s": m.wall.as_secs_f64(),
                "peak_rss_mib": (m.peak_rss_kib > 0).then_some(kib_to_mib(m.peak_rss_kib)),
                "covers": covers,
                "target": target.map(|t| t.json(took)),
            }),
        );
    }

    http_reports(rep, &all, a.smoke).await?;
    drop(tenth.dir);

    let plan = recompute(rep, a, &all, epics, now).await?;
    api_load(rep, a, &all, &plan.small).await?;
    webhooks(rep, a, sim, &all, &plan).await?;
    if std::env::var_os("OKRSYNC_BENCH_KEEP").is_some() {
        println!("kept {} (OKRSYNC_BENCH_KEEP)", all.dir.keep().display());
    }
    Ok(())
}

async fn on_postgres(
    rep: &mut Report,
    a: &Args,
    sim: &JiraSim,
    admin: &str,
    epics: &BTreeMap<String, Vec<String>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let name = format!("okrsync_bench_{}", std::process::id());
    let tenth = format!("okrsync_bench_tenth_{}", std::process::id());
    let warm = format!("okrsync_bench_warm_{}", std::process::id());
    let url = create_db(admin, &name).await?;
    create_db(admin, &tenth).await?;
    create_db(admin, &warm).await?;
    println!("database: PostgreSQL, fresh database {name}\n");
    let r = bench(rep, a, sim, &url, epics, now).await;
    drop_db(admin, &name).await?;
    drop_db(admin, &tenth).await?;
    drop_db(admin, &warm).await?;
    r
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let now = millis(Utc::now());
    let generated = Instant::now();
    let sim = JiraSim::start(JiraSimOptions {
        token: TOKEN.into(),
        email: "bench@example.com".into(),
        ..JiraSimOptions::default()
    })
    .await?;
    let issues = generate(a.items, now);
    let epics = epics_of(&issues);
    sim.upsert_all(issues);
    println!(
        "okrsync sync benchmark: {} Jira issues ({}), simulated Jira at {} (generated in {})",
        a.items,
        if a.smoke {
            "smoke run under cargo test"
        } else {
            "release build"
        },
        sim.base_url(),
        secs(generated.elapsed())
    );
    println!(
        "{} cores, load average {} (other jobs on the machine inflate every figure)",
        cores(),
        loadavg()
    );

    // The smoke run covers both backends when the test suite has a PostgreSQL server.
    let mut targets: Vec<Option<String>> = match &a.database_url {
        Some(url) => vec![Some(url.clone())],
        None => vec![None],
    };
    if a.smoke && a.database_url.is_none() {
        match std::env::var("OKRSYNC_TEST_DATABASE_URL") {
            Ok(url) => targets.push(Some(url)),
            Err(_) => eprintln!("SKIPPED sync benchmark smoke run on PostgreSQL: OKRSYNC_TEST_DATABASE_URL is not set"),
        }
    }
    let mut result = Ok(());
    for target in targets {
        let kind = if target.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let mut rep = Report::new(a.items, kind, a.smoke);
        let r = match target {
            None => {
                println!("database: SQLite in a temporary folder\n");
                bench(&mut rep, &a, &sim, "sqlite", &epics, now).await
            }
            Some(admin) => on_postgres(&mut rep, &a, &sim, &admin, &epics, now).await,
        };
        if r.is_err() {
            result = r;
            break;
        }
        rep.set("loadavg_at_end", json!(loadavg()));
        rep.set("cores", json!(cores()));
        rep.print_targets();
        let path = a
            .json
            .clone()
            .unwrap_or_else(|| figures::default_path(kind, a.items, a.smoke));
        rep.write(&path)?;
        println!("figures written to {}", path.display());
        // The next backend starts from the same upstream state.
        sim.upsert_all(generate(a.items, now));
        println!();
    }
    sim.stop().await;
    result
}
