//! Relations: foreign keys declared with [`relation!`](crate::relation), loaded by JOIN
//! ([`QuerySet::select_related`](crate::QuerySet::select_related)) or one query per
//! hop ([`QuerySet::prefetch`](crate::QuerySet::prefetch)).

mod foreign_key;
mod prefetch;
mod select_related;

pub use foreign_key::ForeignKey;
pub(crate) use prefetch::attach;
pub use prefetch::{Hop, Prefetched, Reverse, ReverseRelated};
pub use select_related::{JoinedSelect, Related};
