use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};

use super::fingerprint::fingerprint;
use super::record::{classify, parse_debug_query, QueryKind, QueryRecord};
use super::slow::SlowQueries;
use crate::connection::Backend;
use crate::error_kind::Deadlines;
use crate::routing::{Role, Server};

/// Where one capture scope's records go: shared, so that a scope opened on one
/// thread also receives what a worker thread sends on its behalf.
type Sink = Arc<Mutex<Vec<QueryRecord>>>;

fn push_to(sink: &Sink, record: QueryRecord) {
    if let Ok(mut records) = sink.lock() {
        records.push(record);
    }
}

thread_local! {
    /// Capture scopes receiving this thread's statements, innermost last: scopes
    /// opened here, and scopes lent by the task this thread works for.
    static SCOPES: RefCell<Vec<Sink>> = const { RefCell::new(Vec::new()) };
    /// The id of each entry of `SCOPES`.
    static SCOPE_IDS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static NEXT_SCOPE_ID: Cell<u64> = const { Cell::new(0) };
    /// Fast check: is any scope open on this thread?
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
    /// The call site of the terminal method running now.
    static CALL_SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
    /// The call site of a library method made of other terminal methods
    /// (`get_or_create`): theirs is the user's.
    static PINNED_SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
    /// Set while the pool checks a connection's health.
    static HEALTH_CHECK: Cell<bool> = const { Cell::new(false) };
    /// Set while the library sends a session setting of its own.
    static SESSION: Cell<bool> = const { Cell::new(false) };
    static CHUNKED: Cell<bool> = const { Cell::new(false) };
    /// Set while the library sends a statement it knows only reads: a routing
    /// scope need not look at it for a write.
    static READING: Cell<bool> = const { Cell::new(false) };
}

/// Records every statement run on the current thread while `f` runs.
///
/// Scopes nest: an inner scope's statements are also seen by the outer ones. The
/// connections must come from a [`Database`](crate::Database) pool (they carry the
/// capture instrumentation).
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use diesel::connection::SimpleConnection;
/// let db = orm::Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// let (_, captured) = orm::capture(|| conn.batch_execute("CREATE TABLE t (x INTEGER)"));
/// assert_eq!(captured.len(), 1);
/// assert_eq!(captured.data()[0].sql, "CREATE TABLE t (x INTEGER)");
/// # Ok(()) }
/// ```
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Captured) {
    let scope = ScopeGuard::open();
    // If `f` panics, the guard closes the scope as it unwinds and the records are dropped.
    let r = f();
    (r, scope.finish())
}

/// An open capture scope not tied to a closure (a profiler around a request).
/// Closing it, by [`finish`](Self::finish) or by drop, removes exactly its own scope,
/// even when scopes opened later are still open.
pub(crate) struct ScopeGuard {
    started: Instant,
    id: u64,
    open: bool,
    /// Scopes are per thread: the guard must stay on its thread.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ScopeGuard {
    pub(crate) fn open() -> Self {
        let id = NEXT_SCOPE_ID.with(|n| n.replace(n.get() + 1));
        SCOPE_IDS.with(|ids| ids.borrow_mut().push(id));
        SCOPES.with(|s| s.borrow_mut().push(Arc::new(Mutex::new(Vec::new()))));
        ACTIVE.with(|a| a.set(a.get() + 1));
        Self {
            started: Instant::now(),
            id,
            open: true,
            _not_send: std::marker::PhantomData,
        }
    }

    /// When the scope opened.
    pub(crate) fn started_at(&self) -> Instant {
        self.started
    }

    pub(crate) fn finish(mut self) -> Captured {
        let records = self.close();
        Captured {
            records,
            started: self.started,
            wall: self.started.elapsed(),
        }
    }

    fn close(&mut self) -> Vec<QueryRecord> {
        if !std::mem::replace(&mut self.open, false) {
            return Vec::new();
        }
        ACTIVE.with(|a| a.set(a.get().saturating_sub(1)));
        let position = SCOPE_IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            let position = ids.iter().position(|id| *id == self.id);
            if let Some(p) = position {
                ids.remove(p);
            }
            position
        });
        match position {
            Some(p) => {
                let sink = SCOPES.with(|s| s.borrow_mut().remove(p));
                // A worker may still hold the sink (a dropped future's job): take
                // what arrived so far.
                sink.lock()
                    .map(|mut r| std::mem::take(&mut *r))
                    .unwrap_or_default()
            }
            None => Vec::new(),
        }
    }
}

/// The capture scopes a task sends its statements to, carried to the thread that
/// runs its database work ([`Database::run`](crate::Database::run)), so that captures,
/// profiles and N+1 reports of the task see statements sent from any worker.
#[cfg(feature = "tokio")]
#[derive(Clone, Default)]
pub(crate) struct ScopeContext {
    sinks: Vec<Sink>,
    /// The routing scope ([`RouteScope`](crate::routing::RouteScope)) of the task.
    session: Option<Arc<crate::routing::Session>>,
}

#[cfg(feature = "tokio")]
impl ScopeContext {
    /// The scopes open on this thread now.
    pub(crate) fn current() -> Self {
        let session = crate::routing::current_session();
        if ACTIVE.with(Cell::get) == 0 {
            return Self {
                sinks: Vec::new(),
                session,
            };
        }
        Self {
            sinks: SCOPES.with(|s| s.borrow().clone()),
            session,
        }
    }

    /// A context of one routing scope and no capture scopes.
    pub(crate) fn with_session(session: Arc<crate::routing::Session>) -> Self {
        Self {
            sinks: Vec::new(),
            session: Some(session),
        }
    }

    /// A context of one new scope, not open on any thread yet (an async capture:
    /// the scope is lent to each poll of its future), and that scope's records.
    pub(crate) fn open_detached() -> (Self, Arc<Mutex<Vec<QueryRecord>>>) {
        let sink: Sink = Arc::new(Mutex::new(Vec::new()));
        (
            Self {
                sinks: vec![sink.clone()],
                session: None,
            },
            sink,
        )
    }

    /// Runs `f` with this context's scopes receiving this thread's statements too
    /// (innermost after the thread's own), then removes exactly them.
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        if let Some(session) = &self.session {
            return crate::routing::enter_session(session, || self.enter_sinks(f));
        }
        self.enter_sinks(f)
    }

    fn enter_sinks<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.sinks.is_empty() {
            return f();
        }
        let ids: Vec<u64> = self
            .sinks
            .iter()
            .map(|sink| {
                let id = NEXT_SCOPE_ID.with(|n| n.replace(n.get() + 1));
                SCOPE_IDS.with(|ids| ids.borrow_mut().push(id));
                SCOPES.with(|s| s.borrow_mut().push(sink.clone()));
                ACTIVE.with(|a| a.set(a.get() + 1));
                id
            })
            .collect();
        struct Leave(Vec<u64>);
        impl Drop for Leave {
            fn drop(&mut self) {
                for id in &self.0 {
                    let position = SCOPE_IDS.with(|ids| {
                        let mut ids = ids.borrow_mut();
                        let position = ids.iter().position(|i| i == id);
                        if let Some(p) = position {
                            ids.remove(p);
                        }
                        position
                    });
                    if let Some(p) = position {
                        SCOPES.with(|s| s.borrow_mut().remove(p));
                        ACTIVE.with(|a| a.set(a.get().saturating_sub(1)));
                    }
                }
            }
        }
        let _leave = Leave(ids);
        f()
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs `f` and fails with [`Error::QueryCount`](crate::Error::QueryCount) unless it
/// sent exactly `expected` data statements. The error lists every statement.
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use diesel::connection::SimpleConnection;
/// let db = orm::Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// let err = orm::instrument::expect_queries(0, || conn.batch_execute("SELECT 1")).unwrap_err();
/// assert!(err.to_string().starts_with("expected 0 queries, got 1"));
/// # Ok(()) }
/// ```
pub fn expect_queries<R>(expected: usize, f: impl FnOnce() -> R) -> crate::Result<R> {
    let (r, captured) = capture(f);
    if captured.len() == expected {
        Ok(r)
    } else {
        Err(crate::Error::QueryCount(Box::new(QueryCountMismatch {
            expected,
            captured,
        })))
    }
}

/// The statements of one [`capture`] scope.
#[derive(Debug, Clone)]
pub struct Captured {
    records: Vec<QueryRecord>,
    started: Instant,
    wall: Duration,
}

impl Captured {
    /// What a detached scope (an async capture) received since `started`.
    #[cfg(feature = "tokio")]
    pub(crate) fn from_sink(sink: &Arc<Mutex<Vec<QueryRecord>>>, started: Instant) -> Self {
        let mut records = sink
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        // Workers send concurrently: the order sent is the order they started.
        records.sort_by_key(|r| r.started_at);
        Captured {
            records,
            started,
            wall: started.elapsed(),
        }
    }

    /// Every statement, data or not, in the order sent.
    pub fn all(&self) -> &[QueryRecord] {
        &self.records
    }

    /// The data statements only (no transaction control, no health checks).
    pub fn data(&self) -> Vec<&QueryRecord> {
        self.records.iter().filter(|r| r.is_data()).collect()
    }

    /// How many data statements were sent: what query counts and budgets count.
    pub fn len(&self) -> usize {
        self.records.iter().filter(|r| r.is_data()).count()
    }

    /// True when no data statement was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many statements of `kind` were sent.
    pub fn count_of(&self, kind: QueryKind) -> usize {
        self.records.iter().filter(|r| r.kind == kind).count()
    }

    /// The SQL of the data statements, in order.
    pub fn sql(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter(|r| r.is_data())
            .map(|r| r.sql.as_str())
            .collect()
    }

    /// The summed duration of all statements.
    pub fn database_time(&self) -> Duration {
        self.records.iter().map(|r| r.duration).sum()
    }

    /// Wall-clock time of the whole scope.
    pub fn wall_time(&self) -> Duration {
        self.wall
    }

    /// When the scope opened (statements' `started_at` are later).
    pub fn started_at(&self) -> Instant {
        self.started
    }
}

impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.records.iter().enumerate() {
            let kind = match r.kind {
                QueryKind::Data => "",
                QueryKind::Transaction => " [transaction]",
                QueryKind::HealthCheck => " [health check]",
                QueryKind::Session => " [session]",
            };
            write!(f, "{:>3}. {}{kind}", i + 1, r.sql)?;
            if !r.binds.is_empty() {
                write!(f, " -- binds: [{}]", r.binds.join(", "))?;
            }
            if let Some(site) = r.call_site {
                write!(f, " at {}:{}", site.file(), site.line())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A scope sent another number of data statements than it declared.
#[derive(Debug, Clone)]
pub struct QueryCountMismatch {
    /// The declared count.
    pub expected: usize,
    /// What was sent.
    pub captured: Captured,
}

impl std::fmt::Display for QueryCountMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "expected {} queries, got {}:",
            self.expected,
            self.captured.len()
        )?;
        write!(f, "{}", self.captured)?;
        super::budget::write_repeated_shapes(f, &self.captured)
    }
}

/// Asserts that an expression sends exactly `n` data statements (transaction control
/// and pool health checks are not counted), and evaluates to the expression's value.
/// On failure it panics with every statement, its binds and call site.
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use diesel::connection::SimpleConnection;
/// let db = orm::Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// orm::assert_num_queries!(1, conn.batch_execute("CREATE TABLE t (x INTEGER)"))?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! assert_num_queries {
    ($n:expr, $body:expr $(,)?) => {{
        match $crate::instrument::expect_queries($n, || $body) {
            Ok(value) => value,
            Err(err) => panic!("{}", err),
        }
    }};
}

/// Runs `f` with `site` as the call site recorded for its statements.
pub(crate) fn with_call_site<R>(site: &'static Location<'static>, f: impl FnOnce() -> R) -> R {
    let site = PINNED_SITE.with(Cell::get).unwrap_or(site);
    let previous = CALL_SITE.with(|c| c.replace(Some(site)));
    struct Restore(Option<&'static Location<'static>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_SITE.with(|c| c.set(self.0));
            // The last statement's span, if its rows were not counted.
            super::span::close();
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Runs `f` with every terminal method inside it recorded at `site` (the outermost
/// such call wins): a library method built of other terminal methods reports its
/// statements at its caller's line.
pub(crate) fn with_site<R>(site: &'static Location<'static>, f: impl FnOnce() -> R) -> R {
    if PINNED_SITE.with(Cell::get).is_some() {
        return f();
    }
    PINNED_SITE.with(|c| c.set(Some(site)));
    struct Unpin;
    impl Drop for Unpin {
        fn drop(&mut self) {
            PINNED_SITE.with(|c| c.set(None));
        }
    }
    let _unpin = Unpin;
    f()
}

/// Runs `f` with its statements marked as one chunk of a chunked iteration
/// ([`QueryRecord::chunked`]).
pub(crate) fn chunked<R>(f: impl FnOnce() -> R) -> R {
    marked(&CHUNKED, f)
}

/// Runs `f` with its statements marked as health checks.
pub(crate) fn health_check<R>(f: impl FnOnce() -> R) -> R {
    marked(&HEALTH_CHECK, f)
}

/// Runs `f` with its statements marked as the library's own session settings
/// ([`QueryKind::Session`]).
pub(crate) fn session<R>(f: impl FnOnce() -> R) -> R {
    marked(&SESSION, f)
}

/// Runs `f`, whose statements the library knows only read (the write check of a
/// routing scope skips them: it costs a rendering of the statement).
pub(crate) fn reading<R>(f: impl FnOnce() -> R) -> R {
    marked(&READING, f)
}

fn marked<R>(flag: &'static std::thread::LocalKey<Cell<bool>>, f: impl FnOnce() -> R) -> R {
    let previous = flag.with(|c| c.replace(true));
    struct Restore(&'static std::thread::LocalKey<Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.1;
            self.0.with(|c| c.set(previous));
        }
    }
    let _restore = Restore(flag, previous);
    f()
}

/// Records the row count of the statement just captured.
pub(crate) fn note_rows(rows: usize) {
    super::span::rows(rows);
    if ACTIVE.with(Cell::get) == 0 {
        return;
    }
    SCOPES.with(|s| {
        for sink in s.borrow().iter() {
            let Ok(mut scope) = sink.lock() else { continue };
            if let Some(last) = scope.iter_mut().rev().find(|r| r.is_data()) {
                if last.rows.is_none() {
                    last.rows = Some(rows);
                }
            }
        }
    });
}

/// A statement the library sends for its own checks and settings, or one of its
/// reads.
fn known_not_to_write() -> bool {
    READING.with(Cell::get) || HEALTH_CHECK.with(Cell::get) || SESSION.with(Cell::get)
}

/// Tells the routing scope of a write (for read-your-writes) from the statement's
/// first words, its SQL written without the bound values and cut short (a
/// data-modifying `WITH` is read whole).
fn note_if_write(query: &dyn diesel::connection::DebugQuery) {
    /// The first bytes of what is written to it; then it stops the writer.
    struct Head(String);
    impl std::fmt::Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            const LEN: usize = 32;
            let room = LEN.saturating_sub(self.0.len());
            if s.len() < room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            Err(std::fmt::Error)
        }
    }
    let mut head = Head(String::with_capacity(32));
    let _ = write!(head, "{query}");
    if crate::routing::is_commit(&head.0) {
        crate::routing::note_commit();
        return;
    }
    // A `WITH` may hide its write and a batch its later statements: read them whole.
    let whole = head.0.len() >= 32
        || head.0.contains(';')
        || head
            .0
            .trim_start()
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("WITH"));
    let write = if whole {
        crate::routing::is_write(&query.to_string())
    } else {
        crate::routing::is_write(&head.0)
    };
    if write {
        crate::routing::note_write();
    }
}

/// The diesel instrumentation installed on every pooled connection.
pub(crate) struct CaptureInstrumentation {
    backend: Backend,
    slow: SlowQueries,
    deadlines: Deadlines,
    server: Server,
    engine: crate::Engine,
    /// `db.namespace` of the statements' spans: the database's name or file.
    namespace: Arc<str>,
    started: Option<Instant>,
    /// The span of the statement running now, if a subscriber listens.
    span: Option<tracing::Span>,
}

impl CaptureInstrumentation {
    pub(crate) fn new(
        backend: Backend,
        slow: SlowQueries,
        deadlines: Deadlines,
        server: Server,
        engine: crate::Engine,
        namespace: Arc<str>,
    ) -> Self {
        Self {
            backend,
            slow,
            deadlines,
            server,
            engine,
            namespace,
            started: None,
            span: None,
        }
    }

    /// The engine of the connection's pool.
    pub(crate) fn engine(&self) -> crate::Engine {
        self.engine
    }

    fn finish(
        &mut self,
        query: &dyn diesel::connection::DebugQuery,
        error: Option<&diesel::result::Error>,
    ) {
        let started_at = self.started.take().unwrap_or_else(Instant::now);
        let duration = started_at.elapsed();
        if error.is_some() {
            self.deadlines
                .note_failure(error, duration, self.backend, query);
        }
        let active = ACTIVE.with(Cell::get) > 0;
        let traced = tracing::enabled!(tracing::Level::DEBUG);
        let slow = self.slow.is_slow(duration);
        // A routing scope reads its own writes: it must see each write sent to the primary.
        let routed = self.server.role == Role::Primary && crate::routing::session_active();
        let span = self.span.take();
        if !active && !traced && !slow && span.is_none() {
            if routed && !known_not_to_write() {
                note_if_write(query);
            }
            return;
        }
        let mut text = String::new();
        if write!(text, "{query:?}").is_err() {
            // The statement could not be built (a PostgreSQL-only expression rendered
            // for SQLite): nothing reached the database, so nothing is recorded.
            return;
        }
        let (sql, binds) = parse_debug_query(&text).unwrap_or_else(|| {
            text.clear();
            let _ = write!(text, "{query}");
            (text, Vec::new())
        });
        if routed && !known_not_to_write() {
            if crate::routing::is_commit(&sql) {
                crate::routing::note_commit();
            } else if crate::routing::is_write(&sql) {
                crate::routing::note_write();
            }
        }
        let fingerprinted = span.map(|span| {
            let fingerprint = fingerprint(&sql);
            super::span::finish(
                span,
                self.backend,
                &fingerprint,
                CALL_SITE.with(Cell::get),
                error,
            );
            fingerprint
        });
        if traced {
            if self.slow.with_binds {
                tracing::debug!(target: "orm::query", backend = %self.backend, ?duration, sql = %sql, binds = ?binds);
            } else {
                tracing::debug!(target: "orm::query", backend = %self.backend, ?duration, sql = %sql, binds = binds.len());
            }
        }
        if slow {
            self.slow.warn(
                self.backend,
                duration,
                &sql,
                &binds,
                CALL_SITE.with(Cell::get),
            );
        }
        if !active {
            return;
        }
        let kind = if HEALTH_CHECK.with(Cell::get) {
            QueryKind::HealthCheck
        } else if SESSION.with(Cell::get) {
            QueryKind::Session
        } else {
            classify(&sql)
        };
        let record = QueryRecord {
            fingerprint: fingerprinted.unwrap_or_else(|| fingerprint(&sql)),
            sql,
            binds,
            kind,
            backend: self.backend,
            duration,
            rows: None,
            error: error.map(|e| e.to_string()),
            call_site: CALL_SITE.with(Cell::get),
            started_at,
            chunked: CHUNKED.with(Cell::get),
            server: self.server.clone(),
        };
        SCOPES.with(|s| {
            let scopes = s.borrow();
            // A scope lent by a task and also open here is one sink: record once.
            let mut seen: Vec<*const Mutex<Vec<QueryRecord>>> = Vec::with_capacity(scopes.len());
            if let Some((last, outer)) = scopes.split_last() {
                for sink in outer {
                    if !seen.contains(&Arc::as_ptr(sink)) {
                        seen.push(Arc::as_ptr(sink));
                        push_to(sink, record.clone());
                    }
                }
                if !seen.contains(&Arc::as_ptr(last)) {
                    push_to(last, record);
                }
            }
        });
    }
}

impl Instrumentation for CaptureInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                Deadlines::statement_starts();
                super::span::close();
                self.span = super::span::open(self.backend, &self.server, &self.namespace);
                self.started = Some(Instant::now());
            }
            InstrumentationEvent::RollbackTransaction { .. } => Deadlines::rollback_starts(),
            InstrumentationEvent::FinishQuery { query, error, .. } => self.finish(query, error),
            _ => {}
        }
    }
}
