//! Projections: some columns of a queryset's rows, as tuples, single values or a
//! struct of your own (Django's `values_list`, `values_list(flat=True)`, `values`,
//! `only`), and as a subquery of another queryset's filter.

use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use diesel::expression::{is_aggregate, AppearsOnTable, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{IntoNullable, SingleValue, SqlType};
use diesel::{Column, Expression, QueryResult, RunQueryDsl};

use super::run::run_read as run;
use super::statement::{CountStatement, Grouping, SelectStatement, Source};
use super::QuerySet;
use crate::connection::{AnyConnection, AsConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{render, ColumnRef, Fragment};
use crate::model::Model;
use crate::relations::Condition;

/// Some columns of the rows of a queryset over `M`: `S` is the selection (a column,
/// a tuple of columns, or a struct's `as_select()`), `U` the Rust type of a row.
/// Made by [`QuerySet::values_list`] and [`QuerySet::values`]; the queryset's
/// filters, soft delete, ordering and slice apply.
pub struct Values<M, S, U> {
    qs: QuerySet<M>,
    selection: S,
    group: Option<Grouping>,
    _row: PhantomData<fn() -> U>,
}

impl<M, S: Clone, U> Clone for Values<M, S, U> {
    fn clone(&self) -> Self {
        Self {
            qs: self.qs.clone(),
            selection: self.selection.clone(),
            group: self.group.clone(),
            _row: PhantomData,
        }
    }
}

/// A queryset's rows in groups by the columns `G` (Django's `values("type")`
/// before `annotate`): made by [`QuerySet::group_by`]; select the groups' values
/// with [`values_list`](Self::values_list).
pub struct Grouped<M, G> {
    qs: QuerySet<M>,
    columns: G,
    having: Vec<Fragment>,
}

impl<M: Model, G> Grouped<M, G>
where
    G: Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
{
    /// Keeps the groups where `predicate` holds (`HAVING`): an expression of the
    /// grouped columns and aggregates, `count_star().gt(1)`.
    #[must_use]
    pub fn having<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        E: ValidGrouping<G, IsAggregate = is_aggregate::Yes>,
        E: Send + Sync + 'static,
        E::SqlType: diesel::sql_types::BoolOrNullableBool,
    {
        self.having.push(Arc::new(predicate));
        self
    }

    /// One row per group: the grouped columns and aggregates of `selection`
    /// (a column that is neither grouped nor aggregated does not compile).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use diesel::dsl::count_star;
    /// let per_sender = Message::objects()
    ///     .order_by(weave_message::sent_by_id.asc())
    ///     .group_by(weave_message::sent_by_id)
    ///     .values_list((weave_message::sent_by_id, count_star()));
    /// let rows: Vec<(i64, i64)> = per_sender.all(&mut conn)?;
    /// assert_eq!(rows, [(1, 1), (2, 2)]);
    /// assert_eq!(
    ///     per_sender.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."sent_by_id", COUNT(*) FROM "weave_message" WHERE ("weave_message"."deleted" = false) GROUP BY "weave_message"."sent_by_id" ORDER BY "weave_message"."sent_by_id" ASC"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// A column neither grouped nor aggregated does not compile:
    ///
    /// ```compile_fail,E0271
    /// # include!("../../doctest_setup.rs");
    /// use orm::prelude::*;
    /// use diesel::dsl::count_star;
    /// let _ = Message::objects()
    ///     .group_by(weave_message::sent_by_id)
    ///     .values_list::<_, (String, i64)>((weave_message::text, count_star()));
    /// # fn main() {}
    /// ```
    pub fn values_list<S, U>(&self, selection: S) -> Values<M, S, U>
    where
        S: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        S: ValidGrouping<G, IsAggregate = is_aggregate::Yes>,
        S: Clone + Send + Sync + 'static,
    {
        Values {
            qs: self.qs.clone(),
            selection,
            group: Some(Grouping {
                columns: Arc::new(self.columns.clone()),
                having: self.having.clone(),
            }),
            _row: PhantomData,
        }
    }
}

impl<M: Model> QuerySet<M> {
    /// The value of `selection` for each row: a column (Django's
    /// `values_list("name", flat=True)`) or a tuple of columns (`values_list("id",
    /// "name")`), typed by the variable that receives the rows, as diesel's `load`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let names = Person::objects().order_by(weave_person::id.asc()).values_list(weave_person::first_name);
    /// let flat: Vec<String> = names.all(&mut conn)?;
    /// assert_eq!(flat, ["Ada", "Alan"]);
    /// let pairs: Vec<(i64, String)> = Message::objects()
    ///     .filter(weave_message::thread_id.eq(1))
    ///     .values_list((weave_message::id, weave_message::text))
    ///     .all(&mut conn)?;
    /// assert_eq!(pairs, [(2, "A machine.".to_owned()), (1, "What is an engine?".to_owned())]);
    /// assert_eq!(
    ///     names.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_person"."first_name" FROM "weave_person" WHERE ("weave_person"."deleted" = false) ORDER BY "weave_person"."id" ASC"#
    /// );
    /// assert_eq!(
    ///     names.sql(Backend::Sqlite)?,
    ///     "SELECT `weave_person`.`first_name` FROM `weave_person` WHERE (`weave_person`.`deleted` = false) ORDER BY `weave_person`.`id` ASC"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// A column of another table does not compile, nor does an aggregate (see
    /// [`aggregate`](Self::aggregate)).
    pub fn values_list<S, U>(&self, selection: S) -> Values<M, S, U>
    where
        S: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        S: ValidGrouping<(), IsAggregate = is_aggregate::No>,
        S: Clone + Send + Sync + 'static,
    {
        Values {
            qs: self.clone(),
            selection,
            group: None,
            _row: PhantomData,
        }
    }

    /// The rows as a struct of your own that derives diesel's `Queryable` and
    /// `Selectable` over some of `M`'s columns (Django's `values()` and `only()`:
    /// a Rust struct cannot leave fields unloaded, so a narrower struct is the typed
    /// form of a deferred column).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// #[derive(Debug, PartialEq, diesel::Queryable, diesel::Selectable)]
    /// #[diesel(table_name = weave_person)]
    /// struct Name { id: i64, last_name: String }
    ///
    /// let names = Person::objects().values::<Name>();
    /// assert_eq!(names.first(&mut conn)?, Some(Name { id: 2, last_name: "Turing".into() }));
    /// assert_eq!(
    ///     names.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_person"."id", "weave_person"."last_name" FROM "weave_person" WHERE ("weave_person"."deleted" = false) ORDER BY "weave_person"."updated" DESC, "weave_person"."id" DESC"#
    /// );
    /// # Ok(()) }
    /// ```
    pub fn values<R>(&self) -> Values<M, diesel::dsl::AsSelect<R, Db>, R>
    where
        R: diesel::Selectable<Db>,
        R::SelectExpression: AppearsOnTable<M::Table> + QueryFragment<Db>,
        R::SelectExpression: ValidGrouping<(), IsAggregate = is_aggregate::No>,
        diesel::dsl::AsSelect<R, Db>: Clone + Send + Sync + 'static,
    {
        Values {
            qs: self.clone(),
            selection: <R as diesel::SelectableHelper<Db>>::as_select(),
            group: None,
            _row: PhantomData,
        }
    }

    /// Each row with the value of `annotation` beside it (Django's `annotate`):
    /// `Thread::messages().count()`, a tuple of such aggregates over relations, or
    /// any expression over the row. See [`Reverse::count`](crate::relations::Reverse::count).
    pub fn annotate<A, U>(&self, annotation: A) -> Values<M, (diesel::dsl::AsSelect<M, Db>, A), U>
    where
        (diesel::dsl::AsSelect<M, Db>, A):
            Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        (diesel::dsl::AsSelect<M, Db>, A): ValidGrouping<(), IsAggregate = is_aggregate::No>,
        (diesel::dsl::AsSelect<M, Db>, A): Clone + Send + Sync + 'static,
    {
        self.values_list((M::selection(), annotation))
    }

    /// The rows in groups by `columns` (a column or a tuple of columns), for one
    /// row of aggregates per group (`GROUP BY`).
    pub fn group_by<G>(&self, columns: G) -> Grouped<M, G>
    where
        G: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        G: Clone + Send + Sync + 'static,
    {
        Grouped {
            qs: self.clone(),
            columns,
            having: Vec::new(),
        }
    }
}

impl<M: Model> QuerySet<M> {
    /// Aggregates over the queryset's rows, in one row (Django's `aggregate`):
    /// diesel's `count_star()`, `count(col)`, `count(col).aggregate_distinct()`,
    /// `sum`, `avg`, `min`, `max`, or
    /// a tuple of them, typed as diesel types them (`sum` and `avg` of an integer
    /// column are `Option<i64>` / `Option<BigDecimal>`, and NULL, so `None`, over no
    /// rows). A sliced queryset is aggregated over its slice, through a derived
    /// table.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use diesel::dsl::{count, count_star, max, min};
    /// use diesel::AggregateExpressionMethods as _;
    /// let live = Message::objects();
    /// let (rows, senders, first, last): (i64, i64, Option<i64>, Option<i64>) = live.aggregate(
    ///     &mut conn,
    ///     (count_star(), count(weave_message::sent_by_id).aggregate_distinct(), min(weave_message::id), max(weave_message::id)),
    /// )?;
    /// assert_eq!((rows, senders, first, last), (3, 2, Some(1), Some(3)));
    /// let none: Option<i64> = live.filter(weave_message::id.gt(99)).aggregate(&mut conn, max(weave_message::id))?;
    /// assert_eq!(none, None);
    /// assert_eq!(
    ///     Message::objects().aggregate_sql((count_star(), max(weave_message::id)), Backend::Postgres)?,
    ///     r#"SELECT COUNT(*), max("weave_message"."id") FROM "weave_message" WHERE ("weave_message"."deleted" = false)"#
    /// );
    /// assert_eq!(
    ///     Message::objects().limit(2).aggregate_sql(count_star(), Backend::Sqlite)?,
    ///     "SELECT COUNT(*) FROM (SELECT * FROM `weave_message` WHERE (`weave_message`.`deleted` = false) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 2) AS `weave_message`"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects the statement.
    #[track_caller]
    pub fn aggregate<S, U>(&self, conn: &mut impl AsConnection, selection: S) -> Result<U>
    where
        S: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        S: ValidGrouping<(), IsAggregate = is_aggregate::Yes>,
        S: Send + Sync + 'static,
        SelectStatement<S>: LoadQuery<'static, AnyConnection, U>,
        U: 'static,
    {
        let conn = conn.connection();
        let statement = self.aggregate_statement(selection);
        run(Location::caller(), || {
            statement.get_result(conn).map(|row| vec![row])
        })
        .map(|mut rows| rows.remove(0))
    }

    /// The SQL [`aggregate`](Self::aggregate) sends on `backend`.
    pub fn aggregate_sql<S>(&self, selection: S, backend: Backend) -> Result<String>
    where
        S: Expression + AppearsOnTable<M::Table> + QueryFragment<Db>,
        S: ValidGrouping<(), IsAggregate = is_aggregate::Yes>,
    {
        Ok(render(&self.aggregate_statement(selection), backend)?)
    }

    fn aggregate_statement<S>(&self, selection: S) -> SelectStatement<S> {
        let mut source = self.source();
        // A model's rows are distinct by their key: DISTINCT changes nothing here.
        source.distinct = false;
        if source.is_sliced() {
            source = super::statement::SlicedTable::source(
                source,
                Arc::new(M::Table::default()),
                ColumnRef::of(M::PrimaryKey::default()),
            );
        }
        let mut statement = SelectStatement::new(selection, source);
        statement.with_order = false;
        statement
    }
}

impl<M: Model, S, U> Values<M, S, U>
where
    S: Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
{
    /// The statement: the queryset's, with this selection. `SELECT DISTINCT` over
    /// some columns drops the model's default ordering (PostgreSQL requires ordered
    /// columns in a distinct selection); an `order_by` of the queryset stays.
    pub(crate) fn statement(&self) -> SelectStatement<S> {
        let mut source = self.qs.source();
        if (source.distinct || self.group.is_some()) && self.qs.has_default_ordering() {
            source.order.clear();
        }
        let mut statement = SelectStatement::new(self.selection.clone(), source);
        statement.group = self.group.clone();
        if self.group.is_none() {
            statement.lock = self.qs.locking();
        }
        statement
    }

    /// Whether the rows are groups (`group_by`).
    pub(crate) fn is_grouped(&self) -> bool {
        self.group.is_some()
    }

    /// The queryset the values are read from.
    pub(crate) fn queryset(&self) -> &QuerySet<M> {
        &self.qs
    }

    /// The SQL [`all`](Self::all) sends on `backend`.
    pub fn sql(&self, backend: Backend) -> Result<String> {
        Ok(render(&self.statement(), backend)?)
    }

    /// The number of rows (of distinct rows after `distinct()`): one
    /// `SELECT COUNT(*)`.
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects the statement.
    #[track_caller]
    pub fn count(&self, conn: &mut impl AsConnection) -> Result<i64> {
        let conn = conn.connection();
        let mut inner = self.statement();
        inner.with_order = false;
        let statement = CountStatement { inner };
        run(Location::caller(), || {
            super::run::count_query(&statement).get_result::<i64>(conn)
        })
    }
}

impl<M: Model, S, U> Values<M, S, U>
where
    S: Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
    SelectStatement<S>: LoadQuery<'static, AnyConnection, U>,
    U: 'static,
{
    /// Every row's values (one query).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects the statement.
    #[track_caller]
    pub fn all(&self, conn: &mut impl AsConnection) -> Result<Vec<U>> {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let statement = self.statement();
        run(Location::caller(), || statement.load(conn))
    }

    /// The first row's values in the queryset's ordering, or `None` (`LIMIT 1`).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects the statement.
    #[track_caller]
    pub fn first(&self, conn: &mut impl AsConnection) -> Result<Option<U>> {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let mut statement = self.statement();
        if !matches!(statement.source.limit, Some(0)) {
            statement.limit_override = Some(1);
        }
        run(Location::caller(), || statement.load(conn)).map(|rows| rows.into_iter().next())
    }

    /// The values of the one row, or [`Error::NotFound`](crate::Error::NotFound) /
    /// [`Error::MultipleObjectsReturned`](crate::Error::MultipleObjectsReturned)
    /// (`LIMIT 21`, as Django).
    ///
    /// # Errors
    /// As above, and [`Error::Query`](crate::Error::Query).
    #[track_caller]
    pub fn get(&self, conn: &mut impl AsConnection) -> Result<U> {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let mut statement = self.statement();
        statement.limit_override = Some(super::run::MAX_GET_RESULTS);
        let rows = run(Location::caller(), || statement.load(conn))?;
        super::run::exactly_one::<M, U>(rows)
    }
}

/// `(<column> IS NOT NULL AND <column> IN (SELECT <selection> FROM ... WHERE
/// <selection> IS NOT NULL AND ...))`: true or false, never NULL, so that `exclude`
/// keeps the rows whose value is not among the subquery's.
struct InValues {
    column: ColumnRef,
    selection: Fragment,
    source: Source,
}

impl QueryFragment<Db> for InValues {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(");
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IS NOT NULL AND ");
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT ");
        self.selection.walk_ast(out.reborrow())?;
        self.source.walk_slice(&mut out)?;
        out.push_sql("))");
        Ok(())
    }
}

/// `<selection> IS NOT NULL`.
struct NotNullSelection(Fragment);

impl QueryFragment<Db> for NotNullSelection {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" IS NOT NULL");
        Ok(())
    }
}

/// A column's test against the values of another queryset (a subquery that
/// carries that queryset's filters, soft delete and slice).
pub trait InValuesMethods: Column + QueryFragment<Db> + Default + Send + Sync + 'static {
    /// The rows whose value of this column is among `values` (Django's
    /// `filter(sent_by__in=Person.objects.filter(...).values("id"))`). The
    /// selection's SQL type must be the column's (either may be nullable).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use orm::InValuesMethods as _;
    /// let turings = Person::objects().filter(weave_person::last_name.eq("Turing")).values_list::<_, i64>(weave_person::id);
    /// let qs = Message::objects().filter(weave_message::sent_by_id.is_in(turings));
    /// assert_eq!(qs.all(&mut conn)?.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 2]);
    /// assert_eq!(
    ///     qs.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."sent_by_id" IS NOT NULL AND "weave_message"."sent_by_id" IN (SELECT "weave_person"."id" FROM "weave_person" WHERE ("weave_person"."id" IS NOT NULL) AND ("weave_person"."deleted" = false) AND (("weave_person"."last_name" = $1))))) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC"#
    /// );
    /// # Ok(()) }
    /// ```
    // By value like diesel's `eq_any`: a column is a unit struct.
    #[allow(clippy::wrong_self_convention)]
    fn is_in<M, S, U>(self, values: Values<M, S, U>) -> Condition<Self::Table>
    where
        M: Model,
        S: Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
        S::SqlType: SqlType + SingleValue + IntoNullable,
        Self::SqlType: SqlType + IntoNullable<Nullable = <S::SqlType as IntoNullable>::Nullable>,
    {
        let statement = values.statement();
        let selection: Fragment = Arc::new(statement.selection);
        let mut source = statement.source;
        if !source.is_sliced() {
            source.order.clear();
        }
        source
            .filters
            .insert(0, Arc::new(NotNullSelection(selection.clone())));
        Condition::new(Arc::new(InValues {
            column: ColumnRef::of(self),
            selection,
            source,
        }))
    }
}

impl<C: Column + QueryFragment<Db> + Default + Send + Sync + 'static> InValuesMethods for C {}
