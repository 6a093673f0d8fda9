//! Per-source sync state (cursor, last outcome) and the log of sync runs.

use chrono::{DateTime, Utc};

use super::{from_ms, Result, Store, Tx};
use crate::model::{RunOutcome, SyncMode};

/// What the store knows about a source's syncing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceState {
    pub name: String,
    pub kind: String,
    /// The newest upstream `updated` committed: the next incremental pass starts here
    /// (minus the overlap).
    pub cursor: Option<DateTime<Utc>>,
    pub last_full: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_outcome: Option<RunOutcome>,
    pub last_error: Option<String>,
}

/// One sync step of one source.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub source: String,
    pub mode: SyncMode,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: RunOutcome,
    pub fetched: i64,
    pub changed: i64,
    pub deleted: i64,
    pub requests: i64,
    pub krs_changed: i64,
    pub error: Option<String>,
    /// The replica (`host:pid`) that ran it.
    pub replica: Option<String>,
}

type SourceRow = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn decode(r: SourceRow) -> SourceState {
    SourceState {
        name: r.0,
        kind: r.1,
        cursor: r.2.map(from_ms),
        last_full: r.3.map(from_ms),
        last_success: r.4.map(from_ms),
        last_attempt: r.5.map(from_ms),
        last_outcome: r.6.as_deref().map(RunOutcome::from_stored),
        last_error: r.7,
    }
}

const SOURCE_COLUMNS: &str =
    "name, kind, cursor_ms, last_full_ms, last_success_ms, last_attempt_ms, last_outcome, last_error";

impl Tx {
    pub async fn source_state(&mut self, name: &str) -> Result<Option<SourceState>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE name = $1");
        let row: Option<SourceRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(decode))
    }

    pub async fn put_source_state(&mut self, s: &SourceState) -> Result<()> {
        sqlx::query(
            "INSERT INTO sources (name, kind, cursor_ms, last_full_ms, last_success_ms, last_attempt_ms, last_outcome, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, \
             cursor_ms = excluded.cursor_ms, last_full_ms = excluded.last_full_ms, \
             last_success_ms = excluded.last_success_ms, last_attempt_ms = excluded.last_attempt_ms, \
             last_outcome = excluded.last_outcome, last_error = excluded.last_error",
        )
        .bind(&s.name)
        .bind(&s.kind)
        .bind(s.cursor.map(|t| t.timestamp_millis()))
        .bind(s.last_full.map(|t| t.timestamp_millis()))
        .bind(s.last_success.map(|t| t.timestamp_millis()))
        .bind(s.last_attempt.map(|t| t.timestamp_millis()))
        .bind(s.last_outcome.map(RunOutcome::as_str))
        .bind(s.last_error.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a run; its id.
    pub async fn insert_run(&mut self, r: &SyncRun) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO sync_runs (source, mode, started_ms, finished_ms, outcome, fetched, changed, deleted, requests, krs_changed, error, replica) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(&r.source)
        .bind(r.mode.as_str())
        .bind(r.started_at.timestamp_millis())
        .bind(r.finished_at.map(|t| t.timestamp_millis()))
        .bind(r.outcome.as_str())
        .bind(r.fetched)
        .bind(r.changed)
        .bind(r.deleted)
        .bind(r.requests)
        .bind(r.krs_changed)
        .bind(r.error.clone())
        .bind(r.replica.clone())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(id)
    }
}

impl Store {
    /// Sync runs per `(source, outcome)`, for metrics.
    /// Changes whenever a sync step has been recorded (every change to items and matches
    /// happens in one, except a rules reload, which the caller covers): lets a reader
    /// that scans every item keep its answer until it may differ.
    pub async fn items_version(&self) -> Result<String> {
        let (runs, last): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM sync_runs")
                .fetch_one(&self.pool)
                .await?;
        Ok(format!("{runs}:{last}"))
    }

    /// Changes whenever what a report shows can have changed in the store: a sync step
    /// (ok or failed) or a check-in recorded, or a KR snapshot written (a rules change),
    /// on any replica; with `leases`, also when a lease is taken or renewed (who syncs
    /// what). One cheap query (the newest ids).
    pub async fn data_version(&self, leases: bool) -> Result<String> {
        let (runs, checkins, snapshots, held): (i64, i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM sync_runs), \
             (SELECT COALESCE(MAX(id), 0) FROM checkins), \
             (SELECT COALESCE(MAX(id), 0) FROM kr_snapshots), {}",
            if leases {
                // A lease taken or renewed is the newest to expire.
                "(SELECT COALESCE(MAX(expires_ms), 0) FROM leases)"
            } else {
                "0"
            }
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(format!("{runs}.{checkins}.{snapshots}.{held}"))
    }

    pub async fn run_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT source, outcome, COUNT(*) FROM sync_runs GROUP BY source, outcome ORDER BY source, outcome",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Items per source, for metrics.
    pub async fn item_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT source, COUNT(*) FROM items GROUP BY source ORDER BY source")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn source_state(&self, name: &str) -> Result<Option<SourceState>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE name = $1");
        let row: Option<SourceRow> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(decode))
    }

    pub async fn source_states(&self) -> Result<Vec<SourceState>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources ORDER BY name");
        let rows: Vec<SourceRow> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    /// The newest runs, newest first (all sources when `source` is None).
    pub async fn recent_runs(&self, source: Option<&str>, limit: i64) -> Result<Vec<SyncRun>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE ($1 = '' OR source = $1) \
             ORDER BY started_ms DESC, id DESC LIMIT $2"
        );
        let rows: Vec<RunRow> = sqlx::query_as(&sql)
            .bind(source.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(decode_run).collect())
    }

    /// The newest run of `source` with its id (ids grow as runs are recorded): a later
    /// call tells a run recorded since by its larger id, even when the clock that dates the
    /// runs is pinned (`OKRSYNC_NOW`).
    pub async fn latest_run(&self, source: &str) -> Result<Option<(i64, SyncRun)>> {
        let sql = format!(
            "SELECT id, {RUN_COLUMNS} FROM sync_runs WHERE source = $1 \
             ORDER BY started_ms DESC, id DESC LIMIT 1"
        );
        let row: Option<(i64, RunRow)> = sqlx::query_as(&sql)
            .bind(source)
            .fetch_optional(&self.pool)
            .await?
            .map(|r: IdRunRow| {
                (
                    r.0,
                    (
                        r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12,
                    ),
                )
            });
        Ok(row.map(|(id, r)| (id, decode_run(r))))
    }
}

const RUN_COLUMNS: &str = "source, mode, started_ms, finished_ms, outcome, fetched, changed, \
     deleted, requests, krs_changed, error, replica";

type RunRow = (
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

type IdRunRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

fn decode_run(r: RunRow) -> SyncRun {
    SyncRun {
        source: r.0,
        mode: SyncMode::from_stored(&r.1),
        started_at: from_ms(r.2),
        finished_at: r.3.map(from_ms),
        outcome: RunOutcome::from_stored(&r.4),
        fetched: r.5,
        changed: r.6,
        deleted: r.7,
        requests: r.8,
        krs_changed: r.9,
        error: r.10,
        replica: r.11,
    }
}
