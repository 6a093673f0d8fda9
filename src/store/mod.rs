//! The store: SQLite (default, one file, WAL) or PostgreSQL, behind one [`Store`] type that
//! speaks portable SQL through sqlx's `Any` driver with runtime queries. Each backend has
//! its own migrations folder (`migrations/sqlite`, `migrations/postgres`).
//!
//! Times are stored as epoch milliseconds, lists and maps as JSON text.

mod items;
mod leases;
mod ledger;
mod lint;
mod okrs;
mod outbox;
mod reports;
mod runs;
mod sets;
mod step;
mod validators;

pub use items::{content_hash, ItemRow, RematchBatch, RematchCursor, Selector, SelectorKind};
pub use leases::{Lease, LeaseAttempt};
pub use ledger::ScopeTotals;
pub use ledger::SnapshotRecord;
pub use lint::{RuleUse, SharedItems};
pub(crate) use okrs::same;
pub use okrs::{Confidence, Definitions, KrSnapshot, KrState, KrTimes, NewCheckin, SnapshotCause};
pub use outbox::{NotifyState, OutboxRow};
pub use reports::{
    ItemLinks, MovesCounts, PeriodRows, ProjectCounts, UnalignedRow, WorkLink, WorkRow,
};
pub use runs::{SourceState, SyncRun};
pub use step::{ChildDeltas, ChildLinks, ItemWrite, MatchRow, StoredItem, StoredMatches};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::ExposeSecret;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::settings::{redact_url, DatabaseSettings};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors a caller may want to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not be reached (gone, refusing, no connection free in
    /// time, locked by another process) rather than failing a statement: worth a retry.
    pub fn is_unreachable(&self) -> bool {
        let sql = match self {
            StoreError::Connect { .. } => return true,
            StoreError::Sql(e) => e,
            _ => return false,
        };
        match sql {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
            sqlx::Error::Database(d) => {
                let m = d.message().to_ascii_lowercase();
                m.contains("database is locked") || m.contains("terminating connection")
            }
            _ => false,
        }
    }

    /// Whether a write failed for want of space: SQLite's "database or disk is full",
    /// PostgreSQL's `disk_full` (53100), or the file system's ENOSPC.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sql(e) | StoreError::Connect { source: e, .. } => sql_storage_full(e),
            _ => false,
        }
    }
}

fn sql_storage_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let m = d.message().to_ascii_lowercase();
            matches!(d.code().as_deref(), Some("13") | Some("53100"))
                || m.contains("disk is full")
                || m.contains("no space left")
        }
        sqlx::Error::Io(io) => {
            io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull
        }
        _ => false,
    }
}

/// Whether anything in `e`'s chain of causes is a write that failed for want of space;
/// the message to show if so.
pub fn storage_full(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        let full = cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_storage_full)
            || cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(sql_storage_full);
        full.then(|| cause.to_string())
    })
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether a pooled connection may be handed out: not when a transaction is still open
/// on it. A COMMIT that fails for want of space leaves SQLite's transaction rolled back
/// but the driver's count of open transactions at one, and the ROLLBACK after it fails
/// too; such a connection would refuse every later BEGIN. The pool closes it instead
/// (closing rolls back whatever is open) and opens a fresh one.
fn usable(conn: &mut sqlx::AnyConnection) -> bool {
    use sqlx::Connection as _;
    let open = conn.is_in_transaction();
    if open {
        tracing::warn!("a database connection was left inside a transaction; replacing it");
    }
    !open
}

/// A connection pool plus what the backend needs (SQLite allows one writer at a time).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Why the last sync step could not write (the disk is full), until one can again:
    /// `/readyz` answers 503 meanwhile.
    unwritable: Arc<std::sync::Mutex<Option<String>>>,
}

/// A write transaction. On SQLite it also holds the process-wide writer lock, so two sync
/// steps never wait on each other inside SQLite's busy handler.
pub struct Tx {
    pub(crate) tx: Transaction<'static, Any>,
    backend: Backend,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Tx {
    /// Refreshes the planner's statistics of `items` and `matches` inside this
    /// transaction (PostgreSQL; a no-op on SQLite). A first sync that grows the tables from
    /// nothing to 100k rows in one transaction needs it: PostgreSQL settles on generic
    /// plans for the prepared lookups while the tables are still nearly empty, and a plan
    /// made for ten rows (probe the key's first column, filter the rest) turns every
    /// lookup into a scan of the whole source. ANALYZE counts the transaction's own rows
    /// and invalidates those plans.
    pub async fn refresh_statistics(&mut self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE items").execute(&mut *self.tx).await?;
            sqlx::query("ANALYZE matches")
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Store {
    /// Opens (and for SQLite creates) the database. Does not migrate.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let raw = settings.url.expose_secret();
        let shown = redact_url(raw);
        let connect_err = |source| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        if raw.starts_with("sqlite:") {
            let path = sqlite_path(raw);
            if let Some(parent) = Path::new(&path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| connect_err(sqlx::Error::Io(e)))?;
                }
            }
            let url = if path == ":memory:" {
                "sqlite::memory:".to_string()
            } else {
                format!("sqlite://{path}?mode=rwc")
            };
            let busy = format!(
                "PRAGMA busy_timeout = {}",
                settings.busy_timeout.as_millis().min(i32::MAX as u128)
            );
            let pool = AnyPoolOptions::new()
                .max_connections(settings.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |conn, _| {
                    let busy = busy.clone();
                    Box::pin(async move {
                        conn.execute(busy.as_str()).await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        // 16 MiB of pages: a step's indexes stay in memory instead of
                        // going out to the WAL and back (docs/performance.md).
                        conn.execute("PRAGMA cache_size = -16384").await?;
                        // A step's commit does not copy the WAL into the database and
                        // sync it (a tenth of a second for a step of 1,000 items): the
                        // daemon checkpoints after its steps, off their path; this bound
                        // (64 MiB of WAL) covers `okrsync sync` run from cron.
                        conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                        Ok(())
                    })
                })
                .before_acquire(|conn, _| Box::pin(async move { Ok(usable(conn)) }))
                .connect(&url)
                .await
                .map_err(connect_err)?;
            Ok(Store {
                pool,
                backend: Backend::Sqlite,
                write_lock: Arc::new(tokio::sync::Mutex::new(())),
                unwritable: Arc::default(),
            })
        } else {
            // A server that is gone must not hold an API read for long: a connection is
            // waited for 3 s at most, then the request fails with the database named (a
            // busy pool hands connections over in milliseconds).
            let pool = AnyPoolOptions::new()
                .max_connections(settings.max_connections)
                .acquire_timeout(Duration::from_secs(3))
                .before_acquire(|conn, _| Box::pin(async move { Ok(usable(conn)) }))
                .connect(raw)
                .await
                .map_err(connect_err)?;
            Ok(Store {
                pool,
                backend: Backend::Postgres,
                write_lock: Arc::new(tokio::sync::Mutex::new(())),
                unwritable: Arc::default(),
            })
        }
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<usize> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let before = self.applied_migrations().await.unwrap_or(0);
        migrator.run(&self.pool).await?;
        let after = self.applied_migrations().await.unwrap_or(0);
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let row: (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.0 as usize)
    }

    /// Migrations this binary knows that the database has not applied.
    pub async fn pending_migrations(&self) -> Result<usize> {
        let known = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.iter().count(),
            Backend::Postgres => POSTGRES_MIGRATIONS.iter().count(),
        };
        Ok(known.saturating_sub(self.applied_migrations().await?))
    }

    /// Records why a write failed for want of space (`Some`), or that one succeeded again
    /// (`None`).
    pub fn set_unwritable(&self, why: Option<String>) {
        if let Ok(mut slot) = self.unwritable.lock() {
            *slot = why;
        }
    }

    /// Why the last sync step could not write, while no later one could.
    pub fn unwritable(&self) -> Option<String> {
        self.unwritable.lock().ok().and_then(|s| s.clone())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Is the database reachable?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        // SQLite: take the database's write lock at BEGIN. A deferred transaction that
        // reads first and writes later fails with SQLITE_BUSY_SNAPSHOT (517, "database
        // is locked", not retried by the busy timeout) when another connection committed
        // in between — a lease renewal, a check-in, the other source's step.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx {
            tx,
            backend: self.backend,
            _guard: guard,
        })
    }

    /// A transaction that only reads (one consistent snapshot, e.g. `rules diff`): no
    /// write lock, on either backend; it must be rolled back, never written through.
    pub async fn begin_read(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.pool.begin().await?,
            backend: self.backend,
            _guard: None,
        })
    }

    /// Copies what the write-ahead log holds into the database file (SQLite; nothing on
    /// PostgreSQL), without waiting for readers or blocking writers.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }
}

impl Tx {
    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// `sqlite://data/x.db`, `sqlite:data/x.db`, `sqlite:///abs/x.db` → the file path.
/// Another `okrsync run` already uses this SQLite database.
#[derive(Debug, thiserror::Error)]
#[error("another okrsync run ({holder}) uses {path}: SQLite supports one replica; use PostgreSQL (database.url = \"postgres://…\") to run several")]
pub struct SingleReplica {
    pub path: String,
    pub holder: String,
}

/// On SQLite, the daemon holds an exclusive lock on `<database>.lock` while it runs (the
/// operating system drops it when the process ends, however it ends): a second daemon on
/// the same file refuses to start. `None` for PostgreSQL, where replicas share the work.
/// `holder` (this replica's id) is written into the lock file, so the refusal can name it.
pub fn lock_single_replica(
    settings: &DatabaseSettings,
    holder: &str,
) -> anyhow::Result<Option<std::fs::File>> {
    use anyhow::Context;
    use std::io::{Read, Seek, Write};
    let raw = settings.url.expose_secret();
    if !raw.starts_with("sqlite:") {
        return Ok(None);
    }
    let path = sqlite_path(raw);
    if path == ":memory:" {
        return Ok(None);
    }
    let lock_path = format!("{path}.lock");
    if let Some(parent) = Path::new(&lock_path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("cannot open {lock_path}"))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{holder}")?;
            file.flush()?;
            Ok(Some(file))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut other = String::new();
            let _ = file.read_to_string(&mut other);
            Err(SingleReplica {
                path,
                holder: if other.trim().is_empty() {
                    "unknown process".into()
                } else {
                    other.trim().to_string()
                },
            }
            .into())
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {lock_path}")))
        }
    }
}

fn sqlite_path(url: &str) -> String {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() {
        ":memory:".into()
    } else {
        rest.to_string()
    }
}

/// A nullable float as a bind parameter. sqlx 0.8's `Any` driver sends a NULL `f64` as a
/// `real` (f32) NULL, which PostgreSQL refuses for `double precision`; so nullable floats
/// travel as text (Rust's formatting round-trips exactly) and SQL casts them back.
pub(crate) fn opt_f64(v: Option<f64>) -> Option<String> {
    v.map(|x| x.to_string())
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    use sqlx::Row;
    row.try_get(col).map_err(StoreError::from)
}

/// `($1, $2, $3), ($4, $5, $6)…`: numbered placeholders for a multi-row statement (both
/// backends take `$n`; sqlx's `QueryBuilder` writes `?` for `Any`, which PostgreSQL refuses).
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * columns + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://data/okrsync.db"), "data/okrsync.db");
        assert_eq!(sqlite_path("sqlite:data/x.db"), "data/x.db");
        assert_eq!(
            sqlite_path("sqlite:///var/lib/okrsync/x.db"),
            "/var/lib/okrsync/x.db"
        );
        assert_eq!(sqlite_path("sqlite://x.db?mode=rwc"), "x.db");
        assert_eq!(sqlite_path("sqlite::memory:"), ":memory:");
    }

    /// A step reads, another connection commits (a lease renewal), then the step writes:
    /// with a deferred BEGIN, SQLite refuses that write (SQLITE_BUSY_SNAPSHOT); with
    /// BEGIN IMMEDIATE the other writer waits for the step instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_step_survives_a_commit_between_its_reads_and_its_writes() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::connect(&DatabaseSettings {
            url: secrecy::SecretString::from(format!(
                "sqlite://{}/okrsync.db",
                dir.path().display()
            )),
            max_connections: 4,
            busy_timeout: std::time::Duration::from_secs(30),
        })
        .await
        .expect("connect");
        store.migrate().await.expect("migrate");
        let now = Utc::now();
        store
            .try_lease("jira", "me", now, now + chrono::Duration::minutes(1))
            .await
            .expect("lease");
        let mut tx = store.begin().await.expect("begin");
        assert!(tx.source_state("jira").await.expect("read").is_none());
        let other = store.clone();
        let renewal =
            tokio::spawn(async move { other.mark_lease_run("jira", "me", Utc::now()).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.set_meta("probe", "1")
            .await
            .expect("the step's write goes through");
        tx.commit().await.expect("commit");
        renewal
            .await
            .expect("join")
            .expect("the renewal waited and went through");
        assert_eq!(
            store.meta("probe").await.expect("meta").as_deref(),
            Some("1")
        );
    }
}
