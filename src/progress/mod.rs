//! Progress arithmetic (SPEC.md "Progress semantics"): a KR's current value, target and
//! progress from its matched items or observed value; statuses against the elapsed share
//! of the period; the objective rollup. Pure functions, no I/O.

use crate::model::{
    Category, Item, KeyResultDef, Measure, Period, Status, StatusMargins, WeightBy,
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
pub fn done_in_period(period: &Period, item: &Item) -> bool {
    item.category == Category::Done && period.contains(item.resolved.unwrap_or(item.updated))
}

/// What `item` weighs in `kr`: 1, or its estimate for `weight_by = "estimate"` (a missing
/// estimate weighs 1; an estimate of 0 weighs 0). For `sum`, the value it adds.
pub fn item_weight(kr: &KeyResultDef, item: &Item) -> f64 {
    match kr.measure {
        Measure::Completion => match kr.weight_by {
            WeightBy::Count => 1.0,
            WeightBy::Estimate => item.estimate.unwrap_or(1.0),
        },
        Measure::Sum => sum_value(kr, item),
        _ => 1.0,
    }
}

/// The value a `sum` KR adds up for an item: `estimate`, or `fields.<x>` as a number
/// (numeric strings accepted); missing adds 0.
fn sum_value(kr: &KeyResultDef, item: &Item) -> f64 {
    match kr.field.as_deref().and_then(|f| f.strip_prefix("fields.")) {
        None => item.estimate.unwrap_or(0.0),
        Some(name) => match item.fields.get(name) {
            Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        },
    }
}

/// Does the item add to `current` now?
pub fn counts_toward(kr: &KeyResultDef, period: &Period, item: &Item) -> bool {
    match kr.measure {
        Measure::Completion | Measure::Milestone => item.category == Category::Done,
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
            let total: f64 = items.iter().map(|i| item_weight(kr, i)).sum();
            let done: f64 = items
                .iter()
                .filter(|i| i.category == Category::Done)
                .map(|i| item_weight(kr, i))
                .sum();
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
                .sum();
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
                .filter(|i| i.category == Category::Done)
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
