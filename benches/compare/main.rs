//! The comparison benchmark (issue 12): okrsync side by side with what a user would pick
//! instead, on the same simulated servers, in the same run.
//!
//! It starts the in-project simulators — Jira Cloud over TLS (a CA made for the run) with
//! 20,000 issues, GitHub with 20 repositories of 1,000 issues — and measures, interleaved,
//! three times:
//!
//! - okrsync's full sync (a fresh SQLite database each run; PostgreSQL too with
//!   `--database-url`) and, right after, its incremental sync (nothing changed upstream);
//! - the bare download of the same pages: a plain client that only reads the bodies, in
//!   Python (`http.client`, the issue's yardstick) and in Rust (reqwest on rustls, okrsync's
//!   TLS stack), one keep-alive connection, one request at a time;
//! - the peers, installed by the benchmark from PyPI into virtualenvs of its own under
//!   `target/compare-venv/`: `tap-jira==2.6.0` (Singer) against Jira and
//!   `airbyte-source-github==2.7.1` against GitHub, writing their JSON lines to a file.
//!
//! Each tool runs as its own process under `benches/compare/measure.py`, which reports its
//! wall time, CPU time (user + system, with its descendants) and peak RSS (getrusage of the
//! reaped children); the simulators count the requests and bytes. Every figure comes from a
//! run that got everything: okrsync must report every issue fetched, the bare download the
//! same requests and bytes as okrsync's full sync, the peers every issue as a record. It
//! prints a table of medians with the ratios and the issue's targets next to them, and writes
//! the same as JSON (`target/compare.json`). It never fails on speed.
//!
//!    cargo bench --bench compare
//!    cargo bench --bench compare -- --runs 3 --jira 20000 --repos 20 --per-repo 1000
//!    cargo bench --bench compare -- --database-url postgres://postgres@127.0.0.1:5432/postgres
//!    cargo bench --bench compare -- --no-peers      # okrsync and the bare downloads only
//!    cargo bench --bench compare -- --serve         # print each tool's command, keep serving
//!
//! docs/performance.md holds one run's table and what bounds each figure.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration as Days, Utc};
use okrsync::simulator::github::{GhIssue, GitHubSim};
use okrsync::simulator::jira::{JiraSim, JiraSimOptions, SimIssue};
use okrsync::simulator::tls::TestCa;
use serde::Deserialize;
use serde_json::{json, Value};

const MEASURE_PY: &str = include_str!("measure.py");
const BARE_DOWNLOAD_PY: &str = include_str!("bare_download.py");

const TAP_JIRA: &str = "tap-jira==2.6.0";
const AIRBYTE_GITHUB: &str = "airbyte-source-github==2.7.1";

const JIRA_EMAIL: &str = "bench@example.com";
const JIRA_TOKEN: &str = "jira-bench-token";
const GITHUB_TOKEN: &str = "ghp_benchtoken";

/// The issue's targets: okrsync at least this many times faster than the peer…
const JIRA_PEER_TARGET: f64 = 15.0;
const GITHUB_PEER_TARGET: f64 = 25.0;
/// …and at most this many times slower than the bare download of the same pages.
const BARE_TARGET: f64 = 2.0;

const PROJECTS: [&str; 10] = [
    "PAY", "WEB", "API", "OPS", "DATA", "MOB", "SEC", "INF", "GRO", "CRM",
];
const LABELS: [&str; 8] = [
    "emea",
    "checkout",
    "customer",
    "on-call",
    "perf",
    "infra",
    "growth",
    "tech-debt",
];
const PEOPLE: [&str; 12] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
    "Margaret Hamilton",
    "Niklaus Wirth",
    "Radia Perlman",
    "John Backus",
];
const TITLES: [&str; 12] = [
    "Round checkout totals once",
    "Gift cards in the EMEA checkout",
    "Retry budget for the payment sandbox",
    "502s from the edge at night",
    "Currency switch loses the cart",
    "Online migration of the orders table",
    "Header fallback for old mobile clients",
    "Load test before the release",
    "Conversion on the dashboard",
    "Error messages of the new flow",
    "Flag for the new checkout",
    "On-call workaround for the release",
];
const SENTENCES: [&str; 12] = [
    "Customers in the EMEA region see the old checkout when their cart holds a gift card.",
    "The payment provider's sandbox answers slowly, so the retry budget has to be raised.",
    "Acceptance: the new flow is behind a flag and the dashboard shows its conversion.",
    "Logs show a spike of 502s from the edge between 02:00 and 02:15 UTC on weekdays.",
    "We agreed in the planning meeting to ship the smallest useful slice first.",
    "See the linked design document for the states and the error messages.",
    "The migration must run online; the table has about forty million rows.",
    "Steps to reproduce: open the app, add two items, switch the currency, pay.",
    "Expected: the totals are rounded once, at the end. Actual: per line.",
    "Mobile clients older than 4.2 do not send the header, so keep the fallback.",
    "This blocks the quarterly release; the on-call engineer has a workaround.",
    "Measure before and after with the load test and attach the numbers here.",
];

#[derive(Debug, Clone)]
struct Args {
    runs: usize,
    jira: usize,
    repos: usize,
    per_repo: usize,
    database_url: Option<String>,
    peers: bool,
    github_tls: bool,
    /// Start the simulators, print how to run each tool against them, and wait (for
    /// profiling a tool by hand).
    serve: bool,
    python: String,
    timeout_secs: u64,
}

fn number(it: &mut std::slice::Iter<'_, String>, flag: &str) -> Result<usize> {
    it.next()
        .with_context(|| format!("{flag} needs a number"))?
        .parse()
        .with_context(|| format!("{flag} needs a number"))
}

fn args(raw: &[String]) -> Result<Args> {
    let mut a = Args {
        runs: 3,
        jira: 20_000,
        repos: 20,
        per_repo: 1_000,
        database_url: std::env::var("OKRSYNC_BENCH_DATABASE_URL").ok(),
        peers: true,
        github_tls: false,
        serve: false,
        python: "python3".into(),
        timeout_secs: 900,
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => a.runs = number(&mut it, "--runs")?,
            "--jira" => a.jira = number(&mut it, "--jira")?,
            "--repos" => a.repos = number(&mut it, "--repos")?,
            "--per-repo" => a.per_repo = number(&mut it, "--per-repo")?,
            "--timeout" => a.timeout_secs = number(&mut it, "--timeout")? as u64,
            "--database-url" => {
                a.database_url = Some(it.next().context("--database-url needs a URL")?.clone());
            }
            "--python" => a.python = it.next().context("--python needs a program")?.clone(),
            "--no-peers" => a.peers = false,
            "--github-tls" => a.github_tls = true,
            "--serve" => a.serve = true,
            // What cargo and libtest pass (`--bench`, filters): not ours.
            _ => {}
        }
    }
    if a.runs == 0 || a.jira < 100 || a.repos == 0 || a.per_repo < 10 {
        bail!("need --runs ≥ 1, --jira ≥ 100, --repos ≥ 1, --per-repo ≥ 10");
    }
    Ok(a)
}

/// A small deterministic generator (the same data on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
    fn text(&mut self, sentences: u64) -> String {
        (0..sentences)
            .map(|_| self.pick(&SENTENCES))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn secs_only(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// `n` Jira issues in ten projects: 2% epics, the rest stories, bugs and tasks under an
/// epic, 0–3 labels, story points, half done, 30% in progress; a one-sentence description
/// for 60%, a reporter, an assignee for most, a priority.
fn jira_issues(n: usize, now: DateTime<Utc>) -> Vec<SimIssue> {
    let mut rng = Lcg(42);
    let mut out = Vec::with_capacity(n);
    let mut epics: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut next_number: BTreeMap<&str, u64> = BTreeMap::new();
    for id in 1..=n as u64 {
        let project = PROJECTS[(id as usize) % PROJECTS.len()];
        let number = next_number.entry(project).or_insert(0);
        *number += 1;
        let key = format!("{project}-{number}");
        let is_epic = rng.below(50) == 0 || !epics.contains_key(project);
        let mut issue = SimIssue::new(id, &key, &format!("Work item {key}"));
        let created = ms(now - Days::minutes(60 * 24 * 20 + rng.below(60 * 24 * 40) as i64));
        issue.created = created;
        issue.updated = ms(created + Days::minutes(rng.below(60 * 24 * 19) as i64));
        if is_epic {
            issue.issue_type = "Epic".into();
            issue.summary = format!("Epic: {}", rng.pick(&TITLES));
            epics.entry(project).or_default().push(key.clone());
        } else {
            issue.issue_type = match rng.below(10) {
                0..=5 => "Story",
                6..=7 => "Bug",
                _ => "Task",
            }
            .into();
            issue.summary = rng.pick(&TITLES).to_string();
            let list = &epics[project];
            let epic = &list[rng.below(list.len() as u64) as usize];
            issue.parent = Some((epic.clone(), "Epic".into()));
            issue.story_points = Some((1 + rng.below(8)) as f64);
        }
        for _ in 0..rng.below(4) {
            let l = rng.pick(&LABELS).to_string();
            if !issue.labels.contains(&l) {
                issue.labels.push(l);
            }
        }
        issue.description = (rng.below(5) < 3).then(|| rng.text(1));
        issue.reporter = Some(rng.pick(&PEOPLE).into());
        if rng.below(10) < 8 {
            issue.assignee = Some(rng.pick(&PEOPLE).into());
        }
        issue.priority = Some(rng.pick(&["High", "Medium", "Medium", "Low"]).into());
        match rng.below(10) {
            0..=4 => {
                issue.status = "Done".into();
                issue.status_category = "done".into();
                issue.resolved = Some(issue.updated);
            }
            5..=7 => {
                issue.status = "In Progress".into();
                issue.status_category = "indeterminate".into();
            }
            _ => {}
        }
        out.push(issue);
    }
    out
}

fn repo_name(n: usize) -> String {
    format!("acme/service-{:02}", n + 1)
}

/// `repos` × `per_repo` GitHub issues and pull requests (a fifth): labels, an assignee for
/// 40%, a milestone for a tenth, a body of one to three sentences, 55% closed.
fn github_issues(repos: usize, per_repo: usize, now: DateTime<Utc>) -> Vec<(String, Vec<GhIssue>)> {
    let mut rng = Lcg(7);
    (0..repos)
        .map(|r| {
            let issues = (1..=per_repo as u64)
                .map(|number| {
                    let id = 2_000_000_000 + (r as u64) * 100_000 + number;
                    let mut i = GhIssue::new(id, number, rng.pick(&TITLES));
                    let created = secs_only(
                        now - Days::minutes(60 * 24 * 20 + rng.below(60 * 24 * 40) as i64),
                    );
                    i.created = created;
                    i.updated = secs_only(created + Days::minutes(rng.below(60 * 24 * 19) as i64));
                    i.pull_request = rng.below(5) == 0;
                    i.author = rng
                        .pick(&["octocat", "hubot", "monalisa", "defunkt", "mojombo"])
                        .into();
                    for _ in 0..rng.below(4) {
                        let l = rng.pick(&LABELS).to_string();
                        if !i.labels.contains(&l) {
                            i.labels.push(l);
                        }
                    }
                    if rng.below(5) < 2 {
                        i.assignee = Some(rng.pick(&["octocat", "hubot", "monalisa"]).into());
                    }
                    if rng.below(10) == 0 {
                        i.milestone = Some("2026-Q4".into());
                    }
                    let sentences = 1 + rng.below(3);
                    i.body = Some(rng.text(sentences));
                    i.comments = rng.below(6);
                    if rng.below(20) < 11 {
                        i.state = "closed".into();
                        i.closed = Some(i.updated);
                        if i.pull_request {
                            i.merged_at = Some(i.updated);
                        } else {
                            i.state_reason = Some("completed".into());
                        }
                    }
                    i
                })
                .collect();
            (repo_name(r), issues)
        })
        .collect()
}

/// OKRs for the Jira source: one completion KR per project (by labels), a count KR and a
/// sum KR across projects, an exempt rule.
fn jira_okrs(start: &str, end: &str) -> String {
    let mut s = format!(
        r#"[[objective]]
id = "company"
title = "Deliver the plan"
start = "{start}"
end = "{end}"

[[objective.kr]]
id = "quality.bugs"
title = "Close customer bugs"
measure = "count"
target = 2000

[[objective.kr]]
id = "quality.perf"
title = "Performance points"
measure = "sum"
target = 5000

[[rule]]
id = "customer-bugs"
kr = "quality.bugs"
[rule.match]
type = "Bug"
labels = "customer"

[[rule]]
id = "perf"
kr = "quality.perf"
[rule.match]
labels = ["perf", "tech-debt"]
type = {{ not = "Epic" }}

[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#
    );
    for p in PROJECTS {
        let id = p.to_lowercase();
        let _ = write!(
            s,
            r#"
[[objective]]
id = "delivery.{id}"
title = "{p} roadmap"
start = "{start}"
end = "{end}"
parent = "company"

[[objective.kr]]
id = "{id}.roadmap"
title = "{p} roadmap done"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "{id}-roadmap"
kr = "{id}.roadmap"
source = "jira"
[rule.match]
project = "{p}"
labels = ["emea", "checkout", "growth"]
type = {{ not = "Epic" }}
"#
        );
    }
    s
}

/// OKRs for the GitHub source: one completion KR per repository (by labels) and a count KR
/// of customer issues across them.
fn github_okrs(start: &str, end: &str, repos: usize) -> String {
    let mut s = format!(
        r#"[[objective]]
id = "platform"
title = "A platform customers trust"
start = "{start}"
end = "{end}"

[[objective.kr]]
id = "platform.customer"
title = "Close customer issues"
measure = "count"
target = 2000

[[rule]]
id = "customer"
kr = "platform.customer"
[rule.match]
labels = "customer"
"#
    );
    for r in 0..repos {
        let repo = repo_name(r);
        let id = format!("svc{:02}", r + 1);
        let _ = write!(
            s,
            r#"
[[objective]]
id = "{id}"
title = "{repo} roadmap"
start = "{start}"
end = "{end}"
parent = "platform"

[[objective.kr]]
id = "{id}.roadmap"
title = "{repo} roadmap done"
measure = "completion"

[[rule]]
id = "{id}-roadmap"
kr = "{id}.roadmap"
source = "github"
[rule.match]
project = "{repo}"
labels = ["emea", "checkout", "growth", "perf"]
"#
        );
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Jira,
    GitHub,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Jira => "jira",
            Source::GitHub => "github",
        }
    }
}

/// What the benchmark holds while it runs.
struct Bench {
    a: Args,
    work: tempfile::TempDir,
    ca_file: PathBuf,
    jira: JiraSim,
    github: GitHubSim,
    now: DateTime<Utc>,
    /// The first page URL of every listing okrsync's full sync reads (the bare downloads
    /// start from them).
    first_urls: BTreeMap<&'static str, Vec<String>>,
    /// okrsync's full sync of each source (SQLite), requests and bytes: what the bare
    /// downloads must match.
    okrsync_pages: BTreeMap<&'static str, (usize, u64)>,
    peers: Peers,
    counter: usize,
}

#[derive(Default)]
struct Peers {
    tap_jira: Option<Result<Peer, String>>,
    airbyte: Option<Result<Peer, String>>,
}

/// An installed peer: its virtualenv, what it runs, its config and catalog.
struct Peer {
    venv: PathBuf,
    version: String,
    /// The versions pip resolved for the dependencies that do the work (they are not
    /// pinned by the peer, so they are recorded with the figures).
    dependencies: Vec<(String, String)>,
    config: PathBuf,
    catalog: PathBuf,
}

/// What one run of one tool cost.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
    requests: usize,
    bytes: u64,
    items: Option<u64>,
    /// A bare download's own time from its first request to its last body (without the
    /// process start).
    download: Option<f64>,
    failure: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    status: i32,
    timed_out: bool,
    wall: f64,
    user: f64,
    sys: f64,
    maxrss_kib: u64,
}

impl Bench {
    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn fresh(&mut self, stem: &str) -> PathBuf {
        self.counter += 1;
        self.path(&format!("{stem}-{}", self.counter))
    }

    /// Starts counting requests and bytes at both simulators afresh.
    fn reset_counters(&self) -> (u64, u64) {
        self.jira.clear_requests();
        self.github.clear_requests();
        self.github.reset_rate_limit();
        (self.jira.bytes_served(), self.github.bytes_served())
    }

    fn counted(&self, source: Source, before: (u64, u64)) -> (usize, u64) {
        match source {
            Source::Jira => (
                self.jira.requests().len(),
                self.jira.bytes_served() - before.0,
            ),
            Source::GitHub => (
                self.github.requests().len(),
                self.github.bytes_served() - before.1,
            ),
        }
    }

    /// Runs `program args…` under measure.py, stdout and stderr to files.
    fn measure(
        &mut self,
        source: Source,
        program: &Path,
        args: &[OsString],
    ) -> Result<(Sample, PathBuf, PathBuf)> {
        let result = self.fresh("usage.json");
        let stdout = self.fresh("stdout");
        let stderr = self.fresh("stderr");
        let before = self.reset_counters();
        let status = Command::new(&self.a.python)
            .arg(self.path("measure.py"))
            .arg(&result)
            .arg(self.a.timeout_secs.to_string())
            .arg(program)
            .args(args)
            // Measured tools run without the CA bundle variables (see python_tool).
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .status()
            .with_context(|| format!("starting {} measure.py", self.a.python))?;
        if !status.success() {
            bail!("measure.py failed ({status}); see {}", stderr.display());
        }
        let usage: Usage = serde_json::from_str(&std::fs::read_to_string(&result)?)
            .context("measure.py's result")?;
        let (requests, bytes) = self.counted(source, before);
        let mut sample = Sample {
            wall: usage.wall,
            cpu: usage.user + usage.sys,
            rss_kib: usage.maxrss_kib,
            requests,
            bytes,
            items: None,
            download: None,
            failure: None,
        };
        if usage.timed_out {
            sample.failure = Some(format!("timed out after {} s", self.a.timeout_secs));
        } else if usage.status != 0 {
            sample.failure = Some(format!(
                "exit status {}: {}",
                usage.status,
                tail(&stderr, 6)
            ));
        }
        Ok((sample, stdout, stderr))
    }
}

/// The last lines of a file, for a failure's message.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    short(&all[all.len().saturating_sub(lines)..].join(" | "))
}

/// At most 400 characters of a message (a Python traceback can be a hundred lines).
fn short(text: &str) -> String {
    match text.char_indices().nth(400) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A peer's command. The CA bundle variables are removed: this machine's may point at the
/// system's bundle, which the airbyte CDK (it merges the environment into each request)
/// would then use instead of certifi's, where the run's CA is appended; tap-jira never
/// reads them.
fn python_tool(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    c
}

// ---------------------------------------------------------------------------------------
// okrsync

#[derive(Debug, Clone)]
enum Backend {
    Sqlite,
    /// The admin URL a fresh database is created beside.
    Postgres(String),
}

impl Backend {
    fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }
}

/// A fresh okrsync setup for one source: its own folder, config, OKRs and database.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    /// A PostgreSQL database to drop afterwards.
    pg: Option<(String, String)>,
}

async fn write_setup(b: &Bench, source: Source, backend: &Backend) -> Result<Setup> {
    let dir = tempfile::tempdir_in(b.work.path())?;
    let (database, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("okrsync.db").display()),
            None,
        ),
        Backend::Postgres(admin) => {
            let name = format!(
                "okrsync_bench_compare_{}_{}",
                std::process::id(),
                rand_suffix()
            );
            let url = create_db(admin, &name).await?;
            (url, Some((admin.clone(), name)))
        }
    };
    std::fs::create_dir_all(dir.path().join("okrs"))?;
    let start = (b.now - Days::days(30)).format("%Y-%m-%d").to_string();
    let end = (b.now + Days::days(60)).format("%Y-%m-%d").to_string();
    let source_config = match source {
        Source::Jira => {
            std::fs::write(dir.path().join("token"), JIRA_TOKEN)?;
            std::fs::write(dir.path().join("okrs/okrs.toml"), jira_okrs(&start, &end))?;
            format!(
                r#"[sources.jira]
kind = "jira"
url = "{url}"
flavor = "cloud"
email = "{JIRA_EMAIL}"
token_file = "token"
jql = "project in ({projects})"
every = "1h"
freshness = "1d"
story_points_field = "customfield_10016"
page_size = 100
requests_per_second = 1000
ca_file = "{ca}"
"#,
                url = b.jira.base_url(),
                projects = PROJECTS.join(", "),
                ca = b.ca_file.display(),
            )
        }
        Source::GitHub => {
            std::fs::write(dir.path().join("token"), GITHUB_TOKEN)?;
            std::fs::write(
                dir.path().join("okrs/okrs.toml"),
                github_okrs(&start, &end, b.a.repos),
            )?;
            let repos: Vec<String> = (0..b.a.repos)
                .map(|r| format!("\"{}\"", repo_name(r)))
                .collect();
            let ca = if b.a.github_tls {
                format!("ca_file = \"{}\"\n", b.ca_file.display())
            } else {
                String::new()
            };
            format!(
                r#"[sources.github]
kind = "github"
api_url = "{url}"
token_file = "token"
repos = [{repos}]
every = "1h"
freshness = "1d"
per_page = 100
requests_per_second = 1000
{ca}"#,
                url = b.github.api_url(),
                repos = repos.join(", "),
            )
        }
    };
    let config = dir.path().join("okrsync.toml");
    std::fs::write(
        &config,
        format!(
            r#"okrs = ["okrs/*.toml"]

[database]
url = "{database}"

[log]
format = "json"
level = "warn"

{source_config}"#
        ),
    )?;
    Ok(Setup { dir, config, pg })
}

fn rand_suffix() -> u64 {
    use rand::Rng;
    rand::rng().random_range(0..1_000_000_000)
}

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

/// The counts `okrsync sync` prints for one source:
/// `jira: ok (full, 100 fetched, 100 changed, 0 deleted, 2 requests, 3 key results changed)`.
fn fetched(stdout: &Path, source: Source) -> Result<u64> {
    let text = std::fs::read_to_string(stdout)?;
    let prefix = format!("{}: ok (", source.name());
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix))
        .with_context(|| format!("no successful {} step in: {text}", source.name()))?;
    line.trim_start_matches(&prefix)
        .trim_end_matches(')')
        .split(", ")
        .find_map(|part| part.strip_suffix(" fetched"))
        .context("no fetched count")?
        .parse()
        .context("the fetched count")
}

/// okrsync's full sync into a fresh database, then its incremental sync with nothing
/// changed upstream.
///
/// The measured processes are waited for on the main thread: the simulators answer them
/// from the runtime's worker threads.
async fn okrsync_pair(
    b: &mut Bench,
    source: Source,
    backend: &Backend,
) -> Result<(Sample, Sample)> {
    let setup = write_setup(b, source, backend).await?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_okrsync"));
    let sync_args: Vec<OsString> = vec![
        "--config".into(),
        setup.config.clone().into(),
        "sync".into(),
        "--source".into(),
        source.name().into(),
    ];
    let expected = match source {
        Source::Jira => b.a.jira as u64,
        Source::GitHub => (b.a.repos * b.a.per_repo) as u64,
    };
    let mut samples = Vec::new();
    for step in ["full", "incremental"] {
        let (mut s, stdout, _) = b.measure(source, &bin, &sync_args)?;
        if s.failure.is_none() {
            match fetched(&stdout, source) {
                Ok(n) => {
                    s.items = Some(n);
                    if step == "full" && n != expected {
                        s.failure = Some(format!("fetched {n} of {expected} issues"));
                    }
                }
                Err(e) => s.failure = Some(format!("{e:#}")),
            }
        }
        samples.push(s);
    }
    if let Some((admin, name)) = &setup.pg {
        drop_db(admin, name).await?;
    }
    drop(setup.dir);
    let incremental = samples.pop().context("two samples")?;
    let full = samples.pop().context("two samples")?;
    Ok((full, incremental))
}

/// An untimed okrsync full sync: it fills the simulators' page caches for okrsync's pages
/// and tells the bare downloads which listings to read.
async fn warm_up(b: &mut Bench, source: Source) -> Result<()> {
    let setup = write_setup(b, source, &Backend::Sqlite).await?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_okrsync"));
    let args: Vec<OsString> = vec![
        "--config".into(),
        setup.config.clone().into(),
        "sync".into(),
        "--source".into(),
        source.name().into(),
    ];
    let (s, _, _) = b.measure(source, &bin, &args)?;
    if let Some(f) = &s.failure {
        bail!("okrsync's warm-up {} sync failed: {f}", source.name());
    }
    let urls: Vec<String> = match source {
        Source::Jira => {
            let base = b.jira.base_url();
            b.jira
                .requests()
                .iter()
                .filter(|r| r.status == 200 && !r.query.contains("nextPageToken="))
                .map(|r| format!("{base}{}?{}", r.path, r.query))
                .collect()
        }
        Source::GitHub => {
            let base = b.github.api_url();
            let origin = base.trim_end_matches("/api/v3").to_string();
            b.github
                .requests()
                .iter()
                .filter(|r| {
                    r.status == 200 && r.path.ends_with("/issues") && !r.query.contains("after=")
                })
                .map(|r| format!("{origin}{}?{}", r.path, r.query))
                .collect()
        }
    };
    if urls.is_empty() {
        bail!("okrsync's {} sync read no listing", source.name());
    }
    b.okrsync_pages.insert(source.name(), (s.requests, s.bytes));
    b.first_urls.insert(source.name(), urls);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The bare downloads

#[derive(Debug, serde::Serialize, Deserialize)]
struct BareSpec {
    kind: String,
    urls: Vec<String>,
    headers: BTreeMap<String, String>,
    ca_file: Option<PathBuf>,
}

fn bare_spec(b: &Bench, source: Source) -> BareSpec {
    let mut headers = BTreeMap::new();
    let ca_file = match source {
        Source::Jira => {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{JIRA_EMAIL}:{JIRA_TOKEN}"));
            headers.insert("Authorization".into(), format!("Basic {basic}"));
            headers.insert("Accept".into(), "application/json".into());
            Some(b.ca_file.clone())
        }
        Source::GitHub => {
            headers.insert("Authorization".into(), format!("Bearer {GITHUB_TOKEN}"));
            headers.insert("Accept".into(), "application/vnd.github+json".into());
            headers.insert("X-GitHub-Api-Version".into(), "2022-11-28".into());
            b.a.github_tls.then(|| b.ca_file.clone())
        }
    };
    headers.insert("User-Agent".into(), "okrsync-compare-bare".into());
    BareSpec {
        kind: source.name().into(),
        urls: b.first_urls.get(source.name()).cloned().unwrap_or_default(),
        headers,
        ca_file,
    }
}

fn bare(b: &mut Bench, source: Source, rust: bool) -> Result<Sample> {
    let spec = b.fresh("bare.json");
    std::fs::write(&spec, serde_json::to_vec(&bare_spec(b, source))?)?;
    let (program, args): (PathBuf, Vec<OsString>) = if rust {
        (
            std::env::current_exe()?,
            vec!["--bare-download".into(), spec.into()],
        )
    } else {
        (
            PathBuf::from(&b.a.python),
            vec![b.path("bare_download.py").into(), spec.into()],
        )
    };
    let (mut s, stdout, _) = b.measure(source, &program, &args)?;
    s.download = std::fs::read_to_string(&stdout)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["download_s"].as_f64());
    let (requests, bytes) = b.okrsync_pages[source.name()];
    if s.failure.is_none() && (s.requests != requests || s.bytes != bytes) {
        s.failure = Some(format!(
            "read {} requests and {} bytes, okrsync's full sync {requests} and {bytes}",
            s.requests, s.bytes
        ));
    }
    if s.failure.is_none() {
        s.items = Some(match source {
            Source::Jira => b.a.jira as u64,
            Source::GitHub => (b.a.repos * b.a.per_repo) as u64,
        });
    }
    Ok(s)
}

/// The Rust bare download (the benchmark binary runs itself with `--bare-download SPEC`):
/// reqwest on rustls, as okrsync, one keep-alive connection, one request at a time.
async fn bare_download_rust(spec: &Path) -> Result<()> {
    let spec: BareSpec = serde_json::from_slice(&std::fs::read(spec)?)?;
    let mut client = reqwest::Client::builder();
    if let Some(ca) = &spec.ca_file {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    let client = client.build()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &spec.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes())?,
            v.parse()?,
        );
    }
    let token = b"\"nextPageToken\":\"";
    let (mut requests, mut received) = (0usize, 0usize);
    let started = Instant::now();
    for first in &spec.urls {
        let mut url = Some(first.clone());
        while let Some(u) = url.take() {
            let resp = client.get(&u).headers(headers.clone()).send().await?;
            let status = resp.status();
            let link = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.bytes().await?;
            requests += 1;
            received += body.len();
            if status != reqwest::StatusCode::OK {
                bail!("GET {u}: {status}");
            }
            url = if spec.kind == "jira" {
                find_last(&body, token).and_then(|at| {
                    let start = at + token.len();
                    let end = start + body[start..].iter().position(|c| *c == b'"')?;
                    let t = std::str::from_utf8(&body[start..end]).ok()?;
                    Some(format!(
                        "{first}&nextPageToken={}",
                        url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                    ))
                })
            } else {
                link.as_deref().and_then(next_link)
            };
        }
    }
    println!(
        "{}",
        json!({ "requests": requests, "bytes": received, "download_s": started.elapsed().as_secs_f64() })
    );
    Ok(())
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

// ---------------------------------------------------------------------------------------
// The peers

/// The installed version of each of `packages` in a virtualenv.
fn versions(venv: &Path, packages: &[&str]) -> Vec<(String, String)> {
    packages
        .iter()
        .filter_map(|p| {
            let out = Command::new(venv.join("bin/python"))
                .args([
                    "-c",
                    &format!("import importlib.metadata as m; print(m.version('{p}'))"),
                ])
                .output()
                .ok()?;
            out.status.success().then(|| {
                (
                    p.to_string(),
                    String::from_utf8_lossy(&out.stdout).trim().to_string(),
                )
            })
        })
        .collect()
}

/// A virtualenv of the benchmark's own with `requirement` installed (reused when it has the
/// right version).
fn venv(b: &Bench, dir: &Path, requirement: &str) -> Result<String> {
    let (package, version) = requirement
        .split_once("==")
        .context("a pinned requirement")?;
    let installed = || versions(dir, &[package]).pop().map(|(_, v)| v);
    if installed().as_deref() == Some(version) {
        return Ok(version.to_string());
    }
    println!(
        "installing {requirement} into {} (pip; the log is {}) …",
        dir.display(),
        dir.with_extension("pip.log").display()
    );
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.parent().context("a parent")?)?;
    let status = Command::new(&b.a.python)
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .context("python3 -m venv")?;
    if !status.success() {
        bail!("python3 -m venv {} failed ({status})", dir.display());
    }
    let log = std::fs::File::create(dir.with_extension("pip.log"))?;
    let status = Command::new(dir.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", requirement])
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("pip install")?;
    if !status.success() {
        bail!(
            "pip install {requirement} failed ({status}): {}",
            tail(&dir.with_extension("pip.log"), 8)
        );
    }
    installed().with_context(|| format!("{package} is not importable after pip install"))
}

/// Makes the peer trust the run's CA: requests verifies against certifi's bundle (the taps
/// send prepared requests through `Session.send`, which never reads `REQUESTS_CA_BUNDLE`),
/// so the CA is appended to a pristine copy of that bundle.
fn trust_ca(venv: &Path, ca_pem: &str) -> Result<()> {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", "import certifi; print(certifi.where())"])
        .output()
        .context("asking certifi for its bundle")?;
    if !out.status.success() {
        bail!("certifi is not importable in {}", venv.display());
    }
    let bundle = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let pristine = bundle.with_extension("pem.okrsync-pristine");
    if !pristine.exists() {
        std::fs::copy(&bundle, &pristine)?;
    }
    let mut text = std::fs::read_to_string(&pristine)?;
    text.push_str("\n# okrsync comparison benchmark: the simulators' CA of this run\n");
    text.push_str(ca_pem);
    std::fs::write(&bundle, text)?;
    Ok(())
}

fn target_dir() -> PathBuf {
    // target/release/deps/compare-… → target
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Installs tap-jira, asks it for its catalog and selects the `issues` stream.
fn setup_tap_jira(b: &mut Bench, ca_pem: &str) -> Result<Peer> {
    let venv_dir = target_dir().join("compare-venv/tap-jira");
    let version = venv(b, &venv_dir, TAP_JIRA)?;
    trust_ca(&venv_dir, ca_pem)?;
    let config = b.path("tap-jira-config.json");
    // tap-jira 2.6.0 forces https:// in front of base_url, whatever it says.
    std::fs::write(
        &config,
        serde_json::to_vec_pretty(&json!({
            "start_date": "2020-01-01T00:00:00Z",
            "username": JIRA_EMAIL,
            "password": JIRA_TOKEN,
            "base_url": b.jira.base_url(),
            "user_agent": "okrsync-compare-benchmark",
            "request_timeout": 300
        }))?,
    )?;
    let out = python_tool(&venv_dir.join("bin/tap-jira"))
        .arg("--config")
        .arg(&config)
        .arg("--discover")
        .output()
        .context("tap-jira --discover")?;
    if !out.status.success() {
        bail!(
            "tap-jira --discover failed: {}",
            short(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        );
    }
    let mut catalog: Value =
        serde_json::from_slice(&out.stdout).context("tap-jira's discovered catalog")?;
    let streams = catalog["streams"]
        .as_array_mut()
        .context("streams in tap-jira's catalog")?;
    let mut found = false;
    for stream in streams.iter_mut() {
        let selected = stream["tap_stream_id"] == "issues";
        found |= selected;
        for m in stream["metadata"].as_array_mut().into_iter().flatten() {
            if m["breadcrumb"].as_array().is_some_and(Vec::is_empty) {
                m["metadata"]["selected"] = json!(selected);
            }
        }
    }
    if !found {
        bail!("tap-jira's catalog has no issues stream");
    }
    let catalog_path = b.path("tap-jira-catalog.json");
    std::fs::write(&catalog_path, serde_json::to_vec(&catalog)?)?;
    Ok(Peer {
        dependencies: versions(&venv_dir, &["singer-python", "requests", "urllib3"]),
        venv: venv_dir,
        version,
        config,
        catalog: catalog_path,
    })
}

/// Installs airbyte-source-github, asks it for its catalog and configures the `issues`
/// stream (full refresh).
fn setup_airbyte(b: &mut Bench, ca_pem: &str) -> Result<Peer> {
    let venv_dir = target_dir().join("compare-venv/airbyte-source-github");
    let version = venv(b, &venv_dir, AIRBYTE_GITHUB)?;
    trust_ca(&venv_dir, ca_pem)?;
    let config = b.path("airbyte-config.json");
    let repos: Vec<String> = (0..b.a.repos).map(repo_name).collect();
    std::fs::write(
        &config,
        serde_json::to_vec_pretty(&json!({
            "credentials": { "option_title": "PAT Credentials", "personal_access_token": GITHUB_TOKEN },
            "repositories": repos,
            "api_url": b.github.api_url(),
            "page_size_for_large_streams": 100
        }))?,
    )?;
    let out = python_tool(&venv_dir.join("bin/source-github"))
        .arg("discover")
        .arg("--config")
        .arg(&config)
        .output()
        .context("source-github discover")?;
    let stream = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["type"] == "CATALOG")
        .flat_map(|m| {
            m["catalog"]["streams"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|s| s["name"] == "issues");
    let Some(stream) = stream else {
        bail!(
            "source-github discover gave no issues stream: {}",
            short(
                &String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .rev()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find_map(|m| m["trace"]["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "no error message".into())
            )
        );
    };
    let catalog_path = b.path("airbyte-catalog.json");
    std::fs::write(
        &catalog_path,
        serde_json::to_vec(&json!({
            "streams": [{
                "stream": stream,
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite"
            }]
        }))?,
    )?;
    Ok(Peer {
        dependencies: versions(
            &venv_dir,
            &["airbyte-cdk", "requests", "requests-cache", "orjson"],
        ),
        venv: venv_dir,
        version,
        config,
        catalog: catalog_path,
    })
}

/// Records of `stream` in a peer's output (Singer or Airbyte messages, one per line).
fn records(path: &Path, stream: &str) -> Result<u64> {
    let mut n = 0;
    for line in BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if !line.contains("RECORD") {
            continue;
        }
        let Ok(m) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // Singer: {"type": "RECORD", "stream": …}; Airbyte: {"type": "RECORD", "record": {"stream": …}}.
        let name = m["stream"].as_str().or(m["record"]["stream"].as_str());
        if m["type"] == "RECORD" && name == Some(stream) {
            n += 1;
        }
    }
    Ok(n)
}

fn peer(b: &mut Bench, source: Source) -> Result<Option<Sample>> {
    let installed = match source {
        Source::Jira => &b.peers.tap_jira,
        Source::GitHub => &b.peers.airbyte,
    };
    let Some(Ok(p)) = installed else {
        return Ok(None);
    };
    let (program, args): (PathBuf, Vec<OsString>) = match source {
        Source::Jira => (
            p.venv.join("bin/tap-jira"),
            vec![
                "--config".into(),
                p.config.clone().into(),
                "--properties".into(),
                p.catalog.clone().into(),
            ],
        ),
        Source::GitHub => (
            p.venv.join("bin/source-github"),
            vec![
                "read".into(),
                "--config".into(),
                p.config.clone().into(),
                "--catalog".into(),
                p.catalog.clone().into(),
            ],
        ),
    };
    let (mut s, stdout, _) = b.measure(source, &program, &args)?;
    let expected = match source {
        Source::Jira => b.a.jira as u64,
        Source::GitHub => (b.a.repos * b.a.per_repo) as u64,
    };
    match records(&stdout, "issues") {
        Ok(n) => {
            s.items = Some(n);
            if s.failure.is_none() && n != expected {
                s.failure = Some(format!(
                    "emitted {n} of {expected} issues: {}",
                    tail(&stdout, 2)
                ));
            }
        }
        Err(e) => s.failure = Some(format!("reading its output: {e:#}")),
    }
    let _ = std::fs::remove_file(&stdout);
    Ok(Some(s))
}

// ---------------------------------------------------------------------------------------
// The table

/// One row of the table: a tool on a source, its samples, and how it compares.
struct Row {
    source: Source,
    tool: String,
    samples: Vec<Sample>,
    /// How this row is compared with okrsync's full sync (SQLite).
    compare: Compare,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    /// okrsync's own full sync: the reference.
    Reference,
    /// No target (incremental sync, PostgreSQL).
    None,
    /// okrsync's wall ÷ this wall, at most the target.
    Bare,
    /// This wall ÷ okrsync's wall, at least the target.
    Peer(f64),
}

#[derive(Debug, Clone, Copy, Default)]
struct Medians {
    /// A bare download's in-process time (NaN for the other tools).
    download: f64,
    wall: f64,
    cpu: f64,
    rss_kib: u64,
    requests: usize,
    bytes: u64,
    items: u64,
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    fn ok(&self) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.failure.is_none())
            .collect()
    }

    fn medians(&self) -> Option<Medians> {
        let ok = self.ok();
        if ok.is_empty() {
            return None;
        }
        let m = |f: &dyn Fn(&Sample) -> f64| median_f(ok.iter().map(|s| f(s)).collect());
        Some(Medians {
            download: m(&|s| s.download.unwrap_or(f64::NAN)),
            wall: m(&|s| s.wall),
            cpu: m(&|s| s.cpu),
            rss_kib: m(&|s| s.rss_kib as f64) as u64,
            requests: m(&|s| s.requests as f64) as usize,
            bytes: m(&|s| s.bytes as f64) as u64,
            items: m(&|s| s.items.unwrap_or(0) as f64) as u64,
        })
    }

    fn failures(&self) -> Vec<String> {
        self.samples
            .iter()
            .filter_map(|s| s.failure.clone())
            .collect()
    }
}

/// The ratio for `row` against `reference` and whether it meets its target.
fn ratio(row: &Row, reference: Option<Medians>) -> Option<(f64, f64, bool)> {
    let (m, r) = (row.medians()?, reference?);
    match row.compare {
        Compare::Bare => {
            let x = r.wall / m.wall;
            Some((x, BARE_TARGET, x <= BARE_TARGET))
        }
        Compare::Peer(target) => {
            let x = m.wall / r.wall;
            Some((x, target, x >= target))
        }
        Compare::Reference | Compare::None => None,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Bytes received, and per issue when there are issues (an incremental sync reads few).
fn received(bytes: u64, issues: u64) -> String {
    if issues >= 100 {
        format!(
            "{} ({:.1} KB/issue)",
            mb(bytes),
            bytes as f64 / issues as f64 / 1e3
        )
    } else {
        mb(bytes)
    }
}

fn table(rows: &[Row], a: &Args) -> String {
    let mut out = String::new();
    for source in [Source::Jira, Source::GitHub] {
        let mut notes = Vec::new();
        let reference = rows
            .iter()
            .find(|r| r.source == source && r.compare == Compare::Reference)
            .and_then(Row::medians);
        let (title, what) = match source {
            Source::Jira => ("Jira Cloud", format!("{} issues over TLS", a.jira)),
            Source::GitHub => (
                "GitHub",
                format!(
                    "{} repos × {} issues{}",
                    a.repos,
                    a.per_repo,
                    if a.github_tls {
                        " over TLS"
                    } else {
                        " over HTTP"
                    }
                ),
            ),
        };
        let _ = writeln!(out, "\n{title}: {what}, median of {} runs", a.runs);
        let _ = writeln!(
            out,
            "| tool | wall | CPU | peak RSS | requests | received | issues | ratio | target |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for row in rows.iter().filter(|r| r.source == source) {
            let Some(m) = row.medians() else {
                let _ = writeln!(
                    out,
                    "| {} | not measured: {} | | | | | | | |",
                    row.tool,
                    row.failures().first().cloned().unwrap_or_default()
                );
                continue;
            };
            let (ratio_text, target_text) = match (row.compare, ratio(row, reference)) {
                (Compare::Bare, Some((x, t, met))) => (
                    format!("okrsync {x:.1}× its wall"),
                    format!("≤ {t:.0}× {}", if met { "met" } else { "**missed**" }),
                ),
                (Compare::Peer(_), Some((x, t, met))) => (
                    format!("okrsync {x:.1}× faster"),
                    format!("≥ {t:.0}× {}", if met { "met" } else { "**missed**" }),
                ),
                (Compare::Reference, _) => ("reference".into(), String::new()),
                _ => (String::new(), String::new()),
            };
            if m.download.is_finite() {
                notes.push(format!("{} {:.2} s", row.tool, m.download));
            }
            let failed = row.samples.len() - row.ok().len();
            let tool = if failed > 0 {
                format!("{} ({failed} failed run(s) left out)", row.tool)
            } else {
                row.tool.clone()
            };
            let _ = writeln!(
                out,
                "| {tool} | {:.2} s | {:.2} s | {} | {} | {} | {} | {ratio_text} | {target_text} |",
                m.wall,
                m.cpu,
                mib(m.rss_kib),
                m.requests,
                received(m.bytes, m.items),
                m.items,
            );
        }
        if !notes.is_empty() {
            let _ = writeln!(
                out,
                "\nFrom the first request to the last body, without starting the process: {}.",
                notes.join(", ")
            );
        }
    }
    out
}

fn json_report(rows: &[Row], b: &Bench, started: DateTime<Utc>, load: (String, String)) -> Value {
    let row_json = |row: &Row| {
        let reference = rows
            .iter()
            .find(|r| r.source == row.source && r.compare == Compare::Reference)
            .and_then(Row::medians);
        let sample = |s: &Sample| {
            json!({
                "wall_s": s.wall, "cpu_s": s.cpu, "peak_rss_kib": s.rss_kib,
                "requests": s.requests, "bytes_received": s.bytes, "issues": s.items,
                "download_s": s.download, "failure": s.failure,
            })
        };
        let r = ratio(row, reference);
        json!({
            "source": row.source.name(),
            "tool": row.tool,
            "runs": row.samples.iter().map(sample).collect::<Vec<_>>(),
            "median": row.medians().map(|m| json!({
                "wall_s": m.wall, "cpu_s": m.cpu, "peak_rss_kib": m.rss_kib,
                "requests": m.requests, "bytes_received": m.bytes, "issues": m.items,
                "download_s": m.download.is_finite().then_some(m.download),
            })),
            "ratio": r.map(|(x, _, _)| x),
            "ratio_means": match row.compare {
                Compare::Bare => Some("okrsync full sync wall ÷ this wall"),
                Compare::Peer(_) => Some("this wall ÷ okrsync full sync wall"),
                _ => None,
            },
            "target": r.map(|(_, t, _)| t),
            "target_met": r.map(|(_, _, met)| met),
        })
    };
    let peer_version = |p: &Option<Result<Peer, String>>| match p {
        Some(Ok(p)) => json!({
            "version": p.version,
            "venv": p.venv,
            "dependencies": p.dependencies.iter().cloned().collect::<BTreeMap<_, _>>(),
        }),
        Some(Err(e)) => json!({ "error": e }),
        None => Value::Null,
    };
    json!({
        "started": started.to_rfc3339(),
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "loadavg_before": load.0,
            "loadavg_after": load.1,
        },
        "workload": {
            "runs": b.a.runs,
            "jira_issues": b.a.jira,
            "jira_tls": true,
            "github_repos": b.a.repos,
            "github_issues_per_repo": b.a.per_repo,
            "github_tls": b.a.github_tls,
            "postgres": b.a.database_url.is_some(),
        },
        "peers": {
            "tap-jira": peer_version(&b.peers.tap_jira),
            "airbyte-source-github": peer_version(&b.peers.airbyte),
        },
        "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn progress(run: usize, runs: usize, source: Source, tool: &str, s: &Sample) {
    let status = match &s.failure {
        None => format!("{} issues", s.items.unwrap_or(0)),
        Some(f) => format!("FAILED: {f}"),
    };
    println!(
        "run {run}/{runs} {:<6} {tool:<42} {:>7.2} s wall {:>7.2} s CPU {:>8} {:>5} requests {:>9}  {status}",
        source.name(),
        s.wall,
        s.cpu,
        mib(s.rss_kib),
        s.requests,
        mb(s.bytes),
    );
}

/// `--serve`: the commands the benchmark would measure, against simulators that keep
/// running until Ctrl-C.
async fn serve(b: &mut Bench) -> Result<()> {
    let mut lines = Vec::new();
    let mut setups = Vec::new();
    for source in [Source::Jira, Source::GitHub] {
        let setup = write_setup(b, source, &Backend::Sqlite).await?;
        lines.push(format!(
            "okrsync ({0}):     {1} --config {2} sync --source {0}",
            source.name(),
            env!("CARGO_BIN_EXE_okrsync"),
            setup.config.display()
        ));
        let spec = b.path(&format!("bare-{}.json", source.name()));
        std::fs::write(&spec, serde_json::to_vec(&bare_spec(b, source))?)?;
        lines.push(format!(
            "bare ({}):        {} {} {}",
            source.name(),
            b.a.python,
            b.path("bare_download.py").display(),
            spec.display()
        ));
        setups.push(setup);
    }
    for (name, p, how) in [
        (
            "tap-jira",
            &b.peers.tap_jira,
            "bin/tap-jira --config {c} --properties {k}",
        ),
        (
            "airbyte-source-github",
            &b.peers.airbyte,
            "bin/source-github read --config {c} --catalog {k}",
        ),
    ] {
        if let Some(Ok(p)) = p {
            let how = how
                .replace("{c}", &p.config.display().to_string())
                .replace("{k}", &p.catalog.display().to_string());
            lines.push(format!("{name}: {}/{how}", p.venv.display()));
        }
    }
    println!("\nthe simulators are serving; each tool as the benchmark runs it:\n");
    for l in lines {
        println!("  {l}");
    }
    println!("\nCtrl-C stops them.");
    tokio::signal::ctrl_c().await?;
    drop(setups);
    Ok(())
}

/// The interpreter `python` runs: a version manager's shim (pyenv's is a shell script)
/// would add its own start-up to the bare Python download's figures.
fn real_python(python: &str) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .with_context(|| format!("running {python}: the benchmark needs Python 3"))?;
    let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || exe.is_empty() {
        bail!("{python} does not say where its interpreter is");
    }
    Ok(exe)
}

#[tokio::main]
async fn main() -> Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("--bare-download") {
        let spec = raw.get(1).context("--bare-download needs a spec file")?;
        return bare_download_rust(Path::new(spec)).await;
    }
    let mut a = args(&raw)?;
    a.python = real_python(&a.python)?;
    let started = Utc::now();
    let load_before = loadavg();
    let now = ms(Utc::now());

    let ca = TestCa::generate("okrsync comparison benchmark CA")?;
    let jira = JiraSim::start(JiraSimOptions {
        email: JIRA_EMAIL.into(),
        token: JIRA_TOKEN.into(),
        tls: Some(ca.clone()),
        ..JiraSimOptions::default()
    })
    .await?;
    let generated = Instant::now();
    jira.upsert_all(jira_issues(a.jira, now));
    let github =
        GitHubSim::start_with(GITHUB_TOKEN, false, a.github_tls.then(|| ca.clone())).await?;
    for (repo, issues) in github_issues(a.repos, a.per_repo, now) {
        github.upsert_all(&repo, issues);
    }
    let work = tempfile::tempdir()?;
    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem())?;
    std::fs::write(work.path().join("measure.py"), MEASURE_PY)?;
    std::fs::write(work.path().join("bare_download.py"), BARE_DOWNLOAD_PY)?;
    println!(
        "okrsync comparison benchmark: Jira Cloud at {} ({} issues, TLS), GitHub at {} ({} × {} issues); data generated in {:.1} s; {} CPUs, load {load_before}",
        jira.base_url(),
        a.jira,
        github.api_url(),
        a.repos,
        a.per_repo,
        generated.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    );
    let mut b = Bench {
        a: a.clone(),
        work,
        ca_file,
        jira,
        github,
        now,
        first_urls: BTreeMap::new(),
        okrsync_pages: BTreeMap::new(),
        peers: Peers::default(),
        counter: 0,
    };

    if a.peers {
        let pem = ca.ca_pem().to_string();
        b.peers.tap_jira = Some(setup_tap_jira(&mut b, &pem).map_err(|e| format!("{e:#}")));
        b.peers.airbyte = Some(setup_airbyte(&mut b, &pem).map_err(|e| format!("{e:#}")));
        for (name, p) in [
            ("tap-jira", &b.peers.tap_jira),
            ("airbyte-source-github", &b.peers.airbyte),
        ] {
            match p {
                Some(Ok(p)) => println!(
                    "{name} {} in {} ({})",
                    p.version,
                    p.venv.display(),
                    p.dependencies
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(Err(e)) => println!("{name}: NOT RUN: {e}"),
                None => {}
            }
        }
    }

    println!("warm-up: okrsync's full sync of each source (untimed) …");
    warm_up(&mut b, Source::Jira).await?;
    warm_up(&mut b, Source::GitHub).await?;

    if a.serve {
        return serve(&mut b).await;
    }

    let mut backends = vec![Backend::Sqlite];
    if let Some(url) = &a.database_url {
        backends.push(Backend::Postgres(url.clone()));
    }
    let mut rows: Vec<Row> = Vec::new();
    let row =
        |rows: &mut Vec<Row>, source: Source, tool: String, compare: Compare, s: Sample| match rows
            .iter_mut()
            .find(|r| r.source == source && r.tool == tool)
        {
            Some(r) => r.samples.push(s),
            None => rows.push(Row {
                source,
                tool,
                samples: vec![s],
                compare,
            }),
        };
    for run in 1..=a.runs {
        for source in [Source::Jira, Source::GitHub] {
            for backend in &backends {
                let (full, incremental) = okrsync_pair(&mut b, source, backend).await?;
                let (t_full, t_inc) = (
                    format!("okrsync full sync ({})", backend.label()),
                    format!("okrsync incremental sync ({})", backend.label()),
                );
                progress(run, a.runs, source, &t_full, &full);
                progress(run, a.runs, source, &t_inc, &incremental);
                let reference = matches!(backend, Backend::Sqlite);
                row(
                    &mut rows,
                    source,
                    t_full,
                    if reference {
                        Compare::Reference
                    } else {
                        Compare::None
                    },
                    full,
                );
                row(&mut rows, source, t_inc, Compare::None, incremental);
            }
            for (rust, tool) in [
                (false, "bare download (Python http.client)"),
                (true, "bare download (Rust reqwest)"),
            ] {
                let s = bare(&mut b, source, rust)?;
                progress(run, a.runs, source, tool, &s);
                row(&mut rows, source, tool.into(), Compare::Bare, s);
            }
            if let Some(s) = peer(&mut b, source)? {
                let (tool, target) = match source {
                    Source::Jira => (TAP_JIRA.replace("==", " "), JIRA_PEER_TARGET),
                    Source::GitHub => (AIRBYTE_GITHUB.replace("==", " "), GITHUB_PEER_TARGET),
                };
                progress(run, a.runs, source, &tool, &s);
                row(&mut rows, source, tool, Compare::Peer(target), s);
            }
        }
    }

    let load_after = loadavg();
    print!("{}", table(&rows, &a));
    println!(
        "\nratio: for a bare download, okrsync's full sync wall ÷ its wall (target ≤ {BARE_TARGET:.0}×); \
         for a peer, its wall ÷ okrsync's full sync wall (targets ≥ {JIRA_PEER_TARGET:.0}× Jira, ≥ {GITHUB_PEER_TARGET:.0}× GitHub). \
         CPU: user + system of the process and its children. Requests and bytes: counted by the simulators."
    );
    for (name, p) in [
        ("tap-jira", &b.peers.tap_jira),
        ("airbyte-source-github", &b.peers.airbyte),
    ] {
        if let Some(Err(e)) = p {
            println!("{name} was not run: {e}");
        }
    }
    println!("load average before: {load_before}; after: {load_after}");
    let report = json_report(&rows, &b, started, (load_before, load_after));
    let out = target_dir().join("compare.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    println!("JSON: {}", out.display());
    Ok(())
}
