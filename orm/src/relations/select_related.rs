use std::any::TypeId;
use std::panic::Location;
use std::sync::Arc;

use diesel::expression::SelectableHelper;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::QueryResult;

use super::{ForeignKey, NullableForeignKey};
use crate::connection::{AnyConnection, Backend, Db, DirectRows};
use crate::error::{Error, Result};
use crate::fragment::{render, ColumnRef, Fragment};
use crate::model::Model;
use crate::queryset::run::run;
use crate::queryset::statement::{SelectStatement, SlicedTable, Source};
use crate::queryset::QuerySet;

/// The selection of a model `M` (its columns, qualified).
type Columns<M> = diesel::helper_types::AsSelect<M, Db>;

/// One `JOIN` of a select_related: `table ON table.pk = source.fk`.
#[doc(hidden)]
pub struct JoinClause {
    left: bool,
    table: Fragment,
    table_id: TypeId,
    model: &'static str,
    pk: ColumnRef,
    fk: ColumnRef,
}

impl JoinClause {
    fn to<P: Model>(left: bool, fk: ColumnRef) -> Self {
        Self {
            left,
            table: Arc::new(P::Table::default()),
            table_id: TypeId::of::<P::Table>(),
            model: P::NAME,
            pk: ColumnRef::of(P::PrimaryKey::default()),
            fk,
        }
    }
}

/// One relation [`select_related`](crate::QuerySet::select_related) can follow from a
/// `C` row: a [`ForeignKey`] (`INNER JOIN`, loads `P`), a [`NullableForeignKey`]
/// (`LEFT JOIN`, loads `Option<P>`) or a chain made with [`ForeignKey::then`]
/// (loads `(P, ...)`).
pub trait Join<C: Model>: Copy {
    /// What each row gets: `P`, `Option<P>` or a tuple for a chain.
    type Output;
    /// The columns it adds to the SELECT list.
    #[doc(hidden)]
    type Selection: QueryFragment<Db>;
    #[doc(hidden)]
    fn selection() -> Self::Selection;
    /// Appends its joins; `left` once an earlier hop of the chain was a LEFT JOIN.
    #[doc(hidden)]
    fn joins(&self, left: bool, out: &mut Vec<JoinClause>);
}

impl<C: Model, P: Model> Join<C> for ForeignKey<C, P> {
    type Output = P;
    type Selection = Columns<P>;

    fn selection() -> Self::Selection {
        P::selection()
    }

    fn joins(&self, left: bool, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::to::<P>(left, (self.link.column)()));
    }
}

impl<C: Model, P: Model> Join<C> for NullableForeignKey<C, P>
where
    Option<P>: diesel::Selectable<Db>,
    Columns<Option<P>>: QueryFragment<Db>,
{
    type Output = Option<P>;
    type Selection = Columns<Option<P>>;

    fn selection() -> Self::Selection {
        <Option<P> as SelectableHelper<Db>>::as_select()
    }

    fn joins(&self, _left: bool, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::to::<P>(true, (self.link.column)()));
    }
}

/// A chain of relations for [`select_related`](crate::QuerySet::select_related): a
/// foreign key of `C` to `P`, then `N` from `P` (Django's `"message__thread"`). Made
/// by [`ForeignKey::then`]; loads `(P, N::Output)`.
pub struct Then<C, P: Model, N> {
    pub(crate) first: ForeignKey<C, P>,
    pub(crate) next: N,
}

impl<C, P: Model, N: Copy> Clone for Then<C, P, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, P: Model, N: Copy> Copy for Then<C, P, N> {}

impl<C: Model, P: Model, N: Join<P>> Join<C> for Then<C, P, N>
where
    (P, N::Output): diesel::Selectable<Db>,
    Columns<(P, N::Output)>: QueryFragment<Db>,
{
    type Output = (P, N::Output);
    // One selectable for the pair (not a tuple of selections), so diesel reads it at
    // any position of the row.
    type Selection = Columns<(P, N::Output)>;

    fn selection() -> Self::Selection {
        <(P, N::Output) as SelectableHelper<Db>>::as_select()
    }

    fn joins(&self, left: bool, out: &mut Vec<JoinClause>) {
        Join::joins(&self.first, left, out);
        self.next.joins(left, out);
    }
}

/// What [`select_related`](crate::QuerySet::select_related) accepts: one [`Join`]
/// (rows are `(C, J::Output)`) or a tuple of up to four (`(C, J1::Output, J2::Output,
/// ...)`).
pub trait JoinSet<C: Model>: Copy {
    /// One loaded row: the `C` row first, then each join's output.
    type Row;
    #[doc(hidden)]
    type Selection: QueryFragment<Db>;
    #[doc(hidden)]
    fn selection() -> Self::Selection;
    #[doc(hidden)]
    fn joins(&self) -> Vec<JoinClause>;
    /// The `C` row of a loaded row.
    #[doc(hidden)]
    fn root(row: &Self::Row) -> &C;
}

macro_rules! single_join_set {
    ($($ty:ident<P $(, $param:ident)*>),+) => {$(
        impl<C: Model, P: Model $(, $param)*> JoinSet<C> for $ty<C, P $(, $param)*>
        where
            Self: Join<C>,
        {
            type Row = (C, <Self as Join<C>>::Output);
            type Selection = (Columns<C>, <Self as Join<C>>::Selection);

            fn selection() -> Self::Selection {
                (C::selection(), <Self as Join<C>>::selection())
            }

            fn joins(&self) -> Vec<JoinClause> {
                let mut out = Vec::new();
                Join::joins(self, false, &mut out);
                out
            }

            fn root(row: &Self::Row) -> &C {
                &row.0
            }
        }
    )+};
}

single_join_set!(ForeignKey<P>, NullableForeignKey<P>, Then<P, N>);

macro_rules! tuple_join_set {
    ($($j:ident . $i:tt),+) => {
        impl<C: Model, $($j: Join<C>),+> JoinSet<C> for ($($j,)+) {
            type Row = (C, $($j::Output),+);
            type Selection = (Columns<C>, $($j::Selection),+);

            fn selection() -> Self::Selection {
                (C::selection(), $($j::selection()),+)
            }

            fn joins(&self) -> Vec<JoinClause> {
                let mut out = Vec::new();
                $(self.$i.joins(false, &mut out);)+
                out
            }

            fn root(row: &Self::Row) -> &C {
                &row.0
            }
        }
    };
}

tuple_join_set!(J1.0);
tuple_join_set!(J1.0, J2.1);
tuple_join_set!(J1.0, J2.1, J3.2);
tuple_join_set!(J1.0, J2.1, J3.2, J4.3);

/// A queryset of `C` rows, each with the rows of its foreign keys loaded by JOINs in
/// the same query.
///
/// Made by [`QuerySet::select_related`]; terminal methods return `J::Row` tuples.
pub struct Related<C: Model, J> {
    qs: QuerySet<C>,
    joins: J,
}

impl<C: Model, J: Copy> Clone for Related<C, J> {
    fn clone(&self) -> Self {
        Self {
            qs: self.qs.clone(),
            joins: self.joins,
        }
    }
}

impl<C: Model> QuerySet<C> {
    /// Loads each row's related rows in the same query, by JOIN (Django's
    /// `select_related`): `n` rows with their senders in 1 query instead of `1 + n`.
    ///
    /// `joins` is a foreign key (`Message::sent_by`, rows `(Message, Person)`), a
    /// nullable one (`LEFT JOIN`, rows `(Pin, Option<Person>)`), a chain
    /// (`Pin::message.then(Message::sent_by)`, rows `(Pin, (Message, Person))`) or a
    /// tuple of up to four of those (`(Message::sent_by, Message::thread)`, rows
    /// `(Message, Person, Thread)`). The queryset's filters, ordering and slice apply
    /// to `C`.
    ///
    /// **Soft delete:** the related row is returned whether or not it is
    /// soft-deleted, as Django does: a live message of a deleted sender still has its
    /// sender, and a row is never dropped because its related row is deleted. Only
    /// `C`'s own soft delete filters rows.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Message::objects()
    ///     .select_related((Message::sent_by, Message::thread))
    ///     .limit(2);
    /// let (rows, captured) = orm::capture(|| qs.all(&mut conn));
    /// let rows = rows?;
    /// assert_eq!(captured.len(), 1);
    /// let (message, sender, thread) = &rows[0];
    /// assert_eq!((message.id, sender.first_name.as_str(), thread.title.as_str()), (3, "Alan", "Machines"));
    /// assert_eq!(
    ///     qs.sql(Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id`, \
    ///      `weave_person`.`id`, `weave_person`.`created`, `weave_person`.`updated`, `weave_person`.`deleted`, `weave_person`.`first_name`, `weave_person`.`last_name`, `weave_person`.`email_address`, \
    ///      `weave_thread`.`id`, `weave_thread`.`created`, `weave_thread`.`updated`, `weave_thread`.`deleted`, `weave_thread`.`title` \
    ///      FROM (SELECT * FROM `weave_message` WHERE (`weave_message`.`deleted` = false) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT ? + 0) AS `weave_message` \
    ///      CROSS JOIN `weave_person` ON `weave_person`.`id` = `weave_message`.`sent_by_id` CROSS JOIN `weave_thread` ON `weave_thread`.`id` = `weave_message`.`thread_id` \
    ///      ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
    /// );
    /// assert_eq!(
    ///     qs.sql(Backend::Postgres)?,
    ///     "SELECT \"weave_message\".\"id\", \"weave_message\".\"created\", \"weave_message\".\"updated\", \"weave_message\".\"deleted\", \"weave_message\".\"text\", \"weave_message\".\"sent_by_id\", \"weave_message\".\"thread_id\", \
    ///      \"weave_person\".\"id\", \"weave_person\".\"created\", \"weave_person\".\"updated\", \"weave_person\".\"deleted\", \"weave_person\".\"first_name\", \"weave_person\".\"last_name\", \"weave_person\".\"email_address\", \
    ///      \"weave_thread\".\"id\", \"weave_thread\".\"created\", \"weave_thread\".\"updated\", \"weave_thread\".\"deleted\", \"weave_thread\".\"title\" \
    ///      FROM (SELECT * FROM \"weave_message\" WHERE (\"weave_message\".\"deleted\" = false) ORDER BY \"weave_message\".\"updated\" DESC, \"weave_message\".\"id\" DESC LIMIT $1) AS \"weave_message\" \
    ///      INNER JOIN \"weave_person\" ON \"weave_person\".\"id\" = \"weave_message\".\"sent_by_id\" INNER JOIN \"weave_thread\" ON \"weave_thread\".\"id\" = \"weave_message\".\"thread_id\" \
    ///      ORDER BY \"weave_message\".\"updated\" DESC, \"weave_message\".\"id\" DESC"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// A sliced queryset (`limit`) is sliced before it is joined: the joins follow
    /// keys to the one row each points at, so joining the slice's rows gives the same
    /// rows as joining everything and slicing after, without joining (and sorting)
    /// the whole table first. This relies on the foreign key constraint the relation
    /// stands for (a dangling key would drop its row after the slice, not before).
    ///
    /// A relation of another model does not compile (unlike Django's
    /// `"messages__sent_by"` strings):
    ///
    /// ```compile_fail,E0277
    /// # include!("../../doctest_setup.rs");
    /// # fn main() {
    /// use orm::prelude::*;
    /// let qs = Thread::objects().select_related(Message::sent_by); // a Message relation
    /// # }
    /// ```
    ///
    /// nor does a chain whose second hop starts from the wrong model:
    ///
    /// ```compile_fail,E0277
    /// # include!("../../doctest_setup.rs");
    /// # fn main() {
    /// use orm::prelude::*;
    /// let chain = Message::sent_by.then(Message::thread); // sent_by reaches a Person
    /// # }
    /// ```
    ///
    /// # Errors
    /// The terminal methods return [`Error::TableJoinedTwice`] when two joins reach
    /// the same table (it would need a table alias): prefetch one of them instead.
    pub fn select_related<J: JoinSet<C>>(self, joins: J) -> Related<C, J> {
        Related { qs: self, joins }
    }
}

impl<C: Model, J: JoinSet<C>> Related<C, J> {
    /// The queryset of `C` rows this loads.
    pub fn queryset(&self) -> &QuerySet<C> {
        &self.qs
    }

    /// At most `n` rows.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.qs = self.qs.limit(n);
        self
    }

    /// Skips the first `n` rows.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.qs = self.qs.offset(n);
        self
    }

    /// The joins this loads.
    pub(crate) fn joins(&self) -> J {
        self.joins
    }

    /// The statement over `source` (the queryset's, or a prefetch hop's ranked one).
    pub(crate) fn statement_over(&self, source: Source) -> Result<SelectStatement<J::Selection>> {
        self.build(source, true)
    }

    /// The statement with the joins applied to every row before any LIMIT: a stream's
    /// keyset chunks stop at the first short chunk, so a row whose key points nowhere
    /// (a deferred foreign key inside a transaction) must not shorten a chunk of rows
    /// that do exist.
    pub(crate) fn statement_join_first(&self) -> Result<SelectStatement<J::Selection>> {
        self.build(self.qs.source(), false)
    }

    fn build(
        &self,
        mut source: Source,
        slice_first: bool,
    ) -> Result<SelectStatement<J::Selection>> {
        let clauses = self.joins.joins();
        let mut seen = vec![TypeId::of::<C::Table>()];
        for clause in &clauses {
            if seen.contains(&clause.table_id) {
                return Err(Error::TableJoinedTwice {
                    model: clause.model,
                });
            }
            seen.push(clause.table_id);
        }
        if slice_first && source.limit.is_some() && !source.distinct {
            // Slice first, then join: every join follows a key to the one row it
            // points at, so it neither adds nor (given the foreign key constraint the
            // relation declares) removes rows, and joining only the slice's rows
            // spares both databases from joining the whole table before sorting it
            // for a LIMIT (PostgreSQL 74 ms -> 28 ms for the talk's list_some).
            source = SlicedTable::source(
                source,
                Arc::new(C::Table::default()),
                ColumnRef::of(C::PrimaryKey::default()),
            );
        }
        source.table = Arc::new(Joined {
            base: source.table,
            clauses,
        });
        Ok(SelectStatement::new(J::selection(), source))
    }

    pub(crate) fn statement(&self) -> Result<SelectStatement<J::Selection>> {
        self.statement_over(self.qs.source())
    }

    /// The SQL [`all`](Self::all) sends on `backend`.
    ///
    /// # Errors
    /// [`Error::TableJoinedTwice`] as [`all`](Self::all).
    pub fn sql(&self, backend: Backend) -> Result<String> {
        Ok(render(&self.statement()?, backend)?)
    }

    /// Loads the rows with their related rows (one query).
    ///
    /// # Errors
    /// [`Error::TableJoinedTwice`] when two joins reach the same table;
    /// [`Error::Query`] when the database fails.
    #[track_caller]
    pub fn all(&self, conn: &mut AnyConnection) -> Result<Vec<J::Row>>
    where
        J::Row: DirectRows<SelectStatement<J::Selection>>,
    {
        let statement = self.statement()?;
        load(statement, conn, Location::caller())
    }
}

/// Runs a joined statement (diesel checks the row type where `J` is concrete).
pub(crate) fn load<S, R>(
    statement: SelectStatement<S>,
    conn: &mut AnyConnection,
    site: &'static Location<'static>,
) -> Result<Vec<R>>
where
    R: DirectRows<SelectStatement<S>>,
{
    // Rows decode with the inner backend's own types (see `Direct`).
    run(site, || R::load_direct(&statement, conn))
}

/// `base INNER JOIN t1 ON t1.pk = base.fk LEFT JOIN t2 ON ...` (`CROSS JOIN` for
/// `INNER JOIN` on SQLite, see below).
struct Joined {
    base: Fragment,
    clauses: Vec<JoinClause>,
}

impl QueryFragment<Db> for Joined {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.base.walk_ast(out.reborrow())?;
        for clause in &self.clauses {
            // Every join goes from a row to the primary key it points at, so the base
            // table (where the filters, ordering and slice apply) should drive the
            // loop. SQLite's planner, given statistics, may start from the small
            // related table and sort the whole join (3x slower for the talk's
            // list_some); `CROSS JOIN` is SQLite's documented way to keep the order
            // as written, with the same meaning as `INNER JOIN`.
            out.push_sql(if clause.left {
                " LEFT JOIN "
            } else {
                crate::Dialect::rendering(out.backend()).inner_join
            });
            clause.table.walk_ast(out.reborrow())?;
            out.push_sql(" ON ");
            clause.pk.qualified.walk_ast(out.reborrow())?;
            out.push_sql(" = ");
            clause.fk.qualified.walk_ast(out.reborrow())?;
        }
        Ok(())
    }
}
