//! Type-erased SQL fragments: how filters and orderings are stored.
//!
//! A filter is type-checked against the model's table when it is added, then kept as
//! an `Arc<dyn QueryFragment<Db>>`. diesel qualifies every column (`"t"."c"`), so the
//! same fragment is valid in a plain SELECT, inside joins and in wrapper queries.

use std::sync::Arc;

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::QueryResult;

use crate::connection::Db;

/// A shared, type-erased SQL fragment.
pub(crate) type Fragment = Arc<dyn QueryFragment<Db> + Send + Sync>;

/// A column, known by its qualified fragment and its bare name.
#[derive(Clone)]
pub struct ColumnRef {
    pub(crate) qualified: Fragment,
    pub(crate) name: &'static str,
}

impl std::fmt::Debug for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl ColumnRef {
    /// The column `C` (a diesel column of any table).
    pub fn of<C>(column: C) -> Self
    where
        C: diesel::Column + QueryFragment<Db> + Send + Sync + 'static,
    {
        Self {
            qualified: Arc::new(column),
            name: C::NAME,
        }
    }

    /// The bare column name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// `"t"."c" = <literal>` for a boolean column. The literal is SQL text on purpose: a
/// bound parameter would keep PostgreSQL's generic plans from using a partial index
/// such as `WHERE deleted = false`.
pub(crate) struct BoolColumnIs {
    pub(crate) column: ColumnRef,
    pub(crate) value: bool,
}

impl QueryFragment<Db> for BoolColumnIs {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(if self.value { " = true" } else { " = false" });
        Ok(())
    }
}

/// `NOT (<fragment>)`.
pub(crate) struct Not(pub(crate) Fragment);

impl QueryFragment<Db> for Not {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("NOT (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

/// Renders a fragment's SQL for `backend` without a connection.
pub(crate) fn render(
    fragment: &dyn QueryFragment<Db>,
    backend: crate::Backend,
) -> QueryResult<String> {
    let mut builder = backend.query_builder();
    fragment.to_sql(&mut builder, &backend.diesel_backend())?;
    Ok(diesel::query_builder::QueryBuilder::<Db>::finish(builder))
}
