//! What `okrsync lint` asks of the stored matches, as aggregates: the database counts,
//! Rust never holds every item.
//!
//! The `matches` table records, per item and KR, the first rule (in file order) that maps
//! the item to that KR, and `items.exempt_rule` the first exempt rule that takes it. So a
//! rule "matches" an item here when it is the one recorded for it: a rule that only ever
//! repeats what earlier rules already decided has no item of its own.

use super::{Result, Store};

/// How many stored items a KR rule is recorded for, and how many of them are exempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleUse {
    pub rule_id: String,
    pub items: i64,
    pub exempt_items: i64,
}

/// Items that count toward two KRs of one objective, per pair of KRs and the rules
/// recorded for each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedItems {
    pub objective_id: String,
    pub kr_a: String,
    pub rule_a: String,
    pub kr_b: String,
    pub rule_b: String,
    pub items: i64,
}

impl Store {
    /// Every rule recorded in `matches`, with its distinct items and how many of them are
    /// exempt.
    pub async fn rule_uses(&self) -> Result<Vec<RuleUse>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT r.rule_id, COUNT(*), COUNT(i.exempt_rule) \
             FROM (SELECT DISTINCT rule_id, source, ext_id FROM matches) r \
             JOIN items i ON i.source = r.source AND i.ext_id = r.ext_id \
             GROUP BY r.rule_id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(rule_id, items, exempt_items)| RuleUse {
                rule_id,
                items,
                exempt_items,
            })
            .collect())
    }

    /// Every exempt rule recorded on an item, with how many items it exempts.
    pub async fn exempt_uses(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT exempt_rule, COUNT(*) FROM items WHERE exempt_rule IS NOT NULL \
             GROUP BY exempt_rule",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` keys of the items a rule is recorded for, in key order.
    pub async fn rule_item_keys(&self, rule_id: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT i.key FROM matches m \
             JOIN items i ON i.source = m.source AND i.ext_id = m.ext_id \
             WHERE m.rule_id = $1 ORDER BY i.key LIMIT $2",
        )
        .bind(rule_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The exempt rules recorded on the items a rule is recorded for, sorted.
    pub async fn exempt_rules_over(&self, rule_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT i.exempt_rule FROM matches m \
             JOIN items i ON i.source = m.source AND i.ext_id = m.ext_id \
             WHERE m.rule_id = $1 AND i.exempt_rule IS NOT NULL ORDER BY i.exempt_rule",
        )
        .bind(rule_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Pairs of KRs of one objective that share items.
    pub async fn shared_items(&self) -> Result<Vec<SharedItems>> {
        let rows: Vec<(String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT k1.objective_id, m1.kr_id, m1.rule_id, m2.kr_id, m2.rule_id, COUNT(*) \
             FROM matches m1 \
             JOIN matches m2 ON m2.source = m1.source AND m2.ext_id = m1.ext_id \
                AND m1.kr_id < m2.kr_id \
             JOIN key_results k1 ON k1.id = m1.kr_id \
             JOIN key_results k2 ON k2.id = m2.kr_id \
             WHERE k1.objective_id = k2.objective_id \
             GROUP BY k1.objective_id, m1.kr_id, m1.rule_id, m2.kr_id, m2.rule_id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(objective_id, kr_a, rule_a, kr_b, rule_b, items)| SharedItems {
                    objective_id,
                    kr_a,
                    rule_a,
                    kr_b,
                    rule_b,
                    items,
                },
            )
            .collect())
    }

    /// Up to `limit` keys of the items matched to both KRs, in key order.
    pub async fn shared_item_keys(
        &self,
        kr_a: &str,
        kr_b: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT i.key FROM matches m1 \
             JOIN matches m2 ON m2.source = m1.source AND m2.ext_id = m1.ext_id \
             JOIN items i ON i.source = m1.source AND i.ext_id = m1.ext_id \
             WHERE m1.kr_id = $1 AND m2.kr_id = $2 ORDER BY i.key LIMIT $3",
        )
        .bind(kr_a)
        .bind(kr_b)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
