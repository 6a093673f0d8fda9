//! The sync engine against the Jira simulator over real HTTP, on SQLite and PostgreSQL.

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use okrsync::simulator::jira::{Fault, SimFlavor};
use okrsync::sync::Mode;

use crate::both_backends;
use crate::helpers::{issue, minute, Db, SourceOpts, TestEnv};

const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win EMEA"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Ship checkout"
measure = "completion"

[[objective.kr]]
id = "emea.points"
title = "Checkout points"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "checkout"
krs = ["emea.checkout", "emea.points"]
[rule.match]
labels = "checkout"
"#;

fn backlog() -> Vec<okrsync::simulator::jira::SimIssue> {
    let t = minute(10, 0);
    (1..=7u64)
        .map(|n| {
            let done = n <= 3;
            issue(
                10_000 + n,
                &format!("PAY-{n}"),
                &format!("Checkout task {n}"),
                if done { "done" } else { "todo" },
                Some(n as f64),
                &["checkout"],
                // Five minutes apart: only the newest lies in the 2-minute overlap window.
                t + Duration::minutes(5 * n as i64),
                done.then_some(t),
            )
        })
        .collect()
}

async fn kr(engine: &okrsync::sync::Engine, id: &str) -> okrsync::store::KrState {
    engine
        .store()
        .kr_state(id)
        .await
        .expect("read")
        .expect("kr exists")
}

async fn full_sync_of_a_multi_page_cloud_result(db: Db) {
    let env = TestEnv::new(
        db,
        OKRS,
        SourceOpts {
            page_size: 3,
            ..SourceOpts::default()
        },
    )
    .await;
    env.seed(backlog());
    let engine = env.engine().await;

    let run = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(run.fetched, 7);
    assert_eq!(run.changed, 7);
    assert_eq!(run.requests, 3, "7 issues in pages of 3");
    assert_eq!(engine.store().count_items("jira").await.expect("count"), 7);
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!((k.current, k.target, k.items), (Some(3.0), Some(7.0), 7));
    assert!((k.progress - 3.0 / 7.0).abs() < 1e-9);
    // Weighted by estimate: done 1+2+3 = 6 of 1+…+7 = 28.
    let p = kr(&engine, "emea.points").await;
    assert_eq!((p.current, p.target), (Some(6.0), Some(28.0)));
    let history = engine
        .store()
        .history("emea.checkout", 100)
        .await
        .expect("history");

    // Page 2+ carried the credentials too.
    let reqs = env.sim.requests();
    assert!(
        reqs.iter().all(|r| r.authorization),
        "every request is authenticated"
    );
    assert!(reqs.iter().all(|r| r.path == "/rest/api/3/search/jql"));

    // A second step with no upstream change: one request, nothing new written.
    env.sim.clear_requests();
    let again = engine
        .sync_source("jira", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(again.outcome, "ok");
    assert_eq!(again.changed, 0);
    assert_eq!(again.krs_changed, 0);
    assert_eq!(again.requests, 1, "an unchanged source costs one request");
    let jql = &env.sim.requests()[0].query;
    assert!(
        jql.contains("updated"),
        "incremental passes bound the JQL by updated: {jql}"
    );
    assert_eq!(
        engine
            .store()
            .history("emea.checkout", 100)
            .await
            .expect("history"),
        history
    );
}
both_backends!(full_sync_of_a_multi_page_cloud_result);

async fn full_sync_of_a_data_center_result(db: Db) {
    let env = TestEnv::new(
        db,
        OKRS,
        SourceOpts {
            flavor: SimFlavor::DataCenter,
            page_size: 2,
            ..SourceOpts::default()
        },
    )
    .await;
    env.seed(backlog());
    let engine = env.engine().await;
    let run = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!((run.fetched, run.requests), (7, 4));
    let reqs = env.sim.requests();
    assert!(reqs
        .iter()
        .all(|r| r.path == "/rest/api/2/search" && r.authorization));
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!((k.current, k.target), (Some(3.0), Some(7.0)));
}
both_backends!(full_sync_of_a_data_center_result);

async fn incremental_sync_picks_up_an_edit_in_the_cursors_minute(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(backlog());
    let engine = env.engine().await;
    engine.sync_source("jira", Mode::Full).await.expect("sync");
    // The cursor is 10:35:00 (PAY-7). An edit at 10:35:40 lies in the same minute: a JQL
    // date literal ("2026/11/03 10:35") could not tell them apart.
    let mut edited = backlog().remove(5);
    edited.status = "Done".into();
    edited.status_category = "done".into();
    edited.updated = minute(10, 35) + Duration::seconds(40);
    edited.resolved = Some(edited.updated);
    env.sim.upsert(edited);

    let run = engine
        .sync_source("jira", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(run.changed, 1, "only the edited issue is written");
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!(k.current, Some(4.0));
    let history = engine
        .store()
        .history("emea.checkout", 10)
        .await
        .expect("history");
    assert_eq!(history.last().map(|s| s.current), Some(Some(4.0)));
}
both_backends!(incremental_sync_picks_up_an_edit_in_the_cursors_minute);

async fn a_deletion_is_removed_by_reconcile(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(backlog());
    let engine = env.engine().await;
    engine.sync_source("jira", Mode::Full).await.expect("sync");
    env.sim.delete("PAY-1");
    // An incremental pass cannot see a deletion …
    let inc = engine
        .sync_source("jira", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(inc.deleted, 0);
    assert_eq!(engine.store().count_items("jira").await.expect("count"), 7);
    // … a full reconcile removes it and recomputes the KRs it moved.
    let full = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(full.deleted, 1);
    assert_eq!(engine.store().count_items("jira").await.expect("count"), 6);
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!((k.current, k.target), (Some(2.0), Some(6.0)));
}
both_backends!(a_deletion_is_removed_by_reconcile);

async fn a_429_with_retry_after_is_obeyed(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(backlog());
    let engine = env.engine().await;
    env.sim.fail_next(Fault::Status {
        status: 429,
        retry_after: Some("1".into()),
        body: None,
    });
    let started = Instant::now();
    let run = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert!(
        started.elapsed() >= StdDuration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(run.requests, 2);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    assert_eq!(run.fetched, 7);
}
both_backends!(a_429_with_retry_after_is_obeyed);

async fn a_500_mid_pagination_changes_nothing_and_the_next_step_succeeds(db: Db) {
    let env = TestEnv::new(
        db,
        OKRS,
        SourceOpts {
            page_size: 3,
            max_retries: 1,
            ..SourceOpts::default()
        },
    )
    .await;
    env.seed(backlog());
    let engine = env.engine().await;
    engine.sync_source("jira", Mode::Full).await.expect("sync");
    let before_kr = kr(&engine, "emea.checkout").await;
    let before_sources = engine.store().source_states().await.expect("sources");
    let before_history = engine
        .store()
        .history("emea.checkout", 100)
        .await
        .expect("history");

    // Upstream work happens: two issues are finished (on pages 1 and 2 of the next pass).
    for key in ["PAY-4", "PAY-7"] {
        env.sim.edit(key, |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(chrono::Utc::now());
        });
    }
    // The second page fails, and so does its retry.
    env.sim.clear_requests();
    let fault = || Fault::Status {
        status: 500,
        retry_after: None,
        body: Some("{\"errorMessages\":[\"Internal server error\"],\"errors\":{}}".into()),
    };
    env.sim.fail_request_number(2, fault());
    env.sim.fail_request_number(3, fault());
    let failed = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(failed.outcome, "failed");
    assert!(
        failed.error.as_deref().unwrap_or("").contains("500"),
        "{:?}",
        failed.error
    );
    assert_eq!(
        kr(&engine, "emea.checkout").await,
        before_kr,
        "KR values untouched"
    );
    assert_eq!(
        engine
            .store()
            .history("emea.checkout", 100)
            .await
            .expect("history"),
        before_history
    );
    let after_sources = engine.store().source_states().await.expect("sources");
    assert_eq!(
        after_sources[0].cursor, before_sources[0].cursor,
        "cursor untouched"
    );
    assert_eq!(after_sources[0].last_full, before_sources[0].last_full);
    assert_eq!(
        after_sources[0].last_outcome.map(|o| o.as_str()),
        Some("failed")
    );

    // The next step succeeds and applies both changes.
    let ok = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(ok.outcome, "ok", "{:?}", ok.error);
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!(k.current, Some(5.0));
    let runs = engine
        .store()
        .recent_runs(Some("jira"), 10)
        .await
        .expect("runs");
    assert_eq!(
        runs.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
        vec!["ok", "failed", "ok"]
    );
}
both_backends!(a_500_mid_pagination_changes_nothing_and_the_next_step_succeeds);

/// Delegates to the real Jira source but leaves one issue out of every pass, as offset
/// pagination does when another issue is edited mid-pass.
struct Skipping {
    inner: okrsync::sources::jira::JiraSource,
    skip: &'static str,
}

impl okrsync::sources::ItemSource for Skipping {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn fetch(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> okrsync::sources::PageStream<'_> {
        use futures::TryStreamExt;
        let skip = self.skip;
        Box::pin(
            self.inner
                .fetch(since)
                .map_ok(move |page| page.into_iter().filter(|i| i.key != skip).collect()),
        )
    }

    fn requests_sent(&self) -> u64 {
        self.inner.requests_sent()
    }

    fn confirm_gone<'a>(
        &'a self,
        missing: Vec<okrsync::model::ItemRef>,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Vec<okrsync::model::Item>, okrsync::sources::SourceError>,
    > {
        self.inner.confirm_gone(missing)
    }
}

async fn a_full_pass_deletes_only_what_the_upstream_confirms_gone(db: Db) {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    env.seed(backlog());
    let engine = env.engine().await;
    engine.sync_source("jira", Mode::Full).await.expect("sync");
    env.sim.delete("PAY-1");

    let settings = env.settings();
    let okrsync::sources::SourceConfig::Jira(j) = &settings.sources["jira"].kind else {
        panic!("a Jira source");
    };
    let inner = okrsync::sources::jira::JiraSource::new(
        "jira",
        j.clone(),
        settings.sources["jira"].http.clone(),
    )
    .expect("source");
    let mut sources: std::collections::BTreeMap<
        String,
        std::sync::Arc<dyn okrsync::sources::ItemSource>,
    > = Default::default();
    sources.insert(
        "jira".into(),
        std::sync::Arc::new(Skipping {
            inner,
            skip: "PAY-3",
        }),
    );
    let skipping = okrsync::sync::Engine::with_sources(settings, engine.store().clone(), sources);
    env.sim.clear_requests();
    let run = skipping
        .sync_source("jira", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    assert_eq!(
        run.deleted, 1,
        "PAY-1 is gone; PAY-3 was only skipped by the pass"
    );
    assert_eq!(engine.store().count_items("jira").await.expect("count"), 6);
    let confirm = env
        .sim
        .requests()
        .into_iter()
        .last()
        .expect("a confirmation request");
    assert!(
        confirm.query.contains("id+in") || confirm.query.contains("id%20in"),
        "{}",
        confirm.query
    );
    let k = kr(&engine, "emea.checkout").await;
    assert_eq!((k.current, k.target), (Some(2.0), Some(6.0)));
}
both_backends!(a_full_pass_deletes_only_what_the_upstream_confirms_gone);

/// A first sync that grows the tables from nothing within one transaction refreshes the
/// planner's statistics on the way (PostgreSQL): otherwise the prepared lookups keep plans
/// made for an empty table and every page scans the whole source (a 100k first sync took
/// five times longer). `cargo bench --bench sync` measures it; this checks the mechanism.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_first_sync_leaves_the_planner_knowing_the_table_size() {
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    if crate::helpers::postgres_url().is_none() {
        crate::helpers::skip_notice(
            "sync::a_big_first_sync_leaves_the_planner_knowing_the_table_size",
        );
        return;
    }
    let env = TestEnv::new(Db::Postgres, OKRS, SourceOpts::default()).await;
    env.sim.upsert_all((1..=1_500u64).map(|n| {
        issue(
            n,
            &format!("PAY-{n}"),
            "Checkout work",
            if n % 2 == 0 { "done" } else { "in_progress" },
            Some(1.0),
            &["checkout"],
            minute(9, 0),
            (n % 2 == 0).then(|| minute(9, 0)),
        )
    }));
    let engine = env.engine().await;
    let run = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!((run.fetched, run.changed), (1_500, 1_500));
    let url = env.settings().database.url.expose_secret().to_string();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (tuples,): (f32,) =
        sqlx::query_as("SELECT reltuples FROM pg_class WHERE relname = 'items'")
            .fetch_one(&mut conn)
            .await
            .expect("pg_class");
    assert!(
        tuples >= 1_000.0,
        "the planner still thinks items has {tuples} rows after a 1,500-item first sync"
    );
}

/// SQLite: a first sync into an empty store drops the items' secondary indexes and builds
/// them again from the migrations' own statements at its end (docs/performance.md); a
/// first sync that fails leaves them as they were, and the rebuilt ones serve lookups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_builds_the_item_indexes_again_at_its_end() {
    use secrecy::ExposeSecret;
    use sqlx::Connection;
    let env = TestEnv::new(
        Db::Sqlite,
        OKRS,
        SourceOpts {
            page_size: 3,
            max_retries: 0,
            ..SourceOpts::default()
        },
    )
    .await;
    env.seed(backlog());
    let engine = env.engine().await;
    let url = env.settings().database.url.expose_secret().to_string();
    let indexes = || async {
        let mut conn = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = 'items' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("sqlite_master");
        rows
    };
    let migrated = indexes().await;
    let names: Vec<&str> = migrated.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["items_epic", "items_project", "items_source_key"]);

    env.sim.fail_request_number(
        2,
        Fault::Status {
            status: 500,
            retry_after: None,
            body: None,
        },
    );
    let failed = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!(failed.outcome, "failed");
    assert_eq!(
        indexes().await,
        migrated,
        "a failed first sync rolls the drop back"
    );

    let ok = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!((ok.outcome.as_str(), ok.changed), ("ok", 7));
    assert_eq!(
        indexes().await,
        migrated,
        "built again as the migrations made them"
    );
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT ext_id FROM items WHERE source = 'jira' AND key = 'PAY-1'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("plan");
    assert!(
        plan.iter()
            .any(|(_, _, _, d)| d.contains("items_source_key")),
        "{plan:?}"
    );
    // Stored items now: a later full pass keeps the indexes and walks the stored ids.
    env.sim.delete("PAY-3");
    let again = engine.sync_source("jira", Mode::Full).await.expect("sync");
    assert_eq!((again.outcome.as_str(), again.deleted), ("ok", 1));
    assert_eq!(indexes().await, migrated);
}
