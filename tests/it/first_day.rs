//! What a new user meets in the first hour of production: reports that need no secret,
//! errors that say why (and are not retried when waiting cannot help), internal CAs, plain
//! logs off a terminal, and conditional requests that survive the process.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{issue, json, Db, SourceOpts, TestEnv};

const NOW: &str = "2026-11-15T12:00:00Z";

const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"

[[objective.kr]]
id = "emea.bugs"
title = "Close 4 customer bugs"
measure = "count"
target = 4

[[objective.kr]]
id = "emea.nps"
title = "Partner NPS from 20 to 40"
measure = "manual"
start = 20
target = 40

[[rule]]
id = "customer-bugs"
kr = "emea.bugs"
[rule.match]
labels = "customer"
"#;

fn d(m: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, day, 9, 0, 0)
        .single()
        .expect("date")
}

fn seed(env: &TestEnv) {
    env.seed([
        issue(
            1,
            "PAY-1",
            "Bug one",
            "done",
            None,
            &["customer"],
            d(11, 2),
            Some(d(11, 1)),
        ),
        issue(
            2,
            "PAY-2",
            "Bug two",
            "in_progress",
            None,
            &["customer"],
            d(11, 2),
            None,
        ),
        issue(
            3,
            "PAY-3",
            "Refactor",
            "in_progress",
            None,
            &[],
            d(11, 3),
            None,
        ),
    ]);
}

/// Runs the binary with `args`, without any variable a secret could come from.
fn bare(env: &TestEnv, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("OKRSYNC_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("OKRSYNC_TEST_JIRA_WEBHOOK_SECRET")
        .env_remove("OKRSYNC_TEST_API_TOKEN")
        .env("OKRSYNC_NOW", NOW)
        .output()
        .expect("run okrsync")
}

async fn reports_need_only_the_database(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    seed(&env);
    let synced = env.cli(&["sync"], Some(NOW));
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    // The documented systemd layout: every secret a credential file or a variable that an
    // admin's shell does not have.
    let config = std::fs::read_to_string(&env.config).expect("config");
    let config = config
        .replace(
            "token_file = \"jira-token\"",
            "token_file = \"$CREDENTIALS_DIRECTORY/jira-token\"\nwebhook_secret_env = \"OKRSYNC_TEST_JIRA_WEBHOOK_SECRET\"",
        )
        .replace(
            "api_token_file = \"api-token\"",
            "api_token_file = \"$CREDENTIALS_DIRECTORY/api-token\"",
        );
    std::fs::write(&env.config, config).expect("config");

    let status = json(&bare(&env, &["status", "--json"]));
    let krs = &status["objectives"][0]["key_results"];
    assert_eq!(krs[0]["id"], "emea.bugs");
    assert_eq!(krs[0]["current"], 1.0, "{status}");
    let explain = json(&bare(&env, &["explain", "emea.bugs", "--json"]));
    let keys: Vec<&str> = explain["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys, ["PAY-1", "PAY-2"]);
    let moves = json(&bare(&env, &["moves", "project=PAY", "--json"]));
    assert_eq!(moves["items"], 3);
    let unaligned = json(&bare(&env, &["unaligned", "--json"]));
    let keys: Vec<&str> = unaligned["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys, ["PAY-3"]);
    let checkin = bare(&env, &["checkin", "emea.nps", "31"]);
    assert!(
        checkin.status.success(),
        "{}",
        String::from_utf8_lossy(&checkin.stderr)
    );
    let status = json(&bare(&env, &["status", "--json"]));
    assert_eq!(status["objectives"][0]["key_results"][1]["current"], 31.0);
    let migrate = bare(&env, &["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    // `check` names each missing secret; `sync` refuses to start without them.
    let check = bare(&env, &["check"]);
    assert_eq!(check.status.code(), Some(2));
    let err = String::from_utf8_lossy(&check.stderr);
    for expected in [
        "sources.jira.token_file: cannot read the secret file $CREDENTIALS_DIRECTORY/jira-token",
        "sources.jira.webhook_secret_env: the environment variable OKRSYNC_TEST_JIRA_WEBHOOK_SECRET is not set",
        "server.api_token_file: cannot read the secret file $CREDENTIALS_DIRECTORY/api-token",
    ] {
        assert!(err.contains(expected), "missing «{expected}» in:\n{err}");
    }
    assert!(err.contains("3 problems"), "{err}");
    let sync = bare(&env, &["sync"]);
    assert_eq!(sync.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&sync.stderr), err);
    // With the credentials where systemd puts them, everything works again.
    let creds = env.dir.path().join("credentials");
    std::fs::create_dir_all(&creds).expect("dir");
    std::fs::copy(env.dir.path().join("jira-token"), creds.join("jira-token")).expect("copy");
    std::fs::copy(env.dir.path().join("api-token"), creds.join("api-token")).expect("copy");
    let sync = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&env.config)
        .arg("sync")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("OKRSYNC_TEST_JIRA_WEBHOOK_SECRET", "hook")
        .env("OKRSYNC_NOW", NOW)
        .output()
        .expect("run");
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let _: Value = status;
}
both_backends!(reports_need_only_the_database);

/// A Jira Data Center behind a company CA, and a config pointing at it.
struct TlsJira {
    dir: tempfile::TempDir,
    sim: okrsync::simulator::JiraSim,
    ca: okrsync::simulator::tls::TestCa,
}

impl TlsJira {
    async fn start() -> TlsJira {
        use okrsync::simulator::jira::{JiraSimOptions, SimFlavor};
        let ca = okrsync::simulator::tls::TestCa::generate("Acme Internal Root CA").expect("ca");
        let sim = okrsync::simulator::JiraSim::start(JiraSimOptions {
            flavor: SimFlavor::DataCenter,
            token: crate::helpers::TOKEN.into(),
            tls: Some(ca.clone()),
            ..JiraSimOptions::default()
        })
        .await
        .expect("simulator");
        sim.upsert(issue(
            1,
            "PAY-1",
            "Bug one",
            "done",
            None,
            &["customer"],
            d(11, 2),
            Some(d(11, 1)),
        ));
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
        std::fs::write(dir.path().join("okrs/test.toml"), OKRS).expect("okrs");
        std::fs::write(dir.path().join("jira-token"), crate::helpers::TOKEN).expect("token");
        std::fs::write(dir.path().join("acme-ca.pem"), ca.ca_pem()).expect("ca");
        TlsJira { dir, sim, ca }
    }

    /// Writes the config (with `ca_file` or without) and returns its path.
    fn config(&self, ca_file: bool) -> std::path::PathBuf {
        let path = self.dir.path().join("okrsync.toml");
        std::fs::write(
            &path,
            format!(
                r#"okrs = ["okrs/*.toml"]
[database]
url = "sqlite://{db}"
[log]
format = "pretty"
level = "info"
[sources.jira]
kind = "jira"
url = "{url}"
flavor = "datacenter"
token_file = "jira-token"
max_retries = 5
retry_backoff = "2s"
{ca}
"#,
                db = self.dir.path().join("okrsync.db").display(),
                url = self.sim.base_url(),
                ca = if ca_file {
                    "ca_file = \"acme-ca.pem\""
                } else {
                    ""
                },
            ),
        )
        .expect("config");
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_named_and_not_retried_and_ca_file_trusts_it() {
    let jira = TlsJira::start().await;
    assert!(jira.sim.base_url().starts_with("https://127.0.0.1:"));
    let config = jira.config(false);
    // The real binary, its stderr a pipe: the outcome names the certificate problem.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("invalid peer certificate: UnknownIssuer"),
        "{stdout}"
    );
    assert!(stdout.contains("set ca_file"), "{stdout}");
    assert!(
        !stdout.contains("error sending request for url"),
        "the URL is named once, not in reqwest's words: {stdout}"
    );
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "the log carries the cause too: {stderr}"
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    // Logs written to a pipe are plain text, whatever log.format says.
    assert!(
        !stderr.contains("\x1b["),
        "ANSI escapes in a pipe: {stderr:?}"
    );
    assert!(
        !stderr.contains("Url {"),
        "no URL debug dumps in spans: {stderr}"
    );

    // Recorded on the run: one request, not six, and the same words.
    let engine = crate::helpers::engine_for(&config).await;
    let run = engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("run");
    assert_eq!(run.requests, 1, "a certificate problem is not retried");
    assert!(
        run.error
            .as_deref()
            .is_some_and(|e| e.contains("invalid peer certificate: UnknownIssuer")),
        "{:?}",
        run.error
    );
    assert!(jira.sim.requests().is_empty(), "no request got through");
    // The Sources page and its JSON say the same.
    let app = okrsync::server::Application::build(engine, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(app.run_until_stopped(stopped));
    for path in ["/sources", "/api/v1/sources"] {
        let body = reqwest::get(format!("{base}{path}"))
            .await
            .expect("get")
            .text()
            .await
            .expect("body");
        assert!(
            body.contains("invalid peer certificate: UnknownIssuer"),
            "{path}: {body}"
        );
    }
    stop.send(true).expect("stop");
    server.await.expect("join").expect("server");

    // With the company CA in ca_file, the same source syncs.
    let config = jira.config(true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("jira: ok (full, 1 fetched"), "{stdout}");

    // The system's roots are trusted too: a CA in the file SSL_CERT_FILE names (as an OS
    // store would hold it) needs no ca_file.
    let config = jira.config(false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(&config)
        .args(["sync", "--full"])
        .env("SSL_CERT_FILE", jira.dir.path().join("acme-ca.pem"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("jira: ok (full"), "{stdout}");
    let _ = &jira.ca;
}
