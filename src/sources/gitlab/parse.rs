//! GitLab REST v4 issue and merge request objects → items.
//!
//! Keys are GitLab's full references (`acme/platform/web#12`, `acme/platform/web!5`; older
//! GitLab answers only the short `reference`, which gets the project's path in front), and
//! `project` is the project's full path. Categories: an open merge request, or an open issue
//! with an assignee, is in progress; other open issues are to do; a merged merge request
//! and a closed issue are done; a merge request closed without merging, an issue closed as
//! a duplicate (`_links.closed_as_duplicate_of`) and an issue moved to another project
//! (`moved_to_id`: its copy there carries the work) are abandoned: they leave every KR's
//! scope, as on GitHub.
//!
//! Pages are read straight from the response body into [`Work`] (see `sources::lenient`):
//! only the keys okrsync uses, strings borrowed from the body.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::model::{Category, Item, ItemKind};
use crate::sources::lenient::{lenient_object, First, List, NameOrText, Obj, Scalar};

/// Which list an object comes from: issues or merge requests (their shapes overlap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Issues,
    MergeRequests,
}

impl Listing {
    /// The path segment of the REST endpoints.
    pub fn segment(self) -> &'static str {
        match self {
            Listing::Issues => "issues",
            Listing::MergeRequests => "merge_requests",
        }
    }

    /// What separates a project's path from an iid in a reference.
    pub fn sigil(self) -> char {
        match self {
            Listing::Issues => '#',
            Listing::MergeRequests => '!',
        }
    }
}

lenient_object! {
    /// An issue or a merge request as listed or read alone: the keys okrsync uses.
    pub struct Work<'a> {
        id: Scalar<'a> = "id",
        iid: Scalar<'a> = "iid",
        title: Scalar<'a> = "title",
        web_url: Scalar<'a> = "web_url",
        state: Scalar<'a> = "state",
        issue_type: Scalar<'a> = "issue_type",
        created_at: Scalar<'a> = "created_at",
        updated_at: Scalar<'a> = "updated_at",
        closed_at: Scalar<'a> = "closed_at",
        merged_at: Scalar<'a> = "merged_at",
        references: Obj<References<'a>> = "references",
        /// Before GitLab 12.6: only the short reference (`!15442`).
        reference: Scalar<'a> = "reference",
        labels: List<NameOrText<'a>> = "labels",
        milestone: Obj<Titled<'a>> = "milestone",
        iteration: Obj<Iteration<'a>> = "iteration",
        weight: Scalar<'a> = "weight",
        epic: Obj<Epic<'a>> = "epic",
        epic_iid: Scalar<'a> = "epic_iid",
        assignee: Obj<User<'a>> = "assignee",
        assignees: First<Obj<User<'a>>> = "assignees",
        author: Obj<User<'a>> = "author",
        moved_to_id: Scalar<'a> = "moved_to_id",
        links: Obj<Links<'a>> = "_links",
        draft: Scalar<'a> = "draft",
        work_in_progress: Scalar<'a> = "work_in_progress",
        health_status: Scalar<'a> = "health_status",
    }
}

lenient_object! {
    struct References<'a> {
        full: Scalar<'a> = "full",
    }
}

lenient_object! {
    struct Titled<'a> {
        title: Scalar<'a> = "title",
    }
}

lenient_object! {
    struct Iteration<'a> {
        title: Scalar<'a> = "title",
        iid: Scalar<'a> = "iid",
        start_date: Scalar<'a> = "start_date",
        due_date: Scalar<'a> = "due_date",
    }
}

lenient_object! {
    struct Epic<'a> {
        iid: Scalar<'a> = "iid",
        title: Scalar<'a> = "title",
        /// `/groups/acme/-/epics/5`: the only place the epic's group path is given.
        url: Scalar<'a> = "url",
        reference: Scalar<'a> = "reference",
    }
}

lenient_object! {
    struct User<'a> {
        username: Scalar<'a> = "username",
    }
}

lenient_object! {
    struct Links<'a> {
        closed_as_duplicate_of: Scalar<'a> = "closed_as_duplicate_of",
    }
}

/// Reads a list page (a JSON array) from the response body; the objects borrow from it.
pub fn read_page(body: &[u8]) -> Result<Vec<Work<'_>>, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Normalises one issue or merge request given as a `Value`.
pub fn parse_work(
    raw: &Value,
    source: &str,
    listing: Listing,
    context: &Context<'_>,
) -> Result<Item, String> {
    Work::deserialize(raw)
        .map_err(|e| e.to_string())?
        .to_item(source, listing, context)
}

/// What a parse needs besides the object: the instance URL (to read a project's path off a
/// `web_url`) and, when the object was listed from one project, that project's path.
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    pub base_url: &'c str,
    pub project: Option<&'c str>,
}

fn owned(v: &Scalar) -> Option<String> {
    v.text().map(str::to_string)
}

fn time(v: &Scalar) -> Option<DateTime<Utc>> {
    v.text()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The project path in a `web_url`: `{base}/acme/web/-/issues/3` → `acme/web` (also the
/// old `{base}/acme/web/merge_requests/3` form).
pub fn project_of_web_url(web_url: &str, base_url: &str) -> Option<String> {
    let rest = web_url.strip_prefix(base_url.trim_end_matches('/'))?;
    let rest = rest.trim_start_matches('/');
    let project = ["/-/issues/", "/-/merge_requests/", "/-/work_items/", "/issues/", "/merge_requests/"]
        .iter()
        .find_map(|marker| rest.split_once(marker).map(|(p, _)| p))?;
    (!project.is_empty()).then(|| project.to_string())
}

/// An epic's reference: `acme&5` from its `url` (`/groups/acme/-/epics/5`), or its own
/// `reference`, or `&iid` when only the iid is known.
fn epic_reference(epic: Option<&Epic>, epic_iid: &Scalar) -> Option<String> {
    if let Some(e) = epic {
        let from_url = e.url.text().and_then(|u| {
            let path = u.split_once("/groups/").map(|(_, p)| p)?;
            let (group, iid) = path.split_once("/-/epics/")?;
            let iid = iid.trim_end_matches('/');
            (!group.is_empty() && iid.parse::<u64>().is_ok()).then(|| format!("{group}&{iid}"))
        });
        if let Some(r) = from_url.or_else(|| owned(&e.reference)) {
            return Some(r);
        }
        if let Some(iid) = e.iid.as_u64() {
            return Some(format!("&{iid}"));
        }
    }
    epic_iid.as_u64().map(|iid| format!("&{iid}"))
}

impl Work<'_> {
    /// Normalises the object; the error names it.
    pub fn to_item(
        &self,
        source: &str,
        listing: Listing,
        context: &Context<'_>,
    ) -> Result<Item, String> {
        let sigil = listing.sigil();
        let iid = self.iid.as_u64();
        let web_url = owned(&self.web_url).unwrap_or_default();
        let full = self.references.get().and_then(|r| owned(&r.full));
        let project = full
            .as_deref()
            .and_then(|f| f.rsplit_once(sigil))
            .map(|(p, _)| p.to_string())
            .filter(|p| !p.is_empty())
            .or_else(|| project_of_web_url(&web_url, context.base_url))
            .or_else(|| context.project.map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "{} {} without a project (no references.full or web_url)",
                    listing.segment(),
                    iid.map(|i| format!("{sigil}{i}")).unwrap_or_default()
                )
            })?;
        let key = match (full, iid) {
            (Some(f), _) if f.contains(sigil) => f,
            (_, Some(i)) => format!("{project}{sigil}{i}"),
            _ => {
                let short = self.reference.text().filter(|r| r.starts_with(sigil));
                match short {
                    Some(r) => format!("{project}{r}"),
                    None => return Err(format!("an item of {project} without an iid")),
                }
            }
        };
        let ext_id = match &self.id {
            Scalar::Number(n) => n.to_string(),
            Scalar::Str(s) if !s.is_empty() => s.to_string(),
            _ => key.clone(),
        };
        let updated =
            time(&self.updated_at).ok_or_else(|| format!("{key} has no readable updated_at"))?;
        let is_mr = listing == Listing::MergeRequests;
        let state = self.state.text().unwrap_or("opened");
        let assignee = self
            .assignee
            .get()
            .and_then(|a| owned(&a.username))
            .or_else(|| {
                self.assignees
                    .0
                    .as_ref()
                    .and_then(Obj::get)
                    .and_then(|a| owned(&a.username))
            });
        let labels: Vec<String> = self
            .labels
            .0
            .iter()
            .filter_map(|l| l.0.as_deref().map(str::to_string))
            .collect();
        let duplicate = self
            .links
            .get()
            .is_some_and(|l| l.closed_as_duplicate_of.text().is_some());
        let moved = self.moved_to_id.is_set();
        let (category, abandoned, resolved) = match (state, is_mr) {
            // `locked`: an MR being merged right now.
            ("opened" | "locked", true) => (Category::InProgress, false, None),
            ("opened", false) if assignee.is_some() => (Category::InProgress, false, None),
            ("opened", false) => (Category::Todo, false, None),
            ("merged", _) => (
                Category::Done,
                false,
                time(&self.merged_at).or(Some(updated)),
            ),
            ("closed", true) => (Category::Todo, true, None),
            ("closed", false) if duplicate || moved => (Category::Todo, true, None),
            ("closed", false) => (
                Category::Done,
                false,
                time(&self.closed_at).or(Some(updated)),
            ),
            (_, true) => (Category::InProgress, false, None),
            (_, false) => (Category::Todo, false, None),
        };
        let status = if state == "closed" && !is_mr && duplicate {
            "duplicate"
        } else if state == "closed" && !is_mr && moved {
            "moved"
        } else {
            state
        };
        let mut fields = BTreeMap::new();
        if let Some(u) = self.author.get().and_then(|u| owned(&u.username)) {
            fields.insert("author".to_string(), Value::String(u));
        }
        if let Some(it) = self.iteration.get() {
            let title = owned(&it.title).or_else(|| {
                match (it.start_date.text(), it.due_date.text()) {
                    (Some(s), Some(d)) => Some(format!("{s} – {d}")),
                    _ => it.iid.as_u64().map(|i| format!("iteration {i}")),
                }
            });
            if let Some(t) = title {
                fields.insert("iteration".to_string(), Value::String(t));
            }
        }
        if let Some(e) = self.epic.get().and_then(|e| owned(&e.title)) {
            fields.insert("epic_title".to_string(), Value::String(e));
        }
        if let Some(h) = owned(&self.health_status) {
            fields.insert("health_status".to_string(), Value::String(h));
        }
        if is_mr {
            if let Some(d) = self.draft.as_bool().or(self.work_in_progress.as_bool()) {
                fields.insert("draft".to_string(), Value::Bool(d));
            }
        }
        let item_type = if is_mr {
            "merge_request".to_string()
        } else {
            self.issue_type.text().unwrap_or("issue").to_lowercase()
        };
        Ok(Item {
            source: source.to_string(),
            ext_id,
            key,
            kind: if is_mr {
                ItemKind::PullRequest
            } else {
                ItemKind::Issue
            },
            title: owned(&self.title).unwrap_or_default(),
            url: web_url,
            project,
            item_type,
            status: status.to_string(),
            category,
            labels,
            components: Vec::new(),
            epic: epic_reference(self.epic.get(), &self.epic_iid),
            parent: None,
            milestone: self.milestone.get().and_then(|m| owned(&m.title)),
            assignee,
            estimate: self.weight.as_number().and_then(serde_json::Number::as_f64),
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

    const GITLAB: Context<'static> = Context {
        base_url: "https://gitlab.com",
        project: None,
    };

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/gitlab/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn page(name: &str, listing: Listing, context: &Context) -> Vec<Item> {
        let body = fixture(name);
        let works = read_page(&body).expect("a page");
        let items: Vec<Item> = works
            .iter()
            .map(|w| w.to_item("gl", listing, context).expect("item"))
            .collect();
        // The same from a `Value` walk.
        let values: Vec<Value> = serde_json::from_slice(&body).expect("json");
        for (v, i) in values.iter().zip(&items) {
            assert_eq!(&parse_work(v, "gl", listing, context).expect("item"), i);
        }
        items
    }

    #[test]
    fn a_recorded_page_of_project_issues() {
        let items = page(
            "rest-list-project-issues.devlake.json",
            Listing::Issues,
            &GITLAB,
        );
        assert_eq!(items.len(), 16);
        let first = &items[0];
        assert_eq!(first.key, "gitlab-data/snowflake_spend#1");
        assert_eq!(first.project, "gitlab-data/snowflake_spend");
        assert_eq!(first.kind, ItemKind::Issue);
        assert_eq!(first.item_type, "issue");
        assert_eq!(
            first.url,
            "https://gitlab.com/gitlab-data/snowflake_spend/-/issues/1"
        );
        assert_eq!(
            (first.category, first.status.as_str(), first.abandoned),
            (Category::Done, "closed", false)
        );
        assert_eq!(
            first.resolved.map(|t| t.to_rfc3339()),
            Some("2019-06-28T14:32:05.376+00:00".into())
        );
        assert_eq!(first.milestone.as_deref(), Some("19.12"));
        assert_eq!(first.assignee.as_deref(), Some("emilie"));
        assert_eq!(first.ext_id, "22097949");
        assert_eq!(first.fields.get("author"), Some(&Value::from("emilie")));
        assert_eq!((first.epic.as_deref(), first.estimate), (None, None));
        // Weights are estimates; scoped labels are kept verbatim.
        let second = &items[1];
        assert_eq!(second.estimate, Some(1.0));
        let eleventh = &items[10];
        assert!(eleventh
            .labels
            .contains(&"workflow::4 - scheduled".to_string()));
        assert!(eleventh.labels.contains(&"Priority::3-Other".to_string()));
        // #10 was moved to another project: its copy there carries the work.
        let moved = items
            .iter()
            .find(|i| i.key == "gitlab-data/snowflake_spend#10")
            .expect("#10");
        assert!(moved.abandoned);
        assert_eq!(moved.status, "moved");
        let open: Vec<&Item> = items.iter().filter(|i| i.status == "opened").collect();
        assert_eq!(open.len(), 4);
        assert!(open
            .iter()
            .all(|i| matches!(i.category, Category::Todo | Category::InProgress)));
    }

    #[test]
    fn a_recorded_page_of_merge_requests() {
        let items = page(
            "rest-list-merge-requests.devlake.json",
            Listing::MergeRequests,
            &GITLAB,
        );
        assert_eq!(items.len(), 18);
        let merged = &items[0];
        assert_eq!(merged.key, "gitlab-data/snowflake_spend!1");
        assert_eq!(
            (merged.kind, merged.item_type.as_str(), merged.category),
            (ItemKind::PullRequest, "merge_request", Category::Done)
        );
        assert_eq!(
            merged.resolved.map(|t| t.to_rfc3339()),
            Some("2019-06-28T14:32:06.192+00:00".into())
        );
        assert_eq!(merged.fields.get("draft"), Some(&Value::Bool(false)));
        let count = |f: &dyn Fn(&Item) -> bool| items.iter().filter(|i| f(i)).count();
        assert_eq!(count(&|i| i.status == "merged" && i.category == Category::Done), 10);
        assert_eq!(count(&|i| i.status == "closed" && i.abandoned), 3);
        assert_eq!(
            count(&|i| i.status == "opened" && i.category == Category::InProgress),
            5
        );
        let draft = items
            .iter()
            .find(|i| i.key == "gitlab-data/snowflake_spend!21")
            .expect("!21");
        assert_eq!(draft.fields.get("draft"), Some(&Value::Bool(true)));
    }

    #[test]
    fn the_pre_12_6_shape_takes_the_project_from_the_web_url() {
        let items = page(
            "rest-list-merge-requests.go-gitlab.json",
            Listing::MergeRequests,
            &GITLAB,
        );
        assert_eq!(items.len(), 20);
        assert_eq!(items[0].key, "gitlab-org/gitlab-ee!15442");
        assert_eq!(items[0].project, "gitlab-org/gitlab-ee");
        let count = |s: &str| items.iter().filter(|i| i.status == s).count();
        assert_eq!((count("opened"), count("closed"), count("merged")), (15, 3, 2));
        assert!(items
            .iter()
            .filter(|i| i.status == "closed")
            .all(|i| i.abandoned));
        // A single MR object reads the same way.
        let body = fixture("rest-merge-request.go-gitlab.json");
        let single: Work = serde_json::from_slice(&body).expect("mr");
        let mr = single
            .to_item("gl", Listing::MergeRequests, &GITLAB)
            .expect("item");
        assert_eq!(mr.key, "gitlab-org/gitlab-ee!14656");
        assert_eq!(mr.category, Category::InProgress);
    }

    #[test]
    fn epics_iterations_duplicates_and_a_sub_path() {
        let raw = serde_json::json!({
            "id": 76, "iid": 6, "state": "closed", "title": "Pay by link",
            "updated_at": "2026-11-03T10:00:00Z", "closed_at": "2026-11-02T09:00:00.000+01:00",
            "web_url": "https://git.acme.com/gitlab/acme/platform/web/-/issues/6",
            "labels": ["team::pay", "checkout"], "weight": 3,
            "epic": {"id": 42, "iid": 5, "title": "Checkout", "url": "/groups/acme/platform/-/epics/5", "group_id": 8},
            "epic_iid": 5,
            "iteration": {"id": 90, "iid": 4, "title": null, "start_date": "2026-11-02", "due_date": "2026-11-15"},
            "_links": {"closed_as_duplicate_of": null}
        });
        let ctx = Context {
            base_url: "https://git.acme.com/gitlab",
            project: None,
        };
        let i = parse_work(&raw, "gl", Listing::Issues, &ctx).expect("item");
        assert_eq!(i.key, "acme/platform/web#6", "from the web_url, under the sub-path");
        assert_eq!(i.project, "acme/platform/web");
        assert_eq!(i.epic.as_deref(), Some("acme/platform&5"));
        assert_eq!(i.fields.get("epic_title"), Some(&Value::from("Checkout")));
        assert_eq!(
            i.fields.get("iteration"),
            Some(&Value::from("2026-11-02 – 2026-11-15"))
        );
        assert_eq!((i.category, i.estimate), (Category::Done, Some(3.0)));
        assert_eq!(
            i.resolved.map(|t| t.to_rfc3339()),
            Some("2026-11-02T08:00:00+00:00".into())
        );
        assert_eq!(i.labels, ["team::pay", "checkout"]);

        let mut dup = raw.clone();
        dup["_links"]["closed_as_duplicate_of"] =
            Value::from("https://git.acme.com/gitlab/api/v4/projects/1/issues/2");
        dup["iteration"]["title"] = Value::from("Sprint 12");
        dup["epic"] = Value::Null;
        let d = parse_work(&dup, "gl", Listing::Issues, &ctx).expect("item");
        assert!(d.abandoned);
        assert_eq!(d.status, "duplicate");
        assert_eq!(d.epic.as_deref(), Some("&5"), "only the epic's iid is known");
        assert_eq!(d.fields.get("iteration"), Some(&Value::from("Sprint 12")));
    }

    #[test]
    fn missing_or_odd_keys() {
        let ctx = Context {
            base_url: "https://gitlab.com",
            project: Some("a/b"),
        };
        let read = |body: &str| {
            let works = read_page(body.as_bytes()).expect("page");
            works[0].to_item("gl", Listing::Issues, &ctx)
        };
        assert_eq!(
            read(r#"[{"iid": 3, "updated_at": 5}]"#),
            Err("a/b#3 has no readable updated_at".into())
        );
        assert_eq!(
            read(r#"[{"iid": "3", "updated_at": "2026-11-03T10:00:00Z"}]"#),
            Err("an item of a/b without an iid".into())
        );
        let i = read(
            r#"[{"iid": 3, "updated_at": "2026-11-03T10:00:00Z", "labels": [{"name": "x"}, 4, null],
                "assignees": [{"username": "kim"}], "weight": "5", "milestone": null, "state": "opened"}]"#,
        )
        .expect("item");
        assert_eq!(i.key, "a/b#3", "the listed project when nothing else says");
        assert_eq!(i.labels, ["x"], "label objects (with_labels_details) read by name");
        assert_eq!(
            (i.assignee.as_deref(), i.category, i.estimate),
            (Some("kim"), Category::InProgress, None)
        );
        assert!(read_page(b"{}").is_err(), "a page is an array");
    }

    #[test]
    fn project_paths_of_web_urls() {
        assert_eq!(
            project_of_web_url(
                "https://gitlab.com/gitlab-org/gitlab-ee/merge_requests/15442",
                "https://gitlab.com/"
            )
            .as_deref(),
            Some("gitlab-org/gitlab-ee")
        );
        assert_eq!(
            project_of_web_url("https://other.example/a/b/-/issues/1", "https://gitlab.com"),
            None
        );
    }
}
