//! The HTTP client every polling source shares: a per-source rate limiter (governor),
//! timeouts, `Retry-After` on 429/503, exponential backoff with jitter on 5xx and
//! transport errors, and a request counter.

use std::time::Duration;

/// Tuning of one source's HTTP behaviour (from the source's config section).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Steady request rate allowed by the limiter.
    pub requests_per_second: f64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt for 5xx, timeouts and rate limits.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry, with jitter.
    pub backoff_base: Duration,
    /// A `Retry-After` longer than this fails the step instead of sleeping.
    pub max_retry_after: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            requests_per_second: 10.0,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(300),
        }
    }
}
