//! The statements bulk writes send: small `QueryFragment` nodes, every value a bound
//! parameter; only keywords and quoted identifiers are text.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Timestamp, Timestamptz};
use diesel::{QueryResult, RunQueryDsl};

use super::new_row::RowValues;
use crate::connection::Db;
use crate::fragment::Fragment;
use crate::key::Key;

/// What an `INSERT` does when a row collides with an existing one.
#[derive(Clone)]
pub(crate) enum OnConflict {
    /// `ON CONFLICT [(target)] DO NOTHING`.
    Ignore { target: Vec<&'static str> },
    /// `ON CONFLICT (target) DO UPDATE SET c = excluded.c, ... [WHERE filters]`:
    /// an existing row outside the filters is left as it is.
    Update {
        target: Vec<&'static str>,
        set: Vec<&'static str>,
        filters: Vec<Fragment>,
    },
}

/// `INSERT INTO t (cols) VALUES (...), (...) [ON CONFLICT ...] [RETURNING pk]`.
pub(crate) struct InsertRows<'a> {
    pub(crate) table: Fragment,
    pub(crate) rows: Vec<RowValues<'a>>,
    pub(crate) on_conflict: Option<OnConflict>,
    pub(crate) returning: Option<&'static str>,
    /// `RETURNING` these (a model's columns) instead of the key.
    pub(crate) returning_row: Option<Fragment>,
}

impl QueryFragment<Db> for InsertRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        let Some(first) = self.rows.first() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "an INSERT needs at least one row".into(),
            ));
        };
        out.push_sql("INSERT INTO ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        first.walk_column_names(out.reborrow())?;
        out.push_sql(") VALUES ");
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        match &self.on_conflict {
            None => {}
            Some(OnConflict::Ignore { target }) => {
                out.push_sql(" ON CONFLICT");
                if !target.is_empty() {
                    out.push_sql(" (");
                    identifiers(target, &mut out)?;
                    out.push_sql(")");
                }
                out.push_sql(" DO NOTHING");
            }
            Some(OnConflict::Update {
                target,
                set,
                filters,
            }) => {
                out.push_sql(" ON CONFLICT (");
                identifiers(target, &mut out)?;
                out.push_sql(") DO UPDATE SET ");
                for (i, column) in set.iter().enumerate() {
                    if i > 0 {
                        out.push_sql(", ");
                    }
                    out.push_identifier(column)?;
                    out.push_sql(" = excluded.");
                    out.push_identifier(column)?;
                }
                crate::queryset::statement::walk_where(filters, &mut out)?;
            }
        }
        if let Some(row) = &self.returning_row {
            out.push_sql(" RETURNING ");
            row.walk_ast(out.reborrow())?;
        } else if let Some(pk) = self.returning {
            out.push_sql(" RETURNING ");
            out.push_identifier(pk)?;
        }
        Ok(())
    }
}

fn identifiers(names: &[&'static str], out: &mut AstPass<'_, '_, Db>) -> QueryResult<()> {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_sql(", ");
        }
        out.push_identifier(name)?;
    }
    Ok(())
}

/// `UPDATE t SET c = "v"."column2", ..., updated = ? FROM (VALUES (?, ?, ...), ...) AS "v"
/// WHERE "t"."pk" = "v"."column1"`.
///
/// `VALUES` names its columns `column1`, `column2`, ... on both backends, so no
/// column alias list (which SQLite lacks) is needed.
pub(crate) struct UpdateFromValues<'r, K, V> {
    pub(crate) table: Fragment,
    pub(crate) pk: crate::fragment::ColumnRef,
    pub(crate) columns: Vec<&'static str>,
    pub(crate) updated: Option<(&'static str, Stamp)>,
    pub(crate) rows: &'r [(K, V)],
    pub(crate) walk_row: for<'b> fn(&'b V, &mut AstPass<'_, 'b, Db>) -> QueryResult<()>,
    /// The queryset's filters (its soft delete first): rows outside them are not
    /// changed.
    pub(crate) filters: Vec<Fragment>,
}

/// The time a write sets its `updated` column to, and whether that column is a
/// `Timestamptz` (then bound as one, so the server does not convert it with the
/// session's time zone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub(crate) now: chrono::NaiveDateTime,
    pub(crate) zoned: bool,
}

impl Stamp {
    /// Now, for model `M`'s timestamp columns.
    pub(crate) fn now<M: crate::Model>() -> Stamp {
        Stamp {
            now: chrono::Utc::now().naive_utc(),
            zoned: M::timestamps_zoned(),
        }
    }

    /// Pushes the time as a parameter of its column's type.
    pub(crate) fn walk<'b, DB>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: diesel::backend::Backend
            + diesel::sql_types::HasSqlType<Timestamp>
            + diesel::sql_types::HasSqlType<Timestamptz>,
        chrono::NaiveDateTime:
            diesel::serialize::ToSql<Timestamp, DB> + diesel::serialize::ToSql<Timestamptz, DB>,
    {
        if self.zoned {
            out.push_bind_param::<Timestamptz, chrono::NaiveDateTime>(&self.now)
        } else {
            out.push_bind_param::<Timestamp, chrono::NaiveDateTime>(&self.now)
        }
    }
}

/// The alias of the `VALUES` list.
const VALUES_ALIAS: &str = "v";

/// `column1`, `column2`, ...: the names `VALUES` gives its columns.
const VALUES_COLUMNS: [&str; 8] = [
    "column1", "column2", "column3", "column4", "column5", "column6", "column7", "column8",
];

/// `c1 = "v"."column2", ..., updated = $n`: the SET list of both `bulk_update`
/// statements, on any backend.
fn walk_set<'b, DB>(
    columns: &[&'static str],
    updated: &'b Option<(&'static str, Stamp)>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Timestamp>
        + diesel::sql_types::HasSqlType<Timestamptz>,
    chrono::NaiveDateTime:
        diesel::serialize::ToSql<Timestamp, DB> + diesel::serialize::ToSql<Timestamptz, DB>,
{
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push_sql(", ");
        }
        out.push_identifier(column)?;
        out.push_sql(" = ");
        out.push_identifier(VALUES_ALIAS)?;
        out.push_sql(".");
        out.push_identifier(VALUES_COLUMNS[i + 1])?;
    }
    if let Some((column, now)) = updated {
        out.push_sql(", ");
        out.push_identifier(column)?;
        out.push_sql(" = ");
        now.walk(out)?;
    }
    Ok(())
}

impl<K: Key, V> QueryFragment<Db> for UpdateFromValues<'_, K, V> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("UPDATE ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        walk_set(&self.columns, &self.updated, &mut out)?;
        out.push_sql(" FROM (VALUES ");
        for (i, (pk, values)) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            pk.walk_bind(&mut out)?;
            out.push_sql(", ");
            (self.walk_row)(values, &mut out)?;
            out.push_sql(")");
        }
        out.push_sql(") AS ");
        out.push_identifier(VALUES_ALIAS)?;
        out.push_sql(" WHERE ");
        self.pk.qualified.walk_ast(out.reborrow())?;
        out.push_sql(" = ");
        out.push_identifier(VALUES_ALIAS)?;
        out.push_sql(".");
        out.push_identifier(VALUES_COLUMNS[0])?;
        for filter in &self.filters {
            out.push_sql(" AND (");
            filter.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        Ok(())
    }
}

/// `UPDATE t SET c = v.column2, ..., updated = $1 FROM UNNEST($2, $3, ...) AS
/// v(column1, column2, ...) WHERE t.pk = v.column1` on PostgreSQL: one array bind per
/// column, whatever the number of rows, so the text is the same for every chunk and
/// the prepared statement is reused. `table` and `pk` are the identifiers as diesel
/// rendered them (no values).
pub(crate) struct UpdateFromArrays<K, A> {
    pub(crate) table: String,
    pub(crate) pk: String,
    pub(crate) columns: Vec<&'static str>,
    pub(crate) updated: Option<(&'static str, Stamp)>,
    pub(crate) ids: Vec<K>,
    pub(crate) arrays: A,
    pub(crate) walk_arrays: for<'b> fn(&'b A, &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>,
    /// The queryset's soft-delete filter as diesel rendered it (`"t"."deleted" =
    /// false`: a literal, no values); `bulk_update` sends the `VALUES` form when
    /// the queryset has filters with values.
    pub(crate) live: Option<String>,
}

impl<K: Key, A> QueryFragment<Pg> for UpdateFromArrays<K, A> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        out.push_sql(&self.table);
        out.push_sql(" SET ");
        walk_set(&self.columns, &self.updated, &mut out)?;
        out.push_sql(" FROM UNNEST(");
        K::walk_pg_array(&self.ids, &mut out)?;
        out.push_sql(", ");
        (self.walk_arrays)(&self.arrays, &mut out)?;
        out.push_sql(") AS ");
        out.push_identifier(VALUES_ALIAS)?;
        out.push_sql("(");
        for (i, name) in VALUES_COLUMNS[..=self.columns.len()].iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(name)?;
        }
        out.push_sql(") WHERE ");
        out.push_sql(&self.pk);
        out.push_sql(" = ");
        out.push_identifier(VALUES_ALIAS)?;
        out.push_sql(".");
        out.push_identifier(VALUES_COLUMNS[0])?;
        if let Some(live) = &self.live {
            out.push_sql(" AND (");
            out.push_sql(live);
            out.push_sql(")");
        }
        Ok(())
    }
}

impl<K, A> QueryId for UpdateFromArrays<K, A> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn, K, A> RunQueryDsl<Conn> for UpdateFromArrays<K, A> {}

/// The most columns `bulk_update` sets at once (besides `updated`).
pub(crate) const MAX_UPDATE_COLUMNS: usize = VALUES_COLUMNS.len() - 1;

impl QueryId for InsertRows<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for InsertRows<'_> {
    type SqlType = BigInt;
}

impl<Conn> RunQueryDsl<Conn> for InsertRows<'_> {}

impl<K, V> QueryId for UpdateFromValues<'_, K, V> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn, K, V> RunQueryDsl<Conn> for UpdateFromValues<'_, K, V> {}
