//! `NewRow`: a row to insert, and the `insertable!` macro that implements it.

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::insertable::InsertValues;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::{QueryResult, Table};

use crate::connection::Db;
use crate::model::Model;

/// A row to insert into `Self::Model`'s table: a struct deriving diesel's
/// `Insertable` (with `#[diesel(treat_none_as_default_value = false)]`), declared
/// with [`insertable!`](crate::insertable).
///
/// The ORM sets the row's `created` and `updated` fields to the time of the write
/// (as Django's `auto_now_add` / `auto_now`), unless the write is told to keep them
/// ([`BulkCreate::keep_timestamps`](crate::bulk::BulkCreate::keep_timestamps), for
/// imports and fixtures that carry their own history).
pub trait NewRow: Sized + Send {
    /// The model whose table the row goes into.
    type Model: Model;

    /// Sets the timestamp fields (`created`, `updated`) to `now`; does nothing for a
    /// row without them.
    fn set_timestamps(&mut self, now: NaiveDateTime);

    /// The row's column names and values, for a multi-row `INSERT`.
    #[doc(hidden)]
    fn row_values(&self) -> RowValues<'_>;

    /// Sends the rows with binary `COPY ... FROM STDIN` on PostgreSQL.
    #[doc(hidden)]
    fn copy_in(rows: &[Self], conn: &mut diesel::PgConnection) -> QueryResult<usize>;
}

/// The type of a row's `created` and `updated` fields: `chrono::NaiveDateTime` (UTC)
/// or `chrono::DateTime<Utc>`, set to the time of the write.
pub trait WriteTime {
    /// `now` (UTC) as this type.
    fn from_utc(now: NaiveDateTime) -> Self;
}

impl WriteTime for NaiveDateTime {
    fn from_utc(now: NaiveDateTime) -> Self {
        now
    }
}

impl WriteTime for chrono::DateTime<chrono::Utc> {
    fn from_utc(now: NaiveDateTime) -> Self {
        now.and_utc()
    }
}

/// One row's column names and values, type-erased (made by [`insertable!`](crate::insertable)).
#[doc(hidden)]
pub struct RowValues<'a>(Box<dyn ErasedValues + Send + 'a>);

impl<'a> RowValues<'a> {
    /// Wraps diesel's insert values of table `T`.
    pub fn new<T, V>(values: V) -> Self
    where
        T: Table + 'a,
        V: InsertValues<Db, T> + Send + 'a,
    {
        RowValues(Box::new(Typed::<T, V>(values, PhantomData)))
    }

    /// `"a", "b", ...` (unqualified, as an INSERT's column list requires).
    pub(crate) fn walk_column_names(&self, out: AstPass<'_, '_, Db>) -> QueryResult<()> {
        self.0.walk_columns(out)
    }
}

impl QueryFragment<Db> for RowValues<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_values(out)
    }
}

trait ErasedValues {
    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()>;
    fn walk_columns(&self, out: AstPass<'_, '_, Db>) -> QueryResult<()>;
}

struct Typed<T, V>(V, PhantomData<fn() -> T>);

impl<T: Table, V: InsertValues<Db, T>> ErasedValues for Typed<T, V> {
    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn walk_columns(&self, out: AstPass<'_, '_, Db>) -> QueryResult<()> {
        self.0.column_names(out)
    }
}

/// Declares a diesel `Insertable` struct as a [`NewRow`] of a model, so that
/// `create`, `bulk_create` and COPY accept it.
///
/// ```text
/// orm::insertable! { NewMessage => Message, timestamps: (created, updated) }
/// ```
///
/// `timestamps` names the struct's `created` and `updated` fields
/// (`chrono::NaiveDateTime` in UTC or `chrono::DateTime<Utc>`, see [`WriteTime`]),
/// which every write sets to now; leave it out for a row
/// type without them (the table's column defaults then apply). The struct must derive `Insertable` with
/// `#[diesel(treat_none_as_default_value = false)]`: without it SQLite cannot put
/// many rows in one `INSERT`, and PostgreSQL's binary COPY does not compile.
#[macro_export]
macro_rules! insertable {
    ($row:ty => $model:ty $(, timestamps: ($created:ident, $updated:ident))? $(,)?) => {
        impl $crate::bulk::NewRow for $row {
            type Model = $model;

            #[allow(unused_variables)]
            fn set_timestamps(&mut self, now: $crate::__private::chrono::NaiveDateTime) {
                $(
                    self.$created = $crate::bulk::WriteTime::from_utc(now);
                    self.$updated = $crate::bulk::WriteTime::from_utc(now);
                )?
            }

            fn row_values(&self) -> $crate::bulk::RowValues<'_> {
                $crate::bulk::RowValues::new::<<$model as $crate::Model>::Table, _>(
                    $crate::__private::diesel::Insertable::<<$model as $crate::Model>::Table>::values(self).values,
                )
            }

            fn copy_in(
                rows: &[Self],
                conn: &mut $crate::__private::diesel::PgConnection,
            ) -> $crate::__private::diesel::QueryResult<usize> {
                $crate::__private::diesel::ExecuteCopyFromDsl::execute(
                    $crate::__private::diesel::copy_from(
                        <<$model as $crate::Model>::Table as ::std::default::Default>::default(),
                    )
                    .from_insertable(rows),
                    conn,
                )
            }
        }
    };
}
