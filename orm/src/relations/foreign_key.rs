use std::marker::PhantomData;

use crate::connection::AnyConnection;
use crate::fragment::{ColumnRef, Fragment};
use crate::model::Model;
use crate::relations::select_related::JoinedSelect;

/// Loads `(C, P)` pairs; written by [`relation!`](crate::relation) for concrete types.
#[doc(hidden)]
pub type LoadJoined<C, P> =
    fn(&JoinedSelect<C, P>, &mut AnyConnection) -> diesel::QueryResult<Vec<(C, P)>>;

/// Steps through `(C, P)` pairs as SQLite returns them; written by [`relation!`](crate::relation).
#[doc(hidden)]
pub type IterJoined<C, P> = for<'c> fn(
    JoinedSelect<C, P>,
    &'c mut AnyConnection,
) -> diesel::QueryResult<
    Box<dyn Iterator<Item = diesel::QueryResult<(C, P)>> + 'c>,
>;

/// A many-to-one relation: each `C` row points at one `P` row through a column of
/// `C`'s table (`Message::sent_by`: message → person through `sent_by_id`).
///
/// Declared with [`relation!`](crate::relation); a typed value, so a misspelled
/// relation or one of another model does not compile.
pub struct ForeignKey<C: Model, P: Model> {
    /// The relation's name (`"sent_by"`).
    pub name: &'static str,
    #[doc(hidden)]
    pub column: fn() -> ColumnRef,
    #[doc(hidden)]
    pub value: fn(&C) -> i64,
    #[doc(hidden)]
    pub key_in: fn(Vec<i64>) -> Fragment,
    #[doc(hidden)]
    pub load_joined: LoadJoined<C, P>,
    #[doc(hidden)]
    pub iter_joined: IterJoined<C, P>,
    #[doc(hidden)]
    pub _models: PhantomData<fn() -> (C, P)>,
}

impl<C: Model, P: Model> Clone for ForeignKey<C, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C: Model, P: Model> Copy for ForeignKey<C, P> {}

impl<C: Model, P: Model> std::fmt::Debug for ForeignKey<C, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{} -> {}", C::NAME, self.name, P::NAME)
    }
}

/// Declares a foreign key and its reverse relation:
///
/// ```text
/// orm::relation! {
///     Message.sent_by -> Person (weave_message::sent_by_id), reverse Person.messages;
/// }
/// ```
///
/// makes `Message::sent_by` (a [`ForeignKey`] for
/// [`select_related`](crate::QuerySet::select_related)) and `Person::messages()` (a
/// [`Reverse`](crate::relations::Reverse) hop for [`prefetch`](crate::QuerySet::prefetch)).
/// The tables must be joinable (`diesel::joinable!` + `allow_tables_to_appear_in_same_query!`).
#[macro_export]
macro_rules! relation {
    ($(
        $child:ident . $name:ident -> $parent:ident ($table:ident :: $column:ident)
        $(, reverse $rparent:ident . $reverse:ident)? ;
    )+) => {$(
        impl $child {
            #[allow(non_upper_case_globals)]
            #[doc = concat!("The many-to-one relation `", stringify!($child), "` → `", stringify!($parent), "` through `", stringify!($column), "`.")]
            pub const $name: $crate::relations::ForeignKey<$child, $parent> = $crate::relations::ForeignKey {
                name: stringify!($name),
                column: || $crate::ColumnRef::of($table::$column),
                value: |row: &$child| row.$column,
                key_in: |keys: ::std::vec::Vec<i64>| {
                    use $crate::__private::diesel::ExpressionMethods as _;
                    ::std::sync::Arc::new($table::$column.eq_any(keys))
                },
                load_joined: |statement, conn| {
                    $crate::__private::diesel::RunQueryDsl::load::<($child, $parent)>(statement, conn)
                },
                iter_joined: {
                    fn iter_joined<'c>(
                        statement: $crate::relations::JoinedSelect<$child, $parent>,
                        conn: &'c mut $crate::AnyConnection,
                    ) -> $crate::__private::diesel::QueryResult<
                        ::std::boxed::Box<dyn ::std::iter::Iterator<Item = $crate::__private::diesel::QueryResult<($child, $parent)>> + 'c>,
                    > {
                        let rows = $crate::__private::diesel::RunQueryDsl::load_iter::<
                            ($child, $parent),
                            $crate::__private::diesel::connection::DefaultLoadingMode,
                        >(statement, conn)?;
                        ::std::result::Result::Ok(::std::boxed::Box::new(rows))
                    }
                    iter_joined
                },
                _models: ::std::marker::PhantomData,
            };
        }

        $(
            impl $rparent {
                #[doc = concat!("The `", stringify!($child), "` rows pointing at a `", stringify!($rparent), "`: a prefetch hop.")]
                pub fn $reverse() -> $crate::relations::Reverse<$rparent, $child> {
                    $crate::relations::Reverse::new($child::$name)
                }
            }
        )?
    )+};
}
