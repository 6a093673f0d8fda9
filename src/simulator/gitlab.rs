//! A simulated GitLab REST API v4 on 127.0.0.1, at the root (`/api/v4`, like gitlab.com) or
//! under a sub-path (`/gitlab/api/v4`, like a self-managed instance at
//! `https://git.acme.com/gitlab`): `GET /projects/:id/issues`, `/projects/:id/merge_requests`
//! and the same under `/groups/:id/` (every project below the group, subgroups included), with
//! `updated_after`, `order_by`, `sort`, `state`, `per_page`, `page`, and keyset pagination
//! (`pagination=keyset`, opaque `cursor=`) on a project's issues; `Link` and `X-Next-Page` /
//! `X-Total` headers, `RateLimit-*` headers, `PRIVATE-TOKEN` or `Authorization: Bearer`
//! auth (401 otherwise), single issues and merge requests (404 once deleted), and
//! `PUT …/:iid` with `add_labels`/`remove_labels`. The objects have the shape of GitLab's
//! answers (see `tests/fixtures/gitlab/`). Errors on demand through the fault plan.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

pub use super::faults::Fault;
use super::faults::Faults;

/// An issue or merge request as the simulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct GlItem {
    /// Global id.
    pub id: u64,
    /// Number within the project.
    pub iid: u64,
    /// The project's full path.
    pub project: String,
    pub merge_request: bool,
    pub title: String,
    /// "opened" | "closed" | "merged"
    pub state: String,
    pub labels: Vec<String>,
    pub milestone: Option<String>,
    pub iteration: Option<String>,
    pub weight: Option<u64>,
    /// (group path, epic iid)
    pub epic: Option<(String, u64)>,
    pub assignee: Option<String>,
    pub author: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub closed: Option<DateTime<Utc>>,
    pub merged: Option<DateTime<Utc>>,
    /// Moved to another project (the id of its copy there).
    pub moved_to_id: Option<u64>,
    /// Closed as a duplicate of this issue iid.
    pub duplicate_of: Option<u64>,
}

impl GlItem {
    /// An open issue of `project`, created and updated now.
    pub fn issue(id: u64, project: &str, iid: u64, title: &str) -> GlItem {
        let now = now_ms();
        GlItem {
            id,
            iid,
            project: project.to_string(),
            merge_request: false,
            title: title.to_string(),
            state: "opened".into(),
            labels: Vec::new(),
            milestone: None,
            iteration: None,
            weight: None,
            epic: None,
            assignee: None,
            author: "alice".into(),
            created: now,
            updated: now,
            closed: None,
            merged: None,
            moved_to_id: None,
            duplicate_of: None,
        }
    }

    /// An open merge request of `project`, created and updated now.
    pub fn merge_request(id: u64, project: &str, iid: u64, title: &str) -> GlItem {
        GlItem {
            merge_request: true,
            ..GlItem::issue(id, project, iid, title)
        }
    }

    /// Its reference: `acme/web#3` or `acme/web!3`.
    pub fn reference(&self) -> String {
        let sigil = if self.merge_request { '!' } else { '#' };
        format!("{}{sigil}{}", self.project, self.iid)
    }
}

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct GlRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Whether the right token was sent.
    pub authorized: bool,
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    /// Project path → project id.
    projects: BTreeMap<String, u64>,
    items: Vec<GlItem>,
    faults: VecDeque<Fault>,
    requests: Vec<GlRequest>,
    remaining: u64,
    /// Whether a project's issues may be paged by keyset (newer GitLab versions).
    keyset: bool,
}

struct Shared {
    token: String,
    /// `""` (gitlab.com) or a sub-path like `/gitlab`.
    prefix: String,
    /// `http://127.0.0.1:PORT`
    origin: String,
    inner: Mutex<Inner>,
    faults: Faults,
}

/// A running simulated GitLab.
pub struct GitLabSim {
    shared: Arc<Shared>,
    _server: super::Server,
}

/// Requests per minute (GitLab.com's authenticated API limit).
const LIMIT: u64 = 2000;

fn now_ms() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .unwrap_or_default()
}

impl GitLabSim {
    /// Starts on 127.0.0.1; `sub_path` (`"/gitlab"`) mounts it there, like a self-managed
    /// instance behind a path prefix.
    pub async fn start(token: &str, sub_path: Option<&str>) -> anyhow::Result<GitLabSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: token.to_string(),
            prefix: sub_path.unwrap_or("").trim_end_matches('/').to_string(),
            origin: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                remaining: LIMIT,
                keyset: true,
                ..Inner::default()
            }),
            faults: Faults::default(),
        });
        let app = Router::new()
            .fallback(serve)
            .layer(axum::middleware::from_fn_with_state(
                shared.faults.clone(),
                super::faults::layer,
            ))
            .with_state(shared.clone());
        Ok(GitLabSim {
            shared,
            _server: super::Server::serve(listener, app),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `url` to configure: `http://127.0.0.1:PORT` or `http://127.0.0.1:PORT/gitlab`.
    pub fn url(&self) -> String {
        format!("{}{}", self.shared.origin, self.shared.prefix)
    }

    /// Creates a project (an unknown one answers 404).
    pub fn create_project(&self, path: &str) {
        let mut inner = self.inner();
        let id = 1000 + inner.projects.len() as u64;
        inner.projects.entry(path.to_string()).or_insert(id);
    }

    /// Inserts or replaces an issue or merge request (by project, kind and iid); creates
    /// its project.
    pub fn upsert(&self, item: GlItem) {
        self.create_project(&item.project);
        let mut inner = self.inner();
        inner.items.retain(|i| {
            !(i.project == item.project
                && i.merge_request == item.merge_request
                && i.iid == item.iid)
        });
        inner.items.push(item);
    }

    /// Changes an item (by reference, `acme/web#3` or `acme/web!3`) and stamps `updated`
    /// with now.
    pub fn edit(&self, reference: &str, f: impl FnOnce(&mut GlItem)) {
        let mut inner = self.inner();
        if let Some(i) = inner.items.iter_mut().find(|i| i.reference() == reference) {
            f(i);
            i.updated = now_ms();
        }
    }

    /// Deletes an item (it then answers 404).
    pub fn delete(&self, reference: &str) {
        self.inner().items.retain(|i| i.reference() != reference);
    }

    /// The item with this reference as it is now.
    pub fn item(&self, reference: &str) -> Option<GlItem> {
        self.inner()
            .items
            .iter()
            .find(|i| i.reference() == reference)
            .cloned()
    }

    /// Answers 405 to `pagination=keyset`, like an older GitLab on a project's issues.
    pub fn refuse_keyset(&self) {
        self.inner().keyset = false;
    }

    /// The next request gets `fault` (statuses are recorded among the requests; the other
    /// faults are served by the fault plan, see [`GitLabSim::faults`]).
    pub fn fail_next(&self, fault: Fault) {
        match fault {
            Fault::Status { .. } => self.inner().faults.push_back(fault),
            other => self.shared.faults.arm("", 1, 1, other),
        }
    }

    /// The fault plan of every endpoint.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn requests(&self) -> Vec<GlRequest> {
        self.inner().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }

    /// What `RateLimit-Remaining` says now.
    pub fn rate_limit_remaining(&self) -> u64 {
        self.inner().remaining
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn user_json(web: &str, username: &str) -> Value {
    let id = username.len() as u64 * 1000 + 7;
    json!({
        "id": id,
        "username": username,
        "name": username,
        "state": "active",
        "locked": false,
        "avatar_url": format!("https://secure.gravatar.example/avatar/{id}?s=80&d=identicon"),
        "web_url": format!("{web}/{username}")
    })
}

/// The id of a name (milestones, iterations, epics): stable across answers.
fn stable_id(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 9_000_000
        + 1_000_000
}

fn item_json(web: &str, api: &str, project_id: u64, i: &GlItem) -> Value {
    let (segment, sigil) = if i.merge_request {
        ("merge_requests", '!')
    } else {
        ("issues", '#')
    };
    let group = i.project.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let self_url = format!("{api}/projects/{project_id}/{segment}/{}", i.iid);
    let milestone = i.milestone.as_ref().map(|m| {
        json!({
            "id": stable_id(m), "iid": stable_id(m) % 100, "project_id": project_id,
            "title": m, "description": "", "state": "active",
            "created_at": "2026-09-01T09:00:00.000Z", "updated_at": "2026-09-01T09:00:00.000Z",
            "due_date": null, "start_date": null, "expired": false,
            "web_url": format!("{web}/{}/-/milestones/{}", i.project, stable_id(m) % 100)
        })
    });
    let assignees: Vec<Value> = i.assignee.iter().map(|a| user_json(web, a)).collect();
    let mut v = json!({
        "id": i.id,
        "iid": i.iid,
        "project_id": project_id,
        "title": i.title,
        "description": "",
        "state": i.state,
        "created_at": time(i.created),
        "updated_at": time(i.updated),
        "closed_at": i.closed.map(time),
        "closed_by": i.closed.map(|_| user_json(web, &i.author)),
        "labels": i.labels,
        "milestone": milestone,
        "assignees": assignees,
        "author": user_json(web, &i.author),
        "assignee": i.assignee.as_deref().map(|a| user_json(web, a)),
        "user_notes_count": 0,
        "upvotes": 0,
        "downvotes": 0,
        "discussion_locked": null,
        "web_url": format!("{web}/{}/-/{segment}/{}", i.project, i.iid),
        "time_stats": {
            "time_estimate": 0, "total_time_spent": 0,
            "human_time_estimate": null, "human_total_time_spent": null
        },
        "task_completion_status": { "count": 0, "completed_count": 0 },
        "references": {
            "short": format!("{sigil}{}", i.iid),
            "relative": format!("{sigil}{}", i.iid),
            "full": format!("{}{sigil}{}", i.project, i.iid)
        },
    });
    let extra = if i.merge_request {
        json!({
            "merged_by": i.merged.map(|_| user_json(web, &i.author)),
            "merge_user": i.merged.map(|_| user_json(web, &i.author)),
            "merged_at": i.merged.map(time),
            "target_branch": "main",
            "source_branch": format!("{}-work", i.iid),
            "reviewers": [],
            "source_project_id": project_id,
            "target_project_id": project_id,
            "draft": false,
            "work_in_progress": false,
            "merge_when_pipeline_succeeds": false,
            "merge_status": "can_be_merged",
            "detailed_merge_status": if i.state == "opened" { "mergeable" } else { "not_open" },
            "sha": format!("{:040x}", i.id),
            "merge_commit_sha": i.merged.map(|_| format!("{:040x}", i.id + 1)),
            "squash_commit_sha": null,
            "should_remove_source_branch": null,
            "force_remove_source_branch": true,
            "reference": format!("!{}", i.iid),
            "squash": false,
            "has_conflicts": false,
            "blocking_discussions_resolved": true
        })
    } else {
        let epic = i.epic.as_ref().map(|(g, iid)| {
            json!({
                "id": stable_id(&format!("{g}&{iid}")), "iid": iid,
                "title": format!("Epic {iid}"),
                "url": format!("/groups/{g}/-/epics/{iid}"),
                "group_id": stable_id(g)
            })
        });
        let iteration = i.iteration.as_ref().map(|t| {
            json!({
                "id": stable_id(t), "iid": stable_id(t) % 100, "sequence": 1,
                "group_id": stable_id(group), "title": t, "description": null, "state": 2,
                "created_at": "2026-10-01T09:00:00.000Z", "updated_at": "2026-10-01T09:00:00.000Z",
                "start_date": "2026-11-02", "due_date": "2026-11-15",
                "web_url": format!("{web}/groups/{group}/-/iterations/{}", stable_id(t))
            })
        });
        json!({
            "type": "ISSUE",
            "issue_type": "issue",
            "merge_requests_count": 0,
            "due_date": null,
            "confidential": false,
            "weight": i.weight,
            "blocking_issues_count": 0,
            "has_tasks": false,
            "_links": {
                "self": self_url,
                "notes": format!("{self_url}/notes"),
                "award_emoji": format!("{self_url}/award_emoji"),
                "project": format!("{api}/projects/{project_id}"),
                "closed_as_duplicate_of": i.duplicate_of.map(|d| format!("{api}/projects/{project_id}/issues/{d}"))
            },
            "severity": "UNKNOWN",
            "moved_to_id": i.moved_to_id,
            "service_desk_reply_to": null,
            "epic_iid": i.epic.as_ref().map(|(_, iid)| iid),
            "epic": epic,
            "iteration": iteration,
            "health_status": null
        })
    };
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

fn gl_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn cursor_for(updated: DateTime<Utc>, id: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{{\"updated_at\":\"{}\",\"id\":\"{id}\"}}",
        time(updated)
    ))
}

fn position_from(cursor: &str) -> Option<(DateTime<Utc>, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let t = DateTime::parse_from_rfc3339(v["updated_at"].as_str()?)
        .ok()?
        .with_timezone(&Utc);
    Some((t, v["id"].as_str()?.parse().ok()?))
}

/// `/projects/acme%2Fweb/issues/3` → segments with each one percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_string();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let token = header("private-token").map(str::to_string).or_else(|| {
        header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_string)
    });
    let authorized = token.as_deref() == Some(shared.token.as_str());
    let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let record = |inner: &mut Inner, status: u16| {
        inner.requests.push(GlRequest {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            authorized: authorized && status != 401,
            status,
        })
    };
    if let Some(Fault::Status {
        status,
        retry_after,
        body,
    }) = inner.faults.pop_front()
    {
        record(&mut inner, status);
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match body {
            Some(b) => (code, [("content-type", "application/json")], b).into_response(),
            None if status == 429 => (code, "Retry later\n").into_response(),
            None => gl_error(code, "500 Internal Server Error"),
        };
        if let Some(v) = retry_after.and_then(|r| r.parse().ok()) {
            resp.headers_mut().insert("retry-after", v);
        }
        return resp;
    }
    let Some(api_path) = path
        .strip_prefix(shared.prefix.as_str())
        .and_then(|p| p.strip_prefix("/api/v4/"))
    else {
        record(&mut inner, 404);
        return gl_error(StatusCode::NOT_FOUND, "404 Not Found");
    };
    if !authorized {
        record(&mut inner, 401);
        return gl_error(StatusCode::UNAUTHORIZED, "401 Unauthorized");
    }
    inner.remaining = inner.remaining.saturating_sub(1);
    let remaining = inner.remaining;
    let reset = Utc::now().timestamp() + 60;
    let limits = [
        ("ratelimit-limit", LIMIT.to_string()),
        ("ratelimit-observed", (LIMIT - remaining).to_string()),
        ("ratelimit-remaining", remaining.to_string()),
        ("ratelimit-reset", reset.to_string()),
    ];
    let web = format!("{}{}", shared.origin, shared.prefix);
    let api = format!("{web}/api/v4");
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let segs = segments(api_path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (owner_kind, owner, listing, iid) = match segs.as_slice() {
        [k @ ("projects" | "groups"), o, l @ ("issues" | "merge_requests")] => (*k, *o, *l, None),
        ["projects", o, l @ ("issues" | "merge_requests"), iid] => ("projects", *o, *l, Some(*iid)),
        _ => {
            record(&mut inner, 404);
            return gl_error(StatusCode::NOT_FOUND, "404 Not Found");
        }
    };
    let merge_requests = listing == "merge_requests";
    // A project by its full path or its id.
    let project = if owner_kind == "projects" {
        let found = inner
            .projects
            .iter()
            .find(|(p, id)| p.as_str() == owner || id.to_string() == owner)
            .map(|(p, id)| (p.clone(), *id));
        match found {
            Some(p) => Some(p),
            None => {
                record(&mut inner, 404);
                return gl_error(StatusCode::NOT_FOUND, "404 Project Not Found");
            }
        }
    } else {
        let known = inner
            .projects
            .keys()
            .any(|p| p.starts_with(&format!("{owner}/")));
        if !known {
            record(&mut inner, 404);
            return gl_error(StatusCode::NOT_FOUND, "404 Group Not Found");
        }
        None
    };
    let respond =
        |inner: &mut Inner, status: StatusCode, doc: Value, extra: Vec<(String, String)>| {
            record(inner, status.as_u16());
            let mut resp = (status, axum::Json(doc)).into_response();
            for (k, v) in limits
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .chain(extra)
            {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(k.as_bytes()),
                    axum::http::HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        };
    // One issue or merge request: GET, or PUT with labels.
    if let (Some(iid), Some((project, project_id))) = (iid, &project) {
        let iid: u64 = iid.parse().unwrap_or(0);
        let now = now_ms();
        let found = inner
            .items
            .iter_mut()
            .find(|i| &i.project == project && i.merge_request == merge_requests && i.iid == iid);
        let Some(item) = found else {
            record(&mut inner, 404);
            return gl_error(StatusCode::NOT_FOUND, "404 Not found");
        };
        if method == Method::PUT {
            let form: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                let pairs: BTreeMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                json!(pairs)
            });
            let names = |k: &str| -> Vec<String> {
                form[k]
                    .as_str()
                    .map(|s| {
                        s.split(',')
                            .map(|l| l.trim().to_string())
                            .filter(|l| !l.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (add, remove) = (names("add_labels"), names("remove_labels"));
            if add.is_empty() && remove.is_empty() && form.get("labels").is_none() {
                record(&mut inner, 400);
                return gl_error(
                    StatusCode::BAD_REQUEST,
                    "400 Bad request - at least one parameter must be provided",
                );
            }
            if let Some(all) = form["labels"].as_str() {
                item.labels = all
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
            }
            for l in add {
                if !item.labels.contains(&l) {
                    item.labels.push(l);
                }
            }
            item.labels.retain(|l| !remove.contains(l));
            item.updated = now;
        } else if method != Method::GET {
            record(&mut inner, 405);
            return gl_error(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed");
        }
        let doc = item_json(&web, &api, *project_id, item);
        return respond(&mut inner, StatusCode::OK, doc, Vec::new());
    }
    if method != Method::GET {
        record(&mut inner, 405);
        return gl_error(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed");
    }
    // A listing.
    let updated_after = param("updated_after")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let state = param("state").unwrap_or("all");
    let by_created = param("order_by") == Some("created_at");
    let ascending = param("sort") == Some("asc");
    let per_page = param("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let keyset = param("pagination") == Some("keyset");
    if keyset && project.is_some() && !merge_requests && !inner.keyset {
        record(&mut inner, 405);
        return gl_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Keyset pagination is not yet available for this type of request",
        );
    }
    let keyset = keyset && project.is_some() && !merge_requests && !by_created;
    let mut list: Vec<&GlItem> = inner
        .items
        .iter()
        .filter(|i| i.merge_request == merge_requests)
        .filter(|i| match &project {
            Some((p, _)) => &i.project == p,
            None => i.project.starts_with(&format!("{owner}/")),
        })
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| updated_after.is_none_or(|t| i.updated >= t))
        .collect();
    let sort_key = |i: &GlItem| (if by_created { i.created } else { i.updated }, i.id);
    list.sort_by_key(|i| sort_key(i));
    if !ascending {
        list.reverse();
    }
    let total = list.len();
    let (start, page_no) = if keyset {
        let start = match param("cursor").map(position_from) {
            None => 0,
            Some(None) => {
                record(&mut inner, 400);
                return gl_error(
                    StatusCode::BAD_REQUEST,
                    "400 Bad request - cursor is invalid",
                );
            }
            Some(Some(pos)) => list
                .iter()
                .position(|i| {
                    let k = sort_key(i);
                    if ascending {
                        k > pos
                    } else {
                        k < pos
                    }
                })
                .unwrap_or(total),
        };
        (start, 0)
    } else {
        let page = param("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        ((page - 1) * per_page, page)
    };
    let page: Vec<Value> = list
        .iter()
        .skip(start)
        .take(per_page)
        .map(|i| {
            let id = inner.projects.get(&i.project).copied().unwrap_or_default();
            item_json(&web, &api, id, i)
        })
        .collect();
    let end = (start + per_page).min(total);
    let more = end < total;
    let last = list.get(end.saturating_sub(1)).map(|i| sort_key(i));
    // The query of another page: this one's, with `page` or `cursor` replaced.
    let link = |name: &str, value: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| k != "page" && k != "cursor") {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
        format!("{}{}?{}", shared.origin, path, q.finish())
    };
    let mut extra: Vec<(String, String)> = vec![("x-per-page".into(), per_page.to_string())];
    let mut links = Vec::new();
    if keyset {
        if let (true, Some((t, id))) = (more, last) {
            links.push(format!(
                "<{}>; rel=\"next\"",
                link("cursor", &cursor_for(t, id))
            ));
        }
    } else {
        let pages = total.div_ceil(per_page).max(1);
        extra.extend([
            ("x-page".into(), page_no.to_string()),
            ("x-total".into(), total.to_string()),
            ("x-total-pages".into(), pages.to_string()),
            (
                "x-next-page".into(),
                if more {
                    (page_no + 1).to_string()
                } else {
                    String::new()
                },
            ),
            (
                "x-prev-page".into(),
                if page_no > 1 {
                    (page_no - 1).to_string()
                } else {
                    String::new()
                },
            ),
        ]);
        if page_no > 1 {
            links.push(format!(
                "<{}>; rel=\"prev\"",
                link("page", &(page_no - 1).to_string())
            ));
        }
        if more {
            links.push(format!(
                "<{}>; rel=\"next\"",
                link("page", &(page_no + 1).to_string())
            ));
        }
        links.push(format!("<{}>; rel=\"first\"", link("page", "1")));
        links.push(format!(
            "<{}>; rel=\"last\"",
            link("page", &pages.to_string())
        ));
    }
    if !links.is_empty() {
        extra.push(("link".into(), links.join(", ")));
    }
    respond(&mut inner, StatusCode::OK, Value::Array(page), extra)
}
