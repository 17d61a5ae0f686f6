//! What both backends share about a statement: its text, written once,
//! and how a row of its answer is read ([`Cells`]). How a statement runs
//! (a writer-thread job on SQLite, a pooled transaction on PostgreSQL) and
//! how its parameters are bound stay with each backend.

use std::sync::{Arc, OnceLock};

use uuid::Uuid;

use crate::StoreError;

/// A statement written once, with PostgreSQL's `$N` placeholders.
///
/// SQLite's `?N` is positional like `$N`, so [`Sql::sqlite`] is an exact
/// translation. Text shared this way uses only what both dialects read:
/// `CAST(… AS …)` rather than `::`, `true`/`false` for booleans, and a
/// parameter's typed use before its `IS NULL` test (PostgreSQL infers the
/// type from the first use).
pub(crate) struct Sql {
    text: &'static str,
    sqlite: OnceLock<String>,
}

impl Sql {
    pub(crate) const fn new(text: &'static str) -> Self {
        Self {
            text,
            sqlite: OnceLock::new(),
        }
    }

    pub(crate) fn pg(&self) -> &'static str {
        self.text
    }

    pub(crate) fn sqlite(&self) -> &str {
        self.sqlite.get_or_init(|| self.text.replace('$', "?"))
    }
}

/// What a decoder reads from a row, by column index. Implemented for both
/// drivers' rows: uuids are TEXT on SQLite and UUID on PostgreSQL, and
/// PostgreSQL's narrower integer columns read as `i64` too.
pub(crate) trait Cells {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError>;
    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError>;

    /// A non-negative count or cap (attempts, `max_in_flight`).
    fn count(&self, i: usize) -> Result<u32, StoreError> {
        let n = self.int(i)?;
        u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("column {i}: {n} is not a count")))
    }

    fn opt_count(&self, i: usize) -> Result<Option<u32>, StoreError> {
        self.opt_int(i)?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("column {i}: {n} is not a count")))
            })
            .transpose()
    }

    /// A JSON list of strings kept in a TEXT column (event names).
    fn text_list(&self, i: usize) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self.text(i)?)
            .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }
}

/// A parameter either driver binds: what lets an aggregate's module say
/// the values of its statements once. Uuids go to SQLite as text and
/// booleans as integers; integers go to PostgreSQL at the width of the
/// column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Uuid(Uuid),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Self::Uuid(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V, ValueRef};
        Ok(match self {
            Self::Null => ToSqlOutput::Owned(V::Null),
            Self::Int(v) => ToSqlOutput::Owned(V::Integer(*v)),
            Self::Bool(v) => ToSqlOutput::Owned(V::Integer(i64::from(*v))),
            Self::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Self::Uuid(v) => ToSqlOutput::Owned(V::Text(v.to_string())),
        })
    }
}

impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::{IsNull, Type};
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Self::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Self::Int(v) => v.to_sql(ty, out),
            Self::Bool(v) => v.to_sql(ty, out),
            Self::Text(v) => v.to_sql(ty, out),
            Self::Uuid(v) => v.to_sql(ty, out),
        }
    }

    /// Each variant is checked against the column's type by the value it
    /// delegates to.
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A list of strings as it is kept in a TEXT column.
pub(crate) fn text_list(names: &[String]) -> String {
    serde_json::to_string(names).expect("a list of strings serialises")
}

impl Cells for rusqlite::Row<'_> {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        let s: String = self.get(i).map_err(crate::sqlite::backend)?;
        Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }

    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        let s: Option<String> = self.get(i).map_err(crate::sqlite::backend)?;
        s.map(|s| Uuid::parse_str(&s).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}"))))
            .transpose()
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }

    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.get(i).map_err(crate::sqlite::backend)
    }
}

fn pg_cell(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(Arc::new(e))
}

impl Cells for tokio_postgres::Row {
    fn uuid(&self, i: usize) -> Result<Uuid, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }

    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is null")))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        use tokio_postgres::types::Type;
        let ty = self.columns()[i].type_();
        if *ty == Type::INT4 {
            self.try_get::<_, Option<i32>>(i)
                .map(|v| v.map(i64::from))
                .map_err(pg_cell)
        } else if *ty == Type::INT2 {
            self.try_get::<_, Option<i16>>(i)
                .map(|v| v.map(i64::from))
                .map_err(pg_cell)
        } else {
            self.try_get(i).map_err(pg_cell)
        }
    }

    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.try_get(i).map_err(pg_cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_from_what_records_hold() {
        assert_eq!(Value::from(None::<String>), Value::Null);
        assert_eq!(Value::from(Some(4u32)), Value::Int(4));
        assert_eq!(Value::from("x"), Value::Text("x".into()));
    }

    #[test]
    fn sqlite_text_numbers_placeholders_the_same() {
        let s = Sql::new("UPDATE t SET a = $2, b = $10 WHERE id = $1 AND c = $2");
        assert_eq!(
            s.sqlite(),
            "UPDATE t SET a = ?2, b = ?10 WHERE id = ?1 AND c = ?2"
        );
        assert_eq!(
            s.pg(),
            "UPDATE t SET a = $2, b = $10 WHERE id = $1 AND c = $2"
        );
    }
}
