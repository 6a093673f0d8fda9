//! A simulated GitHub REST API on 127.0.0.1: `GET /repos/{owner}/{repo}/issues` (also under
//! `/api/v3` as on GitHub Enterprise Server) with `state`, `sort`, `direction`, `since` and
//! `per_page`, `Link` headers with opaque `after=` cursors as absolute URLs, ETags answered
//! with 304 (which cost no rate limit), `x-ratelimit-*` headers, token auth, and errors on
//! demand (secondary rate limits with `retry-after`, 5xx).
//!
//! Besides what okrsync asks, it answers what other GitHub clients ask first (the comparison
//! benchmark runs airbyte-source-github against it): `GET /rate_limit`, `GET /repos/{owner}/{repo}`.
//! Issues are answered in GitHub's full REST form (user objects with their URLs, labels with
//! theirs, reactions, body), and each listing page is serialized once and kept until the
//! issues change, so a client paging through them measures itself, not the simulator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use super::faults::Fault;
use super::faults::{DataFault, Faults};

/// An issue or pull request as the simulator stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct GhIssue {
    pub id: u64,
    pub number: u64,
    pub title: String,
    /// "open" | "closed"
    pub state: String,
    /// "completed" | "not_planned" | "duplicate" | "reopened"
    pub state_reason: Option<String>,
    pub pull_request: bool,
    pub merged_at: Option<DateTime<Utc>>,
    pub labels: Vec<String>,
    pub milestone: Option<String>,
    pub assignee: Option<String>,
    pub author: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub closed: Option<DateTime<Utc>>,
    /// Markdown, as the author wrote it.
    pub body: Option<String>,
    /// How many comments it has (the count GitHub shows in the listing).
    pub comments: u64,
}

impl GhIssue {
    /// An open issue, created and updated now.
    pub fn new(id: u64, number: u64, title: &str) -> GhIssue {
        let now = now_ms();
        GhIssue {
            id,
            number,
            title: title.to_string(),
            state: "open".into(),
            state_reason: None,
            pull_request: false,
            merged_at: None,
            labels: Vec::new(),
            milestone: None,
            assignee: None,
            author: "octocat".into(),
            created: now,
            updated: now,
            closed: None,
            body: None,
            comments: 0,
        }
    }
}

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct GhRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Whether the right token was sent.
    pub authorized: bool,
    pub if_none_match: Option<String>,
    pub status: u16,
}

/// An issue or pull request on a Projects v2 board, with its field values by field name.
#[derive(Debug, Clone, PartialEq)]
pub struct GhProjectItem {
    pub repo: String,
    pub number: u64,
    pub updated: DateTime<Utc>,
    pub fields: BTreeMap<String, Value>,
}

#[derive(Default)]
struct Inner {
    repos: BTreeMap<String, Vec<GhIssue>>,
    /// (owner, number) → items
    projects: BTreeMap<(String, u64), Vec<GhProjectItem>>,
    faults: VecDeque<Fault>,
    requests: Vec<GhRequest>,
    remaining: u64,
    /// (app id, installation id, public key PEM) of the GitHub App allowed in.
    app: Option<(u64, u64, String)>,
    /// Installation tokens handed out.
    issued: Vec<String>,
    /// Bumped on every change to `repos`; `pages` holds answers of one revision.
    revision: u64,
    pages: HashMap<PageKey, Arc<CachedPage>>,
    pages_revision: u64,
    /// Response body bytes served.
    bytes_served: u64,
}

/// What decides a listing page's bytes (besides the revision).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PageKey {
    repo: String,
    state: String,
    since: Option<DateTime<Utc>>,
    sort: String,
    ascending: bool,
    per_page: usize,
    start: usize,
}

struct CachedPage {
    body: Bytes,
    etag: String,
    /// Issues listed by the query (all pages).
    total: usize,
}

/// Cached pages are dropped past this many (every incremental `since` differs).
const MAX_CACHED_PAGES: usize = 20_000;

struct Shared {
    token: String,
    /// `""` for github.com style, `/api/v3` for Enterprise Server style.
    prefix: String,
    base_url: String,
    inner: Mutex<Inner>,
    faults: Faults,
}

/// A running simulated GitHub.
pub struct GitHubSim {
    shared: Arc<Shared>,
    /// Serves until the simulator is dropped.
    _server: super::Server,
}

const LIMIT: u64 = 5000;

fn now_ms() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .unwrap_or_default()
}

impl GitHubSim {
    /// Starts on 127.0.0.1; `enterprise` serves under `/api/v3` like GitHub Enterprise Server.
    pub async fn start(token: &str, enterprise: bool) -> anyhow::Result<GitHubSim> {
        GitHubSim::start_with(token, enterprise, None).await
    }

    /// Like [`GitHubSim::start`], serving HTTPS with `tls`'s server certificate when given.
    pub async fn start_with(
        token: &str,
        enterprise: bool,
        tls: Option<super::tls::TestCa>,
    ) -> anyhow::Result<GitHubSim> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let prefix = if enterprise { "/api/v3" } else { "" }.to_string();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            token: token.to_string(),
            base_url: format!("{scheme}://{addr}"),
            prefix,
            inner: Mutex::new(Inner {
                remaining: LIMIT,
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
        Ok(GitHubSim {
            shared,
            _server: super::Server::serve_maybe_tls(listener, app, tls.as_ref()),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `api_url` to configure: `http://127.0.0.1:PORT` or `http://127.0.0.1:PORT/api/v3`.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.shared.base_url, self.shared.prefix)
    }

    /// Creates `repo` without issues (an unknown repository answers 404).
    pub fn create_repo(&self, repo: &str) {
        let mut inner = self.inner();
        inner.repos.entry(repo.to_string()).or_default();
        inner.revision += 1;
    }

    /// Inserts or replaces an issue of `repo` (by number).
    pub fn upsert(&self, repo: &str, issue: GhIssue) {
        self.upsert_all(repo, [issue]);
    }

    /// Inserts or replaces many issues of `repo` at once (by number).
    pub fn upsert_all(&self, repo: &str, issues: impl IntoIterator<Item = GhIssue>) {
        let mut inner = self.inner();
        let list = inner.repos.entry(repo.to_string()).or_default();
        let mut present: std::collections::HashSet<u64> = list.iter().map(|i| i.number).collect();
        for issue in issues {
            // A replaced issue moves to the end of the list.
            if !present.insert(issue.number) {
                list.retain(|i| i.number != issue.number);
            }
            list.push(issue);
        }
        inner.revision += 1;
    }

    /// The issues of `repo` as they are now.
    pub fn issues(&self, repo: &str) -> Vec<GhIssue> {
        self.inner().repos.get(repo).cloned().unwrap_or_default()
    }

    /// Changes an issue and stamps `updated` with now.
    pub fn edit(&self, repo: &str, number: u64, f: impl FnOnce(&mut GhIssue)) {
        let mut inner = self.inner();
        if let Some(i) = inner
            .repos
            .get_mut(repo)
            .and_then(|l| l.iter_mut().find(|i| i.number == number))
        {
            f(i);
            i.updated = now_ms();
        }
        inner.revision += 1;
    }

    /// Deletes an issue (its number then answers 404).
    pub fn delete(&self, repo: &str, number: u64) {
        let mut inner = self.inner();
        if let Some(list) = inner.repos.get_mut(repo) {
            list.retain(|i| i.number != number);
        }
        inner.revision += 1;
    }

    /// Refills the rate limit (as GitHub does every hour): benchmarks that page through
    /// more than 5,000 pages call it between clients.
    pub fn reset_rate_limit(&self) {
        self.inner().remaining = LIMIT;
    }

    /// Response body bytes served since the start.
    pub fn bytes_served(&self) -> u64 {
        self.inner().bytes_served
    }

    /// The next request gets `fault` (statuses are recorded among the requests; the other
    /// faults are served by the fault plan, see [`GitHubSim::faults`]).
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

    pub fn requests(&self) -> Vec<GhRequest> {
        self.inner().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }

    /// Puts an issue on a project board (or replaces its field values), stamped now.
    pub fn set_project_item(
        &self,
        owner: &str,
        project: u64,
        repo: &str,
        number: u64,
        fields: &[(&str, Value)],
    ) {
        let mut inner = self.inner();
        let items = inner
            .projects
            .entry((owner.to_string(), project))
            .or_default();
        items.retain(|i| !(i.repo == repo && i.number == number));
        items.push(GhProjectItem {
            repo: repo.to_string(),
            number,
            updated: now_ms(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }

    /// Lets a GitHub App in: its JWTs (RS256, `iss` = app id) are verified with this public
    /// key and exchanged for installation tokens.
    pub fn enable_app(&self, app_id: u64, installation_id: u64, public_key_pem: &str) {
        self.inner().app = Some((app_id, installation_id, public_key_pem.to_string()));
    }

    /// How many installation tokens were handed out.
    pub fn installation_tokens_issued(&self) -> usize {
        self.inner().issued.len()
    }

    /// What `x-ratelimit-remaining` says now.
    pub fn rate_limit_remaining(&self) -> u64 {
        self.inner().remaining
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A user as GitHub's REST API shows one (author, assignee, milestone creator).
fn user_json(base: &str, login: &str) -> Value {
    let id = login.len() as u64 * 1000 + 1;
    let url = format!("{base}/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": base64::engine::general_purpose::STANDARD.encode(format!("04:User{id}")),
        "avatar_url": format!("https://avatars.githubusercontent.example/u/{id}?v=4"),
        "gravatar_id": "",
        "url": url,
        "html_url": format!("https://github.example/{login}"),
        "followers_url": format!("{url}/followers"),
        "following_url": format!("{url}/following{{/other_user}}"),
        "gists_url": format!("{url}/gists{{/gist_id}}"),
        "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{url}/subscriptions"),
        "organizations_url": format!("{url}/orgs"),
        "repos_url": format!("{url}/repos"),
        "events_url": format!("{url}/events{{/privacy}}"),
        "received_events_url": format!("{url}/received_events"),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false
    })
}

/// A stable id for a label name (GitHub's label ids are per repository and name).
fn label_id(name: &str) -> u64 {
    name.bytes().fold(1_000_000_007u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    }) % 9_000_000_000
        + 1_000_000_000
}

fn issue_json(base: &str, repo: &str, i: &GhIssue) -> Value {
    let api = format!("{base}/repos/{repo}");
    let web = format!("https://github.example/{repo}");
    let issue_url = format!("{api}/issues/{}", i.number);
    let labels: Vec<Value> = i
        .labels
        .iter()
        .map(|l| {
            let id = label_id(l);
            json!({
                "id": id,
                "node_id": base64::engine::general_purpose::STANDARD.encode(format!("LA_{id}")),
                "url": format!("{api}/labels/{}", l.replace(' ', "%20")),
                "name": l,
                "color": "ededed",
                "default": false,
                "description": format!("Work labelled {l}")
            })
        })
        .collect();
    let milestone = i.milestone.as_ref().map(|m| {
        json!({
            "url": format!("{api}/milestones/1"),
            "html_url": format!("{web}/milestone/1"),
            "labels_url": format!("{api}/milestones/1/labels"),
            "id": 1_002_604,
            "node_id": "MDk6TWlsZXN0b25lMTAwMjYwNA==",
            "number": 1,
            "title": m,
            "description": format!("Everything planned for {m}"),
            "creator": user_json(base, "octocat"),
            "open_issues": 4,
            "closed_issues": 8,
            "state": "open",
            "created_at": "2026-01-10T09:00:00Z",
            "updated_at": time(i.updated),
            "closed_at": null,
            "due_on": null
        })
    });
    let mut v = json!({
        "url": issue_url,
        "repository_url": api,
        "labels_url": format!("{issue_url}/labels{{/name}}"),
        "comments_url": format!("{issue_url}/comments"),
        "events_url": format!("{issue_url}/events"),
        "html_url": format!("{web}/{}/{}", if i.pull_request { "pull" } else { "issues" }, i.number),
        "id": i.id,
        "node_id": base64::engine::general_purpose::STANDARD.encode(format!("I_{}", i.id)),
        "number": i.number,
        "title": i.title,
        "user": user_json(base, &i.author),
        "labels": labels,
        "state": i.state,
        "locked": false,
        "assignee": i.assignee.as_deref().map(|a| user_json(base, a)),
        "assignees": i.assignee.as_deref().map(|a| vec![user_json(base, a)]).unwrap_or_default(),
        "milestone": milestone,
        "comments": i.comments,
        "created_at": time(i.created),
        "updated_at": time(i.updated),
        "closed_at": i.closed.map(time),
        "author_association": "MEMBER",
        "type": null,
        "active_lock_reason": null,
        "sub_issues_summary": { "total": 0, "completed": 0, "percent_completed": 0 },
        "issue_dependencies_summary": { "blocked_by": 0, "total_blocked_by": 0, "blocking": 0, "total_blocking": 0 },
        "body": i.body,
        "reactions": {
            "url": format!("{issue_url}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0
        },
        "timeline_url": format!("{issue_url}/timeline"),
        "performed_via_github_app": null,
        "state_reason": i.state_reason,
    });
    if i.pull_request {
        v["pull_request"] = json!({
            "url": format!("{api}/pulls/{}", i.number),
            "html_url": format!("{web}/pull/{}", i.number),
            "diff_url": format!("{web}/pull/{}.diff", i.number),
            "patch_url": format!("{web}/pull/{}.patch", i.number),
            "merged_at": i.merged_at.map(time),
        });
        v["draft"] = json!(false);
    }
    v
}

fn cursor_for(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

fn offset_from(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("cursor:")?
        .parse()
        .ok()
}

fn gh_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
        ),
    )
        .into_response()
}

/// The GraphQL value node of a field value, typed like GitHub's.
fn field_value_json(name: &str, value: &Value) -> Value {
    let field = json!({ "id": format!("PVTF_{name}"), "name": name });
    match value {
        Value::Number(n) => {
            json!({ "__typename": "ProjectV2ItemFieldNumberValue", "number": n, "field": field })
        }
        Value::String(s)
            if name.eq_ignore_ascii_case("sprint") || name.eq_ignore_ascii_case("iteration") =>
        {
            json!({ "__typename": "ProjectV2ItemFieldIterationValue", "title": s, "field": field })
        }
        Value::String(s) if name.eq_ignore_ascii_case("notes") => {
            json!({ "__typename": "ProjectV2ItemFieldTextValue", "text": s, "field": field })
        }
        Value::String(s) => json!({
            "__typename": "ProjectV2ItemFieldSingleSelectValue", "name": s, "optionId": format!("opt_{s}"), "field": field
        }),
        _ => Value::Null,
    }
}

/// `POST /graphql`: the project items query of okrsync (variables owner, number, first, after).
fn graphql(inner: &Inner, body: &[u8], fault: Option<&Fault>) -> Value {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return json!({ "errors": [{ "message": "Problems parsing JSON" }] });
    };
    let query = req["query"].as_str().unwrap_or("");
    if !query.contains("projectV2(") {
        return json!({ "errors": [{ "message": "the simulator only answers project item queries" }] });
    }
    let vars = &req["variables"];
    let owner = vars["owner"].as_str().unwrap_or("").to_string();
    let number = vars["number"].as_u64().unwrap_or(0);
    let first = vars["first"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let Some(items) = inner.projects.get(&(owner.clone(), number)) else {
        return json!({
            "data": { "repositoryOwner": { "projectV2": null } },
            "errors": [{ "type": "NOT_FOUND", "message": format!("Could not resolve to a ProjectV2 with the number {number}.") }]
        });
    };
    if let (Some(Fault::TokenExpired), Some(after)) = (fault, vars["after"].as_str()) {
        return json!({
            "data": { "repositoryOwner": { "projectV2": null } },
            "errors": [{ "type": "INVALID_CURSOR_ARGUMENTS", "path": ["repositoryOwner", "projectV2", "items"],
                         "message": format!("`{after}` does not appear to be a valid cursor.") }]
        });
    }
    let start = vars["after"].as_str().and_then(offset_from).unwrap_or(0);
    let mut names: Vec<&String> = items.iter().flat_map(|i| i.fields.keys()).collect();
    names.sort();
    names.dedup();
    let nodes: Vec<Value> = items
        .iter()
        .enumerate()
        .skip(start)
        .take(first)
        .map(|(n, i)| {
            json!({
                "id": format!("PVTI_{n}"),
                "updatedAt": time(i.updated),
                "isArchived": false,
                "content": {
                    "__typename": "Issue",
                    "number": i.number,
                    "repository": { "name": i.repo.split('/').nth(1).unwrap_or(""), "nameWithOwner": i.repo }
                },
                "fieldValues": { "nodes": i.fields.iter().map(|(k, v)| match (fault, v) {
                    // A number field turned into a text field upstream.
                    (Some(Fault::TypeChanged), Value::Number(n)) => json!({
                        "__typename": "ProjectV2ItemFieldTextValue", "text": n.to_string(),
                        "field": { "id": format!("PVTF_{k}"), "name": k }
                    }),
                    _ => field_value_json(k, v),
                }).collect::<Vec<_>>() }
            })
        })
        .collect();
    let end = start + nodes.len();
    json!({ "data": { "repositoryOwner": { "projectV2": {
        "fields": { "nodes": names.iter().map(|n| json!({ "id": format!("PVTF_{n}"), "name": n })).collect::<Vec<_>>() },
        "items": {
            "pageInfo": { "endCursor": cursor_for(end), "hasNextPage": end < items.len() },
            "nodes": nodes
        }
    }}}})
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    data_fault: Option<axum::Extension<DataFault>>,
    body: axum::body::Bytes,
) -> Response {
    let data_fault = data_fault.map(|axum::Extension(DataFault(f))| f);
    let path = uri.path().to_string();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let bearer = header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("token "))
            .map(str::to_string)
    });
    let if_none_match = header("if-none-match");
    let mut inner = shared.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let authorized = bearer
        .as_deref()
        .is_some_and(|b| b == shared.token || inner.issued.iter().any(|t| t == b));
    let record = |inner: &mut Inner, status: u16| {
        inner.requests.push(GhRequest {
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            authorized: authorized && status != 401,
            if_none_match: if_none_match.clone(),
            status,
        })
    };
    let reset = (Utc::now().timestamp() + 3600).to_string();
    let limits = |remaining: u64| {
        [
            ("x-ratelimit-limit", LIMIT.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset.clone()),
            ("x-ratelimit-used", (LIMIT - remaining).to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ]
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
            None => gh_error(code, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."),
        };
        if let Some(v) = retry_after.and_then(|r| r.parse().ok()) {
            resp.headers_mut().insert("retry-after", v);
        }
        return resp;
    }
    let token_path = path
        .strip_prefix(shared.prefix.as_str())
        .and_then(|p| p.strip_prefix("/app/installations/"))
        .and_then(|p| p.strip_suffix("/access_tokens"))
        .and_then(|id| id.parse::<u64>().ok());
    if let (true, Some(installation)) = (method == axum::http::Method::POST, token_path) {
        let Some((app_id, allowed, public)) = inner.app.clone() else {
            record(&mut inner, 404);
            return gh_error(StatusCode::NOT_FOUND, "Not Found");
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[app_id.to_string()]);
        let verified = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes())
            .ok()
            .zip(bearer.as_deref())
            .is_some_and(|(key, jwt)| {
                jsonwebtoken::decode::<crate::sources::github::AppClaims>(jwt, &key, &validation)
                    .is_ok()
            });
        if !verified {
            record(&mut inner, 401);
            return gh_error(
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            );
        }
        if installation != allowed {
            record(&mut inner, 404);
            return gh_error(StatusCode::NOT_FOUND, "Not Found");
        }
        let token = format!("ghs_sim{}", inner.issued.len() + 1);
        inner.issued.push(token.clone());
        record(&mut inner, 201);
        let expires = Utc::now() + chrono::Duration::hours(1);
        return (
            StatusCode::CREATED,
            axum::Json(json!({ "token": token, "expires_at": time(expires), "permissions": { "issues": "read" } })),
        )
            .into_response();
    }
    if !authorized {
        record(&mut inner, 401);
        return gh_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let graphql_path = if shared.prefix.is_empty() {
        "/graphql"
    } else {
        "/api/graphql"
    };
    if method == axum::http::Method::POST && path == graphql_path {
        record(&mut inner, 200);
        return axum::Json(graphql(&inner, &body, data_fault.as_ref())).into_response();
    }
    let api_path = path.strip_prefix(shared.prefix.as_str()).unwrap_or("");
    let base = format!("{}{}", shared.base_url, shared.prefix);
    // GET /rate_limit: costs no rate limit.
    if api_path == "/rate_limit" {
        let remaining = inner.remaining;
        record(&mut inner, 200);
        let reset: i64 = reset.parse().unwrap_or_default();
        let pool = |limit: u64, remaining: u64| json!({ "limit": limit, "used": limit - remaining, "remaining": remaining, "reset": reset });
        let doc = json!({
            "resources": {
                "core": pool(LIMIT, remaining),
                "search": pool(30, 30),
                "graphql": pool(5000, 5000),
                "integration_manifest": pool(5000, 5000),
                "source_import": pool(100, 100),
                "code_scanning_upload": pool(1000, 1000),
                "actions_runner_registration": pool(10000, 10000),
                "scim": pool(15000, 15000),
                "dependency_snapshots": pool(100, 100),
                "code_search": pool(10, 10)
            },
            "rate": pool(LIMIT, remaining)
        });
        return json_response(
            &mut inner,
            StatusCode::OK,
            doc.to_string().into(),
            &limits(remaining),
        );
    }
    // GET /repos/{owner}/{repo}
    let repo_path = api_path
        .strip_prefix("/repos/")
        .filter(|r| r.split('/').count() == 2)
        .map(str::to_string);
    if let Some(repo) = repo_path {
        let Some(issues) = inner.repos.get(&repo) else {
            record(&mut inner, 404);
            return gh_error(StatusCode::NOT_FOUND, "Not Found");
        };
        let open = issues.iter().filter(|i| i.state == "open").count();
        let pushed = issues
            .iter()
            .map(|i| i.updated)
            .max()
            .unwrap_or_else(now_ms);
        let doc = repo_json(&base, &repo, open, pushed);
        inner.remaining = inner.remaining.saturating_sub(1);
        let remaining = inner.remaining;
        record(&mut inner, 200);
        return json_response(
            &mut inner,
            StatusCode::OK,
            doc.to_string().into(),
            &limits(remaining),
        );
    }
    // Write-back: POST /repos/{owner}/{repo}/issues/{number}/labels {"labels": [...]} and
    // DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}.
    let labels_path = api_path
        .strip_prefix("/repos/")
        .and_then(|p| p.split_once("/issues/"))
        .filter(|(repo, _)| repo.split('/').count() == 2)
        .and_then(|(repo, rest)| {
            let (n, tail) = rest.split_once("/labels")?;
            Some((repo.to_string(), n.parse::<u64>().ok()?, tail.to_string()))
        });
    if let Some((repo, number, tail)) = labels_path {
        let now = now_ms();
        let found = inner
            .repos
            .get_mut(&repo)
            .and_then(|l| l.iter_mut().find(|i| i.number == number));
        let Some(issue) = found else {
            record(&mut inner, 404);
            return gh_error(StatusCode::NOT_FOUND, "Not Found");
        };
        let status = match (&method, tail.strip_prefix('/')) {
            (&axum::http::Method::POST, None) if tail.is_empty() => {
                let asked: Option<Vec<String>> = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| serde_json::from_value(v.get("labels")?.clone()).ok());
                match asked {
                    Some(names) => {
                        for name in names {
                            if !issue.labels.contains(&name) {
                                issue.labels.push(name);
                            }
                        }
                        issue.updated = now;
                        StatusCode::OK
                    }
                    None => StatusCode::UNPROCESSABLE_ENTITY,
                }
            }
            (&axum::http::Method::DELETE, Some(name)) => {
                let name = percent_decode(name);
                if issue.labels.contains(&name) {
                    issue.labels.retain(|l| *l != name);
                    issue.updated = now;
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                }
            }
            _ => StatusCode::METHOD_NOT_ALLOWED,
        };
        let labels: Vec<Value> = issue
            .labels
            .iter()
            .map(|l| json!({ "name": l, "color": "ededed", "default": false }))
            .collect();
        record(&mut inner, status.as_u16());
        if status != StatusCode::OK {
            let message = match status {
                StatusCode::NOT_FOUND => "Label does not exist",
                StatusCode::UNPROCESSABLE_ENTITY => "Invalid request.",
                _ => "Not Found",
            };
            return gh_error(status, message);
        }
        inner.revision += 1;
        inner.remaining = inner.remaining.saturating_sub(1);
        let remaining = inner.remaining;
        return json_response(
            &mut inner,
            StatusCode::OK,
            Value::Array(labels).to_string().into(),
            &limits(remaining),
        );
    }
    // GET /repos/{owner}/{repo}/issues/{number}
    let single = api_path
        .strip_prefix("/repos/")
        .and_then(|p| p.rsplit_once("/issues/"))
        .and_then(|(repo, n)| Some((repo.to_string(), n.parse::<u64>().ok()?)));
    if let Some((repo, number)) = single {
        let found = inner
            .repos
            .get(&repo)
            .and_then(|l| l.iter().find(|i| i.number == number))
            .cloned();
        return match found {
            Some(issue) => {
                inner.remaining = inner.remaining.saturating_sub(1);
                let remaining = inner.remaining;
                record(&mut inner, 200);
                let doc = issue_json(&base, &repo, &issue);
                json_response(
                    &mut inner,
                    StatusCode::OK,
                    doc.to_string().into(),
                    &limits(remaining),
                )
            }
            None => {
                record(&mut inner, 404);
                gh_error(StatusCode::NOT_FOUND, "Not Found")
            }
        };
    }
    let route = api_path
        .strip_prefix("/repos/")
        .and_then(|p| p.strip_suffix("/issues"))
        .filter(|r| r.split('/').count() == 2)
        .map(str::to_string);
    let Some(repo) = route else {
        record(&mut inner, 404);
        return gh_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if !inner.repos.contains_key(&repo) {
        record(&mut inner, 404);
        return gh_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let since = match get("since").map(|s| DateTime::parse_from_rfc3339(&s)) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(_)) => {
            record(&mut inner, 422);
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation Failed: since is not a timestamp",
            );
        }
    };
    let start = match get("after") {
        None => 0,
        Some(c) => match offset_from(&c).filter(|_| data_fault != Some(Fault::TokenExpired)) {
            Some(o) => o,
            None => {
                record(&mut inner, 422);
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation Failed: after is not a valid cursor",
                );
            }
        },
    };
    let key = PageKey {
        repo: repo.clone(),
        state: get("state").unwrap_or_else(|| "open".into()),
        since,
        sort: get("sort").unwrap_or_else(|| "created".into()),
        ascending: get("direction").as_deref() == Some("asc"),
        per_page: get("per_page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100),
        start,
    };
    if inner.pages_revision != inner.revision || inner.pages.len() >= MAX_CACHED_PAGES {
        inner.pages.clear();
        inner.pages_revision = inner.revision;
    }
    if data_fault == Some(Fault::DeletedBetweenPages) && start > 0 {
        // The last issue of the previous page goes: every later issue moves up one place.
        let previous = listing_page(
            &inner,
            &base,
            &PageKey {
                start: start - 1,
                per_page: 1,
                ..key.clone()
            },
        );
        let number = serde_json::from_slice::<Value>(&previous.body)
            .ok()
            .and_then(|v| v[0]["number"].as_u64());
        if let (Some(n), Some(list)) = (number, inner.repos.get_mut(&repo)) {
            list.retain(|i| i.number != n);
            inner.revision += 1;
        }
    }
    let cached = if data_fault.is_some() {
        None
    } else {
        inner.pages.get(&key).cloned()
    };
    let page = match cached {
        Some(page) => page,
        None if data_fault.is_some() => {
            Arc::new(damaged_listing(&inner, &base, &key, data_fault.as_ref()))
        }
        None => {
            let page = Arc::new(listing_page(&inner, &base, &key));
            inner.pages.insert(key.clone(), page.clone());
            page
        }
    };
    if if_none_match.as_deref() == Some(page.etag.as_str()) {
        // A 304 costs no rate limit.
        let remaining = inner.remaining;
        record(&mut inner, 304);
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut().insert(
            "etag",
            page.etag
                .parse()
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("")),
        );
        for (k, v) in limits(remaining) {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        return resp;
    }
    inner.remaining = inner.remaining.saturating_sub(1);
    let remaining = inner.remaining;
    record(&mut inner, 200);
    let mut resp = json_response(
        &mut inner,
        StatusCode::OK,
        page.body.clone(),
        &limits(remaining),
    );
    let h = resp.headers_mut();
    if let Ok(v) = page.etag.parse() {
        h.insert("etag", v);
    }
    // An empty page in the middle still leads to the items it should have held.
    let next_start = if data_fault == Some(Fault::EmptyPage) {
        key.start
    } else {
        key.start + key.per_page
    };
    if next_start < page.total {
        let mut next = url::Url::parse(&format!("{base}/repos/{repo}/issues")).ok();
        if let Some(u) = next.as_mut() {
            {
                // Each parameter once (a client may repeat the ones already in the link).
                let mut q = u.query_pairs_mut();
                let mut seen: Vec<&str> = vec!["after"];
                for (k, v) in &params {
                    if !seen.contains(&k.as_str()) {
                        seen.push(k);
                        q.append_pair(k, v);
                    }
                }
                q.append_pair("after", &cursor_for(next_start));
            }
            if let Ok(v) = format!("<{u}>; rel=\"next\"").parse() {
                h.insert("link", v);
            }
        }
    }
    resp
}

/// One page of `GET /repos/{owner}/{repo}/issues`, serialized, with its ETag.
fn listing_page(inner: &Inner, base: &str, key: &PageKey) -> CachedPage {
    let all = inner.repos.get(&key.repo).map(Vec::as_slice).unwrap_or(&[]);
    let mut hits: Vec<&GhIssue> = all
        .iter()
        .filter(|i| key.state == "all" || i.state == key.state)
        .filter(|i| key.since.is_none_or(|s| i.updated >= s))
        .collect();
    hits.sort_by(|a, b| {
        let o = if key.sort == "updated" {
            a.updated.cmp(&b.updated)
        } else {
            a.created.cmp(&b.created)
        };
        o.then(a.number.cmp(&b.number))
    });
    if !key.ascending {
        hits.reverse();
    }
    let page: Vec<Value> = hits
        .iter()
        .skip(key.start)
        .take(key.per_page)
        .map(|i| issue_json(base, &key.repo, i))
        .collect();
    let body = Value::Array(page).to_string();
    let etag = format!("W/\"{:x}\"", Sha256::digest(body.as_bytes()));
    CachedPage {
        body: Bytes::from(body),
        etag,
        total: hits.len(),
    }
}

/// A listing page as a data fault makes it (the faults that change what is served, not how).
fn damaged_listing(inner: &Inner, base: &str, key: &PageKey, fault: Option<&Fault>) -> CachedPage {
    let page = listing_page(inner, base, key);
    let mut list: Vec<Value> = serde_json::from_slice(&page.body).unwrap_or_default();
    match fault {
        Some(Fault::EmptyPage) => list.clear(),
        Some(Fault::DuplicateItem) if key.start > 0 => {
            let previous = listing_page(
                inner,
                base,
                &PageKey {
                    start: key.start - 1,
                    per_page: 1,
                    ..key.clone()
                },
            );
            let previous: Vec<Value> = serde_json::from_slice(&previous.body).unwrap_or_default();
            list.splice(0..0, previous);
        }
        Some(Fault::ClockSkew) => {
            for issue in &mut list {
                let ahead = issue["updated_at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| time(t.with_timezone(&Utc) + chrono::Duration::hours(1)));
                if let Some(t) = ahead {
                    issue["updated_at"] = json!(t);
                }
            }
        }
        _ => {}
    }
    let body = Value::Array(list).to_string();
    let etag = format!("W/\"{:x}\"", Sha256::digest(body.as_bytes()));
    CachedPage {
        body: Bytes::from(body),
        etag,
        total: page.total,
    }
}

/// A JSON answer with the rate-limit headers, counted in the bytes served.
fn json_response(
    inner: &mut Inner,
    status: StatusCode,
    body: Bytes,
    limits: &[(&'static str, String)],
) -> Response {
    inner.bytes_served += body.len() as u64;
    let mut resp = (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    for (k, v) in limits {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(*k, v);
        }
    }
    resp
}

/// `GET /repos/{owner}/{repo}` in GitHub's form (an organization's public repository).
fn repo_json(base: &str, full_name: &str, open_issues: usize, pushed: DateTime<Utc>) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
    let id = full_name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64))
        % 900_000_000
        + 100_000_000;
    let org_id = owner.len() as u64 * 7919 + 1;
    let api = format!("{base}/repos/{full_name}");
    let web = format!("https://github.example/{full_name}");
    let mut org = user_json(base, owner);
    org["id"] = json!(org_id);
    org["type"] = json!("Organization");
    let urls = [
        ("forks_url", "forks"),
        ("keys_url", "keys{/key_id}"),
        ("collaborators_url", "collaborators{/collaborator}"),
        ("teams_url", "teams"),
        ("hooks_url", "hooks"),
        ("issue_events_url", "issues/events{/number}"),
        ("events_url", "events"),
        ("assignees_url", "assignees{/user}"),
        ("branches_url", "branches{/branch}"),
        ("tags_url", "tags"),
        ("blobs_url", "git/blobs{/sha}"),
        ("git_tags_url", "git/tags{/sha}"),
        ("git_refs_url", "git/refs{/sha}"),
        ("trees_url", "git/trees{/sha}"),
        ("statuses_url", "statuses/{sha}"),
        ("languages_url", "languages"),
        ("stargazers_url", "stargazers"),
        ("contributors_url", "contributors"),
        ("subscribers_url", "subscribers"),
        ("subscription_url", "subscription"),
        ("commits_url", "commits{/sha}"),
        ("git_commits_url", "git/commits{/sha}"),
        ("comments_url", "comments{/number}"),
        ("issue_comment_url", "issues/comments{/number}"),
        ("contents_url", "contents/{+path}"),
        ("compare_url", "compare/{base}...{head}"),
        ("merges_url", "merges"),
        ("archive_url", "{archive_format}{/ref}"),
        ("downloads_url", "downloads"),
        ("issues_url", "issues{/number}"),
        ("pulls_url", "pulls{/number}"),
        ("milestones_url", "milestones{/number}"),
        (
            "notifications_url",
            "notifications{?since,all,participating}",
        ),
        ("labels_url", "labels{/name}"),
        ("releases_url", "releases{/id}"),
        ("deployments_url", "deployments"),
    ];
    let mut v = json!({
        "id": id,
        "node_id": base64::engine::general_purpose::STANDARD.encode(format!("010:Repository{id}")),
        "name": name,
        "full_name": full_name,
        "private": false,
        "owner": org.clone(),
        "html_url": web,
        "description": format!("The {name} service"),
        "fork": false,
        "url": api,
        "created_at": "2019-03-04T10:00:00Z",
        "updated_at": time(pushed),
        "pushed_at": time(pushed),
        "git_url": format!("git://github.example/{full_name}.git"),
        "ssh_url": format!("git@github.example:{full_name}.git"),
        "clone_url": format!("{web}.git"),
        "svn_url": web,
    });
    let more = json!({
        "homepage": null,
        "size": 48_213,
        "stargazers_count": 12,
        "watchers_count": 12,
        "language": "Rust",
        "has_issues": true,
        "has_projects": true,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": false,
        "forks_count": 3,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": open_issues,
        "license": null,
        "allow_forking": true,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": [],
        "visibility": "public",
        "forks": 3,
        "open_issues": open_issues,
        "watchers": 12,
        "default_branch": "main",
        "permissions": { "admin": false, "maintain": false, "push": false, "triage": false, "pull": true },
        "organization": org,
        "network_count": 3,
        "subscribers_count": 9
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    for (k, rest) in urls {
        v[k] = json!(format!("{api}/{rest}"));
    }
    v
}

impl GitHubSim {
    /// Moves the demo's work forward: one open issue or pull request of acme/web is finished.
    pub fn advance_demo(&self, step: u64) {
        let mut inner = self.inner();
        let now = now_ms();
        let Some(list) = inner.repos.get_mut("acme/web") else {
            return;
        };
        let open: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, i)| i.state == "open")
            .map(|(n, _)| n)
            .collect();
        if let Some(&at) = open.get(step as usize % open.len().max(1)) {
            let i = &mut list[at];
            i.state = "closed".into();
            i.closed = Some(now);
            i.updated = now;
            if i.pull_request {
                i.merged_at = Some(now);
            } else {
                i.state_reason = Some("completed".into());
            }
        }
    }
}

/// Decodes `%XX` escapes of a path segment.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sim() -> GitHubSim {
        let s = GitHubSim::start("tok", false).await.expect("start");
        let issues = (1..=5).map(|n| {
            let mut i = GhIssue::new(100 + n, n, &format!("Issue {n}"));
            i.labels = vec!["bug".into()];
            i.assignee = Some("hubot".into());
            i.body = Some("Steps to reproduce".into());
            i
        });
        s.upsert_all("acme/web", issues);
        s
    }

    async fn get(url: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(url)
            .bearer_auth("tok")
            .send()
            .await
            .expect("send")
    }

    #[tokio::test]
    async fn answers_what_airbyte_asks_first() {
        let s = sim().await;
        let limits: Value = get(&format!("{}/rate_limit", s.api_url()))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(limits["resources"]["core"]["limit"], 5000);
        assert_eq!(limits["resources"]["graphql"]["remaining"], 5000);
        let repo: Value = get(&format!("{}/repos/acme/web", s.api_url()))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(repo["full_name"], "acme/web");
        assert_eq!(repo["organization"]["login"], "acme");
        assert_eq!(repo["default_branch"], "main");
        assert_eq!(repo["open_issues_count"], 5);
        assert_eq!(
            get(&format!("{}/repos/acme/nope", s.api_url()))
                .await
                .status(),
            404
        );
    }

    #[tokio::test]
    async fn issues_come_in_the_full_rest_form_and_links_name_each_parameter_once() {
        let s = sim().await;
        // A client that repeats its parameters on every page, as airbyte's does.
        let mut url = format!(
            "{}/repos/acme/web/issues?per_page=2&state=all&sort=updated&direction=asc",
            s.api_url()
        );
        let mut seen = Vec::new();
        for _ in 0..3 {
            let r = get(&url).await;
            let link = r
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let page: Value = r.json().await.expect("json");
            for i in page.as_array().expect("a list") {
                seen.push(i["number"].as_u64().unwrap_or(0));
                assert_eq!(i["user"]["type"], "User");
                assert!(i["user"]["followers_url"].is_string());
                assert_eq!(i["labels"][0]["name"], "bug");
                assert!(i["labels"][0]["url"].is_string());
                assert_eq!(i["assignees"][0]["login"], "hubot");
                assert_eq!(i["reactions"]["total_count"], 0);
                assert_eq!(i["body"], "Steps to reproduce");
            }
            let Some(link) = link else { break };
            let next = link
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_string();
            assert_eq!(next.matches("per_page=").count(), 1, "{next}");
            url = format!("{next}&per_page=2&state=all&sort=updated&direction=asc");
        }
        assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    }
}
