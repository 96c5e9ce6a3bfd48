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

    /// The same, owning the row's values (a statement that outlives the row).
    #[doc(hidden)]
    fn into_row_values(self) -> RowValues<'static>;

    /// Sends the rows with binary `COPY ... FROM STDIN` on PostgreSQL.
    #[doc(hidden)]
    fn copy_in(rows: &[Self], conn: &mut diesel::PgConnection) -> QueryResult<usize>;

    /// Whether the row has no timestamp fields and the write adds the model's
    /// `created`/`updated` columns itself (`insertable!(.., add_timestamps)`).
    const ADDS_TIMESTAMPS: bool = false;
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
pub struct RowValues<'a>(Box<dyn ErasedValues + Send + Sync + 'a>);

impl<'a> RowValues<'a> {
    /// Wraps diesel's insert values of table `T`.
    pub fn new<T, V>(values: V) -> Self
    where
        T: Table + 'a,
        V: InsertValues<Db, T> + Send + Sync + 'a,
    {
        RowValues(Box::new(Typed::<T, V>(values, PhantomData)))
    }

    /// Wraps diesel's insert values of table `T` with types only PostgreSQL has
    /// (arrays, enums): on SQLite the statement is
    /// [`Error::Unsupported`](crate::Error::Unsupported) before any SQL.
    pub fn postgres<T, V>(values: V) -> Self
    where
        T: Table + 'a,
        V: InsertValues<diesel::pg::Pg, T> + Send + Sync + 'a,
    {
        RowValues(Box::new(PostgresValues::<T, V>(values, PhantomData)))
    }

    /// These values followed by model `M`'s `created` and `updated` columns, both
    /// now (bound as the columns' type), for a row type without those fields.
    pub fn stamped<M: Model>(self) -> Self {
        match (M::created_column(), M::updated_column()) {
            (Some(created), Some(updated)) => {
                let updated_stamp = crate::bulk::statement::Stamp::now::<M>();
                let created_stamp = crate::bulk::statement::Stamp {
                    zoned: M::created_zoned(),
                    ..updated_stamp
                };
                RowValues(Box::new(Stamped {
                    inner: self,
                    stamps: [(created.name, created_stamp), (updated.name, updated_stamp)],
                }))
            }
            _ => self,
        }
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

/// A row's values with the model's timestamp columns added.
struct Stamped<'a> {
    inner: RowValues<'a>,
    /// `created` and `updated`, each with the time bound as its column's type.
    stamps: [(&'static str, crate::bulk::statement::Stamp); 2],
}

impl ErasedValues for Stamped<'_> {
    fn walk_values<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        self.inner.0.walk_values(out.reborrow())?;
        for (_, stamp) in &self.stamps {
            out.push_sql(", ");
            stamp.walk(&mut out)?;
        }
        Ok(())
    }

    fn walk_columns(&self, mut out: AstPass<'_, '_, Db>) -> QueryResult<()> {
        self.inner.0.walk_columns(out.reborrow())?;
        for (name, _) in self.stamps {
            out.push_sql(", ");
            out.push_identifier(name)?;
        }
        Ok(())
    }
}

/// PostgreSQL-typed insert values, walked through the PostgreSQL arm of the
/// multi-backend connection.
struct PostgresValues<T, V>(V, PhantomData<fn() -> T>);

impl<T: Table, V: InsertValues<diesel::pg::Pg, T>> QueryFragment<diesel::pg::Pg>
    for PostgresValues<T, V>
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

impl<T, V> QueryFragment<diesel::sqlite::Sqlite> for PostgresValues<T, V> {
    fn walk_ast<'b>(&'b self, _: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        Err(postgres_only())
    }
}

/// The column names of PostgreSQL-typed insert values.
struct PostgresColumns<'v, T, V>(&'v V, PhantomData<fn() -> T>);

impl<T: Table, V: InsertValues<diesel::pg::Pg, T>> QueryFragment<diesel::pg::Pg>
    for PostgresColumns<'_, T, V>
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        self.0.column_names(out)
    }
}

fn postgres_only() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(Box::new(crate::types::PostgresOnlyRows))
}

impl<T: Table, V: InsertValues<diesel::pg::Pg, T>> ErasedValues for PostgresValues<T, V> {
    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        crate::MultiBackend::walk_variant_ast(self, out)
    }

    fn walk_columns(&self, mut out: AstPass<'_, '_, Db>) -> QueryResult<()> {
        if crate::Backend::rendering(out.backend()) != crate::Backend::Postgres {
            return Err(postgres_only());
        }
        // Identifiers only, as diesel quotes them for PostgreSQL: no values.
        let mut builder = diesel::pg::PgQueryBuilder::default();
        PostgresColumns::<T, V>(&self.0, PhantomData).to_sql(&mut builder, &diesel::pg::Pg)?;
        out.push_sql(&diesel::query_builder::QueryBuilder::<diesel::pg::Pg>::finish(builder));
        Ok(())
    }
}

/// Declares a diesel `Insertable` struct as a [`NewRow`] of a model, so that
/// `create`, `bulk_create` and COPY accept it.
///
/// ```text
/// orm::insertable! { NewMessage => Message, timestamps: (created, updated) }
/// ```
///
/// `add_timestamps` (instead of `timestamps`) is for a row type without those
/// fields: each INSERT adds the model's `created` and `updated` columns, set to now
/// (no placeholder values to write); such rows are inserted, never copied.
///
/// `timestamps` names the struct's `created` and `updated` fields
/// (`chrono::NaiveDateTime` in UTC or `chrono::DateTime<Utc>`, see [`WriteTime`]),
/// which every write sets to now; leave it out for a row
/// type without them (the table's column defaults then apply). The struct must derive `Insertable` with
/// `#[diesel(treat_none_as_default_value = false)]`: without it SQLite cannot put
/// many rows in one `INSERT`, and PostgreSQL's binary COPY does not compile.
#[macro_export]
macro_rules! insertable {
    ($row:ty => $model:ty, backend: postgres $(, timestamps: ($created:ident, $updated:ident))? $(,)?) => {
        $crate::insertable!(@impl $row => $model, postgres $(, timestamps: ($created, $updated))?);
    };
    ($row:ty => $model:ty, add_timestamps $(,)?) => {
        $crate::insertable!(@impl $row => $model, new, add);
    };
    ($row:ty => $model:ty $(, timestamps: ($created:ident, $updated:ident))? $(,)?) => {
        $crate::insertable!(@impl $row => $model, new $(, timestamps: ($created, $updated))?);
    };
    (@impl $row:ty => $model:ty, $values:ident, add) => {
        impl $crate::bulk::NewRow for $row {
            type Model = $model;
            const ADDS_TIMESTAMPS: bool = true;

            fn set_timestamps(&mut self, _now: $crate::__private::chrono::NaiveDateTime) {}

            fn row_values(&self) -> $crate::bulk::RowValues<'_> {
                $crate::bulk::RowValues::$values::<<$model as $crate::Model>::Table, _>(
                    $crate::__private::diesel::Insertable::<<$model as $crate::Model>::Table>::values(self).values,
                )
                .stamped::<$model>()
            }

            fn into_row_values(self) -> $crate::bulk::RowValues<'static> {
                $crate::bulk::RowValues::$values::<<$model as $crate::Model>::Table, _>(
                    $crate::__private::diesel::Insertable::<<$model as $crate::Model>::Table>::values(self).values,
                )
                .stamped::<$model>()
            }

            fn copy_in(
                _rows: &[Self],
                _conn: &mut $crate::__private::diesel::PgConnection,
            ) -> $crate::__private::diesel::QueryResult<usize> {
                ::std::result::Result::Err($crate::__private::diesel::result::Error::QueryBuilderError(
                    "rows without timestamp fields are inserted, not copied".into(),
                ))
            }
        }
    };
    (@impl $row:ty => $model:ty, $values:ident $(, timestamps: ($created:ident, $updated:ident))?) => {
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
                $crate::bulk::RowValues::$values::<<$model as $crate::Model>::Table, _>(
                    $crate::__private::diesel::Insertable::<<$model as $crate::Model>::Table>::values(self).values,
                )
            }

            fn into_row_values(self) -> $crate::bulk::RowValues<'static> {
                $crate::bulk::RowValues::$values::<<$model as $crate::Model>::Table, _>(
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
