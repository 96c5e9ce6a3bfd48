//! Terminal methods that write: soft delete, hard delete, update.

use crate::connection::AsConnection;
use std::panic::Location;
use std::sync::Arc;

use diesel::query_builder::{AsChangeset, AstPass, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

use super::run::run;
use super::statement::{walk_where, SelectStatement, Source};
use super::QuerySet;
use crate::connection::{AnyConnection, Db};
use crate::error::Result;
use crate::fragment::{ColumnRef, Fragment};
use crate::model::Model;

impl<M: Model> QuerySet<M> {
    /// Deletes the queryset's rows; returns how many. For a soft-delete model it
    /// marks them (`SET deleted = true, updated = now`); otherwise it removes them.
    /// One statement.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let thread_1 = Message::objects().filter(weave_message::thread_id.eq(1));
    /// let (n, captured) = orm::capture(|| thread_1.delete(&mut conn));
    /// assert_eq!(n?, 2);
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["UPDATE `weave_message` SET `deleted` = true, `updated` = ? WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?))"]
    /// );
    /// // On PostgreSQL: UPDATE "weave_message" SET "deleted" = true, "updated" = $1
    /// //                WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $2))
    /// assert_eq!(thread_1.count(&mut conn)?, 0);
    /// assert_eq!(thread_1.clone().only_deleted().count(&mut conn)?, 2);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn delete(&self, conn: &mut impl AsConnection) -> Result<usize> {
        let conn = conn.connection();
        let statement = self.delete_statement();
        run(Location::caller(), || statement.execute(conn))
    }

    /// The statement `delete()` sends: a soft-delete `UPDATE`, or a `DELETE`.
    pub(crate) fn delete_statement(&self) -> WriteStatement {
        let Some(deleted) = M::soft_delete_column() else {
            return WriteStatement::Delete(self.hard_delete_statement());
        };
        let mut sets: Vec<Fragment> = vec![Arc::new(SetBool {
            column: deleted,
            value: true,
        })];
        sets.extend(touch_updated::<M>());
        WriteStatement::Update(Update {
            table: Arc::new(M::Table::default()),
            sets,
            filter: WriteWhere::new(self.source(), primary_key::<M>()),
        })
    }

    /// Removes the queryset's rows for good (`DELETE FROM ...`), soft delete or not;
    /// returns how many. Only the rows the queryset sees are removed: chain
    /// `with_deleted()` to include soft-deleted ones.
    #[track_caller]
    pub fn hard_delete(&self, conn: &mut impl AsConnection) -> Result<usize> {
        let conn = conn.connection();
        self.hard_delete_at(conn, Location::caller())
    }

    fn hard_delete_at(
        &self,
        conn: &mut AnyConnection,
        site: &'static Location<'static>,
    ) -> Result<usize> {
        let statement = self.hard_delete_statement();
        run(site, || statement.execute(conn))
    }

    /// The statement `hard_delete()` sends.
    pub(crate) fn hard_delete_statement(&self) -> Delete {
        Delete {
            table: Arc::new(M::Table::default()),
            filter: WriteWhere::new(self.source(), primary_key::<M>()),
        }
    }

    /// Sets columns on every row of the queryset in one statement; returns how many
    /// rows changed. `changes` is any diesel changeset of `M`'s table (a struct
    /// deriving `AsChangeset`, `col.eq(value)`, or a tuple of them). The `updated`
    /// column is set to now as well, unless `changes` sets it itself (then its value
    /// is kept).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let n = Thread::objects()
    ///     .filter(weave_thread::id.eq(1))
    ///     .update(&mut conn, weave_thread::title.eq("Renamed"))?;
    /// assert_eq!(n, 1);
    /// assert_eq!(Thread::objects().filter(weave_thread::id.eq(1)).get(&mut conn)?.title, "Renamed");
    /// # Ok(()) }
    /// ```
    ///
    /// On a sliced queryset the rows are chosen by a subquery:
    /// `UPDATE t SET ... WHERE "t"."id" IN (SELECT "t"."id" FROM t ... LIMIT ?)`.
    #[track_caller]
    pub fn update<C>(&self, conn: &mut impl AsConnection, changes: C) -> Result<usize>
    where
        C: AsChangeset<Target = M::Table>,
        C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
    {
        let conn = conn.connection();
        let Some(statement) = self.update_statement(conn.backend(), changes)? else {
            return Ok(0);
        };
        run(Location::caller(), || statement.execute(conn))
    }

    /// The statement `update(changes)` sends on `backend`, or `None` when there is
    /// nothing to set.
    pub(crate) fn update_statement<C>(
        &self,
        backend: crate::connection::Backend,
        changes: C,
    ) -> Result<Option<Update>>
    where
        C: AsChangeset<Target = M::Table>,
        C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
    {
        let changeset: Fragment = Arc::new(changes.as_changeset());
        let mut sets = Vec::with_capacity(2);
        let mut sets_updated = false;
        if !changeset.is_noop(&backend.diesel_backend())? {
            sets_updated = assigns_updated::<M>(&changeset)?;
            sets.push(changeset);
        }
        if !sets_updated {
            // PostgreSQL rejects a column assigned twice; a caller's own value wins.
            sets.extend(touch_updated::<M>());
        }
        if sets.is_empty() {
            return Ok(None);
        }
        Ok(Some(Update {
            table: Arc::new(M::Table::default()),
            sets,
            filter: WriteWhere::new(self.source(), primary_key::<M>()),
        }))
    }
}

impl<M: Model> QuerySet<M> {
    /// The SQL [`delete`](Self::delete) sends on `backend` (a soft delete for a model
    /// with a `deleted` column).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let qs = Message::objects().filter(weave_message::thread_id.eq(1));
    /// assert_eq!(
    ///     qs.delete_sql(Backend::Postgres)?,
    ///     r#"UPDATE "weave_message" SET "deleted" = true, "updated" = $1 WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $2))"#
    /// );
    /// assert_eq!(
    ///     qs.delete_sql(Backend::Sqlite)?,
    ///     "UPDATE `weave_message` SET `deleted` = true, `updated` = ? WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?))"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the statement cannot be rendered.
    pub fn delete_sql(&self, backend: crate::connection::Backend) -> Result<String> {
        Ok(crate::fragment::render(&self.delete_statement(), backend)?)
    }

    /// The SQL [`hard_delete`](Self::hard_delete) sends on `backend`; a sliced
    /// queryset chooses its rows by primary key through a subquery.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let qs = Message::objects().only_deleted();
    /// assert_eq!(
    ///     qs.hard_delete_sql(Backend::Postgres)?,
    ///     r#"DELETE FROM "weave_message" WHERE ("weave_message"."deleted" = true)"#
    /// );
    /// assert_eq!(
    ///     qs.limit(10).hard_delete_sql(Backend::Sqlite)?,
    ///     "DELETE FROM `weave_message` WHERE `weave_message`.`id` IN (SELECT `weave_message`.`id` FROM `weave_message` WHERE (`weave_message`.`deleted` = true) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 10)"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the statement cannot be rendered.
    pub fn hard_delete_sql(&self, backend: crate::connection::Backend) -> Result<String> {
        Ok(crate::fragment::render(
            &self.hard_delete_statement(),
            backend,
        )?)
    }

    /// The SQL [`update`](Self::update) sends on `backend` for `changes`, or `None`
    /// when there is nothing to set (no changes and no `updated` column).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let qs = Thread::objects().filter(weave_thread::id.eq(1));
    /// assert_eq!(
    ///     qs.update_sql(Backend::Postgres, weave_thread::title.eq("Renamed"))?.as_deref(),
    ///     Some(r#"UPDATE "weave_thread" SET "title" = $1, "updated" = $2 WHERE ("weave_thread"."deleted" = false) AND (("weave_thread"."id" = $3))"#)
    /// );
    /// assert_eq!(
    ///     qs.update_sql(Backend::Sqlite, weave_thread::title.eq("Renamed"))?.as_deref(),
    ///     Some("UPDATE `weave_thread` SET `title` = ?, `updated` = ? WHERE (`weave_thread`.`deleted` = false) AND ((`weave_thread`.`id` = ?))")
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the statement cannot be rendered.
    pub fn update_sql<C>(
        &self,
        backend: crate::connection::Backend,
        changes: C,
    ) -> Result<Option<String>>
    where
        C: AsChangeset<Target = M::Table>,
        C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
    {
        match self.update_statement(backend, changes)? {
            Some(statement) => Ok(Some(crate::fragment::render(&statement, backend)?)),
            None => Ok(None),
        }
    }
}

fn primary_key<M: Model>() -> ColumnRef {
    ColumnRef::of(M::PrimaryKey::default())
}

/// Whether `changeset` assigns the model's `updated` column itself. Read from the
/// changeset's own rendering, where every value is a placeholder, so only the
/// assignments' column names are text: `"col" = $1, "updated" = $2`.
fn assigns_updated<M: Model>(changeset: &Fragment) -> Result<bool> {
    let Some(updated) = M::updated_column() else {
        return Ok(false);
    };
    let sql = crate::fragment::render(&**changeset, crate::connection::Backend::Postgres)?;
    let target = format!("\"{}\" = ", updated.name);
    Ok(sql
        .split(", ")
        .any(|assignment| assignment.starts_with(&target)))
}

fn touch_updated<M: Model>() -> Option<Fragment> {
    M::updated_column().map(|column| {
        Arc::new(SetTimestamp {
            column,
            value: crate::bulk::statement::Stamp::now::<M>(),
        }) as Fragment
    })
}

/// `"col" = true|false` in a SET list (the column unqualified, as SQL requires).
struct SetBool {
    column: ColumnRef,
    value: bool,
}

impl QueryFragment<Db> for SetBool {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_identifier(self.column.name)?;
        // A typed boolean the library renders, never a user value.
        out.push_sql(if self.value { " = true" } else { " = false" });
        Ok(())
    }
}

/// `"col" = ?` with a timestamp bind.
pub(crate) struct SetTimestamp {
    pub(crate) column: ColumnRef,
    pub(crate) value: crate::bulk::statement::Stamp,
}

impl QueryFragment<Db> for SetTimestamp {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_identifier(self.column.name)?;
        out.push_sql(" = ");
        self.value.walk(&mut out)
    }
}

/// The WHERE of a write: the filters, or for a sliced queryset
/// `"t"."pk" IN (SELECT "t"."pk" FROM t WHERE ... ORDER BY ... LIMIT ? OFFSET ?)`.
enum WriteWhere {
    Filters(Vec<Fragment>),
    PkIn(ColumnRef, Box<SelectStatement<PkSelection>>),
}

impl WriteWhere {
    fn new(source: Source, pk: ColumnRef) -> Self {
        if source.is_sliced() {
            WriteWhere::PkIn(
                pk.clone(),
                Box::new(SelectStatement::new(PkSelection(pk), source)),
            )
        } else {
            WriteWhere::Filters(source.filters)
        }
    }

    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
        match self {
            WriteWhere::Filters(filters) => walk_where(filters, out),
            WriteWhere::PkIn(pk, subquery) => {
                out.push_sql(" WHERE ");
                pk.qualified.walk_ast(out.reborrow())?;
                out.push_sql(" IN (");
                subquery.walk_ast(out.reborrow())?;
                out.push_sql(")");
                Ok(())
            }
        }
    }
}

struct PkSelection(ColumnRef);

impl QueryFragment<Db> for PkSelection {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.qualified.walk_ast(out)
    }
}

pub(crate) struct Update {
    table: Fragment,
    sets: Vec<Fragment>,
    filter: WriteWhere,
}

impl QueryFragment<Db> for Update {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        for (i, set) in self.sets.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            set.walk_ast(out.reborrow())?;
        }
        self.filter.walk(&mut out)
    }
}

pub(crate) struct Delete {
    table: Fragment,
    filter: WriteWhere,
}

impl QueryFragment<Db> for Delete {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("DELETE FROM ");
        self.table.walk_ast(out.reborrow())?;
        self.filter.walk(&mut out)
    }
}

macro_rules! impl_statement {
    ($($ty:ty),*) => {$(
        impl QueryId for $ty {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
        impl<Conn> RunQueryDsl<Conn> for $ty {}
    )*};
}
impl_statement!(Update, Delete, WriteStatement);

/// A write statement of either shape.
pub(crate) enum WriteStatement {
    Update(Update),
    Delete(Delete),
}

impl QueryFragment<Db> for WriteStatement {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        match self {
            WriteStatement::Update(u) => u.walk_ast(out),
            WriteStatement::Delete(d) => d.walk_ast(out),
        }
    }
}
