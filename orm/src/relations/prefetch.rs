//! `QuerySet::prefetch`: the parents, then one query per hop.

use crate::connection::AsConnection;
use std::panic::Location;

use super::hop::{attach, Hop, HopOutput};
use crate::connection::AnyConnection;
use crate::error::Result;
use crate::model::Model;
use crate::queryset::run::run_read as run;
use crate::queryset::QuerySet;

/// What a [`Prefetched`](super::Prefetched) queryset loads for its parents: one hop
/// ([`QuerySet::prefetch`]), or several
/// ([`Prefetched::prefetch`](super::Prefetched::prefetch)).
pub trait PrefetchSet<P>: Clone {
    /// What each parent gets: a hop's output, or a tuple of them.
    type Out;

    /// Loads the related rows of `parents` (one query per hop) and pairs them up.
    #[doc(hidden)]
    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>>;
}

/// The one hop of [`QuerySet::prefetch`].
#[derive(Clone)]
pub struct Single<H>(H);

impl<P, H: Hop<P>> PrefetchSet<P> for Single<H> {
    type Out = HopOutput<P, H>;

    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>> {
        attach(conn, &self.0, parents, |p| p, site)
    }
}

/// Hops `A`, then one more hop `H` from the same parents
/// ([`Prefetched::prefetch`](super::Prefetched::prefetch)).
#[derive(Clone)]
pub struct Also<A, H>(A, H);

impl<P, A: PrefetchSet<P>, H: Hop<P>> PrefetchSet<P> for Also<A, H> {
    type Out = (A::Out, HopOutput<P, H>);

    fn attach(
        &self,
        conn: &mut AnyConnection,
        parents: Vec<P>,
        site: &'static Location<'static>,
    ) -> Result<Vec<(P, Self::Out)>> {
        let first = self.0.attach(conn, parents, site)?;
        let both = attach(conn, &self.1, first, |(p, _)| p, site)?;
        Ok(both
            .into_iter()
            .map(|((parent, a), h)| (parent, (a, h)))
            .collect())
    }
}

/// A queryset of parents `P`, each with the rows of one or more hops: one query for
/// the parents and one per hop, however many parents.
pub struct Prefetched<P, S> {
    qs: QuerySet<P>,
    hops: S,
}

impl<P, S: Clone> Clone for Prefetched<P, S> {
    fn clone(&self) -> Self {
        Self {
            qs: self.qs.clone(),
            hops: self.hops.clone(),
        }
    }
}

impl<P: Model> QuerySet<P> {
    /// Loads each parent's related rows with one more query for all parents (Django's
    /// `prefetch_related`): 100 threads with their messages are 2 queries, not 101.
    ///
    /// The hop is a reverse relation (`Thread::messages()`: each thread gets a
    /// `Vec<Message>`), a foreign key (`Message::sent_by`: each message gets an
    /// `Option<Arc<Person>>`, shared by the messages of one sender), or a chain of
    /// those with
    /// [`Reverse::prefetch`](super::Reverse::prefetch)/[`Forward::prefetch`](super::Forward::prefetch),
    /// each hop with its own queryset (filters, ordering, soft delete,
    /// [`limit_per_parent`](super::Reverse::limit_per_parent)).
    ///
    /// Children come back in the hop's ordering, grouped under their parent, parents in the
    /// queryset's order; a parent with no children gets an empty `Vec` (or `None`). Keys
    /// are deduplicated and sent in one statement whatever their number: one array bind on
    /// PostgreSQL (`= ANY($1)`), one JSON list on SQLite (`IN (SELECT value FROM
    /// json_each(?))`). No parents, or no keys: no query for the hop. A forward hop returns
    /// soft-deleted parents, as [`select_related`](Self::select_related) does (use
    /// [`ForeignKey::using`](super::ForeignKey::using) to choose).
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
    ///
    /// // Forward: each message's sender, keys deduplicated.
    /// let messages = Message::objects().prefetch(Message::sent_by).all(&mut conn)?;
    /// assert_eq!(messages[0].1.as_ref().map(|p| p.id), Some(messages[0].0.sent_by_id));
    /// assert_eq!(
    ///     Thread::messages().sql_for(&[1, 2], Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` \
    ///      FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (`weave_message`.`thread_id` IN (SELECT value FROM json_each(?))) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC"
    /// );
    /// // PostgreSQL: no ORDER BY; each parent's rows are ordered here (timestamps and ids
    /// // order in Rust exactly as in SQL), sparing the server a sort of every child.
    /// assert_eq!(
    ///     Thread::messages().sql_for(&[1, 2], Backend::Postgres)?,
    ///     "SELECT \"weave_message\".\"id\", \"weave_message\".\"created\", \"weave_message\".\"updated\", \"weave_message\".\"deleted\", \"weave_message\".\"text\", \"weave_message\".\"sent_by_id\", \"weave_message\".\"thread_id\" \
    ///      FROM \"weave_message\" WHERE (\"weave_message\".\"deleted\" = false) AND ((\"weave_message\".\"thread_id\" = ANY($1)))"
    /// );
    /// // A forward hop with its own queryset (live people only).
    /// assert_eq!(
    ///     Message::sent_by.using(Person::objects()).sql_for(&[1, 2], Backend::Sqlite)?,
    ///     "SELECT `weave_person`.`id`, `weave_person`.`created`, `weave_person`.`updated`, `weave_person`.`deleted`, `weave_person`.`first_name`, `weave_person`.`last_name`, `weave_person`.`email_address` \
    ///      FROM `weave_person` WHERE (`weave_person`.`deleted` = false) AND (`weave_person`.`id` IN (SELECT value FROM json_each(?)))"
    /// );
    /// assert_eq!(
    ///     Message::sent_by.using(Person::objects()).sql_for(&[1, 2], Backend::Postgres)?,
    ///     "SELECT \"weave_person\".\"id\", \"weave_person\".\"created\", \"weave_person\".\"updated\", \"weave_person\".\"deleted\", \"weave_person\".\"first_name\", \"weave_person\".\"last_name\", \"weave_person\".\"email_address\" \
    ///      FROM \"weave_person\" WHERE (\"weave_person\".\"deleted\" = false) AND ((\"weave_person\".\"id\" = ANY($1)))"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Backend support
    ///
    /// | | SQLite | PostgreSQL |
    /// |---|---|---|
    /// | parent keys, any number | `IN (SELECT value FROM json_each(?))`: one JSON text bind | `= ANY($1)`: one array bind |
    /// | [`limit_per_parent`](super::Reverse::limit_per_parent) | `ROW_NUMBER() OVER (PARTITION BY ...)` | the same |
    ///
    /// ### Notes
    /// - The queryset given to [`ForeignKey::using`](super::ForeignKey::using) chooses
    ///   rows; a `limit` on it caps all parents together. Per parent, use
    ///   [`limit_per_parent`](super::Reverse::limit_per_parent) on a reverse hop.
    /// - On PostgreSQL, a reverse hop ordered only by integer, boolean and timestamp
    ///   columns (the primary key, or fields `model!` lists in `cursor_columns`) is
    ///   sent without `ORDER BY` and each parent's rows are ordered in Rust, exactly as
    ///   the server would (`NULL` above every value): the server no longer sorts every
    ///   child of every parent (10,000 messages of 100 threads: the statement's
    ///   execution, by `EXPLAIN ANALYZE`, drops from about 10.5 to 5.7 ms here; the
    ///   whole page, which also waits for the rows to cross the socket, from 20.5 to
    ///   19.1 ms). Text orderings (collations),
    ///   floating point, orderings of more than four columns, sliced or `distinct`
    ///   hops, `limit_per_parent` and hops with `select_related` keep `ORDER BY`, as
    ///   does SQLite. The SQL the docs above show is what is sent.
    /// - A forward hop's row is decoded and allocated once and shared (`Arc`) by every
    ///   child that points to it, as Django's prefetched instances are: a page of
    ///   10,000 messages from 1,000 senders holds 1,000 `Person`s. A reverse hop's
    ///   rows are moved to their parent; only a parent that appears twice gets a copy,
    ///   so hop rows are `Clone`.
    #[doc(alias = "prefetch_related")]
    pub fn prefetch<H: Hop<P>>(self, hop: H) -> Prefetched<P, Single<H>> {
        Prefetched {
            qs: self,
            hops: Single(hop),
        }
    }
}

impl<P: Model, S: PrefetchSet<P>> Prefetched<P, S> {
    /// Also prefetches `hop` for the same parents, one more query (Django's
    /// `prefetch_related("messages", "owner")`): each parent gets `(first, second)`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (messages, captured) = orm::capture(|| {
    ///     Message::objects()
    ///         .prefetch(Message::sent_by)
    ///         .prefetch(Message::thread)
    ///         .all(&mut conn)
    /// });
    /// let (message, (sender, thread)) = &messages?[0];
    /// assert_eq!(captured.len(), 3); // messages, senders, threads
    /// assert_eq!((message.id, sender.as_ref().unwrap().first_name.as_str(), thread.as_ref().unwrap().title.as_str()), (3, "Alan", "Machines"));
    /// # Ok(()) }
    /// ```
    pub fn prefetch<H: Hop<P>>(self, hop: H) -> Prefetched<P, Also<S, H>> {
        Prefetched {
            qs: self.qs,
            hops: Also(self.hops, hop),
        }
    }

    /// The parents' queryset and the hops.
    pub(crate) fn parts(&self) -> (&QuerySet<P>, &S) {
        (&self.qs, &self.hops)
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

    /// Loads the parents, then each hop's rows for all of them (one query per hop).
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database fails.
    #[track_caller]
    pub fn all(&self, conn: &mut impl AsConnection) -> Result<Vec<(P, S::Out)>> {
        let conn = conn.connection();
        let site = Location::caller();
        let parents = run(site, || P::load_rows(&self.qs.select_statement(), conn))?;
        self.hops.attach(conn, parents, site)
    }

    /// The first parent with its hops' rows, or `None` (the parent with `LIMIT 1`,
    /// ordered as [`QuerySet::first`] orders, then one query per hop).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Thread::objects().prefetch(Thread::messages());
    /// // A connection straight from the pool works wherever one is taken (this
    /// // in-memory pool holds one connection: give it back first).
    /// drop(conn);
    /// assert_eq!(qs.count(&mut db.get()?)?, 2);
    /// let mut conn = db.get()?;
    /// let (first, captured) = orm::capture(|| qs.first(&mut conn));
    /// let (thread, messages) = first?.expect("a thread");
    /// assert_eq!((thread.title.as_str(), messages.len(), captured.len()), ("Machines", 1, 2));
    /// let (engines, _) = Thread::objects().filter(weave_thread::title.eq("Engines")).prefetch(Thread::messages()).get(&mut conn)?;
    /// assert_eq!(engines.title, "Engines");
    /// assert_eq!(qs.count(&mut conn)?, 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`all`](Self::all).
    #[track_caller]
    pub fn first(&self, conn: &mut impl AsConnection) -> Result<Option<(P, S::Out)>> {
        let conn = conn.connection();
        let site = Location::caller();
        let parents = run(site, || {
            P::load_rows(&self.qs.for_first().select_statement(), conn)
        })?;
        Ok(self.hops.attach(conn, parents, site)?.into_iter().next())
    }

    /// The one parent with its hops' rows (the parent as [`QuerySet::get`] reads
    /// it, then one query per hop).
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound),
    /// [`Error::MultipleObjectsReturned`](crate::Error::MultipleObjectsReturned), or
    /// as [`all`](Self::all).
    #[track_caller]
    pub fn get(&self, conn: &mut impl AsConnection) -> Result<(P, S::Out)> {
        let conn = conn.connection();
        let site = Location::caller();
        let parents = run(site, || {
            P::load_rows(&self.qs.for_get().select_statement(), conn)
        })?;
        let parent = crate::queryset::run::exactly_one::<P, _>(parents)?;
        let mut rows = self.hops.attach(conn, vec![parent], site)?;
        Ok(rows.remove(0))
    }

    /// The number of parents: the queryset's count (one query; the hops add no
    /// parents).
    ///
    /// # Errors
    /// As [`QuerySet::count`].
    #[track_caller]
    pub fn count(&self, conn: &mut impl AsConnection) -> Result<i64> {
        let conn = conn.connection();
        self.qs.count(conn)
    }
}
