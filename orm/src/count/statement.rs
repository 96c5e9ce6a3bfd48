//! The SQL nodes of the count strategies. Every value is a bound parameter except
//! the statement timeout, which PostgreSQL's `SET` cannot take as one: it is an
//! integer our code renders.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Text};
use diesel::QueryResult;

use super::strategy::SampleMethod;
use crate::connection::Db;
use crate::fragment::Fragment;

/// Implements `QueryId` (never cached by type), `Query` with `$st` and
/// `RunQueryDsl` for a statement node.
macro_rules! statement {
    ($ty:ident $(<$lt:lifetime>)? => $st:ty) => {
        impl $(<$lt>)? QueryId for $ty $(<$lt>)? {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
        impl $(<$lt>)? Query for $ty $(<$lt>)? {
            type SqlType = $st;
        }
        impl<$($lt,)? Conn> diesel::RunQueryDsl<Conn> for $ty $(<$lt>)? {}
    };
}

/// `SELECT COUNT(*) FROM (<inner>) AS "counted"`.
pub(crate) struct Subcount {
    pub(crate) inner: Box<dyn QueryFragment<Db>>,
}

impl QueryFragment<Db> for Subcount {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(") AS ");
        out.push_identifier("counted")
    }
}
statement!(Subcount => BigInt);

/// Any count statement, run as a `BigInt` query.
pub(crate) struct Counted<'a>(pub(crate) &'a dyn QueryFragment<Db>);

impl QueryFragment<Db> for Counted<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}
statement!(Counted<'a> => BigInt);

/// `EXPLAIN (FORMAT JSON) <inner>`: the plan as one JSON text row; binds stay binds.
pub(crate) struct Explain {
    pub(crate) inner: Box<dyn QueryFragment<Db>>,
}

impl QueryFragment<Db> for Explain {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.inner.walk_ast(out.reborrow())
    }
}
statement!(Explain => Text);

/// `<table> TABLESAMPLE BERNOULLI ($1) REPEATABLE ($2)`: a FROM source whose
/// percentage and seed are bound.
pub(crate) struct TableSample {
    pub(crate) table: Fragment,
    pub(crate) method: SampleMethod,
    pub(crate) percent: f64,
    pub(crate) seed: f64,
}

impl QueryFragment<Db> for TableSample {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(match self.method {
            SampleMethod::Bernoulli => " TABLESAMPLE BERNOULLI (",
            SampleMethod::System => " TABLESAMPLE SYSTEM (",
        });
        out.push_bind_param::<Double, f64>(&self.percent)?;
        out.push_sql(") REPEATABLE (");
        out.push_bind_param::<Double, f64>(&self.seed)?;
        out.push_sql(")");
        Ok(())
    }
}

/// PostgreSQL: `SELECT CAST(reltuples AS float8) FROM pg_class WHERE oid =
/// to_regclass($1)`; the table name is resolved through the search path.
#[derive(Clone)]
pub(crate) struct RelTuples {
    pub(crate) regclass: String,
}

impl QueryFragment<Db> for RelTuples {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT CAST(reltuples AS float8) FROM pg_class WHERE oid = to_regclass(");
        out.push_bind_param::<Text, String>(&self.regclass)?;
        out.push_sql(")");
        Ok(())
    }
}
statement!(RelTuples => Double);

/// SQLite: whether `sqlite_stat1` exists (it appears with the first `ANALYZE`).
/// In an attached database (`schema`), its own `sqlite_master`.
#[derive(Clone)]
pub(crate) struct SqliteStatTableExists {
    pub(crate) schema: Option<String>,
}

/// `"schema".` before an SQLite catalog table of an attached database, or nothing.
fn walk_schema<'b>(schema: &'b Option<String>, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
    if let Some(schema) = schema {
        out.push_identifier(schema)?;
        out.push_sql(".");
    }
    Ok(())
}

impl QueryFragment<Db> for SqliteStatTableExists {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM ");
        walk_schema(&self.schema, &mut out)?;
        out.push_sql("sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'");
        Ok(())
    }
}
statement!(SqliteStatTableExists => BigInt);

/// SQLite: `SELECT stat FROM sqlite_stat1 WHERE tbl = ?`.
#[derive(Clone)]
pub(crate) struct SqliteStat {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

impl QueryFragment<Db> for SqliteStat {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("SELECT stat FROM ");
        walk_schema(&self.schema, &mut out)?;
        out.push_sql("sqlite_stat1 WHERE tbl = ");
        out.push_bind_param::<Text, String>(&self.table)?;
        Ok(())
    }
}
statement!(SqliteStat => Text);

/// PostgreSQL: `SET LOCAL statement_timeout = <ms>` (`SET` takes no parameters; the
/// value is an integer rendered here).
#[derive(Clone, Copy)]
pub(crate) struct SetLocalStatementTimeout {
    pub(crate) milliseconds: u64,
}

impl QueryFragment<Db> for SetLocalStatementTimeout {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("SET LOCAL statement_timeout = ");
        out.push_sql(&self.milliseconds.to_string());
        Ok(())
    }
}

impl QueryId for SetLocalStatementTimeout {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> diesel::RunQueryDsl<Conn> for SetLocalStatementTimeout {}
