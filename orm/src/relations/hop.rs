//! What a prefetch hop is: how many rows each parent gets ([`Shape`]), how the rows
//! of many parents are fetched at once ([`Hop`]), and how they are handed out.

use std::collections::HashMap;
use std::panic::Location;

use crate::connection::AnyConnection;
use crate::error::Result;

/// How many related rows each parent of a hop gets.
pub trait Shape {
    /// `Vec<R>` (a reverse relation) or `Option<R>` (a foreign key).
    type Of<R: Clone>: Clone;
    /// The rows of one parent, owned.
    #[doc(hidden)]
    fn take<R: Clone>(rows: Vec<R>) -> Self::Of<R>;
    /// The rows of one parent, shared with other parents.
    #[doc(hidden)]
    fn copy<R: Clone>(rows: &[R]) -> Self::Of<R>;
}

/// Each parent gets a `Vec` (a thread's messages).
#[derive(Debug, Clone, Copy)]
pub enum Many {}

impl Shape for Many {
    type Of<R: Clone> = Vec<R>;

    fn take<R: Clone>(rows: Vec<R>) -> Vec<R> {
        rows
    }

    fn copy<R: Clone>(rows: &[R]) -> Vec<R> {
        rows.to_vec()
    }
}

/// Each parent gets an `Option` (a message's sender).
#[derive(Debug, Clone, Copy)]
pub enum One {}

impl Shape for One {
    type Of<R: Clone> = Option<R>;

    fn take<R: Clone>(rows: Vec<R>) -> Option<R> {
        rows.into_iter().next()
    }

    fn copy<R: Clone>(rows: &[R]) -> Option<R> {
        rows.first().cloned()
    }
}

/// One prefetch hop from parents `P`: loads the related rows of many parents in one
/// query and says which parent key each belongs to.
///
/// Hops: [`Reverse`](super::Reverse) (`Thread::messages()`), a foreign key
/// ([`ForeignKey`](super::ForeignKey), [`NullableForeignKey`](super::NullableForeignKey),
/// or [`Forward`](super::Forward) with a queryset of its own), and
/// [`Nested`](super::Nested) (a hop, then a hop from its rows).
pub trait Hop<P>: Clone {
    /// How many rows each parent gets.
    type Shape: Shape;
    /// One related row.
    type Row: Clone;

    /// The key `parent` is matched on (its primary key, or its foreign key's value);
    /// `None` matches nothing.
    #[doc(hidden)]
    fn key(&self, parent: &P) -> Option<i64>;

    /// The rows for the (deduplicated, non-empty) `keys`, each with its key, in the
    /// hop's ordering.
    #[doc(hidden)]
    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, Self::Row)>>;
}

/// What a parent gets from hop `H`: `Vec<H::Row>` or `Option<H::Row>`.
pub type HopOutput<P, H> = <<H as Hop<P>>::Shape as Shape>::Of<<H as Hop<P>>::Row>;

/// Fetches `hop`'s rows for `items` (keyed by `key`) and gives each item its share:
/// one query for all of them, none when no item has a key.
pub(super) fn attach<T, P, H: Hop<P>>(
    conn: &mut AnyConnection,
    hop: &H,
    items: Vec<T>,
    parent: impl Fn(&T) -> &P,
    site: &'static Location<'static>,
) -> Result<Vec<(T, HopOutput<P, H>)>> {
    let mut uses: HashMap<i64, usize> = HashMap::new();
    for item in &items {
        if let Some(key) = hop.key(parent(item)) {
            *uses.entry(key).or_default() += 1;
        }
    }
    let mut keys: Vec<i64> = uses.keys().copied().collect();
    keys.sort_unstable();
    let mut groups: HashMap<i64, Vec<H::Row>> = HashMap::with_capacity(keys.len());
    if !keys.is_empty() {
        for (key, row) in hop.fetch(conn, &keys, site)? {
            groups.entry(key).or_default().push(row);
        }
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let rows = match hop.key(parent(&item)) {
                None => H::Shape::take(Vec::new()),
                Some(key) => {
                    let left = uses.get_mut(&key).map(|n| {
                        *n -= 1;
                        *n
                    });
                    if left == Some(0) {
                        H::Shape::take(groups.remove(&key).unwrap_or_default())
                    } else {
                        H::Shape::copy(groups.get(&key).map_or(&[][..], Vec::as_slice))
                    }
                }
            };
            (item, rows)
        })
        .collect())
}
