//! Google Sheets API v4: all ranges a step needs in one `values:batchGet`
//! (`valueRenderOption=UNFORMATTED_VALUE`), authenticated by an API key or a service
//! account (an RS256 JWT exchanged at the token endpoint for an access token, cached until
//! five minutes before it expires).

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::grid::{Cell, Sheet, Workbook};
use crate::settings::{Problem, SecretRef};
use crate::sources::http::{Auth, HttpClient};
use crate::sources::SourceError;

/// How to reach a spreadsheet.
#[derive(Debug, Clone)]
pub struct GoogleSheet {
    pub id: String,
    /// Base of the API (`https://sheets.googleapis.com`); `/v4/spreadsheets/…` is appended.
    pub api_url: Url,
    pub auth: GoogleAuth,
}

/// Google's token endpoint, unless the config or the key file names another.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

#[derive(Debug, Clone)]
pub enum GoogleAuth {
    ApiKey(SecretRef),
    /// A service account key (the JSON file Google hands out), read when first used.
    ServiceAccount {
        key_file: SecretRef,
        /// `token_url` from the config; else the key's `token_uri`, else Google's.
        token_url: Option<Url>,
    },
}

/// What okrsync needs of a service account key.
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: SecretString,
    pub token_url: Url,
}

/// The fields of a service account key file okrsync needs.
#[derive(Deserialize)]
pub struct ServiceAccountFile {
    pub client_email: String,
    pub private_key: String,
    pub token_uri: Option<String>,
}

impl GoogleAuth {
    /// Reads the credentials (for `check` and when the source is built).
    pub fn check(&self) -> Result<(), Problem> {
        match self {
            GoogleAuth::ApiKey(k) => k.get().map(|_| ()).map_err(Clone::clone),
            GoogleAuth::ServiceAccount { .. } => self.service_account().map(|_| ()),
        }
    }

    /// The service account's key, read from its file; `None` for an API key.
    pub fn service_account(&self) -> Result<ServiceAccount, Problem> {
        let GoogleAuth::ServiceAccount {
            key_file,
            token_url,
        } = self
        else {
            return Err(Problem {
                file: String::new(),
                key: String::new(),
                line: None,
                message: "not a service account".into(),
            });
        };
        let text = key_file.get().map_err(Clone::clone)?;
        let acct: ServiceAccountFile = serde_json::from_str(text.expose_secret()).map_err(|e| {
            key_file.problem(format!(
                "not a service account key (JSON with client_email and private_key): {e}"
            ))
        })?;
        let token_url = match (token_url, acct.token_uri.as_deref().map(Url::parse)) {
            (Some(u), _) => u.clone(),
            (None, Some(Ok(u))) => u,
            (None, _) => {
                Url::parse(DEFAULT_TOKEN_URL).map_err(|e| key_file.problem(e.to_string()))?
            }
        };
        Ok(ServiceAccount {
            client_email: acct.client_email,
            private_key: SecretString::from(acct.private_key),
            token_url,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub struct GoogleClaims {
    pub iss: String,
    pub scope: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

pub const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";

#[derive(Deserialize)]
struct AccessToken {
    access_token: String,
    expires_in: i64,
}

/// Caches the service account's access token.
#[derive(Default)]
pub(super) struct TokenCache(tokio::sync::Mutex<Option<(SecretString, DateTime<Utc>)>>);

impl TokenCache {
    async fn bearer(
        &self,
        http: &HttpClient,
        auth: &GoogleAuth,
    ) -> Result<Option<Auth>, SourceError> {
        if !matches!(auth, GoogleAuth::ServiceAccount { .. }) {
            return Ok(None);
        }
        let mut cached = self.0.lock().await;
        let now = Utc::now();
        if let Some((t, exp)) = cached.as_ref() {
            if *exp - Duration::minutes(5) > now {
                return Ok(Some(Auth::Bearer(t.clone())));
            }
        }
        let ServiceAccount {
            client_email,
            private_key,
            token_url,
        } = auth
            .service_account()
            .map_err(|p| SourceError::Other(p.to_string()))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
            .map_err(|e| {
            SourceError::Other(format!(
                "the service account's private_key is not an RSA PEM key: {e}"
            ))
        })?;
        let claims = GoogleClaims {
            iss: client_email.clone(),
            scope: SCOPE.into(),
            aud: token_url.to_string(),
            iat: now.timestamp(),
            exp: (now + Duration::hours(1)).timestamp(),
        };
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| SourceError::Other(format!("cannot sign the service account JWT: {e}")))?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &jwt)
            .finish();
        let resp = http.send_form(token_url.clone(), body).await?;
        let token: AccessToken =
            serde_json::from_slice(&resp.body).map_err(|e| SourceError::Parse {
                url: token_url.to_string(),
                message: format!("not an access token: {e}"),
            })?;
        let secret = SecretString::from(token.access_token);
        *cached = Some((secret.clone(), now + Duration::seconds(token.expires_in)));
        Ok(Some(Auth::Bearer(secret)))
    }
}

/// `'My sheet'` → `'My sheet'` quoted for A1 notation (quotes doubled).
fn quote(sheet: &str) -> String {
    format!("'{}'", sheet.replace('\'', "''"))
}

/// The sheet a `range` of an answer belongs to: `'Metrics'!A1:D12` → `Metrics`.
fn sheet_of(range: &str) -> String {
    let name = range.rsplit_once('!').map(|(s, _)| s).unwrap_or(range);
    let name = name
        .strip_prefix('\'')
        .and_then(|n| n.strip_suffix('\''))
        .unwrap_or(name);
    name.replace("''", "'")
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Number(n) => n.as_f64().map(Cell::Number).unwrap_or(Cell::Empty),
        Value::String(s) if s.trim().is_empty() => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        Value::Bool(b) => Cell::Text(b.to_string()),
        _ => Cell::Empty,
    }
}

/// A `values:batchGet` (or `values.get`) answer as a workbook: one sheet per value range.
pub fn workbook_from_answer(answer: &Value) -> Workbook {
    let ranges: Vec<&Value> = match answer.get("valueRanges").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![answer],
    };
    let sheets = ranges
        .into_iter()
        .map(|r| Sheet {
            name: r
                .get("range")
                .and_then(Value::as_str)
                .map(sheet_of)
                .unwrap_or_default(),
            rows: r
                .get("values")
                .and_then(Value::as_array)
                .map(|rows| {
                    rows.iter()
                        .map(|row| {
                            row.as_array()
                                .map(|cells| cells.iter().map(cell).collect())
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Workbook { sheets }
}

/// Reads the whole of each named sheet (and the first sheet, for references without a
/// sheet name) in one request.
pub(super) async fn fetch(
    http: &HttpClient,
    tokens: &TokenCache,
    sheet: &GoogleSheet,
    sheet_names: &[String],
    first_sheet: bool,
) -> Result<Workbook, SourceError> {
    let base = sheet.api_url.as_str().trim_end_matches('/');
    let mut url = Url::parse(&format!(
        "{base}/v4/spreadsheets/{}/values:batchGet",
        sheet.id
    ))
    .map_err(|e| SourceError::Other(format!("bad Google Sheets URL: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        for s in sheet_names {
            q.append_pair("ranges", &quote(s));
        }
        if first_sheet {
            q.append_pair("ranges", "A1:ZZ");
        }
        q.append_pair("valueRenderOption", "UNFORMATTED_VALUE");
        q.append_pair("majorDimension", "ROWS");
    }
    let auth = match &sheet.auth {
        GoogleAuth::ApiKey(_) => Auth::None,
        GoogleAuth::ServiceAccount { .. } => tokens
            .bearer(http, &sheet.auth)
            .await?
            .unwrap_or(Auth::None),
    };
    // The key travels as a header, so it never appears in a logged URL.
    let headers: Vec<(&str, String)> = match &sheet.auth {
        GoogleAuth::ApiKey(k) => vec![(
            "x-goog-api-key",
            k.get()
                .map_err(|p| SourceError::Other(p.to_string()))?
                .expose_secret()
                .to_string(),
        )],
        GoogleAuth::ServiceAccount { .. } => Vec::new(),
    };
    let resp = http.send(Method::GET, url.clone(), &auth, &headers).await?;
    let answer: Value = serde_json::from_slice(&resp.body).map_err(|e| SourceError::Parse {
        url: format!("{base}/v4/spreadsheets/{}/values:batchGet", sheet.id),
        message: e.to_string(),
    })?;
    if answer.get("valueRanges").is_none_or(|r| !r.is_array()) {
        return Err(SourceError::Parse {
            url: format!("{base}/v4/spreadsheets/{}/values:batchGet", sheet.id),
            message: "the answer holds no valueRanges list".into(),
        });
    }
    let mut book = workbook_from_answer(&answer);
    // The unnamed range comes last; it is the first sheet.
    if first_sheet {
        if let Some(last) = book.sheets.pop() {
            book.sheets.insert(0, last);
        }
    }
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/sheets/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        )
        .expect("json")
    }

    #[test]
    fn real_answers_become_workbooks() {
        let batch = workbook_from_answer(&fixture("values-batchget.gspread.json"));
        assert_eq!(batch.sheets.len(), 2);
        assert_eq!(batch.sheets[0].name, "Sheet1");
        assert!(
            batch.sheets[1].rows[0].contains(&Cell::Empty),
            "the empty-string cell is empty"
        );
        let ragged = workbook_from_answer(&fixture("values-get-ragged-rows.gspread.json"));
        let widths: Vec<usize> = ragged.sheets[0].rows.iter().map(Vec::len).collect();
        assert!(widths.contains(&0), "an empty row survives: {widths:?}");
        let unformatted = workbook_from_answer(&fixture("values-get-unformatted.gspread.json"));
        assert!(unformatted.sheets[0]
            .rows
            .iter()
            .flatten()
            .any(|c| matches!(c, Cell::Number(_))));
    }

    #[test]
    fn recorded_cassettes_with_an_emoji_sheet_and_every_render_option() {
        for name in [
            "cassette-values-batchget.gspread.json",
            "cassette-values-get-render-options.gspread.json",
        ] {
            let cassette = fixture(name);
            let mut seen = 0;
            for i in cassette["interactions"].as_array().expect("interactions") {
                let uri = i["request"]["uri"].as_str().unwrap_or("");
                if i["request"]["method"] != "GET" || !uri.contains("/values") {
                    continue;
                }
                let body: Value =
                    serde_json::from_str(i["response"]["body"]["string"].as_str().unwrap_or("{}"))
                        .expect("body");
                let book = workbook_from_answer(&body);
                assert!(!book.sheets.is_empty(), "{name}: {uri}");
                seen += 1;
            }
            assert!(seen >= 2, "{name}");
        }
        let batch = fixture("cassette-values-batchget.gspread.json");
        let body: Value = serde_json::from_str(
            batch["interactions"][5]["response"]["body"]["string"]
                .as_str()
                .unwrap_or("{}"),
        )
        .expect("body");
        assert_eq!(
            workbook_from_answer(&body).sheets[0].name,
            "🌵 test_values_batch_get 1"
        );
    }

    #[test]
    fn sheet_names_in_ranges() {
        assert_eq!(sheet_of("'Metrics'!A1:D12"), "Metrics");
        assert_eq!(sheet_of("'Bob''s sheet'!A1"), "Bob's sheet");
        assert_eq!(sheet_of("Sheet1!A1:B1"), "Sheet1");
        assert_eq!(quote("Bob's"), "'Bob''s'");
    }
}
