//! How each backend spells what the library sends: the SQL differences as data,
//! beside [`Capability`](crate::Capability) (what each backend can do). Statements
//! read their backend's dialect instead of matching on the backend, so a backend or
//! a PostgreSQL-compatible engine is one more value here.

use crate::connection::{Backend, MultiBackend};

/// The SQL spellings that differ between backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dialect {
    /// The backend these spellings are for.
    pub backend: Backend,
    /// What goes before an `OFFSET` that has no `LIMIT`: SQLite reads `OFFSET` only
    /// after a `LIMIT` (`LIMIT -1` is none); PostgreSQL needs nothing.
    pub limit_for_offset: Option<&'static str>,
    /// The inner join of `select_related`: on SQLite `CROSS JOIN`, which keeps the
    /// planner's table order (the queryset's table first, so its index serves the
    /// ORDER BY ... LIMIT); elsewhere `INNER JOIN`.
    pub inner_join: &'static str,
    /// How an outermost transaction that may write begins: SQLite takes the write
    /// lock up front (`BEGIN IMMEDIATE`, where a busy database is recognised);
    /// `None`: the connection's own `BEGIN`.
    pub begin_write: Option<&'static str>,
    /// The statement a bulk write's own transaction starts with so that deferred
    /// constraints are checked per statement (PostgreSQL's
    /// `SET CONSTRAINTS ALL IMMEDIATE`); `None` where constraints are never deferred.
    pub constraints_immediate: Option<&'static str>,
}

const SQLITE: Dialect = Dialect {
    backend: Backend::Sqlite,
    limit_for_offset: Some(" LIMIT -1"),
    inner_join: " CROSS JOIN ",
    begin_write: Some("BEGIN IMMEDIATE"),
    constraints_immediate: None,
};

const POSTGRES: Dialect = Dialect {
    backend: Backend::Postgres,
    limit_for_offset: None,
    inner_join: " INNER JOIN ",
    begin_write: None,
    constraints_immediate: Some("SET CONSTRAINTS ALL IMMEDIATE"),
};

impl Dialect {
    /// The spellings of `backend`.
    pub fn of(backend: Backend) -> &'static Dialect {
        match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// The spellings of the backend a statement is being rendered for.
    pub(crate) fn rendering(backend: &MultiBackend) -> &'static Dialect {
        Self::of(Backend::rendering(backend))
    }
}
