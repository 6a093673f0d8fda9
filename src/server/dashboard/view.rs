//! Formatting for the dashboard: numbers, shares, relative times and status badges, so the
//! templates only place text (askama escapes all of it).

use chrono::{DateTime, Utc};

use crate::model::Status;

/// A status as the page shows it: a word and a symbol besides the colour (never colour only).
pub struct StatusView {
    pub class: &'static str,
    pub label: &'static str,
    pub symbol: &'static str,
}

pub fn status(s: Status) -> StatusView {
    let (class, label, symbol) = match s {
        Status::Done => ("done", "Done", "✓"),
        Status::OnTrack => ("on-track", "On track", "●"),
        Status::AtRisk => ("at-risk", "At risk", "▲"),
        Status::OffTrack => ("off-track", "Off track", "✕"),
        Status::Stale => ("stale", "Stale", "⏸"),
    };
    StatusView {
        class,
        label,
        symbol,
    }
}

/// `1530000` → `1,530,000`; `4.125` → `4.13`; `-0.5` → `-0.5`.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded = (v * 100.0).round() / 100.0;
    let negative = rounded < 0.0;
    let abs = rounded.abs();
    let whole = abs.trunc() as u64;
    let frac = ((abs - abs.trunc()) * 100.0).round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut out = if negative {
        format!("-{grouped}")
    } else {
        grouped
    };
    if frac > 0 {
        let f = format!("{frac:02}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

/// A share as a whole percentage: `0.625` → `63%`.
pub fn percent(share: f64) -> String {
    format!("{}%", (share * 100.0).round() as i64)
}

/// A bar's width in percent, clamped to 0..=100.
pub fn bar(share: f64) -> String {
    format!("{:.1}", (share * 100.0).clamp(0.0, 100.0))
}

/// `4 min ago`, `in 12 s`, `just now`.
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let (n, future) = if secs < 0 {
        (-secs, true)
    } else {
        (secs, false)
    };
    let text = if n < 5 {
        return "just now".to_string();
    } else if n < 60 {
        format!("{n} s")
    } else if n < 3600 {
        format!("{} min", n / 60)
    } else if n < 86_400 {
        format!("{} h", n / 3600)
    } else {
        format!("{} days", n / 86_400)
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A time for `<time datetime>` and titles: `2026-11-23T09:12:00Z`, `2026-11-23 09:12 UTC`.
pub struct When {
    pub iso: String,
    pub human: String,
    pub ago: String,
}

pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> When {
    When {
        iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        human: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ago: relative(at, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_read_like_a_report() {
        assert_eq!(number(1_530_000.0), "1,530,000");
        assert_eq!(number(4.125), "4.13");
        assert_eq!(number(40.0), "40");
        assert_eq!(number(-0.5), "-0.5");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(1000.1), "1,000.1");
        assert_eq!(percent(0.625), "63%");
        assert_eq!(bar(1.7), "100.0");
        assert_eq!(bar(-0.2), "0.0");
    }

    #[test]
    fn times_are_relative_to_now() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("a valid time");
        let ago = |s: i64| relative(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(2), "just now");
        assert_eq!(ago(30), "30 s ago");
        assert_eq!(ago(4 * 60 + 10), "4 min ago");
        assert_eq!(ago(3 * 3600), "3 h ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert_eq!(ago(-12), "in 12 s");
    }
}
