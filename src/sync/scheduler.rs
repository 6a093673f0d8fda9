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
//!
//! One [`Scheduler`] per daemon, made at start-up, owns what the checks need: its clock
//! (every "now" goes through it, so a test drives it with a [`ManualClock`]), its name on
//! the leases, the [`Wakers`] the webhooks use and its latest sign of life.
//!
//! It is also the one way the service runs a step, whoever asks: its own checks, a webhook
//! (which makes a source due: [`Scheduler::queue_step`]) or `POST /api/v1/sync`
//! ([`Scheduler::step_all_now`]). Every step goes through [`Scheduler::check_and_step`]:
//! under the source's lease, noted on it, the lease renewed while it runs, the source's
//! write-back after it and SQLite's log checkpointed. Within the process, steps of one
//! source run one at a time: a lease names a replica, not a task, so it cannot keep the
//! checks and a request of the same replica apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::{replica_id, Engine, SharedEngine};
use crate::store::{LeaseAttempt, Store, SyncRun};

/// Where the scheduler reads the time. Tests drive a [`ManualClock`]; the daemon runs on
/// the [`SystemClock`].
pub trait Clock: Send + Sync {
    /// Now on the wall clock: leases and when a source last ran are shared between
    /// replicas, so they are wall-clock times.
    fn now(&self) -> DateTime<Utc>;
    /// Time since a fixed origin on a monotonic clock (the scheduler's signs of life,
    /// which the watchdog reads: a wall clock set back must not look like a wedge).
    fn elapsed(&self) -> Duration;
}

/// The system's clocks. The wall clock is the real one, not [`crate::clock::now`]: a
/// pinned `OKRSYNC_NOW` (a reproducible report) must not freeze the leases and intervals.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to: both its wall and its monotonic time advance
/// together, so a test sees what the scheduler would do at any instant without sleeping.
#[derive(Debug)]
pub struct ManualClock {
    at: Mutex<(DateTime<Utc>, Duration)>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> ManualClock {
        ManualClock {
            at: Mutex::new((now, Duration::ZERO)),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        at.0 += chrono::Duration::from_std(by).unwrap_or_default();
        at.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.at.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    fn elapsed(&self) -> Duration {
        self.at.lock().unwrap_or_else(PoisonError::into_inner).1
    }
}

/// Ends a scheduler's wait before its next check of a source (a webhook said it changed).
/// Cheap to clone; the server holds one.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    by_source: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Wakers {
    fn get(&self, source: &str) -> Arc<Notify> {
        self.by_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(source.to_string())
            .or_default()
            .clone()
    }

    /// Ends the wait before the next check of `source`; if no wait is under way, the next
    /// one ends at once.
    pub fn wake(&self, source: &str) {
        self.get(source).notify_one();
    }
}

/// What one check of a source found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// This replica holds the lease and the source is due: its step starts now (noted on
    /// the lease).
    Step,
    /// This replica holds the lease; the source is not due yet.
    Wait,
    /// Another replica holds the lease.
    Elsewhere,
}

/// When a check wants a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// When the source is due (the scheduler's checks). A check finding a step of the
    /// source under way in this process (asked for over HTTP) waits for the next one.
    WhenDue,
    /// Now, whenever the last one ran (`POST /api/v1/sync`); after a step of the source
    /// under way in this process, if there is one.
    Now,
}

/// What [`Scheduler::check_and_step`] did.
enum Stepped {
    /// This replica held the lease and ran a step: its run, or the error of a store that
    /// could not record it.
    Ran(anyhow::Result<SyncRun>),
    /// No step here: not due yet, one is under way here, or another replica holds the
    /// lease.
    NotHere,
}

/// The scheduler of one replica: its clock, its identity on the leases, the wakers the
/// webhooks use and its latest sign of life. Made once at start-up ([`Scheduler::new`]).
pub struct Scheduler {
    clock: Arc<dyn Clock>,
    holder: String,
    wakers: Wakers,
    /// [`Clock::elapsed`] in milliseconds at the latest sign of life (a tick or a lease
    /// renewal); the watchdog pings systemd only while it moves.
    last_tick_ms: AtomicU64,
    /// A checkpoint of the SQLite log is under way (one at a time).
    checkpointing: Arc<AtomicBool>,
    /// Per source, held while a step of it runs in this process.
    steps: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for Scheduler {
    fn default() -> Scheduler {
        Scheduler::new()
    }
}

impl Scheduler {
    /// This process's scheduler, on the system clock, holding leases as [`replica_id`].
    pub fn new() -> Scheduler {
        Scheduler::with_clock(Arc::new(SystemClock::new()), replica_id())
    }

    /// A scheduler on `clock` that holds leases as `holder`.
    pub fn with_clock(clock: Arc<dyn Clock>, holder: &str) -> Scheduler {
        Scheduler {
            clock,
            holder: holder.to_string(),
            wakers: Wakers::default(),
            last_tick_ms: AtomicU64::new(0),
            checkpointing: Arc::new(AtomicBool::new(false)),
            steps: Mutex::default(),
        }
    }

    /// The handle that wakes this scheduler (for the webhooks).
    pub fn wakers(&self) -> Wakers {
        self.wakers.clone()
    }

    /// Ends the wait before the next check of `source`.
    pub fn wake(&self, source: &str) {
        self.wakers.wake(source);
    }

    fn alive(&self) {
        self.last_tick_ms
            .store(self.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long ago the scheduler last showed a sign of life.
    pub fn since_last_tick(&self) -> Duration {
        self.clock.elapsed().saturating_sub(Duration::from_millis(
            self.last_tick_ms.load(Ordering::Relaxed),
        ))
    }

    /// Takes or renews the lease of `name` for `ttl` from now: `Some(last_run)` when this
    /// replica holds it.
    async fn lease(
        &self,
        store: &Store,
        name: &str,
        ttl: Duration,
    ) -> crate::store::Result<LeaseAttempt> {
        let now = self.clock.now();
        self.lease_at(store, name, now, ttl).await
    }

    async fn lease_at(
        &self,
        store: &Store,
        name: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> crate::store::Result<LeaseAttempt> {
        store
            .try_lease(
                name,
                &self.holder,
                now,
                now + chrono::Duration::from_std(ttl).unwrap_or_default(),
            )
            .await
    }

    /// One check of `name`, polled every `every`, at the clock's now: takes or renews its
    /// lease and, when this replica holds it and the source is due (one interval after its
    /// last step started, on whichever replica), notes on the lease that a step starts.
    pub async fn check(
        &self,
        store: &Store,
        name: &str,
        every: Duration,
    ) -> crate::store::Result<Turn> {
        self.turn(store, name, every, Want::WhenDue).await
    }

    /// [`Scheduler::check`], or with [`Want::Now`] a step whenever the last one ran.
    async fn turn(
        &self,
        store: &Store,
        name: &str,
        every: Duration,
        want: Want,
    ) -> crate::store::Result<Turn> {
        let (_, ttl) = lease_timing(every);
        let now = self.clock.now();
        let LeaseAttempt::Held { last_run } = self.lease_at(store, name, now, ttl).await? else {
            return Ok(Turn::Elsewhere);
        };
        let due = want == Want::Now
            || last_run.is_none_or(|t| {
                (now - t).to_std().unwrap_or_default() + Duration::from_millis(20) >= every
            });
        if !due {
            return Ok(Turn::Wait);
        }
        if let Err(e) = store.mark_lease_run(name, &self.holder, now).await {
            tracing::warn!(source = %name, error = %e, "cannot note the step on the lease");
        }
        Ok(Turn::Step)
    }

    /// Polls each source until `shutdown` turns true; then releases this replica's leases.
    pub async fn run(self: Arc<Self>, shared: SharedEngine, shutdown: watch::Receiver<bool>) {
        self.alive();
        let mut tasks = JoinSet::new();
        for name in shared.current().source_names() {
            let shared = shared.clone();
            let mut shutdown = shutdown.clone();
            let woken = self.wakers.get(&name);
            let this = self.clone();
            tasks.spawn(async move {
                loop {
                    this.alive();
                    if *shutdown.borrow() {
                        break;
                    }
                    let engine = shared.current();
                    let Some(every) = engine.settings().sources.get(&name).map(|s| s.every)
                    else {
                        break;
                    };
                    let (tick, _) = lease_timing(every);
                    match this.check_and_step(&engine, &name, every, Want::WhenDue).await {
                        Ok(Stepped::Ran(Err(e))) => {
                            tracing::error!(source = %name, error = format!("{e:#}"), "sync step could not be recorded");
                        }
                        Ok(Stepped::Ran(Ok(_)) | Stepped::NotHere) => {}
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
            let this = self.clone();
            tasks.spawn(async move {
                while !*shutdown.borrow() {
                    this.alive();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let store = shared.current().store().clone();
        match store.release_leases(&self.holder).await {
            Ok(n) => tracing::info!(released = n, "released this replica's leases"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release the leases; they expire by themselves")
            }
        }
    }

    /// The lock a step of `source` holds in this process while it runs.
    fn step_lock(&self, source: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(source.to_string())
            .or_default()
            .clone()
    }

    /// The path of every step: one check of `name` ([`Scheduler::check`], or a step now
    /// with [`Want::Now`]) and, when it gives this replica a step, the step, with the lease
    /// renewed while it runs (the renewals are the checks' signs of life), the source's
    /// write-back after it, under the same lease, and SQLite's log checkpointed. `Err`:
    /// the lease could not be taken (the store is unreachable).
    async fn check_and_step(
        &self,
        engine: &Engine,
        name: &str,
        every: Duration,
        want: Want,
    ) -> crate::store::Result<Stepped> {
        let step_lock = self.step_lock(name);
        let _running = match want {
            Want::WhenDue => match step_lock.try_lock_owned() {
                Ok(guard) => guard,
                // A step asked for over HTTP is under way; its renewals keep the lease.
                Err(_) => return Ok(Stepped::NotHere),
            },
            Want::Now => step_lock.lock_owned().await,
        };
        let store = engine.store();
        match self.turn(store, name, every, want).await? {
            Turn::Step => {}
            Turn::Wait | Turn::Elsewhere => return Ok(Stepped::NotHere),
        }
        let (tick, ttl) = lease_timing(every);
        let step = async {
            let mode = engine.next_mode(name).await?;
            let run = engine.sync_source(name, mode).await?;
            // Write-back after the step, under the same lease.
            crate::notify::writeback::after_steps(engine, std::slice::from_ref(&run)).await;
            Ok::<_, anyhow::Error>(run)
        };
        // Keep the lease while the step runs.
        let heartbeat = async {
            loop {
                tokio::time::sleep(tick).await;
                if want == Want::WhenDue {
                    self.alive();
                }
                if let Err(e) = self.lease(store, name, ttl).await {
                    tracing::warn!(source = %name, error = %e, "cannot renew the lease");
                }
            }
        };
        let result = tokio::select! {
            r = step => r,
            _ = heartbeat => unreachable!("the heartbeat never ends"),
        };
        if result.is_ok() {
            self.checkpoint(store);
        }
        Ok(Stepped::Ran(result))
    }

    /// Makes `name` due now on whichever replica holds its lease (a webhook, or a step
    /// asked for that another replica is to run): it runs one at its next check, and at
    /// once when that is this scheduler.
    pub async fn queue_step(&self, store: &Store, name: &str) -> crate::store::Result<()> {
        store.make_due(name).await?;
        self.wake(name);
        Ok(())
    }

    /// One step of every source now (`POST /api/v1/sync`), concurrently, each as
    /// [`Scheduler::step_now`] runs it; the runs in the order of the source names. One
    /// failing source never stops the others; `Err` when the store could not record one.
    pub async fn step_all_now(&self, shared: &SharedEngine) -> anyhow::Result<Vec<SyncRun>> {
        let names = shared.current().source_names();
        let steps = names.iter().map(|name| self.step_now(shared, name));
        futures::future::join_all(steps).await.into_iter().collect()
    }

    /// One step of `name` that starts now, on the path of the scheduler's steps: here when
    /// this replica holds the lease or can take it; else queued on the replica that holds
    /// it ([`Scheduler::queue_step`]) and its run waited for (the first recorded after the
    /// request that started after it, read from the store), unless the lease comes here
    /// first.
    pub async fn step_now(&self, shared: &SharedEngine, name: &str) -> anyhow::Result<SyncRun> {
        // Runs are dated by `clock::now` (as `sync_source` dates them), not by the leases' clock.
        let asked = crate::clock::now();
        let mut before: Option<i64> = None;
        loop {
            let engine = shared.current();
            let Some(every) = engine.settings().sources.get(name).map(|s| s.every) else {
                anyhow::bail!("unknown source {name}");
            };
            match self.check_and_step(&engine, name, every, Want::Now).await? {
                Stepped::Ran(run) => return run,
                Stepped::NotHere => {}
            }
            let store = engine.store();
            let before = match before {
                Some(id) => id,
                None => {
                    let id = store.latest_run(name).await?.map_or(0, |(id, _)| id);
                    self.queue_step(store, name).await?;
                    tracing::info!(source = %name, "another replica holds the lease; its step is waited for");
                    *before.insert(id)
                }
            };
            if let Some((_, run)) = store
                .latest_run(name)
                .await?
                .filter(|(id, run)| *id > before && run.started_at >= asked)
            {
                return Ok(run);
            }
            // Looking again every check of the lease (at most a second: one cheap query),
            // and taking the lease if its holder lets it lapse meanwhile.
            tokio::time::sleep(lease_timing(every).0.min(Duration::from_secs(1))).await;
        }
    }

    /// Checkpoints the SQLite write-ahead log after a step, in the background (one at a
    /// time): the step's commit returned without waiting for it.
    fn checkpoint(&self, store: &Store) {
        if store.backend() != crate::store::Backend::Sqlite
            || self.checkpointing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let store = store.clone();
        let running = self.checkpointing.clone();
        tokio::spawn(async move {
            if let Err(e) = store.checkpoint().await {
                tracing::warn!(error = %e, "cannot checkpoint the SQLite log");
            }
            running.store(false, Ordering::Release);
        });
    }
}

/// How often a replica checks a source polled every `every`, and how long a lease lasts.
pub fn lease_timing(every: Duration) -> (Duration, Duration) {
    let tick = (every / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let ttl = every
        .saturating_sub(tick)
        .clamp(tick * 2, Duration::from_secs(60).max(tick * 2));
    (tick, ttl)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use futures::FutureExt;
    use secrecy::SecretString;

    use super::{lease_timing, ManualClock, Scheduler, Turn};
    use crate::settings::DatabaseSettings;
    use crate::store::Store;

    #[test]
    fn leases_outlive_a_few_ticks_and_at_most_a_minute_or_an_interval() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(lease_timing(s(300)), (s(15), s(60)));
        assert_eq!(lease_timing(s(20)), (s(5), s(15)));
        assert_eq!(lease_timing(s(2)), (ms(500), ms(1500)));
        assert_eq!(lease_timing(ms(100)), (ms(100), ms(200)));
    }

    #[tokio::test]
    async fn a_manual_clock_says_which_sources_are_due_when_without_sleeping() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::connect(&DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}/s.db", dir.path().display())),
            max_connections: 2,
            busy_timeout: Duration::from_secs(30),
        })
        .await
        .expect("connect");
        store.migrate().await.expect("migrate");
        let t0 = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("time");
        let clock = Arc::new(ManualClock::new(t0));
        let a = Scheduler::with_clock(clock.clone(), "a");
        let b = Scheduler::with_clock(clock.clone(), "b");
        let minute = Duration::from_secs(60);
        let five = Duration::from_secs(300);
        let sources = [("jira", minute), ("github", five)];
        async fn turns(
            s: &Scheduler,
            store: &Store,
            sources: &[(&'static str, Duration)],
        ) -> Vec<(&'static str, Turn)> {
            let mut turns = Vec::new();
            for &(name, every) in sources {
                turns.push((name, s.check(store, name, every).await.expect("check")));
            }
            turns
        }

        // Never run: both due at once, on the replica that takes the leases first.
        assert_eq!(
            turns(&a, &store, &sources).await,
            [("jira", Turn::Step), ("github", Turn::Step)]
        );
        assert_eq!(
            turns(&b, &store, &sources).await,
            [("jira", Turn::Elsewhere), ("github", Turn::Elsewhere)]
        );
        clock.advance(Duration::from_secs(30));
        assert_eq!(
            turns(&a, &store, &sources).await,
            [("jira", Turn::Wait), ("github", Turn::Wait)]
        );
        // One interval after its last step started (20 ms early is close enough).
        clock.advance(Duration::from_secs(30) - Duration::from_millis(20));
        assert_eq!(
            turns(&a, &store, &sources).await,
            [("jira", Turn::Step), ("github", Turn::Wait)]
        );
        clock.advance(Duration::from_secs(240) + Duration::from_millis(20));
        assert_eq!(
            turns(&a, &store, &sources).await,
            [("jira", Turn::Step), ("github", Turn::Step)]
        );
        // A webhook makes a source due before its interval is up.
        store.make_due("github").await.expect("due");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            turns(&a, &store, &sources).await,
            [("jira", Turn::Wait), ("github", Turn::Step)]
        );
        // `a` stops renewing: once its leases expire, `b` takes them over and keeps the rhythm.
        clock.advance(lease_timing(five).1 + Duration::from_secs(1));
        assert_eq!(
            turns(&b, &store, &sources).await,
            [("jira", Turn::Step), ("github", Turn::Wait)]
        );

        // Signs of life are read on the same clock.
        a.alive();
        clock.advance(Duration::from_secs(45));
        assert_eq!(a.since_last_tick(), Duration::from_secs(45));
    }

    #[test]
    fn a_wake_ends_the_next_wait_even_before_it_starts() {
        let scheduler = Scheduler::new();
        let waiting = scheduler.wakers.get("jira");
        assert!(waiting.notified().now_or_never().is_none());
        scheduler.wakers().wake("jira");
        assert!(waiting.notified().now_or_never().is_some());
        assert!(scheduler
            .wakers
            .get("github")
            .notified()
            .now_or_never()
            .is_none());
    }
}
