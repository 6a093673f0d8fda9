//! Spreadsheets as a source of metric values: a local `.csv`, `.xlsx`, `.xls` or `.ods`
//! file, or a CSV published over HTTP, read again on every step. Metric key results point at a cell (`Metrics!B7`) or at row
//! and column labels (robust to rows being inserted). Numbers written as text with
//! thousands separators, percent signs or currency symbols are read; an empty or
//! non-numeric cell is an error on that KR, never a silent zero.
//!
//! With `items = { sheet, key, … }` the rows of a sheet are items too (kind `row`).

mod config;
pub mod google;
mod grid;
mod rows;

pub use config::{SheetLocation, SheetSettings};
pub use grid::{parse_number, Cell, Reference, Sheet, Workbook};
pub use rows::{category_of, items_from, RowItems};

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::model::CellRef;
use crate::sources::http::{Auth, HttpClient, HttpSettings};
use crate::sources::{ItemSource, Observation, PageStream, SourceError};

pub struct SheetSource {
    name: String,
    settings: SheetSettings,
    http: HttpClient,
    tokens: google::TokenCache,
    /// The metric references the KRs read from this source (known when it is built).
    references: Vec<CellRef>,
    /// The workbook `fetch` read, for `observe` in the same step (one read per step).
    loaded: std::sync::Mutex<Option<Workbook>>,
}

impl SheetSource {
    pub fn new(
        name: &str,
        settings: SheetSettings,
        http: HttpSettings,
        references: Vec<CellRef>,
    ) -> Result<SheetSource, SourceError> {
        Ok(SheetSource {
            name: name.to_string(),
            http: HttpClient::new(name, http)?,
            settings,
            tokens: google::TokenCache::default(),
            references,
            loaded: std::sync::Mutex::new(None),
        })
    }

    /// Reads what `references` need: the whole file or CSV, or for Google the sheets they
    /// name, in one request.
    async fn load(&self, references: &[Reference]) -> Result<Workbook, SourceError> {
        match &self.settings.location {
            SheetLocation::Google(g) => {
                let items_sheet = self.settings.items.as_ref().map(|i| i.sheet.clone());
                let mut names: Vec<String> = references
                    .iter()
                    .filter_map(|r| match r {
                        Reference::Cell { sheet, .. } | Reference::Labels { sheet, .. } => {
                            sheet.clone()
                        }
                    })
                    .collect();
                if let Some(Some(s)) = &items_sheet {
                    names.push(s.clone());
                }
                names.sort();
                names.dedup();
                let first = matches!(items_sheet, Some(None))
                    || references.iter().any(|r| {
                        matches!(
                            r,
                            Reference::Cell { sheet: None, .. }
                                | Reference::Labels { sheet: None, .. }
                        )
                    });
                google::fetch(&self.http, &self.tokens, g, &names, first).await
            }
            SheetLocation::Path(p) => Workbook::open(p).map_err(SourceError::Other),
            SheetLocation::CsvUrl(url) => {
                let resp = self
                    .http
                    .send(Method::GET, url.clone(), &Auth::None, &[])
                    .await?;
                let html = resp
                    .headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
                if html {
                    return Err(SourceError::Parse {
                        url: url.to_string(),
                        message: "answered an HTML page, not CSV (is the sheet still published to the web, and the URL its CSV link?)".into(),
                    });
                }
                Workbook::from_csv("Sheet1", &resp.body[..]).map_err(|e| SourceError::Parse {
                    url: url.to_string(),
                    message: e,
                })
            }
        }
    }
}

impl ItemSource for SheetSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// The rows as items, when configured (every pass reads the whole sheet).
    fn fetch(&self, _since: Option<DateTime<Utc>>) -> PageStream<'_> {
        let Some(spec) = self.settings.items.clone() else {
            return Box::pin(futures::stream::empty());
        };
        Box::pin(futures::stream::once(async move {
            let refs: Vec<Reference> = self.references.iter().map(|r| r.at().clone()).collect();
            let book = self.load(&refs).await?;
            let url = match &self.settings.location {
                SheetLocation::Path(p) => format!("file://{}", p.display()),
                SheetLocation::CsvUrl(u) => u.to_string(),
                SheetLocation::Google(g) => {
                    format!("https://docs.google.com/spreadsheets/d/{}", g.id)
                }
            };
            let items = items_from(&book, &spec, &self.name, &url, crate::clock::now())
                .map_err(SourceError::Other)?;
            *self
                .loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(book);
            Ok(items)
        }))
    }

    fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    fn observe<'a>(
        &'a self,
        references: Vec<CellRef>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Observation>, SourceError>> {
        Box::pin(async move {
            // A file that cannot be read fails the step (the KRs go stale with the reason);
            // an empty or non-numeric cell is an error on its KR only.
            let valid: Vec<Reference> = references.iter().map(|r| r.at().clone()).collect();
            let cached = self
                .loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let book = match cached {
                Some(b) => b,
                None => self.load(&valid).await?,
            };
            Ok(references
                .into_iter()
                .map(|r| Observation {
                    value: book.number(r.at()),
                    reference: r.to_string(),
                })
                .collect())
        })
    }
}
