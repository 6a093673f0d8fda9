//! GitLab (gitlab.com or self-managed, also under a sub-path) as a source: the issues and
//! merge requests of the configured projects and groups through the REST API v4, oldest
//! update first, following `Link: rel="next"` exactly as given (keyset cursors where the
//! endpoint offers them, page numbers elsewhere), with `RateLimit-*` pacing. `parse` reads
//! the answers.

mod config;
mod parse;

pub use config::GitLabSettings;
pub use parse::{parse_work, project_of_web_url, read_page, Context, Listing, Work};

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream;
use reqwest::header::HeaderMap;
use reqwest::Method;
use url::Url;

use crate::model::{Item, ItemRef};
use crate::sources::http::{next_link, Auth, HttpClient, HttpSettings};
use crate::sources::{ItemSource, PageStream, SourceError};

/// Issues and merge requests of GitLab projects and groups.
pub struct GitLabSource {
    name: String,
    settings: GitLabSettings,
    http: HttpClient,
    /// Cleared when the instance refuses `pagination=keyset` on a project's issues (an
    /// older GitLab, or one that cannot page that ordering by keyset); page numbers then.
    keyset: AtomicBool,
}

/// What a pass lists, in order: each project's issues and merge requests, then each
/// group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Project(String, Listing),
    Group(String, Listing),
}

/// Where a pass is: which scope, and which page URL comes next.
struct Cursor {
    scope: usize,
    next: Option<Url>,
}

impl GitLabSource {
    pub fn new(
        name: &str,
        settings: GitLabSettings,
        http: HttpSettings,
    ) -> Result<GitLabSource, SourceError> {
        Ok(GitLabSource {
            name: name.to_string(),
            http: HttpClient::new(name, http)?,
            settings,
            keyset: AtomicBool::new(true),
        })
    }

    fn auth(&self) -> Result<Auth, SourceError> {
        self.settings
            .token
            .get()
            .map(|t| Auth::Bearer(t.clone()))
            .map_err(|p| SourceError::Other(p.to_string()))
    }

    /// Every list a pass reads.
    pub fn scopes(&self) -> Vec<Scope> {
        let both = [Listing::Issues, Listing::MergeRequests];
        let projects = self
            .settings
            .projects
            .iter()
            .flat_map(|p| both.map(|l| Scope::Project(p.clone(), l)));
        let groups = self
            .settings
            .groups
            .iter()
            .flat_map(|g| both.map(|l| Scope::Group(g.clone(), l)));
        projects.chain(groups).collect()
    }

    /// The first page of a scope, oldest update first, from `since` when given.
    pub fn first_url(&self, scope: &Scope, since: Option<DateTime<Utc>>) -> Result<Url, SourceError> {
        let (kind, path, listing) = match scope {
            Scope::Project(p, l) => ("projects", p, *l),
            Scope::Group(g, l) => ("groups", g, *l),
        };
        let mut url = self.settings.api(&[kind, path, listing.segment()])?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("state", "all");
            q.append_pair("order_by", "updated_at");
            q.append_pair("sort", "asc");
            q.append_pair("per_page", &self.settings.per_page.to_string());
            if let Some(s) = since {
                q.append_pair("updated_after", &s.to_rfc3339_opts(SecondsFormat::Millis, true));
            }
            if self.keyset_for(scope) {
                q.append_pair("pagination", "keyset");
            }
        }
        Ok(url)
    }

    /// Keyset pagination is offered for a project's issues (ordered by `updated_at`).
    fn keyset_for(&self, scope: &Scope) -> bool {
        matches!(scope, Scope::Project(_, Listing::Issues)) && self.keyset.load(Ordering::Relaxed)
    }

    async fn page(
        &self,
        since: Option<DateTime<Utc>>,
        mut cur: Cursor,
    ) -> Result<Option<(Vec<Item>, Cursor)>, SourceError> {
        let scopes = self.scopes();
        let Some(scope) = scopes.get(cur.scope) else {
            return Ok(None);
        };
        let first = cur.next.is_none();
        let url = match cur.next.take() {
            Some(u) => u,
            None => self.first_url(scope, since)?,
        };
        let key = url.to_string();
        let resp = match self.http.get(url, &self.auth()?).await {
            Err(SourceError::Status { status: 405 | 400, .. })
                if first && self.keyset_for(scope) =>
            {
                // An older instance that cannot page this list by keyset: page numbers.
                tracing::info!(source = %self.name, "keyset pagination refused; using page numbers");
                self.keyset.store(false, Ordering::Relaxed);
                return Ok(Some((Vec::new(), cur)));
            }
            other => other?,
        };
        self.pace(&resp.headers).await?;
        let (project, listing) = match scope {
            Scope::Project(p, l) => (Some(p.as_str()), *l),
            Scope::Group(_, l) => (None, *l),
        };
        let context = Context {
            base_url: self.settings.url.as_str(),
            project,
        };
        let works = parse::read_page(&resp.body).map_err(|e| resp.parse_error(e))?;
        let mut items = works
            .iter()
            .map(|w| w.to_item(&self.name, listing, &context))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| SourceError::Parse {
                url: key.clone(),
                message,
            })?;
        if let Scope::Group(g, _) = scope {
            // Each item once per pass: a project also listed by name, or in a group listed
            // earlier, was read there.
            let earlier: Vec<&String> = self.settings.groups.iter().take_while(|x| *x != g).collect();
            items.retain(|i| {
                self.settings.in_group(g, &i.project)
                    && !self.settings.projects.contains(&i.project)
                    && !earlier.iter().any(|e| self.settings.in_group(e, &i.project))
            });
        }
        let next = next_link(&resp.headers);
        if next.as_ref().is_some_and(|n| n.as_str() == key) {
            return Err(SourceError::Parse {
                url: key,
                message:
                    "the next link of this page is the page itself; the pass stops rather than loop"
                        .into(),
            });
        }
        let cursor = match next {
            Some(n) => Cursor {
                scope: cur.scope,
                next: Some(n),
            },
            None => Cursor {
                scope: cur.scope + 1,
                next: None,
            },
        };
        Ok(Some((items, cursor)))
    }

    /// Slows down before the budget is gone: at the floor, waits for `RateLimit-Reset`.
    async fn pace(&self, headers: &HeaderMap) -> Result<(), SourceError> {
        self.http
            .pace(headers, ("ratelimit-remaining", "ratelimit-reset"), self.settings.rate_limit_floor)
            .await
    }

    /// Reads one issue or merge request by its reference. `None` when it is gone (404).
    async fn fetch_one(&self, key: &str) -> Result<Option<Item>, SourceError> {
        let Some((project, listing, iid)) = split_key(key) else {
            return Ok(None);
        };
        let url = self
            .settings
            .api(&["projects", project, listing.segment(), iid])?;
        let resp = match self.http.get(url, &self.auth()?).await {
            Ok(r) => r,
            Err(SourceError::Status {
                status: 404 | 410, ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.pace(&resp.headers).await?;
        let work: Work<'_> = resp.json()?;
        let context = Context {
            base_url: self.settings.url.as_str(),
            project: Some(project),
        };
        let item = work
            .to_item(&self.name, listing, &context)
            .map_err(|message| resp.parse_error(message))?;
        // Answered for another reference: the project was renamed or moved away.
        Ok((item.key == key).then_some(item))
    }
}

/// `acme/web#12` → (`acme/web`, issues, `12`); `acme/web!5` → merge requests.
pub fn split_key(key: &str) -> Option<(&str, Listing, &str)> {
    let (at, listing) = match (key.rfind('#'), key.rfind('!')) {
        (Some(h), Some(b)) if b > h => (b, Listing::MergeRequests),
        (Some(h), _) => (h, Listing::Issues),
        (None, Some(b)) => (b, Listing::MergeRequests),
        (None, None) => return None,
    };
    let (project, iid) = (&key[..at], &key[at + 1..]);
    (project.contains('/') && iid.parse::<u64>().is_ok()).then_some((project, listing, iid))
}

impl ItemSource for GitLabSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn fetch(&self, since: Option<DateTime<Utc>>) -> PageStream<'_> {
        Box::pin(stream::try_unfold(
            Cursor {
                scope: 0,
                next: None,
            },
            move |cur| self.page(since, cur),
        ))
    }

    fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    /// Reads each missing issue or merge request: only a 404 (or an answer for another
    /// reference) means gone. Items of projects no longer in scope go without asking.
    fn confirm_gone<'a>(
        &'a self,
        missing: Vec<ItemRef>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Item>, SourceError>> {
        Box::pin(async move {
            let mut still = Vec::new();
            for ItemRef { key, .. } in missing {
                let Some((project, _, _)) = split_key(&key) else {
                    continue;
                };
                if !self.settings.in_scope(project) {
                    continue;
                }
                still.extend(self.fetch_one(&key).await?);
            }
            Ok(still)
        })
    }

    /// `PUT /projects/{path}/issues/{iid}` (or `merge_requests`) with `add_labels` or
    /// `remove_labels`: the other labels stay as they are. Needs the `api` scope.
    fn set_label<'a>(
        &'a self,
        key: &'a str,
        label: &'a str,
        present: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let (project, listing, iid) = split_key(key).ok_or_else(|| {
                SourceError::Other(format!("\"{key}\" is not a GitLab issue or merge request reference"))
            })?;
            let url = self
                .settings
                .api(&["projects", project, listing.segment(), iid])?;
            let field = if present { "add_labels" } else { "remove_labels" };
            let body = serde_json::json!({ field: label });
            let resp = self
                .http
                .send_json(Method::PUT, url, &self.auth()?, Some(&body))
                .await?;
            self.pace(&resp.headers).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SecretRef;

    fn source(url: &str) -> GitLabSource {
        GitLabSource::new(
            "gl",
            GitLabSettings {
                url: Url::parse(url).expect("url"),
                token: SecretRef::value("t"),
                projects: vec!["acme/platform/web".into()],
                groups: vec!["acme".into()],
                include_subgroups: true,
                per_page: 50,
                rate_limit_floor: 10,
            },
            HttpSettings::default(),
        )
        .expect("source")
    }

    #[test]
    fn first_page_urls() {
        let s = source("https://git.acme.com/gitlab");
        let scopes = s.scopes();
        assert_eq!(scopes.len(), 4);
        let since = DateTime::parse_from_rfc3339("2026-11-03T10:15:30.250Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            s.first_url(&scopes[0], Some(since)).expect("url").as_str(),
            "https://git.acme.com/gitlab/api/v4/projects/acme%2Fplatform%2Fweb/issues?state=all&order_by=updated_at&sort=asc&per_page=50&updated_after=2026-11-03T10%3A15%3A30.250Z&pagination=keyset"
        );
        assert_eq!(
            s.first_url(&scopes[3], None).expect("url").as_str(),
            "https://git.acme.com/gitlab/api/v4/groups/acme/merge_requests?state=all&order_by=updated_at&sort=asc&per_page=50"
        );
        s.keyset.store(false, Ordering::Relaxed);
        assert!(!s
            .first_url(&scopes[0], None)
            .expect("url")
            .as_str()
            .contains("keyset"));
    }

    /// `RateLimit-Remaining` at the floor waits for `RateLimit-Reset`, or fails the step
    /// when that is further away than `max_retry_after` (the simulator resets in a minute).
    #[tokio::test]
    async fn the_rate_limit_headers_pace_the_pass() {
        use futures::StreamExt as _;
        let sim = crate::simulator::gitlab::GitLabSim::start("tok", None)
            .await
            .expect("sim");
        sim.upsert(crate::simulator::gitlab::GlItem::issue(
            1,
            "acme/platform/web",
            1,
            "One",
        ));
        let source = GitLabSource::new(
            "gl",
            GitLabSettings {
                url: Url::parse(&sim.url()).expect("url"),
                token: SecretRef::value("tok"),
                projects: vec!["acme/platform/web".into()],
                groups: vec![],
                include_subgroups: true,
                per_page: 100,
                rate_limit_floor: 1_000_000,
            },
            HttpSettings {
                max_retry_after: std::time::Duration::from_secs(5),
                ..HttpSettings::default()
            },
        )
        .expect("source");
        let first = source.fetch(None).next().await.expect("a page");
        match first {
            Err(SourceError::RateLimited { wait_secs, max_secs }) => {
                assert!((55..=60).contains(&wait_secs), "{wait_secs}");
                assert_eq!(max_secs, 5);
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert_eq!(sim.requests().len(), 1);
    }

    #[test]
    fn references_split_into_project_listing_and_iid() {
        assert_eq!(
            split_key("acme/platform/web#12"),
            Some(("acme/platform/web", Listing::Issues, "12"))
        );
        assert_eq!(
            split_key("acme/web!5"),
            Some(("acme/web", Listing::MergeRequests, "5"))
        );
        assert_eq!(split_key("web#5"), None);
        assert_eq!(split_key("acme/web#x"), None);
        assert_eq!(split_key("PAY-1"), None);
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            "<https://gitlab.example.com/api/v4/projects/8/issues?id=8&page=2&per_page=3>; rel=\"next\", <https://gitlab.example.com/api/v4/projects/8/issues?id=8&page=1&per_page=3>; rel=\"first\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&h).map(|u| u.to_string()),
            Some("https://gitlab.example.com/api/v4/projects/8/issues?id=8&page=2&per_page=3".into())
        );
    }
}
