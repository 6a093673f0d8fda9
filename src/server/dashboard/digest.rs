//! The weekly digest page: what `okrsync digest` prints and a notifier's `digest` sends.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{render, report_error, Chrome, Shared};
use crate::clock;
use crate::report::digest::{digest, DigestKr};

struct KrView {
    id: String,
    title: String,
    status: &'static str,
    status_label: String,
    progress: String,
    previous: String,
    change: String,
    flags: Vec<String>,
}

struct ObjectiveView {
    id: String,
    title: String,
    status: &'static str,
    status_label: String,
    progress: String,
    change: String,
    moved: Vec<KrView>,
    attention: Vec<KrView>,
}

struct ItemView {
    key: String,
    title: String,
    url: String,
    project: String,
    estimate: String,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestPage {
    chrome: Chrome,
    from: String,
    to: String,
    objectives: Vec<ObjectiveView>,
    unaligned: Vec<ItemView>,
}

fn pct(p: f64) -> String {
    format!("{}%", (p * 100.0).round() as i64)
}

fn points(p: f64) -> String {
    let n = (p * 100.0).round() as i64;
    if n > 0 {
        format!("+{n} points")
    } else {
        format!("{n} points")
    }
}

fn kr_view(k: DigestKr) -> KrView {
    KrView {
        status: k.status.as_str(),
        status_label: k.status.as_str().replace('_', " "),
        progress: pct(k.progress),
        previous: pct(k.previous),
        change: points(k.change),
        id: k.id,
        title: k.title,
        flags: k.flags,
    }
}

pub(super) async fn digest_page(State(s): Shared) -> Response {
    let now = clock::now();
    let engine = s.engine();
    let doc = match digest(engine.store(), engine.settings(), now).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "digest"),
    };
    render(&DigestPage {
        chrome: Chrome::new("digest", now, None),
        from: doc.from.format("%Y-%m-%d %H:%M UTC").to_string(),
        to: doc.to.format("%Y-%m-%d %H:%M UTC").to_string(),
        objectives: doc
            .objectives
            .into_iter()
            .map(|o| ObjectiveView {
                status: o.status.as_str(),
                status_label: o.status.as_str().replace('_', " "),
                progress: pct(o.progress),
                change: points(o.change),
                id: o.id,
                title: o.title,
                moved: o.moved.into_iter().map(kr_view).collect(),
                attention: o.attention.into_iter().map(kr_view).collect(),
            })
            .collect(),
        unaligned: doc
            .unaligned
            .into_iter()
            .map(|i| ItemView {
                estimate: i
                    .estimate
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "–".into()),
                key: i.key,
                title: i.title,
                url: i.url,
                project: i.project,
            })
            .collect(),
    })
}
