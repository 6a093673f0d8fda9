//! Figures, their targets and the JSON file: every table prints the target beside its
//! figure with ✓ or ✗ (the targets are issue 12's, for 100,000 items; the benchmark never
//! fails on them), and every figure also goes into one JSON document written at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

/// What a figure should stay at or under.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Secs(f64),
    Millis(f64),
    MiB(f64),
}

impl Target {
    /// The limit in the figure's unit, and the unit's name.
    fn limit(self) -> (f64, &'static str) {
        match self {
            Target::Secs(l) => (l, "s"),
            Target::Millis(l) => (l, "ms"),
            Target::MiB(l) => (l, "MiB"),
        }
    }

    /// `value` is in the target's unit (seconds, milliseconds, MiB).
    pub fn met(self, value: f64) -> bool {
        value <= self.limit().0
    }

    /// `≤ 3 s ✓`
    pub fn show(self, value: f64) -> String {
        let (limit, unit) = self.limit();
        let mark = if self.met(value) { "✓" } else { "✗" };
        format!("≤ {limit} {unit} {mark}")
    }

    /// The target as JSON, with whether `value` meets it.
    pub fn json(self, value: f64) -> Value {
        let (limit, unit) = self.limit();
        json!({ "limit": limit, "unit": unit, "met": self.met(value) })
    }
}

/// `target` shown for `value`, or an empty column.
pub fn target_col(target: Option<Target>, value: f64) -> String {
    target.map(|t| t.show(value)).unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Latencies of a set of requests (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    pub fn of(mut took: Vec<Duration>) -> Percentiles {
        if took.is_empty() {
            return Percentiles::default();
        }
        took.sort();
        let n = took.len();
        let rank = |p: f64| took[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Percentiles {
            n,
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: took[n - 1],
        }
    }

    /// `p50 p90 p99 max`, in milliseconds, each column 9 wide.
    pub fn columns(&self) -> String {
        format!(
            "{:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "n": self.n,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
        })
    }
}

/// The JSON document of one run: sections of figures, written at the end; and every
/// figure that has a target, for the summary.
pub struct Report {
    doc: Map<String, Value>,
    targets: Vec<(String, f64, Target)>,
}

impl Report {
    pub fn new(items: usize, database: &str, smoke: bool) -> Report {
        let mut doc = Map::new();
        doc.insert("benchmark".into(), json!("okrsync sync (benches/sync)"));
        doc.insert("items".into(), json!(items));
        doc.insert("database".into(), json!(database));
        doc.insert("smoke".into(), json!(smoke));
        doc.insert("started_at".into(), json!(chrono::Utc::now().to_rfc3339()));
        doc.insert(
            "note".into(),
            json!("targets are issue 12's for 100,000 items; times in seconds (_s) or milliseconds (_ms), memory in MiB"),
        );
        Report {
            doc,
            targets: Vec::new(),
        }
    }

    /// Notes a figure with a target (`value` in the target's unit) for the summary.
    pub fn target(&mut self, what: &str, value: f64, target: Target) {
        self.targets.push((what.to_string(), value, target));
    }

    /// Every figure with a target, then how many met theirs.
    pub fn print_targets(&mut self) {
        println!();
        println!(
            "{:<58} {:>12}  target",
            "issue 12's targets (100,000 items)", "figure"
        );
        let mut met = 0;
        for (what, value, target) in &self.targets {
            let (_, unit) = target.limit();
            met += usize::from(target.met(*value));
            println!(
                "{what:<58} {:>12}  {}",
                if unit == "s" {
                    format!("{value:.2} {unit}")
                } else {
                    format!("{value:.1} {unit}")
                },
                target.show(*value)
            );
        }
        println!("{met} of {} targets met", self.targets.len());
        let list: Vec<Value> = self
            .targets
            .iter()
            .map(|(what, value, target)| {
                let mut t = target.json(*value);
                t["figure"] = json!(what);
                t["value"] = json!(value);
                t
            })
            .collect();
        self.set("targets", Value::Array(list));
    }

    /// Appends `entry` to the list `section`.
    pub fn push(&mut self, section: &str, entry: Value) {
        let list = self
            .doc
            .entry(section.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(entry);
        }
    }

    /// Sets `section` to `value`.
    pub fn set(&mut self, section: &str, value: Value) {
        self.doc.insert(section.to_string(), value);
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&Value::Object(self.doc.clone()))?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// `target/bench-sync-<database>-<items>.json` (`…-smoke.json` under `cargo test`), in
/// the target folder this benchmark was built in.
pub fn default_path(database: &str, items: usize, smoke: bool) -> PathBuf {
    // The executable is target/<profile>/deps/sync-<hash>.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let name = if smoke {
        format!("bench-sync-{database}-smoke.json")
    } else {
        format!("bench-sync-{database}-{items}.json")
    };
    target.join(name)
}
