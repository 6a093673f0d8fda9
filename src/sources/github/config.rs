//! A GitHub source's settings: the keys of `[sources.NAME]` with `kind = "github"`, read
//! and validated, and what a GitHub source can do.

use std::path::Path;
use std::sync::Arc;

use url::Url;

use super::auth::GitHubAuth;
use super::projects::ProjectRef;
use crate::configfile::reader::{secret, Section, Sink};
use crate::model::CellRef;
use crate::sources::http::HttpSettings;
use crate::sources::kind::{Capabilities, SourceKind};
use crate::sources::webhook::WebhookAuth;
use crate::sources::{ItemSource, SourceError};

/// A GitHub source's settings, validated.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: Url,
    pub auth: GitHubAuth,
    /// `owner/name`
    pub repos: Vec<String>,
    /// Issues per page (GitHub allows up to 100).
    pub per_page: u32,
    /// A label that carries the estimate: the regex's first capture group is the number
    /// (e.g. `^points:(\d+(?:\.\d+)?)$`).
    pub estimate_label: Option<regex::Regex>,
    /// When `x-ratelimit-remaining` falls to this, wait for `x-ratelimit-reset`.
    pub rate_limit_floor: u64,
    /// Projects v2 boards (`OWNER/NUMBER`) whose field values become `fields.<Field name>`.
    pub projects: Vec<ProjectRef>,
    /// A Projects v2 number field that is the estimate (wins over `estimate_label`).
    pub estimate_field: Option<String>,
}

impl GitHubSettings {
    /// GraphQL lives at `/graphql` on api.github.com and at `/api/graphql` on Enterprise
    /// Server (not under `/api/v3`).
    pub fn graphql_url(&self) -> Result<Url, SourceError> {
        let mut u = self.api_url.clone();
        let path = u.path().trim_end_matches('/').to_string();
        let graphql = match path.strip_suffix("/api/v3") {
            Some(prefix) => format!("{prefix}/api/graphql"),
            None => format!("{path}/graphql"),
        };
        u.set_path(&graphql);
        u.set_query(None);
        Ok(u)
    }
}

impl SourceKind for GitHubSettings {
    const KIND: &'static str = "github";
    const CAPABILITIES: Capabilities = Capabilities {
        title: "GitHub",
        always_full: false,
        webhook: Some(WebhookAuth::HubSignature {
            ping: Some(("x-github-event", "ping")),
        }),
        writeback: Some(|_| Ok(())),
        metrics: false,
        project_selector: "repo",
        list_keys: &["repos", "projects"],
    };

    fn read(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<Self> {
        read_github(s, sink, base)
    }

    fn build(
        &self,
        name: &str,
        http: HttpSettings,
        _cells: Vec<CellRef>,
    ) -> Result<Arc<dyn ItemSource>, SourceError> {
        Ok(Arc::new(super::GitHubSource::new(name, self.clone(), http)?))
    }
}

fn read_github(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<GitHubSettings> {
    let api_url = s
        .string(sink, "api_url")
        .unwrap_or_else(|| "https://api.github.com".to_string());
    let api_url = match url::Url::parse(api_url.trim_end_matches('/')) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
        _ => {
            sink.report(&s.key("api_url"), format!("expected an http(s) URL like \"https://api.github.com\" or \"https://HOST/api/v3\", found \"{api_url}\""));
            None
        }
    };
    // A token, or a GitHub App installation (app_id + installation_id + private key).
    let app_id = s.integer(sink, "app_id", 1, i64::MAX);
    let installation_id = s.integer(sink, "installation_id", 1, i64::MAX);
    let app = s.has("app_id")
        || s.has("installation_id")
        || s.has("private_key_file")
        || s.has("private_key_env");
    let auth = if app {
        if s.has("token_env") || s.has("token_file") {
            sink.report(&s.key("app_id"), "set either a token (token_env/token_file) or a GitHub App (app_id, installation_id, private_key_file), not both");
        }
        for (key, present) in [
            ("app_id", s.has("app_id")),
            ("installation_id", s.has("installation_id")),
        ] {
            if !present {
                sink.report(&s.key(key), "is required for GitHub App authentication");
            }
        }
        let key = secret(s, sink, "private_key_env", "private_key_file", base, true);
        match (app_id, installation_id, key) {
            (Some(a), Some(i), Some(k)) => Some(GitHubAuth::App {
                app_id: a as u64,
                installation_id: i as u64,
                private_key: k,
            }),
            _ => None,
        }
    } else {
        secret(s, sink, "token_env", "token_file", base, true)
            .map(GitHubAuth::Token)
    };
    let repos = match s.string_list(sink, "repos") {
        None => {
            sink.report(
                &s.key("repos"),
                "is required: a list of \"owner/name\" repositories",
            );
            None
        }
        Some(list) if list.is_empty() => {
            sink.report(&s.key("repos"), "lists no repository");
            None
        }
        Some(list) => {
            let bad: Vec<&String> = list
                .iter()
                .filter(|r| {
                    let mut parts = r.split('/');
                    !(parts.next().is_some_and(|o| !o.is_empty())
                        && parts.next().is_some_and(|n| !n.is_empty())
                        && parts.next().is_none())
                })
                .collect();
            if bad.is_empty() {
                Some(list)
            } else {
                sink.report(
                    &s.key("repos"),
                    format!("expected \"owner/name\", found {bad:?}"),
                );
                None
            }
        }
    };
    let per_page = s.integer(sink, "per_page", 1, 100).unwrap_or(100) as u32;
    let rate_limit_floor = s
        .integer(sink, "rate_limit_floor", 0, 100_000)
        .unwrap_or(50) as u64;
    let estimate_label =
        s.string(sink, "estimate_label")
            .and_then(|re| match regex::Regex::new(&re) {
                Ok(r) if r.captures_len() >= 2 => Some(r),
                Ok(_) => {
                    sink.report(
                        &s.key("estimate_label"),
                        "needs a capture group around the number, e.g. \"^points:(\\d+)$\"",
                    );
                    None
                }
                Err(e) => {
                    sink.report(&s.key("estimate_label"), format!("invalid regex: {e}"));
                    None
                }
            });
    let projects = s
        .string_list(sink, "projects")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let parsed = ProjectRef::parse(&p);
            if parsed.is_none() {
                sink.report(&s.key("projects"), format!("expected \"OWNER/NUMBER\" (an organisation's or user's project), found \"{p}\""));
            }
            parsed
        })
        .collect();
    let estimate_field = s.string(sink, "estimate_field");
    Some(GitHubSettings {
        api_url: api_url?,
        auth: auth?,
        repos: repos?,
        per_page,
        estimate_label,
        rate_limit_floor,
        projects,
        estimate_field,
    })
}
