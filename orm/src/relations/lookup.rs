//! Lookups across relations: filter by a related model's rows, order by a related
//! model's column (Django's `filter(customer__country="FR")`,
//! `order_by("sent_by__last_name")`).
//!
//! A lookup is a subquery over the related model's queryset, so the related model's
//! soft delete applies (unless that queryset says `with_deleted`) and the outer
//! statement keeps one row per row of its model: no JOIN that multiplies rows, no
//! `DISTINCT` to undo it.
//!
//! - Across two tables: `EXISTS (SELECT 1 FROM related WHERE related.key = outer.key
//!   AND ...)`. PostgreSQL plans it as a semi-join (`NOT EXISTS` as an anti-join);
//!   SQLite runs it per outer row through the index on the foreign key.
//! - Through a self-referential key (an event that follows an event), or over a
//!   sliced related queryset: `(outer.key IS NOT NULL AND outer.key IN (SELECT
//!   related.key FROM related WHERE related.key IS NOT NULL AND ...))`. A correlated
//!   subquery cannot name the outer row when both are the same table, and a slice
//!   must be taken before it is compared. The `IS NOT NULL` terms make the test
//!   true or false, never NULL, so `exclude` keeps the rows it keeps with `EXISTS`.

use std::marker::PhantomData;
use std::sync::Arc;

use diesel::expression::{is_aggregate, AppearsOnTable, SelectableExpression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, BoolOrNullableBool};
use diesel::{Expression, QueryResult};

use super::foreign_key::{ForeignKey, KeyOf, Link, NullableForeignKey};
use super::reverse::Reverse;
use crate::connection::Db;
use crate::fragment::{ColumnRef, Fragment, TableName};
use crate::model::Model;
use crate::ordering::{IntoOrdering, OrderTerm};
use crate::queryset::statement::Source;
use crate::queryset::QuerySet;
use crate::sql_type::ColumnType;

/// A boolean condition on the rows of table `T` that the library renders: a lookup
/// across a relation ([`ForeignKey::is`], [`Reverse::any`]). Pass it to `filter` or
/// `exclude`, or combine it with diesel's `.and()`, `.or()` and `not()` like any
/// boolean expression.
pub struct Condition<T> {
    fragment: Fragment,
    _table: PhantomData<fn() -> T>,
}

impl<T> Condition<T> {
    pub(crate) fn new(fragment: Fragment) -> Self {
        Self {
            fragment,
            _table: PhantomData,
        }
    }
}

impl<T> Clone for Condition<T> {
    fn clone(&self) -> Self {
        Self::new(self.fragment.clone())
    }
}

impl<T> std::fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match crate::fragment::render(&*self.fragment, crate::Backend::Postgres) {
            Ok(sql) => f.write_str(&sql),
            Err(_) => f.write_str("Condition"),
        }
    }
}

impl<T> Expression for Condition<T> {
    type SqlType = Bool;
}

impl<T> AppearsOnTable<T> for Condition<T> {}

impl<T> SelectableExpression<T> for Condition<T> {}

impl<T> ValidGrouping<()> for Condition<T> {
    type IsAggregate = is_aggregate::No;
}

impl<T> QueryFragment<Db> for Condition<T> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.fragment.walk_ast(out)
    }
}

impl<T> QueryId for Condition<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// Whether tables `A` and `B` may be the same relation in one statement: same name
/// (a schema does not tell them apart, since an unqualified reference matches
/// either), or a name that cannot be read.
fn same_table<A: Default + QueryFragment<Db>, B: Default + QueryFragment<Db>>() -> bool {
    match (TableName::of(&A::default()), TableName::of(&B::default())) {
        (Ok(a), Ok(b)) => a.name == b.name,
        _ => true,
    }
}

/// `<inner> = <outer>`: the correlation of an `EXISTS`.
struct Correlation {
    inner: ColumnRef,
    outer: ColumnRef,
}

impl QueryFragment<Db> for Correlation {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.inner.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" = ");
        self.outer.qualified.walk_ast(out.reborrow())
    }
}

/// `<column> IS NOT NULL`.
struct NotNull(ColumnRef);

impl QueryFragment<Db> for NotNull {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IS NOT NULL");
        Ok(())
    }
}

/// Whether an outer row has a row in a related queryset whose `inner` column equals
/// its `outer` column (the module's two forms).
struct RelatedRows {
    outer: ColumnRef,
    inner: ColumnRef,
    source: Source,
    correlated: bool,
}

impl RelatedRows {
    /// The test of the outer table `O` against `related`, a queryset over table `I`.
    fn new<O, I: Model>(outer: ColumnRef, inner: ColumnRef, related: &QuerySet<I>) -> Self
    where
        O: Default + QueryFragment<Db>,
    {
        let mut source = related.source();
        // DISTINCT does not change whether a row exists.
        source.distinct = false;
        let correlated = !source.is_sliced() && !same_table::<O, I::Table>();
        if !source.is_sliced() {
            source.order.clear();
        }
        let first: Fragment = if correlated {
            Arc::new(Correlation {
                inner: inner.clone(),
                outer: outer.clone(),
            })
        } else {
            Arc::new(NotNull(inner.clone()))
        };
        source.filters.insert(0, first);
        Self {
            outer,
            inner,
            source,
            correlated,
        }
    }
}

impl QueryFragment<Db> for RelatedRows {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        if self.correlated {
            out.push_sql("EXISTS (SELECT 1");
            self.source.walk_from_where(&mut out)?;
            out.push_sql(")");
            return Ok(());
        }
        out.push_sql("(");
        self.outer.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IS NOT NULL AND ");
        self.outer.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT ");
        self.inner.qualified.walk_ast(out.reborrow())?;
        self.source.walk_slice(&mut out)?;
        out.push_sql("))");
        Ok(())
    }
}

/// The terms of an ordering by a related model's columns, for the queryset of table
/// `T`: made by [`ForeignKey::by`], passed to `order_by` alone or in a tuple with
/// the model's own columns.
pub struct RelatedOrdering<T> {
    terms: Vec<OrderTerm>,
    _table: PhantomData<fn() -> T>,
}

impl<T> IntoOrdering<T> for RelatedOrdering<T> {
    fn into_ordering(self) -> Vec<OrderTerm> {
        self.terms
    }
}

/// The alias of the related table in an ordering through a self-referential key.
const ORDER_ALIAS: &str = "orm_by";

/// `(SELECT related.column FROM related WHERE related.pk = outer.fk)`: one value of
/// the related row, NULL without one. Through a self-referential key the related
/// table is read under an alias, so that `outer.fk` still names the outer row.
struct RelatedValue {
    table: Fragment,
    pk: ColumnRef,
    fk: ColumnRef,
    value: OrderTerm,
    aliased: bool,
}

impl QueryFragment<Db> for RelatedValue {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(SELECT ");
        if self.aliased {
            if self.value.via.is_some() {
                return Err(Unrenderable::error(
                    "an ordering through a key from a table to itself cannot go on through another relation",
                ));
            }
            out.push_identifier(ORDER_ALIAS)?;
            out.push_sql(".");
            out.push_identifier(self.value.column.name)?;
            out.push_sql(" FROM ");
            self.table.walk_ast(out.reborrow())?;
            out.push_sql(" AS ");
            out.push_identifier(ORDER_ALIAS)?;
            out.push_sql(" WHERE ");
            out.push_identifier(ORDER_ALIAS)?;
            out.push_sql(".");
            out.push_identifier(self.pk.name)?;
        } else {
            self.value.column.qualified.walk_ast(out.reborrow())?;
            out.push_sql(" FROM ");
            self.table.walk_ast(out.reborrow())?;
            out.push_sql(" WHERE ");
            self.pk.qualified.walk_ast(out.reborrow())?;
        }
        out.push_sql(" = ");
        self.fk.qualified.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl<C: Model, P: Model> Link<C, P> {
    /// `C` rows whose `P` row is among `parents`.
    fn parent_in(&self, parents: &QuerySet<P>) -> Condition<C::Table> {
        Condition::new(Arc::new(RelatedRows::new::<C::Table, P>(
            (self.column)(),
            ColumnRef::of(P::PrimaryKey::default()),
            parents,
        )))
    }

    /// `P` rows with a row among `children`.
    pub(crate) fn child_in(&self, children: &QuerySet<C>) -> Condition<P::Table> {
        Condition::new(Arc::new(RelatedRows::new::<P::Table, C>(
            ColumnRef::of(P::PrimaryKey::default()),
            (self.column)(),
            children,
        )))
    }

    /// `ordering` of `P`'s columns, read for each `C` row through this key.
    fn ordering_by(&self, ordering: Vec<OrderTerm>) -> RelatedOrdering<C::Table> {
        let aliased = same_table::<C::Table, P::Table>();
        let nullable = matches!(self.value, KeyOf::Nullable(_));
        let terms = ordering
            .into_iter()
            .map(|term| OrderTerm {
                column: ColumnRef {
                    qualified: Arc::new(RelatedValue {
                        table: Arc::new(P::Table::default()),
                        pk: ColumnRef::of(P::PrimaryKey::default()),
                        fk: (self.column)(),
                        value: term.clone(),
                        aliased,
                    }),
                    name: term.column.name,
                },
                column_type: ColumnType {
                    kind: term.column_type.kind,
                    nullable: nullable || term.column_type.nullable,
                },
                descending: term.descending,
                via: Some(self.name),
            })
            .collect();
        RelatedOrdering {
            terms,
            _table: PhantomData,
        }
    }
}

macro_rules! forward_lookups {
    ($ty:ident) => {
        impl<C: Model, P: Model> $ty<C, P> {
            /// The rows whose related row matches `predicate`, a filter over the
            /// related model's table; soft-deleted related rows never match (use
            /// [`is_in`](Self::is_in) with `with_deleted()` to let them).
            ///
            /// ```
            /// # include!("../../doctest_setup.rs");
            /// # fn main() -> orm::Result<()> {
            /// # let (_db, mut conn) = setup();
            /// use orm::prelude::*;
            /// // Messages whose sender's last name is Turing.
            /// let qs = Message::objects().filter(Message::sent_by.is(weave_person::last_name.eq("Turing")));
            /// let ids: Vec<i64> = qs.all(&mut conn)?.iter().map(|m| m.id).collect();
            /// assert_eq!(ids, [3, 2]);
            /// assert_eq!(
            ///     qs.sql(Backend::Postgres)?,
            ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (EXISTS (SELECT 1 FROM "weave_person" WHERE ("weave_person"."id" = "weave_message"."sent_by_id") AND ("weave_person"."deleted" = false) AND (("weave_person"."last_name" = $1)))) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC"#
            /// );
            /// assert_eq!(
            ///     qs.sql(Backend::Sqlite)?,
            ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (EXISTS (SELECT 1 FROM `weave_person` WHERE (`weave_person`.`id` = `weave_message`.`sent_by_id`) AND (`weave_person`.`deleted` = false) AND ((`weave_person`.`last_name` = ?)))) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
            /// );
            /// # Ok(()) }
            /// ```
            ///
            /// Lookups nest across hops (`Line::order.is(Order::customer.is(..))`),
            /// and a lookup through a self-referential key takes the `IN` form (see
            /// the module's documentation).
            pub fn is<E>(&self, predicate: E) -> Condition<C::Table>
            where
                E: Expression + AppearsOnTable<P::Table> + ValidGrouping<()> + QueryFragment<Db>,
                E: Send + Sync + 'static,
                E::SqlType: BoolOrNullableBool,
            {
                self.link.parent_in(&P::objects().filter(predicate))
            }

            /// The rows whose related row is one of `parents`' rows (its filters, its
            /// soft delete, its slice): `Message::sent_by.is_in(Person::objects()
            /// .with_deleted().filter(..))`.
            pub fn is_in(&self, parents: QuerySet<P>) -> Condition<C::Table> {
                self.link.parent_in(&parents)
            }

            /// An ordering by the related row's columns (Django's
            /// `order_by("sent_by__last_name")`): each term reads its value with a
            /// subquery by primary key, which keeps the statement's rows one per row
            /// of the model and composes with slices, `select_related` and counts.
            /// Rows without a related row (a NULL key) order as NULL.
            ///
            /// ```
            /// # include!("../../doctest_setup.rs");
            /// # fn main() -> orm::Result<()> {
            /// # let (_db, mut conn) = setup();
            /// use orm::prelude::*;
            /// let qs = Message::objects()
            ///     .order_by((Message::sent_by.by(weave_person::last_name.desc()), weave_message::id.asc()));
            /// let ids: Vec<i64> = qs.all(&mut conn)?.iter().map(|m| m.id).collect();
            /// assert_eq!(ids, [2, 3, 1]);
            /// assert_eq!(
            ///     qs.sql(Backend::Postgres)?,
            ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) ORDER BY (SELECT "weave_person"."last_name" FROM "weave_person" WHERE "weave_person"."id" = "weave_message"."sent_by_id") DESC, "weave_message"."id" ASC"#
            /// );
            /// assert_eq!(
            ///     qs.sql(Backend::Sqlite)?,
            ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) ORDER BY (SELECT `weave_person`.`last_name` FROM `weave_person` WHERE `weave_person`.`id` = `weave_message`.`sent_by_id`) DESC, `weave_message`.`id` ASC"
            /// );
            /// # Ok(()) }
            /// ```
            ///
            /// The related column is not in the model's rows, so keyset pagination
            /// over such an ordering is [`Error::Unsupported`](crate::Error::Unsupported);
            /// page numbers and streams work.
            pub fn by<O: IntoOrdering<P::Table>>(&self, ordering: O) -> RelatedOrdering<C::Table> {
                self.link.ordering_by(ordering.into_ordering())
            }
        }
    };
}

forward_lookups!(ForeignKey);
forward_lookups!(NullableForeignKey);

impl<P: Model, C: Model> Reverse<P, C> {
    /// The parent rows with at least one row of this hop matching `predicate` (Django's
    /// `filter(messages__text="...")`): one `EXISTS`, the hop's own filters and soft
    /// delete included. In `exclude` it drops the parents with one row matching every
    /// condition of `predicate` together (see the guide on how that differs from
    /// Django's multi-valued `exclude`).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Thread::objects().filter(Thread::messages().any(weave_message::text.like("%engine%")));
    /// assert_eq!(qs.all(&mut conn)?.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
    /// // Message 4 says "deleted" and is soft-deleted: it does not count.
    /// let qs = Thread::objects().filter(Thread::messages().any(weave_message::text.eq("deleted")));
    /// assert!(qs.all(&mut conn)?.is_empty());
    /// let without = Thread::objects().exclude(Thread::messages().any(weave_message::text.like("%engine%")));
    /// assert_eq!(without.all(&mut conn)?.iter().map(|t| t.id).collect::<Vec<_>>(), [2]);
    /// assert_eq!(
    ///     without.sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_thread"."id", "weave_thread"."created", "weave_thread"."updated", "weave_thread"."deleted", "weave_thread"."title" FROM "weave_thread" WHERE ("weave_thread"."deleted" = false) AND (NOT (EXISTS (SELECT 1 FROM "weave_message" WHERE ("weave_message"."thread_id" = "weave_thread"."id") AND ("weave_message"."deleted" = false) AND (("weave_message"."text" LIKE $1))))) ORDER BY "weave_thread"."updated" DESC, "weave_thread"."id" DESC"#
    /// );
    /// assert_eq!(
    ///     without.sql(Backend::Sqlite)?,
    ///     "SELECT `weave_thread`.`id`, `weave_thread`.`created`, `weave_thread`.`updated`, `weave_thread`.`deleted`, `weave_thread`.`title` FROM `weave_thread` WHERE (`weave_thread`.`deleted` = false) AND (NOT (EXISTS (SELECT 1 FROM `weave_message` WHERE (`weave_message`.`thread_id` = `weave_thread`.`id`) AND (`weave_message`.`deleted` = false) AND ((`weave_message`.`text` LIKE ?))))) ORDER BY `weave_thread`.`updated` DESC, `weave_thread`.`id` DESC"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn any<E>(self, predicate: E) -> Condition<P::Table>
    where
        E: Expression + AppearsOnTable<C::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.filter(predicate).exists()
    }

    /// The parent rows with at least one row of this hop (its filters and soft
    /// delete applied): `Thread::objects().filter(Thread::messages().exists())`.
    /// A per-parent limit does not change whether a row exists and is not applied.
    pub fn exists(self) -> Condition<P::Table> {
        self.link().child_in(self.queryset())
    }
}

/// An aggregate over each row's related rows through a reverse relation, as one
/// value of the row: `(SELECT COUNT(*) FROM message WHERE message.thread_id =
/// thread.id AND ...)`. Made by [`Reverse::count`] and [`Reverse::aggregate`]; a
/// diesel expression of SQL type `ST` on the parent's table `T`, so it goes into
/// [`QuerySet::annotate`](crate::QuerySet::annotate), `filter` (`.gt(5)`) and
/// `order_by` (`.desc()`).
pub struct RelatedAggregate<T, ST> {
    fragment: Fragment,
    via: &'static str,
    _types: PhantomData<fn() -> (T, ST)>,
}

impl<T, ST> Clone for RelatedAggregate<T, ST> {
    fn clone(&self) -> Self {
        Self {
            fragment: self.fragment.clone(),
            via: self.via,
            _types: PhantomData,
        }
    }
}

impl<T, ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType> Expression
    for RelatedAggregate<T, ST>
{
    type SqlType = ST;
}

impl<T, ST> AppearsOnTable<T> for RelatedAggregate<T, ST> where Self: Expression {}

impl<T, ST> SelectableExpression<T> for RelatedAggregate<T, ST> where Self: Expression {}

impl<T, ST, G> ValidGrouping<G> for RelatedAggregate<T, ST> {
    // A value per outer row, computed by its own subquery: never an aggregate of
    // the outer statement.
    type IsAggregate = is_aggregate::Never;
}

impl<T, ST> QueryFragment<Db> for RelatedAggregate<T, ST> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.fragment.walk_ast(out)
    }
}

impl<T, ST> QueryId for RelatedAggregate<T, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, ST: crate::SqlTypeInfo> RelatedAggregate<T, ST> {
    /// Ascending by this aggregate, for `order_by` (alone or in a tuple).
    pub fn asc(self) -> RelatedOrdering<T> {
        self.ordering(false)
    }

    /// Descending by this aggregate, for `order_by` (alone or in a tuple).
    pub fn desc(self) -> RelatedOrdering<T> {
        self.ordering(true)
    }

    fn ordering(self, descending: bool) -> RelatedOrdering<T> {
        RelatedOrdering {
            terms: vec![OrderTerm {
                column: ColumnRef {
                    qualified: self.fragment,
                    name: "aggregate",
                },
                column_type: ColumnType::of::<ST>(),
                descending,
                via: Some(self.via),
            }],
            _table: PhantomData,
        }
    }
}

/// `(SELECT <aggregate> FROM child WHERE child.fk = parent.pk AND ...)`.
struct AggregateOf {
    aggregate: Fragment,
    source: Source,
}

impl QueryFragment<Db> for AggregateOf {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(SELECT ");
        self.aggregate.walk_ast(out.reborrow())?;
        self.source.walk_from_where(&mut out)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<P: Model, C: Model> Reverse<P, C> {
    /// The number of each parent's rows in this hop (its filters and soft delete
    /// applied; a per-parent limit is not): `Thread::messages().count()`, 0 for a
    /// parent without any. Annotate rows with it, filter or order by it:
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let counted = Thread::objects()
    ///     .filter(Thread::messages().count().gt(0))
    ///     .order_by((Thread::messages().count().desc(), weave_thread::id.asc()));
    /// let rows: Vec<(Thread, i64)> = counted.annotate(Thread::messages().count()).all(&mut conn)?;
    /// let got: Vec<(i64, i64)> = rows.iter().map(|(t, n)| (t.id, *n)).collect();
    /// assert_eq!(got, [(1, 2), (2, 1)]);
    /// assert_eq!(
    ///     Thread::objects().annotate::<_, (Thread, i64)>(Thread::messages().count()).sql(Backend::Postgres)?,
    ///     r#"SELECT "weave_thread"."id", "weave_thread"."created", "weave_thread"."updated", "weave_thread"."deleted", "weave_thread"."title", (SELECT COUNT(*) FROM "weave_message" WHERE ("weave_message"."thread_id" = "weave_thread"."id") AND ("weave_message"."deleted" = false)) FROM "weave_thread" WHERE ("weave_thread"."deleted" = false) ORDER BY "weave_thread"."updated" DESC, "weave_thread"."id" DESC"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// Through a key from a table to itself (an event's followers) the subquery
    /// cannot name the outer row:
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the statement
    /// runs, before anything is sent.
    pub fn count(self) -> RelatedAggregate<P::Table, diesel::sql_types::BigInt> {
        self.aggregate(diesel::dsl::count_star())
    }

    /// Any aggregate of each parent's rows in this hop: diesel's `max(col)`,
    /// `sum(col)`, `count(col).aggregate_distinct()`... over the hop's table
    /// (`Thread::messages().aggregate(max(weave_message::created))`, NULL for a
    /// parent without rows).
    pub fn aggregate<A>(self, aggregate: A) -> RelatedAggregate<P::Table, A::SqlType>
    where
        A: Expression + AppearsOnTable<C::Table> + QueryFragment<Db>,
        A: ValidGrouping<(), IsAggregate = is_aggregate::Yes>,
        A: Send + Sync + 'static,
    {
        let link = *self.link();
        let mut source = self.queryset().source();
        source.order.clear();
        source.limit = None;
        source.offset = None;
        source.distinct = false;
        let correlation: Fragment = if same_table::<P::Table, C::Table>() {
            Arc::new(SelfCorrelation)
        } else {
            Arc::new(Correlation {
                inner: (link.column)(),
                outer: ColumnRef::of(P::PrimaryKey::default()),
            })
        };
        source.filters.insert(0, correlation);
        RelatedAggregate {
            fragment: Arc::new(AggregateOf {
                aggregate: Arc::new(aggregate),
                source,
            }),
            via: self.name(),
            _types: PhantomData,
        }
    }
}

/// The correlation a subquery over the outer row's own table cannot write.
struct SelfCorrelation;

impl QueryFragment<Db> for SelfCorrelation {
    fn walk_ast<'b>(&'b self, _: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        Err(Unrenderable::error(
            "an aggregate through a key from a table to itself cannot name the outer row; \
             group the related rows with group_by instead",
        ))
    }
}

/// A lookup the library cannot write as SQL, found when the statement is built
/// (mapped to [`Error::InvalidArgument`](crate::Error::InvalidArgument)).
#[derive(Debug)]
pub(crate) struct Unrenderable(pub(crate) &'static str);

impl Unrenderable {
    fn error(reason: &'static str) -> diesel::result::Error {
        diesel::result::Error::QueryBuilderError(Box::new(Unrenderable(reason)))
    }
}

impl std::fmt::Display for Unrenderable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unrenderable {}
