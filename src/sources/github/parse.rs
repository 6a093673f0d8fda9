//! GitHub REST issue objects (pull requests included) → items.
//!
//! Categories: an open pull request, or an open issue with an assignee, is in progress;
//! other open issues are to do; a merged pull request and an issue closed as completed are
//! done; an issue closed as not planned (or as a duplicate) and a pull request closed
//! without merging are abandoned: they leave every KR's scope.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::GitHubSettings;
use crate::model::{Category, Item, ItemKind};

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    text(v)
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Normalises one issue or pull request of `repo` (`owner/name`); the error names it.
pub fn parse_issue(
    raw: &Value,
    source: &str,
    repo: &str,
    settings: &GitHubSettings,
) -> Result<Item, String> {
    let number = raw
        .get("number")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("an issue of {repo} without a number"))?;
    let key = format!("{repo}#{number}");
    let ext_id = match raw.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => key.clone(),
    };
    let updated =
        time(raw.get("updated_at")).ok_or_else(|| format!("{key} has no readable updated_at"))?;
    // An issue-list entry carries `pull_request`; a `/pulls` object has `head` and `base`.
    let pr = raw
        .get("pull_request")
        .filter(|p| p.is_object())
        .or_else(|| raw.get("head").and(raw.get("base")).map(|_| raw));
    let merged_at = pr.and_then(|p| time(p.get("merged_at"))).filter(|_| {
        raw.get("merged").and_then(Value::as_bool) != Some(false)
            || raw.get("state").and_then(Value::as_str) == Some("closed")
    });
    let state = text(raw.get("state")).unwrap_or_else(|| "open".into());
    let state_reason = text(raw.get("state_reason"));
    let assignee = raw
        .get("assignee")
        .and_then(|a| text(a.get("login")))
        .or_else(|| {
            raw.get("assignees")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|a| text(a.get("login")))
        });
    let labels: Vec<String> = raw
        .get("labels")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| match l {
                    Value::String(s) => Some(s.clone()),
                    other => text(other.get("name")),
                })
                .collect()
        })
        .unwrap_or_default();
    let (status, category, abandoned, resolved) = if state == "open" {
        let started = pr.is_some() || assignee.is_some();
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
    } else if pr.is_some() {
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
                time(raw.get("closed_at")).or(Some(updated)),
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
    if let Some(login) = raw.get("user").and_then(|u| text(u.get("login"))) {
        fields.insert("author".to_string(), Value::String(login));
    }
    if let Some(r) = &state_reason {
        fields.insert("state_reason".to_string(), Value::String(r.clone()));
    }
    if let Some(d) = pr.and(raw.get("draft")).and_then(Value::as_bool) {
        fields.insert("draft".to_string(), Value::Bool(d));
    }
    Ok(Item {
        source: source.to_string(),
        ext_id,
        key,
        kind: if pr.is_some() {
            ItemKind::PullRequest
        } else {
            ItemKind::Issue
        },
        title: text(raw.get("title")).unwrap_or_default(),
        url: text(raw.get("html_url")).unwrap_or_default(),
        project: repo.to_string(),
        item_type: if pr.is_some() {
            "pull_request"
        } else {
            "issue"
        }
        .to_string(),
        status,
        category,
        labels,
        components: Vec::new(),
        epic: None,
        parent: None,
        milestone: raw.get("milestone").and_then(|m| text(m.get("title"))),
        assignee,
        estimate,
        created: time(raw.get("created_at")),
        updated,
        resolved,
        fields,
        abandoned,
    })
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
}
