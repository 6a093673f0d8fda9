//! Items and their rule matches.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor};

use super::{from_ms, get, ms, opt_f64, Result, Store, StoreError, Tx};
use crate::model::{Category, Item, ItemKind};

/// A stored item with what the rules said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub item: Item,
    pub exempt_rule: Option<String>,
    /// How many KRs it moves.
    pub match_count: i64,
    /// What its children say (filled in by [`Store::started_items`] only; empty elsewhere).
    pub children: Children,
}

/// An item's children: the items of its source whose `epic` or `parent` is its key
/// (abandoned ones left out, as they left every KR's scope). SPEC.md, "Unaligned work":
/// an epic or parent whose children move a KR is aligned through them; one whose children
/// are all exempt is exempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Children {
    pub count: i64,
    /// Those that move a KR.
    pub moving: i64,
    /// Those an exempt rule matches.
    pub exempt: i64,
}

impl Children {
    /// At least one child moves a KR.
    pub fn align(&self) -> bool {
        self.moving > 0
    }

    /// There are children, none moves a KR and every one is exempt.
    pub fn exempt(&self) -> bool {
        self.count > 0 && self.moving == 0 && self.exempt == self.count
    }
}

impl ItemRow {
    /// Moves no KR and is not exempt, by its own rules or through its children.
    pub fn is_unaligned(&self) -> bool {
        self.match_count == 0
            && self.exempt_rule.is_none()
            && !self.children.align()
            && !self.children.exempt()
    }
}

/// What `moves` selects items by (SPEC.md: `project=`, `repo=`, `epic=`, `label=`, `item=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorKind {
    Project,
    Repo,
    Epic,
    Label,
    Item,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub kind: SelectorKind,
    pub value: String,
}

impl Selector {
    /// Parses `project=PAY`; the error says what is accepted.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            format!("\"{s}\" is not a selector: expected project=KEY, repo=OWNER/NAME, epic=KEY, label=NAME or item=KEY")
        })?;
        let kind = match k.trim() {
            "project" => SelectorKind::Project,
            "repo" => SelectorKind::Repo,
            "epic" => SelectorKind::Epic,
            "label" => SelectorKind::Label,
            "item" => SelectorKind::Item,
            other => {
                return Err(format!(
                    "unknown selector \"{other}\": expected project, repo, epic, label or item"
                ))
            }
        };
        let value = v.trim();
        if value.is_empty() {
            return Err(format!("the selector \"{s}\" has no value"));
        }
        Ok(Selector {
            kind,
            value: value.to_string(),
        })
    }

    pub fn matches(&self, item: &Item) -> bool {
        match self.kind {
            SelectorKind::Project | SelectorKind::Repo => item.project == self.value,
            SelectorKind::Epic => item.epic.as_deref() == Some(self.value.as_str()),
            SelectorKind::Label => item.labels.iter().any(|l| l == &self.value),
            SelectorKind::Item => item.key == self.value,
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            SelectorKind::Project => "project",
            SelectorKind::Repo => "repo",
            SelectorKind::Epic => "epic",
            SelectorKind::Label => "label",
            SelectorKind::Item => "item",
        };
        write!(f, "{k}={}", self.value)
    }
}

/// A digest of everything about an item but its `updated` time.
pub fn content_hash(item: &Item) -> String {
    use sha2::{Digest, Sha256};
    let mut copy = item.clone();
    copy.updated = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let text = serde_json::to_string(&copy).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ITEM_COLUMNS: &str = "i.source, i.ext_id, i.key, i.kind, i.title, i.url, i.project, i.item_type, \
    i.status, i.category, i.labels, i.components, i.epic, i.parent, i.milestone, i.assignee, \
    i.estimate, i.created_ms, i.updated_ms, i.resolved_ms, i.fields, i.exempt_rule, i.abandoned, \
    (SELECT COUNT(*) FROM matches m WHERE m.source = i.source AND m.ext_id = i.ext_id) AS match_count";

/// A CTE `links (source, up, ext_id, exempt_rule)`: every item that names another of its
/// source as its `epic` or `parent` (`up`), once per pair (a Jira story under an epic names
/// it as both: the second branch skips it, cheaper than UNION's sort); abandoned items
/// left out.
const CHILD_LINKS: &str = "links AS (\
    SELECT c.source, c.epic AS up, c.ext_id, c.exempt_rule FROM items c \
     WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0 \
    UNION ALL \
    SELECT c.source, c.parent AS up, c.ext_id, c.exempt_rule FROM items c \
     WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key AND c.abandoned = 0 \
       AND (c.epic IS NULL OR c.epic <> c.parent))";

fn json_list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let text: String = get(row, col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// An item with only what progress and the unaligned report read (category, estimate,
/// updated, resolved) from a row that selected those columns; the rest is empty.
fn bare_item(row: &AnyRow) -> Result<Item> {
    let category: String = get(row, "category")?;
    Ok(Item {
        source: String::new(),
        ext_id: String::new(),
        key: String::new(),
        kind: ItemKind::Issue,
        title: String::new(),
        url: String::new(),
        project: String::new(),
        item_type: String::new(),
        status: String::new(),
        category: Category::parse(&category)
            .ok_or_else(|| StoreError::Corrupt(format!("item category {category}")))?,
        labels: Vec::new(),
        components: Vec::new(),
        epic: None,
        parent: None,
        milestone: None,
        assignee: None,
        estimate: get(row, "estimate")?,
        created: None,
        updated: from_ms(get(row, "updated_ms")?),
        resolved: get::<Option<i64>>(row, "resolved_ms")?.map(from_ms),
        fields: Default::default(),
        abandoned: false,
    })
}

/// A whole item as a packed read returns it (the column order of [`Tx::items_after`]).
#[derive(serde::Deserialize)]
struct PackedItem(
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<i64>,
    i64,
    Option<i64>,
    String,
    Option<String>,
    i64,
    i64,
);

impl PackedItem {
    fn into_row(self) -> Result<ItemRow> {
        let list = |text: &str, col: &str| -> Result<Vec<String>> {
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
        };
        let item = Item {
            kind: ItemKind::parse(&self.3)
                .ok_or_else(|| StoreError::Corrupt(format!("item kind {}", self.3)))?,
            category: Category::parse(&self.9)
                .ok_or_else(|| StoreError::Corrupt(format!("item category {}", self.9)))?,
            labels: list(&self.10, "labels")?,
            components: list(&self.11, "components")?,
            fields: serde_json::from_str(&self.20)
                .map_err(|e| StoreError::Corrupt(format!("fields: {e}")))?,
            source: self.0,
            ext_id: self.1,
            key: self.2,
            title: self.4,
            url: self.5,
            project: self.6,
            item_type: self.7,
            status: self.8,
            epic: self.12,
            parent: self.13,
            milestone: self.14,
            assignee: self.15,
            estimate: self.16,
            created: self.17.map(from_ms),
            updated: from_ms(self.18),
            resolved: self.19.map(from_ms),
            abandoned: self.22 != 0,
        };
        Ok(ItemRow {
            item,
            exempt_rule: self.21,
            match_count: self.23,
            children: Children::default(),
        })
    }
}

fn decode_item(row: &AnyRow) -> Result<ItemRow> {
    let kind: String = get(row, "kind")?;
    let category: String = get(row, "category")?;
    let fields: String = get(row, "fields")?;
    let item = Item {
        source: get(row, "source")?,
        ext_id: get(row, "ext_id")?,
        key: get(row, "key")?,
        kind: ItemKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("item kind {kind}")))?,
        title: get(row, "title")?,
        url: get(row, "url")?,
        project: get(row, "project")?,
        item_type: get(row, "item_type")?,
        status: get(row, "status")?,
        category: Category::parse(&category)
            .ok_or_else(|| StoreError::Corrupt(format!("item category {category}")))?,
        labels: json_list(row, "labels")?,
        components: json_list(row, "components")?,
        epic: get(row, "epic")?,
        parent: get(row, "parent")?,
        milestone: get(row, "milestone")?,
        assignee: get(row, "assignee")?,
        estimate: get(row, "estimate")?,
        created: get::<Option<i64>>(row, "created_ms")?.map(from_ms),
        updated: from_ms(get(row, "updated_ms")?),
        resolved: get::<Option<i64>>(row, "resolved_ms")?.map(from_ms),
        fields: serde_json::from_str(&fields)
            .map_err(|e| StoreError::Corrupt(format!("fields: {e}")))?,
        abandoned: get::<i64>(row, "abandoned")? != 0,
    };
    Ok(ItemRow {
        item,
        exempt_rule: get(row, "exempt_rule")?,
        match_count: get(row, "match_count")?,
        children: Children::default(),
    })
}

async fn items_for_kr<'c, E>(exec: E, kr_id: &str) -> Result<Vec<(ItemRow, String)>>
where
    E: Executor<'c, Database = Any>,
{
    let sql = format!(
        "SELECT {ITEM_COLUMNS}, mk.rule_id AS rule_id FROM matches mk \
         JOIN items i ON i.source = mk.source AND i.ext_id = mk.ext_id \
         WHERE mk.kr_id = $1 ORDER BY i.source, i.key"
    );
    let rows = sqlx::query(&sql).bind(kr_id).fetch_all(exec).await?;
    rows.iter()
        .map(|r| Ok((decode_item(r)?, get::<String>(r, "rule_id")?)))
        .collect()
}

impl Tx {
    /// The stored `(updated, content hash)` of each of these items that exists.
    pub async fn stored_versions(
        &mut self,
        source: &str,
        ext_ids: &[&str],
    ) -> Result<HashMap<String, (i64, Option<String>)>> {
        let mut out = HashMap::new();
        for chunk in ext_ids.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT ext_id, updated_ms, content_hash FROM items WHERE source = $1 AND ext_id IN ({})",
                placeholders.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, i64, Option<String>)>(&sql).bind(source);
            for id in chunk {
                q = q.bind(*id);
            }
            for (id, updated, hash) in q.fetch_all(&mut *self.tx).await? {
                out.insert(id, (updated, hash));
            }
        }
        Ok(out)
    }

    pub async fn upsert_item(
        &mut self,
        item: &Item,
        exempt_rule: Option<&str>,
        now_ms: i64,
    ) -> Result<()> {
        let labels = serde_json::to_string(&item.labels).unwrap_or_else(|_| "[]".into());
        let components = serde_json::to_string(&item.components).unwrap_or_else(|_| "[]".into());
        let fields = serde_json::to_string(&item.fields).unwrap_or_else(|_| "{}".into());
        sqlx::query(
            "INSERT INTO items (source, ext_id, key, kind, title, url, project, item_type, status, \
             category, labels, components, epic, parent, milestone, assignee, estimate, created_ms, \
             updated_ms, resolved_ms, fields, exempt_rule, synced_ms, abandoned, content_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, CAST($17 AS DOUBLE PRECISION), $18, $19, $20, $21, $22, $23, $24, $25) \
             ON CONFLICT (source, ext_id) DO UPDATE SET key = excluded.key, kind = excluded.kind, \
             title = excluded.title, url = excluded.url, project = excluded.project, \
             item_type = excluded.item_type, status = excluded.status, category = excluded.category, \
             labels = excluded.labels, components = excluded.components, epic = excluded.epic, \
             parent = excluded.parent, milestone = excluded.milestone, assignee = excluded.assignee, \
             estimate = excluded.estimate, created_ms = excluded.created_ms, \
             updated_ms = excluded.updated_ms, resolved_ms = excluded.resolved_ms, \
             fields = excluded.fields, exempt_rule = excluded.exempt_rule, synced_ms = excluded.synced_ms, \
             abandoned = excluded.abandoned, content_hash = excluded.content_hash",
        )
        .bind(&item.source)
        .bind(&item.ext_id)
        .bind(&item.key)
        .bind(item.kind.as_str())
        .bind(&item.title)
        .bind(&item.url)
        .bind(&item.project)
        .bind(&item.item_type)
        .bind(&item.status)
        .bind(item.category.as_str())
        .bind(labels)
        .bind(components)
        .bind(item.epic.clone())
        .bind(item.parent.clone())
        .bind(item.milestone.clone())
        .bind(item.assignee.clone())
        .bind(opt_f64(item.estimate))
        .bind(item.created.map(ms))
        .bind(ms(item.updated))
        .bind(item.resolved.map(ms))
        .bind(fields)
        .bind(exempt_rule.map(str::to_string))
        .bind(now_ms)
        .bind(i64::from(item.abandoned))
        .bind(content_hash(item))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_exempt(
        &mut self,
        source: &str,
        ext_id: &str,
        exempt_rule: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE items SET exempt_rule = $1 WHERE source = $2 AND ext_id = $3")
            .bind(exempt_rule.map(str::to_string))
            .bind(source)
            .bind(ext_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// `(kr_id, rule_id)` of an item's current matches.
    pub async fn matches_of(
        &mut self,
        source: &str,
        ext_id: &str,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT kr_id, rule_id FROM matches WHERE source = $1 AND ext_id = $2 ORDER BY kr_id",
        )
        .bind(source)
        .bind(ext_id)
        .fetch_all(&mut *self.tx)
        .await?)
    }

    pub async fn replace_matches(
        &mut self,
        source: &str,
        ext_id: &str,
        matches: &[(String, String)],
    ) -> Result<()> {
        sqlx::query("DELETE FROM matches WHERE source = $1 AND ext_id = $2")
            .bind(source)
            .bind(ext_id)
            .execute(&mut *self.tx)
            .await?;
        for (kr, rule) in matches {
            sqlx::query(
                "INSERT INTO matches (source, ext_id, kr_id, rule_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(source)
            .bind(ext_id)
            .bind(kr)
            .bind(rule)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// The stored items of a source, as `(ext_id, key)`, for which `keep` says yes;
    /// streamed, so a full reconcile holds only the ones it asks about, not every id.
    pub async fn item_ids_where(
        &mut self,
        source: &str,
        mut keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<(String, String)>> {
        let mut rows = sqlx::query_as::<_, (String, String)>(
            "SELECT ext_id, key FROM items WHERE source = $1",
        )
        .bind(source)
        .fetch(&mut *self.tx);
        let mut out = Vec::new();
        while let Some((ext_id, key)) = rows.try_next().await? {
            if keep(&ext_id) {
                out.push((ext_id, key));
            }
        }
        Ok(out)
    }

    /// Deletes an item and its matches; returns the KRs it moved.
    pub async fn delete_item(&mut self, source: &str, ext_id: &str) -> Result<Vec<String>> {
        let krs: Vec<String> = self
            .matches_of(source, ext_id)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        sqlx::query("DELETE FROM matches WHERE source = $1 AND ext_id = $2")
            .bind(source)
            .bind(ext_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM items WHERE source = $1 AND ext_id = $2")
            .bind(source)
            .bind(ext_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(krs)
    }

    /// Up to `limit` whole items in `(source, ext_id)` order after `after`, in one packed
    /// read (keyset pagination for matching every item again).
    pub async fn items_after(
        &mut self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        let (s, e) = after.unwrap_or(("", ""));
        let sql = self.backend().packed(
            "source, ext_id, key, kind, title, url, project, item_type, status, category, \
             labels, components, epic, parent, milestone, assignee, estimate, created_ms, \
             updated_ms, resolved_ms, fields, exempt_rule, abandoned, match_count",
            "FROM (SELECT * FROM items i WHERE i.source > $1 OR (i.source = $1 AND i.ext_id > $2) \
             ORDER BY i.source, i.ext_id LIMIT $3) AS page",
            Some("source, ext_id"),
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(s)
            .bind(e)
            .bind(limit)
            .fetch_one(&mut *self.tx)
            .await?;
        let rows: Vec<PackedItem> = super::sets::unpack(&text)?;
        rows.into_iter().map(PackedItem::into_row).collect()
    }

    pub async fn items_for_kr(&mut self, kr_id: &str) -> Result<Vec<(ItemRow, String)>> {
        items_for_kr(&mut *self.tx, kr_id).await
    }

    /// What progress needs of a KR's items, in one packed read: category, estimate and
    /// dates, plus `fields` only when `with_fields` (a `sum` over `fields.x`). Every other
    /// part of the returned items is empty.
    pub async fn progress_items(
        &mut self,
        kr_id: &str,
        with_fields: bool,
    ) -> Result<Vec<(Item, String)>> {
        let sql = self.backend().packed(
            &format!(
                "i.source, i.ext_id, i.key, mk.rule_id, i.category, i.estimate, i.updated_ms, \
                 i.resolved_ms, i.created_ms, {}",
                if with_fields { "i.fields" } else { "NULL" }
            ),
            "FROM matches mk JOIN items i ON i.source = mk.source AND i.ext_id = mk.ext_id \
             WHERE mk.kr_id = $1",
            Some("i.source, i.key"),
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(kr_id)
            .fetch_one(&mut *self.tx)
            .await?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<f64>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = super::sets::unpack(&text)?;
        rows.into_iter()
            .map(
                |(
                    source,
                    ext_id,
                    key,
                    rule,
                    category,
                    estimate,
                    updated,
                    resolved,
                    created,
                    fields,
                )| {
                    let item = Item {
                        source,
                        ext_id,
                        key,
                        kind: ItemKind::Issue,
                        title: String::new(),
                        url: String::new(),
                        project: String::new(),
                        item_type: String::new(),
                        status: String::new(),
                        category: Category::parse(&category).ok_or_else(|| {
                            StoreError::Corrupt(format!("item category {category}"))
                        })?,
                        labels: Vec::new(),
                        components: Vec::new(),
                        epic: None,
                        parent: None,
                        milestone: None,
                        assignee: None,
                        estimate,
                        created: created.map(from_ms),
                        updated: from_ms(updated),
                        resolved: resolved.map(from_ms),
                        fields: match fields {
                            Some(text) => serde_json::from_str(&text)
                                .map_err(|e| StoreError::Corrupt(format!("fields: {e}")))?,
                            None => Default::default(),
                        },
                        abandoned: false,
                    };
                    Ok((item, rule))
                },
            )
            .collect()
    }

    /// Drops matches to KRs that no longer exist.
    pub async fn delete_matches_for_kr(&mut self, kr_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM matches WHERE kr_id = $1")
            .bind(kr_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    pub async fn items_for_kr(&self, kr_id: &str) -> Result<Vec<(ItemRow, String)>> {
        items_for_kr(&self.pool, kr_id).await
    }

    /// Items the selector picks, each with the KRs it moves: its own matches and, for an
    /// epic or parent, those of its children.
    pub async fn select_items(&self, selector: &Selector) -> Result<Vec<(ItemRow, Vec<String>)>> {
        let (cond, value) = match selector.kind {
            SelectorKind::Project | SelectorKind::Repo => {
                ("i.project = $1", selector.value.clone())
            }
            SelectorKind::Epic => ("i.epic = $1", selector.value.clone()),
            SelectorKind::Item => ("i.key = $1", selector.value.clone()),
            // JSON text contains the quoted label; the exact check happens below.
            SelectorKind::Label => (
                "i.labels LIKE $1",
                format!(
                    "%{}%",
                    serde_json::to_string(&selector.value).unwrap_or_default()
                ),
            ),
        };
        let sql =
            format!("SELECT {ITEM_COLUMNS} FROM items i WHERE {cond} ORDER BY i.source, i.key");
        // The selected items' matches in one query, not one per item; an epic or parent
        // also moves what its children move (SPEC.md, "Unaligned work": it is aligned
        // through them), so their matches count as its own.
        // Children are walked once and their epic or parent found by its key (indexed).
        // `CROSS JOIN` fixes that order on SQLite, whose planner (without statistics)
        // would otherwise probe every selected item's source in `matches` and go
        // quadratic (10,000 selected × 100,000 matches); PostgreSQL plans it either way.
        let matched: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT m.source, m.ext_id, m.kr_id FROM matches m \
             JOIN items i ON i.source = m.source AND i.ext_id = m.ext_id \
             WHERE {cond} \
             UNION \
             SELECT i.source, i.ext_id, m.kr_id FROM items c CROSS JOIN items i CROSS JOIN matches m \
             WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0 \
               AND i.key = c.epic AND i.source = c.source \
               AND m.source = c.source AND m.ext_id = c.ext_id AND {cond} \
             UNION \
             SELECT i.source, i.ext_id, m.kr_id FROM items c CROSS JOIN items i CROSS JOIN matches m \
             WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key \
               AND c.abandoned = 0 AND (c.epic IS NULL OR c.epic <> c.parent) \
               AND i.key = c.parent AND i.source = c.source \
               AND m.source = c.source AND m.ext_id = c.ext_id AND {cond} \
             ORDER BY kr_id"
        ))
        .bind(value.clone())
        .fetch_all(&self.pool)
        .await?;
        let mut krs_of: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (source, ext_id, kr) in matched {
            krs_of.entry((source, ext_id)).or_default().push(kr);
        }
        let mut rows = sqlx::query(&sql).bind(value).fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(r) = rows.try_next().await? {
            let row = decode_item(&r)?;
            if !selector.matches(&row.item) {
                continue;
            }
            let krs = krs_of
                .remove(&(row.item.source.clone(), row.item.ext_id.clone()))
                .unwrap_or_default();
            out.push((row, krs));
        }
        Ok(out)
    }

    /// Items that are in progress or done (candidates for the unaligned report), with
    /// what their children say about them.
    pub async fn started_items(&self) -> Result<Vec<ItemRow>> {
        // Streamed, and only the columns the unaligned report reads: 100k started items
        // must not be held as whole rows twice over. The children are counted by the
        // database in one grouped pass over the linked items, not per started item:
        // `parent` has no index, and a probe per row would scan the table each time.
        let sql = format!("WITH {CHILD_LINKS}, \
             kids AS (SELECT l.source, l.up, COUNT(*) AS children, \
                 SUM(CASE WHEN l.exempt_rule IS NULL THEN 0 ELSE 1 END) AS exempt_children, \
                 SUM(CASE WHEN EXISTS (SELECT 1 FROM matches m WHERE m.source = l.source AND m.ext_id = l.ext_id) \
                     THEN 1 ELSE 0 END) AS moving_children \
               FROM links l GROUP BY l.source, l.up) \
             SELECT i.source, i.ext_id, i.key, i.title, i.url, i.project, i.category, \
             i.estimate, i.updated_ms, i.resolved_ms, i.exempt_rule, \
             (SELECT COUNT(*) FROM matches m WHERE m.source = i.source AND m.ext_id = i.ext_id) AS match_count, \
             COALESCE(k.children, 0) AS children, COALESCE(k.moving_children, 0) AS moving_children, \
             COALESCE(k.exempt_children, 0) AS exempt_children \
             FROM items i LEFT JOIN kids k ON k.source = i.source AND k.up = i.key \
             WHERE i.category <> 'todo' ORDER BY i.project, i.source, i.key");
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let mut item = bare_item(&row)?;
            item.source = get(&row, "source")?;
            item.ext_id = get(&row, "ext_id")?;
            item.key = get(&row, "key")?;
            item.title = get(&row, "title")?;
            item.url = get(&row, "url")?;
            item.project = get(&row, "project")?;
            out.push(ItemRow {
                item,
                exempt_rule: get(&row, "exempt_rule")?,
                match_count: get(&row, "match_count")?,
                children: Children {
                    count: get(&row, "children")?,
                    moving: get(&row, "moving_children")?,
                    exempt: get(&row, "exempt_children")?,
                },
            });
        }
        Ok(out)
    }

    /// The KRs started (in progress or done) items move, as `(source, key, kr_id)`: each
    /// item's own matches, and for an epic or parent its children's, listed under the
    /// parent's key (it is aligned through them, as in [`Store::select_items`]); a pair may
    /// come twice. Two set statements keyed by the child's primary key: joining the items to
    /// the `links` CTE by `up = key` has no index to use and scans the links per item.
    pub async fn started_item_krs(&self) -> Result<Vec<(String, String, String)>> {
        let mut out: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT i.source, i.key, m.kr_id FROM items i \
             JOIN matches m ON m.source = i.source AND m.ext_id = i.ext_id \
             WHERE i.category <> 'todo'",
        )
        .fetch_all(&self.pool)
        .await?;
        let through_children: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "WITH {CHILD_LINKS} \
             SELECT DISTINCT l.source, l.up, m.kr_id FROM links l \
             JOIN matches m ON m.source = l.source AND m.ext_id = l.ext_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        out.extend(through_children);
        Ok(out)
    }

    /// Selectors worth suggesting in a search box: `repo=` for GitHub projects, `project=`
    /// for the others, and `epic=` for every epic; at most `limit` of each.
    pub async fn selector_suggestions(&self, limit: i64) -> Result<Vec<String>> {
        let projects: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT DISTINCT i.project, s.kind FROM items i LEFT JOIN sources s ON s.name = i.source \
             WHERE i.project <> '' ORDER BY i.project LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let epics: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT epic FROM items WHERE epic IS NOT NULL AND epic <> '' ORDER BY epic LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<String> = projects
            .into_iter()
            .map(|(p, kind)| match kind.as_deref() {
                Some("github") => format!("repo={p}"),
                _ => format!("project={p}"),
            })
            .collect();
        out.extend(epics.into_iter().map(|(e,)| format!("epic={e}")));
        Ok(out)
    }

    /// Distinct sources of the items matched to a KR.
    pub async fn kr_item_sources(&self, kr_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT source FROM matches WHERE kr_id = $1 ORDER BY source")
                .bind(kr_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn count_items(&self, source: &str) -> Result<i64> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items WHERE source = $1")
            .bind(source)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }
}
