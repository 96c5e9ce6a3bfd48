//! A list of keys in one statement, whatever its length: one array bind on
//! PostgreSQL, one JSON text bind on SQLite, chunks under the bind limit elsewhere.

use std::sync::Arc;

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::Text;
use diesel::QueryResult;

use crate::connection::{AnyConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{ColumnRef, Fragment};
use crate::key::{json_list, Key};
use crate::queryset::run::fetch_chunks;

/// Runs `load` with the filter `column IN keys`: once where the backend binds a whole
/// list, else once per chunk under the bind limit.
pub(super) fn fetch_keyed<K: Key, T>(
    conn: &mut AnyConnection,
    keys: &[K],
    column: ColumnRef,
    key_in: fn(Vec<K>) -> Fragment,
    mut load: impl FnMut(&mut AnyConnection, Fragment) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let backend = conn.backend();
    let capability = backend.capability();
    if capability.array_binds || capability.json_key_lists {
        let filter = key_filter(backend, column, key_in, keys);
        return load(conn, filter);
    }
    fetch_chunks(conn, keys, |conn, part| load(conn, key_in(part)))
}

/// `column IN keys` for all of `keys` on `backend`: diesel's `eq_any` (`= ANY($1)`
/// on PostgreSQL), or a JSON list where the backend reads one.
pub(super) fn key_filter<K: Key>(
    backend: Backend,
    column: ColumnRef,
    key_in: fn(Vec<K>) -> Fragment,
    keys: &[K],
) -> Fragment {
    let capability = backend.capability();
    if !capability.array_binds && capability.json_key_lists {
        Arc::new(InJsonList {
            column,
            json: json_list(keys),
        })
    } else {
        key_in(keys.to_vec())
    }
}

/// `"t"."c" IN (SELECT value FROM json_each(?))`: any number of keys in one bind.
struct InJsonList {
    column: ColumnRef,
    json: String,
}

impl QueryFragment<Db> for InJsonList {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, String>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}
