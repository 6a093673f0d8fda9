//! Jira payloads → items. Accepts Cloud (v3) and Server/Data Center (v2) issue shapes,
//! including old servers whose statuses have no status category.
//!
//! A search page is read from the response body in one pass ([`read_page`]) into
//! [`Issue`]s that hold only the fields okrsync uses, their strings borrowed from the body
//! (see `sources::lenient`: a field of an unexpected type reads as absent, as it
//! did when pages were walked as `serde_json::Value`s); everything else is skipped. The
//! configured story points, epic and extra fields are found by name while reading; extra
//! fields are kept as `Value`s, since they can hold anything. [`Issue::into_item`] then
//! builds the owned [`Item`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::JiraSettings;
use crate::model::{Category, Item, ItemKind};
use crate::sources::lenient::{
    lenient_object, object, AsObject, Key, List, NameOrText, Obj, ObjectSeed, Scalar,
};

/// One page of `/rest/api/3/search/jql` (token paging) or `/rest/api/2/search` (offset
/// paging); each reads only its own keys. The issues are [`Issue`]s when read by
/// [`read_page`]; as `Value`s (the default) the page reads like any other type.
#[derive(Debug)]
pub struct SearchPage<I = Value> {
    pub issues: Vec<I>,
    pub next_page_token: Option<String>,
    pub is_last: Option<bool>,
    pub start_at: Option<u64>,
    pub total: Option<u64>,
    /// The page size the server used (Data Center; it may lower the one asked).
    pub max_results: Option<u64>,
}

impl<'de, I: Deserialize<'de>> Deserialize<'de> for SearchPage<I> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PageSeed(PhantomData::<I>).deserialize(d)
    }
}

/// Reads one page of a Jira search from the response body; the issues borrow from it.
pub fn read_page<'a>(
    body: &'a [u8],
    settings: &JiraSettings,
) -> Result<SearchPage<Issue<'a>>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let page = PageSeed(IssueSeed { settings }).deserialize(&mut de)?;
    de.end()?;
    Ok(page)
}

/// A search page whose issues are read by the seed `S`. The page keys are read strictly,
/// as a derived `Deserialize` would (a wrong type or a repeated key is an error); each
/// issue is read leniently.
struct PageSeed<S>(S);

const PAGE_KEYS: &[&str] = &[
    "issues",
    "nextPageToken",
    "isLast",
    "startAt",
    "total",
    "maxResults",
];

impl<'de, S: DeserializeSeed<'de> + Clone> DeserializeSeed<'de> for PageSeed<S> {
    type Value = SearchPage<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("SearchPage", PAGE_KEYS, self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Clone> Visitor<'de> for PageSeed<S> {
    type Value = SearchPage<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct SearchPage")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // A repeated key is an error, as with a derived `Deserialize`.
        fn once<T, E: de::Error>(slot: &Option<T>, key: &'static str) -> Result<(), E> {
            match slot {
                Some(_) => Err(E::duplicate_field(key)),
                None => Ok(()),
            }
        }
        let mut issues = None;
        let (mut next_page_token, mut is_last, mut start_at, mut total) = (None, None, None, None);
        let mut max_results = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "issues" => {
                    once::<_, A::Error>(&issues, "issues")?;
                    issues = Some(map.next_value_seed(Issues(self.0.clone()))?);
                }
                "nextPageToken" => {
                    once::<_, A::Error>(&next_page_token, "nextPageToken")?;
                    next_page_token = Some(map.next_value()?);
                }
                "isLast" => {
                    once::<_, A::Error>(&is_last, "isLast")?;
                    is_last = Some(map.next_value()?);
                }
                "startAt" => {
                    once::<_, A::Error>(&start_at, "startAt")?;
                    start_at = Some(map.next_value()?);
                }
                "total" => {
                    once::<_, A::Error>(&total, "total")?;
                    total = Some(map.next_value()?);
                }
                "maxResults" => {
                    once::<_, A::Error>(&max_results, "maxResults")?;
                    max_results = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let (is_last, total) = (is_last.flatten(), total.flatten());
        // Only an answer that says it is the end may leave the issues out: anything else
        // without them is not a search page (a proxy's answer, an API change).
        let issues = match issues {
            Some(issues) => issues,
            None if is_last == Some(true) || total == Some(0) => Vec::new(),
            None => return Err(serde::de::Error::missing_field("issues")),
        };
        Ok(SearchPage {
            issues,
            next_page_token: next_page_token.flatten(),
            is_last,
            start_at: start_at.flatten(),
            total,
            max_results: max_results.flatten(),
        })
    }
}

/// The `issues` array, each element read by the seed.
struct Issues<S>(S);

impl<'de, S: DeserializeSeed<'de> + Clone> DeserializeSeed<'de> for Issues<S> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Clone> Visitor<'de> for Issues<S> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(issue) = seq.next_element_seed(self.0.clone())? {
            out.push(issue);
        }
        Ok(out)
    }
}

/// One issue as read from a page: the fields okrsync uses, nothing else.
#[derive(Debug, Default)]
pub struct Issue<'a> {
    key: Scalar<'a>,
    id: Scalar<'a>,
    fields: Fields<'a>,
}

/// `fields` of an issue. Besides the fixed ones, the configured fields are read by name:
/// a field can be both (`extra_fields = ["labels"]`), so their values are kept as `Value`s
/// and the fixed ones read again from them.
#[derive(Debug, Default)]
struct Fields<'a> {
    summary: Scalar<'a>,
    status: Obj<Status<'a>>,
    issuetype: Obj<IssueType<'a>>,
    parent: Obj<Parent<'a>>,
    project: Obj<Keyed<'a>>,
    epic: Obj<Keyed<'a>>,
    assignee: Obj<Person<'a>>,
    labels: List<NameOrText<'a>>,
    components: List<NameOrText<'a>>,
    fix_versions: List<NameOrText<'a>>,
    created: Scalar<'a>,
    updated: Scalar<'a>,
    resolutiondate: Scalar<'a>,
    /// `story_points_field`, read as a number.
    story_points: Option<f64>,
    /// `epic_field`: the epic's key.
    epic_field: Option<String>,
    /// `extra_fields` with a value (see [`field_value`]).
    extra: BTreeMap<String, Value>,
}

lenient_object! {
    struct Status<'a> {
        name: Scalar<'a> = "name",
        category: Obj<Keyed<'a>> = "statusCategory",
    }
}

lenient_object! {
    struct IssueType<'a> {
        name: Scalar<'a> = "name",
        hierarchy_level: Scalar<'a> = "hierarchyLevel",
    }
}

lenient_object! {
    struct Parent<'a> {
        key: Scalar<'a> = "key",
        fields: Obj<ParentFields<'a>> = "fields",
    }
}

lenient_object! {
    struct ParentFields<'a> {
        issuetype: Obj<IssueType<'a>> = "issuetype",
    }
}

lenient_object! {
    struct Keyed<'a> {
        key: Scalar<'a> = "key",
    }
}

lenient_object! {
    struct Person<'a> {
        display_name: Scalar<'a> = "displayName",
        name: Scalar<'a> = "name",
        email_address: Scalar<'a> = "emailAddress",
    }
}

/// Reads an issue; the settings name the configured fields.
#[derive(Clone, Copy)]
struct IssueSeed<'s> {
    settings: &'s JiraSettings,
}

impl<'de> DeserializeSeed<'de> for IssueSeed<'_> {
    type Value = Issue<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        object(d, self)
    }
}

impl<'de> ObjectSeed<'de> for IssueSeed<'_> {
    type Value = Issue<'de>;

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Issue::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "key" => out.key = map.next_value()?,
                "id" => out.id = map.next_value()?,
                "fields" => {
                    out.fields = map.next_value_seed(AsObject(FieldsSeed(self.settings)))?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

struct FieldsSeed<'s>(&'s JiraSettings);

impl<'de> ObjectSeed<'de> for FieldsSeed<'_> {
    type Value = Fields<'de>;

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let s = self.0;
        let mut out = Fields::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.as_str();
            let points = s.story_points_field.as_deref() == Some(key);
            let epic = s.epic_field.as_deref() == Some(key);
            let extra = s.extra_fields.iter().any(|f| f == key);
            if !(points || epic || extra) {
                map.next_value_seed(Fixed { out: &mut out, key })?;
                continue;
            }
            let v: Value = map.next_value()?;
            if points {
                out.story_points = number(&v);
            }
            if epic {
                out.epic_field = match &v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Object(o) => text(o.get("key")),
                    _ => None,
                };
            }
            if extra {
                match field_value(&v) {
                    Some(x) => out.extra.insert(key.to_string(), x),
                    None => out.extra.remove(key),
                };
            }
            Fixed { out: &mut out, key }
                .deserialize(v)
                .map_err(de::Error::custom)?;
        }
        Ok(out)
    }
}

/// Reads the value of `key` into its fixed field, if it is one; skips it otherwise.
struct Fixed<'o, 'a> {
    out: &'o mut Fields<'a>,
    key: &'o str,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for Fixed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let f = self.out;
        match self.key {
            "summary" => f.summary = Deserialize::deserialize(d)?,
            "status" => f.status = Deserialize::deserialize(d)?,
            "issuetype" => f.issuetype = Deserialize::deserialize(d)?,
            "parent" => f.parent = Deserialize::deserialize(d)?,
            "project" => f.project = Deserialize::deserialize(d)?,
            "epic" => f.epic = Deserialize::deserialize(d)?,
            "assignee" => f.assignee = Deserialize::deserialize(d)?,
            "labels" => f.labels = Deserialize::deserialize(d)?,
            "components" => f.components = Deserialize::deserialize(d)?,
            "fixVersions" => f.fix_versions = Deserialize::deserialize(d)?,
            "created" => f.created = Deserialize::deserialize(d)?,
            "updated" => f.updated = Deserialize::deserialize(d)?,
            "resolutiondate" => f.resolutiondate = Deserialize::deserialize(d)?,
            _ => {
                IgnoredAny::deserialize(d)?;
            }
        }
        Ok(())
    }
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
fn time(v: &Scalar) -> Option<DateTime<Utc>> {
    match v {
        Scalar::Str(s) => parse_jira_time(s),
        Scalar::Number(n) => n
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

fn owned(v: &Scalar) -> Option<String> {
    v.text().map(str::to_string)
}

fn is_epic(issuetype: Option<&IssueType>) -> bool {
    let Some(t) = issuetype else { return false };
    t.name
        .as_str()
        .is_some_and(|n| n.eq_ignore_ascii_case("epic"))
        || t.hierarchy_level.as_i64() == Some(1)
}

/// The category from the status category, or for old servers without one, from the
/// resolution date and the status name.
fn category(fields: &Fields) -> Category {
    let status = fields.status.get();
    match status
        .and_then(|s| s.category.get())
        .and_then(|c| c.key.as_str())
    {
        Some("new") => return Category::Todo,
        Some("indeterminate") => return Category::InProgress,
        Some("done") => return Category::Done,
        _ => {}
    }
    if fields.resolutiondate.is_set() {
        return Category::Done;
    }
    let name = status
        .and_then(|s| s.name.as_str())
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

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn names(list: &List<NameOrText>) -> Vec<String> {
    list.0
        .iter()
        .filter_map(|n| n.0.as_deref().map(str::to_string))
        .collect()
}

/// Normalises one issue given as a `Value` (a single-issue payload, a webhook); the error
/// names the issue.
pub fn parse_issue(raw: &Value, source: &str, settings: &JiraSettings) -> Result<Item, String> {
    IssueSeed { settings }
        .deserialize(raw)
        .map_err(|e| e.to_string())?
        .into_item(source, settings)
}

impl Issue<'_> {
    /// Normalises the issue; the error names it.
    pub fn into_item(self, source: &str, settings: &JiraSettings) -> Result<Item, String> {
        let key = owned(&self.key).ok_or("an issue without a key")?;
        let id = match &self.id {
            Scalar::Str(s) => s.to_string(),
            Scalar::Number(n) => n.to_string(),
            _ => key.clone(),
        };
        let mut fields = self.fields;
        let extra = std::mem::take(&mut fields.extra);
        let fields = &fields;
        let updated = time(&fields.updated)
            .ok_or_else(|| format!("issue {key} has no readable `updated` time"))?;
        let issuetype = fields.issuetype.get();
        let parent = fields.parent.get();
        let parent_key = parent.and_then(|p| owned(&p.key));
        let parent_is_epic = parent
            .and_then(|p| p.fields.get())
            .is_some_and(|f| is_epic(f.issuetype.get()));
        let epic = if parent_is_epic {
            parent_key.clone()
        } else {
            fields
                .epic_field
                .clone()
                .or_else(|| fields.epic.get().and_then(|e| owned(&e.key)))
        };
        let project = fields
            .project
            .get()
            .and_then(|p| owned(&p.key))
            .unwrap_or_else(|| key.split('-').next().unwrap_or("").to_string());
        let assignee = fields.assignee.get().and_then(|a| {
            owned(&a.display_name)
                .or_else(|| owned(&a.name))
                .or_else(|| owned(&a.email_address))
        });
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
            title: owned(&fields.summary).unwrap_or_default(),
            project,
            item_type: issuetype.and_then(|t| owned(&t.name)).unwrap_or_default(),
            status: fields
                .status
                .get()
                .and_then(|s| owned(&s.name))
                .unwrap_or_default(),
            category: category(fields),
            labels: names(&fields.labels),
            components: names(&fields.components),
            epic,
            parent: parent_key,
            milestone: fields
                .fix_versions
                .0
                .iter()
                .find_map(|n| n.0.as_deref().map(str::to_string)),
            assignee,
            estimate: fields.story_points,
            created: time(&fields.created),
            updated,
            resolved: time(&fields.resolutiondate),
            fields: extra,
            abandoned: false,
            key,
        })
    }
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

    /// The item of a page holding one issue, read from its bytes.
    fn read_one(body: &str, s: &JiraSettings) -> Result<Item, String> {
        let page = read_page(body.as_bytes(), s).expect("a page");
        assert_eq!(page.issues.len(), 1, "{body}");
        let item = page
            .issues
            .into_iter()
            .next()
            .expect("one issue")
            .into_item("jira", s);
        // Read from a `Value`, the same issue gives the same item.
        let value: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            parse_issue(&value["issues"][0], "jira", s),
            item,
            "from a Value: {body}"
        );
        item
    }

    #[test]
    fn strings_with_escapes_are_read_unescaped() {
        let s = settings("customfield_10016", &["customfield_10050"]);
        let i = read_one(
            r#"{"issues": [{"id": "10001", "key": "PAY-1", "fields": {
                "updated": "2026-11-03T10:00:00.000+0000",
                "summary": "Retry \"do not honour\" declines\u2026 \\o\/",
                "status": {"name": "In \u0050rogress", "statusCategory": {"key": "indet\u0065rminate"}},
                "labels": ["caf\u00e9", "a\/b", ""],
                "assignee": {"displayName": "Ren\u00e9e O\u2019Brien"},
                "customfield_10050": {"value": "emea.\u0063heckout"}}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!(i.title, "Retry \"do not honour\" declines… \\o/");
        assert_eq!(i.status, "In Progress");
        assert_eq!(i.category, Category::InProgress);
        assert_eq!(
            i.labels,
            ["café", "a/b", ""],
            "a string label is kept even empty"
        );
        assert_eq!(i.assignee.as_deref(), Some("Renée O’Brien"));
        assert_eq!(
            i.fields.get("customfield_10050"),
            Some(&Value::String("emea.checkout".into()))
        );
    }

    #[test]
    fn nulls_and_values_of_other_types_read_as_absent() {
        let s = settings("customfield_10016", &["customfield_10050"]);
        let i = read_one(
            r#"{"issues": [{"id": 10001, "key": "PAY-2", "fields": {
                "updated": "2026-11-03T10:00:00Z", "summary": null, "status": null,
                "issuetype": "Story", "project": null, "parent": null, "assignee": null,
                "labels": null, "components": {"name": "x"},
                "fixVersions": [null, 3, {"name": ""}, {"name": 7}, {"name": "2026.11"}],
                "resolutiondate": null, "created": {}, "epic": [],
                "customfield_10016": null, "customfield_10050": null}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!(i.ext_id, "10001", "a numeric id");
        assert_eq!((i.title.as_str(), i.status.as_str()), ("", ""));
        assert_eq!(i.project, "PAY", "from the key");
        assert_eq!(i.category, Category::Todo);
        assert_eq!((i.kind, i.item_type.as_str()), (ItemKind::Issue, ""));
        assert!(i.labels.is_empty() && i.components.is_empty());
        assert_eq!(i.milestone.as_deref(), Some("2026.11"));
        assert_eq!((i.parent, i.epic, i.assignee), (None, None, None));
        assert_eq!((i.estimate, i.created, i.resolved), (None, None, None));
        assert!(i.fields.is_empty());
        // A resolution date of any type but null means done, as before.
        let i = read_one(
            r#"{"issues": [{"key": "PAY-3", "fields": {"updated": "2026-11-03T10:00:00Z",
                "status": {"name": "Open"}, "resolutiondate": "not a date"}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!((i.category, i.resolved), (Category::Done, None));
    }

    #[test]
    fn story_points_as_numbers_or_as_strings() {
        let s = settings("customfield_10016", &[]);
        for (raw, want) in [
            ("5", Some(5.0)),
            ("2.5", Some(2.5)),
            ("\"13\"", Some(13.0)),
            ("\" 8 \"", Some(8.0)),
            ("\"lots\"", None),
            ("\"\"", None),
            ("true", None),
            ("[3]", None),
            ("{\"value\": 3}", None),
            ("null", None),
        ] {
            let body = format!(
                r#"{{"issues": [{{"key": "PAY-1", "fields": {{"updated": "2026-11-03T10:00:00Z", "customfield_10016": {raw}}}}}]}}"#
            );
            assert_eq!(read_one(&body, &s).expect("item").estimate, want, "{raw}");
        }
    }

    #[test]
    fn missing_fields_and_unknown_keys() {
        let s = settings("customfield_10016", &[]);
        assert_eq!(
            read_one(r#"{"issues": [{"key": "PAY-3"}]}"#, &s),
            Err("issue PAY-3 has no readable `updated` time".into())
        );
        assert_eq!(
            read_one(r#"{"issues": [{"key": "PAY-3", "fields": null}]}"#, &s),
            Err("issue PAY-3 has no readable `updated` time".into())
        );
        assert_eq!(
            read_one(
                r#"{"issues": [{"key": "", "fields": {"updated": "2026-11-03T10:00:00Z"}}]}"#,
                &s
            ),
            Err("an issue without a key".into())
        );
        assert_eq!(
            read_one(r#"{"issues": [null]}"#, &s),
            Err("an issue without a key".into())
        );
        let i = read_one(
            r#"{"expand": "names", "issues": [{"key": "PAY-4", "id": true,
                "renderedFields": {"summary": "<p>not this</p>", "x": [{"y": 1}]},
                "fields": {"updated": 1793700930250,
                    "customfield_99999": {"deep": [1, 2, {"a": null}]},
                    "description": {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "ADF"}]}]},
                    "status": {"name": "Done", "extra": [1], "statusCategory": {"key": "done", "more": {}}}}}],
                "warningMessages": ["w"], "names": {"summary": "Summary"}}"#,
            &s,
        )
        .expect("item");
        assert_eq!(
            i.ext_id, "PAY-4",
            "an id of another type falls back to the key"
        );
        assert_eq!(i.updated.to_rfc3339(), "2026-11-03T10:15:30.250+00:00");
        assert_eq!(i.title, "");
        assert_eq!(i.category, Category::Done);
    }

    #[test]
    fn a_configured_field_that_is_also_a_fixed_one_serves_as_both() {
        let mut s = settings(
            "customfield_10016",
            &["labels", "status", "customfield_10014"],
        );
        s.epic_field = Some("customfield_10014".into());
        let i = read_one(
            r#"{"issues": [{"key": "PAY-5", "fields": {"updated": "2026-11-03T10:00:00Z",
                "labels": ["a", "b"], "status": {"name": "Open", "statusCategory": {"key": "new"}},
                "customfield_10014": "PAY-1"}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!(i.labels, ["a", "b"]);
        assert_eq!((i.status.as_str(), i.category), ("Open", Category::Todo));
        assert_eq!(i.epic.as_deref(), Some("PAY-1"));
        assert_eq!(i.fields["labels"], serde_json::json!(["a", "b"]));
        assert_eq!(i.fields["status"], serde_json::json!("Open"));
        assert_eq!(i.fields["customfield_10014"], serde_json::json!("PAY-1"));
        // An epic parent wins over the epic field.
        let i = read_one(
            r#"{"issues": [{"key": "PAY-6", "fields": {"updated": "2026-11-03T10:00:00Z",
                "customfield_10014": {"key": "PAY-1"},
                "parent": {"key": "PAY-2", "fields": {"issuetype": {"name": "Initiative", "hierarchyLevel": 1}}}}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!(
            (i.epic.as_deref(), i.parent.as_deref()),
            (Some("PAY-2"), Some("PAY-2"))
        );
    }

    #[test]
    fn the_last_of_repeated_keys_wins_as_in_a_json_map() {
        let s = settings("customfield_10016", &["customfield_10050"]);
        let i = read_one(
            r#"{"issues": [{"key": "PAY-1", "key": "PAY-2", "fields": {"updated": "2026-11-03T10:00:00Z",
                "summary": "first", "summary": "second",
                "customfield_10016": 1, "customfield_10016": "3",
                "customfield_10050": "x", "customfield_10050": null,
                "status": {"name": "Done"}, "status": null}}]}"#,
            &s,
        )
        .expect("item");
        assert_eq!((i.key.as_str(), i.title.as_str()), ("PAY-2", "second"));
        assert_eq!(i.estimate, Some(3.0));
        assert!(i.fields.is_empty());
        assert_eq!((i.status.as_str(), i.category), ("", Category::Todo));
    }

    #[test]
    fn page_keys_are_read_strictly_as_before() {
        let s = settings("customfield_10016", &[]);
        let p = read_page(
            br#"{"issues": [], "nextPageToken": "abc", "isLast": false}"#,
            &s,
        )
        .expect("cloud page");
        assert_eq!(
            (p.next_page_token.as_deref(), p.is_last),
            (Some("abc"), Some(false))
        );
        let p = read_page(
            br#"{"startAt": 50, "maxResults": 50, "total": 51, "issues": [{}]}"#,
            &s,
        )
        .expect("data center page");
        assert_eq!(
            (p.start_at, p.total, p.issues.len()),
            (Some(50), Some(51), 1)
        );
        for (body, error) in [
            (
                &br#"{"isLast": "yes"}"#[..],
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                br#"{"issues": null}"#,
                "invalid type: null, expected a sequence",
            ),
            (br#"{"total": 1, "total": 2}"#, "duplicate field `total`"),
            (br#"{"issues": []} x"#, "trailing characters"),
        ] {
            let e = read_page(body, &s).expect_err("refused").to_string();
            assert!(e.starts_with(error), "{e}");
            // As the derived `SearchPage` of `Value`s says it.
            let old = serde_json::from_slice::<SearchPage>(body)
                .expect_err("refused")
                .to_string();
            assert_eq!(e, old);
        }
    }
}
