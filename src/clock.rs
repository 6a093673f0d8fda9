//! The current time. `OKRSYNC_NOW` (RFC 3339) pins it, so a report can be reproduced
//! exactly ("what did status say on 2026-11-15?") and tests can compute statuses by hand.
//!
//! [`pin`] pins it inside this process: `okrsync demo` replays its simulated quarter
//! through the normal sync path, one day at a time, so snapshots, runs and check-ins carry
//! the day they describe. An environment variable would not do: changing one while other
//! threads run is not sound.

use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Utc};

static PINNED: RwLock<Option<DateTime<Utc>>> = RwLock::new(None);

pub fn now() -> DateTime<Utc> {
    if let Some(t) = *PINNED.read().unwrap_or_else(PoisonError::into_inner) {
        return t;
    }
    match std::env::var("OKRSYNC_NOW") {
        Ok(s) if !s.is_empty() => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now()),
        _ => Utc::now(),
    }
}

/// Pins [`now`] to `at` for the whole process, or (with `None`) lets it run again.
pub fn pin(at: Option<DateTime<Utc>>) {
    *PINNED.write().unwrap_or_else(PoisonError::into_inner) = at;
}
