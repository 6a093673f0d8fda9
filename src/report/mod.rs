//! The documents users and their scripts read: `status`, `explain`, `moves`, `unaligned`,
//! `allocation` (SPEC.md), built from the store without recomputing progress. The CLI prints them as JSON
//! or tables; the HTTP API serves the same JSON. The documents' types are in `documents`
//! (re-exported here); this module and its submodules build them.

pub mod allocation;
pub mod digest;
mod documents;
mod ledger;
pub mod lint;
mod rules_diff;
mod table;

pub use documents::{
    CategoryChange, Change, EvidenceItem, ExplainDoc, HistoryDoc, KrDiff, KrNumbers, KrStatus,
    MovedKr, MovesDoc, ObjectiveStatus, ProjectShare, RulesDiffDoc, SourceStatus, SourcesDoc,
    StatusDoc, UnalignedDoc, UnalignedItem,
};
pub use ledger::{explain_at, history, parse_at, render_history};
pub use rules_diff::{render_rules_diff, rules_diff};
pub use table::{render_explain, render_moves, render_status, render_unaligned};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::model::{KeyResultDef, Measure, ObjectiveDef, Period, RunOutcome, Status};
use crate::progress;
use crate::progress::flags::{self, Flag, KrFacts, Point};
use crate::settings::Settings;
use crate::store::{Confidence, KrState, KrTimes, Selector, SourceState, Store};

/// Errors a report caller must tell apart (unknown KR → 404).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown key result \"{0}\"")]
    UnknownKr(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Orders item keys as people do: `PAY-2` before `PAY-10`.
pub fn natural_key(key: &str) -> (String, u64, String) {
    match key.rsplit_once(['-', '#']) {
        Some((prefix, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => (
            prefix.to_string(),
            n.parse().unwrap_or(u64::MAX),
            String::new(),
        ),
        _ => (key.to_string(), 0, key.to_string()),
    }
}

/// Everything needed to say a KR's status: its definition, period and source health.
struct Ctx<'a> {
    settings: &'a Settings,
    sources: HashMap<String, SourceState>,
    /// Metric references whose latest observation failed: `(source, reference)` → why.
    observation_errors: HashMap<(String, String), String>,
    now: DateTime<Utc>,
    /// Per KR: latest check-in, change and confidence.
    times: HashMap<String, KrTimes>,
    /// The snapshots of the KRs whose flags replay history (completion KRs, and the KRs
    /// of objectives that have both a metric KR and work KRs).
    points: HashMap<String, Vec<Point>>,
}

impl Ctx<'_> {
    /// Sources whose data feeds the KR: each rule's source, or every source that yields
    /// items for a rule that names none; the metric's source.
    fn kr_sources(&self, kr: &KeyResultDef) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Some(m) = &kr.metric {
            out.insert(m.source.to_string());
        }
        for rule in self.settings.rules.rules() {
            if rule.krs.contains(&kr.id) {
                match &rule.source {
                    Some(s) => {
                        out.insert(s.to_string());
                    }
                    None => out.extend(
                        self.settings
                            .sources
                            .iter()
                            .filter(|(_, s)| s.kind.yields_items())
                            .map(|(n, _)| n.clone()),
                    ),
                }
            }
        }
        out
    }

    /// `Some(reason)` when the KR is stale; and the oldest last-success among its sources.
    fn staleness(&self, kr: &KeyResultDef) -> (Option<String>, Option<DateTime<Utc>>) {
        let mut reasons = Vec::new();
        let mut synced: Option<DateTime<Utc>> = None;
        if let Some(m) = &kr.metric {
            if let Some(e) = self
                .observation_errors
                .get(&(m.source.to_string(), m.reference.to_string()))
            {
                reasons.push(format!("{} in {}: {e}", m.reference, m.source));
            }
        }
        for name in self.kr_sources(kr) {
            let freshness = self
                .settings
                .sources
                .get(&name)
                .map(|s| s.freshness)
                .unwrap_or(std::time::Duration::from_secs(3600));
            match self.sources.get(&name) {
                None => reasons.push(format!("{name} has not synced yet")),
                Some(s) => {
                    if let Some(t) = s.last_success {
                        synced = Some(synced.map_or(t, |x| x.min(t)));
                    }
                    if s.last_outcome == Some(RunOutcome::Failed) {
                        reasons.push(format!(
                            "the last sync of {name} failed: {}",
                            s.last_error.as_deref().unwrap_or("unknown error")
                        ));
                    } else if let Some(t) = s.last_success {
                        let age = (self.now - t).to_std().unwrap_or_default();
                        if age > freshness {
                            reasons.push(format!(
                                "data from {name} is {} old (freshness {})",
                                humantime::format_duration(std::time::Duration::from_secs(
                                    age.as_secs()
                                )),
                                humantime::format_duration(freshness)
                            ));
                        }
                    } else {
                        reasons.push(format!("{name} has not synced yet"));
                    }
                }
            }
        }
        let reason = if reasons.is_empty() {
            None
        } else {
            Some(reasons.join("; "))
        };
        (reason, synced)
    }

    fn kr_status(&self, def: &KeyResultDef, period: &Period, state: Option<&KrState>) -> KrStatus {
        let (progress, current, start, target, items, updated_at) = match state {
            Some(s) if s.computed_at.is_some() => (
                s.progress,
                s.current,
                s.start,
                s.target,
                s.items,
                s.changed_at,
            ),
            _ => (0.0, None, def.start.unwrap_or(0.0), def.target, 0, None),
        };
        let (reason, synced_at) = self.staleness(def);
        let status = if reason.is_some() {
            Status::Stale
        } else {
            progress::kr_status(
                progress,
                def.success_line(),
                period.expected(self.now),
                self.settings.margins,
            )
        };
        let times = self.times.get(def.id.as_str());
        let facts = self.facts(def, period, progress, target);
        let j = &self.settings.judgement;
        let flags: Vec<Flag> = [
            flags::dead(&facts, j, self.now),
            flags::checkin_overdue(&facts, j, self.now),
            flags::scope_creep(&facts, j, self.now),
        ]
        .into_iter()
        .flatten()
        .collect();
        KrStatus {
            id: def.id.to_string(),
            title: def.title.clone(),
            measure: def.measure,
            progress,
            current,
            start,
            target,
            status,
            items,
            updated_at,
            objective: def.objective.to_string(),
            weight: def.weight,
            unit: def.unit.clone(),
            status_reason: reason,
            synced_at,
            sources: self.kr_sources(def).into_iter().collect(),
            kind: def.kind,
            success: def.success_line(),
            confidence: times.and_then(|t| t.confidence.clone()),
            flags,
        }
    }

    /// What the flags of a KR are computed from.
    fn facts<'d>(
        &'d self,
        def: &'d KeyResultDef,
        period: &'d Period,
        progress: f64,
        target: Option<f64>,
    ) -> KrFacts<'d> {
        let times = self.times.get(def.id.as_str());
        KrFacts {
            def,
            period,
            progress,
            target,
            last_change: times.and_then(|t| t.last_change),
            last_checkin: times.and_then(|t| t.last_checkin),
            history: self.points.get(def.id.as_str()).map_or(&[], Vec::as_slice),
        }
    }

    /// Adds the divergence flags to the metric KRs of an objective that also has work KRs
    /// (`krs` are the objective's KRs, in its order).
    fn add_divergence(&self, o: &ObjectiveDef, krs: &mut [KrStatus]) {
        let work: Vec<KrFacts> = o
            .key_results
            .iter()
            .zip(krs.iter())
            .filter(|(def, _)| flags::is_work(def.measure))
            .map(|(def, k)| self.facts(def, &o.period, k.progress, k.target))
            .collect();
        if work.is_empty() {
            return;
        }
        let mut raised = Vec::new();
        for (n, (def, k)) in o.key_results.iter().zip(krs.iter()).enumerate() {
            if def.measure != Measure::Metric {
                continue;
            }
            let facts = self.facts(def, &o.period, k.progress, k.target);
            if let Some(flag) = flags::divergence(&facts, &work, &self.settings.judgement, self.now)
            {
                raised.push((n, flag));
            }
        }
        for (n, flag) in raised {
            krs[n].flags.push(flag);
        }
    }
}

/// The owner's confidence in words: `7/10 on 2026-11-15 by ana: the vendor is late`.
pub fn confidence_in_words(c: &Confidence) -> String {
    format!(
        "{}/10 on {}{}{}",
        crate::model::plain_number(c.value),
        c.at.format("%Y-%m-%d"),
        c.author
            .as_deref()
            .map(|a| format!(" by {a}"))
            .unwrap_or_default(),
        c.note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    )
}

/// The KRs whose snapshots the flags replay: completion KRs (scope creep) and the KRs of
/// objectives that have both a metric KR and work KRs (divergence).
fn replayed_krs(settings: &Settings) -> Vec<&str> {
    let mut out = Vec::new();
    for o in &settings.objectives {
        let metric = o.key_results.iter().any(|k| k.measure == Measure::Metric);
        let work = o.key_results.iter().any(|k| flags::is_work(k.measure));
        for k in &o.key_results {
            if k.measure == Measure::Completion || (metric && work) {
                out.push(k.id.as_str());
            }
        }
    }
    out
}

async fn ctx<'a>(
    store: &Store,
    settings: &'a Settings,
    now: DateTime<Utc>,
) -> Result<Ctx<'a>, ReportError> {
    let sources = store
        .source_states()
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut observation_errors = HashMap::new();
    for o in &settings.objectives {
        for kr in &o.key_results {
            if let Some(m) = &kr.metric {
                if let Some(e) = store
                    .observation_error(&m.source, m.reference.as_str())
                    .await?
                {
                    observation_errors.insert((m.source.to_string(), m.reference.to_string()), e);
                }
            }
        }
    }
    let times = store.kr_times().await?;
    let points = store.progress_points(&replayed_krs(settings)).await?;
    Ok(Ctx {
        settings,
        sources,
        observation_errors,
        now,
        times,
        points,
    })
}

/// `okrsync status`: every objective with its KRs.
pub async fn status(
    store: &Store,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<StatusDoc, ReportError> {
    let ctx = ctx(store, settings, now).await?;
    let states: HashMap<String, KrState> = store
        .kr_states()
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let mut objectives: Vec<ObjectiveStatus> = settings
        .objectives
        .iter()
        .map(|o| objective_status(&ctx, o, &states))
        .collect();
    // Objectives without KRs roll up their children (deepest first, so chains work).
    let children: BTreeMap<String, Vec<String>> =
        settings
            .objectives
            .iter()
            .fold(BTreeMap::new(), |mut m, o| {
                if let Some(p) = &o.parent {
                    m.entry(p.clone())
                        .or_insert_with(Vec::new)
                        .push(o.id.to_string());
                }
                m
            });
    for _ in 0..settings.objectives.len() {
        let snapshot: HashMap<String, (f64, Status)> = objectives
            .iter()
            .map(|o| (o.id.clone(), (o.progress, o.status)))
            .collect();
        for o in objectives.iter_mut().filter(|o| o.key_results.is_empty()) {
            if let Some(kids) = children.get(&o.id) {
                let vals: Vec<(f64, f64)> = kids
                    .iter()
                    .filter_map(|k| snapshot.get(k))
                    .map(|(p, _)| (1.0, *p))
                    .collect();
                o.progress = progress::objective_progress(&vals);
                o.status =
                    progress::worst(kids.iter().filter_map(|k| snapshot.get(k)).map(|(_, s)| *s))
                        .unwrap_or(o.status);
            }
        }
    }
    Ok(StatusDoc { objectives })
}

fn objective_status(
    ctx: &Ctx,
    o: &ObjectiveDef,
    states: &HashMap<String, KrState>,
) -> ObjectiveStatus {
    let mut krs: Vec<KrStatus> = o
        .key_results
        .iter()
        .map(|kr| ctx.kr_status(kr, &o.period, states.get(kr.id.as_str())))
        .collect();
    ctx.add_divergence(o, &mut krs);
    let expected = o.period.expected(ctx.now);
    let progress = progress::objective_progress(
        &krs.iter()
            .map(|k| (k.weight, k.progress))
            .collect::<Vec<_>>(),
    );
    let status = progress::worst(krs.iter().map(|k| k.status))
        .unwrap_or_else(|| progress::status(progress, expected, ctx.settings.margins));
    ObjectiveStatus {
        id: o.id.to_string(),
        title: o.title.clone(),
        progress,
        status,
        key_results: krs,
        parent: o.parent.clone(),
        owner: o.owner.clone(),
        period: o.period.label.clone(),
        expected: (expected * 10_000.0).round() / 10_000.0,
    }
}

pub(crate) fn find_kr<'s>(
    settings: &'s Settings,
    id: &str,
) -> Option<(&'s KeyResultDef, &'s Period)> {
    settings
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter().map(move |k| (k, &o.period)))
        .find(|(k, _)| k.id == id)
}

/// `okrsync explain KR`: the items and rules behind one KR's number.
pub async fn explain(
    store: &Store,
    settings: &Settings,
    kr_id: &str,
    now: DateTime<Utc>,
) -> Result<ExplainDoc, ReportError> {
    let (def, period) =
        find_kr(settings, kr_id).ok_or_else(|| ReportError::UnknownKr(kr_id.to_string()))?;
    let ctx = ctx(store, settings, now).await?;
    let states: HashMap<String, KrState> = store
        .kr_states()
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let kr = match settings.objectives.iter().find(|o| o.id == def.objective) {
        Some(o) => {
            let mut krs: Vec<KrStatus> = o
                .key_results
                .iter()
                .map(|k| ctx.kr_status(k, &o.period, states.get(k.id.as_str())))
                .collect();
            ctx.add_divergence(o, &mut krs);
            krs.into_iter()
                .find(|k| k.id == kr_id)
                .unwrap_or_else(|| ctx.kr_status(def, period, states.get(kr_id)))
        }
        None => ctx.kr_status(def, period, states.get(kr_id)),
    };
    let mut rows = store.items_for_kr(kr_id).await?;
    rows.sort_by_cached_key(|(r, _)| (r.item.source.clone(), natural_key(&r.item.key)));
    let items = rows
        .into_iter()
        .map(|(row, rule)| EvidenceItem {
            weight: progress::item_weight(def, &row.item),
            counts: progress::counts_toward(def, period, &row.item),
            source: row.item.source,
            key: row.item.key,
            title: row.item.title,
            url: row.item.url,
            category: row.item.category.as_str().to_string(),
            rule,
            estimate: row.item.estimate,
            resolved: row.item.resolved,
        })
        .collect();
    let rules = settings
        .rules
        .rules()
        .iter()
        .filter(|r| r.krs.iter().any(|k| k == kr_id))
        .map(|r| r.id.to_string())
        .collect();
    let history = store.history(kr_id, 100).await?;
    Ok(ExplainDoc {
        kr,
        items,
        rules,
        history,
        at: None,
    })
}

/// `okrsync moves SELECTOR`: which KRs the selected items move, and with what share. A
/// selected epic or parent moves the KRs its children move (it is aligned through them).
pub async fn moves(
    store: &Store,
    settings: &Settings,
    selector: &str,
) -> Result<MovesDoc, ReportError> {
    let sel = Selector::parse(selector).map_err(ReportError::BadRequest)?;
    let counted = store.moves(&sel).await?;
    let total = counted.items as usize;
    let moving_nothing = counted.moving_nothing as usize;
    let counts: BTreeMap<String, usize> = counted
        .key_results
        .into_iter()
        .map(|(kr, n)| (kr, n as usize))
        .collect();
    let mut key_results: Vec<MovedKr> = counts
        .into_iter()
        .map(|(id, n)| {
            let (title, objective) = find_kr(settings, &id)
                .map(|(k, _)| (k.title.clone(), k.objective.to_string()))
                .unwrap_or_default();
            MovedKr {
                share: if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                },
                id,
                title,
                items: n,
                objective,
            }
        })
        .collect();
    key_results.sort_by(|a, b| b.items.cmp(&a.items).then_with(|| a.id.cmp(&b.id)));
    Ok(MovesDoc {
        selector: sel.to_string(),
        items: total,
        key_results,
        moving_nothing,
    })
}

/// Every configured source with its last sync, outcome, error and next run.
pub async fn sources(
    store: &Store,
    settings: &Settings,
    runs_per_source: i64,
) -> Result<SourcesDoc, ReportError> {
    let states: HashMap<String, SourceState> = store
        .source_states()
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let counts: HashMap<String, i64> = store.item_counts().await?.into_iter().collect();
    let now = Utc::now();
    let leases: HashMap<String, String> = store
        .leases()
        .await?
        .into_iter()
        .filter(|l| l.expires_at > now)
        .map(|l| (l.name, l.holder))
        .collect();
    let mut out = Vec::new();
    for (name, cfg) in &settings.sources {
        let state = states.get(name);
        let recent_runs = store.recent_runs(Some(name), runs_per_source).await?;
        let finished = recent_runs
            .first()
            .and_then(|r| r.finished_at.or(Some(r.started_at)))
            .or_else(|| state.and_then(|s| s.last_attempt));
        let every = chrono::Duration::from_std(cfg.every).unwrap_or(chrono::Duration::MAX);
        out.push(SourceStatus {
            name: name.clone(),
            kind: cfg.kind.kind().to_string(),
            every_seconds: cfg.every.as_secs(),
            freshness_seconds: cfg.freshness.as_secs(),
            last_attempt: state.and_then(|s| s.last_attempt),
            last_success: state.and_then(|s| s.last_success),
            last_full: state.and_then(|s| s.last_full),
            last_outcome: state.and_then(|s| s.last_outcome),
            last_error: state.and_then(|s| s.last_error.clone()),
            next_run: finished.and_then(|t| t.checked_add_signed(every)),
            items: counts.get(name).copied().unwrap_or(0),
            recent_runs,
            lease_holder: leases.get(name).cloned(),
        });
    }
    Ok(SourcesDoc { sources: out })
}

/// The periods the unaligned report covers: those of objectives active at `now`, else the
/// latest one; or the one asked for.
pub fn report_periods(
    settings: &Settings,
    requested: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Period>, ReportError> {
    if let Some(p) = requested {
        return Period::parse(p)
            .map(|p| vec![p])
            .map_err(|e| ReportError::BadRequest(e.to_string()));
    }
    let mut active: Vec<Period> = Vec::new();
    for o in &settings.objectives {
        if o.period.contains(now) && !active.contains(&o.period) {
            active.push(o.period.clone());
        }
    }
    if active.is_empty() {
        if let Some(latest) = settings
            .objectives
            .iter()
            .map(|o| &o.period)
            .max_by(|a, b| a.end.cmp(&b.end).then(a.start.cmp(&b.start)))
        {
            active.push(latest.clone());
        }
    }
    Ok(active)
}

/// The unaligned share of each project's work, from the store's counts.
pub fn project_shares(counts: Vec<crate::store::ProjectCounts>) -> Vec<ProjectShare> {
    counts
        .into_iter()
        .map(|c| {
            let items = c.items as usize;
            let unaligned = c.unaligned as usize;
            ProjectShare {
                share: if items == 0 {
                    0.0
                } else {
                    unaligned as f64 / items as f64
                },
                estimate_share: if c.estimate > 0.0 {
                    c.unaligned_estimate / c.estimate
                } else {
                    0.0
                },
                project: c.project,
                items,
                unaligned,
                unaligned_estimate: c.unaligned_estimate,
                estimate: c.estimate,
            }
        })
        .collect()
}

/// `okrsync unaligned`: started or finished work in the period that moves no KR.
pub async fn unaligned(
    store: &Store,
    settings: &Settings,
    period: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UnalignedDoc, ReportError> {
    let periods = report_periods(settings, period, now)?;
    // Two reads of the items (the unaligned ones, the counts per project), each a scan:
    // on two connections at once.
    let (rows, counts) = tokio::try_join!(
        store.unaligned_items(&periods),
        store.project_counts(&periods)
    )?;
    let mut items: Vec<UnalignedItem> = rows
        .into_iter()
        .map(|r| UnalignedItem {
            source: r.source,
            key: r.key,
            title: r.title,
            url: r.url,
            project: r.project,
            category: r.category,
            estimate: r.estimate,
        })
        .collect();
    items.sort_by_cached_key(|i| (i.project.clone(), i.source.clone(), natural_key(&i.key)));
    let by_project = project_shares(counts);
    Ok(UnalignedDoc {
        items,
        by_project,
        periods: periods.iter().map(|p| p.label.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::natural_key;

    #[test]
    fn keys_sort_naturally() {
        let mut keys = vec![
            "PAY-10",
            "PAY-2",
            "acme/web#31",
            "acme/web#4",
            "row-key",
            "WEB-1",
        ];
        keys.sort_by_key(|k| natural_key(k));
        assert_eq!(
            keys,
            vec![
                "PAY-2",
                "PAY-10",
                "WEB-1",
                "acme/web#4",
                "acme/web#31",
                "row-key"
            ]
        );
    }
}
