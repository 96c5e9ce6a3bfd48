//! Forward hops: each row's parent through a foreign key (a message's sender).

use std::panic::Location;

use super::hop::{Hop, One};
use super::key_list::{fetch_keyed, key_filter};
use super::nested::Nested;
use super::{ForeignKey, Link, NullableForeignKey};
use crate::connection::{AnyConnection, Backend};
use crate::error::Result;
use crate::fragment::ColumnRef;
use crate::model::Model;
use crate::queryset::run::run_read as run;
use crate::queryset::QuerySet;

/// A foreign key as a prefetch hop, with a queryset of its own for the parent rows
/// (Django's `Prefetch("sent_by", queryset=...)`). Made by
/// [`ForeignKey::using`](super::ForeignKey::using) or
/// [`NullableForeignKey::using`](super::NullableForeignKey::using); a bare foreign key is
/// the same hop over `P::objects().with_deleted()`.
pub struct Forward<C, P: Model> {
    link: Link<C, P>,
    qs: QuerySet<P>,
}

impl<C, P: Model> Clone for Forward<C, P> {
    fn clone(&self) -> Self {
        Self {
            link: self.link,
            qs: self.qs.clone(),
        }
    }
}

impl<C: Model, P: Model> Forward<C, P> {
    fn new(link: Link<C, P>) -> Self {
        Self {
            link,
            qs: P::objects().with_deleted(),
        }
    }

    /// Then prefetches `next` for the rows this hop loads (each message's sender, then
    /// each sender's messages): one more query.
    pub fn prefetch<H: Hop<P>>(self, next: H) -> Nested<Self, H> {
        Nested { first: self, next }
    }

    /// The SQL of this hop's query for parent keys `keys` on `backend`.
    pub fn sql_for(&self, keys: &[P::Key], backend: Backend) -> Result<String> {
        let filter = key_filter(
            backend,
            ColumnRef::of(P::PrimaryKey::default()),
            P::pk_in,
            keys,
        );
        let qs = self.qs.clone().unordered().filter_fragment(filter);
        qs.sql(backend)
    }
}

impl<C: Model, P: Model + Clone> Hop<C> for Forward<C, P> {
    type Shape = One;
    type Row = P;
    type Key = P::Key;

    fn key(&self, child: &C) -> Option<P::Key> {
        self.link.value.get(child)
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[P::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(P::Key, P)>> {
        let column = ColumnRef::of(P::PrimaryKey::default());
        fetch_keyed(conn, keys, column, P::pk_in, |conn, filter| {
            let statement = self
                .qs
                .clone()
                .unordered()
                .filter_fragment(filter)
                .select_statement();
            let rows = run(site, || P::load_rows(&statement, conn))?;
            Ok(rows.into_iter().map(|row| (row.pk(), row)).collect())
        })
    }
}

macro_rules! forward_hop {
    ($ty:ident) => {
        impl<C: Model, P: Model> $ty<C, P> {
            /// A prefetch hop over this foreign key whose parent rows come from `qs`
            /// (filters, soft delete): a row whose parent `qs` excludes gets `None`.
            pub fn using(self, qs: QuerySet<P>) -> Forward<C, P> {
                Forward {
                    link: self.link,
                    qs,
                }
            }
        }

        impl<C: Model, P: Model + Clone> Hop<C> for $ty<C, P> {
            type Shape = One;
            type Row = P;
            type Key = P::Key;

            fn key(&self, child: &C) -> Option<P::Key> {
                self.link.value.get(child)
            }

            fn fetch(
                &self,
                conn: &mut AnyConnection,
                keys: &[P::Key],
                site: &'static Location<'static>,
            ) -> Result<Vec<(P::Key, P)>> {
                Forward::new(self.link).fetch(conn, keys, site)
            }
        }

        impl<C, P: Model> From<$ty<C, P>> for Link<C, P> {
            fn from(fk: $ty<C, P>) -> Self {
                fk.link
            }
        }
    };
}

forward_hop!(ForeignKey);
forward_hop!(NullableForeignKey);
