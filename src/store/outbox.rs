//! The notifications' state in the store: what each KR last looked like to the notifiers
//! (`notify_state`) and the messages to send (`outbox`), each row sent once.

use std::collections::HashMap;

use super::{Backend, Result, Store, Tx};

/// What a KR last looked like to the notifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyState {
    pub status: String,
    /// Flag kinds, in their order.
    pub flags: Vec<String>,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub notifier: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    /// When it became due: [`Store::claim_message`] takes it only if nobody moved it since.
    pub next_ms: i64,
}

impl Tx {
    /// Serialises the notifiers' comparisons across replicas (PostgreSQL: a transaction
    /// advisory lock; SQLite has one writer): two replicas never both queue one change.
    pub async fn lock_notify_state(&mut self) -> Result<()> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7317001)) AS held")
                .fetch_one(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Every KR's last state, by KR id.
    pub async fn notify_states(&mut self) -> Result<HashMap<String, NotifyState>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT kr_id, status, flags FROM notify_state")
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(kr, status, flags)| {
                let flags = flags
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect();
                (kr, NotifyState { status, flags })
            })
            .collect())
    }

    pub async fn put_notify_state(
        &mut self,
        kr_id: &str,
        state: &NotifyState,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO notify_state (kr_id, status, flags, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kr_id) DO UPDATE SET status = excluded.status, flags = excluded.flags, \
             at_ms = excluded.at_ms",
        )
        .bind(kr_id)
        .bind(&state.status)
        .bind(state.flags.join(","))
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// What the notifiers last saw of the subjects other than KRs (`source/NAME`,
    /// `unaligned/NOTIFIER/PROJECT`), by subject.
    pub async fn watch_states(&mut self) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT subject, state FROM notify_watch")
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn put_watch_state(&mut self, subject: &str, state: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO notify_watch (subject, state, at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (subject) DO UPDATE SET state = excluded.state, at_ms = excluded.at_ms",
        )
        .bind(subject)
        .bind(state)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Queues a message.
    pub async fn enqueue(
        &mut self,
        notifier: &str,
        event: &str,
        payload: &str,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (notifier, event, payload, created_ms, next_ms) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(notifier)
        .bind(event)
        .bind(payload)
        .bind(now_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// What the notifiers last saw of one subject (outside a transaction: a look before
    /// deciding whether to compute anything).
    pub async fn watch_state(&self, subject: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT state FROM notify_watch WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Messages due by `now_ms`, oldest first.
    pub async fn due_messages(&self, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<(i64, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, notifier, event, payload, attempts, next_ms FROM outbox \
             WHERE sent_ms IS NULL AND next_ms <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, notifier, event, payload, attempts, next_ms)| OutboxRow {
                    id,
                    notifier,
                    event,
                    payload,
                    attempts,
                    next_ms,
                },
            )
            .collect())
    }

    /// Takes a due message for sending until `until_ms` (another replica skips it until
    /// then); false when another replica took it first.
    pub async fn claim_message(&self, row: &OutboxRow, until_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET next_ms = $1 WHERE id = $2 AND next_ms = $3 AND sent_ms IS NULL",
        )
        .bind(until_ms)
        .bind(row.id)
        .bind(row.next_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a delivery: sent, or failed and due again at `next_ms`.
    pub async fn record_delivery(
        &self,
        id: i64,
        outcome: std::result::Result<(), (&str, i64)>,
        now_ms: i64,
    ) -> Result<()> {
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE outbox SET sent_ms = $1, attempts = attempts + 1, last_error = NULL \
                     WHERE id = $2",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
            }
            Err((error, next_ms)) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_ms = $2 \
                     WHERE id = $3",
                )
                .bind(error)
                .bind(next_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Per notifier: messages sent, failed attempts, and messages its receiver refused
    /// (not retried).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64, i64, i64)>> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT notifier, \
                    CAST(SUM(CASE WHEN sent_ms IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
                    CAST(SUM(CASE WHEN sent_ms IS NULL THEN attempts ELSE attempts - 1 END) AS BIGINT), \
                    CAST(SUM(CASE WHEN sent_ms IS NULL AND next_ms = $1 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM outbox GROUP BY notifier ORDER BY notifier",
        )
        .bind(i64::MAX)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Messages not sent yet (the outbox depth).
    pub async fn outbox_depth(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE sent_ms IS NULL")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
