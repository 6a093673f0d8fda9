//! What this process asked of each upstream: requests by status, their latency as a
//! histogram, and the rate-limit budget the upstream reported last. Kept in memory per
//! process (each replica reports its own) and rendered by `/metrics`.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Histogram bucket bounds, in seconds.
pub const BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// Cumulative counts per bound of [`BUCKETS`].
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `(source, status)` → requests; status is the HTTP code or `error` (no answer).
    pub requests: BTreeMap<(String, String), u64>,
    pub latency: BTreeMap<String, Latency>,
    /// The last `x-ratelimit-remaining` each source's upstream sent.
    pub rate_limit_remaining: BTreeMap<String, f64>,
}

fn registry() -> &'static Mutex<Snapshot> {
    static STATS: OnceLock<Mutex<Snapshot>> = OnceLock::new();
    STATS.get_or_init(|| Mutex::new(Snapshot::default()))
}

/// Records one request of `source`: its status (`None`: no answer), how long it took,
/// and the rate-limit budget left if the upstream said.
pub fn record(source: &str, status: Option<u16>, took: Duration, remaining: Option<f64>) {
    let mut s = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let status = status.map_or_else(|| "error".to_string(), |c| c.to_string());
    *s.requests.entry((source.to_string(), status)).or_default() += 1;
    let l = s.latency.entry(source.to_string()).or_default();
    let secs = took.as_secs_f64();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if secs <= *bound {
            l.buckets[i] += 1;
        }
    }
    l.count += 1;
    l.sum += secs;
    if let Some(r) = remaining {
        s.rate_limit_remaining.insert(source.to_string(), r);
    }
}

pub fn snapshot() -> Snapshot {
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statuses_buckets_latency_and_keeps_the_last_budget() {
        let src = "stats-test-source";
        record(src, Some(200), Duration::from_millis(70), Some(4999.0));
        record(src, Some(503), Duration::from_millis(300), None);
        record(src, None, Duration::from_secs(3), Some(4998.0));
        let s = snapshot();
        assert_eq!(s.requests[&(src.to_string(), "200".to_string())], 1);
        assert_eq!(s.requests[&(src.to_string(), "503".to_string())], 1);
        assert_eq!(s.requests[&(src.to_string(), "error".to_string())], 1);
        let l = &s.latency[src];
        assert_eq!(l.count, 3);
        assert_eq!(l.buckets, [0, 1, 1, 2, 2, 2, 3, 3, 3]);
        assert!((l.sum - 3.37).abs() < 1e-9);
        assert_eq!(s.rate_limit_remaining[src], 4998.0);
    }
}
