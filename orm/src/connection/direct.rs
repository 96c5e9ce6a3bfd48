//! Loading rows through the inner connection's own backend.
//!
//! A statement built for [`Db`] (diesel's `MultiBackend`) runs on the inner
//! `PgConnection` or `SqliteConnection` either way; what differs is how its rows are
//! read. Through `AnyConnection` every field of every row is wrapped as a
//! `MultiBackend` value and unwrapped again by its `FromSql`: about 800 machine
//! instructions a row for a 7-column model (counted with callgrind on a page of
//! 10,000 messages), a tenth of the page's client time. [`Direct`] renders the same
//! SQL with the same binds for the inner backend, so rows decode with that backend's
//! own types, as hand-written diesel's do. Model rows (`model!`) and `select_related`
//! rows ([`DirectRows`]) load this way; the statement cache, the capture and the
//! instrumentation see the same statement as before.

use std::marker::PhantomData;

use diesel::backend::Backend as DieselBackend;
use diesel::internal::derives::multiconnection::{AstPassHelper, MultiConnectionHelper};
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{Connection, QueryResult, RunQueryDsl};

use diesel::dsl::AsSelect;
use diesel::query_dsl::LoadQuery;

use super::{AnyConnection, Db, MultiBackend, QueryBuilderOf};
use crate::types::{AsSqliteOf, Native, NotOnSqlite, ReadOf, ReadPath, RowSqlType, SqliteRead};

/// The bind collector of [`Db`] (the derive keeps its name private).
type BindCollectorOf<'a> = <Db as DieselBackend>::BindCollector<'a>;

/// One inner connection type of [`AnyConnection`](super::AnyConnection).
pub trait InnerConnection: Connection + MultiConnectionHelper {
    /// Its backend as a [`MultiBackend`] value.
    fn multi_backend() -> MultiBackend;
    /// An empty query builder for it.
    fn query_builder() -> QueryBuilderOf;
    /// An empty bind collector for it.
    fn bind_collector<'a>() -> BindCollectorOf<'a>;
    /// The inner collector of `collector`, when it is this backend's.
    fn unwrap_collector<'a>(
        collector: BindCollectorOf<'a>,
    ) -> Option<<Self::Backend as DieselBackend>::BindCollector<'a>>;
}

impl InnerConnection for PgConnection {
    fn multi_backend() -> MultiBackend {
        MultiBackend::Postgresql(Pg)
    }

    fn query_builder() -> QueryBuilderOf {
        QueryBuilderOf::Postgresql(Default::default())
    }

    fn bind_collector<'a>() -> BindCollectorOf<'a> {
        BindCollectorOf::Postgresql(Default::default())
    }

    fn unwrap_collector<'a>(
        collector: BindCollectorOf<'a>,
    ) -> Option<<Pg as DieselBackend>::BindCollector<'a>> {
        match collector {
            BindCollectorOf::Postgresql(inner) => Some(inner),
            BindCollectorOf::Sqlite(_) => None,
        }
    }
}

impl InnerConnection for SqliteConnection {
    fn multi_backend() -> MultiBackend {
        MultiBackend::Sqlite(Sqlite)
    }

    fn query_builder() -> QueryBuilderOf {
        QueryBuilderOf::Sqlite(Default::default())
    }

    fn bind_collector<'a>() -> BindCollectorOf<'a> {
        BindCollectorOf::Sqlite(Default::default())
    }

    fn unwrap_collector<'a>(
        collector: BindCollectorOf<'a>,
    ) -> Option<<Sqlite as DieselBackend>::BindCollector<'a>> {
        match collector {
            BindCollectorOf::Sqlite(inner) => Some(inner),
            BindCollectorOf::Postgresql(_) => None,
        }
    }
}

/// Statement `T` (built for [`Db`]) as a statement of connection `C`'s backend whose
/// rows have SQL type `ST`. Same SQL, same binds, same statement cache entry; rows
/// decode as `C`'s backend's rows.
#[doc(hidden)]
pub struct Direct<'q, T, C, ST> {
    inner: &'q T,
    backend: MultiBackend,
    marker: PhantomData<fn() -> (C, ST)>,
}

impl<'q, T, C: InnerConnection, ST> Direct<'q, T, C, ST> {
    /// `statement` for `C`.
    pub fn new(statement: &'q T) -> Self {
        Self {
            inner: statement,
            backend: C::multi_backend(),
            marker: PhantomData,
        }
    }
}

impl<T, C, ST, DB> QueryFragment<DB> for Direct<'_, T, C, ST>
where
    DB: DieselBackend + 'static,
    T: QueryFragment<Db>,
    C: InnerConnection<Backend = DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let mut builder = C::query_builder();
        self.inner.to_sql(&mut builder, &self.backend)?;
        pass.push_sql(&builder.finish());
        if !self.inner.is_safe_to_cache_prepared(&self.backend)? {
            pass.unsafe_to_cache_prepared();
        }
        if let Some((outer, lookup)) = pass.bind_collector() {
            let mut collector = C::bind_collector();
            self.inner
                .collect_binds(&mut collector, C::to_any(lookup), &self.backend)?;
            if let Some(inner) = C::unwrap_collector(collector) {
                *outer = inner;
            }
        }
        if let Some((formatter, _)) = pass.debug_binds() {
            let debug = AstPass::<Db>::collect_debug_binds_pass(formatter, &self.backend);
            self.inner.walk_ast(debug)?;
        }
        Ok(())
    }
}

impl<T, C, ST> QueryId for Direct<'_, T, C, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, C, ST: 'static> Query for Direct<'_, T, C, ST> {
    type SqlType = ST;
}

impl<T, C, ST> RunQueryDsl<C> for Direct<'_, T, C, ST> {}

/// Rows of type `Self` that a statement `T` built for [`Db`] can load through either
/// inner backend (every `Selectable` row type and tuple of them).
#[doc(hidden)]
pub trait DirectRows<T>: Sized {
    /// Loads `statement`'s rows through `conn`'s inner connection.
    fn load_direct(statement: &T, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>;
}

// `AsSelect<R, DB>` (diesel's `SelectBy`) is its own SQL type.
impl<T, R> DirectRows<T> for R
where
    R: diesel::Selectable<Pg> + diesel::Selectable<Db> + SqliteRows<T, ReadOf<R>>,
    <R as diesel::Selectable<Db>>::SelectExpression: diesel::Expression,
    diesel::dsl::SqlTypeOf<<R as diesel::Selectable<Db>>::SelectExpression>: SqliteRead,
    for<'q> Direct<'q, T, PgConnection, AsSelect<R, Pg>>: LoadQuery<'q, PgConnection, R>,
{
    fn load_direct(statement: &T, conn: &mut AnyConnection) -> QueryResult<Vec<R>> {
        if let AnyConnection::Postgresql(c) = conn {
            return Direct::<T, PgConnection, AsSelect<R, Pg>>::new(statement).load(c);
        }
        <R as SqliteRows<T, ReadOf<R>>>::load_sqlite(statement, conn)
    }
}

/// How rows `Self` of statement `T` load on SQLite, by the [`ReadPath`] of their
/// columns' SQL types.
#[doc(hidden)]
pub trait SqliteRows<T, P: ReadPath>: Sized {
    /// Loads `statement`'s rows through `conn` (an SQLite connection).
    fn load_sqlite(statement: &T, conn: &mut AnyConnection) -> QueryResult<Vec<Self>>;
}

impl<T, R> SqliteRows<T, Native> for R
where
    for<'q> Direct<'q, T, SqliteConnection, AsSqliteOf<R>>: LoadQuery<'q, SqliteConnection, R>,
    R: diesel::Selectable<Db>,
    <R as diesel::Selectable<Db>>::SelectExpression: diesel::Expression,
    RowSqlType<R>: SqliteRead,
{
    fn load_sqlite(statement: &T, conn: &mut AnyConnection) -> QueryResult<Vec<R>> {
        match conn {
            // Decoded as the SQL types SQLite holds the columns in (`AsSqlite`):
            // diesel's `Timestamptz` and `Uuid` columns are text there.
            AnyConnection::Sqlite(c) => {
                Direct::<T, SqliteConnection, AsSqliteOf<R>>::new(statement).load(c)
            }
            AnyConnection::Postgresql(_) => Err(not_sqlite()),
        }
    }
}

impl<T, R> SqliteRows<T, NotOnSqlite> for R {
    fn load_sqlite(_: &T, _: &mut AnyConnection) -> QueryResult<Vec<R>> {
        Err(diesel::result::Error::QueryBuilderError(Box::new(
            crate::types::PostgresOnlyRows,
        )))
    }
}

/// Rows, one at a time as SQLite steps through them, by the [`ReadPath`] of their
/// columns (`Stream`'s step strategy).
#[doc(hidden)]
pub trait SqliteIter<T, P: ReadPath>: Sized {
    /// Steps through `statement`'s rows on `conn` (an SQLite connection).
    #[allow(clippy::type_complexity)]
    fn iter_sqlite<'c>(
        statement: T,
        conn: &'c mut AnyConnection,
    ) -> QueryResult<Box<dyn Iterator<Item = QueryResult<Self>> + 'c>>;
}

macro_rules! sqlite_iter_through_multi {
    ($($path:ty),*) => {$(
        impl<T, R> SqliteIter<T, $path> for R
        where
            T: LoadQuery<'static, AnyConnection, R> + 'static,
            R: 'static,
        {
            fn iter_sqlite<'c>(
                statement: T,
                conn: &'c mut AnyConnection,
            ) -> QueryResult<Box<dyn Iterator<Item = QueryResult<R>> + 'c>> {
                Ok(Box::new(statement.load_iter::<R, diesel::connection::DefaultLoadingMode>(conn)?))
            }
        }
    )*};
}

sqlite_iter_through_multi!(Native);

impl<T, R> SqliteIter<T, NotOnSqlite> for R {
    fn iter_sqlite<'c>(
        _: T,
        _: &'c mut AnyConnection,
    ) -> QueryResult<Box<dyn Iterator<Item = QueryResult<R>> + 'c>> {
        Err(diesel::result::Error::QueryBuilderError(Box::new(
            crate::types::PostgresOnlyRows,
        )))
    }
}

fn not_sqlite() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError("an SQLite load on another connection".into())
}
