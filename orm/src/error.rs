//! The one error type of the crate.

use std::time::Duration;

use crate::connection::Backend;

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

    /// The database reported an error while running a statement.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),

    /// A `select_related` reaches the same table twice (it would need a table alias):
    /// prefetch one of the relations instead.
    #[error(
        "select_related joins the table of {model} twice; prefetch one of those relations instead"
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

    /// True for [`Error::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
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

    /// True when the database rejected a statement for violating a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        self.is_database_error(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            "UNIQUE constraint failed",
        )
    }

    /// True when the database rejected a statement for violating a foreign key.
    pub fn is_foreign_key_violation(&self) -> bool {
        self.is_database_error(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            "FOREIGN KEY constraint failed",
        )
    }

    /// Matches diesel's error kind, or SQLite's fixed (never translated) message for
    /// the cases where SQLite reports no extended error code to diesel.
    fn is_database_error(
        &self,
        kind: diesel::result::DatabaseErrorKind,
        sqlite_message: &str,
    ) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as DieselError};
        match self {
            Error::Query(DieselError::DatabaseError(k, info)) => {
                std::mem::discriminant(k) == std::mem::discriminant(&kind)
                    || matches!(k, DatabaseErrorKind::Unknown)
                        && info.message().starts_with(sqlite_message)
            }
            _ => false,
        }
    }
}
