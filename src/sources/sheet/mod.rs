//! Spreadsheets as a source of metric values: a local `.csv`, `.xlsx`, `.xls` or `.ods`
//! file, or a CSV published over HTTP, read again on every step. Metric key results point at a cell (`Metrics!B7`) or at row
//! and column labels (robust to rows being inserted). Numbers written as text with
//! thousands separators, percent signs or currency symbols are read; an empty or
//! non-numeric cell is an error on that KR, never a silent zero.
//!
//! Google Sheets and rows as items come later.

pub mod google;
mod grid;

pub use grid::{parse_number, Cell, Reference, Sheet, Workbook};

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use reqwest::Method;
use url::Url;

use crate::sources::http::{Auth, HttpClient, HttpSettings};
use crate::sources::{ItemSource, Observation, PageStream, SourceError};

/// Where the spreadsheet is.
#[derive(Debug, Clone)]
pub enum SheetLocation {
    /// A local file (resolved against the config file's folder).
    Path(PathBuf),
    /// A CSV over HTTP (a "publish to the web" or export link).
    CsvUrl(Url),
    /// A Google spreadsheet through the Sheets API.
    Google(google::GoogleSheet),
}

/// A sheet source's settings, validated.
#[derive(Debug, Clone)]
pub struct SheetSettings {
    pub location: SheetLocation,
}

pub struct SheetSource {
    name: String,
    settings: SheetSettings,
    http: HttpClient,
    tokens: google::TokenCache,
}

impl SheetSource {
    pub fn new(
        name: &str,
        settings: SheetSettings,
        http: HttpSettings,
    ) -> Result<SheetSource, SourceError> {
        Ok(SheetSource {
            name: name.to_string(),
            http: HttpClient::new(name, http)?,
            settings,
            tokens: google::TokenCache::default(),
        })
    }

    /// Reads what `references` need: the whole file or CSV, or for Google the sheets they
    /// name, in one request.
    async fn load(&self, references: &[Reference]) -> Result<Workbook, SourceError> {
        match &self.settings.location {
            SheetLocation::Google(g) => {
                let mut names: Vec<String> = references
                    .iter()
                    .filter_map(|r| match r {
                        Reference::Cell { sheet, .. } | Reference::Labels { sheet, .. } => {
                            sheet.clone()
                        }
                    })
                    .collect();
                names.sort();
                names.dedup();
                let first = references.iter().any(|r| {
                    matches!(
                        r,
                        Reference::Cell { sheet: None, .. } | Reference::Labels { sheet: None, .. }
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

    /// No items yet: this source only feeds metric key results.
    fn fetch(&self, _since: Option<DateTime<Utc>>) -> PageStream<'_> {
        Box::pin(futures::stream::empty())
    }

    fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    fn observe<'a>(
        &'a self,
        references: Vec<String>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Observation>, SourceError>> {
        Box::pin(async move {
            // A file that cannot be read fails the step (the KRs go stale with the reason);
            // a bad cell is an error on its KR only.
            let parsed: Vec<Result<Reference, String>> =
                references.iter().map(|r| Reference::parse(r)).collect();
            let valid: Vec<Reference> = parsed
                .iter()
                .filter_map(|p| p.as_ref().ok().cloned())
                .collect();
            let book = self.load(&valid).await?;
            Ok(references
                .into_iter()
                .zip(parsed)
                .map(|(r, p)| Observation {
                    value: p.and_then(|parsed| book.number(&parsed)),
                    reference: r,
                })
                .collect())
        })
    }
}
