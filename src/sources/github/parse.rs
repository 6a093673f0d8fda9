//! GitHub REST issue objects (pull requests included) → items.
//!
//! Categories: an open pull request, or an open issue with an assignee, is in progress;
//! other open issues are to do; a merged pull request and an issue closed as completed are
//! done; an issue closed as not planned (or as a duplicate) and a pull request closed
//! without merging are abandoned: they leave every KR's scope.
//!
//! A list page is read from the response body in one pass ([`read_page`]) into [`Issue`]s
//! that hold only the keys okrsync uses, their strings borrowed from the body (see
//! `sources::lenient`: a key of an unexpected type reads as absent, as it did when pages
//! were walked as `serde_json::Value`s); user objects, reactions, bodies and the rest are
//! skipped. [`Issue::to_item`] builds the owned [`Item`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::GitHubSettings;
use crate::model::{Category, Item, ItemKind};
use crate::sources::lenient::{lenient_object, First, List, NameOrText, Obj, Present, Scalar};

lenient_object! {
    /// An issue or pull request as read from a list page (`/repos/{repo}/issues`), a
    /// single issue, or a `/pulls` object: the keys okrsync uses, nothing else.
    pub struct Issue<'a> {
        number: Scalar<'a> = "number",
        id: Scalar<'a> = "id",
        title: Scalar<'a> = "title",
        html_url: Scalar<'a> = "html_url",
        repository_url: Scalar<'a> = "repository_url",
        state: Scalar<'a> = "state",
        state_reason: Scalar<'a> = "state_reason",
        created_at: Scalar<'a> = "created_at",
        updated_at: Scalar<'a> = "updated_at",
        closed_at: Scalar<'a> = "closed_at",
        /// An issue-list entry that is a pull request carries `pull_request`…
        pull_request: Obj<PullRequestLink<'a>> = "pull_request",
        /// …a `/pulls` object has `head` and `base`, and these at the top.
        head: Present = "head",
        base: Present = "base",
        merged_at: Scalar<'a> = "merged_at",
        merged: Scalar<'a> = "merged",
        draft: Scalar<'a> = "draft",
        user: Obj<Login<'a>> = "user",
        assignee: Obj<Login<'a>> = "assignee",
        assignees: First<Obj<Login<'a>>> = "assignees",
        labels: List<NameOrText<'a>> = "labels",
        milestone: Obj<Milestone<'a>> = "milestone",
    }
}

lenient_object! {
    struct PullRequestLink<'a> {
        merged_at: Scalar<'a> = "merged_at",
    }
}

lenient_object! {
    struct Login<'a> {
        login: Scalar<'a> = "login",
    }
}

lenient_object! {
    struct Milestone<'a> {
        title: Scalar<'a> = "title",
    }
}

/// Reads a page of `/repos/{repo}/issues` (a JSON array) from the response body; the
/// issues borrow from it.
pub fn read_page(body: &[u8]) -> Result<Vec<Issue<'_>>, serde_json::Error> {
    serde_json::from_slice(body)
}

fn owned(v: &Scalar) -> Option<String> {
    v.text().map(str::to_string)
}

fn time(v: &Scalar) -> Option<DateTime<Utc>> {
    v.text()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Normalises one issue or pull request given as a `Value` (a webhook's `issue`) of `repo`
/// (`owner/name`); the error names it.
pub fn parse_issue(
    raw: &Value,
    source: &str,
    repo: &str,
    settings: &GitHubSettings,
) -> Result<Item, String> {
    Issue::deserialize(raw)
        .map_err(|e| e.to_string())?
        .to_item(source, repo, settings)
}

impl Issue<'_> {
    /// The API URL of the repository the issue is in (an issue read by number from a
    /// repository it was transferred out of answers from its new one).
    pub fn repository_url(&self) -> Option<&str> {
        self.repository_url.as_str()
    }

    /// Normalises the issue or pull request of `repo` (`owner/name`); the error names it.
    pub fn to_item(
        &self,
        source: &str,
        repo: &str,
        settings: &GitHubSettings,
    ) -> Result<Item, String> {
        let number = self
            .number
            .as_u64()
            .ok_or_else(|| format!("an issue of {repo} without a number"))?;
        let key = format!("{repo}#{number}");
        let ext_id = match &self.id {
            Scalar::Number(n) => n.to_string(),
            Scalar::Str(s) if !s.is_empty() => s.to_string(),
            _ => key.clone(),
        };
        let updated =
            time(&self.updated_at).ok_or_else(|| format!("{key} has no readable updated_at"))?;
        // An issue-list entry carries `pull_request`; a `/pulls` object has `head` and
        // `base`, and its `merged_at` at the top.
        let pr_merged_at = match (&self.pull_request, self.head.0 && self.base.0) {
            (Obj::Object(p), _) => Some(&p.merged_at),
            (_, true) => Some(&self.merged_at),
            _ => None,
        };
        let is_pr = pr_merged_at.is_some();
        let merged_at = pr_merged_at.and_then(time).filter(|_| {
            self.merged.as_bool() != Some(false) || self.state.as_str() == Some("closed")
        });
        let state = self.state.text().unwrap_or("open");
        let state_reason = owned(&self.state_reason);
        let assignee = self
            .assignee
            .get()
            .and_then(|a| owned(&a.login))
            .or_else(|| {
                self.assignees
                    .0
                    .as_ref()
                    .and_then(Obj::get)
                    .and_then(|a| owned(&a.login))
            });
        let labels: Vec<String> = self
            .labels
            .0
            .iter()
            .filter_map(|l| l.0.as_deref().map(str::to_string))
            .collect();
        let (status, category, abandoned, resolved) = if state == "open" {
            let started = is_pr || assignee.is_some();
            (
                "open".to_string(),
                if started {
                    Category::InProgress
                } else {
                    Category::Todo
                },
                false,
                None,
            )
        } else if is_pr {
            match merged_at {
                Some(m) => ("merged".to_string(), Category::Done, false, Some(m)),
                None => ("closed".to_string(), Category::Todo, true, None),
            }
        } else {
            match state_reason.as_deref() {
                Some("not_planned") | Some("duplicate") => {
                    ("closed".to_string(), Category::Todo, true, None)
                }
                _ => (
                    "closed".to_string(),
                    Category::Done,
                    false,
                    time(&self.closed_at).or(Some(updated)),
                ),
            }
        };
        let estimate = settings.estimate_label.as_ref().and_then(|re| {
            labels.iter().find_map(|l| {
                re.captures(l)
                    .and_then(|c| c.get(1))
                    .and_then(|m| m.as_str().trim().parse::<f64>().ok())
            })
        });
        let mut fields = BTreeMap::new();
        if let Some(login) = self.user.get().and_then(|u| owned(&u.login)) {
            fields.insert("author".to_string(), Value::String(login));
        }
        if let Some(r) = &state_reason {
            fields.insert("state_reason".to_string(), Value::String(r.clone()));
        }
        if let Some(d) = self.draft.as_bool().filter(|_| is_pr) {
            fields.insert("draft".to_string(), Value::Bool(d));
        }
        Ok(Item {
            source: source.to_string(),
            ext_id,
            key,
            kind: if is_pr {
                ItemKind::PullRequest
            } else {
                ItemKind::Issue
            },
            title: owned(&self.title).unwrap_or_default(),
            url: owned(&self.html_url).unwrap_or_default(),
            project: repo.to_string(),
            item_type: if is_pr { "pull_request" } else { "issue" }.to_string(),
            status,
            category,
            labels,
            components: Vec::new(),
            epic: None,
            parent: None,
            milestone: self.milestone.get().and_then(|m| owned(&m.title)),
            assignee,
            estimate,
            created: time(&self.created_at),
            updated,
            resolved,
            fields,
            abandoned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn settings() -> GitHubSettings {
        GitHubSettings {
            api_url: url::Url::parse("https://api.github.com").expect("url"),
            auth: crate::sources::github::GitHubAuth::Token(crate::settings::SecretRef::value("t")),
            repos: vec![],
            per_page: 100,
            estimate_label: Some(regex::Regex::new(r"^points:(\d+)$").expect("re")),
            rate_limit_floor: 10,
            projects: vec![],
            estimate_field: None,
        }
    }

    #[test]
    fn every_page_of_a_recorded_pagination() {
        let pages = fixture("rest-list-repo-issues-paginated.octokit-fixtures.json");
        let mut n = 0;
        for page in pages.as_array().expect("pages") {
            for raw in page["response"].as_array().expect("issues") {
                let i = parse_issue(
                    raw,
                    "gh",
                    "octokit-fixture-org/paginate-issues",
                    &settings(),
                )
                .expect("issue");
                assert_eq!(i.kind, ItemKind::Issue);
                assert!(i.key.starts_with("octokit-fixture-org/paginate-issues#"));
                assert!(i.url.starts_with("https://github.com/"));
                n += 1;
            }
        }
        assert_eq!(n, 13);
    }

    #[test]
    fn an_item_with_a_pull_request_key_is_a_pull_request() {
        let list = fixture("rest-list-repo-issues-with-pull_request.go-scm.json");
        let i = parse_issue(&list[0], "gh", "octocat/Hello-World", &settings()).expect("issue");
        assert_eq!(i.kind, ItemKind::PullRequest);
        assert_eq!(i.key, "octocat/Hello-World#1347");
        assert_eq!(
            i.category,
            Category::InProgress,
            "an open pull request is work under way"
        );
        assert_eq!(i.labels, vec!["bug".to_string()]);
        assert_eq!(i.milestone.as_deref(), Some("v1.0"));
        assert_eq!(i.assignee.as_deref(), Some("octocat"));
    }

    #[test]
    fn a_pull_request_object_and_webhook_issues() {
        let pr = parse_issue(
            &fixture("rest-pull-request.go-scm.json"),
            "gh",
            "octocat/Hello-World",
            &settings(),
        )
        .expect("pr");
        assert_eq!(
            (pr.kind, pr.key.as_str()),
            (ItemKind::PullRequest, "octocat/Hello-World#1347")
        );
        assert_eq!(pr.category, Category::InProgress);
        for name in [
            "webhook-issues-opened.octokit-webhooks.json",
            "webhook-issues-edited.octokit-webhooks.json",
            "webhook-issues-labeled.octokit-webhooks.json",
            "webhook-issues-milestoned.octokit-webhooks.json",
        ] {
            let delivery = fixture(name);
            let repo = delivery["repository"]["full_name"].as_str().expect("repo");
            let i = parse_issue(&delivery["issue"], "gh", repo, &settings())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(i.key, format!("{repo}#{}", delivery["issue"]["number"]));
            // The milestoned delivery is about a pull request: it carries `pull_request`.
            let expected = if delivery["issue"].get("pull_request").is_some() {
                ItemKind::PullRequest
            } else {
                ItemKind::Issue
            };
            assert_eq!(i.kind, expected, "{name}");
        }
        let milestoned = fixture("webhook-issues-milestoned.octokit-webhooks.json");
        let i = parse_issue(
            &milestoned["issue"],
            "gh",
            "Codertocat/Hello-World",
            &settings(),
        )
        .expect("issue");
        assert_eq!(i.milestone.as_deref(), Some("v1.0"));
    }

    #[test]
    fn closed_states() {
        let base = serde_json::json!({
            "id": 1, "number": 7, "title": "t", "html_url": "https://github.com/a/b/issues/7",
            "updated_at": "2026-11-03T10:00:00Z", "closed_at": "2026-11-02T09:00:00Z",
            "state": "closed", "labels": [{"name": "points:5"}]
        });
        let with = |patch: Value| {
            let mut v = base.clone();
            if let (Some(o), Some(p)) = (v.as_object_mut(), patch.as_object()) {
                for (k, x) in p {
                    o.insert(k.clone(), x.clone());
                }
            }
            parse_issue(&v, "gh", "a/b", &settings()).expect("issue")
        };
        let done = with(serde_json::json!({"state_reason": "completed"}));
        assert_eq!(
            (done.category, done.abandoned, done.estimate),
            (Category::Done, false, Some(5.0))
        );
        assert_eq!(
            done.resolved.map(|t| t.to_rfc3339()),
            Some("2026-11-02T09:00:00+00:00".into())
        );
        let not_planned = with(serde_json::json!({"state_reason": "not_planned"}));
        assert!(not_planned.abandoned);
        assert_ne!(not_planned.category, Category::Done);
        let merged = with(
            serde_json::json!({"pull_request": {"url": "u", "merged_at": "2026-11-01T08:00:00Z"}}),
        );
        assert_eq!(
            (merged.kind, merged.category, merged.status.as_str()),
            (ItemKind::PullRequest, Category::Done, "merged")
        );
        let unmerged = with(serde_json::json!({"pull_request": {"url": "u", "merged_at": null}}));
        assert!(unmerged.abandoned);
    }

    /// The item of a page holding one issue, read from its bytes; from a `Value`, the same.
    fn read_one(body: &str) -> Result<Item, String> {
        let page = read_page(body.as_bytes()).expect("a page");
        assert_eq!(page.len(), 1, "{body}");
        let item = page[0].to_item("gh", "a/b", &settings());
        let value: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            parse_issue(&value[0], "gh", "a/b", &settings()),
            item,
            "{body}"
        );
        item
    }

    #[test]
    fn escapes_nulls_and_labels_as_strings_or_objects() {
        let i = read_one(
            r#"[{"id": "I_kw1", "number": 7, "updated_at": "2026-11-03T10:00:00Z",
                "title": "Caf\u00e9 \"menu\"", "html_url": "https:\/\/github.com\/a\/b\/issues\/7",
                "user": null, "assignee": null, "milestone": null, "pull_request": null,
                "labels": ["points:3", {"name": "em\u0065a"}, {"name": ""}, {"name": 4}, 4, null, ""],
                "reactions": {"+1": 1}, "body": null}]"#,
        )
        .expect("item");
        assert_eq!(i.ext_id, "I_kw1");
        assert_eq!(i.title, "Café \"menu\"");
        assert_eq!(i.url, "https://github.com/a/b/issues/7");
        assert_eq!(
            i.kind,
            ItemKind::Issue,
            "a null pull_request is no pull request"
        );
        assert_eq!(i.labels, ["points:3", "emea", ""]);
        assert_eq!(i.estimate, Some(3.0));
        assert_eq!(
            (i.category, i.assignee, i.milestone),
            (Category::Todo, None, None)
        );
        assert!(i.fields.is_empty());
    }

    #[test]
    fn a_pulls_object_is_known_by_head_and_base_even_when_null() {
        let i = read_one(
            r#"[{"id": 1, "number": 8, "updated_at": "2026-11-03T10:00:00Z", "state": "closed",
                "head": null, "base": {}, "merged": true, "merged_at": "2026-11-02T08:00:00Z",
                "draft": false}]"#,
        )
        .expect("item");
        assert_eq!(
            (i.kind, i.status.as_str(), i.category),
            (ItemKind::PullRequest, "merged", Category::Done)
        );
        assert_eq!(i.fields.get("draft"), Some(&Value::Bool(false)));
        let i = read_one(
            r#"[{"id": 1, "number": 8, "updated_at": "2026-11-03T10:00:00Z", "state": "open",
                "merged": false, "merged_at": "2026-11-02T08:00:00Z", "draft": true}]"#,
        )
        .expect("item");
        assert_eq!(i.kind, ItemKind::Issue, "without head and base: an issue");
        assert!(
            !i.fields.contains_key("draft"),
            "draft is read for pull requests only"
        );
    }

    #[test]
    fn missing_or_odd_keys() {
        assert_eq!(
            read_one(r#"[{"number": "7", "updated_at": "2026-11-03T10:00:00Z"}]"#),
            Err("an issue of a/b without a number".into())
        );
        assert_eq!(
            read_one(r#"[{"number": 7.0, "updated_at": "2026-11-03T10:00:00Z"}]"#),
            Err("an issue of a/b without a number".into())
        );
        assert_eq!(
            read_one(r#"[{"number": 7, "updated_at": 1793700930}]"#),
            Err("a/b#7 has no readable updated_at".into())
        );
        assert_eq!(
            read_one("[null]"),
            Err("an issue of a/b without a number".into())
        );
        // Only the first of the assignees counts, as before.
        let i = read_one(
            r#"[{"id": "", "number": 9, "updated_at": "2026-11-03T10:00:00Z", "state": "",
                "assignees": [{"login": ""}, {"login": "b"}], "unknown": {"deep": [[{}]]}}]"#,
        )
        .expect("item");
        assert_eq!(i.ext_id, "a/b#9", "an empty id falls back to the key");
        assert_eq!((i.status.as_str(), i.assignee), ("open", None));
        let i = read_one(
            r#"[{"number": 9, "updated_at": "2026-11-03T10:00:00Z", "assignee": {"login": ""},
                "assignees": [{"login": "b"}, {"login": "c"}]}]"#,
        )
        .expect("item");
        assert_eq!(
            (i.assignee.as_deref(), i.category),
            (Some("b"), Category::InProgress)
        );
    }

    #[test]
    fn the_repository_url_of_a_single_issue() {
        let body = br#"{"number": 1, "repository_url": "https://api.github.com/repos/a\/c"}"#;
        let issue: Issue = serde_json::from_slice(body).expect("issue");
        assert_eq!(
            issue.repository_url(),
            Some("https://api.github.com/repos/a/c")
        );
        let issue: Issue = serde_json::from_slice(b"[1, 2]").expect("anything reads");
        assert_eq!(issue.repository_url(), None);
        assert!(read_page(b"{}").is_err(), "a page is an array");
    }
}
