//! OKR and rule files (`config/okrs/*.toml`): objectives, their key results, and the rules
//! that map items to key results. Everything is validated across files: unknown KRs,
//! sources and fields, duplicate ids, parent cycles, measures missing what they need.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::NaiveDate;

use super::reader::{type_name, Section, Sink};
use crate::configfile::{Locator, Problem};
use crate::model::{
    CellRef, KeyResultDef, KrId, KrKind, Measure, MetricRef, ObjectiveDef, ObjectiveId, Period,
    RuleId, SourceId, WeightBy,
};
use crate::rules::{Condition, RuleDef, RuleSet};

pub(crate) struct Okrs {
    pub objectives: Vec<ObjectiveDef>,
    pub rules: RuleSet,
    pub files: Vec<String>,
}

/// Reads every file matching `globs` (relative to `base`), in sorted order. `source_kinds`
/// holds every configured source, with its kind when that is known.
pub(crate) fn load(
    base: &Path,
    globs: &[String],
    source_kinds: &BTreeMap<String, Option<String>>,
    problems: &mut Vec<Problem>,
) -> Okrs {
    let mut files = Vec::new();
    for g in globs {
        let pattern = base.join(g);
        let pattern = pattern.to_string_lossy();
        match glob::glob(&pattern) {
            Ok(paths) => {
                let mut found: Vec<_> = paths.filter_map(Result::ok).collect();
                found.sort();
                if found.is_empty() {
                    problems.push(Problem {
                        file: "okrs".into(),
                        key: "okrs".into(),
                        line: None,
                        message: format!(
                            "no OKR file matches \"{g}\" (looked in {})",
                            if base.as_os_str().is_empty() {
                                Path::new(".").display()
                            } else {
                                base.display()
                            }
                        ),
                    });
                }
                for f in found {
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
            }
            Err(e) => problems.push(Problem {
                file: "okrs".into(),
                key: "okrs".into(),
                line: None,
                message: format!("\"{g}\" is not a valid file pattern: {e}"),
            }),
        }
    }

    let mut entries = Vec::new();
    let mut names = Vec::new();
    // A file that cannot be read may define what others refer to: without it, no reference
    // can be called unknown.
    let mut all_read = true;
    for path in &files {
        let shown = path
            .strip_prefix(base)
            .unwrap_or(path)
            .display()
            .to_string();
        names.push(shown.clone());
        let text = match super::reader::read_text(path) {
            Ok(t) => t,
            Err(message) => {
                all_read = false;
                problems.push(Problem {
                    file: path.display().to_string(),
                    key: String::new(),
                    line: None,
                    message,
                });
                continue;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                all_read = false;
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                problems.push(Problem {
                    file: path.display().to_string(),
                    key: String::new(),
                    line,
                    message: format!("not valid TOML: {}", e.message()),
                });
                continue;
            }
        };
        if table.is_empty() {
            // Nothing but comments and blank lines: a truncated save or the wrong file.
            problems.push(Problem {
                file: path.display().to_string(),
                key: String::new(),
                line: None,
                message: "holds no objective and no rule (delete the file, or add [[objective]] or [[rule]] tables)".into(),
            });
            continue;
        }
        let locator = Locator::new(&text);
        let mut sink = Sink {
            file: path.display().to_string(),
            locator: &locator,
            problems,
            secrets: super::Secrets::Defer,
            subject: None,
        };
        let mut top = Section::new("", &table);
        let objectives: Vec<ObjectiveEntry> = top
            .tables(&mut sink, "objective")
            .into_iter()
            .map(|(key, t)| read_objective(key, t, &shown, &mut sink))
            .collect();
        let rules: Vec<RuleEntry> = top
            .tables(&mut sink, "rule")
            .into_iter()
            .enumerate()
            .map(|(n, (key, t))| read_rule(key, n, t, &shown, &mut sink))
            .collect();
        top.finish(&mut sink);
        entries.push(FileEntries {
            file: sink.file,
            locator,
            objectives,
            rules,
        });
    }

    // Cross-file checks, over everything written, valid or not.
    let mut objective_ids = BTreeSet::new();
    let mut duplicate_objectives = BTreeSet::new();
    // The measure of each key result id; `None` when it is not known for sure (invalid, or
    // the id is used twice), so nothing is said about it.
    let mut kr_measures: HashMap<&str, Option<Measure>> = HashMap::new();
    for f in &entries {
        for o in &f.objectives {
            if let Some(id) = &o.id {
                if !objective_ids.insert(id.as_str()) {
                    duplicate_objectives.insert(id.as_str());
                    let subject = objective_subject(id);
                    f.report(
                        problems,
                        format!("{}.id", o.key),
                        &subject,
                        "id is used twice".into(),
                    );
                }
            }
            for kr in &o.krs {
                if let Some(id) = &kr.id {
                    match kr_measures.entry(id.as_str()) {
                        Entry::Occupied(mut e) => {
                            e.insert(None);
                            let subject = kr_subject(id);
                            f.report(
                                problems,
                                format!("{}.id", kr.key),
                                &subject,
                                "id is used twice".into(),
                            );
                        }
                        Entry::Vacant(e) => {
                            e.insert(kr.measure);
                        }
                    }
                }
                if let (Some(m), Some(id)) = (&kr.metric, &kr.id) {
                    let k = format!("{}.metric.source", kr.key);
                    let subject = kr_subject(id);
                    match source_kinds.get(m.source.as_str()) {
                        None => f.report(
                            problems,
                            k,
                            &subject,
                            format!(
                                "unknown source \"{}\"; configured sources: {}",
                                m.source,
                                list(source_kinds.keys())
                            ),
                        ),
                        Some(Some(kind))
                            if !crate::sources::capabilities_of(kind)
                                .is_some_and(|c| c.metrics) =>
                        {
                            let readers: Vec<&str> = crate::sources::SourceConfig::KINDS
                                .iter()
                                .filter(|(_, c)| c.metrics)
                                .map(|(k, _)| *k)
                                .collect();
                            f.report(problems, k, &subject, format!("source \"{}\" is a {kind} source; metric key results read from {} sources", m.source, crate::sources::kind::listed(&readers, "or")))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    let parents: HashMap<&str, Option<&str>> = entries
        .iter()
        .flat_map(|f| &f.objectives)
        .filter_map(|o| Some((o.id.as_deref()?, o.parent.as_deref())))
        .collect();
    for f in &entries {
        for o in &f.objectives {
            let (Some(id), Some(p)) = (o.id.as_deref(), o.parent.as_deref()) else {
                continue;
            };
            let subject = objective_subject(id);
            if !parents.contains_key(p) {
                if all_read {
                    f.report(
                        problems,
                        format!("{}.parent", o.key),
                        &subject,
                        format!("unknown objective \"{p}\""),
                    );
                }
                continue;
            }
            // Walk up; a cycle comes back to where it started. Through an id used twice
            // the way up is not known, so nothing is said.
            let mut seen = BTreeSet::from([id]);
            let mut cur = Some(p);
            while let Some(c) = cur {
                if duplicate_objectives.contains(c) {
                    break;
                }
                if !seen.insert(c) {
                    f.report(
                        problems,
                        format!("{}.parent", o.key),
                        &subject,
                        "is its own ancestor".into(),
                    );
                    break;
                }
                cur = parents.get(c).copied().flatten();
            }
        }
    }
    let mut rule_ids = BTreeSet::new();
    for f in &entries {
        for r in &f.rules {
            let subject = rule_subject(&r.id);
            if !rule_ids.insert(r.id.as_str()) {
                f.report(
                    problems,
                    format!("{}.id", r.key),
                    &subject,
                    "id is used twice".into(),
                );
            }
            for (k, kr) in &r.targets {
                match kr_measures.get(kr.as_str()) {
                    None if all_read => f.report(problems, k.clone(), &subject, format!("unknown key result \"{kr}\"")),
                    Some(Some(m)) if !m.uses_items() => f.report(problems, k.clone(), &subject, format!("key result \"{kr}\" is measured as {}; only completion, count, sum and milestone key results take items", m.as_str())),
                    _ => {}
                }
            }
            if let Some(s) = &r.source {
                if !source_kinds.contains_key(s) {
                    f.report(
                        problems,
                        format!("{}.source", r.key),
                        &subject,
                        format!(
                            "unknown source \"{s}\"; configured sources: {}",
                            list(source_kinds.keys())
                        ),
                    );
                }
            }
        }
    }
    let mut objectives = Vec::new();
    let mut rules = Vec::new();
    for f in entries {
        objectives.extend(f.objectives.into_iter().filter_map(|o| o.def));
        rules.extend(f.rules.into_iter().filter_map(|r| r.def));
    }
    Okrs {
        objectives,
        rules: RuleSet::new(rules),
        files: names,
    }
}

/// A subject for messages about an objective, key result or rule: its id, quoted.
fn objective_subject(id: &str) -> String {
    format!("objective \"{id}\"")
}

fn kr_subject(id: &str) -> String {
    format!("key result \"{id}\"")
}

fn rule_subject(id: &str) -> String {
    format!("rule \"{id}\"")
}

/// An objective as written, kept even when parts of it are wrong: the cross-file checks
/// need every id a file defines, or they would call a defined key result unknown and miss
/// a duplicate inside a broken objective.
struct ObjectiveEntry {
    key: String,
    id: Option<String>,
    parent: Option<String>,
    krs: Vec<KrEntry>,
    /// Set when the objective's own keys are valid; holds its valid key results.
    def: Option<ObjectiveDef>,
}

/// A key result as written; see [`ObjectiveEntry`].
struct KrEntry {
    key: String,
    id: Option<String>,
    measure: Option<Measure>,
    metric: Option<MetricRef>,
    def: Option<KeyResultDef>,
}

/// A rule as written; see [`ObjectiveEntry`].
struct RuleEntry {
    key: String,
    id: String,
    /// Each key result it names, with the key path it is written at.
    targets: Vec<(String, String)>,
    source: Option<String>,
    def: Option<RuleDef>,
}

/// What one OKR file defines, with what is needed to point at its lines.
struct FileEntries {
    file: String,
    locator: Locator,
    objectives: Vec<ObjectiveEntry>,
    rules: Vec<RuleEntry>,
}

impl FileEntries {
    fn report(&self, problems: &mut Vec<Problem>, key: String, subject: &str, message: String) {
        problems.push(Problem {
            file: self.file.clone(),
            line: self.locator.line(&key),
            key,
            message: format!("{subject}: {message}"),
        });
    }
}

fn list<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn date(s: &mut Section, sink: &mut Sink, key: &'static str) -> Option<NaiveDate> {
    let v = s.raw(key)?;
    let text = match v {
        toml::Value::String(t) => t.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => {
            sink.report(
                &s.key(key),
                format!(
                    "expected a date like \"2026-10-01\", found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            sink.report(
                &s.key(key),
                format!("expected a date like \"2026-10-01\", found \"{text}\""),
            );
            None
        }
    }
}

fn read_objective(key: String, t: &toml::Table, file: &str, sink: &mut Sink) -> ObjectiveEntry {
    let mut s = Section::new(key.clone(), t);
    let id = s.required_string(sink, "id");
    let outer = std::mem::replace(&mut sink.subject, id.as_deref().map(objective_subject));
    let title = s.required_string(sink, "title");
    let owner = s.string(sink, "owner");
    let parent = s.string(sink, "parent");
    s.raw("description");
    let label = s.string(sink, "period");
    let start = date(&mut s, sink, "start");
    let end = date(&mut s, sink, "end");
    let period = match (label, s.has("start") || s.has("end")) {
        (Some(_), true) => {
            sink.report(&s.key("period"), "set either period or start/end, not both");
            None
        }
        (Some(l), false) => match Period::parse(&l) {
            Ok(p) => Some(p),
            Err(e) => {
                sink.report(&s.key("period"), e.to_string());
                None
            }
        },
        (None, true) => match (start, end) {
            (Some(a), Some(b)) => match Period::from_dates(a, b) {
                Ok(p) => Some(p),
                Err(e) => {
                    sink.report(&s.key("end"), e.to_string());
                    None
                }
            },
            (a, b) => {
                if a.is_none() && !s.has("start") {
                    sink.report(
                        &s.key("start"),
                        "is required with end (a date like \"2026-10-01\")",
                    );
                }
                if b.is_none() && !s.has("end") {
                    sink.report(
                        &s.key("end"),
                        "is required with start (a date like \"2026-12-31\")",
                    );
                }
                None
            }
        },
        (None, false) => {
            sink.report(
                &s.key("period"),
                "is required: a period like \"2026-Q4\", or start and end dates",
            );
            None
        }
    };
    let krs: Vec<KrEntry> = s
        .tables(sink, "kr")
        .into_iter()
        .map(|(kr_key, kt)| read_kr(kr_key, kt, id.as_deref().unwrap_or(""), sink))
        .collect();
    s.finish(sink);
    sink.subject = outer;
    let def = match (&id, title, period) {
        (Some(id), Some(title), Some(period)) => Some(ObjectiveDef {
            id: ObjectiveId::from(id.clone()),
            title,
            period,
            owner,
            parent: parent.clone(),
            key_results: krs.iter().filter_map(|k| k.def.clone()).collect(),
            file: file.to_string(),
        }),
        _ => None,
    };
    ObjectiveEntry {
        key,
        id,
        parent,
        krs,
        def,
    }
}

fn read_kr(key: String, t: &toml::Table, objective: &str, sink: &mut Sink) -> KrEntry {
    let mut s = Section::new(key.clone(), t);
    // Problems with the id itself are about no known key result.
    let outer = sink.subject.take();
    let id = s.required_string(sink, "id");
    sink.subject = id.as_deref().map(kr_subject);
    let title = s.required_string(sink, "title");
    let measure = match s.raw("measure") {
        None => {
            sink.report(
                &s.key("measure"),
                format!("is required: one of {}", Measure::ALL.join(", ")),
            );
            None
        }
        Some(_) => s
            .choice(sink, "measure", &Measure::ALL)
            .and_then(|m| Measure::parse(&m)),
    };
    let weight = s.number(sink, "weight").unwrap_or(1.0);
    if weight < 0.0 {
        sink.report(&s.key("weight"), "must not be negative");
    }
    let weight_by = match s
        .choice(sink, "weight_by", &["count", "estimate"])
        .as_deref()
    {
        Some("estimate") => WeightBy::Estimate,
        _ => WeightBy::Count,
    };
    let start = s.number(sink, "start");
    let target = s.number(sink, "target");
    let field = s.string(sink, "field");
    let unit = s.string(sink, "unit");
    let owner = s.string(sink, "owner");
    let kind = match s
        .choice(sink, "kind", &["committed", "aspirational"])
        .as_deref()
    {
        Some("aspirational") => KrKind::Aspirational,
        _ => KrKind::Committed,
    };
    let success = s.number(sink, "success");
    if let Some(v) = success {
        if !(v > 0.0 && v <= 1.0) {
            sink.report(
                &s.key("success"),
                format!("must lie in (0, 1] (a share of the target), found {v}"),
            );
        } else if kind == KrKind::Committed {
            sink.report(
                &s.key("success"),
                "only applies to aspirational key results (kind = \"aspirational\")",
            );
        }
    }
    s.raw("description");
    let metric = s
        .table(sink, "metric")
        .and_then(|m| read_metric(&s.key("metric"), m, sink));
    if let Some(m) = measure {
        if s.has("weight_by") && m != Measure::Completion {
            sink.report(
                &s.key("weight_by"),
                "only applies to completion key results",
            );
        }
        if s.has("field") && m != Measure::Sum {
            sink.report(&s.key("field"), "only applies to sum key results");
        }
        if let Some(f) = &field {
            if f != "estimate" && f.strip_prefix("fields.").is_none_or(str::is_empty) {
                sink.report(
                    &s.key("field"),
                    format!("expected \"estimate\" or \"fields.<name>\", found \"{f}\""),
                );
            }
        }
        if matches!(m, Measure::Count | Measure::Sum | Measure::Metric) && !s.has("target") {
            sink.report(
                &s.key("target"),
                format!("is required for {} key results", m.as_str()),
            );
        }
        if matches!(m, Measure::Completion | Measure::Milestone)
            && (s.has("target") || s.has("start"))
        {
            let k = if s.has("target") { "target" } else { "start" };
            sink.report(
                &s.key(k),
                format!(
                    "does not apply to {} key results (their target is the matched work)",
                    m.as_str()
                ),
            );
        }
        if m == Measure::Metric && !s.has("metric") {
            sink.report(&s.key("metric"), "is required for metric key results: { source = \"…\", cell = \"Sheet!B7\" } or { source, sheet, row, column }");
        }
        if m != Measure::Metric && s.has("metric") {
            sink.report(&s.key("metric"), "only applies to metric key results");
        }
        if let (Some(a), Some(b)) = (start, target) {
            if a == b
                && matches!(
                    m,
                    Measure::Count | Measure::Sum | Measure::Metric | Measure::Manual
                )
            {
                sink.report(&s.key("target"), "must differ from start");
            }
        }
    }
    s.finish(sink);
    sink.subject = outer;
    let def = match (&id, title, measure) {
        (Some(id), Some(title), Some(measure)) => Some(KeyResultDef {
            id: KrId::from(id.clone()),
            objective: ObjectiveId::from(objective),
            title,
            measure,
            weight,
            weight_by,
            start,
            target,
            field,
            metric: metric.clone(),
            unit,
            owner,
            kind,
            success: success.filter(|_| kind == KrKind::Aspirational),
        }),
        _ => None,
    };
    KrEntry {
        key,
        id,
        measure,
        metric,
        def,
    }
}

fn read_metric(key: &str, t: &toml::Table, sink: &mut Sink) -> Option<MetricRef> {
    let mut s = Section::new(key, t);
    let source = s.required_string(sink, "source");
    let cell = s.string(sink, "cell");
    let sheet = s.string(sink, "sheet");
    let row = s.string(sink, "row");
    let column = s.string(sink, "column");
    s.finish(sink);
    let reference = match (cell, sheet, row, column) {
        (Some(c), None, None, None) => match CellRef::parse(&c) {
            Ok(r) => r,
            Err(e) => {
                sink.report(&format!("{key}.cell"), e);
                return None;
            }
        },
        (None, sheet, Some(r), Some(c)) => CellRef::labels(sheet, r, c),
        _ => {
            sink.report(key, "expected either cell = \"Sheet!B7\" or row and column labels (with an optional sheet)");
            return None;
        }
    };
    Some(MetricRef {
        source: SourceId::from(source?),
        reference,
    })
}

fn read_rule(key: String, index: usize, t: &toml::Table, file: &str, sink: &mut Sink) -> RuleEntry {
    let mut s = Section::new(key.clone(), t);
    let id = s
        .string(sink, "id")
        .unwrap_or_else(|| format!("{file}#{}", index + 1));
    let outer = sink.subject.replace(rule_subject(&id));
    let kr = s.string(sink, "kr");
    let krs = s.string_list(sink, "krs");
    let exempt = s.boolean(sink, "exempt").unwrap_or(false);
    let source = s.string(sink, "source");
    s.raw("description");
    let mut targets = Vec::new();
    match (kr, krs) {
        (Some(_), Some(_)) => sink.report(&s.key("krs"), "set either kr or krs, not both"),
        (Some(k), None) => targets.push((s.key("kr"), k)),
        (None, Some(list)) => {
            // A single string is a one-element list, written at `krs` itself.
            let single = matches!(s.raw("krs"), Some(toml::Value::String(_)));
            targets = list
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    let at = if single {
                        s.key("krs")
                    } else {
                        format!("{}[{i}]", s.key("krs"))
                    };
                    (at, k)
                })
                .collect();
        }
        (None, None) => {}
    }
    if exempt && !targets.is_empty() {
        sink.report(
            &s.key("exempt"),
            "an exempt rule maps to no key result: remove kr/krs or exempt",
        );
    }
    if !exempt && targets.is_empty() {
        sink.report(
            &s.key("kr"),
            "is required: the key result this rule moves (or exempt = true)",
        );
    }
    let mut conditions = Vec::new();
    let mut ok = true;
    match s.raw("match") {
        None => {
            sink.report(
                &s.key("match"),
                "is required: a [rule.match] table (an empty table matches every item)",
            );
            ok = false;
        }
        Some(toml::Value::Table(m)) => {
            for (k, v) in m {
                match Condition::parse(k, v) {
                    Ok(c) => conditions.push(c),
                    Err(msg) => {
                        ok = false;
                        sink.report(&format!("{}.{k}", s.key("match")), msg);
                    }
                }
            }
        }
        Some(other) => {
            ok = false;
            sink.report(
                &s.key("match"),
                format!("expected a table, found {}", type_name(other)),
            );
        }
    }
    s.finish(sink);
    sink.subject = outer;
    let def = ok.then(|| RuleDef {
        id: RuleId::from(id.clone()),
        krs: targets.iter().map(|(_, k)| KrId::from(k.clone())).collect(),
        exempt,
        source: source.clone().map(SourceId::from),
        conditions,
        file: file.to_string(),
    });
    RuleEntry {
        key,
        id,
        targets,
        source,
        def,
    }
}
