//! `use orm::prelude::*;` brings the traits and types querysets need, and diesel's
//! expression methods (`eq`, `like`, `desc`, ...).

pub use crate::connection::{AnyConnection, AsConnection, Backend};
pub use crate::count::Count;
pub use crate::database::Database;
pub use crate::explain::ExplainOptions;
pub use crate::key::KeyExpressionMethods;
pub use crate::model::Model;
pub use crate::queryset::values::InValuesMethods;
pub use crate::queryset::QuerySet;
pub use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, TextExpressionMethods,
};
