//! Micro benchmark for issue 12 (re-match 100,000 items × 500 rules within the 1 s of a
//! rules change): the original plain loop, the plain loop with borrowed field values, and
//! the indexed evaluation, owned and borrowed. Prints figures, asserts only that every
//! variant says the same. Run it optimised, on one core:
//!
//! ```text
//! cargo test --release --lib rules::bench -- --ignored --nocapture
//! ```
//!
//! The rules are shaped like a real OKR set: 100 KRs of 50 projects, nine rules per project
//! (labels, `type = { not = "Epic" }`, title regexes, custom fields, epics, components,
//! status), exempt rules on labels and types, rules pinned to issue keys, cross-project
//! label rules and rules that only filter by `source`. The items are Jira issues.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use super::{reference, Condition, Evaluation, RuleDef, RuleSet};
use crate::model::{Category, Item, ItemKind, KrId, SourceId};

const ITEMS: usize = 100_000;
const PROJECTS: usize = 50;
const LABELS: &[&str] = &[
    "emea",
    "apac",
    "checkout",
    "payments",
    "growth",
    "retention",
    "perf",
    "security",
    "gdpr",
    "mobile",
    "web",
    "api",
    "tech-debt",
    "on-call",
    "support",
    "chore",
    "team-a",
    "team-b",
    "team-c",
    "spike",
];

fn cond(key: &str, toml_value: &str) -> Condition {
    let v: toml::Table = format!("v = {toml_value}").parse().expect("toml");
    Condition::parse(key, &v["v"]).expect("condition")
}

struct Rules(Vec<RuleDef>);

impl Rules {
    fn add(&mut self, krs: &[String], exempt: bool, source: Option<&str>, conds: &[(&str, &str)]) {
        self.0.push(RuleDef {
            id: format!("okrs/rules.toml#{}", self.0.len() + 1).into(),
            krs: krs.iter().map(|k| KrId::from(k.as_str())).collect(),
            exempt,
            source: source.map(SourceId::from),
            conditions: conds.iter().map(|(k, v)| cond(k, v)).collect(),
            file: "okrs/rules.toml".into(),
        });
    }
}

fn rules() -> RuleSet {
    let kr = |n: usize| format!("o{}.kr{}", n / 2, n % 2 + 1);
    let label = |n: usize| format!("\"{}\"", LABELS[n % LABELS.len()]);
    let mut r = Rules(Vec::new());
    for p in 0..PROJECTS {
        let project = format!("\"P{p}\"");
        let pair = format!("[\"P{p}\", \"P{}\"]", (p + 1) % PROJECTS);
        let (a, b) = (vec![kr(2 * p)], vec![kr(2 * p + 1)]);
        let both = vec![kr(2 * p), kr(2 * p + 1)];
        let labels = format!("[{}, {}]", label(p), label(p + 3));
        r.add(
            &a,
            false,
            Some("jira"),
            &[
                ("project", &project),
                ("labels", &labels),
                ("type", "{ not = \"Epic\" }"),
            ],
        );
        r.add(
            &b,
            false,
            None,
            &[
                ("project", &project),
                ("labels", &label(p + 7)),
                ("type", "[\"Story\", \"Bug\"]"),
            ],
        );
        r.add(
            &a,
            false,
            None,
            &[
                ("project", &project),
                ("title", "{ regex = \"(?i)checkout|payment\" }"),
                ("type", "{ not = \"Epic\" }"),
            ],
        );
        r.add(
            &b,
            false,
            None,
            &[
                ("project", &project),
                ("fields.customfield_10050", "\"Growth\""),
            ],
        );
        let epics = format!("[\"P{p}-1\", \"P{p}-2\"]");
        r.add(&a, false, None, &[("project", &project), ("epic", &epics)]);
        r.add(
            &b,
            false,
            None,
            &[
                ("project", &project),
                ("category", "\"done\""),
                ("labels", "{ not = \"spike\" }"),
            ],
        );
        r.add(
            &a,
            false,
            None,
            &[
                ("project", &project),
                ("components", "[\"web\", \"api\"]"),
                ("fields.customfield_10016", "{ not = 0 }"),
            ],
        );
        r.add(
            &b,
            false,
            None,
            &[
                ("project", &pair),
                ("status", "\"In Review\""),
                ("type", "{ not = [\"Epic\", \"Sub-task\"] }"),
            ],
        );
        r.add(
            &both,
            false,
            None,
            &[("project", &project), ("labels", "{ regex = \"^team-\" }")],
        );
    }
    // Exempt: on-call, support and chores everywhere, sub-tasks, tech debt of some teams.
    r.add(&[], true, None, &[("labels", "\"on-call\"")]);
    r.add(&[], true, None, &[("labels", "\"support\"")]);
    r.add(
        &[],
        true,
        None,
        &[("labels", "\"chore\""), ("category", "{ not = \"todo\" }")],
    );
    r.add(
        &[],
        true,
        Some("jira"),
        &[("type", "\"Sub-task\""), ("labels", "{ not = \"emea\" }")],
    );
    r.add(
        &[],
        true,
        None,
        &[("labels", "\"spike\""), ("estimate", "{ not = 13 }")],
    );
    for p in (0..PROJECTS).step_by(5) {
        r.add(
            &[],
            true,
            None,
            &[
                ("project", &format!("\"P{p}\"")),
                ("labels", "\"tech-debt\""),
            ],
        );
    }
    // Rules that only filter by source: every Jira issue checks them.
    r.add(
        &[kr(0)],
        false,
        Some("jira"),
        &[("title", "{ regex = \"(?i)incident\" }")],
    );
    r.add(
        &[kr(1)],
        false,
        Some("jira"),
        &[("title", "{ regex = \"^\\\\[GDPR\\\\]\" }")],
    );
    r.add(
        &[kr(2)],
        false,
        Some("jira"),
        &[
            ("title", "{ regex = \"(?i)migrat\" }"),
            ("category", "\"done\""),
        ],
    );
    r.add(
        &[kr(3)],
        false,
        Some("jira"),
        &[("fields.customfield_10050", "\"Compliance\"")],
    );
    r.add(
        &[kr(4)],
        false,
        Some("jira"),
        &[("estimate", "[8, 13]"), ("category", "{ not = \"todo\" }")],
    );
    // By type or status, across projects.
    for (n, t) in ["Bug", "Story", "Task", "Bug", "Story"].iter().enumerate() {
        r.add(
            &[kr(10 + n)],
            false,
            None,
            &[
                ("type", &format!("\"{t}\"")),
                ("fields.customfield_10050", "\"Growth\""),
                ("category", "\"done\""),
            ],
        );
    }
    for (n, s) in ["Blocked", "In Review", "Blocked", "Done", "To Do"]
        .iter()
        .enumerate()
    {
        r.add(
            &[kr(20 + n)],
            false,
            None,
            &[
                ("status", &format!("\"{s}\"")),
                ("labels", "{ not = \"spike\" }"),
            ],
        );
    }
    // Issues pinned by key.
    for n in 0..10 {
        let p = n * 5;
        r.add(
            &[kr(2 * p)],
            false,
            None,
            &[(
                "key",
                &format!("[\"P{p}-{}\", \"P{p}-{}\"]", n + 17, n + 18),
            )],
        );
    }
    // Cross-project initiatives by label.
    for n in 0..10 {
        r.add(
            &[kr(30 + n)],
            false,
            None,
            &[("labels", &label(n + 4)), ("project", "{ not = \"P49\" }")],
        );
    }
    assert_eq!(r.0.len(), 500);
    RuleSet::new(r.0)
}

fn items() -> Vec<Item> {
    let mut rng = StdRng::seed_from_u64(12);
    let types = [
        ("Story", 50),
        ("Bug", 25),
        ("Task", 12),
        ("Sub-task", 8),
        ("Epic", 5),
    ];
    let statuses = [
        ("To Do", Category::Todo),
        ("Blocked", Category::Todo),
        ("In Progress", Category::InProgress),
        ("In Review", Category::InProgress),
        ("Done", Category::Done),
        ("Closed", Category::Done),
    ];
    let titles = [
        "Checkout: saved cards",
        "Fix payment retries",
        "Refactor the session store",
        "Incident follow-up: queue backlog",
        "[GDPR] export of user data",
        "Migrate reports to v2",
        "Improve search ranking",
        "Onboarding emails",
    ];
    let components = ["web", "api", "mobile", "infra"];
    (0..ITEMS)
        .map(|n| {
            let p = rng.random_range(0..PROJECTS);
            let item_type = types
                .choose_weighted(&mut rng, |t| t.1)
                .map_or("Story", |t| t.0);
            let (status, category) = *statuses.choose(&mut rng).unwrap_or(&statuses[0]);
            let mut labels: Vec<String> = LABELS.iter().map(|l| l.to_string()).collect();
            labels.shuffle(&mut rng);
            labels.truncate(rng.random_range(0..=3));
            let n_components = rng.random_range(0..=2);
            let mut fields = BTreeMap::new();
            if rng.random_bool(0.4) {
                let team = ["Growth", "Core", "Compliance"].choose(&mut rng).copied();
                fields.insert("customfield_10050".into(), serde_json::json!(team));
            }
            if rng.random_bool(0.5) {
                fields.insert(
                    "customfield_10016".into(),
                    serde_json::json!(rng.random_range(0..8)),
                );
            }
            Item {
                source: "jira".into(),
                ext_id: format!("{}", 10_000 + n),
                key: format!("P{p}-{}", n / PROJECTS + 1),
                kind: ItemKind::Issue,
                title: titles.choose(&mut rng).copied().unwrap_or_default().into(),
                url: format!("https://jira.example/browse/P{p}-{}", n / PROJECTS + 1),
                project: format!("P{p}"),
                item_type: item_type.into(),
                status: status.into(),
                category,
                labels,
                components: components
                    .choose_multiple(&mut rng, n_components)
                    .map(|c| c.to_string())
                    .collect(),
                epic: rng
                    .random_bool(0.6)
                    .then(|| format!("P{p}-{}", rng.random_range(1..=20))),
                parent: None,
                milestone: None,
                assignee: rng
                    .random_bool(0.8)
                    .then(|| format!("dev{}", rng.random_range(0..200))),
                estimate: rng
                    .random_bool(0.7)
                    .then(|| [1.0, 2.0, 3.0, 5.0, 8.0, 13.0][rng.random_range(0..6)]),
                created: None,
                updated: Default::default(),
                resolved: None,
                fields,
                abandoned: false,
            }
        })
        .collect()
}

/// What a pass over every item computed, to check that the variants agree.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    matches: usize,
    exempt: usize,
    id_bytes: usize,
}

impl Tally {
    fn add<'a>(
        &mut self,
        matches: impl IntoIterator<Item = (&'a str, &'a str)>,
        exempt: Option<&str>,
    ) {
        for (kr, rule) in matches {
            self.matches += 1;
            self.id_bytes += kr.len() + rule.len();
        }
        self.exempt += usize::from(exempt.is_some());
    }

    fn add_owned(&mut self, e: &Evaluation) {
        let matches = e.matches.iter().map(|(k, r)| (k.as_str(), r.as_str()));
        self.add(matches, e.exempt_rule.as_deref());
    }
}

/// How the items reach the rules.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// All 100,000 already in memory, their strings spread over a heap far larger than the
    /// CPU caches: many field reads miss them.
    InMemory,
    /// Each batch of 1,000 copied afresh just before it is evaluated, so its strings are
    /// still in the caches: like the re-match loop, which evaluates each batch just after
    /// reading it from the store.
    Batches,
}

/// Runs `eval` over every item `runs` times, fed as `feed` says, timing each batch of 1,000
/// by the wall clock. Returns the sum over the batches of each one's fastest run: on a
/// shared machine another process preempts a batch in one run, rarely in all of them.
fn measure(
    items: &[Item],
    feed: Feed,
    runs: usize,
    mut eval: impl FnMut(&Item, &mut Tally),
) -> (Duration, Tally) {
    let mut best = vec![Duration::MAX; items.chunks(1000).len()];
    let mut tally = Tally::default();
    for _ in 0..runs {
        tally = Tally::default();
        for (chunk, best) in items.chunks(1000).zip(&mut best) {
            let copy;
            let batch = match feed {
                Feed::InMemory => chunk,
                Feed::Batches => {
                    copy = chunk.to_vec();
                    &copy[..]
                }
            };
            let start = Instant::now();
            for item in batch {
                eval(black_box(item), &mut tally);
            }
            *best = (*best).min(start.elapsed());
        }
    }
    (best.iter().sum(), black_box(tally))
}

#[test]
#[ignore = "a benchmark: cargo test --release --lib rules::bench -- --ignored --nocapture"]
fn rematch_100k_items_against_500_rules() {
    let set = rules();
    // Copied once, in order, as if just read from the store: the generator's shuffles
    // leave each item's strings scattered, which costs a third more in cache misses.
    let items = items().to_vec();
    println!(
        "{ITEMS} items × {} rules, one thread; each batch of 1,000 items timed, its fastest \
         of 2 (before) or 5 runs, summed",
        set.rules().len()
    );
    println!("{:<52} {:>12} {:>18}", "", "in memory", "batches of 1,000");
    let mut want = None;
    let mut figures = Vec::new();
    let mut row = |what: &str, runs: usize, eval: &mut dyn FnMut(&Item, &mut Tally)| {
        let (cold, got) = measure(&items, Feed::InMemory, runs, &mut *eval);
        let (warm, again) = measure(&items, Feed::Batches, runs, &mut *eval);
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        println!("{what:<52} {:>12} {:>18}", ms(cold), ms(warm));
        assert_eq!(got, again);
        assert_eq!(&got, want.get_or_insert_with(|| got.clone()), "{what}");
        figures.push((cold, warm));
    };

    let before = "before: every rule, values copied (evaluate_slow)";
    row(before, 2, &mut |item, t| {
        t.add_owned(&reference::evaluate(&set, item))
    });
    row("every rule, values borrowed", 2, &mut |item, t| {
        let mut e = Evaluation::default();
        for rule in set.rules().iter().filter(|r| r.matches(item)) {
            if rule.exempt {
                e.exempt_rule = e.exempt_rule.or(Some(rule.id.to_string()));
                continue;
            }
            for kr in &rule.krs {
                if !e.matches.iter().any(|(k, _)| kr == k) {
                    e.matches.push((kr.to_string(), rule.id.to_string()));
                }
            }
        }
        t.add_owned(&e);
    });
    let owned = "after: indexed, RuleSet::evaluate (owned ids)";
    row(owned, 5, &mut |item, t| t.add_owned(&set.evaluate(item)));
    let mut evaluator = set.evaluator();
    let borrowed = "after: indexed, Evaluator::evaluate (borrowed ids)";
    row(borrowed, 5, &mut |item, t| {
        let e = evaluator.evaluate(item);
        t.add(e.matches.iter().copied(), e.exempt_rule);
    });

    let ones = |bits: &[u64]| bits.iter().map(|w| w.count_ones() as usize).sum::<usize>();
    let mut candidates = Vec::new();
    let checked: usize = items
        .iter()
        .map(|item| {
            set.index.candidates(item, &mut candidates);
            ones(&candidates)
        })
        .sum();
    let want = want.unwrap_or_default();
    let (old, new) = (figures[0], figures[figures.len() - 1]);
    println!(
        "rules checked per item: {:.1} of {} ({} always); {} matches, {} exempt; \
         Evaluator {:.0}× / {:.0}× faster than before",
        checked as f64 / ITEMS as f64,
        set.rules().len(),
        ones(&set.index.always),
        want.matches,
        want.exempt,
        old.0.as_secs_f64() / new.0.as_secs_f64(),
        old.1.as_secs_f64() / new.1.as_secs_f64(),
    );
    for item in items.iter().step_by(97) {
        assert_eq!(set.evaluate(item), set.evaluate_slow(item));
    }
}
