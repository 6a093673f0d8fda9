//! The demo's story: a quarter of simulated work dated relative to today. Every item has
//! a plan (created, started, finished), so the simulators can be set to the state of any
//! past day and the demo can replay the quarter through the normal sync path, which dates
//! the snapshots, runs and check-ins on the days they describe.
//!
//! Each KR is paced against the elapsed share of the period so that, whatever day today
//! is, the demo ends with one KR done, some on track, some at risk and some off track.
//!
//! The items themselves (keys, titles, points, labels, fixed days) are data, in
//! `data/story.toml`; this module holds the pacing and turns them into simulated issues.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Deserialize;

use crate::model::Period;
use crate::simulator::github::GhIssue;
use crate::simulator::gitlab::GlItem;
use crate::simulator::jira::SimIssue;

/// How long a quarter must have run before the demo shows it. In a quarter's first weeks
/// nothing can be behind yet (`at_risk` needs an elapsed share above 10 %, `off_track` one
/// above 25 %), so until then the demo reviews the quarter that just ended.
pub const SETTLING_DAYS: i64 = 28;

/// When an item came to be, started and reached done (`None`: not yet, as of the story's
/// last day).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    created: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    done: Option<DateTime<Utc>>,
}

/// An item's state on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Todo,
    InProgress,
    Done,
}

impl Plan {
    /// `None` before the item was created.
    fn at(&self, t: DateTime<Utc>) -> Option<(State, DateTime<Utc>)> {
        if self.created > t {
            return None;
        }
        Some(match (self.started, self.done) {
            (_, Some(d)) if d <= t => (State::Done, d),
            (Some(s), _) if s <= t => (State::InProgress, s),
            _ => (State::Todo, self.created),
        })
    }
}

#[derive(Debug, Clone)]
struct JiraWork {
    key: &'static str,
    summary: String,
    kind: &'static str,
    points: Option<f64>,
    labels: &'static [String],
    epic: Option<&'static str>,
    plan: Plan,
}

#[derive(Debug, Clone)]
struct GitHubWork {
    repo: &'static str,
    title: &'static str,
    pull_request: bool,
    labels: &'static [String],
    plan: Plan,
}

/// The story's items as written in `data/story.toml` (see there for what each part is).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoryData {
    checkout: Paced,
    bugs: Bugs,
    on_call: OnCall,
    payments_other: Vec<Fixed>,
    onboarding: Paced,
    web_other: Vec<Fixed>,
    github: GitHubData,
    gitlab: Vec<GitLabFixed>,
}

/// An epic and its stories, finished one after the other at the pace [`Story::new`] sets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paced {
    epic: Epic,
    kind: String,
    labels: Vec<String>,
    stories: Vec<PacedStory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Epic {
    key: String,
    summary: String,
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PacedStory {
    key: String,
    summary: String,
    points: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bugs {
    kind: String,
    points: f64,
    labels: Vec<String>,
    bugs: Vec<Bug>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bug {
    key: String,
    summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnCall {
    kind: String,
    points: f64,
    labels: Vec<String>,
    rotations: Vec<Rotation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    key: String,
    days_back: i64,
}

/// An item on fixed days.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixed {
    key: String,
    summary: String,
    kind: String,
    points: f64,
    labels: Vec<String>,
    plan: FixedPlan,
}

/// When an item came to be, started and reached done, as fractions of the story's span.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct FixedPlan {
    created: f64,
    started: Option<f64>,
    done: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitHubData {
    onboarding: Vec<GitHubShipped>,
    other: Vec<GitHubFixed>,
}

/// Shipped one after the other over the quarter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitHubShipped {
    repo: String,
    title: String,
    pull_request: bool,
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitHubFixed {
    repo: String,
    title: String,
    pull_request: bool,
    labels: Vec<String>,
    plan: FixedPlan,
}

/// Platform work on GitLab, on fixed days.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitLabFixed {
    project: String,
    title: String,
    merge_request: bool,
    labels: Vec<String>,
    #[serde(default)]
    weight: Option<u64>,
    plan: FixedPlan,
}

#[derive(Debug, Clone)]
struct GitLabWork {
    project: &'static str,
    title: &'static str,
    merge_request: bool,
    labels: &'static [String],
    weight: Option<u64>,
    plan: Plan,
}

/// `data/story.toml`, read once.
static DATA: LazyLock<StoryData> = LazyLock::new(|| {
    toml::from_str(include_str!("data/story.toml")).expect("src/demo/data/story.toml is valid")
});

/// The demo's quarter and everything that happens in it.
#[derive(Debug, Clone)]
pub struct Story {
    /// The period the demo's objectives use.
    pub period: Period,
    /// The story's last day: now, or the end of the quarter the demo reviews.
    pub until: DateTime<Utc>,
    jira: Vec<JiraWork>,
    github: Vec<GitHubWork>,
    gitlab: Vec<GitLabWork>,
}

/// The quarter containing `t`.
fn quarter_of(t: DateTime<Utc>) -> Period {
    let label = format!("{}-Q{}", t.year(), (t.month() - 1) / 3 + 1);
    Period::parse(&label).expect("a quarter label is a period")
}

/// The item's number of the key (`PAY-12` → 12).
fn key_number(key: &str) -> u64 {
    key.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// How many leading items, by weight, come closest to `target` (never all of them when
/// `keep_one` is set, so the KR is not finished).
fn closest_prefix(weights: &[f64], target: f64, keep_one: bool) -> usize {
    let max = if keep_one {
        weights.len().saturating_sub(1)
    } else {
        weights.len()
    };
    let mut best = (0, target.abs());
    let mut sum = 0.0;
    for (n, w) in weights.iter().take(max).enumerate() {
        sum += w;
        let miss = (sum - target).abs();
        if miss < best.1 {
            best = (n + 1, miss);
        }
    }
    best.0
}

impl Story {
    pub fn new(now: DateTime<Utc>) -> Story {
        let data: &'static StoryData = &DATA;
        let period = quarter_of(now - Duration::days(SETTLING_DAYS));
        let start = period.starts_at();
        let until = now.min(period.ends_at() - Duration::hours(1));
        // The elapsed share the statuses will be judged against (1 for an ended quarter).
        let e = period.expected(now);
        let span = until - start;
        let at =
            |f: f64| start + Duration::milliseconds((span.num_milliseconds() as f64 * f) as i64);
        let fixed = |p: FixedPlan| Plan {
            created: at(p.created),
            started: p.started.map(at),
            done: p.done.map(at),
        };
        let mut jira = Vec::new();
        let planned = start - Duration::days(10);
        // Work planned for the quarter: the leading `done` items finish one after the other,
        // evenly by weight until the story's last day; the next two are under way.
        let paced = |weights: &[f64], done: usize, n: usize| -> Plan {
            let total: f64 = weights.iter().take(done).sum();
            if n < done {
                let so_far: f64 = weights.iter().take(n + 1).sum();
                let d = at(0.97 * so_far / total.max(1.0));
                Plan {
                    created: planned,
                    started: Some(d - Duration::days(5)),
                    done: Some(d),
                }
            } else if n < done + 2 {
                Plan {
                    created: planned,
                    started: Some(at(0.93 - 0.15 * (n - done) as f64)),
                    done: None,
                }
            } else {
                Plan {
                    created: planned,
                    started: None,
                    done: None,
                }
            }
        };
        let epic_plan = Plan {
            created: start - Duration::days(20),
            started: Some(start - Duration::days(7)),
            done: None,
        };
        // An epic, then its stories, the leading `done` of them finished.
        let add_paced = |jira: &mut Vec<JiraWork>, group: &'static Paced, done: usize| {
            jira.push(JiraWork {
                key: &group.epic.key,
                summary: group.epic.summary.clone(),
                kind: "Epic",
                points: None,
                labels: &group.epic.labels,
                epic: None,
                plan: epic_plan,
            });
            let weights: Vec<f64> = group.stories.iter().map(|s| s.points).collect();
            for (n, story) in group.stories.iter().enumerate() {
                jira.push(JiraWork {
                    key: &story.key,
                    summary: story.summary.clone(),
                    kind: &group.kind,
                    points: Some(story.points),
                    labels: &group.labels,
                    epic: Some(&group.epic.key),
                    plan: paced(&weights, done, n),
                });
            }
        };
        let fixed_work = |w: &'static Fixed| JiraWork {
            key: &w.key,
            summary: w.summary.clone(),
            kind: &w.kind,
            points: Some(w.points),
            labels: &w.labels,
            epic: None,
            plan: fixed(w.plan),
        };

        // The EMEA checkout: on track, never quite finished.
        let weights: Vec<f64> = data.checkout.stories.iter().map(|s| s.points).collect();
        let total: f64 = weights.iter().sum();
        let done = closest_prefix(&weights, e.min(0.92) * total, true);
        add_paced(&mut jira, &data.checkout, done);

        // Customer bugs (target 12): at risk, some 17 points behind the calendar.
        let bugs = &data.bugs;
        let closed = ((12.0 * (e - 0.175)).round().clamp(0.0, 12.0)) as usize;
        for (n, bug) in bugs.bugs.iter().enumerate() {
            let plan = if n < closed {
                let d = at(0.97 * (n + 1) as f64 / closed as f64);
                Plan {
                    created: d - Duration::days(4),
                    started: Some(d - Duration::days(2)),
                    done: Some(d),
                }
            } else if n < closed + 2 {
                let s = at(0.9 - 0.12 * (n - closed) as f64);
                Plan {
                    created: s - Duration::days(3),
                    started: Some(s),
                    done: None,
                }
            } else {
                Plan {
                    created: at(0.55 + 0.1 * (n % 4) as f64),
                    started: None,
                    done: None,
                }
            };
            jira.push(JiraWork {
                key: &bug.key,
                summary: bug.summary.clone(),
                kind: &bugs.kind,
                points: Some(bugs.points),
                labels: &bugs.labels,
                epic: None,
                plan,
            });
        }

        // On-call rotations, each a week ending `days_back` before the story's last day.
        let on_call = &data.on_call;
        for rotation in &on_call.rotations {
            let back = rotation.days_back;
            let week_start = until - Duration::days(back + 6);
            jira.push(JiraWork {
                key: &rotation.key,
                summary: format!("Pager rotation week {}", week_start.iso_week().week()),
                kind: &on_call.kind,
                points: Some(on_call.points),
                labels: &on_call.labels,
                epic: None,
                plan: Plan {
                    created: week_start - Duration::days(3),
                    started: Some(week_start),
                    done: (back > 0).then(|| week_start + Duration::days(6)),
                },
            });
        }
        jira.extend(data.payments_other.iter().map(fixed_work));

        // Self-serve onboarding: its points (sum, target 40) trail far behind.
        let weights: Vec<f64> = data.onboarding.stories.iter().map(|s| s.points).collect();
        let done = closest_prefix(&weights, 40.0 * (e - 0.45), true);
        add_paced(&mut jira, &data.onboarding, done);
        jira.extend(data.web_other.iter().map(fixed_work));

        // GitHub: the onboarding work shipped one after the other, then the rest.
        let mut github = Vec::new();
        let shipped = &data.github.onboarding;
        for (n, w) in shipped.iter().enumerate() {
            let d = at(0.95 * (n + 1) as f64 / shipped.len() as f64);
            github.push(GitHubWork {
                repo: &w.repo,
                title: &w.title,
                pull_request: w.pull_request,
                labels: &w.labels,
                plan: Plan {
                    created: d - Duration::days(3),
                    started: Some(d - Duration::days(2)),
                    done: Some(d),
                },
            });
        }
        for w in &data.github.other {
            github.push(GitHubWork {
                repo: &w.repo,
                title: &w.title,
                pull_request: w.pull_request,
                labels: &w.labels,
                plan: fixed(w.plan),
            });
        }
        let gitlab = data
            .gitlab
            .iter()
            .map(|w| GitLabWork {
                project: &w.project,
                title: &w.title,
                merge_request: w.merge_request,
                labels: &w.labels,
                weight: w.weight,
                plan: fixed(w.plan),
            })
            .collect();
        Story {
            period,
            until,
            jira,
            github,
            gitlab,
        }
    }

    /// The moments to replay, oldest first: every other day of the period, mornings,
    /// before the story's last day.
    pub fn replay_days(&self) -> Vec<DateTime<Utc>> {
        let first = self.period.starts_at() + Duration::hours(9);
        (0..)
            .map(|n| first + Duration::days(2 * n))
            .take_while(|t| *t < self.until)
            .collect()
    }

    /// The simulated Jira as of `t`: the issues created by then, in their state of then.
    pub fn jira_issues(&self, t: DateTime<Utc>) -> Vec<SimIssue> {
        let people = ["Ana Lima", "Ben Okafor", "Chen Wei", "Dana Kowalski"];
        let mut out = Vec::new();
        for (n, w) in self.jira.iter().enumerate() {
            let Some((state, changed)) = w.plan.at(t) else {
                continue;
            };
            let id = 10_001 + n as u64;
            let mut i = SimIssue::new(id, w.key, &w.summary);
            i.issue_type = w.kind.into();
            i.created = w.plan.created;
            i.updated = changed;
            let (status, category) = match state {
                State::Todo => ("To Do", "new"),
                State::InProgress => ("In Progress", "indeterminate"),
                State::Done => ("Done", "done"),
            };
            i.status = status.into();
            i.status_category = category.into();
            i.resolved = (state == State::Done).then_some(changed);
            i.story_points = w.points;
            i.labels = w.labels.iter().map(|s| s.to_string()).collect();
            i.parent = w.epic.map(|p| (p.to_string(), "Epic".to_string()));
            i.assignee = (state != State::Todo || key_number(w.key).is_multiple_of(3))
                .then(|| people[id as usize % 4].to_string());
            out.push(i);
        }
        out
    }

    /// The GitLab projects the story's work is in.
    pub fn gitlab_projects(&self) -> Vec<&'static str> {
        let mut projects: Vec<&'static str> = self.gitlab.iter().map(|w| w.project).collect();
        projects.dedup();
        projects
    }

    /// The simulated GitLab as of `t`: the issues and merge requests created by then.
    pub fn gitlab_items(&self, t: DateTime<Utc>) -> Vec<GlItem> {
        let mut out = Vec::new();
        let mut numbers: std::collections::BTreeMap<(&str, bool), u64> = Default::default();
        for (n, w) in self.gitlab.iter().enumerate() {
            let iid = numbers.entry((w.project, w.merge_request)).or_default();
            *iid += 1;
            let Some((state, changed)) = w.plan.at(t) else {
                continue;
            };
            let id = 70_000 + n as u64;
            let mut i = if w.merge_request {
                GlItem::merge_request(id, w.project, *iid, w.title)
            } else {
                GlItem::issue(id, w.project, *iid, w.title)
            };
            i.labels = w.labels.to_vec();
            i.weight = w.weight;
            i.created = w.plan.created;
            i.updated = changed;
            i.assignee = (state != State::Todo).then(|| ["rin", "sam"][n % 2].to_string());
            if state == State::Done {
                if w.merge_request {
                    i.state = "merged".into();
                    i.merged = Some(changed);
                } else {
                    i.state = "closed".into();
                    i.closed = Some(changed);
                }
            }
            out.push(i);
        }
        out
    }

    /// The simulated GitHub as of `t`, as `(repo, issue)`.
    pub fn github_issues(&self, t: DateTime<Utc>) -> Vec<(&'static str, GhIssue)> {
        let mut out = Vec::new();
        for (n, w) in self.github.iter().enumerate() {
            let Some((state, changed)) = w.plan.at(t) else {
                continue;
            };
            let number = n as u64 + 1;
            let mut i = GhIssue::new(50_000 + number, number, w.title);
            i.pull_request = w.pull_request;
            i.labels = w.labels.iter().map(|s| s.to_string()).collect();
            i.created = w.plan.created;
            i.updated = changed;
            i.assignee =
                (state != State::Todo).then(|| ["mona", "hubot", "octocat"][n % 3].to_string());
            if state == State::Done {
                i.state = "closed".into();
                i.closed = Some(changed);
                if w.pull_request {
                    i.merged_at = Some(changed);
                } else {
                    i.state_reason = Some("completed".into());
                }
            }
            out.push((w.repo, i));
        }
        out
    }

    /// The finance team's spreadsheet as of `t`: EMEA MRR keeps pace with the calendar,
    /// churn falls about 17 points behind it.
    pub fn metrics_csv(&self, t: DateTime<Utc>) -> String {
        let e = self.period.expected(t);
        let wiggle = 0.012 * ((t - self.period.starts_at()).num_days() as f64).sin();
        let mrr = 1_200_000.0 + 800_000.0 * ((0.97 * e).min(0.95) + wiggle).max(0.0);
        let mrr = (mrr / 1000.0).round() as i64 * 1000;
        let churn = 5.0 - 2.0 * (e - 0.17).max(0.0);
        format!(
            "Metric,Value,Note\nMRR EMEA,\"{},{:03},{:03}\",from the finance team\nChurn,{:.1}%,monthly\n",
            mrr / 1_000_000,
            mrr / 1000 % 1000,
            mrr % 1000,
            churn
        )
    }

    /// The owner's weekly check-ins of partner NPS (20 → 40, on track): `(when, value, note)`.
    pub fn nps_checkins(&self) -> Vec<(DateTime<Utc>, f64, String)> {
        let start = self.period.starts_at();
        let mut out: Vec<(DateTime<Utc>, f64, String)> = (0..)
            .map(|n| self.until - Duration::days(1 + 7 * n))
            .take_while(|t| *t > start)
            .map(|t| {
                let e = self.period.expected(t);
                let value = (20.0 + 20.0 * (e + 0.05).min(0.95)).round();
                (t, value, String::new())
            })
            .collect();
        out.reverse();
        for (n, c) in out.iter_mut().enumerate() {
            c.2 = format!("partner survey, wave {}", n + 1);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Status, StatusMargins};
    use crate::progress::status;
    use chrono::TimeZone;

    /// The statuses the story's KRs end with on a day, computed from its items as the
    /// demo's rules and measures would.
    fn statuses(now: DateTime<Utc>) -> Vec<(&'static str, f64, Status)> {
        let s = Story::new(now);
        let e = s.period.expected(now);
        let issues = s.jira_issues(s.until);
        let in_period = |i: &SimIssue| {
            i.resolved
                .is_some_and(|r| s.period.contains(r) && i.status_category == "done")
        };
        let epic = |i: &SimIssue, key: &str| i.parent.as_ref().is_some_and(|p| p.0 == key);
        let done_points = |key: &str, period: bool| -> (f64, f64) {
            let kids: Vec<&SimIssue> = issues.iter().filter(|i| epic(i, key)).collect();
            let total = kids.iter().filter_map(|i| i.story_points).sum();
            let done = kids
                .iter()
                .filter(|i| i.status_category == "done" && (!period || in_period(i)))
                .filter_map(|i| i.story_points)
                .sum();
            (done, total)
        };
        let (done, total) = done_points("PAY-1", false);
        let checkout = done / total;
        let bugs = issues
            .iter()
            .filter(|i| i.labels.iter().any(|l| l == "customer") && in_period(i))
            .count() as f64
            / 12.0;
        let points = (done_points("WEB-1", true).0 / 40.0).min(1.0);
        let (done, total) = done_points("WEB-1", false);
        let launch = if done == total { 1.0 } else { 0.0 };
        let gh = s.github_issues(s.until);
        let onboarding: Vec<_> = gh
            .iter()
            .filter(|(_, i)| i.labels.iter().any(|l| l == "onboarding"))
            .collect();
        let frontend = onboarding
            .iter()
            .filter(|(_, i)| i.state == "closed")
            .count() as f64
            / onboarding.len() as f64;
        let csv = s.metrics_csv(s.until);
        let cell = |row: &str| -> f64 {
            let line = csv.lines().find(|l| l.starts_with(row)).expect("row");
            let v = line[row.len() + 1..].trim_start_matches('"');
            let v: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
                .filter(|c| *c != ',')
                .collect();
            v.trim_end_matches('.').parse().expect("number")
        };
        let mrr = (cell("MRR EMEA") - 1_200_000.0) / 800_000.0;
        let churn = (5.0 - cell("Churn")) / 2.0;
        let nps = s.nps_checkins().last().map_or(0.0, |c| (c.1 - 20.0) / 20.0);
        [
            ("emea.checkout", checkout),
            ("emea.bugs", bugs),
            ("emea.mrr", mrr),
            ("company.churn", churn),
            ("company.nps", nps),
            ("selfserve.launch", launch),
            ("selfserve.points", points),
            ("selfserve.frontend", frontend),
        ]
        .into_iter()
        .map(|(k, p)| (k, p, status(p.clamp(0.0, 1.0), e, StatusMargins::default())))
        .collect()
    }

    #[test]
    fn every_day_of_two_years_ends_with_done_on_track_at_risk_and_off_track() {
        let first = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 30, 0)
            .single()
            .expect("t");
        for day in 0..(2 * 366) {
            for hour in [0, 13, 23] {
                let now = first + Duration::days(day) + Duration::hours(hour);
                let got = statuses(now);
                let want = [
                    ("emea.checkout", Status::OnTrack),
                    ("emea.bugs", Status::AtRisk),
                    ("emea.mrr", Status::OnTrack),
                    ("company.churn", Status::AtRisk),
                    ("company.nps", Status::OnTrack),
                    ("selfserve.launch", Status::OffTrack),
                    ("selfserve.points", Status::OffTrack),
                    ("selfserve.frontend", Status::Done),
                ];
                for ((kr, p, status), (wkr, wstatus)) in got.iter().zip(want) {
                    assert_eq!(
                        (*kr, *status),
                        (wkr, wstatus),
                        "on {now} ({} of {}): progress {p}",
                        Story::new(now).period.expected(now),
                        Story::new(now).period.label
                    );
                }
            }
        }
    }

    #[test]
    fn the_quarter_shown_has_run_four_weeks_or_has_just_ended() {
        let t = |m, d| {
            Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0)
                .single()
                .expect("t")
        };
        assert_eq!(Story::new(t(11, 15)).period.label, "2026-Q4");
        assert_eq!(Story::new(t(10, 2)).period.label, "2026-Q3");
        let s = Story::new(t(10, 2));
        assert!(s.until < s.period.ends_at() && s.until > t(9, 30));
        let days = s.replay_days();
        assert!(days.len() > 40, "{}", days.len());
        assert!(days.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_backlog_has_epics_bugs_and_unaligned_work() {
        let s = Story::new(Utc::now());
        let issues = s.jira_issues(s.until);
        assert!(issues.len() >= 45);
        assert!(issues
            .iter()
            .any(|i| i.key == "PAY-1" && i.issue_type == "Epic"));
        assert!(
            issues
                .iter()
                .filter(|i| i.parent.as_ref().is_some_and(|p| p.0 == "WEB-1"))
                .count()
                >= 5
        );
        assert!(issues.iter().any(|i| i.labels.is_empty()));
        // The past has fewer issues, and less of them done.
        let early = s.jira_issues(s.period.starts_at() + Duration::days(1));
        let done = |v: &[SimIssue]| v.iter().filter(|i| i.status_category == "done").count();
        assert!(early.len() < issues.len());
        assert!(done(&early) < done(&issues));
    }
}
