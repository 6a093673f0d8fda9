//! Set statements and packed reads: how the store moves many rows in one round trip on
//! both backends through sqlx's `Any` driver, which cannot bind arrays.
//!
//! - **Writes**: the rows travel as one JSON text parameter (an array of arrays) that the
//!   database expands itself (`json_each` on SQLite, `json_array_elements` on
//!   PostgreSQL) inside `INSERT … SELECT`, `UPDATE … FROM` or `… IN (SELECT …)`. A page of
//!   items is one statement per table, whatever its size, and the statement's text is the
//!   same every time (prepared once per connection).
//! - **Reads**: many rows come back as one JSON text value (`json_group_array` /
//!   `json_agg`), decoded by serde straight into tuples. sqlx hands every row of a plain
//!   query over from its SQLite worker thread and converts it to an `AnyRow`, about 2–3 µs
//!   a row — more than SQLite's own work for it.
//!
//! Floats that must survive exactly (computed values) are not read this way: SQLite prints
//! a REAL in JSON with 15 significant digits. Item estimates and weights are numbers from
//! the upstream, which 15 digits hold.

use serde::de::DeserializeOwned;

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
            Backend::Postgres => {
                out.push_str(&format!(" FROM json_array_elements({param}::json) AS x"))
            }
        }
        out
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

/// Decodes a packed read.
pub(crate) fn unpack<T: DeserializeOwned>(text: &str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("packed rows: {e}")))
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
            "SELECT (x->>0) AS c0, (x->>1)::DOUBLE PRECISION AS c1 FROM json_array_elements($2::json) AS x"
        );
        assert_eq!(
            Backend::Sqlite.packed("a, b", "FROM t WHERE a = $1", Some("a")),
            "SELECT json_group_array(json_array(a, b) ORDER BY a) FROM t WHERE a = $1"
        );
    }
}
