//! Orderings: which columns, which direction.

use diesel::helper_types::{Asc, Desc};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::{Column, QueryResult};

use crate::connection::Db;
use crate::fragment::ColumnRef;
use crate::sql_type::{ColumnType, SqlTypeInfo};

/// One `ORDER BY` term: a column, its SQL type and its direction.
#[derive(Debug, Clone)]
pub struct OrderTerm {
    pub(crate) column: ColumnRef,
    pub(crate) column_type: ColumnType,
    pub(crate) descending: bool,
    /// The relation the column is read through (`Message::sent_by.by(..)`): the
    /// column belongs to another table, so no row of the model holds its value.
    pub(crate) via: Option<&'static str>,
}

impl OrderTerm {
    /// The column's bare name.
    pub fn column_name(&self) -> &'static str {
        self.column.name
    }

    /// The relation a related model's column is read through (`Some("sent_by")` for
    /// `Message::sent_by.by(weave_person::last_name.asc())`), `None` for the model's
    /// own column.
    pub fn via(&self) -> Option<&'static str> {
        self.via
    }

    /// The column's name when it is one of the model's own columns.
    pub(crate) fn own_column(&self) -> Option<&'static str> {
        self.via.is_none().then_some(self.column.name)
    }

    /// True for `DESC`.
    pub fn is_descending(&self) -> bool {
        self.descending
    }

    /// The column's SQL type (its nullability and cursor kind).
    pub fn column_type(&self) -> ColumnType {
        self.column_type
    }

    /// The same column in the other direction.
    pub fn reversed(&self) -> OrderTerm {
        OrderTerm {
            column: self.column.clone(),
            column_type: self.column_type,
            descending: !self.descending,
            via: self.via,
        }
    }
}

impl QueryFragment<Db> for OrderTerm {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.column.qualified.walk_ast(out.reborrow())?;
        out.push_sql(if self.descending { " DESC" } else { " ASC" });
        Ok(())
    }
}

/// What `order_by` accepts: `column.asc()`, `column.desc()` of a column of table
/// `T`, or a tuple of those (up to six).
///
/// A column of another table does not compile:
///
/// ```compile_fail
/// diesel::table! { a (id) { id -> BigInt, } }
/// diesel::table! { b (id) { id -> BigInt, } }
/// use diesel::ExpressionMethods;
/// let _ = orm::IntoOrdering::<a::table>::into_ordering(b::id.asc());
/// ```
pub trait IntoOrdering<T> {
    /// The terms, in order.
    fn into_ordering(self) -> Vec<OrderTerm>;
}

macro_rules! impl_column_ordering {
    ($($wrapper:ident => $desc:expr),*) => {$(
        impl<T, C> IntoOrdering<T> for $wrapper<C>
        where
            C: Column<Table = T> + QueryFragment<Db> + Default + Send + Sync + 'static,
            C::SqlType: SqlTypeInfo,
        {
            fn into_ordering(self) -> Vec<OrderTerm> {
                // diesel's columns are unit structs, so the wrapped column is `C::default()`.
                vec![OrderTerm {
                    column: ColumnRef::of(C::default()),
                    column_type: ColumnType::of::<C::SqlType>(),
                    descending: $desc,
                    via: None,
                }]
            }
        }
    )*};
}
impl_column_ordering!(Asc => false, Desc => true);

macro_rules! impl_tuple_ordering {
    ($($name:ident),+) => {
        impl<T, $($name: IntoOrdering<T>),+> IntoOrdering<T> for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_ordering(self) -> Vec<OrderTerm> {
                let ($($name,)+) = self;
                let mut terms = Vec::new();
                $(terms.extend($name.into_ordering());)+
                terms
            }
        }
    };
}
impl_tuple_ordering!(A);
impl_tuple_ordering!(A, B);
impl_tuple_ordering!(A, B, C);
impl_tuple_ordering!(A, B, C, D);
impl_tuple_ordering!(A, B, C, D, E);
impl_tuple_ordering!(A, B, C, D, E, F);

/// Ordering the rows of a prefetch hop in Rust, as PostgreSQL would have.
///
/// A reverse hop's ordering is per parent: 100 threads with 100 messages each need 100
/// small sorts, not one sort of 10,000 rows on the server (about half of that
/// statement's execution time on PostgreSQL). Only orderings whose every column Rust
/// orders exactly as SQL does qualify: integers, booleans, timestamps, dates and times, with `NULL`
/// above every value as PostgreSQL places it. Text (the database's collation decides)
/// and floating point are left to the database.
pub mod client {
    use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
    use diesel::Column;
    use rustc_hash::FxHashMap;
    use std::hash::Hash;

    use super::OrderTerm;
    use crate::model::Model;
    use crate::value::CursorValue;

    /// A field type, and whether Rust orders its values exactly as SQL does. Every
    /// field listed in `model!`'s `cursor_columns` implements it; for a type of your
    /// own, `impl orm::SqlOrder for MyType {}` (not exact, so hops ordered by it keep
    /// `ORDER BY`).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is listed in `cursor_columns` but does not say how it orders",
        note = "implement `orm::SqlOrder` for it (`const EXACT: bool = true;` when its cursor value is an integer, boolean, timestamp, date or time) and `From<{Self}> for orm::paginate::CursorValue`"
    )]
    pub trait SqlOrder {
        /// `true` for integers, booleans, timestamps, dates and times (and `Option`s of
        /// them).
        const EXACT: bool = false;
    }

    macro_rules! sql_order {
        ($($ty:ty => $exact:expr),* $(,)?) => {$(
            impl SqlOrder for $ty {
                const EXACT: bool = $exact;
            }
        )*};
    }

    sql_order! {
        bool => true,
        i16 => true,
        i32 => true,
        i64 => true,
        NaiveDateTime => true,
        DateTime<Utc> => true,
        NaiveDate => true,
        NaiveTime => true,
        uuid::Uuid => false,
        bigdecimal::BigDecimal => false,
        serde_json::Value => false,
        f32 => false,
        f64 => false,
        String => false,
    }

    impl<T: SqlOrder> SqlOrder for Option<T> {
        const EXACT: bool = T::EXACT;
    }

    /// Whether the field `field` reads has a type Rust orders as SQL does (used by
    /// `model!`, which knows the field but not its type).
    pub fn orders_like_sql<M, T: SqlOrder>(field: fn(&M) -> &T) -> bool {
        let _ = field;
        T::EXACT
    }

    /// The most ordering terms a hop may have to be ordered in Rust (each row's key is
    /// a fixed array, no allocation per row).
    const MAX_TERMS: usize = 4;

    /// Whether rows of `M` can be put in `order` in Rust.
    pub(crate) fn applies<M: Model>(order: &[OrderTerm]) -> bool {
        !order.is_empty()
            && order.len() <= MAX_TERMS
            && order.iter().all(|term| {
                if term.via.is_some() {
                    false
                } else if term.column.name == <M::PrimaryKey as Column>::NAME {
                    <M::Key as crate::Key>::ORDERS_LIKE_SQL
                } else {
                    M::orders_like_sql(term.column.name)
                }
            })
    }

    /// One column's value as an unsigned number whose order is PostgreSQL's order of
    /// the values: the high half says `NULL` (above every value), the low half is the
    /// value with its sign bit flipped; `DESC` inverts every bit.
    fn encode(value: Option<i64>, descending: bool) -> u128 {
        let ascending = match value {
            None => 1u128 << 64,
            Some(v) => u128::from((v as u64) ^ (1 << 63)),
        };
        if descending {
            !ascending
        } else {
            ascending
        }
    }

    fn value<M: Model>(row: &M, term: &OrderTerm) -> Option<i64> {
        let value = if term.column.name == <M::PrimaryKey as Column>::NAME {
            Some(crate::Key::cursor_value(&row.pk()))
        } else {
            row.cursor_value(term.column.name)
        };
        match value {
            Some(CursorValue::Bool(b)) => Some(i64::from(b)),
            Some(CursorValue::Int(i)) => Some(i),
            // Microseconds since 1970 cover chrono's whole range in an i64, and
            // PostgreSQL keeps microseconds.
            Some(CursorValue::Timestamp(t)) => Some(t.and_utc().timestamp_micros()),
            Some(CursorValue::Date(d)) => Some(i64::from(d.num_days_from_ce())),
            Some(CursorValue::Time(t)) => Some(
                i64::from(t.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(t.nanosecond() / 1_000),
            ),
            // `applies` admits no other kind of column.
            _ => None,
        }
    }

    /// Sorts the rows of each parent by `order` as PostgreSQL would (stable: rows equal
    /// on every term keep the order they came in); parents' rows stay together, in no
    /// particular order of parents. Call only where [`applies`] said yes.
    pub(crate) fn sort<K: Hash + Eq + Clone, M: Model>(
        rows: &mut Vec<(K, M)>,
        order: &[OrderTerm],
    ) {
        // The key array as wide as the ordering (most are one or two columns): the
        // sort moves fewer bytes.
        match order.len() {
            1 => sort_by_keys::<K, M, 1>(rows, order),
            2 => sort_by_keys::<K, M, 2>(rows, order),
            _ => sort_by_keys::<K, M, MAX_TERMS>(rows, order),
        }
    }

    /// Sorts each parent's rows apart (100 sorts of 100 rows are half the comparisons
    /// of one sort of 10,000), then lays the parents' runs end to end.
    fn sort_by_keys<K: Hash + Eq + Clone, M: Model, const W: usize>(
        rows: &mut Vec<(K, M)>,
        order: &[OrderTerm],
    ) {
        let mut groups: FxHashMap<K, Vec<([u128; W], u32)>> = FxHashMap::default();
        for ((parent, row), i) in rows.iter().zip(0u32..) {
            let mut key = [0u128; W];
            for (slot, term) in key.iter_mut().zip(order) {
                *slot = encode(value(row, term), term.descending);
            }
            groups.entry(parent.clone()).or_default().push((key, i));
        }
        let mut slots: Vec<Option<(K, M)>> = rows.drain(..).map(Some).collect();
        for group in groups.values_mut() {
            // Unstable, but the index breaks every tie: the result is the stable order.
            group.sort_unstable();
            rows.extend(group.iter().filter_map(|(_, i)| slots[*i as usize].take()));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn null_sorts_above_values_and_desc_reverses() {
            let sorted = |values: &[Option<i64>], descending: bool| {
                let mut v = values.to_vec();
                v.sort_by_key(|x| encode(*x, descending));
                v
            };
            let values = [
                None,
                Some(2),
                Some(-1),
                Some(i64::MIN),
                Some(i64::MAX),
                Some(0),
            ];
            assert_eq!(
                sorted(&values, false),
                [
                    Some(i64::MIN),
                    Some(-1),
                    Some(0),
                    Some(2),
                    Some(i64::MAX),
                    None
                ]
            );
            assert_eq!(
                sorted(&values, true),
                [
                    None,
                    Some(i64::MAX),
                    Some(2),
                    Some(0),
                    Some(-1),
                    Some(i64::MIN)
                ]
            );
        }

        #[test]
        fn only_exact_types_qualify() {
            struct Row {
                at: NaiveDateTime,
                n: Option<i32>,
                name: String,
                score: f64,
            }
            assert!(orders_like_sql(|r: &Row| &r.at));
            assert!(orders_like_sql(|r: &Row| &r.n));
            assert!(!orders_like_sql(|r: &Row| &r.name));
            assert!(!orders_like_sql(|r: &Row| &r.score));
        }
    }
}
