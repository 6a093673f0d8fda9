//! Runs every source on its own interval until shutdown, on one replica at a time.
//!
//! Each replica checks every source a few times per interval ("ticks"): it takes or renews
//! the source's lease in the store, and if it holds it and the source is due (one interval
//! after its last step started, on whichever replica), it runs a step while renewing the
//! lease. A replica that dies stops renewing; its leases expire (time to live: the
//! interval minus one tick, at most a minute) and another replica takes them over at its
//! next tick, so within one interval. On
//! shutdown no new step starts, a step under way finishes (its transaction commits or rolls
//! back), and the leases are released so others take over at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{replica_id, SharedEngine};

/// Milliseconds since [`started`] at the scheduler's latest sign of life (a tick or a
/// lease renewal); the watchdog pings systemd only while it moves.
static LAST_TICK_MS: AtomicU64 = AtomicU64::new(0);

fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn alive() {
    LAST_TICK_MS.store(started().elapsed().as_millis() as u64, Ordering::Relaxed);
}

fn wakers() -> &'static Mutex<HashMap<String, Arc<Notify>>> {
    static WAKERS: OnceLock<Mutex<HashMap<String, Arc<Notify>>>> = OnceLock::new();
    WAKERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn waker(source: &str) -> Arc<Notify> {
    wakers()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(source.to_string())
        .or_default()
        .clone()
}

/// Ends this process's wait before its next check of `source` (after a webhook).
pub fn wake(source: &str) {
    waker(source).notify_one();
}

/// How long ago the scheduler last showed a sign of life.
pub fn since_last_tick() -> Duration {
    started()
        .elapsed()
        .saturating_sub(Duration::from_millis(LAST_TICK_MS.load(Ordering::Relaxed)))
}

/// How often a replica checks a source polled every `every`, and how long a lease lasts.
pub fn lease_timing(every: Duration) -> (Duration, Duration) {
    let tick = (every / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let ttl = every
        .saturating_sub(tick)
        .clamp(tick * 2, Duration::from_secs(60).max(tick * 2));
    (tick, ttl)
}

/// Polls each source until `shutdown` turns true; then releases this replica's leases.
pub async fn run_scheduler(shared: SharedEngine, shutdown: watch::Receiver<bool>) {
    alive();
    let mut tasks = JoinSet::new();
    for name in shared.current().source_names() {
        let shared = shared.clone();
        let mut shutdown = shutdown.clone();
        let woken = waker(&name);
        tasks.spawn(async move {
            loop {
                alive();
                if *shutdown.borrow() {
                    break;
                }
                let engine = shared.current();
                let Some(every) = engine.settings().sources.get(&name).map(|s| s.every) else {
                    break;
                };
                let (tick, ttl) = lease_timing(every);
                let store = engine.store().clone();
                let lease = |now: chrono::DateTime<Utc>| {
                    let store = store.clone();
                    let name = name.clone();
                    async move {
                        store
                            .try_lease(
                                &name,
                                replica_id(),
                                now,
                                now + chrono::Duration::from_std(ttl).unwrap_or_default(),
                            )
                            .await
                    }
                };
                let now = Utc::now();
                match lease(now).await {
                    Ok(Some(last_run)) => {
                        let due = last_run.is_none_or(|t| {
                            (now - t).to_std().unwrap_or_default() + Duration::from_millis(20)
                                >= every
                        });
                        if due {
                            if let Err(e) = store.mark_lease_run(&name, replica_id(), now).await {
                                tracing::warn!(source = %name, error = %e, "cannot note the step on the lease");
                            }
                            let step = async {
                                let mode = engine.next_mode(&name).await?;
                                let run = engine.sync_source(&name, mode).await?;
                                // Write-back after the step, under the same lease.
                                crate::notify::writeback::after_steps(&engine, std::slice::from_ref(&run)).await;
                                Ok::<_, anyhow::Error>(run)
                            };
                            // Keep the lease while the step runs.
                            let heartbeat = async {
                                loop {
                                    tokio::time::sleep(tick).await;
                                    alive();
                                    if let Err(e) = lease(Utc::now()).await {
                                        tracing::warn!(source = %name, error = %e, "cannot renew the lease");
                                    }
                                }
                            };
                            let result = tokio::select! {
                                r = step => r,
                                _ = heartbeat => unreachable!("the heartbeat never ends"),
                            };
                            match result {
                                Ok(_) => checkpoint(&store),
                                Err(e) => {
                                    tracing::error!(source = %name, error = format!("{e:#}"), "sync step could not be recorded");
                                }
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(source = %name, error = %e, "cannot take the lease; retrying");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = woken.notified() => {}
                    _ = shutdown.changed() => {}
                }
            }
        });
    }
    if tasks.is_empty() {
        // No sources: stay (alive) until shutdown, so the watchdog keeps being fed.
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            while !*shutdown.borrow() {
                alive();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let store = shared.current().store().clone();
    match store.release_leases(replica_id()).await {
        Ok(n) => tracing::info!(released = n, "released this replica's leases"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot release the leases; they expire by themselves")
        }
    }
}

/// Checkpoints the SQLite write-ahead log after a step, in the background (one at a time):
/// the step's commit returned without waiting for it.
fn checkpoint(store: &crate::store::Store) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RUNNING: AtomicBool = AtomicBool::new(false);
    if store.backend() != crate::store::Backend::Sqlite || RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.checkpoint().await {
            tracing::warn!(error = %e, "cannot checkpoint the SQLite log");
        }
        RUNNING.store(false, Ordering::Release);
    });
}

#[cfg(test)]
mod tests {
    use super::lease_timing;
    use std::time::Duration;

    #[test]
    fn leases_outlive_a_few_ticks_and_at_most_a_minute_or_an_interval() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(lease_timing(s(300)), (s(15), s(60)));
        assert_eq!(lease_timing(s(20)), (s(5), s(15)));
        assert_eq!(lease_timing(s(2)), (ms(500), ms(1500)));
        assert_eq!(lease_timing(ms(100)), (ms(100), ms(200)));
    }
}
