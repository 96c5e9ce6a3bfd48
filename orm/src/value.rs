//! Values below every feature: what stands for one column's value in a keyset
//! cursor, and what can be wrong with a cursor. The model layer, the error type and
//! the paginators use them; they import nothing above them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// One ordering column's value in a cursor.
///
/// `model!`'s `cursor_columns` converts fields with `From`: integers, floats,
/// `bool`, `String`, `chrono::NaiveDateTime`, `DateTime<Utc>` (as its UTC time),
/// `NaiveDate`, `NaiveTime`, `uuid::Uuid`, `bigdecimal::BigDecimal`, and `Option` of those (`None` is
/// [`CursorValue::Null`]). A field of a type of your own becomes a cursor column with
/// `impl From<MyType> for orm::paginate::CursorValue` (one of these variants), and
/// its SQL type's [`SqlTypeInfo::KIND`](crate::SqlTypeInfo::KIND) saying which.
/// The value is bound with its column's SQL type (a timestamp as `timestamptz` for
/// a `Timestamptz` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CursorValue {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (bound as `BigInt`).
    Int(i64),
    /// A floating-point number (bound as `Double`).
    Float(f64),
    /// Text.
    Text(String),
    /// A timestamp: a `Timestamp` column's value, or a `Timestamptz` column's in UTC.
    Timestamp(NaiveDateTime),
    /// A date.
    Date(NaiveDate),
    /// A time of day.
    Time(NaiveTime),
    /// A UUID.
    Uuid(uuid::Uuid),
    /// An exact decimal (`Numeric`).
    Decimal(bigdecimal::BigDecimal),
}

macro_rules! cursor_value_from {
    ($($ty:ty => $variant:ident ($conv:expr)),* $(,)?) => {$(
        impl From<$ty> for CursorValue {
            fn from(value: $ty) -> Self {
                CursorValue::$variant($conv(value))
            }
        }
    )*};
}

cursor_value_from! {
    bool => Bool(std::convert::identity),
    i16 => Int(i64::from),
    i32 => Int(i64::from),
    i64 => Int(std::convert::identity),
    f32 => Float(f64::from),
    f64 => Float(std::convert::identity),
    String => Text(std::convert::identity),
    &str => Text(str::to_owned),
    NaiveDateTime => Timestamp(std::convert::identity),
    DateTime<Utc> => Timestamp(|t: DateTime<Utc>| t.naive_utc()),
    NaiveDate => Date(std::convert::identity),
    NaiveTime => Time(std::convert::identity),
    uuid::Uuid => Uuid(std::convert::identity),
    bigdecimal::BigDecimal => Decimal(std::convert::identity),
}

impl<T: Into<CursorValue>> From<Option<T>> for CursorValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(CursorValue::Null, Into::into)
    }
}

/// What is wrong with a cursor token ([`crate::Error::InvalidCursor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CursorError {
    /// Not URL-safe base64.
    Encoding,
    /// Too short to hold a cursor: cut off.
    Truncated,
    /// Made by another layout version.
    Version {
        /// The version byte found.
        found: u8,
    },
    /// The signature does not match: forged, altered, cut off, or signed with
    /// another secret.
    Signature,
    /// Made for another ordering or model: the queryset changed since.
    Stale,
    /// Signed but unreadable.
    Malformed,
    /// A value does not fit its column's type (another kind of value, or NULL for a
    /// column that cannot be NULL).
    Mistyped {
        /// The column whose value does not fit.
        column: &'static str,
    },
}

impl std::fmt::Display for CursorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Encoding => f.write_str("not a cursor token (bad encoding)"),
            Self::Truncated => f.write_str("the token is truncated"),
            Self::Version { found } => write!(f, "unknown token version {found}"),
            Self::Signature => {
                f.write_str("the signature does not match (forged or altered token)")
            }
            Self::Stale => f.write_str("the token was made for another ordering"),
            Self::Malformed => f.write_str("the token's contents are malformed"),
            Self::Mistyped { column } => {
                write!(
                    f,
                    "the token's value for `{column}` does not fit the column's type"
                )
            }
        }
    }
}
