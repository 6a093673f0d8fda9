//! The current time. `OKRSYNC_NOW` (RFC 3339) pins it, so a report can be reproduced
//! exactly ("what did status say on 2026-11-15?") and tests can compute statuses by hand.

use chrono::{DateTime, Utc};

pub fn now() -> DateTime<Utc> {
    match std::env::var("OKRSYNC_NOW") {
        Ok(s) if !s.is_empty() => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now()),
        _ => Utc::now(),
    }
}
