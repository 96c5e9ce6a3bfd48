//! Relations: foreign keys declared with [`relation!`](crate::relation), loaded by JOIN
//! ([`QuerySet::select_related`](crate::QuerySet::select_related)), one query per
//! hop ([`QuerySet::prefetch`](crate::QuerySet::prefetch)), or one row on purpose
//! ([`ForeignKey::get`], [`Reverse::all_for`]).

mod foreign_key;
mod hint;
mod prefetch;
mod select_related;

pub(crate) use hint::fix_at;

pub use foreign_key::{ForeignKey, KeyOf, Link, NullableForeignKey};
pub use prefetch::{
    Also, Forward, Hop, HopOutput, Many, Nested, One, PrefetchSet, Prefetched, Reverse,
    ReverseRelated, Shape, Single,
};
pub use select_related::{Join, JoinClause, JoinSet, Related, Then};
