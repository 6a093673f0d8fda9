//! Entry points for the fuzz targets in `fuzz/` (`cargo fuzz`, feature `fuzzing`): each
//! takes the fuzzer's bytes to one of okrsync's readers of untrusted input and checks
//! what must hold whatever the input — no panic, an error in words rather than a silent
//! wrong value, and where a second, plainer implementation exists, the same answer.
//!
//! | target | what it reads |
//! | --- | --- |
//! | `jira_page` | a Jira search page (Cloud or Data Center) into items |
//! | `github_issues` | a GitHub `/repos/{repo}/issues` page into items |
//! | `github_project` | a Projects v2 GraphQL answer into field values |
//! | `sheet_answer` | a Google Sheets `values:batchGet` answer into rows and metric cells |
//! | `csv` | CSV bytes into rows and metric cells |
//! | `spreadsheet` | `.xlsx`/`.ods` bytes into rows and metric cells |
//! | `config` | `okrsync.toml` through the settings reader |
//! | `okr_file` | an OKR and rule file through the OKR reader |
//! | `rules` | rules and items through the matcher, compared with the plain loop |
//! | `webhook` | a request to `POST /hooks/github` or `/hooks/jira`, in process |
//!
//! The unit tests at the end replay every committed corpus file (`fuzz/corpus/<target>/`)
//! through its entry, so `cargo test` keeps the corpora meaningful and turns every
//! crash the fuzzer once found into a regression test.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::model::{Category, Item, ItemKind};
use crate::rules::{reference, Condition, RuleDef, RuleSet};
use crate::settings::{SecretRef, Secrets, Settings};
use crate::sources::github::{GitHubAuth, GitHubSettings};
use crate::sources::jira::{JiraFlavor, JiraSettings};
use crate::sources::sheet::{items_from, Reference, RowItems, Workbook};

/// A directory of this process's own for the readers that take paths (under `target/`
/// for the unit tests, the system's temporary directory for the fuzzer).
fn scratch(name: &str) -> PathBuf {
    let base = if cfg!(test) {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-scratch")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("okrsync-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn jira_settings(flavor: JiraFlavor) -> JiraSettings {
    JiraSettings {
        url: url::Url::parse("https://acme.atlassian.net").expect("url"),
        flavor,
        email: Some("bot@acme.com".into()),
        token: SecretRef::value("t"),
        jql: "project = PAY".into(),
        story_points_field: Some("customfield_10016".into()),
        epic_field: Some("customfield_10014".into()),
        extra_fields: vec!["customfield_10050".into(), "priority".into()],
        page_size: 100,
    }
}

/// A Jira search page: the page reader either refuses it or reads every issue, each
/// into an item or a message naming what is wrong; the typed reader and the reading
/// through `Value` agree on every item both read.
pub fn jira_page(data: &[u8]) {
    for flavor in [JiraFlavor::Cloud, JiraFlavor::DataCenter] {
        let settings = jira_settings(flavor);
        let Ok(page) = crate::sources::jira::read_page(data, &settings) else {
            continue;
        };
        let loose: Option<crate::sources::jira::SearchPage> = serde_json::from_slice(data).ok();
        for (n, issue) in page.issues.into_iter().enumerate() {
            let typed = issue.into_item("jira", &settings);
            if let Err(e) = &typed {
                assert!(!e.is_empty(), "an issue refused without a message");
            }
            let Some(raw) = loose.as_ref().and_then(|p| p.issues.get(n)) else {
                continue;
            };
            if let (Ok(a), Ok(b)) = (
                &typed,
                &crate::sources::jira::parse_issue(raw, "jira", &settings),
            ) {
                assert_eq!(a, b, "the typed and the Value reading differ");
            }
        }
    }
}

fn github_settings() -> GitHubSettings {
    GitHubSettings {
        api_url: url::Url::parse("https://api.github.com").expect("url"),
        auth: GitHubAuth::Token(SecretRef::value("t")),
        repos: vec!["acme/web".into()],
        per_page: 100,
        estimate_label: Some(regex::Regex::new(r"^points:(\d+(?:\.\d+)?)$").expect("regex")),
        rate_limit_floor: 10,
        projects: vec![],
        estimate_field: None,
    }
}

/// A GitHub issues page: refused, or every issue read into an item or a message; the
/// typed reader and the reading through `Value` agree on every item both read.
pub fn github_issues(data: &[u8]) {
    let settings = github_settings();
    let Ok(issues) = crate::sources::github::read_page(data) else {
        return;
    };
    let loose: Option<Vec<Value>> = serde_json::from_slice(data).ok();
    for (n, issue) in issues.iter().enumerate() {
        let _ = issue.repository_url();
        let typed = issue.to_item("github", "acme/web", &settings);
        if let Err(e) = &typed {
            assert!(!e.is_empty(), "an issue refused without a message");
        }
        let Some(raw) = loose.as_ref().and_then(|l| l.get(n)) else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (
            &typed,
            &crate::sources::github::parse_issue(raw, "github", "acme/web", &settings),
        ) {
            assert_eq!(a, b, "the typed and the Value reading differ");
        }
    }
}

/// A Projects v2 GraphQL answer: a page of field values or a message.
pub fn github_project(data: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match crate::sources::github::projects::parse_page(&answer, "acme") {
        Ok(page) => {
            for item in &page.items {
                let _ = format!("{item:?}");
            }
        }
        Err(e) => assert!(!e.is_empty(), "a page refused without a message"),
    }
}

/// The metric references a sheet source's KRs may read, of every form.
const REFERENCES: &[&str] = &[
    "A1",
    "B2",
    "Sheet1!C3",
    "Metrics!B2",
    "Metrics[row=Signups][column=value]",
    "[row=Revenue][column=Value]",
    "Sheet1!ZZ1000",
];

fn row_items() -> RowItems {
    RowItems {
        sheet: None,
        key: "Key".into(),
        title: Some("Title".into()),
        category: Some("Status".into()),
        estimate: Some("Points".into()),
        labels: Some("Labels".into()),
        assignee: Some("Owner".into()),
    }
}

/// What a sheet source does with a workbook: its rows as items, and each metric cell.
fn read_workbook(book: &Workbook) {
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
    match items_from(book, &row_items(), "sheet", "https://sheets.invalid/x", now) {
        Ok(items) => {
            for item in &items {
                assert!(!item.key.is_empty(), "a row item without a key");
            }
        }
        Err(e) => assert!(!e.is_empty(), "rows refused without a message"),
    }
    for r in REFERENCES {
        let r = Reference::parse(r).expect("a valid reference");
        match book.number(&r) {
            Ok(n) => assert!(n.is_finite(), "a metric cell read as {n}"),
            Err(e) => assert!(!e.is_empty(), "a cell refused without a message"),
        }
    }
}

/// A Google Sheets `values:batchGet` answer.
pub fn sheet_answer(data: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    read_workbook(&crate::sources::sheet::google::workbook_from_answer(
        &answer,
    ));
}

/// CSV bytes; the first line is also read as a metric reference, as `check` reads one.
pub fn csv(data: &[u8]) {
    if let Some(line) = data.split(|b| *b == b'\n').next() {
        if let Ok(text) = std::str::from_utf8(line) {
            if let Err(e) = Reference::parse(text) {
                assert!(!e.is_empty(), "a reference refused without a message");
            }
        }
    }
    if let Ok(book) = Workbook::from_csv("data", data) {
        read_workbook(&book);
    }
}

/// `.xlsx`, `.xls` or `.ods` bytes. The reader turns a panic of the spreadsheet library
/// into an error; libFuzzer's panic hook would abort before that, so a quiet hook stands in
/// while the bytes are read (a panic anywhere else still ends the run).
pub fn spreadsheet(data: &[u8]) {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let book = Workbook::from_spreadsheet("fuzz.xlsx", data.to_vec());
    std::panic::set_hook(hook);
    match book {
        Ok(book) => read_workbook(&book),
        Err(e) => assert!(!e.is_empty(), "a spreadsheet refused without a message"),
    }
}

/// Whether a config or OKR text would have the reader walk the file system (`**`
/// globs): slow, not wrong, so such inputs are skipped.
fn walks(text: &[u8]) -> bool {
    text.windows(2).any(|w| w == b"**")
}

fn check_report(result: Result<Settings, crate::settings::ConfigReport>) {
    if let Err(report) = result {
        assert!(!report.problems.is_empty(), "refused without a problem");
        for p in &report.problems {
            assert!(!p.message.is_empty(), "a problem without a message: {p:?}");
        }
        let _ = report.to_string();
    }
}

/// `okrsync.toml` as written by a user: loaded (secrets deferred) or refused with
/// problems that each say something.
pub fn config(data: &[u8]) {
    if walks(data) {
        return;
    }
    let dir = scratch("config");
    let path = dir.join("okrsync.toml");
    std::fs::write(&path, data).expect("write the config");
    check_report(Settings::load_with(&path, Secrets::Defer));
}

/// The config the OKR and webhook targets share: a source of each kind, the database
/// in `dir`.
fn config_text(dir: &Path) -> String {
    format!(
        r#"
okrs = ["okrs/*.toml"]
[database]
url = "sqlite://{}/okrsync.db"
[log]
level = "error"
[sources.jira]
kind = "jira"
url = "http://127.0.0.1:9"
email = "bot@acme.com"
token_file = "token"
webhook_secret_file = "hook-secret"
[sources.github]
kind = "github"
api_url = "http://127.0.0.1:9"
token_file = "token"
repos = ["acme/web"]
webhook_secret_file = "hook-secret"
[sources.metrics]
kind = "sheet"
path = "metrics.csv"
"#,
        dir.display()
    )
}

fn okr_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("okrs");
        std::fs::create_dir_all(dir.join("okrs")).expect("okrs dir");
        std::fs::write(dir.join("okrsync.toml"), config_text(&dir)).expect("config");
        std::fs::write(dir.join("metrics.csv"), "name,value\nSignups,10\n").expect("csv");
        dir
    })
}

/// An OKR and rule file beside a config with one source of each kind: loaded or refused
/// with problems that each say something.
pub fn okr_file(data: &[u8]) {
    if walks(data) {
        return;
    }
    let dir = okr_dir();
    std::fs::write(dir.join("okrs/fuzz.toml"), data).expect("write the OKR file");
    check_report(Settings::load_with(
        &dir.join("okrsync.toml"),
        Secrets::Defer,
    ));
}

/// Rules and items, in the text form the corpus keeps: TOML `[[rule]]` tables (`kr` or
/// `krs`, `exempt`, `source`, `[rule.match]`), a line `===`, then items as JSON (one
/// object or an array). Every rule whose conditions parse joins the set; the indexed
/// evaluation must say exactly what the plain loop over every rule says, for every item.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules_text, items_text) = text.split_once("\n===").unwrap_or((text, ""));
    let Ok(doc) = rules_text.parse::<toml::Table>() else {
        return;
    };
    let mut defs = Vec::new();
    for (n, t) in doc
        .get("rule")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
        .enumerate()
    {
        let mut krs: Vec<String> = match t.get("krs").or_else(|| t.get("kr")) {
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        krs.dedup();
        let mut conditions = Vec::new();
        if let Some(m) = t.get("match").and_then(toml::Value::as_table) {
            for (k, v) in m {
                match Condition::parse(k, v) {
                    Ok(c) => conditions.push(c),
                    Err(e) => assert!(!e.is_empty(), "a condition refused without a message"),
                }
            }
        }
        defs.push(RuleDef {
            id: t
                .get("id")
                .and_then(toml::Value::as_str)
                .map_or_else(|| format!("fuzz.toml#{}", n + 1), str::to_string)
                .into(),
            krs: krs.into_iter().map(crate::model::KrId::from).collect(),
            exempt: t.get("exempt").and_then(toml::Value::as_bool) == Some(true),
            source: t
                .get("source")
                .and_then(toml::Value::as_str)
                .map(crate::model::SourceId::from),
            conditions,
            file: "fuzz.toml".into(),
        });
    }
    let set = RuleSet::new(defs);
    let items: Vec<Item> = match serde_json::from_str::<Value>(items_text.trim_start_matches('\n'))
    {
        Ok(Value::Array(list)) => list.iter().map(item_from).collect(),
        Ok(v @ Value::Object(_)) => vec![item_from(&v)],
        _ => vec![item_from(&Value::Null)],
    };
    let mut evaluator = set.evaluator();
    for item in &items {
        let want = reference::evaluate(&set, item);
        assert_eq!(set.evaluate(item), want, "{set:#?}\n{item:#?}");
        assert_eq!(evaluator.evaluate(item).to_evaluation(), want, "{item:#?}");
        for rule in set.rules() {
            assert_eq!(
                rule.matches(item),
                reference::rule_matches(rule, item),
                "{rule:#?}\n{item:#?}"
            );
        }
    }
}

/// An item from whatever JSON the fuzzer wrote: each known field taken when it has the
/// right type, the rest left at their defaults.
fn item_from(v: &Value) -> Item {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let list = |k: &str| -> Vec<String> {
        match v.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(x)) => vec![x.clone()],
            _ => Vec::new(),
        }
    };
    Item {
        source: s("source").unwrap_or_else(|| "jira".into()),
        ext_id: s("ext_id").unwrap_or_default(),
        key: s("key").unwrap_or_else(|| "PAY-1".into()),
        kind: match s("kind").as_deref() {
            Some("pull_request") => ItemKind::PullRequest,
            Some("epic") => ItemKind::Epic,
            Some("row") => ItemKind::Row,
            _ => ItemKind::Issue,
        },
        title: s("title").unwrap_or_default(),
        url: s("url").unwrap_or_default(),
        project: s("project").unwrap_or_default(),
        item_type: s("type").unwrap_or_default(),
        status: s("status").unwrap_or_default(),
        category: match s("category").as_deref() {
            Some("done") => Category::Done,
            Some("in_progress") => Category::InProgress,
            _ => Category::Todo,
        },
        labels: list("labels"),
        components: list("components"),
        epic: s("epic"),
        parent: s("parent"),
        milestone: s("milestone"),
        assignee: s("assignee"),
        estimate: v.get("estimate").and_then(Value::as_f64),
        created: None,
        updated: chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
        resolved: None,
        fields: v
            .get("fields")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        abandoned: v.get("abandoned").and_then(Value::as_bool) == Some(true),
    }
}

/// The webhook secret of the in-process server.
const HOOK_SECRET: &str = "fuzz-hook-secret";

struct Hooks {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn hooks() -> &'static Hooks {
    static HOOKS: OnceLock<Hooks> = OnceLock::new();
    HOOKS.get_or_init(|| {
        let dir = scratch("hooks");
        std::fs::create_dir_all(dir.join("okrs")).expect("okrs dir");
        std::fs::write(dir.join("okrsync.toml"), config_text(&dir)).expect("config");
        std::fs::write(dir.join("metrics.csv"), "name,value\nSignups,10\n").expect("csv");
        std::fs::write(dir.join("hook-secret"), HOOK_SECRET).expect("secret");
        std::fs::write(dir.join("token"), "fuzz-token").expect("token");
        std::fs::write(
            dir.join("okrs/okrs.toml"),
            "[[objective]]\nid = \"o\"\ntitle = \"O\"\nperiod = \"2026-Q4\"\n\
             [[objective.kr]]\nid = \"o.k\"\ntitle = \"K\"\nmeasure = \"completion\"\n\
             [[rule]]\nkr = \"o.k\"\n[rule.match]\nlabels = \"k\"\n",
        )
        .expect("okrs");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let settings = match Settings::load_with(&dir.join("okrsync.toml"), Secrets::Defer) {
                Ok(s) => std::sync::Arc::new(s),
                Err(report) => panic!("the webhook target's config is invalid:\n{report}"),
            };
            let store = crate::store::Store::connect(&settings.database)
                .await
                .expect("a store");
            store.migrate().await.expect("migrate");
            let engine = crate::sync::Engine::new(settings, store).expect("an engine");
            engine.prepare().await.expect("prepare");
            let app = crate::server::Application::build(engine, ([127, 0, 0, 1], 0).into())
                .await
                .expect("an application");
            app.router()
        });
        Hooks { runtime, router }
    })
}

/// A webhook request. The first byte chooses: bit 0 the hook (GitHub or Jira), bit 1
/// whether the harness signs the body with the right secret, bit 2 the legacy header
/// name, bit 3 a GitHub `ping`. Without signing, the text up to the first newline is
/// the signature header; the rest is the body. A signed request is queued (202, or 200
/// for a ping); any other is refused with 401; nothing else is ever answered.
pub fn webhook(data: &[u8]) {
    use tower::ServiceExt;

    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let github = flags & 1 == 0;
    let sign = flags & 2 != 0;
    let legacy = flags & 4 != 0;
    let ping = flags & 8 != 0 && github;
    let (signature, body): (Vec<u8>, &[u8]) = if sign {
        (
            crate::server::hook_signature(HOOK_SECRET.as_bytes(), rest).into_bytes(),
            rest,
        )
    } else {
        match rest.iter().position(|b| *b == b'\n') {
            Some(at) => (rest[..at].to_vec(), &rest[at + 1..]),
            None => (Vec::new(), rest),
        }
    };
    let mut request = axum::http::Request::post(if github {
        "/hooks/github"
    } else {
        "/hooks/jira"
    })
    .header("content-type", "application/json");
    if ping {
        request = request.header("x-github-event", "ping");
    }
    let header = if legacy {
        "x-hub-signature"
    } else {
        "x-hub-signature-256"
    };
    let with_signature = match axum::http::HeaderValue::from_bytes(&signature) {
        Ok(v) if !signature.is_empty() => {
            request = request.header(header, v);
            true
        }
        _ => false,
    };
    let request = request
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request");
    let hooks = hooks();
    let status = hooks
        .runtime
        .block_on(hooks.router.clone().oneshot(request))
        .expect("an answer")
        .status()
        .as_u16();
    if sign {
        assert_eq!(status, if ping { 200 } else { 202 }, "a signed hook");
    } else {
        assert!(
            matches!(status, 200 | 202 | 401),
            "an unsigned hook answered {status}"
        );
        if !with_signature {
            assert_eq!(status, 401, "a hook without a signature");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every file of `fuzz/corpus/<target>/` through `entry`.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} holds no seed", dir.display());
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{} fails its target", file.display());
        }
    }

    #[test]
    fn jira_page_corpus() {
        replay("jira_page", super::jira_page);
    }

    #[test]
    fn github_issues_corpus() {
        replay("github_issues", super::github_issues);
    }

    #[test]
    fn github_project_corpus() {
        replay("github_project", super::github_project);
    }

    #[test]
    fn sheet_answer_corpus() {
        replay("sheet_answer", super::sheet_answer);
    }

    #[test]
    fn csv_corpus() {
        replay("csv", super::csv);
    }

    #[test]
    fn spreadsheet_corpus() {
        replay("spreadsheet", super::spreadsheet);
    }

    #[test]
    fn config_corpus() {
        replay("config", super::config);
    }

    #[test]
    fn okr_file_corpus() {
        replay("okr_file", super::okr_file);
    }

    #[test]
    fn rules_corpus() {
        replay("rules", super::rules);
    }

    #[test]
    fn webhook_corpus() {
        replay("webhook", super::webhook);
    }
}
