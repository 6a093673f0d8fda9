//! The HTTP server `okrsync run` starts: health, readiness, Prometheus metrics, the JSON API
//! of SPEC.md (`api`) and the managers' dashboard (`dashboard`). Write endpoints need the
//! bearer token from `server.api_token_env`; without a configured token they are disabled.
//! They are all on one router behind one token check (`writes`, `guard_writes`), so no
//! handler checks the token itself; webhooks check their signatures instead (`hooks`).
//! Reads are open on the listen address unless `server.require_token_for_reads` is set;
//! then they take the token as a bearer token or as the password of HTTP Basic (so a
//! browser can ask for it). `/healthz` and `/readyz` stay open for probes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod api;
pub use api::ApiDoc;
mod cache;
mod dashboard;
mod hooks;
pub use crate::sources::webhook::{signature as hook_signature, verify as verify_hook_signature};
mod metrics;

use crate::clock;
use crate::report::ReportError;
use crate::sync::{Engine, Scheduler, SharedEngine};

/// A bound server; tests build it on port 0 and read [`Application::port`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

pub(crate) struct AppState {
    shared: SharedEngine,
    /// The daemon's scheduler: webhooks queue steps with it, `POST /api/v1/sync` runs
    /// them through it (on the lease path of its own steps).
    scheduler: Arc<Scheduler>,
    unaligned: metrics::UnalignedCache,
    cache: cache::ResponseCache,
}

impl AppState {
    /// The engine in force now (a reload swaps it).
    fn engine(&self) -> Engine {
        self.shared.current()
    }
}

impl Application {
    pub async fn build(engine: Engine, listen: SocketAddr) -> anyhow::Result<Application> {
        let scheduler = Arc::new(Scheduler::new());
        Application::build_shared(SharedEngine::new(engine), scheduler, listen).await
    }

    /// A server over the engine the daemon shares with its scheduler and reloads; sync
    /// steps it is asked for (webhooks, `POST /api/v1/sync`) go through `scheduler`.
    pub async fn build_shared(
        shared: SharedEngine,
        scheduler: Arc<Scheduler>,
        listen: SocketAddr,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            shared,
            scheduler,
            unaligned: metrics::UnalignedCache::default(),
            cache: cache::ResponseCache::default(),
        });
        let reads = Router::new()
            .route("/metrics", get(prometheus))
            .route("/api/v1/openapi.json", get(api::openapi))
            .route("/api/v1/objectives", get(api::objectives))
            .route("/api/v1/key-results/{id}", get(api::key_result))
            .route("/api/v1/key-results/{id}/history", get(api::history))
            .route("/api/v1/moves", get(api::moves))
            .route("/api/v1/unaligned", get(api::unaligned))
            .route("/api/v1/allocation", get(api::allocation))
            .route("/api/v1/digest", get(api::digest))
            .route("/api/v1/sources", get(api::sources))
            .route("/api/v1/lint", get(api::lint))
            .merge(dashboard::routes())
            // Inside the guard: a kept response is served to those allowed to read only.
            .route_layer(middleware::from_fn_with_state(state.clone(), cache::serve))
            .route_layer(middleware::from_fn_with_state(state.clone(), guard_reads));
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            // Webhooks prove themselves by their signatures (`hooks`), not by the token.
            .route("/hooks/{kind}", post(hooks::hook))
            .merge(writes(&state))
            .layer(axum::extract::DefaultBodyLimit::max(25 * 1024 * 1024))
            .merge(reads)
            .layer(middleware::from_fn(security_headers))
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

    /// The routes, to answer requests in process (the fuzz targets) without the socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves until `shutdown` turns true.
    pub async fn run_until_stopped(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        use axum::serve::ListenerExt;
        // Answers go out without Nagle's delay: a large document's last segment is not
        // held back until the client acknowledges the one before (up to 40 ms).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router)
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
            ReportError::Store(e) if e.is_unreachable() => {
                tracing::warn!(error = %e, "the database is unreachable while serving a report");
                let mut resp = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unreachable; try again shortly (see /readyz)",
                );
                resp.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                );
                resp
            }
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

/// Ready when the config is loaded (it is, once the server runs), the database answers
/// within 3 s and every migration this binary knows is applied.
async fn readyz(State(s): Shared) -> Response {
    let engine = s.engine();
    let store = engine.store();
    let check = async {
        store
            .ping()
            .await
            .map_err(|e| format!("database unreachable: {e}"))?;
        if let Some(why) = store.unwritable() {
            return Err(format!(
                "the database cannot be written ({why}); sync steps fail until there is space"
            ));
        }
        match store.pending_migrations().await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!(
                "{n} database migration(s) not applied; run okrsync migrate"
            )),
            Err(e) => Err(format!("cannot read the applied migrations: {e}")),
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), check).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(why)) => error(StatusCode::SERVICE_UNAVAILABLE, why),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable: no answer within 3 s",
        ),
    }
}

async fn prometheus(State(s): Shared) -> Result<Response, ReportError> {
    let engine = s.engine();
    let text = metrics::render(
        engine.store(),
        engine.settings(),
        &s.unaligned,
        clock::now(),
    )
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Whether `given` is the API token (compared in constant time).
fn token_matches(s: &AppState, given: &str) -> bool {
    let engine = s.engine();
    let Ok(Some(token)) = engine.settings().server.api_token() else {
        return false;
    };
    !given.is_empty() && constant_time_eq(given.as_bytes(), token.expose_secret().as_bytes())
}

/// Whether the request carries the configured token: `Authorization: Bearer <token>`, or
/// HTTP Basic with the token as password (any user name).
fn has_token(s: &AppState, headers: &HeaderMap) -> bool {
    let engine = s.engine();
    let Ok(Some(token)) = engine.settings().server.api_token() else {
        return false;
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let given = if let Some(b) = value.strip_prefix("Bearer ") {
        b.trim().to_string()
    } else if let Some(b) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((_, password)) => password.to_string(),
            None => return false,
        }
    } else {
        return false;
    };
    constant_time_eq(given.as_bytes(), token.expose_secret().as_bytes())
}

fn unauthorized(message: &str) -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response();
    let h = resp.headers_mut();
    h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"okrsync\", charset=\"UTF-8\""),
    );
    resp
}

/// Every route that changes something, each behind [`guard_writes`]: a write route added
/// here cannot be open by accident, and one added anywhere else is a mistake. Two groups,
/// for where the token travels: the JSON API's header, the dashboard forms' field.
fn writes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let guard =
        |from: TokenFrom| middleware::from_fn_with_state((state.clone(), from), guard_writes);
    let api = Router::new()
        .route("/api/v1/key-results/{id}/checkins", post(api::checkin))
        .route("/api/v1/sync", post(api::sync_now))
        .route_layer(guard(TokenFrom::Header));
    let forms = dashboard::write_routes().route_layer(guard(TokenFrom::FormField));
    api.merge(forms)
}

/// Where a group of write routes takes the API token from, and how it says no.
#[derive(Clone, Copy, Debug)]
enum TokenFrom {
    /// `Authorization: Bearer <token>` or the password of HTTP Basic (the JSON API): a
    /// refusal is JSON, a 401 with both challenges.
    Header,
    /// The form's `token` field (a dashboard page has no script to set a header): a
    /// refusal is a page that says why.
    FormField,
}

/// Why a write is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No token is configured: writes are disabled, not open (403).
    Disabled,
    /// The token is missing or not this server's (401).
    WrongToken,
}

/// The one decision for every write: `None` when it may go ahead.
fn write_refusal(s: &AppState, token_given: bool) -> Option<Refusal> {
    if !matches!(s.engine().settings().server.api_token(), Ok(Some(_))) {
        Some(Refusal::Disabled)
    } else if !token_given {
        Some(Refusal::WrongToken)
    } else {
        None
    }
}

/// The token check in front of every write route: 403 when writes are disabled (no token
/// configured), 401 without the right token; the handler runs only with it. It answers
/// before the handler reads anything, so a request without the token is refused even when
/// its body, or its method, would not have been accepted either. A form's fields are
/// read here as the handler reads them (same limit, same answers to a body that is not a
/// form, or has no `token`), and handed on to it.
async fn guard_writes(
    State((s, from)): State<(Arc<AppState>, TokenFrom)>,
    request: Request,
    next: Next,
) -> Response {
    match from {
        TokenFrom::Header => match write_refusal(&s, has_token(&s, request.headers())) {
            None => next.run(request).await,
            Some(Refusal::Disabled) => error(
                StatusCode::FORBIDDEN,
                "write endpoints are disabled: no server.api_token_env is configured",
            ),
            Some(Refusal::WrongToken) => unauthorized("a valid bearer token is required"),
        },
        TokenFrom::FormField => {
            let (token, request) = match dashboard::form_token(request).await {
                Ok(read) => read,
                Err(rejection) => return rejection,
            };
            match write_refusal(&s, token_matches(&s, token.trim())) {
                None => next.run(request).await,
                Some(refusal) => dashboard::write_refused(refusal),
            }
        }
    }
}

/// Lets reads through unless `server.require_token_for_reads` is set and the token is missing.
async fn guard_reads(State(s): Shared, request: Request, next: Next) -> Response {
    if s.engine().settings().server.require_token_for_reads && !has_token(&s, request.headers()) {
        return unauthorized("this server requires the API token for reads");
    }
    next.run(request).await
}

/// Compares the SHA-256 digests of both in constant time: neither the position of the first
/// difference nor the token's length shows in the time taken.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The content security policy of every answer: the dashboard is server-rendered HTML with
/// one stylesheet of its own, inline SVG and GET forms; no script, no frame, nothing from
/// elsewhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Headers every answer carries: the policy above, no MIME sniffing, no framing, no referrer
/// sent to other sites.
async fn security_headers(request: Request, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
