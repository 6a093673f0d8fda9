//! What a sync step writes about items, as set statements: a page's stored versions in one
//! read, its changed items in one upsert, their matches and their parents' child counts in
//! one statement each, deletions likewise. No statement per item on either backend (see
//! [`super::sets`]).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use super::sets::{bind_rows, pack, unpack, Col};
use super::{Backend, Result, Tx};
use crate::model::Item;

/// Stored matches as read ([`Tx::matches_in_range`]), decoded on demand into rows that
/// borrow from the text (hundreds of thousands of rows when every item is matched again:
/// no strings of their own).
pub struct StoredMatches(pub(super) String);

/// `(source, ext_id, kr_id, rule_id)` of a stored match.
#[derive(Debug, serde::Deserialize)]
pub struct MatchRow<'a>(
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
    #[serde(borrow)] pub Cow<'a, str>,
);

impl StoredMatches {
    pub fn rows(&self) -> Result<Vec<MatchRow<'_>>> {
        unpack(&self.0)
    }
}

/// What the store holds of an item a step may replace or delete: its version, and what it
/// said to its epic and parent.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub ext_id: String,
    pub key: String,
    pub updated_ms: i64,
    pub content_hash: Option<String>,
    pub epic: Option<String>,
    pub parent: Option<String>,
    pub abandoned: bool,
    pub exempt: bool,
}

impl StoredItem {
    /// Its links as a child, given the KRs it moved.
    pub fn links(&self, krs: Vec<String>) -> ChildLinks {
        ChildLinks::of(
            &self.key,
            self.epic.as_deref(),
            self.parent.as_deref(),
            self.abandoned,
            krs,
            self.exempt,
        )
    }
}

/// An item as a child: the epic and parent it names (each at most once, itself never,
/// nothing when abandoned), the KRs it moves and whether it is exempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChildLinks {
    pub ups: Vec<String>,
    pub krs: Vec<String>,
    pub exempt: bool,
}

impl ChildLinks {
    /// The links of an item with these fields (SPEC.md, "Unaligned work"): its `epic` and
    /// its `parent` when they name another item, the parent only when it is not also the
    /// epic; none for an abandoned item (it left every KR's scope).
    pub fn of(
        key: &str,
        epic: Option<&str>,
        parent: Option<&str>,
        abandoned: bool,
        krs: Vec<String>,
        exempt: bool,
    ) -> ChildLinks {
        let mut ups = Vec::new();
        if !abandoned {
            if let Some(e) = epic.filter(|e| !e.is_empty() && *e != key) {
                ups.push(e.to_string());
            }
            if let Some(p) = parent.filter(|p| !p.is_empty() && *p != key && epic != Some(*p)) {
                ups.push(p.to_string());
            }
        }
        ChildLinks { ups, krs, exempt }
    }
}

/// Changes to what children say to their epics and parents, within one source: per `up`,
/// children, moving and exempt ones; per `(up, kr)`, the children that move the KR.
#[derive(Debug, Default)]
pub struct ChildDeltas {
    counts: HashMap<String, [i64; 3]>,
    krs: HashMap<(String, String), i64>,
}

impl ChildDeltas {
    pub fn add(&mut self, links: &ChildLinks, sign: i64) {
        for up in &links.ups {
            let d = self.counts.entry(up.clone()).or_insert([0; 3]);
            d[0] += sign;
            d[1] += sign * i64::from(!links.krs.is_empty());
            d[2] += sign * i64::from(links.exempt);
            for kr in &links.krs {
                *self.krs.entry((up.clone(), kr.clone())).or_insert(0) += sign;
            }
        }
    }
}

/// Every child's link to its epic or parent: `(source, up, ext_id, match_count,
/// exempt_rule)`, once per pair (a Jira story under an epic names it as both), abandoned
/// items left out. The same reading as [`ChildLinks::of`].
pub(crate) const LINKS: &str = "\
    SELECT c.source, c.epic AS up, c.ext_id, c.match_count, c.exempt_rule FROM items c \
     WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0 \
    UNION ALL \
    SELECT c.source, c.parent AS up, c.ext_id, c.match_count, c.exempt_rule FROM items c \
     WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key AND c.abandoned = 0 \
       AND (c.epic IS NULL OR c.epic <> c.parent)";

/// An item as the upsert statement's JSON row (the column order of `ITEM_INSERT`).
#[derive(Serialize)]
struct ItemOut<'a>(
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    String,
    String,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<f64>,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    Option<&'a str>,
    i64,
    i64,
    &'a str,
    i64,
);

const ITEM_COLUMNS: [(&str, Col); 26] = [
    ("source", Col::Text),
    ("ext_id", Col::Text),
    ("key", Col::Text),
    ("kind", Col::Text),
    ("title", Col::Text),
    ("url", Col::Text),
    ("project", Col::Text),
    ("item_type", Col::Text),
    ("status", Col::Text),
    ("category", Col::Text),
    ("labels", Col::Text),
    ("components", Col::Text),
    ("epic", Col::Text),
    ("parent", Col::Text),
    ("milestone", Col::Text),
    ("assignee", Col::Text),
    ("estimate", Col::Float),
    ("created_ms", Col::Int),
    ("updated_ms", Col::Int),
    ("resolved_ms", Col::Int),
    ("fields", Col::Text),
    ("exempt_rule", Col::Text),
    ("synced_ms", Col::Int),
    ("abandoned", Col::Int),
    ("content_hash", Col::Text),
    ("match_count", Col::Int),
];

/// An item to write, with what the rules said about it.
pub struct ItemWrite<'a> {
    pub item: &'a Item,
    pub exempt_rule: Option<&'a str>,
    pub match_count: usize,
    /// [`super::content_hash`] of the item.
    pub content_hash: &'a str,
}

/// Where a source's stored items are read from, in keyset order: `(ext_id, key)` of up
/// to `limit` items after `after`.
pub type IdPage = Vec<(String, String)>;

impl Tx {
    /// The stored state of each of these items of `source` that exists.
    pub async fn stored_items(
        &mut self,
        source: &str,
        ext_ids: &[&str],
    ) -> Result<HashMap<String, StoredItem>> {
        if ext_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = self.backend.packed(
            "ext_id, key, updated_ms, content_hash, epic, parent, abandoned, \
             CASE WHEN exempt_rule IS NULL THEN 0 ELSE 1 END, match_count",
            &match self.backend {
                Backend::Sqlite => format!(
                    "FROM items WHERE source = $1 AND ext_id IN ({})",
                    self.backend.json_texts("$2")
                ),
                // One primary-key lookup per id, whatever the statistics say: a generic
                // plan made while a first sync's table was small (a hash join over a scan
                // of the source's items) would scan the growing table for every page —
                // 25 of a 100,000-item first sync's 27 s. `LIMIT 1` keeps the lookup a
                // subquery per id rather than a join the planner may turn around.
                Backend::Postgres => "FROM jsonb_array_elements_text($2::jsonb) AS e(wanted) \
                    CROSS JOIN LATERAL (SELECT * FROM items WHERE items.source = $1 \
                    AND items.ext_id = e.wanted LIMIT 1) AS items"
                    .to_string(),
            },
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(pack(ext_ids))
            .fetch_one(&mut *self.tx)
            .await?;
        type Row = (
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            i64,
            i64,
        );
        let rows: Vec<Row> = unpack(&text)?;
        Ok(rows
            .into_iter()
            .map(
                |(ext_id, key, updated_ms, content_hash, epic, parent, abandoned, exempt, _)| {
                    (
                        ext_id.clone(),
                        StoredItem {
                            ext_id,
                            key,
                            updated_ms,
                            content_hash,
                            epic,
                            parent,
                            abandoned: abandoned != 0,
                            exempt: exempt != 0,
                        },
                    )
                },
            )
            .collect())
    }

    /// Inserts or replaces these items (one statement).
    pub async fn upsert_items(&mut self, items: &[ItemWrite<'_>], now_ms: i64) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let rows: Vec<ItemOut> = items
            .iter()
            .map(|w| {
                let i = w.item;
                ItemOut(
                    &i.source,
                    &i.ext_id,
                    &i.key,
                    i.kind.as_str(),
                    &i.title,
                    &i.url,
                    &i.project,
                    &i.item_type,
                    &i.status,
                    i.category.as_str(),
                    serde_json::to_string(&i.labels).unwrap_or_else(|_| "[]".into()),
                    serde_json::to_string(&i.components).unwrap_or_else(|_| "[]".into()),
                    i.epic.as_deref(),
                    i.parent.as_deref(),
                    i.milestone.as_deref(),
                    i.assignee.as_deref(),
                    i.estimate,
                    i.created.map(|t| t.timestamp_millis()),
                    i.updated.timestamp_millis(),
                    i.resolved.map(|t| t.timestamp_millis()),
                    serde_json::to_string(&i.fields).unwrap_or_else(|_| "{}".into()),
                    w.exempt_rule,
                    now_ms,
                    i64::from(i.abandoned),
                    w.content_hash,
                    w.match_count as i64,
                )
            })
            .collect();
        let names: Vec<&str> = ITEM_COLUMNS.iter().map(|(n, _)| *n).collect();
        let types: Vec<Col> = ITEM_COLUMNS.iter().map(|(_, t)| *t).collect();
        let picks: Vec<String> = (0..names.len()).map(|i| format!("r.c{i}")).collect();
        let updates: Vec<String> = names[2..]
            .iter()
            .map(|n| format!("{n} = excluded.{n}"))
            .collect();
        for chunk in rows.chunks(self.backend.rows_per_statement(types.len())) {
            let sql = format!(
                "INSERT INTO items ({}) SELECT {} FROM ({}) AS r WHERE true \
                 ON CONFLICT (source, ext_id) DO UPDATE SET {}",
                names.join(", "),
                picks.join(", "),
                self.backend.rows_relation(1, chunk.len(), &types),
                updates.join(", ")
            );
            bind_rows(self.backend, sqlx::query(&sql), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// `(ext_id, kr_id, rule_id)` of the current matches of these items of `source`.
    pub async fn matches_of_items(
        &mut self,
        source: &str,
        ext_ids: &[&str],
    ) -> Result<Vec<(String, String, String)>> {
        if ext_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.backend.packed(
            "ext_id, kr_id, rule_id",
            &match self.backend {
                Backend::Sqlite => format!(
                    "FROM matches WHERE source = $1 AND ext_id IN ({})",
                    self.backend.json_texts("$2")
                ),
                // Key lookups per id whatever the plan cache holds (see `stored_items`);
                // `OFFSET 0` keeps the subquery from being pulled up into a join.
                Backend::Postgres => "FROM jsonb_array_elements_text($2::jsonb) AS e(wanted) \
                    CROSS JOIN LATERAL (SELECT * FROM matches WHERE matches.source = $1 \
                    AND matches.ext_id = e.wanted OFFSET 0) AS matches"
                    .to_string(),
            },
            Some("ext_id, kr_id"),
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(pack(ext_ids))
            .fetch_one(&mut *self.tx)
            .await?;
        unpack(&text)
    }

    /// The matches of the items from `first` to `last` in `(source, ext_id)` order, both
    /// included: one range of the key.
    pub async fn matches_in_range(
        &mut self,
        first: (&str, &str),
        last: (&str, &str),
    ) -> Result<StoredMatches> {
        let sql = self.backend.packed(
            "source, ext_id, kr_id, rule_id",
            "FROM matches WHERE (source, ext_id) >= ($1, $2) AND (source, ext_id) <= ($3, $4)",
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(first.0)
            .bind(first.1)
            .bind(last.0)
            .bind(last.1)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(StoredMatches(text))
    }

    /// Replaces the matches of these items of `source` (`drop`: those whose matches go, old
    /// ones; `add`: `(ext_id, kr_id, rule_id)` to insert).
    pub async fn replace_item_matches(
        &mut self,
        source: &str,
        drop: &[&str],
        add: &[(&str, &str, &str)],
    ) -> Result<()> {
        if !drop.is_empty() {
            let sql = format!(
                "DELETE FROM matches WHERE source = $1 AND ext_id IN ({})",
                self.backend.json_texts("$2")
            );
            sqlx::query(&sql)
                .bind(source)
                .bind(pack(drop))
                .execute(&mut *self.tx)
                .await?;
        }
        const COLS: [Col; 3] = [Col::Text, Col::Text, Col::Text];
        for chunk in add.chunks(self.backend.rows_per_statement(COLS.len())) {
            let sql = format!(
                "INSERT INTO matches (source, ext_id, kr_id, rule_id) \
                 SELECT {}, r.c0, r.c1, r.c2 FROM ({}) AS r",
                self.backend.param(1),
                self.backend.rows_relation(2, chunk.len(), &COLS)
            );
            bind_rows(self.backend, sqlx::query(&sql).bind(source), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Adds these deltas to the child counts and child KRs of `source`'s epics and
    /// parents (two statements at most).
    pub async fn apply_child_deltas(&mut self, source: &str, deltas: &ChildDeltas) -> Result<()> {
        let rows: Vec<(&str, i64, i64, i64)> = deltas
            .counts
            .iter()
            .filter(|(_, d)| **d != [0; 3])
            .map(|(up, d)| (up.as_str(), d[0], d[1], d[2]))
            .collect();
        const COUNTS: [Col; 4] = [Col::Text, Col::Int, Col::Int, Col::Int];
        for chunk in rows.chunks(self.backend.rows_per_statement(COUNTS.len())) {
            let sql = format!(
                "INSERT INTO child_counts (source, up, children, moving, exempt) \
                 SELECT {}, r.c0, r.c1, r.c2, r.c3 FROM ({}) AS r WHERE true \
                 ON CONFLICT (source, up) DO UPDATE SET \
                 children = child_counts.children + excluded.children, \
                 moving = child_counts.moving + excluded.moving, \
                 exempt = child_counts.exempt + excluded.exempt",
                self.backend.param(1),
                self.backend.rows_relation(2, chunk.len(), &COUNTS)
            );
            bind_rows(self.backend, sqlx::query(&sql).bind(source), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        let rows: Vec<(&str, &str, i64)> = deltas
            .krs
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|((up, kr), n)| (up.as_str(), kr.as_str(), *n))
            .collect();
        const KRS: [Col; 3] = [Col::Text, Col::Text, Col::Int];
        for chunk in rows.chunks(self.backend.rows_per_statement(KRS.len())) {
            let sql = format!(
                "INSERT INTO child_krs (source, up, kr_id, n) \
                 SELECT {}, r.c0, r.c1, r.c2 FROM ({}) AS r WHERE true \
                 ON CONFLICT (source, up, kr_id) DO UPDATE SET n = child_krs.n + excluded.n",
                self.backend.param(1),
                self.backend.rows_relation(2, chunk.len(), &KRS)
            );
            bind_rows(self.backend, sqlx::query(&sql).bind(source), chunk)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Rewrites what the rules say of these items of `source`: `(ext_id, exempt rule,
    /// how many KRs it moves)`.
    pub async fn set_alignment(
        &mut self,
        source: &str,
        rows: &[(&str, Option<&str>, i64)],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // A materialized set: as a plain subquery SQLite walks every item of the source
        // and scans the whole JSON array for each (minutes for 100,000 items); so the
        // rows come first, each finding its item by the primary key.
        let sql = format!(
            "WITH r AS MATERIALIZED ({}) UPDATE items SET exempt_rule = r.c1, match_count = r.c2 \
             FROM r WHERE items.source = $1 AND items.ext_id = r.c0",
            self.backend
                .json_rows("$2", &[Col::Text, Col::Text, Col::Int])
        );
        sqlx::query(&sql)
            .bind(source)
            .bind(pack(rows))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Drops the child counts that reached zero (a parent nobody names any more, a KR
    /// no child moves).
    pub async fn prune_child_counts(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM child_counts WHERE children = 0")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM child_krs WHERE n = 0")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Counts every parent's children and their KRs again from the items (after every
    /// item was matched again).
    pub async fn rebuild_child_counts(&mut self) -> Result<()> {
        for table in ["child_counts", "child_krs"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query(&format!(
            "INSERT INTO child_counts (source, up, children, moving, exempt) \
             SELECT source, up, COUNT(*), \
                    SUM(CASE WHEN match_count > 0 THEN 1 ELSE 0 END), \
                    SUM(CASE WHEN exempt_rule IS NULL THEN 0 ELSE 1 END) \
             FROM ({LINKS}) links GROUP BY source, up"
        ))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO child_krs (source, up, kr_id, n) \
             SELECT links.source, links.up, m.kr_id, COUNT(*) FROM ({LINKS}) links \
             JOIN matches m ON m.source = links.source AND m.ext_id = links.ext_id \
             GROUP BY links.source, links.up, m.kr_id"
        ))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// SQLite, a first sync into an empty `items` table: its secondary indexes (project,
    /// epic, (source, key)) are dropped inside the step's transaction and returned as the
    /// statements that build them again ([`Tx::rebuild_indexes`], after the step's pages):
    /// `CREATE INDEX` sorts 100,000 rows once, where each row's insert into three more
    /// B-trees cost a third of the first sync's upsert. Taken from the schema itself, so
    /// the indexes come back as the migrations made them; a step that fails rolls the
    /// drop back with everything else. Nothing otherwise (PostgreSQL, or items stored).
    pub async fn suspend_item_indexes(&mut self) -> Result<Vec<String>> {
        if self.backend != Backend::Sqlite {
            return Ok(Vec::new());
        }
        let (any,): (i64,) =
            sqlx::query_as("SELECT CASE WHEN EXISTS (SELECT 1 FROM items) THEN 1 ELSE 0 END")
                .fetch_one(&mut *self.tx)
                .await?;
        if any != 0 {
            return Ok(Vec::new());
        }
        // Autoindexes (the primary key) have no SQL and stay.
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = 'items' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let mut rebuild = Vec::with_capacity(indexes.len());
        for (name, sql) in indexes {
            sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
                .execute(&mut *self.tx)
                .await?;
            rebuild.push(sql);
        }
        Ok(rebuild)
    }

    /// Builds the indexes [`Tx::suspend_item_indexes`] dropped.
    pub async fn rebuild_indexes(&mut self, statements: &[String]) -> Result<()> {
        for sql in statements {
            sqlx::query(sql).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Whether any item of `source` is stored.
    pub async fn holds_items(&mut self, source: &str) -> Result<bool> {
        let (any,): (i64,) = sqlx::query_as(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM items WHERE source = $1) THEN 1 ELSE 0 END",
        )
        .bind(source)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(any != 0)
    }

    /// Up to `limit` stored items of `source` after `after` (by `ext_id`), as `(ext_id,
    /// key)`: a full pass walks every stored id this way to find deletions.
    pub async fn item_ids_after(
        &mut self,
        source: &str,
        after: &str,
        limit: i64,
    ) -> Result<IdPage> {
        let sql = self.backend.packed(
            "ext_id, key",
            "FROM (SELECT ext_id, key FROM items WHERE source = $1 AND ext_id > $2 \
             ORDER BY ext_id LIMIT $3) AS page",
            Some("ext_id"),
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(after)
            .bind(limit)
            .fetch_one(&mut *self.tx)
            .await?;
        unpack(&text)
    }

    /// Deletes these items of `source` and their matches.
    pub async fn delete_items(&mut self, source: &str, ext_ids: &[&str]) -> Result<()> {
        if ext_ids.is_empty() {
            return Ok(());
        }
        for table in ["matches", "items"] {
            let sql = format!(
                "DELETE FROM {table} WHERE source = $1 AND ext_id IN ({})",
                self.backend.json_texts("$2")
            );
            sqlx::query(&sql)
                .bind(source)
                .bind(pack(ext_ids))
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }
}

impl super::Store {
    /// What differs between the counts a sync step keeps (`items.match_count`,
    /// `child_counts`, `child_krs`) and counting them again from the items and matches, in
    /// words; empty when they agree. For tests and for an operator who suspects drift.
    pub async fn materialized_drift(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let counts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT i.source, i.ext_id, i.match_count FROM items i WHERE i.match_count <> \
             (SELECT COUNT(*) FROM matches m WHERE m.source = i.source AND m.ext_id = i.ext_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        out.extend(
            counts
                .into_iter()
                .map(|(s, e, n)| format!("items {s}/{e}: match_count {n} is not its matches")),
        );
        let kept: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT source, up, children, moving, exempt FROM child_counts WHERE children <> 0 \
             ORDER BY source, up",
        )
        .fetch_all(&self.pool)
        .await?;
        let fresh: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT source, up, COUNT(*), SUM(CASE WHEN match_count > 0 THEN 1 ELSE 0 END), \
             SUM(CASE WHEN exempt_rule IS NULL THEN 0 ELSE 1 END) FROM ({LINKS}) links \
             GROUP BY source, up ORDER BY source, up"
        ))
        .fetch_all(&self.pool)
        .await?;
        if kept != fresh {
            out.push(format!(
                "child_counts: kept {} rows, counted {}: first difference {:?}",
                kept.len(),
                fresh.len(),
                kept.iter()
                    .zip(&fresh)
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| (a.clone(), b.clone()))
            ));
        }
        let kept: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT source, up, kr_id, n FROM child_krs WHERE n <> 0 ORDER BY source, up, kr_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let fresh: Vec<(String, String, String, i64)> = sqlx::query_as(&format!(
            "SELECT links.source, links.up, m.kr_id, COUNT(*) FROM ({LINKS}) links \
             JOIN matches m ON m.source = links.source AND m.ext_id = links.ext_id \
             GROUP BY links.source, links.up, m.kr_id ORDER BY links.source, links.up, m.kr_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        if kept != fresh {
            out.push(format!(
                "child_krs: kept {} rows, counted {}",
                kept.len(),
                fresh.len()
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_links_to_its_epic_and_its_parent_once_each() {
        let krs = || vec!["kr".to_string()];
        let l = ChildLinks::of("PAY-3", Some("PAY-1"), Some("PAY-1"), false, krs(), false);
        assert_eq!(l.ups, vec!["PAY-1"]);
        let l = ChildLinks::of("PAY-3", Some("PAY-1"), Some("PAY-2"), false, vec![], true);
        assert_eq!(l.ups, vec!["PAY-1", "PAY-2"]);
        let l = ChildLinks::of("PAY-3", None, Some("PAY-2"), false, vec![], false);
        assert_eq!(l.ups, vec!["PAY-2"]);
        // Itself, empty keys and abandoned items link to nothing.
        assert!(
            ChildLinks::of("PAY-3", Some("PAY-3"), Some(""), false, krs(), true)
                .ups
                .is_empty()
        );
        assert!(
            ChildLinks::of("PAY-3", Some("PAY-1"), None, true, krs(), true)
                .ups
                .is_empty()
        );
        let mut d = ChildDeltas::default();
        d.add(
            &ChildLinks::of("A", Some("E"), None, false, krs(), false),
            1,
        );
        d.add(
            &ChildLinks::of("A", Some("E"), None, false, vec![], true),
            -1,
        );
        assert_eq!(d.counts["E"], [0, 1, -1]);
        assert_eq!(d.krs[&("E".to_string(), "kr".to_string())], 1);
    }
}
