//! The evidence behind a KR's number, as pure values: what each item in a KR's scope
//! contributes ([`Entry`]), how two scopes differ ([`diff`] → [`Delta`]s, what the ledger
//! stores per snapshot), how deltas replay into a scope ([`replay`]) and how a scope gives
//! back the number ([`value_of`]). The store keeps the deltas (`kr_evidence`); `explain
//! --at`, `history` and the ledger's own tests rebuild from them. No I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::plain_number;
use crate::model::{Category, KeyResultDef, Measure, Period, ProgressFacts};
use crate::progress;

/// An item as it counts in one KR.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub source: String,
    pub ext_id: String,
    pub key: String,
    pub category: Category,
    /// What it weighs: 1, its estimate (`weight_by = "estimate"`), or the value a `sum`
    /// adds.
    pub weight: f64,
    /// Whether it adds to `current` (done; for count and sum: done inside the period).
    pub counted: bool,
    /// The rule that put it in scope.
    pub rule: String,
}

/// Identifies an item within a source.
pub type ItemId = (String, String);

/// A KR's scope: its items by `(source, ext_id)`.
pub type Scope = BTreeMap<ItemId, Entry>;

impl Entry {
    pub fn of(kr: &KeyResultDef, period: &Period, item: &impl ProgressFacts, rule: &str) -> Entry {
        Entry {
            source: item.source().to_string(),
            ext_id: item.ext_id().to_string(),
            key: item.key().to_string(),
            category: item.category(),
            weight: progress::item_weight(kr, item),
            counted: progress::counts_toward(kr, period, item),
            rule: rule.to_string(),
        }
    }

    pub fn id(&self) -> ItemId {
        (self.source.clone(), self.ext_id.clone())
    }

    /// Whether `other` differs in anything the evidence shows (category, weight, whether
    /// it counts, its key or rule).
    pub fn differs(&self, other: &Entry) -> bool {
        self.category != other.category
            || (self.weight - other.weight).abs() > 1e-9
            || self.counted != other.counted
            || self.key != other.key
            || self.rule != other.rule
    }
}

/// One change to a KR's scope between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Entered(Entry),
    /// The item as it was when it left.
    Left(Entry),
    Changed {
        from: Entry,
        to: Entry,
    },
}

/// What changed from `old` to `new`, in item order.
pub fn diff(old: &Scope, new: &Scope) -> Vec<Delta> {
    let mut out = Vec::new();
    for (id, e) in new {
        match old.get(id) {
            None => out.push(Delta::Entered(e.clone())),
            Some(o) if o.differs(e) => out.push(Delta::Changed {
                from: o.clone(),
                to: e.clone(),
            }),
            Some(_) => {}
        }
    }
    for (id, o) in old {
        if !new.contains_key(id) {
            out.push(Delta::Left(o.clone()));
        }
    }
    out
}

/// Applies deltas (oldest first) to a scope.
pub fn replay<'a>(scope: &mut Scope, deltas: impl IntoIterator<Item = &'a Delta>) {
    for d in deltas {
        match d {
            Delta::Entered(e) | Delta::Changed { to: e, .. } => {
                scope.insert(e.id(), e.clone());
            }
            Delta::Left(e) => {
                scope.remove(&e.id());
            }
        }
    }
}

/// `current` and (for completion and milestone, whose target is the scope) `target` of a
/// KR from its scope; `None` for metric and manual KRs, whose number is not items.
pub fn value_of(kr: &KeyResultDef, scope: &Scope) -> Option<(f64, Option<f64>)> {
    let entries = scope.values();
    match kr.measure {
        Measure::Completion => {
            let (mut done, mut total) = (0.0, 0.0);
            for e in entries {
                total += e.weight;
                if e.counted {
                    done += e.weight;
                }
            }
            Some((done, Some(total)))
        }
        Measure::Milestone => {
            let n = scope.len() as f64;
            let done = entries.filter(|e| e.category == Category::Done).count() as f64;
            Some((done, Some(n)))
        }
        Measure::Count => Some((entries.filter(|e| e.counted).count() as f64, kr.target)),
        Measure::Sum => Some((
            entries.filter(|e| e.counted).map(|e| e.weight).sum(),
            kr.target,
        )),
        Measure::Metric | Measure::Manual => None,
    }
}

/// The end of each day from the period's start until `until` (exclusive): when the
/// reconstructed history has a point.
fn day_ends(period: &Period, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut end =
        period.starts_at() + chrono::Duration::days(1) - chrono::Duration::milliseconds(1);
    let last = until.min(period.ends_at());
    while end < last {
        out.push(end);
        end += chrono::Duration::days(1);
    }
    out
}

/// An item in a KR's scope with the dates its history is rebuilt from.
#[derive(Debug, Clone, PartialEq)]
pub struct Dated {
    /// As it counts now.
    pub entry: Entry,
    pub created: Option<DateTime<Utc>>,
    /// When it reached done (its resolution, else its last update); `None` when not done.
    pub done_at: Option<DateTime<Utc>>,
}

impl Dated {
    pub fn of(kr: &KeyResultDef, period: &Period, item: &impl ProgressFacts, rule: &str) -> Dated {
        Dated {
            entry: Entry::of(kr, period, item, rule),
            created: item.created(),
            done_at: (item.category() == Category::Done)
                .then(|| item.resolved().unwrap_or(item.updated())),
        }
    }

    /// The item as it stood before it reached done: in progress, counting for nothing,
    /// weighing what it weighs now (a weight is an estimate or a field, not a state).
    fn open(&self) -> Entry {
        Entry {
            category: Category::InProgress,
            counted: false,
            ..self.entry.clone()
        }
    }
}

/// What happened to an item (by its index among the [`Dated`] items) on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// It entered the scope, open (it reaches done later) or as it is now.
    Entered { item: usize, open: bool },
    /// It reached done.
    Done { item: usize },
}

/// One point of a reconstructed history, with the changes since the point before (from an
/// empty scope for the first).
#[derive(Debug, Clone)]
pub struct Reconstructed {
    pub at: DateTime<Utc>,
    pub value: progress::KrValue,
    events: Vec<Event>,
}

impl Reconstructed {
    /// The point's deltas (built when asked, so a history holds indices, not entries).
    pub fn deltas(&self, items: &[Dated]) -> Vec<Delta> {
        self.delta_chunks(items, usize::MAX).flatten().collect()
    }

    /// The point's deltas, `n` at a time.
    pub fn delta_chunks<'a>(
        &'a self,
        items: &'a [Dated],
        n: usize,
    ) -> impl Iterator<Item = Vec<Delta>> + 'a {
        self.events
            .chunks(n.max(1))
            .map(move |chunk| chunk.iter().map(|e| delta_of(*e, items)).collect())
    }
}

fn delta_of(event: Event, items: &[Dated]) -> Delta {
    match event {
        Event::Entered { item, open: true } => Delta::Entered(items[item].open()),
        Event::Entered { item, open: false } => Delta::Entered(items[item].entry.clone()),
        Event::Done { item } => Delta::Changed {
            from: items[item].open(),
            to: items[item].entry.clone(),
        },
    }
}

/// The history of a completion, count or sum KR over its period until `until`, rebuilt from
/// the items now in its scope: at the end of each day, the items created by then, counted
/// by their resolution dates. A point where the value changes (and the first), with the
/// deltas since the point before. Other measures have no item dates to rebuild from: empty.
///
/// An item changes at most twice: when it is created (it enters) and when it reached done
/// (it starts to count). So the days are walked once with those events, and the totals are
/// kept as they go: the work is proportional to the items plus the days.
pub fn reconstruct(
    kr: &KeyResultDef,
    period: &Period,
    items: &[Dated],
    until: DateTime<Utc>,
) -> Vec<Reconstructed> {
    if !matches!(
        kr.measure,
        Measure::Completion | Measure::Count | Measure::Sum
    ) {
        return Vec::new();
    }
    let days = day_ends(period, until);
    if days.is_empty() {
        return Vec::new();
    }
    // The first day whose end is at or after `t`; `days.len()` when none is.
    let day_of = |t: DateTime<Utc>| days.partition_point(|end| *end < t);
    let mut events: Vec<Vec<Event>> = vec![Vec::new(); days.len()];
    for (i, item) in items.iter().enumerate() {
        let created = item.created.map_or(0, day_of);
        if created >= days.len() {
            continue;
        }
        match item.done_at.map(day_of) {
            Some(done) if done > created => {
                events[created].push(Event::Entered {
                    item: i,
                    open: true,
                });
                if done < days.len() {
                    events[done].push(Event::Done { item: i });
                }
            }
            _ => events[created].push(Event::Entered {
                item: i,
                open: false,
            }),
        }
    }
    let (mut counted, mut total, mut n) = (0.0, 0.0, 0u64);
    let mut out: Vec<Reconstructed> = Vec::new();
    let mut pending: Vec<Event> = Vec::new();
    for (at, day) in days.iter().zip(events) {
        for e in &day {
            match *e {
                Event::Entered { item, open } => {
                    let entry = &items[item].entry;
                    total += entry.weight;
                    n += 1;
                    if !open && entry.counted {
                        counted += entry.weight;
                    }
                }
                // From open (counting nothing) to as it is now; the weight stays.
                Event::Done { item } => {
                    let entry = &items[item].entry;
                    if entry.counted {
                        counted += entry.weight;
                    }
                }
            }
        }
        pending.extend(day);
        let value = progress::from_totals(kr, counted, total, n);
        if out.last().is_some_and(|p| p.value == value) {
            continue;
        }
        out.push(Reconstructed {
            at: *at,
            value,
            events: std::mem::take(&mut pending),
        });
    }
    out
}

/// A change in words for the KR page: `PAY-12 done (+3)`, `PAY-7 left`.
pub fn describe(kr: &KeyResultDef, d: &Delta) -> String {
    let unit = |w: f64| {
        if kr.measure == Measure::Completion && kr.weight_by == crate::model::WeightBy::Estimate
            || kr.measure == Measure::Sum
        {
            format!("{} pts", plain_number(w))
        } else {
            plain_number(w)
        }
    };
    match d {
        Delta::Entered(e) => format!(
            "{} entered ({}, {})",
            e.key,
            e.category.as_str(),
            unit(e.weight)
        ),
        Delta::Left(e) => format!("{} left", e.key),
        Delta::Changed { from, to } if from.category != to.category => {
            let gained = to.counted && !from.counted;
            let lost = from.counted && !to.counted;
            let sign = if gained {
                format!(" (+{})", unit(to.weight))
            } else if lost {
                format!(" (−{})", unit(from.weight))
            } else {
                String::new()
            };
            format!("{} {}{sign}", to.key, to.category.as_str())
        }
        Delta::Changed { from, to } if (from.weight - to.weight).abs() > 1e-9 => format!(
            "{} weighs {} (was {})",
            to.key,
            unit(to.weight),
            unit(from.weight)
        ),
        Delta::Changed { to, .. } => format!("{} changed", to.key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Item, ItemKind, WeightBy};
    use chrono::{TimeZone, Utc};
    use rand::{Rng, SeedableRng};

    fn kr(measure: Measure, weight_by: WeightBy) -> KeyResultDef {
        KeyResultDef {
            id: "k".into(),
            objective: "o".into(),
            title: "K".into(),
            measure,
            weight: 1.0,
            weight_by,
            start: None,
            target: Some(10.0),
            field: None,
            metric: None,
            unit: None,
            owner: None,
            kind: Default::default(),
            success: None,
        }
    }

    fn item(n: u32, category: Category, estimate: Option<f64>, resolved_day: u32) -> Item {
        let at = Utc
            .with_ymd_and_hms(2026, 10, resolved_day.clamp(1, 28), 9, 0, 0)
            .single()
            .expect("date");
        Item {
            source: "jira".into(),
            ext_id: n.to_string(),
            key: format!("PAY-{n}"),
            kind: ItemKind::Issue,
            title: String::new(),
            url: String::new(),
            project: "PAY".into(),
            item_type: "Story".into(),
            status: String::new(),
            category,
            labels: vec![],
            components: vec![],
            epic: None,
            parent: None,
            milestone: None,
            assignee: None,
            estimate,
            created: None,
            updated: at,
            resolved: (category == Category::Done).then_some(at),
            fields: Default::default(),
            abandoned: false,
        }
    }

    /// Random edit sequences: after every step the scope rebuilt from the recorded deltas
    /// alone gives the number the full computation gives.
    #[test]
    fn replaying_the_deltas_reproduces_every_snapshot() {
        let period = Period::parse("2026-Q4").expect("period");
        for (measure, weight_by) in [
            (Measure::Completion, WeightBy::Estimate),
            (Measure::Completion, WeightBy::Count),
            (Measure::Count, WeightBy::Count),
            (Measure::Sum, WeightBy::Count),
            (Measure::Milestone, WeightBy::Count),
        ] {
            let def = kr(measure, weight_by);
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            for _run in 0..50 {
                let mut live: BTreeMap<u32, Item> = BTreeMap::new();
                let mut stored = Scope::new();
                let mut ledger: Vec<Vec<Delta>> = Vec::new();
                let mut values = Vec::new();
                for _step in 0..30 {
                    for _ in 0..rng.random_range(1..4) {
                        let n = rng.random_range(1..12u32);
                        match rng.random_range(0..4) {
                            0 => {
                                live.remove(&n);
                            }
                            _ => {
                                let cat = match rng.random_range(0..3) {
                                    0 => Category::Todo,
                                    1 => Category::InProgress,
                                    _ => Category::Done,
                                };
                                let est =
                                    [None, Some(1.0), Some(3.0), Some(0.5)][rng.random_range(0..4)];
                                live.insert(n, item(n, cat, est, rng.random_range(1..28)));
                            }
                        }
                    }
                    let scope: Scope = live
                        .values()
                        .map(|i| {
                            let e = Entry::of(&def, &period, i, "r");
                            (e.id(), e)
                        })
                        .collect();
                    let items: Vec<&Item> = live.values().collect();
                    let full = progress::compute(&def, &period, &items, None);
                    ledger.push(diff(&stored, &scope));
                    stored = scope;
                    values.push(full);
                }
                let mut rebuilt = Scope::new();
                for (deltas, full) in ledger.iter().zip(&values) {
                    replay(&mut rebuilt, deltas);
                    let (current, target) = value_of(&def, &rebuilt).expect("items");
                    assert!(
                        (current - full.current.expect("current")).abs() < 1e-9,
                        "{measure:?}: {current} vs {full:?}"
                    );
                    assert_eq!(target, full.target, "{measure:?}");
                    assert_eq!(rebuilt.len() as u64, full.items);
                }
            }
        }
    }

    /// The day-by-day walk over creation and resolution events gives, for every day, the
    /// number a full computation over the items as they stood that day gives; replaying the
    /// points' deltas gives it back too.
    /// An item as it stood at `at`, as far as its dates tell: done if it was resolved by
    /// then; otherwise its category now, except that an item done later was open.
    fn as_of(item: &Item, at: DateTime<Utc>) -> Item {
        let mut i = item.clone();
        let done_at =
            (item.category == Category::Done).then(|| item.resolved.unwrap_or(item.updated));
        if done_at.is_some_and(|t| t > at) {
            i.category = Category::InProgress;
            i.resolved = None;
        }
        i
    }

    #[test]
    fn reconstruction_matches_computing_each_day_in_full() {
        let period = Period::parse("2026-Q4").expect("period");
        let until = Utc
            .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
            .single()
            .expect("t");
        for (measure, weight_by) in [
            (Measure::Completion, WeightBy::Estimate),
            (Measure::Count, WeightBy::Count),
            (Measure::Sum, WeightBy::Count),
        ] {
            let def = kr(measure, weight_by);
            let mut rng = rand::rngs::StdRng::seed_from_u64(11);
            for _run in 0..20 {
                let items: Vec<(Item, String)> = (1..rng.random_range(2..30u32))
                    .map(|n| {
                        let cat = [Category::Todo, Category::InProgress, Category::Done]
                            [rng.random_range(0..3)];
                        let mut i = item(
                            n,
                            cat,
                            [None, Some(2.0), Some(0.5)][rng.random_range(0..3)],
                            1,
                        );
                        let day = |rng: &mut rand::rngs::StdRng| {
                            Utc.with_ymd_and_hms(
                                2026,
                                rng.random_range(9..12),
                                rng.random_range(1..29),
                                10,
                                0,
                                0,
                            )
                            .single()
                            .expect("t")
                        };
                        i.created = (rng.random_range(0..4) > 0).then(|| day(&mut rng));
                        if cat == Category::Done {
                            let r = day(&mut rng);
                            i.resolved = Some(r);
                            i.updated = r;
                        }
                        (i, "r".to_string())
                    })
                    .collect();
                let dated: Vec<Dated> = items
                    .iter()
                    .map(|(i, rule)| Dated::of(&def, &period, i, rule))
                    .collect();
                let points = reconstruct(&def, &period, &dated, until);
                let mut scope = Scope::new();
                let mut last: Option<&Reconstructed> = None;
                let mut next = points.iter().peekable();
                for at in day_ends(&period, until) {
                    if next.peek().is_some_and(|p| p.at == at) {
                        let p = next.next().expect("point");
                        replay(&mut scope, &p.deltas(&dated));
                        let (current, _) = value_of(&def, &scope).expect("items");
                        assert!((current - p.value.current.expect("c")).abs() < 1e-9);
                        last = Some(p);
                    }
                    let then: Vec<Item> = items
                        .iter()
                        .filter(|(i, _)| i.created.is_none_or(|c| c <= at))
                        .map(|(i, _)| as_of(i, at))
                        .collect();
                    let refs: Vec<&Item> = then.iter().collect();
                    let full = progress::compute(&def, &period, &refs, None);
                    let shown = &last.expect("the first day is a point").value;
                    assert!(
                        (full.current.expect("c") - shown.current.expect("c")).abs() < 1e-9
                            && (full.progress - shown.progress).abs() < 1e-9
                            && full.items == shown.items,
                        "{measure:?} {at}: {full:?} vs {shown:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn changes_in_words() {
        let def = kr(Measure::Completion, WeightBy::Estimate);
        let period = Period::parse("2026-Q4").expect("period");
        let a = Entry::of(
            &def,
            &period,
            &item(12, Category::InProgress, Some(3.0), 2),
            "r",
        );
        let b = Entry::of(&def, &period, &item(12, Category::Done, Some(3.0), 2), "r");
        assert_eq!(
            describe(
                &def,
                &Delta::Changed {
                    from: a.clone(),
                    to: b
                }
            ),
            "PAY-12 done (+3 pts)"
        );
        assert_eq!(describe(&def, &Delta::Left(a)), "PAY-12 left");
    }
}
