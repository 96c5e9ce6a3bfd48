//! What the library needs to know of a column's SQL type: whether it can be NULL,
//! and which kind of value stands for it in a keyset cursor.
//!
//! Every ordering column's SQL type implements [`SqlTypeInfo`]: diesel's types do
//! here; a SQL type of your own (a PostgreSQL enum from `print-schema`, say)
//! implements it in one line, `impl orm::SqlTypeInfo for MyEnum {}` (it then orders
//! querysets but is no cursor column).

use diesel::sql_types;

/// The kind of value that stands for a column in a keyset cursor
/// ([`CursorValue`](crate::paginate::CursorValue)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueKind {
    /// `CursorValue::Bool`.
    Bool,
    /// `CursorValue::Int` (any integer width).
    Int,
    /// `CursorValue::Float`.
    Float,
    /// `CursorValue::Text`.
    Text,
    /// `CursorValue::Timestamp`, bound as `Timestamp`.
    Timestamp,
    /// `CursorValue::Timestamp` (UTC), bound as `Timestamptz`.
    Timestamptz,
    /// `CursorValue::Date`.
    Date,
    /// `CursorValue::Time`.
    Time,
    /// `CursorValue::Uuid`.
    Uuid,
    /// `CursorValue::Decimal`.
    Decimal,
    /// No cursor value stands for it.
    Other,
}

/// A SQL type's nullability and cursor kind; see the [module docs](self).
pub trait SqlTypeInfo {
    /// The cursor kind of its values (default [`ValueKind::Other`]).
    const KIND: ValueKind = ValueKind::Other;
    /// Whether the column can hold NULL (`Nullable<..>` in `table!`).
    const NULLABLE: bool = false;
}

macro_rules! sql_type_info {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl SqlTypeInfo for $ty {
            const KIND: ValueKind = ValueKind::$kind;
        }
    )*};
}

sql_type_info! {
    sql_types::Bool => Bool,
    sql_types::SmallInt => Int,
    sql_types::Integer => Int,
    sql_types::BigInt => Int,
    sql_types::Float => Float,
    sql_types::Double => Float,
    sql_types::Text => Text,
    sql_types::Timestamp => Timestamp,
    sql_types::Binary => Other,
    sql_types::Date => Date,
    sql_types::Time => Time,
    sql_types::Numeric => Decimal,
    sql_types::Timestamptz => Timestamptz,
    sql_types::Uuid => Uuid,
    sql_types::Json => Other,
    sql_types::Jsonb => Other,
    sql_types::Interval => Other,
}

impl<T: SqlTypeInfo> SqlTypeInfo for sql_types::Nullable<T> {
    const KIND: ValueKind = T::KIND;
    const NULLABLE: bool = true;
}

/// A column's [`SqlTypeInfo`], as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnType {
    /// Its cursor kind.
    pub kind: ValueKind,
    /// Whether it can hold NULL.
    pub nullable: bool,
}

impl ColumnType {
    /// The type of `T`.
    pub const fn of<T: SqlTypeInfo>() -> Self {
        Self {
            kind: T::KIND,
            nullable: T::NULLABLE,
        }
    }
}
