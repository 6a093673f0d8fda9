//! OKR and rule files (`config/okrs/*.toml`): objectives, their key results, and the rules
//! that map items to key results. Everything is validated across files: unknown KRs,
//! sources and fields, duplicate ids, parent cycles, measures missing what they need.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::NaiveDate;

use super::problems::{Locator, Problem};
use super::reader::{type_name, Section, Sink};
use crate::model::{KeyResultDef, Measure, MetricRef, ObjectiveDef, Period, WeightBy};
use crate::rules::{Condition, RuleDef, RuleSet};

pub(crate) struct Okrs {
    pub objectives: Vec<ObjectiveDef>,
    pub rules: RuleSet,
    pub files: Vec<String>,
}

/// Reads every file matching `globs` (relative to `base`), in sorted order.
pub(crate) fn load(
    base: &Path,
    globs: &[String],
    source_kinds: &BTreeMap<String, String>,
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
                            base.display()
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

    let mut objectives = Vec::new();
    let mut raw_rules = Vec::new();
    let mut names = Vec::new();
    for path in &files {
        let shown = path
            .strip_prefix(base)
            .unwrap_or(path)
            .display()
            .to_string();
        names.push(shown.clone());
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    file: path.display().to_string(),
                    key: String::new(),
                    line: None,
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
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
        let locator = Locator::new(&text);
        let mut sink = Sink {
            file: path.display().to_string(),
            locator: &locator,
            problems,
            secrets: super::Secrets::Defer,
        };
        let mut top = Section::new("", &table);
        for (key, t) in top.tables(&mut sink, "objective") {
            if let Some(o) = read_objective(&key, t, &shown, &mut sink) {
                objectives.push((o, sink.file.clone(), key, locator.clone()));
            }
        }
        let rule_tables = top.tables(&mut sink, "rule");
        for (n, (key, t)) in rule_tables.into_iter().enumerate() {
            if let Some(r) = read_rule(&key, n, t, &shown, &mut sink) {
                raw_rules.push((r, sink.file.clone(), key, locator.clone()));
            }
        }
        top.finish(&mut sink);
    }

    // Cross-file checks.
    let mut kr_measures: HashMap<String, Measure> = HashMap::new();
    let mut objective_ids = BTreeSet::new();
    let report =
        |problems: &mut Vec<Problem>, file: &str, locator: &Locator, key: String, msg: String| {
            problems.push(Problem {
                file: file.to_string(),
                line: locator.line(&key),
                key,
                message: msg,
            })
        };
    for (o, file, key, locator) in &objectives {
        if !objective_ids.insert(o.id.clone()) {
            report(
                problems,
                file,
                locator,
                format!("{key}.id"),
                format!("objective id \"{}\" is used twice", o.id),
            );
        }
        for (i, kr) in o.key_results.iter().enumerate() {
            if kr_measures.insert(kr.id.clone(), kr.measure).is_some() {
                report(
                    problems,
                    file,
                    locator,
                    format!("{key}.kr[{i}].id"),
                    format!("key result id \"{}\" is used twice", kr.id),
                );
            }
            if let Some(m) = &kr.metric {
                let k = format!("{key}.kr[{i}].metric.source");
                match source_kinds.get(&m.source) {
                    None => report(problems, file, locator, k, format!("unknown source \"{}\"; configured sources: {}", m.source, list(source_kinds.keys()))),
                    Some(kind) if kind != "sheet" => report(problems, file, locator, k, format!("source \"{}\" is a {kind} source; metric key results read from sheet sources", m.source)),
                    Some(_) => {}
                }
            }
        }
    }
    let parents: HashMap<String, Option<String>> = objectives
        .iter()
        .map(|(o, _, _, _)| (o.id.clone(), o.parent.clone()))
        .collect();
    for (o, file, key, locator) in &objectives {
        if let Some(p) = &o.parent {
            if !parents.contains_key(p) {
                report(
                    problems,
                    file,
                    locator,
                    format!("{key}.parent"),
                    format!("unknown objective \"{p}\""),
                );
                continue;
            }
            // Walk up; a cycle comes back to where it started.
            let mut seen = BTreeSet::from([o.id.clone()]);
            let mut cur = Some(p.clone());
            while let Some(c) = cur {
                if !seen.insert(c.clone()) {
                    report(
                        problems,
                        file,
                        locator,
                        format!("{key}.parent"),
                        format!("objective \"{}\" is its own ancestor", o.id),
                    );
                    break;
                }
                cur = parents.get(&c).cloned().flatten();
            }
        }
    }
    let mut rule_ids = BTreeSet::new();
    let mut rules = Vec::new();
    for (r, file, key, locator) in raw_rules {
        if !rule_ids.insert(r.id.clone()) {
            let k = format!("{key}.id");
            report(
                problems,
                &file,
                &locator,
                k,
                format!("rule id \"{}\" is used twice", r.id),
            );
        }
        for kr in &r.krs {
            match kr_measures.get(kr) {
                None => {
                    let k = format!("{key}.kr");
                    report(
                        problems,
                        &file,
                        &locator,
                        k,
                        format!("unknown key result \"{kr}\""),
                    );
                }
                Some(m) if !m.uses_items() => {
                    let k = format!("{key}.kr");
                    report(problems, &file, &locator, k, format!("key result \"{kr}\" is measured as {}; only completion, count, sum and milestone key results take items", m.as_str()));
                }
                Some(_) => {}
            }
        }
        if let Some(s) = &r.source {
            if !source_kinds.contains_key(s) {
                let k = format!("{key}.source");
                report(
                    problems,
                    &file,
                    &locator,
                    k,
                    format!(
                        "unknown source \"{s}\"; configured sources: {}",
                        list(source_kinds.keys())
                    ),
                );
            }
        }
        rules.push(r);
    }
    Okrs {
        objectives: objectives.into_iter().map(|(o, _, _, _)| o).collect(),
        rules: RuleSet::new(rules),
        files: names,
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

fn read_objective(key: &str, t: &toml::Table, file: &str, sink: &mut Sink) -> Option<ObjectiveDef> {
    let mut s = Section::new(key, t);
    let id = s.required_string(sink, "id");
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
    let mut krs = Vec::new();
    let kr_tables = s.tables(sink, "kr");
    for (kr_key, kt) in kr_tables {
        if let Some(kr) = read_kr(&kr_key, kt, id.as_deref().unwrap_or(""), sink) {
            krs.push(kr);
        }
    }
    s.finish(sink);
    Some(ObjectiveDef {
        id: id?,
        title: title?,
        period: period?,
        owner,
        parent,
        key_results: krs,
        file: file.to_string(),
    })
}

fn read_kr(key: &str, t: &toml::Table, objective: &str, sink: &mut Sink) -> Option<KeyResultDef> {
    let mut s = Section::new(key, t);
    let id = s.required_string(sink, "id");
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
    Some(KeyResultDef {
        id: id?,
        objective: objective.to_string(),
        title: title?,
        measure: measure?,
        weight,
        weight_by,
        start,
        target,
        field,
        metric,
        unit,
        owner,
    })
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
        (Some(c), None, None, None) => c,
        (None, sheet, Some(r), Some(c)) => match sheet {
            Some(sh) => format!("{sh}[row={r}][column={c}]"),
            None => format!("[row={r}][column={c}]"),
        },
        _ => {
            sink.report(key, "expected either cell = \"Sheet!B7\" or row and column labels (with an optional sheet)");
            return None;
        }
    };
    Some(MetricRef {
        source: source?,
        reference,
    })
}

fn read_rule(
    key: &str,
    index: usize,
    t: &toml::Table,
    file: &str,
    sink: &mut Sink,
) -> Option<RuleDef> {
    let mut s = Section::new(key, t);
    let id = s
        .string(sink, "id")
        .unwrap_or_else(|| format!("{file}#{}", index + 1));
    let kr = s.string(sink, "kr");
    let krs = s.string_list(sink, "krs");
    let exempt = s.boolean(sink, "exempt").unwrap_or(false);
    let source = s.string(sink, "source");
    s.raw("description");
    let mut targets = Vec::new();
    match (kr, krs) {
        (Some(_), Some(_)) => sink.report(&s.key("krs"), "set either kr or krs, not both"),
        (Some(k), None) => targets.push(k),
        (None, Some(list)) => targets = list,
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
    if !ok {
        return None;
    }
    Some(RuleDef {
        id,
        krs: targets,
        exempt,
        source,
        conditions,
        file: file.to_string(),
    })
}
