//! The OKRs of a larger organisation, for the recompute step: objectives of five KRs each
//! (completion weighted by estimate, completion by count, a count of bugs, a sum of
//! points, a milestone) and a few hundred rules over the generated data set, written the
//! way teams write them: project equality, labels any-of, `type = { not = "Epic" }`, some
//! `title`/`key` regexes and explicit key lists, some on `status` or `category`, rules on
//! an epic's children, several rules per KR, and a few exempt rules on labels.
//!
//! The generated titles are `Work item PAY-123` (epics `Epic PAY-7`), so a title regex
//! like `^Work item PAY-\d*7$` picks a tenth of a project: what a regex on real titles
//! costs, with a known share.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use okrsync::simulator::dataset::{LABELS, PROJECTS};

const THEMES: [&str; 6] = [
    "roadmap",
    "reliability",
    "growth",
    "platform",
    "quality",
    "compliance",
];

/// The five KRs of every objective, by measure.
const KINDS: [&str; 5] = ["delivery", "stories", "bugs", "points", "launch"];

/// A generated OKR file and what the benchmark needs to know about it.
pub struct Plan {
    pub text: String,
    pub objectives: usize,
    pub krs: usize,
    pub rules: usize,
    pub exempt: usize,
    /// The completion KRs weighted by estimate: moving one of their in-progress items to
    /// done changes their `current` (or, for an item matched only by a status rule,
    /// their `target`).
    pub completion: Vec<String>,
    /// A milestone KR with few items (an epic's children and a few named issues): a cheap
    /// KR document for the load test.
    pub small: String,
}

/// `objectives` objectives (five KRs each) and `rules` rules in all (about one in fifty
/// exempt); `items` scales the count and sum targets; `epics` are the generated epics'
/// keys per project (rules on an epic's children name real ones). `edit` changes one
/// rule's regex: a one-line edit of the file, which also makes every item matched again.
pub fn many_okrs(
    start: &str,
    end: &str,
    objectives: usize,
    rules: usize,
    items: usize,
    epics: &BTreeMap<String, Vec<String>>,
    edit: bool,
) -> Plan {
    let objectives = objectives.max(1);
    let krs = objectives * KINDS.len();
    let exempt = (rules / 50).max(2).min(rules);
    let kr_rules = rules - exempt;
    let mut s = String::new();
    let mut completion = Vec::new();
    let kr_id = |o: usize, k: usize| {
        let (p, theme) = objective_of(o);
        format!("{}-{theme}.{}", p.to_lowercase(), KINDS[k])
    };
    for o in 0..objectives {
        let (p, theme) = objective_of(o);
        let _ = write!(
            s,
            r#"
[[objective]]
id = "{pl}-{theme}"
title = "{p} {theme}"
start = "{start}"
end = "{end}"
owner = "{p} lead"
"#,
            pl = p.to_lowercase(),
        );
        for (k, kind) in KINDS.iter().enumerate() {
            let id = kr_id(o, k);
            let measure = match k {
                0 => "measure = \"completion\"\nweight_by = \"estimate\"".to_string(),
                1 => "measure = \"completion\"".to_string(),
                2 => format!("measure = \"count\"\ntarget = {}", (items / 1000).max(10)),
                3 => format!("measure = \"sum\"\ntarget = {}", (items / 100).max(50)),
                _ => "measure = \"milestone\"".to_string(),
            };
            if k == 0 {
                completion.push(id.clone());
            }
            let _ = write!(
                s,
                r#"
[[objective.kr]]
id = "{id}"
title = "{p} {theme}: {kind}"
{measure}
"#
            );
        }
    }
    for r in 0..kr_rules {
        let kr = r % krs;
        let (o, k) = (kr / KINDS.len(), kr % KINDS.len());
        let v = r / krs;
        let id = kr_id(o, k);
        // The second rule of the first KR: a title regex.
        let edited = edit && r == krs;
        let conditions = conditions(o, k, v, epics, edited);
        let source = if v % 5 == 4 {
            "source = \"jira\"\n"
        } else {
            ""
        };
        let _ = write!(
            s,
            "\n[[rule]]\nid = \"{id}-{v}\"\nkr = \"{id}\"\n{source}[rule.match]\n{conditions}"
        );
    }
    for e in 0..exempt {
        let p = PROJECTS[e % PROJECTS.len()];
        let conditions = match e % 5 {
            0 => "labels = \"on-call\"\n".to_string(),
            1 => "labels = \"tech-debt\"\ntype = \"Task\"\n".to_string(),
            2 => format!("project = \"{p}\"\nlabels = \"infra\"\n"),
            3 => format!("project = \"{p}\"\ntitle = {{ regex = '^Work item [A-Z]+-\\d*00$' }}\n"),
            _ => format!("project = \"{p}\"\ntype = \"Epic\"\nlabels = [\"infra\", \"on-call\"]\n"),
        };
        let _ = write!(
            s,
            "\n[[rule]]\nid = \"exempt-{e}\"\nexempt = true\n[rule.match]\n{conditions}"
        );
    }
    Plan {
        text: s,
        objectives,
        krs,
        rules,
        exempt,
        completion,
        small: kr_id(0, 4),
    }
}

/// The project and theme of the `o`-th objective (unique for 60 objectives).
fn objective_of(o: usize) -> (&'static str, &'static str) {
    (
        PROJECTS[o % PROJECTS.len()],
        THEMES[(o / PROJECTS.len()) % THEMES.len()],
    )
}

/// The `[rule.match]` body of the `v`-th rule of KR kind `k` of objective `o`.
fn conditions(
    o: usize,
    k: usize,
    v: usize,
    epics: &BTreeMap<String, Vec<String>>,
    edited: bool,
) -> String {
    let p = PROJECTS[o % PROJECTS.len()];
    let q = PROJECTS[(o + 1) % PROJECTS.len()];
    let label = |i: usize| LABELS[(o + i) % LABELS.len()];
    let (l1, l2, l3) = (label(0), label(3), label(5));
    let digit = (o * 3 + v + usize::from(edited)) % 10;
    let regex =
        |project: &str| format!("title = {{ regex = '^Work item {project}-\\d*{digit}$' }}");
    // The project's `i`-th epic from `from` (a fraction of the list). Children pick an
    // epic among those created before them, so the first epics are the large ones and
    // those from the middle on have a few dozen children at 100,000 issues.
    let nth_epic = |from: f64, i: usize| -> String {
        epics
            .get(p)
            .filter(|list| !list.is_empty())
            .map(|list| {
                let start = (list.len() as f64 * from) as usize;
                list[(start + o / PROJECTS.len() * 7 + i) % list.len()].clone()
            })
            .unwrap_or_else(|| format!("{p}-1"))
    };
    let epic = |i: usize| nth_epic(0.0, i);
    let late_epic = |i: usize| nth_epic(0.6, i);
    let keys = |from: usize| -> String {
        (from..from + 3)
            .map(|n| format!("\"{p}-{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lines: Vec<String> = match (k, v % 5) {
        // Completion by estimate: the project's roadmap work.
        (0, 0) => vec![
            format!("project = \"{p}\""),
            format!("labels = [\"{l1}\", \"{l2}\"]"),
            "type = { not = \"Epic\" }".into(),
        ],
        (0, 1) => vec![
            format!("project = \"{p}\""),
            regex(p),
            "type = { not = \"Epic\" }".into(),
        ],
        (0, 2) => vec![
            format!("project = \"{p}\""),
            format!("epic = [\"{}\", \"{}\"]", epic(1), epic(2)),
        ],
        (0, 3) => vec![
            format!("project = \"{p}\""),
            "status = \"In Progress\"".into(),
            format!("labels = \"{l3}\""),
        ],
        (0, _) => vec![
            format!("project = [\"{p}\", \"{q}\"]"),
            "category = [\"in_progress\", \"done\"]".into(),
            format!("labels = \"{l2}\""),
            "type = [\"Story\", \"Task\"]".into(),
        ],
        // Completion by count: stories.
        (1, 0) => vec![
            format!("project = \"{p}\""),
            "type = \"Story\"".into(),
            format!("labels = [\"{l2}\", \"{l3}\"]"),
        ],
        (1, 1) => vec![
            format!("project = \"{q}\""),
            "type = \"Story\"".into(),
            regex(q),
        ],
        (1, 2) => vec![
            format!("project = \"{p}\""),
            "type = [\"Story\", \"Task\"]".into(),
            format!("epic = \"{}\"", epic(3)),
        ],
        (1, 3) => vec![
            format!("project = \"{p}\""),
            "category = \"in_progress\"".into(),
            format!("labels = \"{l1}\""),
        ],
        (1, _) => vec![
            format!("project = [\"{p}\", \"{q}\"]"),
            "type = \"Story\"".into(),
            "labels = \"growth\"".into(),
        ],
        // Count: bugs closed.
        (2, 0) => vec![
            format!("project = \"{p}\""),
            "type = \"Bug\"".into(),
            format!("labels = [\"customer\", \"{l1}\"]"),
        ],
        (2, 1) => vec![
            format!("project = \"{p}\""),
            "type = \"Bug\"".into(),
            regex(p),
        ],
        (2, 2) => vec![
            format!("project = \"{q}\""),
            "type = \"Bug\"".into(),
            "labels = \"customer\"".into(),
        ],
        (2, 3) => vec![
            format!("project = \"{p}\""),
            "type = \"Bug\"".into(),
            "status = \"Done\"".into(),
            format!("labels = \"{l3}\""),
        ],
        (2, _) => vec![
            format!("project = [\"{p}\", \"{q}\"]"),
            "type = \"Bug\"".into(),
            "labels = [\"on-call\", \"customer\"]".into(),
        ],
        // Sum: points of performance and debt work.
        (3, 0) => vec![
            format!("project = [\"{p}\", \"{q}\"]"),
            format!("labels = [\"perf\", \"{l1}\"]"),
            "type = { not = \"Epic\" }".into(),
        ],
        (3, 1) => vec![
            format!("project = \"{p}\""),
            "labels = \"tech-debt\"".into(),
            "type = { not = \"Epic\" }".into(),
        ],
        (3, 2) => vec![
            format!("project = \"{p}\""),
            regex(p),
            "category = \"done\"".into(),
        ],
        (3, 3) => vec![
            format!("project = \"{q}\""),
            format!("labels = \"{l2}\""),
            "type = \"Task\"".into(),
        ],
        (3, _) => vec![
            format!("project = \"{p}\""),
            format!("epic = \"{}\"", epic(4)),
        ],
        // Milestone: one epic's children and a few named issues (a small KR).
        (_, 0) => vec![format!("epic = \"{}\"", late_epic(0))],
        (_, 1) => vec![format!("key = [{}]", keys(o + 1))],
        (_, 2) => vec![
            format!("epic = \"{}\"", late_epic(0)),
            "type = \"Bug\"".into(),
        ],
        (_, 3) => vec![format!("key = [{}]", keys(o + 11))],
        (_, _) => vec![
            format!("epic = \"{}\"", late_epic(5)),
            "labels = \"checkout\"".into(),
        ],
    };
    lines.join("\n") + "\n"
}
