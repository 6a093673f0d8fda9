//! Upstream sources of work items, one module per kind behind the small [`ItemSource`]
//! trait. A source only fetches and normalises; the sync engine owns cursors, the store
//! and recomputation. Each kind owns its config section, construction and capabilities
//! ([`kind`]); the list below is the only place that names them all. Shared by the sources: [`http`] (the client), [`stats`] (request
//! statistics) and `lenient` (typed JSON reading as forgiving as a `Value` walk).

pub mod http;
pub mod kind;
pub(crate) mod lenient;
pub mod stats;
pub mod webhook;

pub use kind::{capabilities_of, Capabilities, SourceKind};

// Every kind of source: its module (`src/sources/<kind>/`) and its settings type.
kind::source_kinds! {
    jira => Jira(jira::JiraSettings),
    github => GitHub(github::GitHubSettings),
    sheet => Sheet(sheet::SheetSettings),
    gitlab => GitLab(gitlab::GitLabSettings),
}

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::model::{CellRef, Item, ItemRef};

/// Why a fetch failed. The sync engine records it in words on the sync run.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The upstream refused our credentials (401/403 that is not a rate limit).
    #[error("authentication failed ({status}): {message}")]
    Auth { status: u16, message: String },
    /// The upstream answered with an error we do not retry (4xx), or kept failing after retries.
    #[error("{method} {url} answered {status}: {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    /// Rate limited for longer than we are willing to wait.
    #[error(
        "rate limited: the upstream asks to wait {wait_secs}s, more than the {max_secs}s allowed"
    )]
    RateLimited { wait_secs: u64, max_secs: u64 },
    /// Connection failures and timeouts, after retries.
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    /// The answer's body was longer than `max_response_size` (not retried).
    #[error("the answer from {url} is larger than the {limit} bytes allowed (max_response_size); not read")]
    TooLarge { url: String, limit: u64 },
    /// The upstream answered something we cannot read.
    #[error("could not read the answer from {url}: {message}")]
    Parse { url: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// A value read for a metric key result (`metric = { source, cell }`), or why it could not
/// be read (an empty or non-numeric cell, a missing sheet…).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The reference as configured (`Metrics!B7`, `Metrics[row=MRR][column=Value]`).
    pub reference: String,
    pub value: Result<f64, String>,
}

/// One page of normalised items.
pub type PageStream<'a> = BoxStream<'a, Result<Vec<Item>, SourceError>>;

/// A source of work items.
pub trait ItemSource: Send + Sync {
    /// The source's name in the config (`[sources.NAME]`).
    fn name(&self) -> &str;

    /// Streams every item in scope whose `updated` is at or after `since` (everything in
    /// scope when `None`), one page at a time, never holding more than a page.
    fn fetch(&self, since: Option<DateTime<Utc>>) -> PageStream<'_>;

    /// HTTP requests sent since this source was built (for sync-run statistics).
    fn requests_sent(&self) -> u64;

    /// A full pass did not return these stored items: which are really
    /// gone? Offset pagination can skip an item when another one is edited mid-pass, so
    /// sources that can look items up do, and return those still in scope (to be kept and
    /// refreshed). The default trusts the pass.
    fn confirm_gone<'a>(
        &'a self,
        missing: Vec<ItemRef>,
    ) -> BoxFuture<'a, Result<Vec<Item>, SourceError>> {
        let _ = missing;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Validators of conditional requests (ETags) by request, as the store keeps them: the
    /// engine hands a source the ones its last successful step left before each step…
    fn load_validators(&self, validators: BTreeMap<String, String>) {
        let _ = validators;
    }

    /// …and stores what the source holds after a successful step, in the step's
    /// transaction (so a failed step leaves them as they were). `None`: this source makes
    /// no conditional requests.
    fn validators(&self) -> Option<BTreeMap<String, String>> {
        None
    }

    /// Write-back: puts `label` on the item with this key (`present`) or takes it off,
    /// through the source's client (its rate limit and retries). Sources that cannot write
    /// say so.
    fn set_label<'a>(
        &'a self,
        key: &'a str,
        label: &'a str,
        present: bool,
    ) -> BoxFuture<'a, Result<(), SourceError>> {
        let _ = (key, label, present);
        Box::pin(async {
            Err(SourceError::Other(
                "this kind of source cannot write labels back".into(),
            ))
        })
    }

    /// Reads these metric references (after `fetch`, in the same step). Sources without
    /// metrics return nothing.
    fn observe<'a>(
        &'a self,
        references: Vec<CellRef>,
    ) -> BoxFuture<'a, Result<Vec<Observation>, SourceError>> {
        let _ = references;
        Box::pin(async { Ok(Vec::new()) })
    }
}
