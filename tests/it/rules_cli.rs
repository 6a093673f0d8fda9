//! Rules as code over the real binary: `rules test` with case files (no database, no
//! secret), and `lint` (CLI, API, dashboard) on scenarios made for each finding.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{issue, Db, Served, SourceOpts, TestEnv};

const NOW: &str = "2026-11-15T12:00:00Z";

/// Two objectives: emea (checkout, bugs, a manual NPS) and web (launch), one rule per KR
/// and an exempt rule.
const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Ship the EMEA checkout"
measure = "completion"

[[objective.kr]]
id = "emea.bugs"
title = "Close 4 customer bugs"
measure = "count"
target = 4

[[objective.kr]]
id = "emea.nps"
title = "Partner NPS from 20 to 40"
measure = "manual"
start = 20
target = 40

[[objective]]
id = "web"
title = "Self-serve onboarding"
period = "2026-Q4"

[[objective.kr]]
id = "web.launch"
title = "Launch onboarding"
measure = "milestone"

[[rule]]
id = "checkout"
kr = "emea.checkout"
source = "jira"
[rule.match]
labels = "checkout"
type = { not = "Sub-task" }

[[rule]]
id = "bugs"
kr = "emea.bugs"
[rule.match]
type = "Bug"
"fields.customfield_10050" = "Customer"

[[rule]]
id = "launch"
kr = "web.launch"
[rule.match]
labels = "onboarding"

[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#;

// ---- rules test -------------------------------------------------------------------------

/// A config whose Jira token variable is not set: `rules test` must not need it.
fn rules_dir(okrs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("config/okrs/tests")).expect("dirs");
    std::fs::write(
        dir.path().join("config/okrsync.toml"),
        r#"okrs = ["okrs/*.toml"]
[database]
url = "sqlite://never-opened.db"
[sources.jira]
kind = "jira"
url = "https://acme.atlassian.net"
email = "bot@acme.com"
token_env = "OKRSYNC_TEST_SURELY_UNSET_VARIABLE"
jql = "project = PAY"
"#,
    )
    .expect("config");
    std::fs::write(dir.path().join("config/okrs/team.toml"), okrs).expect("okrs");
    dir
}

fn rules_test(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .current_dir(dir)
        .arg("--config")
        .arg("config/okrsync.toml")
        .args(["rules", "test"])
        .args(args)
        .env_remove("OKRSYNC_TEST_SURELY_UNSET_VARIABLE")
        .env_remove("OKRSYNC_CONFIG")
        .output()
        .expect("run okrsync")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PASSING: &str = r#"
[[case]]
name = "a checkout story moves the checkout KR"
item = { source = "jira", key = "PAY-1", project = "PAY", type = "Story", labels = ["emea", "checkout"] }
moves = ["emea.checkout"]

[[case]]
name = "a customer bug moves the bugs KR"
moves = ["emea.bugs"]
[case.item]
source = "jira"
key = "PAY-2"
type = "Bug"
fields = { customfield_10050 = "Customer" }

[[case]]
name = "the same bug, its field written as a quoted key"
item = { key = "PAY-3", type = "Bug", "fields.customfield_10050" = "Customer" }
moves = ["emea.bugs"]
exempt = false

[[case]]
name = "a checkout sub-task moves nothing"
item = { source = "jira", key = "PAY-4", type = "Sub-task", labels = "checkout" }
moves = []

[[case]]
name = "on-call work is exempt"
item = { source = "jira", key = "PAY-5", labels = ["on-call"], category = "done", resolved = "2026-11-02" }
exempt = true
"#;

#[test]
fn rules_test_passes_when_every_case_holds_and_needs_no_secret_or_database() {
    let dir = rules_dir(OKRS);
    std::fs::write(dir.path().join("config/okrs/tests/team.toml"), PASSING).expect("cases");
    // The default: tests/*.toml beside the OKR files (config/okrs/tests/).
    let out = rules_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "5 cases passed\n");
    assert!(
        !dir.path().join("never-opened.db").exists()
            && !dir.path().join("config/never-opened.db").exists(),
        "rules test opened the database"
    );
    // A file given by name, and a folder of them.
    let out = rules_test(dir.path(), &["config/okrs/tests/team.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = rules_test(dir.path(), &["config/okrs/tests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn rules_test_names_a_case_that_moves_the_wrong_kr() {
    let dir = rules_dir(OKRS);
    let cases = r#"[[case]]
name = "a checkout story moves the checkout KR"
item = { source = "jira", key = "PAY-1", type = "Story", labels = ["checkout"] }
moves = ["emea.checkout"]

[[case]]
name = "a checkout bug is a bug, not checkout work"
item = { source = "jira", key = "PAY-9", type = "Bug", labels = ["checkout", "on-call"], "fields.customfield_10050" = "Customer" }
moves = ["emea.bugs"]

[[case]]
name = "a launch story is exempt"
item = { source = "jira", key = "WEB-1", labels = ["onboarding"] }
exempt = true
"#;
    std::fs::write(dir.path().join("config/okrs/tests/wrong.toml"), cases).expect("cases");
    let out = rules_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let file = PathBuf::from("config/okrs/tests/wrong.toml");
    let expected = format!(
        "FAILED {f}:6: case \"a checkout bug is a bug, not checkout work\"\n\
         \x20   expected: moves emea.bugs\n\
         \x20   got:      moves emea.bugs, emea.checkout, exempt by \"on-call\"\n\
         \x20   matched rules: \"checkout\" (→ emea.checkout), \"bugs\" (→ emea.bugs), \"on-call\" (exempt)\n\
         FAILED {f}:11: case \"a launch story is exempt\"\n\
         \x20   expected: exempt\n\
         \x20   got:      moves web.launch, not exempt\n\
         \x20   matched rules: \"launch\" (→ web.launch)\n\
         2 of 3 cases failed\n",
        f = file.display()
    );
    assert_eq!(stdout, expected);
    assert!(
        !stdout.contains("a checkout story moves"),
        "a passing case is not named"
    );
}

#[test]
fn rules_test_refuses_an_invalid_case_file_with_every_problem() {
    let dir = rules_dir(OKRS);
    let cases = r#"[[case]]
name = "typos everywhere"
item = { source = "jirra", key = 12, lables = ["x"], category = "finished" }
moves = ["emea.nope", "emea.nps"]
colour = "red"

[[case]]
name = "says nothing"
item = { key = "PAY-1" }

[[case]]
name = "moves is not a list"
item = { key = "PAY-1", estimate = "many" }
moves = "emea.bugs"
"#;
    std::fs::write(dir.path().join("config/okrs/tests/bad.toml"), cases).expect("cases");
    let out = rules_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let f = PathBuf::from("config/okrs/tests/bad.toml")
        .display()
        .to_string();
    for expected in [
        format!("{f}:3: case[0].item.source: case \"typos everywhere\": unknown source \"jirra\"; configured sources: jira"),
        format!("{f}:3: case[0].item.key: case \"typos everywhere\": expected a string, found an integer"),
        format!("{f}:3: case[0].item.lables: case \"typos everywhere\": unknown key"),
        format!("{f}:3: case[0].item.category: case \"typos everywhere\": expected one of todo, in_progress, done, found \"finished\""),
        format!("{f}:4: case[0].moves[0]: case \"typos everywhere\": unknown key result \"emea.nope\""),
        format!("{f}:4: case[0].moves[1]: case \"typos everywhere\": key result \"emea.nps\" is measured as manual"),
        format!("{f}:5: case[0].colour: case \"typos everywhere\": unknown key; expected one of: exempt, item, moves, name"),
        format!("{f}:7: case[1]: case \"says nothing\": says nothing to check"),
        format!("{f}:13: case[2].item.estimate: case \"moves is not a list\": expected a number, found \"many\""),
        format!("{f}:14: case[2].moves: case \"moves is not a list\": expected a list of key result ids"),
    ] {
        assert!(err.contains(&expected), "missing «{expected}» in:\n{err}");
    }
    assert!(
        err.starts_with("the configuration has 10 problems:"),
        "{err}"
    );
    // Not valid TOML, and no case file at all.
    std::fs::write(dir.path().join("config/okrs/tests/bad.toml"), "[[case]\n").expect("cases");
    let out = rules_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&format!("{f}:1: not valid TOML")));
    std::fs::remove_file(dir.path().join("config/okrs/tests/bad.toml")).expect("rm");
    let out = rules_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no case file found (looked for config/okrs/tests/*.toml)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_example_config_s_cases_hold() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--config", "config/okrsync.toml", "rules", "test"])
        .env_remove("JIRA_TOKEN")
        .env_remove("OKRSYNC_CONFIG")
        .output()
        .expect("run okrsync");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with("cases passed\n"));
}

// ---- lint -------------------------------------------------------------------------------

fn d(m: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, day, 9, 0, 0)
        .single()
        .expect("date")
}

/// Every rule moves or exempts an item of its own; PAY-4 moves KRs of two objectives,
/// which is no double count.
fn clean_issues() -> Vec<okrsync::simulator::jira::SimIssue> {
    let mut bug = issue(
        2,
        "PAY-2",
        "A customer bug",
        "done",
        None,
        &[],
        d(11, 2),
        Some(d(11, 2)),
    );
    bug.issue_type = "Bug".into();
    bug.custom
        .insert("customfield_10050".into(), json!({"value": "Customer"}));
    vec![
        issue(
            1,
            "PAY-1",
            "Checkout",
            "in_progress",
            None,
            &["checkout"],
            d(11, 1),
            None,
        ),
        bug,
        issue(
            3,
            "PAY-3",
            "Pager",
            "in_progress",
            None,
            &["on-call"],
            d(11, 3),
            None,
        ),
        issue(
            4,
            "PAY-4",
            "Checkout onboarding",
            "todo",
            None,
            &["checkout", "onboarding"],
            d(11, 3),
            None,
        ),
        issue(
            5,
            "WEB-1",
            "Signup",
            "done",
            None,
            &["onboarding"],
            d(11, 2),
            Some(d(11, 2)),
        ),
    ]
}

/// Syncs the issues with these OKRs and runs `lint --json`, `lint` and `check`.
async fn lint_of(
    db: Db,
    okrs: &str,
    issues: Vec<okrsync::simulator::jira::SimIssue>,
) -> (Value, String, String, TestEnv) {
    let env = TestEnv::new(db, okrs, SourceOpts::default()).await;
    env.seed(issues);
    let out = env.cli(&["sync"], Some(NOW));
    assert!(out.status.success(), "sync failed: {}", text(&out.stderr));
    let doc = crate::helpers::json(&env.cli(&["lint", "--json"], Some(NOW)));
    let table = env.cli(&["lint"], Some(NOW));
    assert!(table.status.success(), "{}", text(&table.stderr));
    let check = env.cli(&["check"], Some(NOW));
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    (doc, text(&table.stdout), text(&check.stdout), env)
}

fn warnings(check: &str) -> Vec<&str> {
    check
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

async fn lint_is_silent_on_clean_rules(db: Db) {
    let (doc, table, check, _env) = lint_of(db, OKRS, clean_issues()).await;
    assert_eq!(doc, json!({"findings": []}));
    assert!(table.starts_with("No findings"), "{table}");
    assert!(warnings(&check).is_empty(), "{check}");
}
both_backends!(lint_is_silent_on_clean_rules);

async fn lint_finds_an_item_counted_twice_in_one_objective(db: Db) {
    let mut issues = clean_issues();
    // A checkout bug: the checkout rule and the bugs rule both take it, inside emea.
    let mut twice = issue(
        6,
        "PAY-6",
        "Checkout crash",
        "done",
        None,
        &["checkout"],
        d(11, 4),
        Some(d(11, 4)),
    );
    twice.issue_type = "Bug".into();
    twice
        .custom
        .insert("customfield_10050".into(), json!({"value": "Customer"}));
    issues.push(twice);
    let (doc, table, check, _env) = lint_of(db, OKRS, issues).await;
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["kr"], &f["rule"], &f["items"]),
        (
            &json!("double_count"),
            &json!("emea.checkout"),
            &Value::Null,
            &json!(["PAY-6"])
        ),
        "{f:#}"
    );
    let message = f["message"].as_str().expect("message");
    for part in [
        "1 item counts",
        "\"emea.checkout\"",
        "\"emea.bugs\"",
        "objective \"emea\"",
        "\"bugs\"",
        "\"checkout\"",
    ] {
        assert!(message.contains(part), "missing «{part}» in {message}");
    }
    assert!(
        table.contains("double_count: 1 item counts") && table.contains("items: PAY-6"),
        "{table}"
    );
    // Two rules that could meet on an item are not certain to: check says nothing.
    assert!(warnings(&check).is_empty(), "{check}");
}
both_backends!(lint_finds_an_item_counted_twice_in_one_objective);

async fn lint_finds_a_rule_that_matches_no_stored_item(db: Db) {
    let okrs = format!(
        "{OKRS}\n[[rule]]\nid = \"legacy\"\nkr = \"emea.checkout\"\n[rule.match]\nproject = \"OLD\"\n"
    );
    let (doc, _table, check, _env) = lint_of(db, &okrs, clean_issues()).await;
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["kr"], &f["rule"], &f["items"]),
        (
            &json!("dead_rule"),
            &json!("emea.checkout"),
            &json!("legacy"),
            &json!([])
        ),
        "{f:#}"
    );
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("rule \"legacy\" (okrs/test.toml) matches no stored item")),
        "{f:#}"
    );
    assert!(
        warnings(&check).is_empty(),
        "dead rules need the store: {check}"
    );
}
both_backends!(lint_finds_a_rule_that_matches_no_stored_item);

async fn lint_and_check_find_a_kr_no_rule_names(db: Db) {
    let okrs = OKRS.replace(
        "[[objective]]\nid = \"web\"",
        "[[objective.kr]]\nid = \"emea.partners\"\ntitle = \"Sign 5 partners\"\nmeasure = \"count\"\ntarget = 5\n\n[[objective]]\nid = \"web\"",
    );
    assert_ne!(okrs, OKRS);
    let (doc, _table, check, _env) = lint_of(db, &okrs, clean_issues()).await;
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["kr"], &f["rule"], &f["items"]),
        (
            &json!("kr_without_rule"),
            &json!("emea.partners"),
            &Value::Null,
            &json!([])
        ),
        "{f:#}"
    );
    // The manual emea.nps needs no rule and is not named.
    assert_eq!(
        warnings(&check),
        vec![format!(
            "warning: kr_without_rule: {}",
            f["message"].as_str().expect("message")
        )
        .as_str()],
        "{check}"
    );
    assert!(
        check.lines().next().is_some_and(|l| l.contains(": ok (")),
        "the ok line comes first: {check}"
    );
}
both_backends!(lint_and_check_find_a_kr_no_rule_names);

async fn lint_finds_a_rule_whose_every_item_is_exempt(db: Db) {
    // `pager` maps the on-call work to checkout, but the on-call rule exempts all of it.
    let okrs = format!(
        "{OKRS}\n[[rule]]\nid = \"pager\"\nkr = \"emea.checkout\"\n[rule.match]\nlabels = \"on-call\"\n"
    );
    let (doc, _table, check, _env) = lint_of(db, &okrs, clean_issues()).await;
    let findings = doc["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{doc:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["kind"], &f["kr"], &f["rule"], &f["items"]),
        (
            &json!("shadowed_rule"),
            &json!("emea.checkout"),
            &json!("pager"),
            &json!(["PAY-3"])
        ),
        "{f:#}"
    );
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("is exempt by rule \"on-call\"")),
        "{f:#}"
    );
    assert!(warnings(&check).is_empty(), "{check}");
}
both_backends!(lint_finds_a_rule_whose_every_item_is_exempt);

#[test]
fn check_warns_about_a_rule_that_maps_two_krs_of_one_objective() {
    let okrs = OKRS.replace(
        "kr = \"emea.checkout\"",
        "krs = [\"emea.checkout\", \"emea.bugs\", \"web.launch\"]",
    );
    let dir = rules_dir(&okrs);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .current_dir(dir.path())
        .args(["--config", "config/okrsync.toml", "check"])
        .env("OKRSYNC_TEST_SURELY_UNSET_VARIABLE", "set")
        .output()
        .expect("run okrsync");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        warnings(&stdout),
        vec![
            "warning: double_count: rule \"checkout\" (okrs/team.toml) maps every item it matches to \"emea.checkout\" and \"emea.bugs\" of objective \"emea\": each counts toward the objective more than once"
        ],
        "{stdout}"
    );
}

async fn lint_is_served_as_json_and_on_the_dashboard(db: Db) {
    let okrs = format!(
        "{OKRS}\n[[rule]]\nid = \"legacy\"\nkr = \"emea.checkout\"\n[rule.match]\nproject = \"OLD\"\n"
    );
    let env = TestEnv::new(db, &okrs, SourceOpts::default()).await;
    env.seed(clean_issues());
    let s = Served::start(&env).await;
    let resp = s.get("/api/v1/lint").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("etag"));
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["findings"][0]["kind"], "dead_rule", "{doc:#}");
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(1), "{doc:#}");
    let (status, page) = s.page("/lint").await;
    assert_eq!(status, 200);
    for part in [
        "<caption class=\"visually-hidden\">Findings about the rules</caption>",
        "Dead rule",
        "legacy",
        "<a href=\"/lint\" aria-current=\"page\">",
        "href=\"/kr/emea.checkout\"",
    ] {
        assert!(page.contains(part), "missing «{part}» in the page:\n{page}");
    }
    let openapi: Value = s
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert!(openapi["paths"]["/api/v1/lint"]["get"].is_object());
    assert!(openapi["components"]["schemas"]["LintDoc"].is_object());
    s.stop().await;
}
both_backends!(lint_is_served_as_json_and_on_the_dashboard);
