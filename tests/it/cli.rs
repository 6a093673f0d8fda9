//! The real binary: `check` reporting every problem, and the `--json` documents of SPEC.md
//! against a scenario whose numbers are computed by hand below.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{issue, Db, SourceOpts, TestEnv};

const NOW: &str = "2026-11-15T12:00:00Z";

const OKRS: &str = r#"
[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"

[[objective.kr]]
id = "emea.checkout"
title = "Ship the EMEA checkout"
measure = "completion"
weight_by = "estimate"

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
start = "2026-10-01"
end = "2026-12-31"

[[objective.kr]]
id = "web.launch"
title = "Launch onboarding"
measure = "milestone"

[[objective.kr]]
id = "web.points"
title = "Deliver 10 points of onboarding"
measure = "sum"
target = 10
weight = 3

[[rule]]
id = "checkout-epic"
kr = "emea.checkout"
source = "jira"
[rule.match]
epic = "PAY-1"

[[rule]]
id = "customer-bugs"
kr = "emea.bugs"
[rule.match]
type = "Bug"
labels = ["customer", "escalation"]

[[rule]]
krs = ["web.launch", "web.points"]
[rule.match]
labels = "onboarding"
"#;

fn d(m: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, day, 9, 0, 0)
        .single()
        .expect("date")
}

fn seed(env: &TestEnv) {
    let mut epic = issue(
        1,
        "PAY-1",
        "EMEA checkout",
        "in_progress",
        None,
        &[],
        d(10, 2),
        None,
    );
    epic.issue_type = "Epic".into();
    let child = |id, key: &str, cat, pts, resolved| {
        let mut i = issue(
            id,
            key,
            &format!("Checkout {key}"),
            cat,
            pts,
            &["checkout"],
            d(11, 1),
            resolved,
        );
        i.parent = Some(("PAY-1".into(), "Epic".into()));
        i
    };
    let bug = |id, key: &str, cat, resolved| {
        let mut i = issue(
            id,
            key,
            &format!("Bug {key}"),
            cat,
            None,
            &["customer"],
            d(11, 2),
            resolved,
        );
        i.issue_type = "Bug".into();
        i
    };
    env.seed([
        epic,
        child(2, "PAY-2", "done", Some(5.0), Some(d(10, 10))),
        child(3, "PAY-3", "in_progress", Some(3.0), None),
        child(4, "PAY-4", "todo", None, None),
        bug(5, "PAY-5", "done", Some(d(11, 1))),
        bug(6, "PAY-6", "done", Some(d(9, 20))),
        bug(7, "PAY-7", "in_progress", None),
        issue(
            8,
            "PAY-8",
            "Pager duty",
            "in_progress",
            Some(2.0),
            &["on-call"],
            d(11, 3),
            None,
        ),
        issue(
            9,
            "PAY-9",
            "Upgrade the ORM",
            "done",
            Some(8.0),
            &["tech-debt"],
            d(10, 21),
            Some(d(10, 20)),
        ),
        issue(
            11,
            "WEB-1",
            "Redesign footer",
            "in_progress",
            Some(5.0),
            &[],
            d(11, 4),
            None,
        ),
        issue(
            12,
            "WEB-2",
            "Dark mode",
            "todo",
            Some(2.0),
            &[],
            d(11, 4),
            None,
        ),
        issue(
            13,
            "WEB-3",
            "Signup wizard",
            "done",
            Some(3.0),
            &["onboarding"],
            d(11, 2),
            Some(d(11, 2)),
        ),
    ]);
}

const EXEMPT: &str = r#"
[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#;

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

macro_rules! assert_close {
    ($v:expr, $e:expr) => {
        assert!(
            close(&$v, $e),
            "{} = {} but expected {}",
            stringify!($v),
            $v,
            $e
        )
    };
}

async fn json_documents_match_the_hand_computed_scenario(db: Db) {
    let env = TestEnv::new(db, &(OKRS.to_string() + EXEMPT), SourceOpts::default()).await;
    seed(&env);
    let out = env.cli(&["sync"], Some(NOW));
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.cli(&["checkin", "emea.nps", "25"], Some(NOW));
    assert!(
        out.status.success(),
        "checkin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Q4 2026 is 92 days; at Nov 15 12:00, 45.5 days have passed: expected = 45.5 / 92.
    let expected = 45.5 / 92.0;
    let status = crate::helpers::json(&env.cli(&["status", "--json"], Some(NOW)));
    let objectives = status["objectives"].as_array().expect("objectives");
    assert_eq!(objectives.len(), 2);
    let emea = &objectives[0];
    assert_eq!(emea["id"], "emea");
    assert_eq!(emea["title"], "Win the EMEA market");
    let krs = emea["key_results"].as_array().expect("krs");
    // completion by estimate: PAY-2 done (5), PAY-3 (3), PAY-4 (no estimate: 1) → 5 / 9.
    let checkout = &krs[0];
    assert_eq!(checkout["id"], "emea.checkout");
    assert_eq!(checkout["measure"], "completion");
    assert_close!(checkout["current"], 5.0);
    assert_close!(checkout["target"], 9.0);
    assert_close!(checkout["start"], 0.0);
    assert_close!(checkout["progress"], 5.0 / 9.0);
    assert_eq!(checkout["items"], 3);
    assert_eq!(checkout["status"], "on_track", "0.556 ≥ {expected} − 0.10");
    assert_eq!(checkout["updated_at"], "2026-11-15T12:00:00Z");
    // count: only PAY-5 was resolved inside Q4 (PAY-6 in September, PAY-7 open) → 1 / 4.
    let bugs = &krs[1];
    assert_close!(bugs["current"], 1.0);
    assert_close!(bugs["target"], 4.0);
    assert_close!(bugs["progress"], 0.25);
    assert_eq!(bugs["items"], 3);
    assert_eq!(
        bugs["status"], "at_risk",
        "0.25 is within 0.25 of {expected}"
    );
    // manual: (25 − 20) / (40 − 20) = 0.25.
    let nps = &krs[2];
    assert_close!(nps["current"], 25.0);
    assert_close!(nps["start"], 20.0);
    assert_close!(nps["progress"], 0.25);
    assert_eq!(nps["status"], "at_risk");
    assert_eq!(nps["items"], 0);
    assert_close!(emea["progress"], (5.0 / 9.0 + 0.25 + 0.25) / 3.0);
    assert_eq!(emea["status"], "at_risk", "the worst of its KRs");

    let web = &objectives[1];
    let wkrs = web["key_results"].as_array().expect("krs");
    // milestone: its one item is done → 1, done.
    assert_close!(wkrs[0]["progress"], 1.0);
    assert_eq!(wkrs[0]["status"], "done");
    // sum: WEB-3's 3 points done in the period → 3 / 10 = 0.3 (≥ expected − 0.25: at risk).
    assert_close!(wkrs[1]["current"], 3.0);
    assert_close!(wkrs[1]["progress"], 0.3);
    assert_eq!(wkrs[1]["status"], "at_risk");
    // weights 1 and 3: (1 + 3 × 0.3) / 4.
    assert_close!(web["progress"], 1.9 / 4.0);
    assert_eq!(web["status"], "at_risk");

    // explain: the evidence behind emea.checkout.
    let explain =
        crate::helpers::json(&env.cli(&["explain", "emea.checkout", "--json"], Some(NOW)));
    assert_eq!(explain["kr"]["id"], "emea.checkout");
    assert_close!(explain["kr"]["progress"], 5.0 / 9.0);
    let items = explain["items"].as_array().expect("items");
    let rows: Vec<(String, String, f64, String)> = items
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap_or("").to_string(),
                i["category"].as_str().unwrap_or("").to_string(),
                i["weight"].as_f64().unwrap_or(-1.0),
                i["rule"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("PAY-2".into(), "done".into(), 5.0, "checkout-epic".into()),
            (
                "PAY-3".into(),
                "in_progress".into(),
                3.0,
                "checkout-epic".into()
            ),
            ("PAY-4".into(), "todo".into(), 1.0, "checkout-epic".into()),
        ]
    );
    for i in items {
        assert_eq!(i["source"], "jira");
        assert!(i["url"]
            .as_str()
            .unwrap_or("")
            .ends_with(&format!("/browse/{}", i["key"].as_str().unwrap_or(""))));
        assert!(i["title"].as_str().is_some());
    }
    // The default rule id is file + position.
    let launch = crate::helpers::json(&env.cli(&["explain", "web.launch", "--json"], Some(NOW)));
    assert_eq!(launch["items"][0]["rule"], "okrs/test.toml#3");

    // moves: project, epic, label, item.
    let moves = crate::helpers::json(&env.cli(&["moves", "project=PAY", "--json"], Some(NOW)));
    assert_eq!(moves["selector"], "project=PAY");
    assert_eq!(moves["items"], 9);
    // The epic PAY-1 moves the checkout KR through its children (README, "Moves").
    assert_eq!(
        moves["key_results"],
        json!([
            {"id": "emea.checkout", "title": "Ship the EMEA checkout", "items": 4, "share": 4.0 / 9.0, "objective": "emea"},
            {"id": "emea.bugs", "title": "Close 4 customer bugs", "items": 3, "share": 3.0 / 9.0, "objective": "emea"},
        ])
    );
    let epic = crate::helpers::json(&env.cli(&["moves", "epic=PAY-1", "--json"], Some(NOW)));
    assert_eq!(epic["items"], 3, "the epic's children");
    assert_eq!(epic["key_results"][0]["id"], "emea.checkout");
    assert_close!(epic["key_results"][0]["share"], 1.0);
    let item = crate::helpers::json(&env.cli(&["moves", "item=WEB-3", "--json"], Some(NOW)));
    let ids: Vec<&str> = item["key_results"]
        .as_array()
        .expect("krs")
        .iter()
        .filter_map(|k| k["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["web.launch", "web.points"]);
    let label = crate::helpers::json(&env.cli(&["moves", "label=customer", "--json"], Some(NOW)));
    assert_eq!(
        (
            label["items"].clone(),
            label["key_results"][0]["items"].clone()
        ),
        (json!(3), json!(3))
    );

    // unaligned: in progress, or done inside Q4, matching no KR rule and no exempt rule.
    let un = crate::helpers::json(&env.cli(&["unaligned", "--json"], Some(NOW)));
    let keys: Vec<&str> = un["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    // The epic PAY-1 is aligned through its children (README, "Epics and parents").
    assert_eq!(keys, vec!["PAY-9", "WEB-1"]);
    let pay9 = &un["items"][0];
    assert_eq!(pay9["project"], "PAY");
    assert_eq!(pay9["category"], "done");
    assert_close!(pay9["estimate"], 8.0);
    // PAY: 1 (epic), 2, 3, 5, 7, 8 (exempt), 9 are in scope = 7; unaligned PAY-9.
    assert_eq!(
        un["by_project"],
        json!([
            // estimate: PAY-2 5 + PAY-3 3 + PAY-8 2 + PAY-9 8 = 18; WEB-1 5 + WEB-3 3 = 8.
            {"project": "PAY", "items": 7, "unaligned": 1, "unaligned_estimate": 8.0, "share": 1.0 / 7.0,
             "estimate": 18.0, "estimate_share": 8.0 / 18.0},
            {"project": "WEB", "items": 2, "unaligned": 1, "unaligned_estimate": 5.0, "share": 0.5,
             "estimate": 8.0, "estimate_share": 5.0 / 8.0},
        ])
    );
}
both_backends!(json_documents_match_the_hand_computed_scenario);

#[test]
fn check_reports_five_mistakes_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        r#"okrs = ["okrs/*.toml"]
[server]
listen = "not an address"
[database]
url = "sqlite://x.db"
[sources.jira]
kind = "jira"
url = "https://acme.atlassian.net"
email = "bot@acme.com"
token_env = "OKRSYNC_TEST_SURELY_UNSET_VARIABLE"
evrey = "5m"
"#,
    )
    .expect("config");
    std::fs::write(
        dir.path().join("okrs/team.toml"),
        r#"[[objective]]
id = "o"
title = "Objective"
period = "2026-Q5"

[[objective.kr]]
id = "o.count"
title = "Count without target"
measure = "count"

[[rule]]
kr = "o.nope"
[rule.match]
project = "PAY"
"#,
    )
    .expect("okrs");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("okrsync.toml"))
        .arg("check")
        .env_remove("OKRSYNC_TEST_SURELY_UNSET_VARIABLE")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "okrsync.toml:3: server.listen",
        "OKRSYNC_TEST_SURELY_UNSET_VARIABLE is not set",
        "okrsync.toml:11: sources.jira.evrey: unknown key",
        "team.toml:4: objective[0].period",
        "objective[0].kr[0].target: key result \"o.count\": is required for count",
        "rule[0].kr: rule \"okrs/team.toml#1\": unknown key result \"o.nope\"",
    ] {
        assert!(err.contains(expected), "missing «{expected}» in:\n{err}");
    }
    assert!(err.contains("6 problems"), "{err}");
    // Every other command refuses to start with the same report; those that need no
    // secret (the reports) leave the missing one out.
    let run = |command: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(dir.path().join("okrsync.toml"))
            .arg(command)
            .env_remove("OKRSYNC_TEST_SURELY_UNSET_VARIABLE")
            .output()
            .expect("run")
    };
    let sync = run("sync");
    assert_eq!(sync.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&sync.stderr), err);
    let status = run("status");
    assert_eq!(status.status.code(), Some(2));
    let without_secret: String = err
        .lines()
        .filter(|l| !l.contains("OKRSYNC_TEST_SURELY_UNSET_VARIABLE"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("6 problems", "5 problems");
    assert_eq!(String::from_utf8_lossy(&status.stderr), without_secret);
}

/// An environment override of a list key is split at commas for every source whose kind
/// declares the key a list (a GitHub source's `repos`, whatever the source is called).
#[test]
fn environment_lists_are_split_for_each_source_by_its_kind() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        r#"okrs = ["okrs/*.toml"]
[database]
url = "sqlite://x.db"
[sources.code]
kind = "github"
token_env = "OKRSYNC_TEST_ENV_LIST_TOKEN"
repos = ["acme/web"]
"#,
    )
    .expect("config");
    std::fs::write(
        dir.path().join("okrs/team.toml"),
        "[[objective]]\nid = \"o\"\ntitle = \"O\"\nperiod = \"2026-Q4\"\n",
    )
    .expect("okrs");
    let check = |repos: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
            .arg("--config")
            .arg(dir.path().join("okrsync.toml"))
            .arg("check")
            .env("OKRSYNC_TEST_ENV_LIST_TOKEN", "t")
            .env("OKRSYNC__SOURCES__CODE__REPOS", repos)
            .output()
            .expect("run")
    };
    let good = check("acme/web,acme/api");
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    // Split into two entries: the second is named as the bad one.
    let bad = check("acme/web,nope");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(r#"sources.code.repos: expected "owner/name", found ["nope"]"#),
        "{err}"
    );
}

/// Runs `okrsync check` on a config with no sources and the given OKR files; the exit code
/// and the report's problem lines.
fn check_problems(okr_files: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("okrs")).expect("okrs");
    std::fs::write(
        dir.path().join("okrsync.toml"),
        "okrs = [\"okrs/*.toml\"]\n[database]\nurl = \"sqlite://x.db\"\n",
    )
    .expect("config");
    for (name, text) in okr_files {
        std::fs::write(dir.path().join("okrs").join(name), text).expect("okrs");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_okrsync"))
        .arg("--config")
        .arg(dir.path().join("okrsync.toml"))
        .arg("check")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    let problems = err
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(str::to_string)
        .collect();
    (out.status.code(), problems)
}

#[test]
fn check_names_each_of_five_mistakes_and_nothing_else() {
    // An objective whose period is wrong still defines its key results: the rules naming
    // them are fine, and the duplicate id inside it is found.
    let team = r#"[[objective]]
id = "emea"
title = "Win the EMEA market"
start = "2026-12-31"
end = "2026-10-01"

[[objective.kr]]
id = "emea.checkout"
title = "Ship the EMEA checkout"
measure = "completion"

[[objective.kr]]
id = "emea.checkout"
title = "Ship it again"
measure = "completion"

[[objective.kr]]
id = "emea.bugs"
title = "Close customer bugs"
measure = "count"

[[objective]]
id = "web"
title = "Self-serve onboarding"
period = "2026-Q4"

[[objective.kr]]
id = "web.launch"
title = "Launch onboarding"
measure = "milestone"

[[rule]]
id = "checkout-work"
kr = "emea.checkout"
[rule.match]
project = "PAY"

[[rule]]
id = "checkout-work"
kr = "emea.bugs"
[rule.match]
type = "Bug"
"#;
    // Another file: a rule without an id (default id: file and position), naming the KRs
    // of the broken objective and one that does not exist.
    let more = r#"[[rule]]
krs = ["emea.bugs", "web.launch"]
[rule.match]
labels = "customer"

[[rule]]
krs = ["emea.checkout", "emea.nope"]
[rule.match]
project = "WEB"
"#;
    let (code, problems) = check_problems(&[("team.toml", team), ("more.toml", more)]);
    assert_eq!(code, Some(2), "{problems:#?}");
    let expected = [
        "team.toml:5: objective[0].end: objective \"emea\": the period ends (2026-10-01) before it starts",
        "team.toml:13: objective[0].kr[1].id: key result \"emea.checkout\": id is used twice",
        "team.toml:17: objective[0].kr[2].target: key result \"emea.bugs\": is required for count key results",
        "team.toml:39: rule[1].id: rule \"checkout-work\": id is used twice",
        "more.toml:7: rule[1].krs[1]: rule \"okrs/more.toml#2\": unknown key result \"emea.nope\"",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for e in expected {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "missing «{e}» in {problems:#?}"
        );
    }
    let unknown: Vec<_> = problems
        .iter()
        .filter(|p| p.contains("unknown key result"))
        .collect();
    assert_eq!(unknown.len(), 1, "{problems:#?}");
}

#[test]
fn check_names_the_id_in_every_message_about_an_objective_kr_or_rule() {
    let okrs = r#"[[objective]]
id = "emea"
title = "Win the EMEA market"
period = "2026-Q4"
parent = "ghost"
owner = 3

[[objective.kr]]
id = "emea.nps"
title = "Partner NPS"
measure = "manual"
start = 20
target = 20
colour = "red"

[[objective.kr]]
id = "emea.mrr"
measure = "metric"
target = 2
metric = { source = "finance", cell = "B7" }

[[rule]]
kr = "emea.nps"
source = "jira"
[rule.match]
lables = "x"
"#;
    let (code, problems) = check_problems(&[("a.toml", okrs)]);
    assert_eq!(code, Some(2), "{problems:#?}");
    let expected = [
        "objective[0].owner: objective \"emea\": expected a string",
        "objective[0].kr[0].target: key result \"emea.nps\": must differ from start",
        "objective[0].kr[0].colour: key result \"emea.nps\": unknown key",
        "objective[0].kr[1].title: key result \"emea.mrr\": is required",
        "rule[0].match.lables: rule \"okrs/a.toml#1\": unknown field `lables`",
        "objective[0].kr[1].metric.source: key result \"emea.mrr\": unknown source \"finance\"",
        "objective[0].parent: objective \"emea\": unknown objective \"ghost\"",
        "rule[0].kr: rule \"okrs/a.toml#1\": key result \"emea.nps\" is measured as manual",
        "rule[0].source: rule \"okrs/a.toml#1\": unknown source \"jira\"",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for e in expected {
        assert!(
            problems.iter().any(|p| p.contains(e)),
            "missing «{e}» in {problems:#?}"
        );
    }
}
