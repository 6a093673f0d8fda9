//! A KR's page (`/kr/{id}`, `?at=` for the KR as of a past time): its history chart, the
//! evidence behind its number, recent changes and the owner's confidence; and the page's
//! check-in form (`POST /kr/{id}/checkin`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::view::{self, When};
use super::{
    chart, error_page, kr_view, render, report_error, wants_all, Chrome, KrView, Shared,
    EVIDENCE_SHOWN,
};
use crate::clock;
use crate::report::{self, ReportError};

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

#[derive(Deserialize)]
pub(super) struct AllForm {
    all: Option<String>,
    /// The KR page as of a past time (RFC 3339 or a date).
    at: Option<String>,
}

pub(super) async fn kr_page(
    State(s): Shared,
    Path(id): Path<String>,
    Query(f): Query<AllForm>,
) -> Response {
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
    let success = (doc.kr.kind == crate::model::KrKind::Aspirational).then_some(doc.kr.success);
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
        manual: doc.kr.measure == crate::model::Measure::Manual,
        writes: matches!(settings.server.api_token(), Ok(Some(_))),
        kr: kr_view(&doc.kr, now),
        objective_title: objective.title.clone(),
        objective_id: objective.id.to_string(),
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

/// The form's fields besides `token`, which the token check in front of every write
/// route reads (`crate::server::guard_writes`, `super::form_token`).
#[derive(Deserialize)]
pub(crate) struct CheckinForm {
    #[serde(default)]
    value: String,
    #[serde(default)]
    confidence: String,
    #[serde(default)]
    note: String,
}

/// `POST /kr/{id}/checkin`: the KR page's form (no script). The API token is a field of
/// the form, checked before this runs; a good check-in answers 303 back to the KR page, a
/// refused one a page that says why.
pub(crate) async fn checkin_form(
    State(s): Shared,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<CheckinForm>,
) -> Response {
    use crate::sync::CheckinError;
    let engine = s.engine();
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
