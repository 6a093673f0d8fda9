//! Rules map items to key results (or exempt them from the unaligned report).
//!
//! A rule's `match` table is a conjunction of [`Condition`]s; a list value means "any of";
//! `{ not = … }` negates; `{ regex = "…" }` matches by regular expression. For list fields
//! (`labels`, `components`) a condition holds when any element satisfies it.
//!
//! Evaluation is on the hot path of a rules change, which re-matches every stored item
//! (issue 12: 100,000 items × 500 rules within a second, with the recompute). So conditions
//! read the item's values in place (numbers are formatted, on the stack, only for a string
//! or regex test), and a [`RuleSet`] files each rule under one equality it requires
//! (`RuleIndex`) so that an item checks only the rules that can match it, in file order,
//! each with the rest of its conditions cheapest first (`Plan`).
//! [`Evaluator`] evaluates many items without allocating and lends out the ids.
//! `reference` keeps the original plain loop for the property test (`equivalence`) and the
//! micro benchmark (`bench`: `cargo test --release --lib rules::bench -- --ignored
//! --nocapture`), both test-only.

#[cfg(test)]
mod bench;
pub mod cases;
#[cfg(test)]
mod equivalence;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod reference;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::{Item, KrId, RuleId, SourceId};

/// A field of an [`Item`] that a rule can test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    Source,
    Key,
    Kind,
    Title,
    Url,
    Project,
    Type,
    Status,
    Category,
    Labels,
    Components,
    Epic,
    Parent,
    Milestone,
    Assignee,
    Estimate,
    /// `fields.<name>`
    Custom(String),
}

/// What a condition requires of a field's value(s).
#[derive(Debug, Clone)]
pub enum Test {
    /// Equal to one of these (a single value is a one-element list).
    AnyOf(Vec<Scalar>),
    Not(Box<Test>),
    Regex(regex::Regex),
}

/// A literal in a rule: strings compare exactly, numbers numerically, booleans as `true`/`false`.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub struct Condition {
    /// The key as written (`labels`, `fields.customfield_10050`).
    pub key: String,
    pub field: FieldPath,
    pub test: Test,
}

/// A rule from an OKR file, validated.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// `id`, or `<file>#<n>` (1-based position among the file's rules).
    pub id: RuleId,
    /// The KRs it maps to; empty for exempt rules.
    pub krs: Vec<KrId>,
    pub exempt: bool,
    /// Only items of this source.
    pub source: Option<SourceId>,
    pub conditions: Vec<Condition>,
    /// The OKR file it came from, for messages.
    pub file: String,
}

/// What the rules say about one item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// `(kr_id, rule_id)`: each KR once, with the first rule (in file order) that maps it.
    pub matches: Vec<(String, String)>,
    /// The first exempt rule that matches, if any.
    pub exempt_rule: Option<String>,
}

impl FieldPath {
    /// The keys a rule may test, for error messages.
    pub const KNOWN: &'static [&'static str] = &[
        "source",
        "key",
        "kind",
        "title",
        "url",
        "project",
        "type",
        "status",
        "category",
        "labels",
        "components",
        "epic",
        "parent",
        "milestone",
        "assignee",
        "estimate",
    ];

    pub fn parse(key: &str) -> Option<FieldPath> {
        Some(match key {
            "source" => FieldPath::Source,
            "key" => FieldPath::Key,
            "kind" => FieldPath::Kind,
            "title" => FieldPath::Title,
            "url" => FieldPath::Url,
            "project" => FieldPath::Project,
            "type" => FieldPath::Type,
            "status" => FieldPath::Status,
            "category" => FieldPath::Category,
            "labels" => FieldPath::Labels,
            "components" => FieldPath::Components,
            "epic" => FieldPath::Epic,
            "parent" => FieldPath::Parent,
            "milestone" => FieldPath::Milestone,
            "assignee" => FieldPath::Assignee,
            "estimate" => FieldPath::Estimate,
            other => match other.strip_prefix("fields.") {
                Some(name) if !name.is_empty() => FieldPath::Custom(name.to_string()),
                _ => return None,
            },
        })
    }

    /// Calls `f` with each of the item's values for this field until it returns true;
    /// whether it did. Missing values (`None`, empty strings, `null`) are never visited.
    ///
    /// Values borrow from the item: this runs for every condition of every candidate rule
    /// of every item, so it must not copy strings.
    fn any_value<'a>(&self, item: &'a Item, f: impl FnMut(Value<'a>) -> bool) -> bool {
        let text = |v: &'a str| (!v.is_empty()).then_some(Value::Str(v));
        let opt = |v: &'a Option<String>| v.as_deref().and_then(text);
        match self {
            FieldPath::Source => text(&item.source).is_some_and(f),
            FieldPath::Key => text(&item.key).is_some_and(f),
            FieldPath::Kind => text(item.kind.as_str()).is_some_and(f),
            FieldPath::Title => text(&item.title).is_some_and(f),
            FieldPath::Url => text(&item.url).is_some_and(f),
            FieldPath::Project => text(&item.project).is_some_and(f),
            FieldPath::Type => text(&item.item_type).is_some_and(f),
            FieldPath::Status => text(&item.status).is_some_and(f),
            FieldPath::Category => text(item.category.as_str()).is_some_and(f),
            FieldPath::Labels => item.labels.iter().filter_map(|l| text(l)).any(f),
            FieldPath::Components => item.components.iter().filter_map(|c| text(c)).any(f),
            FieldPath::Epic => opt(&item.epic).is_some_and(f),
            FieldPath::Parent => opt(&item.parent).is_some_and(f),
            FieldPath::Milestone => opt(&item.milestone).is_some_and(f),
            FieldPath::Assignee => opt(&item.assignee).is_some_and(f),
            FieldPath::Estimate => item.estimate.map(Value::Num).is_some_and(f),
            FieldPath::Custom(name) => match item.fields.get(name.as_str()) {
                None => false,
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(json_value).any(f),
                Some(v) => json_value(v).is_some_and(f),
            },
        }
    }
}

/// A field value as a rule sees it, borrowed from the item.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Str(&'a str),
    Num(f64),
}

impl Value<'_> {
    /// Calls `f` with the value's text: a number as `5` (whole, below 10^15) or as Rust
    /// prints it (`2.5`). Numbers are formatted on the stack, and only by the string and
    /// regex tests that need their text.
    fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Value::Str(s) => f(s),
            Value::Num(n) => {
                let mut buf = NumText::default();
                // Writing to a NumText cannot fail; it spills to the heap when too long.
                let _ = if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(buf, "{n:.0}")
                } else {
                    write!(buf, "{n}")
                };
                f(buf.as_str())
            }
        }
    }
}

/// A number's text, on the stack while it fits. `{n}` prints every digit (1e300 is 301
/// characters), so very large or very small numbers go to a `String`.
struct NumText {
    buf: [u8; 40],
    len: usize,
    spill: Option<String>,
}

impl Default for NumText {
    fn default() -> Self {
        NumText {
            buf: [0; 40],
            len: 0,
            spill: None,
        }
    }
}

impl NumText {
    fn as_str(&self) -> &str {
        match &self.spill {
            Some(s) => s,
            // Only whole `str`s are ever copied in, so the bytes are UTF-8.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default(),
        }
    }
}

impl std::fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
            return Ok(());
        }
        let end = self.len + s.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
        } else {
            let mut spill = String::with_capacity(end);
            spill.push_str(self.as_str());
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

fn json_value(v: &serde_json::Value) -> Option<Value<'_>> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(Value::Str(s)),
        serde_json::Value::Number(n) => n.as_f64().map(Value::Num),
        serde_json::Value::Bool(b) => Some(Value::Str(if *b { "true" } else { "false" })),
        _ => None,
    }
}

impl Scalar {
    /// Strings compare exactly, and with a number field by the number's text; numbers
    /// compare within 1e-9, with a string field that parses to a number; booleans compare
    /// as the text `true`/`false`.
    fn equals(&self, v: Value<'_>) -> bool {
        match (self, v) {
            (Scalar::Str(s), Value::Str(x)) => x == s,
            // A number's text starts with a digit, `-`, `NaN` or `inf`: anything else
            // cannot be equal, and most strings are rejected without formatting.
            (Scalar::Str(s), Value::Num(_)) => {
                s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | 'N' | 'i'))
                    && v.with_text(|t| t == s)
            }
            (Scalar::Num(n), Value::Num(x)) => (x - n).abs() < 1e-9,
            (Scalar::Num(n), Value::Str(x)) => {
                x.trim().parse::<f64>().is_ok_and(|x| (x - n).abs() < 1e-9)
            }
            (Scalar::Bool(b), Value::Str(x)) => x == if *b { "true" } else { "false" },
            // A number's text is never `true` or `false`.
            (Scalar::Bool(_), Value::Num(_)) => false,
        }
    }

    fn canonical(&self) -> String {
        match self {
            Scalar::Str(s) => format!("s:{s}"),
            Scalar::Num(n) => format!("n:{n}"),
            Scalar::Bool(b) => format!("b:{b}"),
        }
    }
}

impl Test {
    /// Does the test hold for the item's values of this field? For several values (list
    /// fields) `AnyOf`/`Regex` hold when any element satisfies them, and `Not` negates the
    /// whole: `{ not = ["a", "b"] }` on labels means "has neither a nor b".
    fn holds(&self, field: &FieldPath, item: &Item) -> bool {
        match self {
            Test::AnyOf(options) => field.any_value(item, |v| options.iter().any(|o| o.equals(v))),
            Test::Not(inner) => !inner.holds(field, item),
            Test::Regex(re) => field.any_value(item, |v| v.with_text(|t| re.is_match(t))),
        }
    }

    fn canonical(&self) -> String {
        match self {
            Test::AnyOf(list) => format!(
                "any({})",
                list.iter()
                    .map(Scalar::canonical)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Test::Not(inner) => format!("not({})", inner.canonical()),
            Test::Regex(re) => format!("re({})", re.as_str()),
        }
    }

    fn parse(value: &toml::Value, field: &FieldPath) -> Result<Test, String> {
        const EXPECTED: &str =
            "expected a string, number, boolean, a list of them, { not = … } or { regex = \"…\" }";
        let scalar = |v: &toml::Value| -> Result<Scalar, String> {
            match v {
                toml::Value::String(s) => Ok(Scalar::Str(s.clone())),
                toml::Value::Integer(i) => Ok(Scalar::Num(*i as f64)),
                toml::Value::Float(f) => Ok(Scalar::Num(*f)),
                toml::Value::Boolean(b) => Ok(Scalar::Bool(*b)),
                _ => Err(EXPECTED.to_string()),
            }
        };
        let test = match value {
            toml::Value::Array(items) => {
                if items.is_empty() {
                    return Err("an empty list matches nothing; give at least one value".into());
                }
                Test::AnyOf(items.iter().map(scalar).collect::<Result<_, _>>()?)
            }
            toml::Value::Table(t) => {
                if t.len() != 1 {
                    return Err(EXPECTED.to_string());
                }
                if let Some(inner) = t.get("not") {
                    Test::Not(Box::new(Test::parse(inner, field)?))
                } else if let Some(re) = t.get("regex") {
                    let toml::Value::String(pattern) = re else {
                        return Err("regex expects a string".into());
                    };
                    Test::Regex(
                        regex::Regex::new(pattern)
                            .map_err(|e| format!("invalid regex `{pattern}`: {e}"))?,
                    )
                } else {
                    return Err(EXPECTED.to_string());
                }
            }
            other => Test::AnyOf(vec![scalar(other)?]),
        };
        // Words with a fixed vocabulary: a typo would silently match nothing.
        let vocabulary: Option<&[&str]> = match field {
            FieldPath::Category => Some(&["todo", "in_progress", "done"]),
            FieldPath::Kind => Some(&["issue", "pull_request", "epic", "row"]),
            _ => None,
        };
        if let Some(words) = vocabulary {
            test.check_words(words)?;
        }
        Ok(test)
    }

    fn check_words(&self, words: &[&str]) -> Result<(), String> {
        match self {
            Test::AnyOf(list) => {
                for s in list {
                    let ok = matches!(s, Scalar::Str(w) if words.contains(&w.as_str()));
                    if !ok {
                        let shown = match s {
                            Scalar::Str(w) => w.clone(),
                            other => other.canonical(),
                        };
                        return Err(format!("\"{shown}\" is not one of {}", words.join(", ")));
                    }
                }
                Ok(())
            }
            Test::Not(inner) => inner.check_words(words),
            Test::Regex(_) => Ok(()),
        }
    }
}

impl Condition {
    pub fn parse(key: &str, value: &toml::Value) -> Result<Condition, String> {
        let field = FieldPath::parse(key).ok_or_else(|| {
            format!(
                "unknown field `{key}`; expected one of {}, or fields.<name>",
                FieldPath::KNOWN.join(", ")
            )
        })?;
        let test = Test::parse(value, &field)?;
        Ok(Condition {
            key: key.to_string(),
            field,
            test,
        })
    }

    pub fn matches(&self, item: &Item) -> bool {
        self.test.holds(&self.field, item)
    }
}

impl RuleDef {
    /// The source filter and every condition hold.
    pub fn matches(&self, item: &Item) -> bool {
        self.source.as_deref().is_none_or(|s| s == item.source)
            && self.conditions.iter().all(|c| c.matches(item))
    }

    fn canonical(&self) -> String {
        let mut conditions: Vec<String> = self
            .conditions
            .iter()
            .map(|c| format!("{}={}", c.key, c.test.canonical()))
            .collect();
        conditions.sort();
        format!(
            "id={}|krs={}|exempt={}|source={}|{}",
            self.id,
            self.krs.join(","),
            self.exempt,
            self.source.as_deref().unwrap_or("*"),
            conditions.join("&")
        )
    }
}

/// All rules, in file order, with an index of them.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<RuleDef>,
    index: RuleIndex,
}

/// Which rules an item must check. Each rule is filed under one equality it requires (its
/// *index key*): the values of one string field it needs, any of which will do. An item
/// looks up its own values of the indexed fields and checks only the rules found, plus the
/// rules with no such equality (`always`). A rule not found cannot match: the item has none
/// of the values its key requires.
#[derive(Debug, Clone, Default)]
struct RuleIndex {
    /// For each field some rule is filed under, its values and their rules.
    by_field: Vec<(FieldPath, Postings)>,
    /// The rules every item checks: bit `p % 64` of word `p / 64` for the rule at `p`.
    always: Vec<u64>,
    /// For each rule, in file order.
    plans: Vec<Plan>,
}

/// Value → positions of the rules filed under it, ascending.
type Postings = HashMap<String, Vec<usize>, BuildHasherDefault<FxHasher>>;

impl RuleIndex {
    fn new(rules: &[RuleDef]) -> RuleIndex {
        let mut index = RuleIndex {
            always: vec![0; rules.len().div_ceil(64)],
            ..RuleIndex::default()
        };
        for (pos, rule) in rules.iter().enumerate() {
            let key = index_key(rule);
            index
                .plans
                .push(Plan::new(rule, key.as_ref().map(|k| k.proves)));
            let Some(IndexKey { field, values, .. }) = key else {
                index.always[pos / 64] |= 1 << (pos % 64);
                continue;
            };
            let slot = match index.by_field.iter().position(|(f, _)| *f == field) {
                Some(slot) => slot,
                None => {
                    index.by_field.push((field, HashMap::default()));
                    index.by_field.len() - 1
                }
            };
            for value in values {
                let list = index.by_field[slot].1.entry(value.to_string()).or_default();
                // `labels = ["a", "a"]` names a value twice; rules come in order.
                if list.last() != Some(&pos) {
                    list.push(pos);
                }
            }
        }
        index
    }

    /// The rules `item` must check, as bits like `always`. Rules decide in file order (the
    /// first rule of a KR names it) and a rule filed under labels is found once per label
    /// it names that the item has: reading the bits in order sorts and deduplicates them.
    fn candidates(&self, item: &Item, bits: &mut Vec<u64>) {
        bits.clear();
        bits.extend_from_slice(&self.always);
        for (field, map) in &self.by_field {
            // Indexed fields are string fields: every value is a `Value::Str`.
            field.any_value(item, |v| {
                if let Value::Str(s) = v {
                    for &pos in map.get(s).map_or(&[][..], Vec::as_slice) {
                        bits[pos / 64] |= 1 << (pos % 64);
                    }
                }
                false
            });
        }
    }
}

/// The index's hash: FxHash's rotate-xor-multiply, a word at a time. The keys are short
/// (project keys, labels) and come from the operator's rule files, and items only look up,
/// never insert: SipHash's resistance to chosen collisions buys nothing here, and it was
/// the largest single cost in a profile of the index (about a tenth of an evaluation).
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            self.add(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The equality a rule is filed under, or `None`: its most selective requirement that a
/// string field equal one of some strings. The `source` filter counts as `source = "…"`.
/// Ranked by field (an item's key, epic or parent is shared by few items, its project by a
/// few thousand, its category by a third of them), then by fewer values.
fn index_key(rule: &RuleDef) -> Option<IndexKey<'_>> {
    fn rank(field: &FieldPath) -> Option<u8> {
        Some(match field {
            FieldPath::Key | FieldPath::Url => 10,
            FieldPath::Epic | FieldPath::Parent | FieldPath::Title => 9,
            FieldPath::Project | FieldPath::Milestone => 8,
            FieldPath::Assignee => 7,
            FieldPath::Labels | FieldPath::Components => 6,
            FieldPath::Type | FieldPath::Status => 4,
            FieldPath::Kind | FieldPath::Category => 2,
            FieldPath::Source => 1,
            // Numbers compare numerically, and a custom field may hold one: `"3"` must
            // find `3` and `3.0`, which an exact-text lookup would not.
            FieldPath::Estimate | FieldPath::Custom(_) => return None,
        })
    }
    /// The strings a test requires one of; `not`s cancel in pairs.
    fn required(test: &Test) -> Option<Vec<&str>> {
        match test {
            Test::AnyOf(options) => options
                .iter()
                .map(|o| match o {
                    Scalar::Str(s) => Some(s.as_str()),
                    Scalar::Bool(b) => Some(if *b { "true" } else { "false" }),
                    // A number also equals other spellings of it (`3` equals "3.0"): not
                    // an exact lookup.
                    Scalar::Num(_) => None,
                })
                .collect(),
            Test::Not(inner) => match inner.as_ref() {
                Test::Not(twice) => required(twice),
                _ => None,
            },
            Test::Regex(_) => None,
        }
    }
    // An empty filter equals an empty source, which the field lookups skip as missing: a
    // rule with one is not filed under it.
    let filter = rule
        .source
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| (FieldPath::Source, vec![s], None));
    let conditions = rule
        .conditions
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((c.field.clone(), required(&c.test)?, Some(i))));
    filter
        .into_iter()
        .chain(conditions)
        .filter_map(|(field, values, proves)| Some((rank(&field)?, field, values, proves)))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.2.len().cmp(&a.2.len())))
        .map(|(_, field, values, proves)| IndexKey {
            field,
            values,
            proves,
        })
}

/// The equality a rule is filed under.
struct IndexKey<'a> {
    field: FieldPath,
    /// The item has one of these, or the rule cannot match.
    values: Vec<&'a str>,
    /// The condition that equality is (its position), or `None` for the `source` filter:
    /// a rule found by the lookup need not check it again.
    proves: Option<usize>,
}

/// What is left to check of a rule the index found: its source filter unless the lookup
/// proved it, then its conditions but the one the lookup proved, cheapest first.
#[derive(Debug, Clone)]
struct Plan {
    /// Whether the `source` filter is left to check.
    source: bool,
    /// Positions in the rule's `conditions`, in the order to check them.
    conditions: Box<[usize]>,
}

impl Plan {
    fn new(rule: &RuleDef, proved: Option<Option<usize>>) -> Plan {
        // Regexes run last, after the comparisons that usually reject: a title regex
        // costs as much as a dozen string comparisons.
        fn cost(test: &Test, field: &FieldPath) -> u8 {
            match (test, field) {
                (Test::Regex(_), _) => 3,
                (Test::Not(inner), _) => cost(inner, field),
                (Test::AnyOf(_), FieldPath::Custom(_) | FieldPath::Estimate) => 2,
                (Test::AnyOf(_), FieldPath::Labels | FieldPath::Components) => 1,
                (Test::AnyOf(options), _) => {
                    u8::from(options.iter().any(|o| matches!(o, Scalar::Num(_))))
                }
            }
        }
        let mut conditions: Vec<(u8, usize)> = rule
            .conditions
            .iter()
            .enumerate()
            .filter(|(i, _)| proved != Some(Some(*i)))
            .map(|(i, c)| (cost(&c.test, &c.field), i))
            .collect();
        conditions.sort_by_key(|(cost, _)| *cost);
        Plan {
            source: proved != Some(None),
            conditions: conditions.into_iter().map(|(_, i)| i).collect(),
        }
    }

    fn holds(&self, rule: &RuleDef, item: &Item) -> bool {
        (!self.source || rule.source.as_deref().is_none_or(|s| s == item.source))
            && self
                .conditions
                .iter()
                .all(|&i| rule.conditions[i].matches(item))
    }
}

/// What the rules say about one item, as an [`Evaluation`] but borrowed: the list from the
/// [`Evaluator`] (`'e`, until its next evaluation), the ids from the [`RuleSet`] (`'r`).
/// [`EvaluationRef::to_evaluation`] makes the owned [`Evaluation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationRef<'e, 'r> {
    /// `(kr_id, rule_id)`: each KR once, with the first rule (in file order) that maps it.
    pub matches: &'e [(&'r str, &'r str)],
    /// The first exempt rule that matches, if any.
    pub exempt_rule: Option<&'r str>,
}

impl EvaluationRef<'_, '_> {
    pub fn to_evaluation(&self) -> Evaluation {
        Evaluation {
            matches: self
                .matches
                .iter()
                .map(|(k, r)| (k.to_string(), r.to_string()))
                .collect(),
            exempt_rule: self.exempt_rule.map(str::to_string),
        }
    }
}

/// Evaluates many items against one [`RuleSet`], reusing its buffers: once they have grown,
/// an evaluation allocates nothing, and the ids it returns borrow from the rule set. For
/// loops over every item (re-matching after a rules change); [`RuleSet::evaluate`] is the
/// same for one item.
///
/// ```ignore
/// let mut evaluator = rules.evaluator();
/// for item in items {
///     let eval = evaluator.evaluate(item);
///     store(item, eval.matches, eval.exempt_rule);
/// }
/// ```
#[derive(Debug)]
pub struct Evaluator<'r> {
    set: &'r RuleSet,
    candidates: Vec<u64>,
    matches: Vec<(&'r str, &'r str)>,
}

impl<'r> Evaluator<'r> {
    /// What the rules say about `item`: each KR at most once (first rule wins), and the
    /// first matching exempt rule. Abandoned items match nothing.
    pub fn evaluate(&mut self, item: &Item) -> EvaluationRef<'_, 'r> {
        let set: &'r RuleSet = self.set;
        self.matches.clear();
        let mut exempt_rule = None;
        if !item.abandoned {
            set.index.candidates(item, &mut self.candidates);
            let positions = self.candidates.iter().enumerate().flat_map(|(w, &bits)| {
                let mut bits = bits;
                std::iter::from_fn(move || {
                    let bit = (bits != 0).then(|| bits.trailing_zeros() as usize)?;
                    bits &= bits - 1;
                    Some(w * 64 + bit)
                })
            });
            for pos in positions {
                let (Some(rule), Some(plan)) = (set.rules.get(pos), set.index.plans.get(pos))
                else {
                    continue;
                };
                if !plan.holds(rule, item) {
                    continue;
                }
                if rule.exempt {
                    exempt_rule = exempt_rule.or(Some(rule.id.as_str()));
                    continue;
                }
                for kr in &rule.krs {
                    if !self.matches.iter().any(|(k, _)| *k == kr.as_str()) {
                        self.matches.push((kr.as_str(), rule.id.as_str()));
                    }
                }
            }
        }
        EvaluationRef {
            matches: &self.matches,
            exempt_rule,
        }
    }
}

impl RuleSet {
    pub fn new(rules: Vec<RuleDef>) -> RuleSet {
        let index = RuleIndex::new(&rules);
        RuleSet { rules, index }
    }

    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }

    /// What the rules say about `item`: each KR at most once (first rule wins), and the
    /// first matching exempt rule. Abandoned items match nothing. To evaluate many items,
    /// an [`Evaluator`] saves the allocations.
    pub fn evaluate(&self, item: &Item) -> Evaluation {
        self.evaluator().evaluate(item).to_evaluation()
    }

    /// An [`Evaluator`] for many items.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            set: self,
            candidates: Vec::new(),
            matches: Vec::new(),
        }
    }

    /// Every rule in file order, without the index: what [`RuleSet::evaluate`] must equal.
    #[cfg(test)]
    fn evaluate_slow(&self, item: &Item) -> Evaluation {
        reference::evaluate(self, item)
    }

    /// A stable digest of every rule: when it changes, every item must be matched again.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for r in &self.rules {
            h.update(r.canonical().as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// The item columns the rules test (`labels`, `title`, `fields` for any
    /// `fields.<name>`, …, by their names in the store): reading every item again for a
    /// rules change needs only these.
    pub fn columns_read(&self) -> std::collections::BTreeSet<&'static str> {
        self.rules
            .iter()
            .flat_map(|r| r.conditions.iter())
            .map(|c| match &c.field {
                FieldPath::Source => "source",
                FieldPath::Key => "key",
                FieldPath::Kind => "kind",
                FieldPath::Title => "title",
                FieldPath::Url => "url",
                FieldPath::Project => "project",
                FieldPath::Type => "item_type",
                FieldPath::Status => "status",
                FieldPath::Category => "category",
                FieldPath::Labels => "labels",
                FieldPath::Components => "components",
                FieldPath::Epic => "epic",
                FieldPath::Parent => "parent",
                FieldPath::Milestone => "milestone",
                FieldPath::Assignee => "assignee",
                FieldPath::Estimate => "estimate",
                FieldPath::Custom(_) => "fields",
            })
            .collect()
    }

    /// The `fields.<name>` names read by rules that apply to `source`, sorted.
    pub fn custom_fields_for_source(&self, source: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.source.as_deref().is_none_or(|s| s == source))
            .flat_map(|r| r.conditions.iter())
            .filter_map(|c| match &c.field {
                FieldPath::Custom(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;
    use crate::model::{Category, ItemKind};

    fn item() -> Item {
        Item {
            source: "jira".into(),
            ext_id: "1".into(),
            key: "PAY-12".into(),
            kind: ItemKind::Issue,
            title: "EMEA Checkout flow".into(),
            url: "https://x/browse/PAY-12".into(),
            project: "PAY".into(),
            item_type: "Story".into(),
            status: "In Progress".into(),
            category: Category::InProgress,
            labels: vec!["emea".into(), "checkout".into()],
            components: vec!["web".into()],
            epic: Some("PAY-1".into()),
            parent: None,
            milestone: None,
            assignee: Some("Ana".into()),
            estimate: Some(5.0),
            created: None,
            updated: Utc::now(),
            resolved: None,
            fields: BTreeMap::from([
                ("customfield_10050".to_string(), serde_json::json!("Growth")),
                ("customfield_1".to_string(), serde_json::json!(["a", "b"])),
                ("customfield_2".to_string(), serde_json::json!(3)),
            ]),
            abandoned: false,
        }
    }

    fn cond(key: &str, toml_value: &str) -> Condition {
        let v: toml::Table = format!("v = {toml_value}").parse().expect("toml");
        Condition::parse(key, &v["v"]).expect("condition")
    }

    fn holds(key: &str, toml_value: &str) -> bool {
        cond(key, toml_value).matches(&item())
    }

    fn rule(
        id: &str,
        krs: &[&str],
        exempt: bool,
        source: Option<&str>,
        conditions: Vec<Condition>,
    ) -> RuleDef {
        RuleDef {
            id: id.into(),
            krs: krs.iter().map(|s| KrId::from(*s)).collect(),
            exempt,
            source: source.map(SourceId::from),
            conditions,
            file: "t.toml".into(),
        }
    }

    #[test]
    fn every_value_form() {
        assert!(holds("project", "\"PAY\""));
        assert!(!holds("project", "\"pay\""), "exact, case-sensitive");
        assert!(holds("project", "[\"WEB\", \"PAY\"]"));
        assert!(holds("type", "{ not = \"Sub-task\" }"));
        assert!(!holds("type", "{ not = [\"Story\", \"Bug\"] }"));
        assert!(holds("title", "{ regex = \"(?i)checkout\" }"));
        assert!(!holds("title", "{ regex = \"^checkout\" }"));
        assert!(holds("estimate", "5"));
        assert!(holds("estimate", "5.0"));
        assert!(!holds("estimate", "3"));
        assert!(holds("category", "\"in_progress\""));
        assert!(holds("kind", "\"issue\""));
    }

    #[test]
    fn list_fields_hold_when_any_element_does_and_not_negates_the_whole() {
        assert!(holds("labels", "\"checkout\""));
        assert!(holds("labels", "[\"x\", \"emea\"]"));
        assert!(!holds("labels", "\"on-call\""));
        assert!(holds("labels", "{ not = \"on-call\" }"));
        assert!(
            !holds("labels", "{ not = [\"emea\", \"zzz\"] }"),
            "has emea"
        );
        assert!(holds("labels", "{ regex = \"^che\" }"));
        assert!(holds("components", "\"web\""));
        assert!(holds("fields.customfield_1", "\"b\""));
        assert!(!holds("fields.customfield_1", "{ not = \"a\" }"));
    }

    #[test]
    fn missing_fields_equal_nothing() {
        assert!(!holds("parent", "\"PAY-1\""));
        assert!(holds("parent", "{ not = \"PAY-1\" }"));
        assert!(!holds("milestone", "{ regex = \".*\" }"));
        assert!(!holds("fields.customfield_999", "\"x\""));
        assert!(holds("fields.customfield_999", "{ not = \"x\" }"));
    }

    #[test]
    fn custom_fields_compare_as_text_and_numbers() {
        assert!(holds("fields.customfield_10050", "\"Growth\""));
        assert!(holds("fields.customfield_2", "3"));
        assert!(holds("fields.customfield_2", "\"3\""));
    }

    #[test]
    fn bad_conditions_say_what_was_expected() {
        let v = |s: &str| -> toml::Value {
            format!("v = {s}").parse::<toml::Table>().expect("toml")["v"].clone()
        };
        let err = Condition::parse("lables", &v("\"x\"")).expect_err("unknown");
        assert!(
            err.contains("unknown field `lables`") && err.contains("fields.<name>"),
            "{err}"
        );
        assert!(Condition::parse("fields.", &v("\"x\"")).is_err());
        assert!(Condition::parse("title", &v("{ regex = \"(\" }"))
            .expect_err("regex")
            .contains("invalid regex"));
        assert!(Condition::parse("title", &v("{ like = \"x\" }")).is_err());
        assert!(Condition::parse("labels", &v("[]")).is_err());
        assert!(Condition::parse("category", &v("\"finished\""))
            .expect_err("vocab")
            .contains("todo, in_progress, done"));
        assert!(Condition::parse("kind", &v("{ not = \"story\" }")).is_err());
    }

    #[test]
    fn rules_combine_conditions_with_and_and_filter_by_source() {
        let r = rule(
            "r",
            &["k"],
            false,
            Some("jira"),
            vec![cond("project", "\"PAY\""), cond("labels", "\"emea\"")],
        );
        assert!(r.matches(&item()));
        let mut other = item();
        other.source = "github".into();
        assert!(!r.matches(&other));
        let r2 = rule(
            "r2",
            &["k"],
            false,
            None,
            vec![cond("project", "\"PAY\""), cond("labels", "\"nope\"")],
        );
        assert!(!r2.matches(&item()));
        assert!(
            rule("all", &["k"], false, None, vec![]).matches(&item()),
            "an empty match table matches everything"
        );
    }

    #[test]
    fn evaluation_lists_each_kr_once_with_the_first_rule_and_the_exemption() {
        let set = RuleSet::new(vec![
            rule(
                "first",
                &["a", "b"],
                false,
                None,
                vec![cond("project", "\"PAY\"")],
            ),
            rule(
                "second",
                &["b", "c"],
                false,
                None,
                vec![cond("labels", "\"emea\"")],
            ),
            rule(
                "never",
                &["d"],
                false,
                None,
                vec![cond("labels", "\"nope\"")],
            ),
            rule(
                "exempt",
                &[],
                true,
                None,
                vec![cond("labels", "\"checkout\"")],
            ),
        ]);
        let e = set.evaluate(&item());
        assert_eq!(
            e.matches,
            vec![
                ("a".to_string(), "first".to_string()),
                ("b".to_string(), "first".to_string()),
                ("c".to_string(), "second".to_string()),
            ]
        );
        assert_eq!(e.exempt_rule.as_deref(), Some("exempt"));
        // An item that leaves the scope: its labels change, the KRs of `second` go.
        let mut moved = item();
        moved.labels = vec!["checkout".into()];
        moved.project = "WEB".into();
        assert_eq!(set.evaluate(&moved).matches, vec![]);
    }

    #[test]
    fn abandoned_items_match_no_rule() {
        let set = RuleSet::new(vec![
            rule("r", &["k"], false, None, vec![]),
            rule("x", &[], true, None, vec![]),
        ]);
        let mut it = item();
        assert_eq!(set.evaluate(&it).matches.len(), 1);
        it.abandoned = true;
        assert_eq!(set.evaluate(&it), Evaluation::default());
    }

    #[test]
    fn fingerprints_change_with_the_rules_only() {
        let a = RuleSet::new(vec![rule(
            "r",
            &["k"],
            false,
            None,
            vec![cond("project", "\"PAY\"")],
        )]);
        let same = RuleSet::new(vec![rule(
            "r",
            &["k"],
            false,
            None,
            vec![cond("project", "\"PAY\"")],
        )]);
        let other = RuleSet::new(vec![rule(
            "r",
            &["k"],
            false,
            None,
            vec![cond("project", "\"WEB\"")],
        )]);
        assert_eq!(a.fingerprint(), same.fingerprint());
        assert_ne!(a.fingerprint(), other.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn custom_fields_are_listed_per_source() {
        let set = RuleSet::new(vec![
            rule(
                "a",
                &["k"],
                false,
                Some("jira"),
                vec![
                    cond("fields.customfield_2", "1"),
                    cond("fields.customfield_1", "\"x\""),
                ],
            ),
            rule(
                "b",
                &["k"],
                false,
                Some("github"),
                vec![cond("fields.Status", "\"Done\"")],
            ),
            rule(
                "c",
                &["k"],
                false,
                None,
                vec![cond("fields.customfield_1", "\"y\"")],
            ),
        ]);
        assert_eq!(
            set.custom_fields_for_source("jira"),
            vec!["customfield_1", "customfield_2"]
        );
        assert_eq!(
            set.custom_fields_for_source("github"),
            vec!["Status", "customfield_1"]
        );
    }
}
