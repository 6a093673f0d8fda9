//! The evidence ledger: per KR snapshot, the deltas of its scope (`kr_evidence`), and each
//! KR's scope as of its latest snapshot (`kr_scope`, what the next deltas are taken
//! against). Writes are set statements (a few per snapshot, whatever its size); reads
//! replay a KR's deltas up to a snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use serde::Serialize;

use super::sets::{bind_rows, pack, unpack, Col};
use super::{from_ms, get, opt_f64, Result, Store, StoreError, Tx};
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

/// A delta as the evidence statement's JSON row (the column order of `EVIDENCE_COLUMNS`).
#[derive(Serialize)]
struct DeltaOut<'a>(
    i64,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    f64,
    i64,
    &'a str,
    Option<&'a str>,
    Option<i64>,
    Option<f64>,
);

const EVIDENCE_COLUMNS: [Col; 13] = [
    Col::Int,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Float,
    Col::Int,
    Col::Text,
    Col::Text,
    Col::Int,
    Col::Float,
];

/// A scope entry as a packed row: kr, source, ext_id, key, category, weight, counted, rule.
type EntryRow = (String, String, String, String, String, f64, i64, String);

fn entry_of(row: EntryRow) -> Result<(String, Entry)> {
    let (kr, source, ext_id, key, cat, weight, counted, rule) = row;
    Ok((
        kr,
        Entry {
            source,
            ext_id,
            key,
            category: category(&cat)?,
            weight,
            counted: counted != 0,
            rule,
        },
    ))
}

/// A KR's scope totals: items, their weight, and the weight of those that count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScopeTotals {
    pub items: u64,
    pub total: f64,
    pub counted: f64,
}

impl Tx {
    /// A KR's scope as of its latest snapshot.
    pub async fn scope(&mut self, kr_id: &str) -> Result<Scope> {
        let sql = self.backend.packed(
            "kr_id, source, ext_id, item_key, category, weight, counted, rule_id",
            "FROM kr_scope WHERE kr_id = $1",
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(kr_id)
            .fetch_one(&mut *self.tx)
            .await?;
        let mut scope = Scope::new();
        for row in unpack::<EntryRow>(&text)? {
            let (_, e) = entry_of(row)?;
            scope.insert(e.id(), e);
        }
        Ok(scope)
    }

    /// The scope entries of these `(kr_id, ext_id)` pairs of `source` (an item's matches
    /// name the KRs whose scope it is in), as `(kr_id, entry)`.
    pub async fn scope_entries_of(
        &mut self,
        source: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<(String, Entry)>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.backend.packed(
            "s.kr_id, s.source, s.ext_id, s.item_key, s.category, s.weight, s.counted, s.rule_id",
            &format!(
                "FROM ({}) AS r JOIN kr_scope s ON s.kr_id = r.c0 AND s.source = $1 \
                 AND s.ext_id = r.c1",
                self.backend.json_rows("$2", &[Col::Text, Col::Text])
            ),
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(pack(pairs))
            .fetch_one(&mut *self.tx)
            .await?;
        unpack::<EntryRow>(&text)?
            .into_iter()
            .map(entry_of)
            .collect()
    }

    /// Records deltas, each under its snapshot (one statement per set of [`Backend::rows_per_statement`] rows).
    pub async fn insert_evidence(&mut self, deltas: &[(i64, &str, &Delta)]) -> Result<()> {
        self.insert_deltas(deltas).await
    }

    /// Moves KRs' stored scopes by these deltas: at most two statements, whatever the
    /// number of deltas and KRs.
    pub async fn move_scope(&mut self, deltas: &[(&str, &Delta)]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let left: Vec<(&str, &str, &str)> = deltas
            .iter()
            .filter_map(|(kr, d)| match d {
                Delta::Left(e) => Some((*kr, e.source.as_str(), e.ext_id.as_str())),
                _ => None,
            })
            .collect();
        const KEY: [Col; 3] = [Col::Text, Col::Text, Col::Text];
        for chunk in left.chunks(self.backend.rows_per_statement(KEY.len())) {
            let sql = format!(
                "DELETE FROM kr_scope WHERE (kr_id, source, ext_id) IN ({})",
                self.backend.rows_relation(1, chunk.len(), &KEY)
            );
            bind_rows(self.backend, sqlx::query(&sql), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        type ScopeOut<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            f64,
            i64,
            &'a str,
        );
        let present: Vec<ScopeOut> = deltas
            .iter()
            .filter_map(|(kr, d)| match d {
                Delta::Entered(e) | Delta::Changed { to: e, .. } => Some((
                    *kr,
                    e.source.as_str(),
                    e.ext_id.as_str(),
                    e.key.as_str(),
                    e.category.as_str(),
                    e.weight,
                    i64::from(e.counted),
                    e.rule.as_str(),
                )),
                Delta::Left(_) => None,
            })
            .collect();
        const SCOPE: [Col; 8] = [
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Float,
            Col::Int,
            Col::Text,
        ];
        for chunk in present.chunks(self.backend.rows_per_statement(SCOPE.len())) {
            let sql = format!(
                "INSERT INTO kr_scope (kr_id, source, ext_id, item_key, category, weight, counted, \
                 rule_id) SELECT r.c0, r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7 FROM ({}) AS r \
                 WHERE true ON CONFLICT (kr_id, source, ext_id) DO UPDATE SET \
                 item_key = excluded.item_key, category = excluded.category, \
                 weight = excluded.weight, counted = excluded.counted, rule_id = excluded.rule_id",
                self.backend.rows_relation(1, chunk.len(), &SCOPE)
            );
            bind_rows(self.backend, sqlx::query(&sql), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Takes back the deltas these items of `source` have under these (not yet final)
    /// snapshots: an item changed twice in one step gets one delta, from what it was
    /// before the step to what it is after.
    pub async fn take_deltas(
        &mut self,
        snapshots: &[i64],
        source: &str,
        ext_ids: &[&str],
    ) -> Result<Vec<(i64, String, Delta)>> {
        if snapshots.is_empty() || ext_ids.is_empty() {
            return Ok(Vec::new());
        }
        let from = format!(
            "FROM kr_evidence WHERE snapshot_id IN ({}) AND source = $2 AND ext_id IN ({})",
            match self.backend {
                super::Backend::Sqlite => "SELECT value FROM json_each($1)".to_string(),
                super::Backend::Postgres =>
                    "SELECT json_array_elements_text($1::json)::BIGINT".to_string(),
            },
            self.backend.json_texts("$3")
        );
        let sql = self.backend.packed(
            "snapshot_id, kr_id, source, ext_id, item_key, change, category, weight, counted, \
             rule_id, prev_category, prev_counted, prev_weight",
            &from,
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(pack(snapshots))
            .bind(source)
            .bind(pack(ext_ids))
            .fetch_one(&mut *self.tx)
            .await?;
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            f64,
            i64,
            String,
            Option<String>,
            Option<i64>,
            Option<f64>,
        );
        let mut out = Vec::new();
        for row in unpack::<Row>(&text)? {
            let (snapshot, kr, source, ext_id, key, change, cat, weight, counted, rule) = (
                row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
            );
            let entry = Entry {
                source,
                ext_id,
                key,
                category: category(&cat)?,
                weight,
                counted: counted != 0,
                rule,
            };
            let delta = match change.as_str() {
                "entered" => Delta::Entered(entry),
                "left" => Delta::Left(entry),
                "changed" => {
                    let mut from = entry.clone();
                    if let Some(c) = &row.10 {
                        from.category = category(c)?;
                    }
                    if let Some(c) = row.11 {
                        from.counted = c != 0;
                    }
                    if let Some(w) = row.12 {
                        from.weight = w;
                    }
                    Delta::Changed { from, to: entry }
                }
                other => return Err(StoreError::Corrupt(format!("evidence change {other}"))),
            };
            out.push((snapshot, kr, delta));
        }
        let sql = format!("DELETE {from}");
        sqlx::query(&sql)
            .bind(pack(snapshots))
            .bind(source)
            .bind(pack(ext_ids))
            .execute(&mut *self.tx)
            .await?;
        Ok(out)
    }

    /// The totals of these KRs' stored scopes, summed by the database.
    pub async fn scope_totals(&mut self, kr_ids: &[&str]) -> Result<BTreeMap<String, ScopeTotals>> {
        if kr_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT kr_id, COUNT(*), CAST(COALESCE(SUM(weight), 0.0) AS DOUBLE PRECISION), \
             CAST(COALESCE(SUM(CASE WHEN counted <> 0 THEN weight ELSE 0.0 END), 0.0) \
             AS DOUBLE PRECISION) \
             FROM kr_scope WHERE kr_id IN ({}) GROUP BY kr_id",
            self.backend.json_texts("$1")
        );
        let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(&sql)
            .bind(pack(kr_ids))
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(kr, n, total, counted)| {
                (
                    kr,
                    ScopeTotals {
                        items: n as u64,
                        // `+ 0.0`: an empty sum is 0, never -0.
                        total: total + 0.0,
                        counted: counted + 0.0,
                    },
                )
            })
            .collect())
    }

    /// A KR's stored scope with the dates of its items: what its history is rebuilt from.
    /// Read 5,000 at a time (a packed read is copied a few times on its way).
    pub async fn dated_scope(&mut self, kr_id: &str) -> Result<Vec<crate::evidence::Dated>> {
        let sql = self.backend.packed(
            "s.kr_id, s.source, s.ext_id, s.item_key, s.category, s.weight, s.counted, \
             s.rule_id, i.created_ms, CASE WHEN i.category = 'done' \
             THEN COALESCE(i.resolved_ms, i.updated_ms) END",
            "FROM (SELECT * FROM kr_scope WHERE kr_id = $1 AND (source, ext_id) > ($2, $3) \
             ORDER BY source, ext_id LIMIT 5000) AS s \
             JOIN items i ON i.source = s.source AND i.ext_id = s.ext_id",
            Some("s.source, s.ext_id"),
        );
        type Row = (
            String,
            String,
            String,
            String,
            String,
            f64,
            i64,
            String,
            Option<i64>,
            Option<i64>,
        );
        let mut out = Vec::new();
        let mut after = (String::new(), String::new());
        loop {
            let (text,): (String,) = sqlx::query_as(&sql)
                .bind(kr_id)
                .bind(&after.0)
                .bind(&after.1)
                .fetch_one(&mut *self.tx)
                .await?;
            let rows = unpack::<Row>(&text)?;
            drop(text);
            let Some(last) = rows.last() else { break };
            after = (last.1.clone(), last.2.clone());
            for r in rows {
                let (_, entry) = entry_of((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7))?;
                out.push(crate::evidence::Dated {
                    entry,
                    created: r.8.map(from_ms),
                    done_at: r.9.map(from_ms),
                });
            }
        }
        Ok(out)
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
        let rows: Vec<(i64, &str, &Delta)> = deltas.iter().map(|d| (id, kr_id, d)).collect();
        self.insert_deltas(&rows).await?;
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

    /// Inserts deltas a statement per set of [`Backend::rows_per_statement`] rows.
    async fn insert_deltas(&mut self, deltas: &[(i64, &str, &Delta)]) -> Result<()> {
        for chunk in deltas.chunks(self.backend.rows_per_statement(EVIDENCE_COLUMNS.len())) {
            let sql = format!(
                "INSERT INTO kr_evidence (snapshot_id, kr_id, source, ext_id, item_key, change, \
                 category, weight, counted, rule_id, prev_category, prev_counted, prev_weight) \
                 SELECT r.c0, r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9, r.c10, \
                 r.c11, r.c12 FROM ({}) AS r",
                self.backend
                    .rows_relation(1, chunk.len(), &EVIDENCE_COLUMNS)
            );
            let rows: Vec<DeltaOut> = chunk
                .iter()
                .map(|(snapshot, kr, d)| {
                    let (change, e, prev) = match d {
                        Delta::Entered(e) => ("entered", e, None),
                        Delta::Left(e) => ("left", e, None),
                        Delta::Changed { from, to } => ("changed", to, Some(from)),
                    };
                    DeltaOut(
                        *snapshot,
                        kr,
                        &e.source,
                        &e.ext_id,
                        &e.key,
                        change,
                        e.category.as_str(),
                        e.weight,
                        i64::from(e.counted),
                        &e.rule,
                        prev.map(|p| p.category.as_str()),
                        prev.map(|p| i64::from(p.counted)),
                        prev.map(|p| p.weight),
                    )
                })
                .collect();
            bind_rows(self.backend, sqlx::query(&sql), &rows)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Says which sync run made these snapshots (known once the run is recorded).
    pub async fn link_snapshots_to_run(&mut self, snapshots: &[i64], run_id: i64) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE kr_snapshots SET run_id = $1 WHERE id IN ({})",
            match self.backend {
                super::Backend::Sqlite => "SELECT value FROM json_each($2)".to_string(),
                super::Backend::Postgres =>
                    "SELECT json_array_elements_text($2::json)::BIGINT".to_string(),
            }
        );
        sqlx::query(&sql)
            .bind(run_id)
            .bind(pack(snapshots))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
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
