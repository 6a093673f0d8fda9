//! Jira Cloud and Data Center as a source of items.

mod config;
mod parse;

pub use config::{JiraFlavor, JiraSettings};
pub use parse::{parse_issue, parse_jira_time, read_page, Issue, SearchPage};

use chrono::{DateTime, Utc};
use futures::stream;

use crate::model::{Item, ItemRef};
use crate::sources::http::{Auth, HttpClient, HttpSettings};
use crate::sources::{ItemSource, PageStream, SourceError};

/// A Jira instance as a source of items.
pub struct JiraSource {
    name: String,
    settings: JiraSettings,
    http: HttpClient,
    auth: Auth,
    fields: String,
}

/// Where the next page starts.
enum Cursor {
    First,
    Token(String),
    StartAt(u64),
    Done,
}

impl JiraSource {
    pub fn new(
        name: &str,
        settings: JiraSettings,
        http: HttpSettings,
    ) -> Result<JiraSource, SourceError> {
        let token = settings
            .token
            .get()
            .map_err(|p| SourceError::Other(p.to_string()))?
            .clone();
        let auth = match settings.flavor {
            JiraFlavor::Cloud => Auth::Basic {
                user: settings.email.clone().ok_or_else(|| {
                    SourceError::Other("Jira Cloud needs the account e-mail (email = …)".into())
                })?,
                password: token,
            },
            JiraFlavor::DataCenter => Auth::Bearer(token),
        };
        let mut fields: Vec<String> = [
            "summary",
            "status",
            "labels",
            "components",
            "parent",
            "issuetype",
            "project",
            "resolutiondate",
            "updated",
            "created",
            "assignee",
            "fixVersions",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for extra in settings
            .story_points_field
            .iter()
            .chain(settings.epic_field.iter())
            .chain(settings.extra_fields.iter())
        {
            if !fields.contains(extra) {
                fields.push(extra.clone());
            }
        }
        Ok(JiraSource {
            name: name.to_string(),
            http: HttpClient::new(name, http)?,
            auth,
            fields: fields.join(","),
            settings,
        })
    }

    /// The JQL sent: the user's scope, bounded by `updated` in epoch milliseconds (JQL date
    /// literals have minute precision and are read in the account's time zone), oldest first.
    pub fn jql(&self, since: Option<DateTime<Utc>>) -> String {
        let scope = strip_order_by(&self.settings.jql);
        let bound = since.map(|s| format!("updated >= {}", s.timestamp_millis()));
        let filter = match (scope.is_empty(), bound) {
            (true, None) => String::new(),
            (true, Some(b)) => b,
            (false, None) => format!("({scope})"),
            (false, Some(b)) => format!("({scope}) AND {b}"),
        };
        if filter.is_empty() {
            "ORDER BY updated ASC, key ASC".into()
        } else {
            format!("{filter} ORDER BY updated ASC, key ASC")
        }
    }

    fn page_url(&self, jql: &str, cursor: &Cursor) -> Result<url::Url, SourceError> {
        let path = match self.settings.flavor {
            JiraFlavor::Cloud => "rest/api/3/search/jql",
            JiraFlavor::DataCenter => "rest/api/2/search",
        };
        let mut base = self.settings.url.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let mut url = base
            .join(path)
            .map_err(|e| SourceError::Other(format!("bad Jira URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("jql", jql);
            q.append_pair("fields", &self.fields);
            q.append_pair("maxResults", &self.settings.page_size.to_string());
            match cursor {
                Cursor::Token(t) => {
                    q.append_pair("nextPageToken", t);
                }
                Cursor::StartAt(s) => {
                    q.append_pair("startAt", &s.to_string());
                }
                Cursor::First if self.settings.flavor == JiraFlavor::DataCenter => {
                    q.append_pair("startAt", "0");
                }
                _ => {}
            }
        }
        Ok(url)
    }

    async fn page(
        &self,
        jql: &str,
        cursor: Cursor,
    ) -> Result<Option<(Vec<Item>, Cursor)>, SourceError> {
        if matches!(cursor, Cursor::Done) {
            return Ok(None);
        }
        let url = self.page_url(jql, &cursor)?;
        let resp = self.http.get(url, &self.auth).await?;
        // The issues borrow from the body: they become owned items before it is dropped.
        let page = read_page(&resp.body, &self.settings).map_err(|e| resp.parse_error(e))?;
        let count = page.issues.len();
        let items = page
            .issues
            .into_iter()
            .map(|issue| issue.into_item(&self.name, &self.settings))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| SourceError::Parse {
                url: self.settings.url.to_string(),
                message,
            })?;
        let next = match self.settings.flavor {
            JiraFlavor::Cloud => match (page.is_last, page.next_page_token) {
                (Some(true), _) | (_, None) => Cursor::Done,
                (_, Some(t)) if count == 0 && t.is_empty() => Cursor::Done,
                (_, Some(t)) if matches!(&cursor, Cursor::Token(asked) if *asked == t) => {
                    // The same token again would ask for the same page forever.
                    return Err(SourceError::Parse {
                        url: self.settings.url.to_string(),
                        message: "Jira answered a page whose nextPageToken is the one that asked for it; \
                                  the pass stops rather than loop"
                            .into(),
                    });
                }
                (_, Some(t)) => Cursor::Token(t),
            },
            JiraFlavor::DataCenter => {
                let start = page.start_at.unwrap_or(match cursor {
                    Cursor::StartAt(s) => s,
                    _ => 0,
                });
                // The next page starts a page size on (the server's): an answer that holds
                // more than a page (an issue served twice) must not push the start past
                // issues not yet read.
                let step = match page.max_results {
                    Some(m) if m > 0 && count as u64 > m => m,
                    _ => count as u64,
                };
                let next = start + step;
                match page.total {
                    Some(total) if next < total && count > 0 => Cursor::StartAt(next),
                    Some(total) if next < total => {
                        // An empty page before the end: stopping would silently miss the
                        // rest (an incremental pass does not look again), going on would
                        // skip nothing but could loop. The step fails and is tried again.
                        return Err(SourceError::Parse {
                            url: self.settings.url.to_string(),
                            message: format!(
                                "Jira answered an empty page at startAt {start} although it counts {total} issues; \
                                 the pass stops rather than miss the rest"
                            ),
                        });
                    }
                    _ => Cursor::Done,
                }
            }
        };
        Ok(Some((items, next)))
    }
}

/// A JQL string literal: `s` in double quotes, its quotes and backslashes escaped.
pub fn jql_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn strip_order_by(jql: &str) -> String {
    let lower = jql.to_ascii_lowercase();
    let cut = lower.find("order by").unwrap_or(jql.len());
    jql[..cut].trim().to_string()
}

impl ItemSource for JiraSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// `PUT /rest/api/{3|2}/issue/{key}` with `{"update":{"labels":[{"add"|"remove": …}]}}`
    /// (needs the `write:jira-work` scope on Cloud, edit permission on Data Center).
    fn set_label<'a>(
        &'a self,
        key: &'a str,
        label: &'a str,
        present: bool,
    ) -> futures::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let version = match self.settings.flavor {
                JiraFlavor::Cloud => "3",
                JiraFlavor::DataCenter => "2",
            };
            let mut url = self.settings.url.clone();
            url.path_segments_mut()
                .map_err(|_| SourceError::Other("bad Jira URL".into()))?
                .pop_if_empty()
                .extend(["rest", "api", version, "issue", key]);
            let op = if present { "add" } else { "remove" };
            let body = serde_json::json!({ "update": { "labels": [ { op: label } ] } });
            self.http
                .send_json(reqwest::Method::PUT, url, &self.auth, Some(&body))
                .await?;
            Ok(())
        })
    }

    fn fetch(&self, since: Option<DateTime<Utc>>) -> PageStream<'_> {
        let jql = self.jql(since);
        Box::pin(stream::try_unfold(Cursor::First, move |cursor| {
            let jql = jql.clone();
            async move { self.page(&jql, cursor).await }
        }))
    }

    fn requests_sent(&self) -> u64 {
        self.http.requests_sent()
    }

    fn confirm_gone<'a>(
        &'a self,
        missing: Vec<ItemRef>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Item>, SourceError>> {
        Box::pin(async move {
            let scope = strip_order_by(&self.settings.jql);
            let mut still = Vec::new();
            for chunk in missing.chunks(100) {
                // Ids come from the store; quoted, none of them can add a clause.
                let ids: Vec<String> = chunk.iter().map(|i| jql_string(&i.ext_id)).collect();
                let bound = format!("id in ({})", ids.join(", "));
                let jql = if scope.is_empty() {
                    format!("{bound} ORDER BY key ASC")
                } else {
                    format!("({scope}) AND {bound} ORDER BY key ASC")
                };
                let mut cursor = Cursor::First;
                while let Some((items, next)) = self.page(&jql, cursor).await? {
                    still.extend(items);
                    cursor = next;
                }
            }
            Ok(still)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flavor: JiraFlavor, jql: &str) -> JiraSettings {
        JiraSettings {
            url: url::Url::parse("https://jira.example.com/jira").expect("url"),
            flavor,
            email: Some("bot@example.com".into()),
            token: crate::settings::SecretRef::value("t"),
            jql: jql.into(),
            story_points_field: Some("customfield_10016".into()),
            epic_field: None,
            extra_fields: vec!["customfield_10050".into()],
            page_size: 50,
        }
    }

    #[test]
    fn jql_is_bounded_in_epoch_milliseconds_and_ordered() {
        let s = JiraSource::new(
            "jira",
            settings(JiraFlavor::Cloud, "project = PAY ORDER BY rank"),
            HttpSettings::default(),
        )
        .expect("source");
        assert_eq!(s.jql(None), "(project = PAY) ORDER BY updated ASC, key ASC");
        let since = DateTime::parse_from_rfc3339("2026-11-03T10:15:30.250Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            s.jql(Some(since)),
            "(project = PAY) AND updated >= 1793700930250 ORDER BY updated ASC, key ASC"
        );
        let all = JiraSource::new(
            "jira",
            settings(JiraFlavor::Cloud, ""),
            HttpSettings::default(),
        )
        .expect("source");
        assert_eq!(all.jql(None), "ORDER BY updated ASC, key ASC");
    }

    #[test]
    fn urls_keep_the_path_prefix_and_request_fields() {
        let s = JiraSource::new(
            "jira",
            settings(JiraFlavor::DataCenter, "project = PAY"),
            HttpSettings::default(),
        )
        .expect("source");
        let url = s.page_url("x", &Cursor::StartAt(50)).expect("url");
        assert_eq!(url.path(), "/jira/rest/api/2/search");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["startAt"], "50");
        assert_eq!(q["maxResults"], "50");
        assert!(
            q["fields"].contains("customfield_10016") && q["fields"].contains("customfield_10050")
        );
        assert!(q["fields"].contains("status") && q["fields"].contains("resolutiondate"));
        let c = JiraSource::new(
            "jira",
            settings(JiraFlavor::Cloud, "project = PAY"),
            HttpSettings::default(),
        )
        .expect("source");
        let url = c.page_url("x", &Cursor::Token("abc".into())).expect("url");
        assert_eq!(url.path(), "/jira/rest/api/3/search/jql");
        assert!(url
            .query_pairs()
            .any(|(k, v)| k == "nextPageToken" && v == "abc"));
    }

    #[tokio::test]
    async fn stored_ids_are_quoted_so_they_add_no_clause() {
        use crate::simulator::jira::{JiraSim, JiraSimOptions, SimIssue};
        assert_eq!(jql_string("10001"), "\"10001\"");
        let sim = JiraSim::start(JiraSimOptions {
            email: "bot@example.com".into(),
            token: "t".into(),
            ..JiraSimOptions::default()
        })
        .await
        .expect("sim");
        sim.upsert(SimIssue::new(1, "PAY-1", "in scope"));
        sim.upsert(SimIssue::new(2, "HR-1", "out of scope"));
        let mut settings = settings(JiraFlavor::Cloud, "project in (PAY, HR)");
        settings.url = url::Url::parse(&sim.base_url()).expect("url");
        settings.token = crate::settings::SecretRef::value("t");
        settings.email = Some("bot@example.com".into());
        let source = JiraSource::new("jira", settings, HttpSettings::default()).expect("source");
        // A stored id that tries to widen the lookup to every issue in scope.
        let hostile = r#"9") OR project = "HR"#.to_string();
        let found = source
            .confirm_gone(vec![
                ItemRef {
                    ext_id: "1".into(),
                    key: "PAY-1".into(),
                },
                ItemRef {
                    ext_id: hostile,
                    key: "X-1".into(),
                },
            ])
            .await
            .expect("lookup");
        let keys: Vec<&str> = found.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["PAY-1"], "the hostile id added no clause");
    }

    #[test]
    fn cloud_needs_an_email() {
        let mut s = settings(JiraFlavor::Cloud, "");
        s.email = None;
        assert!(JiraSource::new("jira", s, HttpSettings::default()).is_err());
    }
}
