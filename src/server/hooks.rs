//! Webhooks: `POST /hooks/<kind>` for every kind of source that takes them (`github`,
//! `jira`). A delivery is accepted when the kind's proof ([`WebhookAuth`]; for both today an
//! HMAC-SHA256 over the raw body in `X-Hub-Signature-256` or `X-Hub-Signature`:
//! `sha256=<hex>`) verifies with the `webhook_secret` of a source of that kind; each such
//! source is made due at once (`Scheduler::queue_step`), so the replica holding its lease
//! runs an incremental step now instead of at the end of its interval. The payload itself
//! is not trusted as data: the step reads the upstream as usual.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::ExposeSecret;

use super::{error, Shared};
use crate::sources::capabilities_of;
use crate::sources::webhook::WebhookAuth;

/// `POST /hooks/{kind}`.
pub async fn hook(
    State(s): Shared,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = capabilities_of(&kind).and_then(|c| c.webhook) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no kind of source takes webhooks at /hooks/{kind}"),
        );
    };
    receive(&s, &headers, &body, &kind, auth).await
}

async fn receive(
    s: &super::AppState,
    headers: &HeaderMap,
    body: &[u8],
    kind: &str,
    auth: WebhookAuth,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let engine = s.engine();
    let candidates: Vec<(&String, &secrecy::SecretString)> = engine
        .settings()
        .sources
        .iter()
        .filter(|(_, src)| src.kind.kind() == kind)
        .filter_map(|(name, src)| {
            src.webhook_secret
                .as_ref()
                .and_then(|w| w.get().ok())
                .map(|w| (name, w))
        })
        .collect();
    if candidates.is_empty() {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "webhooks are disabled: no {kind} source has webhook_secret_env or webhook_secret_file"
            ),
        );
    }
    let signature = match auth.credential(header) {
        Ok(signature) => signature,
        Err(missing) => return error(StatusCode::UNAUTHORIZED, missing),
    };
    let sources: Vec<String> = candidates
        .into_iter()
        .filter(|(_, secret)| auth.verifies(secret.expose_secret().as_bytes(), body, signature))
        .map(|(name, _)| name.clone())
        .collect();
    if sources.is_empty() {
        return error(
            StatusCode::UNAUTHORIZED,
            "the signature does not match any source's webhook secret",
        );
    }
    if auth.is_ping(header) {
        return (
            StatusCode::OK,
            Json(serde_json::json!({ "pong": true, "sources": sources })),
        )
            .into_response();
    }
    for name in &sources {
        if let Err(e) = s.scheduler.queue_step(engine.store(), name).await {
            tracing::error!(source = %name, error = %e, "cannot queue a webhook-triggered sync");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; the next scheduled sync will pick the change up",
            );
        }
    }
    tracing::info!(kind, sources = ?sources, "webhook accepted; sync queued");
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "queued": sources })),
    )
        .into_response()
}
