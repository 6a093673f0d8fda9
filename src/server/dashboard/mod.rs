//! The managers' dashboard: server-rendered pages (askama templates, escaped by default, no
//! JavaScript build step) over the same report documents as the JSON API, read from the
//! store without recomputing. Pages: overview (objective tree), a KR (history chart,
//! evidence, recent changes), moves (the budget meeting's search), unaligned work,
//! allocation (where the effort goes, and the items behind each number), sources, rule lint.

mod allocation;
mod chart;
mod digest;
mod view;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{AppState, Shared};
use crate::clock;
use crate::report::{self, KrStatus, ObjectiveStatus, ReportError};
use view::{StatusView, When};

const CSS: &str = include_str!("okrsync.css");

pub fn routes() -> Router<std::sync::Arc<AppState>> {
    Router::new()
        .route("/", get(overview))
        .route("/kr/{id}", get(kr_page))
        .route("/moves", get(moves_page))
        .route("/unaligned", get(unaligned_page))
        .route("/allocation", get(allocation::allocation_page))
        .route("/allocation/items", get(allocation::allocation_items_page))
        .route("/digest", get(digest::digest_page))
        .route("/sources", get(sources_page))
        .route("/lint", get(lint_page))
        .route("/static/okrsync.css", get(css))
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

// ---- overview -------------------------------------------------------------------------

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
        measure: kr.measure.clone(),
        stretch: (kr.kind == "aspirational").then(|| {
            format!(
                "Stretch goal: a success at {} of its target",
                view::percent(kr.success)
            )
        }),
        flags: flag_views(kr),
        confidence: kr.confidence.as_ref().map(report::confidence_in_words),
    }
}

struct ObjectiveView {
    id: String,
    title: String,
    owner: Option<String>,
    period: String,
    progress: String,
    bar: String,
    expected: String,
    status: StatusView,
    krs: Vec<KrView>,
    /// 2 for a top-level objective, deeper ones one more (their heading level, max 6).
    level: usize,
}

/// The objective tree flattened into open/close steps, so the template nests lists
/// without recursion.
enum TreeStep {
    Open(Box<ObjectiveView>),
    Close,
}

fn tree(objectives: &[ObjectiveStatus], now: DateTime<Utc>) -> Vec<TreeStep> {
    let ids: std::collections::HashSet<&str> = objectives.iter().map(|o| o.id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&ObjectiveStatus>> = BTreeMap::new();
    for o in objectives {
        let parent = o.parent.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(o);
    }
    fn walk<'a>(
        parent: Option<&'a str>,
        depth: usize,
        children: &BTreeMap<Option<&'a str>, Vec<&'a ObjectiveStatus>>,
        now: DateTime<Utc>,
        out: &mut Vec<TreeStep>,
    ) {
        // Config cycles are refused at load; the depth bound is a second guard.
        if depth > 32 {
            return;
        }
        for o in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(TreeStep::Open(Box::new(ObjectiveView {
                id: o.id.clone(),
                title: o.title.clone(),
                owner: o.owner.clone(),
                period: o.period.clone(),
                progress: view::percent(o.progress),
                bar: view::bar(o.progress),
                expected: view::percent(o.expected),
                status: view::status(o.status),
                krs: o.key_results.iter().map(|k| kr_view(k, now)).collect(),
                level: (depth + 2).min(6),
            })));
            walk(Some(o.id.as_str()), depth + 1, children, now, out);
            out.push(TreeStep::Close);
        }
    }
    let mut out = Vec::new();
    walk(None, 0, &children, now, &mut out);
    out
}

struct StatusCount {
    status: StatusView,
    count: usize,
}

/// One kind of flag on the "needs attention" panel, with the KRs that carry it.
struct AttentionView {
    kind: &'static str,
    label: &'static str,
    krs: Vec<AttentionKr>,
}

struct AttentionKr {
    id: String,
    title: String,
    message: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    tree: Vec<TreeStep>,
    counts: Vec<StatusCount>,
    krs: usize,
    /// Flags by kind (only kinds raised somewhere), and how many KRs carry any.
    attention: Vec<AttentionView>,
    flagged: usize,
}

fn attention(doc: &report::StatusDoc) -> (Vec<AttentionView>, usize) {
    use crate::progress::flags::FlagKind;
    let all: Vec<&KrStatus> = doc.objectives.iter().flat_map(|o| &o.key_results).collect();
    let views = FlagKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let krs: Vec<AttentionKr> = all
                .iter()
                .filter_map(|k| {
                    k.flags
                        .iter()
                        .find(|f| f.kind == kind)
                        .map(|f| AttentionKr {
                            id: k.id.clone(),
                            title: k.title.clone(),
                            message: f.message.clone(),
                        })
                })
                .collect();
            (!krs.is_empty()).then_some(AttentionView {
                kind: kind.as_str(),
                label: kind.label(),
                krs,
            })
        })
        .collect();
    let flagged = all.iter().filter(|k| !k.flags.is_empty()).count();
    (views, flagged)
}

#[derive(Deserialize)]
struct RefreshQuery {
    refresh: Option<u32>,
}

async fn overview(State(s): Shared, Query(q): Query<RefreshQuery>) -> Response {
    let now = clock::now();
    let doc = match report::status(s.engine().store(), s.engine().settings(), now).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "overview"),
    };
    let mut by_status: BTreeMap<crate::model::Status, usize> = BTreeMap::new();
    let mut krs = 0;
    for kr in doc.objectives.iter().flat_map(|o| &o.key_results) {
        *by_status.entry(kr.status).or_default() += 1;
        krs += 1;
    }
    let (attention, flagged) = attention(&doc);
    render(&OverviewPage {
        chrome: Chrome::new("overview", now, q.refresh),
        attention,
        flagged,
        tree: tree(&doc.objectives, now),
        counts: by_status
            .into_iter()
            .map(|(st, count)| StatusCount {
                status: view::status(st),
                count,
            })
            .collect(),
        krs,
    })
}

// ---- one KR ---------------------------------------------------------------------------

struct EvidenceView {
    source: String,
    key: String,
    title: String,
    url: String,
    category: String,
    weight: String,
    rule: String,
    counts: bool,
}

struct ChangeView {
    at: When,
    /// RFC 3339, for the link to the KR as of then.
    at_iso: String,
    value: String,
    progress: String,
    items: i64,
    cause: String,
    /// What entered, left or changed, in words (at most a few, then "… and N more").
    details: Vec<String>,
}

#[derive(Template)]
#[template(path = "kr.html")]
struct KrPage {
    chrome: Chrome,
    kr: KrView,
    objective_title: String,
    objective_id: String,
    period: String,
    start: String,
    chart: chart::Chart,
    width: String,
    height: String,
    evidence: Vec<EvidenceView>,
    /// All matched items; `evidence` may list fewer.
    evidence_total: usize,
    counting: usize,
    rules: Vec<String>,
    changes: Vec<ChangeView>,
    /// Shown as of a past time (`?at=`): its RFC 3339 form and the day for the picker.
    at: Option<String>,
    at_day: String,
    /// The owner's confidence over time, and its check-ins newest first.
    confidence_chart: Option<chart::ConfidenceChart>,
    confidence_height: String,
    confidences: Vec<ConfidenceRow>,
    /// Whether the check-in form may ask for a value (manual KRs only).
    manual: bool,
    /// Whether writes are enabled (an API token is configured): else the form says how.
    writes: bool,
}

struct ConfidenceRow {
    at: When,
    value: String,
    note: String,
    author: String,
}

/// Rows a page lists before it offers "show all": a KR moved by 40,000 items would
/// otherwise be a 13 MB page. The JSON API always has everything.
const EVIDENCE_SHOWN: usize = 500;
const UNALIGNED_SHOWN_PER_PROJECT: usize = 200;

#[derive(Deserialize)]
struct AllForm {
    all: Option<String>,
    /// The KR page as of a past time (RFC 3339 or a date).
    at: Option<String>,
}

fn wants_all(v: Option<&str>) -> bool {
    v.is_some_and(|v| !matches!(v, "" | "0" | "false"))
}

async fn kr_page(State(s): Shared, Path(id): Path<String>, Query(f): Query<AllForm>) -> Response {
    let now = clock::now();
    let engine = s.engine();
    let settings = engine.settings();
    let at = match f.at.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match report::parse_at(a) {
            Ok(t) => Some(t),
            Err(e) => return report_error(e, "overview"),
        },
    };
    let doc = match at {
        Some(t) => report::explain_at(engine.store(), settings, &id, t).await,
        None => report::explain(engine.store(), settings, &id, now).await,
    };
    let doc = match doc {
        Ok(d) => d,
        Err(e) => return report_error(e, "overview"),
    };
    let history = match report::history(engine.store(), settings, &id).await {
        Ok(h) => h,
        Err(e) => return report_error(e, "overview"),
    };
    let Some(objective) = settings
        .objectives
        .iter()
        .find(|o| o.id == doc.kr.objective)
    else {
        return report_error(ReportError::UnknownKr(id), "overview");
    };
    let unit = doc.kr.unit.clone().unwrap_or_default();
    let changes = history
        .changes
        .iter()
        .rev()
        .filter(|h| at.is_none_or(|t| h.at <= t))
        .take(20)
        .map(|h| ChangeView {
            at: view::when(h.at, now),
            at_iso: h.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            details: {
                let mut d: Vec<String> = h.summary.iter().take(5).cloned().collect();
                if h.summary.len() > 5 {
                    d.push(format!("… and {} more", h.summary.len() - 5));
                }
                d
            },
            value: match (h.current, h.target) {
                (Some(c), Some(t)) => format!("{} / {} {unit}", view::number(c), view::number(t)),
                (Some(c), None) => format!("{} {unit}", view::number(c)),
                (None, _) => "–".into(),
            }
            .trim_end()
            .to_string(),
            progress: view::percent(h.progress),
            items: h.items,
            cause: h.headline.clone(),
        })
        .collect();
    let shown = if wants_all(f.all.as_deref()) {
        doc.items.len()
    } else {
        EVIDENCE_SHOWN
    };
    let evidence: Vec<EvidenceView> = doc
        .items
        .iter()
        .take(shown)
        .map(|i| EvidenceView {
            source: i.source.clone(),
            key: i.key.clone(),
            title: i.title.clone(),
            url: i.url.clone(),
            category: i.category.replace('_', " "),
            weight: view::number(i.weight),
            rule: i.rule.clone(),
            counts: i.counts,
        })
        .collect();
    let confidences = match engine.store().confidences(&id).await {
        Ok(c) => c,
        Err(e) => return report_error(ReportError::Store(e), "overview"),
    };
    let confidences: Vec<crate::store::Confidence> = confidences
        .into_iter()
        .filter(|c| at.is_none_or(|t| c.at <= t))
        .collect();
    let success = (doc.kr.kind == "aspirational").then_some(doc.kr.success);
    render(&KrPage {
        chrome: Chrome::new("overview", now, None),
        confidence_chart: chart::confidence_chart(&confidences, &objective.period),
        confidence_height: format!("{}", chart::CONFIDENCE_HEIGHT),
        confidences: confidences
            .iter()
            .rev()
            .take(20)
            .map(|c| ConfidenceRow {
                at: view::when(c.at, now),
                value: format!("{}/10", view::number(c.value)),
                note: c.note.clone().unwrap_or_default(),
                author: c.author.clone().unwrap_or_default(),
            })
            .collect(),
        manual: doc.kr.measure == "manual",
        writes: matches!(settings.server.api_token(), Ok(Some(_))),
        kr: kr_view(&doc.kr, now),
        objective_title: objective.title.clone(),
        objective_id: objective.id.clone(),
        period: objective.period.label.clone(),
        start: view::number(doc.kr.start),
        chart: chart::progress_chart(&doc.history, &objective.period, now, success),
        width: format!("{}", chart::WIDTH),
        height: format!("{}", chart::HEIGHT),
        counting: doc.items.iter().filter(|e| e.counts).count(),
        evidence_total: doc.items.len(),
        evidence,
        rules: doc.rules.clone(),
        changes,
        at: at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        at_day: at.unwrap_or(now).format("%Y-%m-%d").to_string(),
    })
}

// ---- the check-in form ------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct CheckinForm {
    token: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    confidence: String,
    #[serde(default)]
    note: String,
}

/// `POST /kr/{id}/checkin`: the KR page's form (no script). The API token is a field of
/// the form; a good check-in answers 303 back to the KR page, a refused one a page that
/// says why.
pub(crate) async fn checkin_form(
    State(s): Shared,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CheckinForm>,
) -> Response {
    use crate::sync::CheckinError;
    let engine = s.engine();
    if !matches!(engine.settings().server.api_token(), Ok(Some(_))) {
        return error_page(
            StatusCode::FORBIDDEN,
            "overview",
            "Check-ins are disabled",
            "Writes need an API token: set server.api_token_env or server.api_token_file.".into(),
        );
    }
    if !super::token_matches(&s, f.token.trim()) {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "overview",
            "Wrong token",
            "The token is not this server's API token; nothing was recorded.".into(),
        );
    }
    let number = |text: &str, what: &str| -> Result<Option<f64>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<f64>()
            .map(Some)
            .map_err(|_| format!("The {what} must be a number, found \"{t}\"."))
    };
    let (value, confidence) = match (
        number(&f.value, "value"),
        number(&f.confidence, "confidence"),
    ) {
        (Ok(v), Ok(c)) => (v, c),
        (Err(m), _) | (_, Err(m)) => {
            return error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "overview",
                "Not recorded",
                m,
            )
        }
    };
    let note = f.note.trim();
    let checkin = crate::store::NewCheckin {
        value,
        confidence,
        note: (!note.is_empty()).then_some(note),
        author: Some("dashboard"),
    };
    match engine.checkin(&id, &checkin).await {
        Ok(()) => (
            StatusCode::SEE_OTHER,
            [(
                header::LOCATION,
                format!("/kr/{}#confidence", urlencode(&id)),
            )],
        )
            .into_response(),
        Err(CheckinError::UnknownKr(k)) => report_error(ReportError::UnknownKr(k), "overview"),
        Err(CheckinError::Store(e)) => {
            tracing::error!(error = format!("{e:#}"), "check-in failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "overview",
                "Not recorded",
                "The check-in could not be stored; try again shortly.".into(),
            )
        }
        Err(e) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "overview",
            "Not recorded",
            format!("{e}."),
        ),
    }
}

/// A path segment, percent-encoded.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---- moves ----------------------------------------------------------------------------

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
struct MovesForm {
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

async fn moves_page(State(s): Shared, Query(f): Query<MovesForm>) -> Response {
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

// ---- unaligned ------------------------------------------------------------------------

struct ProjectView {
    project: String,
    items: usize,
    unaligned: usize,
    share: String,
    share_bar: String,
    unaligned_estimate: String,
    estimate: String,
    estimate_share: String,
    list: Vec<UnalignedView>,
    /// Unaligned items of the project that `list` leaves out.
    hidden: usize,
}

struct UnalignedView {
    source: String,
    key: String,
    title: String,
    url: String,
    category: String,
    estimate: String,
}

#[derive(Template)]
#[template(path = "unaligned.html")]
struct UnalignedPage {
    chrome: Chrome,
    periods: String,
    period: String,
    projects: Vec<ProjectView>,
    total_items: usize,
    total_unaligned: usize,
    problem: Option<String>,
    /// This page with every item listed.
    show_all_href: String,
}

#[derive(Deserialize)]
struct PeriodForm {
    period: Option<String>,
    all: Option<String>,
}

async fn unaligned_page(State(s): Shared, Query(f): Query<PeriodForm>) -> Response {
    let now = clock::now();
    let all = wants_all(f.all.as_deref());
    let period = f.period.unwrap_or_default().trim().to_string();
    let requested = (!period.is_empty()).then_some(period.as_str());
    let mut page = UnalignedPage {
        chrome: Chrome::new("unaligned", now, None),
        periods: String::new(),
        period: period.clone(),
        projects: Vec::new(),
        total_items: 0,
        total_unaligned: 0,
        problem: None,
        show_all_href: String::new(),
    };
    match report::unaligned(s.engine().store(), s.engine().settings(), requested, now).await {
        Ok(doc) => {
            page.periods = doc.periods.join(", ");
            page.total_items = doc.by_project.iter().map(|p| p.items).sum();
            page.total_unaligned = doc.items.len();
            let mut listed: BTreeMap<&str, Vec<UnalignedView>> = BTreeMap::new();
            for i in &doc.items {
                listed
                    .entry(i.project.as_str())
                    .or_default()
                    .push(UnalignedView {
                        source: i.source.clone(),
                        key: i.key.clone(),
                        title: i.title.clone(),
                        url: i.url.clone(),
                        category: i.category.replace('_', " "),
                        estimate: i.estimate.map(view::number).unwrap_or_default(),
                    });
            }
            page.projects = doc
                .by_project
                .iter()
                .map(|p| {
                    let mut list = listed.remove(p.project.as_str()).unwrap_or_default();
                    let hidden = if all {
                        0
                    } else {
                        list.len().saturating_sub(UNALIGNED_SHOWN_PER_PROJECT)
                    };
                    list.truncate(list.len() - hidden);
                    ProjectView {
                        project: p.project.clone(),
                        items: p.items,
                        unaligned: p.unaligned,
                        share: view::percent(p.share),
                        share_bar: view::bar(p.share),
                        unaligned_estimate: view::number(p.unaligned_estimate),
                        estimate: view::number(p.estimate),
                        estimate_share: if p.estimate > 0.0 {
                            view::percent(p.estimate_share)
                        } else {
                            "–".into()
                        },
                        list,
                        hidden,
                    }
                })
                .collect();
            page.show_all_href = if period.is_empty() {
                "/unaligned?all=1".into()
            } else {
                let q: String = url::form_urlencoded::byte_serialize(period.as_bytes()).collect();
                format!("/unaligned?period={q}&all=1")
            };
        }
        Err(ReportError::BadRequest(m)) => page.problem = Some(m),
        Err(e) => return report_error(e, "unaligned"),
    }
    let status = if page.problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_with_status(&page, status)
}

// ---- sources --------------------------------------------------------------------------

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

async fn sources_page(State(s): Shared) -> Response {
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
            mode: r.mode.clone(),
            outcome: r.outcome.clone(),
            ok: r.outcome == "ok",
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
            let (outcome, outcome_class) = match src.last_outcome.as_deref() {
                Some("ok") => ("✓ OK", "ok"),
                Some(_) => ("✕ Failed", "failed"),
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

// ---- lint -----------------------------------------------------------------------------

struct FindingView {
    kind: &'static str,
    kind_label: &'static str,
    kr: Option<String>,
    rule: Option<String>,
    items: Vec<String>,
    message: String,
}

#[derive(Template)]
#[template(path = "lint.html")]
struct LintPage {
    chrome: Chrome,
    findings: Vec<FindingView>,
}

async fn lint_page(State(s): Shared) -> Response {
    use report::lint::LintKind;
    let now = clock::now();
    let doc = match report::lint::lint(s.engine().store(), s.engine().settings()).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "lint"),
    };
    let findings = doc
        .findings
        .into_iter()
        .map(|f| FindingView {
            kind: f.kind.as_str(),
            kind_label: match f.kind {
                LintKind::DoubleCount => "Counted twice",
                LintKind::DeadRule => "Dead rule",
                LintKind::KrWithoutRule => "Key result without a rule",
                LintKind::ShadowedRule => "Shadowed rule",
            },
            kr: f.kr,
            rule: f.rule,
            items: f.items,
            message: f.message,
        })
        .collect();
    render(&LintPage {
        chrome: Chrome::new("lint", now, None),
        findings,
    })
}
