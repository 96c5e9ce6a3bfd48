//! Column types beyond the multi-backend connection's shared set.
//!
//! diesel's multi-backend connection binds and reads only the SQL types both inner
//! backends implement. This module adds, for that connection:
//!
//! - diesel's `Timestamptz` (`chrono::NaiveDateTime` as UTC, `DateTime<Utc>`) and
//!   `Uuid` (`uuid::Uuid`): PostgreSQL's own types there; on SQLite, which has
//!   neither, UTC text `YYYY-MM-DD HH:MM:SS.ffffff` and the 36-character lowercase
//!   text (both order as the values do).
//! - diesel's `Json` and `Jsonb` (`serde_json::Value`), which both backends
//!   implement (SQLite: text JSON and SQLite's binary JSONB).
//!
//! Each goes through a private SQL type with the PostgreSQL type's OID and SQLite's
//! `Text`, so a value is sent as what its column is: a `timestamptz` bind, not a
//! `timestamp` the server converts with the session's `TimeZone`.
//!
//! Rows are read by each inner backend with its own decoding (see [`SqliteRead`]):
//! on SQLite a `Timestamptz` or `Uuid` column is decoded as the text it holds.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Json, Jsonb, Text, Timestamp, Timestamptz, TimestamptzSqlite, Uuid};
use diesel::sqlite::Sqlite;
use diesel::{QueryId, SqlType};

use crate::connection::MultiBackend;

type SqliteValue<'a> = <Sqlite as diesel::backend::Backend>::RawValue<'a>;

/// `timestamptz` on PostgreSQL, UTC text on SQLite: what the multi-backend
/// connection binds and reads for diesel's `Timestamptz`.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct PortableTimestamptz;

/// `uuid` on PostgreSQL, text on SQLite: what the multi-backend connection binds and
/// reads for diesel's `Uuid`.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct PortableUuid;

/// SQLite's text form of a UTC time: diesel's own `Timestamp` format.
const SQLITE_UTC: &str = "%F %T%.f";

// ---- timestamptz ---------------------------------------------------------------

impl ToSql<PortableTimestamptz, Pg> for NaiveDateTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // A timestamptz's binary form is microseconds since 2000 in UTC.
        ToSql::<Timestamptz, Pg>::to_sql(self, out)
    }
}

impl ToSql<PortableTimestamptz, Pg> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Timestamptz, Pg>::to_sql(self, out)
    }
}

impl FromSql<PortableTimestamptz, Pg> for NaiveDateTime {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        FromSql::<Timestamptz, Pg>::from_sql(value)
    }
}

impl FromSql<PortableTimestamptz, Pg> for DateTime<Utc> {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        FromSql::<Timestamptz, Pg>::from_sql(value)
    }
}

impl ToSql<PortableTimestamptz, Sqlite> for NaiveDateTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        ToSql::<Timestamp, Sqlite>::to_sql(self, out)
    }
}

impl ToSql<PortableTimestamptz, Sqlite> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.naive_utc().format(SQLITE_UTC).to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<PortableTimestamptz, Sqlite> for NaiveDateTime {
    fn from_sql(mut value: SqliteValue<'_>) -> deserialize::Result<Self> {
        // The library writes UTC without an offset, in diesel's own format: one parse.
        let text = value.read_text();
        if let Ok(time) = NaiveDateTime::parse_from_str(text, SQLITE_UTC) {
            return Ok(time);
        }
        // Text written with an offset by another program is converted to UTC, as a
        // `DateTime<Utc>` read is; any other text goes through diesel's formats.
        if has_offset(text) {
            let instant: DateTime<Utc> = FromSql::<TimestamptzSqlite, Sqlite>::from_sql(value)?;
            return Ok(instant.naive_utc());
        }
        FromSql::<Timestamp, Sqlite>::from_sql(value)
    }
}

/// Whether a timestamp's text carries a UTC offset (`+09:00`, `-05:00`, `Z`) after
/// its date.
fn has_offset(text: &str) -> bool {
    text.get(10..)
        .is_some_and(|time| time.contains(['+', '-', 'Z']))
}

impl FromSql<PortableTimestamptz, Sqlite> for DateTime<Utc> {
    fn from_sql(value: SqliteValue<'_>) -> deserialize::Result<Self> {
        // Text with an offset is converted to UTC; text without one is UTC.
        FromSql::<TimestamptzSqlite, Sqlite>::from_sql(value)
    }
}

// ---- uuid ------------------------------------------------------------------------

impl ToSql<PortableUuid, Pg> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Uuid, Pg>::to_sql(self, out)
    }
}

impl FromSql<PortableUuid, Pg> for uuid::Uuid {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        FromSql::<Uuid, Pg>::from_sql(value)
    }
}

impl ToSql<PortableUuid, Sqlite> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<PortableUuid, Sqlite> for uuid::Uuid {
    fn from_sql(value: SqliteValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(uuid::Uuid::parse_str(&text)?)
    }
}

// ---- through the multi-backend connection ---------------------------------------

/// `diesel SQL type (as) carried SQL type => Rust types`.
macro_rules! multi_backend {
    ($($sql:ty as $carried:ty => $($rust:ty),+;)*) => {$(
        impl diesel::sql_types::HasSqlType<$sql> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$carried>(lookup)
            }
        }
        $(
            impl ToSql<$sql, MultiBackend> for $rust {
                fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                    out.set_value((<$carried>::default(), self));
                    Ok(IsNull::No)
                }
            }

            impl FromSql<$sql, MultiBackend> for $rust {
                fn from_sql(
                    bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
                ) -> deserialize::Result<Self> {
                    bytes.from_sql::<Self, $carried>()
                }
            }
        )+
    )*};
}

multi_backend! {
    Timestamptz as PortableTimestamptz => NaiveDateTime, DateTime<Utc>;
    Uuid as PortableUuid => uuid::Uuid;
    Json as Json => serde_json::Value;
    Jsonb as Jsonb => serde_json::Value;
}

// ---- how SQLite reads a row ---------------------------------------------------------

/// How SQLite reads values of a SQL type, which decides how a model's rows load
/// there: [`Native`] (SQLite's own decoding, as hand-written diesel's, of
/// [`AsSqlite`](Self::AsSqlite): the type itself, or for diesel's `Timestamptz` and
/// `Uuid` the text form SQLite holds them in) or [`NotOnSqlite`] (a
/// PostgreSQL-only type: loading such a row on SQLite is
/// [`Error::Unsupported`](crate::Error::Unsupported), before any SQL).
///
/// diesel's SQL types implement it here; a SQL type of your own (a PostgreSQL enum
/// from `print-schema`) implements it in two lines:
///
/// ```
/// # mod schema { #[derive(diesel::sql_types::SqlType)] #[diesel(postgres_type(name = "mood"))] pub struct Mood; }
/// impl orm::types::SqliteRead for schema::Mood {
///     type Read = orm::types::NotOnSqlite;
///     type AsSqlite = Self;
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "orm does not know how SQLite reads `{Self}`",
    note = "implement `orm::types::SqliteRead` for it: `type Read = orm::types::NotOnSqlite; type AsSqlite = Self;` for a PostgreSQL-only type"
)]
pub trait SqliteRead {
    /// [`Native`] or [`NotOnSqlite`].
    type Read: ReadPath;
    /// The SQL type SQLite decodes the column's values as.
    type AsSqlite;
}

/// SQLite reads the type with its own decoding.
#[derive(Debug, Clone, Copy)]
pub struct Native;
/// SQLite cannot hold the type.
#[derive(Debug, Clone, Copy)]
pub struct NotOnSqlite;

/// [`Native`] or [`NotOnSqlite`], and how it combines with another: a row is read
/// on the weakest path any of its columns needs.
pub trait ReadPath {
    /// The path of a row with a column of this path and columns of path `Other`.
    #[doc(hidden)]
    type Or<Other: ReadPath>: ReadPath;
}

impl ReadPath for Native {
    type Or<Other: ReadPath> = Other;
}

impl ReadPath for NotOnSqlite {
    type Or<Other: ReadPath> = NotOnSqlite;
}

macro_rules! sqlite_read {
    ($path:ident: $($ty:ty $(as $as:ty)?),* $(,)?) => {$(
        impl SqliteRead for $ty {
            type Read = $path;
            type AsSqlite = sqlite_read!(@as $ty $(, $as)?);
        }
    )*};
    (@as $ty:ty) => { $ty };
    (@as $ty:ty, $as:ty) => { $as };
}

sqlite_read!(Native:
    diesel::sql_types::Bool,
    diesel::sql_types::SmallInt,
    diesel::sql_types::Integer,
    diesel::sql_types::BigInt,
    diesel::sql_types::Float,
    diesel::sql_types::Double,
    diesel::sql_types::Text,
    diesel::sql_types::Binary,
    diesel::sql_types::Date,
    diesel::sql_types::Time,
    diesel::sql_types::Timestamp,
    diesel::sql_types::Numeric,
    diesel::sql_types::Json,
    diesel::sql_types::Jsonb,
    diesel::sql_types::TimestamptzSqlite,
    diesel::sql_types::Timestamptz as PortableTimestamptz,
    diesel::sql_types::Uuid as PortableUuid,
);
sqlite_read!(NotOnSqlite:
    diesel::sql_types::Interval,
    diesel::sql_types::Money,
    diesel::sql_types::Oid,
);

impl<T: SqliteRead> SqliteRead for diesel::sql_types::Array<T> {
    type Read = NotOnSqlite;
    type AsSqlite = Self;
}

impl<T: SqliteRead + diesel::sql_types::SqlType> SqliteRead for diesel::sql_types::Nullable<T> {
    type Read = T::Read;
    type AsSqlite = diesel::sql_types::Nullable<T::AsSqlite>;
}

impl<T: SqliteRead + diesel::sql_types::SqlType> SqliteRead for diesel::sql_types::Range<T> {
    type Read = NotOnSqlite;
    type AsSqlite = Self;
}

macro_rules! sqlite_read_tuples {
    ($first:ident $(, $rest:ident)*) => {
        impl<$first: SqliteRead $(, $rest: SqliteRead)*> SqliteRead for ($first, $($rest,)*) {
            type Read = <$first::Read as ReadPath>::Or<<($($rest,)*) as SqliteRead>::Read>;
            type AsSqlite = ($first::AsSqlite, $($rest::AsSqlite,)*);
        }
        sqlite_read_tuples!($($rest),*);
    };
    () => {
        impl SqliteRead for () {
            type Read = Native;
            type AsSqlite = ();
        }
    };
}

sqlite_read_tuples!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

/// The SQL type of rows `R` (a model, a tuple of models, `Option`s of them).
pub type RowSqlType<R> =
    diesel::dsl::SqlTypeOf<<R as diesel::Selectable<crate::connection::Db>>::SelectExpression>;

/// The SQLite read path of rows `R`.
pub type ReadOf<R> = <RowSqlType<R> as SqliteRead>::Read;

/// The SQL type SQLite decodes rows `R` as.
pub type AsSqliteOf<R> = <RowSqlType<R> as SqliteRead>::AsSqlite;

/// A row with a PostgreSQL-only column was to be loaded on SQLite: the typed cause
/// that [`Error::Unsupported`](crate::Error::Unsupported) is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PostgresOnlyRows;

impl std::fmt::Display for PostgresOnlyRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rows with PostgreSQL-only columns")
    }
}

impl std::error::Error for PostgresOnlyRows {}

// ---- PostgreSQL-only expressions -------------------------------------------------

/// A PostgreSQL-only expression in a queryset: made by [`pg`].
#[derive(Debug, Clone, Copy)]
pub struct PostgresOnly<E>(E);

/// Wraps an expression only PostgreSQL has, for a filter or an update
/// (`update(conn, orm::pg(column.eq(value)))` for a PostgreSQL-only column):
/// `ilike`, array operators (`@>`, `&&`), jsonb operators (`@>`, `->>`), comparisons
/// with a PostgreSQL-only type (an enum, an array). It renders as the expression on
/// PostgreSQL; on SQLite the statement is [`Error::Unsupported`](crate::Error::Unsupported)
/// before any SQL is sent.
///
/// ```
/// # include!("../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// use diesel::PgTextExpressionMethods;
/// use orm::prelude::*;
/// let qs = Person::objects().filter(orm::pg(weave_person::first_name.ilike("a%")));
/// assert!(qs.sql(Backend::Postgres)?.contains(r#"("weave_person"."first_name" ILIKE $1)"#));
/// assert!(qs.sql(Backend::Sqlite).unwrap_err().is_unsupported());
/// # Ok(()) }
/// ```
pub fn pg<E>(expression: E) -> PostgresOnly<E> {
    PostgresOnly(expression)
}

impl<E: diesel::Expression> diesel::Expression for PostgresOnly<E> {
    type SqlType = E::SqlType;
}

impl<E: diesel::expression::AppearsOnTable<QS>, QS: ?Sized> diesel::expression::AppearsOnTable<QS>
    for PostgresOnly<E>
{
}

impl<E: diesel::expression::SelectableExpression<QS>, QS: ?Sized>
    diesel::expression::SelectableExpression<QS> for PostgresOnly<E>
{
}

impl<E: diesel::expression::ValidGrouping<G>, G> diesel::expression::ValidGrouping<G>
    for PostgresOnly<E>
{
    type IsAggregate = E::IsAggregate;
}

/// `update(conn, orm::pg(column.eq(value)))`: a changeset of a PostgreSQL-only column.
impl<E: diesel::AsChangeset> diesel::AsChangeset for PostgresOnly<E> {
    type Target = E::Target;
    type Changeset = PostgresOnly<E::Changeset>;

    fn as_changeset(self) -> Self::Changeset {
        PostgresOnly(self.0.as_changeset())
    }
}

impl<E> diesel::query_builder::QueryId for PostgresOnly<E> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<E: diesel::query_builder::QueryFragment<Pg>> diesel::query_builder::QueryFragment<Pg>
    for PostgresOnly<E>
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, Pg>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl<E> diesel::query_builder::QueryFragment<Sqlite> for PostgresOnly<E> {
    fn walk_ast<'b>(
        &'b self,
        _: diesel::query_builder::AstPass<'_, 'b, Sqlite>,
    ) -> diesel::QueryResult<()> {
        Err(diesel::result::Error::QueryBuilderError(Box::new(
            PostgresOnlyExpression,
        )))
    }
}

impl<E: diesel::query_builder::QueryFragment<Pg>> diesel::query_builder::QueryFragment<MultiBackend>
    for PostgresOnly<E>
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, MultiBackend>,
    ) -> diesel::QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}

/// An expression wrapped by [`pg`] was rendered for SQLite: the typed cause that
/// [`Error::Unsupported`](crate::Error::Unsupported) is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PostgresOnlyExpression;

impl std::fmt::Display for PostgresOnlyExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a PostgreSQL-only expression")
    }
}

impl std::error::Error for PostgresOnlyExpression {}

#[cfg(test)]
mod tests {
    use super::has_offset;

    #[test]
    fn an_offset_is_told_from_a_utc_time() {
        for text in [
            "2024-01-01 09:00:00",
            "2024-01-01 09:00:00.123456",
            "2024-01-01T09:00",
            "2460310.5",
        ] {
            assert!(!has_offset(text), "{text}");
        }
        for text in [
            "2024-01-01 09:00:00+09:00",
            "2024-01-01 09:00:00.5-05:00",
            "2024-01-01T09:00:00Z",
            "2024-01-01 09:00+01:00",
        ] {
            assert!(has_offset(text), "{text}");
        }
    }
}
