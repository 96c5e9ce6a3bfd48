//! A hop, then a hop from each of its rows.

use std::panic::Location;

use super::hop::{attach, Hop, HopOutput};
use crate::connection::AnyConnection;
use crate::error::Result;

/// A hop, then a hop from each of its rows: `Thread::messages().prefetch(Message::sent_by)`
/// gives each thread its messages, each with its sender; one query per hop.
pub struct Nested<H1, H2> {
    pub(super) first: H1,
    pub(super) next: H2,
}

impl<H1: Clone, H2: Clone> Clone for Nested<H1, H2> {
    fn clone(&self) -> Self {
        Self {
            first: self.first.clone(),
            next: self.next.clone(),
        }
    }
}

impl<H1, H2> Nested<H1, H2> {
    /// Then prefetches `next` for this hop's rows, one more query: for
    /// `a.prefetch(b).prefetch(c)`, `c` starts from the rows of `a` and each of them
    /// comes as `((row, b's rows), c's rows)`.
    pub fn prefetch<H3>(self, next: H3) -> Nested<Self, H3> {
        Nested { first: self, next }
    }
}

impl<P, H1: Hop<P>, H2: Hop<H1::Row>> Hop<P> for Nested<H1, H2> {
    type Shape = H1::Shape;
    type Row = (H1::Row, HopOutput<H1::Row, H2>);
    type Key = H1::Key;

    fn key(&self, parent: &P) -> Option<H1::Key> {
        self.first.key(parent)
    }

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[H1::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(H1::Key, Self::Row)>> {
        let rows = self.first.fetch(conn, keys, site)?;
        let attached = attach(conn, &self.next, rows, |(_, row)| row, site)?;
        Ok(attached
            .into_iter()
            .map(|((key, row), next)| (key, (row, next)))
            .collect())
    }
}
