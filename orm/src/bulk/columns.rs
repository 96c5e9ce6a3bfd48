//! Column lists of a table, typed: a conflict target, the columns an upsert or a
//! `bulk_update` sets, with their per-row values.

use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, HasSqlType};
use diesel::{Column, QueryResult};

use crate::connection::Db;

/// A tuple of columns of table `T` (one to six): `(weave_person::email_address,)`,
/// `(weave_message::text, weave_message::thread_id)`. A column of another table does
/// not compile.
///
/// A single column is a one-element tuple: diesel may some day implement its
/// `Column` trait for tuples, so Rust does not let one trait cover both.
pub trait Columns<T> {
    /// The bare column names, in order.
    fn names(&self) -> Vec<&'static str>;
}

/// The columns `bulk_update` sets, with `Values` the Rust values of one row for
/// them: `(weave_message::text,)` takes `(String,)` (or `(&str,)`),
/// `(weave_message::text, weave_message::thread_id)` takes `(String, i64)`.
pub trait UpdateColumns<T, Values>: Columns<T> {
    /// Pushes one row's values as bound parameters, separated by `, `.
    #[doc(hidden)]
    fn walk_values<'b>(values: &'b Values, out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()>;

    /// Each column's values across rows (PostgreSQL binds one array per column).
    #[doc(hidden)]
    type Arrays<'r>
    where
        Values: 'r;

    /// Gathers each column's values of `rows`.
    #[doc(hidden)]
    fn arrays<'r, K>(rows: &'r [(K, Values)]) -> Self::Arrays<'r>;

    /// Pushes one array bind per column, separated by `, `.
    #[doc(hidden)]
    fn walk_arrays<'b>(
        arrays: &'b Self::Arrays<'_>,
        out: &mut AstPass<'_, 'b, Pg>,
    ) -> QueryResult<()>;
}

macro_rules! tuple_columns {
    ($(($($C:ident $V:ident $i:tt),+))+) => {$(
        impl<T, $($C: Column<Table = T>),+> Columns<T> for ($($C,)+) {
            fn names(&self) -> Vec<&'static str> {
                vec![$($C::NAME),+]
            }
        }

        impl<T, $($C, $V),+> UpdateColumns<T, ($($V,)+)> for ($($C,)+)
        where
            $(
                $C: Column<Table = T>,
                Db: HasSqlType<$C::SqlType>,
                Pg: HasSqlType<$C::SqlType>,
                $C::SqlType: 'static,
                $V: ToSql<$C::SqlType, Db> + ToSql<$C::SqlType, Pg> + std::fmt::Debug,
            )+
        {
            type Arrays<'r> = ($(Vec<&'r $V>,)+) where ($($V,)+): 'r;

            fn arrays<'r, K>(rows: &'r [(K, ($($V,)+))]) -> Self::Arrays<'r> {
                ($(rows.iter().map(|(_, values)| &values.$i).collect::<Vec<_>>(),)+)
            }

            fn walk_arrays<'b>(arrays: &'b Self::Arrays<'_>, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                $(
                    if $i > 0 {
                        out.push_sql(", ");
                    }
                    out.push_bind_param::<Array<$C::SqlType>, Vec<&$V>>(&arrays.$i)?;
                )+
                Ok(())
            }

            fn walk_values<'b>(values: &'b ($($V,)+), out: &mut AstPass<'_, 'b, Db>) -> QueryResult<()> {
                $(
                    if $i > 0 {
                        out.push_sql(", ");
                    }
                    out.push_bind_param::<$C::SqlType, $V>(&values.$i)?;
                )+
                Ok(())
            }
        }
    )+};
}

tuple_columns! {
    (A VA 0)
    (A VA 0, B VB 1)
    (A VA 0, B VB 1, C VC 2)
    (A VA 0, B VB 1, C VC 2, D VD 3)
    (A VA 0, B VB 1, C VC 2, D VD 3, E VE 4)
    (A VA 0, B VB 1, C VC 2, D VD 3, E VE 4, F VF 5)
}
