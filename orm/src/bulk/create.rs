//! `create` and `bulk_create`: chunked multi-row `INSERT`, or binary `COPY`.

use crate::connection::AsConnection;
use crate::Capability;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;

use diesel::{Column, RunQueryDsl};

use super::columns::Columns;
use super::failure::{bulk_error, run_chunk, ChunkSpan};
use super::new_row::NewRow;
use super::statement::{InsertRows, OnConflict};
use crate::connection::{AnyConnection, Backend};
use crate::error::{Error, Result};
use crate::fragment::render;
use crate::key::Key;
use crate::model::Model;
use crate::queryset::run::run;
use crate::queryset::QuerySet;

/// From this many rows on, [`InsertMethod::Auto`] sends them with binary `COPY` on
/// PostgreSQL (about 1.5x faster than chunked `INSERT` for 100,000 rows; below a few
/// thousand rows the difference is lost in the round trip).
pub const COPY_THRESHOLD: usize = 10_000;

/// A `COPY` of at most this many rows that fails with no kind the library can name
/// is diagnosed: its rows are tried again as `INSERT`s in savepoints that are always
/// rolled back (about `log2(rows)` probes, writing up to about three times the rows
/// in all, on failure only), which finds the failing row and a typed error (a NUL
/// character in text: [`Error::NulInText`]). A larger one reports the server's error
/// with no row.
pub const COPY_DIAGNOSIS_ROWS: usize = 10_000;

/// How `bulk_create` sends the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InsertMethod {
    /// Multi-row `INSERT ... VALUES (...), (...)`, as many rows per statement as the
    /// bind limit allows, with `RETURNING` the new ids. The default.
    #[default]
    Insert,
    /// Binary `COPY t (cols) FROM STDIN` (PostgreSQL only): the fastest, but returns
    /// no ids and takes no conflict handling.
    Copy,
    /// `Copy` on PostgreSQL for [`COPY_THRESHOLD`] rows or more when no conflict
    /// handling is asked for, else `Insert`. Ids come back only from `Insert`.
    Auto,
}

/// What to do with a row that collides with an existing one on a unique column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Conflict {
    /// Fail (the whole write is rolled back). The default.
    #[default]
    Error,
    /// Skip the row (`ON CONFLICT DO NOTHING`, Django's `ignore_conflicts`).
    Ignore,
    /// Update chosen columns of the existing row from the new one
    /// (`ON CONFLICT (target) DO UPDATE SET c = excluded.c`, Django's
    /// `update_conflicts`). `updated` is updated with them.
    Update {
        /// The unique columns that collide.
        target: Vec<&'static str>,
        /// The columns to overwrite.
        set: Vec<&'static str>,
    },
}

/// Options of [`QuerySet::bulk_create_with`]; `BulkCreate::default()` is what
/// [`QuerySet::bulk_create`] uses.
#[derive(Debug, Clone)]
pub struct BulkCreate<M> {
    batch_size: Option<usize>,
    conflict: Conflict,
    method: InsertMethod,
    keep_timestamps: bool,
    _model: PhantomData<fn() -> M>,
}

impl<M> Default for BulkCreate<M> {
    fn default() -> Self {
        Self {
            batch_size: None,
            conflict: Conflict::Error,
            method: InsertMethod::Insert,
            keep_timestamps: false,
            _model: PhantomData,
        }
    }
}

impl<M: Model> BulkCreate<M> {
    /// The defaults: chunked `INSERT ... RETURNING`, conflicts are errors,
    /// timestamps set to now.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `rows` rows per statement (still never over the bind limit).
    #[must_use]
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows);
        self
    }

    /// Skips rows that collide with an existing row on any unique column.
    #[must_use]
    pub fn ignore_conflicts(mut self) -> Self {
        self.conflict = Conflict::Ignore;
        self
    }

    /// Where a row collides on `target` (a unique column, or a tuple of the columns
    /// of one unique index), overwrites the existing row's `set` columns (and
    /// `updated`) with the new row's: an upsert.
    ///
    /// It honours the queryset it is called on: an existing row its filters leave
    /// out is not changed (`DO UPDATE SET ... WHERE ...`), and through `objects()`
    /// of a soft-delete model, which sees live rows only, a colliding soft-deleted
    /// row is made live again (its soft-delete column takes the new row's value,
    /// `false` unless the row says otherwise); through `with_deleted()` that column
    /// is left as it is.
    #[must_use]
    pub fn update_conflicts<T, S>(mut self, target: T, set: S) -> Self
    where
        T: Columns<M::Table>,
        S: Columns<M::Table>,
    {
        let mut set = set.names();
        if let Some(updated) = M::updated_column() {
            if !set.contains(&updated.name) {
                set.push(updated.name);
            }
        }
        self.conflict = Conflict::Update {
            target: target.names(),
            set,
        };
        self
    }

    /// How the rows are sent (default [`InsertMethod::Insert`]).
    #[must_use]
    pub fn method(mut self, method: InsertMethod) -> Self {
        self.method = method;
        self
    }

    /// Keeps the rows' own `created`/`updated` values instead of setting them to now
    /// (imports, fixtures with history).
    #[must_use]
    pub fn keep_timestamps(mut self) -> Self {
        self.keep_timestamps = true;
        self
    }

    /// The conflict handling in effect.
    pub fn conflict(&self) -> &Conflict {
        &self.conflict
    }

    fn on_conflict(&self) -> Option<OnConflict> {
        match &self.conflict {
            Conflict::Error => None,
            Conflict::Ignore => Some(OnConflict::Ignore { target: Vec::new() }),
            Conflict::Update { target, set } => Some(OnConflict::Update {
                target: target.clone(),
                set: set.clone(),
                filters: Vec::new(),
            }),
        }
    }

    fn uses_copy(
        &self,
        capability: &'static Capability,
        rows: usize,
        adds_timestamps: bool,
    ) -> Result<bool> {
        match self.method {
            InsertMethod::Insert => Ok(false),
            InsertMethod::Copy if adds_timestamps => Err(Error::InvalidArgument {
                argument: "method",
                reason: "rows without timestamp fields (add_timestamps) are inserted, not copied",
            }),
            InsertMethod::Copy => {
                capability.require(capability.copy_from, "COPY")?;
                if self.conflict != Conflict::Error {
                    return Err(Error::InvalidArgument {
                        argument: "method",
                        reason: "COPY cannot skip or update conflicting rows",
                    });
                }
                Ok(true)
            }
            InsertMethod::Auto => Ok(capability.copy_from
                && !adds_timestamps
                && self.conflict == Conflict::Error
                && rows >= COPY_THRESHOLD),
        }
    }
}

/// What a `bulk_create` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created<K = i64> {
    /// How many rows were inserted (skipped conflicts not counted; upserted rows
    /// counted).
    pub rows: usize,
    /// The primary keys of the inserted (or upserted) rows, skipped rows left out,
    /// in the order `RETURNING` reports them: the input order on both backends (the
    /// test suite checks it), though neither documents it as a guarantee. Empty when
    /// the rows went by `COPY`, which reports no ids.
    pub ids: Vec<K>,
}

impl<M: Model> QuerySet<M> {
    /// Inserts one row; returns its primary key. `created` and `updated` are set to
    /// now. One statement: `INSERT INTO t (...) VALUES (...) RETURNING id`.
    ///
    /// # Errors
    /// [`Error::Query`] when the database rejects the row (a unique or foreign-key
    /// violation: see [`Error::is_unique_violation`]).
    #[track_caller]
    pub fn create<R: NewRow<Model = M>>(
        &self,
        conn: &mut impl AsConnection,
        mut row: R,
    ) -> Result<M::Key> {
        let conn = conn.connection();
        let capability = conn.backend().capability();
        capability.require(capability.returning, "INSERT ... RETURNING")?;
        row.set_timestamps(chrono::Utc::now().naive_utc());
        let statement = insert_statement::<M>(conn.backend(), vec![row.row_values()], None);
        let site = Location::caller();
        let insert =
            |conn: &mut AnyConnection| run(site, || M::Key::load_returned(&statement, conn));
        let ids = if capability.database_write_lock {
            // SQLite reports no error of a statement that returns rows to the
            // instrumentation: the wait for the lock happens at `BEGIN IMMEDIATE`,
            // where a busy database is told apart.
            crate::atomic(conn, insert)?
        } else {
            insert(conn)?
        };
        ids.into_iter()
            .next()
            .ok_or(Error::Query(diesel::result::Error::NotFound))
    }

    /// Inserts one row and returns it as the database stored it: its key, column
    /// defaults and `created`/`updated` (Django's `create`). One statement,
    /// `INSERT INTO t (...) VALUES (...) RETURNING <the model's columns>`:
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    ///
    /// #[derive(diesel::Insertable)]
    /// #[diesel(table_name = weave_thread, treat_none_as_default_value = false)]
    /// struct NewThread { title: String, deleted: bool, created: chrono::NaiveDateTime, updated: chrono::NaiveDateTime }
    /// orm::insertable! { NewThread => Thread, timestamps: (created, updated) }
    ///
    /// let row = NewThread { title: "Looms".into(), deleted: false, created: Default::default(), updated: Default::default() };
    /// let (thread, captured) = orm::capture(|| Thread::objects().create_returning(&mut conn, row));
    /// let thread = thread?;
    /// assert_eq!((thread.id, thread.title.as_str(), captured.len()), (3, "Looms", 1));
    /// assert!(thread.created > chrono::NaiveDateTime::default()); // set to now by the write
    /// assert!(captured.sql()[0].ends_with(
    ///     "RETURNING `weave_thread`.`id`, `weave_thread`.`created`, `weave_thread`.`updated`, `weave_thread`.`deleted`, `weave_thread`.`title`"
    /// ));
    /// // PostgreSQL: ... RETURNING "weave_thread"."id", "weave_thread"."created", ...
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`create`](Self::create).
    #[track_caller]
    pub fn create_returning<R: NewRow<Model = M>>(
        &self,
        conn: &mut impl AsConnection,
        mut row: R,
    ) -> Result<M> {
        let conn = conn.connection();
        let capability = conn.backend().capability();
        capability.require(capability.returning, "INSERT ... RETURNING")?;
        row.set_timestamps(chrono::Utc::now().naive_utc());
        let mut statement =
            insert_statement::<M>(conn.backend(), vec![row.into_row_values()], None);
        statement.returning_row = Some(Arc::new(
            <M as diesel::Selectable<crate::Db>>::construct_selection(),
        ));
        let statement = crate::fragment::Statement(Arc::new(statement));
        let site = Location::caller();
        let insert = |conn: &mut AnyConnection| run(site, || M::load_statement(&statement, conn));
        let rows = if capability.database_write_lock {
            crate::atomic(conn, insert)?
        } else {
            insert(conn)?
        };
        rows.into_iter()
            .next()
            .ok_or(Error::Query(diesel::result::Error::NotFound))
    }

    /// Inserts many rows, as few statements as the bind limit allows, all in one
    /// transaction; returns their primary keys in input order (see [`Created::ids`]). `created` and
    /// `updated` are set to now (see [`BulkCreate::keep_timestamps`]).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    ///
    /// #[derive(diesel::Insertable)]
    /// #[diesel(table_name = weave_thread, treat_none_as_default_value = false)]
    /// struct NewThread { title: String, deleted: bool, created: chrono::NaiveDateTime, updated: chrono::NaiveDateTime }
    /// orm::insertable! { NewThread => Thread, timestamps: (created, updated) }
    ///
    /// let rows = (0..3)
    ///     .map(|i| NewThread { title: format!("t{i}"), deleted: false, created: Default::default(), updated: Default::default() })
    ///     .collect();
    /// let (ids, captured) = orm::capture(|| Thread::objects().bulk_create(&mut conn, rows));
    /// assert_eq!(ids?, [3, 4, 5]);
    /// assert_eq!(captured.len(), 1); // one INSERT (BEGIN/COMMIT are not counted)
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["INSERT INTO `weave_thread` (`title`, `deleted`, `created`, `updated`) VALUES (?, ?, ?, ?), (?, ?, ?, ?), (?, ?, ?, ?) RETURNING `id`"]
    /// );
    /// // On PostgreSQL: INSERT INTO "weave_thread" ("title", "deleted", "created", "updated")
    /// //   VALUES ($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12) RETURNING "id"
    /// let new = Thread::objects().filter(weave_thread::id.eq(3)).get(&mut conn)?;
    /// assert!(new.created.and_utc().timestamp() > 1_700_000_000); // now, not the default
    /// assert_eq!(new.created, new.updated);
    ///
    /// let rows = vec![NewThread { title: "t".into(), deleted: false, created: Default::default(), updated: Default::default() }];
    /// assert_eq!(
    ///     Thread::objects().bulk_create_sql(Backend::Postgres, &rows, &Default::default())?,
    ///     r#"INSERT INTO "weave_thread" ("title", "deleted", "created", "updated") VALUES ($1, $2, $3, $4) RETURNING "id""#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BulkWrite`] naming the row the database rejected (each chunk runs in
    /// a savepoint; a failed one is re-sent in halves, each rolled back, to find the
    /// row) and its chunk, with PostgreSQL's detail naming the offending key;
    /// nothing is written.
    ///
    /// ### Notes
    /// An empty `rows` sends nothing. Rows per statement: the bind limit
    /// ([`Capability::max_bind_params`](crate::Capability), 32,766 on SQLite, 65,535
    /// on PostgreSQL) divided by the columns of a row.
    #[track_caller]
    #[doc(alias = "insert_many")]
    pub fn bulk_create<R: NewRow<Model = M>>(
        &self,
        conn: &mut impl AsConnection,
        rows: Vec<R>,
    ) -> Result<Vec<M::Key>> {
        let conn = conn.connection();
        self.bulk_create_at(conn, rows, &BulkCreate::new(), Location::caller())
            .map(|created| created.ids)
    }

    /// [`bulk_create`](Self::bulk_create) with options: batch size, conflict
    /// handling (ignore, upsert), `COPY`, kept timestamps.
    ///
    /// | option | SQL (both backends unless noted) |
    /// |---|---|
    /// | default | `INSERT INTO t (cols) VALUES (...), ... RETURNING "id"` |
    /// | [`ignore_conflicts`](BulkCreate::ignore_conflicts) | `... ON CONFLICT DO NOTHING RETURNING "id"` |
    /// | [`update_conflicts`](BulkCreate::update_conflicts) | `... ON CONFLICT ("email_address") DO UPDATE SET "first_name" = excluded."first_name", "updated" = excluded."updated" RETURNING "id"` |
    /// | [`InsertMethod::Copy`] | PostgreSQL: `COPY "t"("c", ...) FROM STDIN WITH (FORMAT binary)` (one statement for any number of rows); SQLite: [`Error::Unsupported`] |
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use orm::bulk::BulkCreate;
    ///
    /// #[derive(diesel::Insertable)]
    /// #[diesel(table_name = weave_person, treat_none_as_default_value = false)]
    /// struct NewPerson { first_name: String, last_name: String, email_address: String, deleted: bool, created: chrono::NaiveDateTime, updated: chrono::NaiveDateTime }
    /// orm::insertable! { NewPerson => Person, timestamps: (created, updated) }
    /// let person = |first: &str, email: &str| NewPerson {
    ///     first_name: first.into(), last_name: "X".into(), email_address: email.into(),
    ///     deleted: false, created: Default::default(), updated: Default::default(),
    /// };
    ///
    /// // ada@example.org exists: her first name is updated, Grace is inserted.
    /// let upsert = BulkCreate::new()
    ///     .update_conflicts((weave_person::email_address,), (weave_person::first_name,));
    /// let created = Person::objects().bulk_create_with(
    ///     &mut conn,
    ///     vec![person("Augusta", "ada@example.org"), person("Grace", "grace@example.org")],
    ///     &upsert,
    /// )?;
    /// assert_eq!(created.ids, [1, 3]);
    /// assert_eq!(Person::objects().filter(weave_person::id.eq(1)).get(&mut conn)?.first_name, "Augusta");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::BulkWrite`] as `bulk_create`; [`Error::Unsupported`] for `COPY` on
    /// SQLite; [`Error::InvalidArgument`] for `COPY` with conflict handling or a
    /// batch size of 0.
    #[track_caller]
    pub fn bulk_create_with<R: NewRow<Model = M>>(
        &self,
        conn: &mut impl AsConnection,
        rows: Vec<R>,
        options: &BulkCreate<M>,
    ) -> Result<Created<M::Key>> {
        let conn = conn.connection();
        self.bulk_create_at(conn, rows, options, Location::caller())
    }

    /// The `INSERT` that [`bulk_create_with`](Self::bulk_create_with) sends for the
    /// first chunk of `rows` on `backend` (`COPY` aside), placeholders included.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// use orm::bulk::BulkCreate;
    /// #[derive(diesel::Insertable)]
    /// #[diesel(table_name = weave_person, treat_none_as_default_value = false)]
    /// struct NewPerson { first_name: String, email_address: String }
    /// orm::insertable! { NewPerson => Person }
    /// let rows = [NewPerson { first_name: "Ada".into(), email_address: "ada@example.org".into() }];
    /// let skip = BulkCreate::new().ignore_conflicts();
    /// assert_eq!(
    ///     Person::objects().bulk_create_sql(Backend::Sqlite, &rows, &skip)?,
    ///     "INSERT INTO `weave_person` (`first_name`, `email_address`) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING `id`"
    /// );
    /// let upsert = BulkCreate::new().update_conflicts((weave_person::email_address,), (weave_person::first_name,));
    /// assert_eq!(
    ///     Person::objects().bulk_create_sql(Backend::Postgres, &rows, &upsert)?,
    ///     r#"INSERT INTO "weave_person" ("first_name", "email_address") VALUES ($1, $2) ON CONFLICT ("email_address") DO UPDATE SET "first_name" = excluded."first_name", "updated" = excluded."updated", "deleted" = excluded."deleted" RETURNING "id""#
    /// );
    /// // Through objects() a colliding soft-deleted person is made live again
    /// // ("deleted" takes the new row's value, its default false); with_deleted()
    /// // leaves it as it is, and filters of the queryset become DO UPDATE ... WHERE:
    /// assert_eq!(
    ///     Person::objects().with_deleted().filter(weave_person::last_name.eq("Lovelace")).bulk_create_sql(Backend::Sqlite, &rows, &upsert)?,
    ///     "INSERT INTO `weave_person` (`first_name`, `email_address`) VALUES (?, ?) ON CONFLICT (`email_address`) DO UPDATE SET `first_name` = excluded.`first_name`, `updated` = excluded.`updated` WHERE ((`weave_person`.`last_name` = ?)) RETURNING `id`"
    /// );
    /// # Ok(()) }
    /// ```
    pub fn bulk_create_sql<R: NewRow<Model = M>>(
        &self,
        backend: Backend,
        rows: &[R],
        options: &BulkCreate<M>,
    ) -> Result<String> {
        let Some(first) = rows.first() else {
            return Err(Error::InvalidArgument {
                argument: "rows",
                reason: "no rows, no statement",
            });
        };
        let chunk = rows_per_statement(backend, binds_per_row(first, backend)?, options.batch_size);
        let statement = insert_statement::<M>(
            backend,
            rows.iter().take(chunk).map(NewRow::row_values).collect(),
            self.upsert(options.on_conflict()),
        );
        Ok(render(&statement, backend)?)
    }

    /// The conflict handling on this queryset: an upsert changes only the rows the
    /// queryset's filters keep (`DO UPDATE ... WHERE`), and through `objects()`,
    /// which sees live rows only, it makes the row live: a colliding soft-deleted
    /// row takes the new row's soft-delete column too (`deleted = excluded.deleted`).
    fn upsert(&self, on_conflict: Option<OnConflict>) -> Option<OnConflict> {
        match on_conflict {
            Some(OnConflict::Update {
                target, mut set, ..
            }) => {
                if let Some(deleted) = M::soft_delete_column() {
                    if self.deleted_rows() == crate::Deleted::Hide && !set.contains(&deleted.name) {
                        set.push(deleted.name);
                    }
                }
                Some(OnConflict::Update {
                    target,
                    set,
                    filters: self.user_filters(),
                })
            }
            other => other,
        }
    }

    fn bulk_create_at<R: NewRow<Model = M>>(
        &self,
        conn: &mut AnyConnection,
        mut rows: Vec<R>,
        options: &BulkCreate<M>,
        site: &'static Location<'static>,
    ) -> Result<Created<M::Key>> {
        if options.batch_size == Some(0) {
            return Err(Error::InvalidArgument {
                argument: "batch_size",
                reason: "must be at least 1",
            });
        }
        let backend = conn.backend();
        let use_copy = options.uses_copy(
            Capability::of_connection(conn),
            rows.len(),
            R::ADDS_TIMESTAMPS,
        )?;
        if rows.is_empty() {
            return Ok(Created {
                rows: 0,
                ids: Vec::new(),
            });
        }
        if !options.keep_timestamps {
            let now = chrono::Utc::now().naive_utc();
            rows.iter_mut().for_each(|row| row.set_timestamps(now));
        }
        let total_rows = rows.len();
        if use_copy {
            return bulk_atomic(conn, |conn| {
                // One COPY for all rows: the chunk is the whole input; PostgreSQL's
                // detail names the offending key.
                let span = ChunkSpan {
                    operation: "bulk_create",
                    chunk: 0,
                    first_row: 0,
                    end_row: total_rows,
                    total_rows,
                };
                // In a savepoint: when the COPY fails with no kind the library can
                // name, the rows are tried again as INSERTs (each probe rolled back)
                // to find the row and its typed error (a NUL character in text, say).
                let copied = crate::atomic(conn, |conn| match conn {
                    AnyConnection::Postgresql(pg) => run(site, || R::copy_in(&rows, pg)),
                    // `uses_copy` refused a backend without COPY already.
                    AnyConnection::Sqlite(_) => Err(Error::Unsupported {
                        backend,
                        feature: "COPY",
                    }),
                });
                match copied {
                    Ok(written) => Ok(Created {
                        rows: written,
                        ids: Vec::new(),
                    }),
                    // Probing costs up to about three times the rows, each probe
                    // rolled back: only for inputs up to `COPY_DIAGNOSIS_ROWS`.
                    Err(e)
                        if e.db_kind() == Some(crate::DbErrorKind::Other)
                            && total_rows <= COPY_DIAGNOSIS_ROWS =>
                    {
                        let chunk =
                            rows_per_statement(backend, binds_per_row(&rows[0], backend)?, None);
                        let mut insert = |conn: &mut AnyConnection, n: usize| -> Result<usize> {
                            let mut written = 0;
                            for part in rows[..n].chunks(chunk) {
                                let statement = insert_statement::<M>(
                                    backend,
                                    part.iter().map(NewRow::row_values).collect(),
                                    None,
                                );
                                written += run(site, || statement.execute(conn))?;
                            }
                            Ok(written)
                        };
                        Err(
                            match super::failure::diagnose(conn, total_rows, &mut insert) {
                                Some((row, typed)) => bulk_error(span, Some(row), typed),
                                None => bulk_error(span, None, e),
                            },
                        )
                    }
                    Err(e) => Err(bulk_error(span, None, e)),
                }
            });
        }
        let chunk = rows_per_statement(
            backend,
            binds_per_row(&rows[0], backend)?,
            options.batch_size,
        );
        let on_conflict = self.upsert(options.on_conflict());
        bulk_atomic(conn, |conn| {
            let mut ids = Vec::with_capacity(total_rows);
            let mut written = 0;
            for (index, part) in rows.chunks(chunk).enumerate() {
                let span = ChunkSpan {
                    operation: "bulk_create",
                    chunk: index,
                    first_row: index * chunk,
                    end_row: index * chunk + part.len(),
                    total_rows,
                };
                let returned = run_chunk(conn, span, |conn, n| {
                    let statement = insert_statement::<M>(
                        backend,
                        part[..n].iter().map(NewRow::row_values).collect(),
                        on_conflict.clone(),
                    );
                    if statement.returning.is_some() {
                        run(site, || M::Key::load_returned(&statement, conn)).map(Returned::Keys)
                    } else {
                        // No ids to report: count the rows instead.
                        run(site, || statement.execute(conn)).map(Returned::Count)
                    }
                })?;
                match returned {
                    Returned::Keys(keys) => {
                        written += keys.len();
                        ids.extend(keys);
                    }
                    Returned::Count(n) => written += n,
                }
            }
            Ok(Created { rows: written, ids })
        })
    }
}

/// What one chunk's `INSERT` gave back: the keys it returned, or the rows it wrote.
enum Returned<K> {
    Keys(Vec<K>),
    Count(usize),
}

/// The multi-row `INSERT`, with `RETURNING` the primary key where the backend has it
/// ([`Capability::returning`](crate::Capability)).
fn insert_statement<M: Model>(
    backend: Backend,
    rows: Vec<super::new_row::RowValues<'_>>,
    on_conflict: Option<OnConflict>,
) -> InsertRows<'_> {
    InsertRows {
        table: Arc::new(M::Table::default()),
        rows,
        on_conflict,
        returning: backend
            .capability()
            .returning
            .then_some(<M::PrimaryKey as Column>::NAME),
        returning_row: None,
    }
}

/// How many bind parameters one row takes: its values rendered for `backend` (a
/// row's values list holds placeholders and `DEFAULT` only: `?` on SQLite, `$n` on
/// PostgreSQL), so PostgreSQL-only rows count too.
fn binds_per_row<R: NewRow>(row: &R, backend: Backend) -> Result<usize> {
    let values = row.row_values();
    let sql = render(&values, backend)?;
    Ok(sql.matches(backend.dialect().placeholder).count().max(1))
}

/// Rows per statement: as many as the bind limit allows, at most `batch_size`.
pub(crate) fn rows_per_statement(
    backend: Backend,
    binds_per_row: usize,
    batch_size: Option<usize>,
) -> usize {
    let fit = (backend.capability().max_bind_params / binds_per_row.max(1)).max(1);
    batch_size.map_or(fit, |b| b.min(fit))
}

/// Runs a bulk write in one transaction ([`atomic`](crate::atomic)). When the write
/// is its own transaction on PostgreSQL, deferred constraints (the demo's foreign
/// keys are `DEFERRABLE INITIALLY DEFERRED`) are checked per statement
/// (`SET CONSTRAINTS ALL IMMEDIATE`), so a violation fails the chunk that caused
/// it, not the `COMMIT`. Inside a caller's transaction its deferral is left alone.
pub(crate) fn bulk_atomic<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T>,
) -> Result<T> {
    use diesel::connection::TransactionManager;
    type Manager = <AnyConnection as diesel::Connection>::TransactionManager;
    let outermost = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_none();
    crate::atomic(conn, |conn| {
        if outermost {
            let deferrable = Capability::of_connection(conn).deferrable_constraints;
            if let Some(immediate) = conn
                .backend()
                .dialect()
                .constraints_immediate
                .filter(|_| deferrable)
            {
                crate::instrument::session(|| {
                    diesel::connection::SimpleConnection::batch_execute(conn, immediate)
                })?;
            }
        }
        f(conn)
    })
}
