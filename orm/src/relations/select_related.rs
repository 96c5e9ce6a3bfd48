use crate::connection::AsConnection;
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
use crate::queryset::run::run_read as run;
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
    /// The join's own name for its table (`"t" AS "alias"`), when it has one.
    alias: Option<&'static str>,
    /// The alias of the table the foreign key belongs to, when an earlier hop of
    /// the chain joined it under one.
    fk_alias: Option<&'static str>,
}

impl JoinClause {
    fn to<P: Model>(left: bool, fk: ColumnRef, from: Option<&'static str>) -> Self {
        Self {
            left,
            table: Arc::new(P::Table::default()),
            table_id: TypeId::of::<P::Table>(),
            model: P::NAME,
            pk: ColumnRef::of(P::PrimaryKey::default()),
            fk,
            alias: None,
            fk_alias: from,
        }
    }
}

impl JoinClause {
    /// The join of `P` under `alias`.
    fn aliased<P: Model>(
        left: bool,
        fk: ColumnRef,
        from: Option<&'static str>,
        alias: &'static str,
    ) -> Self {
        Self {
            alias: Some(alias),
            ..Self::to::<P>(left, fk, from)
        }
    }
}

/// `"alias"."column"` when `alias` is given, else the column as diesel qualifies it.
fn walk_column<'b>(
    column: &'b ColumnRef,
    alias: Option<&'b str>,
    out: &mut AstPass<'_, 'b, Db>,
) -> QueryResult<()> {
    match alias {
        Some(alias) => {
            out.push_identifier(alias)?;
            out.push_sql(".");
            out.push_identifier(column.name)
        }
        None => column.qualified.walk_ast(out.reborrow()),
    }
}

/// The names of a model's columns, in its `Selectable` order: a flat tuple of
/// columns, as `#[derive(Selectable)]` makes for fields without `embed`.
pub trait ColumnNames {
    /// The column names.
    fn names() -> Vec<&'static str>;
}

macro_rules! column_names {
    ($($c:ident),+) => {
        impl<$($c: diesel::Column),+> ColumnNames for ($($c,)+) {
            fn names() -> Vec<&'static str> {
                vec![$($c::NAME),+]
            }
        }
    };
}

column_names!(A);
column_names!(A, B);
column_names!(A, B, C);
column_names!(A, B, C, D);
column_names!(A, B, C, D, E);
column_names!(A, B, C, D, E, F);
column_names!(A, B, C, D, E, F, G);
column_names!(A, B, C, D, E, F, G, H);
column_names!(A, B, C, D, E, F, G, H, I);
column_names!(A, B, C, D, E, F, G, H, I, J);
column_names!(A, B, C, D, E, F, G, H, I, J, K);
column_names!(A, B, C, D, E, F, G, H, I, J, K, L);
column_names!(A, B, C, D, E, F, G, H, I, J, K, L, M);
column_names!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
column_names!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
column_names!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

/// The SQL type of a model's selection.
type ColumnsSqlType<P> = diesel::dsl::SqlTypeOf<<P as diesel::Selectable<Db>>::SelectExpression>;

/// A model's columns under the alias of its join: `"alias"."id", "alias"."name"`.
#[doc(hidden)]
pub struct AliasedColumns<P> {
    alias: &'static str,
    names: Vec<&'static str>,
    _model: std::marker::PhantomData<fn() -> P>,
}

impl<P: Model> diesel::Expression for AliasedColumns<P>
where
    <P as diesel::Selectable<Db>>::SelectExpression: diesel::Expression,
{
    type SqlType = ColumnsSqlType<P>;
}

impl<P> QueryFragment<Db> for AliasedColumns<P> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(self.alias)?;
            out.push_sql(".");
            out.push_identifier(name)?;
        }
        Ok(())
    }
}

impl<P: Model> AliasedColumns<P>
where
    <P as diesel::Selectable<Db>>::SelectExpression: ColumnNames,
{
    /// `P`'s columns under `alias`.
    fn new(alias: &'static str) -> Self {
        AliasedColumns {
            alias,
            names: <<P as diesel::Selectable<Db>>::SelectExpression as ColumnNames>::names(),
            _model: std::marker::PhantomData,
        }
    }
}

/// The same columns, `NULL` where the LEFT JOIN found no row.
#[doc(hidden)]
pub struct NullableAliasedColumns<P>(AliasedColumns<P>);

impl<P: Model> diesel::Expression for NullableAliasedColumns<P>
where
    <P as diesel::Selectable<Db>>::SelectExpression: diesel::Expression,
    ColumnsSqlType<P>: diesel::sql_types::IntoNullable,
    <ColumnsSqlType<P> as diesel::sql_types::IntoNullable>::Nullable:
        diesel::expression::TypedExpressionType,
{
    type SqlType = <ColumnsSqlType<P> as diesel::sql_types::IntoNullable>::Nullable;
}

impl<P> QueryFragment<Db> for NullableAliasedColumns<P> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

/// A chain's selection, typed as the rows `R` it loads, whatever names its columns
/// are read under.
#[doc(hidden)]
pub struct PairSelection<S, R>(S, std::marker::PhantomData<fn() -> R>);

impl<S, R> diesel::Expression for PairSelection<S, R>
where
    R: diesel::Selectable<Db>,
    Columns<R>: diesel::Expression,
{
    type SqlType = diesel::dsl::SqlTypeOf<Columns<R>>;
}

impl<S: QueryFragment<Db>, R> QueryFragment<Db> for PairSelection<S, R> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

/// A selection read as `NULL` where a LEFT JOIN found no row: the columns of a chain
/// that starts from a nullable key.
/// Its SQL type is that of the rows `R` it loads (`Option<R>`), whatever names
/// its columns are read under.
#[doc(hidden)]
pub struct NullableSelection<S, R>(S, std::marker::PhantomData<fn() -> R>);

impl<S, R> diesel::Expression for NullableSelection<S, R>
where
    Option<R>: diesel::Selectable<Db>,
    <Option<R> as diesel::Selectable<Db>>::SelectExpression: diesel::Expression,
{
    type SqlType = diesel::dsl::SqlTypeOf<<Option<R> as diesel::Selectable<Db>>::SelectExpression>;
}

impl<S: QueryFragment<Db>, R> QueryFragment<Db> for NullableSelection<S, R> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

/// A chain for [`select_related`](crate::QuerySet::select_related) from a nullable
/// key: `LEFT JOIN`s all the way, loads `Option<(P, ...)>` (`None` where the key is
/// NULL). Made by [`NullableForeignKey::then`] (plain) and [`Aliased::then`] on an
/// aliased nullable key.
pub struct NullableThen<C, P: Model, F, N> {
    first: F,
    next: N,
    _models: std::marker::PhantomData<fn() -> (C, P)>,
}

impl<C, P: Model, F: Copy, N: Copy> Clone for NullableThen<C, P, F, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, P: Model, F: Copy, N: Copy> Copy for NullableThen<C, P, F, N> {}

impl<C: Model, P: Model> NullableForeignKey<C, P> {
    /// A chain from this nullable key: `next` follows from the row it reaches, by
    /// `LEFT JOIN`; loads `Option<(P, ...)>`.
    pub fn then<N: Join<P>>(self, next: N) -> NullableThen<C, P, Self, N> {
        NullableThen {
            first: self,
            next,
            _models: std::marker::PhantomData,
        }
    }
}

impl<C: Model, P: Model> Aliased<NullableForeignKey<C, P>> {
    /// A chain from this aliased nullable key: `next` follows from the row joined
    /// as `alias`, by `LEFT JOIN`; loads `Option<(P, ...)>`.
    pub fn then<N: Join<P>>(self, next: N) -> NullableThen<C, P, Self, N> {
        NullableThen {
            first: self,
            next,
            _models: std::marker::PhantomData,
        }
    }
}

/// The selection of a nullable chain's first hop as a required one would read it.
#[doc(hidden)]
pub trait FirstHop<C: Model, P: Model>: Copy {
    type Columns: QueryFragment<Db>;
    fn columns(&self) -> Self::Columns;
    fn hop_joins(&self, from: Option<&'static str>, out: &mut Vec<JoinClause>);
    fn hop_alias(&self) -> Option<&'static str>;
}

impl<C: Model, P: Model> FirstHop<C, P> for NullableForeignKey<C, P>
where
    Columns<P>: diesel::Expression,
{
    type Columns = Columns<P>;

    fn columns(&self) -> Self::Columns {
        P::selection()
    }

    fn hop_joins(&self, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::to::<P>(true, (self.link.column)(), from));
    }

    fn hop_alias(&self) -> Option<&'static str> {
        None
    }
}

impl<C: Model, P: Model> FirstHop<C, P> for Aliased<NullableForeignKey<C, P>>
where
    <P as diesel::Selectable<Db>>::SelectExpression: ColumnNames + diesel::Expression,
{
    type Columns = AliasedColumns<P>;

    fn columns(&self) -> Self::Columns {
        AliasedColumns::new(self.alias)
    }

    fn hop_joins(&self, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::aliased::<P>(
            true,
            (self.relation.link.column)(),
            from,
            self.alias,
        ));
    }

    fn hop_alias(&self) -> Option<&'static str> {
        Some(self.alias)
    }
}

impl<C: Model, P: Model, F: FirstHop<C, P>, N: Join<P>> Join<C> for NullableThen<C, P, F, N>
where
    NullableSelection<(F::Columns, N::Selection), (P, N::Output)>:
        diesel::Expression + QueryFragment<Db>,
{
    type Output = Option<(P, N::Output)>;
    type Selection = NullableSelection<(F::Columns, N::Selection), (P, N::Output)>;

    fn selection(&self) -> Self::Selection {
        NullableSelection(
            (self.first.columns(), self.next.selection()),
            std::marker::PhantomData,
        )
    }

    fn joins(&self, _left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        self.first.hop_joins(from, out);
        // Every hop after a nullable one is a LEFT JOIN, so a NULL key keeps its row.
        self.next.joins(true, self.first.hop_alias(), out);
    }
}

/// A relation joined under a name of its own (`INNER JOIN "t" AS "alias"`), so a
/// table can be joined twice in one `select_related` (a transfer's two accounts)
/// or joined to itself (an event and the event it follows). Made by
/// [`ForeignKey::aliased`] and [`NullableForeignKey::aliased`].
#[derive(Debug)]
pub struct Aliased<R> {
    pub(crate) relation: R,
    pub(crate) alias: &'static str,
}

impl<R: Copy> Clone for Aliased<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: Copy> Copy for Aliased<R> {}

impl<C: Model, P: Model> Join<C> for Aliased<ForeignKey<C, P>>
where
    <P as diesel::Selectable<Db>>::SelectExpression: ColumnNames + diesel::Expression,
{
    type Output = P;
    type Selection = AliasedColumns<P>;

    fn selection(&self) -> Self::Selection {
        AliasedColumns::new(self.alias)
    }

    fn joins(&self, left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::aliased::<P>(
            left,
            (self.relation.link.column)(),
            from,
            self.alias,
        ));
    }

    fn alias(&self) -> Option<&'static str> {
        Some(self.alias)
    }
}

impl<C: Model, P: Model> Aliased<ForeignKey<C, P>> {
    /// A chain from this aliased key: `next` follows from the row joined as
    /// `alias` (its foreign key is read as `"alias"."column"`). Loads `(P, ...)`.
    pub fn then<N: Join<P>>(self, next: N) -> AliasedThen<C, P, N> {
        AliasedThen { first: self, next }
    }
}

/// A chain whose first hop is [`Aliased`]: made by [`Aliased::then`].
pub struct AliasedThen<C, P: Model, N> {
    first: Aliased<ForeignKey<C, P>>,
    next: N,
}

impl<C, P: Model, N: Copy> Clone for AliasedThen<C, P, N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, P: Model, N: Copy> Copy for AliasedThen<C, P, N> {}

impl<C: Model, P: Model, N: Join<P>> Join<C> for AliasedThen<C, P, N>
where
    Aliased<ForeignKey<C, P>>: Join<C, Output = P, Selection = AliasedColumns<P>>,
{
    type Output = (P, N::Output);
    type Selection = PairSelection<(AliasedColumns<P>, N::Selection), (P, N::Output)>;

    fn selection(&self) -> Self::Selection {
        PairSelection(
            (Join::selection(&self.first), self.next.selection()),
            std::marker::PhantomData,
        )
    }

    fn joins(&self, left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        Join::joins(&self.first, left, from, out);
        self.next.joins(left, Some(self.first.alias), out);
    }
}

impl<C: Model, P: Model> Join<C> for Aliased<NullableForeignKey<C, P>>
where
    <P as diesel::Selectable<Db>>::SelectExpression: ColumnNames + diesel::Expression,
{
    type Output = Option<P>;
    type Selection = NullableAliasedColumns<P>;

    fn selection(&self) -> Self::Selection {
        NullableAliasedColumns(AliasedColumns::new(self.alias))
    }

    fn joins(&self, _left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::aliased::<P>(
            true,
            (self.relation.link.column)(),
            from,
            self.alias,
        ));
    }

    fn alias(&self) -> Option<&'static str> {
        Some(self.alias)
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
    fn selection(&self) -> Self::Selection;
    /// Appends its joins; `left` once an earlier hop of the chain was a LEFT JOIN,
    /// `from` the alias of the table its foreign key belongs to.
    #[doc(hidden)]
    fn joins(&self, left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>);
    /// The alias its table is joined under, if any (the next hop's `from`).
    #[doc(hidden)]
    fn alias(&self) -> Option<&'static str> {
        None
    }
}

impl<C: Model, P: Model> Join<C> for ForeignKey<C, P> {
    type Output = P;
    type Selection = Columns<P>;

    fn selection(&self) -> Self::Selection {
        P::selection()
    }

    fn joins(&self, left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::to::<P>(left, (self.link.column)(), from));
    }
}

impl<C: Model, P: Model> Join<C> for NullableForeignKey<C, P>
where
    Option<P>: diesel::Selectable<Db>,
    Columns<Option<P>>: QueryFragment<Db>,
{
    type Output = Option<P>;
    type Selection = Columns<Option<P>>;

    fn selection(&self) -> Self::Selection {
        <Option<P> as SelectableHelper<Db>>::as_select()
    }

    fn joins(&self, _left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        out.push(JoinClause::to::<P>(true, (self.link.column)(), from));
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
    // The pair's columns, each hop's own (the next one's under its alias, if it has
    // one), typed as one selectable for the pair, so diesel reads it at any position
    // of the row.
    type Selection = PairSelection<(Columns<P>, N::Selection), (P, N::Output)>;

    fn selection(&self) -> Self::Selection {
        PairSelection(
            (P::selection(), self.next.selection()),
            std::marker::PhantomData,
        )
    }

    fn joins(&self, left: bool, from: Option<&'static str>, out: &mut Vec<JoinClause>) {
        Join::joins(&self.first, left, from, out);
        self.next.joins(left, None, out);
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
    fn selection(&self) -> Self::Selection;
    #[doc(hidden)]
    fn joins(&self) -> Vec<JoinClause>;
    /// The `C` row of a loaded row.
    #[doc(hidden)]
    fn root(row: &Self::Row) -> &C;
}

macro_rules! single_join_set {
    ($([$($generics:tt)*] $ty:ty),+ $(,)?) => {$(
        impl<C: Model, $($generics)*> JoinSet<C> for $ty
        where
            Self: Join<C>,
        {
            type Row = (C, <Self as Join<C>>::Output);
            type Selection = (Columns<C>, <Self as Join<C>>::Selection);

            fn selection(&self) -> Self::Selection {
                (C::selection(), <Self as Join<C>>::selection(self))
            }

            fn joins(&self) -> Vec<JoinClause> {
                let mut out = Vec::new();
                Join::joins(self, false, None, &mut out);
                out
            }

            fn root(row: &Self::Row) -> &C {
                &row.0
            }
        }
    )+};
}

single_join_set! {
    [P: Model] ForeignKey<C, P>,
    [P: Model] NullableForeignKey<C, P>,
    [P: Model, N] Then<C, P, N>,
    [P: Model, N] AliasedThen<C, P, N>,
    [P: Model, F, N] NullableThen<C, P, F, N>,
    [R] Aliased<R>,
}

macro_rules! tuple_join_set {
    ($($j:ident . $i:tt),+) => {
        impl<C: Model, $($j: Join<C>),+> JoinSet<C> for ($($j,)+) {
            type Row = (C, $($j::Output),+);
            type Selection = (Columns<C>, $($j::Selection),+);

            fn selection(&self) -> Self::Selection {
                (C::selection(), $(self.$i.selection()),+)
            }

            fn joins(&self) -> Vec<JoinClause> {
                let mut out = Vec::new();
                $(self.$i.joins(false, None, &mut out);)+
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
    ///      FROM (SELECT * FROM `weave_message` WHERE (`weave_message`.`deleted` = false) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 2) AS `weave_message` \
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
    /// the same table under one name: join one of them
    /// [`aliased`](crate::relations::ForeignKey::aliased), or prefetch it.
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
        if clauses.iter().all(|clause| clause.alias.is_none()) {
            // Each table once, under its own name.
            let mut seen = vec![TypeId::of::<C::Table>()];
            for clause in &clauses {
                if seen.contains(&clause.table_id) {
                    return Err(Error::TableJoinedTwice {
                        model: clause.model,
                    });
                }
                seen.push(clause.table_id);
            }
        } else {
            // Each name in the FROM list once: a table's own, or its join's alias
            // (an alias equal to a table's name would be ambiguous as well).
            let mut names = vec![crate::fragment::TableName::of(&C::Table::default())?.name];
            for clause in &clauses {
                let name = match clause.alias {
                    Some(alias) => alias.to_owned(),
                    None => crate::fragment::TableName::of(&*clause.table)?.name,
                };
                if names.contains(&name) {
                    return Err(Error::TableJoinedTwice {
                        model: clause.model,
                    });
                }
                names.push(name);
            }
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
        let mut statement = SelectStatement::new(self.joins.selection(), source);
        statement.lock = self.qs.locking();
        Ok(statement)
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
    pub fn all(&self, conn: &mut impl AsConnection) -> Result<Vec<J::Row>>
    where
        J::Row: DirectRows<SelectStatement<J::Selection>>,
    {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let statement = self.statement()?;
        load(statement, conn, Location::caller())
    }

    /// The first row with its related rows, or `None` (one query, `LIMIT 1`),
    /// ordered as [`QuerySet::first`] orders.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Message::objects().select_related(Message::sent_by);
    /// let ((first, sender), captured) = {
    ///     let (row, captured) = orm::capture(|| qs.first(&mut conn));
    ///     (row?.expect("a message"), captured)
    /// };
    /// assert_eq!((first.id, sender.first_name.as_str(), captured.len()), (3, "Alan", 1));
    /// let (one, _) = Message::objects().filter(weave_message::id.eq(1)).select_related(Message::sent_by).get(&mut conn)?;
    /// assert_eq!(one.id, 1);
    /// assert_eq!(qs.count(&mut conn)?, 3);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`all`](Self::all).
    #[track_caller]
    pub fn first(&self, conn: &mut impl AsConnection) -> Result<Option<J::Row>>
    where
        J::Row: DirectRows<SelectStatement<J::Selection>>,
    {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let first = Related {
            qs: self.qs.for_first(),
            joins: self.joins,
        };
        let statement = first.statement()?;
        Ok(load(statement, conn, Location::caller())?
            .into_iter()
            .next())
    }

    /// The one row with its related rows (one query reading at most 21 rows), as
    /// [`QuerySet::get`].
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::MultipleObjectsReturned`], or as
    /// [`all`](Self::all).
    #[track_caller]
    pub fn get(&self, conn: &mut impl AsConnection) -> Result<J::Row>
    where
        J::Row: DirectRows<SelectStatement<J::Selection>>,
    {
        let conn = conn.connection();
        self.qs.check_lock(conn)?;
        let get = Related {
            qs: self.qs.for_get(),
            joins: self.joins,
        };
        let statement = get.statement()?;
        crate::queryset::run::exactly_one::<C, _>(load(statement, conn, Location::caller())?)
    }

    /// The number of rows: the queryset's count (one query, no joins). Each join
    /// follows a key to the one row it points at, so it neither adds rows nor, given
    /// the foreign key constraint, removes any.
    ///
    /// # Errors
    /// As [`QuerySet::count`].
    #[track_caller]
    pub fn count(&self, conn: &mut impl AsConnection) -> Result<i64> {
        let conn = conn.connection();
        self.qs.count(conn)
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
            if let Some(alias) = clause.alias {
                out.push_sql(" AS ");
                out.push_identifier(alias)?;
            }
            out.push_sql(" ON ");
            walk_column(&clause.pk, clause.alias, &mut out)?;
            out.push_sql(" = ");
            walk_column(&clause.fk, clause.fk_alias, &mut out)?;
        }
        Ok(())
    }
}
