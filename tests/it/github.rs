//! The GitHub source against the simulated GitHub over real HTTP, on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use okrsync::simulator::github::{Fault, GhIssue, GitHubSim};
use okrsync::sync::{Engine, Mode};
use tempfile::TempDir;

use crate::both_backends;
use crate::helpers::{fresh_database, minute, Db};

const TOKEN: &str = "ghp_simulated";

const OKRS: &str = r#"
[[objective]]
id = "web"
title = "Ship the new web app"
period = "2026-Q4"

[[objective.kr]]
id = "web.launch"
title = "Launch work done"
measure = "completion"

[[objective.kr]]
id = "web.checkout"
title = "Checkout on the board"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "board-kr-field"
kr = "web.checkout"
source = "github"
[rule.match]
"fields.KR" = "web.checkout"

[[rule]]
id = "launch-label"
kr = "web.launch"
source = "github"
[rule.match]
labels = "launch"
"#;

struct GhEnv {
    #[allow(dead_code)]
    dir: TempDir,
    sim: GitHubSim,
    config: PathBuf,
}

impl GhEnv {
    async fn new(db: Db, enterprise: bool, per_page: u32) -> GhEnv {
        GhEnv::with_extra(db, enterprise, per_page, "").await
    }

    async fn with_extra(db: Db, enterprise: bool, per_page: u32, extra: &str) -> GhEnv {
        let dir = tempfile::tempdir().expect("dir");
        let sim = GitHubSim::start(TOKEN, enterprise)
            .await
            .expect("start the GitHub simulator");
        let db_url = fresh_database(db, dir.path()).await;
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
        std::fs::write(dir.path().join("okrs/web.toml"), OKRS).expect("okrs");
        std::fs::write(dir.path().join("gh-token"), TOKEN).expect("token");
        let config = format!(
            r#"okrs = ["okrs/*.toml"]
[database]
url = "{db_url}"
[log]
level = "warn"
[sources.github]
kind = "github"
api_url = "{api}"
token_file = "gh-token"
repos = ["acme/web", "acme/api"]
per_page = {per_page}
estimate_label = "^points:(\\d+)$"
requests_per_second = 1000
retry_backoff = "10ms"
{extra}
"#,
            api = sim.api_url()
        );
        std::fs::write(dir.path().join("okrsync.toml"), config).expect("config");
        GhEnv {
            config: dir.path().join("okrsync.toml"),
            dir,
            sim,
        }
    }

    async fn engine(&self) -> Engine {
        crate::helpers::engine_for(&self.config).await
    }

    /// acme/web: five issues five minutes apart (two done, labelled `launch`); acme/api: one.
    fn seed(&self) {
        for n in 1..=5u64 {
            let mut i = GhIssue::new(1000 + n, n, &format!("Web task {n}"));
            i.updated = minute(10, 0) + Duration::minutes(5 * n as i64);
            i.labels = vec!["launch".into(), format!("points:{n}")];
            if n <= 2 {
                i.state = "closed".into();
                i.state_reason = Some("completed".into());
                i.closed = Some(i.updated);
            }
            self.sim.upsert("acme/web", i);
        }
        let mut api = GhIssue::new(2001, 1, "API task");
        api.updated = minute(9, 0);
        self.sim.upsert("acme/api", api);
    }
}

async fn kr(engine: &Engine) -> okrsync::store::KrState {
    engine
        .store()
        .kr_state("web.launch")
        .await
        .expect("read")
        .expect("kr")
}

async fn multi_page_sync_then_unchanged_repos_cost_only_304s(db: Db) {
    let env = GhEnv::new(db, false, 2).await;
    env.seed();
    let engine = env.engine().await;
    let full = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(full.outcome, "ok", "{:?}", full.error);
    assert_eq!(
        (full.fetched, full.requests),
        (6, 4),
        "acme/web in 3 pages of 2, acme/api in 1"
    );
    let k = kr(&engine).await;
    assert_eq!((k.current, k.target), (Some(2.0), Some(5.0)));
    let first = engine
        .store()
        .item_by_key("github", "acme/web#1")
        .await
        .expect("read")
        .expect("acme/web#1 is stored");
    assert_eq!(first.item.estimate, Some(1.0), "from the points: label");

    // The first incremental pass sees each repo's overlap window once …
    engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    // … after that an unchanged repo costs one conditional request answered 304.
    env.sim.clear_requests();
    let budget = env.sim.rate_limit_remaining();
    let quiet = engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        (quiet.outcome.as_str(), quiet.changed, quiet.requests),
        ("ok", 0, 2)
    );
    let reqs = env.sim.requests();
    assert!(
        reqs.iter()
            .all(|r| r.status == 304 && r.if_none_match.is_some()),
        "{reqs:?}"
    );
    assert_eq!(
        env.sim.rate_limit_remaining(),
        budget,
        "304s cost no rate limit"
    );
}
both_backends!(multi_page_sync_then_unchanged_repos_cost_only_304s);

async fn edits_merges_and_not_planned_closes_move_the_kr(db: Db) {
    let env = GhEnv::new(db, false, 100).await;
    env.seed();
    let mut pr = GhIssue::new(1100, 6, "Launch checklist");
    pr.pull_request = true;
    pr.labels = vec!["launch".into()];
    pr.updated = minute(11, 0);
    env.sim.upsert("acme/web", pr);
    let engine = env.engine().await;
    engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(kr(&engine).await.current, Some(2.0));
    assert_eq!(kr(&engine).await.target, Some(6.0));

    // A pull request is merged: done.
    env.sim.edit("acme/web", 6, |p| {
        p.state = "closed".into();
        p.merged_at = Some(chrono::Utc::now());
        p.closed = p.merged_at;
    });
    // An issue is edited (relabelled out of the launch).
    env.sim
        .edit("acme/web", 5, |i| i.labels = vec!["later".into()]);
    // An issue is closed as not planned: it leaves the scope.
    env.sim.edit("acme/web", 4, |i| {
        i.state = "closed".into();
        i.state_reason = Some("not_planned".into());
    });
    let run = engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.changed),
        ("ok", 3),
        "{:?}",
        run.error
    );
    let k = kr(&engine).await;
    // In scope now: #1, #2 (done), #3 (open), #6 (merged) → 3 of 4.
    assert_eq!((k.current, k.target), (Some(3.0), Some(4.0)));
}
both_backends!(edits_merges_and_not_planned_closes_move_the_kr);

async fn a_secondary_rate_limit_with_retry_after_is_obeyed(db: Db) {
    let env = GhEnv::new(db, false, 100).await;
    env.seed();
    let engine = env.engine().await;
    env.sim.fail_next(Fault::Status {
        status: 403,
        retry_after: Some("1".into()),
        body: Some(r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest"}"#.into()),
    });
    let started = Instant::now();
    let run = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert!(started.elapsed() >= StdDuration::from_millis(950));
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![403, 200, 200]);
}
both_backends!(a_secondary_rate_limit_with_retry_after_is_obeyed);

async fn enterprise_next_links_keep_the_token(db: Db) {
    let env = GhEnv::new(db, true, 2).await;
    env.seed();
    let engine = env.engine().await;
    let run = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    let reqs = env.sim.requests();
    assert_eq!(reqs.len(), 4);
    assert!(
        reqs.iter()
            .all(|r| r.path.starts_with("/api/v3/repos/") && r.authorized),
        "{reqs:?}"
    );
    assert!(
        reqs.iter().filter(|r| r.query.contains("after=")).count() >= 2,
        "pages 2 and 3 follow after= cursors"
    );
}
both_backends!(enterprise_next_links_keep_the_token);

async fn a_projects_v2_field_maps_an_issue_to_a_kr(db: Db) {
    let env = GhEnv::with_extra(
        db,
        true,
        100,
        "projects = [\"acme/7\"]\nestimate_field = \"Points\"",
    )
    .await;
    env.seed();
    use serde_json::json;
    env.sim.set_project_item(
        "acme",
        7,
        "acme/web",
        1,
        &[("KR", json!("web.checkout")), ("Points", json!(3))],
    );
    env.sim.set_project_item(
        "acme",
        7,
        "acme/web",
        3,
        &[
            ("KR", json!("web.checkout")),
            ("Points", json!(5)),
            ("Status", json!("In review")),
        ],
    );
    env.sim
        .set_project_item("acme", 7, "acme/web", 5, &[("KR", json!("something.else"))]);
    let engine = env.engine().await;
    let run = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    let checkout = |e: &Engine| {
        let store = e.store().clone();
        async move {
            store
                .kr_state("web.checkout")
                .await
                .expect("read")
                .expect("kr")
        }
    };
    // #1 (done, 3 points) and #3 (open, 5 points from the board): 3 of 8.
    let k = checkout(&engine).await;
    assert_eq!((k.current, k.target, k.items), (Some(3.0), Some(8.0), 2));
    let graphql: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/graphql")
        .collect();
    assert_eq!(
        graphql.len(),
        1,
        "Enterprise GraphQL lives at /api/graphql, not under /api/v3"
    );
    assert!(graphql[0].authorized);
    let explain = okrsync::report::explain(
        engine.store(),
        engine.settings(),
        "web.checkout",
        chrono::Utc::now(),
    )
    .await
    .expect("explain");
    assert_eq!(
        explain
            .items
            .iter()
            .map(|i| i.rule.as_str())
            .collect::<Vec<_>>(),
        vec!["board-kr-field"; 2]
    );

    // Only the board changes: #4 is put on the checkout KR. The issue itself is untouched,
    // so only the project item's updatedAt says so.
    engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    env.sim.set_project_item(
        "acme",
        7,
        "acme/web",
        4,
        &[("KR", json!("web.checkout")), ("Points", json!(2))],
    );
    let run = engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.changed),
        ("ok", 1),
        "{:?}",
        run.error
    );
    let k = checkout(&engine).await;
    assert_eq!((k.current, k.target, k.items), (Some(3.0), Some(10.0), 3));
}
both_backends!(a_projects_v2_field_maps_an_issue_to_a_kr);

async fn a_github_app_installation_token_is_obtained_and_reused(db: Db) {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github-app");
    let env = GhEnv::with_extra(db, true, 2, "").await;
    // Switch the config from the token to the app.
    let config = std::fs::read_to_string(&env.config)
        .expect("config")
        .replace(
            "token_file = \"gh-token\"",
            &format!(
            "app_id = 4242\ninstallation_id = 99\nprivate_key_file = \"{keys}/test-app-key.pem\""
        ),
        );
    std::fs::write(&env.config, config).expect("config");
    let public =
        std::fs::read_to_string(format!("{keys}/test-app-key.pub.pem")).expect("public key");
    env.sim.enable_app(4242, 99, &public);
    env.seed();
    let engine = env.engine().await;
    let run = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    let reqs = env.sim.requests();
    assert_eq!(reqs[0].path, "/api/v3/app/installations/99/access_tokens");
    assert_eq!(reqs[0].status, 201);
    assert!(
        reqs[1..].iter().all(|r| r.authorized && r.status == 200),
        "{reqs:?}"
    );
    engine
        .sync_source("github", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        env.sim.installation_tokens_issued(),
        1,
        "the installation token is cached until shortly before it expires"
    );
}
both_backends!(a_github_app_installation_token_is_obtained_and_reused);

async fn a_deleted_issue_is_removed_by_a_full_pass(db: Db) {
    let env = GhEnv::new(db, false, 100).await;
    env.seed();
    let engine = env.engine().await;
    engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    env.sim.delete("acme/web", 5);
    let run = engine
        .sync_source("github", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.deleted),
        ("ok", 1),
        "{:?}",
        run.error
    );
    let confirm = env.sim.requests().into_iter().last().expect("request");
    assert_eq!(
        (confirm.path.as_str(), confirm.status),
        ("/repos/acme/web/issues/5", 404)
    );
    assert_eq!(kr(&engine).await.target, Some(4.0));
}
both_backends!(a_deleted_issue_is_removed_by_a_full_pass);

/// ETags live in the store: separate `okrsync sync` processes (a cron job, a restart, a
/// lease taken over by another replica) ask conditionally too.
async fn unchanged_repos_answer_304_across_sync_processes(db: Db) {
    let env = GhEnv::new(db, false, 100).await;
    env.seed();
    let sync = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&env.config)
            .arg("sync")
            .env_remove("RUST_LOG")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(
        sync().contains("github: ok (full"),
        "the first pass is full"
    );
    // The first incremental pass sees each repo's overlap window once and learns its ETag.
    env.sim.clear_requests();
    assert!(sync().contains("github: ok (incremental"));
    assert!(env.sim.requests().iter().all(|r| r.status == 200));
    for run in 0..2 {
        env.sim.clear_requests();
        let out = sync();
        assert!(out.contains("0 changed"), "{out}");
        let reqs = env.sim.requests();
        assert_eq!(reqs.len(), 2, "one request per repo: {reqs:?}");
        assert!(
            reqs.iter()
                .all(|r| r.status == 304 && r.if_none_match.is_some()),
            "run {run}: {reqs:?}"
        );
    }
    // A change is seen. It moves the source's cursor, so the next pass asks from the new
    // cursor (full answers, new ETags), and the one after that is conditional again.
    env.sim.edit("acme/api", 1, |i| {
        i.title = "API task, renamed".into();
        i.updated = minute(11, 0);
    });
    assert!(sync().contains("1 changed"));
    sync();
    env.sim.clear_requests();
    assert!(sync().contains("0 changed"));
    let reqs = env.sim.requests();
    assert!(reqs.iter().all(|r| r.status == 304), "{reqs:?}");
}
both_backends!(unchanged_repos_answer_304_across_sync_processes);

/// Write-back on GitHub: the label goes on the unaligned open issues of the period and
/// comes off an issue once a rule aligns it; `--dry-run` changes nothing.
async fn writeback_adds_and_removes_the_label_on_github(db: Db) {
    let env = GhEnv::with_extra(db, true, 100, "writeback = { label = \"no kr\" }").await;
    env.seed();
    let now = chrono::Utc::now();
    let edit = |n: u64, labels: &[&str]| {
        env.sim.edit("acme/api", n, |i| {
            i.labels = labels.iter().map(|s| s.to_string()).collect();
        })
    };
    // acme/api#1 moves no KR and was closed today: done in the period.
    env.sim.edit("acme/api", 1, |i| {
        i.state = "closed".into();
        i.state_reason = Some("completed".into());
        i.closed = Some(now);
    });
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .output()
            .expect("okrsync");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let doc = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&run(args).stdout).expect("json")
    };
    run(&["sync"]);
    let writes = || {
        env.sim
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        doc(&["writeback", "--dry-run", "--json"]),
        serde_json::json!({"add": ["acme/api#1"], "remove": []})
    );
    assert!(writes().is_empty());
    assert_eq!(
        doc(&["writeback", "--json"]),
        serde_json::json!({"add": ["acme/api#1"], "remove": []})
    );
    assert_eq!(
        writes(),
        vec!["POST /api/v3/repos/acme/api/issues/1/labels 200".to_string()]
    );
    let labels = |n: u64| {
        env.sim
            .issues("acme/api")
            .into_iter()
            .find(|i| i.number == n)
            .map(|i| i.labels)
            .unwrap_or_default()
    };
    assert_eq!(labels(1), vec!["no kr".to_string()]);
    // Aligned by the launch rule: the label comes off (its name escaped in the path).
    edit(1, &["no kr", "launch"]);
    run(&["sync"]);
    assert_eq!(
        doc(&["writeback", "--json"]),
        serde_json::json!({"add": [], "remove": ["acme/api#1"]})
    );
    assert_eq!(
        writes().last().map(String::as_str),
        Some("DELETE /api/v3/repos/acme/api/issues/1/labels/no%20kr 200")
    );
    assert_eq!(labels(1), vec!["launch".to_string()]);
}
both_backends!(writeback_adds_and_removes_the_label_on_github);
