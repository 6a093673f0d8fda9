//! The GitLab source against the simulated GitLab over real HTTP, on SQLite and PostgreSQL.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use okrsync::simulator::gitlab::{Fault, GitLabSim, GlItem};
use okrsync::sync::{Engine, Mode};
use tempfile::TempDir;

use crate::both_backends;
use crate::helpers::{fresh_database, minute, Db};

const TOKEN: &str = "glpat-simulated";
const WEB: &str = "acme/platform/web";

const OKRS: &str = r#"
[[objective]]
id = "pay"
title = "Launch pay by link"
period = "2026-Q4"

[[objective.kr]]
id = "pay.launch"
title = "Launch work done"
measure = "completion"

[[objective.kr]]
id = "pay.team"
title = "The pay team's work"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "launch-label"
kr = "pay.launch"
source = "gitlab"
[rule.match]
labels = "launch"

[[rule]]
id = "team-scoped-label"
kr = "pay.team"
source = "gitlab"
[rule.match]
labels = "team::pay"
"#;

struct GlEnv {
    #[allow(dead_code)]
    dir: TempDir,
    sim: GitLabSim,
    config: PathBuf,
}

impl GlEnv {
    async fn new(db: Db, sub_path: Option<&str>, per_page: u32, extra: &str) -> GlEnv {
        let dir = tempfile::tempdir().expect("dir");
        let sim = GitLabSim::start(TOKEN, sub_path)
            .await
            .expect("start the GitLab simulator");
        let db_url = fresh_database(db, dir.path()).await;
        std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
        std::fs::write(dir.path().join("okrs/pay.toml"), OKRS).expect("okrs");
        std::fs::write(dir.path().join("gl-token"), TOKEN).expect("token");
        let config = format!(
            r#"okrs = ["okrs/*.toml"]
[database]
url = "{db_url}"
[log]
level = "warn"
[sources.gitlab]
kind = "gitlab"
url = "{url}"
token_file = "gl-token"
projects = ["{WEB}"]
groups = ["acme/data"]
per_page = {per_page}
requests_per_second = 1000
retry_backoff = "10ms"
{extra}
"#,
            url = sim.url()
        );
        std::fs::write(dir.path().join("okrsync.toml"), config).expect("config");
        GlEnv {
            config: dir.path().join("okrsync.toml"),
            dir,
            sim,
        }
    }

    async fn engine(&self) -> Engine {
        crate::helpers::engine_for(&self.config).await
    }

    /// acme/platform/web: five issues five minutes apart (two closed) and three merge
    /// requests (one merged), all labelled `launch`; acme/data/etl (in the group): one
    /// issue of the pay team (`team::pay`, weight 3).
    fn seed(&self) {
        for n in 1..=5u64 {
            let mut i = GlItem::issue(100 + n, WEB, n, &format!("Web task {n}"));
            i.updated = minute(10, 0) + Duration::minutes(5 * n as i64);
            i.labels = vec!["launch".into()];
            i.weight = Some(n);
            if n <= 2 {
                i.state = "closed".into();
                i.closed = Some(i.updated);
            }
            self.sim.upsert(i);
        }
        for n in 1..=3u64 {
            let mut mr = GlItem::merge_request(200 + n, WEB, n, &format!("Web change {n}"));
            mr.updated = minute(11, 0) + Duration::minutes(n as i64);
            mr.labels = vec!["launch".into()];
            if n == 1 {
                mr.state = "merged".into();
                mr.merged = Some(mr.updated);
            }
            self.sim.upsert(mr);
        }
        let mut etl = GlItem::issue(301, "acme/data/etl", 1, "Settle pay-by-link payments");
        etl.updated = minute(9, 0);
        etl.labels = vec!["team::pay".into(), "priority::1".into()];
        etl.weight = Some(3);
        etl.state = "closed".into();
        etl.closed = Some(etl.updated);
        self.sim.upsert(etl);
    }
}

async fn kr(engine: &Engine, id: &str) -> okrsync::store::KrState {
    engine
        .store()
        .kr_state(id)
        .await
        .expect("read")
        .expect("kr")
}

async fn multi_page_sync_of_issues_and_merge_requests(db: Db) {
    let env = GlEnv::new(db, None, 2, "").await;
    env.seed();
    let engine = env.engine().await;
    let run = engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(
        (run.fetched, run.requests),
        (9, 7),
        "web issues in 3 pages of 2, web MRs in 2, the group's issues and MRs in 1 each"
    );
    let reqs = env.sim.requests();
    assert!(
        reqs.iter().all(|r| r.authorized && r.status == 200),
        "{reqs:?}"
    );
    let issues: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/api/v4/projects/acme%2Fplatform%2Fweb/issues")
        .collect();
    assert_eq!(issues.len(), 3);
    assert!(issues.iter().all(|r| r.query.contains("pagination=keyset")));
    assert!(
        issues[1..].iter().all(|r| r.query.contains("cursor=")),
        "a project's issues follow keyset cursors"
    );
    assert!(
        reqs.iter()
            .any(|r| r.path.ends_with("/merge_requests") && r.query.contains("page=2")),
        "merge requests follow page numbers: {reqs:?}"
    );
    assert!(reqs
        .iter()
        .any(|r| r.path == "/api/v4/groups/acme%2Fdata/issues"));
    // Done: #1, #2 and !1 of the eight launch items.
    let k = kr(&engine, "pay.launch").await;
    assert_eq!((k.current, k.target), (Some(3.0), Some(8.0)));
    let mr = engine
        .store()
        .item_by_key("gitlab", "acme/platform/web!1")
        .await
        .expect("read")
        .expect("the merged MR is stored");
    assert_eq!(mr.item.kind, okrsync::model::ItemKind::PullRequest);
    assert_eq!(mr.item.project, WEB);
    assert_eq!(mr.item.status, "merged");
    let issue = engine
        .store()
        .item_by_key("gitlab", "acme/platform/web#4")
        .await
        .expect("read")
        .expect("#4 is stored");
    assert_eq!(issue.item.estimate, Some(4.0), "the weight");
    assert_eq!(
        issue.item.url,
        format!("{}/acme/platform/web/-/issues/4", env.sim.url())
    );
}
both_backends!(multi_page_sync_of_issues_and_merge_requests);

async fn an_incremental_edit_is_picked_up(db: Db) {
    let env = GlEnv::new(db, None, 100, "").await;
    env.seed();
    let engine = env.engine().await;
    engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    env.sim.clear_requests();
    // #5 is relabelled out of the launch.
    env.sim
        .edit("acme/platform/web#5", |i| i.labels = vec!["later".into()]);
    let run = engine
        .sync_source("gitlab", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.changed),
        ("ok", 1),
        "{:?}",
        run.error
    );
    assert!(
        env.sim
            .requests()
            .iter()
            .all(|r| r.query.contains("updated_after=")),
        "incremental passes ask from the cursor"
    );
    let k = kr(&engine, "pay.launch").await;
    assert_eq!((k.current, k.target), (Some(3.0), Some(7.0)));
}
both_backends!(an_incremental_edit_is_picked_up);

async fn a_merged_merge_request_moves_a_completion_kr(db: Db) {
    let env = GlEnv::new(db, None, 100, "").await;
    env.seed();
    let engine = env.engine().await;
    engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(kr(&engine, "pay.launch").await.current, Some(3.0));
    env.sim.edit("acme/platform/web!2", |mr| {
        mr.state = "merged".into();
        mr.merged = Some(Utc::now());
    });
    // Closed without merging: abandoned, it leaves the scope.
    env.sim.edit("acme/platform/web!3", |mr| {
        mr.state = "closed".into();
        mr.closed = Some(Utc::now());
    });
    let run = engine
        .sync_source("gitlab", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        (run.outcome.as_str(), run.changed),
        ("ok", 2),
        "{:?}",
        run.error
    );
    let k = kr(&engine, "pay.launch").await;
    assert_eq!((k.current, k.target), (Some(4.0), Some(7.0)));
}
both_backends!(a_merged_merge_request_moves_a_completion_kr);

async fn a_scoped_label_maps_an_issue_through_a_rule(db: Db) {
    let env = GlEnv::new(db, None, 100, "").await;
    env.seed();
    // A subgroup's project counts too (include_subgroups defaults to true); an open issue
    // with weight 5.
    let mut sub = GlItem::issue(302, "acme/data/lake/ingest", 7, "Ingest pay events");
    sub.labels = vec!["team::pay".into()];
    sub.weight = Some(5);
    env.sim.upsert(sub);
    // Outside the configured group: not read.
    let mut other = GlItem::issue(303, "acme/ops/infra", 1, "Not ours");
    other.labels = vec!["team::pay".into()];
    env.sim.upsert(other);
    // A group that holds a configured project, and a group inside another: each item is
    // still read once.
    let config = std::fs::read_to_string(&env.config)
        .expect("config")
        .replace(
            "groups = [\"acme/data\"]",
            "groups = [\"acme/data\", \"acme/platform\", \"acme/data/lake\"]",
        );
    std::fs::write(&env.config, config).expect("config");
    let engine = env.engine().await;
    let run = engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(run.fetched, 10, "8 web items, 2 of the pay team, each once");
    let k = kr(&engine, "pay.team").await;
    assert_eq!((k.current, k.target, k.items), (Some(3.0), Some(8.0), 2));
    let explain =
        okrsync::report::explain(engine.store(), engine.settings(), "pay.team", Utc::now())
            .await
            .expect("explain");
    let mut keys: Vec<(&str, &str)> = explain
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.rule.as_str()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            ("acme/data/etl#1", "team-scoped-label"),
            ("acme/data/lake/ingest#7", "team-scoped-label")
        ]
    );
}
both_backends!(a_scoped_label_maps_an_issue_through_a_rule);

async fn a_deletion_is_confirmed_before_it_is_applied(db: Db) {
    let env = GlEnv::new(db, None, 100, "").await;
    env.seed();
    let engine = env.engine().await;
    engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    env.sim.delete("acme/platform/web#5");
    let run = engine
        .sync_source("gitlab", Mode::Full)
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
        (
            confirm.method.as_str(),
            confirm.path.as_str(),
            confirm.status
        ),
        (
            "GET",
            "/api/v4/projects/acme%2Fplatform%2Fweb/issues/5",
            404
        )
    );
    assert_eq!(kr(&engine, "pay.launch").await.target, Some(7.0));
    assert!(engine
        .store()
        .item_by_key("gitlab", "acme/platform/web#5")
        .await
        .expect("read")
        .is_none());
}
both_backends!(a_deletion_is_confirmed_before_it_is_applied);

async fn a_429_with_retry_after_is_obeyed(db: Db) {
    let env = GlEnv::new(db, None, 100, "").await;
    env.seed();
    let engine = env.engine().await;
    env.sim.fail_next(Fault::Status {
        status: 429,
        retry_after: Some("1".into()),
        body: None,
    });
    let started = Instant::now();
    let run = engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert!(started.elapsed() >= StdDuration::from_millis(950));
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200, 200, 200, 200]);
    assert!(env.sim.rate_limit_remaining() < 2000);
}
both_backends!(a_429_with_retry_after_is_obeyed);

async fn a_self_managed_instance_under_a_sub_path(db: Db) {
    let env = GlEnv::new(db, Some("/gitlab"), 2, "").await;
    env.seed();
    // An older instance: no keyset pages for a project's issues.
    env.sim.refuse_keyset();
    let engine = env.engine().await;
    let run = engine
        .sync_source("gitlab", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(run.fetched, 9);
    let reqs = env.sim.requests();
    assert!(
        reqs.iter()
            .all(|r| r.path.starts_with("/gitlab/api/v4/") && r.authorized),
        "{reqs:?}"
    );
    assert_eq!(reqs[0].status, 405, "keyset refused once…");
    assert!(
        reqs[1..]
            .iter()
            .all(|r| r.status == 200 && !r.query.contains("keyset")),
        "…then page numbers: {reqs:?}"
    );
    let item = engine
        .store()
        .item_by_key("gitlab", "acme/data/etl#1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        item.item.url,
        format!("{}/acme/data/etl/-/issues/1", env.sim.url())
    );
    assert!(item.item.url.contains("/gitlab/acme/"));
    let k = kr(&engine, "pay.launch").await;
    assert_eq!((k.current, k.target), (Some(3.0), Some(8.0)));
}
both_backends!(a_self_managed_instance_under_a_sub_path);

/// Write-back on GitLab: `PUT …/issues/:iid` with `add_labels`, then `remove_labels` once a
/// rule aligns the issue.
async fn writeback_adds_and_removes_the_label_on_gitlab(db: Db) {
    let env = GlEnv::new(
        db,
        Some("/gitlab"),
        100,
        "writeback = { label = \"no kr\" }",
    )
    .await;
    env.seed();
    // acme/data/etl#2 moves no KR and was closed today: done in the period.
    let mut done = GlItem::issue(310, "acme/data/etl", 2, "Unplanned fix");
    done.state = "closed".into();
    done.closed = Some(Utc::now());
    env.sim.upsert(done);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .env_remove("RUST_LOG")
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
    let writes = || {
        env.sim
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect::<Vec<_>>()
    };
    let labels = || env.sim.item("acme/data/etl#2").expect("item").labels;
    run(&["sync"]);
    assert_eq!(
        doc(&["writeback", "--json"]),
        serde_json::json!({"add": ["acme/data/etl#2"], "remove": []})
    );
    assert_eq!(
        writes(),
        vec!["PUT /gitlab/api/v4/projects/acme%2Fdata%2Fetl/issues/2 200".to_string()]
    );
    assert_eq!(labels(), vec!["no kr".to_string()]);
    env.sim
        .edit("acme/data/etl#2", |i| i.labels.push("launch".into()));
    run(&["sync"]);
    assert_eq!(
        doc(&["writeback", "--json"]),
        serde_json::json!({"add": [], "remove": ["acme/data/etl#2"]})
    );
    assert_eq!(labels(), vec!["launch".to_string()]);
}
both_backends!(writeback_adds_and_removes_the_label_on_gitlab);

/// `POST /hooks/gitlab` with the right `X-Gitlab-Token` makes the daemon sync at once;
/// a missing or wrong token is refused.
async fn a_gitlab_webhook_with_its_token_syncs_at_once(db: Db) {
    let env = GlEnv::new(
        db,
        None,
        100,
        "every = \"1h\"\nwebhook_secret_file = \"hook-secret\"",
    )
    .await;
    env.seed();
    let secret = "gitlab-hook-secret";
    std::fs::write(env.dir.path().join("hook-secret"), secret).expect("write");
    let mut d = crate::service::Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, StdDuration::from_secs(30)).await;
    let http = reqwest::Client::new();
    let launch_items = || async {
        let doc: serde_json::Value = http
            .get(d.url("/api/v1/objectives"))
            .send()
            .await
            .expect("objectives")
            .json()
            .await
            .unwrap_or_default();
        doc["objectives"][0]["key_results"][0]["items"].clone()
    };
    let deadline = Instant::now() + StdDuration::from_secs(20);
    while launch_items().await != serde_json::json!(8) {
        assert!(
            Instant::now() < deadline,
            "no first sync; log:\n{}",
            d.log()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let mut new = GlItem::issue(120, WEB, 9, "Launch announcement");
    new.labels = vec!["launch".into()];
    env.sim.upsert(new);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gitlab/webhook-issue.go-gitlab.json"
    ))
    .expect("fixture");
    let post = |token: Option<&str>| {
        let mut req = http
            .post(d.url("/hooks/gitlab"))
            .header("content-type", "application/json")
            .header("x-gitlab-event", "Issue Hook")
            .body(body.clone());
        if let Some(t) = token {
            req = req.header("x-gitlab-token", t);
        }
        async move { req.send().await.expect("post") }
    };
    let missing = post(None).await;
    assert_eq!(missing.status(), 401);
    assert!(missing
        .text()
        .await
        .unwrap_or_default()
        .contains("X-Gitlab-Token"));
    assert_eq!(post(Some("wrong")).await.status(), 401);
    let accepted = post(Some(secret)).await;
    assert_eq!(accepted.status(), 202);
    let answer: serde_json::Value = accepted.json().await.expect("json");
    assert_eq!(answer["queued"], serde_json::json!(["gitlab"]));
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while launch_items().await != serde_json::json!(9) {
        assert!(
            Instant::now() < deadline,
            "the webhook did not trigger a sync; log:\n{}",
            d.log()
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let (status, _) = d.stop(StdDuration::from_secs(20));
    assert!(status.success());
}
both_backends!(a_gitlab_webhook_with_its_token_syncs_at_once);
