//! Spreadsheet rows as items: each row of a sheet with a key becomes an item of kind `row`
//! whose project is the sheet's name, with every column available as `fields.<Header>` —
//! a portfolio sheet (projects with budgets) mapped to KRs by rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::grid::{parse_number, Cell, Workbook};
use crate::model::{Category, Item, ItemKind};

/// Which columns mean what (`items = { sheet, key, title, category, estimate, … }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowItems {
    /// The sheet (`None`: the first, as for a CSV).
    pub sheet: Option<String>,
    pub key: String,
    pub title: Option<String>,
    pub category: Option<String>,
    pub estimate: Option<String>,
    /// A column of comma-separated labels.
    pub labels: Option<String>,
    pub assignee: Option<String>,
}

/// The category a status word means: done, in progress, or (anything else) to do.
pub fn category_of(status: &str) -> Category {
    let s = status.trim().to_lowercase();
    const DONE: &[&str] = &[
        "done",
        "complete",
        "completed",
        "closed",
        "shipped",
        "finished",
        "live",
        "delivered",
        "resolved",
    ];
    const STARTED: &[&str] = &[
        "in progress",
        "in-progress",
        "active",
        "doing",
        "started",
        "ongoing",
        "wip",
        "in review",
        "review",
        "at risk",
        "on track",
        "running",
    ];
    if DONE.contains(&s.as_str()) {
        Category::Done
    } else if STARTED.contains(&s.as_str()) {
        Category::InProgress
    } else {
        Category::Todo
    }
}

fn text(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
        Cell::Number(n) => n.to_string(),
        Cell::Text(t) => t.trim().to_string(),
    }
}

/// The rows of the configured sheet as items; the error says what is missing in words.
pub fn items_from(
    book: &Workbook,
    spec: &RowItems,
    source: &str,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Item>, String> {
    let sheet = match &spec.sheet {
        None => book.sheets.first().ok_or("the workbook has no sheet")?,
        Some(n) => book
            .sheets
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(n))
            .ok_or_else(|| {
                let names: Vec<&str> = book.sheets.iter().map(|s| s.name.as_str()).collect();
                format!("sheet \"{n}\" not found; sheets: {}", names.join(", "))
            })?,
    };
    let Some(header_at) = sheet
        .rows
        .iter()
        .position(|r| r.iter().any(|c| *c != Cell::Empty))
    else {
        return Ok(Vec::new());
    };
    let headers: Vec<String> = sheet.rows[header_at].iter().map(text).collect();
    let col = |name: &str| -> Result<usize, String> {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let present: Vec<&str> = headers
                    .iter()
                    .filter(|h| !h.is_empty())
                    .map(String::as_str)
                    .collect();
                format!(
                    "header \"{name}\" not found in sheet \"{}\"; headers: {}",
                    sheet.name,
                    present.join(", ")
                )
            })
    };
    let key_col = col(&spec.key)?;
    let optional = |c: &Option<String>| c.as_deref().map(col).transpose();
    let (title_col, cat_col, est_col, labels_col, assignee_col) = (
        optional(&spec.title)?,
        optional(&spec.category)?,
        optional(&spec.estimate)?,
        optional(&spec.labels)?,
        optional(&spec.assignee)?,
    );
    let mut items = Vec::new();
    for row in &sheet.rows[header_at + 1..] {
        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).map(text).unwrap_or_default();
        let key = get(Some(key_col));
        if key.is_empty() {
            continue;
        }
        let status = get(cat_col);
        let mut fields = BTreeMap::new();
        for (i, h) in headers.iter().enumerate() {
            match row.get(i) {
                Some(Cell::Number(n)) if !h.is_empty() => {
                    fields.insert(h.clone(), serde_json::json!(n));
                }
                Some(Cell::Text(t)) if !h.is_empty() => {
                    fields.insert(h.clone(), serde_json::Value::String(t.trim().to_string()));
                }
                _ => {}
            }
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        items.push(Item {
            source: source.to_string(),
            ext_id: key.clone(),
            title: non_empty(get(title_col)).unwrap_or_else(|| key.clone()),
            kind: ItemKind::Row,
            url: url.to_string(),
            project: sheet.name.clone(),
            item_type: "row".into(),
            category: category_of(&status),
            status,
            labels: get(labels_col)
                .split(',')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            components: Vec::new(),
            epic: None,
            parent: None,
            milestone: None,
            assignee: non_empty(get(assignee_col)),
            estimate: est_col.and_then(|c| match row.get(c) {
                Some(Cell::Number(n)) => Some(*n),
                Some(Cell::Text(t)) => parse_number(t),
                _ => None,
            }),
            created: None,
            // Rows have no update time: the engine keeps an unchanged row by its content,
            // so this is when okrsync first saw the row as it is now.
            updated: now,
            resolved: None,
            fields,
            abandoned: false,
            key,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::sheet::grid::Sheet;

    #[test]
    fn portfolio_rows_become_items() {
        let t = |s: &str| Cell::Text(s.into());
        let book = Workbook {
            sheets: vec![Sheet {
                name: "Projects".into(),
                rows: vec![
                    vec![t("Project"), t("Name"), t("Status"), t("Budget"), t("Team")],
                    vec![
                        t("P-1"),
                        t("EMEA checkout"),
                        t("In progress"),
                        t("€ 120,000"),
                        t("Payments"),
                    ],
                    vec![
                        t("P-2"),
                        t("Dark mode"),
                        t("Done"),
                        Cell::Number(30000.0),
                        t("Web"),
                    ],
                    vec![Cell::Empty, t("no key: skipped")],
                    vec![t("P-3"), t("Data lake"), t("Proposed")],
                ],
            }],
        };
        let spec = RowItems {
            sheet: Some("projects".into()),
            key: "Project".into(),
            title: Some("Name".into()),
            category: Some("Status".into()),
            estimate: Some("Budget".into()),
            labels: None,
            assignee: None,
        };
        let items =
            items_from(&book, &spec, "portfolio", "file:///x.xlsx", Utc::now()).expect("items");
        assert_eq!(items.len(), 3);
        assert_eq!(
            (
                items[0].key.as_str(),
                items[0].kind,
                items[0].project.as_str()
            ),
            ("P-1", ItemKind::Row, "Projects")
        );
        assert_eq!(
            (items[0].category, items[0].estimate),
            (Category::InProgress, Some(120_000.0))
        );
        assert_eq!(items[0].fields["Team"], serde_json::json!("Payments"));
        assert_eq!(
            (items[1].category, items[1].estimate),
            (Category::Done, Some(30_000.0))
        );
        assert_eq!(items[2].category, Category::Todo);
        let mut bad = spec.clone();
        bad.estimate = Some("Cost".into());
        let err = items_from(&book, &bad, "portfolio", "", Utc::now()).expect_err("no such header");
        assert!(
            err.contains("header \"Cost\" not found")
                && err.contains("headers: Project, Name, Status, Budget, Team"),
            "{err}"
        );
    }
}
