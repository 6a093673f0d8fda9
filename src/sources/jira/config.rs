//! A Jira source's settings: the keys of `[sources.NAME]` with `kind = "jira"`, read and
//! validated, and what a Jira source can do.

use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::configfile::reader::{secret, Section, Sink};
use crate::configfile::SecretRef;
use crate::model::CellRef;
use crate::sources::http::HttpSettings;
use crate::sources::kind::{Capabilities, SourceKind};
use crate::sources::webhook::WebhookAuth;
use crate::sources::{ItemSource, SourceError};

/// Which Jira REST dialect to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JiraFlavor {
    /// `GET /rest/api/3/search/jql` with `nextPageToken`/`isLast`; Basic email + API token.
    Cloud,
    /// `GET /rest/api/2/search` with `startAt`/`total`; Bearer personal access token.
    DataCenter,
}

/// A Jira source's settings, validated.
#[derive(Debug, Clone)]
pub struct JiraSettings {
    pub url: Url,
    pub flavor: JiraFlavor,
    /// Cloud only: the account e-mail for Basic auth.
    pub email: Option<String>,
    pub token: SecretRef,
    /// The user's scope; okrsync adds the `updated` bound and the ordering.
    pub jql: String,
    pub story_points_field: Option<String>,
    /// A custom field holding the epic key (Data Center "Epic Link", e.g. customfield_10014).
    pub epic_field: Option<String>,
    /// Other fields the rules use (`fields.<x>` → `x`), requested explicitly.
    pub extra_fields: Vec<String>,
    /// Issues per page (Jira caps it; 100 is the usual maximum).
    pub page_size: u32,
}

impl SourceKind for JiraSettings {
    const KIND: &'static str = "jira";
    const CAPABILITIES: Capabilities = Capabilities {
        title: "Jira",
        always_full: false,
        webhook: Some(WebhookAuth::HubSignature { ping: None }),
        writeback: Some(|label| {
            if label.trim().chars().any(char::is_whitespace) {
                Err(format!("Jira labels cannot contain spaces, found \"{label}\""))
            } else {
                Ok(())
            }
        }),
        metrics: false,
        project_selector: "project",
        list_keys: &[],
    };

    fn read(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<Self> {
        read_jira(s, sink, base)
    }

    fn build(
        &self,
        name: &str,
        http: HttpSettings,
        _cells: Vec<CellRef>,
    ) -> Result<Arc<dyn ItemSource>, SourceError> {
        Ok(Arc::new(super::JiraSource::new(name, self.clone(), http)?))
    }

    /// The Jira client asks for every custom field a rule reads.
    fn use_rule_fields(&mut self, fields: Vec<String>) {
        self.extra_fields = fields;
    }
}

fn read_jira(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<JiraSettings> {
    let url = s.required_string(sink, "url").and_then(|u| match url::Url::parse(u.trim_end_matches('/')) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(url),
        _ => {
            sink.report(&s.key("url"), format!("expected an http(s) URL like \"https://acme.atlassian.net\", found \"{u}\""));
            None
        }
    });
    let flavor = match s
        .choice(sink, "flavor", &["cloud", "datacenter"])
        .as_deref()
    {
        Some("datacenter") => JiraFlavor::DataCenter,
        _ => JiraFlavor::Cloud,
    };
    let email = s.string(sink, "email");
    if flavor == JiraFlavor::Cloud && email.is_none() {
        sink.report(
            &s.key("email"),
            "is required for Jira Cloud (Basic auth with e-mail and API token)",
        );
    }
    let token = secret(s, sink, "token_env", "token_file", base, true);
    let jql = s.string(sink, "jql").unwrap_or_default();
    let story_points_field = s.string(sink, "story_points_field");
    let epic_field = s.string(sink, "epic_field");
    let page_size = s.integer(sink, "page_size", 1, 1000).unwrap_or(100) as u32;
    Some(JiraSettings {
        url: url?,
        flavor,
        email,
        token: token?,
        jql,
        story_points_field,
        epic_field,
        extra_fields: Vec::new(),
        page_size,
    })
}
