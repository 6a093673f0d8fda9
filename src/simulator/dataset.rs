//! A generated Jira data set for benchmarks and the equivalence test: issues in ten
//! projects (2% epics, the rest stories, bugs and tasks under an epic of their project,
//! 0–3 labels, story points 1–8, half done, 30% in progress), a dozen key results with
//! their rules, and a deterministic 1% change. The same issues for the same size and time,
//! on every run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::jira::SimIssue;

pub const PROJECTS: [&str; 10] = [
    "PAY", "WEB", "API", "OPS", "DATA", "MOB", "SEC", "INF", "GRO", "CRM",
];

pub const LABELS: [&str; 8] = [
    "emea",
    "checkout",
    "customer",
    "on-call",
    "perf",
    "infra",
    "growth",
    "tech-debt",
];

/// A small deterministic generator (a linear congruential one: no dependency, same
/// sequence on every platform).
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `t` at millisecond precision (what Jira and the store keep).
pub fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The key of the `id`-th generated issue (1-based), without generating the others.
pub fn key_of(id: u64) -> String {
    let project = PROJECTS[(id as usize) % PROJECTS.len()];
    let number = (id as usize - 1) / PROJECTS.len() + 1;
    format!("{project}-{number}")
}

/// `n` issues created 20–60 days before `now`.
pub fn generate(n: usize, now: DateTime<Utc>) -> Vec<SimIssue> {
    let mut rng = Lcg(42);
    let mut out = Vec::with_capacity(n);
    let mut epics: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for id in 1..=n as u64 {
        let project = PROJECTS[(id as usize) % PROJECTS.len()];
        let key = key_of(id);
        let is_epic = rng.below(50) == 0 || !epics.contains_key(project);
        let mut issue = SimIssue::new(id, &key, &format!("Work item {key}"));
        let created =
            millis(now - Duration::minutes(60 * 24 * 20 + rng.below(60 * 24 * 40) as i64));
        issue.created = created;
        issue.updated = millis(created + Duration::minutes(rng.below(60 * 24 * 19) as i64));
        if is_epic {
            issue.issue_type = "Epic".into();
            issue.summary = format!("Epic {key}");
            epics.entry(project).or_default().push(key.clone());
        } else {
            issue.issue_type = match rng.below(10) {
                0..=5 => "Story",
                6..=7 => "Bug",
                _ => "Task",
            }
            .into();
            let list = &epics[project];
            let epic = &list[rng.below(list.len() as u64) as usize];
            issue.parent = Some((epic.clone(), "Epic".into()));
            issue.story_points = Some((1 + rng.below(8)) as f64);
        }
        let labels = rng.below(4);
        for _ in 0..labels {
            let l = LABELS[rng.below(LABELS.len() as u64) as usize].to_string();
            if !issue.labels.contains(&l) {
                issue.labels.push(l);
            }
        }
        match rng.below(10) {
            0..=4 => {
                issue.status = "Done".into();
                issue.status_category = "done".into();
                issue.resolved = Some(issue.updated);
            }
            5..=7 => {
                issue.status = "In Progress".into();
                issue.status_category = "indeterminate".into();
            }
            _ => {}
        }
        out.push(issue);
    }
    out
}

/// Moves an issue forward, as a day's work does: to do → in progress, in progress → done
/// (resolved at `at`), and a done issue gets a label.
pub fn move_forward(issue: &mut SimIssue, at: DateTime<Utc>) {
    match issue.status_category.as_str() {
        "new" => {
            issue.status = "In Progress".into();
            issue.status_category = "indeterminate".into();
        }
        "indeterminate" => {
            issue.status = "Done".into();
            issue.status_category = "done".into();
            issue.resolved = Some(at);
        }
        _ => issue.labels.push("touched".into()),
    }
}

/// The ids (1-based, as [`generate`] numbers them) of `count` issues of `n` picked with
/// `seed`; an id may come twice.
pub fn pick(n: usize, count: usize, seed: u64) -> Vec<u64> {
    let mut rng = Lcg(seed);
    (0..count).map(|_| 1 + rng.below(n as u64)).collect()
}

/// The OKRs for the data set, for a period from `start` to `end` (`YYYY-MM-DD`): a parent
/// objective, two children and eight grandchildren; eight completion KRs weighted by
/// estimate (one per project, by labels), a count KR (customer bugs), a sum KR (performance
/// work), and an exempt rule.
pub fn okrs(start: &str, end: &str) -> String {
    let mut s = format!(
        r#"[[objective]]
id = "company"
title = "Deliver the plan"
start = "{start}"
end = "{end}"

[[objective]]
id = "delivery"
title = "Ship what we promised"
start = "{start}"
end = "{end}"
parent = "company"

[[objective]]
id = "quality"
title = "Fewer fires"
start = "{start}"
end = "{end}"
parent = "company"

[[objective.kr]]
id = "quality.bugs"
title = "Close customer bugs"
measure = "count"
target = 5000

[[objective.kr]]
id = "quality.perf"
title = "Performance points"
measure = "sum"
target = 20000

[[rule]]
id = "customer-bugs"
kr = "quality.bugs"
[rule.match]
type = "Bug"
labels = "customer"

[[rule]]
id = "perf"
kr = "quality.perf"
[rule.match]
labels = ["perf", "tech-debt"]
type = {{ not = "Epic" }}

[[rule]]
id = "on-call"
exempt = true
[rule.match]
labels = "on-call"
"#
    );
    for p in &PROJECTS[..8] {
        let id = p.to_lowercase();
        s.push_str(&format!(
            r#"
[[objective]]
id = "delivery.{id}"
title = "{p} roadmap"
start = "{start}"
end = "{end}"
parent = "delivery"

[[objective.kr]]
id = "{id}.roadmap"
title = "{p} roadmap done"
measure = "completion"
weight_by = "estimate"

[[rule]]
id = "{id}-roadmap"
kr = "{id}.roadmap"
source = "jira"
[rule.match]
project = "{p}"
labels = ["emea", "checkout", "growth"]
type = {{ not = "Epic" }}
"#
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_issues_on_every_run() {
        let now = millis(Utc::now());
        let a = generate(500, now);
        assert_eq!(a, generate(500, now));
        assert_eq!(a[0].key, "WEB-1");
        assert_eq!(key_of(1), "WEB-1");
        assert_eq!(key_of(10), "PAY-1");
        assert_eq!(key_of(21), "WEB-3");
        assert!(a.iter().all(|i| i.key == key_of(i.id.parse().expect("id"))));
        // Every project has an epic before its first child.
        assert!(a.iter().any(|i| i.issue_type == "Epic"));
    }
}
