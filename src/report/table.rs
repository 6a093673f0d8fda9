//! Plain-text tables for people at a terminal. Scripts use `--json`.

use std::fmt::Write;

use crate::model::KrKind;

use super::{ExplainDoc, KrStatus, MovesDoc, StatusDoc, UnalignedDoc};

fn pct(p: f64) -> String {
    format!("{:>4.0}%", p * 100.0)
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) => crate::model::plain_number(x),
    }
}

fn bar(p: f64) -> String {
    let filled = (p.clamp(0.0, 1.0) * 10.0).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(10 - filled))
}

/// A KR's number in words: a measured value (metric, manual) between its start and target,
/// `4.1 (from 5 to 3)`; work as done of total and the items behind it, `12 of 20 (14 items)`.
fn kr_value(k: &KrStatus) -> String {
    if !k.measure.uses_items() {
        format!(
            "{} (from {} to {})",
            num(k.current),
            num(Some(k.start)),
            num(k.target)
        )
    } else {
        format!(
            "{} of {} ({} items)",
            num(k.current),
            num(k.target),
            k.items
        )
    }
}

pub fn render_status(doc: &StatusDoc) -> String {
    let mut out = String::new();
    if doc.objectives.is_empty() {
        out.push_str("No objectives are configured.\n");
    }
    for o in &doc.objectives {
        let _ = writeln!(
            out,
            "{} {}  {}  {}  ({}, {})",
            bar(o.progress),
            pct(o.progress),
            o.status.as_str(),
            o.title,
            o.id,
            o.period
        );
        for k in &o.key_results {
            let _ = writeln!(
                out,
                "    {} {}  {:<9}  {}  [{}]  {}",
                bar(k.progress),
                pct(k.progress),
                k.status.as_str(),
                k.title,
                k.id,
                kr_value(k)
            );
            if let Some(r) = &k.status_reason {
                let _ = writeln!(out, "        stale: {r}");
            }
            judgement(&mut out, k, "        ");
        }
    }
    out
}

/// The stretch marker, the owner's confidence and the flags, one line each.
fn judgement(out: &mut String, k: &KrStatus, indent: &str) {
    if k.kind == KrKind::Aspirational {
        let _ = writeln!(
            out,
            "{indent}stretch: a success at {:.0}% of its target",
            k.success * 100.0
        );
    }
    if let Some(c) = &k.confidence {
        let _ = writeln!(out, "{indent}confidence: {}", super::confidence_in_words(c));
    }
    for f in &k.flags {
        let _ = writeln!(
            out,
            "{indent}flag {} (since {}): {}",
            f.kind.as_str(),
            f.since.format("%Y-%m-%d"),
            f.message
        );
    }
}

pub fn render_explain(doc: &ExplainDoc) -> String {
    let k = &doc.kr;
    let mut out = String::new();
    if let Some(at) = doc.at {
        let _ = writeln!(
            out,
            "as of {} (the last snapshot at or before then{})",
            at.format("%Y-%m-%d %H:%M UTC"),
            k.updated_at
                .map(|u| format!(", taken {}", u.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_else(|| ": none, the KR had no value yet".into())
        );
    }
    let _ = writeln!(
        out,
        "{} — {} ({})\n{} {}  {}  current {} of target {} (start {}), measure {}",
        k.id,
        k.title,
        k.objective,
        bar(k.progress),
        pct(k.progress),
        k.status.as_str(),
        num(k.current),
        num(k.target),
        num(Some(k.start)),
        k.measure.as_str()
    );
    if let Some(r) = &k.status_reason {
        let _ = writeln!(out, "stale: {r}");
    }
    judgement(&mut out, k, "");
    let _ = writeln!(
        out,
        "rules: {}",
        if doc.rules.is_empty() {
            "none".to_string()
        } else {
            doc.rules.join(", ")
        }
    );
    if doc.items.is_empty() {
        let _ = writeln!(out, "No items are matched.");
    } else {
        let _ = writeln!(
            out,
            "{:<14} {:<12} {:>7} {:<6} {:<20} title",
            "key", "category", "weight", "counts", "rule"
        );
        for i in &doc.items {
            let _ = writeln!(
                out,
                "{:<14} {:<12} {:>7} {:<6} {:<20} {}",
                i.key,
                i.category,
                num(Some(i.weight)),
                if i.counts { "yes" } else { "no" },
                i.rule,
                i.title
            );
        }
    }
    out
}

pub fn render_moves(doc: &MovesDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} items", doc.selector, doc.items);
    if doc.key_results.is_empty() {
        let _ = writeln!(out, "They move no key result.");
    }
    for k in &doc.key_results {
        let _ = writeln!(
            out,
            "  {}  {:>4} items  {}  ({})",
            pct(k.share),
            k.items,
            k.title,
            k.id
        );
    }
    if doc.moving_nothing > 0 {
        let _ = writeln!(out, "  {} of them move no key result", doc.moving_nothing);
    }
    out
}

pub fn render_unaligned(doc: &UnalignedDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Work that moves no key result (period {}):",
        doc.periods.join(", ")
    );
    // Columns as wide as their longest entry (GitLab paths run long), at least as before.
    let pw = doc
        .by_project
        .iter()
        .map(|p| p.project.chars().count())
        .fold(16, usize::max);
    let kw = doc
        .items
        .iter()
        .map(|i| i.key.chars().count())
        .fold(14, usize::max);
    let _ = writeln!(
        out,
        "{:<pw$} {:>6} {:>10} {:>10} {:>7}",
        "project", "items", "unaligned", "estimate", "share"
    );
    for p in &doc.by_project {
        let _ = writeln!(
            out,
            "{:<pw$} {:>6} {:>10} {:>10} {:>7}",
            p.project,
            p.items,
            p.unaligned,
            num(Some(p.unaligned_estimate)),
            pct(p.share)
        );
    }
    if !doc.items.is_empty() {
        let _ = writeln!(out);
        for i in &doc.items {
            let _ = writeln!(
                out,
                "  {:<kw$} {:<12} {:>5}  {}  {}",
                i.key,
                i.category,
                num(i.estimate),
                i.title,
                i.url
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Measure;
    use crate::model::Status;

    fn kr(measure: &str, current: f64, start: f64, target: f64, items: i64) -> KrStatus {
        KrStatus {
            id: "k".into(),
            title: "K".into(),
            measure: Measure::parse(measure).expect("a measure"),
            progress: 0.45,
            current: Some(current),
            start,
            target: Some(target),
            status: Status::AtRisk,
            items,
            updated_at: None,
            objective: "o".into(),
            weight: 1.0,
            unit: None,
            status_reason: None,
            synced_at: None,
            sources: Vec::new(),
            kind: KrKind::Committed,
            success: 1.0,
            confidence: None,
            flags: Vec::new(),
        }
    }

    #[test]
    fn measured_values_read_from_start_to_target_and_work_as_done_of_total() {
        assert_eq!(
            kr_value(&kr("metric", 4.1, 5.0, 3.0, 0)),
            "4.1 (from 5 to 3)"
        );
        assert_eq!(
            kr_value(&kr("manual", 26.0, 20.0, 40.0, 0)),
            "26 (from 20 to 40)"
        );
        assert_eq!(
            kr_value(&kr("completion", 36.0, 0.0, 51.0, 12)),
            "36 of 51 (12 items)"
        );
        assert_eq!(num(Some(3.3)), "3.3");
        assert_eq!(num(Some(0.25)), "0.25");
    }
}
