//! The moves page (`/moves`): the budget meeting's search, which KRs a project, repository,
//! epic, label or item moves and with what share.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::view;
use super::{render_with_status, report_error, Chrome, Shared};
use crate::clock;
use crate::report::{self, ReportError};

struct MovedView {
    id: String,
    title: String,
    objective: String,
    items: usize,
    share: String,
    bar: String,
}

struct MovesResult {
    selector: String,
    items: usize,
    moving_nothing: usize,
    krs: Vec<MovedView>,
}

#[derive(Template)]
#[template(path = "moves.html")]
struct MovesPage {
    chrome: Chrome,
    kinds: Vec<(&'static str, &'static str, bool)>,
    q: String,
    result: Option<MovesResult>,
    problem: Option<String>,
    /// Known projects, repositories and epics, offered as the user types.
    suggestions: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct MovesForm {
    /// A whole selector (`project=PAY`), as the API takes it.
    selector: Option<String>,
    /// The form's two fields: what kind of thing, and its name.
    by: Option<String>,
    q: Option<String>,
}

const KINDS: [(&str, &str); 5] = [
    ("project", "Project"),
    ("repo", "Repository"),
    ("epic", "Epic"),
    ("label", "Label"),
    ("item", "Item"),
];

pub(super) async fn moves_page(State(s): Shared, Query(f): Query<MovesForm>) -> Response {
    let now = clock::now();
    let by = f.by.clone().unwrap_or_else(|| "project".into());
    let q = f.q.clone().unwrap_or_default().trim().to_string();
    // A full selector wins; a name typed with its kind (`repo=acme/web`) is taken as is.
    let selector = match (&f.selector, q.as_str()) {
        (Some(sel), _) if !sel.trim().is_empty() => Some(sel.trim().to_string()),
        (_, "") => None,
        (_, q) if q.contains('=') => Some(q.to_string()),
        (_, q) => Some(format!("{by}={q}")),
    };
    let mut page = MovesPage {
        chrome: Chrome::new("moves", now, None),
        kinds: KINDS
            .iter()
            .map(|(v, l)| (*v, *l, *v == by.as_str()))
            .collect(),
        q: if q.is_empty() {
            f.selector.clone().unwrap_or_default()
        } else {
            q
        },
        result: None,
        problem: None,
        suggestions: s
            .engine()
            .store()
            .selector_suggestions(200, |kind| {
                kind.and_then(crate::sources::capabilities_of)
                    .map_or("project", |c| c.project_selector)
            })
            .await
            .unwrap_or_default(),
    };
    if let Some(selector) = selector {
        match report::moves(s.engine().store(), s.engine().settings(), &selector).await {
            Ok(doc) => {
                page.result = Some(MovesResult {
                    selector: doc.selector.clone(),
                    items: doc.items,
                    moving_nothing: doc.moving_nothing,
                    krs: doc
                        .key_results
                        .iter()
                        .map(|k| MovedView {
                            id: k.id.clone(),
                            title: k.title.clone(),
                            objective: k.objective.clone(),
                            items: k.items,
                            share: view::percent(k.share),
                            bar: view::bar(k.share),
                        })
                        .collect(),
                })
            }
            Err(ReportError::BadRequest(m)) => page.problem = Some(m),
            Err(e) => return report_error(e, "moves"),
        }
    }
    let status = if page.problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_with_status(&page, status)
}
