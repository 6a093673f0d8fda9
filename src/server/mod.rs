//! The HTTP server `okrsync run` starts: health, readiness and the JSON API of SPEC.md
//! (bodies mirror the CLI's `--json` documents). Write endpoints need the bearer token from
//! `server.api_token_env`; without a configured token they are disabled.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod metrics;

use crate::clock;
use crate::report::{self, ReportError};
use crate::sync::{CheckinError, Engine};

/// A bound server; tests build it on port 0 and read [`Application::port`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

#[derive(Clone)]
struct AppState {
    engine: Engine,
}

impl Application {
    pub async fn build(engine: Engine, listen: SocketAddr) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState { engine });
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(prometheus))
            .route("/api/v1/objectives", get(objectives))
            .route("/api/v1/key-results/{id}", get(key_result))
            .route("/api/v1/key-results/{id}/checkins", post(checkin))
            .route("/api/v1/moves", get(moves))
            .route("/api/v1/unaligned", get(unaligned))
            .route("/api/v1/sync", post(sync_now))
            .with_state(state);
        Ok(Application {
            listener,
            router,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` turns true.
    pub async fn run_until_stopped(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await?;
        Ok(())
    }
}

type Shared = State<Arc<AppState>>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

impl IntoResponse for ReportError {
    fn into_response(self) -> Response {
        match &self {
            ReportError::UnknownKr(_) => error(StatusCode::NOT_FOUND, self.to_string()),
            ReportError::BadRequest(_) => error(StatusCode::BAD_REQUEST, self.to_string()),
            ReportError::Store(e) => {
                tracing::error!(error = %e, "store error while serving a report");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the store is unavailable",
                )
            }
        }
    }
}

async fn readyz(State(s): Shared) -> Response {
    match s.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unreachable: {e}"),
        ),
    }
}

async fn prometheus(State(s): Shared) -> Result<Response, ReportError> {
    let text = metrics::render(s.engine.store(), s.engine.settings(), clock::now()).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn objectives(State(s): Shared) -> Result<Response, ReportError> {
    let doc = report::status(s.engine.store(), s.engine.settings(), clock::now()).await?;
    Ok(Json(doc).into_response())
}

async fn key_result(State(s): Shared, Path(id): Path<String>) -> Result<Response, ReportError> {
    let doc = report::explain(s.engine.store(), s.engine.settings(), &id, clock::now()).await?;
    Ok(Json(doc).into_response())
}

#[derive(Deserialize)]
struct MovesQuery {
    selector: Option<String>,
}

async fn moves(State(s): Shared, Query(q): Query<MovesQuery>) -> Result<Response, ReportError> {
    let selector = q.selector.ok_or_else(|| {
        ReportError::BadRequest(
            "the selector parameter is required, e.g. ?selector=project=PAY".into(),
        )
    })?;
    let doc = report::moves(s.engine.store(), s.engine.settings(), &selector).await?;
    Ok(Json(doc).into_response())
}

#[derive(Deserialize)]
struct UnalignedQuery {
    period: Option<String>,
}

async fn unaligned(
    State(s): Shared,
    Query(q): Query<UnalignedQuery>,
) -> Result<Response, ReportError> {
    let doc = report::unaligned(
        s.engine.store(),
        s.engine.settings(),
        q.period.as_deref(),
        clock::now(),
    )
    .await?;
    Ok(Json(doc).into_response())
}

/// `None` when the request carries the configured bearer token, else the refusal.
fn refuse_unauthorized(s: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &s.engine.settings().server.api_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "write endpoints are disabled: no server.api_token_env is configured",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.expose_secret().as_bytes()) => None,
        _ => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({ "error": "a valid bearer token is required" })),
            )
                .into_response(),
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct CheckinBody {
    value: f64,
    note: Option<String>,
    author: Option<String>,
}

async fn checkin(
    State(s): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<CheckinBody>>,
) -> Response {
    if let Some(refusal) = refuse_unauthorized(&s, &headers) {
        return refusal;
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body like {\"value\": 42}",
        );
    };
    match s
        .engine
        .checkin(
            &id,
            body.value,
            body.note.as_deref(),
            body.author.as_deref(),
        )
        .await
    {
        Ok(()) => {
            match report::explain(s.engine.store(), s.engine.settings(), &id, clock::now()).await {
                Ok(doc) => (StatusCode::CREATED, Json(doc.kr)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(CheckinError::UnknownKr(k)) => {
            error(StatusCode::NOT_FOUND, format!("unknown key result \"{k}\""))
        }
        Err(e @ (CheckinError::NotManual { .. } | CheckinError::BadValue)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(CheckinError::Store(e)) => {
            tracing::error!(error = format!("{e:#}"), "check-in failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the check-in could not be stored",
            )
        }
    }
}

async fn sync_now(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_unauthorized(&s, &headers) {
        return refusal;
    }
    match s.engine.sync_all(false).await {
        Ok(runs) => Json(serde_json::json!({ "runs": runs })).into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "sync requested over HTTP failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the sync could not be recorded",
            )
        }
    }
}
