//! A list of keys in one statement, whatever its length: one array bind on
//! PostgreSQL, one JSON text bind on SQLite, chunks under the bind limit elsewhere.

use std::sync::Arc;

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::Text;
use diesel::{ExpressionMethods, QueryResult};

use crate::connection::{AnyConnection, Backend, Db};
use crate::error::Result;
use crate::fragment::{ColumnRef, Fragment};
use crate::model::Model;
use crate::queryset::run::fetch_chunks;

/// Runs `load` with the filter `column IN keys`: once where the backend binds a whole
/// list, else once per chunk under the bind limit.
pub(super) fn fetch_keyed<T>(
    conn: &mut AnyConnection,
    keys: &[i64],
    column: ColumnRef,
    key_in: fn(Vec<i64>) -> Fragment,
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
pub(super) fn key_filter(
    backend: Backend,
    column: ColumnRef,
    key_in: fn(Vec<i64>) -> Fragment,
    keys: &[i64],
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

/// `pk IN keys` for model `P`.
pub(super) fn pk_in<P: Model>(keys: Vec<i64>) -> Fragment {
    Arc::new(P::PrimaryKey::default().eq_any(keys))
}

/// `[1,2,3]`: the JSON text of a key list (numbers only, bound as one parameter).
fn json_list(keys: &[i64]) -> String {
    let mut json = String::with_capacity(keys.len() * 8 + 2);
    json.push('[');
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&key.to_string());
    }
    json.push(']');
    json
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

#[cfg(test)]
mod tests {
    use super::json_list;

    #[test]
    fn a_key_list_is_a_json_array_of_numbers() {
        assert_eq!(json_list(&[]), "[]");
        assert_eq!(json_list(&[7]), "[7]");
        assert_eq!(json_list(&[-1, 2, i64::MAX]), "[-1,2,9223372036854775807]");
    }
}
