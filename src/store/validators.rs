//! Validators of conditional requests (GitHub's ETags) per source, kept with the source's
//! cursor: loaded before a step, replaced in the step's transaction.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Tx;

impl Tx {
    /// The validators a source's last successful step left, by request.
    pub async fn validators(&mut self, source: &str) -> Result<BTreeMap<String, String>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT request, etag FROM http_validators WHERE source = $1")
                .bind(source)
                .fetch_all(&mut *self.tx)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Replaces a source's validators (a handful: one per repository), in two statements.
    pub async fn put_validators(
        &mut self,
        source: &str,
        validators: &BTreeMap<String, String>,
    ) -> Result<()> {
        sqlx::query("DELETE FROM http_validators WHERE source = $1")
            .bind(source)
            .execute(&mut *self.tx)
            .await?;
        if validators.is_empty() {
            return Ok(());
        }
        // sqlx's QueryBuilder writes `?` for `Any`, which PostgreSQL refuses: number them.
        let sql = format!(
            "INSERT INTO http_validators (source, request, etag) VALUES {}",
            super::placeholders(validators.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (request, etag) in validators {
            q = q.bind(source).bind(request.as_str()).bind(etag.as_str());
        }
        q.execute(&mut *self.tx).await?;
        Ok(())
    }
}
