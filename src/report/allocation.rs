//! `okrsync allocation` (SPEC.md, "Allocation"): where the effort of the period's work goes.
//! Each item in progress or done in the period (the unaligned report's selection, with the
//! same classification: an epic or parent is aligned through its children, exempt when all
//! of them are) weighs its estimate, or its project's median estimate when it has none; that
//! effort is split equally over the objectives whose KRs it moves, or goes to `exempt` or
//! `unaligned`. The document, its table, its CSV, and the items behind any one cell.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rustc_hash::FxHashMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::{natural_key, report_periods, ReportError};
use crate::model::{Category, Period};
use crate::settings::Settings;
use crate::store::{Store, StoreError, WorkLink};

/// What the rows of the table are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum By {
    #[default]
    Project,
    Objective,
}

impl By {
    pub fn parse(s: &str) -> Result<By, ReportError> {
        match s.trim() {
            "" | "project" => Ok(By::Project),
            "objective" => Ok(By::Objective),
            other => Err(ReportError::BadRequest(format!(
                "unknown --by \"{other}\": expected project or objective"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            By::Project => "project",
            By::Objective => "objective",
        }
    }
}

/// `{"period","by","rows":[…]}`; `rows` are projects (`by = "project"`) or objectives
/// followed by an `exempt` and an `unaligned` row (`by = "objective"`).
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct AllocationDoc {
    /// The period(s) covered, e.g. `2026-Q4` (several joined with ", ").
    pub period: String,
    pub by: By,
    pub rows: AllocationRows,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(untagged)]
pub enum AllocationRows {
    Projects(Vec<ProjectRow>),
    Objectives(Vec<ObjectiveRow>),
}

/// A part of a row: its effort and its share of the row's effort.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, ToSchema)]
pub struct Part {
    pub effort: f64,
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ObjectivePart {
    pub id: String,
    pub title: String,
    pub effort: f64,
    pub share: f64,
}

/// One project: its effort split over the objectives (every objective any row has, in
/// configuration order), exempt and unaligned.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ProjectRow {
    pub project: String,
    pub effort: f64,
    pub items: usize,
    pub objectives: Vec<ObjectivePart>,
    pub exempt: Part,
    pub unaligned: Part,
    /// With `--weeks`: every ISO week of the period, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weeks: Option<Vec<ProjectWeek>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct WeekObjective {
    pub id: String,
    pub effort: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ProjectWeek {
    /// ISO week, `2026-W45`.
    pub week: String,
    /// Its Monday.
    pub start: NaiveDate,
    pub effort: f64,
    pub objectives: Vec<WeekObjective>,
    pub exempt: f64,
    pub unaligned: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ProjectPart {
    pub project: String,
    pub effort: f64,
    pub share: f64,
}

/// `--by objective`: one objective (or the `exempt` / `unaligned` column, `kind` says
/// which) with the effort each project puts into it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ObjectiveRow {
    /// The objective's id; `exempt` or `unaligned` for those rows.
    pub objective: String,
    pub title: String,
    /// `objective`, `exempt` or `unaligned`.
    pub kind: String,
    pub effort: f64,
    /// Items that put effort into it (an item split over two objectives counts in both).
    pub items: usize,
    /// Every project of the report, sorted.
    pub projects: Vec<ProjectPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weeks: Option<Vec<ObjectiveWeek>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct WeekProject {
    pub project: String,
    pub effort: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct ObjectiveWeek {
    pub week: String,
    pub start: NaiveDate,
    pub effort: f64,
    pub projects: Vec<WeekProject>,
}

/// Which column of the table an item's effort (or a share of it) lands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// An objective id.
    Objective(String),
    Exempt,
    Unaligned,
}

impl Column {
    /// `exempt`, `unaligned`, or an objective id.
    pub fn parse(column: Option<&str>, objective: Option<&str>) -> Option<Column> {
        match (column.map(str::trim), objective.map(str::trim)) {
            (_, Some(o)) if !o.is_empty() => Some(Column::Objective(o.to_string())),
            (Some("exempt"), _) => Some(Column::Exempt),
            (Some("unaligned"), _) => Some(Column::Unaligned),
            _ => None,
        }
    }
}

/// One selected item with its weight and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocItem {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub project: String,
    pub category: Category,
    pub estimate: Option<f64>,
    /// The estimate, or the project's median.
    pub effort: f64,
    /// Indices into [`Classified::objectives`], each once; empty when exempt or unaligned.
    pub objectives: Vec<usize>,
    pub exempt: bool,
    /// The Monday of the ISO week its effort counts in.
    pub week: NaiveDate,
}

impl AllocItem {
    /// What this item puts into `column`.
    pub fn effort_in(&self, column: &Column, objectives: &[(String, String)]) -> f64 {
        match column {
            Column::Objective(id)
                if self
                    .objectives
                    .iter()
                    .any(|&i| objectives.get(i).is_some_and(|(o, _)| o == id)) =>
            {
                self.effort / self.objectives.len() as f64
            }
            Column::Exempt if self.exempt => self.effort,
            Column::Unaligned if self.objectives.is_empty() && !self.exempt => self.effort,
            _ => 0.0,
        }
    }
}

/// The selected items, classified and weighed.
pub struct Classified {
    pub period: String,
    /// Every configured objective, `(id, title)`, in configuration order.
    pub objectives: Vec<(String, String)>,
    pub items: Vec<AllocItem>,
    /// The Mondays of the ISO weeks the periods cover, oldest first.
    pub weeks: Vec<NaiveDate>,
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// `2026-W45`.
pub fn week_label(monday: NaiveDate) -> String {
    let w = monday.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Parses `2026-W45` into its Monday.
pub fn parse_week(label: &str) -> Option<NaiveDate> {
    let (y, w) = label.trim().split_once("-W")?;
    NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)
}

/// The median of some estimates; 1 when there are none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 1.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

// The week an item's effort counts in (README, "Allocation"): the week it reached done
// (its resolution date, else its last update, as for "done in the period"); for work still
// in progress the current week, kept inside the period for a past or future one.

/// Selects, classifies and weighs the period's work.
pub async fn classify(
    store: &Store,
    settings: &Settings,
    period: Option<&str>,
    now: DateTime<Utc>,
    with_titles: bool,
) -> Result<Classified, ReportError> {
    let periods: Vec<Period> = report_periods(settings, period, now)?;
    let objectives: Vec<(String, String)> = settings
        .objectives
        .iter()
        .map(|o| (o.id.to_string(), o.title.clone()))
        .collect();
    let objective_of: FxHashMap<&str, usize> = settings
        .objectives
        .iter()
        .enumerate()
        .flat_map(|(i, o)| o.key_results.iter().map(move |k| (k.id.as_str(), i)))
        .collect();
    let (Some(first), Some(last)) = (
        periods.iter().map(|p| p.start).min(),
        periods.iter().map(|p| p.end).max(),
    ) else {
        return Ok(Classified {
            period: String::new(),
            objectives,
            items: Vec::new(),
            weeks: Vec::new(),
        });
    };
    // The period's items are read in the background while every item's KRs are read and
    // put into maps here: the two reads run on two connections, and the maps are ready
    // when the items arrive.
    let reading_rows = {
        let (store, periods) = (store.clone(), periods.clone());
        tokio::spawn(async move { store.period_rows(&periods, with_titles).await })
    };
    let links = store.item_links().await?;
    let links = links.links()?;
    // Every item's objectives: its own KRs' by `(source, ext id)`, its children's by
    // `(source, key)` (children name their parent by key). Tens of thousands of keys: a
    // fast hash, and each key's objectives as a list threaded through one arena.
    let mut own: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    let mut through_children: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    let mut arena = ObjectiveLists::default();
    for WorkLink(source, id, kr, by_key) in &links {
        let Some(&o) = objective_of.get(kr.as_ref()) else {
            continue;
        };
        let map = if *by_key != 0 {
            &mut through_children
        } else {
            &mut own
        };
        let head = map.entry((source.as_ref(), id.as_ref())).or_insert(NONE);
        *head = arena.add(*head, o);
    }
    let rows = match reading_rows.await {
        Ok(read) => read?,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => return Err(StoreError::Sql(sqlx::Error::WorkerCrashed).into()),
        },
    };
    let rows = rows.rows()?;
    // A stable order, by project, source and key (the sums below add up in it): the few
    // projects and sources ranked once, and the keys' first bytes beside them, so most
    // comparisons are of integers (no visit to the row).
    let project_rank = ranks(rows.iter().map(|r| r.project.as_ref()));
    let source_rank = ranks(rows.iter().map(|r| r.source.as_ref()));
    let mut order: Vec<(u64, u128, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let group = project_rank[r.project.as_ref()] << 32 | source_rank[r.source.as_ref()];
            (group, key_prefix(&r.key), i)
        })
        .collect();
    order.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| rows[a.2].key.cmp(&rows[b.2].key))
    });
    // Each project's median estimate, for its items without one.
    let mut estimates: Vec<Vec<f64>> = vec![Vec::new(); project_rank.len()];
    for row in &rows {
        if let Some(e) = row.estimate {
            estimates[project_rank[row.project.as_ref()] as usize].push(e);
        }
    }
    let medians: Vec<f64> = estimates.iter_mut().map(|v| median(v)).collect();
    drop(estimates);
    // The table needs only the project; the items behind a cell show the rest.
    let text = |t: &Cow<str>| {
        if with_titles {
            t.to_string()
        } else {
            String::new()
        }
    };
    let mut items = Vec::with_capacity(rows.len());
    for (rank, _, i) in order {
        let row = &rows[i];
        let category = Category::parse(&row.category).unwrap_or(Category::InProgress);
        let mut objs: Vec<usize> = Vec::new();
        for head in [
            own.get(&(row.source.as_ref(), row.ext_id.as_ref())),
            through_children.get(&(row.source.as_ref(), row.key.as_ref())),
        ]
        .into_iter()
        .flatten()
        {
            arena.extend_into(*head, &mut objs);
        }
        objs.sort_unstable();
        objs.dedup();
        // The unaligned report's classification, so the two always agree.
        let exempt = objs.is_empty() && row.unaligned == 0;
        let day = match category {
            Category::Done => DateTime::from_timestamp_millis(row.done_ms)
                .unwrap_or_default()
                .date_naive(),
            _ => now.date_naive(),
        };
        items.push(AllocItem {
            week: monday(day.clamp(first, last)),
            source: text(&row.source),
            key: text(&row.key),
            title: text(&row.title),
            url: text(&row.url),
            project: row.project.to_string(),
            category,
            estimate: row.estimate,
            effort: row.estimate.unwrap_or(medians[(rank >> 32) as usize]),
            objectives: objs,
            exempt,
        });
    }
    let mut weeks = Vec::new();
    let mut w = monday(first);
    while w <= last {
        weeks.push(w);
        w += Duration::days(7);
    }
    Ok(Classified {
        period: periods
            .iter()
            .map(|p| p.label.clone())
            .collect::<Vec<_>>()
            .join(", "),
        objectives,
        items,
        weeks,
    })
}

/// The first 16 bytes of a key as a number that orders as the key's bytes do (a shorter
/// key is padded with zeros: ties are then told apart by comparing the keys).
fn key_prefix(key: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// Each distinct name with its place in byte order.
fn ranks<'s>(names: impl Iterator<Item = &'s str>) -> FxHashMap<&'s str, u64> {
    let mut seen: FxHashMap<&str, ()> = FxHashMap::default();
    for n in names {
        seen.entry(n).or_default();
    }
    let mut sorted: Vec<&str> = seen.into_keys().collect();
    sorted.sort_unstable();
    sorted.into_iter().zip(0..).collect()
}

/// The end of a list in [`ObjectiveLists`].
const NONE: u32 = u32::MAX;

/// Short lists of objective indices, each threaded through one vector from its head (no
/// allocation per list); a list holds each objective once.
#[derive(Default)]
struct ObjectiveLists {
    /// `(objective, next)`.
    cells: Vec<(usize, u32)>,
}

impl ObjectiveLists {
    /// The list starting at `head` with `objective` added: its new head.
    fn add(&mut self, head: u32, objective: usize) -> u32 {
        let mut at = head;
        while at != NONE {
            let (o, next) = self.cells[at as usize];
            if o == objective {
                return head;
            }
            at = next;
        }
        self.cells.push((objective, head));
        (self.cells.len() - 1) as u32
    }

    fn extend_into(&self, head: u32, out: &mut Vec<usize>) {
        let mut at = head;
        while at != NONE {
            let (o, next) = self.cells[at as usize];
            out.push(o);
            at = next;
        }
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole
    } else {
        0.0
    }
}

/// Effort per column: the objectives of [`Classified`] by index, then exempt, unaligned.
#[derive(Clone, Default)]
struct Split {
    objectives: Vec<f64>,
    exempt: f64,
    unaligned: f64,
}

impl Split {
    fn new(n: usize) -> Split {
        Split {
            objectives: vec![0.0; n],
            ..Split::default()
        }
    }

    fn add(&mut self, item: &AllocItem) {
        if !item.objectives.is_empty() {
            let part = item.effort / item.objectives.len() as f64;
            for &o in &item.objectives {
                self.objectives[o] += part;
            }
        } else if item.exempt {
            self.exempt += item.effort;
        } else {
            self.unaligned += item.effort;
        }
    }

    fn total(&self) -> f64 {
        self.objectives.iter().sum::<f64>() + self.exempt + self.unaligned
    }

    /// The effort in column `c`: objectives `0..n`, then exempt (`n`), unaligned (`n + 1`).
    fn column(&self, c: usize) -> f64 {
        let n = self.objectives.len();
        if c < n {
            self.objectives[c]
        } else if c == n {
            self.exempt
        } else {
            self.unaligned
        }
    }
}

struct ProjectAcc {
    items: usize,
    /// Items per column (same indexing as [`Split::column`]).
    column_items: Vec<usize>,
    split: Split,
    weeks: Vec<Split>,
}

/// `okrsync allocation`: the document.
pub async fn allocation(
    store: &Store,
    settings: &Settings,
    period: Option<&str>,
    by: By,
    weeks: bool,
    now: DateTime<Utc>,
) -> Result<AllocationDoc, ReportError> {
    let c = classify(store, settings, period, now, false).await?;
    Ok(build(&c, by, weeks))
}

/// The document from classified items.
pub fn build(c: &Classified, by: By, with_weeks: bool) -> AllocationDoc {
    let n = c.objectives.len();
    let mut projects: BTreeMap<&str, ProjectAcc> = BTreeMap::new();
    let mut used = vec![false; n];
    for i in &c.items {
        let acc = projects
            .entry(i.project.as_str())
            .or_insert_with(|| ProjectAcc {
                items: 0,
                column_items: vec![0; n + 2],
                split: Split::new(n),
                weeks: vec![Split::new(n); c.weeks.len()],
            });
        acc.items += 1;
        acc.split.add(i);
        if let Some(w) = c.weeks.iter().position(|&w| w == i.week) {
            acc.weeks[w].add(i);
        }
        if i.objectives.is_empty() {
            acc.column_items[if i.exempt { n } else { n + 1 }] += 1;
        }
        for &o in &i.objectives {
            used[o] = true;
            acc.column_items[o] += 1;
        }
    }
    let shown: Vec<usize> = (0..n).filter(|&o| used[o]).collect();
    let week_label_of = |w: usize| week_label(c.weeks[w]);
    let rows = match by {
        By::Project => AllocationRows::Projects(
            projects
                .iter()
                .map(|(p, acc)| {
                    let effort = acc.split.total();
                    ProjectRow {
                        project: p.to_string(),
                        effort,
                        items: acc.items,
                        objectives: shown
                            .iter()
                            .map(|&o| ObjectivePart {
                                id: c.objectives[o].0.clone(),
                                title: c.objectives[o].1.clone(),
                                effort: acc.split.objectives[o],
                                share: share(acc.split.objectives[o], effort),
                            })
                            .collect(),
                        exempt: Part {
                            effort: acc.split.exempt,
                            share: share(acc.split.exempt, effort),
                        },
                        unaligned: Part {
                            effort: acc.split.unaligned,
                            share: share(acc.split.unaligned, effort),
                        },
                        weeks: with_weeks.then(|| {
                            acc.weeks
                                .iter()
                                .enumerate()
                                .map(|(w, s)| ProjectWeek {
                                    week: week_label_of(w),
                                    start: c.weeks[w],
                                    effort: s.total(),
                                    objectives: shown
                                        .iter()
                                        .map(|&o| WeekObjective {
                                            id: c.objectives[o].0.clone(),
                                            effort: s.objectives[o],
                                        })
                                        .collect(),
                                    exempt: s.exempt,
                                    unaligned: s.unaligned,
                                })
                                .collect()
                        }),
                    }
                })
                .collect(),
        ),
        By::Objective => {
            let mut columns: Vec<(usize, String, String, &'static str)> = shown
                .iter()
                .map(|&o| {
                    (
                        o,
                        c.objectives[o].0.clone(),
                        c.objectives[o].1.clone(),
                        "objective",
                    )
                })
                .collect();
            columns.push((n, "exempt".into(), "Exempt".into(), "exempt"));
            columns.push((n + 1, "unaligned".into(), "Unaligned".into(), "unaligned"));
            AllocationRows::Objectives(
                columns
                    .into_iter()
                    .map(|(col, id, title, kind)| {
                        let effort: f64 = projects.values().map(|a| a.split.column(col)).sum();
                        ObjectiveRow {
                            objective: id,
                            title,
                            kind: kind.to_string(),
                            effort,
                            items: projects.values().map(|a| a.column_items[col]).sum(),
                            projects: projects
                                .iter()
                                .map(|(p, a)| ProjectPart {
                                    project: p.to_string(),
                                    effort: a.split.column(col),
                                    share: share(a.split.column(col), effort),
                                })
                                .collect(),
                            weeks: with_weeks.then(|| {
                                (0..c.weeks.len())
                                    .map(|w| {
                                        let per: Vec<WeekProject> = projects
                                            .iter()
                                            .map(|(p, a)| WeekProject {
                                                project: p.to_string(),
                                                effort: a.weeks[w].column(col),
                                            })
                                            .collect();
                                        ObjectiveWeek {
                                            week: week_label_of(w),
                                            start: c.weeks[w],
                                            effort: per.iter().map(|x| x.effort).sum(),
                                            projects: per,
                                        }
                                    })
                                    .collect()
                            }),
                        }
                    })
                    .collect(),
            )
        }
    };
    AllocationDoc {
        period: c.period.clone(),
        by,
        rows,
    }
}

/// The items behind one cell of the table, with what each puts into it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct CellItems {
    pub period: String,
    pub project: Option<String>,
    /// An objective id, `exempt` or `unaligned`; absent for a whole row.
    pub column: Option<String>,
    pub week: Option<String>,
    pub effort: f64,
    pub items: Vec<CellItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct CellItem {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub project: String,
    pub category: String,
    pub estimate: Option<f64>,
    /// The item's whole effort (its estimate, or its project's median).
    pub weight: f64,
    /// What it puts into this cell.
    pub effort: f64,
    /// The objectives it moves, by id.
    pub objectives: Vec<String>,
}

/// The items behind a cell: a project (or all), a column (or the whole row), a week.
pub async fn cell_items(
    store: &Store,
    settings: &Settings,
    period: Option<&str>,
    project: Option<&str>,
    column: Option<&Column>,
    week: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<CellItems, ReportError> {
    let c = classify(store, settings, period, now, true).await?;
    let mut items: Vec<CellItem> = c
        .items
        .iter()
        .filter(|i| project.is_none_or(|p| i.project == p))
        .filter(|i| week.is_none_or(|w| i.week == w))
        .filter_map(|i| {
            let effort = match column {
                Some(col) => i.effort_in(col, &c.objectives),
                None => i.effort,
            };
            let inside = match column {
                Some(Column::Objective(id)) => {
                    i.objectives.iter().any(|&o| c.objectives[o].0 == *id)
                }
                // An exempt or unaligned item of effort 0 still belongs to its column.
                Some(Column::Exempt) => i.exempt,
                Some(Column::Unaligned) => i.objectives.is_empty() && !i.exempt,
                None => true,
            };
            inside.then(|| CellItem {
                source: i.source.clone(),
                key: i.key.clone(),
                title: i.title.clone(),
                url: i.url.clone(),
                project: i.project.clone(),
                category: i.category.as_str().to_string(),
                estimate: i.estimate,
                weight: i.effort,
                effort,
                objectives: i
                    .objectives
                    .iter()
                    .map(|&o| c.objectives[o].0.clone())
                    .collect(),
            })
        })
        .collect();
    items.sort_by_cached_key(|i| (i.project.clone(), i.source.clone(), natural_key(&i.key)));
    Ok(CellItems {
        period: c.period,
        project: project.map(str::to_string),
        column: column.map(|c| match c {
            Column::Objective(id) => id.clone(),
            Column::Exempt => "exempt".into(),
            Column::Unaligned => "unaligned".into(),
        }),
        week: week.map(week_label),
        effort: items.iter().map(|i| i.effort).sum(),
        items,
    })
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn cell(effort: f64, share: f64) -> String {
    format!("{} ({:.0}%)", num(effort), share * 100.0)
}

fn table(out: &mut String, header: Vec<String>, rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

/// The table for a terminal.
pub fn render_allocation(doc: &AllocationDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Effort in {} (estimate, else the project's median; split equally over the objectives an item moves)",
        if doc.period.is_empty() { "no period" } else { &doc.period }
    );
    match &doc.rows {
        AllocationRows::Projects(rows) => {
            if rows.is_empty() {
                out.push_str("No work in progress or done in the period.\n");
                return out;
            }
            let mut header = vec!["PROJECT".to_string(), "ITEMS".into(), "EFFORT".into()];
            header.extend(rows[0].objectives.iter().map(|o| o.id.clone()));
            header.extend(["exempt".to_string(), "unaligned".into()]);
            let body = rows
                .iter()
                .map(|r| {
                    let mut line = vec![r.project.clone(), r.items.to_string(), num(r.effort)];
                    line.extend(r.objectives.iter().map(|o| cell(o.effort, o.share)));
                    line.push(cell(r.exempt.effort, r.exempt.share));
                    line.push(cell(r.unaligned.effort, r.unaligned.share));
                    line
                })
                .collect();
            table(&mut out, header, body);
            for r in rows {
                if let Some(weeks) = &r.weeks {
                    let _ = writeln!(out, "\n{} by week:", r.project);
                    for w in weeks.iter().filter(|w| w.effort > 0.0) {
                        let _ = writeln!(out, "  {} {}", w.week, num(w.effort));
                    }
                }
            }
        }
        AllocationRows::Objectives(rows) => {
            let projects: Vec<String> = rows
                .first()
                .map(|r| r.projects.iter().map(|p| p.project.clone()).collect())
                .unwrap_or_default();
            if projects.is_empty() {
                out.push_str("No work in progress or done in the period.\n");
                return out;
            }
            let mut header = vec!["OBJECTIVE".to_string(), "ITEMS".into(), "EFFORT".into()];
            header.extend(projects);
            let body = rows
                .iter()
                .map(|r| {
                    let mut line = vec![r.objective.clone(), r.items.to_string(), num(r.effort)];
                    line.extend(r.projects.iter().map(|p| cell(p.effort, p.share)));
                    line
                })
                .collect();
            table(&mut out, header, body);
            for r in rows {
                if let Some(weeks) = &r.weeks {
                    let _ = writeln!(out, "\n{} by week:", r.objective);
                    for w in weeks.iter().filter(|w| w.effort > 0.0) {
                        let _ = writeln!(out, "  {} {}", w.week, num(w.effort));
                    }
                }
            }
        }
    }
    out
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    let fields: Vec<String> = fields.into_iter().map(|f| field(&f)).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
}

/// `--csv`: the same table, numbers as in the JSON document. Without `--weeks` one line per
/// row; with it, one line per row and week.
pub fn render_csv(doc: &AllocationDoc) -> String {
    let mut out = String::new();
    let n = |v: f64| v.to_string();
    match &doc.rows {
        AllocationRows::Projects(rows) => {
            let ids: Vec<String> = rows
                .first()
                .map(|r| r.objectives.iter().map(|o| o.id.clone()).collect())
                .unwrap_or_default();
            let weekly = rows.iter().any(|r| r.weeks.is_some());
            let mut header = vec!["period".to_string(), "project".into()];
            if weekly {
                header.extend(["week".to_string(), "week start".into(), "effort".into()]);
                header.extend(ids.iter().map(|i| format!("{i} effort")));
                header.extend(["exempt effort".to_string(), "unaligned effort".into()]);
            } else {
                header.extend(["items".to_string(), "effort".into()]);
                for i in &ids {
                    header.extend([format!("{i} effort"), format!("{i} share")]);
                }
                header.extend([
                    "exempt effort".to_string(),
                    "exempt share".into(),
                    "unaligned effort".into(),
                    "unaligned share".into(),
                ]);
            }
            line(&mut out, header);
            for r in rows {
                if let Some(weeks) = r.weeks.as_ref().filter(|_| weekly) {
                    for w in weeks {
                        let mut f = vec![
                            doc.period.clone(),
                            r.project.clone(),
                            w.week.clone(),
                            w.start.to_string(),
                            n(w.effort),
                        ];
                        f.extend(w.objectives.iter().map(|o| n(o.effort)));
                        f.extend([n(w.exempt), n(w.unaligned)]);
                        line(&mut out, f);
                    }
                } else {
                    let mut f = vec![
                        doc.period.clone(),
                        r.project.clone(),
                        r.items.to_string(),
                        n(r.effort),
                    ];
                    for o in &r.objectives {
                        f.extend([n(o.effort), n(o.share)]);
                    }
                    f.extend([
                        n(r.exempt.effort),
                        n(r.exempt.share),
                        n(r.unaligned.effort),
                        n(r.unaligned.share),
                    ]);
                    line(&mut out, f);
                }
            }
        }
        AllocationRows::Objectives(rows) => {
            let projects: Vec<String> = rows
                .first()
                .map(|r| r.projects.iter().map(|p| p.project.clone()).collect())
                .unwrap_or_default();
            let weekly = rows.iter().any(|r| r.weeks.is_some());
            let mut header = vec!["period".to_string(), "objective".into(), "title".into()];
            if weekly {
                header.extend(["week".to_string(), "week start".into(), "effort".into()]);
                header.extend(projects.iter().map(|p| format!("{p} effort")));
            } else {
                header.extend(["items".to_string(), "effort".into()]);
                for p in &projects {
                    header.extend([format!("{p} effort"), format!("{p} share")]);
                }
            }
            line(&mut out, header);
            for r in rows {
                if let Some(weeks) = r.weeks.as_ref().filter(|_| weekly) {
                    for w in weeks {
                        let mut f = vec![
                            doc.period.clone(),
                            r.objective.clone(),
                            r.title.clone(),
                            w.week.clone(),
                            w.start.to_string(),
                            n(w.effort),
                        ];
                        f.extend(w.projects.iter().map(|p| n(p.effort)));
                        line(&mut out, f);
                    }
                } else {
                    let mut f = vec![
                        doc.period.clone(),
                        r.objective.clone(),
                        r.title.clone(),
                        r.items.to_string(),
                        n(r.effort),
                    ];
                    for p in &r.projects {
                        f.extend([n(p.effort), n(p.share)]);
                    }
                    line(&mut out, f);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [8.0, 2.0, 3.0, 5.0]), 4.0);
        assert_eq!(median(&mut []), 1.0);
    }

    #[test]
    fn weeks_are_iso_weeks() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 15).expect("date");
        assert_eq!(
            monday(d),
            NaiveDate::from_ymd_opt(2026, 11, 9).expect("date")
        );
        assert_eq!(week_label(monday(d)), "2026-W46");
        assert_eq!(parse_week("2026-W46"), Some(monday(d)));
        // 2026 starts on a Thursday, so it has 53 ISO weeks.
        let late = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        assert_eq!(week_label(monday(late)), "2026-W53");
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
    }
}
