//! The evidence ledger: per KR snapshot, the deltas of its scope (`kr_evidence`), and each
//! KR's scope as of its latest snapshot (`kr_scope`, what the next deltas are taken
//! against). Writes are set statements (a few per snapshot, whatever its size); reads
//! replay a KR's deltas up to a snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use super::{from_ms, get, opt_f64, placeholders, Result, Store, StoreError, Tx};
use crate::evidence::{Delta, Entry, Scope};
use crate::model::Category;

/// Rows per multi-row statement: 13 parameters each stays far below PostgreSQL's 65,535.
const CHUNK: usize = 500;

/// A snapshot as the ledger knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub current: Option<f64>,
    pub start: Option<f64>,
    pub target: Option<f64>,
    pub progress: f64,
    pub items: i64,
    pub cause: String,
    pub rules_hash: Option<String>,
    pub run_id: Option<i64>,
    pub checkin_id: Option<i64>,
    /// Rebuilt from item dates on a source's first sync.
    pub reconstructed: bool,
}

const SNAPSHOT_COLUMNS: &str = "id, at_ms, current, start_value, target, progress, item_count, \
    cause, rules_hash, run_id, checkin_id, reconstructed";

fn decode_snapshot(row: &AnyRow) -> Result<SnapshotRecord> {
    Ok(SnapshotRecord {
        id: get(row, "id")?,
        at: from_ms(get(row, "at_ms")?),
        current: get(row, "current")?,
        start: get(row, "start_value")?,
        target: get(row, "target")?,
        progress: get(row, "progress")?,
        items: get(row, "item_count")?,
        cause: get(row, "cause")?,
        rules_hash: get(row, "rules_hash")?,
        run_id: get(row, "run_id")?,
        checkin_id: get(row, "checkin_id")?,
        reconstructed: get::<i64>(row, "reconstructed")? != 0,
    })
}

fn category(text: &str) -> Result<Category> {
    Category::parse(text).ok_or_else(|| StoreError::Corrupt(format!("category {text}")))
}

fn decode_entry(row: &AnyRow) -> Result<Entry> {
    Ok(Entry {
        source: get(row, "source")?,
        ext_id: get(row, "ext_id")?,
        key: get(row, "item_key")?,
        category: category(&get::<String>(row, "category")?)?,
        weight: get(row, "weight")?,
        counted: get::<i64>(row, "counted")? != 0,
        rule: get(row, "rule_id")?,
    })
}

fn decode_delta(row: &AnyRow) -> Result<(i64, Delta)> {
    let entry = decode_entry(row)?;
    let change: String = get(row, "change")?;
    let delta = match change.as_str() {
        "entered" => Delta::Entered(entry),
        "left" => Delta::Left(entry),
        "changed" => {
            let mut from = entry.clone();
            if let Some(c) = get::<Option<String>>(row, "prev_category")? {
                from.category = category(&c)?;
            }
            if let Some(w) = get::<Option<f64>>(row, "prev_weight")? {
                from.weight = w;
            }
            if let Some(c) = get::<Option<i64>>(row, "prev_counted")? {
                from.counted = c != 0;
            }
            Delta::Changed { from, to: entry }
        }
        other => return Err(StoreError::Corrupt(format!("evidence change {other}"))),
    };
    Ok((get(row, "snapshot_id")?, delta))
}

const DELTA_COLUMNS: &str = "snapshot_id, source, ext_id, item_key, change, category, weight, \
    counted, rule_id, prev_category, prev_counted, prev_weight";

impl Tx {
    /// A KR's scope as of its latest snapshot.
    pub async fn scope(&mut self, kr_id: &str) -> Result<Scope> {
        let rows = sqlx::query(
            "SELECT source, ext_id, item_key, category, weight, counted, rule_id \
             FROM kr_scope WHERE kr_id = $1",
        )
        .bind(kr_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut scope = Scope::new();
        for row in &rows {
            let e = decode_entry(row)?;
            scope.insert(e.id(), e);
        }
        Ok(scope)
    }

    /// Records a snapshot's deltas and moves the KR's stored scope along with them.
    pub async fn record_evidence(
        &mut self,
        snapshot_id: i64,
        kr_id: &str,
        deltas: &[Delta],
    ) -> Result<()> {
        self.insert_deltas(snapshot_id, kr_id, deltas).await?;
        self.move_scope(kr_id, deltas).await
    }

    /// A point of a reconstructed history (before the first real snapshot) with its
    /// deltas; the KR's stored scope is not touched.
    pub async fn insert_reconstructed(
        &mut self,
        kr_id: &str,
        at_ms: i64,
        value: &crate::progress::KrValue,
        rules_hash: &str,
        deltas: &[Delta],
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO kr_snapshots (kr_id, at_ms, current, target, progress, item_count, cause, \
             start_value, rules_hash, reconstructed) \
             VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), CAST($4 AS DOUBLE PRECISION), $5, $6, \
             'reconstructed from item dates', $7, $8, 1) RETURNING id",
        )
        .bind(kr_id)
        .bind(at_ms)
        .bind(opt_f64(value.current))
        .bind(opt_f64(value.target))
        .bind(value.progress)
        .bind(value.items as i64)
        .bind(value.start)
        .bind(rules_hash)
        .fetch_one(&mut *self.tx)
        .await?;
        self.insert_deltas(id, kr_id, deltas).await?;
        Ok(id)
    }

    /// Whether a KR has history before `at_ms`: a snapshot with items, or a reconstructed
    /// one. (The snapshot every KR gets when its definition is first loaded, before any
    /// item, is not history.)
    pub async fn has_history_before(&mut self, kr_id: &str, at_ms: i64) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM kr_snapshots WHERE kr_id = $1 AND at_ms < $2 \
             AND (item_count > 0 OR reconstructed = 1)",
        )
        .bind(kr_id)
        .bind(at_ms)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n > 0)
    }

    /// Drops a KR's snapshots up to `at_ms` that hold nothing (no item, no evidence: the
    /// one made when its definition was loaded), which a reconstructed history replaces.
    pub async fn drop_empty_snapshots_before(&mut self, kr_id: &str, at_ms: i64) -> Result<()> {
        sqlx::query(
            "DELETE FROM kr_snapshots WHERE kr_id = $1 AND at_ms <= $2 AND item_count = 0 \
             AND reconstructed = 0 AND checkin_id IS NULL \
             AND NOT EXISTS (SELECT 1 FROM kr_evidence e WHERE e.snapshot_id = kr_snapshots.id)",
        )
        .bind(kr_id)
        .bind(at_ms)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_deltas(
        &mut self,
        snapshot_id: i64,
        kr_id: &str,
        deltas: &[Delta],
    ) -> Result<()> {
        for chunk in deltas.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO kr_evidence (snapshot_id, kr_id, source, ext_id, item_key, change, \
                 category, weight, counted, rule_id, prev_category, prev_counted, prev_weight) \
                 VALUES {}",
                cast_last(&placeholders(chunk.len(), 13), 13)
            );
            let mut q = sqlx::query(&sql);
            for d in chunk {
                let (change, e, prev) = match d {
                    Delta::Entered(e) => ("entered", e, None),
                    Delta::Left(e) => ("left", e, None),
                    Delta::Changed { from, to } => ("changed", to, Some(from)),
                };
                q = q
                    .bind(snapshot_id)
                    .bind(kr_id)
                    .bind(e.source.as_str())
                    .bind(e.ext_id.as_str())
                    .bind(e.key.as_str())
                    .bind(change)
                    .bind(e.category.as_str())
                    .bind(e.weight)
                    .bind(e.counted as i64)
                    .bind(e.rule.as_str())
                    .bind(prev.map(|p| p.category.as_str()))
                    .bind(prev.map(|p| p.counted as i64))
                    .bind(opt_f64(prev.map(|p| p.weight)));
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn move_scope(&mut self, kr_id: &str, deltas: &[Delta]) -> Result<()> {
        let left: Vec<&Entry> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Left(e) => Some(e),
                _ => None,
            })
            .collect();
        for chunk in left.chunks(CHUNK) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3))
                .collect();
            let sql = format!(
                "DELETE FROM kr_scope WHERE kr_id = $1 AND (source, ext_id) IN ({})",
                pairs.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(kr_id);
            for e in chunk {
                q = q.bind(e.source.as_str()).bind(e.ext_id.as_str());
            }
            q.execute(&mut *self.tx).await?;
        }
        let present: Vec<&Entry> = deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Entered(e) | Delta::Changed { to: e, .. } => Some(e),
                Delta::Left(_) => None,
            })
            .collect();
        for chunk in present.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO kr_scope (kr_id, source, ext_id, item_key, category, weight, counted, \
                 rule_id) VALUES {} ON CONFLICT (kr_id, source, ext_id) DO UPDATE SET \
                 item_key = excluded.item_key, category = excluded.category, \
                 weight = excluded.weight, counted = excluded.counted, rule_id = excluded.rule_id",
                placeholders(chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(kr_id)
                    .bind(e.source.as_str())
                    .bind(e.ext_id.as_str())
                    .bind(e.key.as_str())
                    .bind(e.category.as_str())
                    .bind(e.weight)
                    .bind(e.counted as i64)
                    .bind(e.rule.as_str());
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Says which sync run made these snapshots (known once the run is recorded).
    pub async fn link_snapshots_to_run(&mut self, snapshots: &[i64], run_id: i64) -> Result<()> {
        for chunk in snapshots.chunks(CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE kr_snapshots SET run_id = $1 WHERE id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(run_id);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// Casts every row's last placeholder (a nullable float sent as text, see `opt_f64`).
fn cast_last(values: &str, columns: usize) -> String {
    let mut out = String::with_capacity(values.len() + 64);
    for (i, p) in values.split(", ").enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if (i + 1) % columns == 0 {
            let n = p.trim_end_matches(')');
            out.push_str(&format!("CAST({n} AS DOUBLE PRECISION))"));
        } else {
            out.push_str(p);
        }
    }
    out
}

impl Store {
    /// The KR's last snapshot at or before `at`.
    pub async fn snapshot_at(
        &self,
        kr_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<SnapshotRecord>> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM kr_snapshots WHERE kr_id = $1 AND at_ms <= $2 \
             ORDER BY at_ms DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(kr_id)
            .bind(at.timestamp_millis())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_snapshot).transpose()
    }

    /// Every snapshot of a KR, oldest first.
    pub async fn snapshots(&self, kr_id: &str) -> Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM kr_snapshots WHERE kr_id = $1 ORDER BY at_ms, id"
        );
        let rows = sqlx::query(&sql).bind(kr_id).fetch_all(&self.pool).await?;
        rows.iter().map(decode_snapshot).collect()
    }

    /// A KR's deltas up to and including snapshot `until` (every one when `None`), by
    /// snapshot in the order of their times (reconstructed points are written after the
    /// first real snapshot but are older).
    pub async fn evidence(
        &self,
        kr_id: &str,
        until: Option<&SnapshotRecord>,
    ) -> Result<Vec<(i64, Vec<Delta>)>> {
        let columns = DELTA_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM kr_evidence e JOIN kr_snapshots s ON s.id = e.snapshot_id \
             WHERE e.kr_id = $1 AND (s.at_ms < $2 OR (s.at_ms = $2 AND s.id <= $3)) \
             ORDER BY s.at_ms, s.id"
        );
        let rows = sqlx::query(&sql)
            .bind(kr_id)
            .bind(until.map_or(i64::MAX, |s| s.at.timestamp_millis()))
            .bind(until.map_or(i64::MAX, |s| s.id))
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(i64, Vec<Delta>)> = Vec::new();
        for row in &rows {
            let (snapshot, delta) = decode_delta(row)?;
            match out.last_mut() {
                Some((id, deltas)) if *id == snapshot => deltas.push(delta),
                _ => out.push((snapshot, vec![delta])),
            }
        }
        Ok(out)
    }

    /// Titles and URLs of the stored items among `ids` (items deleted since are absent).
    pub async fn item_labels(
        &self,
        ids: &[(String, String)],
    ) -> Result<BTreeMap<(String, String), (String, String)>> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(CHUNK) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "SELECT source, ext_id, title, url FROM items WHERE (source, ext_id) IN ({})",
                pairs.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, String, String, String)>(&sql);
            for (s, e) in chunk {
                q = q.bind(s.as_str()).bind(e.as_str());
            }
            for (s, e, title, url) in q.fetch_all(&self.pool).await? {
                out.insert((s, e), (title, url));
            }
        }
        Ok(out)
    }

    /// A KR's check-ins by id: value and author.
    pub async fn checkin_authors(
        &self,
        kr_id: &str,
    ) -> Result<BTreeMap<i64, (f64, Option<String>)>> {
        let rows: Vec<(i64, f64, Option<String>)> =
            sqlx::query_as("SELECT id, value, author FROM checkins WHERE kr_id = $1")
                .bind(kr_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, v, a)| (id, (v, a))).collect())
    }

    /// The scope of a KR as its snapshot showed it.
    pub async fn scope_at(&self, kr_id: &str, snapshot: &SnapshotRecord) -> Result<Scope> {
        let mut scope = Scope::new();
        for (_, deltas) in self.evidence(kr_id, Some(snapshot)).await? {
            crate::evidence::replay(&mut scope, &deltas);
        }
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_helpers() {
        assert_eq!(
            cast_last(&placeholders(2, 2), 2),
            "($1, CAST($2 AS DOUBLE PRECISION)), ($3, CAST($4 AS DOUBLE PRECISION))"
        );
    }
}
