//! Bounded-memory iteration: a queryset read chunk by chunk.
//!
//! Three strategies, chosen from the queryset and the backend:
//!
//! | strategy | when | SQL per chunk |
//! |---|---|---|
//! | [`Keyset`](StreamStrategy::Keyset) | ordered by the primary key (or unordered), not sliced; both backends | `... WHERE ... AND "t"."id" > $last ORDER BY "t"."id" LIMIT $n` |
//! | [`Cursor`](StreamStrategy::Cursor) | any other ordering on PostgreSQL | `DECLARE "c" NO SCROLL CURSOR FOR SELECT ...` once, then `FETCH FORWARD n FROM "c"`, in a transaction |
//! | [`Step`](StreamStrategy::Step) | any other ordering on SQLite | one `SELECT`, its rows stepped one by one as SQLite produces them |
//!
//! The PostgreSQL driver buffers a whole result in the client, so a single
//! `SELECT` is never used there to stream.

use crate::connection::AsConnection;
use crate::Capability;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::TransactionManager;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{Connection, ExpressionMethods, QueryResult, RunQueryDsl};

use crate::connection::{AnyConnection, Backend, Db};
use crate::error::{Error, Result};
use crate::fragment::{ColumnRef, Fragment};
use crate::key::{Compare, KeyCompare};
use crate::model::Model;
use crate::queryset::run::run_read as run;
use crate::queryset::statement::{CursorFetch, SelectStatement};
use crate::queryset::values::Values;
use crate::queryset::QuerySet;
use crate::relations::{JoinSet, PrefetchSet, Prefetched, Related};

type Manager = <AnyConnection as Connection>::TransactionManager;

/// How a [`Stream`] reads its rows, chosen from the queryset and the backend:
///
/// | strategy | when | SQL per chunk |
/// |---|---|---|
/// | [`Keyset`](StreamStrategy::Keyset) | ordered by the primary key (or unordered), not sliced; both backends | `... WHERE ... AND "t"."id" > $last ORDER BY "t"."id" LIMIT $n` |
/// | [`Cursor`](StreamStrategy::Cursor) | any other ordering on PostgreSQL | `DECLARE "c" NO SCROLL CURSOR FOR SELECT ...` once, then `FETCH FORWARD n FROM "c"`, in a transaction |
/// | [`Step`](StreamStrategy::Step) | any other ordering on SQLite | one `SELECT`, its rows stepped one by one as SQLite produces them |
///
/// [`QuerySet::stream_sql`] shows the statements for a queryset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamStrategy {
    /// One query per chunk: rows after the last primary key seen.
    Keyset,
    /// A PostgreSQL server-side cursor, one `FETCH` per chunk.
    Cursor,
    /// One SQLite query whose rows are stepped as they are produced.
    Step,
}

/// `DECLARE "cursor" NO SCROLL CURSOR FOR <select>`; the select's values stay binds.
struct Declare<'a> {
    name: &'a str,
    query: Box<dyn QueryFragment<Db> + 'a>,
}

impl QueryFragment<Db> for Declare<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("DECLARE ");
        out.push_identifier(self.name)?;
        out.push_sql(" NO SCROLL CURSOR FOR ");
        self.query.walk_ast(out.reborrow())
    }
}

/// `CLOSE "cursor"`.
struct Close<'a>(&'a str);

impl QueryFragment<Db> for Close<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("CLOSE ");
        out.push_identifier(self.0)
    }
}

impl QueryId for Declare<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
impl<Conn> RunQueryDsl<Conn> for Declare<'_> {}
impl QueryId for Close<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
impl<Conn> RunQueryDsl<Conn> for Close<'_> {}

type RowIter<'c, R> = Box<dyn Iterator<Item = QueryResult<R>> + 'c>;

/// What a stream reads rows of: a queryset of models, or of pairs by JOIN.
trait Loader<R> {
    fn keyset_chunk(
        &self,
        conn: &mut AnyConnection,
        after: Option<Fragment>,
        descending: bool,
        count: u32,
    ) -> QueryResult<Vec<R>>;
    fn declare(&self, conn: &mut AnyConnection, name: &str) -> QueryResult<usize>;
    fn fetch(&self, conn: &mut AnyConnection, fetch: CursorFetch) -> QueryResult<Vec<R>>;
    fn step<'c>(&self, conn: &'c mut AnyConnection) -> QueryResult<RowIter<'c, R>>;
    /// The filter for the rows after `row` in primary-key order (`"id" > $1`).
    fn after(&self, row: &R, descending: bool) -> Fragment;
    /// Whether its rows hold the primary key, which keyset chunks continue from.
    fn has_key(&self) -> bool {
        true
    }
}

/// `pk > key` (`pk < key` descending), bound with the key column's type.
fn after_key<M: Model>(key: M::Key, descending: bool) -> Fragment {
    let compare = if descending {
        Compare::Less
    } else {
        Compare::Greater
    };
    KeyCompare::fragment(ColumnRef::of(M::PrimaryKey::default()), compare, key)
}

/// Rows of `qs` under the filter `after` in primary-key order, at most `count`.
fn keyset_queryset<M: Model>(
    qs: &QuerySet<M>,
    after: Option<Fragment>,
    descending: bool,
    count: u32,
) -> QuerySet<M> {
    let pk = M::PrimaryKey::default();
    let mut qs = qs.clone().limit(count);
    qs = if descending {
        qs.order_by(pk.desc())
    } else {
        qs.order_by(pk.asc())
    };
    match after {
        Some(after) => qs.filter_fragment(after),
        None => qs,
    }
}

struct Models<M>(QuerySet<M>);

impl<M: Model> Loader<M> for Models<M> {
    fn keyset_chunk(
        &self,
        conn: &mut AnyConnection,
        after: Option<Fragment>,
        descending: bool,
        count: u32,
    ) -> QueryResult<Vec<M>> {
        let statement = keyset_queryset(&self.0, after, descending, count).select_statement();
        M::load_rows(&statement, conn)
    }

    fn declare(&self, conn: &mut AnyConnection, name: &str) -> QueryResult<usize> {
        Declare {
            name,
            query: Box::new(self.0.select_statement()),
        }
        .execute(conn)
    }

    fn fetch(&self, conn: &mut AnyConnection, fetch: CursorFetch) -> QueryResult<Vec<M>> {
        let mut statement = self.0.select_statement();
        statement.cursor_fetch = Some(fetch);
        M::load_rows(&statement, conn)
    }

    fn step<'c>(&self, conn: &'c mut AnyConnection) -> QueryResult<RowIter<'c, M>> {
        M::iter_rows(self.0.select_statement(), conn)
    }

    fn after(&self, row: &M, descending: bool) -> Fragment {
        after_key::<M>(row.pk(), descending)
    }
}

/// Some columns of a queryset's rows: no primary key to continue from, so a cursor
/// (PostgreSQL) or a stepped `SELECT` (SQLite) reads them.
struct Projected<M, S, U>(Values<M, S, U>);

impl<M: Model, S, U> Loader<U> for Projected<M, S, U>
where
    S: diesel::Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
    SelectStatement<S>: diesel::query_dsl::LoadQuery<'static, AnyConnection, U>,
    U: 'static,
{
    fn keyset_chunk(
        &self,
        _: &mut AnyConnection,
        _: Option<Fragment>,
        _: bool,
        _: u32,
    ) -> QueryResult<Vec<U>> {
        // `has_key` is false: `Chunks::new` never chooses keyset chunks for it.
        Err(diesel::result::Error::QueryBuilderError(
            "keyset chunks of rows without their primary key".into(),
        ))
    }

    fn declare(&self, conn: &mut AnyConnection, name: &str) -> QueryResult<usize> {
        Declare {
            name,
            query: Box::new(self.0.statement()),
        }
        .execute(conn)
    }

    fn fetch(&self, conn: &mut AnyConnection, fetch: CursorFetch) -> QueryResult<Vec<U>> {
        let mut statement = self.0.statement();
        statement.cursor_fetch = Some(fetch);
        statement.load(conn)
    }

    fn step<'c>(&self, conn: &'c mut AnyConnection) -> QueryResult<RowIter<'c, U>> {
        let rows = self
            .0
            .statement()
            .load_iter::<U, diesel::connection::DefaultLoadingMode>(conn)?;
        Ok(Box::new(rows))
    }

    fn after(&self, _: &U, _: bool) -> Fragment {
        // Never called: see `keyset_chunk`.
        Arc::new(crate::queryset::statement::One)
    }

    fn has_key(&self) -> bool {
        false
    }
}

impl<M: Model, S, U> Values<M, S, U>
where
    S: diesel::Expression + QueryFragment<Db> + Clone + Send + Sync + 'static,
    SelectStatement<S>: diesel::query_dsl::LoadQuery<'static, AnyConnection, U>,
    U: 'static,
{
    /// Iterates the rows' values, `chunk_size` at a time: through a cursor on
    /// PostgreSQL, by stepping one `SELECT` on SQLite (the rows hold no primary key
    /// to continue a keyset from). As [`QuerySet::stream`] otherwise.
    ///
    /// # Errors
    /// As [`QuerySet::stream`].
    #[track_caller]
    pub fn stream<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Stream<'c, U>> {
        let conn = conn.connection();
        let chunks = Chunks::new(
            conn,
            self.queryset(),
            Box::new(Projected(self.clone())),
            chunk_size,
            Location::caller(),
        )?;
        let strategy = chunks.strategy();
        Ok(Stream::new(chunks, strategy))
    }
}

struct Joined<C: Model, J>(Related<C, J>);

/// A joined statement's error as diesel's: the joins were checked when the stream was
/// made, so this does not happen in practice.
fn joined_statement<C: Model, J: JoinSet<C>>(
    related: &Related<C, J>,
) -> QueryResult<SelectStatement<J::Selection>> {
    related
        .statement()
        .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))
}

impl<C: Model, J: JoinSet<C>> Loader<J::Row> for Joined<C, J>
where
    SelectStatement<J::Selection>: diesel::query_dsl::LoadQuery<'static, AnyConnection, J::Row>,
    J::Selection: 'static,
    J::Row: 'static,
{
    fn keyset_chunk(
        &self,
        conn: &mut AnyConnection,
        after: Option<Fragment>,
        descending: bool,
        count: u32,
    ) -> QueryResult<Vec<J::Row>> {
        let related = keyset_queryset(self.0.queryset(), after, descending, count)
            .select_related(self.0.joins());
        related
            .statement_join_first()
            .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?
            .load(conn)
    }

    fn declare(&self, conn: &mut AnyConnection, name: &str) -> QueryResult<usize> {
        Declare {
            name,
            query: Box::new(joined_statement(&self.0)?),
        }
        .execute(conn)
    }

    fn fetch(&self, conn: &mut AnyConnection, fetch: CursorFetch) -> QueryResult<Vec<J::Row>> {
        let mut statement = joined_statement(&self.0)?;
        statement.cursor_fetch = Some(fetch);
        statement.load(conn)
    }

    fn step<'c>(&self, conn: &'c mut AnyConnection) -> QueryResult<RowIter<'c, J::Row>> {
        let rows = joined_statement(&self.0)?
            .load_iter::<J::Row, diesel::connection::DefaultLoadingMode>(conn)?;
        Ok(Box::new(rows))
    }

    fn after(&self, row: &J::Row, descending: bool) -> Fragment {
        after_key::<C>(J::root(row).pk(), descending)
    }
}

enum State<'c, R> {
    Keyset {
        after: Option<Fragment>,
        descending: bool,
    },
    Cursor {
        name: String,
        open: bool,
    },
    Step(Option<RowIter<'c, R>>),
    Done,
}

/// A queryset read in chunks of at most `chunk_size` rows: an iterator of
/// `Result<Vec<R>>`. Holds the connection until dropped. Made by
/// [`QuerySet::chunks`] (and [`Related::chunks`], [`Prefetched::chunks`]).
///
/// Dropping it early is fine: an open cursor's transaction is rolled back (nothing
/// was written in it).
pub struct Chunks<'c, R> {
    conn: Option<&'c mut AnyConnection>,
    loader: Box<dyn Loader<R> + 'c>,
    chunk_size: u32,
    state: State<'c, R>,
    strategy: StreamStrategy,
    site: &'static Location<'static>,
    /// Chunks read so far: the first counts as an ordinary statement for N+1
    /// detection (a stream per parent is still N+1), the rest as its continuation.
    read: usize,
}

static CURSORS: AtomicU64 = AtomicU64::new(0);

impl<'c, R> Chunks<'c, R> {
    fn new<M: Model>(
        conn: &'c mut AnyConnection,
        qs: &QuerySet<M>,
        loader: Box<dyn Loader<R> + 'c>,
        chunk_size: u32,
        site: &'static Location<'static>,
    ) -> Result<Self> {
        if chunk_size == 0 {
            return Err(Error::InvalidArgument {
                argument: "chunk_size",
                reason: "must be at least 1",
            });
        }
        let capability = crate::Capability::of_connection(conn);
        let (strategy, descending) = match choose(qs, capability) {
            (StreamStrategy::Keyset, _) if !loader.has_key() => {
                if capability.server_side_cursors {
                    (StreamStrategy::Cursor, false)
                } else {
                    (StreamStrategy::Step, false)
                }
            }
            chosen => chosen,
        };
        let state = match strategy {
            StreamStrategy::Keyset => State::Keyset {
                after: None,
                descending,
            },
            StreamStrategy::Cursor => State::Cursor {
                name: format!("orm_stream_{}", CURSORS.fetch_add(1, Ordering::Relaxed)),
                open: false,
            },
            StreamStrategy::Step => State::Step(None),
        };
        Ok(Self {
            conn: Some(conn),
            loader,
            chunk_size,
            state,
            strategy,
            site,
            read: 0,
        })
    }

    /// How this stream reads its rows.
    pub fn strategy(&self) -> StreamStrategy {
        self.strategy
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<R>>> {
        self.read += 1;
        if self.read == 1 {
            return self.read_chunk();
        }
        // The chunks after the first send the same shape from the same call site by
        // design: not N+1.
        crate::instrument::chunked(|| self.read_chunk())
    }

    fn read_chunk(&mut self) -> Result<Option<Vec<R>>> {
        let site = self.site;
        let count = self.chunk_size;
        match &mut self.state {
            State::Done => Ok(None),
            State::Keyset { after, descending } => {
                let Some(conn) = self.conn.as_deref_mut() else {
                    return Ok(None);
                };
                let rows = run(site, || {
                    self.loader
                        .keyset_chunk(conn, after.clone(), *descending, count)
                })?;
                if rows.len() < count as usize {
                    self.state = State::Done;
                } else if let Some(last) = rows.last() {
                    *after = Some(self.loader.after(last, *descending));
                }
                Ok((!rows.is_empty()).then_some(rows))
            }
            State::Cursor { name, open } => {
                let Some(conn) = self.conn.as_deref_mut() else {
                    return Ok(None);
                };
                if !*open {
                    Manager::begin_transaction(conn)?;
                    *open = true;
                    run(site, || self.loader.declare(conn, name))?;
                }
                let fetch = CursorFetch {
                    name: name.clone(),
                    count,
                };
                let rows = run(site, || self.loader.fetch(conn, fetch))?;
                if rows.len() < count as usize {
                    run(site, || Close(name).execute(conn))?;
                    *open = false;
                    self.state = State::Done;
                    Manager::commit_transaction(conn)?;
                }
                Ok((!rows.is_empty()).then_some(rows))
            }
            State::Step(iter) => {
                if iter.is_none() {
                    let Some(conn) = self.conn.take() else {
                        return Ok(None);
                    };
                    *iter = Some(with_site(site, || self.loader.step(conn))?);
                }
                let Some(rows) = iter.as_mut() else {
                    return Ok(None);
                };
                let mut chunk = Vec::with_capacity(count as usize);
                for row in rows.by_ref().take(count as usize) {
                    chunk.push(row?);
                }
                if chunk.len() < count as usize {
                    self.state = State::Done;
                }
                Ok((!chunk.is_empty()).then_some(chunk))
            }
        }
    }

    /// The connection, while no stepped query holds it.
    fn conn(&mut self) -> Option<&mut AnyConnection> {
        self.conn.as_deref_mut()
    }

    fn abandon(&mut self) {
        if let State::Cursor { open: true, .. } = self.state {
            if let Some(conn) = self.conn.as_deref_mut() {
                // Closes the cursor with the transaction; a failure marks the
                // connection broken and the pool discards it.
                let _ = Manager::rollback_transaction(conn);
            }
        }
        self.state = State::Done;
    }
}

impl<R> Iterator for Chunks<'_, R> {
    type Item = Result<Vec<R>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(Some(rows)) => Some(Ok(rows)),
            Ok(None) => None,
            Err(e) => {
                self.abandon();
                Some(Err(e))
            }
        }
    }
}

impl<R> Drop for Chunks<'_, R> {
    fn drop(&mut self) {
        self.abandon();
    }
}

fn with_site<T>(site: &'static Location<'static>, f: impl FnOnce() -> QueryResult<T>) -> Result<T> {
    Ok(crate::instrument::with_call_site(site, f)?)
}

/// `Some(descending)` when keyset pagination on the primary key reads `qs` in its
/// own order: ordered by the primary key alone (or not at all) and not sliced.
fn keyset_direction<M: Model>(qs: &QuerySet<M>) -> Option<bool> {
    if qs.is_sliced() {
        return None;
    }
    let pk = <M::PrimaryKey as diesel::Column>::NAME;
    match qs.ordering().as_slice() {
        [] => Some(false),
        // `IntoOrdering<M::Table>` admits only columns of M's table.
        [term] if term.own_column() == Some(pk) => Some(term.is_descending()),
        _ => None,
    }
}

/// Rows one by one, read a chunk at a time: an iterator of `Result<R>`. Made by
/// [`QuerySet::stream`] (and [`Related::stream`], [`Prefetched::stream`]).
pub struct Stream<'c, R> {
    chunks: Box<dyn Iterator<Item = Result<Vec<R>>> + 'c>,
    strategy: StreamStrategy,
    current: std::vec::IntoIter<R>,
}

impl<'c, R: 'c> Stream<'c, R> {
    fn new(chunks: impl Iterator<Item = Result<Vec<R>>> + 'c, strategy: StreamStrategy) -> Self {
        Self {
            chunks: Box::new(chunks),
            strategy,
            current: Vec::new().into_iter(),
        }
    }

    /// How this stream reads its rows.
    pub fn strategy(&self) -> StreamStrategy {
        self.strategy
    }
}

impl<R> Iterator for Stream<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(Ok(row));
            }
            match self.chunks.next()? {
                Ok(rows) => self.current = rows.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<M: Model> QuerySet<M> {
    /// Iterates the queryset's rows with memory bounded by `chunk_size`: one query
    /// (or `FETCH`) per chunk, never the whole result in memory. Django's
    /// `qs.iterator(chunk_size)`. Rows come in the queryset's order.
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// use orm::StreamStrategy;
    ///
    /// let qs = Message::objects().order_by(weave_message::id.asc());
    /// let (texts, captured) = orm::capture(|| -> orm::Result<Vec<String>> {
    ///     let stream = qs.stream(&mut conn, 2)?;
    ///     assert_eq!(stream.strategy(), StreamStrategy::Keyset);
    ///     stream.map(|m| Ok(m?.text)).collect()
    /// });
    /// assert_eq!(texts?.len(), 3);
    /// // 3 live rows in chunks of 2: a full chunk, then a short one that ends it.
    /// assert_eq!(
    ///     captured.sql(),
    ///     [
    ///         "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) ORDER BY `weave_message`.`id` ASC LIMIT 2",
    ///         "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`id` > ?)) ORDER BY `weave_message`.`id` ASC LIMIT 2",
    ///     ]
    /// );
    /// // PostgreSQL sends the same, with $1, $2 placeholders. With another ordering
    /// // (the default `-updated`) it reads through a cursor instead:
    /// //   BEGIN; DECLARE "orm_stream_0" NO SCROLL CURSOR FOR SELECT ... ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC;
    /// //   FETCH FORWARD 2 FROM "orm_stream_0"; ...; CLOSE "orm_stream_0"; COMMIT
    /// // and SQLite steps through one SELECT.
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunk_size` of 0; each item may be an
    /// [`Error::Query`], after which the stream ends.
    ///
    /// ### Notes
    /// Keyset chunks are separate queries: each sees the table as it is when it
    /// runs, inside a transaction too under PostgreSQL's default `READ COMMITTED`
    /// (each statement its own snapshot). For one snapshot across the chunks, run
    /// the loop in [`atomic_with`](crate::atomic_with) with
    /// [`Isolation::RepeatableRead`](crate::Isolation::RepeatableRead). A cursor or
    /// a stepped `SELECT` is one statement, so it reads one snapshot. Memory is
    /// one chunk of rows on both backends: the PostgreSQL driver would buffer a
    /// whole `SELECT`'s result, so a single statement is never used to stream
    /// there.
    ///
    /// The stream holds `conn` until dropped. On PostgreSQL a cursor stream runs in
    /// a transaction (a savepoint inside [`atomic`](crate::atomic)) until its last
    /// chunk; on SQLite a stepped stream keeps its `SELECT` open, so other
    /// statements need another connection meanwhile.
    #[track_caller]
    #[doc(alias = "iterator")]
    pub fn stream<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Stream<'c, M>> {
        let conn = conn.connection();
        let chunks = self.chunks_at(conn, chunk_size, Location::caller())?;
        let strategy = chunks.strategy();
        Ok(Stream::new(chunks, strategy))
    }

    /// The queryset's rows a chunk (a `Vec` of at most `chunk_size`) at a time; see
    /// [`stream`](Self::stream).
    #[track_caller]
    pub fn chunks<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Chunks<'c, M>> {
        let conn = conn.connection();
        self.chunks_at(conn, chunk_size, Location::caller())
    }

    fn chunks_at<'c>(
        &self,
        conn: &'c mut AnyConnection,
        chunk_size: u32,
        site: &'static Location<'static>,
    ) -> Result<Chunks<'c, M>> {
        Chunks::new(conn, self, Box::new(Models(self.clone())), chunk_size, site)
    }

    /// The strategy [`stream`](Self::stream) uses on `backend`, and the statements
    /// it sends: for [`Keyset`](StreamStrategy::Keyset) the first chunk's and every
    /// later chunk's `SELECT`; for [`Cursor`](StreamStrategy::Cursor) the `DECLARE`
    /// and each `FETCH` (the cursor is named `orm_stream_<n>`, `n` counting streams
    /// in the process); for [`Step`](StreamStrategy::Step) the one `SELECT`.
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// use orm::StreamStrategy;
    /// let by_id = Message::objects().filter(weave_message::thread_id.eq(1)).order_by(weave_message::id.desc());
    /// let (strategy, sql) = by_id.stream_sql(Backend::Postgres, 1000)?;
    /// assert_eq!(strategy, StreamStrategy::Keyset);
    /// assert_eq!(sql[1], r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1)) AND (("weave_message"."id" < $2)) ORDER BY "weave_message"."id" DESC LIMIT $3"#);
    ///
    /// // The default ordering (-updated): a cursor on PostgreSQL, one stepped SELECT on SQLite.
    /// let (strategy, sql) = Message::objects().stream_sql(Backend::Postgres, 1000)?;
    /// assert_eq!(strategy, StreamStrategy::Cursor);
    /// assert_eq!(sql[0], r#"DECLARE "orm_stream_<n>" NO SCROLL CURSOR FOR SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC"#);
    /// assert_eq!(sql[1], r#"FETCH FORWARD 1000 FROM "orm_stream_<n>""#);
    /// let (strategy, sql) = Message::objects().stream_sql(Backend::Sqlite, 1000)?;
    /// assert_eq!(strategy, StreamStrategy::Step);
    /// assert_eq!(sql, [Message::objects().sql(Backend::Sqlite)?]);
    /// # Ok(()) }
    /// ```
    pub fn stream_sql(
        &self,
        backend: Backend,
        chunk_size: u32,
    ) -> Result<(StreamStrategy, Vec<String>)> {
        use crate::fragment::render;
        let strategy = choose(self, backend.capability());
        let sql = match strategy {
            (StreamStrategy::Keyset, descending) => vec![
                render(
                    &keyset_queryset(self, None, descending, chunk_size).select_statement(),
                    backend,
                )?,
                render(
                    &keyset_queryset(
                        self,
                        Some(after_key::<M>(crate::Key::placeholder(), descending)),
                        descending,
                        chunk_size,
                    )
                    .select_statement(),
                    backend,
                )?,
            ],
            (StreamStrategy::Cursor, _) => {
                let name = "orm_stream_<n>";
                vec![
                    render(
                        &Declare {
                            name,
                            query: Box::new(self.select_statement()),
                        },
                        backend,
                    )?,
                    render(
                        &CursorFetch {
                            name: name.into(),
                            count: chunk_size,
                        },
                        backend,
                    )?,
                ]
            }
            (StreamStrategy::Step, _) => vec![render(&self.select_statement(), backend)?],
        };
        Ok((strategy.0, sql))
    }
}

/// The strategy for `qs` on `backend`, and for keyset whether it runs descending.
fn choose<M: Model>(qs: &QuerySet<M>, capability: &Capability) -> (StreamStrategy, bool) {
    match keyset_direction(qs) {
        Some(descending) => (StreamStrategy::Keyset, descending),
        None if capability.server_side_cursors => (StreamStrategy::Cursor, false),
        None => (StreamStrategy::Step, false),
    }
}

impl<C: Model, J: JoinSet<C> + 'static> Related<C, J>
where
    SelectStatement<J::Selection>: diesel::query_dsl::LoadQuery<'static, AnyConnection, J::Row>,
    J::Selection: 'static,
    J::Row: 'static,
{
    /// Iterates the joined rows (`(C, P)` for one key), `chunk_size` at a time (one JOIN query or `FETCH` per
    /// chunk); see [`QuerySet::stream`].
    ///
    /// # Errors
    /// As [`QuerySet::stream`].
    #[track_caller]
    pub fn stream<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Stream<'c, J::Row>> {
        let conn = conn.connection();
        let chunks = self.chunks_at(conn, chunk_size, Location::caller())?;
        let strategy = chunks.strategy();
        Ok(Stream::new(chunks, strategy))
    }

    /// The joined rows a chunk at a time.
    #[track_caller]
    pub fn chunks<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Chunks<'c, J::Row>> {
        let conn = conn.connection();
        self.chunks_at(conn, chunk_size, Location::caller())
    }

    fn chunks_at<'c>(
        &self,
        conn: &'c mut AnyConnection,
        chunk_size: u32,
        site: &'static Location<'static>,
    ) -> Result<Chunks<'c, J::Row>> {
        // Reject joins that reach one table twice before anything runs.
        self.statement()?;
        Chunks::new(
            conn,
            self.queryset(),
            Box::new(Joined(self.clone())),
            chunk_size,
            site,
        )
    }
}

impl<P: Model, S: PrefetchSet<P> + 'static> Prefetched<P, S> {
    /// Iterates parents with their related rows, `chunk_size` parents at a time: per
    /// chunk one query for the parents and one per hop (Django 4.1's
    /// `iterator(chunk_size)` with `prefetch_related`).
    ///
    /// # Errors
    /// As [`QuerySet::stream`], and [`Error::Unsupported`] on SQLite for an ordering
    /// other than the primary key: a stepped `SELECT` holds the connection, so the
    /// hops could not run between chunks. Order by the primary key there.
    #[track_caller]
    pub fn stream<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<Stream<'c, (P, S::Out)>>
    where
        S::Out: 'c,
    {
        let conn = conn.connection();
        let chunks = self.chunks_at(conn, chunk_size, Location::caller())?;
        let strategy = chunks.parents.strategy();
        Ok(Stream::new(chunks, strategy))
    }

    /// Parents with their related rows, a chunk at a time.
    #[track_caller]
    pub fn chunks<'c>(
        &self,
        conn: &'c mut impl AsConnection,
        chunk_size: u32,
    ) -> Result<PrefetchChunks<'c, P, S>> {
        let conn = conn.connection();
        self.chunks_at(conn, chunk_size, Location::caller())
    }

    fn chunks_at<'c>(
        &self,
        conn: &'c mut AnyConnection,
        chunk_size: u32,
        site: &'static Location<'static>,
    ) -> Result<PrefetchChunks<'c, P, S>> {
        let (qs, hops) = self.parts();
        let backend = conn.backend();
        let parents = qs.chunks_at(conn, chunk_size, site)?;
        if parents.strategy() == StreamStrategy::Step {
            return Err(Error::Unsupported {
                backend,
                feature: "streaming with prefetch in an order other than the primary key",
            });
        }
        Ok(PrefetchChunks {
            parents,
            hops: hops.clone(),
            site,
        })
    }
}

/// Chunks of parents, each with its related rows (see [`Prefetched::chunks`]).
pub struct PrefetchChunks<'c, P, S> {
    parents: Chunks<'c, P>,
    hops: S,
    site: &'static Location<'static>,
}

impl<P: Model, S: PrefetchSet<P>> Iterator for PrefetchChunks<'_, P, S> {
    type Item = Result<Vec<(P, S::Out)>>;

    fn next(&mut self) -> Option<Self::Item> {
        let parents = match self.parents.next()? {
            Ok(parents) => parents,
            Err(e) => return Some(Err(e)),
        };
        let site = self.site;
        let hops = &self.hops;
        let result = match self.parents.conn() {
            Some(conn) => crate::instrument::chunked(|| hops.attach(conn, parents, site)),
            None => Err(Error::Unsupported {
                backend: Backend::Sqlite,
                feature: "streaming with prefetch in an order other than the primary key",
            }),
        };
        if result.is_err() {
            self.parents.abandon();
        }
        Some(result)
    }
}
