//! Jira Cloud and Data Center as a source of items.

use secrecy::SecretString;
use url::Url;

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
    pub token: SecretString,
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
