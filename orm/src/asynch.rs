//! The async face: querysets awaited from tokio (feature `tokio`, on by default).
//!
//! diesel's connections are blocking, SQLite is a library call, and PostgreSQL's
//! driver is libpq: a statement runs on a thread that waits for it. The async face
//! runs each unit of database work on tokio's blocking threads, as
//! deadpool-diesel's `interact` does, with three things more:
//!
//! - **A bounded set of workers**: at most
//!   [`async_workers`](crate::DatabaseBuilder::async_workers) units run at once (by
//!   default twice the CPUs, at most the pool's connections), and a task waits for its
//!   turn with `.await` (never on a runtime thread), up to the pool's connection
//!   timeout ([`Error::PoolTimeout`]).
//! - **One unit, one connection**: [`Database::run`] takes a closure that gets a
//!   pooled connection on the worker and gives it back when it returns, so no
//!   connection is held across an `.await`, and a transaction ([`atomic`](crate::atomic)
//!   inside the closure) begins and ends on one worker.
//! - **Capture follows the task**: the capture scopes open around the awaiting task
//!   ([`capture_async`], [`Profiler::run_async`](crate::Profiler::run_async)) receive
//!   the statements the worker sends.
//!
//! Cancellation: dropping the future of [`Database::run`] does not stop the closure
//! once a worker has started it. The closure runs to its end on the worker, its
//! statements are not cancelled on the server, its transaction commits or rolls back
//! as the closure says, and its connection goes back to the pool clean; its result
//! is discarded. A future dropped before a worker started it runs nothing.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::connection::AnyConnection;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::instrument::{Captured, ScopeContext};
use crate::model::Model;
use crate::queryset::QuerySet;

/// The workers a [`Database`] lends to async tasks
/// ([`DatabaseBuilder::async_workers`](crate::DatabaseBuilder::async_workers)).
#[derive(Debug)]
pub(crate) struct Workers {
    permits: Arc<Semaphore>,
    size: u32,
    closed: AtomicBool,
}

impl Workers {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            closed: AtomicBool::new(false),
        }
    }
}

impl Database {
    /// Runs `f` with a pooled connection on one of tokio's blocking threads and
    /// awaits its result: the unit every async method is made of. Waits (with
    /// `.await`) for a free worker up to the pool's connection timeout; the capture
    /// scopes of the task that awaits it see what `f` sends; `f` runs once, whole, even if
    /// the future is dropped meanwhile (see the [module documentation](self)).
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, conn) = setup();
    /// # drop(conn);
    /// use orm::prelude::*;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let (n, captured) = runtime.block_on(orm::capture_async(async {
    ///     db.run(|conn| Message::objects().count(conn)).await
    /// }));
    /// assert_eq!(n?, 3);
    /// assert_eq!(captured.len(), 1); // sent from a worker, seen by the task's scope
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::PoolTimeout`] when no worker or connection frees up within the pool's
    /// connection timeout; [`Error::Unsupported`] after [`shutdown`](Self::shutdown);
    /// `f`'s error.
    pub fn run<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_in(None, f)
    }

    /// [`run`](Self::run) for reads: `f` runs on a connection of a replica where the
    /// [routing rules](crate::routing) allow, else of the primary. If the replica's
    /// connection is lost meanwhile, the replica leaves the rotation and `f` runs
    /// again on the primary: `f` must only read (a standby refuses writes with
    /// [`DbErrorKind::ReadOnlyTransaction`](crate::DbErrorKind)).
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, conn) = setup();
    /// # drop(conn);
    /// use orm::prelude::*;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let n = runtime.block_on(db.run_read(orm::routing::Route::Auto, |conn| Message::objects().count(conn)))?;
    /// assert_eq!(n, 3); // no replicas here: on the primary
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_read<T, F>(
        &self,
        route: crate::routing::Route,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: Fn(&mut AnyConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        self.run_unit(None, move || db.read_routed(route, f))
    }

    /// [`run`](Self::run) lending `context`'s scopes to the worker; `None`: the scopes
    /// of the task that awaits it, read at its first poll.
    fn run_in<T, F>(
        &self,
        context: Option<ScopeContext>,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        self.run_unit(context, move || {
            let mut conn = db.get()?;
            f(&mut conn)
        })
    }

    /// One unit on a worker, which checks out its own connection.
    fn run_unit<T, F>(
        &self,
        context: Option<ScopeContext>,
        f: F,
    ) -> impl Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        async move {
            let context = context.unwrap_or_else(ScopeContext::current);
            let workers = db.workers();
            if workers.closed.load(Ordering::Acquire) {
                return Err(Error::Unsupported {
                    backend: db.backend(),
                    feature: "database work after shutdown",
                });
            }
            let timeout = db.checkout_timeout();
            let shut = || Error::Unsupported {
                backend: db.backend(),
                feature: "database work after shutdown",
            };
            // A free worker is taken at once; only a wait arms the timer.
            let permit = match workers.permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(tokio::sync::TryAcquireError::Closed) => return Err(shut()),
                Err(tokio::sync::TryAcquireError::NoPermits) => {
                    match tokio::time::timeout(timeout, workers.permits.clone().acquire_owned())
                        .await
                    {
                        Ok(Ok(permit)) => permit,
                        Ok(Err(_)) => return Err(shut()),
                        Err(_) => {
                            return Err(Error::PoolTimeout {
                                timeout,
                                last_error: None,
                            })
                        }
                    }
                }
            };
            let job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                context.enter(f)
            });
            match job.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(Error::Unsupported {
                    backend: crate::Backend::Sqlite,
                    feature: "database work on a runtime that is shutting down",
                }),
            }
        }
    }

    /// Stops lending workers and waits for the running units to finish: new
    /// [`run`](Self::run) calls fail with [`Error::Unsupported`], the pool stays
    /// usable synchronously. For a server's graceful shutdown, after it stopped
    /// accepting requests.
    pub async fn shutdown(&self) {
        let workers = self.workers();
        workers.closed.store(true, Ordering::Release);
        if let Ok(all) = workers.permits.acquire_many(workers.size).await {
            all.forget();
        }
        workers.permits.close();
    }
}

/// `future`, with `context`'s scopes lent to each of its polls.
pub(crate) fn within<F: Future>(
    context: ScopeContext,
    future: F,
) -> impl Future<Output = F::Output> {
    Within {
        context,
        inner: Box::pin(future),
    }
}

/// A future that lends its capture scopes to every poll of `inner`.
struct Within<F> {
    context: ScopeContext,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Within<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.context.enter(|| this.inner.as_mut().poll(cx))
    }
}

/// [`capture`](crate::capture) for async code: records every statement `future`
/// sends, from whichever thread polls it and from the workers of
/// [`Database::run`], across its `.await`s.
pub async fn capture_async<F: Future>(future: F) -> (F::Output, Captured) {
    let (context, sink) = ScopeContext::open_detached();
    let started = Instant::now();
    let output = within(context, future).await;
    (output, Captured::from_sink(&sink, started))
}

/// Awaitable terminal methods, named as Django's async ones (`aall`, `acount`,
/// `aget`...): each runs the synchronous method on a worker through
/// [`Database::run`], recorded at the caller's line.
impl<M: Model> QuerySet<M> {
    /// [`all`](Self::all), awaited.
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, conn) = setup();
    /// # drop(conn);
    /// use orm::prelude::*;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let messages = runtime.block_on(Message::objects().filter(weave_message::thread_id.eq(1)).aall(&db))?;
    /// assert_eq!(messages.len(), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`all`](Self::all) and [`Database::run`].
    #[track_caller]
    pub fn aall(&self, db: &Database) -> impl Future<Output = Result<Vec<M>>> + Send + 'static {
        self.read_awaited(db, Location::caller(), |qs, conn| qs.all(conn))
    }

    /// [`first`](Self::first), awaited.
    ///
    /// # Errors
    /// As [`first`](Self::first) and [`Database::run`].
    #[track_caller]
    pub fn afirst(
        &self,
        db: &Database,
    ) -> impl Future<Output = Result<Option<M>>> + Send + 'static {
        self.read_awaited(db, Location::caller(), |qs, conn| qs.first(conn))
    }

    /// [`get`](Self::get), awaited.
    ///
    /// # Errors
    /// As [`get`](Self::get) and [`Database::run`].
    #[track_caller]
    pub fn aget(&self, db: &Database) -> impl Future<Output = Result<M>> + Send + 'static {
        self.read_awaited(db, Location::caller(), |qs, conn| qs.get(conn))
    }

    /// [`count`](Self::count), awaited.
    ///
    /// # Errors
    /// As [`count`](Self::count) and [`Database::run`].
    #[track_caller]
    pub fn acount(&self, db: &Database) -> impl Future<Output = Result<i64>> + Send + 'static {
        self.read_awaited(db, Location::caller(), |qs, conn| qs.count(conn))
    }

    /// [`exists`](Self::exists), awaited.
    ///
    /// # Errors
    /// As [`exists`](Self::exists) and [`Database::run`].
    #[track_caller]
    pub fn aexists(&self, db: &Database) -> impl Future<Output = Result<bool>> + Send + 'static {
        self.read_awaited(db, Location::caller(), |qs, conn| qs.exists(conn))
    }

    /// [`delete`](Self::delete), awaited.
    ///
    /// # Errors
    /// As [`delete`](Self::delete) and [`Database::run`].
    #[track_caller]
    pub fn adelete(&self, db: &Database) -> impl Future<Output = Result<usize>> + Send + 'static {
        self.awaited(db, Location::caller(), |qs, conn| qs.delete(conn))
    }

    /// A read through [`Database::run_read`], on the queryset's route; a locking
    /// read (`select_for_update`) on the primary.
    fn read_awaited<T: Send + 'static>(
        &self,
        db: &Database,
        site: &'static Location<'static>,
        f: impl Fn(&QuerySet<M>, &mut AnyConnection) -> Result<T> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let qs = self.clone();
        let route = if qs.locks_rows() {
            crate::routing::Route::Primary
        } else {
            qs.route_of()
        };
        db.run_read(route, move |conn| {
            crate::instrument::with_site(site, || f(&qs, conn))
        })
    }

    fn awaited<T: Send + 'static>(
        &self,
        db: &Database,
        site: &'static Location<'static>,
        f: impl FnOnce(&QuerySet<M>, &mut AnyConnection) -> Result<T> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let qs = self.clone();
        db.run(move |conn| crate::instrument::with_site(site, || f(&qs, conn)))
    }
}

/// Rows of a queryset as an async [`Stream`](futures_core::Stream), a chunk at a time
/// (made by [`QuerySet::astream`]).
pub struct AsyncStream<M> {
    state: StreamState<M>,
}

enum StreamState<M> {
    /// Not polled yet: the worker starts at the first poll, with the scopes of the
    /// task that polls it.
    Idle {
        db: Box<Database>,
        qs: QuerySet<M>,
        chunk_size: u32,
        site: &'static Location<'static>,
    },
    Running {
        chunks: tokio::sync::mpsc::Receiver<Result<Vec<M>>>,
        buffer: std::collections::VecDeque<M>,
    },
    Done,
}

impl<M: Model> QuerySet<M> {
    /// [`stream`](Self::stream), as an async `Stream` of rows: one worker holds one
    /// connection for the stream's life and reads `chunk_size` rows at a time (the
    /// sync stream's strategy: keyset chunks, a cursor, or stepping), at most one
    /// chunk ahead of the consumer. Dropping the stream stops the worker after the
    /// chunk it is reading; the connection goes back to the pool, its cursor closed.
    ///
    /// ```
    /// # include!("../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (db, conn) = setup();
    /// # drop(conn);
    /// use orm::prelude::*;
    /// use std::future::poll_fn;
    /// use std::pin::Pin;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let ids = runtime.block_on(async {
    ///     let mut rows = Message::objects().order_by(weave_message::id.asc()).astream(&db, 2);
    ///     let mut ids = Vec::new();
    ///     while let Some(row) = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut rows), cx)).await {
    ///         ids.push(row?.id);
    ///     }
    ///     Ok::<_, orm::Error>(ids)
    /// })?;
    /// assert_eq!(ids, [1, 2, 3]);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn astream(&self, db: &Database, chunk_size: u32) -> AsyncStream<M> {
        AsyncStream {
            state: StreamState::Idle {
                db: Box::new(db.clone()),
                qs: self.clone(),
                chunk_size,
                site: Location::caller(),
            },
        }
    }
}

impl<M> Unpin for AsyncStream<M> {}

impl<M: Model> futures_core::Stream for AsyncStream<M> {
    type Item = Result<M>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<M>>> {
        loop {
            match &mut self.state {
                StreamState::Idle { .. } => {
                    let StreamState::Idle {
                        db,
                        qs,
                        chunk_size,
                        site,
                    } = std::mem::replace(&mut self.state, StreamState::Done)
                    else {
                        unreachable!("matched Idle above")
                    };
                    let (tx, rx) = tokio::sync::mpsc::channel(1);
                    let failed_tx = tx.clone();
                    // The worker runs in a task of its own: it takes the scopes of the
                    // task polling the stream now.
                    // On a replica where the routing allows (no retry: rows may
                    // have reached the consumer already).
                    let route = if qs.locks_rows() {
                        crate::routing::Route::Primary
                    } else {
                        qs.route_of()
                    };
                    let reader = db.clone();
                    let work = db.run_unit(Some(ScopeContext::current()), move || {
                        let mut conn = reader.read_on(route)?;
                        let conn = &mut *conn;
                        crate::instrument::with_site(site, || {
                            for chunk in qs.chunks(conn, chunk_size)? {
                                let failed = chunk.is_err();
                                // The consumer is gone: stop reading.
                                if tx.blocking_send(chunk).is_err() || failed {
                                    break;
                                }
                            }
                            Ok(())
                        })
                    });
                    // The worker's own errors (no free worker, no connection, shutdown)
                    // reach the consumer as the stream's last item.
                    tokio::spawn(async move {
                        if let Err(e) = work.await {
                            let _ = failed_tx.send(Err(e)).await;
                        }
                    });
                    self.state = StreamState::Running {
                        chunks: rx,
                        buffer: std::collections::VecDeque::new(),
                    };
                }
                StreamState::Running { chunks, buffer } => {
                    if let Some(row) = buffer.pop_front() {
                        return Poll::Ready(Some(Ok(row)));
                    }
                    match chunks.poll_recv(cx) {
                        Poll::Ready(Some(Ok(rows))) => buffer.extend(rows),
                        Poll::Ready(Some(Err(e))) => {
                            self.state = StreamState::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                        Poll::Ready(None) => {
                            self.state = StreamState::Done;
                            return Poll::Ready(None);
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                StreamState::Done => return Poll::Ready(None),
            }
        }
    }
}
