//! The weekly digest (issue 17): per objective, its progress now and the change over the
//! week, the KRs that moved, those at risk, off track or flagged; and the biggest
//! unaligned work by estimate. `okrsync digest`, `GET /digest`, `GET /api/v1/digest`, and
//! what a notifier with `digest = "mon 09:00"` receives each week.
//!
//! The week is the seven days before `now`. A KR's value a week ago is its last snapshot
//! at or before then; a KR without one had progress 0 then (it had no number yet).

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ReportError, UnalignedItem};
use crate::model::Status;
use crate::settings::Settings;
use crate::store::Store;

/// How many unaligned items the digest lists.
pub const TOP_UNALIGNED: usize = 10;

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct DigestDoc {
    /// The week: `from` (seven days before `to`) to `to` (when it was made).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub objectives: Vec<DigestObjective>,
    /// The unaligned work of the period with the largest estimates (at most 10; items
    /// without an estimate last).
    pub unaligned: Vec<UnalignedItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct DigestObjective {
    pub id: String,
    pub title: String,
    pub status: Status,
    /// Progress now, a week ago, and the change (now − then).
    pub progress: f64,
    pub previous: f64,
    pub change: f64,
    /// Its KRs whose progress changed over the week.
    pub moved: Vec<DigestKr>,
    /// Its KRs at risk, off track, or flagged now.
    pub attention: Vec<DigestKr>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct DigestKr {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub progress: f64,
    pub previous: f64,
    pub change: f64,
    /// The kinds of the flags raised now.
    pub flags: Vec<String>,
}

const EPS: f64 = 1e-9;

/// Rounded like the other documents' shares (4 decimals), so -0.0 and float noise vanish.
fn round4(x: f64) -> f64 {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The digest of the week before `now`.
pub async fn digest(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<DigestDoc, ReportError> {
    let from = now - Duration::days(7);
    let status = super::status(store, settings, now).await?;
    let mut objectives = Vec::new();
    for o in &status.objectives {
        let mut weighted_then = Vec::new();
        let mut moved = Vec::new();
        let mut attention = Vec::new();
        for k in &o.key_results {
            let previous = store
                .snapshot_at(&k.id, from)
                .await?
                .map(|s| s.progress)
                .unwrap_or(0.0);
            weighted_then.push((k.weight, previous));
            let kr = DigestKr {
                id: k.id.clone(),
                title: k.title.clone(),
                status: k.status,
                progress: k.progress,
                previous,
                change: round4(k.progress - previous),
                flags: k
                    .flags
                    .iter()
                    .map(|f| f.kind.as_str().to_string())
                    .collect(),
            };
            if (k.progress - previous).abs() > EPS {
                moved.push(kr.clone());
            }
            if matches!(k.status, Status::AtRisk | Status::OffTrack) || !k.flags.is_empty() {
                attention.push(kr);
            }
        }
        let previous = crate::progress::objective_progress(&weighted_then);
        objectives.push(DigestObjective {
            id: o.id.clone(),
            title: o.title.clone(),
            status: o.status,
            progress: o.progress,
            previous,
            change: round4(o.progress - previous),
            moved,
            attention,
        });
    }
    let mut unaligned = super::unaligned(store, settings, None, now).await?.items;
    unaligned.sort_by(|a, b| {
        b.estimate
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.estimate.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| super::natural_key(&a.key).cmp(&super::natural_key(&b.key)))
    });
    unaligned.truncate(TOP_UNALIGNED);
    Ok(DigestDoc {
        from,
        to: now,
        objectives,
        unaligned,
    })
}

fn pct(p: f64) -> String {
    format!("{}%", (p * 100.0).round() as i64)
}

fn signed_pct(p: f64) -> String {
    let points = (p * 100.0).round() as i64;
    if points > 0 {
        format!("+{points} points")
    } else {
        format!("{points} points")
    }
}

/// The digest in words (the CLI, emails and chat messages).
pub fn render_digest(doc: &DigestDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "okrsync weekly digest, {} to {}",
        doc.from.format("%Y-%m-%d"),
        doc.to.format("%Y-%m-%d")
    );
    for o in &doc.objectives {
        let _ = writeln!(
            out,
            "\n{} ({}): {} ({} this week), {}",
            o.title,
            o.id,
            pct(o.progress),
            signed_pct(o.change),
            o.status.as_str().replace('_', " ")
        );
        for k in &o.moved {
            let _ = writeln!(
                out,
                "  moved: {} ({}) {} → {}",
                k.title,
                k.id,
                pct(k.previous),
                pct(k.progress)
            );
        }
        for k in &o.attention {
            let flags = if k.flags.is_empty() {
                String::new()
            } else {
                format!(", flagged {}", k.flags.join(", "))
            };
            let _ = writeln!(
                out,
                "  needs attention: {} ({}) {}, {}{flags}",
                k.title,
                k.id,
                pct(k.progress),
                k.status.as_str().replace('_', " ")
            );
        }
    }
    if !doc.unaligned.is_empty() {
        let _ = writeln!(out, "\nThe largest work that moves no KR:");
        for i in &doc.unaligned {
            let estimate = i
                .estimate
                .map(|e| format!("estimate {e}"))
                .unwrap_or_else(|| "no estimate".into());
            let _ = writeln!(out, "  {} {} ({}, {estimate})", i.key, i.title, i.project);
        }
    }
    out
}

/// The same digest restricted to these objectives and their children (a notifier's scope).
pub fn scoped(doc: &DigestDoc, keep: impl Fn(&str) -> bool) -> DigestDoc {
    DigestDoc {
        objectives: doc
            .objectives
            .iter()
            .filter(|o| keep(&o.id))
            .cloned()
            .collect(),
        ..doc.clone()
    }
}
