//! What the reports read: the database selects, classifies and counts (with the match and
//! child counts a sync step keeps), and only the rows a report prints come back, packed.
//!
//! An item is *aligned* when it moves a KR by its own rules or through its children (an
//! epic or parent whose children move one), *exempt* when an exempt rule matches it or
//! every one of its children is exempt, and *unaligned* otherwise (SPEC.md, "Unaligned
//! work"). The work of a period is what is in progress, or reached done inside one of the
//! periods.

use std::borrow::Cow;

use serde::Deserialize;

use super::sets::unpack;
use super::{Backend, Result, Store};
use crate::model::Period;

/// That `i` (an item) is unaligned: it moves no KR and no exempt rule matches it, and its
/// children (if any) neither move a KR nor are all exempt. On SQLite its own columns are
/// tested first, so the child counts are looked up for the few items that could be
/// unaligned; PostgreSQL would run that `NOT EXISTS` as a subplan per row inside an
/// aggregate, so there the parents whose children align them are joined once
/// ([`aligned_parents`], `p`).
fn unaligned(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "(i.match_count = 0 AND i.exempt_rule IS NULL \
             AND NOT EXISTS (SELECT 1 FROM child_counts k WHERE k.source = i.source \
             AND k.up = i.key AND (k.moving > 0 OR (k.children > 0 AND k.exempt = k.children))))"
        }
        Backend::Postgres => "(i.match_count = 0 AND i.exempt_rule IS NULL AND p.up IS NULL)",
    }
}

/// The join [`unaligned`] needs after `FROM items i` (none on SQLite): the parents aligned
/// through their children, at most one row per item (`(source, up)` is the key).
fn aligned_parents(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => {
            "LEFT JOIN (SELECT k.source, k.up FROM child_counts k WHERE k.moving > 0 \
             OR (k.children > 0 AND k.exempt = k.children)) AS p \
             ON p.source = i.source AND p.up = i.key"
        }
    }
}

/// One project's work in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectCounts {
    pub project: String,
    pub items: i64,
    pub estimate: f64,
    pub unaligned: i64,
    pub unaligned_estimate: f64,
}

/// An unaligned item, as the report lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UnalignedRow {
    pub source: String,
    pub key: String,
    pub title: String,
    pub url: String,
    pub project: String,
    pub category: String,
    pub estimate: Option<f64>,
}

/// An item of the period as allocation weighs it, borrowed from [`PeriodWork`]'s text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkRow<'a> {
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(borrow)]
    pub title: Cow<'a, str>,
    #[serde(borrow)]
    pub url: Cow<'a, str>,
    #[serde(borrow)]
    pub project: Cow<'a, str>,
    #[serde(borrow)]
    pub category: Cow<'a, str>,
    pub estimate: Option<f64>,
    /// When it reached done (its resolution, else its last update), or its last update.
    pub done_ms: i64,
    /// 1 when unaligned (see the module's reading).
    pub unaligned: i64,
    #[serde(borrow)]
    pub ext_id: Cow<'a, str>,
}

/// A KR an item moves, borrowed from [`PeriodWork`]'s text: `id` is the item's ext id
/// (its own matches) or, `by_key`, a parent's key (its children's KRs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkLink<'a>(
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    pub i64,
);

/// The work of the periods as read ([`Store::period_rows`]), decoded on demand into rows
/// that borrow from it (tens of thousands of rows: no strings of their own).
pub struct PeriodRows(String);

impl PeriodRows {
    pub fn rows(&self) -> Result<Vec<WorkRow<'_>>> {
        unpack(&self.0)
    }
}

/// Every item's KRs as read ([`Store::item_links`]), decoded on demand like [`PeriodRows`].
pub struct ItemLinks(String);

impl ItemLinks {
    /// `(source, id, kr, by_key)` of every item, not only the period's.
    pub fn links(&self) -> Result<Vec<WorkLink<'_>>> {
        unpack(&self.0)
    }
}

/// What `moves` counts of the items a selector picks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MovesCounts {
    pub items: i64,
    /// Per KR, how many of the selected items move it (their own matches or their
    /// children's).
    pub key_results: Vec<(String, i64)>,
    /// Selected items that move no KR.
    pub moving_nothing: i64,
}

/// `(condition, binds)`: the work of the periods among `items i`, with its parameters
/// numbered from `first`.
fn in_periods(periods: &[Period], first: usize) -> (String, Vec<i64>) {
    let mut ranges = Vec::new();
    let mut binds = Vec::new();
    for (n, p) in periods.iter().enumerate() {
        let a = first + 2 * n;
        ranges.push(format!(
            "(COALESCE(i.resolved_ms, i.updated_ms) >= ${a} AND COALESCE(i.resolved_ms, i.updated_ms) < ${})",
            a + 1
        ));
        binds.push(p.starts_at().timestamp_millis());
        binds.push(p.ends_at().timestamp_millis());
    }
    let done = if ranges.is_empty() {
        "0 = 1".to_string()
    } else {
        ranges.join(" OR ")
    };
    (
        format!("(i.category = 'in_progress' OR (i.category = 'done' AND ({done})))"),
        binds,
    )
}

impl Store {
    /// Per project, the work of the periods: items and estimate, and the unaligned ones.
    pub async fn project_counts(&self, periods: &[Period]) -> Result<Vec<ProjectCounts>> {
        let (cond, binds) = in_periods(periods, 1);
        // `|| ''`: grouped by sorting the rows read in the table's order; through the
        // project index SQLite would fetch every row out of order.
        let (unaligned, parents) = (unaligned(self.backend), aligned_parents(self.backend));
        let sql = format!(
            "SELECT i.project || '', COUNT(*), \
             CAST(COALESCE(SUM(i.estimate), 0.0) AS DOUBLE PRECISION), \
             SUM(CASE WHEN {unaligned} THEN 1 ELSE 0 END), \
             CAST(COALESCE(SUM(CASE WHEN {unaligned} THEN i.estimate ELSE 0.0 END), 0.0) \
             AS DOUBLE PRECISION) \
             FROM items i {parents} WHERE {cond} GROUP BY i.project || ''"
        );
        let mut q = sqlx::query_as::<_, (String, i64, f64, i64, f64)>(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let mut out: Vec<ProjectCounts> = q
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(
                |(project, items, estimate, unaligned, unaligned_estimate)| ProjectCounts {
                    project,
                    items,
                    estimate: estimate + 0.0,
                    unaligned,
                    unaligned_estimate: unaligned_estimate + 0.0,
                },
            )
            .collect();
        // Byte order, as everywhere in the documents (PostgreSQL's collation may differ).
        out.sort_by(|a, b| a.project.cmp(&b.project));
        Ok(out)
    }

    /// Write-back's candidates in one source: its items of the periods, and those whose
    /// labels may hold `label` (a substring prefilter; the caller checks exactly), each
    /// with `(key, labels as JSON, in the periods, unaligned)`.
    pub async fn writeback_candidates(
        &self,
        source: &str,
        periods: &[Period],
        label: &str,
    ) -> Result<Vec<(String, String, bool, bool)>> {
        let (cond, binds) = in_periods(periods, 1);
        let n = binds.len();
        let sql = format!(
            "SELECT i.key, i.labels, CASE WHEN {cond} THEN 1 ELSE 0 END, \
             CASE WHEN {} THEN 1 ELSE 0 END FROM items i {} \
             WHERE i.source = ${} AND ({cond} OR i.labels LIKE ${}) ORDER BY i.key",
            unaligned(self.backend),
            aligned_parents(self.backend),
            n + 1,
            n + 2,
        );
        let mut q = sqlx::query_as::<_, (String, String, i32, i32)>(&sql);
        for b in &binds {
            q = q.bind(*b);
        }
        let rows = q
            .bind(source)
            .bind(format!("%{label}%"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, labels, in_period, unaligned)| {
                (key, labels, in_period == 1, unaligned == 1)
            })
            .collect())
    }

    /// The last label edit write-back made on each item of `source` for `label`.
    pub async fn writeback_log(
        &self,
        source: &str,
        label: &str,
    ) -> Result<std::collections::HashMap<String, String>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, action FROM writeback_log WHERE source = $1 AND label = $2",
        )
        .bind(source)
        .bind(label)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records a label edit made upstream.
    pub async fn record_writeback(
        &self,
        source: &str,
        key: &str,
        label: &str,
        action: &str,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO writeback_log (source, key, label, action, at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (source, key, label) DO UPDATE SET action = excluded.action, at_ms = excluded.at_ms",
        )
        .bind(source)
        .bind(key)
        .bind(label)
        .bind(action)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unaligned work of the periods.
    pub async fn unaligned_items(&self, periods: &[Period]) -> Result<Vec<UnalignedRow>> {
        let (cond, binds) = in_periods(periods, 1);
        let sql = self.backend.packed(
            "i.source, i.key, i.title, i.url, i.project, i.category, i.estimate",
            &format!(
                "FROM items i {} WHERE {cond} AND {}",
                aligned_parents(self.backend),
                unaligned(self.backend)
            ),
            None,
        );
        let mut q = sqlx::query_as::<_, (String,)>(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let (text,) = q.fetch_one(&self.pool).await?;
        unpack(&text)
    }

    /// The work of the periods with what allocation weighs. Titles and URLs only
    /// `with_titles` (the items behind a cell show them; the table does not).
    pub async fn period_rows(&self, periods: &[Period], with_titles: bool) -> Result<PeriodRows> {
        let (cond, binds) = in_periods(periods, 1);
        let sql = self.backend.packed(
            &format!(
                "i.source, i.key, {}, i.project, i.category, i.estimate, \
                 COALESCE(i.resolved_ms, i.updated_ms), CASE WHEN {} THEN 1 ELSE 0 END, i.ext_id",
                if with_titles {
                    "i.title, i.url"
                } else {
                    "'', ''"
                },
                unaligned(self.backend)
            ),
            &format!(
                "FROM items i {} WHERE {cond}",
                aligned_parents(self.backend)
            ),
            None,
        );
        let mut q = sqlx::query_as::<_, (String,)>(&sql);
        for b in &binds {
            q = q.bind(*b);
        }
        let (text,) = q.fetch_one(&self.pool).await?;
        Ok(PeriodRows(text))
    }

    /// The KRs every item moves, read straight from the two tables in their key order (no
    /// lookup per item): matches by the item's id, the children's KRs by the parent's key;
    /// the caller keeps those of the items it has.
    pub async fn item_links(&self) -> Result<ItemLinks> {
        let sql = self.backend.packed(
            "p.source, p.id, p.kr_id, p.by_key",
            "FROM (SELECT m.source, m.ext_id AS id, m.kr_id, 0 AS by_key FROM matches m \
              UNION ALL \
              SELECT ck.source, ck.up AS id, ck.kr_id, 1 AS by_key FROM child_krs ck \
              WHERE ck.n > 0) AS p",
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql).fetch_one(&self.pool).await?;
        Ok(ItemLinks(text))
    }

    /// What `moves` counts for the items a selector condition on `items i` picks (its
    /// value bound as `$1`), in one statement: the selected items are read once, and the
    /// KRs they (or their children) move are looked up from them.
    pub async fn moves_counts(&self, cond: &str, value: &str) -> Result<MovesCounts> {
        // `CROSS JOIN`: SQLite keeps the selected items outer and seeks their matches,
        // rather than scanning every match; PostgreSQL plans it as an inner join.
        let sql = format!(
            "WITH s AS MATERIALIZED (SELECT i.source, i.ext_id, i.key FROM items i WHERE {cond}), \
             p AS MATERIALIZED (\
              SELECT s.source, s.ext_id, m.kr_id FROM s CROSS JOIN matches m \
               WHERE m.source = s.source AND m.ext_id = s.ext_id \
              UNION \
              SELECT s.source, s.ext_id, ck.kr_id FROM s CROSS JOIN child_krs ck \
               WHERE ck.source = s.source AND ck.up = s.key AND ck.n > 0) \
             SELECT 'kr', p.kr_id, COUNT(*) FROM p GROUP BY p.kr_id \
             UNION ALL SELECT 'items', '', COUNT(*) FROM s \
             UNION ALL SELECT 'moving', '', COUNT(*) FROM \
              (SELECT DISTINCT p.source, p.ext_id FROM p) AS d"
        );
        let rows: Vec<(String, String, i64)> = sqlx::query_as(&sql)
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        let (mut items, mut moving) = (0, 0);
        let mut key_results = Vec::new();
        for (what, kr, n) in rows {
            match what.as_str() {
                "items" => items = n,
                "moving" => moving = n,
                _ => key_results.push((kr, n)),
            }
        }
        Ok(MovesCounts {
            items,
            key_results,
            moving_nothing: items - moving,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_periods_bound_done_work_and_keep_work_in_progress() {
        let q4 = Period::parse("2026-Q4").expect("period");
        let (cond, binds) = in_periods(std::slice::from_ref(&q4), 3);
        assert_eq!(
            cond,
            "(i.category = 'in_progress' OR (i.category = 'done' AND ((COALESCE(i.resolved_ms, i.updated_ms) >= $3 AND COALESCE(i.resolved_ms, i.updated_ms) < $4))))"
        );
        assert_eq!(
            binds,
            vec![
                q4.starts_at().timestamp_millis(),
                q4.ends_at().timestamp_millis()
            ]
        );
        let (cond, binds) = in_periods(&[], 1);
        assert!(cond.contains("0 = 1") && binds.is_empty());
    }
}
