//! The unaligned page (`/unaligned`): started or finished work in the period that moves no
//! KR, per project with its share.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::view;
use super::{
    render_with_status, report_error, wants_all, Chrome, Shared, UNALIGNED_SHOWN_PER_PROJECT,
};
use crate::clock;
use crate::report::{self, ReportError};

struct ProjectView {
    project: String,
    items: usize,
    unaligned: usize,
    share: String,
    share_bar: String,
    unaligned_estimate: String,
    estimate: String,
    estimate_share: String,
    list: Vec<UnalignedView>,
    /// Unaligned items of the project that `list` leaves out.
    hidden: usize,
}

struct UnalignedView {
    source: String,
    key: String,
    title: String,
    url: String,
    category: String,
    estimate: String,
}

#[derive(Template)]
#[template(path = "unaligned.html")]
struct UnalignedPage {
    chrome: Chrome,
    periods: String,
    period: String,
    projects: Vec<ProjectView>,
    total_items: usize,
    total_unaligned: usize,
    problem: Option<String>,
    /// This page with every item listed.
    show_all_href: String,
}

#[derive(Deserialize)]
pub(super) struct PeriodForm {
    period: Option<String>,
    all: Option<String>,
}

pub(super) async fn unaligned_page(State(s): Shared, Query(f): Query<PeriodForm>) -> Response {
    let now = clock::now();
    let all = wants_all(f.all.as_deref());
    let period = f.period.unwrap_or_default().trim().to_string();
    let requested = (!period.is_empty()).then_some(period.as_str());
    let mut page = UnalignedPage {
        chrome: Chrome::new("unaligned", now, None),
        periods: String::new(),
        period: period.clone(),
        projects: Vec::new(),
        total_items: 0,
        total_unaligned: 0,
        problem: None,
        show_all_href: String::new(),
    };
    match report::unaligned(s.engine().store(), s.engine().settings(), requested, now).await {
        Ok(doc) => {
            page.periods = doc.periods.join(", ");
            page.total_items = doc.by_project.iter().map(|p| p.items).sum();
            page.total_unaligned = doc.items.len();
            let mut listed: BTreeMap<&str, Vec<UnalignedView>> = BTreeMap::new();
            for i in &doc.items {
                listed
                    .entry(i.project.as_str())
                    .or_default()
                    .push(UnalignedView {
                        source: i.source.clone(),
                        key: i.key.clone(),
                        title: i.title.clone(),
                        url: i.url.clone(),
                        category: i.category.replace('_', " "),
                        estimate: i.estimate.map(view::number).unwrap_or_default(),
                    });
            }
            page.projects = doc
                .by_project
                .iter()
                .map(|p| {
                    let mut list = listed.remove(p.project.as_str()).unwrap_or_default();
                    let hidden = if all {
                        0
                    } else {
                        list.len().saturating_sub(UNALIGNED_SHOWN_PER_PROJECT)
                    };
                    list.truncate(list.len() - hidden);
                    ProjectView {
                        project: p.project.clone(),
                        items: p.items,
                        unaligned: p.unaligned,
                        share: view::percent(p.share),
                        share_bar: view::bar(p.share),
                        unaligned_estimate: view::number(p.unaligned_estimate),
                        estimate: view::number(p.estimate),
                        estimate_share: if p.estimate > 0.0 {
                            view::percent(p.estimate_share)
                        } else {
                            "–".into()
                        },
                        list,
                        hidden,
                    }
                })
                .collect();
            page.show_all_href = if period.is_empty() {
                "/unaligned?all=1".into()
            } else {
                let q: String = url::form_urlencoded::byte_serialize(period.as_bytes()).collect();
                format!("/unaligned?period={q}&all=1")
            };
        }
        Err(ReportError::BadRequest(m)) => page.problem = Some(m),
        Err(e) => return report_error(e, "unaligned"),
    }
    let status = if page.problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render_with_status(&page, status)
}
