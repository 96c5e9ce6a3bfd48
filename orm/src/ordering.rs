//! Orderings: which columns, which direction.

use diesel::helper_types::{Asc, Desc};
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::{Column, QueryResult};

use crate::connection::Db;
use crate::fragment::ColumnRef;

/// One `ORDER BY` term: a column and its direction.
#[derive(Debug, Clone)]
pub struct OrderTerm {
    pub(crate) column: ColumnRef,
    pub(crate) descending: bool,
}

impl OrderTerm {
    /// The column's bare name.
    pub fn column_name(&self) -> &'static str {
        self.column.name
    }

    /// True for `DESC`.
    pub fn is_descending(&self) -> bool {
        self.descending
    }

    /// The same column in the other direction.
    pub fn reversed(&self) -> OrderTerm {
        OrderTerm {
            column: self.column.clone(),
            descending: !self.descending,
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
        {
            fn into_ordering(self) -> Vec<OrderTerm> {
                // diesel's columns are unit structs, so the wrapped column is `C::default()`.
                vec![OrderTerm { column: ColumnRef::of(C::default()), descending: $desc }]
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
/// orders exactly as SQL does qualify: integers, booleans and timestamps, with `NULL`
/// above every value as PostgreSQL places it. Text (the database's collation decides)
/// and floating point are left to the database.
pub mod client {
    use std::cmp::Ordering;

    use chrono::NaiveDateTime;
    use diesel::Column;

    use super::OrderTerm;
    use crate::model::Model;
    use crate::paginate::CursorValue;

    /// A field type, and whether Rust orders its values exactly as SQL does.
    pub trait SqlOrder {
        /// `true` for integers, booleans and timestamps (and `Option`s of them).
        const EXACT: bool;
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

    /// Whether rows of `M` can be put in `order` in Rust.
    pub(crate) fn applies<M: Model>(order: &[OrderTerm]) -> bool {
        !order.is_empty()
            && order.iter().all(|term| {
                term.column.name == <M::PrimaryKey as Column>::NAME
                    || M::orders_like_sql(term.column.name)
            })
    }

    /// One column's value as PostgreSQL orders it: `NULL` above every value.
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        Bool(bool),
        Int(i64),
        Timestamp(NaiveDateTime),
        Null,
    }

    /// A value and whether its column is sorted `DESC`.
    #[derive(Debug, PartialEq, Eq)]
    struct Directed(Key, bool);

    impl PartialOrd for Directed {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    impl Ord for Directed {
        fn cmp(&self, other: &Self) -> Ordering {
            let ascending = self.0.cmp(&other.0);
            if self.1 {
                ascending.reverse()
            } else {
                ascending
            }
        }
    }

    fn key<M: Model>(row: &M, term: &OrderTerm) -> Directed {
        let key = if term.column.name == <M::PrimaryKey as Column>::NAME {
            Key::Int(row.pk())
        } else {
            match row.cursor_value(term.column.name) {
                Some(CursorValue::Bool(b)) => Key::Bool(b),
                Some(CursorValue::Int(i)) => Key::Int(i),
                Some(CursorValue::Timestamp(t)) => Key::Timestamp(t),
                // `applies` admits no other kind of column.
                _ => Key::Null,
            }
        };
        Directed(key, term.descending)
    }

    /// Sorts `rows` by `order` as PostgreSQL would (stable: rows equal on every term
    /// keep the order they came in). Call only where [`applies`] said yes.
    pub(crate) fn sort<M: Model>(rows: &mut [(i64, M)], order: &[OrderTerm]) {
        rows.sort_by_cached_key(|(_, row)| {
            order.iter().map(|term| key(row, term)).collect::<Vec<_>>()
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn null_sorts_above_values_and_desc_reverses() {
            let mut keys = [
                Directed(Key::Null, false),
                Directed(Key::Int(2), false),
                Directed(Key::Int(-1), false),
            ];
            keys.sort();
            assert_eq!(
                keys.iter().map(|k| &k.0).collect::<Vec<_>>(),
                [&Key::Int(-1), &Key::Int(2), &Key::Null]
            );
            let mut keys = [
                Directed(Key::Int(2), true),
                Directed(Key::Null, true),
                Directed(Key::Int(-1), true),
            ];
            keys.sort();
            assert_eq!(
                keys.iter().map(|k| &k.0).collect::<Vec<_>>(),
                [&Key::Null, &Key::Int(2), &Key::Int(-1)]
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
