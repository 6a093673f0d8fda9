//! The sync engine: one step per source — fetch → upsert items → re-match changed items →
//! recompute affected KRs → snapshot what changed — all in one transaction, so a failure
//! mid-way leaves cursors, items and KR values exactly as they were.
//!
//! It also keeps the store's copy of the OKR definitions in line with the config, and
//! re-matches every item when the rules change.

mod apply;
mod ledger;
mod scheduler;
mod shared;

pub use scheduler::{lease_timing, Clock, ManualClock, Scheduler, SystemClock, Turn, Wakers};
pub use shared::{Reload, SharedEngine};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use sha2::{Digest, Sha256};

use self::apply::{Prepared, StepState};
use self::ledger::{Ledger, Recomputed};
use crate::clock;
use crate::evidence;
use crate::model::{CellRef, ItemRef, KeyResultDef, Measure, Period, RunOutcome};

use crate::settings::Settings;
use crate::sources::ItemSource;
use crate::store::{ms, NewCheckin, SnapshotCause, SourceState, Store, SyncRun, Tx};

/// Incremental or full: see [`SyncMode`].
pub use crate::model::SyncMode as Mode;

/// This process as a replica: `host:pid`, recorded on leases and sync runs.
pub fn replica_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        // /proc/sys is hidden under systemd's ProcSubset=pid; /etc/hostname is not.
        let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .chain(std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .find(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", std::process::id())
    })
}

/// Owns the built sources and drives sync steps against the store.
#[derive(Clone)]
pub struct Engine {
    settings: Arc<Settings>,
    store: Store,
    sources: BTreeMap<String, Arc<dyn ItemSource>>,
    krs: Arc<HashMap<String, (KeyResultDef, Period)>>,
    /// The rule set's fingerprint: recorded on every snapshot, computed once per config.
    rules_hash: Arc<str>,
    /// Which engine this is in this process (a reload builds a new one): what the
    /// server's kept responses were built with.
    generation: u64,
}

const RULES_FINGERPRINT: &str = "rules_fingerprint";
const OKRS_FINGERPRINT: &str = "okrs_fingerprint";

impl Engine {
    pub fn new(settings: Arc<Settings>, store: Store) -> anyhow::Result<Engine> {
        let mut sources: BTreeMap<String, Arc<dyn ItemSource>> = BTreeMap::new();
        for (name, s) in &settings.sources {
            let cells = settings
                .objectives
                .iter()
                .flat_map(|o| o.key_results.iter())
                .filter_map(|k| k.metric.as_ref())
                .filter(|m| &m.source == name)
                .map(|m| m.reference.clone())
                .collect();
            let built = s
                .kind
                .build(name, s.http.clone(), cells)
                .with_context(|| format!("cannot set up source {name}"))?;
            sources.insert(name.clone(), built);
        }
        Ok(Engine::with_sources(settings, store, sources))
    }

    /// An engine over sources built elsewhere (tests, benchmarks).
    pub fn with_sources(
        settings: Arc<Settings>,
        store: Store,
        sources: BTreeMap<String, Arc<dyn ItemSource>>,
    ) -> Engine {
        let krs = settings
            .objectives
            .iter()
            .flat_map(|o| {
                o.key_results
                    .iter()
                    .map(move |kr| (kr.id.to_string(), (kr.clone(), o.period.clone())))
            })
            .collect();
        let rules_hash = settings.rules.fingerprint().into();
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Engine {
            settings,
            store,
            sources,
            krs: Arc::new(krs),
            rules_hash,
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Which engine this is in this process (a reload builds a new one).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn source_names(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// The built source of this name (write-back talks to it).
    pub fn source(&self, name: &str) -> Option<Arc<dyn ItemSource>> {
        self.sources.get(name).cloned()
    }

    /// Brings the store in line with the config: mirrors objectives and KRs, re-matches
    /// every item when the rules changed, recomputes every KR when anything changed.
    pub async fn prepare(&self) -> anyhow::Result<()> {
        let rules_fp = self.rules_hash.to_string();
        let okrs_fp = {
            let text = serde_json::to_string(&self.settings.objectives).unwrap_or_default();
            hex::encode(Sha256::digest(text.as_bytes()))
        };
        let old_rules = self.store.meta(RULES_FINGERPRINT).await?;
        let old_okrs = self.store.meta(OKRS_FINGERPRINT).await?;
        if old_rules.as_deref() == Some(rules_fp.as_str())
            && old_okrs.as_deref() == Some(okrs_fp.as_str())
        {
            return Ok(());
        }
        let now = clock::now();
        let mut tx = self.store.begin().await?;
        let definitions = tx.sync_definitions(&self.settings.objectives).await?;
        // New KRs and KRs whose definition or period changed get their scopes again…
        let mut rescope: BTreeSet<String> = definitions.changed.into_iter().collect();
        // A first start (no fingerprint yet) is not a change of rules.
        let rules_changed = old_rules
            .as_deref()
            .is_some_and(|old| old != rules_fp.as_str());
        if old_rules.as_deref() != Some(rules_fp.as_str()) {
            // …and so do the KRs whose matches the new rules changed.
            let (n, touched) = self.rematch_all(&mut tx).await?;
            if n > 0 {
                tracing::info!(
                    items = n,
                    key_results = touched.len(),
                    "rules changed; every item was matched again"
                );
            }
            rescope.extend(touched);
        }
        let cause = if rules_changed {
            "rules changed"
        } else {
            "config changed"
        };
        let mut ledger = Ledger::new(
            ms(now),
            SnapshotCause {
                text: cause,
                rules_hash: &self.rules_hash,
                checkin_id: None,
            },
        );
        let rescope: Vec<String> = rescope.into_iter().collect();
        self.rescope(&mut tx, &rescope, &mut ledger).await?;
        // Every KR's value is checked (from its scope's totals: cheap).
        for id in self.krs.keys() {
            ledger.recheck(id);
        }
        ledger.finish(&mut tx, &self.krs).await?;
        tx.set_meta(RULES_FINGERPRINT, &rules_fp).await?;
        tx.set_meta(OKRS_FINGERPRINT, &okrs_fp).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes these KRs from the store and snapshots those whose value or evidence
    /// changed, recording the evidence (the scope's deltas) with each snapshot.
    async fn recompute_for(
        &self,
        tx: &mut Tx,
        kr_ids: &[String],
        now: DateTime<Utc>,
        cause: &str,
        checkin_id: Option<i64>,
    ) -> anyhow::Result<Recomputed> {
        let mut ledger = Ledger::new(
            ms(now),
            SnapshotCause {
                text: cause,
                rules_hash: &self.rules_hash,
                checkin_id,
            },
        );
        self.rescope(tx, kr_ids, &mut ledger).await?;
        ledger.finish(tx, &self.krs).await
    }

    /// Which mode the next step of `source` should use.
    pub async fn next_mode(&self, source: &str) -> anyhow::Result<Mode> {
        let Some(settings) = self.settings.sources.get(source) else {
            anyhow::bail!("unknown source {source}");
        };
        // A kind read whole every time (a sheet): every pass is full, so removed rows go.
        if settings.kind.capabilities().always_full {
            return Ok(Mode::Full);
        }
        // A plain read: a write transaction would wait for SQLite's writer lock, i.e. for
        // another source's whole step.
        let state = self.store.source_state(source).await?;
        let now = clock::now();
        let reconcile = Duration::from_std(settings.reconcile_every).unwrap_or(Duration::days(1));
        Ok(match state {
            Some(SourceState {
                cursor: Some(_),
                last_full: Some(full),
                ..
            }) if now - full < reconcile => Mode::Incremental,
            _ => Mode::Full,
        })
    }

    /// Runs every source once (concurrently); one failing source never stops the others.
    pub async fn sync_all(&self, force_full: bool) -> anyhow::Result<Vec<SyncRun>> {
        let names = self.source_names();
        let steps = names.iter().map(|name| async move {
            let mode = if force_full {
                Mode::Full
            } else {
                self.next_mode(name).await?
            };
            self.sync_source(name, mode).await
        });
        futures::future::join_all(steps).await.into_iter().collect()
    }

    /// One sync step. A failed fetch is recorded on the source and the run log and
    /// returned as a run with outcome `failed`; `Err` means the store itself failed.
    ///
    /// A step that fails for want of space marks the store unwritable (`/readyz` answers
    /// 503 with the reason) until a later step writes again.
    pub async fn sync_source(&self, name: &str, mode: Mode) -> anyhow::Result<SyncRun> {
        let result = self.sync_source_inner(name, mode).await;
        match &result {
            Ok(run) if run.outcome == RunOutcome::Ok => self.store.set_unwritable(None),
            Ok(_) => {}
            Err(e) => {
                if let Some(why) = crate::store::storage_full(e) {
                    self.store.set_unwritable(Some(why));
                }
            }
        }
        result
    }

    #[tracing::instrument(skip(self, name, mode), fields(source = %name, mode = mode.as_str()))]
    async fn sync_source_inner(&self, name: &str, mode: Mode) -> anyhow::Result<SyncRun> {
        let source = self
            .sources
            .get(name)
            .with_context(|| format!("unknown source {name}"))?
            .clone();
        let settings = &self.settings.sources[name];
        let kind = settings.kind.kind().to_string();
        let started = clock::now();
        let requests_before = source.requests_sent();
        let mut run = SyncRun {
            source: name.to_string(),
            mode,
            started_at: started,
            outcome: RunOutcome::Ok,
            replica: Some(replica_id().to_string()),
            ..SyncRun::default()
        };
        let mut tx = self.store.begin().await?;
        let mut state = tx.source_state(name).await?.unwrap_or_else(|| SourceState {
            name: name.to_string(),
            kind: kind.clone(),
            ..SourceState::default()
        });
        let overlap = Duration::from_std(settings.overlap).unwrap_or(Duration::minutes(2));
        let since = match mode {
            Mode::Full => None,
            Mode::Incremental => state.cursor.map(|c| c - overlap),
        };
        let first_sync = state.last_success.is_none();
        let outcome = self
            .step(&mut tx, source.clone(), since, mode, &mut run, first_sync)
            .await;
        run.requests = (source.requests_sent() - requests_before) as i64;
        let finished = clock::now();
        run.finished_at = Some(finished);
        match outcome {
            Ok((max_updated, snapshots)) => {
                if let Some(m) = max_updated {
                    // Never past the present: an `updated` from a clock that runs
                    // ahead (or one bad item) would otherwise make the next steps skip
                    // every change made before that time. Reading a little again is cheap
                    // (unchanged items are skipped by their version).
                    // (The machine's real time: `clock::now` may be set for a test or a demo.)
                    let cursor = state.cursor.map_or(m, |c| c.max(m));
                    state.cursor = Some(cursor.min(Utc::now()));
                }
                if mode == Mode::Full {
                    state.last_full = Some(finished);
                }
                state.kind = kind;
                state.last_success = Some(finished);
                state.last_attempt = Some(finished);
                state.last_outcome = Some(RunOutcome::Ok);
                state.last_error = None;
                tx.put_source_state(&state).await?;
                let run_id = tx.insert_run(&run).await?;
                tx.link_snapshots_to_run(&snapshots, run_id).await?;
                tx.commit().await?;
                tracing::info!(
                    source = name,
                    mode = mode.as_str(),
                    duration_ms = (finished - started).num_milliseconds(),
                    fetched = run.fetched,
                    changed = run.changed,
                    deleted = run.deleted,
                    requests = run.requests,
                    krs_changed = run.krs_changed,
                    outcome = "ok",
                    "sync step finished"
                );
            }
            Err(e) => {
                tx.rollback().await?;
                if let Some(why) = crate::store::storage_full(&e) {
                    self.store.set_unwritable(Some(why));
                }
                let message = format!("{e:#}");
                run.outcome = RunOutcome::Failed;
                run.error = Some(message.clone());
                // Counts describe what was rolled back; keep only the request count.
                run.fetched = 0;
                run.changed = 0;
                run.deleted = 0;
                run.krs_changed = 0;
                let mut tx = self.store.begin().await?;
                let mut state = tx.source_state(name).await?.unwrap_or(state);
                state.kind = kind;
                state.last_attempt = Some(finished);
                state.last_outcome = Some(RunOutcome::Failed);
                state.last_error = Some(message.clone());
                tx.put_source_state(&state).await?;
                tx.insert_run(&run).await?;
                tx.commit().await?;
                tracing::warn!(
                    source = name,
                    mode = mode.as_str(),
                    duration_ms = (finished - started).num_milliseconds(),
                    requests = run.requests,
                    outcome = "failed",
                    error = %message,
                    "sync step failed; nothing was written"
                );
            }
        }
        Ok(run)
    }

    /// The body of a step, inside the transaction. Returns the newest `updated` seen and
    /// the snapshots written (linked to the run once it is recorded).
    ///
    /// The source's pages are fetched by a task of their own, at most one page ahead of
    /// the one being written (a channel of one), so requesting and parsing the next page
    /// overlaps with storing this one.
    async fn step(
        &self,
        tx: &mut Tx,
        source: Arc<dyn ItemSource>,
        since: Option<DateTime<Utc>>,
        mode: Mode,
        run: &mut SyncRun,
        first_sync: bool,
    ) -> anyhow::Result<(Option<DateTime<Utc>>, Vec<i64>)> {
        let name = source.name().to_string();
        let now = clock::now();
        let now_ms = ms(now);
        let cause_text = format!("sync of {name}");
        let mut ledger = Ledger::new(
            now_ms,
            SnapshotCause {
                text: &cause_text,
                rules_hash: &self.rules_hash,
                checkin_id: None,
            },
        );
        let mut state = StepState::new(now_ms);
        // A full pass remembers what it saw as 16-byte digests, not strings: 100k ids
        // cost under 3 MB.
        let mut seen: HashSet<u128> = HashSet::new();
        let mut max_updated: Option<DateTime<Utc>> = None;
        // Statistics are refreshed as a step's writes grow tenfold (1k, 10k, 100k items).
        let mut refresh_at = 1_000;
        // Conditional requests pick up where the last successful step (any replica, any
        // process) left them.
        let validators = tx.validators(&name).await?;
        source.load_validators(validators.clone());
        // A full pass over a source with nothing stored yet cannot miss anything: every item
        // stored at its end came from its pages (a first sync skips the walk over the ids).
        let held_before = mode == Mode::Full && tx.holds_items(&name).await?;
        let suspended = if mode == Mode::Full && !held_before {
            tx.suspend_item_indexes().await?
        } else {
            Vec::new()
        };
        let (pages_tx, mut pages) = tokio::sync::mpsc::channel(1);
        let fetcher = AbortOnDrop(tokio::spawn({
            let source = source.clone();
            let settings = self.settings.clone();
            async move {
                let mut stream = source.fetch(since);
                while let Some(page) = stream.next().await {
                    let failed = page.is_err();
                    // Digests and rules on this task: the step writes the page before
                    // meanwhile.
                    let page = page.map(|items| Prepared::new(items, &settings.rules));
                    if pages_tx.send(page).await.is_err() || failed {
                        break;
                    }
                }
            }
        }));
        while let Some(page) = pages.recv().await {
            let page = page?;
            run.fetched += page.items.len() as i64;
            for item in &page.items {
                if held_before {
                    seen.insert(id_digest(&item.ext_id));
                }
                max_updated = Some(max_updated.map_or(item.updated, |m| m.max(item.updated)));
            }
            self.apply(tx, &name, &page, &mut ledger, &mut state, run)
                .await?;
            if run.changed >= refresh_at {
                tx.refresh_statistics().await?;
                refresh_at *= 10;
            }
        }
        fetcher.finish().await;
        tx.rebuild_indexes(&suspended).await?;
        if let Some(learnt) = source.validators().filter(|v| *v != validators) {
            tx.put_validators(&name, &learnt).await?;
        }
        if held_before {
            let mut missing: Vec<ItemRef> = Vec::new();
            let mut after = String::new();
            loop {
                let ids = tx.item_ids_after(&name, &after, 20_000).await?;
                let Some((last, _)) = ids.last() else { break };
                after = last.clone();
                missing.extend(
                    ids.into_iter()
                        .filter(|(id, _)| !seen.contains(&id_digest(id)))
                        .map(|(ext_id, key)| ItemRef { ext_id, key }),
                );
            }
            if !missing.is_empty() {
                // Items a pass skipped (offset paging under concurrent edits) are kept.
                let still_there = source.confirm_gone(missing.clone()).await?;
                let kept: HashSet<&str> = still_there.iter().map(|i| i.ext_id.as_str()).collect();
                let gone: Vec<&str> = missing
                    .iter()
                    .map(|i| i.ext_id.as_str())
                    .filter(|id| !kept.contains(id))
                    .collect();
                self.delete_gone(tx, &name, &gone, &mut ledger, &mut state, run)
                    .await?;
                let still_there = Prepared::new(still_there, &self.settings.rules);
                self.apply(tx, &name, &still_there, &mut ledger, &mut state, run)
                    .await?;
            }
        }
        state.write_children(tx, &name).await?;
        tx.prune_child_counts().await?;
        // Metric KRs read from this source: an observation is recorded when it changes.
        let references: BTreeMap<&str, &CellRef> = self
            .krs
            .values()
            .filter_map(|(d, _)| d.metric.as_ref())
            .filter(|m| m.source == name)
            .map(|m| (m.reference.as_str(), &m.reference))
            .collect();
        if !references.is_empty() {
            let references = references.into_values().cloned().collect();
            for obs in source.observe(references).await? {
                let value = obs.value.as_ref().map(|v| *v).map_err(String::as_str);
                if tx
                    .record_observation(&name, &obs.reference, value, now_ms)
                    .await?
                {
                    run.changed += 1;
                    for (id, (d, _)) in self.krs.iter() {
                        if d.metric.as_ref().is_some_and(|m| {
                            m.source == name && m.reference.as_str() == obs.reference
                        }) {
                            state.affected.insert(id.clone());
                            ledger.recheck(id);
                        }
                    }
                }
            }
        }
        let recomputed = ledger.finish(tx, &self.krs).await?;
        run.krs_changed = recomputed.changed as i64;
        if first_sync {
            let affected: Vec<String> = state.affected.into_iter().collect();
            self.reconstruct_history(tx, &affected, now).await?;
        }
        Ok((max_updated, recomputed.snapshots))
    }

    /// History from day one: on a source's first sync, each completion, count and sum KR
    /// it feeds that has no earlier snapshot gets the period so far rebuilt from its items'
    /// creation and resolution dates (marked reconstructed), so a new install shows the
    /// quarter's burn-up instead of one point.
    async fn reconstruct_history(
        &self,
        tx: &mut Tx,
        kr_ids: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for id in kr_ids {
            let Some((def, period)) = self.krs.get(id) else {
                continue;
            };
            if !matches!(
                def.measure,
                Measure::Completion | Measure::Count | Measure::Sum
            ) || tx.has_history_before(id, ms(now)).await?
            {
                continue;
            }
            let items = tx.dated_scope(id).await?;
            if items.is_empty() {
                continue;
            }
            let points = evidence::reconstruct(def, period, &items, now);
            if points.is_empty() {
                continue;
            }
            tx.drop_empty_snapshots_before(id, ms(now)).await?;
            for point in points {
                let snapshot = tx
                    .insert_reconstructed(id, ms(point.at), &point.value, &self.rules_hash, &[])
                    .await?;
                // A point can hold most of the scope (every item created before the
                // period): its deltas are built and written a few thousand at a time.
                for deltas in point.delta_chunks(&items, 5_000) {
                    let rows: Vec<(i64, &str, &evidence::Delta)> =
                        deltas.iter().map(|d| (snapshot, id.as_str(), d)).collect();
                    tx.insert_evidence(&rows).await?;
                }
            }
        }
        Ok(())
    }

    /// Records a check-in: a manual KR's value (recomputed at once), and/or the owner's
    /// confidence 0–10 in any KR (never changes a computed value), with a note.
    pub async fn checkin(&self, kr_id: &str, checkin: &NewCheckin<'_>) -> Result<(), CheckinError> {
        let Some((def, _)) = self.krs.get(kr_id) else {
            return Err(CheckinError::UnknownKr(kr_id.to_string()));
        };
        if checkin.value.is_none() && checkin.confidence.is_none() {
            return Err(CheckinError::Empty);
        }
        if let Some(value) = checkin.value {
            if def.measure != Measure::Manual {
                return Err(CheckinError::NotManual {
                    kr: kr_id.to_string(),
                    measure: def.measure.as_str(),
                });
            }
            if !value.is_finite() {
                return Err(CheckinError::BadValue);
            }
        }
        if let Some(c) = checkin.confidence {
            if !(0.0..=10.0).contains(&c) {
                return Err(CheckinError::BadConfidence);
            }
        }
        let now = clock::now();
        let result: anyhow::Result<()> = async {
            let mut tx = self.store.begin().await?;
            let id = tx.add_checkin(kr_id, checkin, ms(now)).await?;
            if checkin.value.is_some() {
                self.recompute_for(&mut tx, &[kr_id.to_string()], now, "check-in", Some(id))
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        result.map_err(CheckinError::Store)
    }
}

/// Why a check-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    #[error("unknown key result \"{0}\"")]
    UnknownKr(String),
    #[error(
        "key result \"{kr}\" is measured as {measure}; only manual key results take check-ins"
    )]
    NotManual { kr: String, measure: &'static str },
    #[error("the value must be a finite number")]
    BadValue,
    #[error("the confidence must be a number from 0 to 10")]
    BadConfidence,
    #[error("a check-in needs a value (manual key results) or a confidence (0–10)")]
    Empty,
    #[error(transparent)]
    Store(anyhow::Error),
}

/// The first 128 bits of an id's SHA-256. A collision could only keep one deleted item
/// alive; at 2^-128 per pair of ids it does not happen.
fn id_digest(id: &str) -> u128 {
    let d = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

/// A spawned task that is stopped when its owner is dropped (a step that fails or is
/// cancelled stops fetching pages nobody will write).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Waits for the task to end by itself.
    async fn finish(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
