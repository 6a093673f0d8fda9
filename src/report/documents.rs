//! The report documents: the JSON of `status`, `explain`, `moves`, `unaligned`, `sources`,
//! `history` and `rules diff` (SPEC.md) as serde types, apart from the code that builds
//! them (`report` and its `ledger` and `rules_diff`). The CLI's `--json`, the HTTP API and
//! the OpenAPI schemas all come from these types; `report` re-exports them, so they are
//! named `crate::report::StatusDoc` and so on.
//!
//! The documents with a module of their own (`allocation`, `digest`, `lint`) keep their
//! types there, next to the one report each module builds.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::{KrKind, Measure, RunOutcome, Status};
use crate::progress::flags::Flag;
use crate::store::{Confidence, KrSnapshot};

// ---- status (`okrsync status --json`, `GET /api/v1/objectives`) -------------------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct StatusDoc {
    pub objectives: Vec<ObjectiveStatus>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ObjectiveStatus {
    pub id: String,
    pub title: String,
    pub progress: f64,
    pub status: Status,
    pub key_results: Vec<KrStatus>,
    pub parent: Option<String>,
    pub owner: Option<String>,
    pub period: String,
    /// The elapsed share of the period the status compares against, rounded to 4 decimals
    /// (so the document, and its ETag, change when the data does, not every second).
    pub expected: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct KrStatus {
    pub id: String,
    pub title: String,
    pub measure: Measure,
    pub progress: f64,
    pub current: Option<f64>,
    pub start: f64,
    pub target: Option<f64>,
    pub status: Status,
    pub items: i64,
    /// When the value last changed (its latest snapshot).
    pub updated_at: Option<DateTime<Utc>>,
    pub objective: String,
    pub weight: f64,
    pub unit: Option<String>,
    /// Why the KR is stale, in words.
    pub status_reason: Option<String>,
    /// The last successful sync of the sources it reads (oldest of them).
    pub synced_at: Option<DateTime<Utc>>,
    /// The sources whose data feeds it.
    pub sources: Vec<String>,
    /// `committed` or `aspirational` (a stretch goal).
    pub kind: KrKind,
    /// The progress at which it is a success: its success line when aspirational (0.7 by
    /// default), 1 when committed.
    pub success: f64,
    /// The owner's latest confidence check-in (0–10), or null; it never changes a
    /// computed value.
    pub confidence: Option<Confidence>,
    /// Flags raised on it now (`dead`, `checkin_overdue`, `scope_creep`,
    /// `output_without_outcome`, `outcome_without_output`).
    pub flags: Vec<Flag>,
}

// ---- explain (`okrsync explain KR --json`, `GET /api/v1/key-results/{id}`) --------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ExplainDoc {
    pub kr: KrStatus,
    pub items: Vec<EvidenceItem>,
    pub rules: Vec<String>,
    pub history: Vec<KrSnapshot>,
    /// With `--at` / `?at=`: the time the document shows the KR as of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct EvidenceItem {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub category: String,
    pub weight: f64,
    pub rule: String,
    /// Whether it adds to `current` now (done, and for count/sum done inside the period).
    pub counts: bool,
    pub estimate: Option<f64>,
    pub resolved: Option<DateTime<Utc>>,
}

// ---- moves (`okrsync moves SELECTOR --json`, `GET /api/v1/moves`) -----------------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct MovesDoc {
    pub selector: String,
    pub items: usize,
    pub key_results: Vec<MovedKr>,
    /// Selected items that move no KR.
    pub moving_nothing: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct MovedKr {
    pub id: String,
    pub title: String,
    pub items: usize,
    pub share: f64,
    pub objective: String,
}

// ---- unaligned (`okrsync unaligned --json`, `GET /api/v1/unaligned`) --------------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct UnalignedDoc {
    pub items: Vec<UnalignedItem>,
    pub by_project: Vec<ProjectShare>,
    /// The period(s) the report covers.
    pub periods: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct UnalignedItem {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub project: String,
    pub category: String,
    pub estimate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ProjectShare {
    pub project: String,
    pub items: usize,
    pub unaligned: usize,
    pub unaligned_estimate: f64,
    pub share: f64,
    /// The estimate of all its started work in the period.
    pub estimate: f64,
    /// `unaligned_estimate` ÷ `estimate` (0 when nothing is estimated).
    pub estimate_share: f64,
}

// ---- sources (`GET /api/v1/sources`) ----------------------------------------------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct SourcesDoc {
    pub sources: Vec<SourceStatus>,
}

/// One configured source: its schedule, its last sync and what went wrong, in words.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct SourceStatus {
    pub name: String,
    pub kind: String,
    pub every_seconds: u64,
    pub freshness_seconds: u64,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_full: Option<DateTime<Utc>>,
    /// `ok` or `failed`; absent before the first sync.
    pub last_outcome: Option<RunOutcome>,
    pub last_error: Option<String>,
    /// When the scheduler runs it next: one interval after the last step finished.
    pub next_run: Option<DateTime<Utc>>,
    /// Items stored for it now.
    pub items: i64,
    /// Its newest sync steps, newest first.
    pub recent_runs: Vec<crate::store::SyncRun>,
    /// The replica (`host:pid`) holding its lease, while the lease is live.
    pub lease_holder: Option<String>,
}

// ---- history (`okrsync history KR --json`, `GET /api/v1/key-results/{id}/history`) ------

/// `okrsync history KR --json`.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct HistoryDoc {
    pub kr: String,
    /// Oldest first.
    pub changes: Vec<Change>,
}

/// One snapshot of a KR and what made it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub progress: f64,
    pub current: Option<f64>,
    pub target: Option<f64>,
    /// Items in the KR's scope then.
    pub items: i64,
    /// Progress against the share of the period elapsed at that time.
    pub status: Status,
    /// In words: "sync of jira", "check-in", "rules changed", "config changed".
    pub cause: String,
    /// The rule set in force (a hash of the rules), when recorded.
    pub rules_hash: Option<String>,
    /// Keys of the items that entered the KR's scope with this snapshot.
    pub entered: Vec<String>,
    /// Keys of the items that left it.
    pub left: Vec<String>,
    /// Items whose category changed: from and to.
    pub changed: Vec<CategoryChange>,
    /// Each delta in words ("PAY-12 done (+3 pts)").
    pub summary: Vec<String>,
    /// The change as a whole in words: "sync of jira: PAY-12 done (+3 pts)", "rules
    /// changed: +14 items, −2 items", "check-in 0.4 by alice".
    pub headline: String,
    /// Rebuilt from the items' dates on a source's first sync, not recorded as it happened.
    pub reconstructed: bool,
    /// The sync run that made it, if any.
    pub run_id: Option<i64>,
    /// The check-in that made it, if any.
    pub checkin_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct CategoryChange {
    pub key: String,
    pub from: String,
    pub to: String,
}

// ---- rules diff (`okrsync rules diff --against PATH... --json`) -------------------------

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct RulesDiffDoc {
    /// The KRs whose value or scope would change, in the order of the new files (then the
    /// KRs only the old set has).
    pub key_results: Vec<KrDiff>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct KrDiff {
    pub id: String,
    /// As stored now; null for a KR only the new files have.
    pub old: Option<KrNumbers>,
    /// With the new files; null for a KR they drop.
    pub new: Option<KrNumbers>,
    /// Keys of the stored items that would enter the KR's scope.
    pub entered: Vec<String>,
    /// Keys that would leave it.
    pub left: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct KrNumbers {
    pub progress: f64,
    pub current: Option<f64>,
    pub target: Option<f64>,
}
