use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;

use diesel::expression::{AppearsOnTable, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, BoolOrNullableBool, Text};
use diesel::{Expression, ExpressionMethods, QueryResult};

use super::hint::note_fix;
use super::select_related::{load, JoinSet, Related};
use super::{ForeignKey, Link, NullableForeignKey};
use crate::connection::{AnyConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{render, ColumnRef, Fragment};
use crate::model::Model;
use crate::ordering::{IntoOrdering, OrderTerm};
use crate::queryset::run::{fetch_chunks, run};
use crate::queryset::statement::{walk_where, SelectStatement, Source};
use crate::queryset::QuerySet;

/// How many related rows each parent of a hop gets.
pub trait Shape {
    /// `Vec<R>` (a reverse relation) or `Option<R>` (a foreign key).
    type Of<R: Clone>: Clone;
    /// The rows of one parent, owned.
    #[doc(hidden)]
    fn take<R: Clone>(rows: Vec<R>) -> Self::Of<R>;
    /// The rows of one parent, shared with other parents.
    #[doc(hidden)]
    fn copy<R: Clone>(rows: &[R]) -> Self::Of<R>;
}

/// Each parent gets a `Vec` (a thread's messages).
#[derive(Debug, Clone, Copy)]
pub enum Many {}

impl Shape for Many {
    type Of<R: Clone> = Vec<R>;

    fn take<R: Clone>(rows: Vec<R>) -> Vec<R> {
        rows
    }

    fn copy<R: Clone>(rows: &[R]) -> Vec<R> {
        rows.to_vec()
    }
}

/// Each parent gets an `Option` (a message's sender).
#[derive(Debug, Clone, Copy)]
pub enum One {}

impl Shape for One {
    type Of<R: Clone> = Option<R>;

    fn take<R: Clone>(rows: Vec<R>) -> Option<R> {
        rows.into_iter().next()
    }

    fn copy<R: Clone>(rows: &[R]) -> Option<R> {
        rows.first().cloned()
    }
}

/// One prefetch hop from parents `P`: loads the related rows of many parents in one
/// query and says which parent key each belongs to.
///
/// Hops: [`Reverse`] (`Thread::messages()`), a foreign key ([`ForeignKey`],
/// [`NullableForeignKey`], or [`Forward`] with a queryset of its own), and
/// [`Nested`] (a hop, then a hop from its rows).
pub trait Hop<P>: Clone {
    /// How many rows each parent gets.
    type Shape: Shape;
    /// One related row.
    type Row: Clone;

    /// The key `parent` is matched on (its primary key, or its foreign key's value);
    /// `None` matches nothing.
    #[doc(hidden)]
    fn key(&self, parent: &P) -> Option<i64>;

    /// The rows for the (deduplicated, non-empty) `keys`, each with its key, in the
    /// hop's ordering.
    #[doc(hidden)]
    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, Self::Row)>>;
}

/// What a parent gets from hop `H`: `Vec<H::Row>` or `Option<H::Row>`.
pub type HopOutput<P, H> = <<H as Hop<P>>::Shape as Shape>::Of<<H as Hop<P>>::Row>;

/// Fetches `hop`'s rows for `items` (keyed by `key`) and gives each item its share:
/// one query for all of them, none when no item has a key.
fn attach<T, P, H: Hop<P>>(
    conn: &mut AnyConnection,
    hop: &H,
    items: Vec<T>,
    parent: impl Fn(&T) -> &P,
    site: &'static Location<'static>,
) -> Result<Vec<(T, HopOutput<P, H>)>> {
    let mut uses: HashMap<i64, usize> = HashMap::new();
    for item in &items {
        if let Some(key) = hop.key(parent(item)) {
            *uses.entry(key).or_default() += 1;
        }
    }
    let mut keys: Vec<i64> = uses.keys().copied().collect();
    keys.sort_unstable();
    let mut groups: HashMap<i64, Vec<H::Row>> = HashMap::with_capacity(keys.len());
    if !keys.is_empty() {
        for (key, row) in hop.fetch(conn, &keys, site)? {
            groups.entry(key).or_default().push(row);
        }
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let rows = match hop.key(parent(&item)) {
                None => H::Shape::take(Vec::new()),
                Some(key) => {
                    let left = uses.get_mut(&key).map(|n| {
                        *n -= 1;
                        *n
                    });
                    if left == Some(0) {
                        H::Shape::take(groups.remove(&key).unwrap_or_default())
                    } else {
                        H::Shape::copy(groups.get(&key).map_or(&[][..], Vec::as_slice))
                    }
                }
            };
            (item, rows)
        })
        .collect())
}

/// `column IN keys` as one statement whatever the number of keys where the backend
/// can (an array bind, or a JSON list), else one statement per chunk.
fn fetch_keyed<T>(
    conn: &mut AnyConnection,
    keys: &[i64],
    column: ColumnRef,
    key_in: fn(Vec<i64>) -> Fragment,
    mut load: impl FnMut(&mut AnyConnection, Fragment) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let capability = conn.backend().capability();
    if !capability.array_binds && capability.json_key_lists {
        let filter = Arc::new(InJsonList {
            column,
            json: json_list(keys),
        });
        return load(conn, filter);
    }
    fetch_chunks(conn, keys, |conn, part| load(conn, key_in(part)))
}

/// `[1,2,3]`: the JSON text of a key list (numbers only, bound as one parameter).
fn json_list(keys: &[i64]) -> String {
    let mut json = String::with_capacity(keys.len() * 8 + 2);
    json.push('[');
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&key.to_string());
    }
    json.push(']');
    json
}

/// `"t"."c" IN (SELECT value FROM json_each(?))`: any number of keys in one bind.
struct InJsonList {
    column: ColumnRef,
    json: String,
}

impl QueryFragment<Db> for InJsonList {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

/// The reverse of a foreign key: the `C` rows pointing at each `P` (a thread's
/// messages). Made by the method [`relation!`](crate::relation) declares
/// (`Thread::messages()`); carries its own queryset, so a hop can filter, order, show
/// soft-deleted rows and keep only the first rows of each parent.
pub struct Reverse<P, C> {
    name: &'static str,
    link: Link<C, P>,
    qs: QuerySet<C>,
    per_parent: Option<i64>,
}

impl<P, C> Clone for Reverse<P, C> {
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
    /// The reverse hop named `name` over the foreign key `fk` (a [`ForeignKey`] or a
    /// [`NullableForeignKey`]), with `C::objects()` as its queryset (soft-deleted
    /// children hidden). [`relation!`](crate::relation) declares a method that calls
    /// this; call it yourself where it cannot, when `P` is defined in another crate:
    /// `Reverse::new("pins", Pin::message)`.
    pub fn new<F: Into<Link<C, P>>>(name: &'static str, fk: F) -> Self {
        Self {
            name,
            link: fk.into(),
            qs: C::objects(),
            per_parent: None,
        }
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
    /// // The hop's query for one key: see `sql_for` for both backends.
    /// assert_eq!(captured.all()[0].sql, Thread::messages().sql_for(&[thread.id], Backend::Sqlite)?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn all_for(&self, parent: &P, conn: &mut AnyConnection) -> Result<Vec<C>> {
        let site = Location::caller();
        note_fix(site, || format!("prefetch `{}::{}`", P::NAME, self.name));
        Ok(self
            .fetch_rows(conn, &[parent.pk()], site)?
            .into_iter()
            .map(|(_, row)| row)
            .collect())
    }

    /// The statement for the parents with keys `keys` (chunked by the caller).
    fn statement(&self, source: Source) -> SelectStatement<diesel::helper_types::AsSelect<C, Db>> {
        SelectStatement::new(C::selection(), self.ranked(source))
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
        source.table = Arc::new(Ranked {
            table: source.table,
            filters: std::mem::take(&mut source.filters),
            partition: (self.link.column)(),
            order,
        });
        source.filters = vec![Arc::new(RankAtMost(n))];
        source
    }

    fn fetch_rows(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, C)>> {
        let link = self.link;
        fetch_keyed(conn, keys, (link.column)(), link.key_in, |conn, filter| {
            let statement = SelectStatement::new(C::selection(), self.source(filter));
            let rows = run(site, || C::load_rows(&statement, conn))?;
            Ok(rows
                .into_iter()
                .filter_map(|row| Some((link.value.get(&row)?, row)))
                .collect())
        })
    }

    /// The SQL of this hop's query for parents with keys `keys` on `backend` (one
    /// statement: an array bind on PostgreSQL, a JSON list on SQLite).
    pub fn sql_for(&self, keys: &[i64], backend: Backend) -> Result<String> {
        let filter = key_filter(backend, (self.link.column)(), self.link.key_in, keys);
        let source = self.qs.clone().filter_fragment(filter).source();
        Ok(render(&self.statement(source), backend)?)
    }
}

/// The key filter `fetch_keyed` uses for all of `keys` on `backend`.
fn key_filter(
    backend: Backend,
    column: ColumnRef,
    key_in: fn(Vec<i64>) -> Fragment,
    keys: &[i64],
) -> Fragment {
    let capability = backend.capability();
    if !capability.array_binds && capability.json_key_lists {
        Arc::new(InJsonList {
            column,
            json: json_list(keys),
        })
    } else {
        key_in(keys.to_vec())
    }
}

impl<P: Model, C: Model + Clone> Hop<P> for Reverse<P, C> {
    type Shape = Many;
    type Row = C;

    fn key(&self, parent: &P) -> Option<i64> {
        Some(parent.pk())
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, C)>> {
        self.fetch_rows(conn, keys, site)
    }
}

/// `(SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.fk ORDER BY ...) AS "orm_rank"
/// FROM t WHERE ...) AS t`: the table under its own name, so the outer query's
/// qualified columns still resolve.
struct Ranked {
    table: Fragment,
    filters: Vec<Fragment>,
    partition: ColumnRef,
    order: Vec<OrderTerm>,
}

impl QueryFragment<Db> for Ranked {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(SELECT ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(".*, ROW_NUMBER() OVER (PARTITION BY ");
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
        self.table.walk_ast(out.reborrow())
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
pub struct ReverseRelated<P, C, J> {
    reverse: Reverse<P, C>,
    joins: J,
}

impl<P, C, J: Copy> Clone for ReverseRelated<P, C, J> {
    fn clone(&self) -> Self {
        Self {
            reverse: self.reverse.clone(),
            joins: self.joins,
        }
    }
}

impl<P: Model, C: Model, J: JoinSet<C>> Hop<P> for ReverseRelated<P, C, J>
where
    J::Row: Clone,
    SelectStatement<J::Selection>: LoadQuery<'static, AnyConnection, J::Row>,
{
    type Shape = Many;
    type Row = J::Row;

    fn key(&self, parent: &P) -> Option<i64> {
        Some(parent.pk())
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, J::Row)>> {
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

/// A foreign key as a prefetch hop, with a queryset of its own for the parent rows
/// (Django's `Prefetch("sent_by", queryset=...)`). Made by [`ForeignKey::using`] or
/// [`NullableForeignKey::using`]; a bare foreign key is the same hop over
/// `P::objects().with_deleted()`.
pub struct Forward<C, P> {
    link: Link<C, P>,
    qs: QuerySet<P>,
}

impl<C, P> Clone for Forward<C, P> {
    fn clone(&self) -> Self {
        Self {
            link: self.link,
            qs: self.qs.clone(),
        }
    }
}

impl<C: Model, P: Model> Forward<C, P> {
    fn new(link: Link<C, P>) -> Self {
        Self {
            link,
            qs: P::objects().with_deleted(),
        }
    }

    /// Then prefetches `next` for the rows this hop loads (each message's sender, then
    /// each sender's messages): one more query.
    pub fn prefetch<H: Hop<P>>(self, next: H) -> Nested<Self, H> {
        Nested { first: self, next }
    }

    /// The SQL of this hop's query for parent keys `keys` on `backend`.
    pub fn sql_for(&self, keys: &[i64], backend: Backend) -> Result<String> {
        let filter = key_filter(
            backend,
            ColumnRef::of(P::PrimaryKey::default()),
            pk_in::<P>,
            keys,
        );
        let qs = self.qs.clone().unordered().filter_fragment(filter);
        qs.sql(backend)
    }
}

fn pk_in<P: Model>(keys: Vec<i64>) -> Fragment {
    Arc::new(P::PrimaryKey::default().eq_any(keys))
}

impl<C: Model, P: Model + Clone> Hop<C> for Forward<C, P> {
    type Shape = One;
    type Row = P;

    fn key(&self, child: &C) -> Option<i64> {
        self.link.value.get(child)
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, P)>> {
        let column = ColumnRef::of(P::PrimaryKey::default());
        fetch_keyed(conn, keys, column, pk_in::<P>, |conn, filter| {
            let statement = self
                .qs
                .clone()
                .unordered()
                .filter_fragment(filter)
                .select_statement();
            let rows = run(site, || P::load_rows(&statement, conn))?;
            Ok(rows.into_iter().map(|row| (row.pk(), row)).collect())
        })
    }
}

macro_rules! forward_hop {
    ($ty:ident) => {
        impl<C: Model, P: Model> $ty<C, P> {
            /// A prefetch hop over this foreign key whose parent rows come from `qs`
            /// (filters, soft delete): a row whose parent `qs` excludes gets `None`.
            pub fn using(self, qs: QuerySet<P>) -> Forward<C, P> {
                Forward {
                    link: self.link,
                    qs,
                }
            }
        }

        impl<C: Model, P: Model + Clone> Hop<C> for $ty<C, P> {
            type Shape = One;
            type Row = P;

            fn key(&self, child: &C) -> Option<i64> {
                self.link.value.get(child)
            }

            fn fetch(
                &self,
                conn: &mut AnyConnection,
                keys: &[i64],
                site: &'static Location<'static>,
            ) -> Result<Vec<(i64, P)>> {
                Forward::new(self.link).fetch(conn, keys, site)
            }
        }

        impl<C, P> From<$ty<C, P>> for Link<C, P> {
            fn from(fk: $ty<C, P>) -> Self {
                fk.link
            }
        }
    };
}

forward_hop!(ForeignKey);
forward_hop!(NullableForeignKey);

/// A hop, then a hop from each of its rows: `Thread::messages().prefetch(Message::sent_by)`
/// gives each thread its messages, each with its sender; one query per hop.
pub struct Nested<H1, H2> {
    first: H1,
    next: H2,
}

impl<H1: Clone, H2: Clone> Clone for Nested<H1, H2> {
    fn clone(&self) -> Self {
        Self {
            first: self.first.clone(),
            next: self.next.clone(),
        }
    }
}

impl<H1, H2> Nested<H1, H2> {
    /// Then prefetches `next` for this hop's rows, one more query: for
    /// `a.prefetch(b).prefetch(c)`, `c` starts from the rows of `a` and each of them
    /// comes as `((row, b's rows), c's rows)`.
    pub fn prefetch<H3>(self, next: H3) -> Nested<Self, H3> {
        Nested { first: self, next }
    }
}

impl<P, H1: Hop<P>, H2: Hop<H1::Row>> Hop<P> for Nested<H1, H2> {
    type Shape = H1::Shape;
    type Row = (H1::Row, HopOutput<H1::Row, H2>);

    fn key(&self, parent: &P) -> Option<i64> {
        self.first.key(parent)
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, Self::Row)>> {
        let rows = self.first.fetch(conn, keys, site)?;
        let attached = attach(conn, &self.next, rows, |(_, row)| row, site)?;
        Ok(attached
            .into_iter()
            .map(|((key, row), next)| (key, (row, next)))
            .collect())
    }
}

/// What a [`Prefetched`] queryset loads for its parents: one hop
/// ([`QuerySet::prefetch`]), or several ([`Prefetched::prefetch`]).
pub trait PrefetchSet<P>: Clone {
    /// What each parent gets: a hop's output, or a tuple of them.
    type Out;

    /// Loads the related rows of `parents` (one query per hop) and pairs them up.
    #[doc(hidden)]
    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>>;
}

/// The one hop of [`QuerySet::prefetch`].
#[derive(Clone)]
pub struct Single<H>(H);

impl<P, H: Hop<P>> PrefetchSet<P> for Single<H> {
    type Out = HopOutput<P, H>;

    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>> {
        attach(conn, &self.0, parents, |p| p, site)
    }
}

/// Hops `A`, then one more hop `H` from the same parents ([`Prefetched::prefetch`]).
#[derive(Clone)]
pub struct Also<A, H>(A, H);

impl<P, A: PrefetchSet<P>, H: Hop<P>> PrefetchSet<P> for Also<A, H> {
    type Out = (A::Out, HopOutput<P, H>);

    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>> {
        let first = self.0.attach(conn, parents, site)?;
        let both = attach(conn, &self.1, first, |(p, _)| p, site)?;
        Ok(both
            .into_iter()
            .map(|((parent, a), h)| (parent, (a, h)))
            .collect())
    }
}

/// A queryset of parents `P`, each with the rows of one or more hops: one query for
/// the parents and one per hop, however many parents.
pub struct Prefetched<P, S> {
    qs: QuerySet<P>,
    hops: S,
}

impl<P, S: Clone> Clone for Prefetched<P, S> {
    fn clone(&self) -> Self {
        Self {
            qs: self.qs.clone(),
            hops: self.hops.clone(),
        }
    }
}

impl<P: Model> QuerySet<P> {
    /// Loads each parent's related rows with one more query for all parents (Django's
    /// `prefetch_related`): 100 threads with their messages are 2 queries, not 101.
    ///
    /// The hop is a reverse relation (`Thread::messages()`: each thread gets a
    /// `Vec<Message>`), a foreign key (`Message::sent_by`: each message gets an
    /// `Option<Person>`), or a chain of those with
    /// [`Reverse::prefetch`]/[`Forward::prefetch`], each hop with its own queryset
    /// (filters, ordering, soft delete, [`limit_per_parent`](Reverse::limit_per_parent)).
    ///
    /// Children come back in the hop's ordering, grouped under their parent, parents in
    /// the queryset's order; a parent with no children gets an empty `Vec` (or `None`).
    /// Keys are deduplicated and sent in one statement whatever their number: one
    /// array bind on PostgreSQL (`= ANY($1)`), one JSON list on SQLite
    /// (`IN (SELECT value FROM json_each(?))`). No parents, or no keys: no query for
    /// the hop. A forward hop returns soft-deleted parents, as
    /// [`select_related`](Self::select_related) does (use [`ForeignKey::using`] to
    /// choose).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (threads, captured) = orm::capture(|| {
    ///     Thread::objects()
    ///         .prefetch(Thread::messages().select_related(Message::sent_by))
    ///         .all(&mut conn)
    /// });
    /// let threads = threads?;
    /// assert_eq!(captured.len(), 2); // threads, then messages JOIN senders
    /// assert_eq!(threads[1].0.title, "Engines");
    /// let senders: Vec<&str> = threads[1].1.iter().map(|(_, p)| p.first_name.as_str()).collect();
    /// assert_eq!(senders, ["Alan", "Ada"]);
    ///
    /// // Forward: each message's sender, keys deduplicated.
    /// let messages = Message::objects().prefetch(Message::sent_by).all(&mut conn)?;
    /// assert_eq!(messages[0].1.as_ref().map(|p| p.id), Some(messages[0].0.sent_by_id));
    /// assert_eq!(
    ///     Thread::messages().sql_for(&[1, 2], Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` \
    ///      FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (`weave_message`.`thread_id` IN (SELECT value FROM json_each(?))) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
    /// );
    /// assert_eq!(
    ///     Thread::messages().sql_for(&[1, 2], Backend::Postgres)?,
    ///     "SELECT \"weave_message\".\"id\", \"weave_message\".\"created\", \"weave_message\".\"updated\", \"weave_message\".\"deleted\", \"weave_message\".\"text\", \"weave_message\".\"sent_by_id\", \"weave_message\".\"thread_id\" \
    ///      FROM \"weave_message\" WHERE (\"weave_message\".\"deleted\" = false) AND ((\"weave_message\".\"thread_id\" = ANY($1))) ORDER BY \"weave_message\".\"updated\" DESC, \"weave_message\".\"id\" DESC"
    /// );
    /// // A forward hop with its own queryset (live people only).
    /// assert_eq!(
    ///     Message::sent_by.using(Person::objects()).sql_for(&[1, 2], Backend::Sqlite)?,
    ///     "SELECT `weave_person`.`id`, `weave_person`.`created`, `weave_person`.`updated`, `weave_person`.`deleted`, `weave_person`.`first_name`, `weave_person`.`last_name`, `weave_person`.`email_address` \
    ///      FROM `weave_person` WHERE (`weave_person`.`deleted` = false) AND (`weave_person`.`id` IN (SELECT value FROM json_each(?)))"
    /// );
    /// assert_eq!(
    ///     Message::sent_by.using(Person::objects()).sql_for(&[1, 2], Backend::Postgres)?,
    ///     "SELECT \"weave_person\".\"id\", \"weave_person\".\"created\", \"weave_person\".\"updated\", \"weave_person\".\"deleted\", \"weave_person\".\"first_name\", \"weave_person\".\"last_name\", \"weave_person\".\"email_address\" \
    ///      FROM \"weave_person\" WHERE (\"weave_person\".\"deleted\" = false) AND ((\"weave_person\".\"id\" = ANY($1)))"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Backend support
    ///
    /// | | SQLite | PostgreSQL |
    /// |---|---|---|
    /// | parent keys, any number | `IN (SELECT value FROM json_each(?))`: one JSON text bind | `= ANY($1)`: one array bind |
    /// | [`limit_per_parent`](Reverse::limit_per_parent) | `ROW_NUMBER() OVER (PARTITION BY ...)` | the same |
    ///
    /// ### Notes
    /// - The queryset given to [`ForeignKey::using`] chooses rows; a `limit` on it
    ///   caps all parents together. Per parent, use
    ///   [`limit_per_parent`](Reverse::limit_per_parent) on a reverse hop.
    /// - Rows shared by several parents (a sender of many messages) are cloned into
    ///   each, so hop rows are `Clone`.
    #[doc(alias = "prefetch_related")]
    pub fn prefetch<H: Hop<P>>(self, hop: H) -> Prefetched<P, Single<H>> {
        Prefetched {
            qs: self,
            hops: Single(hop),
        }
    }
}

impl<P: Model, S: PrefetchSet<P>> Prefetched<P, S> {
    /// Also prefetches `hop` for the same parents, one more query (Django's
    /// `prefetch_related("messages", "owner")`): each parent gets `(first, second)`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (messages, captured) = orm::capture(|| {
    ///     Message::objects()
    ///         .prefetch(Message::sent_by)
    ///         .prefetch(Message::thread)
    ///         .all(&mut conn)
    /// });
    /// let (message, (sender, thread)) = &messages?[0];
    /// assert_eq!(captured.len(), 3); // messages, senders, threads
    /// assert_eq!((message.id, sender.as_ref().unwrap().first_name.as_str(), thread.as_ref().unwrap().title.as_str()), (3, "Alan", "Machines"));
    /// # Ok(()) }
    /// ```
    pub fn prefetch<H: Hop<P>>(self, hop: H) -> Prefetched<P, Also<S, H>> {
        Prefetched {
            qs: self.qs,
            hops: Also(self.hops, hop),
        }
    }

    /// At most `n` parents.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.qs = self.qs.limit(n);
        self
    }

    /// Skips the first `n` parents.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.qs = self.qs.offset(n);
        self
    }

    /// Loads the parents, then each hop's rows for all of them (one query per hop).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn all(&self, conn: &mut AnyConnection) -> Result<Vec<(P, S::Out)>> {
        let site = Location::caller();
        let parents = run(site, || P::load_rows(&self.qs.select_statement(), conn))?;
        self.hops.attach(conn, parents, site)
    }
}
