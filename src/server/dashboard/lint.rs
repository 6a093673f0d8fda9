//! The rule lint page (`/lint`): double counts, dead and shadowed rules, KRs no rule names
//! (`okrsync lint`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{render, report_error, Chrome, Shared};
use crate::clock;
use crate::report;

struct FindingView {
    kind: &'static str,
    kind_label: &'static str,
    kr: Option<String>,
    rule: Option<String>,
    items: Vec<String>,
    message: String,
}

#[derive(Template)]
#[template(path = "lint.html")]
struct LintPage {
    chrome: Chrome,
    findings: Vec<FindingView>,
}

pub(super) async fn lint_page(State(s): Shared) -> Response {
    use report::lint::LintKind;
    let now = clock::now();
    let doc = match report::lint::lint(s.engine().store(), s.engine().settings()).await {
        Ok(d) => d,
        Err(e) => return report_error(e, "lint"),
    };
    let findings = doc
        .findings
        .into_iter()
        .map(|f| FindingView {
            kind: f.kind.as_str(),
            kind_label: match f.kind {
                LintKind::DoubleCount => "Counted twice",
                LintKind::DeadRule => "Dead rule",
                LintKind::KrWithoutRule => "Key result without a rule",
                LintKind::ShadowedRule => "Shadowed rule",
            },
            kr: f.kr,
            rule: f.rule,
            items: f.items,
            message: f.message,
        })
        .collect();
    render(&LintPage {
        chrome: Chrome::new("lint", now, None),
        findings,
    })
}
