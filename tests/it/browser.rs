//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! with fantoccini. Loads the overview, opens a KR, searches "moves", reads the unaligned
//! page, follows an allocation cell to its items, checks that a `<script>` title is only
//! text, and saves screenshots under `target/tmp/browser/` (the overview of `okrsync demo`
//! is the README's screenshot).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the test says it was skipped, unless `OKRSYNC_REQUIRE_BROWSER=1`, which CI sets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{free_port, issue, minute, Db, Served, SourceOpts, TestEnv};

const OKRS: &str = r#"
[[objective]]
id = "company"
title = "Grow the company"
period = "2026-Q4"

[[objective]]
id = "pay"
title = "Payments that just work"
period = "2026-Q4"
parent = "company"

[[objective.kr]]
id = "pay.checkout"
title = "Ship the new checkout"
measure = "completion"

[[objective.kr]]
id = "pay.wallets"
title = "Wallets everywhere"
measure = "completion"
kind = "aspirational"

[[objective.kr]]
id = "pay.nps"
title = "Merchant satisfaction"
measure = "manual"
start = 20
target = 40

[[rule]]
id = "pay-project"
krs = ["pay.checkout", "pay.wallets"]
[rule.match]
project = "PAY"
"#;

/// A child process killed (by its own pid) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(program: &str, env: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

async fn wait_until_up(url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up within 20 s");
}

async fn start_browser(profile: &Path) -> Option<(Killed, Client)> {
    let (Some(driver), Some(chromium)) = (
        find("chromedriver", "OKRSYNC_CHROMEDRIVER"),
        find("chromium", "OKRSYNC_CHROMIUM"),
    ) else {
        assert!(
            std::env::var("OKRSYNC_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "OKRSYNC_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED browser::dashboard_in_chromium: install Debian's chromium and chromium-driver to run it"
        );
        return None;
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/status")).await;
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-sync",
                "--hide-scrollbars", "--window-size=1400,1500",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&base)
        .await
        .expect("a WebDriver session in headless Chromium");
    Some((driver, client))
}

fn artefacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = artefacts().join(name);
    std::fs::write(&path, png).expect("write screenshot");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "screenshot: {}", path.display());
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Problems a screen-reader or keyboard user would hit on the current page: no document
/// language, form controls without a label, images without a text alternative, status
/// shown by colour alone, links without text. Empty when the page is fine.
const AUDIT: &str = r#"
const problems = [];
if (!document.documentElement.lang) problems.push('html has no lang');
if (!document.title.trim()) problems.push('page has no title');
for (const el of document.querySelectorAll('input, select, textarea')) {
  if (['hidden', 'submit', 'button'].includes(el.type)) continue;
  const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby');
  if (!named) problems.push('unlabelled control ' + (el.name || el.id || el.outerHTML));
}
for (const svg of document.querySelectorAll('svg')) {
  if (svg.closest('[aria-hidden=true]')) continue;
  const named = svg.getAttribute('aria-label') || svg.getAttribute('aria-labelledby')
    || svg.querySelector('title');
  if (!named) problems.push('svg without a text alternative');
}
for (const img of document.querySelectorAll('img')) {
  if (!img.hasAttribute('alt')) problems.push('img without alt ' + img.src);
}
for (const badge of document.querySelectorAll('.badge')) {
  if (!badge.textContent.trim()) problems.push('status shown by colour only');
}
for (const a of document.querySelectorAll('a')) {
  if (!a.textContent.trim() && !a.getAttribute('aria-label')) problems.push('link without text ' + a.href);
}
if (!document.querySelector('main')) problems.push('no main landmark');
for (const t of document.querySelectorAll('table')) {
  const named = t.querySelector('caption') || t.getAttribute('aria-label') || t.getAttribute('aria-labelledby');
  if (!named) problems.push('table without a caption ' + t.className);
  if (!t.querySelector('th')) problems.push('table without headers ' + t.className);
}
return problems;
"#;

async fn audit(c: &Client, page: &str) {
    let problems = c.execute(AUDIT, vec![]).await.expect("audit script");
    assert_eq!(
        problems,
        json!([]),
        "accessibility problems on the {page} page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium() {
    let profile = tempfile::tempdir().expect("profile dir");
    let Some((_driver, c)) = start_browser(profile.path()).await else {
        return;
    };

    let env = TestEnv::new(Db::Sqlite, OKRS, SourceOpts::default()).await;
    env.seed([
        issue(
            1,
            "PAY-1",
            "Card payments",
            "done",
            Some(3.0),
            &[],
            minute(9, 0),
            Some(minute(9, 0)),
        ),
        issue(
            2,
            "PAY-2",
            "Wallets",
            "in_progress",
            Some(2.0),
            &[],
            minute(9, 1),
            None,
        ),
        issue(
            3,
            "WEB-7",
            "<script>alert('owned')</script>",
            "in_progress",
            Some(5.0),
            &[],
            minute(9, 2),
            None,
        ),
    ]);
    let served = Served::start(&env).await;
    let base = served.base.clone();

    // Overview: the tree (child objective nested under its parent) with the KR.
    c.goto(&format!("{base}/")).await.expect("overview");
    assert_eq!(text_of(&c, "h1").await, "Objectives and key results");
    let nested = text_of(&c, "#objective-company ul.children #objective-pay h3").await;
    assert_eq!(nested, "Payments that just work");
    let row = text_of(&c, "#objective-pay table.krs tbody tr").await;
    assert!(
        row.contains("Ship the new checkout") && row.contains("1 / 2"),
        "{row}"
    );
    assert!(row.contains("from jira"), "{row}");
    audit(&c, "overview").await;
    screenshot(&c, "overview.png").await;

    // Open the KR: chart and evidence.
    c.find(Locator::Css("a[href='/kr/pay.checkout']"))
        .await
        .expect("KR link")
        .click()
        .await
        .expect("click");
    assert_eq!(text_of(&c, "h1").await, "Ship the new checkout");
    assert!(c
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/kr/pay.checkout"));
    c.find(Locator::Css("figure.chart svg polyline.line"))
        .await
        .expect("a history line");
    let evidence = text_of(&c, "table.evidence tbody").await;
    assert!(
        evidence.contains("PAY-1") && evidence.contains("PAY-2"),
        "{evidence}"
    );
    assert!(evidence.contains("pay-project"), "{evidence}");
    audit(&c, "key result").await;
    screenshot(&c, "key-result.png").await;

    // Judgement: the manual KR has had no check-in this quarter, so the "needs attention"
    // panel lists it; the stretch goal carries its marker and its chart the success line.
    c.goto(&format!("{base}/")).await.expect("overview");
    let panel = text_of(&c, "section.attention").await;
    assert!(
        panel.contains("check-in overdue") && panel.contains("Merchant satisfaction"),
        "{panel}"
    );
    let stretch = text_of(&c, "#objective-pay table.krs span.stretch").await;
    assert_eq!(stretch, "stretch");
    c.goto(&format!("{base}/kr/pay.wallets"))
        .await
        .expect("stretch KR");
    c.find(Locator::Css("figure.chart svg line.success"))
        .await
        .expect("the success line");
    audit(&c, "stretch key result").await;
    // The check-in form (no script): a value and a confidence with a note, and the token.
    c.goto(&format!("{base}/kr/pay.nps"))
        .await
        .expect("manual KR");
    assert!(text_of(&c, "section.attention")
        .await
        .contains("check-in overdue"));
    audit(&c, "manual key result").await;
    let form = c
        .form(Locator::Css("form.checkin"))
        .await
        .expect("check-in form");
    form.set_by_name("value", "30").await.expect("value");
    form.set_by_name("confidence", "7")
        .await
        .expect("confidence");
    form.set_by_name("note", "on plan").await.expect("note");
    form.set_by_name("token", crate::helpers::API_TOKEN)
        .await
        .expect("token");
    form.submit().await.expect("submit");
    assert!(c
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/kr/pay.nps"));
    let confidence = text_of(&c, "#confidence + p").await;
    assert!(
        confidence.contains("7/10") && confidence.contains("on plan"),
        "{confidence}"
    );
    c.find(Locator::Css("svg polyline.confidence-line"))
        .await
        .expect("the confidence trend");
    let facts = text_of(&c, "dl.facts").await;
    assert!(facts.contains("30 / 40"), "the value was recorded: {facts}");
    screenshot(&c, "key-result-checkin.png").await;
    c.goto(&format!("{base}/")).await.expect("overview");
    let panel = text_of(&c, "section.attention").await;
    assert!(panel.contains("No flags"), "{panel}");

    // Moves: the budget meeting's search.
    c.find(Locator::LinkText("Moves"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    let form = c
        .form(Locator::Css("form.search"))
        .await
        .expect("search form");
    form.set_by_name("q", "PAY").await.expect("type");
    form.submit().await.expect("submit");
    assert_eq!(text_of(&c, "#result-title").await, "project=PAY");
    let result = text_of(&c, "table.moves tbody").await;
    assert!(
        result.contains("Ship the new checkout") && result.contains("100%"),
        "{result}"
    );
    audit(&c, "moves").await;
    screenshot(&c, "moves.png").await;

    // Unaligned work: WEB-7 moves nothing, and its title is text, not a script.
    c.find(Locator::LinkText("Unaligned work"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    let items = text_of(&c, "ul.items").await;
    assert!(items.contains("WEB-7"), "{items}");
    assert!(items.contains("<script>alert('owned')</script>"), "{items}");
    let scripts = c
        .execute("return document.querySelectorAll('script').length", vec![])
        .await
        .expect("execute");
    assert_eq!(
        scripts,
        json!(0),
        "a <script> element made it into the page"
    );
    assert!(
        c.get_alert_text().await.is_err(),
        "an alert opened: the title ran as script"
    );
    audit(&c, "unaligned").await;
    screenshot(&c, "unaligned.png").await;

    // Allocation: PAY's effort goes to the pay objective, WEB-7's is unaligned; a cell
    // leads to the items behind its number.
    c.find(Locator::LinkText("Allocation"))
        .await
        .expect("nav")
        .click()
        .await
        .expect("click");
    assert_eq!(text_of(&c, "h1").await, "Where the effort goes");
    let table = text_of(&c, "table.allocation tbody").await;
    assert!(table.contains("PAY") && table.contains("WEB"), "{table}");
    c.find(Locator::Css("svg.alloc-bar"))
        .await
        .expect("a stacked bar per project");
    c.find(Locator::Css("figure.chart svg rect.trend-seg"))
        .await
        .expect("the weekly chart");
    audit(&c, "allocation").await;
    screenshot(&c, "allocation.png").await;
    c.find(Locator::Css(
        "table.allocation a[href*='project=PAY'][href*='objective=pay']",
    ))
    .await
    .expect("PAY's cell for the pay objective")
    .click()
    .await
    .expect("click");
    assert_eq!(text_of(&c, "h1").await, "PAY: Payments that just work");
    let items = text_of(&c, "table.allocation-items tbody").await;
    assert!(
        items.contains("PAY-1") && items.contains("PAY-2") && !items.contains("WEB-7"),
        "{items}"
    );
    audit(&c, "allocation items").await;

    // Sources, and every page on a phone-sized window: wide tables scroll inside their
    // box instead of pushing the page sideways.
    c.goto(&format!("{base}/sources")).await.expect("sources");
    assert!(text_of(&c, "table.sources tbody").await.contains("jira"));
    audit(&c, "sources").await;
    c.set_window_size(390, 900).await.expect("narrow window");
    for path in [
        "/",
        "/kr/pay.checkout",
        "/moves?q=PAY",
        "/unaligned",
        "/allocation",
        "/allocation/items?project=PAY&objective=pay",
        "/sources",
    ] {
        c.goto(&format!("{base}{path}")).await.expect("page");
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .expect("execute");
        assert!(
            overflow.as_i64().unwrap_or(i64::MAX) <= 0,
            "{path} is {overflow} px wider than a 390 px window"
        );
    }
    screenshot(&c, "overview-narrow.png").await;
    c.set_window_size(1400, 1500).await.expect("wide window");

    // The demo's overview, for the README.
    let demo_dir = tempfile::tempdir().expect("demo dir");
    let port = free_port();
    let demo = Killed(
        Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--dir"])
            .arg(demo_dir.path())
            .env_remove("OKRSYNC_NOW")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    wait_until_up(&format!("http://127.0.0.1:{port}/readyz")).await;
    c.goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .expect("demo overview");
    assert!(text_of(&c, "#objective-emea")
        .await
        .contains("Win the EMEA market"));
    screenshot(&c, "demo-overview.png").await;
    drop(demo);

    c.close().await.expect("close the browser");
    served.stop().await;
}

/// Decodes a MIME part's body (quoted-printable, base64 or as is).
fn mime_body(part: &str) -> String {
    let (head, body) = part.split_once("\n\n").unwrap_or(("", part));
    let head = head.to_ascii_lowercase();
    if head.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let clean: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(clean)
            .expect("base64 body");
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    if head.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "").replace("=\n", "");
        let b = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        return String::from_utf8_lossy(&out).into_owned();
    }
    body.to_string()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a Slack client shows for a Block Kit message: the header, then each section's
/// mrkdwn with `<url|text>` links (already escaped by okrsync).
fn slack_preview(msg: &serde_json::Value) -> String {
    let mut rows = String::new();
    for b in msg["blocks"].as_array().expect("blocks") {
        let text = b["text"]["text"].as_str().unwrap_or("");
        match b["type"].as_str() {
            Some("header") => rows.push_str(&format!("<div class=h>{}</div>", html_escape(text))),
            _ => {
                let (url, label) = text
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .split_once('|')
                    .unwrap_or(("", text));
                rows.push_str(&format!(
                    "<div class=s>• <a href=\"{url}\">{label}</a></div>"
                ));
            }
        }
    }
    format!(
        "<!DOCTYPE html><meta charset=utf-8><style>body{{font:15px/1.5 Lato,Arial,sans-serif;margin:24px;color:#1d1c1d}}\
         .m{{display:flex;gap:10px;max-width:720px}}.a{{width:36px;height:36px;border-radius:6px;background:#2563eb;color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center}}\
         .n{{font-weight:900}}.app{{font-size:11px;background:#e8e8e8;border-radius:3px;padding:0 3px;margin-left:4px;color:#616061}}.h{{font-weight:900;font-size:17px;margin:4px 0}}a{{color:#1264a3;text-decoration:none}}</style>\
         <div class=m><div class=a>OK</div><div><span class=n>okrsync</span><span class=app>APP</span><div>{rows}</div></div></div>"
    )
}

/// What Teams shows for the Adaptive Card: its TextBlocks, `[text](url)` as links.
fn teams_preview(msg: &serde_json::Value) -> String {
    let body = msg["attachments"][0]["content"]["body"]
        .as_array()
        .expect("card body");
    let mut rows = String::new();
    for b in body {
        let text = b["text"].as_str().unwrap_or("");
        let bold = b["weight"].as_str() == Some("Bolder");
        let html = match text.strip_prefix('[').and_then(|t| t.rsplit_once("](")) {
            Some((label, url)) => format!(
                "<a href=\"{}\">{}</a>",
                html_escape(url.trim_end_matches(')')),
                html_escape(label)
            ),
            None => html_escape(text),
        };
        rows.push_str(&format!(
            "<p class=\"{}\">{html}</p>",
            if bold { "t" } else { "" }
        ));
    }
    format!(
        "<!DOCTYPE html><meta charset=utf-8><style>body{{font:14px/1.45 'Segoe UI',Arial,sans-serif;margin:24px;background:#f5f5f5}}\
         .c{{background:#fff;border-radius:6px;box-shadow:0 1px 3px #0003;padding:14px 18px;max-width:640px}}.t{{font-weight:700;font-size:16px}}p{{margin:6px 0}}a{{color:#5b5fc7}}</style>\
         <div class=c>{rows}</div>"
    )
}

/// The messages a storm sends, as Slack, Teams and an email client show them, for
/// docs/notifications.md (`target/tmp/browser/notify-*.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_messages_as_received() {
    let profile = tempfile::tempdir().expect("profile");
    let Some((_driver, c)) = start_browser(profile.path()).await else {
        return;
    };
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/{which}",
        axum::routing::post(
            move |axum::extract::Path(which): axum::extract::Path<String>, body: String| {
                let sink = sink.clone();
                async move {
                    sink.lock().expect("lock").push((which, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let smtp = crate::notify::Smtp::default();
    let smtp_port = smtp.start().await;
    let okrs = r#"
[[objective]]
id = "emea"
title = "Win EMEA"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Checkout v2 shipped"
measure = "completion"

[[objective.kr]]
id = "emea.count"
title = "Two payment methods live"
measure = "count"
target = 2

[[rule]]
krs = ["emea.checkout", "emea.count"]
[rule.match]
project = "PAY"
"#;
    let env = TestEnv::new(Db::Sqlite, okrs, SourceOpts::default()).await;
    for (file, url) in [
        ("slack-url", format!("http://{addr}/slack")),
        ("teams-url", format!("http://{addr}/teams")),
        ("smtp-url", format!("smtp://127.0.0.1:{smtp_port}?tls=none")),
    ] {
        std::fs::write(env.dir.path().join(file), url).expect("url");
    }
    let config = std::fs::read_to_string(&env.config).expect("config");
    let config = config.replace(
        "[server]\n",
        "[server]\npublic_url = \"https://okr.acme.com\"\n",
    );
    std::fs::write(
        &env.config,
        format!(
            "{config}\n[[notify]]\nid = \"slack\"\nkind = \"slack\"\nurl_file = \"slack-url\"\n\
             [[notify]]\nid = \"teams\"\nkind = \"teams\"\nurl_file = \"teams-url\"\n\
             [[notify]]\nid = \"mail\"\nkind = \"email\"\nto = [\"lead@acme.com\"]\nfrom = \"okrsync <okrsync@acme.com>\"\nsmtp_url_file = \"smtp-url\"\n"
        ),
    )
    .expect("config");
    env.seed([
        issue(
            1,
            "PAY-1",
            "Card form",
            "in_progress",
            None,
            &[],
            minute(9, 0),
            None,
        ),
        issue(
            2,
            "PAY-2",
            "Wallets",
            "in_progress",
            None,
            &[],
            minute(9, 1),
            None,
        ),
    ]);
    assert!(env.cli(&["sync"], None).status.success());
    for key in ["PAY-1", "PAY-2"] {
        env.sim.edit(key, |i| {
            i.status = "Done".into();
            i.status_category = "done".into();
            i.resolved = Some(chrono::Utc::now());
        });
    }
    let out = env.cli(&["sync"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = got.lock().expect("lock").clone();
    let body = |which: &str| -> serde_json::Value {
        let (_, b) = got.iter().find(|(w, _)| w == which).expect(which);
        serde_json::from_str(b).expect("json")
    };
    let mails = smtp.mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1, "one email for the storm");
    let raw = mails[0].1.replace("\r\n", "\n");
    let html_part = raw
        .split("\n--")
        .find(|p| p.to_ascii_lowercase().contains("content-type: text/html"))
        .expect("an HTML part");
    let subject = raw
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .to_string();
    let email = format!(
        "<!DOCTYPE html><meta charset=utf-8><style>body{{font:14px Arial,sans-serif;margin:0}}.hd{{background:#f3f4f6;padding:12px 20px;border-bottom:1px solid #ddd}}</style>\
         <div class=hd><b>{}</b><br>From: okrsync &lt;okrsync@acme.com&gt; · To: lead@acme.com</div>{}",
        html_escape(&subject),
        mime_body(html_part.split_once('\n').map(|(_, r)| r).unwrap_or(html_part))
    );
    for (name, html) in [
        ("notify-slack", slack_preview(&body("slack"))),
        ("notify-teams", teams_preview(&body("teams"))),
        ("notify-email", email),
    ] {
        let path = artefacts().join(format!("{name}.html"));
        std::fs::write(&path, html).expect("preview");
        c.set_window_size(900, 420).await.expect("size");
        c.goto(&format!("file://{}", path.display()))
            .await
            .expect("open");
        let text = c
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text");
        assert!(text.contains("Checkout v2 shipped"), "{name}: {text}");
        assert!(text.contains("Two payment methods live"), "{name}: {text}");
        screenshot(&c, &format!("{name}.png")).await;
    }
    c.close().await.expect("close");
}
