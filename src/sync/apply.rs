//! Writing a page, a deletion or a rules change into the store, as sets: the rules are
//! evaluated in memory, and each table gets one statement per page (items, matches, child
//! counts, scope, evidence), with the stored versions, matches and scope entries read in
//! one packed query each. An item's evidence is taken against its KRs' stored scopes, so
//! a step's deltas are exactly those of its changed items.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::Context;
use rustc_hash::FxHashMap;

use super::ledger::Ledger;
use super::{id_digest, Engine};
use crate::evidence::{self, Delta, Entry, Scope};
use crate::model::Item;
use crate::rules::Evaluation;
use crate::store::{
    ChildDeltas, ChildLinks, ItemWrite, MatchRow, RematchBatch, RematchCursor, SyncRun, Tx,
};

/// A page as the fetching task hands it over: its items with what is known of each without
/// the store — its content digest and the rules' verdict — worked out on that task while
/// the page before is being written, not on the step's serial path.
pub(super) struct Prepared {
    pub items: Vec<Item>,
    hashes: Vec<String>,
    evals: Vec<Evaluation>,
}

impl Prepared {
    pub fn new(items: Vec<Item>, rules: &crate::rules::RuleSet) -> Prepared {
        let mut evaluator = rules.evaluator();
        let evals = items
            .iter()
            .map(|i| evaluator.evaluate(i).to_evaluation())
            .collect();
        let hashes = items.iter().map(crate::store::content_hash).collect();
        Prepared {
            items,
            hashes,
            evals,
        }
    }
}

/// What a step remembers between pages.
pub(super) struct StepState {
    /// The step's time, as items record when they were synced.
    pub now_ms: i64,
    /// KRs whose scope any changed item was or is in.
    pub affected: BTreeSet<String>,
    /// Items changed so far in this step (16-byte digests of their ids): one changed
    /// again on a later page gets one delta from before the step, not two.
    pub touched: HashSet<u128>,
    /// What the step's pages changed in their parents' child counts, written once at
    /// the step's end ([`StepState::write_children`]): an epic's row updated on every
    /// page that holds one of its children would, on PostgreSQL, leave a new version
    /// of it per page in the step's transaction, each later update walking them all.
    pub children: ChildDeltas,
}

impl StepState {
    pub fn new(now_ms: i64) -> StepState {
        StepState {
            now_ms,
            affected: BTreeSet::new(),
            touched: HashSet::new(),
            children: ChildDeltas::default(),
        }
    }

    /// Writes the child counts the step's pages changed (before anything reads them).
    pub async fn write_children(&mut self, tx: &mut Tx, source: &str) -> anyhow::Result<()> {
        let children = std::mem::take(&mut self.children);
        tx.apply_child_deltas(source, &children).await?;
        Ok(())
    }
}

impl Engine {
    /// Applies a page: the items that changed (by `(id, updated)`, or by content for
    /// sources without update times) are written, matched again, and their evidence
    /// recorded; their parents' child counts follow.
    pub(super) async fn apply(
        &self,
        tx: &mut Tx,
        name: &str,
        page: &Prepared,
        ledger: &mut Ledger<'_>,
        state: &mut StepState,
        run: &mut SyncRun,
    ) -> anyhow::Result<()> {
        let items = &page.items;
        // The same item twice on a page: the later one stands.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            last.insert(item.ext_id.as_str(), i);
        }
        let ids: Vec<&str> = last.keys().copied().collect();
        let stored = tx.stored_items(name, &ids).await?;
        let mut changed: Vec<(&Item, &Evaluation, &str)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if last[item.ext_id.as_str()] != i {
                continue;
            }
            // The overlap window brings back items we already hold: skip them unchanged. A
            // timestamp with milliseconds (Jira) tells a new version; one in whole seconds
            // (GitHub) does not — two edits in one second share it — so the content decides.
            if let Some(s) = stored.get(&item.ext_id) {
                let updated = item.updated.timestamp_millis();
                if (s.updated_ms == updated && updated % 1000 != 0)
                    || s.content_hash.as_deref() == Some(page.hashes[i].as_str())
                {
                    continue;
                }
            }
            changed.push((item, &page.evals[i], &page.hashes[i]));
        }
        if changed.is_empty() {
            return Ok(());
        }
        run.changed += changed.len() as i64;

        let writes: Vec<ItemWrite> = changed
            .iter()
            .map(|(item, eval, hash)| ItemWrite {
                item,
                exempt_rule: eval.exempt_rule.as_deref(),
                match_count: eval.matches.len(),
                content_hash: hash,
            })
            .collect();
        tx.upsert_items(&writes, state.now_ms).await?;

        // Matches: the stored ones of items we held before, replaced where they differ.
        let was_stored: Vec<&str> = changed
            .iter()
            .map(|(i, _, _)| i.ext_id.as_str())
            .filter(|id| stored.contains_key(*id))
            .collect();
        let mut old_matches: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (ext_id, kr, rule) in tx.matches_of_items(name, &was_stored).await? {
            old_matches.entry(ext_id).or_default().push((kr, rule));
        }
        for &(item, eval, _) in &changed {
            if let Some(s) = stored.get(&item.ext_id) {
                let krs = old_matches
                    .get(&item.ext_id)
                    .map(|m| m.iter().map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default();
                state.children.add(&s.links(krs), -1);
            }
            state.children.add(&links_of(item, eval), 1);
        }

        let mut drop: Vec<&str> = Vec::new();
        let mut add: Vec<(&str, &str, &str)> = Vec::new();
        for &(item, eval, _) in &changed {
            let old = old_matches.get(&item.ext_id);
            let mut new = eval.matches.clone();
            new.sort();
            let same = match old {
                Some(o) => *o == new,
                None => new.is_empty(),
            };
            if let Some(o) = old {
                state.affected.extend(o.iter().map(|(k, _)| k.clone()));
            }
            state
                .affected
                .extend(eval.matches.iter().map(|(k, _)| k.clone()));
            if same {
                continue;
            }
            if old.is_some() {
                drop.push(&item.ext_id);
            }
            add.extend(
                eval.matches
                    .iter()
                    .map(|(kr, rule)| (item.ext_id.as_str(), kr.as_str(), rule.as_str())),
            );
        }
        tx.replace_item_matches(name, &drop, &add).await?;

        // Evidence: each changed item's entries against its stored ones.
        let pairs: Vec<(&str, &str)> = old_matches
            .iter()
            .flat_map(|(id, m)| m.iter().map(move |(kr, _)| (kr.as_str(), id.as_str())))
            .collect();
        let old_entries = self.entries_by_item(tx, name, &pairs).await?;
        let retouched: Vec<&str> = changed
            .iter()
            .map(|(i, _, _)| i.ext_id.as_str())
            .filter(|id| state.touched.contains(&id_digest(id)))
            .collect();
        // Before this step, for items changed again: (kr, ext_id) → the entry then.
        let mut before: HashMap<(String, String), Option<Entry>> = HashMap::new();
        if !retouched.is_empty() {
            for (snapshot, kr, delta) in tx
                .take_deltas(&ledger.snapshot_ids(), name, &retouched)
                .await?
            {
                let owner = ledger.kr_of_snapshot(snapshot).map(str::to_string);
                if let Some(owner) = owner {
                    ledger.forget(&owner, 1);
                }
                let (id, was) = match delta {
                    Delta::Entered(e) => (e.ext_id, None),
                    Delta::Changed { from, .. } => (from.ext_id.clone(), Some(from)),
                    Delta::Left(e) => (e.ext_id.clone(), Some(e)),
                };
                before.insert((kr, id), was);
            }
        }
        let mut scope_moves: Vec<(String, Delta)> = Vec::new();
        let mut evidence: Vec<(String, Delta)> = Vec::new();
        for &(item, eval, _) in &changed {
            let now_entries = self.entries_of(item, eval);
            let old = old_entries.get(&item.ext_id);
            let krs: BTreeSet<&String> = now_entries
                .keys()
                .chain(old.into_iter().flat_map(|o| o.keys()))
                .collect();
            for kr in krs {
                let stored_entry = old.and_then(|o| o.get(kr));
                let new_entry = now_entries.get(kr);
                if let Some(d) = delta(stored_entry, new_entry) {
                    scope_moves.push((kr.clone(), d));
                }
                let baseline = match before.get(&(kr.clone(), item.ext_id.clone())) {
                    Some(was) => was.as_ref(),
                    None => stored_entry,
                };
                if let Some(d) = delta(baseline, new_entry) {
                    evidence.push((kr.clone(), d));
                }
            }
            state.touched.insert(id_digest(&item.ext_id));
        }
        let moves: Vec<(&str, &Delta)> = scope_moves.iter().map(|(k, d)| (k.as_str(), d)).collect();
        tx.move_scope(&moves).await?;
        ledger.record(tx, &evidence).await?;
        Ok(())
    }

    /// Deletes items that are gone upstream, with their matches; they leave the scope of
    /// every KR they were in, and their parents' child counts.
    pub(super) async fn delete_gone(
        &self,
        tx: &mut Tx,
        name: &str,
        gone: &[&str],
        ledger: &mut Ledger<'_>,
        state: &mut StepState,
        run: &mut SyncRun,
    ) -> anyhow::Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let stored = tx.stored_items(name, gone).await?;
        let mut krs_of: HashMap<String, Vec<String>> = HashMap::new();
        for (ext_id, kr, _) in tx.matches_of_items(name, gone).await? {
            state.affected.insert(kr.clone());
            krs_of.entry(ext_id).or_default().push(kr);
        }
        let pairs: Vec<(&str, &str)> = krs_of
            .iter()
            .flat_map(|(id, krs)| krs.iter().map(move |kr| (kr.as_str(), id.as_str())))
            .collect();
        let entries = self.entries_by_item(tx, name, &pairs).await?;
        for s in stored.values() {
            state
                .children
                .add(&s.links(krs_of.remove(&s.ext_id).unwrap_or_default()), -1);
        }
        tx.delete_items(name, gone).await?;
        let deltas: Vec<(String, Delta)> = entries
            .into_values()
            .flat_map(|by_kr| by_kr.into_iter().map(|(kr, e)| (kr, Delta::Left(e))))
            .collect();
        let moves: Vec<(&str, &Delta)> = deltas.iter().map(|(k, d)| (k.as_str(), d)).collect();
        tx.move_scope(&moves).await?;
        ledger.record(tx, &deltas).await?;
        run.deleted += stored.len() as i64;
        Ok(())
    }

    /// Matches every stored item again (the rules changed): matches, exempt rules and
    /// child counts are rewritten where they differ. Returns how many items were matched
    /// and the KRs whose matches changed (their scopes follow in the recompute that comes
    /// after; the others cannot have moved).
    pub(super) async fn rematch_all(
        &self,
        tx: &mut Tx,
    ) -> anyhow::Result<(usize, BTreeSet<String>)> {
        let mut evaluator = self.settings.rules.evaluator();
        let columns = self.settings.rules.columns_read();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut cursor = RematchCursor::default();
        let mut n = 0;
        loop {
            let Some(RematchBatch {
                items: batch,
                matches: stored,
                next,
            }) = tx
                .rematch_batch(&cursor, 5_000, &columns)
                .await
                .context("reading the stored items")?
            else {
                break;
            };
            cursor = next;
            // The stored matches of the batch, compared with what the rules say now; only
            // items whose matches or exempt rule differ are written.
            let stored = stored.rows()?;
            let mut old: FxHashMap<(&str, &str), Vec<(&str, &str)>> =
                FxHashMap::with_capacity_and_hasher(batch.len(), Default::default());
            for MatchRow(source, ext_id, kr, rule) in &stored {
                old.entry((source.as_ref(), ext_id.as_ref()))
                    .or_default()
                    .push((kr.as_ref(), rule.as_ref()));
            }
            let mut by_source: BTreeMap<&str, Vec<&crate::store::ItemRow>> = BTreeMap::new();
            for row in &batch {
                by_source.entry(&row.item.source).or_default().push(row);
            }
            for (source, rows) in by_source {
                let mut drop: Vec<&str> = Vec::new();
                let mut add: Vec<(String, String, String)> = Vec::new();
                let mut rewrite: Vec<(&str, Option<String>, i64)> = Vec::new();
                let mut children = ChildDeltas::default();
                for row in rows {
                    let eval = evaluator.evaluate(&row.item);
                    let mut new: Vec<(&str, &str)> = eval.matches.to_vec();
                    new.sort_unstable();
                    let mut before = old
                        .remove(&(row.item.source.as_str(), row.item.ext_id.as_str()))
                        .unwrap_or_default();
                    before.sort_unstable();
                    let same_matches = before.len() == new.len()
                        && before
                            .iter()
                            .zip(&new)
                            .all(|((k, r), (nk, nr))| k == nk && r == nr);
                    let exempt = eval.exempt_rule;
                    if same_matches && exempt == row.exempt_rule.as_deref() {
                        continue;
                    }
                    let old_links = ChildLinks::of(
                        &row.item.key,
                        row.item.epic.as_deref(),
                        row.item.parent.as_deref(),
                        row.item.abandoned,
                        before.iter().map(|(k, _)| k.to_string()).collect(),
                        row.exempt_rule.is_some(),
                    );
                    let new_links = ChildLinks::of(
                        &row.item.key,
                        row.item.epic.as_deref(),
                        row.item.parent.as_deref(),
                        row.item.abandoned,
                        new.iter().map(|(k, _)| k.to_string()).collect(),
                        exempt.is_some(),
                    );
                    children.add(&old_links, -1);
                    children.add(&new_links, 1);
                    if !same_matches {
                        // The KRs whose match of it appeared, went or changed its rule.
                        for (k, r) in &before {
                            if !new.iter().any(|(nk, nr)| nk == k && nr == r) {
                                touched.insert(k.to_string());
                            }
                        }
                        for (k, r) in &new {
                            if !before.iter().any(|(bk, br)| bk == k && br == r) {
                                touched.insert(k.to_string());
                            }
                        }
                        if !before.is_empty() {
                            drop.push(&row.item.ext_id);
                        }
                        add.extend(
                            new.iter().map(|(k, r)| {
                                (row.item.ext_id.clone(), k.to_string(), r.to_string())
                            }),
                        );
                    }
                    rewrite.push((
                        &row.item.ext_id,
                        exempt.map(str::to_string),
                        new.len() as i64,
                    ));
                }
                let add: Vec<(&str, &str, &str)> = add
                    .iter()
                    .map(|(e, k, r)| (e.as_str(), k.as_str(), r.as_str()))
                    .collect();
                tx.replace_item_matches(source, &drop, &add).await?;
                let updates: Vec<(&str, Option<&str>, i64)> = rewrite
                    .iter()
                    .map(|(e, x, m)| (*e, x.as_deref(), *m))
                    .collect();
                tx.set_alignment(source, &updates).await?;
                tx.apply_child_deltas(source, &children).await?;
            }
            n += batch.len();
        }
        tx.prune_child_counts().await?;
        Ok((n, touched))
    }

    /// Recomputes these KRs' scopes in full from the stored items and their matches,
    /// recording what differs from the stored scopes (a rules or config change, a
    /// check-in); values follow in the ledger's `finish`.
    pub(super) async fn rescope(
        &self,
        tx: &mut Tx,
        kr_ids: &[String],
        ledger: &mut Ledger<'_>,
    ) -> anyhow::Result<()> {
        for id in kr_ids {
            let Some((def, period)) = self.krs.get(id) else {
                continue;
            };
            ledger.recheck(id);
            if !def.measure.uses_items() {
                continue;
            }
            let with_fields = def
                .field
                .as_deref()
                .is_some_and(|f| f.starts_with("fields."));
            let scope: Scope = tx
                .progress_items(id, with_fields)
                .await?
                .iter()
                .map(|(item, rule)| {
                    let e = Entry::of(def, period, item, rule);
                    (e.id(), e)
                })
                .collect();
            let deltas: Vec<(String, Delta)> = evidence::diff(&tx.scope(id).await?, &scope)
                .into_iter()
                .map(|d| (id.clone(), d))
                .collect();
            let moves: Vec<(&str, &Delta)> = deltas.iter().map(|(k, d)| (k.as_str(), d)).collect();
            tx.move_scope(&moves).await?;
            ledger.record(tx, &deltas).await?;
        }
        Ok(())
    }

    /// An item's entries in the scopes of the item KRs it is matched to, by KR.
    fn entries_of(&self, item: &Item, eval: &Evaluation) -> BTreeMap<String, Entry> {
        eval.matches
            .iter()
            .filter_map(|(kr, rule)| {
                let (def, period) = self.krs.get(kr)?;
                def.measure
                    .uses_items()
                    .then(|| (kr.clone(), Entry::of(def, period, item, rule)))
            })
            .collect()
    }

    /// The stored scope entries of these `(kr_id, ext_id)` pairs of `source` in the
    /// configured item KRs: by item, by KR.
    async fn entries_by_item(
        &self,
        tx: &mut Tx,
        name: &str,
        pairs: &[(&str, &str)],
    ) -> anyhow::Result<HashMap<String, BTreeMap<String, Entry>>> {
        let mut out: HashMap<String, BTreeMap<String, Entry>> = HashMap::new();
        for (kr, e) in tx.scope_entries_of(name, pairs).await? {
            if self
                .krs
                .get(&kr)
                .is_some_and(|(def, _)| def.measure.uses_items())
            {
                out.entry(e.ext_id.clone()).or_default().insert(kr, e);
            }
        }
        Ok(out)
    }
}

/// An item's links to its epic and parent, with what the rules said about it.
fn links_of(item: &Item, eval: &Evaluation) -> ChildLinks {
    ChildLinks::of(
        &item.key,
        item.epic.as_deref(),
        item.parent.as_deref(),
        item.abandoned,
        eval.matches.iter().map(|(k, _)| k.clone()).collect(),
        eval.exempt_rule.is_some(),
    )
}

/// The delta from one entry of an item in a KR's scope to another (absent: not in scope).
fn delta(old: Option<&Entry>, new: Option<&Entry>) -> Option<Delta> {
    match (old, new) {
        (None, None) => None,
        (None, Some(n)) => Some(Delta::Entered(n.clone())),
        (Some(o), None) => Some(Delta::Left(o.clone())),
        (Some(o), Some(n)) => o.differs(n).then(|| Delta::Changed {
            from: o.clone(),
            to: n.clone(),
        }),
    }
}
