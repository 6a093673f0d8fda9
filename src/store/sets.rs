//! Set statements and packed reads: how the store moves many rows in one round trip on
//! both backends through sqlx's `Any` driver, which cannot bind arrays.
//!
//! - **Writes**: on PostgreSQL the rows travel as one JSON text parameter (an array of
//!   arrays) that the database expands itself (`json_array_elements`) inside `INSERT …
//!   SELECT`, `UPDATE … FROM` or `… IN (SELECT …)`; on SQLite as a `VALUES` list with one
//!   bound parameter per cell ([`Backend::rows_relation`], [`bind_rows`]): SQLite's
//!   `json_each` hands each row over as JSON text that every `->>` parses again, which
//!   cost a 100,000-item first sync more than the inserts themselves. A page of items is
//!   one statement per table either way (SQLite's up to 32,766 parameters per statement
//!   hold a page; larger sets go in chunks of [`Backend::rows_per_statement`]).
//! - **Reads**: many rows come back as one JSON text value (`json_group_array` /
//!   `json_agg`), decoded by serde straight into tuples. sqlx hands every row of a plain
//!   query over from its SQLite worker thread and converts it to an `AnyRow`, about 2–3 µs
//!   a row — more than SQLite's own work for it.
//!
//! Floats that must survive exactly (computed values) are not read this way: SQLite prints
//! a REAL in JSON with 15 significant digits. Item estimates and weights are numbers from
//! the upstream, which 15 digits hold.

use serde::Deserialize;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use super::{Backend, Result, StoreError};

/// The SQL type of a column read from a JSON row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    Int,
    Float,
}

impl Backend {
    /// `SELECT c0, c1, … FROM <the rows of the JSON array in param>`: a JSON array of
    /// arrays as a relation, its columns named `c0`, `c1`, … with the given types.
    pub(crate) fn json_rows(self, param: &str, cols: &[Col]) -> String {
        let mut out = String::from("SELECT ");
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match self {
                Backend::Sqlite => out.push_str(&format!("value->>{i} AS c{i}")),
                Backend::Postgres => out.push_str(&match c {
                    Col::Text => format!("(x->>{i}) AS c{i}"),
                    Col::Int => format!("(x->>{i})::BIGINT AS c{i}"),
                    Col::Float => format!("(x->>{i})::DOUBLE PRECISION AS c{i}"),
                }),
            }
        }
        match self {
            Backend::Sqlite => out.push_str(&format!(" FROM json_each({param})")),
            // `jsonb`: the text is parsed once; on `json` every `->>` parses the row again.
            Backend::Postgres => {
                out.push_str(&format!(" FROM jsonb_array_elements({param}::jsonb) AS x"))
            }
        }
        out
    }

    /// How many rows of `cols` columns one write statement takes.
    pub(crate) fn rows_per_statement(self, cols: usize) -> usize {
        match self {
            // SQLite binds at most 32,766 parameters in one statement.
            Backend::Sqlite => (32_000 / cols.max(1)).min(1_000),
            Backend::Postgres => 5_000,
        }
    }

    /// Parameter `n` of a statement that holds a [`Backend::rows_relation`]: `$n` on
    /// PostgreSQL, an anonymous `?` on SQLite — so on SQLite the parameters must be bound
    /// in the order they appear in the statement's text.
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".into(),
            Backend::Postgres => format!("${n}"),
        }
    }

    /// `SELECT c0, c1, … FROM <n rows>`: the rows [`bind_rows`] binds from parameter
    /// `$first` on, as a relation with columns `c0`, `c1`, … of the given types. SQLite:
    /// `VALUES` with an anonymous parameter per cell (see [`Backend::param`]);
    /// PostgreSQL: one JSON parameter `$first` (`n` unused).
    pub(crate) fn rows_relation(self, first: usize, n: usize, cols: &[Col]) -> String {
        match self {
            Backend::Postgres => self.json_rows(&format!("${first}"), cols),
            Backend::Sqlite => {
                let mut out = String::with_capacity(40 + cols.len() * (16 + 6 * n));
                out.push_str("SELECT ");
                for i in 0..cols.len() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&format!("column{} AS c{i}", i + 1));
                }
                out.push_str(" FROM (VALUES ");
                // Anonymous `?`: SQLite looks a named parameter's name up in a list (and
                // sqlx asks it for every parameter's), quadratic in thousands of cells.
                let _ = first;
                for r in 0..sqlite_rows(n, cols.len()) {
                    out.push_str(if r == 0 { "(" } else { ", (" });
                    for c in 0..cols.len() {
                        out.push_str(if c == 0 { "?" } else { ", ?" });
                    }
                    out.push(')');
                }
                // The padding rows (all NULL) are not rows.
                out.push_str(") WHERE column1 IS NOT NULL");
                out
            }
        }
    }

    /// `SELECT value FROM <the strings of the JSON array in param>`: for `x IN (…)`.
    pub(crate) fn json_texts(self, param: &str) -> String {
        match self {
            Backend::Sqlite => format!("SELECT value FROM json_each({param})"),
            Backend::Postgres => format!("SELECT json_array_elements_text({param}::json)"),
        }
    }

    /// A query returning one text value: the rows of `from` (a FROM clause with its
    /// WHERE, no ORDER BY) as a JSON array of arrays of `exprs`, in `order_by` order.
    pub(crate) fn packed(self, exprs: &str, from: &str, order_by: Option<&str>) -> String {
        let order = order_by
            .map(|o| format!(" ORDER BY {o}"))
            .unwrap_or_default();
        match self {
            Backend::Sqlite => {
                format!("SELECT json_group_array(json_array({exprs}){order}) {from}")
            }
            Backend::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array({exprs}){order}), '[]')::TEXT {from}"
            ),
        }
    }

    /// A text column holding JSON, as a JSON value inside a packed read (not a string).
    pub(crate) fn json_value(self, column: &str) -> String {
        match self {
            Backend::Sqlite => format!("json({column})"),
            Backend::Postgres => format!("({column})::json"),
        }
    }

    /// The function that builds a JSON array from values.
    pub(crate) fn json_array_fn(self) -> &'static str {
        match self {
            Backend::Sqlite => "json_array",
            Backend::Postgres => "json_build_array",
        }
    }

    /// Where `needle` first occurs in `haystack` (1-based; 0 when it does not).
    pub(crate) fn position(self, needle: &str, haystack: &str) -> String {
        match self {
            Backend::Sqlite => format!("instr({haystack}, {needle})"),
            Backend::Postgres => format!("strpos({haystack}, {needle})"),
        }
    }

    /// A condition that a JSON text column holding a list of strings (labels,
    /// components) contains the string bound as `param`.
    pub(crate) fn json_list_contains(self, column: &str, param: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {param})")
            }
            Backend::Postgres => format!("({column})::jsonb ? {param}"),
        }
    }
}

/// Decodes a packed read (into rows that may borrow from its text).
pub(crate) fn unpack<'a, T: Deserialize<'a>>(text: &'a str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))
}

/// Binds the rows of a [`Backend::rows_relation`] (after the parameters bound before):
/// each cell on SQLite, in row order; one JSON text on PostgreSQL. A row is anything that
/// serializes as a JSON array of strings, numbers and nulls (a tuple); its first cell is
/// never null (on SQLite the padding rows are told apart by a null first cell).
pub(crate) fn bind_rows<'q, T: Serialize>(
    backend: Backend,
    mut q: Query<'q, Any, AnyArguments<'q>>,
    rows: &[T],
) -> Query<'q, Any, AnyArguments<'q>> {
    if backend == Backend::Postgres {
        return q.bind(pack(rows));
    }
    let mut cols = 0;
    for row in rows {
        let cells = match serde_json::to_value(row) {
            Ok(serde_json::Value::Array(cells)) => cells,
            Ok(other) => vec![other],
            Err(_) => Vec::new(),
        };
        cols = cells.len();
        for cell in cells {
            q = match cell {
                serde_json::Value::Null => q.bind(None::<String>),
                serde_json::Value::Bool(b) => q.bind(i64::from(b)),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => q.bind(i),
                    None => q.bind(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(t) => q.bind(t),
                // Nested values are not cells; as JSON text, as `json_each` would give them.
                other => q.bind(other.to_string()),
            };
        }
    }
    for _ in rows.len() * cols..sqlite_rows(rows.len(), cols) * cols {
        q = q.bind(None::<String>);
    }
    q
}

/// How many rows the `VALUES` of a set of `n` rows holds on SQLite: `n` rounded up to a
/// power of two (at least 8, at most a statement's worth), the rest padded with NULLs. So
/// each statement has a few texts, each prepared once per connection and kept (a text
/// per row count would prepare most statements anew and keep a prepared one per size).
fn sqlite_rows(n: usize, cols: usize) -> usize {
    n.next_power_of_two()
        .max(8)
        .min(Backend::Sqlite.rows_per_statement(cols))
        .max(n)
}

/// Rows as the JSON text parameter of a set statement.
pub(crate) fn pack<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_per_backend() {
        assert_eq!(
            Backend::Sqlite.json_rows("$1", &[Col::Text, Col::Int]),
            "SELECT value->>0 AS c0, value->>1 AS c1 FROM json_each($1)"
        );
        assert_eq!(
            Backend::Postgres.json_rows("$2", &[Col::Text, Col::Float]),
            "SELECT (x->>0) AS c0, (x->>1)::DOUBLE PRECISION AS c1 FROM jsonb_array_elements($2::jsonb) AS x"
        );
        assert_eq!(
            Backend::Sqlite.rows_relation(2, 2, &[Col::Text]),
            "SELECT column1 AS c0 FROM (VALUES (?), (?), (?), (?), (?), (?), (?), (?)) \
             WHERE column1 IS NOT NULL"
        );
        assert_eq!(
            Backend::Postgres.rows_relation(2, 2, &[Col::Text, Col::Int]),
            Backend::Postgres.json_rows("$2", &[Col::Text, Col::Int])
        );
        assert_eq!(Backend::Sqlite.rows_per_statement(26), 1_000);
        assert_eq!(Backend::Sqlite.rows_per_statement(64), 500);
        assert_eq!(sqlite_rows(100, 26), 128);
        assert_eq!(sqlite_rows(1, 3), 8);
        assert_eq!(sqlite_rows(900, 26), 1_000);
        assert_eq!(
            Backend::Sqlite.packed("a, b", "FROM t WHERE a = $1", Some("a")),
            "SELECT json_group_array(json_array(a, b) ORDER BY a) FROM t WHERE a = $1"
        );
    }
}
