//! `get_or_create` and `update_or_create`: race-safe given a unique constraint on
//! what the queryset looks up.

use std::panic::Location;

use diesel::query_builder::{AsChangeset, QueryFragment};

use super::statement::RowLock;
use super::QuerySet;
use crate::bulk::NewRow;
use crate::connection::{AnyConnection, AsConnection, Db};
use crate::error::Result;
use crate::instrument::with_site;
use crate::model::Model;
use crate::relations::pk_eq;

impl<M: Model> QuerySet<M> {
    /// The queryset's one row, or `row` inserted when it has none (Django's
    /// `get_or_create`): `(row, created)`.
    ///
    /// One `SELECT` when the row exists; otherwise an `INSERT ... RETURNING` in a
    /// savepoint (a transaction of its own outside one). Given a unique constraint
    /// on the columns the queryset filters by, concurrent callers cannot both
    /// insert: the one whose `INSERT` fails with a unique violation rolls its
    /// savepoint back and reads the winner's row. Without such a constraint two
    /// callers may both insert, as with Django. `row` should match the queryset's
    /// filters; it is not checked.
    ///
    /// A row the queryset does not see (soft-deleted, or outside its filters) that
    /// holds the unique value is not returned: the `INSERT` fails and the unique
    /// violation is the error ([`Error::is_unique_violation`](crate::Error::is_unique_violation)).
    /// Look it up with `with_deleted()` to restore it.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// #[derive(diesel::Insertable)]
    /// #[diesel(table_name = weave_thread)]
    /// struct NewThread { title: String }
    /// orm::insertable! { NewThread => Thread, add_timestamps }
    ///
    /// let named = |title: &str| Thread::objects().filter(weave_thread::title.eq(title.to_owned()));
    /// let new = |title: &str| NewThread { title: title.into() };
    /// let (engines, created) = named("Engines").get_or_create(&mut conn, new("Engines"))?;
    /// assert_eq!((engines.id, created), (1, false));
    /// let (looms, created) = named("Looms").get_or_create(&mut conn, new("Looms"))?;
    /// assert_eq!((looms.id, created), (3, true));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::MultipleObjectsReturned`](crate::Error::MultipleObjectsReturned)
    /// when the queryset has several rows; the `INSERT`'s error (a unique violation
    /// on a row the queryset does not see, a foreign key, ...); [`Error::Query`](crate::Error::Query).
    #[track_caller]
    pub fn get_or_create<R: NewRow<Model = M>>(
        &self,
        conn: &mut impl AsConnection,
        row: R,
    ) -> Result<(M, bool)> {
        let conn = conn.connection();
        with_site(Location::caller(), || {
            if let Some(found) = self.find(conn)? {
                return Ok((found, false));
            }
            match crate::atomic(conn, |conn| M::objects().create_returning(conn, row)) {
                Ok(created) => Ok((created, true)),
                Err(error) if error.is_unique_violation() => match self.find(conn)? {
                    Some(found) => Ok((found, false)),
                    None => Err(error),
                },
                Err(error) => Err(error),
            }
        })
    }

    /// Updates the queryset's one row with `changes`, or inserts `row` when it has
    /// none (Django's `update_or_create`): `(row as stored, created)`.
    ///
    /// In one transaction (a savepoint inside one): the row is read with
    /// `SELECT ... FOR UPDATE` (PostgreSQL; SQLite's transaction holds the write lock
    /// from its start), then updated by primary key, `updated` set as by
    /// [`update`](Self::update), and read again; or `row` is inserted, and on a
    /// unique violation (a concurrent caller inserted it first) the winner's row is
    /// locked and updated instead. Race-safe given a unique constraint on the
    /// looked-up columns, as [`get_or_create`](Self::get_or_create); a soft-deleted
    /// row holding the unique value is the same unique-violation error.
    ///
    /// # Errors
    /// As [`get_or_create`](Self::get_or_create).
    #[track_caller]
    pub fn update_or_create<C, R>(
        &self,
        conn: &mut impl AsConnection,
        changes: C,
        row: R,
    ) -> Result<(M, bool)>
    where
        C: AsChangeset<Target = M::Table>,
        C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
        R: NewRow<Model = M>,
    {
        let conn = conn.connection();
        let locked = self.clone().select_for_update(RowLock::update());
        with_site(Location::caller(), || {
            crate::atomic(conn, |conn| {
                if let Some(found) = locked.find(conn)? {
                    return Ok((update_found(conn, found, changes)?, false));
                }
                match crate::atomic(conn, |conn| M::objects().create_returning(conn, row)) {
                    Ok(created) => Ok((created, true)),
                    Err(error) if error.is_unique_violation() => match locked.find(conn)? {
                        Some(found) => Ok((update_found(conn, found, changes)?, false)),
                        None => Err(error),
                    },
                    Err(error) => Err(error),
                }
            })
        })
    }

    /// The queryset's one row, `None` when it has none.
    fn find(&self, conn: &mut AnyConnection) -> Result<Option<M>> {
        match self.get(conn) {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// `found` updated with `changes`, as stored.
fn update_found<M: Model, C>(conn: &mut AnyConnection, found: M, changes: C) -> Result<M>
where
    C: AsChangeset<Target = M::Table>,
    C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
{
    let by_key = M::objects()
        .with_deleted()
        .unordered()
        .filter_fragment(pk_eq::<M>(found.pk()));
    by_key.update(conn, changes)?;
    by_key.get(conn)
}
