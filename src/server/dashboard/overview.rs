//! The overview page (`/`): the objective tree with every KR's progress, status and
//! freshness, the count of KRs per status, and the "needs attention" panel of raised flags.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::view::{self, StatusView};
use super::{kr_view, render, report_error, Chrome, KrView, Shared};
use crate::clock;
use crate::report::{self, KrStatus, ObjectiveStatus};

struct ObjectiveView {
    id: String,
    title: String,
    owner: Option<String>,
    period: String,
    progress: String,
    bar: String,
    expected: String,
    status: StatusView,
    krs: Vec<KrView>,
    /// 2 for a top-level objective, deeper ones one more (their heading level, max 6).
    level: usize,
}

/// The objective tree flattened into open/close steps, so the template nests lists
/// without recursion.
enum TreeStep {
    Open(Box<ObjectiveView>),
    Close,
}

fn tree(objectives: &[ObjectiveStatus], now: DateTime<Utc>) -> Vec<TreeStep> {
    let ids: std::collections::HashSet<&str> = objectives.iter().map(|o| o.id.as_str()).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&ObjectiveStatus>> = BTreeMap::new();
    for o in objectives {
        let parent = o.parent.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(o);
    }
    fn walk<'a>(
        parent: Option<&'a str>,
        depth: usize,
        children: &BTreeMap<Option<&'a str>, Vec<&'a ObjectiveStatus>>,
        now: DateTime<Utc>,
        out: &mut Vec<TreeStep>,
    ) {
        // Config cycles are refused at load; the depth bound is a second guard.
        if depth > 32 {
            return;
        }
        for o in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(TreeStep::Open(Box::new(ObjectiveView {
                id: o.id.clone(),
                title: o.title.clone(),
                owner: o.owner.clone(),
                period: o.period.clone(),
                progress: view::percent(o.progress),
                bar: view::bar(o.progress),
                expected: view::percent(o.expected),
                status: view::status(o.status),
                krs: o.key_results.iter().map(|k| kr_view(k, now)).collect(),
                level: (depth + 2).min(6),
            })));
            walk(Some(o.id.as_str()), depth + 1, children, now, out);
            out.push(TreeStep::Close);
        }
    }
    let mut out = Vec::new();
    walk(None, 0, &children, now, &mut out);
    out
}

struct StatusCount {
    status: StatusView,
    count: usize,
}

/// One kind of flag on the "needs attention" panel, with the KRs that carry it.
struct AttentionView {
    kind: &'static str,
    label: &'static str,
    krs: Vec<AttentionKr>,
}

struct AttentionKr {
    id: String,
    title: String,
    message: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    tree: Vec<TreeStep>,
    counts: Vec<StatusCount>,
    krs: usize,
    /// Flags by kind (only kinds raised somewhere), and how many KRs carry any.
    attention: Vec<AttentionView>,
    flagged: usize,
}

fn attention(doc: &report::StatusDoc) -> (Vec<AttentionView>, usize) {
    use crate::progress::flags::FlagKind;
    let all: Vec<&KrStatus> = doc.objectives.iter().flat_map(|o| &o.key_results).collect();
    let views = FlagKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let krs: Vec<AttentionKr> = all
                .iter()
                .filter_map(|k| {
                    k.flags
                        .iter()
                        .find(|f| f.kind == kind)
                        .map(|f| AttentionKr {
                            id: k.id.clone(),
                            title: k.title.clone(),
                            message: f.message.clone(),
                        })
                })
                .collect();
            (!krs.is_empty()).then_some(AttentionView {
                kind: kind.as_str(),
                label: kind.label(),
                krs,
            })
        })
        .collect();
    let flagged = all.iter().filter(|k| !k.flags.is_empty()).count();
    (views, flagged)
}

#[derive(Deserialize)]
pub(super) struct RefreshQuery {
    refresh: Option<u32>,
}

pub(super) async fn overview(State(s): Shared, Query(q): Query<RefreshQuery>) -> Response {
    let now = clock::now();
    let doc = match report::status(s.engine().store(), s.engine().settings(), now).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "overview"),
    };
    let mut by_status: BTreeMap<crate::model::Status, usize> = BTreeMap::new();
    let mut krs = 0;
    for kr in doc.objectives.iter().flat_map(|o| &o.key_results) {
        *by_status.entry(kr.status).or_default() += 1;
        krs += 1;
    }
    let (attention, flagged) = attention(&doc);
    render(&OverviewPage {
        chrome: Chrome::new("overview", now, q.refresh),
        attention,
        flagged,
        tree: tree(&doc.objectives, now),
        counts: by_status
            .into_iter()
            .map(|(st, count)| StatusCount {
                status: view::status(st),
                count,
            })
            .collect(),
        krs,
    })
}
