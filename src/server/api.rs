//! The JSON API of SPEC.md under `/api/v1`: bodies mirror the CLI's `--json` documents.
//! Reads carry an `ETag` (a hash of the body) and answer `If-None-Match` with 304; every
//! handler is described for the OpenAPI document served at `/api/v1/openapi.json`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{error, Shared};
use crate::clock;
use crate::report::{self, ExplainDoc, MovesDoc, ReportError, SourcesDoc, StatusDoc, UnalignedDoc};
use crate::store::NewCheckin;
use crate::store::SyncRun;
use crate::sync::CheckinError;

/// The body of every refusal and error: what went wrong, in words.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CheckinBody {
    /// A manual KR's new current value.
    pub value: Option<f64>,
    /// The owner's confidence, 0–10 (any KR; never changes a computed value).
    pub confidence: Option<f64>,
    pub note: Option<String>,
    pub author: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncResponse {
    /// One entry per source, in configuration order.
    pub runs: Vec<SyncRun>,
}

#[derive(Deserialize, IntoParams)]
pub struct MovesQuery {
    /// `project=PAY`, `repo=acme/web`, `epic=PAY-1`, `label=x` or `item=PAY-12`;
    /// several joined with `&` (URL-encoded) select their intersection.
    pub selector: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct PeriodQuery {
    /// A period like `2026-Q4`; default: the periods of the objectives active now.
    pub period: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct AllocationQuery {
    /// A period like `2026-Q4`; default: the periods of the objectives active now.
    pub period: Option<String>,
    /// `project` (default): a row per project; `objective`: a row per objective, with
    /// `exempt` and `unaligned` rows, and the projects as columns.
    pub by: Option<String>,
    /// `true` (or `1`) adds the weekly series to every row.
    pub weeks: Option<String>,
    /// `json` (default) or `csv` (the CLI's `--csv`).
    pub format: Option<String>,
}

/// A query flag: present and not `0`, `false` or empty.
fn flag(v: Option<&str>) -> bool {
    v.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "okrsync",
        description = "OKR progress synced from Jira, GitHub and spreadsheets, with the evidence behind every number. Bodies mirror the CLI's --json documents."
    ),
    paths(objectives, key_result, history, moves, unaligned, allocation, digest, sources, lint, checkin, sync_now),
    components(schemas(ErrorBody, CheckinBody, SyncResponse)),
    modifiers(&BearerScheme),
    tags((name = "reports", description = "Progress, evidence and alignment, read from the store"),
         (name = "writes", description = "Need Authorization: Bearer <server.api_token_env>"))
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`, generated from the handlers' annotations.
pub async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// A JSON body with a strong `ETag`; `304 Not Modified` when the client already has it.
pub fn json_with_etag<T: Serialize>(request: &HeaderMap, doc: &T) -> Response {
    let body = match serde_json::to_vec(doc) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a report");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot serialize the report",
            );
        }
    };
    let digest = Sha256::digest(&body);
    let tag = hex::encode(&digest[..16]);
    let etag = format!("\"{tag}\"");
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Objectives and KRs with progress, current, target and status (`okrsync status --json`).
#[utoipa::path(get, path = "/api/v1/objectives", tag = "reports",
    responses((status = 200, body = StatusDoc), (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn objectives(State(s): Shared, headers: HeaderMap) -> Result<Response, ReportError> {
    let doc = report::status(s.engine().store(), s.engine().settings(), clock::now()).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// One KR with its history and evidence (`okrsync explain KR --json`).
#[utoipa::path(get, path = "/api/v1/key-results/{id}", tag = "reports",
    params(("id" = String, Path, description = "The KR id, e.g. payments.checkout"), AtQuery),
    responses((status = 200, body = ExplainDoc), (status = 304, description = "Not modified"),
        (status = 404, body = ErrorBody, description = "No such KR")))]
pub async fn key_result(
    State(s): Shared,
    Path(id): Path<String>,
    Query(q): Query<AtQuery>,
    headers: HeaderMap,
) -> Result<Response, ReportError> {
    let engine = s.engine();
    let doc = match q.at.as_deref().filter(|a| !a.is_empty()) {
        Some(at) => {
            let at = report::parse_at(at)?;
            report::explain_at(engine.store(), engine.settings(), &id, at).await?
        }
        None => report::explain(engine.store(), engine.settings(), &id, clock::now()).await?,
    };
    Ok(json_with_etag(&headers, &doc))
}

/// `?at=`: the KR as its last snapshot at or before then showed it.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct AtQuery {
    /// RFC 3339, or a date meaning the end of that day (UTC).
    pub at: Option<String>,
}

/// Every snapshot of a KR with its cause and the items that entered, left or changed
/// (`okrsync history KR --json`).
#[utoipa::path(get, path = "/api/v1/key-results/{id}/history", tag = "reports",
    params(("id" = String, Path, description = "The KR id")),
    responses((status = 200, body = report::HistoryDoc), (status = 304, description = "Not modified"),
        (status = 404, body = ErrorBody, description = "No such KR")))]
pub async fn history(
    State(s): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ReportError> {
    let engine = s.engine();
    let doc = report::history(engine.store(), engine.settings(), &id).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// Which KRs the selected items move, and with what share (`okrsync moves --json`).
#[utoipa::path(get, path = "/api/v1/moves", tag = "reports", params(MovesQuery),
    responses((status = 200, body = MovesDoc), (status = 304, description = "Not modified"),
        (status = 400, body = ErrorBody, description = "Missing or malformed selector")))]
pub async fn moves(
    State(s): Shared,
    Query(q): Query<MovesQuery>,
    headers: HeaderMap,
) -> Result<Response, ReportError> {
    let selector = q.selector.ok_or_else(|| {
        ReportError::BadRequest(
            "the selector parameter is required, e.g. ?selector=project=PAY".into(),
        )
    })?;
    let doc = report::moves(s.engine().store(), s.engine().settings(), &selector).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// Started or finished work in the period that moves no KR (`okrsync unaligned --json`).
#[utoipa::path(get, path = "/api/v1/unaligned", tag = "reports", params(PeriodQuery),
    responses((status = 200, body = UnalignedDoc), (status = 304, description = "Not modified"),
        (status = 400, body = ErrorBody, description = "Malformed period")))]
pub async fn unaligned(
    State(s): Shared,
    Query(q): Query<PeriodQuery>,
    headers: HeaderMap,
) -> Result<Response, ReportError> {
    let doc = report::unaligned(
        s.engine().store(),
        s.engine().settings(),
        q.period.as_deref(),
        clock::now(),
    )
    .await?;
    Ok(json_with_etag(&headers, &doc))
}

/// Where the period's effort goes: per project over the objectives its items move, exempt
/// and unaligned (`okrsync allocation --json`, or `--csv` with `format=csv`).
#[utoipa::path(get, path = "/api/v1/allocation", tag = "reports", params(AllocationQuery),
    responses((status = 200, body = report::allocation::AllocationDoc,
            description = "The allocation document (text/csv with format=csv)"),
        (status = 304, description = "Not modified"),
        (status = 400, body = ErrorBody, description = "Malformed period, by or format")))]
pub async fn allocation(
    State(s): Shared,
    Query(q): Query<AllocationQuery>,
    headers: HeaderMap,
) -> Result<Response, ReportError> {
    use report::allocation as a;
    let by = a::By::parse(q.by.as_deref().unwrap_or(""))?;
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ReportError::BadRequest(format!(
                "unknown format \"{other}\": expected json or csv"
            )))
        }
    };
    let period = q.period.as_deref().filter(|p| !p.trim().is_empty());
    let doc = a::allocation(
        s.engine().store(),
        s.engine().settings(),
        period,
        by,
        flag(q.weeks.as_deref()),
        clock::now(),
    )
    .await?;
    if csv {
        let name = format!(
            "attachment; filename=\"allocation-{}.csv\"",
            doc.period.replace([',', ' ', '"'], "")
        );
        let mut resp = (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            a::render_csv(&doc),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&name) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(resp);
    }
    Ok(json_with_etag(&headers, &doc))
}

/// Every source with its last sync, outcome, error and next run (an extension of SPEC.md).
#[utoipa::path(get, path = "/api/v1/sources", tag = "reports",
    responses((status = 200, body = SourcesDoc), (status = 304, description = "Not modified")))]
pub async fn sources(State(s): Shared, headers: HeaderMap) -> Result<Response, ReportError> {
    let doc = report::sources(s.engine().store(), s.engine().settings(), 10).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// Findings about the rules: double counts, dead and shadowed rules, KRs no rule names
/// (`okrsync lint --json`).
#[utoipa::path(get, path = "/api/v1/lint", tag = "reports",
    responses((status = 200, body = report::lint::LintDoc), (status = 304, description = "Not modified")))]
pub async fn lint(State(s): Shared, headers: HeaderMap) -> Result<Response, ReportError> {
    let doc = report::lint::lint(s.engine().store(), s.engine().settings()).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// The weekly digest of the seven days before now (`okrsync digest --json`): per objective
/// its progress and change, the KRs that moved and those needing attention; the largest
/// unaligned work.
#[utoipa::path(get, path = "/api/v1/digest", tag = "reports",
    responses((status = 200, body = report::digest::DigestDoc), (status = 304, description = "Not modified")))]
pub async fn digest(State(s): Shared, headers: HeaderMap) -> Result<Response, ReportError> {
    let doc =
        report::digest::digest(s.engine().store(), s.engine().settings(), clock::now()).await?;
    Ok(json_with_etag(&headers, &doc))
}

/// Records a check-in (`okrsync checkin KR [VALUE] [--confidence N] [--note TEXT]`): a
/// manual KR's value and/or the owner's confidence 0–10 in any KR.
#[utoipa::path(post, path = "/api/v1/key-results/{id}/checkins", tag = "writes",
    params(("id" = String, Path, description = "A KR's id (a value only for manual KRs)")),
    request_body = CheckinBody,
    security(("bearer" = [])),
    responses((status = 201, body = report::KrStatus, description = "The KR after the check-in"),
        (status = 400, body = ErrorBody, description = "Not a JSON body"),
        (status = 401, body = ErrorBody, description = "Missing or wrong bearer token"),
        (status = 403, body = ErrorBody, description = "Writes are disabled: no token configured"),
        (status = 404, body = ErrorBody, description = "No such KR"),
        (status = 422, body = ErrorBody, description = "A value for a KR that is not manual, not a finite value, a confidence outside 0–10, or neither value nor confidence")))]
pub async fn checkin(
    State(s): Shared,
    Path(id): Path<String>,
    body: Option<Json<CheckinBody>>,
) -> Response {
    // The token was checked in front of every write route (`super::guard_writes`).
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body like {\"value\": 42} or {\"confidence\": 7, \"note\": \"…\"}",
        );
    };
    match s
        .engine()
        .checkin(
            &id,
            &NewCheckin {
                value: body.value,
                confidence: body.confidence,
                note: body.note.as_deref(),
                author: body.author.as_deref(),
            },
        )
        .await
    {
        Ok(()) => {
            match report::explain(s.engine().store(), s.engine().settings(), &id, clock::now())
                .await
            {
                Ok(doc) => (StatusCode::CREATED, Json(doc.kr)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(CheckinError::UnknownKr(k)) => {
            error(StatusCode::NOT_FOUND, format!("unknown key result \"{k}\""))
        }
        Err(
            e @ (CheckinError::NotManual { .. }
            | CheckinError::BadValue
            | CheckinError::BadConfidence
            | CheckinError::Empty),
        ) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(CheckinError::Store(e)) => {
            tracing::error!(error = format!("{e:#}"), "check-in failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the check-in could not be stored",
            )
        }
    }
}

/// One incremental pass over every source now (`okrsync sync`).
#[utoipa::path(post, path = "/api/v1/sync", tag = "writes",
    security(("bearer" = [])),
    responses((status = 200, body = SyncResponse),
        (status = 401, body = ErrorBody, description = "Missing or wrong bearer token"),
        (status = 403, body = ErrorBody, description = "Writes are disabled: no token configured")))]
pub async fn sync_now(State(s): Shared) -> Response {
    // The token was checked in front of every write route (`super::guard_writes`).
    // Each source's step under its lease, as the scheduler runs it (with its write-back);
    // one another replica holds is run there and waited for.
    match s.scheduler.step_all_now(&s.shared).await {
        Ok(runs) => Json(SyncResponse { runs }).into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "sync requested over HTTP failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the sync could not be recorded",
            )
        }
    }
}
