//! What each backend can do, in one place.

use crate::connection::Backend;

/// A PostgreSQL-compatible engine behind a `postgres://` URL
/// ([`DatabaseBuilder::engine`](crate::DatabaseBuilder::engine)): what it lacks of
/// PostgreSQL is refused before any SQL with [`Error::UnsupportedByEngine`](crate::Error::UnsupportedByEngine)
/// (or, where the library has another way, that way is taken). The profiles and their
/// sources are in docs/scaling-out.md; none was run against a live engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL itself (the default), and SQLite's connections.
    #[default]
    PostgreSql,
    /// Citus: PostgreSQL with distributed tables.
    Citus,
    /// CockroachDB.
    CockroachDb,
    /// YugabyteDB's YSQL.
    YugabyteDb,
}

impl Engine {
    /// Its name, as its vendor writes it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::PostgreSql => "PostgreSQL",
            Engine::Citus => "Citus",
            Engine::CockroachDb => "CockroachDB",
            Engine::YugabyteDb => "YugabyteDB",
        }
    }

    /// The facts of this engine (PostgreSQL's with what it lacks turned off).
    pub fn capability(self) -> &'static Capability {
        match self {
            Engine::PostgreSql => &POSTGRES,
            Engine::Citus => &CITUS,
            Engine::CockroachDb => &COCKROACH,
            Engine::YugabyteDb => &YUGABYTE,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-backend facts the library consults instead of scattering `if`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capability {
    /// The backend these facts describe.
    pub backend: Backend,
    /// The engine behind a PostgreSQL URL ([`Engine::PostgreSql`] for SQLite too).
    pub engine: Engine,
    /// `EXPLAIN (FORMAT JSON)` in PostgreSQL's plan format (plans, index advice,
    /// planner estimates); SQLite's `EXPLAIN QUERY PLAN` is read apart.
    pub explain_json: bool,
    /// Constraints declared `DEFERRABLE` (and `SET CONSTRAINTS`): where there are
    /// none, a bulk write has nothing to make immediate and sends nothing.
    pub deferrable_constraints: bool,
    /// `SELECT ... FOR UPDATE SKIP LOCKED` and `NOWAIT`.
    pub skip_locked: bool,
    /// Physical streaming replicas read by WAL position
    /// ([`DatabaseBuilder::replica`](crate::DatabaseBuilder::replica)).
    pub streaming_replicas: bool,
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
    engine: Engine::PostgreSql,
    explain_json: false,
    deferrable_constraints: false,
    skip_locked: false,
    streaming_replicas: false,
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
    engine: Engine::PostgreSql,
    explain_json: true,
    deferrable_constraints: true,
    skip_locked: true,
    streaming_replicas: true,
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

// The engines' profiles: PostgreSQL's, less what each one's documentation says it
// lacks (docs/scaling-out.md gives the sources).
const CITUS: Capability = Capability {
    engine: Engine::Citus,
    // TABLESAMPLE works in single-shard queries only.
    tablesample: false,
    // The coordinator's pg_class holds empty shell tables for distributed ones.
    table_statistics: false,
    // SET CONSTRAINTS ... DEFERRED does not work on distributed tables.
    deferrable_constraints: false,
    // Binary COPY from a client is not documented: bulk creates insert.
    copy_from: false,
    ..POSTGRES
};

const COCKROACH: Capability = Capability {
    engine: Engine::CockroachDb,
    tablesample: false,
    // EXPLAIN has no FORMAT option: no JSON plans, estimates or advice.
    explain_json: false,
    explain_analyze: false,
    planner_row_estimates: false,
    // pg_class.reltuples is not maintained.
    table_statistics: false,
    // No deferrable constraints.
    deferrable_constraints: false,
    // No PostgreSQL standbys: follower reads and cluster replication instead.
    streaming_replicas: false,
    ..POSTGRES
};

const YUGABYTE: Capability = Capability {
    engine: Engine::YugabyteDb,
    tablesample: false,
    // Deferrable foreign keys only, partially.
    deferrable_constraints: false,
    // Binary COPY is not documented: bulk creates insert.
    copy_from: false,
    // No WAL functions (pg_current_wal_lsn): read replicas of its own instead.
    streaming_replicas: false,
    ..POSTGRES
};

impl Capability {
    /// The facts of the engine `conn` talks to: its pool's
    /// [`engine`](crate::DatabaseBuilder::engine) on PostgreSQL (PostgreSQL's for a
    /// connection opened outside a [`Database`](crate::Database)), SQLite's on SQLite.
    pub fn of_connection(conn: &mut crate::AnyConnection) -> &'static Capability {
        match conn.backend() {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => {
                use diesel::Connection as _;
                conn.instrumentation()
                    .downcast_ref::<crate::instrument::CaptureInstrumentation>()
                    .map_or(&POSTGRES, |i| i.engine().capability())
            }
        }
    }

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
        } else if self.engine != Engine::PostgreSql {
            Err(crate::Error::UnsupportedByEngine {
                engine: self.engine,
                feature,
            })
        } else {
            Err(crate::Error::Unsupported {
                backend: self.backend,
                feature,
            })
        }
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;

    #[test]
    fn each_engine_lacks_what_its_documentation_says() {
        let pg = Engine::PostgreSql.capability();
        assert_eq!(pg, &POSTGRES);
        let lacks = |engine: Engine| {
            let c = engine.capability();
            assert_eq!(c.engine, engine);
            assert_eq!(c.backend, Backend::Postgres);
            let mut lacks = Vec::new();
            for (name, has) in [
                ("tablesample", c.tablesample),
                ("explain_json", c.explain_json),
                ("explain_analyze", c.explain_analyze),
                ("planner_row_estimates", c.planner_row_estimates),
                ("table_statistics", c.table_statistics),
                ("deferrable_constraints", c.deferrable_constraints),
                ("copy_from", c.copy_from),
                ("server_side_cursors", c.server_side_cursors),
                ("skip_locked", c.skip_locked),
                ("streaming_replicas", c.streaming_replicas),
                ("statement_timeout", c.statement_timeout),
            ] {
                if !has {
                    lacks.push(name);
                }
            }
            lacks
        };
        assert!(lacks(Engine::PostgreSql).is_empty());
        assert_eq!(
            lacks(Engine::Citus),
            [
                "tablesample",
                "table_statistics",
                "deferrable_constraints",
                "copy_from"
            ]
        );
        assert_eq!(
            lacks(Engine::CockroachDb),
            [
                "tablesample",
                "explain_json",
                "explain_analyze",
                "planner_row_estimates",
                "table_statistics",
                "deferrable_constraints",
                "streaming_replicas"
            ]
        );
        assert_eq!(
            lacks(Engine::YugabyteDb),
            [
                "tablesample",
                "deferrable_constraints",
                "copy_from",
                "streaming_replicas"
            ]
        );
    }

    #[test]
    fn an_engine_refusal_names_the_engine() {
        let err = Engine::CockroachDb
            .capability()
            .require(false, "TABLESAMPLE")
            .unwrap_err();
        assert!(err.is_unsupported());
        assert_eq!(
            err.to_string(),
            "TABLESAMPLE is not supported by CockroachDB"
        );
    }
}
