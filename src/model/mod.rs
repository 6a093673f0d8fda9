//! The domain vocabulary shared by every layer: normalised work items, objectives and key
//! results as defined in the OKR files, measures, periods and statuses.
//!
//! Nothing in here does I/O; sources produce [`Item`]s, the settings layer produces
//! [`Objective`]s and [`RuleDef`]s, and the rules/progress modules compute on them.

pub mod cell;
mod ids;
mod period;
mod run;

pub use cell::CellRef;
pub use ids::{KrId, ObjectiveId, RuleId, SourceId};
pub use period::{Period, PeriodError};
pub use run::{RunOutcome, SyncMode};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an item stands, as every source reduces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Todo,
    InProgress,
    Done,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Todo => "todo",
            Category::InProgress => "in_progress",
            Category::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        match s {
            "todo" => Some(Category::Todo),
            "in_progress" => Some(Category::InProgress),
            "done" => Some(Category::Done),
            _ => None,
        }
    }
}

/// What kind of thing an item is upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Issue,
    PullRequest,
    Epic,
    Row,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Issue => "issue",
            ItemKind::PullRequest => "pull_request",
            ItemKind::Epic => "epic",
            ItemKind::Row => "row",
        }
    }

    pub fn parse(s: &str) -> Option<ItemKind> {
        match s {
            "issue" => Some(ItemKind::Issue),
            "pull_request" => Some(ItemKind::PullRequest),
            "epic" => Some(ItemKind::Epic),
            "row" => Some(ItemKind::Row),
            _ => None,
        }
    }
}

/// One piece of normalised work (SPEC.md "Items").
///
/// `ext_id` is the upstream's stable identity (Jira issue id, GitHub node id, row key):
/// keys can change when a Jira issue moves project, ids do not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub source: String,
    pub ext_id: String,
    pub key: String,
    pub kind: ItemKind,
    pub title: String,
    pub url: String,
    pub project: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub status: String,
    pub category: Category,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub epic: Option<String>,
    pub parent: Option<String>,
    pub milestone: Option<String>,
    pub assignee: Option<String>,
    pub estimate: Option<f64>,
    pub created: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// Any other upstream field, by name: strings, numbers, or lists of strings.
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Closed without being done (GitHub "closed as not planned"): it matches no rule, so
    /// it leaves every KR's scope, and is neither in progress nor done.
    #[serde(default)]
    pub abandoned: bool,
}

/// How a key result turns evidence into progress (SPEC.md "Progress semantics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Completion,
    Count,
    Sum,
    Metric,
    Milestone,
    Manual,
}

impl Measure {
    pub const ALL: [&'static str; 6] = [
        "completion",
        "count",
        "sum",
        "metric",
        "milestone",
        "manual",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Completion => "completion",
            Measure::Count => "count",
            Measure::Sum => "sum",
            Measure::Metric => "metric",
            Measure::Milestone => "milestone",
            Measure::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Measure> {
        match s {
            "completion" => Some(Measure::Completion),
            "count" => Some(Measure::Count),
            "sum" => Some(Measure::Sum),
            "metric" => Some(Measure::Metric),
            "milestone" => Some(Measure::Milestone),
            "manual" => Some(Measure::Manual),
            _ => None,
        }
    }

    /// Measures whose evidence is matched items (as opposed to observed values).
    pub fn uses_items(self) -> bool {
        matches!(
            self,
            Measure::Completion | Measure::Count | Measure::Sum | Measure::Milestone
        )
    }
}

/// How items weigh in a `completion` KR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightBy {
    #[default]
    Count,
    Estimate,
}

/// What progress and evidence read of an item: who it is, where it stands, what it weighs
/// and when it was done. Every [`Item`] has it; so does [`ProgressItem`], the slim row
/// the store reads when a KR is recomputed.
pub trait ProgressFacts {
    fn source(&self) -> &str;
    fn ext_id(&self) -> &str;
    fn key(&self) -> &str;
    fn category(&self) -> Category;
    fn estimate(&self) -> Option<f64>;
    fn created(&self) -> Option<DateTime<Utc>>;
    fn updated(&self) -> DateTime<Utc>;
    fn resolved(&self) -> Option<DateTime<Utc>>;
    /// `fields.<name>` (read only by `sum` KRs over a field).
    fn field(&self, name: &str) -> Option<&serde_json::Value>;
}

/// The part of a stored item a KR's recomputation reads (the store leaves `fields` empty
/// unless the KR sums a field).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressItem {
    pub source: String,
    pub ext_id: String,
    pub key: String,
    pub category: Category,
    pub estimate: Option<f64>,
    pub created: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    pub fields: BTreeMap<String, serde_json::Value>,
}

macro_rules! progress_facts {
    ($t:ty) => {
        impl ProgressFacts for $t {
            fn source(&self) -> &str {
                &self.source
            }
            fn ext_id(&self) -> &str {
                &self.ext_id
            }
            fn key(&self) -> &str {
                &self.key
            }
            fn category(&self) -> Category {
                self.category
            }
            fn estimate(&self) -> Option<f64> {
                self.estimate
            }
            fn created(&self) -> Option<DateTime<Utc>> {
                self.created
            }
            fn updated(&self) -> DateTime<Utc> {
                self.updated
            }
            fn resolved(&self) -> Option<DateTime<Utc>> {
                self.resolved
            }
            fn field(&self, name: &str) -> Option<&serde_json::Value> {
                self.fields.get(name)
            }
        }
    };
}

progress_facts!(Item);
progress_facts!(ProgressItem);

impl<T: ProgressFacts> ProgressFacts for &T {
    fn source(&self) -> &str {
        (**self).source()
    }
    fn ext_id(&self) -> &str {
        (**self).ext_id()
    }
    fn key(&self) -> &str {
        (**self).key()
    }
    fn category(&self) -> Category {
        (**self).category()
    }
    fn estimate(&self) -> Option<f64> {
        (**self).estimate()
    }
    fn created(&self) -> Option<DateTime<Utc>> {
        (**self).created()
    }
    fn updated(&self) -> DateTime<Utc> {
        (**self).updated()
    }
    fn resolved(&self) -> Option<DateTime<Utc>> {
        (**self).resolved()
    }
    fn field(&self, name: &str) -> Option<&serde_json::Value> {
        (**self).field(name)
    }
}

/// An item of one source as the store holds it: its id upstream and its key (`PAY-1`,
/// `acme/web#12`) — what a full pass hands a source to confirm before deleting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub ext_id: String,
    pub key: String,
}

/// Where a `metric` KR reads its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRef {
    pub source: SourceId,
    /// `Metrics!B7`, or a label lookup rendered as `Sheet[row=..][column=..]`.
    pub reference: CellRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyResultDef {
    pub id: KrId,
    pub objective: ObjectiveId,
    pub title: String,
    pub measure: Measure,
    /// Weight in the objective's mean (default 1).
    pub weight: f64,
    pub weight_by: WeightBy,
    /// Baseline for count, sum, metric and manual (default 0).
    pub start: Option<f64>,
    pub target: Option<f64>,
    /// For `sum`: `estimate` (default) or `fields.<name>`.
    pub field: Option<String>,
    pub metric: Option<MetricRef>,
    pub unit: Option<String>,
    pub owner: Option<String>,
    /// Committed (the default) or aspirational (a stretch goal).
    pub kind: KrKind,
    /// An aspirational KR's success line, as a share of its target (`success`, else
    /// `[progress] aspirational_success`); `None` for committed KRs (they succeed at 1).
    pub success: Option<f64>,
}

impl KeyResultDef {
    /// The progress at which the KR counts as a success: 1 for committed KRs.
    pub fn success_line(&self) -> f64 {
        match self.kind {
            KrKind::Committed => 1.0,
            KrKind::Aspirational => self.success.unwrap_or(0.7),
        }
    }
}

/// Committed KRs are expected to reach their target; aspirational (stretch) ones are a
/// success at their success line (0.7 by default).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KrKind {
    #[default]
    Committed,
    Aspirational,
}

impl KrKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KrKind::Committed => "committed",
            KrKind::Aspirational => "aspirational",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveDef {
    pub id: ObjectiveId,
    pub title: String,
    pub period: Period,
    pub owner: Option<String>,
    pub parent: Option<String>,
    pub key_results: Vec<KeyResultDef>,
    /// The OKR file it came from (relative to the config file), for messages.
    pub file: String,
}

/// A KR or objective status (SPEC.md); ordered from best to worst.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    OnTrack,
    AtRisk,
    OffTrack,
    Stale,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::OnTrack => "on_track",
            Status::AtRisk => "at_risk",
            Status::OffTrack => "off_track",
            Status::Stale => "stale",
        }
    }
}

/// Margins below the expected progress before a KR is at risk / off track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatusMargins {
    pub on_track: f64,
    pub at_risk: f64,
}

impl Default for StatusMargins {
    fn default() -> Self {
        StatusMargins {
            on_track: 0.10,
            at_risk: 0.25,
        }
    }
}

/// A number as reports print it: whole numbers without decimals, others with at most two
/// (4.1, not 4.10).
pub fn plain_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}
