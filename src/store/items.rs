//! Items and their rule matches.

use super::{from_ms, Result, Store, StoreError, StoredMatches, Tx};
use crate::model::{Category, Item, ItemKind, ProgressItem};

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

/// A digest of everything about an item but its `updated` time: SHA-256 of its JSON with
/// `updated` at the epoch, in hex. Stored beside each item and compared on later steps,
/// so the text hashed must not change. Computed for every changed item on a sync's
/// serial path: the JSON goes straight into the digest.
pub fn content_hash(item: &Item) -> String {
    use sha2::{Digest, Sha256};
    struct Into<'a>(&'a mut Sha256);
    impl std::io::Write for Into<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut copy = item.clone();
    copy.updated = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let mut digest = Sha256::new();
    if serde_json::to_writer(Into(&mut digest), &copy).is_err() {
        // As the digest of the empty text, as it always was.
        digest = Sha256::new();
    }
    hex::encode(digest.finalize())
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
    Vec<String>,
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<i64>,
    i64,
    Option<i64>,
    std::collections::BTreeMap<String, serde_json::Value>,
    Option<String>,
    i64,
    i64,
);

impl PackedItem {
    fn into_row(self) -> Result<ItemRow> {
        let item = Item {
            kind: ItemKind::parse(&self.3)
                .ok_or_else(|| StoreError::Corrupt(format!("item kind {}", self.3)))?,
            category: Category::parse(&self.9)
                .ok_or_else(|| StoreError::Corrupt(format!("item category {}", self.9)))?,
            labels: self.10,
            components: self.11,
            fields: self.20,
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

/// The columns of a whole item, in the order of [`PackedItem`]: the JSON ones (labels,
/// components, fields) as JSON values, so they come back parsed with the rest.
fn packed_item(backend: super::Backend) -> String {
    format!(
        "i.source, i.ext_id, i.key, i.kind, i.title, i.url, i.project, i.item_type, i.status, \
         i.category, {}, {}, i.epic, i.parent, i.milestone, i.assignee, i.estimate, \
         i.created_ms, i.updated_ms, i.resolved_ms, {}, i.exempt_rule, i.abandoned, \
         i.match_count",
        backend.json_value("i.labels"),
        backend.json_value("i.components"),
        backend.json_value("i.fields")
    )
}

/// The packed item's columns, only `columns` of the optional ones when given (the others
/// come back empty): what the rules test, when every item is matched again.
fn item_columns(
    backend: super::Backend,
    columns: Option<&std::collections::BTreeSet<&str>>,
) -> String {
    match columns {
        None => packed_item(backend),
        Some(wanted) => packed_item(backend)
            .split(", ")
            .map(|c| {
                let name = c
                    .trim()
                    .trim_start_matches("json(")
                    .trim_start_matches('(')
                    .trim_start_matches("i.")
                    .trim_end_matches(")::json")
                    .trim_end_matches(')');
                let always = [
                    "source",
                    "ext_id",
                    "key",
                    "kind",
                    "category",
                    "epic",
                    "parent",
                    "exempt_rule",
                    "abandoned",
                    "match_count",
                ];
                if always.contains(&name) || wanted.contains(name) {
                    return c.trim().to_string();
                }
                match name {
                    "labels" | "components" => backend.json_value("'[]'"),
                    "fields" => backend.json_value("'{}'"),
                    "updated_ms" => "0".to_string(),
                    "title" | "url" | "project" | "item_type" | "status" => "''".to_string(),
                    _ => "NULL".to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Where the next [`Tx::rematch_batch`] starts.
#[derive(Debug, Clone, Default)]
pub struct RematchCursor {
    /// SQLite: the last rowid read.
    rowid: i64,
    /// PostgreSQL: the last key read.
    key: Option<(String, String)>,
}

/// Items to match again, with their stored matches.
pub struct RematchBatch {
    pub items: Vec<ItemRow>,
    pub matches: StoredMatches,
    pub next: RematchCursor,
}

impl Tx {
    /// Up to `limit` whole items in `(source, ext_id)` order after `after`, in one packed
    /// read (keyset pagination for matching every item again).
    pub async fn items_after(
        &mut self,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ItemRow>> {
        self.items_after_reading(after, limit, None).await
    }

    /// [`Tx::items_after`] reading only these columns besides what identifies an item and
    /// its links (the others come back empty): what the rules test, when every item is
    /// matched again.
    pub async fn items_after_reading(
        &mut self,
        after: Option<(&str, &str)>,
        limit: i64,
        columns: Option<&std::collections::BTreeSet<&str>>,
    ) -> Result<Vec<ItemRow>> {
        let (s, e) = after.unwrap_or(("", ""));
        let sql = self.backend().packed(
            &item_columns(self.backend(), columns),
            "FROM (SELECT * FROM items WHERE (source, ext_id) > ($1, $2) \
             ORDER BY source, ext_id LIMIT $3) AS i",
            Some("i.source, i.ext_id"),
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

    /// The next batch of up to `limit` items for matching every item again, reading only
    /// `columns` besides what identifies an item and its links, with their stored matches;
    /// `None` after the last. Each item comes exactly once over the batches from
    /// [`RematchCursor::default`], as long as no item is added or deleted meanwhile.
    ///
    /// On SQLite the batches follow the table's own order (rowid ranges): read in key order
    /// every row is a lookup from the key's index into the table, a third of a second for
    /// 100,000 items. On PostgreSQL they are ranges of the key.
    pub async fn rematch_batch(
        &mut self,
        cursor: &RematchCursor,
        limit: i64,
        columns: &std::collections::BTreeSet<&str>,
    ) -> Result<Option<RematchBatch>> {
        match self.backend() {
            super::Backend::Sqlite => {
                let sql = self.backend().packed(
                    &format!(
                        "json_array({}), i.rid",
                        item_columns(self.backend(), Some(columns))
                    ),
                    "FROM (SELECT rowid AS rid, * FROM items WHERE rowid > $1 \
                     ORDER BY rowid LIMIT $2) AS i",
                    None,
                );
                let (text,): (String,) = sqlx::query_as(&sql)
                    .bind(cursor.rowid)
                    .bind(limit)
                    .fetch_one(&mut *self.tx)
                    .await?;
                let rows: Vec<(PackedItem, i64)> = super::sets::unpack(&text)?;
                let (Some(first), Some(last)) = (
                    rows.iter().map(|(_, rid)| *rid).min(),
                    rows.iter().map(|(_, rid)| *rid).max(),
                ) else {
                    return Ok(None);
                };
                let items = rows
                    .into_iter()
                    .map(|(item, _)| item.into_row())
                    .collect::<Result<Vec<_>>>()?;
                // The batch's matches: a seek into `matches` per item of the same rowid range.
                let sql = self.backend().packed(
                    "m.source, m.ext_id, m.kr_id, m.rule_id",
                    "FROM items b CROSS JOIN matches m \
                     WHERE b.rowid BETWEEN $1 AND $2 \
                     AND m.source = b.source AND m.ext_id = b.ext_id",
                    None,
                );
                let (text,): (String,) = sqlx::query_as(&sql)
                    .bind(first)
                    .bind(last)
                    .fetch_one(&mut *self.tx)
                    .await?;
                Ok(Some(RematchBatch {
                    items,
                    matches: StoredMatches(text),
                    next: RematchCursor {
                        rowid: last,
                        key: None,
                    },
                }))
            }
            super::Backend::Postgres => {
                let after = cursor.key.as_ref().map(|(s, e)| (s.as_str(), e.as_str()));
                let items = self
                    .items_after_reading(after, limit, Some(columns))
                    .await?;
                let (Some(first), Some(last)) = (items.first(), items.last()) else {
                    return Ok(None);
                };
                let next = RematchCursor {
                    rowid: 0,
                    key: Some((last.item.source.clone(), last.item.ext_id.clone())),
                };
                let matches = self
                    .matches_in_range(
                        (&first.item.source, &first.item.ext_id),
                        (&last.item.source, &last.item.ext_id),
                    )
                    .await?;
                Ok(Some(RematchBatch {
                    items,
                    matches,
                    next,
                }))
            }
        }
    }

    /// What progress needs of a KR's items, in one packed read: category, estimate and
    /// dates, plus `fields` only when `with_fields` (a `sum` over `fields.x`), with the rule
    /// that matched each.
    pub async fn progress_items(
        &mut self,
        kr_id: &str,
        with_fields: bool,
    ) -> Result<Vec<(ProgressItem, String)>> {
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
                    let item = ProgressItem {
                        source,
                        ext_id,
                        key,
                        category: Category::parse(&category).ok_or_else(|| {
                            StoreError::Corrupt(format!("item category {category}"))
                        })?,
                        estimate,
                        created: created.map(from_ms),
                        updated: from_ms(updated),
                        resolved: resolved.map(from_ms),
                        fields: match fields {
                            Some(text) => serde_json::from_str(&text)
                                .map_err(|e| StoreError::Corrupt(format!("fields: {e}")))?,
                            None => Default::default(),
                        },
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
    /// A KR's items with the rule that put each in its scope, in one packed read.
    pub async fn items_for_kr(&self, kr_id: &str) -> Result<Vec<(ItemRow, String)>> {
        let sql = self.backend.packed(
            &format!(
                "{}({}), mk.rule_id",
                self.backend.json_array_fn(),
                packed_item(self.backend)
            ),
            "FROM matches mk JOIN items i ON i.source = mk.source AND i.ext_id = mk.ext_id \
             WHERE mk.kr_id = $1",
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(kr_id)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<(PackedItem, String)> = super::sets::unpack(&text)?;
        rows.into_iter()
            .map(|(item, rule)| Ok((item.into_row()?, rule)))
            .collect()
    }

    /// The stored item of `source` with this key.
    pub async fn item_by_key(&self, source: &str, key: &str) -> Result<Option<ItemRow>> {
        let sql = self.backend.packed(
            &packed_item(self.backend),
            "FROM items i WHERE i.source = $1 AND i.key = $2",
            None,
        );
        let (text,): (String,) = sqlx::query_as(&sql)
            .bind(source)
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<PackedItem> = super::sets::unpack(&text)?;
        rows.into_iter()
            .next()
            .map(PackedItem::into_row)
            .transpose()
    }

    /// What `moves` counts for the items the selector picks: a selected epic or parent
    /// moves what its children move (it is aligned through them).
    pub async fn moves(&self, selector: &Selector) -> Result<super::reports::MovesCounts> {
        let label;
        let cond = match selector.kind {
            SelectorKind::Project | SelectorKind::Repo => "i.project = $1",
            SelectorKind::Epic => "i.epic = $1",
            // By (source, key): the sources are few, and the index serves each.
            SelectorKind::Item => "i.source IN (SELECT name FROM sources) AND i.key = $1",
            SelectorKind::Label => {
                let contains = self.backend.json_list_contains("i.labels", "$1");
                // A label JSON writes as it is (no quote, backslash or control
                // character) is a substring of every list holding it: a cheap test
                // that spares most rows the parse of their list.
                label = if selector
                    .value
                    .chars()
                    .all(|c| c != '"' && c != '\\' && c >= ' ')
                {
                    format!(
                        "{} > 0 AND {contains}",
                        self.backend.position("$1", "i.labels")
                    )
                } else {
                    contains
                };
                label.as_str()
            }
        };
        self.moves_counts(cond, &selector.value).await
    }

    /// Selectors worth suggesting in a search box: each project with the selector its
    /// source's kind picks projects by (`project_selector(kind)`: `repo` for GitHub), and
    /// `epic=` for every epic; at most `limit` of each.
    pub async fn selector_suggestions(
        &self,
        limit: i64,
        project_selector: impl Fn(Option<&str>) -> &'static str,
    ) -> Result<Vec<String>> {
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
            .map(|(p, kind)| format!("{}={p}", project_selector(kind.as_deref())))
            .collect();
        out.extend(epics.into_iter().map(|(e,)| format!("epic={e}")));
        Ok(out)
    }

    pub async fn count_items(&self, source: &str) -> Result<i64> {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items WHERE source = $1")
            .bind(source)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest stored beside every item must not change between versions: the text
    /// hashed is the item's JSON with `updated` at the epoch, as it was first computed.
    #[test]
    fn content_hash_is_the_digest_of_the_json_without_updated() {
        use sha2::{Digest, Sha256};
        let item: Item = serde_json::from_value(serde_json::json!({
            "source": "jira", "ext_id": "10001", "key": "PAY-1", "kind": "issue",
            "title": "Checkout \"v2\" — ünïcode", "url": "https://jira.example/browse/PAY-1",
            "project": "PAY", "type": "Story", "status": "Done", "category": "done",
            "labels": ["emea", "checkout"], "components": [], "epic": "PAY-0",
            "parent": null, "milestone": null, "assignee": "ana", "estimate": 3.5,
            "created": "2026-10-01T08:00:00Z", "updated": "2026-11-02T09:30:15.250Z",
            "resolved": null, "fields": {"customfield_10016": 3.5, "sprint": ["S1"]},
            "abandoned": false
        }))
        .expect("an item");
        let mut copy = item.clone();
        copy.updated = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let text = serde_json::to_string(&copy).expect("json");
        let expected: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(content_hash(&item), expected);
        let mut later = item.clone();
        later.updated = chrono::Utc::now();
        assert_eq!(content_hash(&later), expected, "updated is not content");
        later.status = "In Progress".into();
        assert_ne!(content_hash(&later), expected);
    }
}
