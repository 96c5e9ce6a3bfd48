//! The `Model` trait and the `model!` macro that implements it.

use diesel::expression::SelectableHelper;
use diesel::expression::{is_aggregate, AppearsOnTable, ValidGrouping};
use diesel::query_builder::{QueryFragment, QueryId};
use diesel::{Column, Expression, Selectable, Table};

use crate::connection::Db;
use crate::fragment::{ColumnRef, Fragment};
use crate::key::Key;
use crate::ordering::OrderTerm;
use crate::queryset::QuerySet;

/// A table's row type with what the ORM needs to know about it.
///
/// Implement it with [`model!`](crate::model); the row struct itself derives diesel's
/// `Queryable` and `Selectable` as usual.
pub trait Model:
    Selectable<Db, SelectExpression: QueryFragment<Db> + QueryId + Send + Sync> + Sized + Send + 'static
{
    /// The diesel table.
    type Table: Table + QueryFragment<Db> + Default + Copy + Send + Sync + 'static;

    /// The primary key's Rust type (`i16`, `i32`, `i64` or `String`), which
    /// [`model!`](crate::model) reads from the key column's SQL type.
    type Key: Key;

    /// The primary key column.
    type PrimaryKey: Column<Table = Self::Table>
        + Expression<SqlType = <Self::Key as Key>::SqlType>
        + AppearsOnTable<Self::Table>
        + ValidGrouping<(), IsAggregate = is_aggregate::No>
        + QueryFragment<Db>
        + QueryFragment<diesel::pg::Pg>
        + QueryFragment<diesel::sqlite::Sqlite>
        + Default
        + Copy
        + Send
        + Sync
        + 'static;

    /// The model's name, used in error messages (`Message matching query does not exist`).
    const NAME: &'static str;

    /// This row's primary key.
    fn pk(&self) -> Self::Key;

    /// `pk IN keys` (`= ANY($1)` on PostgreSQL). Implemented by
    /// [`model!`](crate::model), where the key column's type is concrete.
    #[doc(hidden)]
    fn pk_in(keys: Vec<Self::Key>) -> Fragment;

    /// The ordering of `objects()` when `order_by` is not called (default: none).
    fn default_ordering() -> Vec<OrderTerm> {
        Vec::new()
    }

    /// The boolean soft-delete column, for models that hide deleted rows.
    fn soft_delete_column() -> Option<ColumnRef> {
        None
    }

    /// The `created` timestamp column the ORM sets on insert.
    fn created_column() -> Option<ColumnRef> {
        None
    }

    /// The `updated` timestamp column the ORM sets on every write.
    fn updated_column() -> Option<ColumnRef> {
        None
    }

    /// Whether the timestamp columns are `Timestamptz` (the time is then bound as
    /// one, never converted with the session's time zone).
    #[doc(hidden)]
    fn timestamps_zoned() -> bool {
        false
    }

    /// Whether the `created` column is a `Timestamptz` (as [`timestamps_zoned`]
    /// says of `updated`).
    ///
    /// [`timestamps_zoned`]: Self::timestamps_zoned
    #[doc(hidden)]
    fn created_zoned() -> bool {
        Self::timestamps_zoned()
    }

    /// The value of `column` in this row, for keyset pagination cursors.
    /// [`model!`](crate::model) implements it for the fields listed in
    /// `cursor_columns`; the primary key is read through [`pk`](Self::pk).
    fn cursor_value(&self, column: &str) -> Option<crate::value::CursorValue> {
        let _ = column;
        None
    }

    /// Whether Rust orders the values of `column` exactly as SQL does (integers,
    /// booleans, timestamps; not text, whose order is the database's collation, nor
    /// floating point). [`model!`](crate::model) answers for the fields listed in
    /// `cursor_columns`, from their types; the primary key always qualifies.
    fn orders_like_sql(column: &str) -> bool {
        let _ = column;
        false
    }

    /// A lazy queryset over this model's rows: soft-deleted rows hidden, default
    /// ordering applied. Nothing runs until a terminal method.
    #[doc(alias = "all")]
    fn objects() -> QuerySet<Self> {
        QuerySet::new()
    }

    /// Loads the rows of a statement. Implemented by [`model!`](crate::model), where
    /// the model's type is concrete and diesel can check the row type.
    #[doc(hidden)]
    fn load_rows(
        statement: &crate::__private::ModelSelect<Self>,
        conn: &mut crate::AnyConnection,
    ) -> diesel::QueryResult<Vec<Self>>;

    /// Loads rows of this model from any statement that returns its columns
    /// (`INSERT ... RETURNING`). Implemented by [`model!`](crate::model).
    #[doc(hidden)]
    fn load_statement(
        statement: &crate::__private::Statement,
        conn: &mut crate::AnyConnection,
    ) -> diesel::QueryResult<Vec<Self>>;

    /// Steps through the rows of a statement as the database returns them (SQLite;
    /// on PostgreSQL the multi-backend connection buffers the whole result).
    #[doc(hidden)]
    #[allow(clippy::type_complexity)]
    fn iter_rows<'c>(
        statement: crate::__private::ModelSelect<Self>,
        conn: &'c mut crate::AnyConnection,
    ) -> diesel::QueryResult<Box<dyn Iterator<Item = diesel::QueryResult<Self>> + 'c>>;

    /// The selection diesel uses to load this model.
    #[doc(hidden)]
    fn selection() -> diesel::helper_types::AsSelect<Self, Db> {
        <Self as SelectableHelper<Db>>::as_select()
    }
}

/// Implements [`Model`] for a diesel row struct in a few lines.
///
/// ```
/// diesel::table! {
///     book (id) {
///         id -> BigInt,
///         title -> Text,
///         deleted -> Bool,
///         created -> Timestamp,
///         updated -> Timestamp,
///     }
/// }
///
/// #[derive(Debug, diesel::Queryable, diesel::Selectable)]
/// #[diesel(table_name = book)]
/// struct Book {
///     id: i64,
///     title: String,
///     deleted: bool,
///     created: chrono::NaiveDateTime,
///     updated: chrono::NaiveDateTime,
/// }
///
/// orm::model! {
///     Book => book {
///         primary_key: id,
///         ordering: (book::updated.desc(), book::id.desc()),
///         soft_delete: deleted,
///         timestamps: (created, updated),
///         cursor_columns: (updated, title),
///     }
/// }
///
/// use orm::prelude::*;
/// let sql = Book::objects().filter(book::title.eq("Dune")).sql(Backend::Postgres)?;
/// assert_eq!(
///     sql,
///     r#"SELECT "book"."id", "book"."title", "book"."deleted", "book"."created", "book"."updated" FROM "book" WHERE ("book"."deleted" = false) AND (("book"."title" = $1)) ORDER BY "book"."updated" DESC, "book"."id" DESC"#
/// );
/// # Ok::<(), orm::Error>(())
/// ```
///
/// Every key but `primary_key` is optional; they must come in this order.
///
/// The model's key type ([`Model::Key`]) follows from the primary key column's SQL
/// type: `SmallInt` is `i16`, `Integer` `i32`, `BigInt` `i64`, `Text` `String`
/// (see [`KeyType`](crate::KeyType)). A field named unlike its column
/// (`#[diesel(column_name = ...)]`) is written `column as field`, in `primary_key`
/// and in `cursor_columns`. Composite primary keys do not compile:
///
/// ```compile_fail
/// diesel::table! { stock (warehouse, sku) { warehouse -> Integer, sku -> Text, } }
/// #[derive(diesel::Queryable, diesel::Selectable)]
/// #[diesel(table_name = stock)]
/// struct Stock { warehouse: i32, sku: String }
/// orm::model! { Stock => stock { primary_key: (warehouse, sku) } }
/// ```
///
/// `cursor_columns` lists the fields (by their columns) whose values the ORM may
/// read: keyset pagination reads them when the ordering uses them, and on PostgreSQL a
/// prefetch hop ordered only by such fields of integer, boolean or timestamp type is
/// ordered in Rust instead of by the server (see [`QuerySet::prefetch`](crate::QuerySet::prefetch)); the primary
/// key needs no entry.
#[macro_export]
macro_rules! model {
    (
        $model:ident => $table:ident {
            primary_key: ($($pks:ident),+ $(,)?)
            $($rest:tt)*
        }
    ) => {
        ::core::compile_error!(
            "orm::model!: composite primary keys are not supported; declare the table with a single-column key (a surrogate `id`, with a UNIQUE constraint over the natural key columns)"
        );
    };
    (
        $model:ident => $table:ident {
            primary_key: $pk:ident $(as $pk_field:ident)?
            $(, ordering: $ordering:expr)?
            $(, soft_delete: $deleted:ident)?
            $(, timestamps: ($created:ident, $updated:ident))?
            $(, cursor_columns: ($($cursor:ident $(as $cursor_field:ident)?),+ $(,)?))?
            $(,)?
        }
    ) => {
        impl $crate::Model for $model {
            type Table = $table::table;
            type Key = <<$table::$pk as $crate::__private::diesel::Expression>::SqlType as $crate::KeyType>::Key;
            type PrimaryKey = $table::$pk;
            const NAME: &'static str = stringify!($model);

            fn pk(&self) -> Self::Key {
                ::std::convert::Into::into(::std::clone::Clone::clone(
                    &$crate::model!(@field self, $pk $(, $pk_field)?),
                ))
            }

            fn pk_in(keys: ::std::vec::Vec<Self::Key>) -> $crate::__private::Fragment {
                $crate::__private::key_in($crate::ColumnRef::of($table::$pk), keys)
            }

            fn load_rows(
                statement: &$crate::__private::ModelSelect<Self>,
                conn: &mut $crate::AnyConnection,
            ) -> $crate::__private::diesel::QueryResult<::std::vec::Vec<Self>> {
                // Rows decode with the inner backend's own types (see `Direct`).
                <Self as $crate::__private::DirectRows<$crate::__private::ModelSelect<Self>>>::load_direct(
                    statement, conn,
                )
            }

            fn load_statement(
                statement: &$crate::__private::Statement,
                conn: &mut $crate::AnyConnection,
            ) -> $crate::__private::diesel::QueryResult<::std::vec::Vec<Self>> {
                <Self as $crate::__private::DirectRows<$crate::__private::Statement>>::load_direct(
                    statement, conn,
                )
            }

            fn iter_rows<'c>(
                statement: $crate::__private::ModelSelect<Self>,
                conn: &'c mut $crate::AnyConnection,
            ) -> $crate::__private::diesel::QueryResult<
                ::std::boxed::Box<dyn ::std::iter::Iterator<Item = $crate::__private::diesel::QueryResult<Self>> + 'c>,
            > {
                if let $crate::AnyConnection::Postgresql(_) = conn {
                    // PostgreSQL's multi-backend connection buffers the result anyway.
                    let rows = <Self as $crate::Model>::load_rows(&statement, conn)?;
                    return ::std::result::Result::Ok(::std::boxed::Box::new(
                        ::std::iter::IntoIterator::into_iter(rows).map(::std::result::Result::Ok),
                    ));
                }
                <Self as $crate::__private::SqliteIter<
                    $crate::__private::ModelSelect<Self>,
                    $crate::__private::ReadOf<Self>,
                >>::iter_sqlite(statement, conn)
            }

            $(
                fn default_ordering() -> ::std::vec::Vec<$crate::OrderTerm> {
                    #[allow(unused_imports)]
                    use $crate::__private::diesel::ExpressionMethods as _;
                    $crate::IntoOrdering::<$table::table>::into_ordering($ordering)
                }
            )?

            $(
                fn soft_delete_column() -> ::std::option::Option<$crate::ColumnRef> {
                    ::std::option::Option::Some($crate::ColumnRef::of($table::$deleted))
                }
            )?

            $(
                fn created_column() -> ::std::option::Option<$crate::ColumnRef> {
                    ::std::option::Option::Some($crate::ColumnRef::of($table::$created))
                }

                fn updated_column() -> ::std::option::Option<$crate::ColumnRef> {
                    ::std::option::Option::Some($crate::ColumnRef::of($table::$updated))
                }

                fn timestamps_zoned() -> bool {
                    <<$table::$updated as $crate::__private::diesel::Expression>::SqlType
                        as $crate::SqlTypeInfo>::KIND
                        == $crate::ValueKind::Timestamptz
                }

                fn created_zoned() -> bool {
                    <<$table::$created as $crate::__private::diesel::Expression>::SqlType
                        as $crate::SqlTypeInfo>::KIND
                        == $crate::ValueKind::Timestamptz
                }
            )?

            $(
                // Matched by the column's SQL name (`type` for a field `r#type`, the
                // `sql_name` of a renamed column), as orderings name their columns.
                fn cursor_value(
                    &self,
                    column: &str,
                ) -> ::std::option::Option<$crate::paginate::CursorValue> {
                    $(
                        if column == <$table::$cursor as $crate::__private::diesel::Column>::NAME {
                            return ::std::option::Option::Some(
                                $crate::paginate::CursorValue::from(::std::clone::Clone::clone(
                                    &$crate::model!(@field self, $cursor $(, $cursor_field)?),
                                )),
                            );
                        }
                    )+
                    ::std::option::Option::None
                }

                fn orders_like_sql(column: &str) -> bool {
                    $(
                        if column == <$table::$cursor as $crate::__private::diesel::Column>::NAME {
                            return $crate::__private::orders_like_sql(|row: &Self| {
                                &$crate::model!(@field row, $cursor $(, $cursor_field)?)
                            });
                        }
                    )+
                    false
                }
            )?
        }
    };
    // The field of a column: named as the column, or as its `as` names it.
    (@field $row:ident, $column:ident) => {
        $row.$column
    };
    (@field $row:ident, $column:ident, $field:ident) => {
        $row.$field
    };
}
