//! No secret leaves okrsync (issue 14): a daemon run with known secret values — the Jira
//! token, the GitHub token, the API token, a webhook secret — at `debug` log level, driven
//! through a sync, a failing sync (the upstream refuses the token), webhooks with good and
//! bad signatures, every API read, the dashboard pages and `/metrics`; then the CLI's
//! reports. Every output channel is collected — stdout and stderr of each process, every
//! HTTP body and header okrsync sent, and the bytes of the database file — and searched for
//! the secrets (and for the Basic credentials they make).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use okrsync::simulator::github::{GhIssue, GitHubSim};
use okrsync::simulator::jira::{Fault, JiraSim, JiraSimOptions, SimFlavor};

use crate::helpers::{free_port, issue, minute, EMAIL};

const JIRA_TOKEN: &str = "jira-SECRET-7f3a9c1d";
const GITHUB_TOKEN: &str = "ghp_SECRET93ad5b7e";
const API_TOKEN: &str = "api-SECRET-41b2e8f0";
const HOOK_SECRET: &str = "hook-SECRET-5e1f2a6c";

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
project = ["PAY", "acme/web"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_answers_pages_metrics_or_the_database() {
    let jira = JiraSim::start(JiraSimOptions {
        flavor: SimFlavor::Cloud,
        email: EMAIL.into(),
        token: JIRA_TOKEN.into(),
        ..JiraSimOptions::default()
    })
    .await
    .expect("jira");
    jira.upsert(issue(
        1,
        "PAY-1",
        "A",
        "done",
        None,
        &[],
        minute(9, 0),
        Some(minute(9, 0)),
    ));
    let github = GitHubSim::start(GITHUB_TOKEN, false).await.expect("github");
    github.create_repo("acme/web");
    github.upsert("acme/web", GhIssue::new(7001, 1, "Web task"));

    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(dir.path().join("okrs/o.toml"), OKRS).expect("okrs");
    std::fs::write(dir.path().join("hook-secret"), HOOK_SECRET).expect("secret");
    std::fs::write(dir.path().join("gh-token"), GITHUB_TOKEN).expect("secret");
    let port = free_port();
    let config = format!(
        r#"okrs = ["okrs/*.toml"]
[server]
listen = "127.0.0.1:{port}"
api_token_env = "OKRSYNC_SECRETS_TEST_API_TOKEN"
[database]
url = "sqlite://{db}"
[log]
format = "json"
level = "debug"
[sources.jira]
kind = "jira"
url = "{jira}"
email = "{EMAIL}"
token_env = "OKRSYNC_SECRETS_TEST_JIRA_TOKEN"
jql = "project = PAY"
every = "1h"
max_retries = 0
requests_per_second = 1000
webhook_secret_file = "hook-secret"
[sources.github]
kind = "github"
api_url = "{gh}"
token_file = "gh-token"
repos = ["acme/web"]
every = "1h"
requests_per_second = 1000
"#,
        db = dir.path().join("okrsync.db").display(),
        jira = jira.base_url(),
        gh = github.api_url(),
    );
    let config_path = dir.path().join("okrsync.toml");
    std::fs::write(&config_path, config).expect("config");
    let okrsync = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_okrsync"));
        cmd.arg("--config")
            .arg(&config_path)
            .args(args)
            .env("OKRSYNC_SECRETS_TEST_API_TOKEN", API_TOKEN)
            .env("OKRSYNC_SECRETS_TEST_JIRA_TOKEN", JIRA_TOKEN)
            .env_remove("RUST_LOG")
            .env_remove("OKRSYNC_CONFIG");
        cmd
    };
    // Logs go to files: a pipe nobody reads while the test drives the daemon would fill
    // and block its logging (debug level writes a lot).
    let out_file = std::fs::File::create(dir.path().join("run.out")).expect("stdout file");
    let err_file = std::fs::File::create(dir.path().join("run.err")).expect("stderr file");
    let mut child = okrsync(&["run"])
        .stdout(Stdio::from(out_file))
        .stderr(Stdio::from(err_file))
        .spawn()
        .expect("start okrsync run");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemon did not sync within 30 s"
        );
        if let Ok(r) = http.get(format!("{base}/api/v1/objectives")).send().await {
            let text = r.text().await.unwrap_or_default();
            if text.contains("\"current\":1.0") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The upstream now refuses the token: the failure is recorded and shown everywhere.
    jira.fail_next(Fault::Status {
        status: 401,
        retry_after: None,
        body: Some(format!(
            "{{\"errorMessages\":[\"token {JIRA_TOKEN} is not valid for {EMAIL}\"]}}"
        )),
    });
    let mut record = |what: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &str| {
        seen.push_str(&format!("== {what} {status}\n"));
        for (k, v) in headers {
            seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
        }
        seen.push_str(body);
        seen.push('\n');
    };
    for (what, req) in [
        (
            "sync now",
            http.post(format!("{base}/api/v1/sync"))
                .bearer_auth(API_TOKEN)
                .json(&serde_json::json!({ "source": "jira" })),
        ),
        (
            "sync with a wrong token",
            http.post(format!("{base}/api/v1/sync"))
                .bearer_auth(format!("{API_TOKEN}x")),
        ),
        (
            "webhook, good signature",
            http.post(format!("{base}/hooks/jira"))
                .header(
                    "x-hub-signature-256",
                    crate::helpers::hub_signature(
                        HOOK_SECRET,
                        b"{\"webhookEvent\":\"jira:issue_updated\"}",
                    ),
                )
                .body("{\"webhookEvent\":\"jira:issue_updated\"}"),
        ),
        (
            "webhook, bad signature",
            http.post(format!("{base}/hooks/jira"))
                .header("x-hub-signature-256", "sha256=00")
                .body("{}"),
        ),
    ] {
        let r = req.send().await.expect(what);
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = r.text().await.unwrap_or_default();
        record(what, status, &headers, &body);
    }
    // Give the triggered steps time to end and be recorded.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for path in [
        "/",
        "/sources",
        "/unaligned",
        "/allocation",
        "/lint",
        "/kr/o.done",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/objectives",
        "/api/v1/key-results/o.done",
        "/api/v1/sources",
        "/api/v1/unaligned",
        "/api/v1/allocation",
        "/api/v1/lint",
        "/api/v1/openapi.json",
        "/does-not-exist",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.expect(path);
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = r.text().await.unwrap_or_default();
        record(path, status, &headers, &body);
    }
    assert!(
        seen.contains("401") && seen.to_ascii_lowercase().contains("authentication failed"),
        "the failing sync is shown (the test saw what it looks for):\n{}",
        &seen[..seen.len().min(3000)]
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "okrsync did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut logs = String::new();
    for file in ["run.out", "run.err"] {
        logs.push_str(&std::fs::read_to_string(dir.path().join(file)).unwrap_or_default());
    }
    assert!(logs.contains("\"level\""), "debug logs were written");
    // The CLI: reports, check (with a secret it cannot read named by its variable), sync.
    for args in [
        &["status", "--json"][..],
        &["explain", "o.done", "--json"],
        &["unaligned", "--json"],
        &["check"],
        &["sync"],
    ] {
        let out = okrsync(args).output().expect("cli");
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let database: Vec<u8> = ["okrsync.db", "okrsync.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.path().join(f)).ok())
        .flatten()
        .collect();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{JIRA_TOKEN}"));
    for secret in [
        JIRA_TOKEN,
        GITHUB_TOKEN,
        API_TOKEN,
        HOOK_SECRET,
        basic.as_str(),
    ] {
        for (channel, text) in [("logs and CLI output", &logs), ("HTTP answers", &seen)] {
            if let Some(at) = text.find(secret) {
                let from = at.saturating_sub(200);
                panic!(
                    "the secret {secret} reached the {channel}: …{}…",
                    &text[from..(at + secret.len() + 100).min(text.len())]
                );
            }
        }
        assert!(
            !database
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "the secret {secret} was written to the database"
        );
    }
    // The dashboard and the API answer with the security headers.
    for header in [
        "content-security-policy: default-src 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
    ] {
        assert!(
            seen.to_ascii_lowercase().contains(header),
            "answers lack «{header}»"
        );
    }
}
