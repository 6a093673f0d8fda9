//! Rules map items to key results (or exempt them from the unaligned report).
//!
//! A rule's `match` table is a conjunction of [`Condition`]s; a list value means "any of";
//! `{ not = … }` negates; `{ regex = "…" }` matches by regular expression. For list fields
//! (`labels`, `components`) a condition holds when any element satisfies it.

use crate::model::Item;

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
    pub id: String,
    /// The KRs it maps to; empty for exempt rules.
    pub krs: Vec<String>,
    pub exempt: bool,
    /// Only items of this source.
    pub source: Option<String>,
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
