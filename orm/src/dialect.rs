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
    /// Whether `LIMIT` is rendered as the number itself (an `i64` the library
    /// writes) rather than bound. SQLite (since 3.48) reads a bound `LIMIT ?` when it
    /// plans, and marks the statement to be recompiled whenever that parameter is
    /// bound again: a cached statement is prepared anew on every run. Hiding the
    /// value (`LIMIT ? + 0`) keeps the statement prepared but plans as if there were
    /// no limit, and SQLite 3.53 then sorts every live row of the demo's messages
    /// instead of reading the partial ordering index (36x diesel's time for the
    /// served list_some). The number itself gives the planner the limit and keeps one
    /// prepared statement per page size. PostgreSQL binds it.
    pub limit_literal: bool,
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
    /// The character a bind placeholder starts with (`?`, `$1`).
    pub placeholder: char,
    /// How a statement is explained, and so which reader parses the plan.
    pub explain: ExplainFormat,
    /// Whether a `SELECT` can lock the rows it reads (`FOR UPDATE`); SQLite locks
    /// the whole database for a write transaction instead.
    pub row_locks: bool,
    /// Where the table statistics behind
    /// [`Count::TableStatistics`](crate::count::Count::TableStatistics) live.
    pub table_statistics: StatisticsSource,
}

/// How a backend explains a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExplainFormat {
    /// `EXPLAIN (FORMAT JSON) ...`: one JSON document with costs and row estimates
    /// (`ANALYZE` adds actual rows and times).
    PostgresJson,
    /// `EXPLAIN QUERY PLAN ...`: rows of `(id, parent, notused, detail)`, no costs.
    SqliteQueryPlan,
}

/// Where a backend keeps a table's estimated row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatisticsSource {
    /// `pg_class.reltuples` of the table's `regclass`, kept by `ANALYZE` and
    /// autovacuum (`-1` before the first).
    PgClass,
    /// The first number of the table's `sqlite_stat1` row, kept by `ANALYZE`.
    SqliteStat1,
}

const SQLITE: Dialect = Dialect {
    backend: Backend::Sqlite,
    limit_for_offset: Some(" LIMIT -1"),
    limit_literal: true,
    inner_join: " CROSS JOIN ",
    begin_write: Some("BEGIN IMMEDIATE"),
    constraints_immediate: None,
    placeholder: '?',
    explain: ExplainFormat::SqliteQueryPlan,
    row_locks: false,
    table_statistics: StatisticsSource::SqliteStat1,
};

const POSTGRES: Dialect = Dialect {
    backend: Backend::Postgres,
    limit_for_offset: None,
    limit_literal: false,
    inner_join: " INNER JOIN ",
    begin_write: None,
    constraints_immediate: Some("SET CONSTRAINTS ALL IMMEDIATE"),
    placeholder: '$',
    explain: ExplainFormat::PostgresJson,
    row_locks: true,
    table_statistics: StatisticsSource::PgClass,
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
