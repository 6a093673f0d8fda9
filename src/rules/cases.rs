//! `okrsync rules test`: case files that pin down what the rules say about example items,
//! so a change to the rules that moves the wrong work fails in CI before it moves a number.
//!
//! ```toml
//! [[case]]
//! name = "a checkout story moves the checkout KR"
//! item = { source = "jira", key = "PAY-1", project = "PAY", type = "Story", labels = ["emea", "checkout"] }
//! moves = ["emea.checkout"]            # exactly these KRs; [] means it moves none
//! # exempt = true                      # or: it must be exempt
//! ```
//!
//! A case is read like an OKR file (every problem at once, with file and line) and evaluated
//! with [`RuleSet::evaluate`], the function the sync engine stores matches with: no
//! database, no source, no secret.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::RuleSet;
use crate::model::{Category, Item, ItemKind};
use crate::settings::reader::{type_name, Section, Sink};
use crate::settings::{ConfigReport, Locator, Problem, Secrets, Settings};

/// One `[[case]]`, validated.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The case file, as it was named (given on the command line, or found by default).
    pub file: String,
    /// The line of its `[[case]]`.
    pub line: Option<usize>,
    pub item: Item,
    /// Exactly the KRs it must move (in any order); `Some([])`: none.
    pub moves: Option<Vec<String>>,
    /// Whether it must (or must not) be exempt.
    pub exempt: Option<bool>,
}

/// What the rules said about a case's item.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub case: &'a Case,
    /// The KRs it moves, sorted.
    pub moves: Vec<String>,
    /// The exempt rule that takes it.
    pub exempt_rule: Option<String>,
    /// Every rule whose match holds, in file order, with what it does (`→ kr, kr` or
    /// `exempt`); earlier rules win a KR, so not each of them decides it.
    pub matched: Vec<(String, String)>,
    pub passed: bool,
}

/// The case files to read: those given (a directory stands for its `*.toml`), or by
/// default `tests/*.toml` in the folder of each `okrs` pattern (see [`default_dirs`]).
pub fn case_files(settings: &Settings, given: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigReport> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    let push = |f: PathBuf, files: &mut Vec<PathBuf>| {
        if !files.contains(&f) {
            files.push(f);
        }
    };
    if given.is_empty() {
        let dirs = default_dirs(settings);
        for dir in &dirs {
            for f in toml_files(dir) {
                push(f, &mut files);
            }
        }
        if files.is_empty() {
            let looked: Vec<String> = dirs
                .iter()
                .map(|d| d.join("*.toml").display().to_string())
                .collect();
            problems.push(Problem {
                file: settings.config_path.display().to_string(),
                key: "okrs".into(),
                line: None,
                message: format!(
                    "no case file found (looked for {}); give the files as arguments",
                    looked.join(", ")
                ),
            });
        }
    } else {
        for p in given {
            if p.is_dir() {
                let found = toml_files(p);
                if found.is_empty() {
                    problems.push(Problem {
                        file: p.display().to_string(),
                        key: String::new(),
                        line: None,
                        message: "the folder holds no *.toml case file".into(),
                    });
                }
                for f in found {
                    push(f, &mut files);
                }
            } else {
                push(p.clone(), &mut files);
            }
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(ConfigReport { problems })
    }
}

/// "Beside the OKR files": for each `okrs` pattern, the folder it starts from — its
/// directory part up to the first component with a wildcard (`okrs/*.toml` → `okrs`,
/// `teams/*/okrs.toml` → `teams`), relative to the config file — joined with `tests`.
pub fn default_dirs(settings: &Settings) -> Vec<PathBuf> {
    let base = settings
        .config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in &settings.okr_globs {
        let d = base.join(glob_root(pattern)).join("tests");
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The folder a file pattern starts from: its directory part up to the first wildcard.
fn glob_root(pattern: &str) -> PathBuf {
    let components: Vec<_> = Path::new(pattern).components().collect();
    let mut dir = PathBuf::new();
    for c in components.iter().take(components.len().saturating_sub(1)) {
        if c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        dir.push(c);
    }
    dir
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    found.sort();
    found
}

/// Reads and validates every case file; every problem of every file, or the cases.
pub fn read(files: &[PathBuf], settings: &Settings) -> Result<Vec<Case>, ConfigReport> {
    let krs: HashMap<&str, crate::model::Measure> = settings
        .objectives
        .iter()
        .flat_map(|o| &o.key_results)
        .map(|k| (k.id.as_str(), k.measure))
        .collect();
    let sources: Vec<&str> = settings.sources.keys().map(String::as_str).collect();
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    file,
                    key: String::new(),
                    line: None,
                    message: format!("cannot read the case file: {e}"),
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
                    file,
                    key: String::new(),
                    line,
                    message: format!("not valid TOML: {}", e.message()),
                });
                continue;
            }
        };
        let locator = Locator::new(&text);
        let mut sink = Sink {
            file: file.clone(),
            locator: &locator,
            problems: &mut problems,
            secrets: Secrets::Defer,
            subject: None,
        };
        let mut top = Section::new("", &table);
        let entries = top.tables(&mut sink, "case");
        if !table.contains_key("case") {
            sink.report("case", "no [[case]] in this file");
        }
        top.finish(&mut sink);
        let mut names = BTreeSet::new();
        for (key, t) in entries {
            if let Some(case) = read_case(&key, t, &file, &krs, &sources, &mut sink) {
                if !names.insert(case.name.clone()) {
                    sink.subject = Some(format!("case \"{}\"", case.name));
                    sink.report(
                        &format!("{key}.name"),
                        "the name is used twice in this file",
                    );
                    sink.subject = None;
                }
                cases.push(case);
            }
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(ConfigReport { problems })
    }
}

fn read_case(
    key: &str,
    t: &toml::Table,
    file: &str,
    krs: &HashMap<&str, crate::model::Measure>,
    sources: &[&str],
    sink: &mut Sink,
) -> Option<Case> {
    let mut s = Section::new(key, t);
    let name = s.required_string(sink, "name");
    sink.subject = name.as_ref().map(|n| format!("case \"{n}\""));
    let before = sink.problems.len();
    let item = match s.raw("item") {
        None => {
            sink.report(&s.key("item"), "is required (a table of item fields)");
            None
        }
        Some(toml::Value::Table(item)) => read_item(&s.key("item"), item, sources, sink),
        Some(other) => {
            sink.report(
                &s.key("item"),
                format!(
                    "expected a table of item fields, found {}",
                    type_name(other)
                ),
            );
            None
        }
    };
    let moves = match s.raw("moves") {
        None => None,
        Some(toml::Value::Array(list)) => {
            let mut ids = Vec::new();
            for (i, v) in list.iter().enumerate() {
                let k = format!("{}[{i}]", s.key("moves"));
                match v {
                    toml::Value::String(id) => match krs.get(id.as_str()) {
                        None => sink.report(&k, format!("unknown key result \"{id}\"")),
                        Some(m) if !m.uses_items() => sink.report(
                            &k,
                            format!(
                                "key result \"{id}\" is measured as {}; no rule moves it",
                                m.as_str()
                            ),
                        ),
                        Some(_) => ids.push(id.clone()),
                    },
                    other => sink.report(
                        &k,
                        format!("expected a key result id, found {}", type_name(other)),
                    ),
                }
            }
            Some(ids)
        }
        Some(other) => {
            sink.report(
                &s.key("moves"),
                format!(
                    "expected a list of key result ids ([] for none), found {}",
                    type_name(other)
                ),
            );
            None
        }
    };
    let exempt = s.boolean(sink, "exempt");
    if !s.has("moves") && !s.has("exempt") {
        sink.report(
            key,
            "says nothing to check: give moves = [\"KR\", …] (or [] for none) and/or exempt = true",
        );
    }
    s.finish(sink);
    let failed = sink.problems.len() > before;
    sink.subject = None;
    if failed {
        return None;
    }
    Some(Case {
        name: name?,
        file: file.to_string(),
        line: sink.locator.line(key),
        item: item?,
        moves,
        exempt,
    })
}

/// The item fields of SPEC.md "Items"; `fields.<name>` is written as a quoted key
/// (`"fields.customfield_10050" = "Growth"`) or inside `fields = { … }`.
fn read_item(key: &str, t: &toml::Table, sources: &[&str], sink: &mut Sink) -> Option<Item> {
    let before = sink.problems.len();
    let mut fields: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut plain = toml::Table::new();
    for (k, v) in t {
        match k.strip_prefix("fields.") {
            Some(name) => {
                let path = format!("{key}.{k}");
                if name.is_empty() {
                    sink.report(&path, "expected fields.<name>");
                } else if let Some(j) = field_value(v, &path, sink) {
                    fields.insert(name.to_string(), j);
                }
            }
            None => {
                plain.insert(k.clone(), v.clone());
            }
        }
    }
    let mut s = Section::new(key, &plain);
    // Taken out above; declared so the unknown-key message names it.
    s.raw("fields.<name>");
    let source = s.string(sink, "source").unwrap_or_default();
    if !source.is_empty() && !sources.contains(&source.as_str()) {
        sink.report(
            &s.key("source"),
            format!(
                "unknown source \"{source}\"; configured sources: {}",
                if sources.is_empty() {
                    "none".to_string()
                } else {
                    sources.join(", ")
                }
            ),
        );
    }
    let item_key = s.string(sink, "key").unwrap_or_default();
    let kinds = ["issue", "pull_request", "epic", "row"];
    let kind = s
        .choice(sink, "kind", &kinds)
        .and_then(|k| ItemKind::parse(&k))
        .unwrap_or(ItemKind::Issue);
    let categories = ["todo", "in_progress", "done"];
    let category = s
        .choice(sink, "category", &categories)
        .and_then(|c| Category::parse(&c))
        .unwrap_or(Category::Todo);
    let mut text = |s: &mut Section, k: &'static str| s.string(sink, k);
    let title = text(&mut s, "title").unwrap_or_default();
    let url = text(&mut s, "url").unwrap_or_default();
    let project = text(&mut s, "project").unwrap_or_default();
    let item_type = text(&mut s, "type").unwrap_or_default();
    let status = text(&mut s, "status").unwrap_or_default();
    let epic = text(&mut s, "epic");
    let parent = text(&mut s, "parent");
    let milestone = text(&mut s, "milestone");
    let assignee = text(&mut s, "assignee");
    let labels = s.string_list(sink, "labels").unwrap_or_default();
    let components = s.string_list(sink, "components").unwrap_or_default();
    let estimate = s.number(sink, "estimate");
    let created = time(&mut s, sink, "created");
    let updated = time(&mut s, sink, "updated");
    let resolved = time(&mut s, sink, "resolved");
    if let Some(table) = s.table(sink, "fields") {
        for (name, v) in table {
            let path = format!("{key}.fields.{name}");
            if fields.contains_key(name) {
                sink.report(&path, format!("fields.{name} is given twice"));
            } else if let Some(j) = field_value(v, &path, sink) {
                fields.insert(name.clone(), j);
            }
        }
    }
    s.finish(sink);
    if sink.problems.len() > before {
        return None;
    }
    Some(Item {
        source,
        ext_id: item_key.clone(),
        key: item_key,
        kind,
        title,
        url,
        project,
        item_type,
        status,
        category,
        labels,
        components,
        epic,
        parent,
        milestone,
        assignee,
        estimate,
        created,
        updated: updated.unwrap_or_else(crate::clock::now),
        resolved,
        fields,
        abandoned: false,
    })
}

/// A `fields.<name>` value as sources store them: a string, number, boolean or a list of them.
fn field_value(v: &toml::Value, path: &str, sink: &mut Sink) -> Option<serde_json::Value> {
    fn scalar(v: &toml::Value) -> Option<serde_json::Value> {
        Some(match v {
            toml::Value::String(s) => serde_json::Value::String(s.clone()),
            toml::Value::Integer(i) => serde_json::Value::from(*i),
            toml::Value::Float(f) => serde_json::Value::from(*f),
            toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
            _ => return None,
        })
    }
    let value = match v {
        toml::Value::Array(list) => list
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(serde_json::Value::Array),
        other => scalar(other),
    };
    if value.is_none() {
        sink.report(
            path,
            format!(
                "expected a string, number, boolean or a list of them, found {}",
                type_name(v)
            ),
        );
    }
    value
}

/// A time: RFC 3339, a TOML date-time, or a date (its start, UTC).
fn time(s: &mut Section, sink: &mut Sink, key: &'static str) -> Option<DateTime<Utc>> {
    let text = match s.raw(key)? {
        toml::Value::String(t) => t.trim().to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        other => {
            sink.report(
                &s.key(key),
                format!(
                    "expected a time like \"2026-11-03T09:00:00Z\" or a date, found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    sink.report(
        &s.key(key),
        format!("expected a time like \"2026-11-03T09:00:00Z\" or a date, found \"{text}\""),
    );
    None
}

/// Evaluates every case with the rule set.
pub fn run<'a>(cases: &'a [Case], rules: &RuleSet) -> Vec<Outcome<'a>> {
    cases
        .iter()
        .map(|case| {
            let eval = rules.evaluate(&case.item);
            let mut moves: Vec<String> = eval.matches.iter().map(|(k, _)| k.clone()).collect();
            moves.sort();
            let matched = if case.item.abandoned {
                Vec::new()
            } else {
                rules
                    .rules()
                    .iter()
                    .filter(|r| r.matches(&case.item))
                    .map(|r| {
                        let does = if r.exempt {
                            "exempt".to_string()
                        } else {
                            let krs: Vec<&str> = r.krs.iter().map(|k| k.as_str()).collect();
                            format!("→ {}", krs.join(", "))
                        };
                        (r.id.to_string(), does)
                    })
                    .collect()
            };
            let moves_hold = case.moves.as_ref().is_none_or(|want| {
                let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
                let got: BTreeSet<&str> = moves.iter().map(String::as_str).collect();
                want == got
            });
            let exempt_holds = case
                .exempt
                .is_none_or(|want| want == eval.exempt_rule.is_some());
            Outcome {
                case,
                moves,
                exempt_rule: eval.exempt_rule,
                matched,
                passed: moves_hold && exempt_holds,
            }
        })
        .collect()
}

fn krs_text(krs: &[String]) -> String {
    if krs.is_empty() {
        "moves no key result".into()
    } else {
        format!("moves {}", krs.join(", "))
    }
}

/// Each failing case (where, what it expected, what it got, which rules matched), then a
/// summary line: `12 cases passed`, or `1 of 12 cases failed`.
pub fn render(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &failed {
        let c = o.case;
        let place = match c.line {
            Some(l) => format!("{}:{l}", c.file),
            None => c.file.clone(),
        };
        let mut expected = Vec::new();
        if let Some(want) = &c.moves {
            let mut want = want.clone();
            want.sort();
            want.dedup();
            expected.push(krs_text(&want));
        }
        match c.exempt {
            Some(true) => expected.push("exempt".into()),
            Some(false) => expected.push("not exempt".into()),
            None => {}
        }
        let got = format!(
            "{}, {}",
            krs_text(&o.moves),
            match &o.exempt_rule {
                Some(r) => format!("exempt by \"{r}\""),
                None => "not exempt".into(),
            }
        );
        let matched = if o.matched.is_empty() {
            "none".to_string()
        } else {
            o.matched
                .iter()
                .map(|(id, does)| format!("\"{id}\" ({does})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "FAILED {place}: case \"{}\"", c.name);
        let _ = writeln!(out, "    expected: {}", expected.join(", "));
        let _ = writeln!(out, "    got:      {got}");
        let _ = writeln!(out, "    matched rules: {matched}");
    }
    let n = outcomes.len();
    let plural = |n: usize| if n == 1 { "case" } else { "cases" };
    if failed.is_empty() {
        let _ = writeln!(out, "{n} {} passed", plural(n));
    } else {
        let _ = writeln!(out, "{} of {n} {} failed", failed.len(), plural(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_folder_is_where_each_okrs_pattern_starts() {
        assert_eq!(glob_root("okrs/*.toml"), PathBuf::from("okrs"));
        assert_eq!(glob_root("okrs/team.toml"), PathBuf::from("okrs"));
        assert_eq!(glob_root("teams/*/okrs.toml"), PathBuf::from("teams"));
        assert_eq!(glob_root("a/b/**/*.toml"), PathBuf::from("a/b"));
        assert_eq!(glob_root("*.toml"), PathBuf::new());
        assert_eq!(
            glob_root("/etc/okrsync/okrs/*.toml"),
            PathBuf::from("/etc/okrsync/okrs")
        );
    }
}
