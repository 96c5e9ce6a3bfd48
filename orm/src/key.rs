//! Primary and foreign key values, below every feature: what a key column's Rust
//! value is, how it is bound, listed and returned. Querysets, relations, paginators,
//! streams and bulk writes are generic over [`Key`]; they import nothing above it.
//!
//! A model's key type follows from its primary key column's SQL type
//! ([`KeyType`]): `SmallInt` is `i16`, `Integer` `i32`, `BigInt` `i64`, `Text`
//! `String`, `Uuid` `uuid::Uuid` (text on SQLite), whatever `diesel print-schema`
//! declared. Another key type is one more pair of impls here.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use diesel::expression::{AppearsOnTable, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::HasSqlType;
use diesel::sql_types::{Array, BigInt, Integer, SingleValue, SmallInt, SqlType, Text};
use diesel::sqlite::Sqlite;
use diesel::{Expression, QueryResult, RunQueryDsl};

use crate::connection::{AnyConnection, Db};
use crate::fragment::{ColumnRef, Fragment};
use crate::sql_type::SqlTypeInfo;
use crate::value::CursorValue;

/// The Rust value of a primary or foreign key column: `i16`, `i32`, `i64`,
/// `String` or `uuid::Uuid`.
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

    /// The PostgreSQL type of an array of keys.
    #[doc(hidden)]
    fn pg_array_metadata(
        lookup: &mut <Pg as diesel::sql_types::TypeMetadata>::MetadataLookup,
    ) -> <Pg as diesel::sql_types::TypeMetadata>::TypeMetadata;

    /// Writes `keys` as one PostgreSQL array value of the key column's type.
    #[doc(hidden)]
    fn write_pg_array<'b>(keys: &'b [Self], out: &mut Output<'b, '_, Pg>) -> serialize::Result;

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
    note = "keys are `SmallInt` (i16), `Integer` (i32), `BigInt` (i64), `Text` (String) or `Uuid` (uuid::Uuid) columns, as `diesel print-schema` declares them"
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

    fn pg_array_metadata(
        lookup: &mut <Pg as diesel::sql_types::TypeMetadata>::MetadataLookup,
    ) -> <Pg as diesel::sql_types::TypeMetadata>::TypeMetadata {
        <Pg as HasSqlType<Array<$sql>>>::metadata(lookup)
    }

            fn write_pg_array<'b>(keys: &'b [Self], out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                ToSql::<Array<$sql>, Pg>::to_sql(keys, out)
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

    fn pg_array_metadata(
        lookup: &mut <Pg as diesel::sql_types::TypeMetadata>::MetadataLookup,
    ) -> <Pg as diesel::sql_types::TypeMetadata>::TypeMetadata {
        <Pg as HasSqlType<Array<Text>>>::metadata(lookup)
    }

    fn write_pg_array<'b>(keys: &'b [Self], out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Array<Text>, Pg>::to_sql(keys, out)
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

impl Key for uuid::Uuid {
    type SqlType = diesel::sql_types::Uuid;
    // Rust, PostgreSQL and SQLite's lowercase text all order uuids by their bytes,
    // but client-side ordering packs each value in 64 bits: left to the database.
    const ORDERS_LIKE_SQL: bool = false;

    fn cursor_value(&self) -> CursorValue {
        CursorValue::Uuid(*self)
    }

    fn placeholder() -> Self {
        uuid::Uuid::nil()
    }

    fn walk_bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_bind_param::<diesel::sql_types::Uuid, uuid::Uuid>(self)
    }

    fn walk_pg_array<'b>(keys: &'b [Self], out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<Array<diesel::sql_types::Uuid>, [uuid::Uuid]>(keys)
    }

    fn pg_array_metadata(
        lookup: &mut <Pg as diesel::sql_types::TypeMetadata>::MetadataLookup,
    ) -> <Pg as diesel::sql_types::TypeMetadata>::TypeMetadata {
        <Pg as HasSqlType<Array<diesel::sql_types::Uuid>>>::metadata(lookup)
    }

    fn write_pg_array<'b>(keys: &'b [Self], out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Array<diesel::sql_types::Uuid>, Pg>::to_sql(keys, out)
    }

    fn write_json(&self, json: &mut String) {
        // SQLite stores a uuid as its hyphenated lowercase text.
        json.push('"');
        json.push_str(
            self.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        json.push('"');
    }

    fn load_returned<Q>(statement: &Q, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>
    where
        Q: QueryFragment<Db>,
    {
        Returned::<Q, diesel::sql_types::Uuid>(statement, PhantomData).load::<uuid::Uuid>(conn)
    }
}

impl KeyType for diesel::sql_types::Uuid {
    type Key = uuid::Uuid;
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

/// `("t"."id" = ANY($1))` with one array bind where the backend has arrays, else
/// `("t"."id" IN (?, ?, ...))`: the text diesel's `eq_any` renders, for keys of
/// any type (diesel's own node needs the key type on every backend).
pub(crate) struct KeyIn<K> {
    column: ColumnRef,
    keys: KeyList<K>,
}

impl<K: Key> KeyIn<K> {
    pub(crate) fn fragment(column: ColumnRef, keys: Vec<K>) -> Fragment {
        std::sync::Arc::new(Self {
            column,
            keys: KeyList(keys),
        })
    }
}

impl<K: Key> QueryFragment<Db> for KeyIn<K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(");
        if crate::Backend::rendering(out.backend())
            .capability()
            .array_binds
        {
            self.column.qualified.walk_ast(out.reborrow())?;
            out.push_sql(" = ANY(");
            out.push_bind_param::<KeyArray<K>, KeyList<K>>(&self.keys)?;
            out.push_sql(")");
        } else if self.keys.0.is_empty() {
            out.push_sql("1=0");
        } else {
            // One placeholder per key: the text changes with the count.
            out.unsafe_to_cache_prepared();
            self.column.qualified.walk_ast(out.reborrow())?;
            out.push_sql(" IN (");
            for (i, key) in self.keys.0.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                key.walk_bind(&mut out)?;
            }
            out.push_sql(")");
        }
        out.push_sql(")");
        Ok(())
    }
}

impl<K> QueryId for KeyIn<K> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// The key type of a key column's SQL type, `Nullable` or not.
pub trait ColumnKey {
    /// The key's Rust type.
    type Key: Key;
}

impl<ST: KeyType> ColumnKey for ST {
    type Key = ST::Key;
}

impl<ST: KeyType> ColumnKey for diesel::sql_types::Nullable<ST> {
    type Key = ST::Key;
}

/// `eq_any` for key columns of every key type.
///
/// diesel's own `eq_any` on the multi-backend connection needs the column's type on
/// both backends, which a `Uuid` column does not have on SQLite. This one takes any
/// key type and any number of keys in one bound value: an array on PostgreSQL, a
/// JSON list on SQLite (as prefetch key lists are).
///
/// ```
/// # include!("../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// use orm::prelude::*;
/// let qs = Message::objects().filter(weave_message::id.eq_any_key([1, 2]));
/// assert!(qs.sql(Backend::Postgres)?.contains(r#"("weave_message"."id" = ANY($1))"#));
/// assert!(qs.sql(Backend::Sqlite)?.contains("(`weave_message`.`id` IN (SELECT value FROM json_each(?)))"));
/// # Ok(()) }
/// ```
pub trait KeyExpressionMethods: diesel::Column + Expression + Sized
where
    Self::SqlType: ColumnKey,
{
    /// `self IN keys`.
    fn eq_any_key<I>(self, keys: I) -> AnyKey<Self, <Self::SqlType as ColumnKey>::Key>
    where
        I: IntoIterator<Item = <Self::SqlType as ColumnKey>::Key>,
        Self: QueryFragment<Db> + Send + Sync + 'static,
    {
        let keys: Vec<_> = keys.into_iter().collect();
        AnyKey {
            json: json_list(&keys),
            inner: KeyIn {
                column: ColumnRef::of(self),
                keys: KeyList(keys),
            },
            _column: PhantomData,
        }
    }
}

impl<C> KeyExpressionMethods for C
where
    C: diesel::Column + Expression,
    C::SqlType: ColumnKey,
{
}

/// The expression [`KeyExpressionMethods::eq_any_key`] builds.
pub struct AnyKey<C, K> {
    inner: KeyIn<K>,
    /// The keys as one JSON list, for a backend without arrays.
    json: String,
    _column: PhantomData<fn() -> C>,
}

impl<C, K> Expression for AnyKey<C, K> {
    type SqlType = diesel::sql_types::Bool;
}

impl<C: AppearsOnTable<QS>, K, QS: ?Sized> AppearsOnTable<QS> for AnyKey<C, K> {}

impl<C: ValidGrouping<()>, K> ValidGrouping<()> for AnyKey<C, K> {
    type IsAggregate = C::IsAggregate;
}

impl<C, K: Key> QueryFragment<Db> for AnyKey<C, K> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        let capability = crate::Backend::rendering(out.backend()).capability();
        if capability.array_binds || !capability.json_key_lists {
            return self.inner.walk_ast(out);
        }
        out.push_sql("(");
        self.inner.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(&self.json)?;
        out.push_sql(")))");
        Ok(())
    }
}

impl<C, K> QueryId for AnyKey<C, K> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Keys bound as one array.
pub(crate) struct KeyList<K>(Vec<K>);

impl<K: Debug> Debug for KeyList<K> {
    /// As the list itself: what capture records as the bind's text (`[1, 2, 3]`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A PostgreSQL array of keys `K` as the multi-backend connection carries it (it
/// has no array types of its own). SQLite has no arrays: binding one there is an
/// error.
#[derive(Debug)]
pub(crate) struct KeyArray<K>(PhantomData<K>);

impl<K> Default for KeyArray<K> {
    fn default() -> Self {
        KeyArray(PhantomData)
    }
}

impl<K: 'static> SqlType for KeyArray<K> {
    type IsNull = diesel::sql_types::is_nullable::NotNull;
}

impl<K: 'static> SingleValue for KeyArray<K> {}

impl<K: Key> HasSqlType<KeyArray<K>> for Pg {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        K::pg_array_metadata(lookup)
    }
}

impl<K: Key> HasSqlType<KeyArray<K>> for Sqlite {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        <Sqlite as HasSqlType<Text>>::metadata(lookup)
    }
}

impl<K: Key> HasSqlType<KeyArray<K>> for crate::MultiBackend {
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        crate::MultiBackend::lookup_sql_type::<KeyArray<K>>(lookup)
    }
}

impl<K: Key> ToSql<KeyArray<K>, Pg> for KeyList<K> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        K::write_pg_array(&self.0, out)
    }
}

impl<K: Key> ToSql<KeyArray<K>, Sqlite> for KeyList<K> {
    fn to_sql<'b>(&'b self, _: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        Err("SQLite has no arrays: key lists are bound one key at a time there".into())
    }
}

impl<K: Key> ToSql<KeyArray<K>, crate::MultiBackend> for KeyList<K> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, crate::MultiBackend>) -> serialize::Result {
        out.set_value((KeyArray::<K>::default(), self));
        Ok(IsNull::No)
    }
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
