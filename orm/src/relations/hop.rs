//! What a prefetch hop is: how many rows each parent gets ([`Shape`]), how the rows
//! of many parents are fetched at once ([`Hop`]), and how they are handed out.

use std::panic::Location;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use crate::connection::AnyConnection;
use crate::error::Result;
use crate::key::Key;

/// How many related rows each parent of a hop gets, and how parents that share a key
/// share them.
pub trait Shape {
    /// `Vec<R>` (a reverse relation) or `Option<Arc<R>>` (a foreign key).
    type Of<R: Clone>: Clone;
    /// The rows of one key, as they are handed out.
    #[doc(hidden)]
    type Group<R: Clone>;
    /// The rows fetched for one key.
    #[doc(hidden)]
    fn group<R: Clone>(rows: Vec<R>) -> Self::Group<R>;
    /// What a parent with no key (or no rows) gets.
    #[doc(hidden)]
    fn empty<R: Clone>() -> Self::Of<R>;
    /// The rows of the last parent with this key, moved out.
    #[doc(hidden)]
    fn take<R: Clone>(group: Self::Group<R>) -> Self::Of<R>;
    /// The rows of a parent whose key other parents still need.
    #[doc(hidden)]
    fn share<R: Clone>(group: &Self::Group<R>) -> Self::Of<R>;
}

/// Each parent gets a `Vec` (a thread's messages). Two parents with the same key (rare:
/// the same row twice) get a copy each.
#[derive(Debug, Clone, Copy)]
pub enum Many {}

impl Shape for Many {
    type Of<R: Clone> = Vec<R>;
    type Group<R: Clone> = Vec<R>;

    fn group<R: Clone>(rows: Vec<R>) -> Vec<R> {
        rows
    }

    fn empty<R: Clone>() -> Vec<R> {
        Vec::new()
    }

    fn take<R: Clone>(group: Vec<R>) -> Vec<R> {
        group
    }

    fn share<R: Clone>(group: &Vec<R>) -> Vec<R> {
        group.clone()
    }
}

/// Each parent gets an `Option<Arc<R>>` (a message's sender): the children of one
/// parent row share it, as Django's prefetched instances are shared, so a sender of
/// 1,000 messages is decoded and allocated once.
#[derive(Debug, Clone, Copy)]
pub enum One {}

impl Shape for One {
    type Of<R: Clone> = Option<Arc<R>>;
    type Group<R: Clone> = Option<Arc<R>>;

    fn group<R: Clone>(rows: Vec<R>) -> Option<Arc<R>> {
        rows.into_iter().next().map(Arc::new)
    }

    fn empty<R: Clone>() -> Option<Arc<R>> {
        None
    }

    fn take<R: Clone>(group: Option<Arc<R>>) -> Option<Arc<R>> {
        group
    }

    fn share<R: Clone>(group: &Option<Arc<R>>) -> Option<Arc<R>> {
        group.clone()
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
    /// The key parents are matched on: the parent model's key type.
    type Key: Key;

    /// The key `parent` is matched on (its primary key, or its foreign key's value);
    /// `None` matches nothing.
    #[doc(hidden)]
    fn key(&self, parent: &P) -> Option<Self::Key>;

    /// The rows for the (deduplicated, non-empty) `keys`, each with its key: the rows
    /// of one key in the hop's ordering (the keys' runs in no particular order).
    #[doc(hidden)]
    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[Self::Key],
        site: &'static Location<'static>,
    ) -> Result<Vec<(Self::Key, Self::Row)>>;
}

/// What a parent gets from hop `H`: `Vec<H::Row>` or `Option<Arc<H::Row>>`.
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
    let mut uses: HashMap<H::Key, usize> = HashMap::default();
    for item in &items {
        if let Some(key) = hop.key(parent(item)) {
            *uses.entry(key).or_default() += 1;
        }
    }
    let mut keys: Vec<H::Key> = uses.keys().cloned().collect();
    keys.sort_unstable();
    let mut fetched: HashMap<H::Key, Vec<H::Row>> =
        HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    if !keys.is_empty() {
        for (key, row) in hop.fetch(conn, &keys, site)? {
            fetched.entry(key).or_default().push(row);
        }
    }
    let mut groups: HashMap<H::Key, <H::Shape as Shape>::Group<H::Row>> = fetched
        .into_iter()
        .map(|(key, rows)| (key, H::Shape::group(rows)))
        .collect();
    Ok(items
        .into_iter()
        .map(|item| {
            let rows = match hop.key(parent(&item)) {
                None => H::Shape::empty(),
                Some(key) => {
                    let left = uses.get_mut(&key).map(|n| {
                        *n -= 1;
                        *n
                    });
                    let group = if left == Some(0) {
                        groups.remove(&key).map(H::Shape::take)
                    } else {
                        groups.get(&key).map(H::Shape::share)
                    };
                    group.unwrap_or_else(H::Shape::empty)
                }
            };
            (item, rows)
        })
        .collect())
}
