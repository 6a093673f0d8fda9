//! Leases: with several replicas on one PostgreSQL database, each source is synced by the
//! one replica that holds its lease. A holder renews its leases well within their time to
//! live; a replica that dies stops renewing, and its leases expire and go to another.

use chrono::{DateTime, Utc};

use super::{from_ms, Result, Store};

/// Who holds a lease, and until when.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    pub acquired_at: DateTime<Utc>,
}

/// What an attempt to take or renew a lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAttempt {
    /// The holder has it now (it was free, expired, or its own already); `last_run`: when a
    /// step of the source last started, on whichever replica.
    Held { last_run: Option<DateTime<Utc>> },
    /// Another replica holds it.
    Elsewhere,
}

impl Store {
    /// Takes or renews the lease `name` for `holder` until `expires`.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<LeaseAttempt> {
        // One statement, so two replicas racing for an expired lease cannot both win.
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "INSERT INTO leases (name, holder, expires_ms, acquired_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms, \
             acquired_ms = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_ms ELSE excluded.acquired_ms END \
             WHERE leases.holder = excluded.holder OR leases.expires_ms < $4 \
             RETURNING last_run_ms",
        )
        .bind(name)
        .bind(holder)
        .bind(expires.timestamp_millis())
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((last,)) => LeaseAttempt::Held {
                last_run: last.map(from_ms),
            },
            None => LeaseAttempt::Elsewhere,
        })
    }

    /// Notes that `holder` starts a step of `name` now.
    pub async fn mark_lease_run(&self, name: &str, holder: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE leases SET last_run_ms = $1 WHERE name = $2 AND holder = $3")
            .bind(at.timestamp_millis())
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes `name` due now (a webhook said it changed): whichever replica holds its lease
    /// runs a step at its next check.
    pub async fn make_due(&self, name: &str) -> Result<()> {
        sqlx::query("UPDATE leases SET last_run_ms = NULL WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives up every lease `holder` has (on shutdown, so others take over at once); when
    /// each source last ran stays, so the next holder keeps the rhythm.
    pub async fn release_leases(&self, holder: &str) -> Result<u64> {
        let done = sqlx::query("UPDATE leases SET expires_ms = 0 WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn leases(&self) -> Result<Vec<Lease>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, holder, expires_ms, acquired_ms FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, holder, e, a)| Lease {
                name,
                holder,
                expires_at: from_ms(e),
                acquired_at: from_ms(a),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use secrecy::SecretString;

    use super::LeaseAttempt::{self, Held};
    use crate::settings::DatabaseSettings;
    use crate::store::Store;

    #[tokio::test]
    async fn one_holder_at_a_time_until_it_expires() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::connect(&DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}/l.db", dir.path().display())),
            max_connections: 2,
            busy_timeout: std::time::Duration::from_secs(30),
        })
        .await
        .expect("connect");
        store.migrate().await.expect("migrate");
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("time");
        let ttl = Duration::seconds(10);
        let take = |h: &'static str, at, until| {
            let store = store.clone();
            async move { store.try_lease("jira", h, at, until).await.expect("lease") }
        };
        assert_eq!(take("a", t0, t0 + ttl).await, Held { last_run: None });
        assert_eq!(take("b", t0, t0 + ttl).await, LeaseAttempt::Elsewhere);
        store.mark_lease_run("jira", "a", t0).await.expect("mark");
        // The holder renews; the other still cannot take it before expiry.
        let t1 = t0 + Duration::seconds(5);
        assert_eq!(take("a", t1, t1 + ttl).await, Held { last_run: Some(t0) });
        let t2 = t0 + Duration::seconds(12);
        assert_eq!(take("b", t2, t2 + ttl).await, LeaseAttempt::Elsewhere);
        // Not renewed: it expires and goes to another.
        let t3 = t1 + ttl + Duration::seconds(1);
        // The last run travels with the lease, so the new holder knows when the next is due.
        assert_eq!(take("b", t3, t3 + ttl).await, Held { last_run: Some(t0) });
        let leases = store.leases().await.expect("leases");
        assert_eq!(leases[0].holder, "b");
        assert_eq!(leases[0].acquired_at, t3);
        assert_eq!(store.release_leases("b").await.expect("release"), 1);
        assert_eq!(take("a", t3, t3 + ttl).await, Held { last_run: Some(t0) });
    }
}
