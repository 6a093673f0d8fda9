//! Metric key results read from a local spreadsheet file, on SQLite and PostgreSQL.

use std::sync::Arc;

use okrsync::settings::Settings;
use okrsync::store::Store;
use okrsync::sync::{Engine, Mode};

use crate::both_backends;
use crate::helpers::{fresh_database, Db};

const OKRS: &str = r#"
[[objective]]
id = "money"
title = "Healthy revenue"
period = "2026-Q4"

[[objective.kr]]
id = "money.mrr"
title = "EMEA MRR from 1.2M to 2M"
measure = "metric"
metric = { source = "finance", sheet = "metrics", row = "MRR EMEA", column = "Value" }
start = 1200000
target = 2000000

[[objective.kr]]
id = "money.churn"
title = "Churn from 5% to 3%"
measure = "metric"
metric = { source = "finance", cell = "B3" }
start = 5
target = 3
"#;

fn csv(mrr: &str, churn: &str) -> String {
    format!("Metric,Value,Note\nMRR EMEA,\"{mrr}\",monthly\nChurn,{churn},%\n")
}

async fn metric_krs_read_cells_and_labels_and_go_stale_on_a_bad_cell(db: Db) {
    let dir = tempfile::tempdir().expect("dir");
    let db_url = fresh_database(db, dir.path()).await;
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(dir.path().join("okrs/money.toml"), OKRS).expect("okrs");
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "4%")).expect("csv");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        format!("[database]\nurl = \"{db_url}\"\n[log]\nlevel = \"warn\"\n[sources.finance]\nkind = \"sheet\"\npath = \"metrics.csv\"\nevery = \"1h\"\n"),
    )
    .expect("config");
    let settings = Arc::new(
        Settings::load(&dir.path().join("okrsync.toml")).unwrap_or_else(|r| panic!("{r}")),
    );
    let store = Store::connect(&settings.database).await.expect("connect");
    store.migrate().await.expect("migrate");
    let engine = Engine::new(settings.clone(), store).expect("engine");
    engine.prepare().await.expect("prepare");

    let run = engine
        .sync_source("finance", Mode::Full)
        .await
        .expect("sync");
    assert_eq!(run.outcome, "ok", "{:?}", run.error);
    let state = |id: &'static str| {
        let store = engine.store().clone();
        async move { store.kr_state(id).await.expect("read").expect("kr") }
    };
    // (1.6M − 1.2M) / (2M − 1.2M) = 0.5; churn (4 − 5) / (3 − 5) = 0.5.
    let mrr = state("money.mrr").await;
    assert_eq!((mrr.current, mrr.progress), (Some(1_600_000.0), 0.5));
    let churn = state("money.churn").await;
    assert_eq!((churn.current, churn.progress), (Some(4.0), 0.5));

    // Unchanged file: nothing new is written.
    let again = engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!((again.changed, again.krs_changed), (0, 0));

    // Churn beats the target: progress clamps to 1, current does not.
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "2.5")).expect("csv");
    engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    let churn = state("money.churn").await;
    assert_eq!((churn.current, churn.progress), (Some(2.5), 1.0));
    let history: Vec<Option<f64>> = engine
        .store()
        .history("money.churn", 10)
        .await
        .expect("history")
        .iter()
        .map(|h| h.current)
        .collect();
    assert_eq!(
        history,
        vec![None, Some(4.0), Some(2.5)],
        "before any observation, then each value"
    );

    // An emptied cell is an error on its KR: stale with the reason, never a silent zero.
    std::fs::write(dir.path().join("metrics.csv"), csv("1,600,000", "")).expect("csv");
    engine
        .sync_source("finance", Mode::Incremental)
        .await
        .expect("sync");
    let doc = okrsync::report::status(engine.store(), &settings, chrono::Utc::now())
        .await
        .expect("status");
    let churn = &doc.objectives[0].key_results[1];
    assert_eq!(churn.status, okrsync::model::Status::Stale);
    assert!(
        churn
            .status_reason
            .as_deref()
            .unwrap_or("")
            .contains("B3 is empty"),
        "{:?}",
        churn.status_reason
    );
    assert_eq!(churn.current, Some(2.5), "the last good value stays");
    assert_ne!(
        doc.objectives[0].key_results[0].status,
        okrsync::model::Status::Stale
    );
}
both_backends!(metric_krs_read_cells_and_labels_and_go_stale_on_a_bad_cell);
