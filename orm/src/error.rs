//! The one error type of the crate.

use std::time::Duration;

use crate::connection::Backend;
use crate::error_kind::DbErrorKind;

/// `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the real cause in the message.
///
/// Messages are lowercase and chainable (`"could not connect to postgres: ..."`).
/// Use the predicates (`is_not_found()`, ...) rather than matching on text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL could not be understood.
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A connection could not be established; `source` is the driver's own message
    /// (for example `FATAL: database "x" does not exist` or `Connection refused`).
    #[error("could not connect to {backend} ({kind}): {source}")]
    Connect {
        /// Which backend the URL selected.
        backend: Backend,
        /// The cause, classified from the driver's report.
        kind: ConnectErrorKind,
        /// The driver's error.
        #[source]
        source: diesel::ConnectionError,
    },

    /// No pooled connection became free within the pool's connection timeout.
    #[error("timed out after {timeout:?} waiting for a pooled connection{}", last_error.as_ref().map(|e| format!(" (last connection error: {e})")).unwrap_or_default())]
    PoolTimeout {
        /// The configured timeout.
        timeout: Duration,
        /// The last error seen while opening a connection, if any: this is the real
        /// cause when the database went away.
        last_error: Option<Box<Error>>,
    },

    /// `get()` found no row.
    #[error("{model} matching query does not exist")]
    NotFound {
        /// The model's name.
        model: &'static str,
    },

    /// `get()` found more than one row.
    #[error("get() returned more than one {model} (at least {count})")]
    MultipleObjectsReturned {
        /// The model's name.
        model: &'static str,
        /// How many rows were seen (the query stops looking after a few).
        count: usize,
    },

    /// A feature the current backend does not have.
    #[error("{feature} is not supported on {backend}")]
    Unsupported {
        /// The backend in use.
        backend: Backend,
        /// What was asked for.
        feature: &'static str,
    },

    /// Running migrations failed.
    #[error("migration failed: {source}")]
    Migration {
        /// The migration harness's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A query budget (see [`crate::assert_num_queries!`]) was exceeded or not met.
    #[error("{0}")]
    QueryCount(Box<crate::instrument::QueryCountMismatch>),

    /// A scope repeated a query shape from one call site (strict N+1 detection).
    #[error("{0}")]
    NPlusOne(Box<crate::instrument::NPlusOneReport>),

    /// The database reported an error while running a statement;
    /// [`db_kind`](Error::db_kind) says which kind.
    #[error(transparent)]
    Query(diesel::result::Error),

    /// PostgreSQL cancelled a statement that ran past the pool's
    /// [`statement_timeout`](crate::DatabaseBuilder::statement_timeout); the
    /// connection is usable (a transaction it was in must be rolled back).
    #[error("statement cancelled: it ran past the pool's statement timeout of {timeout:?}")]
    StatementTimeout {
        /// The pool's statement timeout.
        timeout: Duration,
        /// The driver's error.
        #[source]
        source: diesel::result::Error,
    },

    /// PostgreSQL rejected a text value holding a NUL character (`\0`), which its
    /// text types cannot store (SQLite stores it). Nothing was written; found from
    /// the statement's own bound values, not the server's message.
    #[error("a text value holds a NUL character (\\0), which PostgreSQL cannot store")]
    NulInText {
        /// The driver's error.
        #[source]
        source: diesel::result::Error,
    },

    /// A statement bound more values than the backend takes in one statement
    /// (SQLite 32,766, PostgreSQL 65,535). The statements the library chunks never
    /// do; this is a filter of the caller's (for example `eq_any` of a long list on
    /// SQLite). Found from the statement's binds, not the server's message.
    #[error("a statement bound {count} values; {max} is the most the backend takes")]
    TooManyBinds {
        /// How many values were bound.
        count: usize,
        /// The backend's limit.
        max: usize,
        /// The driver's error.
        #[source]
        source: diesel::result::Error,
    },

    /// SQLite: another connection kept the database locked past the pool's
    /// [`busy_timeout`](crate::DatabaseBuilder::busy_timeout). Retrying may succeed.
    #[error(
        "database busy: another connection held its lock past the busy timeout of {timeout:?}"
    )]
    Busy {
        /// The pool's busy timeout.
        timeout: Duration,
        /// The driver's error.
        #[source]
        source: diesel::result::Error,
    },

    /// The database's EXPLAIN output could not be read as a plan.
    #[error("could not read the {backend} query plan: {reason}")]
    PlanFormat {
        /// The backend that answered.
        backend: Backend,
        /// What was wrong with the output.
        reason: &'static str,
    },

    /// A captured statement cannot be explained again safely or faithfully.
    #[error("cannot explain the captured statement again: {reason}")]
    NotReplayable {
        /// Why.
        reason: crate::explain::ReplayRefusal,
    },

    /// A scope sent more data statements than its budget
    /// ([`max_queries`](crate::instrument::max_queries)).
    #[error("{0}")]
    QueryBudget(Box<crate::instrument::BudgetExceeded>),

    /// An exact count did not finish within its deadline
    /// ([`Count::ExactWithin`](crate::count::Count::ExactWithin)); the statement was
    /// cancelled and the connection is usable.
    #[error("exact count did not finish within {timeout:?} on {backend}")]
    CountTimedOut {
        /// The backend in use.
        backend: Backend,
        /// The deadline that passed.
        timeout: Duration,
    },

    /// The database has no row-count statistics for a table yet (PostgreSQL before
    /// the first `ANALYZE` or autovacuum, SQLite before `ANALYZE`).
    #[error("no table statistics for `{table}` on {backend} (run ANALYZE first)")]
    NoStatistics {
        /// The backend in use.
        backend: Backend,
        /// The table, as the database names it.
        table: String,
    },

    /// A count method cannot answer for this queryset (for example table statistics
    /// for a filtered queryset, or a sample of a sliced one).
    #[error("{method} cannot count this queryset: {reason}")]
    CountNotApplicable {
        /// The count method.
        method: &'static str,
        /// Why not.
        reason: &'static str,
    },

    /// A sampling percentage outside `(0, 100]`.
    #[error("sample percentage {percent} is not in (0, 100]")]
    InvalidSamplePercent {
        /// The percentage given.
        percent: f64,
    },

    /// A page number that is not an integer (Django's `PageNotAnInteger`).
    #[error("page number `{raw}` is not an integer")]
    PageNotAnInteger {
        /// The text received, as given.
        raw: String,
    },

    /// A page number that names no page (Django's `EmptyPage`): less than 1, or past
    /// the last page.
    #[error("{}", empty_page_message(*page, *last_page))]
    EmptyPage {
        /// The page number asked for.
        page: i64,
        /// The last page, when the count is known to be exact.
        last_page: Option<u64>,
    },

    /// A page size of zero or above the paginator's maximum.
    #[error("page size {size} is not between 1 and {max}")]
    InvalidPageSize {
        /// The size asked for.
        size: u64,
        /// The paginator's maximum.
        max: u64,
    },

    /// A keyset cursor token that does not decode, is not ours, or was made for
    /// another ordering.
    #[error("invalid cursor: {reason}")]
    InvalidCursor {
        /// What is wrong with it.
        reason: crate::value::CursorError,
    },

    /// A keyset cursor secret too short to sign with
    /// ([`CursorSecret::new`](crate::paginate::CursorSecret::new)).
    #[error("a cursor secret needs at least {min} bytes, got {len}")]
    WeakCursorSecret {
        /// The key's length.
        len: usize,
        /// The shortest accepted.
        min: usize,
    },

    /// Keyset pagination needs a column value the model does not expose.
    #[error("keyset pagination over {model} needs the value of `{column}`: list it in model!'s `cursor_columns`")]
    CursorColumnUnavailable {
        /// The model's name.
        model: &'static str,
        /// The ordering column.
        column: &'static str,
    },

    /// A method that only runs inside a transaction was called outside one
    /// (`select_for_update`, as Django's `TransactionManagementError`).
    #[error("{feature} runs only inside a transaction (orm::atomic)")]
    TransactionRequired {
        /// What was asked for.
        feature: &'static str,
    },

    /// An argument a method cannot work with (a chunk size of 0, ...).
    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A bulk write failed; nothing of it was written (the whole write ran in one
    /// transaction, rolled back). Says which row and chunk the database rejected.
    #[error("{operation} failed at {}chunk {chunk} (rows {first_row}..{end_row} of {total_rows}), nothing written: {source}{}", row.map(|r| format!("row {r}, ")).unwrap_or_default(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    BulkWrite {
        /// `bulk_create` or `bulk_update`.
        operation: &'static str,
        /// The input row (counting from 0) whose addition made its chunk fail: the
        /// chunk is re-sent in halves, each attempt rolled back, to find it. `None`
        /// for a `COPY` (PostgreSQL's detail names the key instead) or when the
        /// search could not tell.
        row: Option<usize>,
        /// The failing chunk, counting from 0.
        chunk: usize,
        /// The index of the chunk's first row in the input, counting from 0.
        first_row: usize,
        /// One past the index of the chunk's last row.
        end_row: usize,
        /// How many rows the write was given.
        total_rows: usize,
        /// The database's detail, when it gives one: PostgreSQL names the offending
        /// key (`Key (email_address)=(ada@example.org) already exists.`), which
        /// identifies the row; SQLite gives none. A COPY is one chunk of all rows.
        detail: Option<String>,
        /// The database's error.
        #[source]
        source: Box<Error>,
    },

    /// The PostgreSQL-compatible engine of the pool
    /// ([`DatabaseBuilder::engine`](crate::DatabaseBuilder::engine)) lacks what was asked
    /// for; refused before any SQL was sent.
    #[error("{feature} is not supported by {engine}")]
    UnsupportedByEngine {
        /// The engine.
        engine: crate::Engine,
        /// What was asked for.
        feature: &'static str,
    },

    /// A replica did not replay the primary's writes in time
    /// ([`Database::wait_for_replicas`](crate::Database::wait_for_replicas)), or its
    /// position could not be read.
    #[error("{server} did not catch up with the primary: {reason}")]
    ReplicaBehind {
        /// The server (`replica host:port`, or `primary` when its own position
        /// could not be read).
        server: String,
        /// How far it got, or why it could not be asked.
        reason: String,
    },

    /// A `select_related` reaches the same table twice under one name: join one of
    /// the relations under an alias of its own (`ForeignKey::aliased`), or prefetch it.
    #[error(
        "select_related joins the table of {model} twice under one name; join one of those relations `.aliased(\"name\")`, or prefetch it"
    )]
    TableJoinedTwice {
        /// The model whose table is reached twice.
        model: &'static str,
    },
}

/// Why a connection could not be opened, classified from the driver's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server answered but the database does not exist.
    MissingDatabase,
    /// Nothing listens at the address, or it could not be reached.
    Refused,
    /// The server rejected the credentials.
    Authentication,
    /// An SQLite file could not be opened (missing directory, permissions).
    CannotOpenFile,
    /// Anything else; the message has the details.
    Other,
}

impl std::fmt::Display for ConnectErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingDatabase => "database does not exist",
            Self::Refused => "server unreachable",
            Self::Authentication => "authentication failed",
            Self::CannotOpenFile => "cannot open database file",
            Self::Other => "connection error",
        })
    }
}

impl ConnectErrorKind {
    pub(crate) fn classify(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("does not exist") && m.contains("database") {
            Self::MissingDatabase
        } else if m.contains("connection refused")
            || m.contains("could not translate host name")
            || m.contains("no route to host")
            || m.contains("timeout expired")
            || m.contains("network is unreachable")
            || m.contains("no such file or directory") && m.contains("socket")
        {
            Self::Refused
        } else if m.contains("password authentication failed")
            || m.contains("authentication")
            || m.contains("role") && m.contains("does not exist")
        {
            Self::Authentication
        } else if m.contains("unable to open database file") {
            Self::CannotOpenFile
        } else {
            Self::Other
        }
    }
}

impl Error {
    /// True for [`Error::NotFound`] and diesel's `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. } | Error::Query(diesel::result::Error::NotFound)
        )
    }

    /// True for [`Error::MultipleObjectsReturned`].
    pub fn is_multiple_objects_returned(&self) -> bool {
        matches!(self, Error::MultipleObjectsReturned { .. })
    }

    /// True for [`Error::PoolTimeout`].
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }

    /// True for [`Error::QueryBudget`].
    pub fn is_query_budget(&self) -> bool {
        matches!(self, Error::QueryBudget(_))
    }

    /// True for [`Error::TransactionRequired`].
    pub fn is_transaction_required(&self) -> bool {
        matches!(self, Error::TransactionRequired { .. })
    }

    /// True for [`Error::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Error::Unsupported { .. } | Error::UnsupportedByEngine { .. }
        )
    }

    /// True for [`Error::CountTimedOut`].
    pub fn is_count_timed_out(&self) -> bool {
        matches!(self, Error::CountTimedOut { .. })
    }

    /// True for [`Error::EmptyPage`] (Django's `EmptyPage`).
    pub fn is_empty_page(&self) -> bool {
        matches!(self, Error::EmptyPage { .. })
    }

    /// True for [`Error::InvalidCursor`].
    pub fn is_invalid_cursor(&self) -> bool {
        matches!(self, Error::InvalidCursor { .. })
    }

    /// The connection failure's kind, for [`Error::Connect`] (directly or as the
    /// last error of a pool timeout).
    pub fn connect_kind(&self) -> Option<ConnectErrorKind> {
        match self {
            Error::Connect { kind, .. } => Some(*kind),
            Error::PoolTimeout {
                last_error: Some(e),
                ..
            } => e.connect_kind(),
            _ => None,
        }
    }

    /// The kind of database error this is (also inside a failed bulk write), read
    /// from the SQLSTATE or result code, or from the pool's own deadlines: see
    /// [`DbErrorKind`]. `None` for errors that are not the database's.
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::DbErrorKind;
    /// use diesel::connection::SimpleConnection;
    /// conn.batch_execute("CREATE TABLE tag (name TEXT UNIQUE); INSERT INTO tag VALUES ('a')")?;
    /// let err = orm::Error::from(conn.batch_execute("INSERT INTO tag VALUES ('a')").unwrap_err());
    /// assert_eq!(err.db_kind(), Some(DbErrorKind::UniqueViolation));
    /// assert!(!err.is_retryable());
    /// # Ok(()) }
    /// ```
    pub fn db_kind(&self) -> Option<DbErrorKind> {
        match self {
            Error::Query(e) => DbErrorKind::of(e),
            Error::StatementTimeout { .. } | Error::CountTimedOut { .. } => {
                Some(DbErrorKind::StatementTimeout)
            }
            Error::Busy { .. } => Some(DbErrorKind::Busy),
            Error::NulInText { .. } => Some(DbErrorKind::NulInText),
            Error::TooManyBinds { .. } => Some(DbErrorKind::TooManyBinds),
            Error::BulkWrite { source, .. } => source.db_kind(),
            _ => None,
        }
    }

    /// The violated constraint's name, where the backend names it (PostgreSQL does;
    /// SQLite does not).
    pub fn constraint_name(&self) -> Option<&str> {
        match self {
            Error::Query(diesel::result::Error::DatabaseError(_, info)) => info.constraint_name(),
            Error::BulkWrite { source, .. } => source.constraint_name(),
            _ => None,
        }
    }

    /// Whether running the same transaction again may succeed: a serialization
    /// failure, or SQLite busy.
    pub fn is_retryable(&self) -> bool {
        self.db_kind().is_some_and(DbErrorKind::is_retryable)
    }

    /// True when the database rejected a statement for violating a unique constraint
    /// (also inside a failed bulk write).
    pub fn is_unique_violation(&self) -> bool {
        self.db_kind() == Some(DbErrorKind::UniqueViolation)
    }

    /// True when the database rejected a statement for violating a foreign key.
    pub fn is_foreign_key_violation(&self) -> bool {
        self.db_kind() == Some(DbErrorKind::ForeignKeyViolation)
    }
}

impl From<diesel::result::Error> for Error {
    /// Wraps diesel's error, as [`Error::StatementTimeout`] or [`Error::Busy`] when
    /// the statement that just failed on this thread, with no code diesel knows, ran
    /// past the pool's own timeout.
    fn from(error: diesel::result::Error) -> Self {
        use crate::error_kind::Noted;
        if let diesel::result::Error::QueryBuilderError(cause) = &error {
            if cause.is::<crate::types::PostgresOnlyRows>() {
                return Error::Unsupported {
                    backend: Backend::Sqlite,
                    feature: "rows with PostgreSQL-only columns",
                };
            }
            if let Some(crate::relations::Unrenderable(reason)) = cause.downcast_ref() {
                return Error::InvalidArgument {
                    argument: "relation",
                    reason,
                };
            }
            if cause.is::<crate::types::PostgresOnlyExpression>() {
                return Error::Unsupported {
                    backend: Backend::Sqlite,
                    feature: "a PostgreSQL-only expression (orm::pg)",
                };
            }
        }
        // A note exists only for the failure it was made for (matched by identity).
        match crate::error_kind::take_note_for(&error) {
            Some(Noted::TooManyBinds { count, max }) => Error::TooManyBinds {
                count,
                max,
                source: error,
            },
            Some(Noted::NulInText) => Error::NulInText { source: error },
            Some(Noted::StatementTimeout(timeout)) => Error::StatementTimeout {
                timeout,
                source: error,
            },
            Some(Noted::Busy(timeout)) => Error::Busy {
                timeout,
                source: error,
            },
            None => Error::Query(error),
        }
    }
}

/// The message of [`crate::Error::EmptyPage`].
fn empty_page_message(page: i64, last_page: Option<u64>) -> String {
    match last_page {
        _ if page < 1 => format!("page {page} is less than 1"),
        Some(last) => format!("page {page} contains no results (the last page is {last})"),
        None => format!("page {page} contains no results"),
    }
}
