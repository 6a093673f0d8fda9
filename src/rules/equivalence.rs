//! Property test: the indexed, borrowing evaluation says exactly what the plain loop over
//! every rule with copied values (`reference`) says, for random rule sets and items.
//!
//! Values come from small pools that collide on purpose: strings that parse as numbers
//! (`"3.0"`, `" 3 "`, `"-0"`), that spell booleans, `NaN` and `inf`, empty strings; numbers
//! whose text is long (1e300) or signed (-0); custom fields holding strings, numbers,
//! booleans, `null`, arrays of those and objects.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::{reference, Condition, FieldPath, RuleDef, RuleSet, Scalar, Test};
use crate::model::{Category, Item, ItemKind, KrId, SourceId};

/// Strings in rules and items alike, so that equalities and index lookups hit.
const WORDS: &[&str] = &[
    "a",
    "b",
    "PAY",
    "",
    "3",
    "3.0",
    " 3 ",
    "-0",
    "0",
    "true",
    "false",
    "NaN",
    "inf",
    "2.5",
    "1e3",
    "jira",
    "github",
    "todo",
    "done",
    "in_progress",
    "issue",
    "epic",
];
/// The few values an item's string fields take: more collisions than with `WORDS`.
const ITEM_WORDS: &[&str] = &[
    "a", "b", "PAY", "", "3", "3.0", " 3 ", "-0", "true", "NaN", "1e3", "jira",
];
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    3.0,
    2.5,
    1000.0,
    1e15,
    1e16,
    1e300,
    1e-7,
    0.30000000000000004,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];
const REGEXES: &[&str] = &[
    "^a$",
    "3",
    "(?i)pay",
    "^$",
    ".",
    "^-?0$",
    "^true$",
    r"\.",
    "e",
    "^3$",
    "inf|NaN",
    "^1000000000000000$",
    "^1e",
];
const SOURCES: &[&str] = &["jira", "github", ""];
const KRS: &[&str] = &["k1", "k2", "k3", "k4"];

fn field(rng: &mut StdRng) -> FieldPath {
    let known = FieldPath::KNOWN;
    let i = rng.random_range(0..known.len() + 2);
    match known.get(i) {
        Some(key) => FieldPath::parse(key).unwrap_or(FieldPath::Title),
        None if i == known.len() => FieldPath::Custom("x".into()),
        None => FieldPath::Custom("y".into()),
    }
}

fn word(rng: &mut StdRng, pool: &[&str]) -> String {
    pool.choose(rng).copied().unwrap_or_default().to_string()
}

fn number(rng: &mut StdRng) -> f64 {
    NUMBERS.choose(rng).copied().unwrap_or_default()
}

fn scalar(rng: &mut StdRng) -> Scalar {
    match rng.random_range(0..10) {
        0..=6 => Scalar::Str(word(rng, WORDS)),
        7..=8 => Scalar::Num(number(rng)),
        _ => Scalar::Bool(rng.random_bool(0.5)),
    }
}

fn test(rng: &mut StdRng, depth: u32) -> Test {
    match rng.random_range(0..10) {
        0..=5 => Test::AnyOf((0..rng.random_range(1..=3)).map(|_| scalar(rng)).collect()),
        6..=7 if depth < 3 => Test::Not(Box::new(test(rng, depth + 1))),
        _ => {
            let re = REGEXES.choose(rng).copied().unwrap_or(".");
            Test::Regex(regex::Regex::new(re).expect("regex"))
        }
    }
}

fn rule(rng: &mut StdRng, n: usize) -> RuleDef {
    let exempt = rng.random_bool(0.15);
    let krs = if exempt {
        Vec::new()
    } else {
        (0..rng.random_range(1..=3))
            .map(|_| word(rng, KRS))
            .collect()
    };
    let conditions = (0..rng.random_range(0..=3))
        .map(|_| Condition {
            key: "generated".into(),
            field: field(rng),
            test: test(rng, 0),
        })
        .collect();
    RuleDef {
        id: format!("r{n}").into(),
        krs: krs.into_iter().map(KrId::from).collect(),
        exempt,
        source: rng
            .random_bool(0.3)
            .then(|| SourceId::from(word(rng, SOURCES))),
        conditions,
        file: "generated.toml".into(),
    }
}

fn json(rng: &mut StdRng, depth: u32) -> serde_json::Value {
    match rng.random_range(0..10) {
        0..=2 => serde_json::Value::String(word(rng, ITEM_WORDS)),
        3 => serde_json::json!(rng.random_range(-3i64..=3)),
        4 => serde_json::json!(number(rng)), // NaN and infinities become null
        5 => serde_json::Value::Bool(rng.random_bool(0.5)),
        6 => serde_json::Value::Null,
        7 => serde_json::json!({ "value": "a" }),
        _ if depth < 2 => serde_json::Value::Array(
            (0..rng.random_range(0..=3))
                .map(|_| json(rng, depth + 1))
                .collect(),
        ),
        _ => serde_json::Value::String(String::new()),
    }
}

fn item(rng: &mut StdRng) -> Item {
    let opt = |rng: &mut StdRng| rng.random_bool(0.6).then(|| word(rng, ITEM_WORDS));
    let list = |rng: &mut StdRng, max| {
        (0..rng.random_range(0..=max))
            .map(|_| word(rng, ITEM_WORDS))
            .collect()
    };
    let mut fields = BTreeMap::new();
    for name in ["x", "y"] {
        if rng.random_bool(0.7) {
            fields.insert(name.to_string(), json(rng, 0));
        }
    }
    Item {
        source: word(rng, SOURCES),
        ext_id: "1".into(),
        key: word(rng, ITEM_WORDS),
        kind: *[
            ItemKind::Issue,
            ItemKind::PullRequest,
            ItemKind::Epic,
            ItemKind::Row,
        ]
        .choose(rng)
        .unwrap_or(&ItemKind::Issue),
        title: word(rng, ITEM_WORDS),
        url: word(rng, ITEM_WORDS),
        project: word(rng, ITEM_WORDS),
        item_type: word(rng, ITEM_WORDS),
        status: word(rng, ITEM_WORDS),
        category: *[Category::Todo, Category::InProgress, Category::Done]
            .choose(rng)
            .unwrap_or(&Category::Todo),
        labels: list(rng, 3),
        components: list(rng, 2),
        epic: opt(rng),
        parent: opt(rng),
        milestone: opt(rng),
        assignee: opt(rng),
        estimate: rng.random_bool(0.7).then(|| number(rng)),
        created: None,
        updated: Default::default(),
        resolved: None,
        fields,
        abandoned: rng.random_bool(0.05),
    }
}

#[test]
fn indexed_borrowing_evaluation_equals_the_plain_loop() {
    let mut rng = StdRng::seed_from_u64(12);
    let (mut sets, mut evaluations, mut matched, mut exempt, mut indexed, mut rules) =
        (0, 0, 0, 0, 0, 0);
    let (mut conditions, mut conditions_held) = (0, 0);
    for _ in 0..4000 {
        // Some sets span several words of the index's bitmaps (64 rules each).
        let size = if rng.random_bool(0.1) {
            65..=200
        } else {
            1..=30
        };
        let set = RuleSet::new(
            (0..rng.random_range(size))
                .map(|n| rule(&mut rng, n))
                .collect(),
        );
        let items: Vec<Item> = (0..25).map(|_| item(&mut rng)).collect();
        let mut evaluator = set.evaluator();
        for item in &items {
            // Every condition alone, so a difference names its culprit.
            for c in set.rules().iter().flat_map(|r| &r.conditions) {
                let want = reference::condition_matches(c, item);
                assert_eq!(c.matches(item), want, "{c:?}\n{item:#?}");
                conditions += 1;
                conditions_held += usize::from(want);
            }
            let want = set.evaluate_slow(item);
            assert_eq!(set.evaluate(item), want, "{set:#?}\n{item:#?}");
            assert_eq!(
                evaluator.evaluate(item).to_evaluation(),
                want,
                "{set:#?}\n{item:#?}"
            );
            evaluations += 1;
            matched += usize::from(!want.matches.is_empty());
            exempt += usize::from(want.exempt_rule.is_some());
        }
        sets += 1;
        rules += set.rules().len();
        let always: u32 = set.index.always.iter().map(|w| w.count_ones()).sum();
        indexed += set.rules().len() - always as usize;
    }
    // The generators must reach the interesting cases, or the test proves little.
    assert!(
        matched * 4 > evaluations,
        "{matched} of {evaluations} matched"
    );
    assert!(
        exempt * 10 > evaluations,
        "{exempt} of {evaluations} exempt"
    );
    assert!(indexed * 4 > rules, "{indexed} of {rules} rules indexed");
    assert!(
        conditions_held * 5 > conditions,
        "{conditions_held} of {conditions} held"
    );
    assert!(
        conditions_held * 5 < conditions * 4,
        "{conditions_held} of {conditions} held"
    );
    assert_eq!(sets, 4000);
}

#[test]
fn numbers_keep_their_text_however_long() {
    let base = item(&mut StdRng::seed_from_u64(1));
    let item = |estimate| Item {
        estimate: Some(estimate),
        ..base.clone()
    };
    let regex = |re: &str| Condition {
        key: "estimate".into(),
        field: FieldPath::Estimate,
        test: Test::Regex(regex::Regex::new(re).expect("regex")),
    };
    let text = |s: &str| Condition {
        key: "estimate".into(),
        field: FieldPath::Estimate,
        test: Test::AnyOf(vec![Scalar::Str(s.into())]),
    };
    // 1e300 is printed with all 301 digits: longer than the stack buffer.
    let long = format!("1{}", "0".repeat(300));
    assert!(text(&long).matches(&item(1e300)));
    assert!(regex(&format!("^{long}$")).matches(&item(1e300)));
    assert!(text("0.0000001").matches(&item(1e-7)));
    assert!(text("-0").matches(&item(-0.0)));
    assert!(text("1000000000000000").matches(&item(1e15)));
    assert!(text("10000000000000000").matches(&item(1e16)));
    assert!(text("NaN").matches(&item(f64::NAN)));
    assert!(text("-inf").matches(&item(f64::NEG_INFINITY)));
    assert!(!text("5.0").matches(&item(5.0)), "5 is written 5");
}
