//! The escape hatches: a queryset as a diesel query, and raw SQL into models.

use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use diesel::expression::expression_types::NotSelectable;
use diesel::expression::{is_aggregate, AppearsOnTable, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::query_dsl::methods::{BoxedDsl, FilterDsl, LimitDsl, OffsetDsl, OrderDsl};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::{Expression, QueryResult, RunQueryDsl};

use super::run::run;
use super::QuerySet;
use crate::connection::{AnyConnection, AsConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{render, Fragment, Statement};
use crate::model::Model;
use crate::ordering::OrderTerm;
use crate::relations::Condition;

/// diesel's boxed query over `M`'s table, as [`QuerySet::into_boxed`] returns it.
pub type Boxed<M> = diesel::dsl::IntoBoxed<'static, <M as Model>::Table, Db>;

/// A queryset's ordering as one `ORDER BY` expression of table `T`.
#[doc(hidden)]
pub struct Ordering<T> {
    terms: Vec<OrderTerm>,
    _table: PhantomData<fn() -> T>,
}

impl<T> Expression for Ordering<T> {
    type SqlType = NotSelectable;
}

impl<T> AppearsOnTable<T> for Ordering<T> {}

impl<T> ValidGrouping<()> for Ordering<T> {
    type IsAggregate = is_aggregate::No;
}

impl<T> QueryFragment<Db> for Ordering<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            term.walk_ast(out.reborrow())?;
        }
        Ok(())
    }
}

impl<T> QueryId for Ordering<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model> QuerySet<M> {
    /// This queryset as diesel's boxed query over `M`'s table, for what the
    /// queryset does not cover (a join of your own, a `select` of expressions, a
    /// window function): its soft delete, filters, ordering and slice carried over.
    /// Run it with diesel on the [`AnyConnection`]; wrap the call in
    /// [`at_call_site`](crate::at_call_site) so captures and profiles name your line.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use diesel::{QueryDsl as _, RunQueryDsl as _};
    /// let boxed = Message::objects().filter(weave_message::thread_id.eq(1)).into_boxed();
    /// let (texts, captured) = orm::capture(|| {
    ///     orm::at_call_site(|| boxed.select(weave_message::text).load::<String>(&mut *conn))
    /// });
    /// assert_eq!(texts?, ["A machine.", "What is an engine?"]);
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["SELECT `weave_message`.`text` FROM `weave_message` WHERE ((`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?))) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"]
    /// );
    /// // On PostgreSQL: ... WHERE (("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1))) ORDER BY ...
    /// assert!(captured.all()[0].call_site.is_some_and(|site| site.file().ends_with("escape.rs")));
    /// # Ok(()) }
    /// ```
    pub fn into_boxed(&self) -> Boxed<M>
    where
        M::Table: BoxedDsl<'static, Db>,
        Boxed<M>: FilterDsl<Condition<M::Table>, Output = Boxed<M>>
            + OrderDsl<Ordering<M::Table>, Output = Boxed<M>>
            + LimitDsl<Output = Boxed<M>>
            + OffsetDsl<Output = Boxed<M>>,
    {
        let source = self.source();
        let mut query = BoxedDsl::internal_into_boxed(M::Table::default());
        for filter in source.filters {
            // Parenthesised, as the queryset's own statements put each filter.
            query = FilterDsl::filter(query, Condition::new(Arc::new(Parenthesized(filter))));
        }
        if !source.order.is_empty() {
            query = OrderDsl::order(
                query,
                Ordering {
                    terms: source.order,
                    _table: PhantomData,
                },
            );
        }
        if let Some(limit) = source.limit {
            query = LimitDsl::limit(query, limit);
        }
        if let Some(offset) = source.offset {
            query = OffsetDsl::offset(query, offset);
        }
        query
    }
}

/// `(<fragment>)`.
struct Parenthesized(Fragment);

impl QueryFragment<Db> for Parenthesized {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

/// Runs `f` (diesel queries of your own) with its statements recorded at the
/// caller's line in captures, profiles and N+1 reports, as the queryset's own
/// methods are.
#[track_caller]
pub fn at_call_site<T>(f: impl FnOnce() -> QueryResult<T>) -> Result<T> {
    Ok(crate::instrument::with_call_site(Location::caller(), f)?)
}

/// One piece of a raw statement: text, or a bound value.
enum Piece {
    Sql(String),
    Bind(Fragment),
}

/// A value bound with SQL type `ST`.
struct BoundValue<ST, V> {
    value: V,
    _type: PhantomData<fn() -> ST>,
}

impl<ST, V> QueryFragment<Db> for BoundValue<ST, V>
where
    Db: HasSqlType<ST>,
    V: ToSql<ST, Db>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_bind_param(&self.value)
    }
}

/// Raw SQL into models (Django's `Manager.raw`): text and bound values in turn, so
/// each value is a parameter in the backend's own placeholder (`$1`, `?`).
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// use diesel::sql_types::BigInt;
/// let raw = orm::Raw::new("SELECT * FROM weave_message WHERE thread_id = ")
///     .bind::<BigInt, _>(1_i64)
///     .sql(" ORDER BY id");
/// let messages: Vec<Message> = raw.load(&mut conn)?;
/// assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2]);
/// assert_eq!(raw.to_sql(Backend::Postgres)?, "SELECT * FROM weave_message WHERE thread_id = $1 ORDER BY id");
/// assert_eq!(raw.to_sql(Backend::Sqlite)?, "SELECT * FROM weave_message WHERE thread_id = ? ORDER BY id");
/// # Ok(()) }
/// ```
///
/// The statement must return the model's columns in the order of its struct's
/// fields (`SELECT *` for a struct declared in the table's column order).
#[derive(Clone, Default)]
pub struct Raw {
    pieces: Vec<Arc<Piece>>,
}

impl Raw {
    /// A statement starting with `text`.
    pub fn new(text: &str) -> Self {
        Self::default().sql(text)
    }

    /// Appends `text`.
    #[must_use]
    pub fn sql(mut self, text: &str) -> Self {
        self.pieces.push(Arc::new(Piece::Sql(text.to_owned())));
        self
    }

    /// Appends a bound value of SQL type `ST`.
    #[must_use]
    pub fn bind<ST, V>(mut self, value: V) -> Self
    where
        Db: HasSqlType<ST>,
        V: ToSql<ST, Db> + Send + Sync + 'static,
        ST: 'static,
    {
        self.pieces.push(Arc::new(Piece::Bind(Arc::new(BoundValue {
            value,
            _type: PhantomData::<fn() -> ST>,
        }))));
        self
    }

    /// The statement's SQL on `backend`.
    pub fn to_sql(&self, backend: Backend) -> Result<String> {
        Ok(render(self, backend)?)
    }

    /// The rows of model `M` it returns (one statement, recorded at the caller's
    /// line).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects it or its
    /// columns do not decode as `M`.
    #[track_caller]
    pub fn load<M: Model>(&self, conn: &mut impl AsConnection) -> Result<Vec<M>> {
        let conn = conn.connection();
        let statement = Statement(Arc::new(self.clone()));
        run(Location::caller(), || M::load_statement(&statement, conn))
    }

    /// Runs it as a write; returns the rows it changed.
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects it.
    #[track_caller]
    pub fn execute(&self, conn: &mut impl AsConnection) -> Result<usize> {
        let conn: &mut AnyConnection = conn.connection();
        run(Location::caller(), || Written(self).execute(conn))
    }
}

impl QueryFragment<Db> for Raw {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        for piece in &self.pieces {
            match &**piece {
                Piece::Sql(text) => out.push_sql(text),
                Piece::Bind(value) => value.walk_ast(out.reborrow())?,
            }
        }
        Ok(())
    }
}

impl QueryId for Raw {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// A raw statement run as a write (not `RunQueryDsl` on `Raw` itself, whose
/// `load` would hide [`Raw::load`]).
struct Written<'a>(&'a Raw);

impl QueryFragment<Db> for Written<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

impl QueryId for Written<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl RunQueryDsl<AnyConnection> for Written<'_> {}
