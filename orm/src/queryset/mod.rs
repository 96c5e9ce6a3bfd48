//! Lazy querysets: building only, no I/O.
//!
//! Every method here returns a new [`QuerySet`] and never touches a connection; the
//! terminal methods that run SQL live in `run.rs` and `write.rs` and take
//! `&mut AnyConnection`.

pub(crate) mod escape;
mod get_or_create;
pub(crate) mod run;
pub mod statement;
pub(crate) mod values;
mod write;

use std::marker::PhantomData;
use std::sync::Arc;

use diesel::expression::{AppearsOnTable, ValidGrouping};
use diesel::query_builder::QueryFragment;
use diesel::sql_types::BoolOrNullableBool;
use diesel::Expression;

use crate::connection::{Backend, Db};
use crate::fragment::{render, BoolColumnIs, Fragment, Not};
use crate::model::Model;
use crate::ordering::{IntoOrdering, OrderTerm};
use crate::routing::Route;
use statement::{CountStatement, Locking, One, RowLock, SelectStatement, Source};

/// Which rows of a soft-delete model a queryset sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// Live rows only (the default of `objects()`).
    Hide,
    /// Live and deleted rows.
    Include,
    /// Deleted rows only.
    Only,
}

/// A lazy, chainable query over the rows of model `M`.
///
/// Build it with [`Model::objects`] and chain [`filter`](Self::filter),
/// [`exclude`](Self::exclude), [`order_by`](Self::order_by), [`limit`](Self::limit),
/// [`offset`](Self::offset), [`distinct`](Self::distinct): nothing runs until a
/// terminal method (`all`, `first`, `last`, `get`, `count`, `exists`, `in_bulk`,
/// `delete`, `hard_delete`, `update`). Cloning is cheap: filters are shared.
///
/// Filters are diesel expressions, checked at compile time against `M`'s table:
///
/// ```compile_fail
/// # diesel::table! { a (id) { id -> BigInt, } }
/// # diesel::table! { b (id) { id -> BigInt, } }
/// # #[derive(diesel::Queryable, diesel::Selectable)] #[diesel(table_name = a)] struct A { id: i64 }
/// # orm::model! { A => a { primary_key: id } }
/// use orm::prelude::*;
/// // b::id is a column of another table: does not compile.
/// let qs = A::objects().filter(b::id.eq(1));
/// ```
///
/// A queryset owns the values in its filters, so that it can be cloned, stored and
/// run on another thread (the async face runs it on a blocking worker). A value
/// borrowed from a local does not live long enough:
///
/// ```compile_fail,E0597
/// # diesel::table! { a (id) { id -> BigInt, name -> Text, } }
/// # #[derive(diesel::Queryable, diesel::Selectable)] #[diesel(table_name = a)] struct A { id: i64, name: String }
/// # orm::model! { A => a { primary_key: id } }
/// use orm::prelude::*;
/// fn named(name: &str) -> QuerySet<A> {
///     let local = name.to_uppercase();
///     A::objects().filter(a::name.eq(local.as_str()))
/// }
/// ```
///
/// Hand it over owned (a `&'static str` literal needs nothing):
///
/// ```
/// # diesel::table! { a (id) { id -> BigInt, name -> Text, } }
/// # #[derive(diesel::Queryable, diesel::Selectable)] #[diesel(table_name = a)] struct A { id: i64, name: String }
/// # orm::model! { A => a { primary_key: id } }
/// use orm::prelude::*;
/// fn named(name: &str) -> QuerySet<A> {
///     A::objects().filter(a::name.eq(name.to_owned())).exclude(a::name.eq("Ada"))
/// }
/// # let _ = named("Grace");
/// ```
pub struct QuerySet<M> {
    filters: Vec<Fragment>,
    ordering: Option<Vec<OrderTerm>>,
    limit: Option<i64>,
    offset: Option<i64>,
    distinct: bool,
    deleted: Deleted,
    lock: Option<RowLock>,
    route: Route,
    _model: PhantomData<fn() -> M>,
}

impl<M> Clone for QuerySet<M> {
    fn clone(&self) -> Self {
        Self {
            filters: self.filters.clone(),
            ordering: self.ordering.clone(),
            limit: self.limit,
            offset: self.offset,
            distinct: self.distinct,
            deleted: self.deleted,
            lock: self.lock,
            route: self.route,
            _model: PhantomData,
        }
    }
}

impl<M: Model> std::fmt::Debug for QuerySet<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sql(Backend::Postgres) {
            Ok(sql) => write!(f, "QuerySet<{}>({sql})", M::NAME),
            Err(e) => write!(f, "QuerySet<{}>(<{e}>)", M::NAME),
        }
    }
}

impl<M: Model> Default for QuerySet<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Model> QuerySet<M> {
    /// All live rows in the default ordering; the same as [`Model::objects`].
    pub fn new() -> Self {
        Self {
            filters: Vec::new(),
            ordering: None,
            limit: None,
            offset: None,
            distinct: false,
            deleted: Deleted::Hide,
            lock: None,
            route: Route::Auto,
            _model: PhantomData,
        }
    }

    /// Keeps the rows where `predicate` holds (`WHERE ... AND (predicate)`).
    ///
    /// The predicate is any diesel boolean expression over `M`'s table; values in it
    /// are bound parameters. Calls accumulate with `AND`.
    #[must_use]
    pub fn filter<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<M::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.filters.push(Arc::new(predicate));
        self
    }

    /// Adds an already type-checked filter.
    pub(crate) fn filter_fragment(mut self, predicate: Fragment) -> Self {
        self.filters.push(predicate);
        self
    }

    /// Drops the rows where `predicate` holds (`WHERE ... AND NOT (predicate)`).
    ///
    /// As in SQL, a row where the predicate is NULL is neither kept by `filter` nor
    /// by `exclude`.
    #[must_use]
    pub fn exclude<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<M::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.filters.push(Arc::new(Not(Arc::new(predicate))));
        self
    }

    /// Replaces the ordering (the model's default included) with `ordering`:
    /// `col.desc()`, `col.asc()` or a tuple of them.
    #[must_use]
    pub fn order_by<O: IntoOrdering<M::Table>>(mut self, ordering: O) -> Self {
        self.ordering = Some(ordering.into_ordering());
        self
    }

    /// Removes any ordering, the default one included (no `ORDER BY`).
    #[must_use]
    pub fn unordered(mut self) -> Self {
        self.ordering = Some(Vec::new());
        self
    }

    /// At most `n` rows (`LIMIT`). Django's `qs[:n]`.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(i64::from(n));
        self
    }

    /// Skips the first `n` rows (`OFFSET`). Django's `qs[n:]`.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// This queryset ordered by `ordering` and sliced to `limit` rows from `offset`
    /// (the paginators' page of rows).
    pub(crate) fn page_slice(mut self, ordering: Vec<OrderTerm>, limit: i64, offset: i64) -> Self {
        self.ordering = Some(ordering);
        self.limit = Some(limit);
        self.offset = (offset > 0).then_some(offset);
        self
    }

    /// Locks the rows it reads until the transaction ends (Django's
    /// `select_for_update`): `all`, `first`, `last` and `get` then send
    /// `SELECT ... FOR UPDATE` (as `lock` says) on PostgreSQL, and refuse to run
    /// outside a transaction ([`Error::TransactionRequired`](crate::Error::TransactionRequired)),
    /// as Django. On SQLite the clause is not sent: see [`RowLock`].
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use orm::RowLock;
    /// let next = Message::objects().order_by(weave_message::id.asc()).select_for_update(RowLock::update().skip_locked());
    /// assert_eq!(
    ///     next.clone().limit(1).sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) ORDER BY "weave_message"."id" ASC LIMIT $1 FOR UPDATE SKIP LOCKED"#
    /// );
    /// assert!(next.first(&mut conn).unwrap_err().is_transaction_required());
    /// let taken = orm::atomic(&mut conn, |conn| next.first(conn))?;
    /// assert_eq!(taken.map(|m| m.id), Some(1));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn select_for_update(mut self, lock: RowLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Where the awaited reads of this queryset go when the database has replicas
    /// ([`routing`](crate::routing)): [`Route::Primary`] for a read that must see the
    /// latest writes, [`Route::Replica`] for one that may be stale even right after a
    /// write of its scope; [`Route::Auto`] (the default) leaves it to the scope. The
    /// SQL is the same.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, conn) = setup();
    /// # drop(conn);
    /// use orm::prelude::*;
    /// use orm::routing::Route;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let (n, captured) = runtime.block_on(orm::capture_async(Message::objects().route(Route::Primary).acount(&db)));
    /// assert_eq!(n?, 3);
    /// assert_eq!(captured.data()[0].server.role, orm::routing::Role::Primary);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// The route of [`route`](Self::route).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn route_of(&self) -> Route {
        self.route
    }

    /// Whether it locks the rows it reads (`select_for_update`).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn locks_rows(&self) -> bool {
        self.lock.is_some()
    }

    /// The row lock of `select_for_update`, for a statement over `M`'s table.
    pub(crate) fn locking(&self) -> Option<Locking> {
        let lock = self.lock?;
        let table = crate::fragment::TableName::of(&M::Table::default())
            .map(|name| name.name)
            .unwrap_or_default();
        Some(Locking { lock, table })
    }

    /// Refuses a locking read outside a transaction.
    pub(crate) fn check_lock(&self, conn: &mut crate::AnyConnection) -> crate::Result<()> {
        let Some(lock) = self.lock else {
            return Ok(());
        };
        if lock.waits_otherwise() {
            let capability = crate::Capability::of_connection(conn);
            if capability.backend == Backend::Postgres {
                capability.require(capability.skip_locked, "SKIP LOCKED and NOWAIT")?;
            }
        }
        if !crate::transaction::in_transaction(conn)? {
            return Err(crate::Error::TransactionRequired {
                feature: "select_for_update",
            });
        }
        Ok(())
    }

    /// Removes duplicate rows (`SELECT DISTINCT`).
    #[must_use]
    pub fn distinct(mut self) -> Self {
        self.distinct = true;
        self
    }

    /// Includes soft-deleted rows. No effect on models without soft delete.
    #[must_use]
    pub fn with_deleted(mut self) -> Self {
        self.deleted = Deleted::Include;
        self
    }

    /// Only soft-deleted rows. No effect on models without soft delete.
    #[must_use]
    pub fn only_deleted(mut self) -> Self {
        self.deleted = Deleted::Only;
        self
    }

    /// Which rows of a soft-delete model this queryset sees.
    pub fn deleted_rows(&self) -> Deleted {
        self.deleted
    }

    /// True once `distinct` was called.
    pub(crate) fn is_distinct(&self) -> bool {
        self.distinct
    }

    /// True once `limit` or `offset` was set.
    pub fn is_sliced(&self) -> bool {
        self.limit.is_some() || self.offset.is_some()
    }

    /// The filters of `filter` and `exclude` (not the soft delete).
    pub(crate) fn user_filters(&self) -> Vec<Fragment> {
        self.filters.clone()
    }

    /// Whether `filter` or `exclude` was called (beyond the soft delete).
    pub(crate) fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    /// True while `order_by` or `unordered` has not been called.
    pub(crate) fn has_default_ordering(&self) -> bool {
        self.ordering.is_none()
    }

    /// The ordering in effect: `order_by`'s, else the model's default.
    pub fn ordering(&self) -> Vec<OrderTerm> {
        self.ordering.clone().unwrap_or_else(M::default_ordering)
    }

    /// The filters in effect: soft delete first, then the user's.
    pub(crate) fn effective_filters(&self) -> Vec<Fragment> {
        let mut filters = Vec::with_capacity(self.filters.len() + 1);
        if let Some(column) = M::soft_delete_column() {
            match self.deleted {
                Deleted::Hide => filters.push(Arc::new(BoolColumnIs {
                    column,
                    value: false,
                }) as Fragment),
                Deleted::Only => filters.push(Arc::new(BoolColumnIs {
                    column,
                    value: true,
                })),
                Deleted::Include => {}
            }
        }
        filters.extend(self.filters.iter().cloned());
        filters
    }

    pub(crate) fn source(&self) -> Source {
        Source {
            table: Arc::new(M::Table::default()),
            filters: self.effective_filters(),
            order: self.ordering(),
            limit: self.limit,
            offset: self.offset,
            distinct: self.distinct,
        }
    }

    pub(crate) fn select_statement(
        &self,
    ) -> SelectStatement<diesel::helper_types::AsSelect<M, Db>> {
        let mut statement = SelectStatement::new(M::selection(), self.source());
        statement.lock = self.locking();
        statement
    }

    pub(crate) fn count_statement(&self) -> Box<dyn QueryFragment<Db>> {
        let source = self.source();
        if source.distinct {
            let mut inner = SelectStatement::new(M::selection(), source);
            inner.with_order = false;
            Box::new(CountStatement { inner })
        } else {
            let mut inner = SelectStatement::new(One, source);
            inner.with_order = false;
            Box::new(CountStatement { inner })
        }
    }

    pub(crate) fn exists_statement(&self) -> SelectStatement<One> {
        let mut statement = SelectStatement::new(One, self.source());
        statement.with_order = false;
        statement.source.distinct = false;
        statement.limit_override = Some(match self.limit {
            Some(0) => 0,
            _ => 1,
        });
        statement
    }

    /// The SQL `all()` sends on `backend`, placeholders included.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let qs = Message::objects().filter(weave_message::thread_id.eq(7)).limit(10);
    /// assert_eq!(
    ///     qs.sql(Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?)) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 10"
    /// );
    /// assert_eq!(
    ///     qs.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1)) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC LIMIT $2"#
    /// );
    /// # Ok(()) }
    /// ```
    pub fn sql(&self, backend: Backend) -> crate::Result<String> {
        Ok(render(&self.select_statement(), backend)?)
    }

    /// The SQL `count()` sends on `backend`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// assert_eq!(
    ///     Message::objects().count_sql(Backend::Postgres)?,
    ///     r#"SELECT COUNT(*) FROM "weave_message" WHERE ("weave_message"."deleted" = false)"#
    /// );
    /// assert_eq!(
    ///     Message::objects().limit(5).count_sql(Backend::Sqlite)?,
    ///     "SELECT COUNT(*) FROM (SELECT 1 FROM `weave_message` WHERE (`weave_message`.`deleted` = false) LIMIT 5) AS `counted`"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn count_sql(&self, backend: Backend) -> crate::Result<String> {
        Ok(render(&*self.count_statement(), backend)?)
    }

    /// The SQL `exists()` sends on `backend`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// assert_eq!(
    ///     Message::objects().exists_sql(Backend::Postgres)?,
    ///     r#"SELECT 1 FROM "weave_message" WHERE ("weave_message"."deleted" = false) LIMIT $1"#
    /// );
    /// assert_eq!(
    ///     Message::objects().exists_sql(Backend::Sqlite)?,
    ///     "SELECT 1 FROM `weave_message` WHERE (`weave_message`.`deleted` = false) LIMIT 1"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn exists_sql(&self, backend: Backend) -> crate::Result<String> {
        Ok(render(&self.exists_statement(), backend)?)
    }
}
