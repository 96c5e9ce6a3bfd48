//! The prefix nodes (`EXPLAIN ... <statement>`) and running them.

use std::panic::Location;

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, QueryResult, RunQueryDsl};

use super::options::ExplainOptions;
use super::plan::{Plan, PlanContext};
use crate::connection::{AnyConnection, Backend, Db};
use crate::dialect::ExplainFormat;
use crate::error::{Error, Result};
use crate::fragment::render;
use crate::instrument::with_call_site;

/// `EXPLAIN (<options>, FORMAT JSON) <statement>`: one row, one JSON document.
/// Generic so that a statement with array binds can run on the inner `PgConnection`.
pub(crate) struct PostgresExplain<'a, DB> {
    pub(crate) prefix: String,
    pub(crate) statement: &'a dyn QueryFragment<DB>,
}

impl<DB: diesel::backend::Backend> QueryFragment<DB> for PostgresExplain<'_, DB> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        // Keywords from `ExplainOptions`, never a user value.
        out.push_sql(&self.prefix);
        self.statement.walk_ast(out.reborrow())
    }
}

impl<DB> Query for PostgresExplain<'_, DB> {
    type SqlType = Text;
}

impl<DB> QueryId for PostgresExplain<'_, DB> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB, Conn> RunQueryDsl<Conn> for PostgresExplain<'_, DB> {}

/// `EXPLAIN QUERY PLAN <statement>`: rows `(id, parent, notused, detail)`.
struct SqliteExplain<'a> {
    statement: &'a dyn QueryFragment<Db>,
}

impl QueryFragment<Db> for SqliteExplain<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.statement.walk_ast(out.reborrow())
    }
}

impl Query for SqliteExplain<'_> {
    type SqlType = (Integer, Integer, Integer, Text);
}

macro_rules! impl_explain_statement {
    ($($ty:ident),*) => {$(
        impl QueryId for $ty<'_> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
        impl<Conn> RunQueryDsl<Conn> for $ty<'_> {}
    )*};
}
impl_explain_statement!(SqliteExplain);

/// The EXPLAIN statement for `statement` on `backend`, as text.
pub(crate) fn render_explain(
    statement: &dyn QueryFragment<Db>,
    backend: Backend,
    options: ExplainOptions,
) -> Result<String> {
    Ok(match backend.dialect().explain {
        ExplainFormat::PostgresJson => render(
            &PostgresExplain {
                prefix: options.postgres_prefix(),
                statement,
            },
            backend,
        )?,
        ExplainFormat::SqliteQueryPlan => render(&SqliteExplain { statement }, backend)?,
    })
}

/// Explains `statement` on `conn`. With `ANALYZE` (PostgreSQL only) the statement runs
/// inside a transaction (a savepoint when one is open) that is always rolled back.
pub(crate) fn explain_fragment(
    conn: &mut AnyConnection,
    statement: &dyn QueryFragment<Db>,
    options: ExplainOptions,
    context: PlanContext,
    site: &'static Location<'static>,
) -> Result<Plan> {
    let capability = crate::Capability::of_connection(conn);
    if capability.backend == crate::Backend::Postgres {
        capability.require(capability.explain_json, "EXPLAIN (FORMAT JSON)")?;
    }
    if options.analyze {
        capability.require(capability.explain_analyze, "EXPLAIN ANALYZE")?;
        return explain_rolled_back(conn, statement, options, context, site);
    }
    explain_once(conn, statement, options, context, site)
}

fn explain_once(
    conn: &mut AnyConnection,
    statement: &dyn QueryFragment<Db>,
    options: ExplainOptions,
    context: PlanContext,
    site: &'static Location<'static>,
) -> Result<Plan> {
    let backend = conn.backend();
    let sql = render(statement, backend)?;
    match backend.dialect().explain {
        ExplainFormat::PostgresJson => {
            let query = PostgresExplain {
                prefix: options.postgres_prefix(),
                statement,
            };
            let json = with_call_site(site, || query.get_result::<String>(conn))?;
            Plan::from_postgres_json(&json, sql, options, context)
        }
        ExplainFormat::SqliteQueryPlan => {
            let query = SqliteExplain { statement };
            let rows = with_call_site(site, || query.load::<(i32, i32, i32, String)>(conn))?;
            Ok(Plan::from_sqlite_rows(&rows, sql, context))
        }
    }
}

/// Why the analysing transaction ended: always a rollback, carrying the outcome.
enum Undo<T> {
    Done(Result<T>),
    Database(diesel::result::Error),
}

impl<T> From<diesel::result::Error> for Undo<T> {
    fn from(e: diesel::result::Error) -> Self {
        Undo::Database(e)
    }
}

/// Runs `f` inside a transaction (a savepoint when one is open) that is always
/// rolled back, and returns `f`'s outcome.
pub(crate) fn rolled_back<C: Connection, T>(
    conn: &mut C,
    f: impl FnOnce(&mut C) -> Result<T>,
) -> Result<T> {
    let outcome =
        conn.transaction::<std::convert::Infallible, Undo<T>, _>(|c| Err(Undo::Done(f(c))));
    match outcome {
        Ok(never) => match never {},
        Err(Undo::Done(value)) => value,
        Err(Undo::Database(e)) => Err(Error::Query(e)),
    }
}

fn explain_rolled_back(
    conn: &mut AnyConnection,
    statement: &dyn QueryFragment<Db>,
    options: ExplainOptions,
    context: PlanContext,
    site: &'static Location<'static>,
) -> Result<Plan> {
    rolled_back(conn, |c| explain_once(c, statement, options, context, site))
}
