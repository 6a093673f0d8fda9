//! Write-back (SPEC.md "Notifications and write-back"): the `writeback = { label }` of a
//! Jira or GitHub source puts its label on the source's unaligned work in progress or done
//! in the current period, and takes it off once the item is aligned or exempt.
//!
//! Each decision touches an item once: the last edit okrsync made on an item is kept
//! (`writeback_log`), so an item labelled a moment ago is not labelled again before the
//! next sync shows the label, and a label a person took off by hand is not put back for
//! the same decision. The edits go through the source's own client (its rate limit and
//! retries).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::ms;
use crate::sync::Engine;

/// What a write-back pass did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WritebackDoc {
    /// Items given the label.
    pub add: Vec<String>,
    /// Items the label was taken off.
    pub remove: Vec<String>,
    /// Edits the source refused or could not make (retried at the next pass).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failed {
    pub source: String,
    pub key: String,
    pub action: String,
    pub error: String,
}

/// One decision about one item.
#[derive(Debug, Clone, PartialEq)]
struct Edit {
    key: String,
    add: bool,
}

/// The edits `source` needs now, given its candidates and the log of earlier edits.
fn decide(
    label: &str,
    candidates: Vec<(String, String, bool, bool)>,
    log: &std::collections::HashMap<String, String>,
) -> Vec<Edit> {
    let mut out = Vec::new();
    for (key, labels, in_period, unaligned) in candidates {
        let labels: BTreeSet<String> = serde_json::from_str(&labels).unwrap_or_default();
        let has = labels.contains(label);
        let last = log.get(&key).map(String::as_str);
        if unaligned && in_period && !has && last != Some("add") {
            out.push(Edit { key, add: true });
        } else if !unaligned && has && last != Some("remove") {
            out.push(Edit { key, add: false });
        }
    }
    out
}

/// Runs write-back for every source that has it (or only `only`); `dry_run` lists what it
/// would do and writes nothing, upstream or in the store.
pub async fn run(
    engine: &Engine,
    only: Option<&str>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<WritebackDoc> {
    let settings = engine.settings();
    let periods = crate::report::report_periods(settings, None, now)?;
    let mut doc = WritebackDoc::default();
    for (name, source_settings) in &settings.sources {
        let Some(wb) = &source_settings.writeback else {
            continue;
        };
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let store = engine.store();
        let candidates = store
            .writeback_candidates(name, &periods, &wb.label)
            .await?;
        let log = store.writeback_log(name, &wb.label).await?;
        let edits = decide(&wb.label, candidates, &log);
        if dry_run {
            for e in edits {
                if e.add { &mut doc.add } else { &mut doc.remove }.push(e.key);
            }
            continue;
        }
        let Some(source) = engine.source(name) else {
            continue;
        };
        for e in edits {
            let action = if e.add { "add" } else { "remove" };
            match source.set_label(&e.key, &wb.label, e.add).await {
                Ok(()) => {
                    store
                        .record_writeback(name, &e.key, &wb.label, action, ms(now))
                        .await?;
                    tracing::info!(source = %name, key = %e.key, label = %wb.label, action, "write-back");
                    if e.add { &mut doc.add } else { &mut doc.remove }.push(e.key);
                }
                Err(err) => {
                    tracing::warn!(source = %name, key = %e.key, action, error = %err, "write-back edit failed; retried at the next pass");
                    doc.failed.push(Failed {
                        source: name.clone(),
                        key: e.key,
                        action: action.to_string(),
                        error: err.to_string(),
                    });
                }
            }
        }
    }
    Ok(doc)
}

/// The pass in words, one line per edit.
pub fn render(doc: &WritebackDoc, dry_run: bool) -> String {
    let (add, remove) = if dry_run {
        ("would add the label to", "would remove the label from")
    } else {
        ("added the label to", "removed the label from")
    };
    let mut out = String::new();
    for k in &doc.add {
        out.push_str(&format!("{add} {k}\n"));
    }
    for k in &doc.remove {
        out.push_str(&format!("{remove} {k}\n"));
    }
    for f in &doc.failed {
        out.push_str(&format!(
            "FAILED to {} the label on {} ({}): {}\n",
            f.action, f.key, f.source, f.error
        ));
    }
    if out.is_empty() {
        out.push_str("write-back: nothing to do\n");
    }
    out
}

/// The daemon's write-back after sync steps: once for each source whose step succeeded
/// and that has write-back; what it did or could not do is logged.
pub async fn after_steps(engine: &Engine, runs: &[crate::store::SyncRun]) {
    for run in runs {
        let wants = engine
            .settings()
            .sources
            .get(&run.source)
            .is_some_and(|s| s.writeback.is_some());
        if run.error.is_some() || !wants {
            continue;
        }
        match self::run(engine, Some(&run.source), false, crate::clock::now()).await {
            Ok(doc) if !doc.add.is_empty() || !doc.remove.is_empty() || !doc.failed.is_empty() => {
                tracing::info!(source = %run.source, added = doc.add.len(), removed = doc.remove.len(), failed = doc.failed.len(), "write-back done");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %run.source, error = format!("{e:#}"), "write-back could not run")
            }
        }
    }
}

/// Whether any source has write-back.
pub fn configured(engine: &Engine) -> bool {
    engine
        .settings()
        .sources
        .values()
        .any(|s| s.writeback.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(
        key: &str,
        labels: &str,
        in_period: bool,
        unaligned: bool,
    ) -> (String, String, bool, bool) {
        (key.into(), labels.into(), in_period, unaligned)
    }

    #[test]
    fn each_decision_once() {
        let log: std::collections::HashMap<String, String> = [
            ("PAY-3".to_string(), "add".to_string()),
            ("PAY-6".to_string(), "remove".to_string()),
        ]
        .into();
        let edits = decide(
            "no-kr",
            vec![
                cand("PAY-1", "[]", true, true),           // unaligned, no label: add
                cand("PAY-2", r#"["no-kr"]"#, true, true), // already labelled
                cand("PAY-3", "[]", true, true),           // added before: not again
                cand("PAY-4", r#"["no-kr"]"#, true, false), // aligned now: remove
                cand("PAY-5", r#"["no-kr"]"#, false, false), // aligned, out of the period: remove
                cand("PAY-6", r#"["no-kr"]"#, true, false), // removed before (a person put it back)
                cand("PAY-7", "[]", false, true),          // not in the period: nothing
                cand("PAY-8", r#"["no-kr-x"]"#, true, false), // another label
            ],
            &log,
        );
        assert_eq!(
            edits,
            vec![
                Edit {
                    key: "PAY-1".into(),
                    add: true
                },
                Edit {
                    key: "PAY-4".into(),
                    add: false
                },
                Edit {
                    key: "PAY-5".into(),
                    add: false
                },
            ]
        );
    }
}
