//! The managers' dashboard: server-rendered pages (askama templates, escaped by default, no
//! JavaScript build step) over the same report documents as the JSON API, read from the
//! store without recomputing. Pages: overview (objective tree), a KR (history chart,
//! evidence, recent changes), moves (the budget meeting's search), unaligned work,
//! allocation (where the effort goes, and the items behind each number), the weekly digest,
//! sources, rule lint. Each page is a module of its own; this one has the routes and what
//! the pages share: the frame around every page, rendering, error pages, a KR as the
//! overview and its page show it.

mod allocation;
mod chart;
mod digest;
mod key_result;
mod lint;
mod moves;
mod overview;
mod sources;
mod unaligned;
mod view;

use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequest, RawForm, Request};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};

use serde::Deserialize;

use super::{AppState, Refusal, Shared};
use crate::clock;
use crate::report::{self, KrStatus, ReportError};
use view::{StatusView, When};

const CSS: &str = include_str!("okrsync.css");

pub fn routes() -> Router<std::sync::Arc<AppState>> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/kr/{id}", get(key_result::kr_page))
        .route("/moves", get(moves::moves_page))
        .route("/unaligned", get(unaligned::unaligned_page))
        .route("/allocation", get(allocation::allocation_page))
        .route("/allocation/items", get(allocation::allocation_items_page))
        .route("/digest", get(digest::digest_page))
        .route("/sources", get(sources::sources_page))
        .route("/lint", get(lint::lint_page))
        .route("/static/okrsync.css", get(css))
}

/// The dashboard's forms that change something. The server puts them behind the token
/// check of every write route, reading the token from the form (`form_token`).
pub(crate) fn write_routes() -> Router<std::sync::Arc<AppState>> {
    Router::new().route("/kr/{id}/checkin", post(key_result::checkin_form))
}

/// The form field that carries the API token.
#[derive(Deserialize)]
struct FormToken {
    token: String,
}

/// Reads the `token` field of a form posted to a write route, and gives the request back
/// with the same body for its handler. The form is read as the handler's `Form` reads it,
/// so a body that is not a form (another content type, past the body limit, no `token`)
/// is refused with the answer the handler's extractor gives.
pub(crate) async fn form_token(request: Request) -> Result<(String, Request), Response> {
    let (parts, body) = request.into_parts();
    let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(IntoResponse::into_response)?;
    let again = || Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let Form(FormToken { token }) = Form::<FormToken>::from_request(again(), &())
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((token, again()))
}

/// A write refused, as a page: the dashboard's forms are used from a browser.
pub(crate) fn write_refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Disabled => error_page(
            StatusCode::FORBIDDEN,
            "overview",
            "Check-ins are disabled",
            "Writes need an API token: set server.api_token_env or server.api_token_file.".into(),
        ),
        Refusal::WrongToken => error_page(
            StatusCode::UNAUTHORIZED,
            "overview",
            "Wrong token",
            "The token is not this server's API token; nothing was recorded.".into(),
        ),
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

/// What every page shows around its content.
struct Chrome {
    now: When,
    /// The navigation entry of this page.
    nav: &'static str,
    /// Seconds between automatic reloads (`?refresh=N`, for a wall display).
    refresh: Option<u32>,
}

impl Chrome {
    fn new(nav: &'static str, now: DateTime<Utc>, refresh: Option<u32>) -> Chrome {
        Chrome {
            now: view::when(now, now),
            nav,
            refresh: refresh.map(|r| r.clamp(10, 3600)),
        }
    }
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a dashboard page");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response()
        }
    }
}

/// A page answered with another status than 200 (errors; a form with a bad value is a 400
/// that still shows the form). A page that fails to render stays a 500.
fn render_with_status(t: &impl Template, status: StatusCode) -> Response {
    let mut resp = render(t);
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

fn error_page(status: StatusCode, nav: &'static str, title: &str, message: String) -> Response {
    let page = ErrorPage {
        chrome: Chrome::new(nav, clock::now(), None),
        title: title.to_string(),
        message,
    };
    render_with_status(&page, status)
}

fn report_error(e: ReportError, nav: &'static str) -> Response {
    match e {
        ReportError::UnknownKr(id) => error_page(
            StatusCode::NOT_FOUND,
            nav,
            "No such key result",
            format!("There is no key result \"{id}\" in the loaded OKRs."),
        ),
        ReportError::BadRequest(m) => {
            error_page(StatusCode::BAD_REQUEST, nav, "That did not work", m)
        }
        ReportError::Store(e) => {
            tracing::error!(error = %e, "store error while rendering a page");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                nav,
                "The store is unavailable",
                "okrsync cannot read its database right now; try again in a moment.".into(),
            )
        }
    }
}

// ---- a KR as the overview and its page show it ----------------------------------------

struct KrView {
    id: String,
    title: String,
    progress: String,
    bar: String,
    numbers: String,
    status: StatusView,
    freshness: String,
    freshness_iso: String,
    reason: Option<String>,
    measure: String,
    /// For an aspirational KR: its success line in words.
    stretch: Option<String>,
    flags: Vec<FlagView>,
    /// The owner's latest confidence, in words.
    confidence: Option<String>,
}

/// A flag as a badge: the word, and the message and date for its title and list entry.
struct FlagView {
    kind: &'static str,
    label: &'static str,
    message: String,
    since: String,
    since_iso: String,
}

fn flag_views(kr: &KrStatus) -> Vec<FlagView> {
    kr.flags
        .iter()
        .map(|f| FlagView {
            kind: f.kind.as_str(),
            label: f.kind.label(),
            message: f.message.clone(),
            since: f.since.format("%Y-%m-%d").to_string(),
            since_iso: iso(f.since),
        })
        .collect()
}

fn numbers(kr: &KrStatus) -> String {
    let unit = kr
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let current = kr
        .current
        .map(view::number)
        .unwrap_or_else(|| "–".to_string());
    match kr.target {
        Some(t) => format!("{current} / {}{unit}", view::number(t)),
        None => format!("{current}{unit}"),
    }
}

fn freshness(kr: &KrStatus, now: DateTime<Utc>) -> (String, String) {
    if kr.sources.is_empty() {
        return match kr.updated_at {
            Some(t) => (format!("checked in {}", view::relative(t, now)), iso(t)),
            None => ("no check-in yet".to_string(), String::new()),
        };
    }
    let from = kr.sources.join(", ");
    match kr.synced_at {
        Some(t) => (
            format!("updated {} from {from}", view::relative(t, now)),
            iso(t),
        ),
        None => (format!("not synced yet from {from}"), String::new()),
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn kr_view(kr: &KrStatus, now: DateTime<Utc>) -> KrView {
    let (freshness, freshness_iso) = freshness(kr, now);
    KrView {
        id: kr.id.clone(),
        title: kr.title.clone(),
        progress: view::percent(kr.progress),
        bar: view::bar(kr.progress),
        numbers: numbers(kr),
        status: view::status(kr.status),
        freshness,
        freshness_iso,
        reason: kr.status_reason.clone(),
        measure: kr.measure.as_str().to_string(),
        stretch: (kr.kind == crate::model::KrKind::Aspirational).then(|| {
            format!(
                "Stretch goal: a success at {} of its target",
                view::percent(kr.success)
            )
        }),
        flags: flag_views(kr),
        confidence: kr.confidence.as_ref().map(report::confidence_in_words),
    }
}

// ---- "show all" ------------------------------------------------------------------------

/// Rows a page lists before it offers "show all": a KR moved by 40,000 items would
/// otherwise be a 13 MB page. The JSON API always has everything.
const EVIDENCE_SHOWN: usize = 500;
const UNALIGNED_SHOWN_PER_PROJECT: usize = 200;

fn wants_all(v: Option<&str>) -> bool {
    v.is_some_and(|v| !matches!(v, "" | "0" | "false"))
}
