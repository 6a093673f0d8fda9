//! Objectives and key results as last loaded from the OKR files, each KR's computed state,
//! its history (a snapshot whenever its value or progress changes), check-ins and metric
//! observations.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;

use super::{from_ms, get, opt_f64, Result, Store, Tx};
use crate::model::ObjectiveDef;
use crate::progress::KrValue;

/// What [`Tx::sync_definitions`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Definitions {
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// A KR's last computed value.
#[derive(Debug, Clone, PartialEq)]
pub struct KrState {
    pub id: String,
    pub objective_id: String,
    pub title: String,
    pub measure: String,
    pub current: Option<f64>,
    pub start: f64,
    pub target: Option<f64>,
    pub progress: f64,
    pub items: i64,
    pub computed_at: Option<DateTime<Utc>>,
    /// When the value last changed (the latest snapshot).
    pub changed_at: Option<DateTime<Utc>>,
}

/// What made a snapshot: the cause in words ("sync of jira", "check-in", "rules changed"),
/// the rule set in force, and the check-in, if one did (a sync run is linked afterwards,
/// once it is recorded).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotCause<'a> {
    pub text: &'a str,
    pub rules_hash: &'a str,
    pub checkin_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KrSnapshot {
    pub at: DateTime<Utc>,
    pub current: Option<f64>,
    pub target: Option<f64>,
    pub progress: f64,
    pub items: i64,
    pub cause: String,
    /// Rebuilt from the items' dates on a source's first sync, not recorded as it happened.
    pub reconstructed: bool,
}

/// A check-in to record.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewCheckin<'a> {
    /// A manual KR's value.
    pub value: Option<f64>,
    /// The owner's confidence, 0–10.
    pub confidence: Option<f64>,
    pub note: Option<&'a str>,
    pub author: Option<&'a str>,
}

/// The owner's latest confidence in a KR (SPEC.md: `"confidence":{"value","note","at","author"}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Confidence {
    pub value: f64,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
    pub author: Option<String>,
}

/// What the flags need of a KR's check-ins and history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KrTimes {
    /// Its latest check-in of any kind.
    pub last_checkin: Option<DateTime<Utc>>,
    /// Its latest snapshot: the last change of its value or evidence.
    pub last_change: Option<DateTime<Utc>>,
    /// Its latest confidence check-in.
    pub confidence: Option<Confidence>,
}

const KR_COLUMNS: &str =
    "id, objective_id, title, measure, current, start_value, target, progress, \
    item_count, computed_ms, changed_ms";

fn decode_state(row: &AnyRow) -> Result<KrState> {
    Ok(KrState {
        id: get(row, "id")?,
        objective_id: get(row, "objective_id")?,
        title: get(row, "title")?,
        measure: get(row, "measure")?,
        current: get(row, "current")?,
        start: get(row, "start_value")?,
        target: get(row, "target")?,
        progress: get(row, "progress")?,
        items: get(row, "item_count")?,
        computed_at: get::<Option<i64>>(row, "computed_ms")?.map(from_ms),
        changed_at: get::<Option<i64>>(row, "changed_ms")?.map(from_ms),
    })
}

/// Equal as stored values (a relative tolerance: sums taken in another order may differ
/// in the last bits).
pub(crate) fn same(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

impl Tx {
    /// Mirrors the configured objectives and KRs. Returns the KRs removed from the config
    /// (their matches are dropped, their history is kept) and those that are new or whose
    /// definition or period changed (their scopes must be computed again).
    pub async fn sync_definitions(&mut self, objectives: &[ObjectiveDef]) -> Result<Definitions> {
        let stored: std::collections::HashMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT id, definition FROM key_results")
                .fetch_all(&mut *self.tx)
                .await?
                .into_iter()
                .collect();
        let mut changed = Vec::new();
        let mut kr_ids = Vec::new();
        for (pos, o) in objectives.iter().enumerate() {
            sqlx::query(
                "INSERT INTO objectives (id, title, parent, owner, period_label, period_start, period_end, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
                 title = excluded.title, parent = excluded.parent, owner = excluded.owner, \
                 period_label = excluded.period_label, period_start = excluded.period_start, \
                 period_end = excluded.period_end, position = excluded.position",
            )
            .bind(o.id.as_str())
            .bind(&o.title)
            .bind(o.parent.clone())
            .bind(o.owner.clone())
            .bind(&o.period.label)
            .bind(o.period.start.to_string())
            .bind(o.period.end.to_string())
            .bind(pos as i64)
            .execute(&mut *self.tx)
            .await?;
            for (kpos, kr) in o.key_results.iter().enumerate() {
                kr_ids.push(kr.id.to_string());
                // What its scope and value depend on: the KR and its objective's period.
                let definition = serde_json::to_string(&(kr, &o.period)).unwrap_or_default();
                if stored.get(kr.id.as_str()) != Some(&definition) {
                    changed.push(kr.id.to_string());
                }
                sqlx::query(
                    "INSERT INTO key_results (id, objective_id, title, measure, position, definition) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                     objective_id = excluded.objective_id, title = excluded.title, \
                     measure = excluded.measure, position = excluded.position, definition = excluded.definition",
                )
                .bind(kr.id.as_str())
                .bind(o.id.as_str())
                .bind(&kr.title)
                .bind(kr.measure.as_str())
                .bind((pos * 1000 + kpos) as i64)
                .bind(definition)
                .execute(&mut *self.tx)
                .await?;
            }
        }
        let stored: Vec<(String,)> = sqlx::query_as("SELECT id FROM key_results")
            .fetch_all(&mut *self.tx)
            .await?;
        let mut removed = Vec::new();
        for (id,) in stored {
            if !kr_ids.contains(&id) {
                sqlx::query("DELETE FROM key_results WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *self.tx)
                    .await?;
                self.delete_matches_for_kr(&id).await?;
                removed.push(id);
            }
        }
        let objective_ids: Vec<&str> = objectives.iter().map(|o| o.id.as_str()).collect();
        let stored: Vec<(String,)> = sqlx::query_as("SELECT id FROM objectives")
            .fetch_all(&mut *self.tx)
            .await?;
        for (id,) in stored {
            if !objective_ids.contains(&id.as_str()) {
                sqlx::query("DELETE FROM objectives WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(Definitions { removed, changed })
    }

    /// The stored values of these KRs.
    pub async fn kr_states_of(&mut self, kr_ids: &[&str]) -> Result<Vec<KrState>> {
        if kr_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {KR_COLUMNS} FROM key_results WHERE id IN ({})",
            self.backend().json_texts("$1")
        );
        let rows = sqlx::query(&sql)
            .bind(super::sets::pack(kr_ids))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(decode_state).collect()
    }

    /// Stores a KR's new value (it differs from the stored one).
    pub async fn store_kr_value(
        &mut self,
        kr_id: &str,
        value: &KrValue,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE key_results SET current = CAST($1 AS DOUBLE PRECISION), start_value = $2, \
             target = CAST($3 AS DOUBLE PRECISION), progress = $4, \
             item_count = $5, computed_ms = $6, changed_ms = $6 WHERE id = $7",
        )
        .bind(opt_f64(value.current))
        .bind(value.start)
        .bind(opt_f64(value.target))
        .bind(value.progress)
        .bind(value.items as i64)
        .bind(now_ms)
        .bind(kr_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes a snapshot of a KR's value; its id.
    pub async fn insert_snapshot(
        &mut self,
        kr_id: &str,
        value: &KrValue,
        now_ms: i64,
        cause: &SnapshotCause<'_>,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO kr_snapshots (kr_id, at_ms, current, target, progress, item_count, cause, \
             start_value, rules_hash, checkin_id) \
             VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), CAST($4 AS DOUBLE PRECISION), $5, $6, $7, \
             $8, $9, $10) RETURNING id",
        )
        .bind(kr_id)
        .bind(now_ms)
        .bind(opt_f64(value.current))
        .bind(opt_f64(value.target))
        .bind(value.progress)
        .bind(value.items as i64)
        .bind(cause.text)
        .bind(value.start)
        .bind(cause.rules_hash)
        .bind(cause.checkin_id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Opens the snapshot a step records a KR's evidence under, before its value is known
    /// ([`Tx::finish_snapshot`] writes it, or [`Tx::drop_snapshot`] takes it back).
    pub async fn open_snapshot(
        &mut self,
        kr_id: &str,
        now_ms: i64,
        cause: &SnapshotCause<'_>,
    ) -> Result<i64> {
        self.insert_snapshot(
            kr_id,
            &KrValue {
                current: None,
                start: 0.0,
                target: None,
                progress: 0.0,
                items: 0,
            },
            now_ms,
            cause,
        )
        .await
    }

    /// Writes the value of a snapshot opened by [`Tx::open_snapshot`].
    pub async fn finish_snapshot(&mut self, id: i64, value: &KrValue) -> Result<()> {
        sqlx::query(
            "UPDATE kr_snapshots SET current = CAST($1 AS DOUBLE PRECISION), \
             target = CAST($2 AS DOUBLE PRECISION), progress = $3, item_count = $4, \
             start_value = $5 WHERE id = $6",
        )
        .bind(opt_f64(value.current))
        .bind(opt_f64(value.target))
        .bind(value.progress)
        .bind(value.items as i64)
        .bind(value.start)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes back an opened snapshot that recorded nothing.
    pub async fn drop_snapshot(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM kr_snapshots WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The value of a KR's latest check-in that carries one.
    pub async fn latest_checkin(&mut self, kr_id: &str) -> Result<Option<f64>> {
        let row: Option<(f64,)> = sqlx::query_as(
            "SELECT value FROM checkins WHERE kr_id = $1 AND value IS NOT NULL \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(kr_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.0))
    }

    /// Records a check-in (a value, the owner's confidence, or both); its id (snapshots
    /// it causes name it).
    pub async fn add_checkin(
        &mut self,
        kr_id: &str,
        checkin: &NewCheckin<'_>,
        now_ms: i64,
    ) -> Result<i64> {
        let NewCheckin {
            value,
            confidence,
            note,
            author,
        } = *checkin;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO checkins (kr_id, at_ms, value, note, author, confidence) \
             VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION), $4, $5, CAST($6 AS DOUBLE PRECISION)) \
             RETURNING id",
        )
        .bind(kr_id)
        .bind(now_ms)
        .bind(opt_f64(value))
        .bind(note.map(str::to_string))
        .bind(author.map(str::to_string))
        .bind(opt_f64(confidence))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(id)
    }

    /// Records what a metric reference reads now, when it differs from the latest record
    /// (value or error). Returns whether it was recorded.
    pub async fn record_observation(
        &mut self,
        source: &str,
        reference: &str,
        value: Result<f64, &str>,
        now_ms: i64,
    ) -> Result<bool> {
        type Row = (Option<f64>, Option<String>);
        let latest: Option<Row> = sqlx::query_as(
            "SELECT value, error FROM metric_observations WHERE source = $1 AND reference = $2 \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(source)
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await?;
        let (new_value, new_error) = match value {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e.to_string())),
        };
        if let Some((v, e)) = latest {
            if same(v, new_value) && e == new_error {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO metric_observations (source, reference, at_ms, value, error) \
             VALUES ($1, $2, $3, CAST($4 AS DOUBLE PRECISION), $5)",
        )
        .bind(source)
        .bind(reference)
        .bind(now_ms)
        .bind(opt_f64(new_value))
        .bind(new_error)
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// The latest successfully observed value of a metric reference.
    pub async fn latest_observation(
        &mut self,
        source: &str,
        reference: &str,
    ) -> Result<Option<f64>> {
        let row: Option<(f64,)> = sqlx::query_as(
            "SELECT value FROM metric_observations WHERE source = $1 AND reference = $2 AND value IS NOT NULL \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(source)
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.0))
    }
}

impl Store {
    pub async fn kr_states(&self) -> Result<Vec<KrState>> {
        let sql = format!("SELECT {KR_COLUMNS} FROM key_results ORDER BY position");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(decode_state).collect()
    }

    pub async fn kr_state(&self, kr_id: &str) -> Result<Option<KrState>> {
        let sql = format!("SELECT {KR_COLUMNS} FROM key_results WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(kr_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_state).transpose()
    }

    /// The error of a metric reference's latest observation, if it failed.
    pub async fn observation_error(&self, source: &str, reference: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT error FROM metric_observations WHERE source = $1 AND reference = $2 \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(source)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Per KR: the latest check-in, the latest change and the latest confidence.
    pub async fn kr_times(&self) -> Result<std::collections::HashMap<String, KrTimes>> {
        let mut out: std::collections::HashMap<String, KrTimes> = Default::default();
        let changes: Vec<(String, i64)> =
            sqlx::query_as("SELECT kr_id, MAX(at_ms) FROM kr_snapshots GROUP BY kr_id")
                .fetch_all(&self.pool)
                .await?;
        for (kr, at) in changes {
            out.entry(kr).or_default().last_change = Some(from_ms(at));
        }
        let checkins: Vec<(String, i64)> =
            sqlx::query_as("SELECT kr_id, MAX(at_ms) FROM checkins GROUP BY kr_id")
                .fetch_all(&self.pool)
                .await?;
        for (kr, at) in checkins {
            out.entry(kr).or_default().last_checkin = Some(from_ms(at));
        }
        type Row = (String, f64, Option<String>, i64, Option<String>);
        let confidences: Vec<Row> = sqlx::query_as(
            "SELECT c.kr_id, c.confidence, c.note, c.at_ms, c.author FROM checkins c \
             WHERE c.confidence IS NOT NULL AND c.id = (SELECT d.id FROM checkins d \
             WHERE d.kr_id = c.kr_id AND d.confidence IS NOT NULL \
             ORDER BY d.at_ms DESC, d.id DESC LIMIT 1)",
        )
        .fetch_all(&self.pool)
        .await?;
        for (kr, value, note, at, author) in confidences {
            out.entry(kr).or_default().confidence = Some(Confidence {
                value,
                note,
                at: from_ms(at),
                author,
            });
        }
        Ok(out)
    }

    /// A KR's confidence check-ins, oldest first (the trend on its page).
    pub async fn confidences(&self, kr_id: &str) -> Result<Vec<Confidence>> {
        type Row = (f64, Option<String>, i64, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT confidence, note, at_ms, author FROM checkins \
             WHERE kr_id = $1 AND confidence IS NOT NULL ORDER BY at_ms, id",
        )
        .bind(kr_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(value, note, at, author)| Confidence {
                value,
                note,
                at: from_ms(at),
                author,
            })
            .collect())
    }

    /// Each KR's snapshots as (time, progress, total), oldest first: what the flags replay.
    pub async fn progress_points(
        &self,
        kr_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<crate::progress::flags::Point>>> {
        let mut out: std::collections::HashMap<String, Vec<crate::progress::flags::Point>> =
            Default::default();
        if kr_ids.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "SELECT kr_id, at_ms, progress, target, reconstructed FROM kr_snapshots \
             WHERE kr_id IN ({}) ORDER BY at_ms, id",
            self.backend.json_texts("$1"),
        );
        let rows: Vec<(String, i64, f64, Option<f64>, i64)> = sqlx::query_as(&sql)
            .bind(super::sets::pack(kr_ids))
            .fetch_all(&self.pool)
            .await?;
        for (kr, at, progress, target, reconstructed) in rows {
            out.entry(kr)
                .or_default()
                .push(crate::progress::flags::Point {
                    at: from_ms(at),
                    progress,
                    target,
                    reconstructed: reconstructed != 0,
                });
        }
        Ok(out)
    }

    /// The newest `limit` snapshots of a KR, oldest first.
    pub async fn history(&self, kr_id: &str, limit: i64) -> Result<Vec<KrSnapshot>> {
        type Row = (i64, Option<f64>, Option<f64>, f64, i64, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at_ms, current, target, progress, item_count, cause, reconstructed FROM kr_snapshots \
             WHERE kr_id = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
        )
        .bind(kr_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<KrSnapshot> = rows
            .into_iter()
            .map(
                |(at, current, target, progress, items, cause, reconstructed)| KrSnapshot {
                    at: from_ms(at),
                    current,
                    target,
                    progress,
                    items,
                    cause,
                    reconstructed: reconstructed != 0,
                },
            )
            .collect();
        out.reverse();
        Ok(out)
    }
}
