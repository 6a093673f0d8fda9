//! GitHub (github.com or Enterprise Server) as a source: issues and pull requests of the
//! configured repositories through the REST API, with conditional requests and rate-limit
//! pacing, plus the field values of Projects v2 boards (GraphQL) as `fields.<Field name>`.
//! It authenticates with a token or as a GitHub App (`auth`); `parse` reads the REST
//! answers, `projects` the GraphQL ones, `pass` walks a whole pass.

mod auth;
mod config;
mod parse;
mod pass;
pub mod projects;

pub use auth::{app_jwt, AppClaims, GitHubAuth};
pub use config::GitHubSettings;
pub use parse::{parse_issue, read_page, Issue};

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::model::{Item, ItemRef};
pub use crate::sources::http::next_link;
use crate::sources::http::{HttpClient, HttpSettings};
use crate::sources::{ItemSource, PageStream, SourceError};

/// Issues and pull requests of GitHub repositories.
pub struct GitHubSource {
    name: String,
    settings: GitHubSettings,
    http: HttpClient,
    credentials: auth::Credentials,
    /// ETags of first pages that were the whole answer: a 304 then means "nothing changed".
    /// Loaded from the store before each step and stored after it (see `ItemSource`).
    etags: Mutex<BTreeMap<String, String>>,
}

/// Where the stream is in a repository: which one, and which page URL comes next.
pub(super) struct Cursor {
    repo: usize,
    next: Option<Url>,
    first: bool,
}

impl GitHubSource {
    pub fn new(
        name: &str,
        settings: GitHubSettings,
        http: HttpSettings,
    ) -> Result<GitHubSource, SourceError> {
        Ok(GitHubSource {
            name: name.to_string(),
            http: HttpClient::new(name, http)?,
            credentials: auth::Credentials::new(settings.auth.clone()),
            settings,
            etags: Mutex::new(BTreeMap::new()),
        })
    }

    /// The first page of a repository's issues (pull requests included), oldest update first.
    pub fn first_url(&self, repo: &str, since: Option<DateTime<Utc>>) -> Result<Url, SourceError> {
        let base = self.settings.api_url.as_str().trim_end_matches('/');
        let mut url = Url::parse(&format!("{base}/repos/{repo}/issues"))
            .map_err(|e| SourceError::Other(format!("bad GitHub URL for {repo}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("state", "all");
            q.append_pair("sort", "updated");
            q.append_pair("direction", "asc");
            q.append_pair("per_page", &self.settings.per_page.to_string());
            if let Some(s) = since {
                q.append_pair("since", &s.to_rfc3339_opts(SecondsFormat::Secs, true));
            }
        }
        Ok(url)
    }

    async fn page(
        &self,
        since: Option<DateTime<Utc>>,
        mut cur: Cursor,
    ) -> Result<Option<(Vec<Item>, Cursor)>, SourceError> {
        let Some(repo) = self.settings.repos.get(cur.repo).cloned() else {
            return Ok(None);
        };
        let url = match cur.next.take() {
            Some(u) => u,
            None => self.first_url(&repo, since)?,
        };
        let key = url.to_string();
        // Only incremental passes ask conditionally: a full pass must see every item, or
        // the reconcile would take an unchanged repository's items for deleted ones.
        let etag = if cur.first && since.is_some() {
            self.etags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned()
        } else {
            None
        };
        let headers: Vec<(&str, String)> = [
            ("accept", "application/vnd.github+json".to_string()),
            ("x-github-api-version", "2022-11-28".to_string()),
        ]
        .into_iter()
        .chain(etag.map(|e| ("if-none-match", e)))
        .collect();
        let resp = self
            .http
            .send(
                Method::GET,
                url.clone(),
                &self
                    .credentials
                    .current(&self.http, &self.settings.api_url)
                    .await?,
                &headers,
            )
            .await?;
        self.pace(&resp.headers).await?;
        let next_repo = Cursor {
            repo: cur.repo + 1,
            next: None,
            first: true,
        };
        if resp.status == StatusCode::NOT_MODIFIED {
            return Ok(Some((Vec::new(), next_repo)));
        }
        // The issues borrow from the body: they become owned items before it is dropped.
        let issues = parse::read_page(&resp.body).map_err(|e| resp.parse_error(e))?;
        let items = issues
            .iter()
            .map(|issue| issue.to_item(&self.name, &repo, &self.settings))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| SourceError::Parse {
                url: key.clone(),
                message,
            })?;
        let next = next_link(&resp.headers);
        if next.as_ref().is_some_and(|n| n.as_str() == key) {
            // Following it would ask for the same page forever.
            return Err(SourceError::Parse {
                url: key,
                message:
                    "the next link of this page is the page itself; the pass stops rather than loop"
                        .into(),
            });
        }
        // Only the incremental first page is asked conditionally; it keeps the one ETag of
        // its repository (an older `since` is never asked again).
        if cur.first && since.is_some() {
            let older = format!("{}&since=", self.first_url(&repo, None)?);
            let mut etags = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
            etags.retain(|k, _| !k.starts_with(&older) || *k == key);
            match (
                next.is_none(),
                resp.headers.get("etag").and_then(|v| v.to_str().ok()),
            ) {
                (true, Some(e)) => {
                    etags.insert(key, e.to_string());
                }
                _ => {
                    etags.remove(&key);
                }
            }
        }
        let cursor = match next {
            // `next` links are followed exactly as given (large results use opaque `after=`
            // cursors); the client authenticates every request, whatever its host.
            Some(n) => Cursor {
                repo: cur.repo,
                next: Some(n),
                first: false,
            },
            None => next_repo,
        };
        Ok(Some((items, cursor)))
    }

    /// Slows down before the budget is gone: at the floor, waits for the reset.
    async fn pace(&self, headers: &HeaderMap) -> Result<(), SourceError> {
        self.http
            .pace(headers, ("x-ratelimit-remaining", "x-ratelimit-reset"), self.settings.rate_limit_floor)
            .await
    }
}

impl GitHubSource {
    /// Reads one issue. `None` when it is gone: 404/410, or answered from another
    /// repository (it was transferred).
    pub(super) async fn fetch_issue(
        &self,
        repo: &str,
        number: &str,
    ) -> Result<Option<Item>, SourceError> {
        let base = self.settings.api_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}/repos/{repo}/issues/{number}"))
            .map_err(|e| SourceError::Other(format!("bad GitHub URL for {repo}#{number}: {e}")))?;
        let auth = self
            .credentials
            .current(&self.http, &self.settings.api_url)
            .await?;
        let resp = match self.http.get(url, &auth).await {
            Ok(r) => r,
            Err(SourceError::Status {
                status: 404 | 410, ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.pace(&resp.headers).await?;
        let issue: parse::Issue<'_> = resp.json()?;
        let same_repo = issue
            .repository_url()
            .is_none_or(|u| u.ends_with(&format!("/repos/{repo}")));
        if !same_repo {
            return Ok(None);
        }
        issue
            .to_item(&self.name, repo, &self.settings)
            .map(Some)
            .map_err(|message| resp.parse_error(message))
    }
}

impl ItemSource for GitHubSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// `POST /repos/{repo}/issues/{n}/labels` or `DELETE …/labels/{label}` (issues and pull
    /// requests alike; needs `issues: write` / `pull_requests: write`, or `repo` on a
    /// classic token). A label already gone (404 on removal) is what was wanted.
    fn set_label<'a>(
        &'a self,
        key: &'a str,
        label: &'a str,
        present: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let (repo, number) = key
                .rsplit_once('#')
                .filter(|(r, n)| r.contains('/') && n.parse::<u64>().is_ok())
                .ok_or_else(|| {
                    SourceError::Other(format!("\"{key}\" is not a GitHub issue reference"))
                })?;
            let mut url = self.settings.api_url.clone();
            {
                let mut segments = url
                    .path_segments_mut()
                    .map_err(|_| SourceError::Other("bad GitHub URL".into()))?;
                segments.pop_if_empty().push("repos");
                segments.extend(repo.split('/'));
                segments.extend(["issues", number, "labels"]);
                if !present {
                    segments.push(label);
                }
            }
            let auth = self
                .credentials
                .current(&self.http, &self.settings.api_url)
                .await?;
            let answer = if present {
                let body = serde_json::json!({ "labels": [label] });
                self.http
                    .send_json(Method::POST, url, &auth, Some(&body))
                    .await
            } else {
                self.http.send_json(Method::DELETE, url, &auth, None).await
            };
            match answer {
                Ok(resp) => self.pace(&resp.headers).await,
                Err(SourceError::Status { status: 404, .. }) if !present => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn fetch(&self, since: Option<DateTime<Utc>>) -> PageStream<'_> {
        Box::pin(stream::try_unfold(pass::Pass::new(), move |pass| {
            self.step(since, pass)
        }))
    }

    fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    fn load_validators(&self, validators: BTreeMap<String, String>) {
        *self.etags.lock().unwrap_or_else(PoisonError::into_inner) = validators;
    }

    /// The ETags of the configured repositories' incremental first pages.
    fn validators(&self) -> Option<BTreeMap<String, String>> {
        let prefixes: Vec<String> = self
            .settings
            .repos
            .iter()
            .filter_map(|r| self.first_url(r, None).ok())
            .map(|u| format!("{u}&since="))
            .collect();
        let etags = self.etags.lock().unwrap_or_else(PoisonError::into_inner);
        Some(
            etags
                .iter()
                .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// Reads each missing issue: 404/410, or an answer from another repository (it was
    /// transferred), means gone.
    fn confirm_gone<'a>(
        &'a self,
        missing: Vec<ItemRef>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Item>, SourceError>> {
        Box::pin(async move {
            let mut still = Vec::new();
            for ItemRef { key, .. } in missing {
                let Some((repo, number)) = key.split_once('#') else {
                    continue;
                };
                if !self.settings.repos.iter().any(|r| r == repo) {
                    continue; // the repository left the config: its items go
                }
                still.extend(self.fetch_issue(repo, number).await?);
            }
            Ok(still)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(api: &str) -> GitHubSettings {
        GitHubSettings {
            api_url: Url::parse(api).expect("url"),
            auth: GitHubAuth::Token(crate::settings::SecretRef::value("t")),
            repos: vec!["acme/web".into()],
            per_page: 100,
            estimate_label: None,
            rate_limit_floor: 10,
            projects: vec![],
            estimate_field: None,
        }
    }

    #[test]
    fn graphql_urls_for_github_and_enterprise() {
        assert_eq!(
            settings("https://api.github.com")
                .graphql_url()
                .expect("url")
                .as_str(),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            settings("https://ghe.acme.com/api/v3")
                .graphql_url()
                .expect("url")
                .as_str(),
            "https://ghe.acme.com/api/graphql"
        );
        assert_eq!(
            settings("http://127.0.0.1:9")
                .graphql_url()
                .expect("url")
                .as_str(),
            "http://127.0.0.1:9/graphql"
        );
    }

    #[test]
    fn first_page_urls_for_github_and_enterprise() {
        let s = GitHubSource::new(
            "gh",
            settings("https://api.github.com"),
            HttpSettings::default(),
        )
        .expect("source");
        let since = DateTime::parse_from_rfc3339("2026-11-03T10:15:30.250Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            s.first_url("acme/web", Some(since)).expect("url").as_str(),
            "https://api.github.com/repos/acme/web/issues?state=all&sort=updated&direction=asc&per_page=100&since=2026-11-03T10%3A15%3A30Z"
        );
        let e = GitHubSource::new(
            "gh",
            settings("https://ghe.acme.com/api/v3/"),
            HttpSettings::default(),
        )
        .expect("source");
        assert_eq!(
            e.first_url("acme/web", None).expect("url").path(),
            "/api/v3/repos/acme/web/issues"
        );
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            "<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; rel=\"next\", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&h).map(|u| u.to_string()),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=2".into())
        );
        h.insert(
            "link",
            "<https://x/y?after=abc>; rel=\"prev\""
                .parse()
                .expect("header"),
        );
        assert_eq!(next_link(&h), None);
    }
}
