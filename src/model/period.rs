//! OKR periods: `2026-Q4`, `2026-H1`, `2026-11`, `2026`, or explicit start/end dates.
//!
//! A period covers whole days in UTC: from the start of its first day to the end of its
//! last day. The elapsed share of a period drives the status thresholds.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`{0}` is not a period: expected YYYY-Qn, YYYY-Hn, YYYY-MM or YYYY")]
    BadLabel(String),
    #[error("the period ends ({end}) before it starts ({start})")]
    EndsBeforeStart { start: NaiveDate, end: NaiveDate },
}

/// An inclusive range of days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// What the user wrote (`2026-Q4`) or `START..END`.
    pub label: String,
    pub start: NaiveDate,
    /// The last day that belongs to the period.
    pub end: NaiveDate,
}

impl Period {
    pub fn parse(label: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError::BadLabel(label.to_string());
        let s = label.trim();
        let (year, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        if year.len() != 4 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let (first_month, months) = match rest {
            None => (1, 12),
            Some(r) if r.len() == 2 && (r.starts_with('Q') || r.starts_with('q')) => {
                let q: u32 = r[1..].parse().map_err(|_| bad())?;
                if !(1..=4).contains(&q) {
                    return Err(bad());
                }
                ((q - 1) * 3 + 1, 3)
            }
            Some(r) if r.len() == 2 && (r.starts_with('H') || r.starts_with('h')) => {
                let h: u32 = r[1..].parse().map_err(|_| bad())?;
                if !(1..=2).contains(&h) {
                    return Err(bad());
                }
                ((h - 1) * 6 + 1, 6)
            }
            Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_digit()) => {
                let m: u32 = r.parse().map_err(|_| bad())?;
                if !(1..=12).contains(&m) {
                    return Err(bad());
                }
                (m, 1)
            }
            Some(_) => return Err(bad()),
        };
        let start = NaiveDate::from_ymd_opt(year, first_month, 1).ok_or_else(bad)?;
        let end = add_months(start, months).ok_or_else(bad)? - Duration::days(1);
        Ok(Period {
            label: s.to_string(),
            start,
            end,
        })
    }

    pub fn from_dates(start: NaiveDate, end: NaiveDate) -> Result<Period, PeriodError> {
        if end < start {
            return Err(PeriodError::EndsBeforeStart { start, end });
        }
        Ok(Period {
            label: format!("{start}..{end}"),
            start,
            end,
        })
    }

    /// The first instant of the period.
    pub fn starts_at(&self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.start.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    /// The first instant after the period.
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.starts_at() + Duration::days((self.end - self.start).num_days() + 1)
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        at >= self.starts_at() && at < self.ends_at()
    }

    /// The elapsed share of the period: 0 before it starts, 1 after it ends.
    pub fn expected(&self, now: DateTime<Utc>) -> f64 {
        let start = self.starts_at();
        let end = self.ends_at();
        if now <= start {
            return 0.0;
        }
        if now >= end {
            return 1.0;
        }
        let total = (end - start).num_milliseconds() as f64;
        let done = (now - start).num_milliseconds() as f64;
        (done / total).clamp(0.0, 1.0)
    }
}

fn add_months(date: NaiveDate, months: u32) -> Option<NaiveDate> {
    let total = date.year() * 12 + (date.month() as i32 - 1) + months as i32;
    NaiveDate::from_ymd_opt(total.div_euclid(12), (total.rem_euclid(12) + 1) as u32, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn quarters_halves_months_and_years() {
        let q4 = Period::parse("2026-Q4").expect("q4");
        assert_eq!((q4.start, q4.end), (d(2026, 10, 1), d(2026, 12, 31)));
        let q1 = Period::parse("2027-Q1").expect("q1");
        assert_eq!((q1.start, q1.end), (d(2027, 1, 1), d(2027, 3, 31)));
        let h1 = Period::parse("2026-H1").expect("h1");
        assert_eq!((h1.start, h1.end), (d(2026, 1, 1), d(2026, 6, 30)));
        let feb = Period::parse("2028-02").expect("feb");
        assert_eq!((feb.start, feb.end), (d(2028, 2, 1), d(2028, 2, 29)));
        let y = Period::parse("2026").expect("year");
        assert_eq!((y.start, y.end), (d(2026, 1, 1), d(2026, 12, 31)));
        for bad in [
            "2026-Q5", "2026-Q0", "26-Q1", "2026-13", "Q4", "2026-X1", "",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn expected_share_is_clamped_and_linear() {
        let p = Period::from_dates(d(2026, 10, 1), d(2026, 10, 10)).expect("period");
        let at = |day: u32, h: u32| {
            Utc.with_ymd_and_hms(2026, 10, day, h, 0, 0)
                .single()
                .expect("t")
        };
        assert_eq!(
            p.expected(Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap()),
            0.0
        );
        assert_eq!(p.expected(at(1, 0)), 0.0);
        assert!((p.expected(at(6, 0)) - 0.5).abs() < 1e-9);
        assert_eq!(
            p.expected(Utc.with_ymd_and_hms(2026, 10, 11, 0, 0, 0).unwrap()),
            1.0
        );
        assert!(p.contains(at(10, 23)));
        assert!(!p.contains(Utc.with_ymd_and_hms(2026, 10, 11, 0, 0, 0).unwrap()));
    }

    #[test]
    fn end_before_start_is_an_error() {
        assert!(Period::from_dates(d(2026, 10, 2), d(2026, 10, 1)).is_err());
    }
}
