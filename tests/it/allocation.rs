//! `okrsync allocation` (SPEC.md, "Allocation"): where the period's effort goes, against a
//! scenario whose numbers are computed by hand below; the API, the CSV and the dashboard's
//! cells agree with it.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{issue, json as doc, Db, Served, SourceOpts, TestEnv};

/// A Sunday: ISO week 2026-W46 (Monday 2026-11-09), inside 2026-Q4.
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

[[objective.kr]]
id = "emea.bugs"
title = "Close customer bugs"
measure = "count"
target = 4

[[objective]]
id = "web"
title = "Self-serve onboarding"
period = "2026-Q4"

[[objective.kr]]
id = "web.launch"
title = "Launch onboarding"
measure = "completion"

[[objective]]
id = "idle"
title = "Nobody works on this"
period = "2026-Q4"

[[objective.kr]]
id = "idle.kr"
title = "Untouched"
measure = "completion"

[[rule]]
id = "checkout"
kr = "emea.checkout"
[rule.match]
labels = "checkout"

[[rule]]
id = "bugs"
kr = "emea.bugs"
[rule.match]
labels = "bugs"

[[rule]]
id = "onboarding"
kr = "web.launch"
[rule.match]
labels = "onboarding"

[[rule]]
id = "idle"
kr = "idle.kr"
[rule.match]
labels = "never-used"

[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#;

fn d(m: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, day, 9, 0, 0)
        .single()
        .expect("date")
}

/// The scenario, per project (effort: estimate, else the project's median estimate):
///
/// PAY — estimates of its selected items 4, 2, 6, 3 → median (3 + 4) / 2 = 3.5
///   PAY-1 done 11-03 (W45), 4, checkout            → emea 4
///   PAY-2 done 11-10 (W46), 2, checkout + bugs     → two KRs of one objective: emea 2
///   PAY-3 in progress (W46), none → 3.5, checkout + onboarding → emea 1.75, web 1.75
///   PAY-4 in progress (W46), 6, on-call            → exempt 6
///   PAY-5 done 10-20 (W43), 3, nothing             → unaligned 3
///   PAY-6 done 09-20 (before the period), PAY-7 to do: not selected
///   effort 18.5 = emea 7.75 + web 1.75 + exempt 6 + unaligned 3
/// WEB — estimates 5, 1 → median 3
///   WEB-1 epic in progress (W46), none → 3, aligned through WEB-2 → web 3
///   WEB-2 done 11-04 (W45), 5, onboarding, child of WEB-1 → web 5
///   WEB-3 done 11-12 (W46), 1, nothing             → unaligned 1
///   WEB-5 epic in progress (W46), none → 3, its one child exempt → exempt 3
///   WEB-6 in progress (W46), none → 3, on-call, child of WEB-5 → exempt 3
///   effort 15 = web 8 + exempt 6 + unaligned 1
/// OPS — no estimate at all → every item weighs 1
///   OPS-1 in progress (W46), nothing               → unaligned 1
/// `idle` has no item, so it is no column.
fn seed(env: &TestEnv) {
    let child_of = |mut i: okrsync::simulator::jira::SimIssue, epic: &str| {
        i.parent = Some((epic.into(), "Epic".into()));
        i
    };
    let epic = |mut i: okrsync::simulator::jira::SimIssue| {
        i.issue_type = "Epic".into();
        i
    };
    env.seed([
        issue(
            1,
            "PAY-1",
            "Card form",
            "done",
            Some(4.0),
            &["checkout"],
            d(11, 3),
            Some(d(11, 3)),
        ),
        issue(
            2,
            "PAY-2",
            "Card bug",
            "done",
            Some(2.0),
            &["checkout", "bugs"],
            d(11, 10),
            Some(d(11, 10)),
        ),
        issue(
            3,
            "PAY-3",
            "Checkout onboarding",
            "in_progress",
            None,
            &["checkout", "onboarding"],
            d(11, 12),
            None,
        ),
        issue(
            4,
            "PAY-4",
            "Pager duty",
            "in_progress",
            Some(6.0),
            &["on-call"],
            d(11, 11),
            None,
        ),
        issue(
            5,
            "PAY-5",
            "Upgrade the ORM",
            "done",
            Some(3.0),
            &[],
            d(10, 20),
            Some(d(10, 20)),
        ),
        issue(
            6,
            "PAY-6",
            "Old checkout",
            "done",
            Some(10.0),
            &["checkout"],
            d(9, 20),
            Some(d(9, 20)),
        ),
        issue(
            7,
            "PAY-7",
            "Later",
            "todo",
            Some(5.0),
            &["checkout"],
            d(11, 1),
            None,
        ),
        epic(issue(
            11,
            "WEB-1",
            "Onboarding epic",
            "in_progress",
            None,
            &[],
            d(11, 1),
            None,
        )),
        child_of(
            issue(
                12,
                "WEB-2",
                "Signup wizard",
                "done",
                Some(5.0),
                &["onboarding"],
                d(11, 4),
                Some(d(11, 4)),
            ),
            "WEB-1",
        ),
        issue(
            13,
            "WEB-3",
            "Redesign footer",
            "done",
            Some(1.0),
            &[],
            d(11, 12),
            Some(d(11, 12)),
        ),
        epic(issue(
            15,
            "WEB-5",
            "Operations epic",
            "in_progress",
            None,
            &[],
            d(11, 1),
            None,
        )),
        child_of(
            issue(
                16,
                "WEB-6",
                "Rota",
                "in_progress",
                None,
                &["on-call"],
                d(11, 2),
                None,
            ),
            "WEB-5",
        ),
        issue(
            21,
            "OPS-1",
            "Move the racks",
            "in_progress",
            None,
            &[],
            d(11, 5),
            None,
        ),
    ]);
}

async fn scenario(db: Db) -> TestEnv {
    let env = TestEnv::new(db, OKRS, SourceOpts::default()).await;
    // The harness syncs PAY and WEB; OPS is this scenario's project without estimates.
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace("project in (PAY, WEB)", "project in (PAY, WEB, OPS)"),
    )
    .expect("config");
    seed(&env);
    let out = env.cli(&["sync"], Some(NOW));
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env
}

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

/// A row's parts as `(column, effort, share)`, objectives first, then exempt, unaligned.
fn parts(row: &Value) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = row["objectives"]
        .as_array()
        .expect("objectives")
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or("").to_string(),
                o["effort"].as_f64().unwrap_or(-1.0),
                o["share"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    for k in ["exempt", "unaligned"] {
        out.push((
            k.to_string(),
            row[k]["effort"].as_f64().unwrap_or(-1.0),
            row[k]["share"].as_f64().unwrap_or(-1.0),
        ));
    }
    out
}

fn assert_parts(row: &Value, expected: &[(&str, f64)]) {
    let effort = row["effort"].as_f64().expect("effort");
    let got = parts(row);
    assert_eq!(
        got.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|p| p.0).collect::<Vec<_>>(),
        "{row}"
    );
    for ((name, e, s), (_, want)) in got.iter().zip(expected) {
        assert!(
            (e - want).abs() < 1e-9,
            "{}: {name} effort {e}, expected {want}",
            row["project"]
        );
        assert!(
            (s - want / effort).abs() < 1e-9,
            "{}: {name} share {s}, expected {}",
            row["project"],
            want / effort
        );
    }
}

async fn allocation_per_project_matches_the_hand_computed_scenario(db: Db) {
    let env = scenario(db).await;
    let a = doc(&env.cli(&["allocation", "--json"], Some(NOW)));
    assert_eq!(a["period"], "2026-Q4");
    assert_eq!(a["by"], "project");
    let rows = a["rows"].as_array().expect("rows");
    let projects: Vec<&str> = rows.iter().filter_map(|r| r["project"].as_str()).collect();
    assert_eq!(projects, ["OPS", "PAY", "WEB"]);

    // OPS: one item, no estimate in the project → weighs 1, unaligned.
    assert_close!(rows[0]["effort"], 1.0);
    assert_eq!(rows[0]["items"], 1);
    assert_parts(
        &rows[0],
        &[
            ("emea", 0.0),
            ("web", 0.0),
            ("exempt", 0.0),
            ("unaligned", 1.0),
        ],
    );
    // PAY: PAY-3 (no estimate) weighs the median 3.5, split in half over emea and web;
    // PAY-2 moves two KRs of emea and counts once for it.
    assert_close!(rows[1]["effort"], 18.5);
    assert_eq!(rows[1]["items"], 5);
    assert_parts(
        &rows[1],
        &[
            ("emea", 4.0 + 2.0 + 1.75),
            ("web", 1.75),
            ("exempt", 6.0),
            ("unaligned", 3.0),
        ],
    );
    assert_eq!(rows[1]["objectives"][0]["title"], "Win the EMEA market");
    // WEB: the epic WEB-1 is aligned through its child, WEB-5 exempt through its child.
    assert_close!(rows[2]["effort"], 15.0);
    assert_eq!(rows[2]["items"], 5);
    assert_parts(
        &rows[2],
        &[
            ("emea", 0.0),
            ("web", 8.0),
            ("exempt", 6.0),
            ("unaligned", 1.0),
        ],
    );
    assert!(rows[0].get("weeks").is_none(), "weeks only with --weeks");

    // The unaligned report selects and classifies the same items.
    let un = doc(&env.cli(&["unaligned", "--json"], Some(NOW)));
    let keys: Vec<&str> = un["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert_eq!(keys, ["OPS-1", "PAY-5", "WEB-3"]);
    let counts: Vec<(String, u64)> = un["by_project"]
        .as_array()
        .expect("by_project")
        .iter()
        .map(|p| {
            (
                p["project"].as_str().unwrap_or("").to_string(),
                p["items"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let alloc_counts: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["project"].as_str().unwrap_or("").to_string(),
                r["items"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(counts, alloc_counts);

    // The table for people names every column.
    let out = env.cli(&["allocation"], Some(NOW));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("PROJECT") && table.contains("unaligned"),
        "{table}"
    );
    assert!(table.contains("7.75 (42%)"), "PAY's emea cell: {table}");

    // A period without work has no rows; a bad one is refused.
    let q3 = doc(&env.cli(&["allocation", "--json", "--period", "2026-Q2"], Some(NOW)));
    // In-progress items belong to every period (as in the unaligned report); only they remain.
    let q3_items: u64 = q3["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["items"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        q3_items, 6,
        "PAY-3, PAY-4, WEB-1, WEB-5, WEB-6, OPS-1 are in progress"
    );
    let bad = env.cli(&["allocation", "--by", "team"], Some(NOW));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected project or objective"));
}
both_backends!(allocation_per_project_matches_the_hand_computed_scenario);

async fn allocation_per_objective_turns_the_table_around(db: Db) {
    let env = scenario(db).await;
    let a = doc(&env.cli(&["allocation", "--by", "objective", "--json"], Some(NOW)));
    assert_eq!(a["by"], "objective");
    let rows = a["rows"].as_array().expect("rows");
    let summary: Vec<(String, String, f64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["objective"].as_str().unwrap_or("").to_string(),
                r["kind"].as_str().unwrap_or("").to_string(),
                r["effort"].as_f64().unwrap_or(-1.0),
                r["items"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            // emea: PAY-1 4 + PAY-2 2 + PAY-3 1.75.
            ("emea".into(), "objective".into(), 7.75, 3),
            // web: PAY-3 1.75 + WEB-1 3 + WEB-2 5.
            ("web".into(), "objective".into(), 9.75, 3),
            // exempt: PAY-4 6 + WEB-5 3 + WEB-6 3.
            ("exempt".into(), "exempt".into(), 12.0, 3),
            // unaligned: PAY-5 3 + WEB-3 1 + OPS-1 1.
            ("unaligned".into(), "unaligned".into(), 5.0, 3),
        ]
    );
    let shares = |r: &Value| -> Vec<(String, f64)> {
        r["projects"]
            .as_array()
            .expect("projects")
            .iter()
            .map(|p| {
                (
                    p["project"].as_str().unwrap_or("").to_string(),
                    p["share"].as_f64().unwrap_or(-1.0),
                )
            })
            .collect()
    };
    let web = shares(&rows[1]);
    assert_eq!(
        web.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
        ["OPS", "PAY", "WEB"]
    );
    assert!(
        (web[1].1 - 1.75 / 9.75).abs() < 1e-9 && (web[2].1 - 8.0 / 9.75).abs() < 1e-9,
        "{web:?}"
    );
    let unaligned = shares(&rows[3]);
    assert!(
        (unaligned[0].1 - 0.2).abs() < 1e-9
            && (unaligned[1].1 - 0.6).abs() < 1e-9
            && (unaligned[2].1 - 0.2).abs() < 1e-9,
        "{unaligned:?}"
    );
    assert_close!(rows[0]["projects"][1]["effort"], 7.75);
}
both_backends!(allocation_per_objective_turns_the_table_around);

async fn allocation_weeks_count_effort_where_work_reached_done(db: Db) {
    let env = scenario(db).await;
    let a = doc(&env.cli(&["allocation", "--weeks", "--json"], Some(NOW)));
    let rows = a["rows"].as_array().expect("rows");
    let pay = &rows[1];
    let weeks = pay["weeks"].as_array().expect("weeks");
    // 2026-Q4 runs from Thursday 10-01 (W40, Monday 09-28) to Thursday 12-31 (W53).
    assert_eq!(weeks.len(), 14);
    assert_eq!(weeks[0]["week"], "2026-W40");
    assert_eq!(weeks[0]["start"], "2026-09-28");
    assert_eq!(weeks[13]["week"], "2026-W53");
    let nonzero: Vec<(String, f64)> = weeks
        .iter()
        .filter(|w| w["effort"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|w| {
            (
                w["week"].as_str().unwrap_or("").to_string(),
                w["effort"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    // W43: PAY-5 3 (done 10-20); W45: PAY-1 4 (done 11-03); W46: PAY-2 2 (done 11-10) and
    // the items in progress now, PAY-3 3.5 and PAY-4 6.
    assert_eq!(
        nonzero,
        vec![
            ("2026-W43".into(), 3.0),
            ("2026-W45".into(), 4.0),
            ("2026-W46".into(), 11.5)
        ]
    );
    let w46 = &weeks[6];
    assert_eq!(w46["week"], "2026-W46");
    assert_close!(w46["objectives"][0]["effort"], 3.75);
    assert_eq!(w46["objectives"][0]["id"], "emea");
    assert_close!(w46["objectives"][1]["effort"], 1.75);
    assert_close!(w46["exempt"], 6.0);
    assert_close!(w46["unaligned"], 0.0);
    assert_close!(weeks[3]["unaligned"], 3.0);
    // Every row's weeks add up to its effort.
    for r in rows {
        let sum: f64 = r["weeks"]
            .as_array()
            .expect("weeks")
            .iter()
            .map(|w| w["effort"].as_f64().unwrap_or(0.0))
            .sum();
        assert!(
            (sum - r["effort"].as_f64().unwrap_or(0.0)).abs() < 1e-9,
            "{r}"
        );
    }
    // Per objective: web is WEB-2 5 in W45, PAY-3 1.75 + WEB-1 3 in W46.
    let by = doc(&env.cli(
        &["allocation", "--by", "objective", "--weeks", "--json"],
        Some(NOW),
    ));
    let web = &by["rows"][1];
    assert_eq!(web["objective"], "web");
    assert_close!(web["weeks"][5]["effort"], 5.0);
    assert_close!(web["weeks"][6]["effort"], 4.75);
    assert_close!(web["weeks"][6]["projects"][1]["effort"], 1.75);
}
both_backends!(allocation_weeks_count_effort_where_work_reached_done);

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    // The scenario has no commas or quotes in its fields.
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

async fn allocation_csv_equals_the_json_document(db: Db) {
    let env = scenario(db).await;
    let a = doc(&env.cli(&["allocation", "--json"], Some(NOW)));
    let out = env.cli(&["allocation", "--csv"], Some(NOW));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines = csv_rows(&text);
    assert_eq!(
        lines[0],
        [
            "period",
            "project",
            "items",
            "effort",
            "emea effort",
            "emea share",
            "web effort",
            "web share",
            "exempt effort",
            "exempt share",
            "unaligned effort",
            "unaligned share"
        ]
    );
    let rows = a["rows"].as_array().expect("rows");
    assert_eq!(lines.len(), rows.len() + 1);
    for (line, row) in lines[1..].iter().zip(rows) {
        assert_eq!(line[0], "2026-Q4");
        assert_eq!(line[1], row["project"].as_str().unwrap_or(""));
        assert_eq!(line[2], row["items"].to_string());
        let mut expected = vec![row["effort"].as_f64().unwrap_or(-1.0)];
        for (_, e, s) in parts(row) {
            expected.extend([e, s]);
        }
        let got: Vec<f64> = line[3..]
            .iter()
            .map(|v| v.parse().expect("a number"))
            .collect();
        assert_eq!(got, expected, "{}", line[1]);
    }

    // Per objective and per week, the same numbers again.
    let by = doc(&env.cli(&["allocation", "--by", "objective", "--json"], Some(NOW)));
    let out = env.cli(&["allocation", "--by", "objective", "--csv"], Some(NOW));
    let lines = csv_rows(&String::from_utf8(out.stdout).expect("utf-8"));
    assert_eq!(
        lines[0][..5],
        ["period", "objective", "title", "items", "effort"]
    );
    for (line, row) in lines[1..].iter().zip(by["rows"].as_array().expect("rows")) {
        assert_eq!(line[1], row["objective"].as_str().unwrap_or(""));
        assert_eq!(line[4].parse::<f64>().ok(), row["effort"].as_f64());
        for (i, p) in row["projects"]
            .as_array()
            .expect("projects")
            .iter()
            .enumerate()
        {
            assert_eq!(line[5 + 2 * i].parse::<f64>().ok(), p["effort"].as_f64());
            assert_eq!(line[6 + 2 * i].parse::<f64>().ok(), p["share"].as_f64());
        }
    }
    let weekly = env.cli(&["allocation", "--weeks", "--csv"], Some(NOW));
    let lines = csv_rows(&String::from_utf8(weekly.stdout).expect("utf-8"));
    assert_eq!(
        lines[0][..5],
        ["period", "project", "week", "week start", "effort"]
    );
    assert_eq!(lines.len(), 1 + 3 * 14, "a line per project and week");
    let pay_w46 = lines
        .iter()
        .find(|l| l[1] == "PAY" && l[2] == "2026-W46")
        .expect("PAY in W46");
    assert_eq!(pay_w46[4], "11.5");
}
both_backends!(allocation_csv_equals_the_json_document);

async fn allocation_api_and_dashboard_agree_with_the_command(db: Db) {
    let env = scenario(db).await;
    let cli = doc(&env.cli(&["allocation", "--json", "--period", "2026-Q4"], Some(NOW)));
    let served = Served::start(&env).await;

    let api: Value = served
        .get("/api/v1/allocation?period=2026-Q4")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(api, cli);
    let by: Value = served
        .get("/api/v1/allocation?period=2026-Q4&by=objective&weeks=1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by["by"], "objective");
    assert!(by["rows"][0]["weeks"].is_array());
    let csv = served
        .get("/api/v1/allocation?period=2026-Q4&format=csv")
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv")));
    let body = csv.text().await.expect("body");
    assert!(
        body.starts_with("period,project,items,effort,emea effort"),
        "{body}"
    );
    assert_eq!(served.get("/api/v1/allocation?by=team").await.status(), 400);
    let openapi: Value = served
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("openapi");
    assert!(openapi["paths"]["/api/v1/allocation"]["get"].is_object());

    // The page: a row per project, every cell a link to the items behind it.
    let (status, page) = served.page("/allocation?period=2026-Q4").await;
    assert_eq!(status, 200);
    assert!(page.contains("<caption"), "a captioned table");
    let page = page.replace("&#38;", "&").replace("&amp;", "&");
    assert!(
        page.contains("/allocation/items?period=2026-Q4&project=PAY&objective=emea"),
        "{page}"
    );
    assert!(page.contains("/api/v1/allocation?period=2026-Q4&by=project&format=csv"));
    let (status, items) = served
        .page("/allocation/items?period=2026-Q4&project=PAY&objective=web")
        .await;
    assert_eq!(status, 200);
    // PAY-3 puts half of its 3.5 into web.
    assert!(items.contains("PAY-3") && items.contains("1.75"), "{items}");
    assert!(!items.contains("PAY-1"), "PAY-1 moves emea only");
    let (_, unaligned) = served
        .page("/allocation/items?period=2026-Q4&project=WEB&column=unaligned")
        .await;
    assert!(
        unaligned.contains("WEB-3") && !unaligned.contains("WEB-1"),
        "{unaligned}"
    );
    let (_, exempt) = served
        .page("/allocation/items?period=2026-Q4&project=WEB&column=exempt")
        .await;
    assert!(
        exempt.contains("WEB-5") && exempt.contains("WEB-6"),
        "{exempt}"
    );
    served.stop().await;
}
both_backends!(allocation_api_and_dashboard_agree_with_the_command);
