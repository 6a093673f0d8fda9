//! Faults on demand, the same way for every simulator: a [`Faults`] plan says which request
//! (the n-th whose path contains a pattern, once or from then on) gets which [`Fault`], and
//! [`layer`] — an axum middleware every simulator's router goes through — serves it.
//!
//! Transport and body faults (an error status, a reset mid-body, a body that never ends,
//! truncated or oversized bodies, valid JSON of the wrong shape) are made here from the
//! simulator's real answer. Data faults (an empty page, the same item on two pages, a page
//! token that stops working, a field whose type changed, clock skew, an item deleted
//! between two pages) depend on what the simulator pages through: the middleware hands them
//! to the handler as a [`DataFault`] request extension, and a simulator that has no such
//! thing answers normally (the fault is then not applicable, which [`Faults::fired`] shows).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;

/// An answer the simulator gives instead of the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An error status, with a `Retry-After` and a body when given (else the simulator's
    /// own error body where it has one, or a generic JSON message).
    Status {
        status: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// An error status with these headers (a 403 or 429 that carries rate-limit headers).
    StatusWithHeaders {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// The status and headers of the real answer, half its body, then the connection is
    /// reset.
    ResetMidBody,
    /// The status, headers and half the body of the real answer, then nothing for
    /// [`HANG`]: the client's timeout must end it.
    Hang,
    /// The first half of the real body, ended cleanly (no length announced).
    Truncated,
    /// Valid JSON of another shape than the endpoint's (for CSV: the HTML sign-in page a
    /// spreadsheet that is no longer published answers with).
    WrongShape,
    /// The real body padded with whitespace (still valid) to at least this many bytes.
    Oversized { bytes: usize },
    /// A page with no items in the middle of a listing that says more follow.
    EmptyPage,
    /// The last item of the previous page served again at the start of this one.
    DuplicateItem,
    /// The page token (or cursor) of this request is refused as invalid or expired.
    TokenExpired,
    /// A numeric field of the page's items served as a string (story points "5").
    TypeChanged,
    /// The page's `updated` times an hour ahead (an upstream clock that runs fast).
    ClockSkew,
    /// The last item of the previous page deleted upstream just before this page is read
    /// (offset paging then skips the item that moved into its place).
    DeletedBetweenPages,
}

/// How long [`Fault::Hang`] holds a connection: longer than any timeout a test sets, short
/// enough that a simulator shuts down in bounded time.
pub const HANG: Duration = Duration::from_secs(30);

impl Fault {
    /// Whether the handler must make it (it depends on the data paged through).
    pub fn is_data(&self) -> bool {
        matches!(
            self,
            Fault::EmptyPage
                | Fault::DuplicateItem
                | Fault::TokenExpired
                | Fault::TypeChanged
                | Fault::ClockSkew
                | Fault::DeletedBetweenPages
        )
    }

    /// A short name, for tables.
    pub fn name(&self) -> String {
        match self {
            Fault::Status {
                status,
                retry_after: Some(r),
                ..
            } => format!("{status} with Retry-After: {r}"),
            Fault::Status { status, .. } => status.to_string(),
            Fault::StatusWithHeaders { status, .. } => format!("{status} with rate-limit headers"),
            Fault::ResetMidBody => "connection reset mid-body".into(),
            Fault::Hang => "response that never ends".into(),
            Fault::Truncated => "truncated body".into(),
            Fault::WrongShape => "valid JSON of the wrong shape".into(),
            Fault::Oversized { .. } => "body over the size limit".into(),
            Fault::EmptyPage => "empty page in the middle".into(),
            Fault::DuplicateItem => "same item on two pages".into(),
            Fault::TokenExpired => "page token stops working".into(),
            Fault::TypeChanged => "field type changed (number as string)".into(),
            Fault::ClockSkew => "clock skew in updated (+1 h)".into(),
            Fault::DeletedBetweenPages => "item deleted between two pages".into(),
        }
    }
}

/// The data fault a handler must make for this request.
#[derive(Debug, Clone)]
pub struct DataFault(pub Fault);

/// Which requests get a fault.
#[derive(Debug)]
struct Armed {
    /// Part of the request path that selects the requests counted.
    pattern: String,
    /// Matching requests still to let through before the fault.
    skip: usize,
    /// How many matching requests get it (`usize::MAX`: every one until cleared).
    times: usize,
    fault: Fault,
}

#[derive(Debug, Default)]
struct Plan {
    armed: Vec<Armed>,
    /// Faults served, by short name, in order.
    fired: Vec<Fault>,
}

/// A simulator's fault plan; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Plan>>);

impl Faults {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `nth` request from now (1-based) whose path contains `pattern` gets `fault`,
    /// and so do the `times − 1` matching requests after it (`usize::MAX`: all of them
    /// until [`Faults::clear`]).
    pub fn arm(&self, pattern: &str, nth: usize, times: usize, fault: Fault) {
        self.plan().armed.push(Armed {
            pattern: pattern.to_string(),
            skip: nth.saturating_sub(1),
            times,
            fault,
        });
    }

    /// Disarms every fault not yet served (a healed upstream).
    pub fn clear(&self) {
        self.plan().armed.clear();
    }

    /// The faults served so far, oldest first.
    pub fn fired(&self) -> Vec<Fault> {
        self.plan().fired.clone()
    }

    /// The fault for a request to `path`, if one is armed for it.
    fn take(&self, path: &str) -> Option<Fault> {
        let mut plan = self.plan();
        let mut hit = None;
        for armed in plan.armed.iter_mut() {
            if !path.contains(armed.pattern.as_str()) {
                continue;
            }
            if armed.skip > 0 {
                armed.skip -= 1;
                continue;
            }
            if hit.is_none() && armed.times > 0 {
                armed.times = armed.times.saturating_sub(1);
                hit = Some(armed.fault.clone());
            }
        }
        plan.armed.retain(|a| a.times > 0);
        if let Some(f) = &hit {
            plan.fired.push(f.clone());
        }
        hit
    }
}

/// The middleware: serves the armed fault, if any, around the simulator's handler.
pub async fn layer(State(faults): State<Faults>, mut request: Request, next: Next) -> Response {
    let Some(fault) = faults.take(request.uri().path()) else {
        return next.run(request).await;
    };
    match fault {
        Fault::Status {
            status,
            retry_after,
            body,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| {
                serde_json::json!({
                    "message": format!("Simulated {status}"),
                    "errorMessages": [format!("Simulated {status}")],
                })
                .to_string()
            });
            let mut resp =
                (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::StatusWithHeaders {
            status,
            headers,
            body,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let mut resp =
                (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    header::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        data if data.is_data() => {
            request.extensions_mut().insert(DataFault(data));
            next.run(request).await
        }
        body_fault => corrupt(body_fault, next.run(request).await).await,
    }
}

/// The real answer, damaged as `fault` says.
async fn corrupt(fault: Fault, answer: Response) -> Response {
    let (mut parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    match fault {
        Fault::ResetMidBody => {
            // The full length is announced, half is sent, then the stream errs: hyper
            // closes the connection and the client sees the body end early.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated reset",
                )),
            ];
            Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
        }
        Fault::Hang => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            let rest = bytes.slice(half.len()..);
            let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(half)]).chain(
                futures::stream::once(async move {
                    tokio::time::sleep(HANG).await;
                    Ok(rest)
                }),
            );
            Response::from_parts(parts, Body::from_stream(stream))
        }
        Fault::Truncated => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(half))
        }
        Fault::WrongShape => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let csv = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/csv"));
            if csv {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                let page = "<!DOCTYPE html><html><head><title>Google Sheets - Sign in</title></head><body><p>Sign in to continue to Sheets</p></body></html>";
                Response::from_parts(parts, Body::from(page))
            } else {
                parts.headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let other = serde_json::json!({ "data": { "rows": [1, 2, 3] }, "ok": true });
                Response::from_parts(parts, Body::from(other.to_string()))
            }
        }
        Fault::Oversized { bytes: at_least } => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let mut padded = bytes.to_vec();
            padded.resize(padded.len().max(at_least), b' ');
            Response::from_parts(parts, Body::from(padded))
        }
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_matching_request_gets_the_fault_for_as_many_times_as_armed() {
        let f = Faults::default();
        f.arm("/search", 2, 2, Fault::Truncated);
        assert_eq!(f.take("/myself"), None);
        assert_eq!(f.take("/rest/api/3/search/jql"), None);
        assert_eq!(f.take("/rest/api/3/search/jql"), Some(Fault::Truncated));
        assert_eq!(f.take("/rest/api/3/search/jql"), Some(Fault::Truncated));
        assert_eq!(f.take("/rest/api/3/search/jql"), None);
        assert_eq!(f.fired().len(), 2);
        f.arm("/x", 1, usize::MAX, Fault::Hang);
        for _ in 0..5 {
            assert_eq!(f.take("/x"), Some(Fault::Hang));
        }
        f.clear();
        assert_eq!(f.take("/x"), None);
    }
}
