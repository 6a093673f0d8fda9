//! Flags beside a KR's number (SPEC.md "Judgement beside the numbers"): `dead`,
//! `checkin_overdue`, `scope_creep`, `output_without_outcome` and
//! `outcome_without_output`, each with a message in words and the time it was raised.
//! Pure functions of what the store knows and the time of reading, so a report at any time
//! shows the flags of that time, and the ones that depend on time alone (`dead`,
//! `checkin_overdue`) appear without anything being recomputed.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::model::{KeyResultDef, Measure, Period};
use crate::settings::Judgement;

const EPS: f64 = 1e-9;

/// The kinds of flags, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    Dead,
    CheckinOverdue,
    ScopeCreep,
    OutputWithoutOutcome,
    OutcomeWithoutOutput,
}

impl FlagKind {
    pub const ALL: [FlagKind; 5] = [
        FlagKind::Dead,
        FlagKind::CheckinOverdue,
        FlagKind::ScopeCreep,
        FlagKind::OutputWithoutOutcome,
        FlagKind::OutcomeWithoutOutput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::Dead => "dead",
            FlagKind::CheckinOverdue => "checkin_overdue",
            FlagKind::ScopeCreep => "scope_creep",
            FlagKind::OutputWithoutOutcome => "output_without_outcome",
            FlagKind::OutcomeWithoutOutput => "outcome_without_output",
        }
    }

    /// A few words for a badge.
    pub fn label(self) -> &'static str {
        match self {
            FlagKind::Dead => "dead",
            FlagKind::CheckinOverdue => "check-in overdue",
            FlagKind::ScopeCreep => "scope creep",
            FlagKind::OutputWithoutOutcome => "output without outcome",
            FlagKind::OutcomeWithoutOutput => "outcome without output",
        }
    }
}

/// A raised flag.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Flag {
    #[schema(value_type = String, example = "dead")]
    pub kind: FlagKind,
    pub message: String,
    /// When the condition began to hold.
    pub since: DateTime<Utc>,
}

/// One point of a KR's recorded history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub progress: f64,
    pub target: Option<f64>,
    /// Rebuilt from item dates on a source's first sync, not recorded as it happened.
    pub reconstructed: bool,
}

/// What the flags of one KR are computed from.
#[derive(Debug, Clone)]
pub struct KrFacts<'a> {
    pub def: &'a KeyResultDef,
    pub period: &'a Period,
    /// Its progress now.
    pub progress: f64,
    /// Its total (`target`) now: a completion KR's total weight.
    pub target: Option<f64>,
    /// The last time its value or evidence changed (its latest snapshot).
    pub last_change: Option<DateTime<Utc>>,
    /// Its latest check-in of any kind (value or confidence).
    pub last_checkin: Option<DateTime<Utc>>,
    /// Its snapshots, oldest first.
    pub history: &'a [Point],
}

fn runs(period: &Period, now: DateTime<Utc>) -> bool {
    period.starts_at() <= now && now < period.ends_at()
}

fn days(d: Duration) -> String {
    let n = d.num_hours() as f64 / 24.0;
    if (n - n.round()).abs() < 0.05 {
        format!("{} days", n.round() as i64)
    } else {
        format!("{n:.1} days")
    }
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// `dead`: no change of value or evidence for `dead_after` while the period runs (counted
/// from the period's start when the last change is older). A KR at progress 1 is finished,
/// not dead.
pub fn dead(f: &KrFacts, j: &Judgement, now: DateTime<Utc>) -> Option<Flag> {
    if !runs(f.period, now) || f.progress >= 1.0 - EPS {
        return None;
    }
    let start = f.period.starts_at();
    let reference = f.last_change.map_or(start, |c| c.max(start));
    let after = Duration::from_std(j.dead_after).ok()?;
    if now - reference < after {
        return None;
    }
    let message = match f.last_change {
        Some(c) if c >= start => format!(
            "neither its value nor its evidence has changed since {} ({}; dead after {})",
            date(c),
            days(now - c),
            days(after)
        ),
        _ => format!(
            "neither its value nor its evidence has changed since its period began on {} ({}; dead after {})",
            date(start),
            days(now - start),
            days(after)
        ),
    };
    Some(Flag {
        kind: FlagKind::Dead,
        message,
        since: reference + after,
    })
}

/// `checkin_overdue`: a manual KR (or any KR once `checkin_every` is set) whose last
/// check-in is older than the interval, while the period runs (counted from the period's
/// start when there is none in it).
pub fn checkin_overdue(f: &KrFacts, j: &Judgement, now: DateTime<Utc>) -> Option<Flag> {
    let every = match (j.checkin_every, f.def.measure) {
        (Some(e), _) => e,
        (None, Measure::Manual) => Judgement::MANUAL_CHECKIN_EVERY,
        (None, _) => return None,
    };
    if !runs(f.period, now) {
        return None;
    }
    let every = Duration::from_std(every).ok()?;
    let start = f.period.starts_at();
    let reference = f.last_checkin.map_or(start, |c| c.max(start));
    if now - reference <= every {
        return None;
    }
    let message = match f.last_checkin {
        Some(c) if c >= start => format!(
            "the last check-in was on {} ({} ago; due every {})",
            date(c),
            days(now - c),
            days(every)
        ),
        _ => format!(
            "no check-in since its period began on {} ({}; due every {})",
            date(start),
            days(now - start),
            days(every)
        ),
    };
    Some(Flag {
        kind: FlagKind::CheckinOverdue,
        message,
        since: reference + every,
    })
}

/// `scope_creep`: a completion KR whose total weight grew more than `scope_creep` since
/// its first snapshot in the period (the first with a total above 0) while its progress is
/// behind `expected`.
pub fn scope_creep(f: &KrFacts, j: &Judgement, now: DateTime<Utc>) -> Option<Flag> {
    if f.def.measure != Measure::Completion {
        return None;
    }
    let expected = f.period.expected(now);
    if f.progress >= expected - EPS {
        return None;
    }
    let start = f.period.starts_at();
    // Recorded snapshots only: a history rebuilt from item dates on the first sync grows
    // from the first item's creation, which is the scope being found, not creeping.
    let in_period: Vec<&Point> = f
        .history
        .iter()
        .filter(|p| !p.reconstructed && p.at >= start && p.at <= now)
        .collect();
    let first = in_period
        .iter()
        .find(|p| p.target.is_some_and(|t| t > EPS))?;
    let base = first.target?;
    let total = f.target?;
    let limit = base * (1.0 + j.scope_creep);
    if total <= limit + EPS {
        return None;
    }
    // Above the limit since the first snapshot of the latest run of snapshots above it.
    let mut grown_since = None;
    for p in in_period.iter().filter(|p| p.at >= first.at) {
        match p.target {
            Some(t) if t > limit + EPS => {
                grown_since.get_or_insert(p.at);
            }
            _ => grown_since = None,
        }
    }
    let grown_since = grown_since.unwrap_or(now);
    // Behind since the later of: when `expected` passed the current progress, and when
    // the progress last changed.
    let span = f.period.ends_at() - start;
    let passed = start
        + Duration::milliseconds((span.num_milliseconds() as f64 * f.progress.max(0.0)) as i64);
    let changed = f
        .history
        .iter()
        .rev()
        .find(|p| p.at <= now)
        .map(|p| p.at)
        .unwrap_or(start);
    let since = grown_since.max(passed).max(changed.min(now));
    Some(Flag {
        kind: FlagKind::ScopeCreep,
        message: format!(
            "its total grew {:.0}% (from {} to {}) since {} while it is behind (progress {:.2}, expected {:.2}; flagged above {:.0}%)",
            (total / base - 1.0) * 100.0,
            trim(base),
            trim(total),
            date(first.at),
            f.progress,
            expected,
            j.scope_creep * 100.0
        ),
        since: since.min(now),
    })
}

fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

/// The measures whose progress is work done (items), as opposed to an outcome observed.
pub fn is_work(m: Measure) -> bool {
    matches!(
        m,
        Measure::Completion | Measure::Count | Measure::Sum | Measure::Milestone
    )
}

/// `output_without_outcome` / `outcome_without_output` on a metric KR whose objective
/// also has work KRs: the mean progress of the work KRs exceeds the metric's progress by
/// at least `divergence`, or falls short of it by that much. `work` are the objective's
/// work KRs (facts of each); `since` is when the gap last opened, from their histories.
pub fn divergence(
    metric: &KrFacts,
    work: &[KrFacts],
    j: &Judgement,
    now: DateTime<Utc>,
) -> Option<Flag> {
    if metric.def.measure != Measure::Metric || work.is_empty() {
        return None;
    }
    let gap = |m: f64, w: &[f64]| w.iter().sum::<f64>() / w.len() as f64 - m;
    let kind_of = |g: f64| {
        if g >= j.divergence - EPS {
            Some(FlagKind::OutputWithoutOutcome)
        } else if -g >= j.divergence - EPS {
            Some(FlagKind::OutcomeWithoutOutput)
        } else {
            None
        }
    };
    let now_work: Vec<f64> = work.iter().map(|w| w.progress).collect();
    let mean = now_work.iter().sum::<f64>() / now_work.len() as f64;
    let kind = kind_of(gap(metric.progress, &now_work))?;
    // Replay the histories: the start of the latest run of times the same flag held.
    let mut times: Vec<DateTime<Utc>> = std::iter::once(metric)
        .chain(work)
        .flat_map(|f| f.history.iter().map(|p| p.at))
        .filter(|t| *t <= now)
        .collect();
    times.sort();
    times.dedup();
    let at = |f: &KrFacts, t: DateTime<Utc>| {
        f.history
            .iter()
            .rev()
            .find(|p| p.at <= t)
            .map_or(0.0, |p| p.progress)
    };
    let mut since = None;
    for t in times {
        // Before the metric's first reading there is no outcome to compare.
        if metric.history.first().is_none_or(|p| p.at > t) {
            continue;
        }
        let w: Vec<f64> = work.iter().map(|f| at(f, t)).collect();
        if kind_of(gap(at(metric, t), &w)) == Some(kind) {
            since.get_or_insert(t);
        } else {
            since = None;
        }
    }
    let n = work.len();
    let krs = if n == 1 {
        "its objective's work KR".to_string()
    } else {
        format!("its objective's {n} work KRs")
    };
    let message = match kind {
        FlagKind::OutputWithoutOutcome => format!(
            "the work is ahead of the outcome: {krs} average {:.2} progress, this metric {:.2} (flagged at a gap of {:.2})",
            mean, metric.progress, j.divergence
        ),
        _ => format!(
            "the outcome is ahead of the work: this metric is at {:.2} progress, {krs} average {:.2} (flagged at a gap of {:.2})",
            metric.progress, mean, j.divergence
        ),
    };
    Some(Flag {
        kind,
        message,
        since: since.unwrap_or(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KrKind, WeightBy};
    use chrono::TimeZone;

    fn kr(measure: Measure) -> KeyResultDef {
        KeyResultDef {
            id: "o.k".into(),
            objective: "o".into(),
            title: "K".into(),
            measure,
            weight: 1.0,
            weight_by: WeightBy::Count,
            start: None,
            target: None,
            field: None,
            metric: None,
            unit: None,
            owner: None,
            kind: KrKind::Committed,
            success: None,
        }
    }

    fn day(d: u32) -> DateTime<Utc> {
        // 2026-Q4 starts on 1 October; day 0 is that day.
        Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0)
            .single()
            .expect("t")
            + Duration::days(d as i64)
    }

    fn facts<'a>(def: &'a KeyResultDef, period: &'a Period, history: &'a [Point]) -> KrFacts<'a> {
        KrFacts {
            def,
            period,
            progress: history.last().map_or(0.0, |p| p.progress),
            target: history.last().and_then(|p| p.target),
            last_change: history.last().map(|p| p.at),
            last_checkin: None,
            history,
        }
    }

    #[test]
    fn dead_after_21_days_without_change_and_not_before() {
        let period = Period::parse("2026-Q4").expect("period");
        let def = kr(Measure::Completion);
        let h = [Point {
            at: day(10),
            progress: 0.2,
            target: Some(10.0),
            reconstructed: false,
        }];
        let f = facts(&def, &period, &h);
        let j = Judgement::default();
        assert_eq!(dead(&f, &j, day(30)), None);
        let flag = dead(&f, &j, day(31)).expect("dead at 21 days");
        assert_eq!(flag.since, day(31));
        assert!(flag.message.contains("2026-10-11"), "{}", flag.message);
        // Finished KRs are not dead; nor are KRs outside their period.
        let done = [Point {
            at: day(10),
            progress: 1.0,
            target: Some(10.0),
            reconstructed: false,
        }];
        assert_eq!(dead(&facts(&def, &period, &done), &j, day(40)), None);
        assert_eq!(dead(&f, &j, day(100)), None);
    }

    #[test]
    fn a_manual_kr_is_overdue_after_seven_days_others_only_with_checkin_every() {
        let period = Period::parse("2026-Q4").expect("period");
        let manual = kr(Measure::Manual);
        let mut f = facts(&manual, &period, &[]);
        f.last_checkin = Some(day(3));
        let j = Judgement::default();
        assert_eq!(checkin_overdue(&f, &j, day(10)), None);
        let flag = checkin_overdue(&f, &j, day(11)).expect("overdue");
        assert_eq!(flag.since, day(10));
        let completion = kr(Measure::Completion);
        let g = facts(&completion, &period, &[]);
        assert_eq!(checkin_overdue(&g, &j, day(50)), None);
        let every = Judgement {
            checkin_every: Some(std::time::Duration::from_secs(14 * 86_400)),
            ..j
        };
        assert_eq!(checkin_overdue(&g, &every, day(14)), None);
        assert_eq!(
            checkin_overdue(&g, &every, day(15)).map(|f| f.since),
            Some(day(14))
        );
    }

    #[test]
    fn scope_creep_when_the_total_grows_more_than_a_quarter_while_behind() {
        let period = Period::parse("2026-Q4").expect("period");
        let def = kr(Measure::Completion);
        let j = Judgement::default();
        let p = |d, progress, total| Point {
            at: day(d),
            progress,
            target: Some(total),
            reconstructed: false,
        };
        // 10 → 13 items (+30%), 2 done: progress 0.15, behind at day 46 (expected 0.5).
        let h = [p(1, 0.2, 10.0), p(20, 0.1538, 13.0)];
        let f = facts(&def, &period, &h);
        let flag = scope_creep(&f, &j, day(46)).expect("scope creep");
        assert!(flag.message.contains("30%"), "{}", flag.message);
        // +20% is not enough; ahead of expected neither.
        let h2 = [p(1, 0.2, 10.0), p(20, 0.1667, 12.0)];
        assert_eq!(scope_creep(&facts(&def, &period, &h2), &j, day(46)), None);
        assert_eq!(scope_creep(&f, &j, day(2)), None);
        // A history rebuilt from item dates is not a baseline: the first recorded total is.
        let rebuilt = [
            Point {
                reconstructed: true,
                ..p(1, 0.0, 2.0)
            },
            p(20, 0.2, 10.0),
            p(25, 0.1667, 12.0),
        ];
        assert_eq!(
            scope_creep(&facts(&def, &period, &rebuilt), &j, day(46)),
            None
        );
    }

    #[test]
    fn divergence_both_ways_and_none_when_close() {
        let period = Period::parse("2026-Q4").expect("period");
        let metric = kr(Measure::Metric);
        let work = kr(Measure::Completion);
        let j = Judgement::default();
        let p = |d, progress| Point {
            at: day(d),
            progress,
            target: None,
            reconstructed: false,
        };
        let mh = [p(1, 0.0), p(5, 0.1)];
        let wh = [p(1, 0.1), p(10, 0.7)];
        let m = facts(&metric, &period, &mh);
        let w = [facts(&work, &period, &wh)];
        let flag = divergence(&m, &w, &j, day(20)).expect("output without outcome");
        assert_eq!(flag.kind, FlagKind::OutputWithoutOutcome);
        assert_eq!(flag.since, day(10));
        let mh2 = [p(1, 0.8)];
        let wh2 = [p(1, 0.2)];
        let m2 = facts(&metric, &period, &mh2);
        let w2 = [facts(&work, &period, &wh2)];
        assert_eq!(
            divergence(&m2, &w2, &j, day(20)).map(|f| f.kind),
            Some(FlagKind::OutcomeWithoutOutput)
        );
        let mh3 = [p(1, 0.5)];
        let m3 = facts(&metric, &period, &mh3);
        assert_eq!(divergence(&m3, &w, &j, day(20)), None);
    }
}
