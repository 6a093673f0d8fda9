//! Spreadsheets as a source of metric values: a local `.csv`, `.xlsx`, `.xls` or `.ods`
//! file, re-read on every step. Metric key results point at a cell (`Metrics!B7`) or at row
//! and column labels (robust to rows being inserted). Numbers written as text with
//! thousands separators, percent signs or currency symbols are read; an empty or
//! non-numeric cell is an error on that KR, never a silent zero.
//!
//! Google Sheets, CSV over HTTP and rows as items come later.

mod grid;

pub use grid::{parse_number, Cell, Reference, Sheet, Workbook};

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::sources::{ItemSource, Observation, PageStream, SourceError};

/// A sheet source's settings, validated.
#[derive(Debug, Clone)]
pub struct SheetSettings {
    /// The file (resolved against the config file's folder).
    pub path: PathBuf,
}

pub struct SheetSource {
    name: String,
    settings: SheetSettings,
}

impl SheetSource {
    pub fn new(name: &str, settings: SheetSettings) -> SheetSource {
        SheetSource {
            name: name.to_string(),
            settings,
        }
    }

    fn load(&self) -> Result<Workbook, SourceError> {
        Workbook::open(&self.settings.path).map_err(SourceError::Other)
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
        0
    }

    fn observe<'a>(
        &'a self,
        references: Vec<String>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Observation>, SourceError>> {
        Box::pin(async move {
            // A file that cannot be read fails the step (the KRs go stale with the reason);
            // a bad cell is an error on its KR only.
            let book = self.load()?;
            Ok(references
                .into_iter()
                .map(|r| Observation {
                    value: Reference::parse(&r).and_then(|parsed| book.number(&parsed)),
                    reference: r,
                })
                .collect())
        })
    }
}
