//! `bulk_update`: per-row values for chosen columns, one statement per chunk.

use crate::connection::AsConnection;
use std::panic::Location;
use std::sync::Arc;

use diesel::query_builder::QueryFragment;
use diesel::RunQueryDsl;

use super::columns::UpdateColumns;
use super::create::{bulk_atomic, rows_per_statement};
use super::failure::{run_chunk, ChunkSpan};
use super::statement::{UpdateFromArrays, UpdateFromValues, MAX_UPDATE_COLUMNS};
use crate::connection::AnyConnection;
use crate::error::{Error, Result};
use crate::fragment::ColumnRef;
use crate::model::Model;
use crate::queryset::run::run;
use crate::queryset::QuerySet;

impl<M: Model> QuerySet<M> {
    /// Sets `columns` of many rows, each row to its own values, in one statement per
    /// chunk, all in one transaction; returns how many rows changed. `rows` are
    /// `(primary key, values)`; `updated` is set to now on each (Django's
    /// `bulk_update` forgets `auto_now`; this does not).
    ///
    /// Only the queryset's rows change, as Django's `bulk_update` (which runs
    /// `self.filter(pk__in=...).update(...)`): a row its filters leave out, or a
    /// soft-deleted row of `objects()`, is skipped and not counted; call it on
    /// `with_deleted()` to write deleted rows too. A sliced queryset is
    /// [`Error::Unsupported`].
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let rows = vec![(1, ("Engines, revised".to_string(),)), (2, ("Machines, revised".to_string(),))];
    /// let (n, captured) = orm::capture(|| {
    ///     Thread::objects().bulk_update(&mut conn, (weave_thread::title,), rows)
    /// });
    /// assert_eq!(n?, 2);
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["UPDATE `weave_thread` SET `title` = `v`.`column2`, `updated` = ? FROM (VALUES (?, ?), (?, ?)) AS `v` WHERE `weave_thread`.`id` = `v`.`column1` AND (`weave_thread`.`deleted` = false)"]
    /// );
    /// // On PostgreSQL: UPDATE "weave_thread" SET "title" = "v"."column2", "updated" = $1
    /// //   FROM UNNEST($2, $3) AS "v"("column1", "column2")
    /// //   WHERE "weave_thread"."id" = "v"."column1" AND ("weave_thread"."deleted" = false)
    /// let thread = Thread::objects().filter(weave_thread::id.eq(1)).get(&mut conn)?;
    /// assert_eq!(thread.title, "Engines, revised");
    /// assert!(thread.updated > thread.created);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BulkWrite`] naming the failing chunk (nothing is written);
    /// [`Error::InvalidArgument`] for more than 7 columns or a column named twice.
    ///
    /// ### Notes
    /// An empty `rows` sends nothing. A primary key that matches no row is skipped
    /// (the count tells). Rows per statement: on SQLite the bind limit divided by
    /// `1 + columns` (`FROM (VALUES ...)`); on PostgreSQL up to 50,000, one array bind
    /// per column (`FROM UNNEST($2, $3, ...)`, from `$1` when the model has no `updated`
    /// column), a statement whose text does not depend
    /// on the number of rows, so it is prepared once per connection. `UPDATE ... FROM`
    /// needs SQLite 3.33 (the bundled one is newer).
    #[track_caller]
    pub fn bulk_update<C, V>(
        &self,
        conn: &mut impl AsConnection,
        columns: C,
        rows: Vec<(M::Key, V)>,
    ) -> Result<usize>
    where
        C: UpdateColumns<M::Table, V>,
    {
        let conn = conn.connection();
        let site = Location::caller();
        let (names, updated) = update_columns::<M, _, _>(&columns)?;
        self.check_bulk_update(conn.backend())?;
        if rows.is_empty() {
            return Ok(0);
        }
        let filters = self.effective_filters();
        let arrays = self.array_update(conn.backend())?;
        let chunk = chunk_rows(
            conn.backend(),
            names.len(),
            arrays.is_some(),
            self.has_filters(),
        );
        let now = super::statement::Stamp::now::<M>();
        let total_rows = rows.len();
        bulk_atomic(conn, |conn| {
            let mut changed = 0;
            for (index, part) in rows.chunks(chunk).enumerate() {
                let span = ChunkSpan {
                    operation: "bulk_update",
                    chunk: index,
                    first_row: index * chunk,
                    end_row: index * chunk + part.len(),
                    total_rows,
                };
                changed += run_chunk(conn, span, |conn, n| {
                    if let (AnyConnection::Postgresql(pg), Some(live)) = (&mut *conn, &arrays) {
                        let statement = update_from_arrays::<M, C, V>(
                            names.clone(),
                            updated,
                            now,
                            &part[..n],
                            live.clone(),
                        )?;
                        return run(site, || statement.execute(pg));
                    }
                    let statement = UpdateFromValues {
                        table: Arc::new(M::Table::default()),
                        pk: ColumnRef::of(M::PrimaryKey::default()),
                        columns: names.clone(),
                        updated: updated.map(|column| (column, now)),
                        rows: &part[..n],
                        walk_row: <C as UpdateColumns<M::Table, V>>::walk_values,
                        filters: filters.clone(),
                    };
                    run(site, || statement.execute(conn))
                })?;
            }
            Ok(changed)
        })
    }

    /// The statement [`bulk_update`](Self::bulk_update) sends for the first chunk of
    /// `rows` on `backend`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let rows = [(1, ("a".to_string(), 2_i64)), (2, ("b".to_string(), 2))];
    /// assert_eq!(
    ///     Message::objects().bulk_update_sql(Backend::Postgres, (weave_message::text, weave_message::thread_id), &rows)?,
    ///     r#"UPDATE "weave_message" SET "text" = "v"."column2", "thread_id" = "v"."column3", "updated" = $1 FROM UNNEST($2, $3, $4) AS "v"("column1", "column2", "column3") WHERE "weave_message"."id" = "v"."column1" AND ("weave_message"."deleted" = false)"#
    /// );
    /// assert_eq!(
    ///     Message::objects().bulk_update_sql(Backend::Sqlite, (weave_message::text, weave_message::thread_id), &rows)?,
    ///     "UPDATE `weave_message` SET `text` = `v`.`column2`, `thread_id` = `v`.`column3`, `updated` = ? FROM (VALUES (?, ?, ?), (?, ?, ?)) AS `v` WHERE `weave_message`.`id` = `v`.`column1` AND (`weave_message`.`deleted` = false)"
    /// );
    /// // With filters of its own the queryset's rows are the rows written, on
    /// // PostgreSQL through the VALUES form, which carries their values:
    /// let thread_2 = Message::objects().filter(weave_message::thread_id.eq(2));
    /// assert_eq!(
    ///     thread_2.bulk_update_sql(Backend::Postgres, (weave_message::text, weave_message::thread_id), &rows)?,
    ///     r#"UPDATE "weave_message" SET "text" = "v"."column2", "thread_id" = "v"."column3", "updated" = $1 FROM (VALUES ($2, $3, $4), ($5, $6, $7)) AS "v" WHERE "weave_message"."id" = "v"."column1" AND ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $8))"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] as `bulk_update`, and for no rows.
    pub fn bulk_update_sql<C, V>(
        &self,
        backend: crate::Backend,
        columns: C,
        rows: &[(M::Key, V)],
    ) -> Result<String>
    where
        C: UpdateColumns<M::Table, V>,
    {
        let (names, updated) = update_columns::<M, _, _>(&columns)?;
        self.check_bulk_update(backend)?;
        if rows.is_empty() {
            return Err(Error::InvalidArgument {
                argument: "rows",
                reason: "no rows, no statement",
            });
        }
        let filters = self.effective_filters();
        let arrays = self.array_update(backend)?;
        let chunk = chunk_rows(backend, names.len(), arrays.is_some(), self.has_filters());
        let rows = &rows[..chunk.min(rows.len())];
        let now = super::statement::Stamp::now::<M>();
        if let Some(live) = arrays {
            let statement = update_from_arrays::<M, C, V>(names, updated, now, rows, live)?;
            let mut builder = diesel::pg::PgQueryBuilder::default();
            statement.to_sql(&mut builder, &diesel::pg::Pg)?;
            return Ok(diesel::query_builder::QueryBuilder::<diesel::pg::Pg>::finish(builder));
        }
        let statement = UpdateFromValues {
            table: Arc::new(M::Table::default()),
            pk: ColumnRef::of(M::PrimaryKey::default()),
            columns: names,
            updated: updated.map(|column| (column, now)),
            rows,
            walk_row: <C as UpdateColumns<M::Table, V>>::walk_values,
            filters,
        };
        Ok(crate::fragment::render(&statement, backend)?)
    }

    /// Refuses a sliced queryset: a slice of the given rows has no meaning.
    fn check_bulk_update(&self, backend: crate::Backend) -> Result<()> {
        if self.is_sliced() {
            return Err(Error::Unsupported {
                backend,
                feature: "bulk_update on a sliced queryset",
            });
        }
        Ok(())
    }

    /// `Some(soft-delete filter)` when `bulk_update` sends PostgreSQL's array form:
    /// on a backend with array binds and a queryset without filters of its own
    /// (whose values the array statement, written for PostgreSQL alone, cannot
    /// carry); `Some(None)` there without a soft delete.
    fn array_update(&self, backend: crate::Backend) -> Result<Option<Option<String>>> {
        if !backend.capability().array_binds || self.has_filters() {
            return Ok(None);
        }
        let live = self.effective_filters();
        let rendered = live
            .iter()
            .map(|filter| crate::fragment::render(&**filter, crate::Backend::Postgres))
            .collect::<diesel::QueryResult<Vec<String>>>()?;
        Ok(Some(
            (!rendered.is_empty()).then(|| rendered.join(") AND (")),
        ))
    }
}

/// The PostgreSQL statement for `rows`: one array per column.
fn update_from_arrays<'r, M: Model, C: UpdateColumns<M::Table, V>, V>(
    columns: Vec<&'static str>,
    updated: Option<&'static str>,
    now: super::statement::Stamp,
    rows: &'r [(M::Key, V)],
    live: Option<String>,
) -> Result<UpdateFromArrays<M::Key, C::Arrays<'r>>> {
    let postgres = crate::Backend::Postgres;
    Ok(UpdateFromArrays {
        table: crate::fragment::render(&M::Table::default(), postgres)?,
        pk: crate::fragment::render(
            &*ColumnRef::of(M::PrimaryKey::default()).qualified,
            postgres,
        )?,
        columns,
        updated: updated.map(|column| (column, now)),
        ids: rows.iter().map(|(pk, _)| pk.clone()).collect(),
        arrays: C::arrays(rows),
        walk_arrays: C::walk_arrays,
        live,
    })
}

/// Rows per `bulk_update` statement. SQLite: one bind for `updated`, then the primary
/// key and the values of each row, under the bind limit. PostgreSQL binds one array
/// per column, so only memory bounds a statement: [`UPDATE_ARRAY_ROWS`].
///
/// With the queryset's filters in the `VALUES` form, [`FILTER_BINDS`] binds are
/// left for their values.
fn chunk_rows(backend: crate::Backend, columns: usize, arrays: bool, filtered: bool) -> usize {
    if arrays {
        return UPDATE_ARRAY_ROWS;
    }
    let per_row = 1 + columns;
    let reserved = 1 + if filtered { FILTER_BINDS } else { 0 };
    rows_per_statement(backend, per_row, None)
        .min((backend.capability().max_bind_params - reserved) / per_row)
}

/// The binds a `bulk_update` statement leaves for its queryset's filters.
const FILTER_BINDS: usize = 1_000;

/// Rows per PostgreSQL `bulk_update` statement (one array bind per column).
pub const UPDATE_ARRAY_ROWS: usize = 50_000;

/// The column names to set and the `updated` column, checked.
fn update_columns<M: Model, C: UpdateColumns<M::Table, V>, V>(
    columns: &C,
) -> Result<(Vec<&'static str>, Option<&'static str>)> {
    let names = columns.names();
    if names.len() > MAX_UPDATE_COLUMNS {
        return Err(Error::InvalidArgument {
            argument: "columns",
            reason: "bulk_update sets at most 7 columns at once",
        });
    }
    let updated = M::updated_column().map(|c| c.name);
    let mut seen = names.clone();
    seen.extend(updated);
    seen.sort_unstable();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::InvalidArgument {
            argument: "columns",
            reason: "a column is named twice (the ORM sets `updated` itself)",
        });
    }
    Ok((names, updated))
}
