//! GitHub Projects v2 (GraphQL): the field values of a project's items, as
//! `fields.<Field name>` on the issues and pull requests they point to.
//!
//! Field values name their field either directly (`field { name }`) or only by id, as some
//! clients ask for them; ids are resolved through the project's field list, and single
//! select values through its options.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A configured project: `OWNER/NUMBER` (organisation or user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    pub owner: String,
    pub number: u64,
}

impl ProjectRef {
    pub fn parse(s: &str) -> Option<ProjectRef> {
        let (owner, number) = s.rsplit_once('/')?;
        let number = number.parse().ok()?;
        (!owner.is_empty() && !owner.contains('/')).then(|| ProjectRef {
            owner: owner.to_string(),
            number,
        })
    }
}

/// What a project says about one issue or pull request.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectItem {
    /// `owner/repo#number`
    pub key: String,
    pub updated: Option<DateTime<Utc>>,
    pub fields: BTreeMap<String, Value>,
}

/// One page of a project's items.
pub struct ProjectPage {
    pub items: Vec<ProjectItem>,
    pub next: Option<String>,
}

/// Items of a project owned by a user or an organisation, `$first` at a time.
pub const QUERY: &str = r#"query okrsyncProjectItems($owner: String!, $number: Int!, $first: Int!, $after: String) {
  repositoryOwner(login: $owner) {
    ... on ProjectV2Owner {
      projectV2(number: $number) {
        fields(first: 50) {
          nodes {
            ... on ProjectV2FieldCommon { id name }
            ... on ProjectV2SingleSelectField { options { id name } }
          }
        }
        items(first: $first, after: $after) {
          pageInfo { endCursor hasNextPage }
          nodes {
            id
            updatedAt
            isArchived
            content {
              __typename
              ... on Issue { number repository { name nameWithOwner } }
              ... on PullRequest { number repository { name nameWithOwner } }
            }
            fieldValues(first: 50) {
              nodes {
                __typename
                ... on ProjectV2ItemFieldTextValue { text field { ... on ProjectV2FieldCommon { id name } } }
                ... on ProjectV2ItemFieldNumberValue { number field { ... on ProjectV2FieldCommon { id name } } }
                ... on ProjectV2ItemFieldDateValue { date field { ... on ProjectV2FieldCommon { id name } } }
                ... on ProjectV2ItemFieldSingleSelectValue { name optionId field { ... on ProjectV2FieldCommon { id name } } }
                ... on ProjectV2ItemFieldIterationValue { title field { ... on ProjectV2FieldCommon { id name } } }
              }
            }
          }
        }
      }
    }
  }
}"#;

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
        .ok_or_else(|| format!("no such project of {owner} (or the token lacks read:project)"))?;
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
                    .or_else(|| s(v.get("optionId")).and_then(|o| option_names.get(&o).cloned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_project_resolves_fields_by_id() {
        let path = format!(
            "{}/tests/fixtures/github/graphql-projectv2-items-fieldvalues.github-project.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let recorded: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
        // The recorder keeps the body (`{"data": …}`) under `data`, beside status and headers.
        let answer = &recorded[0]["response"]["data"];
        let owner = recorded[0]["variables"]["owner"]
            .as_str()
            .unwrap_or("owner");
        let page = parse_page(answer, owner).expect("page");
        assert!(
            !page.items.is_empty(),
            "the fixture has issues on the board"
        );
        for item in &page.items {
            assert!(
                item.key.starts_with(&format!("{owner}/")) && item.key.contains('#'),
                "{item:?}"
            );
        }
        // Every named value came through under its field's name, not its id.
        assert!(page
            .items
            .iter()
            .all(|i| i.fields.keys().all(|k| !k.starts_with("PVTF_"))));
        assert!(
            page.items.iter().any(|i| !i.fields.is_empty()),
            "{:?}",
            page.items
        );
    }

    #[test]
    fn names_errors_and_refs() {
        let answer = serde_json::json!({"data": {"repositoryOwner": {"projectV2": {
        "fields": {"nodes": []},
        "items": {"pageInfo": {"endCursor": "Y3Vy", "hasNextPage": true}, "nodes": [
            {"id": "PVTI_1", "updatedAt": "2026-11-03T10:00:00Z", "isArchived": false,
             "content": {"__typename": "Issue", "number": 7, "repository": {"name": "web", "nameWithOwner": "acme/web"}},
             "fieldValues": {"nodes": [
                {"__typename": "ProjectV2ItemFieldSingleSelectValue", "name": "emea.checkout", "optionId": "x", "field": {"id": "F1", "name": "KR"}},
                {"__typename": "ProjectV2ItemFieldNumberValue", "number": 5.0, "field": {"id": "F2", "name": "Points"}},
                {"__typename": "ProjectV2ItemFieldIterationValue", "title": "Sprint 4", "field": {"id": "F3", "name": "Sprint"}},
                {"__typename": "ProjectV2ItemFieldRepositoryValue", "field": {"id": "F4", "name": "Repository"}}
             ]}},
            {"id": "PVTI_2", "updatedAt": "2026-11-03T10:00:00Z", "content": {"__typename": "DraftIssue"}, "fieldValues": {"nodes": []}}
        ]}}}}});
        let page = parse_page(&answer, "acme").expect("page");
        assert_eq!(page.next.as_deref(), Some("Y3Vy"));
        assert_eq!(page.items.len(), 1);
        let i = &page.items[0];
        assert_eq!(i.key, "acme/web#7");
        assert_eq!(i.fields["KR"], Value::String("emea.checkout".into()));
        assert_eq!(i.fields["Points"], serde_json::json!(5.0));
        assert_eq!(i.fields["Sprint"], Value::String("Sprint 4".into()));
        assert!(!i.fields.contains_key("Repository"));
        let err = parse_page(
            &serde_json::json!({"errors": [{"message": "Could not resolve to a ProjectV2"}]}),
            "acme",
        )
        .err();
        assert!(err.unwrap_or_default().contains("Could not resolve"));
        assert_eq!(
            ProjectRef::parse("acme/5"),
            Some(ProjectRef {
                owner: "acme".into(),
                number: 5
            })
        );
        assert_eq!(ProjectRef::parse("acme/web/5"), None);
        assert_eq!(ProjectRef::parse("acme"), None);
    }
}
