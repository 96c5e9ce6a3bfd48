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

/// Whether `conn` is inside a transaction (an `atomic` block, diesel's
/// `transaction`, a stream's own).
pub(crate) fn in_transaction(conn: &mut AnyConnection) -> Result<bool> {
    Ok(Manager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(Error::from)?
        .is_some())
}

/// A transaction's isolation level ([`TransactionOptions::isolation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each statement sees what was committed before it began (PostgreSQL's
    /// default).
    ReadCommitted,
    /// Every statement sees the snapshot of the transaction's first statement.
    RepeatableRead,
    /// As if the transactions ran one after another; a conflict fails with
    /// [`DbErrorKind::SerializationFailure`](crate::DbErrorKind::SerializationFailure),
    /// which [`TransactionOptions::retries`] retries.
    Serializable,
}

impl Isolation {
    fn sql(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => " ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => " ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => " ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// How [`atomic_with`] begins its transaction.
///
/// | | PostgreSQL | SQLite |
/// |---|---|---|
/// | default | `BEGIN` | `BEGIN IMMEDIATE` (the write lock up front) |
/// | `isolation(..)` | `BEGIN ISOLATION LEVEL ...` | accepted: SQLite's transactions are serializable |
/// | `read_only()` | `BEGIN READ ONLY` | `BEGIN DEFERRED` and `PRAGMA query_only` for its length: no write lock, writes refused |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransactionOptions {
    isolation: Option<Isolation>,
    read_only: bool,
    retries: u32,
}

impl TransactionOptions {
    /// The defaults: the backend's isolation, read-write, no retry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The isolation level.
    #[must_use]
    pub fn isolation(mut self, level: Isolation) -> Self {
        self.isolation = Some(level);
        self
    }

    /// A read-only transaction: writes fail, and on SQLite it takes no write lock,
    /// so writers on other connections go on meanwhile.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Runs the closure again, in a new transaction, up to `n` more times when the
    /// transaction fails with an error whose kind
    /// [`is_retryable`](crate::DbErrorKind::is_retryable) (a serialization failure;
    /// SQLite's busy database).
    #[must_use]
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    fn is_default_begin(&self) -> bool {
        self.isolation.is_none() && !self.read_only
    }
}

/// [`atomic`] with [`TransactionOptions`]: an isolation level, read-only, retries
/// of serialization failures. The closure may run more than once (with retries), so
/// it is `FnMut` and should do nothing outside the database it cannot repeat.
///
/// ```
/// # include!("../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// use orm::{atomic_with, Isolation, TransactionOptions};
/// let options = TransactionOptions::new().isolation(Isolation::Serializable).retries(3);
/// let moved = atomic_with(&mut conn, options, |conn| {
///     let n = Message::objects().filter(weave_message::thread_id.eq(1)).count(conn)?;
///     Thread::objects().filter(weave_thread::id.eq(2)).update(conn, weave_thread::title.eq(format!("{n} before")))
/// })?;
/// assert_eq!(moved, 1);
/// let read = atomic_with(&mut conn, TransactionOptions::new().read_only(), |conn| Thread::objects().count(conn))?;
/// assert_eq!(read, 2);
/// # Ok(()) }
/// ```
///
/// # Errors
/// The closure's error (after the last retry); [`Error::InvalidArgument`] for
/// options inside another transaction, where the transaction would be a savepoint
/// that cannot take them.
pub fn atomic_with<T>(
    conn: &mut AnyConnection,
    options: TransactionOptions,
    mut f: impl FnMut(&mut AnyConnection) -> Result<T>,
) -> Result<T> {
    let outermost = !in_transaction(conn)?;
    if !outermost && (!options.is_default_begin() || options.retries > 0) {
        return Err(Error::InvalidArgument {
            argument: "options",
            reason: "isolation, read-only and retries apply to an outermost transaction, \
                     and this one would be a savepoint",
        });
    }
    if options.is_default_begin() {
        return retrying(options.retries, || atomic(conn, &mut f));
    }
    retrying(options.retries, || run_with(conn, options, &mut f))
}

fn retrying<T>(retries: u32, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let mut left = retries;
    loop {
        match attempt() {
            Err(error) if left > 0 && error.db_kind().is_some_and(|k| k.is_retryable()) => {
                left -= 1;
                tracing::debug!(%error, left, "retrying the transaction");
            }
            result => return result,
        }
    }
}

/// One outermost transaction begun with `options`.
fn run_with<T>(
    conn: &mut AnyConnection,
    options: TransactionOptions,
    f: &mut impl FnMut(&mut AnyConnection) -> Result<T>,
) -> Result<T> {
    let sqlite_read_only = options.read_only && !conn.backend().dialect().row_locks;
    let begin = if conn.backend().dialect().row_locks {
        let mut sql = String::from("BEGIN");
        if let Some(level) = options.isolation {
            sql.push_str(level.sql());
        }
        if options.read_only {
            sql.push_str(" READ ONLY");
        }
        sql
    } else if options.read_only {
        "BEGIN DEFERRED".to_owned()
    } else {
        conn.backend()
            .dialect()
            .begin_write
            .unwrap_or("BEGIN")
            .to_owned()
    };
    crate::with_inner!(&mut *conn, |inner| {
        AnsiTransactionManager::begin_transaction_sql(inner, &begin)
    })?;
    if sqlite_read_only {
        if let Err(error) = set_query_only(conn, true) {
            let _ = Manager::rollback_transaction(conn);
            return Err(error);
        }
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| f(conn)));
    let result = match outcome {
        Ok(Ok(value)) => Manager::commit_transaction(conn)
            .map(|()| value)
            .map_err(Error::from),
        Ok(Err(error)) => {
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
        Err(panic) => {
            let _ = Manager::rollback_transaction(conn);
            if sqlite_read_only {
                let _ = set_query_only(conn, false);
            }
            resume_unwind(panic)
        }
    };
    if sqlite_read_only {
        // A connection-wide setting: the pool's next user must be able to write.
        set_query_only(conn, false)?;
    }
    result
}

/// SQLite's `PRAGMA query_only`, which refuses writes on the connection.
fn set_query_only(conn: &mut AnyConnection, on: bool) -> Result<()> {
    use diesel::connection::SimpleConnection as _;
    conn.batch_execute(if on {
        "PRAGMA query_only = 1"
    } else {
        "PRAGMA query_only = 0"
    })
    .map_err(Error::from)
}
