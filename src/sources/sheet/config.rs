//! A sheet source's settings: the keys of `[sources.NAME]` with `kind = "sheet"` (a local
//! file, a CSV link or a Google spreadsheet; rows as items optionally), read and validated,
//! and what a sheet source can do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

use super::google::{self, GoogleAuth, GoogleSheet};
use super::RowItems;
use crate::configfile::reader::{resolve_path, secret, Section, Sink};
use crate::configfile::Secrets;
use crate::model::CellRef;
use crate::sources::http::HttpSettings;
use crate::sources::kind::{Capabilities, SourceKind};
use crate::sources::{ItemSource, SourceError};

/// Where the spreadsheet is.
#[derive(Debug, Clone)]
pub enum SheetLocation {
    /// A local file (resolved against the config file's folder).
    Path(PathBuf),
    /// A CSV over HTTP (a "publish to the web" or export link).
    CsvUrl(Url),
    /// A Google spreadsheet through the Sheets API.
    Google(Box<GoogleSheet>),
}

/// A sheet source's settings, validated.
#[derive(Debug, Clone)]
pub struct SheetSettings {
    pub location: SheetLocation,
    /// Rows as items, when configured.
    pub items: Option<RowItems>,
}

impl SourceKind for SheetSettings {
    const KIND: &'static str = "sheet";
    const CAPABILITIES: Capabilities = Capabilities {
        title: "spreadsheet",
        // A sheet is read whole every time: every pass is full, so removed rows go.
        always_full: true,
        webhook: None,
        writeback: None,
        metrics: true,
        project_selector: "project",
        list_keys: &[],
    };

    fn read(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<Self> {
        read_sheet(s, sink, base)
    }

    fn build(
        &self,
        name: &str,
        http: HttpSettings,
        cells: Vec<CellRef>,
    ) -> Result<Arc<dyn ItemSource>, SourceError> {
        Ok(Arc::new(super::SheetSource::new(
            name,
            self.clone(),
            http,
            cells,
        )?))
    }

    /// A sheet without `items` only feeds metric key results.
    fn yields_items(&self) -> bool {
        self.items.is_some()
    }
}

fn read_sheet(
    s: &mut Section,
    sink: &mut Sink,
    base: &Path,
) -> Option<SheetSettings> {
    let path = s.string(sink, "path");
    let csv_url = s.string(sink, "csv_url");
    let ways = ["path", "csv_url", "google_sheet_id"]
        .into_iter()
        .filter(|k| s.has(k))
        .count();
    if ways != 1 {
        sink.report(&s.key("path"), "set exactly one of path (a local .csv, .xlsx, .xls or .ods file), csv_url or google_sheet_id");
        return None;
    }
    let items = s
        .table(sink, "items")
        .and_then(|t| read_row_items(&s.key("items"), t, sink));
    if let Some(id) = s.string(sink, "google_sheet_id") {
        return read_google_sheet(s, sink, base, id).map(|mut g| {
            g.items = items;
            g
        });
    }
    for k in [
        "api_key_env",
        "api_key_file",
        "service_account_file",
        "api_url",
        "token_url",
    ] {
        if s.has(k) {
            sink.report(&s.key(k), "only applies with google_sheet_id");
        }
    }
    if let Some(u) = csv_url {
        return match url::Url::parse(&u) {
            Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(SheetSettings {
                location: SheetLocation::CsvUrl(url),
                items,
            }),
            _ => {
                sink.report(
                    &s.key("csv_url"),
                    format!("expected an http(s) URL of a CSV, found \"{u}\""),
                );
                None
            }
        };
    }
    let path = resolve_path(base, &path?);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !["csv", "xlsx", "xlsm", "xls", "ods"].contains(&ext.as_str()) {
        sink.report(
            &s.key("path"),
            format!(
                "expected a .csv, .xlsx, .xls or .ods file, found \"{}\"",
                path.display()
            ),
        );
        return None;
    }
    Some(SheetSettings {
        location: SheetLocation::Path(path),
        items,
    })
}

fn read_row_items(
    key: &str,
    t: &toml::Table,
    sink: &mut Sink,
) -> Option<RowItems> {
    let mut s = Section::new(key, t);
    let sheet = s.string(sink, "sheet");
    let key_col = s.required_string(sink, "key");
    let title = s.string(sink, "title");
    let category = s.string(sink, "category");
    let estimate = s.string(sink, "estimate");
    let labels = s.string(sink, "labels");
    let assignee = s.string(sink, "assignee");
    s.finish(sink);
    Some(RowItems {
        sheet,
        key: key_col?,
        title,
        category,
        estimate,
        labels,
        assignee,
    })
}

fn read_google_sheet(
    s: &mut Section,
    sink: &mut Sink,
    base: &Path,
    id: String,
) -> Option<SheetSettings> {
    let url =
        |s: &mut Section, sink: &mut Sink, key: &'static str, default: &str| -> Option<url::Url> {
            let text = s.string(sink, key).unwrap_or_else(|| default.to_string());
            match url::Url::parse(&text) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
                _ => {
                    sink.report(
                        &s.key(key),
                        format!("expected an http(s) URL, found \"{text}\""),
                    );
                    None
                }
            }
        };
    let api_url = url(s, sink, "api_url", "https://sheets.googleapis.com");
    let token_url = if s.has("token_url") {
        url(s, sink, "token_url", google::DEFAULT_TOKEN_URL).map(Some)
    } else {
        Some(None)
    };
    let resolve = std::mem::replace(&mut sink.secrets, Secrets::Defer);
    let key = secret(s, sink, "api_key_env", "api_key_file", base, false);
    let account = secret(
        s,
        sink,
        "service_account_env",
        "service_account_file",
        base,
        false,
    );
    sink.secrets = resolve;
    let auth = match (key, account) {
        (Some(_), Some(_)) => {
            sink.report(&s.key("service_account_file"), "set either an API key (api_key_env/api_key_file) or service_account_file, not both");
            None
        }
        (Some(k), None) => Some(GoogleAuth::ApiKey(k)),
        (None, Some(key_file)) => token_url.map(|token_url| GoogleAuth::ServiceAccount {
            key_file,
            token_url,
        }),
        (None, None) => {
            sink.report(&s.key("api_key_env"), "Google Sheets needs an API key (api_key_env/api_key_file) or a service_account_file");
            None
        }
    };
    if let (Some(auth), Secrets::Resolve) = (&auth, sink.secrets) {
        if let Err(p) = auth.check() {
            sink.problems.push(p);
        }
    }
    Some(SheetSettings {
        location: SheetLocation::Google(Box::new(GoogleSheet {
            id,
            api_url: api_url?,
            auth: auth?,
        })),
        items: None,
    })
}
