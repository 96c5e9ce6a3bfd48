//! Relations: foreign keys declared with [`relation!`](crate::relation), loaded by JOIN
//! ([`QuerySet::select_related`](crate::QuerySet::select_related)), one query per
//! hop ([`QuerySet::prefetch`](crate::QuerySet::prefetch)), or one row on purpose
//! ([`ForeignKey::get`], [`Reverse::all_for`]).

mod foreign_key;
mod forward;
mod hint;
mod hop;
mod key_list;
mod lookup;
mod nested;
mod prefetch;
mod reverse;
mod select_related;

pub(crate) use foreign_key::pk_eq;
pub(crate) use hint::fix_at;

pub use foreign_key::{ForeignKey, KeyOf, Link, NullableForeignKey};
pub use forward::Forward;
pub use hop::{Hop, HopOutput, Many, One, Shape};
pub(crate) use lookup::Unrenderable;
pub use lookup::{Condition, RelatedAggregate, RelatedOrdering};
pub use nested::Nested;
pub use prefetch::{Also, PrefetchSet, Prefetched, Single};
pub use reverse::{Reverse, ReverseRelated};
pub use select_related::{
    Aliased, AliasedThen, ColumnNames, Join, JoinClause, JoinSet, NullableThen, Related, Then,
};
