//! Progress arithmetic (SPEC.md "Progress semantics"): a KR's current value, target and
//! progress from its matched items or observed value; statuses against the elapsed share
//! of the period; the objective rollup. Pure functions, no I/O.

pub mod flags;

use crate::model::{
    Category, Item, KeyResultDef, Measure, Period, ProgressFacts, Status, StatusMargins, WeightBy,
};

/// A KR's computed value.
#[derive(Debug, Clone, PartialEq)]
pub struct KrValue {
    /// Never clamped; `None` when there is nothing to show (no observation, no check-in).
    pub current: Option<f64>,
    pub start: f64,
    pub target: Option<f64>,
    /// In [0, 1].
    pub progress: f64,
    /// Matched items (0 for metric and manual KRs).
    pub items: u64,
}

const EPS: f64 = 1e-9;

/// Has the item reached done inside the period? Uses `resolved`; a done item without a
/// resolution time (Jira workflows that never set one) uses `updated`.
pub fn done_in_period(period: &Period, item: &impl ProgressFacts) -> bool {
    item.category() == Category::Done && period.contains(item.resolved().unwrap_or(item.updated()))
}

/// What `item` weighs in `kr`: 1, or its estimate for `weight_by = "estimate"` (a missing
/// estimate weighs 1; an estimate of 0 weighs 0). For `sum`, the value it adds.
pub fn item_weight(kr: &KeyResultDef, item: &impl ProgressFacts) -> f64 {
    match kr.measure {
        Measure::Completion => match kr.weight_by {
            WeightBy::Count => 1.0,
            WeightBy::Estimate => item.estimate().unwrap_or(1.0),
        },
        Measure::Sum => sum_value(kr, item),
        _ => 1.0,
    }
}

/// The value a `sum` KR adds up for an item: `estimate`, or `fields.<x>` as a number
/// (numeric strings accepted); missing adds 0.
fn sum_value(kr: &KeyResultDef, item: &impl ProgressFacts) -> f64 {
    match kr.field.as_deref().and_then(|f| f.strip_prefix("fields.")) {
        None => item.estimate().unwrap_or(0.0),
        Some(name) => match item.field(name) {
            Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        },
    }
}

/// Does the item add to `current` now?
pub fn counts_toward(kr: &KeyResultDef, period: &Period, item: &impl ProgressFacts) -> bool {
    match kr.measure {
        Measure::Completion | Measure::Milestone => item.category() == Category::Done,
        Measure::Count | Measure::Sum => done_in_period(period, item),
        Measure::Metric | Measure::Manual => false,
    }
}

/// (current − start) ÷ (target − start), clamped; when target = start, 1 once current
/// reaches the target.
fn linear(current: f64, start: f64, target: f64) -> f64 {
    let span = target - start;
    let p = if span.abs() < EPS {
        if current >= target - EPS {
            1.0
        } else {
            0.0
        }
    } else {
        (current - start) / span
    };
    clamp(p)
}

fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Computes a KR from its matched items (`completion`, `count`, `sum`, `milestone`) or its
/// latest observed value (`metric`: the observation, `manual`: the check-in).
pub fn compute(
    kr: &KeyResultDef,
    period: &Period,
    items: &[&Item],
    observed: Option<f64>,
) -> KrValue {
    let start = kr.start.unwrap_or(0.0);
    let n = items.len() as u64;
    match kr.measure {
        Measure::Completion => {
            // `fold` from 0.0: `sum` of no f64 is -0.0, which documents would print.
            let total: f64 = items
                .iter()
                .map(|i| item_weight(kr, i))
                .fold(0.0, |a, w| a + w);
            let done: f64 = items
                .iter()
                .filter(|i| i.category() == Category::Done)
                .map(|i| item_weight(kr, i))
                .fold(0.0, |a, w| a + w);
            let progress = if total > EPS {
                clamp(done / total)
            } else {
                0.0
            };
            KrValue {
                current: Some(done),
                start: 0.0,
                target: Some(total),
                progress,
                items: n,
            }
        }
        Measure::Count | Measure::Sum => {
            let current: f64 = items
                .iter()
                .filter(|i| done_in_period(period, i))
                .map(|i| {
                    if kr.measure == Measure::Count {
                        1.0
                    } else {
                        sum_value(kr, i)
                    }
                })
                .fold(0.0, |a, w| a + w);
            let progress = kr.target.map_or(0.0, |t| linear(current, start, t));
            KrValue {
                current: Some(current),
                start,
                target: kr.target,
                progress,
                items: n,
            }
        }
        Measure::Milestone => {
            let done = items
                .iter()
                .filter(|i| i.category() == Category::Done)
                .count();
            let progress = if n > 0 && done as u64 == n { 1.0 } else { 0.0 };
            KrValue {
                current: Some(done as f64),
                start: 0.0,
                target: Some(n as f64),
                progress,
                items: n,
            }
        }
        Measure::Metric => {
            let progress = match (observed, kr.target) {
                (Some(c), Some(t)) => linear(c, start, t),
                _ => 0.0,
            };
            KrValue {
                current: observed,
                start,
                target: kr.target,
                progress,
                items: 0,
            }
        }
        Measure::Manual => {
            let target = kr.target.unwrap_or(1.0);
            let progress = observed.map_or(0.0, |c| linear(c, start, target));
            KrValue {
                current: observed,
                start,
                target: Some(target),
                progress,
                items: 0,
            }
        }
    }
}

/// A completion, count, sum or milestone KR's value from the totals of its scope (the
/// evidence entries' weights): `counted` the weight that adds to current, `total` the
/// weight of every item, `n` the items. The same numbers [`compute`] gives for the items
/// those totals come from: a sync step has the database sum its KRs' scopes, and the
/// reconstructed history adds items up day by day instead of passing every item each day.
pub fn from_totals(kr: &KeyResultDef, counted: f64, total: f64, n: u64) -> KrValue {
    let start = kr.start.unwrap_or(0.0);
    match kr.measure {
        Measure::Completion => KrValue {
            current: Some(counted),
            start: 0.0,
            target: Some(total),
            progress: if total > EPS {
                clamp(counted / total)
            } else {
                0.0
            },
            items: n,
        },
        // Every item weighs 1 and counts when done: `counted` is the done count.
        Measure::Milestone => KrValue {
            current: Some(counted),
            start: 0.0,
            target: Some(n as f64),
            progress: if n > 0 && (counted - n as f64).abs() < EPS {
                1.0
            } else {
                0.0
            },
            items: n,
        },
        _ => KrValue {
            current: Some(counted),
            start,
            target: kr.target,
            progress: kr.target.map_or(0.0, |t| linear(counted, start, t)),
            items: n,
        },
    }
}

/// A status from progress and the elapsed share of the period (never `Stale`: staleness
/// is about the data, decided by the caller).
pub fn status(progress: f64, expected: f64, margins: StatusMargins) -> Status {
    if progress >= 1.0 - EPS {
        Status::Done
    } else if progress >= expected - margins.on_track - EPS {
        Status::OnTrack
    } else if progress >= expected - margins.at_risk - EPS {
        Status::AtRisk
    } else {
        Status::OffTrack
    }
}

/// A KR's status (SPEC.md "Judgement beside the numbers"): a committed KR's progress is
/// compared with `expected`; an aspirational one's progress measured against its success
/// line, min(1, progress ÷ success), so a stretch goal at its success line by the end of
/// the period is on track. Either is `done` only at progress 1.
pub fn kr_status(progress: f64, success: f64, expected: f64, margins: StatusMargins) -> Status {
    if progress >= 1.0 - EPS {
        return Status::Done;
    }
    let measured = if success > EPS && success < 1.0 {
        (progress / success).min(1.0)
    } else {
        progress
    };
    match status(measured, expected, margins) {
        // Reaching the success line is not reaching the target.
        Status::Done => Status::OnTrack,
        s => s,
    }
}

/// The weighted mean of `(weight, progress)` pairs; 0 when empty or all weights are 0.
pub fn objective_progress(krs: &[(f64, f64)]) -> f64 {
    let total: f64 = krs.iter().map(|(w, _)| w).sum();
    if total <= EPS {
        return 0.0;
    }
    clamp(krs.iter().map(|(w, p)| w * p).sum::<f64>() / total)
}

/// The worst status (done < on_track < at_risk < off_track < stale).
pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
    statuses.into_iter().max()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::model::ItemKind;

    fn at(m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0)
            .single()
            .expect("time")
    }

    fn q4() -> Period {
        Period::parse("2026-Q4").expect("period")
    }

    fn item(
        key: &str,
        cat: Category,
        estimate: Option<f64>,
        resolved: Option<DateTime<Utc>>,
    ) -> Item {
        Item {
            source: "jira".into(),
            ext_id: key.into(),
            key: key.into(),
            kind: ItemKind::Issue,
            title: key.into(),
            url: String::new(),
            project: "PAY".into(),
            item_type: "Story".into(),
            status: String::new(),
            category: cat,
            labels: vec![],
            components: vec![],
            epic: None,
            parent: None,
            milestone: None,
            assignee: None,
            estimate,
            created: None,
            updated: resolved.unwrap_or(at(11, 1)),
            resolved,
            fields: BTreeMap::new(),
            abandoned: false,
        }
    }

    fn kr(measure: Measure) -> KeyResultDef {
        KeyResultDef {
            id: "kr".into(),
            objective: "o".into(),
            title: "KR".into(),
            measure,
            weight: 1.0,
            weight_by: WeightBy::Count,
            start: None,
            target: None,
            field: None,
            metric: None,
            unit: None,
            owner: None,
            kind: Default::default(),
            success: None,
        }
    }

    fn refs(items: &[Item]) -> Vec<&Item> {
        items.iter().collect()
    }

    #[test]
    fn completion_by_count_and_by_estimate() {
        let items = vec![
            item("A", Category::Done, Some(5.0), Some(at(10, 5))),
            item("B", Category::InProgress, Some(3.0), None),
            item("C", Category::Todo, None, None),
            item("D", Category::Done, Some(0.0), Some(at(10, 6))),
        ];
        let v = compute(&kr(Measure::Completion), &q4(), &refs(&items), None);
        assert_eq!((v.current, v.target, v.items), (Some(2.0), Some(4.0), 4));
        assert!((v.progress - 0.5).abs() < 1e-12);
        let mut by_estimate = kr(Measure::Completion);
        by_estimate.weight_by = WeightBy::Estimate;
        // Done 5 + 0; total 5 + 3 + 1 (missing weighs 1) + 0 (zero weighs 0) = 9.
        let v = compute(&by_estimate, &q4(), &refs(&items), None);
        assert_eq!((v.current, v.target), (Some(5.0), Some(9.0)));
        assert!((v.progress - 5.0 / 9.0).abs() < 1e-12);
        assert_eq!(item_weight(&by_estimate, &items[2]), 1.0);
        assert_eq!(item_weight(&by_estimate, &items[3]), 0.0);
    }

    #[test]
    fn completion_of_an_empty_scope_is_zero() {
        let v = compute(&kr(Measure::Completion), &q4(), &[], None);
        assert_eq!(
            (v.current, v.target, v.progress, v.items),
            (Some(0.0), Some(0.0), 0.0, 0)
        );
    }

    #[test]
    fn count_only_counts_items_done_inside_the_period() {
        let mut k = kr(Measure::Count);
        k.target = Some(4.0);
        let items = vec![
            item("in", Category::Done, None, Some(at(11, 1))),
            item("before", Category::Done, None, Some(at(9, 30))),
            item("open", Category::InProgress, None, None),
            // Done without a resolution date: its update time counts.
            item("no-resolution", Category::Done, None, None),
        ];
        let v = compute(&k, &q4(), &refs(&items), None);
        assert_eq!(v.current, Some(2.0));
        assert!((v.progress - 0.5).abs() < 1e-12);
        assert_eq!(v.items, 4);
        assert!(!counts_toward(&k, &q4(), &items[1]));
        // With a start: (2 − 1) / (5 − 1).
        k.start = Some(1.0);
        k.target = Some(5.0);
        let v = compute(&k, &q4(), &refs(&items), None);
        assert!((v.progress - 0.25).abs() < 1e-12);
        assert_eq!(v.start, 1.0);
    }

    #[test]
    fn sum_adds_estimates_or_a_field() {
        let mut k = kr(Measure::Sum);
        k.target = Some(20.0);
        let mut a = item("a", Category::Done, Some(5.0), Some(at(10, 2)));
        a.fields
            .insert("budget".into(), serde_json::json!("1250.5"));
        let mut b = item("b", Category::Done, None, Some(at(12, 2)));
        b.fields.insert("budget".into(), serde_json::json!(100));
        let c = item("c", Category::InProgress, Some(8.0), None);
        let items = vec![a, b, c];
        let v = compute(&k, &q4(), &refs(&items), None);
        assert_eq!(v.current, Some(5.0));
        assert!((v.progress - 0.25).abs() < 1e-12);
        k.field = Some("fields.budget".into());
        k.target = Some(2701.0);
        let v = compute(&k, &q4(), &refs(&items), None);
        assert_eq!(v.current, Some(1350.5));
        assert!((v.progress - 0.5).abs() < 1e-12);
    }

    #[test]
    fn metric_serves_increasing_and_decreasing_targets() {
        let mut mrr = kr(Measure::Metric);
        mrr.start = Some(1_200_000.0);
        mrr.target = Some(2_000_000.0);
        let v = compute(&mrr, &q4(), &[], Some(1_600_000.0));
        assert!((v.progress - 0.5).abs() < 1e-12);
        let mut churn = kr(Measure::Metric);
        churn.start = Some(5.0);
        churn.target = Some(3.0);
        let v = compute(&churn, &q4(), &[], Some(4.0));
        assert!((v.progress - 0.5).abs() < 1e-12);
        // Overshooting clamps progress, never current.
        let v = compute(&churn, &q4(), &[], Some(2.5));
        assert_eq!((v.progress, v.current), (1.0, Some(2.5)));
        let v = compute(&churn, &q4(), &[], Some(6.0));
        assert_eq!((v.progress, v.current), (0.0, Some(6.0)));
        let v = compute(&churn, &q4(), &[], None);
        assert_eq!((v.progress, v.current, v.items), (0.0, None, 0));
    }

    #[test]
    fn manual_defaults_to_a_share() {
        let v = compute(&kr(Measure::Manual), &q4(), &[], Some(0.4));
        assert_eq!((v.progress, v.target), (0.4, Some(1.0)));
        let mut nps = kr(Measure::Manual);
        nps.start = Some(20.0);
        nps.target = Some(40.0);
        let v = compute(&nps, &q4(), &[], Some(25.0));
        assert!((v.progress - 0.25).abs() < 1e-12);
        assert_eq!(compute(&nps, &q4(), &[], None).progress, 0.0);
    }

    #[test]
    fn milestone_needs_every_item_done() {
        let k = kr(Measure::Milestone);
        assert_eq!(compute(&k, &q4(), &[], None).progress, 0.0);
        let partial = vec![
            item("a", Category::Done, None, Some(at(10, 1))),
            item("b", Category::Todo, None, None),
        ];
        let v = compute(&k, &q4(), &refs(&partial), None);
        assert_eq!(
            (v.progress, v.current, v.target),
            (0.0, Some(1.0), Some(2.0))
        );
        let all = vec![item("a", Category::Done, None, Some(at(10, 1)))];
        assert_eq!(compute(&k, &q4(), &refs(&all), None).progress, 1.0);
    }

    #[test]
    fn target_equal_to_start_never_divides_by_zero() {
        let mut k = kr(Measure::Metric);
        k.start = Some(3.0);
        k.target = Some(3.0);
        assert_eq!(compute(&k, &q4(), &[], Some(3.0)).progress, 1.0);
        assert_eq!(compute(&k, &q4(), &[], Some(2.0)).progress, 0.0);
    }

    #[test]
    fn status_thresholds_are_inclusive() {
        let m = StatusMargins::default();
        assert_eq!(status(1.0, 0.5, m), Status::Done);
        assert_eq!(
            status(0.4, 0.5, m),
            Status::OnTrack,
            "exactly expected − 0.10"
        );
        assert_eq!(status(0.39, 0.5, m), Status::AtRisk);
        assert_eq!(
            status(0.25, 0.5, m),
            Status::AtRisk,
            "exactly expected − 0.25"
        );
        assert_eq!(status(0.24, 0.5, m), Status::OffTrack);
        assert_eq!(
            status(0.0, 0.0, m),
            Status::OnTrack,
            "before the period starts"
        );
        assert_eq!(status(0.8, 1.0, m), Status::AtRisk, "after the period ends");
    }

    #[test]
    fn objectives_take_the_weighted_mean_and_the_worst_status() {
        assert!((objective_progress(&[(1.0, 1.0), (3.0, 0.3)]) - 0.475).abs() < 1e-12);
        assert_eq!(objective_progress(&[]), 0.0);
        assert_eq!(objective_progress(&[(0.0, 0.5)]), 0.0);
        assert_eq!(
            worst([Status::Done, Status::AtRisk, Status::OnTrack]),
            Some(Status::AtRisk)
        );
        assert_eq!(
            worst([Status::OffTrack, Status::Stale]),
            Some(Status::Stale)
        );
        assert_eq!(worst([]), None);
    }

    #[test]
    fn an_item_that_leaves_the_scope_no_longer_counts() {
        // The engine recomputes with the items the rules match now; fewer items, new value.
        let k = kr(Measure::Completion);
        let items = vec![
            item("a", Category::Done, None, Some(at(10, 1))),
            item("b", Category::Todo, None, None),
        ];
        assert_eq!(compute(&k, &q4(), &refs(&items), None).progress, 0.5);
        assert_eq!(compute(&k, &q4(), &refs(&items[1..]), None).progress, 0.0);
    }
}
