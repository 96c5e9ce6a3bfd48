//! Reverse hops: the rows pointing at each parent (a thread's messages), with their
//! own queryset, optional JOINs and an optional per-parent limit.

use crate::connection::AsConnection;
use std::panic::Location;
use std::sync::Arc;

use diesel::expression::{AppearsOnTable, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{BigInt, BoolOrNullableBool};
use diesel::{Expression, ExpressionMethods, QueryResult};

use super::hint::note_fix;
use super::hop::{Hop, Many};
use super::key_list::{fetch_keyed, key_filter};
use super::nested::Nested;
use super::select_related::{load, JoinSet, Related};
use super::Link;
use crate::connection::{AnyConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{is_qualified, render, ColumnRef, Fragment};
use crate::model::Model;
use crate::ordering::{IntoOrdering, OrderTerm};
use crate::queryset::run::run_read as run;
use crate::queryset::statement::{walk_where, PkIn, SelectStatement, Source};
use crate::queryset::QuerySet;

/// The reverse of a foreign key: the `C` rows pointing at each `P` (a thread's
/// messages). Made by the method [`relation!`](crate::relation) declares
/// (`Thread::messages()`); carries its own queryset, so a hop can filter, order, show
/// soft-deleted rows and keep only the first rows of each parent.
pub struct Reverse<P: Model, C> {
    name: &'static str,
    link: Link<C, P>,
    qs: QuerySet<C>,
    per_parent: Option<i64>,
}

impl<P: Model, C> Clone for Reverse<P, C> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            link: self.link,
            qs: self.qs.clone(),
            per_parent: self.per_parent,
        }
    }
}

impl<P: Model, C: Model> Reverse<P, C> {
    /// The reverse hop named `name` over the foreign key `fk` (a
    /// [`ForeignKey`](super::ForeignKey) or a
    /// [`NullableForeignKey`](super::NullableForeignKey)), with `C::objects()` as its
    /// queryset (soft-deleted children hidden). [`relation!`](crate::relation) declares a
    /// method that calls this; call it yourself where it cannot, when `P` is defined in
    /// another crate: `Reverse::new("pins", Pin::message)`.
    pub fn new<F: Into<Link<C, P>>>(name: &'static str, fk: F) -> Self {
        Self {
            name,
            link: fk.into(),
            qs: C::objects(),
            per_parent: None,
        }
    }

    /// The hop's name (`"messages"`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The foreign key the hop follows back.
    pub(crate) fn link(&self) -> &Link<C, P> {
        &self.link
    }

    /// The hop's queryset over `C`.
    pub(crate) fn queryset(&self) -> &QuerySet<C> {
        &self.qs
    }

    /// Keeps the hop's rows where `predicate` holds.
    #[must_use]
    pub fn filter<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<C::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.qs = self.qs.filter(predicate);
        self
    }

    /// Drops the hop's rows where `predicate` holds.
    #[must_use]
    pub fn exclude<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<C::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.qs = self.qs.exclude(predicate);
        self
    }

    /// Orders each parent's rows (replacing `C`'s default ordering).
    #[must_use]
    pub fn order_by<O: IntoOrdering<C::Table>>(mut self, ordering: O) -> Self {
        self.qs = self.qs.order_by(ordering);
        self
    }

    /// Includes soft-deleted rows.
    #[must_use]
    pub fn with_deleted(mut self) -> Self {
        self.qs = self.qs.with_deleted();
        self
    }

    /// Keeps only the first `n` rows of each parent, in the hop's ordering (by primary
    /// key when it has none): a thread's 3 latest messages, still one query for all
    /// threads, through `ROW_NUMBER() OVER (PARTITION BY <foreign key> ORDER BY ...)`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let latest = Thread::messages().limit_per_parent(1);
    /// let (threads, captured) = orm::capture(|| Thread::objects().prefetch(latest.clone()).all(&mut conn));
    /// assert_eq!(captured.len(), 2);
    /// let texts: Vec<_> = threads?.iter().map(|(_, ms)| ms[0].text.clone()).collect();
    /// assert_eq!(texts, ["What can machines think?", "A machine."]);
    /// assert_eq!(
    ///     latest.sql_for(&[1, 2], Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` \
    ///      FROM (SELECT `weave_message`.*, ROW_NUMBER() OVER (PARTITION BY `weave_message`.`thread_id` ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC) AS `orm_rank` \
    ///      FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (`weave_message`.`thread_id` IN (SELECT value FROM json_each(?)))) AS `weave_message` \
    ///      WHERE (`orm_rank` <= ?) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
    /// );
    /// assert_eq!(
    ///     latest.sql_for(&[1, 2], Backend::Postgres)?,
    ///     "SELECT \"weave_message\".\"id\", \"weave_message\".\"created\", \"weave_message\".\"updated\", \"weave_message\".\"deleted\", \"weave_message\".\"text\", \"weave_message\".\"sent_by_id\", \"weave_message\".\"thread_id\" \
    ///      FROM (SELECT \"weave_message\".*, ROW_NUMBER() OVER (PARTITION BY \"weave_message\".\"thread_id\" ORDER BY \"weave_message\".\"updated\" DESC, \"weave_message\".\"id\" DESC) AS \"orm_rank\" \
    ///      FROM \"weave_message\" WHERE (\"weave_message\".\"deleted\" = false) AND ((\"weave_message\".\"thread_id\" = ANY($1)))) AS \"weave_message\" \
    ///      WHERE (\"orm_rank\" <= $2) ORDER BY \"weave_message\".\"updated\" DESC, \"weave_message\".\"id\" DESC"
    /// );
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn limit_per_parent(mut self, n: u32) -> Self {
        self.per_parent = Some(i64::from(n));
        self
    }

    /// Loads each row's related rows by JOIN in the hop's query (a thread's messages
    /// with their senders: still one query for the hop). Takes what
    /// [`select_related`](crate::QuerySet::select_related) takes.
    pub fn select_related<J: JoinSet<C>>(self, joins: J) -> ReverseRelated<P, C, J> {
        ReverseRelated {
            reverse: self,
            joins,
        }
    }

    /// Then prefetches `next` for the rows of this hop (a thread's messages, then each
    /// message's pins): one more query, however many rows.
    pub fn prefetch<H: Hop<C>>(self, next: H) -> Nested<Self, H> {
        Nested { first: self, next }
    }

    /// The rows of one parent: one query, on purpose (Django's
    /// `thread.message_set.all()`).
    ///
    /// In a loop this is the N+1 pattern;
    /// [`detect_n_plus_one`](crate::instrument::detect_n_plus_one) reports it with the
    /// fix (`prefetch `Thread::messages``).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let thread = Thread::objects().filter(weave_thread::id.eq(1)).get(&mut conn)?;
    /// let (messages, captured) = orm::capture(|| Thread::messages().all_for(&thread, &mut conn));
    /// assert_eq!(messages?.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 1]);
    /// assert_eq!(captured.all()[0].sql, Thread::messages().all_for_sql(&thread, Backend::Sqlite)?);
    /// assert_eq!(
    ///     Thread::messages().all_for_sql(&thread, Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` \
    ///      FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` IN (?))) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
    /// );
    /// // PostgreSQL: no ORDER BY; each parent's rows are ordered here (timestamps and ids
    /// // order in Rust exactly as in SQL), sparing the server a sort of every child.
    /// assert_eq!(
    ///     Thread::messages().all_for_sql(&thread, Backend::Postgres)?,
    ///     "SELECT \"weave_message\".\"id\", \"weave_message\".\"created\", \"weave_message\".\"updated\", \"weave_message\".\"deleted\", \"weave_message\".\"text\", \"weave_message\".\"sent_by_id\", \"weave_message\".\"thread_id\" \
    ///      FROM \"weave_message\" WHERE (\"weave_message\".\"deleted\" = false) AND ((\"weave_message\".\"thread_id\" = ANY($1)))"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn all_for(&self, parent: &P, conn: &mut impl AsConnection) -> Result<Vec<C>> {
        let conn = conn.connection();
        let site = Location::caller();
        note_fix(site, || format!("prefetch `{}::{}`", P::NAME, self.name));
        let filter = (self.link.key_in)(vec![parent.pk()]);
        Ok(self
            .load_where(conn, filter, site)?
            .into_iter()
            .map(|(_, row)| row)
            .collect())
    }

    /// How many rows of this hop one parent has: one `SELECT COUNT(*)`, on purpose
    /// (Django's `thread.message_set.count()`). In a loop this is the N+1 pattern;
    /// [`detect_n_plus_one`](crate::instrument::detect_n_plus_one) reports it with
    /// the fix (`annotate `Thread::messages().count()``: one statement for every
    /// parent).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn count_for(&self, parent: &P, conn: &mut impl AsConnection) -> Result<i64> {
        let conn = conn.connection();
        let site = Location::caller();
        note_fix(site, || {
            format!("annotate `{}::{}().count()`", P::NAME, self.name)
        });
        let rows = self
            .qs
            .clone()
            .filter_fragment((self.link.key_in)(vec![parent.pk()]));
        crate::instrument::with_site(site, || rows.count(conn))
    }

    /// The hop's source for one key filter: the queryset's, wrapped in the per-parent
    /// ranking when there is a limit.
    fn source(&self, key_filter: Fragment) -> Source {
        let source = self.qs.clone().filter_fragment(key_filter).source();
        self.ranked(source)
    }

    fn ranked(&self, mut source: Source) -> Source {
        let Some(n) = self.per_parent else {
            return source;
        };
        let mut order = source.order.clone();
        if order.is_empty() {
            order = IntoOrdering::<C::Table>::into_ordering(C::PrimaryKey::default().asc());
        }
        let mut ranked = Ranked {
            table: source.table.clone(),
            filters: std::mem::take(&mut source.filters),
            partition: (self.link.column)(),
            order,
            keys: None,
        };
        if is_qualified(&*source.table) {
            // No alias can take a schema-qualified name: the table itself, filtered
            // to the keys of the ranked rows.
            let pk = ColumnRef::of(C::PrimaryKey::default());
            ranked.keys = Some((pk.clone(), RankAtMost(n)));
            source.filters = vec![Arc::new(PkIn {
                pk,
                keys: Arc::new(ranked),
            })];
        } else {
            source.table = Arc::new(ranked);
            source.filters = vec![Arc::new(RankAtMost(n))];
        }
        source
    }

    fn fetch_rows(
        &self,
        conn: &mut AnyConnection,
        keys: &[P::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(P::Key, C)>> {
        let link = self.link;
        fetch_keyed(conn, keys, (link.column)(), link.key_in, |conn, filter| {
            self.load_where(conn, filter, site)
        })
    }

    /// The hop's rows under the key filter `filter`, each with its parent key.
    fn load_where(
        &self,
        conn: &mut AnyConnection,
        filter: Fragment,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P::Key, C)>> {
        let (statement, order_here) = self.statement(filter, conn.backend());
        let rows = run(site, || C::load_rows(&statement, conn))?;
        let mut rows: Vec<(P::Key, C)> = rows
            .into_iter()
            .filter_map(|row| Some((self.link.value.get(&row)?, row)))
            .collect();
        if let Some(order) = order_here {
            crate::ordering::client::sort(&mut rows, &order);
        }
        Ok(rows)
    }

    /// The statement for the key filter `filter` on `backend`, and the ordering to apply
    /// to its rows here when the statement leaves it out.
    ///
    /// On PostgreSQL, an unsliced hop whose ordering Rust reproduces exactly (integer,
    /// boolean and timestamp columns: see [`crate::ordering::client`]) is sent without
    /// `ORDER BY` and ordered after loading: the server skips sorting every child of
    /// every parent (for a page of 100 threads, 10,000 messages: about half of that
    /// statement's execution time). SQLite (its timestamps are text) and every other
    /// ordering keep `ORDER BY`.
    fn statement(
        &self,
        filter: Fragment,
        backend: Backend,
    ) -> (
        SelectStatement<diesel::helper_types::AsSelect<C, crate::Db>>,
        Option<Vec<crate::OrderTerm>>,
    ) {
        let source = self.source(filter);
        let client = backend.capability().client_side_ordering
            && self.per_parent.is_none()
            && !source.is_sliced()
            && !source.distinct
            && crate::ordering::client::applies::<C>(&source.order);
        let order = client.then(|| source.order.clone());
        let mut statement = SelectStatement::new(C::selection(), source);
        statement.with_order = !client;
        (statement, order)
    }

    /// The SQL [`all_for`](Self::all_for) sends for `parent` on `backend`.
    pub fn all_for_sql(&self, parent: &P, backend: Backend) -> Result<String> {
        let (statement, _) = self.statement((self.link.key_in)(vec![parent.pk()]), backend);
        Ok(render(&statement, backend)?)
    }

    /// The SQL of this hop's query for parents with keys `keys` on `backend` (one
    /// statement: an array bind on PostgreSQL, a JSON list on SQLite).
    pub fn sql_for(&self, keys: &[P::Key], backend: Backend) -> Result<String> {
        let filter = key_filter(backend, (self.link.column)(), self.link.key_in, keys);
        let (statement, _) = self.statement(filter, backend);
        Ok(render(&statement, backend)?)
    }
}

impl<P: Model, C: Model + Clone> Hop<P> for Reverse<P, C> {
    type Shape = Many;
    type Row = C;
    type Key = P::Key;

    fn key(&self, parent: &P) -> Option<P::Key> {
        Some(parent.pk())
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[P::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(P::Key, C)>> {
        self.fetch_rows(conn, keys, site)
    }
}

/// `(SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.fk ORDER BY ...) AS "orm_rank"
/// FROM t WHERE ...) AS t`: the table under its own name, so the outer query's
/// qualified columns still resolve.
///
/// With `keys` (a schema-qualified table, which no alias can be named as), the keys
/// of the ranked rows instead, for `pk IN (...)`: `SELECT "orm_ranked"."id" FROM
/// (SELECT "s"."t"."id", ROW_NUMBER() ... FROM "s"."t" WHERE ...) AS "orm_ranked"
/// WHERE "orm_rank" <= ?`.
struct Ranked {
    table: Fragment,
    filters: Vec<Fragment>,
    partition: ColumnRef,
    order: Vec<OrderTerm>,
    keys: Option<(ColumnRef, RankAtMost)>,
}

const RANKED: &str = "orm_ranked";

impl QueryFragment<Db> for Ranked {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        if let Some((pk, _)) = &self.keys {
            out.push_sql("SELECT ");
            out.push_identifier(RANKED)?;
            out.push_sql(".");
            out.push_identifier(pk.name)?;
            out.push_sql(" FROM (SELECT ");
            pk.qualified.walk_ast(out.reborrow())?;
        } else {
            out.push_sql("(SELECT ");
            self.table.walk_ast(out.reborrow())?;
            out.push_sql(".*");
        }
        out.push_sql(", ROW_NUMBER() OVER (PARTITION BY ");
        self.partition.qualified.walk_ast(out.reborrow())?;
        for (i, term) in self.order.iter().enumerate() {
            out.push_sql(if i == 0 { " ORDER BY " } else { ", " });
            term.walk_ast(out.reborrow())?;
        }
        out.push_sql(") AS ");
        out.push_identifier(RANK)?;
        out.push_sql(" FROM ");
        self.table.walk_ast(out.reborrow())?;
        walk_where(&self.filters, &mut out)?;
        out.push_sql(") AS ");
        match &self.keys {
            Some((_, at_most)) => {
                out.push_identifier(RANKED)?;
                out.push_sql(" WHERE ");
                at_most.walk_ast(out.reborrow())
            }
            None => self.table.walk_ast(out.reborrow()),
        }
    }
}

const RANK: &str = "orm_rank";

/// `"orm_rank" <= ?`.
struct RankAtMost(i64);

impl QueryFragment<Db> for RankAtMost {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_identifier(RANK)?;
        out.push_sql(" <= ");
        out.push_bind_param::<BigInt, i64>(&self.0)
    }
}

/// A reverse hop whose rows come with related rows loaded by JOIN
/// (`Thread::messages().select_related(Message::sent_by)`: `(Message, Person)` rows).
pub struct ReverseRelated<P: Model, C, J> {
    reverse: Reverse<P, C>,
    joins: J,
}

impl<P: Model, C, J: Copy> Clone for ReverseRelated<P, C, J> {
    fn clone(&self) -> Self {
        Self {
            reverse: self.reverse.clone(),
            joins: self.joins,
        }
    }
}

impl<P: Model, C: Model, J: JoinSet<C>> Hop<P> for ReverseRelated<P, C, J>
where
    J::Row: Clone + crate::connection::DirectRows<SelectStatement<J::Selection>>,
{
    type Shape = Many;
    type Row = J::Row;
    type Key = P::Key;

    fn key(&self, parent: &P) -> Option<P::Key> {
        Some(parent.pk())
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[P::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(P::Key, J::Row)>> {
        let link = self.reverse.link;
        fetch_keyed(conn, keys, (link.column)(), link.key_in, |conn, filter| {
            let related: Related<C, J> = self.reverse.qs.clone().select_related(self.joins);
            let statement = related.statement_over(self.reverse.source(filter))?;
            let rows: Vec<J::Row> = load(statement, conn, site)?;
            Ok(rows
                .into_iter()
                .filter_map(|row| Some((link.value.get(J::root(&row))?, row)))
                .collect())
        })
    }
}
