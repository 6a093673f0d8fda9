//! A simulated Google Sheets API v4 on 127.0.0.1: `GET /v4/spreadsheets/{id}/values:batchGet`
//! (whole sheets by quoted name, or an unnamed range for the first sheet; unformatted values;
//! trailing empty cells omitted as Google does), authenticated by API key or by an access
//! token from `POST /token`, which verifies the service account's RS256 JWT. Errors on
//! demand (429 quota).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

pub use super::faults::Fault;
use super::faults::{DataFault, Faults};

/// A sheet: its name and rows of JSON values.
type SimSheet = (String, Vec<Vec<Value>>);

#[derive(Default)]
struct Inner {
    /// spreadsheet id → sheets
    books: BTreeMap<String, Vec<SimSheet>>,
    api_key: Option<String>,
    /// (client email, public key PEM)
    account: Option<(String, String)>,
    issued: Vec<String>,
    faults: VecDeque<Fault>,
    /// (method, path, status)
    requests: Vec<(String, String, u16)>,
}

struct Shared {
    base_url: String,
    inner: Mutex<Inner>,
    faults: Faults,
}

/// A running simulated Sheets API.
pub struct SheetsSim {
    shared: Arc<Shared>,
    /// Serves until the simulator is dropped.
    _server: super::Server,
}

impl SheetsSim {
    pub async fn start() -> anyhow::Result<SheetsSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner::default()),
            faults: Faults::default(),
        });
        let app = Router::new()
            .fallback(serve)
            .layer(axum::middleware::from_fn_with_state(
                shared.faults.clone(),
                super::faults::layer,
            ))
            .with_state(shared.clone());
        Ok(SheetsSim {
            shared,
            _server: super::Server::serve(listener, app),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `api_url` to configure.
    pub fn api_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The `token_url` to configure (and the JWT audience it expects).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.base_url)
    }

    pub fn allow_api_key(&self, key: &str) {
        self.inner().api_key = Some(key.to_string());
    }

    pub fn allow_service_account(&self, client_email: &str, public_key_pem: &str) {
        self.inner().account = Some((client_email.to_string(), public_key_pem.to_string()));
    }

    /// Sets a sheet's cells (JSON numbers and strings).
    pub fn set_sheet(&self, spreadsheet: &str, sheet: &str, rows: Vec<Vec<Value>>) {
        let mut inner = self.inner();
        let book = inner.books.entry(spreadsheet.to_string()).or_default();
        match book.iter_mut().find(|(n, _)| n == sheet) {
            Some(s) => s.1 = rows,
            None => book.push((sheet.to_string(), rows)),
        }
    }

    /// The URL of `spreadsheet`'s first sheet published to the web as CSV (File → Share →
    /// Publish to web), which needs no credentials.
    pub fn csv_url(&self, spreadsheet: &str) -> String {
        format!(
            "{}/spreadsheets/d/e/{spreadsheet}/pub?output=csv",
            self.shared.base_url
        )
    }

    /// The fault plan of every endpoint.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn fail_next(&self, fault: Fault) {
        self.inner().faults.push_back(fault);
    }

    /// (method, path, status) of every request.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.inner().requests.clone()
    }
}

fn google_error(status: StatusCode, message: &str, reason: &str) -> Response {
    (
        status,
        axum::Json(
            json!({ "error": { "code": status.as_u16(), "message": message, "status": reason } }),
        ),
    )
        .into_response()
}

/// A sheet as "Publish to web → CSV" gives it: numbers as written, text quoted when it
/// needs to be. With [`Fault::TypeChanged`], numbers are given a unit ("12 pts"), as when a
/// column is retyped as text.
fn csv_of(rows: &[Vec<Value>], fault: Option<&Fault>) -> String {
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                let text = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Number(n) if fault == Some(&Fault::TypeChanged) => format!("{n} pts"),
                    other => other.to_string(),
                };
                if text.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", text.replace('"', "\"\""))
                } else {
                    text
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn column(n: usize) -> String {
    let mut n = n;
    let mut s = String::new();
    while n > 0 {
        s.insert(0, (b'A' + ((n - 1) % 26) as u8) as char);
        n = (n - 1) / 26;
    }
    s
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    data_fault: Option<axum::Extension<DataFault>>,
    body: axum::body::Bytes,
) -> Response {
    let data_fault = data_fault.map(|axum::Extension(DataFault(f))| f);
    let path = uri.path().to_string();
    let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let record = |inner: &mut Inner, status: u16| {
        inner
            .requests
            .push((method.to_string(), path.clone(), status))
    };
    if let Some(Fault::Status {
        status,
        retry_after,
        ..
    }) = inner.faults.pop_front()
    {
        record(&mut inner, status);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        let mut resp = google_error(
            code,
            "Quota exceeded for quota metric 'Read requests' of service 'sheets.googleapis.com'.",
            "RESOURCE_EXHAUSTED",
        );
        if let Some(v) = retry_after.and_then(|r| r.parse().ok()) {
            resp.headers_mut().insert("retry-after", v);
        }
        return resp;
    }
    if method == Method::POST && path == "/token" {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some((email, public)) = inner.account.clone() else {
            record(&mut inner, 400);
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_client" })),
            )
                .into_response();
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[email]);
        validation.set_audience(&[format!("{}/token", shared.base_url)]);
        let ok = get("grant_type").as_deref()
            == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
            && jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes())
                .ok()
                .zip(get("assertion"))
                .is_some_and(|(key, jwt)| {
                    jsonwebtoken::decode::<crate::sources::sheet::google::GoogleClaims>(
                        &jwt,
                        &key,
                        &validation,
                    )
                    .is_ok_and(|d| d.claims.scope.contains("spreadsheets"))
                });
        if !ok {
            record(&mut inner, 400);
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_grant", "error_description": "Invalid JWT Signature." })),
            )
                .into_response();
        }
        let token = format!("ya29.sim{}", inner.issued.len() + 1);
        inner.issued.push(token.clone());
        record(&mut inner, 200);
        return axum::Json(
            json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }),
        )
        .into_response();
    }
    let published = path
        .strip_prefix("/spreadsheets/d/e/")
        .and_then(|p| p.strip_suffix("/pub"))
        .map(str::to_string);
    if let Some(id) = published {
        let Some((_, rows)) = inner.books.get(&id).and_then(|b| b.first()).cloned() else {
            record(&mut inner, 404);
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        };
        record(&mut inner, 200);
        let text = csv_of(&rows, data_fault.as_ref());
        return ([("content-type", "text/csv; charset=utf-8")], text).into_response();
    }
    let Some(id) = path
        .strip_prefix("/v4/spreadsheets/")
        .and_then(|p| p.strip_suffix("/values:batchGet"))
        .map(str::to_string)
    else {
        record(&mut inner, 404);
        return google_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    };
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let key = header("x-goog-api-key").or_else(|| {
        params
            .iter()
            .find(|(k, _)| k == "key")
            .map(|(_, v)| v.clone())
    });
    let bearer =
        header("authorization").and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
    let authorized = (key.is_some() && key == inner.api_key)
        || bearer.is_some_and(|b| inner.issued.contains(&b));
    if !authorized {
        record(&mut inner, 403);
        return google_error(
            StatusCode::FORBIDDEN,
            "The caller does not have permission",
            "PERMISSION_DENIED",
        );
    }
    let Some(book) = inner.books.get(&id).cloned() else {
        record(&mut inner, 404);
        return google_error(
            StatusCode::NOT_FOUND,
            "Requested entity was not found.",
            "NOT_FOUND",
        );
    };
    let mut ranges = Vec::new();
    for (_, range) in params.iter().filter(|(k, _)| k == "ranges") {
        let named = range.contains('!') || range.starts_with('\'');
        let sheet = if named {
            let name = range.split('!').next().unwrap_or(range);
            let name = name
                .strip_prefix('\'')
                .and_then(|n| n.strip_suffix('\''))
                .unwrap_or(name)
                .replace("''", "'");
            book.iter().find(|(n, _)| *n == name)
        } else {
            book.first()
        };
        let Some((name, rows)) = sheet else {
            record(&mut inner, 400);
            return google_error(
                StatusCode::BAD_REQUEST,
                &format!("Unable to parse range: {range}"),
                "INVALID_ARGUMENT",
            );
        };
        // Google omits trailing empty cells and rows.
        let mut values: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                while r
                    .last()
                    .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
                {
                    r.pop();
                }
                Value::Array(r)
            })
            .collect();
        while values
            .last()
            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
        {
            values.pop();
        }
        if data_fault == Some(Fault::TypeChanged) {
            // Numbers typed as text upstream come back as strings.
            for row in values.iter_mut().filter_map(Value::as_array_mut) {
                for cell in row.iter_mut() {
                    if let Some(n) = cell.as_f64() {
                        *cell = json!(n.to_string());
                    }
                }
            }
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        ranges.push(json!({
            "range": format!("'{}'!A1:{}{}", name.replace('\'', "''"), column(width), rows.len().max(1)),
            "majorDimension": "ROWS",
            "values": values,
        }));
    }
    record(&mut inner, 200);
    axum::Json(json!({ "spreadsheetId": id, "valueRanges": ranges })).into_response()
}
