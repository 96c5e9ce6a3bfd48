//! What each backend can do, in one place.

use crate::connection::Backend;

/// Per-backend facts the library consults instead of scattering `if`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capability {
    /// The backend these facts describe.
    pub backend: Backend,
    /// The most bind parameters one statement may carry.
    pub max_bind_params: usize,
    /// `INSERT ... RETURNING` / `UPDATE ... RETURNING`.
    pub returning: bool,
    /// `TABLESAMPLE BERNOULLI/SYSTEM ... REPEATABLE`.
    pub tablesample: bool,
    /// Table statistics for estimated counts (`pg_class.reltuples`, `sqlite_stat1`).
    pub table_statistics: bool,
    /// Binary `COPY ... FROM STDIN`.
    pub copy_from: bool,
    /// `= ANY($1)` with one array bind for an id list of any length.
    pub array_binds: bool,
    /// `IN (SELECT value FROM json_each(?))` with one JSON text bind for an id list of
    /// any length (used where there are no array binds).
    pub json_key_lists: bool,
    /// `EXPLAIN (ANALYZE, FORMAT JSON)` with actual rows and times.
    pub explain_analyze: bool,
    /// `DECLARE ... CURSOR` / `FETCH` server-side cursors.
    pub server_side_cursors: bool,
    /// The planner's row estimate for any query (`EXPLAIN (FORMAT JSON)` "Plan Rows").
    pub planner_row_estimates: bool,
    /// `NULL` sorts before every value in `ASC` order (SQLite); PostgreSQL puts it last.
    pub nulls_first_ascending: bool,
    /// A row-value comparison `(a, b) < ($1, $2)` bounds an index scan on every
    /// column of an index on `(a, b)` (PostgreSQL); SQLite seeks on `a` only, so
    /// keyset cursors are split into one index range per leading prefix there.
    pub row_value_index_range: bool,
    /// One writer at a time for the whole database (SQLite): a write waits for the
    /// lock in its transaction's `BEGIN IMMEDIATE`, where a lock held past the busy
    /// timeout is recognised as [`Error::Busy`](crate::Error::Busy).
    pub database_write_lock: bool,
    /// A statement timeout the server enforces (`SET LOCAL statement_timeout`):
    /// counts under a deadline use it; elsewhere a deadline checked per row.
    pub statement_timeout: bool,
    /// A prefetch hop is cheaper ordered in Rust than by the server when Rust orders
    /// its columns exactly (PostgreSQL: the server sorts every child of every
    /// parent); SQLite sorts in the same process, its timestamps as text.
    pub client_side_ordering: bool,
    /// Text values may hold a NUL character (SQLite); PostgreSQL rejects one, so a
    /// failed statement with one in a text bind is [`Error::NulInText`](crate::Error::NulInText).
    pub nul_in_text: bool,
    /// Other database files attached under a schema name (SQLite's `ATTACH`); on
    /// PostgreSQL a schema is part of the database.
    pub attach: bool,
    /// A busy timeout the driver waits out for the database's write lock (SQLite's
    /// `busy_timeout`); PostgreSQL's row locks wait on the server.
    pub busy_timeout: bool,
}

const SQLITE: Capability = Capability {
    backend: Backend::Sqlite,
    // SQLITE_MAX_VARIABLE_NUMBER of the bundled SQLite (>= 3.32).
    max_bind_params: 32_766,
    returning: true,
    tablesample: false,
    table_statistics: true,
    copy_from: false,
    array_binds: false,
    json_key_lists: true,
    explain_analyze: false,
    server_side_cursors: false,
    // EXPLAIN QUERY PLAN carries no row counts.
    planner_row_estimates: false,
    nulls_first_ascending: true,
    database_write_lock: true,
    row_value_index_range: false,
    statement_timeout: false,
    client_side_ordering: false,
    nul_in_text: true,
    attach: true,
    busy_timeout: true,
};

const POSTGRES: Capability = Capability {
    backend: Backend::Postgres,
    // The wire protocol counts parameters in an i16.
    max_bind_params: 65_535,
    returning: true,
    tablesample: true,
    table_statistics: true,
    copy_from: true,
    array_binds: true,
    json_key_lists: false,
    explain_analyze: true,
    server_side_cursors: true,
    planner_row_estimates: true,
    nulls_first_ascending: false,
    database_write_lock: false,
    row_value_index_range: true,
    statement_timeout: true,
    client_side_ordering: true,
    nul_in_text: false,
    attach: false,
    busy_timeout: false,
};

impl Capability {
    /// The facts for `backend`.
    pub fn of(backend: Backend) -> &'static Capability {
        match backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// `Ok(())` when `supported`, else the typed `Unsupported` error for `feature`.
    pub fn require(&self, supported: bool, feature: &'static str) -> crate::Result<()> {
        if supported {
            Ok(())
        } else {
            Err(crate::Error::Unsupported {
                backend: self.backend,
                feature,
            })
        }
    }
}
