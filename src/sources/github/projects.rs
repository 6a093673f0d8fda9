//! GitHub Projects v2 (GraphQL): the field values of a project's items, as
//! `fields.<Field name>` on the issues and pull requests they point to.
//!
//! Field values name their field either directly (`field { name }`) or only by id, as some
//! clients ask for them; ids are resolved through the project's field list, and single
//! select values through its options.
//!
//! Each pass reads every item of every configured board, so an answer is read straight
//! from the body into an [`Answer`] holding only the keys the page is made of.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::sources::lenient::{lenient_object, List, Obj, Scalar};

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

lenient_object! {
    /// An answer to [`QUERY`] as read from the body: the GraphQL errors, and the keys of
    /// `data` a page is made of, strings borrowed from the body (see `sources::lenient`).
    pub struct Answer<'a> {
        errors: List<Obj<GraphqlError<'a>>> = "errors",
        data: Obj<Data<'a>> = "data",
    }
}

lenient_object! {
    struct GraphqlError<'a> {
        message: Scalar<'a> = "message",
    }
}

lenient_object! {
    struct Data<'a> {
        repository_owner: Obj<Owner<'a>> = "repositoryOwner",
        user_or_organization: Obj<Owner<'a>> = "userOrOrganization",
    }
}

lenient_object! {
    struct Owner<'a> {
        project: Obj<Project<'a>> = "projectV2",
    }
}

lenient_object! {
    struct Project<'a> {
        fields: Obj<FieldList<'a>> = "fields",
        items: Obj<Items<'a>> = "items",
    }
}

lenient_object! {
    struct FieldList<'a> {
        nodes: List<Obj<FieldDef<'a>>> = "nodes",
    }
}

lenient_object! {
    struct FieldDef<'a> {
        id: Scalar<'a> = "id",
        name: Scalar<'a> = "name",
        options: List<Obj<OptionDef<'a>>> = "options",
    }
}

lenient_object! {
    struct OptionDef<'a> {
        id: Scalar<'a> = "id",
        name: Scalar<'a> = "name",
    }
}

lenient_object! {
    struct Items<'a> {
        page_info: Obj<PageInfo<'a>> = "pageInfo",
        nodes: List<Obj<Node<'a>>> = "nodes",
    }
}

lenient_object! {
    struct PageInfo<'a> {
        end_cursor: Scalar<'a> = "endCursor",
        has_next_page: Scalar<'a> = "hasNextPage",
    }
}

lenient_object! {
    struct Node<'a> {
        updated_at: Scalar<'a> = "updatedAt",
        is_archived: Scalar<'a> = "isArchived",
        content: Obj<Content<'a>> = "content",
        field_values: Obj<FieldValues<'a>> = "fieldValues",
    }
}

lenient_object! {
    struct Content<'a> {
        number: Scalar<'a> = "number",
        repository: Obj<Repository<'a>> = "repository",
    }
}

lenient_object! {
    struct Repository<'a> {
        name_with_owner: Scalar<'a> = "nameWithOwner",
        name: Scalar<'a> = "name",
    }
}

lenient_object! {
    struct FieldValues<'a> {
        nodes: List<Obj<FieldValue<'a>>> = "nodes",
    }
}

lenient_object! {
    /// One field value; which of its keys holds the value depends on `__typename`. Those
    /// values are kept as `Value`s: they become `fields.<name>` as they are.
    struct FieldValue<'a> {
        typename: Scalar<'a> = "__typename",
        field: Obj<FieldRef<'a>> = "field",
        text: Option<Value> = "text",
        number: Option<Value> = "number",
        date: Option<Value> = "date",
        title: Option<Value> = "title",
        name: Scalar<'a> = "name",
        option_id: Scalar<'a> = "optionId",
    }
}

lenient_object! {
    struct FieldRef<'a> {
        id: Scalar<'a> = "id",
        name: Scalar<'a> = "name",
    }
}

fn owned(v: &Scalar) -> Option<String> {
    v.text().map(str::to_string)
}

/// The objects of a list, other elements skipped.
fn objects<T>(list: Option<&List<Obj<T>>>) -> impl Iterator<Item = &T> {
    list.into_iter()
        .flat_map(|l| l.0.iter())
        .filter_map(Obj::get)
}

/// Reads a GraphQL answer (`{"data": …}` or `{"errors": …}`) given as a `Value`, for a
/// project owned by `owner`.
pub fn parse_page(answer: &Value, owner: &str) -> Result<ProjectPage, String> {
    Answer::deserialize(answer)
        .map_err(|e| e.to_string())?
        .to_page(owner)
}

impl Answer<'_> {
    /// The page, for a project owned by `owner`; or why there is none.
    pub fn to_page(&self, owner: &str) -> Result<ProjectPage, String> {
        if !self.errors.0.is_empty() {
            let words: Vec<&str> = objects(Some(&self.errors))
                .filter_map(|e| e.message.text())
                .collect();
            return Err(format!("GraphQL errors: {}", words.join("; ")));
        }
        // `projectV2` under `repositoryOwner`, else under `userOrOrganization`; a null one
        // is no project, even if the other is there.
        fn under<'o, 'a>(owner: Option<&'o Obj<Owner<'a>>>) -> Option<&'o Obj<Project<'a>>> {
            owner
                .and_then(Obj::get)
                .map(|o| &o.project)
                .filter(|p| !p.is_absent())
        }
        let data = self.data.get();
        let project = under(data.map(|d| &d.repository_owner))
            .or_else(|| under(data.map(|d| &d.user_or_organization)))
            .filter(|p| !p.is_null())
            .ok_or_else(|| format!("no such project of {owner} (or the token lacks read:project)"))?
            .get();
        // Field ids → names, option ids → names.
        let mut field_names = HashMap::new();
        let mut option_names = HashMap::new();
        for f in objects(project.and_then(|p| p.fields.get()).map(|f| &f.nodes)) {
            if let (Some(id), Some(name)) = (f.id.text(), f.name.text()) {
                field_names.insert(id, name);
            }
            for o in objects(Some(&f.options)) {
                if let (Some(id), Some(name)) = (o.id.text(), o.name.text()) {
                    option_names.insert(id, name);
                }
            }
        }
        let items = project
            .map(|p| &p.items)
            .filter(|i| !i.is_absent())
            .ok_or("the answer has no items")?
            .get();
        let mut out = Vec::new();
        for node in objects(items.map(|i| &i.nodes)) {
            if node.is_archived.as_bool() == Some(true) {
                continue;
            }
            let Some(content) = node.content.get() else {
                continue;
            };
            let Some(number) = content.number.as_u64() else {
                continue; // draft issues belong to no repository
            };
            let repository = content.repository.get();
            let repo = repository
                .and_then(|r| owned(&r.name_with_owner))
                .or_else(|| {
                    repository
                        .and_then(|r| r.name.text())
                        .map(|n| format!("{owner}/{n}"))
                });
            let Some(repo) = repo else { continue };
            let mut fields = BTreeMap::new();
            for v in objects(node.field_values.get().map(|f| &f.nodes)) {
                let field = v.field.get();
                let name = field.and_then(|f| owned(&f.name)).or_else(|| {
                    field
                        .and_then(|f| f.id.text())
                        .and_then(|id| field_names.get(id).map(|n| n.to_string()))
                });
                let Some(name) = name else { continue };
                let value = match v.typename.as_str() {
                    Some("ProjectV2ItemFieldTextValue") => v.text.clone(),
                    Some("ProjectV2ItemFieldNumberValue") => v.number.clone(),
                    Some("ProjectV2ItemFieldDateValue") => v.date.clone(),
                    Some("ProjectV2ItemFieldIterationValue") => v.title.clone(),
                    Some("ProjectV2ItemFieldSingleSelectValue") => owned(&v.name)
                        .or_else(|| {
                            v.option_id
                                .text()
                                .and_then(|o| option_names.get(o).map(|n| n.to_string()))
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
                updated: node
                    .updated_at
                    .text()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
                fields,
            });
        }
        let page_info = items.and_then(|i| i.page_info.get());
        let more = page_info.and_then(|p| p.has_next_page.as_bool()) == Some(true);
        let next = if more {
            page_info.and_then(|p| owned(&p.end_cursor))
        } else {
            None
        };
        Ok(ProjectPage { items: out, next })
    }
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

    #[test]
    fn an_answer_read_from_its_bytes() {
        let body = br#"{"data": {"repositoryOwner": {"projectV2": {
            "fields": {"nodes": [{"id": "F1", "name": "K\u0052"}, {"id": "F2", "name": "Status",
                "options": [{"id": "o1", "name": "Done"}]}]},
            "items": {"pageInfo": {"endCursor": "Y3Vy", "hasNextPage": false}, "nodes": [
                {"updatedAt": "2026-11-03T10:00:00Z", "isArchived": null, "extra": [1, {}],
                 "content": {"number": 7, "repository": {"name": "web"}},
                 "fieldValues": {"nodes": [
                    {"__typename": "ProjectV2ItemFieldTextValue", "text": "emea.checkout", "field": {"id": "F1"}},
                    {"__typename": "ProjectV2ItemFieldSingleSelectValue", "optionId": "o1", "field": {"id": "F2"}},
                    {"__typename": "ProjectV2ItemFieldNumberValue", "number": null, "field": {"name": "Points"}},
                    null, 3]}},
                {"isArchived": true, "content": {"number": 8, "repository": {"name": "web"}}},
                {"content": null}, "odd"]}}},
            "userOrOrganization": {"projectV2": {"items": {}}}}}"#;
        let answer: Answer = serde_json::from_slice(body).expect("answer");
        let page = answer.to_page("acme").expect("page");
        assert_eq!(page.next, None);
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].key, "acme/web#7");
        assert_eq!(
            page.items[0].fields["KR"],
            Value::String("emea.checkout".into())
        );
        assert_eq!(page.items[0].fields["Status"], Value::String("Done".into()));
        assert!(!page.items[0].fields.contains_key("Points"));
        let value: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(parse_page(&value, "acme").expect("page").items, page.items);
        // A null project under the repository owner is no project, as before.
        let answer: Answer = serde_json::from_slice(
            br#"{"data": {"repositoryOwner": {"projectV2": null}, "userOrOrganization": {"projectV2": {"items": {}}}}}"#,
        )
        .expect("answer");
        assert!(answer.to_page("acme").is_err());
    }
}
