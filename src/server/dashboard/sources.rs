//! The sources page (`/sources`): every source with its schedule, last sync, outcome,
//! error, next run and lease holder, and the newest sync steps.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::view::{self, When};
use super::{render, report_error, Chrome, Shared};
use crate::clock;
use crate::model::RunOutcome;
use crate::report;

struct SourceView {
    name: String,
    kind: String,
    every: String,
    last_attempt: Option<When>,
    last_success: Option<When>,
    outcome: &'static str,
    outcome_class: &'static str,
    error: Option<String>,
    next_run: Option<When>,
    items: i64,
    holder: String,
}

struct RunView {
    source: String,
    started: When,
    mode: String,
    outcome: String,
    ok: bool,
    fetched: i64,
    changed: i64,
    deleted: i64,
    duration: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    chrome: Chrome,
    sources: Vec<SourceView>,
    runs: Vec<RunView>,
}

pub(super) async fn sources_page(State(s): Shared) -> Response {
    let now = clock::now();
    let doc = match report::sources(s.engine().store(), s.engine().settings(), 5).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "sources"),
    };
    let mut runs: Vec<RunView> = doc
        .sources
        .iter()
        .flat_map(|src| src.recent_runs.iter())
        .map(|r| RunView {
            source: r.source.clone(),
            started: view::when(r.started_at, now),
            mode: r.mode.to_string(),
            outcome: r.outcome.to_string(),
            ok: r.outcome == RunOutcome::Ok,
            fetched: r.fetched,
            changed: r.changed,
            deleted: r.deleted,
            duration: r
                .finished_at
                .map(|f| {
                    format!(
                        "{:.1} s",
                        (f - r.started_at).num_milliseconds() as f64 / 1000.0
                    )
                })
                .unwrap_or_else(|| "–".into()),
            error: r.error.clone(),
        })
        .collect();
    runs.sort_by(|a, b| b.started.iso.cmp(&a.started.iso));
    let sources = doc
        .sources
        .iter()
        .map(|src| {
            let (outcome, outcome_class) = match src.last_outcome {
                Some(RunOutcome::Ok) => ("✓ OK", "ok"),
                Some(RunOutcome::Failed) => ("✕ Failed", "failed"),
                None => ("… Not synced yet", "pending"),
            };
            SourceView {
                name: src.name.clone(),
                kind: src.kind.clone(),
                every: humantime::format_duration(std::time::Duration::from_secs(
                    src.every_seconds,
                ))
                .to_string(),
                last_attempt: src.last_attempt.map(|t| view::when(t, now)),
                last_success: src.last_success.map(|t| view::when(t, now)),
                outcome,
                outcome_class,
                error: src.last_error.clone(),
                next_run: src.next_run.map(|t| {
                    let mut w = view::when(t, now);
                    if t <= now {
                        w.ago = "due now".into();
                    }
                    w
                }),
                items: src.items,
                holder: src.lease_holder.clone().unwrap_or_else(|| "–".into()),
            }
        })
        .collect();
    render(&SourcesPage {
        chrome: Chrome::new("sources", now, None),
        sources,
        runs,
    })
}
