//! The HTTP client every polling source shares: a per-source rate limiter (governor),
//! timeouts, `Retry-After` on 429/503, exponential backoff with full jitter on 5xx and
//! transport errors, and a request counter. An answer keeps its body as bytes, so a
//! source can read it with a parser that borrows from them ([`HttpResponse::json`]).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::SourceError;

/// Tuning of one source's HTTP behaviour (from the source's config section).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Steady request rate allowed by the limiter.
    pub requests_per_second: f64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt for 5xx, timeouts and rate limits.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry, with jitter.
    pub backoff_base: Duration,
    /// A `Retry-After` longer than this fails the step instead of sleeping.
    pub max_retry_after: Duration,
    /// PEM roots trusted besides the system's and the built-in ones (`ca_file`: Jira Data
    /// Center or GitHub Enterprise behind a company CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// An answer's body may be at most this long (`max_response_size`); a longer one fails
    /// the step (a misconfigured proxy or a runaway export must not fill the memory).
    pub max_response_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            requests_per_second: 10.0,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(300),
            ca_file: None,
            max_response_bytes: 64 << 20,
        }
    }
}

/// Reads the certificates of a PEM file (`ca_file`); an error in words when the file cannot
/// be read or holds no certificate.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// How a request authenticates. Secrets are exposed only to build the header.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic {
        user: String,
        password: SecretString,
    },
    Bearer(SecretString),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { user, .. } => write!(f, "Auth::Basic({user}, [REDACTED])"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer([REDACTED])"),
        }
    }
}

impl Auth {
    /// `text` with every credential of this `Auth` (and the Basic header made of them)
    /// replaced by `[REDACTED]`.
    pub fn redact(&self, text: String) -> String {
        use base64::Engine as _;
        let secrets: Vec<String> = match self {
            Auth::None => Vec::new(),
            Auth::Basic { user, password } => vec![
                password.expose_secret().to_string(),
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose_secret())),
            ],
            Auth::Bearer(token) => vec![token.expose_secret().to_string()],
        };
        secrets
            .iter()
            .filter(|s| s.len() >= 4)
            .fold(text, |t, s| t.replace(s.as_str(), "[REDACTED]"))
    }
}

/// A request body.
enum Body<'a> {
    Json(&'a serde_json::Value),
    Raw(String),
}

/// A successful answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    pub url: Url,
}

impl HttpResponse {
    /// Decodes the JSON body as `T`, which may borrow from it (`&str`, `Cow<str>`): the
    /// answer must then outlive what is read, so sources build their owned items from it
    /// before dropping the response.
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T, SourceError> {
        serde_json::from_slice(&self.body).map_err(|e| self.parse_error(e))
    }

    /// The error for a body that cannot be read as expected, naming this request.
    pub fn parse_error(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError::Parse {
            url: self.url.to_string(),
            message: e.to_string(),
        }
    }
}

/// One source's client.
#[derive(Clone)]
pub struct HttpClient {
    source: String,
    client: reqwest::Client,
    limiter: Arc<DefaultDirectRateLimiter>,
    settings: HttpSettings,
    sent: Arc<AtomicU64>,
}

impl HttpClient {
    pub fn new(source: &str, settings: HttpSettings) -> Result<HttpClient, SourceError> {
        // The system's roots (the OS store, or SSL_CERT_FILE) and the built-in list are both
        // trusted; `ca_file` adds a company CA.
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("okrsync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            for cert in read_ca_file(path).map_err(SourceError::Other)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| SourceError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            source: source.to_string(),
            client,
            limiter: Arc::new(RateLimiter::direct(quota(settings.requests_per_second))),
            settings,
            sent: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Slows down before an upstream's request budget is gone: when the header `remaining`
    /// says `floor` or fewer requests are left, waits until the epoch second in `reset`
    /// (GitHub's `x-ratelimit-*`, GitLab's `RateLimit-*`); fails rather than wait longer than
    /// `max_retry_after`. Answers without both headers go on at once.
    pub async fn pace(
        &self,
        headers: &HeaderMap,
        (remaining, reset): (&str, &str),
        floor: u64,
    ) -> Result<(), SourceError> {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (Some(left), Some(reset)) = (num(remaining), num(reset)) else {
            return Ok(());
        };
        if left > floor {
            return Ok(());
        }
        let wait =
            Duration::from_secs(reset.saturating_sub(chrono::Utc::now().timestamp().max(0) as u64));
        if wait > self.settings.max_retry_after {
            return Err(SourceError::RateLimited {
                wait_secs: wait.as_secs(),
                max_secs: self.settings.max_retry_after.as_secs(),
            });
        }
        tracing::warn!(source = %self.source, remaining = left, wait_ms = wait.as_millis() as u64, "rate limit nearly used up; waiting for the reset");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// GET `url`; the answer's body can then be read by a parser that borrows from it
    /// ([`HttpResponse::json`]).
    pub async fn get(&self, url: Url, auth: &Auth) -> Result<HttpResponse, SourceError> {
        self.send(Method::GET, url, auth, &[]).await
    }

    /// GET `url` and decode a JSON body into an owned value.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        auth: &Auth,
    ) -> Result<T, SourceError> {
        self.get(url, auth).await?.json()
    }

    /// Sends a request with retries. Returns any 2xx or 304; everything else is an error.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        auth: &Auth,
        headers: &[(&str, String)],
    ) -> Result<HttpResponse, SourceError> {
        self.send_body(method, url, auth, headers, None).await
    }

    /// POST a form (`application/x-www-form-urlencoded`), as OAuth token endpoints want.
    pub async fn send_form(&self, url: Url, form: String) -> Result<HttpResponse, SourceError> {
        self.send_body(
            Method::POST,
            url,
            &Auth::None,
            &[(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )],
            Some(Body::Raw(form)),
        )
        .await
    }

    /// Sends a JSON body (or none) with `method` and the same retries (write-back: the
    /// requests are idempotent, so a retry after a lost answer changes nothing).
    pub async fn send_json(
        &self,
        method: Method,
        url: Url,
        auth: &Auth,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, SourceError> {
        self.send_body(method, url, auth, &[], body.map(Body::Json))
            .await
    }

    /// POST a JSON body (GraphQL) with the same retries.
    pub async fn post(
        &self,
        url: Url,
        auth: &Auth,
        body: &serde_json::Value,
    ) -> Result<HttpResponse, SourceError> {
        self.send_body(Method::POST, url, auth, &[], Some(Body::Json(body)))
            .await
    }

    // The URL goes into the span without its query (a JQL or a cursor can be long) and in
    // its short form, not as a `Url { scheme: … }` dump.
    #[tracing::instrument(
        skip(self, method, url, auth, headers, body),
        fields(source = %self.source, method = %method, url = %redact(&url))
    )]
    async fn send_body(
        &self,
        method: Method,
        url: Url,
        auth: &Auth,
        headers: &[(&str, String)],
        body: Option<Body<'_>>,
    ) -> Result<HttpResponse, SourceError> {
        // (The request's headers: `headers` below is the answer's.)
        let sent = headers;
        let mut attempt: u32 = 0;
        loop {
            self.limiter.until_ready().await;
            self.sent.fetch_add(1, Ordering::Relaxed);
            let mut req = self.client.request(method.clone(), url.clone());
            req = match auth {
                Auth::None => req,
                Auth::Basic { user, password } => {
                    req.basic_auth(user, Some(password.expose_secret()))
                }
                Auth::Bearer(token) => {
                    req.header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
                }
            };
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            match &body {
                Some(Body::Json(b)) => req = req.json(b),
                Some(Body::Raw(b)) => req = req.body(b.clone()),
                None => {}
            }
            let asked = std::time::Instant::now();
            let answer = req.send().await;
            match &answer {
                Err(_) => super::stats::record(&self.source, None, asked.elapsed(), None),
                Ok(resp) => super::stats::record(
                    &self.source,
                    Some(resp.status().as_u16()),
                    asked.elapsed(),
                    // GitHub's header, or GitLab's (`RateLimit-Remaining`).
                    resp.headers()
                        .get("x-ratelimit-remaining")
                        .or_else(|| resp.headers().get("ratelimit-remaining"))
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse().ok()),
                ),
            }
            let wait = match answer {
                Err(e) => {
                    let message = if e.is_timeout() {
                        format!("timed out after {:?}", self.settings.timeout)
                    } else {
                        cause_chain(&e)
                    };
                    // Waiting does not make an untrusted certificate trusted.
                    if let Some(hint) = permanent_transport_error(&e) {
                        return Err(SourceError::Transport {
                            url: redact(&url),
                            message: format!("{message} ({hint}; not retried)"),
                        });
                    }
                    if attempt >= self.settings.max_retries {
                        return Err(SourceError::Transport {
                            url: redact(&url),
                            message,
                        });
                    }
                    tracing::warn!(source = %self.source, attempt, error = %message, "request failed; retrying");
                    self.backoff(attempt)
                }
                Ok(resp) => 'answer: {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = match self.read_body(resp).await {
                        Ok(body) => body,
                        Err(BodyError::TooLarge) => {
                            return Err(SourceError::TooLarge {
                                url: redact(&url),
                                limit: self.settings.max_response_bytes,
                            })
                        }
                        Err(BodyError::Broken(message)) => {
                            // A reset or a timeout mid-body: the same as one before the
                            // answer (retried, then the step fails).
                            let message = format!("the answer ({status}) broke off: {message}");
                            if attempt >= self.settings.max_retries {
                                return Err(SourceError::Transport {
                                    url: redact(&url),
                                    message,
                                });
                            }
                            tracing::warn!(source = %self.source, attempt, error = %message, "request failed; retrying");
                            break 'answer self.backoff(attempt);
                        }
                    };
                    if status.is_success() || status == StatusCode::NOT_MODIFIED {
                        return Ok(HttpResponse {
                            status,
                            headers,
                            body,
                            url,
                        });
                    }
                    let retry_after = retry_after(&headers);
                    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
                        || (status == StatusCode::FORBIDDEN
                            && (retry_after.is_some()
                                || headers
                                    .get("x-ratelimit-remaining")
                                    .and_then(|v| v.to_str().ok())
                                    == Some("0")));
                    // An upstream (or a proxy) may echo the credentials it was sent: the
                    // client's, and any sent as a header of their own (Google's API key).
                    let message = sent
                        .iter()
                        .filter(|(k, _)| {
                            let k = k.to_ascii_lowercase();
                            k.contains("key") || k.contains("token") || k.contains("auth")
                        })
                        .filter(|(_, v)| v.len() >= 4)
                        .fold(auth.redact(error_message(&body)), |m, (_, v)| {
                            m.replace(v.as_str(), "[REDACTED]")
                        });
                    if !rate_limited
                        && (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN)
                    {
                        return Err(SourceError::Auth {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    let retryable = rate_limited || status.is_server_error();
                    if !retryable || attempt >= self.settings.max_retries {
                        return Err(SourceError::Status {
                            method: method.to_string(),
                            url: redact(&url),
                            status: status.as_u16(),
                            message,
                        });
                    }
                    let wait = match retry_after {
                        Some(w) if w > self.settings.max_retry_after => {
                            return Err(SourceError::RateLimited {
                                wait_secs: w.as_secs(),
                                max_secs: self.settings.max_retry_after.as_secs(),
                            })
                        }
                        Some(w) => w,
                        None => self.backoff(attempt),
                    };
                    tracing::warn!(
                        source = %self.source,
                        status = status.as_u16(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "upstream asked us to slow down or failed; retrying"
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Reads an answer's body, refusing one longer than `max_response_bytes` (announced
    /// or counted) before it is held whole.
    async fn read_body(&self, mut resp: reqwest::Response) -> Result<bytes::Bytes, BodyError> {
        let limit = self.settings.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge);
        }
        let mut body = bytes::BytesMut::with_capacity(
            resp.content_length().unwrap_or(0).min(limit).min(8 << 20) as usize,
        );
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Err(BodyError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => {
                    return Err(BodyError::Broken(if e.is_timeout() {
                        format!("timed out after {:?}", self.settings.timeout)
                    } else {
                        cause_chain(&e)
                    }))
                }
            }
        }
    }

    /// Exponential backoff with full jitter: a random wait up to base × 2^attempt.
    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16));
        let ms = cap.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms.max(1)))
    }
}

fn quota(rps: f64) -> Quota {
    if rps >= 1.0 {
        let n = NonZeroU32::new(rps.round().clamp(1.0, u32::MAX as f64) as u32)
            .unwrap_or(NonZeroU32::MIN);
        Quota::per_second(n)
    } else {
        let period = Duration::from_secs_f64(1.0 / rps.max(1e-6));
        Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
    }
}

/// Why an answer's body could not be read.
enum BodyError {
    TooLarge,
    Broken(String),
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

/// The upstream's own words: Jira's `errorMessages`/`errors`, GitHub's `message`, or the
/// start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let mut parts: Vec<String> = Vec::new();
        if let Some(list) = v.get("errorMessages").and_then(|m| m.as_array()) {
            parts.extend(list.iter().filter_map(|m| m.as_str().map(str::to_string)));
        }
        if let Some(map) = v.get("errors").and_then(|m| m.as_object()) {
            parts.extend(
                map.iter()
                    .map(|(k, m)| format!("{k}: {}", m.as_str().unwrap_or(&m.to_string()))),
            );
        }
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            parts.push(m.to_string());
        }
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text.chars().take(200).collect()
    }
}

/// An error with every cause after it, `: `-separated, without the URL reqwest puts in its
/// own message (the caller names it once, redacted): `error sending request: client error
/// (Connect): invalid peer certificate: UnknownIssuer`.
fn cause_chain(e: &reqwest::Error) -> String {
    let top = e.to_string();
    let top = match top.find(" for url (") {
        Some(i) => top[..i].to_string(),
        None => top,
    };
    let mut parts = vec![top];
    for cause in causes(e).skip(1) {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// `e` and its causes. An `io::Error` that wraps another error reports that error's cause
/// as its own `source()`, skipping the wrapped one; it is put back here.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let current = next?;
        let wrapped = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        next = match wrapped {
            Some(inner) => Some(inner),
            None => current.source(),
        };
        Some(current)
    })
}

/// Why a transport error cannot heal by waiting (so it is not retried): TLS verification
/// and handshake failures, a request that cannot be built.
fn permanent_transport_error(e: &reqwest::Error) -> Option<&'static str> {
    if e.is_builder() {
        return Some("the request cannot be built");
    }
    for cause in causes(e) {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(_) => {
                    "the server's certificate is not trusted: if it is signed by an internal CA, set ca_file to that CA's PEM file"
                }
                _ => "the TLS handshake failed",
            });
        }
    }
    None
}

/// A URL without credentials or query string, for messages.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.set_query(None);
    u.to_string()
}

/// The `rel="next"` URL of a `Link` header (GitHub and GitLab pages).
pub fn next_link(headers: &HeaderMap) -> Option<Url> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            return None;
        }
        Url::parse(url.trim().trim_start_matches('<').trim_end_matches('>')).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode as S;
    use axum::response::IntoResponse;
    use std::sync::atomic::AtomicUsize;

    /// (status, headers, body)
    type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

    /// A server that answers the n-th request with `script[n]` (the last entry repeats).
    async fn scripted(script: Vec<Answer>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let script = Arc::new(script);
        let app = axum::Router::new().fallback(move || {
            let h = h.clone();
            let script = script.clone();
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst).min(script.len() - 1);
                let (status, headers, body) = script[n].clone();
                let mut resp = (S::from_u16(status).expect("status"), body).into_response();
                for (k, v) in headers {
                    resp.headers_mut().insert(k, v.parse().expect("header"));
                }
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/x"), hits)
    }

    fn client(max_retries: u32) -> HttpClient {
        HttpClient::new(
            "test",
            HttpSettings {
                requests_per_second: 1000.0,
                timeout: Duration::from_secs(5),
                max_retries,
                backoff_base: Duration::from_millis(5),
                max_retry_after: Duration::from_secs(2),
                ca_file: None,
                max_response_bytes: 1 << 20,
            },
        )
        .expect("client")
    }

    #[tokio::test]
    async fn retries_a_500_then_succeeds() {
        let (url, hits) =
            scripted(vec![(500, vec![], "oops"), (200, vec![], "{\"ok\":true}")]).await;
        let c = client(2);
        let v: serde_json::Value = c
            .get_json(Url::parse(&url).expect("url"), &Auth::None)
            .await
            .expect("ok");
        assert_eq!(v["ok"], true);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(c.requests_sent(), 2);
    }

    #[tokio::test]
    async fn obeys_retry_after_on_503() {
        let (url, _) = scripted(vec![
            (503, vec![("retry-after", "1")], ""),
            (200, vec![], "{}"),
        ])
        .await;
        let started = std::time::Instant::now();
        let _: serde_json::Value = client(2)
            .get_json(Url::parse(&url).expect("url"), &Auth::None)
            .await
            .expect("ok");
        assert!(started.elapsed() >= Duration::from_millis(950));
    }

    #[tokio::test]
    async fn a_long_retry_after_fails_fast() {
        let (url, hits) = scripted(vec![(429, vec![("retry-after", "3600")], "")]).await;
        let err = client(3)
            .get_json::<serde_json::Value>(Url::parse(&url).expect("url"), &Auth::None)
            .await
            .expect_err("fails");
        assert!(
            matches!(
                err,
                SourceError::RateLimited {
                    wait_secs: 3600,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_api_key_echoed_in_an_error_is_redacted() {
        let (url, _) = scripted(vec![(
            403,
            vec![],
            "{\"error\":{\"message\":\"API key AIzaSECRETkey123 not valid\"}}",
        )])
        .await;
        let err = client(0)
            .send(
                Method::GET,
                Url::parse(&url).expect("url"),
                &Auth::None,
                &[("x-goog-api-key", "AIzaSECRETkey123".to_string())],
            )
            .await
            .expect_err("fails");
        let text = err.to_string();
        assert!(
            !text.contains("AIzaSECRETkey123") && text.contains("[REDACTED]"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn auth_failures_are_not_retried_and_say_why() {
        let (url, hits) = scripted(vec![(
            401,
            vec![],
            "{\"errorMessages\":[\"You are not authenticated.\"],\"errors\":{}}",
        )])
        .await;
        let err = client(3)
            .get_json::<serde_json::Value>(
                Url::parse(&url).expect("url"),
                &Auth::Bearer(SecretString::from("s3cret")),
            )
            .await
            .expect_err("fails");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let text = err.to_string();
        assert!(text.contains("You are not authenticated."), "{text}");
        assert!(!text.contains("s3cret"));
    }

    #[tokio::test]
    async fn errors_that_waiting_cannot_heal_are_sent_once() {
        for status in [400u16, 401, 403, 404, 422] {
            let (url, hits) = scripted(vec![(status, vec![], "{\"message\":\"no\"}")]).await;
            let err = client(3)
                .get_json::<serde_json::Value>(Url::parse(&url).expect("url"), &Auth::None)
                .await
                .expect_err("fails");
            assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}: {err}");
        }
        // A 403 that is a rate limit is waited out.
        let (url, hits) = scripted(vec![
            (
                403,
                vec![("x-ratelimit-remaining", "0"), ("retry-after", "0")],
                "{\"message\":\"API rate limit exceeded\"}",
            ),
            (200, vec![], "{}"),
        ])
        .await;
        client(3)
            .get_json::<serde_json::Value>(Url::parse(&url).expect("url"), &Auth::None)
            .await
            .expect("succeeds after the wait");
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_names_its_cause_and_is_retried() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = client(1);
        let err = c
            .get_json::<serde_json::Value>(
                Url::parse(&format!("http://127.0.0.1:{port}/x?q=secret")).expect("url"),
                &Auth::None,
            )
            .await
            .expect_err("nothing listens");
        let text = err.to_string();
        assert!(text.contains("Connection refused"), "{text}");
        assert!(!text.contains("for url"), "{text}");
        assert!(!text.contains("q=secret"), "{text}");
        assert_eq!(c.requests_sent(), 2, "a refused connection can heal");
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_with_the_upstream_message() {
        let (url, hits) = scripted(vec![(
            500,
            vec![],
            "{\"errorMessages\":[\"Internal error\"],\"errors\":{}}",
        )])
        .await;
        let err = client(2)
            .get_json::<serde_json::Value>(Url::parse(&url).expect("url"), &Auth::None)
            .await
            .expect_err("fails");
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert!(matches!(err, SourceError::Status { status: 500, .. }));
        assert!(err.to_string().contains("Internal error"));
    }

    #[test]
    fn echoed_credentials_are_redacted() {
        let basic = Auth::Basic {
            user: "bot@x".into(),
            password: SecretString::from("s3cret-token"),
        };
        assert_eq!(
            basic.redact("bad token s3cret-token, header Ym90QHg6czNjcmV0LXRva2Vu".into()),
            "bad token [REDACTED], header [REDACTED]"
        );
        let bearer = Auth::Bearer(SecretString::from("ghp_abcdef"));
        assert_eq!(bearer.redact("ghp_abcdef!".into()), "[REDACTED]!");
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let a = Auth::Basic {
            user: "bot".into(),
            password: SecretString::from("hunter2"),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
