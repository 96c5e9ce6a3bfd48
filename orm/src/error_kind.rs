//! Database errors by kind, read from what the driver reports as codes, never from
//! message text (which follows the server's `lc_messages`).
//!
//! | kind | PostgreSQL | SQLite |
//! |---|---|---|
//! | unique, foreign-key, not-null, check violation | SQLSTATE 23505, 23503, 23502, 23514 (diesel's kinds), with the constraint name | extended result code (diesel's kinds); no constraint name; `ON DELETE RESTRICT`: see below |
//! | restrict, exclusion violation | SQLSTATE 23001, 23P01 | — |
//! | serialization failure | SQLSTATE 40001 | — |
//! | read-only transaction | SQLSTATE 25006 | — |
//! | connection lost | SQLSTATE class 08, or libpq's connection status | — |
//! | statement timeout | the pool's own [`statement_timeout`](crate::DatabaseBuilder::statement_timeout): a statement that failed without a known code after running at least that long | — (no statement timeout) |
//! | busy | — | the pool's own [`busy_timeout`](crate::DatabaseBuilder::busy_timeout): a statement that failed without a known code after waiting at least that long |
//!
//! One exception reads text: SQLite's `ON DELETE RESTRICT` violation (see
//! `SQLITE_RESTRICT_RAISE` in the source), a fixed string of SQLite's own.
//!
//! Two more kinds are read from the failed statement's own bound values, on failure
//! only: [`DbErrorKind::NulInText`] (PostgreSQL rejected text holding `\0`; SQLite
//! stores it) and [`DbErrorKind::TooManyBinds`] (more values than the backend takes).
//!
//! Not told apart, because diesel 2.3 reports them with no code (a stated limit):
//! PostgreSQL's deadlock (40P01), a cancel from elsewhere (57014 without our
//! timeout), too many connections (53300, a connection error: text only); SQLite's
//! immediate `SQLITE_BUSY_SNAPSHOT` and `SQLITE_LOCKED`. They are [`DbErrorKind::Other`].

use std::cell::Cell;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// SQLite enforces `ON DELETE RESTRICT` with a trigger-style `RAISE` whose result
/// code, `SQLITE_CONSTRAINT_TRIGGER`, diesel folds into `Unknown`: the one kind read
/// from text. The text is SQLite's own constant, compiled into the bundled library
/// and never translated, and it is matched whole; PostgreSQL never produces it.
const SQLITE_RESTRICT_RAISE: &str = "FOREIGN KEY constraint failed";

/// The kind of a database error; see the [module docs](self) for where each comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// A unique or primary-key constraint.
    UniqueViolation,
    /// A foreign key.
    ForeignKeyViolation,
    /// A `NOT NULL` column.
    NotNullViolation,
    /// A `CHECK` constraint.
    CheckViolation,
    /// A foreign key declared `ON DELETE RESTRICT` (PostgreSQL).
    RestrictViolation,
    /// An exclusion constraint (PostgreSQL).
    ExclusionViolation,
    /// A serializable or repeatable-read transaction could not be serialised: retry it.
    SerializationFailure,
    /// A write in a read-only transaction.
    ReadOnlyTransaction,
    /// The connection to the server was lost.
    ConnectionLost,
    /// The statement ran past the pool's statement timeout and was cancelled.
    StatementTimeout,
    /// SQLite: the database stayed locked by another connection past the busy timeout.
    Busy,
    /// PostgreSQL: a text value held a NUL character, which its text types cannot store.
    NulInText,
    /// A statement bound more values than the backend takes in one statement.
    TooManyBinds,
    /// Anything else: the message has the details.
    Other,
}

impl DbErrorKind {
    /// Whether running the same transaction again may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::SerializationFailure | Self::Busy)
    }

    pub(crate) fn of(error: &DieselError) -> Option<Self> {
        let DieselError::DatabaseError(kind, info) = error else {
            return None;
        };
        if matches!(kind, DatabaseErrorKind::Unknown) && info.message() == SQLITE_RESTRICT_RAISE {
            return Some(Self::ForeignKeyViolation);
        }
        Some(match kind {
            DatabaseErrorKind::UniqueViolation => Self::UniqueViolation,
            DatabaseErrorKind::ForeignKeyViolation => Self::ForeignKeyViolation,
            DatabaseErrorKind::NotNullViolation => Self::NotNullViolation,
            DatabaseErrorKind::CheckViolation => Self::CheckViolation,
            DatabaseErrorKind::RestrictViolation => Self::RestrictViolation,
            DatabaseErrorKind::ExclusionViolation => Self::ExclusionViolation,
            DatabaseErrorKind::SerializationFailure => Self::SerializationFailure,
            DatabaseErrorKind::ReadOnlyTransaction => Self::ReadOnlyTransaction,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                Self::ConnectionLost
            }
            _ => Self::Other,
        })
    }
}

impl std::fmt::Display for DbErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UniqueViolation => "unique violation",
            Self::ForeignKeyViolation => "foreign key violation",
            Self::NotNullViolation => "not-null violation",
            Self::CheckViolation => "check violation",
            Self::RestrictViolation => "restrict violation",
            Self::ExclusionViolation => "exclusion violation",
            Self::SerializationFailure => "serialization failure",
            Self::ReadOnlyTransaction => "read-only transaction",
            Self::ConnectionLost => "connection lost",
            Self::StatementTimeout => "statement timeout",
            Self::Busy => "database busy",
            Self::NulInText => "NUL character in text",
            Self::TooManyBinds => "too many bound values",
            Self::Other => "database error",
        })
    }
}

thread_local! {
    /// What the capture instrumentation learnt of the statement that just failed on
    /// this thread, beyond diesel's kind.
    static LAST_FAILURE: Cell<Option<Noted>> = const { Cell::new(None) };
}

/// What is known of a failed statement that diesel reported with no code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// It ran past one of the pool's own deadlines.
    Deadline {
        kind: DbErrorKind,
        timeout: Duration,
    },
    /// PostgreSQL: a text value it bound holds a NUL character, which PostgreSQL's
    /// text types cannot store.
    NulInText,
    /// It bound more values than the backend takes in one statement.
    TooManyBinds { count: usize, max: usize },
}

/// A pool's own deadlines, known to each of its connections' instrumentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// PostgreSQL `statement_timeout` the pool set on every connection.
    pub(crate) statement: Option<Duration>,
    /// SQLite `busy_timeout`.
    pub(crate) busy: Option<Duration>,
}

impl Deadlines {
    /// Notes, when a statement fails with no code diesel knows, what the library
    /// can tell of it: it bound more values than the backend takes, it bound text
    /// PostgreSQL cannot store (read from the statement's own binds, on failure
    /// only: no cost while statements succeed), or it ran past one of the pool's
    /// deadlines. Cleared when the next statement starts.
    pub(crate) fn note_failure(
        &self,
        error: Option<&DieselError>,
        duration: Duration,
        backend: crate::Backend,
        query: &dyn diesel::connection::DebugQuery,
    ) {
        let noted = match error {
            None => None,
            // A kind diesel read from a code: nothing to add (libpq's own refusal of
            // too many parameters arrives as `UnableToSendCommand`).
            Some(DieselError::DatabaseError(kind, _))
                if !matches!(
                    kind,
                    DatabaseErrorKind::Unknown | DatabaseErrorKind::UnableToSendCommand
                ) =>
            {
                None
            }
            Some(_) => {
                let binds = crate::instrument::bind_facts(query);
                let max = backend.capability().max_bind_params;
                let past = |d: Option<Duration>, kind| {
                    d.filter(|t| duration >= *t)
                        .map(|timeout| Noted::Deadline { kind, timeout })
                };
                if binds.count > max {
                    Some(Noted::TooManyBinds {
                        count: binds.count,
                        max,
                    })
                } else if !matches!(
                    error,
                    Some(DieselError::DatabaseError(DatabaseErrorKind::Unknown, _))
                ) {
                    None
                } else if backend == crate::Backend::Postgres && binds.nul_in_text {
                    Some(Noted::NulInText)
                } else {
                    past(self.statement, DbErrorKind::StatementTimeout)
                        .or_else(|| past(self.busy, DbErrorKind::Busy))
                }
            }
        };
        LAST_FAILURE.with(|f| f.set(noted));
    }

    pub(crate) fn clear() {
        LAST_FAILURE.with(|f| f.set(None));
    }
}

/// What is known of the statement that just failed on this thread, if anything
/// (taken: asked once per error).
pub(crate) fn take_last_failure() -> Option<Noted> {
    LAST_FAILURE.with(Cell::take)
}
