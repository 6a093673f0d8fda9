//! Notifications (issue 17, the webhook notifier): a status change or a new flag is queued
//! once, whatever runs again, and delivered to a local receiver until it takes it — through
//! 500 and 429 answers — signed with the notifier's secret.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::Utc;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{issue, minute, Db, SourceOpts, TestEnv};

pub(crate) const OKRS: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the work"
measure = "completion"

[[objective]]
id = "other"
title = "Another objective"
period = "2026-Q4"

[[objective.kr]]
id = "other.nps"
title = "Partner NPS"
measure = "manual"
start = 0
target = 10

[[rule]]
kr = "o.done"
[rule.match]
project = "PAY"
"#;

/// A status to answer with, and its `Retry-After`.
type Answer = (u16, Option<&'static str>);

/// A local receiver: it records what it gets and answers with the statuses it is given
/// (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl Receiver {
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.got.lock().expect("lock").push((headers, body));
                    let next = {
                        let mut a = me.answers.lock().expect("lock");
                        (!a.is_empty()).then(|| a.remove(0))
                    };
                    match next {
                        Some((status, retry_after)) => {
                            let mut resp =
                                (StatusCode::from_u16(status).expect("status"), "not now")
                                    .into_response();
                            if let Some(r) = retry_after {
                                resp.headers_mut()
                                    .insert("retry-after", r.parse().expect("header"));
                            }
                            resp
                        }
                        None => (StatusCode::OK, "ok").into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, b)| serde_json::from_str(b).expect("json"))
            .collect()
    }
}

/// The test's config with a webhook notifier for objective `o` (signed) appended.
fn with_notifier(env: &TestEnv, url: &str) {
    std::fs::write(env.dir.path().join("hook-url"), url).expect("url");
    std::fs::write(env.dir.path().join("hook-secret"), "s3cret").expect("secret");
    let config = std::fs::read_to_string(&env.config).expect("config");
    let config = config.replace(
        "[server]\n",
        "[server]\npublic_url = \"https://okr.acme.test\"\n",
    );
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"pay-team\"\nkind = \"webhook\"\nurl_file = \"hook-url\"\nsecret_file = \"hook-secret\"\nobjectives = [\"o\"]\n"
        ),
    )
    .expect("config");
}

async fn queued_once_and_delivered_through_failures(db: Db) {
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    with_notifier(&env, &url);
    env.seed([
        issue(
            1,
            "PAY-1",
            "A",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    let engine = env.engine().await;
    let settings = engine.settings().clone();
    let store = engine.store();
    let client = reqwest::Client::new();
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    // The first evaluation records what is there: no message.
    assert_eq!(
        okrsync::notify::evaluate(store, &settings, Utc::now())
            .await
            .expect("evaluate"),
        0
    );
    // Both items done: the KR's status changes once, however often it is evaluated.
    for key in ["PAY-1", "PAY-2"] {
        env.sim.edit(key, |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(Utc::now());
            i.updated = Utc::now();
        });
    }
    engine
        .sync_source("jira", okrsync::sync::Mode::Incremental)
        .await
        .expect("sync");
    // A second replica on the same database looks at the same time, every time.
    let other = okrsync::store::Store::connect(&settings.database)
        .await
        .expect("a second replica's store");
    let mut queued = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            okrsync::notify::evaluate(store, &settings, Utc::now()),
            okrsync::notify::evaluate(&other, &settings, Utc::now()),
        );
        queued += a.expect("evaluate") + b.expect("evaluate");
        engine
            .sync_source("jira", okrsync::sync::Mode::Incremental)
            .await
            .expect("sync");
    }
    assert_eq!(
        queued, 1,
        "one message for one change, whichever replica queued it"
    );
    // The receiver fails with 500, then 429 (Retry-After: 1), then takes it.
    receiver
        .answers
        .lock()
        .expect("lock")
        .extend([(500, None), (429, Some("1"))]);
    let mut sent = 0;
    let mut t = Utc::now();
    for _ in 0..3 {
        let (d, e) = tokio::join!(
            okrsync::notify::deliver(store, &settings, &client, t),
            okrsync::notify::deliver(&other, &settings, &client, t),
        );
        sent += d.expect("deliver").sent + e.expect("deliver").sent;
        // Far enough ahead for any backoff of the first attempts.
        t += chrono::Duration::seconds(30);
    }
    assert_eq!(sent, 1);
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 3, "two failures and the delivery");
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "the same message each time"
    );
    let m = &bodies[0];
    assert_eq!(m["event"], "kr_status");
    assert_eq!(m["objective"], "o");
    assert_eq!(m["kr"], "o.done");
    assert_eq!(m["to"], "done");
    assert_eq!(m["progress"], 1.0);
    assert_eq!(m["url"], "https://okr.acme.test/kr/o.done");
    for field in ["flag", "source", "project"] {
        assert_eq!(m[field], Value::Null, "{field}");
    }
    // Signed with the notifier's secret.
    let (headers, body) = receiver.got.lock().expect("lock")[2].clone();
    assert_eq!(
        headers["x-okrsync-signature-256"].to_str().expect("header"),
        okrsync::server::hook_signature(b"s3cret", body.as_bytes())
    );
    // Nothing more to send; the KR outside the notifier's objectives sends nothing.
    engine
        .checkin(
            "other.nps",
            &okrsync::store::NewCheckin {
                value: Some(10.0),
                ..Default::default()
            },
        )
        .await
        .expect("checkin");
    assert_eq!(
        okrsync::notify::evaluate(store, &settings, Utc::now())
            .await
            .expect("evaluate"),
        0
    );
    let d = okrsync::notify::deliver(store, &settings, &client, t + chrono::Duration::hours(2))
        .await
        .expect("deliver");
    assert_eq!((d.sent, d.failed), (0, 0));
    assert_eq!(store.outbox_depth().await.expect("depth"), 0);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
both_backends!(queued_once_and_delivered_through_failures);

/// `check` refuses a notifier it cannot deliver and one that names an unknown objective.
#[test]
fn check_refuses_unknown_objectives_and_kinds_not_delivered_yet() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(dir.path().join("okrs/o.toml"), OKRS).expect("okrs");
    std::fs::write(dir.path().join("u"), "http://127.0.0.1:9/x").expect("url");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        "[[notify]]\nid = \"a\"\nkind = \"webhook\"\nurl_file = \"u\"\nobjectives = [\"nope\"]\n\
         [[notify]]\nid = \"b\"\nkind = \"email\"\nurl_file = \"u\"\n\
         [[notify]]\nid = \"c\"\nkind = \"webhook\"\nurl_file = \"u\"\nevents = [\"kr_status\", \"oops\"]\n",
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("okrsync.toml"))
        .arg("check")
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown objective \"nope\""), "{stderr}");
    // An email notifier needs its addresses and the SMTP URL, not a webhook URL.
    assert!(stderr.contains("notify[1].to: is required"), "{stderr}");
    assert!(stderr.contains("notify[1].from: is required"), "{stderr}");
    assert!(
        stderr.contains("notify[1].url_file: unknown key"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown event \"oops\""), "{stderr}");
}

/// Through the real binary: `okrsync run` queues the change a sync makes and delivers it
/// to the receiver — through a 500 answer and a SIGKILL before the retry; after the
/// restarts, more syncs send nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sends_one_message_per_change_across_a_restart() {
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    with_notifier(&env, &url);
    env.seed([
        issue(
            1,
            "PAY-1",
            "A",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    let http = reqwest::Client::new();
    let sync = |d: &crate::service::Daemon| {
        http.post(d.url("/api/v1/sync"))
            .bearer_auth(crate::helpers::API_TOKEN)
            .send()
    };
    let mut d = crate::service::Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, Duration::from_secs(30)).await;
    sync(&d).await.expect("sync");
    // Two notifier ticks: the state is recorded, nothing is sent.
    tokio::time::sleep(okrsync::notify::EVERY * 2 + Duration::from_millis(500)).await;
    assert!(receiver.bodies().is_empty(), "{:?}", receiver.bodies());
    for key in ["PAY-1", "PAY-2"] {
        env.sim.edit(key, |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(Utc::now());
            i.updated = Utc::now();
        });
    }
    // The receiver fails the first attempt; the daemon is killed before it retries.
    receiver.answers.lock().expect("lock").push((500, None));
    sync(&d).await.expect("sync");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.bodies().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing attempted; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Killed a moment after the attempt: it is recorded, due again after 5 s. Killed
    // during it, the claim would hold it a minute; the deadline below covers both.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.kill();
    assert_eq!(receiver.bodies().len(), 1, "one failed attempt");
    let mut d = crate::service::Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, Duration::from_secs(30)).await;
    // The queued message is retried after its backoff (5 s) and taken.
    let deadline = std::time::Instant::now() + Duration::from_secs(75);
    while receiver.bodies().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing delivered; log:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = d.stop(Duration::from_secs(30));
    assert!(status.success());
    let mut d = crate::service::Daemon::start(&env.config, env.dir.path(), &[]);
    d.wait_ready(200, Duration::from_secs(30)).await;
    sync(&d).await.expect("sync");
    sync(&d).await.expect("sync");
    tokio::time::sleep(okrsync::notify::EVERY * 2 + Duration::from_millis(500)).await;
    let bodies = receiver.bodies();
    assert_eq!(
        bodies.len(),
        2,
        "the failed attempt and the delivery: {bodies:?}"
    );
    assert_eq!(bodies[0], bodies[1], "the same message");
    assert_eq!(bodies[1]["kr"], "o.done");
    assert_eq!(bodies[1]["to"], "done");
    let (status, _) = d.stop(Duration::from_secs(30));
    assert!(status.success());
}

const TWO: &str = r#"
[[objective]]
id = "o"
title = "Objective"
period = "2026-Q4"

[[objective.kr]]
id = "o.done"
title = "Finish the work"
measure = "completion"

[[objective.kr]]
id = "o.count"
title = "Close <two> & more"
measure = "count"
target = 2

[[rule]]
krs = ["o.done", "o.count"]
[rule.match]
project = "PAY"
"#;

/// Slack and Teams: a storm (two KRs changing at once) is one message per notifier — a
/// Block Kit message with its plain `text`, an Adaptive Card — each linking to the KRs.
async fn chat_messages_group_a_storm(db: Db) {
    let slack = Receiver::default();
    let slack_url = slack.start().await;
    let teams = Receiver::default();
    let teams_url = teams.start().await;
    let env = TestEnv::new(db, TWO, SourceOpts::default()).await;
    std::fs::write(env.dir.path().join("slack-url"), &slack_url).expect("url");
    std::fs::write(env.dir.path().join("teams-url"), &teams_url).expect("url");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"slack\"\nkind = \"slack\"\nurl_file = \"slack-url\"\nevents = [\"kr_status\"]\n\
             [[notify]]\nid = \"teams\"\nkind = \"teams\"\nurl_file = \"teams-url\"\nevents = [\"kr_status\"]\n"
        ),
    )
    .expect("config");
    env.seed([
        issue(
            1,
            "PAY-1",
            "A",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        issue(
            2,
            "PAY-2",
            "B",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    let engine = env.engine().await;
    let settings = engine.settings().clone();
    let store = engine.store();
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    okrsync::notify::evaluate(store, &settings, Utc::now())
        .await
        .expect("evaluate");
    for key in ["PAY-1", "PAY-2"] {
        env.sim.edit(key, |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(Utc::now());
            i.updated = Utc::now();
        });
    }
    engine
        .sync_source("jira", okrsync::sync::Mode::Incremental)
        .await
        .expect("sync");
    let queued = okrsync::notify::evaluate(store, &settings, Utc::now())
        .await
        .expect("evaluate");
    assert_eq!(queued, 4, "two changes for each of two notifiers");
    let d = okrsync::notify::deliver(store, &settings, &reqwest::Client::new(), Utc::now())
        .await
        .expect("deliver");
    assert_eq!(d.sent, 4);
    let s = slack.bodies();
    assert_eq!(s.len(), 1, "one Slack message for the storm: {s:?}");
    let text = s[0]["text"].as_str().expect("text fallback");
    assert!(text.starts_with("okrsync: 2 changes"), "{text}");
    assert!(text.contains("Finish the work (o.done)"), "{text}");
    let blocks = s[0]["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 3, "a header and a section per change");
    let section = blocks[2]["text"]["text"].as_str().expect("mrkdwn");
    assert!(
        section.contains("Close &lt;two&gt; &amp; more") && section.contains("/kr/o.count|"),
        "escaped for mrkdwn, linked: {section}"
    );
    let t = teams.bodies();
    assert_eq!(t.len(), 1, "one Teams message for the storm: {t:?}");
    let card = &t[0]["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["body"].as_array().expect("body").len(), 3);
}
both_backends!(chat_messages_group_a_storm);

/// `source_failing` after three failed steps in a row (once, however long it keeps
/// failing), again when it recovers; `unaligned` when a project's share crosses the
/// notifier's line upwards (once; again only after it fell back under it).
async fn source_failing_and_unaligned_events(db: Db) {
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let okrs = OKRS.replace(
        "[rule.match]\nproject = \"PAY\"\n",
        "[rule.match]\nproject = \"PAY\"\n\n[[rule]]\nkr = \"o.done\"\n[rule.match]\nlabels = [\"okr\"]\n",
    );
    let env = TestEnv::new(db, &okrs, SourceOpts::default()).await;
    std::fs::write(env.dir.path().join("hook-url"), &url).expect("url");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"ops\"\nkind = \"webhook\"\nurl_file = \"hook-url\"\n\
             events = [\"source_failing\", \"unaligned\"]\nunaligned_share = 0.4\n"
        ),
    )
    .expect("config");
    let in_progress = |id: u64, key: &str, labels: &[&str]| {
        issue(
            id,
            key,
            key,
            "in_progress",
            None,
            labels,
            minute(9, 0),
            None,
        )
    };
    // WEB: 1 of 3 unaligned (0.33, under the line of 0.4).
    env.seed([
        in_progress(1, "PAY-1", &[]),
        in_progress(2, "WEB-1", &["okr"]),
        in_progress(3, "WEB-2", &["okr"]),
        in_progress(4, "WEB-3", &[]),
    ]);
    let engine = env.engine().await;
    let settings = engine.settings().clone();
    let store = engine.store();
    let evaluate = || okrsync::notify::evaluate(store, &settings, Utc::now());
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 0);
    // A fourth WEB item without a KR: 2 of 4 (0.5) crosses the line: one message.
    env.seed([in_progress(5, "WEB-4", &[])]);
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 1);
    assert_eq!(evaluate().await.expect("evaluate"), 0, "told once");
    // Still above after another item: nothing new.
    env.seed([in_progress(6, "WEB-5", &[])]);
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 0, "still above");
    // The source fails: two failed steps say nothing, the third does, the fourth not again.
    let fail = || {
        env.sim
            .fail_next(okrsync::simulator::faults::Fault::Status {
                status: 401,
                retry_after: None,
                body: None,
            })
    };
    for step in 1..=4 {
        fail();
        let run = engine
            .sync_source("jira", okrsync::sync::Mode::Incremental)
            .await
            .expect("a step");
        assert_eq!(run.outcome, "failed");
        let queued = evaluate().await.expect("evaluate");
        assert_eq!(queued, usize::from(step == 3), "after failed step {step}");
    }
    // It recovers: one message.
    engine
        .sync_source("jira", okrsync::sync::Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 1, "recovered");
    let client = reqwest::Client::new();
    let d = okrsync::notify::deliver(store, &settings, &client, Utc::now())
        .await
        .expect("deliver");
    assert_eq!(d.sent, 3);
    let bodies = receiver.bodies();
    let m = &bodies[0];
    assert_eq!(m["event"], "unaligned");
    assert_eq!(m["project"], "WEB");
    assert_eq!(m["progress"], 0.5);
    for field in ["objective", "kr", "flag", "source"] {
        assert_eq!(m[field], Value::Null, "{field}");
    }
    assert!(m["message"].as_str().expect("text").contains("50%"), "{m}");
    let m = &bodies[1];
    assert_eq!(m["event"], "source_failing");
    assert_eq!(m["source"], "jira");
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some("ok"), Some("failing"))
    );
    assert!(m["message"].as_str().expect("text").contains("401"), "{m}");
    let m = &bodies[2];
    assert_eq!(m["event"], "source_failing");
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some("failing"), Some("ok"))
    );
    // WEB falls under the line and crosses it again: a second message.
    env.sim.edit("WEB-4", |i| {
        i.labels = vec!["okr".into()];
        i.updated = Utc::now();
    });
    env.sim.edit("WEB-5", |i| {
        i.labels = vec!["okr".into()];
        i.updated = Utc::now();
    });
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 0, "under the line");
    env.sim.edit("WEB-5", |i| {
        i.labels = vec![];
        i.updated = Utc::now();
    });
    env.seed([in_progress(7, "WEB-6", &[])]);
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(evaluate().await.expect("evaluate"), 1, "crossed again");
}
both_backends!(source_failing_and_unaligned_events);

/// A minimal SMTP server: plain, or offering STARTTLS (and then refusing mail before it,
/// and taking `AUTH PLAIN` with the test's credentials after it). It answers the first DATA
/// with a transient 451 when told to, then takes every email; each is kept whole, with
/// whether it came over TLS.
#[derive(Clone, Default)]
pub(crate) struct Smtp {
    pub(crate) mails: Arc<Mutex<Vec<(bool, String)>>>,
    pub(crate) fail_first: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The credentials the STARTTLS server takes (`AUTH PLAIN`, base64 of `\0user\0pass`).
const SMTP_AUTH: &str = "AGJvdEBhY21lLnRlc3QAcyNjcmV0";

impl Smtp {
    pub(crate) async fn start(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let me = self.clone();
        tokio::spawn(async move {
            // Bounded: a test sends a handful of emails.
            for _ in 0..20 {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(me.clone().dialog(Box::new(socket), false));
            }
        });
        port
    }

    fn dialog(self, stream: Box<dyn Io>, secured: bool) -> futures::future::BoxFuture<'static, ()> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        Box::pin(async move {
            let mut conn = BufReader::new(stream);
            if !secured {
                let _ = conn.get_mut().write_all(b"220 test ESMTP\r\n").await;
            }
            let mut authenticated = false;
            loop {
                let mut line = String::new();
                if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end().to_string();
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: Vec<u8> = match verb.as_str() {
                    "EHLO" if self.tls.is_some() && !secured => {
                        b"250-test\r\n250-STARTTLS\r\n250 8BITMIME\r\n".to_vec()
                    }
                    "EHLO" if self.tls.is_some() => {
                        b"250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_vec()
                    }
                    "EHLO" => b"250-test\r\n250 8BITMIME\r\n".to_vec(),
                    "STAR" => {
                        let Some(acceptor) = self.tls.clone().filter(|_| !secured) else {
                            let _ = conn.get_mut().write_all(b"503 no\r\n").await;
                            continue;
                        };
                        let _ = conn.get_mut().write_all(b"220 go ahead\r\n").await;
                        let Ok(tls) = acceptor.accept(conn.into_inner()).await else {
                            return;
                        };
                        return self.dialog(Box::new(tls), true).await;
                    }
                    "AUTH" => {
                        authenticated = line.ends_with(SMTP_AUTH);
                        if authenticated {
                            b"235 ok\r\n".to_vec()
                        } else {
                            b"535 no\r\n".to_vec()
                        }
                    }
                    "MAIL" if self.tls.is_some() && !(secured && authenticated) => {
                        b"530 STARTTLS and AUTH first\r\n".to_vec()
                    }
                    "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n".to_vec(),
                    "DATA" => {
                        let _ = conn.get_mut().write_all(b"354 go on\r\n").await;
                        let mut mail = String::new();
                        loop {
                            let mut l = String::new();
                            if conn.read_line(&mut l).await.unwrap_or(0) == 0 || l.trim_end() == "."
                            {
                                break;
                            }
                            mail.push_str(&l);
                        }
                        if self
                            .fail_first
                            .swap(false, std::sync::atomic::Ordering::SeqCst)
                        {
                            b"451 try again later\r\n".to_vec()
                        } else {
                            self.mails.lock().expect("lock").push((secured, mail));
                            b"250 queued\r\n".to_vec()
                        }
                    }
                    "QUIT" => {
                        let _ = conn.get_mut().write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"502 what\r\n".to_vec(),
                };
                let _ = conn.get_mut().write_all(&reply).await;
            }
        })
    }
}

/// Email: a status change reaches a local SMTP server as one email (text and HTML) after
/// a transient refusal, and is not sent again.
async fn email_after_a_transient_refusal(db: Db) {
    let smtp = Smtp::default();
    smtp.fail_first
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let port = smtp.start().await;
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    std::fs::write(
        env.dir.path().join("smtp-url"),
        format!("smtp://127.0.0.1:{port}?tls=none"),
    )
    .expect("url");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"mail\"\nkind = \"email\"\nto = [\"lead@acme.test\"]\n\
             from = \"okrsync@acme.test\"\nsmtp_url_file = \"smtp-url\"\nevents = [\"kr_status\"]\n"
        ),
    )
    .expect("config");
    env.seed([issue(
        1,
        "PAY-1",
        "A",
        "in_progress",
        None,
        &[],
        minute(9, 0),
        None,
    )]);
    let engine = env.engine().await;
    let settings = engine.settings().clone();
    let store = engine.store();
    engine
        .sync_source("jira", okrsync::sync::Mode::Full)
        .await
        .expect("sync");
    assert_eq!(
        okrsync::notify::evaluate(store, &settings, Utc::now())
            .await
            .expect("e"),
        0
    );
    env.sim.edit("PAY-1", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(Utc::now());
    });
    engine
        .sync_source("jira", okrsync::sync::Mode::Incremental)
        .await
        .expect("sync");
    assert_eq!(
        okrsync::notify::evaluate(store, &settings, Utc::now())
            .await
            .expect("e"),
        1
    );
    let client = reqwest::Client::new();
    let mut t = Utc::now();
    let mut sent = 0;
    for _ in 0..3 {
        sent += okrsync::notify::deliver(store, &settings, &client, t)
            .await
            .expect("deliver")
            .sent;
        t += chrono::Duration::seconds(30);
    }
    assert_eq!(sent, 1);
    let mails = smtp.mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0].1;
    assert!(mail.contains("To: lead@acme.test"), "{mail}");
    assert!(mail.contains("From: okrsync@acme.test"), "{mail}");
    assert!(
        mail.contains("Subject: okrsync: Finish the work (o.done)"),
        "{mail}"
    );
    assert!(mail.contains("Content-Type: text/plain"), "{mail}");
    assert!(mail.contains("Content-Type: text/html"), "{mail}");
    assert!(mail.contains("/kr/o.done"), "{mail}");
    assert_eq!(store.outbox_depth().await.expect("depth"), 0);
}
both_backends!(email_after_a_transient_refusal);

/// Email over the real binary through STARTTLS: `okrsync sync` queues the change and sends
/// it, the relay's certificate trusted through the notifier's `ca_file`, after `AUTH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_from_okrsync_sync() {
    let ca = okrsync::simulator::tls::TestCa::generate("okrsync test mail CA").expect("ca");
    let smtp = Smtp {
        tls: Some(ca.acceptor()),
        ..Smtp::default()
    };
    let port = smtp.start().await;
    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    std::fs::write(env.dir.path().join("mail-ca.pem"), ca.ca_pem()).expect("ca");
    std::fs::write(
        env.dir.path().join("smtp-url"),
        format!("smtp://bot%40acme.test:s%23cret@127.0.0.1:{port}"),
    )
    .expect("url");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"mail\"\nkind = \"email\"\nto = [\"lead@acme.test\"]\n\
             from = \"okrsync <okrsync@acme.test>\"\nsmtp_url_file = \"smtp-url\"\nca_file = \"mail-ca.pem\"\n"
        ),
    )
    .expect("config");
    env.seed([issue(
        1,
        "PAY-1",
        "A",
        "in_progress",
        None,
        &[],
        minute(9, 0),
        None,
    )]);
    let sync = || {
        let out = env.cli(&["sync"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sync();
    env.sim.edit("PAY-1", |i| {
        i.status = "Done".into();
        i.status_category = "done".into();
        i.resolved = Some(Utc::now());
    });
    let out = sync();
    assert!(out.contains("notifications: 1 queued, 1 sent"), "{out}");
    sync();
    let mails = smtp.mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].0, "sent over TLS");
    assert!(
        mails[0].1.contains("From: okrsync <okrsync@acme.test>"),
        "{}",
        mails[0].1
    );
    // Without the CA the relay is not trusted: nothing is sent, the message stays queued.
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace("ca_file = \"mail-ca.pem\"\n", ""),
    )
    .expect("config");
    env.sim.edit("PAY-1", |i| {
        i.status = "In Progress".into();
        i.status_category = "indeterminate".into();
        i.resolved = None;
    });
    let out = sync();
    assert!(out.contains("1 queued, 0 sent, 1 not delivered"), "{out}");
    assert_eq!(smtp.mails.lock().expect("lock").len(), 1);
}
