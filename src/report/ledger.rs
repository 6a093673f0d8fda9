//! The documents built from the evidence ledger: `explain KR --at TIME` (the KR as its last
//! snapshot at or before TIME showed it, with the items that made the number then) and
//! `history KR` (every snapshot with its cause, rules hash and what entered, left or
//! changed).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    find_kr, natural_key, CategoryChange, Change, EvidenceItem, ExplainDoc, HistoryDoc, KrStatus,
    ReportError,
};
use crate::evidence::{self, Delta};
use crate::model::plain_number;
use crate::model::Status;
use crate::progress;
use crate::settings::Settings;
use crate::store::{KrSnapshot, SnapshotRecord, Store};

/// `TIME` of `--at` and `?at=`: RFC 3339, or a date meaning the end of that day (UTC).
pub fn parse_at(text: &str) -> Result<DateTime<Utc>, ReportError> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(end) = day.and_hms_milli_opt(23, 59, 59, 999) {
            return Ok(end.and_utc());
        }
    }
    Err(ReportError::BadRequest(format!(
        "expected a time like 2026-11-15T12:00:00Z or a date like 2026-11-15, found \"{text}\""
    )))
}

fn status_at(
    settings: &Settings,
    def: &crate::model::KeyResultDef,
    period: &crate::model::Period,
    s: &SnapshotRecord,
) -> Status {
    progress::kr_status(
        s.progress,
        def.success_line(),
        period.expected(s.at),
        settings.margins,
    )
}

/// `okrsync explain KR --at TIME`.
pub async fn explain_at(
    store: &Store,
    settings: &Settings,
    kr_id: &str,
    at: DateTime<Utc>,
) -> Result<ExplainDoc, ReportError> {
    let (def, period) =
        find_kr(settings, kr_id).ok_or_else(|| ReportError::UnknownKr(kr_id.to_string()))?;
    let snapshot = store.snapshot_at(kr_id, at).await?;
    let kr = KrStatus {
        id: def.id.to_string(),
        title: def.title.clone(),
        measure: def.measure,
        progress: snapshot.as_ref().map_or(0.0, |s| s.progress),
        current: snapshot.as_ref().and_then(|s| s.current),
        start: snapshot
            .as_ref()
            .and_then(|s| s.start)
            .unwrap_or(def.start.unwrap_or(0.0)),
        target: snapshot.as_ref().map_or(def.target, |s| s.target),
        status: match &snapshot {
            Some(s) => status_at(settings, def, period, s),
            None => progress::kr_status(
                0.0,
                def.success_line(),
                period.expected(at),
                settings.margins,
            ),
        },
        items: snapshot.as_ref().map_or(0, |s| s.items),
        updated_at: snapshot.as_ref().map(|s| s.at),
        objective: def.objective.to_string(),
        weight: def.weight,
        unit: def.unit.clone(),
        status_reason: None,
        synced_at: None,
        sources: Vec::new(),
        kind: def.kind,
        success: def.success_line(),
        // The owner's confidence as of that time; flags are those of now (none here).
        confidence: store
            .confidences(kr_id)
            .await?
            .into_iter()
            .rfind(|c| c.at <= at),
        flags: Vec::new(),
    };
    let mut items = Vec::new();
    if let Some(s) = &snapshot {
        let scope = store.scope_at(kr_id, s).await?;
        let ids: Vec<(String, String)> = scope.keys().cloned().collect();
        let labels = store.item_labels(&ids).await?;
        for e in scope.into_values() {
            let (title, url) = labels
                .get(&(e.source.clone(), e.ext_id.clone()))
                .cloned()
                .unwrap_or_default();
            items.push(EvidenceItem {
                source: e.source,
                key: e.key,
                title,
                url,
                category: e.category.as_str().to_string(),
                weight: e.weight,
                rule: e.rule,
                counts: e.counted,
                estimate: None,
                resolved: None,
            });
        }
    }
    items.sort_by_cached_key(|i| (i.source.clone(), natural_key(&i.key)));
    let history = store
        .snapshots(kr_id)
        .await?
        .into_iter()
        .filter(|s| s.at <= at)
        .map(|s| KrSnapshot {
            at: s.at,
            current: s.current,
            target: s.target,
            progress: s.progress,
            items: s.items,
            cause: s.cause,
            reconstructed: s.reconstructed,
        })
        .collect::<Vec<_>>();
    let skip = history.len().saturating_sub(100);
    let rules = settings
        .rules
        .rules()
        .iter()
        .filter(|r| r.krs.iter().any(|k| k == kr_id))
        .map(|r| r.id.to_string())
        .collect();
    Ok(ExplainDoc {
        kr,
        items,
        rules,
        history: history.into_iter().skip(skip).collect(),
        at: Some(at),
    })
}

/// `okrsync history KR`.
pub async fn history(
    store: &Store,
    settings: &Settings,
    kr_id: &str,
) -> Result<HistoryDoc, ReportError> {
    let (def, period) =
        find_kr(settings, kr_id).ok_or_else(|| ReportError::UnknownKr(kr_id.to_string()))?;
    let snapshots = store.snapshots(kr_id).await?;
    let mut evidence: BTreeMap<i64, Vec<Delta>> =
        store.evidence(kr_id, None).await?.into_iter().collect();
    let checkins = store.checkin_authors(kr_id).await?;
    let changes = snapshots
        .into_iter()
        .map(|s| {
            let mut deltas = evidence.remove(&s.id).unwrap_or_default();
            // In a stable order whatever the store's: entered and changed items by key,
            // then those that left.
            deltas.sort_by_cached_key(|d| match d {
                Delta::Left(e) => (1, e.source.clone(), natural_key(&e.key)),
                Delta::Entered(e) | Delta::Changed { to: e, .. } => {
                    (0, e.source.clone(), natural_key(&e.key))
                }
            });
            let mut change = Change {
                at: s.at,
                progress: s.progress,
                current: s.current,
                target: s.target,
                items: s.items,
                status: status_at(settings, def, period, &s),
                cause: s.cause.clone(),
                rules_hash: s.rules_hash.clone(),
                entered: Vec::new(),
                left: Vec::new(),
                changed: Vec::new(),
                summary: deltas.iter().map(|d| evidence::describe(def, d)).collect(),
                headline: String::new(),
                reconstructed: s.reconstructed,
                run_id: s.run_id,
                checkin_id: s.checkin_id,
            };
            for d in &deltas {
                match d {
                    Delta::Entered(e) => change.entered.push(e.key.clone()),
                    Delta::Left(e) => change.left.push(e.key.clone()),
                    Delta::Changed { from, to } if from.category != to.category => {
                        change.changed.push(CategoryChange {
                            key: to.key.clone(),
                            from: from.category.as_str().to_string(),
                            to: to.category.as_str().to_string(),
                        })
                    }
                    Delta::Changed { .. } => {}
                }
            }
            change.headline = headline(&change, s.checkin_id.and_then(|id| checkins.get(&id)));
            change
        })
        .collect();
    Ok(HistoryDoc {
        kr: kr_id.to_string(),
        changes,
    })
}

fn headline(c: &Change, checkin: Option<&(f64, Option<String>)>) -> String {
    if let Some((value, author)) = checkin {
        return match author {
            Some(a) => format!("check-in {} by {a}", plain_number(*value)),
            None => format!("check-in {}", plain_number(*value)),
        };
    }
    let counts = || {
        let mut parts = Vec::new();
        if !c.entered.is_empty() {
            parts.push(format!("+{} items", c.entered.len()));
        }
        if !c.left.is_empty() {
            parts.push(format!("−{} items", c.left.len()));
        }
        if !c.changed.is_empty() {
            parts.push(format!("{} changed", c.changed.len()));
        }
        parts.join(", ")
    };
    if c.summary.len() == 1 {
        return format!("{}: {}", c.cause, c.summary[0]);
    }
    let n = counts();
    if n.is_empty() {
        c.cause.clone()
    } else {
        format!("{}: {n}", c.cause)
    }
}

/// The history as a table.
pub fn render_history(doc: &HistoryDoc) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{} — {} changes", doc.kr, doc.changes.len());
    for c in &doc.changes {
        let value = match (c.current, c.target) {
            (Some(cur), Some(t)) => format!("{} of {}", plain_number(cur), plain_number(t)),
            (Some(cur), None) => plain_number(cur),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "{}  {:>4.0}%  {:<10} {:<14} {}",
            c.at.format("%Y-%m-%d %H:%M"),
            c.progress * 100.0,
            c.status.as_str(),
            value,
            c.cause
        );
        for s in c.summary.iter().take(20) {
            let _ = writeln!(out, "    {s}");
        }
        if c.summary.len() > 20 {
            let _ = writeln!(out, "    … and {} more", c.summary.len() - 20);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_takes_a_time_or_the_end_of_a_day() {
        assert_eq!(
            parse_at("2026-11-15").expect("date").to_rfc3339(),
            "2026-11-15T23:59:59.999+00:00"
        );
        assert_eq!(
            parse_at("2026-11-15T12:00:00+01:00")
                .expect("time")
                .to_rfc3339(),
            "2026-11-15T11:00:00+00:00"
        );
        assert!(parse_at("last tuesday").is_err());
    }
}
