use std::collections::HashMap;
use std::panic::Location;

use diesel::expression::{AppearsOnTable, ValidGrouping};
use diesel::query_builder::QueryFragment;
use diesel::sql_types::BoolOrNullableBool;
use diesel::Expression;

use super::{ForeignKey, Related};
use crate::connection::{AnyConnection, Db};
use crate::error::Result;
use crate::model::Model;
use crate::ordering::IntoOrdering;
use crate::queryset::run::{fetch_chunks, run};
use crate::queryset::QuerySet;

/// One prefetch hop from parents `P`: loads the rows of many parents in one query
/// (or one per chunk of keys on SQLite) and says which parent each belongs to.
pub trait Hop<P>: Clone {
    /// What each parent gets a `Vec` of.
    type Row;

    /// The rows for the parents with primary keys `keys`, each with its parent's key,
    /// in the hop's ordering.
    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, Self::Row)>>;

    /// The statement `fetch` sends for `keys` (one chunk), for EXPLAIN; `None` when
    /// the hop cannot show it.
    #[doc(hidden)]
    fn statement(&self, keys: Vec<i64>) -> Option<Box<dyn QueryFragment<Db>>> {
        let _ = keys;
        None
    }
}

/// The reverse of a foreign key: the `C` rows pointing at each `P` (a thread's
/// messages). Made by the method [`relation!`](crate::relation) declares
/// (`Thread::messages()`); carries its own queryset, so a hop can filter, order and
/// show or hide soft-deleted rows.
pub struct Reverse<P: Model, C: Model> {
    fk: ForeignKey<C, P>,
    qs: QuerySet<C>,
}

impl<P: Model, C: Model> Clone for Reverse<P, C> {
    fn clone(&self) -> Self {
        Self {
            fk: self.fk,
            qs: self.qs.clone(),
        }
    }
}

impl<P: Model, C: Model> Reverse<P, C> {
    /// The hop over `fk`, with `C::objects()` as its queryset.
    pub fn new(fk: ForeignKey<C, P>) -> Self {
        Self {
            fk,
            qs: C::objects(),
        }
    }

    /// Keeps the hop's rows where `predicate` holds.
    #[must_use]
    pub fn filter<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<C::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.qs = self.qs.filter(predicate);
        self
    }

    /// Drops the hop's rows where `predicate` holds.
    #[must_use]
    pub fn exclude<E>(mut self, predicate: E) -> Self
    where
        E: Expression + AppearsOnTable<C::Table> + ValidGrouping<()> + QueryFragment<Db>,
        E: Send + Sync + 'static,
        E::SqlType: BoolOrNullableBool,
    {
        self.qs = self.qs.exclude(predicate);
        self
    }

    /// Orders each parent's rows (replacing `C`'s default ordering).
    #[must_use]
    pub fn order_by<O: IntoOrdering<C::Table>>(mut self, ordering: O) -> Self {
        self.qs = self.qs.order_by(ordering);
        self
    }

    /// Includes soft-deleted rows.
    #[must_use]
    pub fn with_deleted(mut self) -> Self {
        self.qs = self.qs.with_deleted();
        self
    }

    /// Loads each row's `X` by JOIN in the hop's query (a thread's messages with
    /// their senders: still one query for the hop).
    pub fn select_related<X: Model>(self, fk: ForeignKey<C, X>) -> ReverseRelated<P, C, X> {
        ReverseRelated { reverse: self, fk }
    }
}

impl<P: Model, C: Model> Hop<P> for Reverse<P, C> {
    type Row = C;

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, C)>> {
        fetch_chunks(conn, keys, |conn, part| {
            let statement = self
                .qs
                .clone()
                .filter_fragment((self.fk.key_in)(part))
                .select_statement();
            let rows = run(site, || C::load_rows(&statement, conn))?;
            Ok(rows
                .into_iter()
                .map(|row| ((self.fk.value)(&row), row))
                .collect())
        })
    }

    fn statement(&self, keys: Vec<i64>) -> Option<Box<dyn QueryFragment<Db>>> {
        let qs = self.qs.clone().filter_fragment((self.fk.key_in)(keys));
        Some(Box::new(qs.select_statement()))
    }
}

/// A reverse hop whose rows come with a related row each (`(Message, Person)`).
pub struct ReverseRelated<P: Model, C: Model, X: Model> {
    reverse: Reverse<P, C>,
    fk: ForeignKey<C, X>,
}

impl<P: Model, C: Model, X: Model> Clone for ReverseRelated<P, C, X> {
    fn clone(&self) -> Self {
        Self {
            reverse: self.reverse.clone(),
            fk: self.fk,
        }
    }
}

impl<P: Model, C: Model, X: Model> Hop<P> for ReverseRelated<P, C, X> {
    type Row = (C, X);

    fn fetch(
        &self,
        conn: &mut AnyConnection,
        keys: &[i64],
        site: &'static Location<'static>,
    ) -> Result<Vec<(i64, (C, X))>> {
        let parent = self.reverse.fk;
        fetch_chunks(conn, keys, |conn, part| {
            let related: Related<C, X> = self
                .reverse
                .qs
                .clone()
                .filter_fragment((parent.key_in)(part))
                .select_related(self.fk);
            let rows = related.all_at(conn, site)?;
            Ok(rows
                .into_iter()
                .map(|pair| ((parent.value)(&pair.0), pair))
                .collect())
        })
    }

    fn statement(&self, keys: Vec<i64>) -> Option<Box<dyn QueryFragment<Db>>> {
        let parent = self.reverse.fk;
        let related: Related<C, X> = self
            .reverse
            .qs
            .clone()
            .filter_fragment((parent.key_in)(keys))
            .select_related(self.fk);
        Some(Box::new(related.statement()))
    }
}

/// A queryset of parents `P`, each with the rows of a hop: one query for the parents
/// and one per hop, however many parents.
pub struct Prefetched<P, H> {
    qs: QuerySet<P>,
    hop: H,
}

impl<P: Model> QuerySet<P> {
    /// Loads each parent's related rows with one more query for all parents (Django's
    /// `prefetch_related`): 100 threads with their messages are 2 queries, not 101.
    ///
    /// Children come back in the hop's ordering, grouped under their parent, parents in
    /// the queryset's order; a parent with no children gets an empty `Vec`. Parent keys
    /// are deduplicated; on PostgreSQL they are one array bind (`= ANY($1)`), on SQLite
    /// chunked under the bind limit. No parents: no second query.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (threads, captured) = orm::capture(|| {
    ///     Thread::objects()
    ///         .prefetch(Thread::messages().select_related(Message::sent_by))
    ///         .all(&mut conn)
    /// });
    /// let threads = threads?;
    /// assert_eq!(captured.len(), 2); // threads, then messages JOIN senders
    /// assert_eq!(threads[1].0.title, "Engines");
    /// let senders: Vec<&str> = threads[1].1.iter().map(|(_, p)| p.first_name.as_str()).collect();
    /// assert_eq!(senders, ["Alan", "Ada"]);
    /// # Ok(()) }
    /// ```
    #[doc(alias = "prefetch_related")]
    pub fn prefetch<H: Hop<P>>(self, hop: H) -> Prefetched<P, H> {
        Prefetched { qs: self, hop }
    }
}

impl<P: Model, H: Hop<P>> Prefetched<P, H> {
    pub(crate) fn parts(&self) -> (&QuerySet<P>, &H) {
        (&self.qs, &self.hop)
    }

    /// At most `n` parents.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.qs = self.qs.limit(n);
        self
    }

    /// Skips the first `n` parents.
    #[must_use]
    pub fn offset(mut self, n: u64) -> Self {
        self.qs = self.qs.offset(n);
        self
    }

    /// Loads the parents, then the hop's rows for all of them.
    #[track_caller]
    pub fn all(&self, conn: &mut AnyConnection) -> Result<Vec<(P, Vec<H::Row>)>> {
        let site = Location::caller();
        let parents = run(site, || P::load_rows(&self.qs.select_statement(), conn))?;
        attach(conn, parents, &self.hop, site)
    }
}

/// Pairs each parent with its rows of `hop`: one more query (per key chunk), none
/// for no parents.
pub(crate) fn attach<P: Model, H: Hop<P>>(
    conn: &mut AnyConnection,
    parents: Vec<P>,
    hop: &H,
    site: &'static Location<'static>,
) -> Result<Vec<(P, Vec<H::Row>)>> {
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<i64> = parents.iter().map(Model::pk).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut groups: HashMap<i64, Vec<H::Row>> = HashMap::with_capacity(keys.len());
    for (key, row) in hop.fetch(conn, &keys, site)? {
        groups.entry(key).or_default().push(row);
    }
    Ok(parents
        .into_iter()
        .map(|parent| {
            let children = groups.remove(&parent.pk()).unwrap_or_default();
            (parent, children)
        })
        .collect())
}
