//! Read responses kept until what they show can have changed: the store's data (a sync
//! step or a check-in recorded, on any replica), the OKRs and rules in force (a reload),
//! or the minute (statuses depend on the time, dashboard pages say "updated 4 min ago").
//! A dashboard audience asks for the same few documents over and over; between two syncs
//! they are the same bytes, served from here after one cheap query for the store's
//! version. The same document asked for by several clients at once is built once.
//!
//! Lists of sources are kept until a lease changes too; `/metrics` (this process's own
//! counters) is not kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::clock;

/// The most a response may weigh to be kept, and all of them together.
const MAX_ENTRY: usize = 8 * 1024 * 1024;
const MAX_TOTAL: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<Entries>,
    /// One lock per request being built, so concurrent misses build it once.
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Entries {
    by_uri: HashMap<String, Kept>,
    bytes: usize,
}

#[derive(Clone)]
struct Kept {
    version: String,
    headers: HeaderMap,
    body: Bytes,
}

impl ResponseCache {
    fn get(&self, uri: &str, version: &str) -> Option<Kept> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .by_uri
            .get(uri)
            .filter(|k| k.version == version)
            .cloned()
    }

    fn put(&self, uri: String, kept: Kept) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = entries.by_uri.remove(&uri) {
            entries.bytes -= old.body.len();
        }
        // Simple and bounded: when full, start again (documents are rebuilt on demand).
        if entries.bytes + kept.body.len() > MAX_TOTAL {
            entries.by_uri.clear();
            entries.bytes = 0;
        }
        entries.bytes += kept.body.len();
        entries.by_uri.insert(uri, kept);
    }

    fn building_lock(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
        if building.len() > 1024 {
            building.retain(|_, l| Arc::strong_count(l) > 1);
        }
        building.entry(uri.to_string()).or_default().clone()
    }
}

/// Whether a GET of this path is kept.
fn kept_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/api/v1/objectives"
            | "/api/v1/moves"
            | "/api/v1/unaligned"
            | "/api/v1/allocation"
            | "/api/v1/lint"
            | "/moves"
            | "/unaligned"
            | "/allocation"
            | "/allocation/items"
            | "/lint"
            | "/api/v1/openapi.json"
    ) || path.starts_with("/api/v1/key-results/")
        || shows_leases(path)
        || path.starts_with("/kr/")
}

/// Pages that show who holds each source's lease: kept until a lease changes hands or is
/// renewed too.
fn shows_leases(path: &str) -> bool {
    matches!(path, "/api/v1/sources" | "/sources")
}

/// The middleware: answers a kept read from the cache when its version still holds.
pub async fn serve(State(s): Shared, mut request: Request, next: Next) -> Response {
    if request.method() != Method::GET || !kept_path(request.uri().path()) {
        return next.run(request).await;
    }
    let engine = s.engine();
    let data = match engine
        .store()
        .data_version(shows_leases(request.uri().path()))
        .await
    {
        Ok(v) => v,
        // The handler reports the store's trouble in its own words.
        Err(_) => return next.run(request).await,
    };
    let version = format!(
        "{data}|{}|{}",
        engine.generation(),
        clock::now().format("%Y-%m-%dT%H:%M")
    );
    let uri = request.uri().to_string();
    let if_none_match = request.headers_mut().remove(header::IF_NONE_MATCH);
    if let Some(kept) = s.cache.get(&uri, &version) {
        return answer(kept, if_none_match.as_ref());
    }
    let lock = s.cache.building_lock(&uri);
    let _building = lock.lock().await;
    if let Some(kept) = s.cache.get(&uri, &version) {
        return answer(kept, if_none_match.as_ref());
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a response to keep it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    let kept = Kept {
        version,
        headers,
        body,
    };
    if kept.body.len() <= MAX_ENTRY {
        s.cache.put(uri, kept.clone());
    }
    answer(kept, if_none_match.as_ref())
}

/// A kept response, or 304 when the client holds it already.
fn answer(kept: Kept, if_none_match: Option<&HeaderValue>) -> Response {
    if let Some(tag) = kept.headers.get(header::ETAG) {
        let held = if_none_match
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .map(|t| t.trim().trim_start_matches("W/"))
                    .any(|t| t.as_bytes() == tag.as_bytes() || t == "*")
            });
        if held {
            let mut headers = HeaderMap::new();
            for name in [header::ETAG, header::CACHE_CONTROL] {
                if let Some(v) = kept.headers.get(&name) {
                    headers.insert(name, v.clone());
                }
            }
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    let mut response = Body::from(kept.body).into_response();
    *response.headers_mut() = kept.headers;
    response
}
