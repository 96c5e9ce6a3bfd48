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
