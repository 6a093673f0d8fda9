//! The allocation page (SPEC.md, "Allocation"): a table whose every cell links to the items
//! behind it, a stacked bar per row and a weekly trend chart, both drawn on the server as
//! SVG. Each part has a colour *and* a hatching pattern and its name written on it, so the
//! page still reads when printed in black and white.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{render, render_with_status, report_error, view, Chrome, Shared};
use crate::clock;
use crate::report::allocation::{self as a, AllocationDoc, AllocationRows, By, Column};
use crate::report::ReportError;

/// Colours and hatchings; objectives (or projects) cycle through them, exempt and unaligned
/// have their own.
const PALETTE: [(&str, &str); 6] = [
    ("#93c5fd", "M0,8 L8,0"),
    ("#86efac", "M0,0 L8,8"),
    ("#c4b5fd", "M0,4 L8,4"),
    ("#f9a8d4", "M4,0 L4,8"),
    ("#5eead4", "M0,2 L8,2 M0,6 L8,6"),
    ("#fde68a", "M2,0 L2,8 M6,0 L6,8"),
];
const EXEMPT: (&str, &str) = ("#e5e7eb", "M0,0");
const UNALIGNED: (&str, &str) = ("#fdba74", "M0,8 L8,0 M0,0 L8,8");

pub struct PatternView {
    pub id: String,
    pub colour: &'static str,
    pub path: &'static str,
}

pub struct ColumnView {
    pub name: String,
    pub pattern: String,
}

pub struct CellView {
    pub effort: String,
    pub share: String,
    pub href: String,
    pub label: String,
}

pub struct SegView {
    pub x: String,
    pub width: String,
    pub pattern: String,
    pub title: String,
    /// Written on the segment when it is wide enough.
    pub text: Option<String>,
    pub text_x: String,
}

pub struct RowView {
    pub name: String,
    pub title: String,
    pub href: String,
    pub items: usize,
    pub effort: String,
    pub cells: Vec<CellView>,
    pub bar: Vec<SegView>,
    pub bar_label: String,
}

pub struct TrendSeg {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub pattern: String,
    pub title: String,
    pub href: String,
}

pub struct Tick {
    pub x: String,
    pub y: String,
    pub label: String,
}

pub struct Trend {
    pub segs: Vec<TrendSeg>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub left: String,
    pub right: String,
    pub bottom: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "allocation.html")]
struct AllocationPage {
    chrome: Chrome,
    period: String,
    periods: String,
    by_objective: bool,
    /// The heading of the rows' column: "Project" or "Objective".
    row_head: &'static str,
    patterns: Vec<PatternView>,
    columns: Vec<ColumnView>,
    rows: Vec<RowView>,
    trend: Option<Trend>,
    json_href: String,
    csv_href: String,
    weeks_csv_href: String,
    problem: Option<String>,
}

#[derive(Deserialize)]
pub struct AllocationForm {
    period: Option<String>,
    by: Option<String>,
    project: Option<String>,
    objective: Option<String>,
    column: Option<String>,
    week: Option<String>,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/allocation/items?period=…&project=…&objective=…` (or `column=exempt|unaligned`, `week=`).
fn items_href(
    period: &str,
    project: Option<&str>,
    column: Option<&Column>,
    week: Option<&str>,
) -> String {
    let mut q = vec![format!("period={}", enc(period))];
    if let Some(p) = project {
        q.push(format!("project={}", enc(p)));
    }
    match column {
        Some(Column::Objective(id)) => q.push(format!("objective={}", enc(id))),
        Some(Column::Exempt) => q.push("column=exempt".into()),
        Some(Column::Unaligned) => q.push("column=unaligned".into()),
        None => {}
    }
    if let Some(w) = week {
        q.push(format!("week={}", enc(w)));
    }
    format!("/allocation/items?{}", q.join("&"))
}

fn pattern_for(i: usize, kind: &str) -> (String, (&'static str, &'static str)) {
    match kind {
        "exempt" => ("alloc-exempt".into(), EXEMPT),
        "unaligned" => ("alloc-unaligned".into(), UNALIGNED),
        _ => (
            format!("alloc-p{}", i % PALETTE.len()),
            PALETTE[i % PALETTE.len()],
        ),
    }
}

/// A row of the matrix: `(name, title, project filter, column filter, items, effort)`.
type MatrixRow = (String, String, Option<String>, Option<Column>, usize, f64);

/// The document as a matrix: row names, column names with their link targets, values.
struct Matrix {
    rows: Vec<MatrixRow>,
    /// `(name, pattern id, project filter, column filter)`.
    columns: Vec<(String, String, Option<String>, Option<Column>)>,
    /// `(effort, share)` per row and column.
    values: Vec<Vec<(f64, f64)>>,
}

fn matrix(doc: &AllocationDoc) -> Matrix {
    match &doc.rows {
        AllocationRows::Projects(rows) => {
            let mut columns: Vec<(String, String, Option<String>, Option<Column>)> = rows
                .first()
                .map(|r| {
                    r.objectives
                        .iter()
                        .enumerate()
                        .map(|(i, o)| {
                            (
                                o.title.clone(),
                                pattern_for(i, "objective").0,
                                None,
                                Some(Column::Objective(o.id.clone())),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            columns.push((
                "Exempt".into(),
                pattern_for(0, "exempt").0,
                None,
                Some(Column::Exempt),
            ));
            columns.push((
                "Unaligned".into(),
                pattern_for(0, "unaligned").0,
                None,
                Some(Column::Unaligned),
            ));
            Matrix {
                rows: rows
                    .iter()
                    .map(|r| {
                        (
                            r.project.clone(),
                            r.project.clone(),
                            Some(r.project.clone()),
                            None,
                            r.items,
                            r.effort,
                        )
                    })
                    .collect(),
                columns,
                values: rows
                    .iter()
                    .map(|r| {
                        let mut v: Vec<(f64, f64)> =
                            r.objectives.iter().map(|o| (o.effort, o.share)).collect();
                        v.push((r.exempt.effort, r.exempt.share));
                        v.push((r.unaligned.effort, r.unaligned.share));
                        v
                    })
                    .collect(),
            }
        }
        AllocationRows::Objectives(rows) => {
            let columns = rows
                .first()
                .map(|r| {
                    r.projects
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            (
                                p.project.clone(),
                                pattern_for(i, "project").0,
                                Some(p.project.clone()),
                                None,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Matrix {
                rows: rows
                    .iter()
                    .map(|r| {
                        let column = match r.kind.as_str() {
                            "exempt" => Column::Exempt,
                            "unaligned" => Column::Unaligned,
                            _ => Column::Objective(r.objective.clone()),
                        };
                        (
                            r.objective.clone(),
                            r.title.clone(),
                            None,
                            Some(column),
                            r.items,
                            r.effort,
                        )
                    })
                    .collect(),
                columns,
                values: rows
                    .iter()
                    .map(|r| r.projects.iter().map(|p| (p.effort, p.share)).collect())
                    .collect(),
            }
        }
    }
}

const BAR_WIDTH: f64 = 600.0;

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The weekly trend: a stacked column per week over every row of the per-project document.
fn trend(doc: &AllocationDoc, period: &str) -> Option<Trend> {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 260.0;
    const LEFT: f64 = 52.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 34.0;
    let AllocationRows::Projects(rows) = &doc.rows else {
        return None;
    };
    let weeks = rows.first()?.weeks.as_ref()?;
    let n = weeks.len();
    if n == 0 {
        return None;
    }
    // Per week and column: objectives (by position), exempt, unaligned.
    let cols = weeks[0].objectives.len() + 2;
    let mut sums = vec![vec![0.0; cols]; n];
    for r in rows {
        for (w, week) in r.weeks.iter().flatten().enumerate() {
            for (c, o) in week.objectives.iter().enumerate() {
                sums[w][c] += o.effort;
            }
            sums[w][cols - 2] += week.exempt;
            sums[w][cols - 1] += week.unaligned;
        }
    }
    let totals: Vec<f64> = sums.iter().map(|s| s.iter().sum()).collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    let scale_max = if max > 0.0 { max } else { 1.0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let names: Vec<(String, String, Column)> = weeks[0]
        .objectives
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                o.id.clone(),
                pattern_for(i, "objective").0,
                Column::Objective(o.id.clone()),
            )
        })
        .chain([
            (
                "exempt".to_string(),
                pattern_for(0, "exempt").0,
                Column::Exempt,
            ),
            (
                "unaligned".to_string(),
                pattern_for(0, "unaligned").0,
                Column::Unaligned,
            ),
        ])
        .collect();
    let mut segs = Vec::new();
    for (w, week) in weeks.iter().enumerate() {
        let mut y = TOP + plot_h;
        for (c, (name, pattern, column)) in names.iter().enumerate() {
            let v = sums[w][c];
            if v <= 0.0 {
                continue;
            }
            let h = plot_h * v / scale_max;
            y -= h;
            segs.push(TrendSeg {
                x: fmt(LEFT + slot * w as f64 + slot * 0.15),
                y: fmt(y),
                width: fmt(slot * 0.7),
                height: fmt(h),
                pattern: pattern.clone(),
                title: format!("{} {name}: {}", week.week, view::number(v)),
                href: items_href(period, None, Some(column), Some(&week.week)),
            });
        }
    }
    let x_ticks = weeks
        .iter()
        .enumerate()
        .filter(|(w, _)| w % 2 == 0)
        .map(|(w, week)| Tick {
            x: fmt(LEFT + slot * (w as f64 + 0.5)),
            y: fmt(HEIGHT - 10.0),
            label: week.week.rsplit('-').next().unwrap_or("").to_string(),
        })
        .collect();
    let y_ticks = [0.0, 0.5, 1.0]
        .iter()
        .map(|f| Tick {
            x: fmt(LEFT - 8.0),
            y: fmt(TOP + plot_h * (1.0 - f)),
            label: view::number(scale_max * f),
        })
        .collect();
    let busiest = totals
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(w, t)| (weeks[w].week.clone(), *t));
    let summary = match busiest {
        Some((week, t)) if t > 0.0 => format!(
            "Effort per week from {} to {}, stacked by objective, exempt and unaligned; the busiest week is {week} with {}.",
            weeks[0].week,
            weeks[n - 1].week,
            view::number(t)
        ),
        _ => format!("No effort recorded from {} to {}.", weeks[0].week, weeks[n - 1].week),
    };
    Some(Trend {
        segs,
        x_ticks,
        y_ticks,
        left: fmt(LEFT),
        right: fmt(WIDTH - RIGHT),
        bottom: fmt(TOP + plot_h),
        summary,
    })
}

pub async fn allocation_page(State(s): Shared, Query(f): Query<AllocationForm>) -> Response {
    let now = clock::now();
    let period = f.period.clone().unwrap_or_default().trim().to_string();
    let requested = (!period.is_empty()).then_some(period.as_str());
    let mut page = AllocationPage {
        chrome: Chrome::new("allocation", now, None),
        period: period.clone(),
        periods: String::new(),
        by_objective: false,
        row_head: "Project",
        patterns: PALETTE
            .iter()
            .enumerate()
            .map(|(i, (colour, path))| PatternView {
                id: format!("alloc-p{i}"),
                colour,
                path,
            })
            .chain([
                PatternView {
                    id: "alloc-exempt".into(),
                    colour: EXEMPT.0,
                    path: EXEMPT.1,
                },
                PatternView {
                    id: "alloc-unaligned".into(),
                    colour: UNALIGNED.0,
                    path: UNALIGNED.1,
                },
            ])
            .collect(),
        columns: Vec::new(),
        rows: Vec::new(),
        trend: None,
        json_href: String::new(),
        csv_href: String::new(),
        weeks_csv_href: String::new(),
        problem: None,
    };
    let by = match a::By::parse(f.by.as_deref().unwrap_or("")) {
        Ok(b) => b,
        Err(ReportError::BadRequest(m)) => {
            page.problem = Some(m);
            return render_with_status(&page, StatusCode::BAD_REQUEST);
        }
        Err(e) => return report_error(e, "allocation"),
    };
    page.by_objective = by == By::Objective;
    page.row_head = if page.by_objective {
        "Objective"
    } else {
        "Project"
    };
    let engine = s.engine();
    let classified =
        match a::classify(engine.store(), engine.settings(), requested, now, false).await {
            Ok(c) => c,
            Err(ReportError::BadRequest(m)) => {
                page.problem = Some(m);
                return render_with_status(&page, StatusCode::BAD_REQUEST);
            }
            Err(e) => return report_error(e, "allocation"),
        };
    let doc = a::build(&classified, by, false);
    // Links keep the period the page shows, so a cell's items are those of its number.
    let shown = if period.is_empty() {
        classified.period.clone()
    } else {
        period.clone()
    };
    page.periods = classified.period.clone();
    let base = format!("period={}&by={}", enc(&shown), by.as_str());
    page.json_href = format!("/api/v1/allocation?{base}");
    page.csv_href = format!("/api/v1/allocation?{base}&format=csv");
    page.weeks_csv_href = format!("/api/v1/allocation?{base}&weeks=1&format=csv");
    let m = matrix(&doc);
    page.columns = m
        .columns
        .iter()
        .map(|(name, pattern, _, _)| ColumnView {
            name: name.clone(),
            pattern: pattern.clone(),
        })
        .collect();
    page.rows = m
        .rows
        .iter()
        .zip(&m.values)
        .map(|((name, title, project, column, items, effort), values)| {
            let row_name = name.clone();
            let cells = m
                .columns
                .iter()
                .zip(values)
                .map(
                    |((col_name, _, col_project, col_column), (effort, share))| {
                        let p = project.as_deref().or(col_project.as_deref());
                        let c = column.as_ref().or(col_column.as_ref());
                        CellView {
                            effort: view::number(*effort),
                            share: view::percent(*share),
                            href: items_href(&shown, p, c, None),
                            label: format!(
                                "{row_name}, {col_name}: {} ({})",
                                view::number(*effort),
                                view::percent(*share)
                            ),
                        }
                    },
                )
                .collect();
            let mut x = 0.0;
            let mut bar = Vec::new();
            let mut words = Vec::new();
            for ((col_name, pattern, _, _), (effort, share)) in m.columns.iter().zip(values) {
                if *share <= 0.0 {
                    continue;
                }
                let w = BAR_WIDTH * share;
                let text = format!("{col_name} {}", view::percent(*share));
                words.push(text.clone());
                // About 7 px per character at the label's size.
                let fits = w >= (text.chars().count() as f64 * 7.0 + 8.0);
                bar.push(SegView {
                    x: fmt(x),
                    width: fmt(w),
                    pattern: pattern.clone(),
                    title: format!(
                        "{col_name}: {} ({})",
                        view::number(*effort),
                        view::percent(*share)
                    ),
                    text: fits.then_some(text),
                    text_x: fmt(x + 4.0),
                });
                x += w;
            }
            RowView {
                name: name.clone(),
                title: title.clone(),
                href: items_href(&shown, project.as_deref(), column.as_ref(), None),
                items: *items,
                effort: view::number(*effort),
                cells,
                bar_label: if words.is_empty() {
                    format!("{name}: no effort")
                } else {
                    format!("{name}: {}", words.join(", "))
                },
                bar,
            }
        })
        .collect();
    if by == By::Project {
        let weekly = a::build(&classified, By::Project, true);
        page.trend = trend(&weekly, &shown);
    }
    render(&page)
}

pub struct ItemView {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub project: String,
    pub category: String,
    pub estimate: String,
    pub weight: String,
    pub effort: String,
    pub objectives: String,
}

#[derive(Template)]
#[template(path = "allocation_items.html")]
struct ItemsPage {
    chrome: Chrome,
    heading: String,
    periods: String,
    effort: String,
    items: Vec<ItemView>,
    back_href: String,
    problem: Option<String>,
}

pub async fn allocation_items_page(State(s): Shared, Query(f): Query<AllocationForm>) -> Response {
    let now = clock::now();
    let period = f.period.clone().unwrap_or_default().trim().to_string();
    let requested = (!period.is_empty()).then_some(period.as_str());
    let project = f
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let column = Column::parse(f.column.as_deref(), f.objective.as_deref());
    let mut page = ItemsPage {
        chrome: Chrome::new("allocation", now, None),
        heading: String::new(),
        periods: String::new(),
        effort: String::new(),
        items: Vec::new(),
        back_href: if period.is_empty() {
            "/allocation".into()
        } else {
            format!("/allocation?period={}", enc(&period))
        },
        problem: None,
    };
    let week = match f.week.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        None => None,
        Some(w) => match a::parse_week(w) {
            Some(d) => Some(d),
            None => {
                page.heading = "Allocation items".into();
                page.problem = Some(format!("\"{w}\" is not an ISO week like 2026-W45"));
                return render_with_status(&page, StatusCode::BAD_REQUEST);
            }
        },
    };
    let engine = s.engine();
    let doc = match a::cell_items(
        engine.store(),
        engine.settings(),
        requested,
        project,
        column.as_ref(),
        week,
        now,
    )
    .await
    {
        Ok(d) => d,
        Err(ReportError::BadRequest(m)) => {
            page.heading = "Allocation items".into();
            page.problem = Some(m);
            return render_with_status(&page, StatusCode::BAD_REQUEST);
        }
        Err(e) => return report_error(e, "allocation"),
    };
    let settings = engine.settings();
    let column_name = match &column {
        Some(Column::Objective(id)) => settings
            .objectives
            .iter()
            .find(|o| &o.id == id)
            .map(|o| o.title.clone())
            .unwrap_or_else(|| id.clone()),
        Some(Column::Exempt) => "exempt work".into(),
        Some(Column::Unaligned) => "unaligned work".into(),
        None => "all work".into(),
    };
    page.heading = match (project, &doc.week) {
        (Some(p), Some(w)) => format!("{p}: {column_name} in {w}"),
        (Some(p), None) => format!("{p}: {column_name}"),
        (None, Some(w)) => format!("{column_name} in {w}"),
        (None, None) => column_name,
    };
    // The first letter in capitals, for a heading.
    let mut chars = page.heading.chars();
    if let Some(first) = chars.next() {
        page.heading = first.to_uppercase().chain(chars).collect();
    }
    page.periods = doc.period.clone();
    page.effort = view::number(doc.effort);
    page.items = doc
        .items
        .iter()
        .map(|i| ItemView {
            source: i.source.clone(),
            key: i.key.clone(),
            title: i.title.clone(),
            url: i.url.clone(),
            project: i.project.clone(),
            category: i.category.replace('_', " "),
            estimate: i.estimate.map(view::number).unwrap_or_else(|| "–".into()),
            weight: view::number(i.weight),
            effort: view::number(i.effort),
            objectives: if i.objectives.is_empty() {
                "–".into()
            } else {
                i.objectives.join(", ")
            },
        })
        .collect();
    render(&page)
}
