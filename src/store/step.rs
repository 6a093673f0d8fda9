//! What a sync step writes about items, as set statements: a page's stored versions in one
//! read, its changed items in one upsert, their matches and their parents' child counts in
//! one statement each, deletions likewise. No statement per item on either backend (see
//! [`super::sets`]).

use std::collections::HashMap;

use serde::Serialize;

use super::sets::{pack, unpack, Col};
use super::{Backend, Result, Tx};
use crate::model::Item;

/// What the store holds of an item a step may replace or delete: its version, and what it
/// contributed to its parents' child counts.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub ext_id: String,
    pub key: String,
    pub updated_ms: i64,
    pub content_hash: Option<String>,
    pub links: ChildLinks,
}

/// An item as a child: the epic and parent it names (each at most once, itself never,
/// nothing when abandoned) and what it says to them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChildLinks {
    pub ups: Vec<String>,
    pub moving: bool,
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
        moving: bool,
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
        ChildLinks {
            ups,
            moving,
            exempt,
        }
    }
}

/// Changes to child counts, per `(up)` within one source: children, moving, exempt.
#[derive(Debug, Default)]
pub struct ChildDeltas(HashMap<String, [i64; 3]>);

impl ChildDeltas {
    pub fn add(&mut self, links: &ChildLinks, sign: i64) {
        for up in &links.ups {
            let d = self.0.entry(up.clone()).or_insert([0; 3]);
            d[0] += sign;
            d[1] += sign * i64::from(links.moving);
            d[2] += sign * i64::from(links.exempt);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|d| *d == [0; 3])
    }
}

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
    String,
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
            &format!(
                "FROM items WHERE source = $1 AND ext_id IN ({})",
                self.backend.json_texts("$2")
            ),
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
                |(ext_id, key, updated_ms, content_hash, epic, parent, abandoned, exempt, n)| {
                    let links = ChildLinks::of(
                        &key,
                        epic.as_deref(),
                        parent.as_deref(),
                        abandoned != 0,
                        n > 0,
                        exempt != 0,
                    );
                    (
                        ext_id.clone(),
                        StoredItem {
                            ext_id,
                            key,
                            updated_ms,
                            content_hash,
                            links,
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
                    super::content_hash(i),
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
        let sql = format!(
            "INSERT INTO items ({}) SELECT {} FROM ({}) AS r WHERE true \
             ON CONFLICT (source, ext_id) DO UPDATE SET {}",
            names.join(", "),
            picks.join(", "),
            self.backend.json_rows("$1", &types),
            updates.join(", ")
        );
        sqlx::query(&sql)
            .bind(pack(&rows))
            .execute(&mut *self.tx)
            .await?;
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
            &format!(
                "FROM matches WHERE source = $1 AND ext_id IN ({})",
                self.backend.json_texts("$2")
            ),
            Some("ext_id, kr_id"),
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(pack(ext_ids))
            .fetch_one(&mut *self.tx)
            .await?;
        unpack(&text)
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
        if !add.is_empty() {
            let sql = format!(
                "INSERT INTO matches (source, ext_id, kr_id, rule_id) \
                 SELECT $1, r.c0, r.c1, r.c2 FROM ({}) AS r",
                self.backend
                    .json_rows("$2", &[Col::Text, Col::Text, Col::Text])
            );
            sqlx::query(&sql)
                .bind(source)
                .bind(pack(add))
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Adds these deltas to the child counts of `source`'s epics and parents.
    pub async fn apply_child_deltas(&mut self, source: &str, deltas: &ChildDeltas) -> Result<()> {
        let rows: Vec<(&str, i64, i64, i64)> = deltas
            .0
            .iter()
            .filter(|(_, d)| **d != [0; 3])
            .map(|(up, d)| (up.as_str(), d[0], d[1], d[2]))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO child_counts (source, up, children, moving, exempt) \
             SELECT $1, r.c0, r.c1, r.c2, r.c3 FROM ({}) AS r WHERE true \
             ON CONFLICT (source, up) DO UPDATE SET \
             children = child_counts.children + excluded.children, \
             moving = child_counts.moving + excluded.moving, \
             exempt = child_counts.exempt + excluded.exempt",
            self.backend
                .json_rows("$2", &[Col::Text, Col::Int, Col::Int, Col::Int])
        );
        sqlx::query(&sql)
            .bind(source)
            .bind(pack(&rows))
            .execute(&mut *self.tx)
            .await?;
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
        let sql = format!(
            "UPDATE items SET exempt_rule = r.c1, match_count = r.c2 FROM ({}) AS r \
             WHERE items.source = $1 AND items.ext_id = r.c0",
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

    /// Drops the child counts that reached zero (a parent nobody names any more).
    pub async fn prune_child_counts(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM child_counts WHERE children = 0")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Counts every parent's children again from the items (after every item was matched
    /// again, or when the counts cannot be trusted).
    pub async fn rebuild_child_counts(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM child_counts")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO child_counts (source, up, children, moving, exempt) \
             SELECT source, up, COUNT(*), \
                    SUM(CASE WHEN match_count > 0 THEN 1 ELSE 0 END), \
                    SUM(CASE WHEN exempt_rule IS NULL THEN 0 ELSE 1 END) \
             FROM ( \
                 SELECT c.source, c.epic AS up, c.match_count, c.exempt_rule FROM items c \
                  WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0 \
                 UNION ALL \
                 SELECT c.source, c.parent AS up, c.match_count, c.exempt_rule FROM items c \
                  WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key \
                    AND c.abandoned = 0 AND (c.epic IS NULL OR c.epic <> c.parent) \
             ) links GROUP BY source, up",
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
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

    /// Deletes these items of `source` and their matches; returns what they were (for
    /// their parents' child counts) and the KRs they moved.
    pub async fn delete_items(
        &mut self,
        source: &str,
        ext_ids: &[&str],
    ) -> Result<(Vec<StoredItem>, Vec<String>)> {
        if ext_ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let stored: Vec<StoredItem> = self
            .stored_items(source, ext_ids)
            .await?
            .into_values()
            .collect();
        let mut krs: Vec<String> = self
            .matches_of_items(source, ext_ids)
            .await?
            .into_iter()
            .map(|(_, kr, _)| kr)
            .collect();
        krs.sort();
        krs.dedup();
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
        Ok((stored, krs))
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_links_to_its_epic_and_its_parent_once_each() {
        let l = ChildLinks::of("PAY-3", Some("PAY-1"), Some("PAY-1"), false, true, false);
        assert_eq!(l.ups, vec!["PAY-1"]);
        let l = ChildLinks::of("PAY-3", Some("PAY-1"), Some("PAY-2"), false, false, true);
        assert_eq!(l.ups, vec!["PAY-1", "PAY-2"]);
        let l = ChildLinks::of("PAY-3", None, Some("PAY-2"), false, false, false);
        assert_eq!(l.ups, vec!["PAY-2"]);
        // Itself, empty keys and abandoned items link to nothing.
        assert!(
            ChildLinks::of("PAY-3", Some("PAY-3"), Some(""), false, true, true)
                .ups
                .is_empty()
        );
        assert!(
            ChildLinks::of("PAY-3", Some("PAY-1"), None, true, true, true)
                .ups
                .is_empty()
        );
        let mut d = ChildDeltas::default();
        d.add(&ChildLinks::of("A", Some("E"), None, false, true, false), 1);
        d.add(
            &ChildLinks::of("A", Some("E"), None, false, false, true),
            -1,
        );
        assert_eq!(d.0["E"], [0, 1, -1]);
        assert!(!d.is_empty());
    }
}
