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
//!    the API and dashboard pages of `okrsync run`, median of several requests).
//!
//!    cargo bench --bench sync                        # 100,000 items on SQLite
//!    cargo bench --bench sync -- --items 20000
//!    cargo bench --bench sync -- --database-url postgres://postgres@127.0.0.1:5432/postgres
//!
//! With a PostgreSQL URL a fresh database is created beside the one named and dropped at
//! the end. Under `cargo test` (no `--bench` argument) it runs a small smoke version and
//! checks the invariants (one request when nothing changed, nothing written, every item
//! fetched), so the benchmark cannot rot unnoticed. It prints figures; it never fails on
//! speed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as Days, Utc};
use okrsync::simulator::dataset::{generate, key_of, millis, move_forward, okrs, pick, PROJECTS};
use okrsync::simulator::jira::{JiraSim, JiraSimOptions};

const TOKEN: &str = "bench-token";

struct Args {
    items: usize,
    changed: usize,
    database_url: Option<String>,
    smoke: bool,
}

fn args() -> Result<Args> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let smoke = !raw.iter().any(|a| a == "--bench");
    let mut a = Args {
        items: if smoke { 3_000 } else { 100_000 },
        changed: 0,
        database_url: std::env::var("OKRSYNC_BENCH_DATABASE_URL").ok(),
        smoke,
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--items" => {
                a.items = it
                    .next()
                    .context("--items needs a number")?
                    .parse()
                    .context("--items needs a number")?;
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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
    std::fs::write(
        &config,
        format!(
            r#"okrs = ["okrs/*.toml"]

[server]
listen = "127.0.0.1:{port}"

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
    let start = (now - Days::days(30)).format("%Y-%m-%d").to_string();
    let end = (now + Days::days(60)).format("%Y-%m-%d").to_string();
    std::fs::write(dir.path().join("okrs/bench.toml"), okrs(&start, &end))?;
    Ok(Setup {
        dir,
        config,
        port,
        database,
    })
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
    peak_rss_kib: u64,
    stdout: String,
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `okrsync --config CONFIG ARGS…`, sampling its peak memory while it runs.
fn okrsync(config: &Path, args: &[&str]) -> Result<Measured> {
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
    let mut peak = 0;
    let status = loop {
        // Below a megabyte it is the forked child before `exec`, not okrsync yet.
        if let Some(hwm) = vm_hwm(pid).filter(|k| *k >= 1024) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "okrsync {} exited with {status}:\n{stdout}\n{stderr}",
            args.join(" ")
        );
    }
    Ok(Measured {
        wall,
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

fn row(what: &str, m: &Measured, c: &StepCounts) {
    println!(
        "{what:<34} {:>10} {:>10} {:>9} {:>9} {:>9} {:>12}",
        secs(m.wall),
        c.fetched,
        c.changed,
        c.requests,
        c.krs_changed,
        mib(m.peak_rss_kib)
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

async fn http_reports(setup: &Setup, smoke: bool) -> Result<()> {
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&setup.config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting okrsync run")?;
    let base = format!("http://127.0.0.1:{}", setup.port);
    let http = reqwest::Client::new();
    let result = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("okrsync run did not become ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let times = if smoke { 3 } else { 11 };
        println!();
        println!(
            "{:<44} {:>10} {:>10}",
            "okrsync run (median)", "time", "bytes"
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
            println!(
                "{:<44} {:>7.1} ms {:>10}",
                format!("GET {path}"),
                took.as_secs_f64() * 1e3,
                size
            );
        }
        Ok(())
    }
    .await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    result
}

async fn bench(a: &Args, sim: &JiraSim, database: &str, now: DateTime<Utc>) -> Result<()> {
    let projects = PROJECTS.join(", ");
    let all = write_config(sim, database, &format!("project in ({projects})"), now)?;

    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>9} {:>9} {:>12}",
        "step", "time", "fetched", "changed", "requests", "KRs", "peak RSS"
    );

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
    row("first sync, one project", &m, &c);
    let tenth_rss = m.peak_rss_kib;

    let m = okrsync(&all.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row("first sync, every project", &m, &c);
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
    row("nothing changed upstream", &m, &c);
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
    let m = okrsync(&all.config, &["sync"])?;
    let c = step_counts(&m.stdout)?;
    row(&format!("{} issues changed", a.changed), &m, &c);
    let ledger_after = ledger_size(&all.database).await?;
    expect(
        a.smoke,
        c.changed <= a.changed as u64 && c.changed > 0,
        format!("{} changed issues were seen as {}", a.changed, c.changed),
    )?;

    let m = okrsync(&all.config, &["sync", "--full"])?;
    let c = step_counts(&m.stdout)?;
    row("full reconcile, nothing changed", &m, &c);
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

    println!();
    println!(
        "{:<44} {:>10} {:>12}",
        "command (whole process)", "time", "peak RSS"
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
        println!(
            "{:<44} {:>10} {:>12} {:>9}",
            format!("okrsync {}", args.join(" ")),
            secs(m.wall),
            mib(m.peak_rss_kib),
            covers
        );
    }

    http_reports(&all, a.smoke).await?;
    drop(tenth.dir);
    drop(all.dir);
    Ok(())
}

async fn on_postgres(a: &Args, sim: &JiraSim, admin: &str, now: DateTime<Utc>) -> Result<()> {
    let name = format!("okrsync_bench_{}", std::process::id());
    let tenth = format!("okrsync_bench_tenth_{}", std::process::id());
    let url = create_db(admin, &name).await?;
    create_db(admin, &tenth).await?;
    println!("database: PostgreSQL, fresh database {name}\n");
    let r = bench(a, sim, &url, now).await;
    drop_db(admin, &name).await?;
    drop_db(admin, &tenth).await?;
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
    sim.upsert_all(generate(a.items, now));
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
        let r = match target {
            None => {
                println!("database: SQLite in a temporary folder\n");
                bench(&a, &sim, "sqlite", now).await
            }
            Some(admin) => on_postgres(&a, &sim, &admin, now).await,
        };
        if r.is_err() {
            result = r;
            break;
        }
        // The next backend starts from the same upstream state.
        sim.upsert_all(generate(a.items, now));
        println!();
    }
    sim.stop().await;
    result
}
