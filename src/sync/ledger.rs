//! A step's evidence, gathered as it goes: the KR snapshots it opens (one per KR whose
//! scope changes, made when its first delta is recorded), the deltas recorded under them
//! page by page, and at the end each KR's value from its scope's totals, summed by the
//! database (SPEC.md "Progress semantics"; `progress::from_totals`). A snapshot is kept
//! when the value or the evidence changed, as before the set-based rewrite.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::evidence::Delta;
use crate::model::{KeyResultDef, Measure, Period};
use crate::progress::{self, KrValue};
use crate::store::{same, SnapshotCause, Tx};

/// What a recompute did: how many values changed, and the snapshots it wrote.
#[derive(Debug, Default)]
pub(super) struct Recomputed {
    pub changed: usize,
    pub snapshots: Vec<i64>,
}

/// The evidence of one step (or one recompute), by KR.
pub(super) struct Ledger<'c> {
    now_ms: i64,
    cause: SnapshotCause<'c>,
    /// KR → its opened snapshot and how many deltas are recorded under it now.
    open: BTreeMap<String, (i64, i64)>,
    /// KRs whose value may have changed without a change of scope (metric, manual).
    recheck: BTreeSet<String>,
}

impl<'c> Ledger<'c> {
    pub fn new(now_ms: i64, cause: SnapshotCause<'c>) -> Ledger<'c> {
        Ledger {
            now_ms,
            cause,
            open: BTreeMap::new(),
            recheck: BTreeSet::new(),
        }
    }

    /// The snapshots opened so far.
    pub fn snapshot_ids(&self) -> Vec<i64> {
        self.open.values().map(|(id, _)| *id).collect()
    }

    /// The KR whose snapshot this is.
    pub fn kr_of_snapshot(&self, id: i64) -> Option<&str> {
        self.open
            .iter()
            .find(|(_, (s, _))| *s == id)
            .map(|(k, _)| k.as_str())
    }

    /// Deltas taken back from a snapshot (an item changed again in the same step).
    pub fn forget(&mut self, kr: &str, n: i64) {
        if let Some((_, count)) = self.open.get_mut(kr) {
            *count -= n;
        }
    }

    /// This KR's value is to be computed again at the end, whatever its evidence.
    pub fn recheck(&mut self, kr: &str) {
        self.recheck.insert(kr.to_string());
    }

    /// Records deltas under each KR's snapshot, opening those not open yet.
    pub async fn record(&mut self, tx: &mut Tx, deltas: &[(String, Delta)]) -> anyhow::Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        for (kr, _) in deltas {
            if !self.open.contains_key(kr) {
                let id = tx.open_snapshot(kr, self.now_ms, &self.cause).await?;
                self.open.insert(kr.clone(), (id, 0));
            }
        }
        let mut rows = Vec::with_capacity(deltas.len());
        for (kr, d) in deltas {
            let entry = self.open.get_mut(kr).expect("opened above");
            entry.1 += 1;
            rows.push((entry.0, kr.as_str(), d));
        }
        tx.insert_evidence(&rows).await?;
        Ok(())
    }

    /// Computes the value of every KR this ledger touched (item KRs from their scopes'
    /// totals, others from their observation or check-in), stores the values that changed,
    /// and keeps a snapshot for each KR whose value or evidence changed.
    pub async fn finish(
        self,
        tx: &mut Tx,
        krs: &HashMap<String, (KeyResultDef, Period)>,
    ) -> anyhow::Result<Recomputed> {
        let ids: BTreeSet<&str> = self
            .open
            .keys()
            .chain(self.recheck.iter())
            .map(String::as_str)
            .filter(|id| krs.contains_key(*id))
            .collect();
        let item_krs: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| krs[*id].0.measure.uses_items())
            .collect();
        let totals = tx.scope_totals(&item_krs).await?;
        let all: Vec<&str> = ids.iter().copied().collect();
        let stored: HashMap<String, crate::store::KrState> = tx
            .kr_states_of(&all)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let mut out = Recomputed::default();
        for id in ids {
            let (def, period) = &krs[id];
            let value = if def.measure.uses_items() {
                let t = totals.get(id).copied().unwrap_or_default();
                progress::from_totals(def, t.counted, t.total, t.items)
            } else {
                let observed = match def.measure {
                    Measure::Manual => tx.latest_checkin(id).await?,
                    Measure::Metric => match &def.metric {
                        Some(m) => {
                            tx.latest_observation(&m.source, m.reference.as_str())
                                .await?
                        }
                        None => None,
                    },
                    _ => None,
                };
                progress::compute(def, period, &[], observed)
            };
            let opened = self.open.get(id).copied();
            let Some(old) = stored.get(id) else {
                // A KR the store does not know (yet): nothing to keep.
                if let Some((snapshot, _)) = opened {
                    tx.drop_snapshot(snapshot).await?;
                }
                continue;
            };
            let changed = differs(old, &value);
            let evidence = opened.is_some_and(|(_, n)| n > 0);
            if changed {
                tx.store_kr_value(id, &value, self.now_ms).await?;
                out.changed += 1;
            }
            match opened {
                Some((snapshot, _)) if changed || evidence => {
                    tx.finish_snapshot(snapshot, &value).await?;
                    out.snapshots.push(snapshot);
                }
                Some((snapshot, _)) => tx.drop_snapshot(snapshot).await?,
                None if changed => {
                    let snapshot = tx
                        .insert_snapshot(id, &value, self.now_ms, &self.cause)
                        .await?;
                    out.snapshots.push(snapshot);
                }
                None => {}
            }
        }
        Ok(out)
    }
}

/// Whether a computed value differs from the stored one (never computed counts as a
/// change).
fn differs(old: &crate::store::KrState, value: &KrValue) -> bool {
    old.computed_at.is_none()
        || !same(old.current, value.current)
        || !same(old.target, value.target)
        || !same(Some(old.progress), Some(value.progress))
        || !same(Some(old.start), Some(value.start))
        || old.items != value.items as i64
}
