//! Webhooks: `POST /hooks/github` and `POST /hooks/jira`. A hook is accepted when its HMAC
//! (SHA-256 over the raw body, `X-Hub-Signature-256` or `X-Hub-Signature`: `sha256=<hex>`)
//! verifies with the `webhook_secret` of a source of that kind; each such source is made
//! due at once, so the replica holding its lease runs an incremental step now instead of
//! at the end of its interval. The payload itself is not trusted as data: the step reads
//! the upstream as usual.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::{error, Shared};
use crate::settings::SourceKind;

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = hex::decode(hex).ok() else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `X-Hub-Signature-256` value of `body` under `secret`: `sha256=` and the hex HMAC
/// (what a sender computes; [`verify`] checks it).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub async fn github(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("x-github-event").and_then(|v| v.to_str().ok()) == Some("ping") {
        return receive(&s, &headers, &body, "github", true).await;
    }
    receive(&s, &headers, &body, "github", false).await
}

pub async fn jira(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    receive(&s, &headers, &body, "jira", false).await
}

async fn receive(
    s: &super::AppState,
    headers: &HeaderMap,
    body: &[u8],
    kind: &str,
    ping: bool,
) -> Response {
    let engine = s.engine();
    let candidates: Vec<(&String, &secrecy::SecretString)> = engine
        .settings()
        .sources
        .iter()
        .filter(|(_, src)| {
            matches!(
                (&src.kind, kind),
                (SourceKind::GitHub(_), "github") | (SourceKind::Jira(_), "jira")
            )
        })
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
    let Some(signature) = headers
        .get("x-hub-signature-256")
        .or_else(|| headers.get("x-hub-signature"))
        .and_then(|v| v.to_str().ok())
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing X-Hub-Signature-256 (sha256=<HMAC of the body>)",
        );
    };
    let sources: Vec<String> = candidates
        .into_iter()
        .filter(|(_, secret)| verify(secret.expose_secret().as_bytes(), body, signature))
        .map(|(name, _)| name.clone())
        .collect();
    if sources.is_empty() {
        return error(
            StatusCode::UNAUTHORIZED,
            "the signature does not match any source's webhook secret",
        );
    }
    if ping {
        return (
            StatusCode::OK,
            Json(serde_json::json!({ "pong": true, "sources": sources })),
        )
            .into_response();
    }
    for name in &sources {
        if let Err(e) = engine.store().make_due(name).await {
            tracing::error!(source = %name, error = %e, "cannot queue a webhook-triggered sync");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable; the next scheduled sync will pick the change up",
            );
        }
        s.wakers.wake(name);
    }
    tracing::info!(kind, sources = ?sources, "webhook accepted; sync queued");
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "queued": sources })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::verify;

    #[test]
    fn github_documented_signature_verifies() {
        // The example from GitHub's "Validating webhook deliveries" documentation.
        assert!(verify(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
        assert!(!verify(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
        assert!(!verify(b"secret", b"body", "sha1=abc"));
        assert!(verify(b"k", b"body", &super::signature(b"k", b"body")));
        assert!(!verify(b"secret", b"body", "sha256=zz"));
    }
}
