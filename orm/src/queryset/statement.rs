//! The SELECT statements a queryset renders: rows, COUNT, EXISTS.
//!
//! Small `QueryFragment` nodes: every value is a bound parameter; only SQL keywords,
//! quoted identifiers and boolean literals of soft-delete filters are text.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer};
use diesel::{Expression, QueryResult, RunQueryDsl};

use std::sync::Arc;

use crate::connection::Db;
use crate::dialect::Dialect;
use crate::fragment::{is_qualified, ColumnRef, Fragment};
use crate::ordering::OrderTerm;

/// The parts shared by every statement of one queryset.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) table: Fragment,
    pub(crate) filters: Vec<Fragment>,
    pub(crate) order: Vec<OrderTerm>,
    pub(crate) limit: Option<i64>,
    pub(crate) offset: Option<i64>,
    pub(crate) distinct: bool,
}

impl Source {
    pub(crate) fn is_sliced(&self) -> bool {
        self.limit.is_some() || self.offset.is_some()
    }

    pub(crate) fn walk_from_where<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql(" FROM ");
        self.table.walk_ast(out.reborrow())?;
        walk_where(&self.filters, out)
    }

    fn walk_order<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        for (i, term) in self.order.iter().enumerate() {
            out.push_sql(if i == 0 { " ORDER BY " } else { ", " });
            term.walk_ast(out.reborrow())?;
        }
        Ok(())
    }

    /// ` FROM t WHERE ... ORDER BY ... LIMIT ? OFFSET ?`: the rows of a slice.
    pub(crate) fn walk_slice<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.walk_from_where(out)?;
        self.walk_order(out)?;
        self.walk_limit_offset(self.limit.as_ref(), out)
    }

    fn walk_limit_offset<'b>(
        &'b self,
        limit: Option<&'b i64>,
        out: &mut AstPass<'_, 'b, Db>,
    ) -> QueryResult<()> {
        match (limit, &self.offset) {
            (Some(limit), offset) => {
                out.push_sql(" LIMIT ");
                if Dialect::rendering(out.backend()).limit_literal {
                    // A typed number the library renders: see `Dialect::limit_literal`.
                    out.push_sql(&limit.to_string());
                } else {
                    out.push_bind_param::<BigInt, i64>(limit)?;
                }
                if let Some(offset) = offset {
                    out.push_sql(" OFFSET ");
                    out.push_bind_param::<BigInt, i64>(offset)?;
                }
            }
            (None, Some(offset)) => {
                if let Some(limit) = Dialect::rendering(out.backend()).limit_for_offset {
                    out.push_sql(limit);
                }
                out.push_sql(" OFFSET ");
                out.push_bind_param::<BigInt, i64>(offset)?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// A sliced queryset as a derived table under its own table's name:
/// `(SELECT * FROM t WHERE ... ORDER BY ... LIMIT ? OFFSET ?) AS t`. Joins to
/// related rows then run on the slice's rows only, not on every row before the sort
/// (see `select_related`).
pub(crate) struct SlicedTable {
    /// The sliced queryset (its table may itself be a derived table).
    pub(crate) source: Source,
    /// The model's table, whose name the derived table takes.
    pub(crate) alias: Fragment,
}

impl QueryFragment<Db> for SlicedTable {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("(SELECT *");
        self.source.walk_slice(&mut out)?;
        out.push_sql(") AS ");
        self.alias.walk_ast(out.reborrow())
    }
}

impl SlicedTable {
    /// The source that reads `source`'s slice as a table, under the model's table
    /// name `table` (with primary key `pk`): the derived table above, or, for a
    /// schema-qualified table (which no alias can be named as), the table itself
    /// filtered to the slice's keys, `pk IN (SELECT pk ... LIMIT ?)`. Either way the
    /// outer query's qualified columns resolve and its ORDER BY applies again.
    pub(crate) fn source(source: Source, table: Fragment, pk: ColumnRef) -> Source {
        let order = source.order.clone();
        let (table, filters): (Fragment, Vec<Fragment>) = if is_qualified(&*table) {
            (table, vec![Arc::new(PkIn::slice(pk, source))])
        } else {
            (
                Arc::new(SlicedTable {
                    source,
                    alias: table,
                }),
                Vec::new(),
            )
        };
        Source {
            table,
            filters,
            order,
            limit: None,
            offset: None,
            distinct: false,
        }
    }
}

/// `"s"."t"."id" IN (<keys>)`: the rows of a schema-qualified table whose keys a
/// subquery selects, where other tables would be read as a derived table under
/// their own name.
pub(crate) struct PkIn {
    pub(crate) pk: ColumnRef,
    pub(crate) keys: Fragment,
}

impl PkIn {
    /// The keys of `source`'s slice.
    pub(crate) fn slice(pk: ColumnRef, source: Source) -> Self {
        Self {
            keys: Arc::new(SlicedKeys {
                pk: pk.clone(),
                source,
            }),
            pk,
        }
    }
}

impl QueryFragment<Db> for PkIn {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.pk.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (");
        self.keys.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

/// `SELECT "s"."t"."id" FROM "s"."t" WHERE ... ORDER BY ... LIMIT ? OFFSET ?`.
pub(crate) struct SlicedKeys {
    pub(crate) pk: ColumnRef,
    pub(crate) source: Source,
}

impl QueryFragment<Db> for SlicedKeys {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.pk.qualified.walk_ast(out.reborrow())?;
        self.source.walk_slice(&mut out)
    }
}

/// More filters than this are joined as a balanced tree (see [`walk_where`]).
const FLAT_FILTERS: usize = 64;

/// ` WHERE (a) AND (b)`, or nothing.
///
/// SQLite parses `a AND b AND c ...` into a chain one level deeper per term and
/// rejects a depth past 1,000 ("Expression tree is too large"): a long filter chain
/// (thousands of `filter` calls) is joined as a balanced tree instead,
/// `((a) AND (b)) AND ((c) AND (d))`, whose depth grows with the logarithm of its
/// length. Short chains keep the flat form.
pub(crate) fn walk_where<'b>(
    filters: &'b [Fragment],
    out: &mut AstPass<'_, 'b, Db>,
) -> QueryResult<()> {
    if filters.len() > FLAT_FILTERS {
        out.push_sql(" WHERE ");
        return walk_balanced(filters, out);
    }
    for (i, filter) in filters.iter().enumerate() {
        out.push_sql(if i == 0 { " WHERE (" } else { " AND (" });
        filter.walk_ast(out.reborrow())?;
        out.push_sql(")");
    }
    Ok(())
}

fn walk_balanced<'b>(filters: &'b [Fragment], out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
    out.push_sql("(");
    if let [only] = filters {
        only.walk_ast(out.reborrow())?;
    } else {
        let (left, right) = filters.split_at(filters.len() / 2);
        walk_balanced(left, out)?;
        out.push_sql(" AND ");
        walk_balanced(right, out)?;
    }
    out.push_sql(")");
    Ok(())
}

/// `SELECT [DISTINCT] <selection> FROM t WHERE ... ORDER BY ... LIMIT ? OFFSET ?`.
#[doc(hidden)]
pub struct SelectStatement<S> {
    pub(crate) selection: S,
    pub(crate) source: Source,
    /// Overrides the queryset's limit (`first()` uses 1, `get()` 21).
    pub(crate) limit_override: Option<i64>,
    pub(crate) with_order: bool,
    /// Read the next rows of this statement's open cursor instead (`FETCH`).
    pub(crate) cursor_fetch: Option<CursorFetch>,
    /// `GROUP BY ... HAVING ...`.
    pub(crate) group: Option<Grouping>,
    /// `FOR UPDATE ...` (PostgreSQL; nothing on SQLite, see [`RowLock`]).
    pub(crate) lock: Option<Locking>,
}

/// The row lock a `SELECT` takes (Django's `select_for_update`): build it with
/// [`RowLock::update`] and pass it to
/// [`QuerySet::select_for_update`](crate::QuerySet::select_for_update).
///
/// PostgreSQL: `FOR UPDATE` / `FOR NO KEY UPDATE` / `FOR SHARE`, then `OF "t"`,
/// `NOWAIT` or `SKIP LOCKED`. SQLite has no row locks: the clause is not sent, and
/// the transaction it must run in ([`atomic`](crate::atomic) begins with
/// `BEGIN IMMEDIATE`) holds the database's write lock, which no other writer can
/// take until it ends; `SKIP LOCKED` and `NOWAIT` have nothing to skip or wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLock {
    strength: &'static str,
    wait: &'static str,
    own_table_only: bool,
}

impl RowLock {
    /// `FOR UPDATE`: no other transaction can update, delete or lock the rows.
    pub fn update() -> Self {
        Self {
            strength: " FOR UPDATE",
            wait: "",
            own_table_only: false,
        }
    }

    /// `FOR NO KEY UPDATE` (Django's `no_key=True`): as `FOR UPDATE`, but rows
    /// pointing at these through a foreign key can still be inserted.
    pub fn no_key_update() -> Self {
        Self {
            strength: " FOR NO KEY UPDATE",
            ..Self::update()
        }
    }

    /// `FOR SHARE`: others can read and share-lock the rows, not change them.
    pub fn share() -> Self {
        Self {
            strength: " FOR SHARE",
            ..Self::update()
        }
    }

    /// `NOWAIT`: fail at once on a row another transaction has locked, instead of
    /// waiting.
    #[must_use]
    pub fn nowait(mut self) -> Self {
        self.wait = " NOWAIT";
        self
    }

    /// `SKIP LOCKED`: leave out the rows other transactions have locked (a job
    /// queue: each worker takes rows no other worker holds).
    #[must_use]
    pub fn skip_locked(mut self) -> Self {
        self.wait = " SKIP LOCKED";
        self
    }

    /// `OF "t"` (Django's `of=("self",)`): lock the queryset's own rows only, not
    /// the rows `select_related` joins (which PostgreSQL refuses to lock on the
    /// nullable side of a `LEFT JOIN`).
    #[must_use]
    pub fn of_own_table(mut self) -> Self {
        self.own_table_only = true;
        self
    }
}

/// A [`RowLock`] with the table it names.
#[derive(Clone)]
pub(crate) struct Locking {
    pub(crate) lock: RowLock,
    /// The table's name as `FROM` names it (without its schema).
    pub(crate) table: String,
}

impl Locking {
    fn walk(&self, out: &mut AstPass<'_, '_, Db>) -> QueryResult<()> {
        if !Dialect::rendering(out.backend()).row_locks {
            return Ok(());
        }
        out.push_sql(self.lock.strength);
        if self.lock.own_table_only {
            out.push_sql(" OF ");
            out.push_identifier(&self.table)?;
        }
        out.push_sql(self.lock.wait);
        Ok(())
    }
}

/// ` GROUP BY <columns> HAVING (a) AND (b)`.
#[derive(Clone)]
pub(crate) struct Grouping {
    pub(crate) columns: Fragment,
    pub(crate) having: Vec<Fragment>,
}

impl Grouping {
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql(" GROUP BY ");
        self.columns.walk_ast(out.reborrow())?;
        for (i, predicate) in self.having.iter().enumerate() {
            out.push_sql(if i == 0 { " HAVING (" } else { " AND (" });
            predicate.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<S> SelectStatement<S> {
    pub(crate) fn new(selection: S, source: Source) -> Self {
        Self {
            selection,
            source,
            limit_override: None,
            with_order: true,
            cursor_fetch: None,
            group: None,
            lock: None,
        }
    }
}

impl<S: QueryFragment<Db>> QueryFragment<Db> for SelectStatement<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        if let Some(fetch) = &self.cursor_fetch {
            return fetch.walk_ast(out);
        }
        out.push_sql("SELECT ");
        if self.source.distinct {
            out.push_sql("DISTINCT ");
        }
        self.selection.walk_ast(out.reborrow())?;
        self.source.walk_from_where(&mut out)?;
        if let Some(group) = &self.group {
            group.walk(&mut out)?;
        }
        if self.with_order {
            self.source.walk_order(&mut out)?;
        }
        let limit = self.limit_override.as_ref().or(self.source.limit.as_ref());
        self.source.walk_limit_offset(limit, &mut out)?;
        if let Some(lock) = &self.lock {
            lock.walk(&mut out)?;
        }
        Ok(())
    }
}

impl<S> QueryId for SelectStatement<S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S: Expression> Query for SelectStatement<S> {
    type SqlType = S::SqlType;
}

impl<S, Conn> RunQueryDsl<Conn> for SelectStatement<S> {}

impl<S, Conn> RunQueryDsl<Conn> for &SelectStatement<S> {}

/// The statement that loads rows of model `M`.
pub type ModelSelect<M> = SelectStatement<diesel::helper_types::AsSelect<M, Db>>;

/// `SELECT COUNT(*) FROM t WHERE ...`, or, for a sliced or distinct queryset,
/// `SELECT COUNT(*) FROM (SELECT ... LIMIT ? OFFSET ?) AS "counted"`.
/// Never carries an ORDER BY (PostgreSQL rejects `COUNT(*)` beside `ORDER BY col`).
pub(crate) struct CountStatement<S> {
    pub(crate) inner: SelectStatement<S>,
}

impl<S: QueryFragment<Db>> QueryFragment<Db> for CountStatement<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        let source = &self.inner.source;
        if source.is_sliced() || source.distinct || self.inner.group.is_some() {
            out.push_sql("SELECT COUNT(*) FROM (");
            self.inner.walk_ast(out.reborrow())?;
            out.push_sql(") AS ");
            out.push_identifier("counted")
        } else {
            out.push_sql("SELECT COUNT(*)");
            source.walk_from_where(&mut out)
        }
    }
}

impl<S> QueryId for CountStatement<S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S> Query for CountStatement<S> {
    type SqlType = BigInt;
}

impl<S, Conn> RunQueryDsl<Conn> for CountStatement<S> {}

/// The literal selection `1` (for EXISTS and counted subqueries).
#[derive(Debug, Clone, Copy)]
pub(crate) struct One;

impl Expression for One {
    type SqlType = Integer;
}

impl QueryFragment<Db> for One {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("1");
        Ok(())
    }
}

/// `FETCH FORWARD n FROM "cursor"`: the count is a number the library renders
/// (PostgreSQL takes no parameter there), the cursor name its own identifier.
#[derive(Debug, Clone)]
pub(crate) struct CursorFetch {
    pub(crate) name: String,
    pub(crate) count: u32,
}

impl QueryFragment<Db> for CursorFetch {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("FETCH FORWARD ");
        out.push_sql(&self.count.to_string());
        out.push_sql(" FROM ");
        out.push_identifier(&self.name)
    }
}

impl RowLock {
    /// `SKIP LOCKED` or `NOWAIT`: not the default wait.
    pub(crate) fn waits_otherwise(&self) -> bool {
        !self.wait.is_empty()
    }
}
