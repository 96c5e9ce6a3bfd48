//! Database errors by kind, read from what the driver reports as codes, never from
//! message text (which follows the server's `lc_messages`).
//!
//! | kind | PostgreSQL | SQLite |
//! |---|---|---|
//! | unique, foreign-key, not-null, check violation | SQLSTATE 23505, 23503, 23502, 23514 (diesel's kinds), with the constraint name | extended result code (diesel's kinds); no constraint name; `ON DELETE RESTRICT`: see below |
//! | restrict, exclusion violation | SQLSTATE 23001, 23P01 | — |
//! | serialization failure | SQLSTATE 40001 | — |
//! | read-only transaction | SQLSTATE 25006 | — |
//! | connection lost | SQLSTATE 08000, 08001, 08004, 08006, or libpq's connection status gone bad | — |
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

use std::cell::{Cell, RefCell};
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
            DatabaseErrorKind::ClosedConnection => Self::ConnectionLost,
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
    /// this thread, beyond diesel's kind, with the failure it belongs to.
    static LAST_FAILURE: RefCell<Option<(Noted, String)>> = const { RefCell::new(None) };
    /// Set while diesel rolls back after a failed statement (a failed `COMMIT`): the
    /// rollback must not clear what was noted of the failure.
    static KEEP_NOTE: Cell<bool> = const { Cell::new(false) };
}

/// Which failure a note belongs to: the error's own text, compared whole, so that a
/// note is never applied to another error (never used to classify).
fn identity(error: &DieselError) -> String {
    match error {
        DieselError::DatabaseError(_, info) => info.message().to_owned(),
        other => other.to_string(),
    }
}

/// What is known of a failed statement that diesel reported with no code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Noted {
    /// PostgreSQL: it ran past the pool's statement timeout (this one).
    StatementTimeout(Duration),
    /// SQLite: it waited past the pool's busy timeout (this one).
    Busy(Duration),
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
    /// The deadlines as the backend applies them: PostgreSQL's `statement_timeout` in
    /// whole milliseconds (rounded up, as it is sent); a zero busy timeout ("fail at
    /// once") is no deadline to recognise.
    pub(crate) fn new(statement: Option<Duration>, busy: Option<Duration>) -> Self {
        Self {
            statement: statement.map(|t| Duration::from_millis(crate::count::timeout_millis(t))),
            busy: busy.filter(|t| !t.is_zero()),
        }
    }

    /// Notes, when a statement fails with no kind diesel knows, what the library can
    /// tell of it: it bound more values than the backend takes, it bound text
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
        let Some(error) = error else { return };
        // A kind diesel read from a code (or SQLite's RESTRICT): nothing to add.
        if !matches!(DbErrorKind::of(error), Some(DbErrorKind::Other) | None) {
            LAST_FAILURE.with(|f| f.borrow_mut().take());
            return;
        }
        let unknown = matches!(
            error,
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, _)
        );
        let binds = crate::instrument::bind_facts(query);
        let max = backend.capability().max_bind_params;
        let past = |d: Option<Duration>| d.filter(|t| duration >= *t);
        let noted = if binds.count > max {
            Some(Noted::TooManyBinds {
                count: binds.count,
                max,
            })
        } else if !unknown {
            None
        } else if !backend.capability().nul_in_text && binds.nul_in_text {
            Some(Noted::NulInText)
        } else {
            past(self.statement)
                .map(Noted::StatementTimeout)
                .or_else(|| past(self.busy).map(Noted::Busy))
        };
        LAST_FAILURE.with(|f| *f.borrow_mut() = noted.map(|n| (n, identity(error))));
    }

    /// A statement starts: what was noted of the last one no longer applies, unless
    /// this is the rollback diesel sends after a failed statement.
    pub(crate) fn statement_starts() {
        if !KEEP_NOTE.with(Cell::take) {
            LAST_FAILURE.with(|f| f.borrow_mut().take());
        }
    }

    /// diesel is about to roll back (after a failed `COMMIT`, or an error).
    pub(crate) fn rollback_starts() {
        KEEP_NOTE.with(|k| k.set(true));
    }
}

/// What is known of the failure `error` (taken: asked once per error), if the
/// statement that failed last on this thread was this one.
pub(crate) fn take_note_for(error: &DieselError) -> Option<Noted> {
    LAST_FAILURE.with(|f| {
        let mut slot = f.borrow_mut();
        match slot.as_ref() {
            Some((_, id)) if *id == identity(error) => slot.take().map(|(noted, _)| noted),
            _ => None,
        }
    })
}
