//! Configuration problems, collected in one pass and reported together.
//!
//! Every problem names the file, the key (as a dotted path with array indexes) and, when it
//! can be found, the line; the message says what was expected.

use std::collections::HashMap;
use std::fmt;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Everything wrong with a configuration; what `okrsync check` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigReport {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "the configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Maps dotted key paths (`sources.jira.token_env`, `objective[0].kr[1].target`) to the
/// line they are written on, by reading the TOML text. Good enough to point a user at the
/// right place; `None` when the key is not written in the file (e.g. it is missing).
#[derive(Debug, Default, Clone)]
pub struct Locator {
    lines: HashMap<String, usize>,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        let mut lines = HashMap::new();
        let mut counters: HashMap<String, usize> = HashMap::new();
        let mut current = String::new();
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(inner) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                let segments = split_key(inner);
                let parent = resolve(&segments[..segments.len().saturating_sub(1)], &counters);
                let last = segments.last().cloned().unwrap_or_default();
                let array = join(&parent, &last);
                let idx = counters
                    .entry(array.clone())
                    .and_modify(|i| *i += 1)
                    .or_insert(0);
                current = format!("{array}[{idx}]");
                lines.entry(current.clone()).or_insert(line_no);
                continue;
            }
            if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = resolve(&split_key(inner), &counters);
                lines.entry(current.clone()).or_insert(line_no);
                continue;
            }
            if let Some((key, value)) = split_assignment(line) {
                let path = join(&current, &split_key(key).join("."));
                lines.entry(path.clone()).or_insert(line_no);
                // Inline tables: record their keys on the same line.
                let value = value.trim();
                if let Some(body) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                    for part in body.split(',') {
                        if let Some((k, _)) = split_assignment(part.trim()) {
                            lines
                                .entry(join(&path, &split_key(k).join(".")))
                                .or_insert(line_no);
                        }
                    }
                }
            }
        }
        Locator { lines }
    }

    /// The line of `path`, or of its closest written ancestor.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path.to_string();
        loop {
            if let Some(l) = self.lines.get(&p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
            if p.is_empty() {
                return None;
            }
        }
    }
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

fn resolve(segments: &[String], counters: &HashMap<String, usize>) -> String {
    let mut path = String::new();
    for s in segments {
        path = join(&path, s);
        if let Some(i) = counters.get(&path) {
            path = format!("{path}[{i}]");
        }
    }
    path
}

fn strip_comment(line: &str) -> &str {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (in_str, c) {
            (None, '"') | (None, '\'') => in_str = Some(c),
            (Some(q), c) if c == q => in_str = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `key = value` → (key, value), respecting quoted keys.
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let mut in_str: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (in_str, c) {
            (None, '"') | (None, '\'') => in_str = Some(c),
            (Some(q), c) if c == q => in_str = None,
            (None, '=') => return Some((line[..i].trim(), &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Splits a dotted TOML key into segments, unquoting quoted ones (kept whole).
fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str: Option<char> = None;
    for c in key.chars() {
        match (in_str, c) {
            (None, '"') | (None, '\'') => in_str = Some(c),
            (Some(q), c) if c == q => in_str = None,
            (None, '.') => out.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) if c.is_whitespace() => {}
            (_, c) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_tables_arrays_and_inline_keys() {
        let text = r#"okrs = ["okrs/*.toml"]
[server]
listen = "x" # comment
[sources.jira]
kind = "jira"
[[objective]]
id = "a"
[[objective.kr]]
id = "a.1"
metric = { source = "finance", cell = "B7" }
[[objective]]
id = "b"
[[objective.kr]]
id = "b.1"
[[rule]]
kr = "a.1"
[rule.match]
"fields.customfield_1" = "x"
"#;
        let loc = Locator::new(text);
        assert_eq!(loc.line("okrs"), Some(1));
        assert_eq!(loc.line("server.listen"), Some(3));
        assert_eq!(loc.line("sources.jira.kind"), Some(5));
        assert_eq!(loc.line("sources.jira.token_env"), Some(4));
        assert_eq!(loc.line("objective[0].kr[0].metric.cell"), Some(10));
        assert_eq!(loc.line("objective[1].id"), Some(12));
        assert_eq!(loc.line("objective[1].kr[0].id"), Some(14));
        assert_eq!(loc.line("rule[0].match.fields.customfield_1"), Some(18));
        assert_eq!(loc.line("nothing"), None);
    }
}
