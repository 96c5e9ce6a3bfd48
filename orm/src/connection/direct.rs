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
    R: diesel::Selectable<Pg> + diesel::Selectable<Sqlite>,
    for<'q> Direct<'q, T, PgConnection, AsSelect<R, Pg>>: LoadQuery<'q, PgConnection, R>,
    for<'q> Direct<'q, T, SqliteConnection, AsSelect<R, Sqlite>>:
        LoadQuery<'q, SqliteConnection, R>,
{
    fn load_direct(statement: &T, conn: &mut AnyConnection) -> QueryResult<Vec<R>> {
        match conn {
            AnyConnection::Postgresql(c) => {
                Direct::<T, PgConnection, AsSelect<R, Pg>>::new(statement).load(c)
            }
            AnyConnection::Sqlite(c) => {
                Direct::<T, SqliteConnection, AsSelect<R, Sqlite>>::new(statement).load(c)
            }
        }
    }
}
