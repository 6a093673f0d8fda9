//! Jira payloads → items. Accepts Cloud (v3) and Server/Data Center (v2) issue shapes,
//! including old servers whose statuses have no status category.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::JiraSettings;
use crate::model::{Category, Item, ItemKind};

/// One page of `/rest/api/3/search/jql` (token paging) or `/rest/api/2/search` (offset
/// paging); each reads only its own keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    #[serde(default)]
    pub issues: Vec<Value>,
    pub next_page_token: Option<String>,
    pub is_last: Option<bool>,
    pub start_at: Option<u64>,
    pub total: Option<u64>,
}

/// Jira's time formats: `2019-02-10T09:51:33.000+0000`, `…+05:30`, `…Z`, without millis.
pub fn parse_jira_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A time field: Jira's text formats, or a number of epoch milliseconds (as some
/// published examples have it).
fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::String(s) => parse_jira_time(s),
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| chrono::TimeZone::timestamp_millis_opt(&Utc, ms).single()),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn is_epic(issuetype: Option<&Value>) -> bool {
    let Some(t) = issuetype else { return false };
    t.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("epic"))
        || t.get("hierarchyLevel").and_then(Value::as_i64) == Some(1)
}

/// The category from the status category, or for old servers without one, from the
/// resolution date and the status name.
fn category(fields: &Value) -> Category {
    let status = fields.get("status");
    match status
        .and_then(|s| s.get("statusCategory"))
        .and_then(|c| c.get("key"))
        .and_then(Value::as_str)
    {
        Some("new") => return Category::Todo,
        Some("indeterminate") => return Category::InProgress,
        Some("done") => return Category::Done,
        _ => {}
    }
    if fields.get("resolutiondate").is_some_and(|r| !r.is_null()) {
        return Category::Done;
    }
    let name = status
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match name.as_str() {
        "done" | "closed" | "resolved" => Category::Done,
        "open" | "to do" | "backlog" | "new" | "reopened" | "" => Category::Todo,
        _ => Category::InProgress,
    }
}

/// A custom field value as rules see it: strings/numbers/bools as they are; options by
/// `value`, else `name`, else `key`; lists of those.
fn field_value(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(v.clone()),
        Value::Object(o) => ["value", "name", "key"]
            .iter()
            .find_map(|k| o.get(*k).filter(|x| !x.is_null()).cloned()),
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(field_value).collect())),
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Normalises one issue; the error names the issue.
pub fn parse_issue(raw: &Value, source: &str, settings: &JiraSettings) -> Result<Item, String> {
    let key = text(raw.get("key")).ok_or("an issue without a key")?;
    let id = match raw.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => key.clone(),
    };
    let empty = Value::Object(Default::default());
    let fields = raw.get("fields").unwrap_or(&empty);
    let updated = time(fields.get("updated"))
        .ok_or_else(|| format!("issue {key} has no readable `updated` time"))?;
    let issuetype = fields.get("issuetype");
    let parent = fields.get("parent");
    let parent_key = parent.and_then(|p| text(p.get("key")));
    let parent_is_epic = parent
        .and_then(|p| p.get("fields"))
        .is_some_and(|f| is_epic(f.get("issuetype")));
    let epic = if parent_is_epic {
        parent_key.clone()
    } else {
        settings
            .epic_field
            .as_deref()
            .and_then(|f| fields.get(f))
            .and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Object(o) => text(o.get("key")),
                _ => None,
            })
            .or_else(|| fields.get("epic").and_then(|e| text(e.get("key"))))
    };
    let list = |name: &str, by: &str| -> Vec<String> {
        fields
            .get(name)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        other => text(other.get(by)),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let project = fields
        .get("project")
        .and_then(|p| text(p.get("key")))
        .unwrap_or_else(|| key.split('-').next().unwrap_or("").to_string());
    let assignee = fields.get("assignee").and_then(|a| {
        text(a.get("displayName"))
            .or_else(|| text(a.get("name")))
            .or_else(|| text(a.get("emailAddress")))
    });
    let mut extra = BTreeMap::new();
    for name in &settings.extra_fields {
        if let Some(v) = fields.get(name).and_then(field_value) {
            extra.insert(name.clone(), v);
        }
    }
    let base = settings.url.as_str().trim_end_matches('/');
    Ok(Item {
        source: source.to_string(),
        ext_id: id,
        url: format!("{base}/browse/{key}"),
        kind: if is_epic(issuetype) {
            ItemKind::Epic
        } else {
            ItemKind::Issue
        },
        title: text(fields.get("summary")).unwrap_or_default(),
        project,
        item_type: issuetype
            .and_then(|t| text(t.get("name")))
            .unwrap_or_default(),
        status: fields
            .get("status")
            .and_then(|s| text(s.get("name")))
            .unwrap_or_default(),
        category: category(fields),
        labels: list("labels", "name"),
        components: list("components", "name"),
        epic,
        parent: parent_key,
        milestone: list("fixVersions", "name").into_iter().next(),
        assignee,
        estimate: settings
            .story_points_field
            .as_deref()
            .and_then(|f| number(fields.get(f))),
        created: time(fields.get("created")),
        updated,
        resolved: time(fields.get("resolutiondate")),
        fields: extra,
        abandoned: false,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::jira::JiraFlavor;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/jira/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn settings(points: &str, extra: &[&str]) -> JiraSettings {
        JiraSettings {
            url: url::Url::parse("https://acme.atlassian.net").expect("url"),
            flavor: JiraFlavor::Cloud,
            email: Some("bot@acme.com".into()),
            token: crate::settings::SecretRef::value("t"),
            jql: String::new(),
            story_points_field: Some(points.into()),
            epic_field: None,
            extra_fields: extra.iter().map(|s| s.to_string()).collect(),
            page_size: 100,
        }
    }

    fn page(name: &str, s: &JiraSettings) -> (SearchPage, Vec<Item>) {
        let page: SearchPage = serde_json::from_value(fixture(name)).expect("page");
        let items = page
            .issues
            .iter()
            .map(|i| parse_issue(i, "jira", s).expect("issue"))
            .collect();
        (page, items)
    }

    #[test]
    fn cloud_search_jql_example() {
        let (p, items) = page(
            "cloud-v3-search-jql.atlassian-example.json",
            &settings("customfield_10016", &[]),
        );
        assert_eq!(p.is_last, Some(true));
        assert_eq!(p.next_page_token, None);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key, "ED-1");
        assert_eq!(items[0].ext_id, "10002");
        assert_eq!(items[0].url, "https://acme.atlassian.net/browse/ED-1");
    }

    #[test]
    fn cloud_search_startat_example() {
        let (p, items) = page(
            "cloud-v3-search-startat-total.atlassian-example.json",
            &settings("customfield_10016", &[]),
        );
        assert_eq!((p.start_at, p.total), (Some(0), Some(1)));
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn server_search_without_status_categories() {
        let (p, items) = page(
            "server-v2-search.jira-ruby.json",
            &settings("customfield_10002", &[]),
        );
        assert_eq!((p.start_at, p.total), (Some(0), Some(11)));
        assert_eq!(items.len(), 11);
        for i in &items {
            assert!(!i.project.is_empty() && !i.status.is_empty(), "{i:?}");
            assert_eq!(
                i.url,
                format!("https://acme.atlassian.net/browse/{}", i.key)
            );
        }
        // Statuses without a category fall back to the resolution date and the name.
        for i in &items {
            let expected = if i.resolved.is_some()
                || ["closed", "resolved", "done"].contains(&i.status.to_lowercase().as_str())
            {
                Category::Done
            } else if ["open", "to do", "reopened"].contains(&i.status.to_lowercase().as_str()) {
                Category::Todo
            } else {
                Category::InProgress
            };
            assert_eq!(i.category, expected, "{} {}", i.key, i.status);
        }
    }

    #[test]
    fn server_search_with_status_categories_and_custom_fields() {
        let (_, items) = page(
            "server-v2-search-statuscategory-customfields.jira-ruby.json",
            &settings(
                "customfield_10002",
                &["customfield_10004", "customfield_10000"],
            ),
        );
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| !i.title.is_empty()));
    }

    #[test]
    fn devlake_issue_with_labels_points_and_resolution() {
        let raw = fixture("cloud-agile-issue-changelog-storypoints-labels.devlake.json");
        let i = parse_issue(&raw, "jira", &settings("customfield_10024", &[])).expect("issue");
        assert_eq!(i.key, "EE-2");
        assert_eq!(i.labels, vec!["frontEnd".to_string(), "Saas".to_string()]);
        assert_eq!(i.category, Category::Done);
        assert_eq!(i.estimate, Some(2.0));
        assert!(i.resolved.is_some());
        assert!(i.components.is_empty());
    }

    #[test]
    fn devlake_issue_with_an_epic_parent() {
        let raw = fixture("cloud-agile-issue-parent-epic-changelog.devlake.json");
        let i = parse_issue(&raw, "jira", &settings("customfield_10024", &[])).expect("issue");
        assert_eq!(i.key, "K5-2");
        assert_eq!(i.parent.as_deref(), Some("K5-1"));
        assert_eq!(i.epic.as_deref(), Some("K5-1"));
        assert_eq!(i.category, Category::Todo);
    }

    #[test]
    fn go_jira_sprint_issue_with_points_and_agile_epic() {
        let raw = fixture("cloud-agile-sprint-issues-epic-storypoints.go-jira.json");
        let issue = &raw["issues"][0];
        let i = parse_issue(
            issue,
            "jira",
            &settings("customfield_10105", &["customfield_10700"]),
        )
        .expect("issue");
        assert_eq!(i.estimate, Some(13.0));
        assert!(i.epic.is_some(), "{i:?}");
        assert_eq!(
            i.fields.get("customfield_10700"),
            Some(&Value::String("AR-37".into()))
        );
        assert!(i.resolved.is_some());
    }

    #[test]
    fn single_issue_payloads_of_both_dialects() {
        let cloud = parse_issue(
            &fixture("cloud-v3-issue.atlassian-example.json"),
            "jira",
            &settings("customfield_10016", &[]),
        )
        .expect("cloud issue");
        assert_eq!(
            (cloud.key.as_str(), cloud.ext_id.as_str()),
            ("ED-1", "10002")
        );
        assert_eq!(cloud.project, "EX", "from the project object, not the key");
        let server = parse_issue(
            &fixture("server-v2-issue.jira-ruby.json"),
            "jira",
            &settings("customfield_10002", &[]),
        )
        .expect("server issue");
        assert_eq!(server.ext_id, "10002");
        assert!(!server.title.is_empty());
        assert!(!server.status.is_empty());
    }

    #[test]
    fn times_in_every_jira_format() {
        for s in [
            "2019-02-10T09:51:33.000+0000",
            "2019-02-10T15:21:33.000+05:30",
            "2019-02-10T09:51:33Z",
            "2019-02-10T09:51:33+0000",
        ] {
            let t = parse_jira_time(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(t.to_rfc3339(), "2019-02-10T09:51:33+00:00", "{s}");
        }
        assert!(parse_jira_time("yesterday").is_none());
    }
}
