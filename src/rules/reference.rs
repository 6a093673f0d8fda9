//! The rule evaluation as it was before the index and the borrowed field values: every
//! rule for every item, every field value copied into a fresh `Vec`. Slow, but obviously
//! right, so the property test compares the fast path with it and the micro benchmark
//! measures against it. Test builds only.

use super::{Condition, Evaluation, FieldPath, RuleDef, RuleSet, Scalar, Test};
use crate::model::Item;

/// A field value as a rule sees it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
            Value::Num(n) => n.to_string(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
        }
    }
}

fn json_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(Value::Str(s.clone())),
        serde_json::Value::Number(n) => n.as_f64().map(Value::Num),
        serde_json::Value::Bool(b) => Some(Value::Str(b.to_string())),
        _ => None,
    }
}

/// The item's value(s) for this field: empty when missing.
fn values(field: &FieldPath, item: &Item) -> Vec<Value> {
    let s = |v: &str| {
        if v.is_empty() {
            Vec::new()
        } else {
            vec![Value::Str(v.to_string())]
        }
    };
    let o = |v: &Option<String>| v.as_deref().map(s).unwrap_or_default();
    match field {
        FieldPath::Source => s(&item.source),
        FieldPath::Key => s(&item.key),
        FieldPath::Kind => s(item.kind.as_str()),
        FieldPath::Title => s(&item.title),
        FieldPath::Url => s(&item.url),
        FieldPath::Project => s(&item.project),
        FieldPath::Type => s(&item.item_type),
        FieldPath::Status => s(&item.status),
        FieldPath::Category => s(item.category.as_str()),
        FieldPath::Labels => item.labels.iter().flat_map(|l| s(l)).collect(),
        FieldPath::Components => item.components.iter().flat_map(|l| s(l)).collect(),
        FieldPath::Epic => o(&item.epic),
        FieldPath::Parent => o(&item.parent),
        FieldPath::Milestone => o(&item.milestone),
        FieldPath::Assignee => o(&item.assignee),
        FieldPath::Estimate => item
            .estimate
            .map(|e| vec![Value::Num(e)])
            .unwrap_or_default(),
        FieldPath::Custom(name) => match item.fields.get(name) {
            None => Vec::new(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(json_value).collect(),
            Some(v) => json_value(v).into_iter().collect(),
        },
    }
}

fn equals(scalar: &Scalar, v: &Value) -> bool {
    match scalar {
        Scalar::Str(s) => match v {
            Value::Str(x) => x == s,
            Value::Num(_) => v.text() == *s,
        },
        Scalar::Num(n) => v.number().is_some_and(|x| (x - n).abs() < 1e-9),
        Scalar::Bool(b) => v.text() == b.to_string(),
    }
}

fn holds(test: &Test, values: &[Value]) -> bool {
    match test {
        Test::AnyOf(options) => values.iter().any(|v| options.iter().any(|o| equals(o, v))),
        Test::Not(inner) => !holds(inner, values),
        Test::Regex(re) => values.iter().any(|v| re.is_match(&v.text())),
    }
}

pub fn condition_matches(c: &Condition, item: &Item) -> bool {
    holds(&c.test, &values(&c.field, item))
}

pub fn rule_matches(r: &RuleDef, item: &Item) -> bool {
    r.source.as_deref().is_none_or(|s| s == item.source)
        && r.conditions.iter().all(|c| condition_matches(c, item))
}

/// Every rule in file order, each KR with its first rule, the first exempt rule.
pub fn evaluate(set: &RuleSet, item: &Item) -> Evaluation {
    let mut eval = Evaluation::default();
    if item.abandoned {
        return eval;
    }
    for rule in set.rules() {
        if !rule_matches(rule, item) {
            continue;
        }
        if rule.exempt {
            if eval.exempt_rule.is_none() {
                eval.exempt_rule = Some(rule.id.to_string());
            }
            continue;
        }
        for kr in &rule.krs {
            if !eval.matches.iter().any(|(k, _)| kr == k) {
                eval.matches.push((kr.to_string(), rule.id.to_string()));
            }
        }
    }
    eval
}
