//! A small reader over TOML tables that records every problem instead of stopping at the
//! first: unknown keys, wrong types, missing required keys. Typed settings are built from
//! what it returns; `okrsync check` prints what it collected.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use toml::Value;

use super::problems::{Locator, Problem};
pub(crate) use super::secrets::resolve_path;
use super::secrets::{SecretRef, Secrets};

/// Where problems go, with the file they are about.
pub struct Sink<'a> {
    pub file: String,
    pub locator: &'a Locator,
    pub problems: &'a mut Vec<Problem>,
    /// Whether secrets are read while loading.
    pub secrets: Secrets,
    /// What is being read, named by its id (`key result "emea.bugs"`): every message about
    /// an objective, key result or rule starts with it.
    pub subject: Option<String>,
}

impl Sink<'_> {
    pub fn report(&mut self, key: &str, message: impl Into<String>) {
        let message = message.into();
        self.problems.push(Problem {
            file: self.file.clone(),
            key: key.to_string(),
            line: self.locator.line(key),
            message: match &self.subject {
                Some(subject) => format!("{subject}: {message}"),
                None => message,
            },
        });
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// One TOML table being read; call [`Section::finish`] to report keys nobody asked for.
pub struct Section<'t> {
    pub path: String,
    table: &'t toml::Table,
    known: BTreeSet<&'static str>,
}

impl<'t> Section<'t> {
    pub fn new(path: impl Into<String>, table: &'t toml::Table) -> Section<'t> {
        Section {
            path: path.into(),
            table,
            known: BTreeSet::new(),
        }
    }

    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// Declares `key` as known and returns its raw value.
    pub fn raw(&mut self, key: &'static str) -> Option<&'t Value> {
        self.known.insert(key);
        self.table.get(key)
    }

    pub fn has(&mut self, key: &'static str) -> bool {
        self.raw(key).is_some()
    }

    pub fn string(&mut self, sink: &mut Sink, key: &'static str) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn required_string(&mut self, sink: &mut Sink, key: &'static str) -> Option<String> {
        if !self.has(key) {
            sink.report(&self.key(key), "is required (a string)");
            return None;
        }
        let s = self.string(sink, key)?;
        if s.trim().is_empty() {
            sink.report(&self.key(key), "must not be empty");
            return None;
        }
        Some(s)
    }

    pub fn number(&mut self, sink: &mut Sink, key: &'static str) -> Option<f64> {
        match self.raw(key)? {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Some(f),
                _ => {
                    sink.report(&self.key(key), format!("expected a number, found \"{s}\""));
                    None
                }
            },
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected a number, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, sink: &mut Sink, key: &'static str) -> Option<bool> {
        match self.raw(key)? {
            Value::Boolean(b) => Some(*b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn integer(
        &mut self,
        sink: &mut Sink,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let v = match self.raw(key)? {
            Value::Integer(i) => *i,
            Value::String(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse::<i64>().ok()?,
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected an integer, found {}", type_name(other)),
                );
                return None;
            }
        };
        if v < min || v > max {
            sink.report(
                &self.key(key),
                format!("expected an integer from {min} to {max}, found {v}"),
            );
            return None;
        }
        Some(v)
    }

    /// A duration such as `5m`, `90s`, `1h 30m`.
    pub fn duration(&mut self, sink: &mut Sink, key: &'static str) -> Option<Duration> {
        let s = self.string(sink, key)?;
        match humantime::parse_duration(s.trim()) {
            Ok(d) if d > MAX_DURATION => {
                sink.report(
                    &self.key(key),
                    format!("expected at most 366 days, found \"{s}\""),
                );
                None
            }
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                sink.report(&self.key(key), "must be longer than zero");
                None
            }
            Err(e) => {
                sink.report(
                    &self.key(key),
                    format!(
                        "expected a duration like \"30s\", \"5m\" or \"1h\", found \"{s}\" ({e})"
                    ),
                );
                None
            }
        }
    }

    /// A size such as `64 MiB`, `512KiB`, `10MB` or a number of bytes.
    pub fn size(&mut self, sink: &mut Sink, key: &'static str) -> Option<u64> {
        let text = match self.raw(key)? {
            Value::Integer(i) => i.to_string(),
            Value::String(s) => s.clone(),
            other => {
                sink.report(
                    &self.key(key),
                    format!(
                        "expected a size like \"64 MiB\", found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        match parse_size(&text) {
            Some(0) => {
                sink.report(&self.key(key), "must be larger than zero");
                None
            }
            Some(n) => Some(n),
            None => {
                sink.report(
                    &self.key(key),
                    format!("expected a size like \"64 MiB\", \"512 KiB\" or a number of bytes, found \"{text}\""),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, sink: &mut Sink, key: &'static str) -> Option<Vec<String>> {
        match self.raw(key)? {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        other => sink.report(
                            &format!("{}[{i}]", self.key(key)),
                            format!("expected a string, found {}", type_name(other)),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected a list of strings, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn table(&mut self, sink: &mut Sink, key: &'static str) -> Option<&'t toml::Table> {
        match self.raw(key)? {
            Value::Table(t) => Some(t),
            other => {
                sink.report(
                    &self.key(key),
                    format!("expected a table, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An array of tables (`[[objective]]`).
    pub fn tables(&mut self, sink: &mut Sink, key: &'static str) -> Vec<(String, &'t toml::Table)> {
        let path = self.key(key);
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::Table(t) => Some((format!("{path}[{i}]"), t)),
                    other => {
                        sink.report(
                            &format!("{path}[{i}]"),
                            format!("expected a table, found {}", type_name(other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                sink.report(
                    &path,
                    format!(
                        "expected a list of tables ([[{key}]]), found {}",
                        type_name(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// One of a fixed set of words.
    pub fn choice(
        &mut self,
        sink: &mut Sink,
        key: &'static str,
        choices: &[&str],
    ) -> Option<String> {
        let s = self.string(sink, key)?;
        if choices.contains(&s.as_str()) {
            Some(s)
        } else {
            sink.report(
                &self.key(key),
                format!("expected one of {}, found \"{s}\"", choices.join(", ")),
            );
            None
        }
    }

    /// Reports every key of the table that was never asked for.
    pub fn finish(self, sink: &mut Sink) {
        for key in self.table.keys() {
            if !self.known.contains(key.as_str()) {
                let mut expected: Vec<&str> = self.known.iter().copied().collect();
                expected.sort_unstable();
                sink.report(
                    &self.key(key),
                    format!("unknown key; expected one of: {}", expected.join(", ")),
                );
            }
        }
    }
}

/// Reads where a secret named by `<base>_env` (an environment variable) or `<base>_file` (a
/// file path, relative to the config file; one trailing newline is dropped) lives. Exactly
/// one of the two may be set; `required` says whether neither is a problem. The secret itself
/// is read now only when the sink resolves secrets ([`Secrets::Resolve`]).
pub(crate) fn secret(
    section: &mut Section,
    sink: &mut Sink,
    env_key: &'static str,
    file_key: &'static str,
    base_dir: &Path,
    required: bool,
) -> Option<SecretRef> {
    let env_name = section.string(sink, env_key);
    let file_name = section.string(sink, file_key);
    let found = match (env_name, file_name) {
        (Some(_), Some(_)) => {
            sink.report(
                &section.key(env_key),
                format!("set either {env_key} or {file_key}, not both"),
            );
            return None;
        }
        (Some(var), None) => {
            let key = section.key(env_key);
            let line = sink.locator.line(&key);
            SecretRef::env(var, &sink.file, key, line)
        }
        (None, Some(path)) => {
            let key = section.key(file_key);
            let line = sink.locator.line(&key);
            SecretRef::file(path, base_dir, &sink.file, key, line)
        }
        (None, None) => {
            if required {
                sink.report(&section.key(env_key), format!("a secret is required: set {env_key} (an environment variable name) or {file_key} (a file path)"));
            }
            return None;
        }
    };
    if sink.secrets == Secrets::Resolve {
        if let Err(p) = found.get() {
            sink.problems.push(p.clone());
        }
    }
    Some(found)
}

/// `64 MiB`, `512KiB`, `10 MB`, `2GB`, `1000 B` or `1000`: bytes (KiB = 1024, KB = 1000).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes < 1e15).then_some(bytes.round() as u64)
}

/// The longest duration a setting may hold: longer ones are typos (and would overflow the
/// clocks they are added to).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A config or OKR file's text. Not UTF-8, a directory, or unreadable: a message that says
/// which and where.
pub fn read_text(path: &std::path::Path) -> Result<String, String> {
    if path.is_dir() {
        return Err("is a directory, not a file".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    // A byte order mark (Windows editors write one) is not part of the text: without it the
    // positions reported are the ones an editor shows.
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        format!(
            "is not UTF-8 text: invalid byte at line {line}, column {column} (save the file as UTF-8)"
        )
    })
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_binary_and_decimal_units() {
        assert_eq!(parse_size("64 MiB"), Some(64 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1.5 KiB"), Some(1536));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
