//! `atomic`: closure-based transactions that nest with savepoints.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;

use crate::connection::AnyConnection;
use crate::error::{Error, Result};

type Manager = <AnyConnection as Connection>::TransactionManager;

/// Runs `f` in a transaction: committed when it returns `Ok`, rolled back when it
/// returns `Err` or panics (the panic then continues). Nested calls use savepoints,
/// so an inner failure rolls back only the inner work.
///
/// On SQLite the outermost transaction starts with `BEGIN IMMEDIATE`: it takes the
/// write lock at once, so concurrent writers wait (up to the busy timeout) instead of
/// failing with "database is locked" halfway through. PostgreSQL uses `BEGIN`.
///
/// ```
/// # include!("../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// let result: orm::Result<()> = orm::atomic(&mut conn, |conn| {
///     Thread::objects().delete(conn)?;
///     Err(orm::Error::NotFound { model: "Thread" }) // roll back
/// });
/// assert!(result.is_err());
/// assert_eq!(Thread::objects().count(&mut conn)?, 2);
/// # Ok(()) }
/// ```
///
/// # Errors
/// `f`'s error, or [`Error::Query`] when `BEGIN`/`COMMIT` fails.
pub fn atomic<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<Error>,
{
    let outermost = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(Error::from)?
        .is_none();
    match conn.backend().dialect().begin_write.filter(|_| outermost) {
        Some(begin) => crate::with_inner!(&mut *conn, |inner| {
            AnsiTransactionManager::begin_transaction_sql(inner, begin)
        })
        .map_err(Error::from)?,
        None => Manager::begin_transaction(conn).map_err(Error::from)?,
    }
    match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(Ok(value)) => {
            Manager::commit_transaction(conn).map_err(Error::from)?;
            Ok(value)
        }
        Ok(Err(error)) => {
            // The closure's error is the one to report; a failed rollback marks the
            // connection broken and the pool discards it.
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
        Err(panic) => {
            let _ = Manager::rollback_transaction(conn);
            resume_unwind(panic)
        }
    }
}
