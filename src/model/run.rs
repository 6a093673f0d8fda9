//! How a sync step read its source and how it ended: the values a run record, a source's
//! state, the API and the metrics carry (serialised as `incremental`/`full`, `ok`/`failed`).

use serde::{Deserialize, Serialize};

/// Incremental (from the cursor, minus the overlap) or full (everything in scope, and
/// items no longer in scope are removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    #[default]
    Incremental,
    Full,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Incremental => "incremental",
            SyncMode::Full => "full",
        }
    }

    /// As the store keeps it (anything but `full` was an incremental step).
    pub fn from_stored(text: &str) -> SyncMode {
        if text == "full" {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        }
    }
}

/// How a sync step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    #[default]
    Ok,
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
        }
    }

    /// As the store keeps it (anything but `ok` is a failure).
    pub fn from_stored(text: &str) -> RunOutcome {
        if text == "ok" {
            RunOutcome::Ok
        } else {
            RunOutcome::Failed
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `run.outcome == "ok"`: compares with the words the documents use.
impl PartialEq<&str> for RunOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<&str> for SyncMode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
