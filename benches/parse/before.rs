//! The parsers as they were before issue 12 (commit ef38f9d): each page parsed into
//! `serde_json::Value`s and walked. Kept verbatim (only the imports changed) as the
//! benchmark's baseline and as the oracle the typed parsers are checked against.

#![allow(dead_code)]

pub mod jira {
    use std::collections::BTreeMap;

    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::Deserialize;
    use serde_json::Value;

    use okrsync::model::{Category, Item, ItemKind};
    use okrsync::sources::jira::JiraSettings;

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
}

pub mod github {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use serde_json::Value;

    use okrsync::model::{Category, Item, ItemKind};
    use okrsync::sources::github::GitHubSettings;

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
        let updated = time(raw.get("updated_at"))
            .ok_or_else(|| format!("{key} has no readable updated_at"))?;
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
}

pub mod projects {
    use std::collections::{BTreeMap, HashMap};

    use chrono::{DateTime, Utc};
    use okrsync::sources::github::projects::{ProjectItem, ProjectPage};
    use serde_json::Value;

    fn s(v: Option<&Value>) -> Option<String> {
        v.and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    }

    /// Reads a GraphQL answer (`{"data": …}` or `{"errors": …}`) for a project owned by `owner`.
    pub fn parse_page(answer: &Value, owner: &str) -> Result<ProjectPage, String> {
        if let Some(errors) = answer
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            let words: Vec<String> = errors.iter().filter_map(|e| s(e.get("message"))).collect();
            return Err(format!("GraphQL errors: {}", words.join("; ")));
        }
        let project = answer
            .pointer("/data/repositoryOwner/projectV2")
            .or_else(|| answer.pointer("/data/userOrOrganization/projectV2"))
            .filter(|p| !p.is_null())
            .ok_or_else(|| {
                format!("no such project of {owner} (or the token lacks read:project)")
            })?;
        // Field ids → names, option ids → names.
        let mut field_names = HashMap::new();
        let mut option_names = HashMap::new();
        for f in project
            .pointer("/fields/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(name)) = (s(f.get("id")), s(f.get("name"))) {
                field_names.insert(id, name);
            }
            for o in f
                .get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(id), Some(name)) = (s(o.get("id")), s(o.get("name"))) {
                    option_names.insert(id, name);
                }
            }
        }
        let items = project.get("items").ok_or("the answer has no items")?;
        let mut out = Vec::new();
        for node in items
            .get("nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if node.get("isArchived").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let Some(content) = node.get("content").filter(|c| !c.is_null()) else {
                continue;
            };
            let Some(number) = content.get("number").and_then(Value::as_u64) else {
                continue; // draft issues belong to no repository
            };
            let repo = s(content.pointer("/repository/nameWithOwner"))
                .or_else(|| s(content.pointer("/repository/name")).map(|n| format!("{owner}/{n}")));
            let Some(repo) = repo else { continue };
            let mut fields = BTreeMap::new();
            for v in node
                .pointer("/fieldValues/nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = v.get("field");
                let name = field.and_then(|f| s(f.get("name"))).or_else(|| {
                    field
                        .and_then(|f| s(f.get("id")))
                        .and_then(|id| field_names.get(&id).cloned())
                });
                let Some(name) = name else { continue };
                let value = match v.get("__typename").and_then(Value::as_str) {
                    Some("ProjectV2ItemFieldTextValue") => v.get("text").cloned(),
                    Some("ProjectV2ItemFieldNumberValue") => v.get("number").cloned(),
                    Some("ProjectV2ItemFieldDateValue") => v.get("date").cloned(),
                    Some("ProjectV2ItemFieldIterationValue") => v.get("title").cloned(),
                    Some("ProjectV2ItemFieldSingleSelectValue") => s(v.get("name"))
                        .or_else(|| {
                            s(v.get("optionId")).and_then(|o| option_names.get(&o).cloned())
                        })
                        .map(Value::String),
                    _ => None,
                };
                if let Some(value) = value.filter(|x| !x.is_null()) {
                    fields.insert(name, value);
                }
            }
            out.push(ProjectItem {
                key: format!("{repo}#{number}"),
                updated: s(node.get("updatedAt"))
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                fields,
            });
        }
        let more = items
            .pointer("/pageInfo/hasNextPage")
            .and_then(Value::as_bool)
            == Some(true);
        let next = if more {
            s(items.pointer("/pageInfo/endCursor"))
        } else {
            None
        };
        Ok(ProjectPage { items: out, next })
    }
}
