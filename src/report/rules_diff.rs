//! `okrsync rules diff --against PATH...`: what a changed rule set would do to every KR,
//! evaluated against the stored items without writing anything — for review in a pull
//! request. Old values are the stored ones; new values are computed from the stored items
//! matched by the other files' rules, with their KR definitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{natural_key, KrDiff, KrNumbers, RulesDiffDoc};
use crate::model::plain_number;
use crate::model::{Item, KeyResultDef, Measure, Period};
use crate::progress;
use crate::settings::Settings;
use crate::store::Store;

fn same(a: &KrNumbers, b: &KrNumbers) -> bool {
    let eq = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    };
    eq(Some(a.progress), Some(b.progress)) && eq(a.current, b.current) && eq(a.target, b.target)
}

/// Compares the stored state (made by `current`'s rules) with what `proposed` would make.
pub async fn rules_diff(
    store: &Store,
    current: &Settings,
    proposed: &Settings,
) -> anyhow::Result<RulesDiffDoc> {
    let new_krs: Vec<(&KeyResultDef, &Period)> = proposed
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter().map(move |k| (k, &o.period)))
        .collect();
    let old_ids: Vec<&str> = current
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter().map(|k| k.id.as_str()))
        .collect();

    // One pass over the stored items: the new scope of every KR.
    let mut new_scope: HashMap<String, Vec<Item>> = HashMap::new();
    let mut tx = store.begin_read().await?;
    let mut after: Option<(String, String)> = None;
    let mut observed: HashMap<String, Option<f64>> = HashMap::new();
    loop {
        let batch = tx
            .items_after(after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())), 1000)
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some((last.item.source.clone(), last.item.ext_id.clone()));
        for row in batch {
            let eval = proposed.rules.evaluate(&row.item);
            for (kr, _rule) in &eval.matches {
                new_scope
                    .entry(kr.clone())
                    .or_default()
                    .push(row.item.clone());
            }
        }
    }
    for (def, _) in &new_krs {
        let value = match def.measure {
            Measure::Manual => tx.latest_checkin(&def.id).await?,
            Measure::Metric => match &def.metric {
                Some(m) => {
                    tx.latest_observation(&m.source, m.reference.as_str())
                        .await?
                }
                None => None,
            },
            _ => None,
        };
        observed.insert(def.id.to_string(), value);
    }
    // Nothing was written; rolling back keeps it that way.
    tx.rollback().await?;

    let stored: BTreeMap<String, crate::store::KrState> = store
        .kr_states()
        .await?
        .into_iter()
        .map(|k| (k.id.clone(), k))
        .collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (def, period) in &new_krs {
        seen.insert(def.id.as_str());
        let items = new_scope.remove(def.id.as_str()).unwrap_or_default();
        let refs: Vec<&Item> = items.iter().collect();
        let value = progress::compute(
            def,
            period,
            &refs,
            observed.get(def.id.as_str()).copied().flatten(),
        );
        let new = KrNumbers {
            progress: value.progress,
            current: value.current,
            target: value.target,
        };
        let in_old = old_ids.contains(&def.id.as_str());
        let old = stored
            .get(def.id.as_str())
            .filter(|s| in_old && s.computed_at.is_some())
            .map(|s| KrNumbers {
                progress: s.progress,
                current: s.current,
                target: s.target,
            });
        let before: BTreeSet<(String, String)> = if in_old {
            store
                .items_for_kr(&def.id)
                .await?
                .into_iter()
                .map(|(r, _)| (r.item.source, r.item.key))
                .collect()
        } else {
            BTreeSet::new()
        };
        let after: BTreeSet<(String, String)> = items
            .iter()
            .map(|i| (i.source.clone(), i.key.clone()))
            .collect();
        let entered = sorted_keys(after.difference(&before));
        let left = sorted_keys(before.difference(&after));
        let unchanged = old.as_ref().is_some_and(|o| same(o, &new));
        if unchanged && entered.is_empty() && left.is_empty() {
            continue;
        }
        out.push(KrDiff {
            id: def.id.to_string(),
            old,
            new: Some(new),
            entered,
            left,
        });
    }
    for id in old_ids {
        if seen.contains(id) {
            continue;
        }
        let left = store
            .items_for_kr(id)
            .await?
            .into_iter()
            .map(|(r, _)| (r.item.source, r.item.key))
            .collect::<BTreeSet<_>>();
        out.push(KrDiff {
            id: id.to_string(),
            old: stored.get(id).map(|s| KrNumbers {
                progress: s.progress,
                current: s.current,
                target: s.target,
            }),
            new: None,
            entered: Vec::new(),
            left: sorted_keys(left.iter()),
        });
    }
    Ok(RulesDiffDoc { key_results: out })
}

fn sorted_keys<'a>(keys: impl Iterator<Item = &'a (String, String)>) -> Vec<String> {
    let mut v: Vec<&(String, String)> = keys.collect();
    v.sort_by_cached_key(|(s, k)| (s.clone(), natural_key(k)));
    v.into_iter().map(|(_, k)| k.clone()).collect()
}

/// The diff as a table for a pull request comment.
pub fn render_rules_diff(doc: &RulesDiffDoc) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if doc.key_results.is_empty() {
        let _ = writeln!(out, "No key result would change.");
        return out;
    }
    let show = |n: &Option<KrNumbers>| match n {
        None => "–".to_string(),
        Some(n) => format!(
            "{:.0}% ({} of {})",
            n.progress * 100.0,
            n.current.map_or("–".into(), plain_number),
            n.target.map_or("–".into(), plain_number)
        ),
    };
    for k in &doc.key_results {
        let _ = writeln!(out, "{}: {} → {}", k.id, show(&k.old), show(&k.new));
        if !k.entered.is_empty() {
            let _ = writeln!(out, "  + {}", k.entered.join(", "));
        }
        if !k.left.is_empty() {
            let _ = writeln!(out, "  - {}", k.left.join(", "));
        }
    }
    out
}
