//! Notifications (SPEC.md "Notifications and write-back"): what changed, queued once and
//! delivered until received.
//!
//! [`evaluate`] reads the documents users read (`status`, with its flags) and compares
//! each KR with what the notifiers last saw (`notify_state`): a changed status is a
//! `kr_status` event, a new flag a `flag` event. The new state and the events it causes
//! are written in one transaction, so a change is queued exactly once whatever crashes
//! around it, and a KR that flips back and forth between two evaluations sends nothing.
//! The first evaluation of a KR records its state without an event (no storm on the first
//! start), once its sources have synced. [`deliver`] sends what is due, oldest first, and records each attempt: 2xx is
//! sent; 429 waits for `Retry-After`; 5xx and transport errors back off (5 s doubling, at
//! most an hour); other 4xx answers are kept unsent with their error, not retried. A
//! `webhook` gets SPEC.md's document per change; `slack` (Block Kit with a `text`
//! fallback) and `teams` (an Adaptive Card) get one message for all that is due at once.
//! The daemon runs both every few seconds ([`run_notifier`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;

pub mod email;
pub mod writeback;

use crate::model::RunOutcome;
use crate::report::{self, KrStatus, ObjectiveStatus};
use crate::settings::{EventKind, NotifierKind, NotifierSettings, Settings};
use crate::store::{ms, NotifyState, Store};

/// The document a `webhook` notifier receives (SPEC.md); what does not apply is null.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Message {
    pub event: String,
    pub objective: Option<String>,
    pub kr: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub progress: Option<f64>,
    pub flag: Option<String>,
    pub source: Option<String>,
    pub project: Option<String>,
    pub message: String,
    pub url: String,
    pub at: DateTime<Utc>,
}

impl Message {
    /// A message about no KR, source or project yet (the fields that apply are set after).
    pub fn new(event: &str, message: String, url: String, at: DateTime<Utc>) -> Message {
        Message {
            event: event.to_string(),
            objective: None,
            kr: None,
            from: None,
            to: None,
            progress: None,
            flag: None,
            source: None,
            project: None,
            message,
            url,
            at,
        }
    }
}

/// The dashboard's address for links: `server.public_url`, else the listen address.
fn base_url(settings: &Settings) -> String {
    match &settings.server.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None => format!("http://{}", settings.server.listen),
    }
}

fn kr_url(settings: &Settings, kr: &str) -> String {
    format!("{}/kr/{}", base_url(settings), encode(kr))
}

/// Percent-encodes all but the unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether `objective` is one of `roots` or below one of them.
fn in_scope(settings: &Settings, roots: &[String], objective: &str) -> bool {
    if roots.is_empty() {
        return true;
    }
    let parents: HashMap<&str, Option<&str>> = settings
        .objectives
        .iter()
        .map(|o| (o.id.as_str(), o.parent.as_deref()))
        .collect();
    let mut at = Some(objective);
    for _ in 0..=settings.objectives.len() {
        match at {
            Some(o) if roots.iter().any(|r| r == o) => return true,
            Some(o) => at = parents.get(o).copied().flatten(),
            None => return false,
        }
    }
    false
}

fn wants(n: &NotifierSettings, settings: &Settings, event: EventKind, objective: &str) -> bool {
    n.events.contains(&event) && in_scope(settings, &n.objectives, objective)
}

fn percent(p: f64) -> String {
    format!("{}%", (p * 100.0).round() as i64)
}

/// The events a KR's change causes: its status, then each new flag.
fn events_of(
    settings: &Settings,
    o: &ObjectiveStatus,
    k: &KrStatus,
    old: &NotifyState,
    now: DateTime<Utc>,
) -> Vec<(EventKind, Message)> {
    let mut out = Vec::new();
    let status = k.status.as_str();
    let base = |event: EventKind, message: String| Message {
        objective: Some(o.id.clone()),
        kr: Some(k.id.clone()),
        progress: Some(k.progress),
        ..Message::new(event.as_str(), message, kr_url(settings, &k.id), now)
    };
    if old.status != status {
        let mut m = base(
            EventKind::KrStatus,
            format!(
                "{} ({}): {} → {} at {} progress",
                k.title,
                k.id,
                old.status.replace('_', " "),
                status.replace('_', " "),
                percent(k.progress)
            ),
        );
        m.from = Some(old.status.clone());
        m.to = Some(status.to_string());
        out.push((EventKind::KrStatus, m));
    }
    for f in &k.flags {
        if !old.flags.iter().any(|o| o == f.kind.as_str()) {
            let mut m = base(
                EventKind::Flag,
                format!("{} ({}): {} — {}", k.title, k.id, f.kind.label(), f.message),
            );
            m.flag = Some(f.kind.as_str().to_string());
            out.push((EventKind::Flag, m));
        }
    }
    out
}

/// Compares every KR with what the notifiers last saw and queues the changes; returns how
/// many messages were queued.
pub async fn evaluate(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    if settings.notifiers.is_empty() {
        return Ok(0);
    }
    let doc = report::status(store, settings, now)
        .await
        .context("cannot read the status for notifications")?;
    let inputs = watch_inputs(store, settings, now).await?;
    let digests = due_digests(store, settings, now).await?;
    let now_ms = ms(now);
    let mut tx = store.begin().await?;
    tx.lock_notify_state().await?;
    let states = tx.notify_states().await?;
    let mut queued = 0;
    for o in &doc.objectives {
        for k in &o.key_results {
            // A KR whose sources have never synced has no number yet: the first state worth
            // comparing with is the one after their first sync (no "stale → …" message on
            // a first start).
            if k.status == crate::model::Status::Stale
                && k.synced_at.is_none()
                && !k.sources.is_empty()
            {
                continue;
            }
            let new = NotifyState {
                status: k.status.as_str().to_string(),
                flags: k
                    .flags
                    .iter()
                    .map(|f| f.kind.as_str().to_string())
                    .collect(),
            };
            match states.get(&k.id) {
                Some(old) if *old == new => continue,
                Some(old) => {
                    for (event, message) in events_of(settings, o, k, old, now) {
                        let payload = serde_json::to_string(&message)?;
                        for n in settings
                            .notifiers
                            .iter()
                            .filter(|n| wants(n, settings, event, &o.id))
                        {
                            tx.enqueue(&n.id, event.as_str(), &payload, now_ms).await?;
                            queued += 1;
                        }
                    }
                }
                // First sight: the state is recorded, nothing is sent.
                None => {}
            }
            tx.put_notify_state(&k.id, &new, now_ms).await?;
        }
    }
    for (n, subject, state, message) in digests {
        if tx.watch_states().await?.get(&subject) == Some(&state) {
            continue;
        }
        if let Some(message) = message {
            let payload = serde_json::to_string(&message)?;
            tx.enqueue(&n, "digest", &payload, now_ms).await?;
            queued += 1;
        }
        tx.put_watch_state(&subject, &state, now_ms).await?;
    }
    let watched = tx.watch_states().await?;
    for w in watch_events(settings, &inputs, &watched, now) {
        let subject = w.subject;
        if let Some((event, message, sources)) = w.told {
            let payload = serde_json::to_string(&message)?;
            for n in settings
                .notifiers
                .iter()
                .filter(|n| n.events.contains(&event) && feeds_scope(settings, &doc, n, &sources))
                .filter(|n| match event {
                    // A project's share is compared with each notifier's own threshold.
                    EventKind::Unaligned => subject.starts_with(&format!("unaligned/{}/", n.id)),
                    _ => true,
                })
            {
                tx.enqueue(&n.id, event.as_str(), &payload, now_ms).await?;
                queued += 1;
            }
        }
        tx.put_watch_state(&subject, w.state, now_ms).await?;
    }
    tx.commit().await?;
    Ok(queued)
}

/// Each notifier whose weekly digest is due and not queued yet: `(notifier, subject,
/// state, message)`. The state is the scheduled time; a notifier seen for the first time
/// gets the digest only when its time passed less than a day ago (no digest of a week
/// long gone on a first start).
async fn due_digests(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, String, String, Option<Message>)>> {
    let mut out = Vec::new();
    let mut doc: Option<report::digest::DigestDoc> = None;
    for n in &settings.notifiers {
        let Some(at) = n.digest else { continue };
        let due = at.last_before(now);
        let subject = format!("digest/{}", n.id);
        let state = due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let seen = store.watch_state(&subject).await?;
        if seen.as_deref() == Some(state.as_str()) {
            continue;
        }
        let send = seen.is_some() || now - due < chrono::Duration::days(1);
        let message = if send {
            if doc.is_none() {
                doc = Some(
                    report::digest::digest(store, settings, now)
                        .await
                        .context("cannot make the weekly digest")?,
                );
            }
            let whole = doc.as_ref().expect("made above");
            let mine = report::digest::scoped(whole, |o| in_scope(settings, &n.objectives, o));
            Some(Message::new(
                "digest",
                report::digest::render_digest(&mine),
                format!("{}/digest", base_url(settings)),
                now,
            ))
        } else {
            None
        };
        out.push((n.id.clone(), subject, state, message));
    }
    Ok(out)
}

/// What the source and unaligned events are computed from, read before the comparison's
/// transaction.
struct WatchInputs {
    /// Per configured source: its newest steps' outcomes (newest first, at most
    /// [`FAILING_AFTER`]) and the newest error.
    sources: Vec<(String, Vec<RunOutcome>, Option<String>)>,
    /// The unaligned report, when a notifier wants its event.
    unaligned: Option<report::UnalignedDoc>,
}

/// A source is failing after this many failed steps in a row.
pub const FAILING_AFTER: usize = 3;

async fn watch_inputs(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> anyhow::Result<WatchInputs> {
    let wants = |e: EventKind| settings.notifiers.iter().any(|n| n.events.contains(&e));
    let mut sources = Vec::new();
    if wants(EventKind::SourceFailing) {
        for name in settings.sources.keys() {
            let runs = store.recent_runs(Some(name), FAILING_AFTER as i64).await?;
            let error = runs.first().and_then(|r| r.error.clone());
            sources.push((
                name.clone(),
                runs.into_iter().map(|r| r.outcome).collect(),
                error,
            ));
        }
    }
    let unaligned = if wants(EventKind::Unaligned) {
        Some(
            report::unaligned(store, settings, None, now)
                .await
                .context("cannot read the unaligned work for notifications")?,
        )
    } else {
        None
    };
    Ok(WatchInputs { sources, unaligned })
}

/// A source or unaligned subject whose state is new or changed.
struct Watch {
    subject: String,
    state: &'static str,
    /// When the change is worth telling: its event, message, and the sources it is about
    /// (for the notifiers' objective scope).
    told: Option<(EventKind, Message, Vec<String>)>,
}

/// The source and unaligned subjects whose state is new or changed.
fn watch_events(
    settings: &Settings,
    inputs: &WatchInputs,
    watched: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Vec<Watch> {
    let mut out = Vec::new();
    let base = |event: EventKind, message: String, url: String| {
        Message::new(event.as_str(), message, url, now)
    };
    for (name, outcomes, error) in &inputs.sources {
        let subject = format!("source/{name}");
        // Never seen: as good as ok (a source failing from the start is told once).
        let old = watched.get(&subject).map(String::as_str).unwrap_or("ok");
        let failing =
            outcomes.len() >= FAILING_AFTER && outcomes.iter().all(|o| *o == RunOutcome::Failed);
        let recovered = outcomes.first() == Some(&RunOutcome::Ok);
        let new = match old {
            "failing" if recovered => "ok",
            "failing" => "failing",
            _ if failing => "failing",
            _ => "ok",
        };
        if watched.get(&subject).map(String::as_str) == Some(new) {
            continue;
        }
        let told = (old != new).then(|| {
            let text = if new == "failing" {
                format!(
                    "source {name} failed {FAILING_AFTER} steps in a row: {}",
                    error.as_deref().unwrap_or("no error recorded")
                )
            } else {
                format!("source {name} recovered: its last step succeeded")
            };
            let mut m = base(
                EventKind::SourceFailing,
                text,
                format!("{}/sources", base_url(settings)),
            );
            m.source = Some(name.clone());
            m.from = Some(old.to_string());
            m.to = Some(new.to_string());
            (EventKind::SourceFailing, m, vec![name.clone()])
        });
        out.push(Watch {
            subject,
            state: new,
            told,
        });
    }
    if let Some(doc) = &inputs.unaligned {
        for n in settings
            .notifiers
            .iter()
            .filter(|n| n.events.contains(&EventKind::Unaligned))
        {
            for p in &doc.by_project {
                let subject = format!("unaligned/{}/{}", n.id, p.project);
                // Never seen: below (a project already over the line is told once).
                let old = watched.get(&subject).map(String::as_str).unwrap_or("below");
                let new = if p.share > n.unaligned_share {
                    "above"
                } else {
                    "below"
                };
                if watched.get(&subject).map(String::as_str) == Some(new) {
                    continue;
                }
                let told = (old == "below" && new == "above").then(|| {
                    let mut m = base(
                        EventKind::Unaligned,
                        format!(
                            "{}: {} of its work in the period moves no KR ({} of {} items; the line is {})",
                            p.project,
                            percent(p.share),
                            p.unaligned,
                            p.items,
                            percent(n.unaligned_share)
                        ),
                        format!(
                            "{}/unaligned#project-{}",
                            base_url(settings),
                            encode(&p.project)
                        ),
                    );
                    m.project = Some(p.project.clone());
                    m.progress = Some(p.share);
                    let mut sources: Vec<String> = doc
                        .items
                        .iter()
                        .filter(|i| i.project == p.project)
                        .map(|i| i.source.clone())
                        .collect();
                    sources.sort();
                    sources.dedup();
                    (EventKind::Unaligned, m, sources)
                });
                out.push(Watch {
                    subject,
                    state: new,
                    told,
                });
            }
        }
    }
    out
}

/// Whether an event about `sources` concerns a notifier: always when it watches every
/// objective; else when a KR of its objectives reads one of them.
fn feeds_scope(
    settings: &Settings,
    doc: &report::StatusDoc,
    n: &NotifierSettings,
    sources: &[String],
) -> bool {
    if n.objectives.is_empty() {
        return true;
    }
    doc.objectives
        .iter()
        .filter(|o| in_scope(settings, &n.objectives, &o.id))
        .flat_map(|o| &o.key_results)
        .any(|k| k.sources.iter().any(|s| sources.contains(s)))
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    pub sent: usize,
    pub failed: usize,
}

/// The first retry after a failure, doubling per attempt, at most an hour.
fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 10) as u32;
    Duration::from_secs(5u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(3600))
}

/// A delivery's outcome: sent, retry after a delay, or not retried.
enum Outcome {
    Sent,
    Retry(String, Duration),
    GiveUp(String),
}

/// A chat message (Slack, Teams) for one or several changes: a storm is one message.
fn chat_body(kind: &NotifierKind, messages: &[Message]) -> String {
    let title = if messages.len() == 1 {
        "okrsync: 1 change".to_string()
    } else {
        format!("okrsync: {} changes", messages.len())
    };
    match kind {
        NotifierKind::Slack { .. } => {
            let text = std::iter::once(title.clone())
                .chain(
                    messages
                        .iter()
                        .map(|m| format!("• {} {}", m.message, m.url)),
                )
                .collect::<Vec<_>>()
                .join("\n");
            let mut blocks = vec![serde_json::json!({
                "type": "header",
                "text": {"type": "plain_text", "text": title},
            })];
            for m in messages {
                blocks.push(serde_json::json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": format!("<{}|{}>", m.url, slack_escape(&m.message))},
                }));
            }
            serde_json::json!({"text": text, "blocks": blocks}).to_string()
        }
        _ => {
            let mut body = vec![serde_json::json!({
                "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true,
            })];
            for m in messages {
                body.push(serde_json::json!({
                    "type": "TextBlock", "text": format!("[{}]({})", m.message, m.url), "wrap": true,
                }));
            }
            serde_json::json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }],
            })
            .to_string()
        }
    }
}

/// Slack's mrkdwn escapes `&`, `<` and `>`.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Sends one email for these messages.
async fn send_email(n: &NotifierSettings, messages: &[Message]) -> Outcome {
    let NotifierKind::Email {
        to,
        from,
        smtp_url,
        ca_file,
    } = &n.kind
    else {
        return Outcome::GiveUp("not an email notifier".into());
    };
    let target = match smtp_url.get() {
        Ok(u) => match email::SmtpTarget::parse(u.expose_secret()) {
            Ok(t) => t,
            Err(e) => return Outcome::Retry(e, Duration::from_secs(3600)),
        },
        Err(p) => return Outcome::Retry(p.message.clone(), Duration::from_secs(3600)),
    };
    match email::send(&target, ca_file.as_deref(), from, to, messages).await {
        email::Sent::Ok => Outcome::Sent,
        email::Sent::Transient(e) => Outcome::Retry(e, Duration::ZERO),
        email::Sent::Permanent(e) => Outcome::GiveUp(e),
    }
}

async fn send(client: &reqwest::Client, n: &NotifierSettings, payload: &str) -> Outcome {
    let url = match n.kind.url().get() {
        Ok(u) => u.expose_secret().to_string(),
        Err(p) => return Outcome::Retry(p.message.clone(), Duration::from_secs(3600)),
    };
    let mut request = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_string());
    if let NotifierKind::Webhook {
        secret: Some(secret),
        ..
    } = &n.kind
    {
        match secret.get() {
            Ok(s) => {
                request = request.header(
                    "X-Okrsync-Signature-256",
                    crate::server::hook_signature(s.expose_secret().as_bytes(), payload.as_bytes()),
                );
            }
            Err(p) => return Outcome::Retry(p.message.clone(), Duration::from_secs(3600)),
        }
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Outcome::Sent,
        Ok(r) if r.status().as_u16() == 429 => {
            let wait = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Outcome::Retry(
                "429 Too Many Requests".into(),
                wait.unwrap_or(Duration::ZERO),
            )
        }
        Ok(r) if r.status().is_server_error() => Outcome::Retry(
            format!("the receiver answered {}", r.status()),
            Duration::ZERO,
        ),
        Ok(r) => Outcome::GiveUp(format!(
            "the receiver answered {} (not retried)",
            r.status()
        )),
        // The URL is a secret: the error is told without it.
        Err(e) => Outcome::Retry(
            format!("cannot reach the receiver: {}", e.without_url()),
            Duration::ZERO,
        ),
    }
}

/// Sends the messages due now; each attempt is recorded.
pub async fn deliver(
    store: &Store,
    settings: &Settings,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> anyhow::Result<Delivered> {
    let now_ms = ms(now);
    let mut done = Delivered::default();
    let by_id: BTreeMap<&str, &NotifierSettings> = settings
        .notifiers
        .iter()
        .map(|n| (n.id.as_str(), n))
        .collect();
    // Due messages, claimed, by notifier in the order they were queued.
    let mut batches: Vec<(String, Vec<crate::store::OutboxRow>)> = Vec::new();
    for row in store.due_messages(now_ms, 100).await? {
        // Taken for the time a send may take; a replica that dies holding it leaves it
        // due again after that (sent once more at worst, never lost).
        let claim_until = now_ms + CLAIM.as_millis() as i64;
        if !store.claim_message(&row, claim_until).await? {
            continue;
        }
        match batches.iter_mut().find(|(n, _)| *n == row.notifier) {
            Some((_, rows)) => rows.push(row),
            None => batches.push((row.notifier.clone(), vec![row])),
        }
    }
    for (notifier, rows) in batches {
        // A webhook gets one document per change; a chat one message for them all.
        if let Some(n) = by_id
            .get(notifier.as_str())
            .filter(|n| matches!(n.kind, NotifierKind::Email { .. }))
        {
            let messages: Vec<Message> = rows
                .iter()
                .filter_map(|r| serde_json::from_str(&r.payload).ok())
                .collect();
            let outcome = send_email(n, &messages).await;
            for row in &rows {
                record(store, row, &outcome, now_ms, &mut done).await?;
            }
            continue;
        }
        let sends: Vec<(Vec<crate::store::OutboxRow>, Option<String>)> =
            match by_id.get(notifier.as_str()) {
                Some(n) if !matches!(n.kind, NotifierKind::Webhook { .. }) => {
                    let messages: Vec<Message> = rows
                        .iter()
                        .filter_map(|r| serde_json::from_str(&r.payload).ok())
                        .collect();
                    let body = chat_body(&n.kind, &messages);
                    vec![(rows, Some(body))]
                }
                _ => rows
                    .into_iter()
                    .map(|r| {
                        let body = r.payload.clone();
                        (vec![r], Some(body))
                    })
                    .collect(),
            };
        for (rows, body) in sends {
            let outcome = match (by_id.get(notifier.as_str()), body) {
                (Some(n), Some(body)) => send(client, n, &body).await,
                _ => Outcome::Retry(
                    format!("no notifier \"{notifier}\" is configured any more"),
                    Duration::from_secs(3600),
                ),
            };
            for row in &rows {
                record(store, row, &outcome, now_ms, &mut done).await?;
            }
        }
    }
    Ok(done)
}

/// Records one message's delivery attempt.
async fn record(
    store: &Store,
    row: &crate::store::OutboxRow,
    outcome: &Outcome,
    now_ms: i64,
    done: &mut Delivered,
) -> anyhow::Result<()> {
    match outcome {
        Outcome::Sent => {
            store.record_delivery(row.id, Ok(()), now_ms).await?;
            done.sent += 1;
            tracing::info!(notifier = %row.notifier, event = %row.event, "notification sent");
        }
        Outcome::Retry(error, at_least) => {
            let wait = backoff(row.attempts).max(*at_least);
            let next = now_ms + wait.as_millis().min(i64::MAX as u128) as i64;
            store
                .record_delivery(row.id, Err((error, next)), now_ms)
                .await?;
            done.failed += 1;
            tracing::warn!(notifier = %row.notifier, event = %row.event, attempts = row.attempts + 1, retry_in_s = wait.as_secs(), error = %error, "notification not delivered; will retry");
        }
        Outcome::GiveUp(error) => {
            store
                .record_delivery(row.id, Err((error, i64::MAX)), now_ms)
                .await?;
            done.failed += 1;
            tracing::error!(notifier = %row.notifier, event = %row.event, error = %error, "notification refused by its receiver; not retried");
        }
    }
    Ok(())
}

/// How long a replica holds a message it is sending.
const CLAIM: Duration = Duration::from_secs(60);

/// How often the daemon evaluates and delivers.
pub const EVERY: Duration = Duration::from_secs(2);

/// The client messages are sent with: bounded, no redirects (a URL is a secret and
/// stays where it was configured).
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the notifications' HTTP client")
}

/// After `okrsync sync`: queue what the pass changed and try once to send what is due
/// (what is not taken stays queued for the next pass or the daemon).
pub async fn once(store: &Store, settings: &Settings) -> anyhow::Result<(usize, Delivered)> {
    if settings.notifiers.is_empty() {
        return Ok((0, Delivered::default()));
    }
    let now = crate::clock::now();
    let queued = evaluate(store, settings, now).await?;
    let delivered = deliver(store, settings, &client()?, now).await?;
    Ok((queued, delivered))
}

/// The daemon's notifier: every [`EVERY`], queue what changed and send what is due, until
/// `stop` turns true.
pub async fn run_notifier(
    shared: crate::sync::SharedEngine,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notifications' HTTP client; no notifications");
            return;
        }
    };
    loop {
        let engine = shared.current();
        let settings = engine.settings().clone();
        if !settings.notifiers.is_empty() {
            let now = crate::clock::now();
            if let Err(e) = evaluate(engine.store(), &settings, now).await {
                tracing::error!(error = format!("{e:#}"), "cannot queue notifications");
            }
            if let Err(e) = deliver(engine.store(), &settings, &client, now).await {
                tracing::error!(error = format!("{e:#}"), "cannot deliver notifications");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
