//! `GET /metrics` in the Prometheus text format, computed from the store when scraped, so
//! every replica reports the same numbers: sync runs and failures per source, items per
//! source, last successful sync time, KR progress and current values, objective progress,
//! and the unaligned share per project; plus this process's own requests upstream (counts
//! by status, latency histogram, rate-limit budget left).

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::model::RunOutcome;
use crate::report;
use crate::settings::Settings;
use crate::store::Store;

/// Escapes a label value (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The unaligned share per project, kept until the store's items or the rules can have
/// changed: the database counts every started item for it (tens of milliseconds at
/// 100,000 items, see docs/performance.md) and Prometheus asks every 15 seconds.
#[derive(Default)]
pub struct UnalignedCache {
    /// The key it was computed for, and `(project, share)` pairs.
    last: std::sync::Mutex<Option<(String, Shares)>>,
}

type Shares = Vec<(String, f64)>;

impl UnalignedCache {
    async fn shares(
        &self,
        store: &Store,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, f64)>, report::ReportError> {
        // Sync steps (another replica's too), the rules in force (a reload re-matches),
        // the objectives' periods and the day (which periods are current) decide it.
        let periods: Vec<String> = settings
            .objectives
            .iter()
            .map(|o| format!("{}={}..{}", o.id, o.period.start, o.period.end))
            .collect();
        let key = format!(
            "{}|{}|{}|{}",
            store.items_version().await?,
            settings.rules.fingerprint(),
            periods.join(","),
            now.date_naive()
        );
        let cached = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((k, shares)) = cached {
            if k == key {
                return Ok(shares);
            }
        }
        // Only the counts per project, summed by the database: no item comes back.
        let periods = report::report_periods(settings, None, now)?;
        let shares: Vec<(String, f64)> =
            report::project_shares(store.project_counts(&periods).await?)
                .into_iter()
                .map(|p| (p.project, p.share))
                .collect();
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, shares.clone()));
        Ok(shares)
    }
}

pub async fn render(
    store: &Store,
    settings: &Settings,
    cache: &UnalignedCache,
    now: DateTime<Utc>,
) -> Result<String, report::ReportError> {
    let mut out = String::new();
    header(
        &mut out,
        "okrsync_sync_runs_total",
        "counter",
        "Sync steps by source and outcome (ok, failed).",
    );
    for (source, outcome, n) in store.run_counts().await? {
        let _ = writeln!(
            out,
            "okrsync_sync_runs_total{{source=\"{}\",outcome=\"{}\"}} {n}",
            label(&source),
            label(&outcome)
        );
    }
    header(&mut out, "okrsync_items", "gauge", "Items held per source.");
    for (source, n) in store.item_counts().await? {
        let _ = writeln!(out, "okrsync_items{{source=\"{}\"}} {n}", label(&source));
    }
    let states = store.source_states().await?;
    header(
        &mut out,
        "okrsync_last_success_timestamp_seconds",
        "gauge",
        "When each source last synced successfully (Unix time).",
    );
    for s in &states {
        if let Some(t) = s.last_success {
            let _ = writeln!(
                out,
                "okrsync_last_success_timestamp_seconds{{source=\"{}\"}} {}",
                label(&s.name),
                t.timestamp()
            );
        }
    }
    header(
        &mut out,
        "okrsync_source_up",
        "gauge",
        "1 when the source's last sync step succeeded, else 0.",
    );
    for s in &states {
        let up = u8::from(s.last_outcome == Some(RunOutcome::Ok));
        let _ = writeln!(
            out,
            "okrsync_source_up{{source=\"{}\"}} {up}",
            label(&s.name)
        );
    }
    let status = report::status(store, settings, now).await?;
    header(
        &mut out,
        "okrsync_objective_progress",
        "gauge",
        "Objective progress (0..1).",
    );
    for o in &status.objectives {
        let _ = writeln!(
            out,
            "okrsync_objective_progress{{objective=\"{}\"}} {}",
            label(&o.id),
            o.progress
        );
    }
    header(
        &mut out,
        "okrsync_kr_progress",
        "gauge",
        "Key result progress (0..1).",
    );
    for o in &status.objectives {
        for k in &o.key_results {
            let _ = writeln!(
                out,
                "okrsync_kr_progress{{kr=\"{}\",objective=\"{}\",status=\"{}\"}} {}",
                label(&k.id),
                label(&o.id),
                k.status.as_str(),
                k.progress
            );
        }
    }
    header(
        &mut out,
        "okrsync_kr_current",
        "gauge",
        "Key result current value (not clamped).",
    );
    for o in &status.objectives {
        for k in &o.key_results {
            if let Some(c) = k.current {
                let _ = writeln!(out, "okrsync_kr_current{{kr=\"{}\"}} {c}", label(&k.id));
            }
        }
    }
    header(
        &mut out,
        "okrsync_kr_success",
        "gauge",
        "The progress at which a key result is a success: its success line when aspirational (kind=\"aspirational\"), 1 when committed.",
    );
    for o in &status.objectives {
        for k in &o.key_results {
            let _ = writeln!(
                out,
                "okrsync_kr_success{{kr=\"{}\",kind=\"{}\"}} {}",
                label(&k.id),
                label(k.kind.as_str()),
                k.success
            );
        }
    }
    header(
        &mut out,
        "okrsync_kr_confidence",
        "gauge",
        "The owner's latest confidence in a key result (0..10), where one was checked in.",
    );
    for o in &status.objectives {
        for k in &o.key_results {
            if let Some(c) = &k.confidence {
                let _ = writeln!(
                    out,
                    "okrsync_kr_confidence{{kr=\"{}\"}} {}",
                    label(&k.id),
                    c.value
                );
            }
        }
    }
    header(
        &mut out,
        "okrsync_kr_flag",
        "gauge",
        "1 when the flag of that kind is raised on the key result, else 0.",
    );
    for o in &status.objectives {
        for k in &o.key_results {
            for kind in crate::progress::flags::FlagKind::ALL {
                let up = u8::from(k.flags.iter().any(|f| f.kind == kind));
                let _ = writeln!(
                    out,
                    "okrsync_kr_flag{{kr=\"{}\",kind=\"{}\"}} {up}",
                    label(&k.id),
                    kind.as_str()
                );
            }
        }
    }
    header(
        &mut out,
        "okrsync_outbox_depth",
        "gauge",
        "Notifications queued and not sent yet.",
    );
    let _ = writeln!(out, "okrsync_outbox_depth {}", store.outbox_depth().await?);
    let deliveries = store.delivery_counts().await?;
    header(
        &mut out,
        "okrsync_notify_deliveries_total",
        "counter",
        "Delivery attempts per notifier by outcome: sent, failed (retried), refused (a 4xx answer, not retried).",
    );
    for n in &settings.notifiers {
        let (sent, failed, refused) = deliveries
            .iter()
            .find(|d| d.0 == n.id)
            .map(|d| (d.1, d.2, d.3))
            .unwrap_or((0, 0, 0));
        for (outcome, value) in [("sent", sent), ("failed", failed), ("refused", refused)] {
            let _ = writeln!(
                out,
                "okrsync_notify_deliveries_total{{notifier=\"{}\",outcome=\"{outcome}\"}} {value}",
                label(&n.id)
            );
        }
    }
    let unaligned = cache.shares(store, settings, now).await?;
    header(
        &mut out,
        "okrsync_unaligned_share",
        "gauge",
        "Share of a project's current work that moves no key result.",
    );
    for (project, share) in &unaligned {
        let _ = writeln!(
            out,
            "okrsync_unaligned_share{{project=\"{}\"}} {share}",
            label(project)
        );
    }
    upstream(&mut out);
    Ok(out)
}

/// This process's requests to each upstream (not shared between replicas: each reports
/// its own, as Prometheus expects of counters).
fn upstream(out: &mut String) {
    use crate::sources::stats::{self, BUCKETS};
    let s = stats::snapshot();
    header(
        out,
        "okrsync_upstream_requests_total",
        "counter",
        "Requests this process sent upstream, by source and HTTP status (error: no answer).",
    );
    for ((source, status), n) in &s.requests {
        let _ = writeln!(
            out,
            "okrsync_upstream_requests_total{{source=\"{}\",status=\"{}\"}} {n}",
            label(source),
            label(status)
        );
    }
    header(
        out,
        "okrsync_upstream_request_duration_seconds",
        "histogram",
        "Time until the upstream's answer (its headers) arrived, by source.",
    );
    for (source, l) in &s.latency {
        let src = label(source);
        for (bound, n) in BUCKETS.iter().zip(l.buckets.iter()) {
            let _ = writeln!(
                out,
                "okrsync_upstream_request_duration_seconds_bucket{{source=\"{src}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "okrsync_upstream_request_duration_seconds_bucket{{source=\"{src}\",le=\"+Inf\"}} {}",
            l.count
        );
        let _ = writeln!(
            out,
            "okrsync_upstream_request_duration_seconds_sum{{source=\"{src}\"}} {}",
            l.sum
        );
        let _ = writeln!(
            out,
            "okrsync_upstream_request_duration_seconds_count{{source=\"{src}\"}} {}",
            l.count
        );
    }
    header(
        out,
        "okrsync_upstream_rate_limit_remaining",
        "gauge",
        "The rate-limit budget the upstream reported last (x-ratelimit-remaining).",
    );
    for (source, r) in &s.rate_limit_remaining {
        let _ = writeln!(
            out,
            "okrsync_upstream_rate_limit_remaining{{source=\"{}\"}} {r}",
            label(source)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
