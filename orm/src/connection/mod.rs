//! The one connection type: SQLite or PostgreSQL behind one diesel connection.

use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

pub use multi::*;

mod direct;
pub use direct::{Direct, DirectRows, InnerConnection, SqliteIter};

#[allow(missing_docs)]
mod multi {
    use super::*;

    /// A connection to either backend. Every queryset method takes `&mut AnyConnection`.
    ///
    /// It is diesel's `MultiConnection`: boxed queries, joins, transactions and
    /// migrations run on it directly. For the few things diesel only offers on one
    /// backend (multi-row `INSERT`, `RETURNING`, `COPY`), match on the variant or use
    /// [`with_inner!`](crate::with_inner).
    #[derive(diesel::MultiConnection)]
    pub enum AnyConnection {
        /// A PostgreSQL connection.
        Postgresql(PgConnection),
        /// An SQLite connection.
        Sqlite(SqliteConnection),
    }
}

/// The diesel backend of [`AnyConnection`]: expressions used in querysets must
/// implement `QueryFragment<Db>`, which every ordinary diesel expression does.
pub type Db = MultiBackend;

/// The query builder of [`Db`] (the derive keeps its name private).
pub(crate) type QueryBuilderOf = <Db as diesel::backend::Backend>::QueryBuilder;

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite (bundled, embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Both backends, SQLite first.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// The backend's facts: bind limit, `RETURNING`, `TABLESAMPLE`, ...
    pub fn capability(self) -> &'static crate::Capability {
        crate::Capability::of(self)
    }

    /// The backend's SQL spellings (see [`Dialect`](crate::Dialect)).
    pub fn dialect(self) -> &'static crate::Dialect {
        crate::Dialect::of(self)
    }

    /// The backend a statement is being rendered for (`AstPass::backend`).
    pub(crate) fn rendering(backend: &MultiBackend) -> Backend {
        match backend {
            MultiBackend::Sqlite(_) => Backend::Sqlite,
            MultiBackend::Postgresql(_) => Backend::Postgres,
        }
    }

    pub(crate) fn query_builder(self) -> QueryBuilderOf {
        match self {
            Backend::Sqlite => QueryBuilderOf::Sqlite(Default::default()),
            Backend::Postgres => QueryBuilderOf::Postgresql(Default::default()),
        }
    }

    pub(crate) fn diesel_backend(self) -> MultiBackend {
        match self {
            Backend::Sqlite => MultiBackend::Sqlite(diesel::sqlite::Sqlite),
            Backend::Postgres => MultiBackend::Postgresql(diesel::pg::Pg),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

impl AnyConnection {
    /// The backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs the same code on the inner `PgConnection` or `SqliteConnection`.
///
/// The escape hatch for diesel features that do not compile through the
/// multi-backend connection. It is safe inside a transaction: the transaction state
/// lives in the inner connection.
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use diesel::RunQueryDsl;
/// let db = orm::Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// let n = orm::with_inner!(&mut *conn, |c| diesel::sql_query("SELECT 1").execute(c))?;
/// assert_eq!(n, 0);
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! with_inner {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::AnyConnection::Postgresql($inner) => $body,
            $crate::AnyConnection::Sqlite($inner) => $body,
        }
    };
}

/// What a terminal method runs on: an [`AnyConnection`], or a pooled one straight
/// from the pool (`qs.count(&mut db.get()?)`).
pub trait AsConnection {
    /// The connection.
    fn connection(&mut self) -> &mut AnyConnection;
}

impl AsConnection for AnyConnection {
    fn connection(&mut self) -> &mut AnyConnection {
        self
    }
}

impl AsConnection for crate::PooledConnection {
    fn connection(&mut self) -> &mut AnyConnection {
        self
    }
}
