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
#[doc(hidden)]
pub type Fragment = Arc<dyn QueryFragment<Db> + Send + Sync>;

/// A whole statement (a [`Fragment`]) that rows are loaded from.
#[doc(hidden)]
pub struct Statement(pub(crate) Fragment);

impl QueryFragment<Db> for Statement {
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl diesel::query_builder::QueryId for Statement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

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

/// A table's name as diesel declares it: `t`, or `schema.t` for a table declared
/// `schema.t { ... }` (a PostgreSQL schema, an attached SQLite database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    pub(crate) schema: Option<String>,
    pub(crate) name: String,
}

impl TableName {
    /// The name of `table`, read from the identifiers diesel renders for it.
    pub(crate) fn of(table: &dyn QueryFragment<Db>) -> QueryResult<TableName> {
        let sql = render(table, crate::Backend::Postgres)?;
        let mut parts = quoted_identifiers(&sql).ok_or_else(|| {
            diesel::result::Error::QueryBuilderError(
                format!("a table renders as {sql}, not as quoted identifiers").into(),
            )
        })?;
        let name = parts.pop().unwrap_or_default();
        Ok(TableName {
            schema: parts.pop(),
            name,
        })
    }

    /// Whether the table is named with its schema (`"s"."t"`): a derived table
    /// cannot take such a name as its alias, so shapes that alias one under the
    /// table's name (slices, ranked hops, keyset ranges) filter the table itself
    /// instead.
    pub(crate) fn is_qualified(&self) -> bool {
        self.schema.is_some()
    }
}

/// Whether `table` is named with its schema (see [`TableName::is_qualified`]); a
/// table whose name cannot be read is taken as unqualified (its statement then fails
/// to render with the same error).
pub(crate) fn is_qualified(table: &dyn QueryFragment<Db>) -> bool {
    TableName::of(table).is_ok_and(|name| name.is_qualified())
}

/// `"a"."b"` (PostgreSQL's quoting, `""` inside) as `["a", "b"]`; `None` when the
/// text is anything else.
fn quoted_identifiers(sql: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = sql.chars().peekable();
    loop {
        if chars.next()? != '"' {
            return None;
        }
        let mut part = String::new();
        loop {
            match chars.next()? {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    part.push('"');
                }
                '"' => break,
                c => part.push(c),
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quoted_identifiers;

    #[test]
    fn identifiers_are_read_with_their_quotes_undone() {
        assert_eq!(quoted_identifiers(r#""t""#), Some(vec!["t".to_owned()]));
        assert_eq!(
            quoted_identifiers(r#""s"."t""#),
            Some(vec!["s".to_owned(), "t".to_owned()])
        );
        assert_eq!(
            quoted_identifiers(r#""a"".""b""#),
            Some(vec![r#"a"."b"#.to_owned()])
        );
        assert_eq!(quoted_identifiers("t"), None);
        assert_eq!(quoted_identifiers(r#""t" x"#), None);
    }
}
