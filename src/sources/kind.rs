//! What a source kind is to the rest of okrsync: a settings type that reads its own keys of
//! `[sources.NAME]`, builds its [`ItemSource`], and states its [`Capabilities`]. The closed
//! [`SourceConfig`](super::SourceConfig) enum over the kinds is generated from one list in
//! `sources/mod.rs` by [`source_kinds!`]; nothing outside `src/sources/` matches on a kind.

use std::path::Path;
use std::sync::Arc;

use crate::configfile::reader::{Section, Sink};
use crate::model::CellRef;
use crate::sources::http::HttpSettings;
use crate::sources::webhook::WebhookAuth;
use crate::sources::{ItemSource, SourceError};

/// Whether a kind accepts `label` for write-back (`Err`: why not, in words).
pub type LabelCheck = fn(&str) -> Result<(), String>;

/// What a kind of source can do, for the engine, the webhooks, `check` and the reports.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// How messages name the kind ("Jira", "GitHub").
    pub title: &'static str,
    /// Every pass reads everything (a spreadsheet is read whole each time), so every step
    /// is a full one and removed rows go at once.
    pub always_full: bool,
    /// `POST /hooks/<kind>`: how a delivery proves it comes from the upstream. `None`: the
    /// kind takes no webhooks.
    pub webhook: Option<WebhookAuth>,
    /// `writeback = { label }`: whether the kind can put a label on its items, and which
    /// labels it accepts (`Err`: why not). `None`: it cannot write back.
    pub writeback: Option<LabelCheck>,
    /// Whether metric key results read values from it (`metric = { source, cell }`).
    pub metrics: bool,
    /// The `moves` selector that picks an item's project: `repo=` for GitHub, `project=`.
    pub project_selector: &'static str,
    /// Keys that hold lists: an environment override (`OKRSYNC__SOURCES__NAME__REPOS=a,b`)
    /// is split at commas for them.
    pub list_keys: &'static [&'static str],
}

/// One kind of source: its validated settings, read from `[sources.NAME]`.
pub trait SourceKind: Sized {
    /// `kind = "…"` in the config.
    const KIND: &'static str;
    const CAPABILITIES: Capabilities;

    /// Reads the kind's own keys (the keys every source has are read already), reporting
    /// every problem into `sink`. `None` when a problem keeps it from being built.
    fn read(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<Self>;

    /// Builds the source. `cells`: the metric references the key results read from it.
    fn build(
        &self,
        name: &str,
        http: HttpSettings,
        cells: Vec<CellRef>,
    ) -> Result<Arc<dyn ItemSource>, SourceError>;

    /// Whether this source yields items (rules match them); a sheet without `items` only
    /// feeds metric key results.
    fn yields_items(&self) -> bool {
        true
    }

    /// The fields the rules read of this source's items (`fields.<x>` → `x`), for kinds
    /// that must ask for them by name.
    fn use_rule_fields(&mut self, fields: Vec<String>) {
        let _ = fields;
    }
}

/// Declares the source kinds: a module each and the closed `SourceConfig` enum over their
/// settings, with the dispatch every caller uses. One line per kind.
macro_rules! source_kinds {
    ($($(#[$doc:meta])* $module:ident => $variant:ident($settings:ty),)+) => {
        $($(#[$doc])* pub mod $module;)+

        /// A source's kind-specific settings (`kind = "…"` and the keys of that kind).
        #[derive(Debug, Clone)]
        pub enum SourceConfig {
            $($variant($settings),)+
        }

        impl SourceConfig {
            /// Every kind with its capabilities, in the order messages list them.
            pub const KINDS: &'static [(&'static str, $crate::sources::kind::Capabilities)] = &[
                $((<$settings as $crate::sources::kind::SourceKind>::KIND, <$settings as $crate::sources::kind::SourceKind>::CAPABILITIES),)+
            ];

            /// Reads the keys of `kind`. `None`: no such kind.
            pub fn read(
                kind: &str,
                s: &mut $crate::configfile::reader::Section,
                sink: &mut $crate::configfile::reader::Sink,
                base: &std::path::Path,
            ) -> Option<Option<SourceConfig>> {
                $(if kind == <$settings as $crate::sources::kind::SourceKind>::KIND {
                    return Some(<$settings as $crate::sources::kind::SourceKind>::read(s, sink, base).map(SourceConfig::$variant));
                })+
                None
            }

            /// `kind = "…"`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(SourceConfig::$variant(_) => <$settings as $crate::sources::kind::SourceKind>::KIND,)+
                }
            }

            pub fn capabilities(&self) -> &'static $crate::sources::kind::Capabilities {
                match self {
                    $(SourceConfig::$variant(_) => &<$settings as $crate::sources::kind::SourceKind>::CAPABILITIES,)+
                }
            }

            /// Whether the source yields items (rules match them).
            pub fn yields_items(&self) -> bool {
                match self {
                    $(SourceConfig::$variant(c) => c.yields_items(),)+
                }
            }

            /// Builds the source; `cells`: the metric references read from it.
            pub fn build(
                &self,
                name: &str,
                http: $crate::sources::http::HttpSettings,
                cells: Vec<$crate::model::CellRef>,
            ) -> Result<std::sync::Arc<dyn $crate::sources::ItemSource>, $crate::sources::SourceError> {
                match self {
                    $(SourceConfig::$variant(c) => c.build(name, http, cells),)+
                }
            }

            /// Hands the source the fields its rules read.
            pub fn use_rule_fields(&mut self, fields: Vec<String>) {
                match self {
                    $(SourceConfig::$variant(c) => c.use_rule_fields(fields),)+
                }
            }
        }
    };
}

pub(crate) use source_kinds;

/// The capabilities of the kind called `kind` (as recorded with a source in the store).
pub fn capabilities_of(kind: &str) -> Option<&'static Capabilities> {
    super::SourceConfig::KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, c)| c)
}

/// `"a, b and c"`.
pub fn listed(names: &[&str], last: &str) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., end] => format!("{} {last} {end}", rest.join(", ")),
    }
}
