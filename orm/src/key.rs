//! Primary and foreign key values, below every feature: what a key column's Rust
//! value is, how it is bound, listed and returned. Querysets, relations, paginators,
//! streams and bulk writes are generic over [`Key`]; they import nothing above it.
//!
//! A model's key type follows from its primary key column's SQL type
//! ([`KeyType`]): `SmallInt` is `i16`, `Integer` `i32`, `BigInt` `i64`, `Text`
//! `String`, whatever `diesel print-schema` declared. Another key type is one more
//! pair of impls here (uuid on PostgreSQL is the next).

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, SingleValue, SmallInt, SqlType, Text};
use diesel::{QueryResult, RunQueryDsl};

use crate::connection::{AnyConnection, Db};
use crate::fragment::{ColumnRef, Fragment};
use crate::sql_type::SqlTypeInfo;
use crate::value::CursorValue;

/// The Rust value of a primary or foreign key column: `i16`, `i32`, `i64` or
/// `String`.
///
/// Keys are compared, hashed and ordered in Rust (to share a prefetched parent among
/// its children, to deduplicate a key list), bound as parameters of their column's
/// own SQL type, and listed in one bind on either backend (an array on PostgreSQL, a
/// JSON list on SQLite).
pub trait Key: Clone + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    /// The SQL type of the key column.
    type SqlType: SqlType + SingleValue + SqlTypeInfo + KeyType<Key = Self> + Send + Sync + 'static;

    /// Whether Rust orders keys exactly as SQL does (integers; not text, whose order
    /// is the database's collation).
    const ORDERS_LIKE_SQL: bool;

    /// This key as a keyset cursor value.
    fn cursor_value(&self) -> CursorValue;

    /// A key whose value does not matter (to render a statement's SQL text).
    #[doc(hidden)]
    fn placeholder() -> Self;

    /// Pushes this key as one bound parameter of its SQL type.
    #[doc(hidden)]
    fn walk_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()>;

    /// Pushes `keys` as one PostgreSQL array bind (`UNNEST($1)`, `= ANY($1)`).
    #[doc(hidden)]
    fn walk_pg_array<'b>(keys: &'b [Self], out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;

    /// Appends this key as a JSON value (a number, or a string for text keys).
    #[doc(hidden)]
    fn write_json(&self, json: &mut String);

    /// Loads the keys a statement returns (`INSERT ... RETURNING "id"`).
    #[doc(hidden)]
    fn load_returned<Q>(statement: &Q, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>
    where
        Q: QueryFragment<Db>;
}

/// The SQL types a primary key column may have, with their Rust key type.
#[diagnostic::on_unimplemented(
    message = "a primary key of SQL type `{Self}` is not supported",
    label = "the model's primary key column",
    note = "keys are `SmallInt` (i16), `Integer` (i32), `BigInt` (i64) or `Text` (String) columns, as `diesel print-schema` declares them"
)]
pub trait KeyType: SqlType + SingleValue {
    /// The key's Rust type.
    type Key: Key<SqlType = Self>;
}

/// A statement read as rows of one column of SQL type `ST` (its keys).
struct Returned<'q, Q, ST>(&'q Q, PhantomData<ST>);

impl<Q: QueryFragment<Db>, ST> QueryFragment<Db> for Returned<'_, Q, ST> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

impl<Q, ST> QueryId for Returned<'_, Q, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST: SqlType + SingleValue> Query for Returned<'_, Q, ST> {
    type SqlType = ST;
}

impl<Q, ST, Conn> RunQueryDsl<Conn> for Returned<'_, Q, ST> {}

macro_rules! integer_key {
    ($($rust:ty => $sql:ty),* $(,)?) => {$(
        impl Key for $rust {
            type SqlType = $sql;
            const ORDERS_LIKE_SQL: bool = true;

            fn cursor_value(&self) -> CursorValue {
                CursorValue::Int(i64::from(*self))
            }

            fn placeholder() -> Self {
                0
            }

            fn walk_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
                out.push_bind_param::<$sql, $rust>(self)
            }

            fn walk_pg_array<'b>(keys: &'b [Self], out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_bind_param::<Array<$sql>, [$rust]>(keys)
            }

            fn write_json(&self, json: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(json, "{self}");
            }

            fn load_returned<Q>(statement: &Q, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>
            where
                Q: QueryFragment<Db>,
            {
                Returned::<Q, $sql>(statement, PhantomData).load::<$rust>(conn)
            }
        }

        impl KeyType for $sql {
            type Key = $rust;
        }
    )*};
}

integer_key! {
    i16 => SmallInt,
    i32 => Integer,
    i64 => BigInt,
}

impl Key for String {
    type SqlType = Text;
    const ORDERS_LIKE_SQL: bool = false;

    fn cursor_value(&self) -> CursorValue {
        CursorValue::Text(self.clone())
    }

    fn placeholder() -> Self {
        String::new()
    }

    fn walk_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_bind_param::<Text, String>(self)
    }

    fn walk_pg_array<'b>(keys: &'b [Self], out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Array<Text>, [String]>(keys)
    }

    fn write_json(&self, json: &mut String) {
        // serde_json escapes quotes, backslashes and control characters.
        json.push_str(&serde_json::Value::from(self.as_str()).to_string());
    }

    fn load_returned<Q>(statement: &Q, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>
    where
        Q: QueryFragment<Db>,
    {
        Returned::<Q, Text>(statement, PhantomData).load::<String>(conn)
    }
}

impl KeyType for Text {
    type Key = String;
}

/// `[1,2,3]` or `["a","b"]`: the JSON text of a key list, bound as one parameter.
pub(crate) fn json_list<K: Key>(keys: &[K]) -> String {
    let mut json = String::with_capacity(keys.len() * 8 + 2);
    json.push('[');
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        key.write_json(&mut json);
    }
    json.push(']');
    json
}

/// How a key column is compared with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    Eq,
    Greater,
    Less,
}

/// `("t"."id" = $1)` (or `>`, `<`), the key bound with its column's type: the same
/// text diesel's `eq`/`gt`/`lt` render.
pub(crate) struct KeyCompare<K> {
    pub(crate) column: ColumnRef,
    pub(crate) compare: Compare,
    pub(crate) key: K,
}

impl<K: Key> KeyCompare<K> {
    pub(crate) fn fragment(column: ColumnRef, compare: Compare, key: K) -> Fragment {
        std::sync::Arc::new(Self {
            column,
            compare,
            key,
        })
    }
}

impl<K: Key> QueryFragment<Db> for KeyCompare<K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(");
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(match self.compare {
            Compare::Eq => " = ",
            Compare::Greater => " > ",
            Compare::Less => " < ",
        });
        self.key.walk_bind(&mut out)?;
        out.push_sql(")");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::json_list;

    #[test]
    fn a_key_list_is_a_json_array() {
        assert_eq!(json_list::<i64>(&[]), "[]");
        assert_eq!(json_list(&[7_i64]), "[7]");
        assert_eq!(json_list(&[-1, 2, i64::MAX]), "[-1,2,9223372036854775807]");
        assert_eq!(json_list(&[-3_i16, 4]), "[-3,4]");
        assert_eq!(
            json_list(&["a\"b".to_owned(), "ü\\".to_owned()]),
            r#"["a\"b","ü\\"]"#
        );
    }
}
