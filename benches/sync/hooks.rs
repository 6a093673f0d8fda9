//! Webhook → readable: how long after Jira posts `jira:issue_updated` the new value of a
//! KR can be read from the API. One event at a time: an in-progress issue of a KR is moved
//! to done in the simulated Jira, a signed webhook body like Jira Cloud's is posted to
//! `/hooks/jira`, and `GET /api/v1/objectives` is polled (with `If-None-Match`, every 2 ms)
//! until the KR's `current` or `target` differs from before. Latency: POST sent → new
//! value seen.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use okrsync::simulator::dataset::millis;
use okrsync::simulator::jira::{JiraSim, SimIssue};
use serde_json::{json, Value};

/// What the events showed.
#[derive(Default)]
pub struct HookResult {
    /// POST sent → new value readable, for the events whose value showed in time.
    pub readable: Vec<Duration>,
    /// The POST's own round trip (the hook accepted: 202).
    pub accepted: Vec<Duration>,
    /// Events whose value had not changed when the per-event timeout passed.
    pub timeouts: usize,
    /// Events whose POST was not answered 202.
    pub refused: usize,
    pub failures: Vec<String>,
}

/// In-progress items of the `krs` (completion KRs), read from their KR documents: at most
/// `n`, each once, with the KR it is watched through.
pub async fn candidates(
    http: &reqwest::Client,
    base: &str,
    krs: &[String],
    n: usize,
) -> Result<Vec<(String, String)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    for kr in krs {
        let doc: Value = http
            .get(format!("{base}/api/v1/key-results/{kr}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .with_context(|| format!("reading KR {kr}"))?;
        for item in doc["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if item["category"] != "in_progress" {
                continue;
            }
            let Some(key) = item["key"].as_str() else {
                continue;
            };
            if seen.insert(key.to_string()) {
                out.push((key.to_string(), kr.clone()));
                if out.len() == n {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// The KR's `(current, target)` in the objectives document, if it is there.
fn kr_value(doc: &Value, kr: &str) -> Option<(Value, Value)> {
    doc["objectives"]
        .as_array()?
        .iter()
        .flat_map(|o| o["key_results"].as_array().into_iter().flatten())
        .find(|k| k["id"] == kr)
        .map(|k| (k["current"].clone(), k["target"].clone()))
}

/// Reads `/api/v1/objectives`; `None` when it answered 304 (unchanged since `etag`).
async fn objectives(
    http: &reqwest::Client,
    base: &str,
    etag: &mut Option<String>,
) -> Result<Option<Value>> {
    let mut req = http.get(format!("{base}/api/v1/objectives"));
    if let Some(tag) = etag.as_deref() {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let resp = resp.error_for_status()?;
    *etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Some(resp.json().await?))
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    okrsync::server::hook_signature(secret.as_bytes(), body)
}

fn jira_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A `jira:issue_updated` body as Jira Cloud sends it for a transition to Done (the
/// fields a webhook carries by default, and the changelog of the transition).
pub fn webhook_body(base: &str, issue: &SimIssue, at: DateTime<Utc>, event: usize) -> Value {
    let user = json!({
        "self": format!("{base}/rest/api/2/user?accountId=5b10a2844c20165700ede21g"),
        "accountId": "5b10a2844c20165700ede21g",
        "avatarUrls": {
            "48x48": "https://avatar-management.example/initials/BB-5.png",
            "24x24": "https://avatar-management.example/initials/BB-1.png",
            "16x16": "https://avatar-management.example/initials/BB-0.png",
            "32x32": "https://avatar-management.example/initials/BB-3.png"
        },
        "displayName": "Bench Bot",
        "active": true,
        "timeZone": "Etc/UTC",
        "accountType": "atlassian"
    });
    let parent = issue.parent.as_ref().map(|(key, kind)| {
        json!({
            "key": key,
            "self": format!("{base}/rest/api/3/issue/{key}"),
            "fields": { "summary": format!("Epic {key}"), "issuetype": { "name": kind, "hierarchyLevel": 1 } }
        })
    });
    json!({
        "timestamp": at.timestamp_millis(),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": user,
        "issue": {
            "id": issue.id,
            "self": format!("{base}/rest/api/3/issue/{}", issue.id),
            "key": issue.key,
            "fields": {
                "summary": issue.summary,
                "issuetype": { "id": "10001", "name": issue.issue_type, "subtask": false, "hierarchyLevel": 0 },
                "project": { "id": "10000", "key": issue.project, "name": issue.project, "projectTypeKey": "software" },
                "status": {
                    "self": format!("{base}/rest/api/2/status/10001"),
                    "name": issue.status,
                    "id": "10001",
                    "statusCategory": { "id": 3, "key": "done", "colorName": "green", "name": "Done" }
                },
                "resolution": { "id": "10000", "name": "Done", "description": "Work has been completed on this issue." },
                "resolutiondate": issue.resolved.map(jira_time),
                "labels": issue.labels,
                "components": [],
                "fixVersions": [],
                "priority": { "id": "3", "name": "Medium" },
                "assignee": user,
                "reporter": user,
                "creator": user,
                "parent": parent,
                "customfield_10016": issue.story_points,
                "created": jira_time(issue.created),
                "updated": jira_time(at),
                "statuscategorychangedate": jira_time(at),
                "description": null,
                "watches": { "watchCount": 1, "isWatching": true },
                "votes": { "votes": 0, "hasVoted": false }
            }
        },
        "changelog": {
            "id": (100_000 + event).to_string(),
            "items": [
                { "field": "resolution", "fieldtype": "jira", "fieldId": "resolution",
                  "from": null, "fromString": null, "to": "10000", "toString": "Done" },
                { "field": "status", "fieldtype": "jira", "fieldId": "status",
                  "from": "3", "fromString": "In Progress", "to": "10001", "toString": "Done" }
            ]
        }
    })
}

/// Runs one event per candidate: edit, POST, poll until the value changes (at most
/// `timeout` per event).
pub async fn run(
    sim: &JiraSim,
    base: &str,
    secret: &str,
    candidates: &[(String, String)],
    timeout: Duration,
) -> Result<HookResult> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the webhook client")?;
    let poller = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("building the polling client")?;
    let mut r = HookResult::default();
    let mut etag = None;
    for (event, (key, kr)) in candidates.iter().enumerate() {
        let doc = match objectives(&poller, base, &mut None).await? {
            Some(doc) => doc,
            None => bail!("/api/v1/objectives answered 304 without If-None-Match"),
        };
        let before =
            kr_value(&doc, kr).with_context(|| format!("KR {kr} not in /api/v1/objectives"))?;
        let at = millis(Utc::now());
        let mut edited = None;
        sim.edit(key, |issue| {
            issue.status = "Done".into();
            issue.status_category = "done".into();
            issue.resolved = Some(at);
            edited = Some(issue.clone());
        });
        let issue = edited.with_context(|| format!("{key} is not in the simulated Jira"))?;
        let body = serde_json::to_vec(&webhook_body(&sim.base_url(), &issue, at, event))?;
        let signature = sign(secret, &body);
        let sent = Instant::now();
        let posted = http
            .post(format!("{base}/hooks/jira"))
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", format!("bench-{event}"))
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await;
        match posted {
            Ok(resp) if resp.status() == reqwest::StatusCode::ACCEPTED => {
                r.accepted.push(sent.elapsed());
            }
            Ok(resp) => {
                r.refused += 1;
                if r.failures.len() < 5 {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    r.failures
                        .push(format!("POST /hooks/jira ({key}): {status} {text}"));
                }
                continue;
            }
            Err(e) => {
                r.refused += 1;
                if r.failures.len() < 5 {
                    r.failures.push(format!("POST /hooks/jira ({key}): {e:#}"));
                }
                continue;
            }
        }
        loop {
            if let Some(doc) = objectives(&poller, base, &mut etag).await? {
                if kr_value(&doc, kr).is_some_and(|now| now != before) {
                    r.readable.push(sent.elapsed());
                    break;
                }
            }
            if sent.elapsed() > timeout {
                r.timeouts += 1;
                if r.failures.len() < 5 {
                    r.failures.push(format!(
                        "{key} → done: {kr} still {before:?} after {} s",
                        timeout.as_secs()
                    ));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok(r)
}
