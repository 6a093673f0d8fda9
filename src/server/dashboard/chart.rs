//! The KR history chart: a line of progress over the period, drawn on the server as SVG
//! geometry (the template places it; no script, no chart library). The dashed diagonal is
//! the expected progress (elapsed share of the period), the line steps at every change.

use chrono::{DateTime, Utc};

use crate::model::Period;
use crate::store::KrSnapshot;

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

pub struct Tick {
    pub x: String,
    pub y: String,
    pub label: String,
}

pub struct Dot {
    pub x: String,
    pub y: String,
    pub label: String,
    /// The snapshot's time (RFC 3339): the point links to the KR as of then.
    pub at: String,
    /// Rebuilt from item dates (a dotted ring), not recorded as it happened.
    pub reconstructed: bool,
}

pub struct Chart {
    /// `x,y x,y …` for a `<polyline>`; empty without history.
    pub line: String,
    /// The expected-progress diagonal, `x,y x,y`.
    pub expected: String,
    pub dots: Vec<Dot>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// The plot area's edges, for grid lines and the axes.
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    pub now_x: Option<String>,
    /// An aspirational KR's success line (a dashed horizontal at its share of the target).
    pub success_y: Option<String>,
    /// What the chart shows, in words (the SVG's `<desc>`).
    pub summary: String,
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart of a KR's progress; `success` draws an aspirational KR's success line.
pub fn progress_chart(
    history: &[KrSnapshot],
    period: &Period,
    now: DateTime<Utc>,
    success: Option<f64>,
) -> Chart {
    let mut t0 = period.starts_at();
    let mut t1 = period.ends_at();
    if let Some(first) = history.first() {
        t0 = t0.min(first.at);
    }
    if let Some(last) = history.last() {
        t1 = t1.max(last.at);
    }
    let span = (t1 - t0).num_seconds().max(1) as f64;
    let hi = history
        .iter()
        .map(|s| s.progress)
        .fold(1.0_f64, f64::max)
        .min(10.0);
    let lo = history
        .iter()
        .map(|s| s.progress)
        .fold(0.0_f64, f64::min)
        .max(-10.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: DateTime<Utc>| LEFT + plot_w * ((t - t0).num_seconds() as f64 / span);
    let y = |p: f64| TOP + plot_h * (1.0 - (p.clamp(lo, hi) - lo) / (hi - lo));

    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut dots = Vec::new();
    for (i, s) in history.iter().enumerate() {
        let sx = x(s.at);
        if i > 0 {
            points.push((sx, y(history[i - 1].progress)));
        }
        points.push((sx, y(s.progress)));
        dots.push(Dot {
            at: s.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            reconstructed: s.reconstructed,
            x: fmt(sx),
            y: fmt(y(s.progress)),
            label: format!(
                "{}: {}% ({})",
                s.at.format("%Y-%m-%d %H:%M"),
                (s.progress * 100.0).round() as i64,
                s.cause
            ),
        });
    }
    let now_in_range = now > t0 && now < t1;
    if let (Some(last), true) = (history.last(), now_in_range) {
        if now > last.at {
            points.push((x(now), y(last.progress)));
        }
    }
    let line = points
        .iter()
        .map(|(a, b)| format!("{},{}", fmt(*a), fmt(*b)))
        .collect::<Vec<_>>()
        .join(" ");
    let expected = format!(
        "{},{} {},{}",
        fmt(x(period.starts_at())),
        fmt(y(0.0)),
        fmt(x(period.ends_at())),
        fmt(y(1.0))
    );
    let mut y_ticks = Vec::new();
    let mut p = (lo * 4.0).ceil() / 4.0;
    while p <= hi + 1e-9 {
        y_ticks.push(Tick {
            x: fmt(LEFT - 8.0),
            y: fmt(y(p)),
            label: format!("{}%", (p * 100.0).round() as i64),
        });
        p += if hi - lo > 2.0 { 0.5 } else { 0.25 };
    }
    let mid = t0 + (t1 - t0) / 2;
    let x_ticks = [t0, mid, t1]
        .into_iter()
        .map(|t| Tick {
            x: fmt(x(t)),
            y: fmt(HEIGHT - 10.0),
            label: t.format("%b %-d").to_string(),
        })
        .collect();
    let summary = match (history.first(), history.last()) {
        (Some(first), Some(last)) => format!(
            "Progress from {}% on {} to {}% on {}, {} change(s); period {} to {}.",
            (first.progress * 100.0).round() as i64,
            first.at.format("%Y-%m-%d"),
            (last.progress * 100.0).round() as i64,
            last.at.format("%Y-%m-%d"),
            history.len(),
            period.start,
            period.end
        ),
        _ => format!(
            "No recorded values yet; period {} to {}.",
            period.start, period.end
        ),
    };
    Chart {
        line,
        expected,
        dots,
        y_ticks,
        x_ticks,
        left: fmt(LEFT),
        right: fmt(WIDTH - RIGHT),
        top: fmt(TOP),
        bottom: fmt(HEIGHT - BOTTOM),
        now_x: now_in_range.then(|| fmt(x(now))),
        success_y: success.map(|p| fmt(y(p))),
        summary,
    }
}

pub const CONFIDENCE_HEIGHT: f64 = 120.0;

/// The owner's confidence over the period, 0–10, drawn like the progress chart.
pub struct ConfidenceChart {
    pub line: String,
    pub dots: Vec<Dot>,
    pub y_ticks: Vec<Tick>,
    pub left: String,
    pub right: String,
    pub bottom: String,
    pub summary: String,
}

pub fn confidence_chart(
    points: &[crate::store::Confidence],
    period: &Period,
) -> Option<ConfidenceChart> {
    let first = points.first()?;
    let last = points.last()?;
    let t0 = period.starts_at().min(first.at);
    let t1 = period.ends_at().max(last.at);
    let span = (t1 - t0).num_seconds().max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let (top, bottom) = (10.0, CONFIDENCE_HEIGHT - 12.0);
    let x = |t: DateTime<Utc>| LEFT + plot_w * ((t - t0).num_seconds() as f64 / span);
    let y = |c: f64| bottom - (bottom - top) * (c.clamp(0.0, 10.0) / 10.0);
    let line = points
        .iter()
        .map(|c| format!("{},{}", fmt(x(c.at)), fmt(y(c.value))))
        .collect::<Vec<_>>()
        .join(" ");
    let dots = points
        .iter()
        .map(|c| Dot {
            x: fmt(x(c.at)),
            y: fmt(y(c.value)),
            label: format!(
                "{}: {}/10{}",
                c.at.format("%Y-%m-%d"),
                crate::model::plain_number(c.value),
                c.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default()
            ),
            at: c.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            reconstructed: false,
        })
        .collect();
    let y_ticks = [0.0, 5.0, 10.0]
        .into_iter()
        .map(|c| Tick {
            x: fmt(LEFT - 8.0),
            y: fmt(y(c)),
            label: format!("{c:.0}"),
        })
        .collect();
    Some(ConfidenceChart {
        line,
        dots,
        y_ticks,
        left: fmt(LEFT),
        right: fmt(WIDTH - RIGHT),
        bottom: fmt(bottom),
        summary: format!(
            "Confidence from {}/10 on {} to {}/10 on {}, {} check-in(s).",
            crate::model::plain_number(first.value),
            first.at.format("%Y-%m-%d"),
            crate::model::plain_number(last.value),
            last.at.format("%Y-%m-%d"),
            points.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snap(day: u32, progress: f64) -> KrSnapshot {
        KrSnapshot {
            at: Utc
                .with_ymd_and_hms(2026, 11, day, 0, 0, 0)
                .single()
                .expect("a valid time"),
            current: Some(progress * 10.0),
            target: Some(10.0),
            progress,
            items: 1,
            cause: "sync jira".into(),
            reconstructed: false,
        }
    }

    #[test]
    fn the_line_steps_at_each_change_and_runs_to_now() {
        let period = Period::parse("2026-11").expect("period");
        let now = Utc
            .with_ymd_and_hms(2026, 11, 21, 0, 0, 0)
            .single()
            .expect("a valid time");
        let chart = progress_chart(&[snap(1, 0.0), snap(11, 0.5)], &period, now, None);
        let points: Vec<&str> = chart.line.split(' ').collect();
        // start, step up at day 11 (old value then new value), and on to now.
        assert_eq!(points.len(), 4, "{}", chart.line);
        assert_eq!(points[0], format!("{},{}", fmt(LEFT), fmt(HEIGHT - BOTTOM)));
        let (x1, y1) = points[1].split_once(',').expect("pair");
        let (x2, y2) = points[2].split_once(',').expect("pair");
        assert_eq!(x1, x2);
        assert_eq!(y1, fmt(HEIGHT - BOTTOM));
        let mid_y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0;
        assert_eq!(y2, fmt(mid_y));
        assert_eq!(chart.dots.len(), 2);
        assert!(chart.now_x.is_some());
        assert_eq!(
            chart
                .y_ticks
                .iter()
                .map(|t| t.label.as_str())
                .collect::<Vec<_>>(),
            ["0%", "25%", "50%", "75%", "100%"]
        );
        assert!(chart
            .summary
            .starts_with("Progress from 0% on 2026-11-01 to 50% on 2026-11-11"));
    }

    #[test]
    fn without_history_there_is_no_line() {
        let period = Period::parse("2026-Q4").expect("period");
        let chart = progress_chart(&[], &period, period.starts_at(), Some(0.7));
        assert!(chart.line.is_empty());
        assert!(chart.summary.starts_with("No recorded values"));
        // The success line of a stretch goal sits at 70% of the plot's height.
        let y = TOP + (HEIGHT - TOP - BOTTOM) * 0.3;
        assert_eq!(chart.success_y, Some(fmt(y)));
    }
}
