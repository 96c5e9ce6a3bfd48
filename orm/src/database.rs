//! `Database::open(url)`: the backend from the URL, an r2d2 pool, SQLite pragmas.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection as _;

use crate::connection::{AnyConnection, Backend};
use crate::error::{ConnectErrorKind, Error, Result};
use crate::error_kind::Deadlines;
use crate::instrument::{health_check, session, CaptureInstrumentation, SlowQueries};
use crate::routing::{ReplicaSettings, ReplicaStatus, Replicas, Role, Route, Server};

/// A pooled connection; derefs to [`AnyConnection`].
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// A pool of connections to one SQLite file or PostgreSQL database.
///
/// Cheap to clone (the pool is shared). Every connection it opens reports its
/// statements to [`capture`](crate::capture) scopes.
///
/// | URL | backend |
/// |---|---|
/// | `threads.db`, `./data/x.sqlite`, `sqlite://threads.db`, `sqlite:///abs/path.db` | SQLite file (created if missing) |
/// | `:memory:`, `sqlite::memory:` | SQLite in memory (a pool of one connection) |
/// | `postgres://user@host:5432/db`, `postgresql://...` | PostgreSQL |
///
/// SQLite connections are opened with `journal_mode = WAL` (files only),
/// `foreign_keys = ON`, `synchronous = NORMAL` and a busy timeout, so concurrent
/// writers wait instead of failing; [`atomic`](crate::atomic) starts SQLite write
/// transactions with `BEGIN IMMEDIATE`.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<ConnectionManager>,
    backend: Backend,
    last_error: LastError,
    connection_timeout: Duration,
    slow: SlowQueries,
    server: Server,
    replicas: Option<Arc<Replicas>>,
    #[cfg(feature = "tokio")]
    workers: Arc<crate::asynch::Workers>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Database {
    /// The workers lent to async tasks.
    #[cfg(feature = "tokio")]
    pub(crate) fn workers(&self) -> &crate::asynch::Workers {
        &self.workers
    }

    /// How long a checkout waits for a connection.
    #[cfg(feature = "tokio")]
    pub(crate) fn checkout_timeout(&self) -> Duration {
        self.connection_timeout
    }

    /// Opens a pool with the default settings (see [`DatabaseBuilder`]).
    ///
    /// One connection is opened before returning, so a wrong URL, a missing
    /// database or an unreachable server is reported here, with its real cause.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL of no known backend or malformed parameters;
    /// [`Error::Connect`] when the first connection fails (its `kind` says why:
    /// missing database, refused, authentication, unopenable file).
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// let db = orm::Database::open(":memory:")?;
    /// assert_eq!(db.backend(), orm::Backend::Sqlite);
    /// let err = orm::Database::open("mysql://localhost/x").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid database url `mysql://localhost/x`: unknown scheme (expected a file path, sqlite:// or postgres://)");
    /// # Ok(()) }
    /// ```
    pub fn open(url: &str) -> Result<Database> {
        Self::builder(url).open()
    }

    /// Starts configuring a pool for `url`.
    pub fn builder(url: &str) -> DatabaseBuilder {
        DatabaseBuilder::new(url)
    }

    /// Checks out a connection, waiting up to the pool's connection timeout.
    ///
    /// # Errors
    /// [`Error::PoolTimeout`] when no connection became free in time; its
    /// `last_error` holds the connection error, if the database went away.
    pub fn get(&self) -> Result<PooledConnection> {
        self.pool.get().map_err(|_| Error::PoolTimeout {
            timeout: self.connection_timeout,
            last_error: self.last_error.take().map(Box::new),
        })
    }

    /// Checks out a connection if one is free now, without waiting.
    pub fn try_get(&self) -> Option<PooledConnection> {
        self.pool.try_get()
    }

    /// Checks out a connection for reads: a usable replica's where the
    /// [routing rules](crate::routing) allow, the primary's otherwise (and always
    /// without replicas). [`get`](Self::get) is the primary's, for writes. A replica
    /// whose connection cannot be had within the replica checkout timeout leaves the
    /// rotation; the read then goes to the primary.
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// let db = orm::Database::open(":memory:")?;
    /// let conn = db.read()?; // no replicas: the primary's
    /// # drop(conn);
    /// assert!(db.replicas().is_empty());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn read(&self) -> Result<PooledConnection> {
        self.read_on(Route::Auto)
    }

    /// [`read`](Self::read) on `route` ([`Route::Primary`]: the primary's).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn read_on(&self, route: Route) -> Result<PooledConnection> {
        if let Some((replicas, i)) = self.replica_for(route) {
            if let Some(conn) = replicas.checkout(i) {
                return Ok(conn);
            }
        }
        self.get()
    }

    /// The replica a read on `route` goes to now, if any.
    fn replica_for(&self, route: Route) -> Option<(&Replicas, usize)> {
        let replicas = self.replicas.as_deref()?;
        let session = crate::routing::current_session();
        let route = match route {
            Route::Auto => session.as_ref().map_or(Route::Auto, |s| s.route),
            chosen => chosen,
        };
        let wrote = || {
            session
                .as_ref()
                .and_then(|s| s.token())
                .is_some_and(|t| t.within(replicas.settings.read_your_writes))
        };
        match route {
            Route::Primary => None,
            Route::Auto if wrote() => None,
            Route::Auto | Route::Replica => replicas.pick().map(|i| (replicas, i)),
        }
    }

    /// Runs the read `f` where [`read_on`](Self::read_on) would; if it fails on a
    /// replica whose connection turns out lost, the replica leaves the rotation and
    /// `f` runs again on the primary.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn read_routed<T>(
        &self,
        route: Route,
        f: impl Fn(&mut AnyConnection) -> Result<T>,
    ) -> Result<T> {
        if let Some((replicas, i)) = self.replica_for(route) {
            if let Some(mut conn) = replicas.checkout(i) {
                match f(&mut conn) {
                    Err(e) if e.db_kind().is_some() && !alive(&mut conn) => {
                        tracing::debug!(target: "orm::replica", error = %e, "a read failed on a lost replica connection: run again on the primary");
                        drop(conn);
                        replicas.mark_unusable(i, "its connection was lost");
                    }
                    done => return done,
                }
            }
        }
        let mut conn = self.get()?;
        f(&mut conn)
    }

    /// The primary server: its role and address.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The r2d2 pool of replica `index` (in the order of
    /// [`DatabaseBuilder::replica`]), for its state and settings, or a checkout that
    /// bypasses the routing.
    pub fn replica_pool(&self, index: usize) -> Option<&r2d2::Pool<ConnectionManager>> {
        self.replicas.as_deref()?.nodes.get(index).map(|n| &n.pool)
    }

    /// The replicas as last checked (empty without replicas).
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .as_deref()
            .map(Replicas::statuses)
            .unwrap_or_default()
    }

    /// Checks every replica now (the background check does every
    /// [`replica_check_interval`](DatabaseBuilder::replica_check_interval)): a replica
    /// that answers, is a standby and lags at most
    /// [`max_replica_lag`](DatabaseBuilder::max_replica_lag) is usable again.
    pub fn check_replicas(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .as_deref()
            .map(Replicas::check)
            .unwrap_or_default()
    }

    /// Waits until every usable replica has replayed what the primary has written up
    /// to now (by WAL position), up to `timeout`: for a test, or a job that must read
    /// its writes on a replica. Without replicas, returns at once.
    ///
    /// # Errors
    /// [`Error::ReplicaBehind`] when a replica had not caught up in time, or a
    /// position could not be read.
    pub fn wait_for_replicas(&self, timeout: Duration) -> Result<()> {
        match self.replicas.as_deref() {
            Some(replicas) => replicas.wait_for_replay(timeout),
            None => Ok(()),
        }
    }

    /// The backend this pool talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The slow-query threshold of this pool's connections
    /// ([`DatabaseBuilder::slow_query_threshold`]).
    pub fn slow_query_threshold(&self) -> Option<Duration> {
        self.slow.threshold
    }

    /// The underlying r2d2 pool, for its state and settings.
    pub fn pool(&self) -> &r2d2::Pool<ConnectionManager> {
        &self.pool
    }

    /// Runs the pending migrations for this backend; returns how many ran.
    ///
    /// # Errors
    /// [`Error::Migration`] when a migration fails (it is rolled back).
    pub fn migrate(&self, migrations: &crate::Migrations) -> Result<usize> {
        let mut conn = self.get()?;
        migrations.run(&mut conn)
    }
}

/// Pool settings; [`Database::builder`] makes one.
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use std::time::Duration;
/// let db = orm::Database::builder(":memory:")
///     .connection_timeout(Duration::from_secs(2))
///     .test_on_check_out(false)
///     .open()?;
/// assert_eq!(db.pool().max_size(), 1); // in-memory SQLite: one connection, one database
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DatabaseBuilder {
    url: String,
    max_size: Option<u32>,
    min_idle: Option<u32>,
    connection_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    busy_timeout: Duration,
    test_on_check_out: bool,
    slow: SlowQueries,
    statement_timeout: Option<Duration>,
    attached: Vec<Attached>,
    replicas: Vec<String>,
    max_replica_lag: Duration,
    replica_check_interval: Duration,
    read_your_writes: Option<Duration>,
    replica_checkout_timeout: Duration,
    prepared_statements: bool,
    transaction_pooling: bool,
    engine: crate::Engine,
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    async_workers: Option<u32>,
}

/// An SQLite database file attached to every connection under a schema name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attached {
    schema: String,
    path: String,
}

/// `ATTACH DATABASE ? AS "schema"`: the path bound, the schema an identifier.
struct Attach<'a>(&'a Attached);

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for Attach<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("ATTACH DATABASE ");
        out.push_bind_param::<diesel::sql_types::Text, String>(&self.0.path)?;
        out.push_sql(" AS ");
        out.push_identifier(&self.0.schema)
    }
}

impl diesel::query_builder::QueryId for Attach<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> diesel::RunQueryDsl<Conn> for Attach<'_> {}

impl DatabaseBuilder {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            max_size: None,
            min_idle: None,
            connection_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            busy_timeout: Duration::from_secs(5),
            test_on_check_out: true,
            slow: SlowQueries::default(),
            statement_timeout: None,
            attached: Vec::new(),
            replicas: Vec::new(),
            max_replica_lag: Duration::from_secs(2),
            replica_check_interval: Duration::from_millis(500),
            read_your_writes: None,
            replica_checkout_timeout: Duration::from_secs(1),
            prepared_statements: true,
            transaction_pooling: false,
            engine: crate::Engine::PostgreSql,
            async_workers: None,
        }
    }

    /// How many units of the async face ([`Database::run`], the awaited methods) run at
    /// once, each on a blocking thread with a connection; more tasks wait for a turn
    /// with `.await`. Default: twice the CPUs (`std::thread::available_parallelism`),
    /// and at most the pool's connections (with replicas, all pools' together).
    /// Each worker is an OS thread competing for the cores with the runtime, the
    /// database and everything else on the machine: more workers than that add
    /// requests in flight, not throughput, and lengthen the slowest requests (the
    /// measurements are in docs/async.md).
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// let db = orm::Database::builder(":memory:").async_workers(1).open()?;
    /// # drop(db);
    /// # Ok(()) }
    /// ```
    pub fn async_workers(mut self, n: u32) -> Self {
        self.async_workers = Some(n.max(1));
        self
    }

    /// PostgreSQL: the engine behind the URL, when it is a PostgreSQL-compatible one
    /// (default [`Engine::PostgreSql`](crate::Engine)): what its profile lacks is
    /// refused before any SQL with [`Error::UnsupportedByEngine`], or done another
    /// way (a bulk create inserts where it cannot `COPY`). On SQLite, another engine
    /// than the default makes [`open`](Self::open) fail with
    /// [`Error::InvalidArgument`].
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// let cockroach = orm::Engine::CockroachDb.capability();
    /// assert!(!cockroach.tablesample);
    /// let err = orm::Database::builder(":memory:").engine(orm::Engine::CockroachDb).open().unwrap_err();
    /// assert!(matches!(err, orm::Error::InvalidArgument { argument: "engine", .. }));
    /// # Ok(()) }
    /// ```
    pub fn engine(mut self, engine: crate::Engine) -> Self {
        self.engine = engine;
        self
    }

    /// PostgreSQL: a streaming replica (hot standby) of this URL's server, for reads
    /// ([`routing`](crate::routing)); call once per replica. Each replica gets a pool of
    /// its own with this builder's settings. A replica that cannot be reached when the
    /// pool opens does not fail [`open`](Self::open): it is skipped until a check
    /// finds it. On SQLite, [`open`](Self::open) fails with [`Error::Unsupported`].
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// let err = orm::Database::builder(":memory:").replica("postgres://db2/app").open().unwrap_err();
    /// assert!(err.is_unsupported());
    /// # Ok(()) }
    /// ```
    pub fn replica(mut self, url: &str) -> Self {
        self.replicas.push(url.to_owned());
        self
    }

    /// Replicas lagging more than this behind the primary (by WAL position, see
    /// [`routing`](crate::routing)) are skipped until they catch up (default 2 s).
    pub fn max_replica_lag(mut self, lag: Duration) -> Self {
        self.max_replica_lag = lag;
        self
    }

    /// How often replicas are checked in the background (default 500 ms): the lag is
    /// measured to this interval.
    pub fn replica_check_interval(mut self, interval: Duration) -> Self {
        self.replica_check_interval = interval;
        self
    }

    /// How long after a write a [`RouteScope`](crate::routing::RouteScope) reads from
    /// the primary (default: [`max_replica_lag`](Self::max_replica_lag) plus two
    /// check intervals, after which every replica still in rotation has the write).
    pub fn read_your_writes(mut self, window: Duration) -> Self {
        self.read_your_writes = Some(window);
        self
    }

    /// How long a read waits for a replica's connection before it goes to the primary
    /// instead and the replica leaves the rotation (default 1 s).
    pub fn replica_checkout_timeout(mut self, timeout: Duration) -> Self {
        self.replica_checkout_timeout = timeout;
        self
    }

    /// PostgreSQL: whether statements are prepared once per connection and reused
    /// (diesel's statement cache, the default) or sent as unnamed statements each
    /// time, as a pooler that does not keep prepared statements needs.
    pub fn prepared_statements(mut self, on: bool) -> Self {
        self.prepared_statements = on;
        self
    }

    /// PostgreSQL: the URL is a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`), where consecutive transactions of one connection
    /// may run on different server connections. Prepared statements are turned off
    /// ([`prepared_statements`](Self::prepared_statements)); what would set state on
    /// one server connection for the next transactions is refused at
    /// [`open`](Self::open) ([`statement_timeout`](Self::statement_timeout), whose
    /// `SET` would land on one server connection: set it on the server or the role
    /// instead). Transactions, cursors, `SET LOCAL` and `COPY` work as without it:
    /// they live inside one transaction.
    pub fn transaction_pooling(mut self, on: bool) -> Self {
        self.transaction_pooling = on;
        if on {
            self.prepared_statements = false;
        }
        self
    }

    /// SQLite: attaches the database file `path` to every connection as `schema`
    /// (`ATTACH DATABASE ? AS "schema"`), so tables declared `schema.table { .. }`
    /// in diesel's `table!` (what a PostgreSQL schema is in a PostgreSQL model)
    /// resolve there. `":memory:"` attaches an empty database per connection. On
    /// PostgreSQL, where a schema is part of the database,
    /// [`open`](Self::open) fails with [`Error::Unsupported`].
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// use diesel::connection::SimpleConnection;
    /// let db = orm::Database::builder(":memory:").attach("ledger", ":memory:").open()?;
    /// let mut conn = db.get()?;
    /// conn.batch_execute("CREATE TABLE ledger.entry (id INTEGER PRIMARY KEY)")
    ///     .map_err(diesel::result::Error::from)?;
    /// # Ok(()) }
    /// ```
    pub fn attach(mut self, schema: &str, path: &str) -> Self {
        self.attached.push(Attached {
            schema: schema.to_owned(),
            path: path.to_owned(),
        });
        self
    }

    /// Most connections open at once (default 10; 1 for in-memory SQLite).
    pub fn max_size(mut self, n: u32) -> Self {
        self.max_size = Some(n.max(1));
        self
    }

    /// Idle connections kept open however long unused (default 0: connections open
    /// when first needed, up to [`max_size`](Self::max_size), and close after
    /// [`idle_timeout`](Self::idle_timeout) unused).
    pub fn min_idle(mut self, n: u32) -> Self {
        self.min_idle = Some(n);
        self
    }

    /// How long [`Database::get`] waits for a free connection (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Idle connections are closed after this long (default 10 min).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Connections are replaced after this long (default 30 min).
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// SQLite: how long a statement waits for a lock held by another connection
    /// before failing with [`Error::Busy`] (default 5 s: another process's
    /// 100,000-row bulk write holds the lock for well under that).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Check each connection with `SELECT 1` before handing it out (default on).
    /// The check is captured as [`QueryKind::HealthCheck`](crate::instrument::QueryKind),
    /// apart from the data statements.
    pub fn test_on_check_out(mut self, on: bool) -> Self {
        self.test_on_check_out = on;
        self
    }

    /// Warns (`tracing` target `orm::slow_query`) about every statement of this
    /// pool's connections that takes at least `threshold`; `None` (the default):
    /// no warnings. The setting is the pool's: other pools keep their own.
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// use std::time::Duration;
    /// let db = orm::Database::builder(":memory:")
    ///     .slow_query_threshold(Some(Duration::from_millis(200)))
    ///     .open()?;
    /// assert_eq!(db.slow_query_threshold(), Some(Duration::from_millis(200)));
    /// assert_eq!(orm::Database::open(":memory:")?.slow_query_threshold(), None);
    /// # Ok(()) }
    /// ```
    pub fn slow_query_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow.threshold = threshold;
        self
    }

    /// Whether the `tracing` events of this pool's statements (`orm::query` at
    /// debug level, `orm::slow_query` at warn) carry the bound values. Default off:
    /// they are user data; the events then give only their number. Capture scopes
    /// ([`capture`](crate::capture), profiles) always record them.
    pub fn log_bind_values(mut self, on: bool) -> Self {
        self.slow.with_binds = on;
        self
    }

    /// PostgreSQL: every statement of this pool's connections is cancelled by the
    /// server after `timeout` (`SET statement_timeout = <ms>` when a connection
    /// opens, recorded as a session statement), and fails with
    /// [`Error::StatementTimeout`]; the connection stays usable. Default: none.
    /// SQLite has no statement timeout: [`open`](Self::open) then fails with
    /// [`Error::Unsupported`] (use [`Count::ExactWithin`](crate::count::Count) for
    /// counts).
    ///
    /// ```
    /// # fn main() -> orm::Result<()> {
    /// use std::time::Duration;
    /// let err = orm::Database::builder(":memory:")
    ///     .statement_timeout(Some(Duration::from_secs(2)))
    ///     .open()
    ///     .unwrap_err();
    /// assert!(err.is_unsupported());
    /// # Ok(()) }
    /// ```
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Settings the pool cannot work with are a typed error, not the pool's panic.
    fn check_settings(&self) -> Result<()> {
        let invalid = |argument, reason| Err(Error::InvalidArgument { argument, reason });
        if self.connection_timeout.is_zero() {
            return invalid("connection_timeout", "must be more than zero");
        }
        if self.idle_timeout.is_some_and(|t| t.is_zero()) {
            return invalid("idle_timeout", "must be more than zero (None: never)");
        }
        if self.max_lifetime.is_some_and(|t| t.is_zero()) {
            return invalid("max_lifetime", "must be more than zero (None: forever)");
        }
        if self.min_idle.unwrap_or(0) > self.max_size.unwrap_or(10) {
            return invalid("min_idle", "must not be more than max_size");
        }
        if self.replica_check_interval.is_zero() {
            return invalid("replica_check_interval", "must be more than zero");
        }
        if self.replica_checkout_timeout.is_zero() {
            return invalid("replica_checkout_timeout", "must be more than zero");
        }
        Ok(())
    }

    /// Opens the pool; see [`Database::open`] for the errors.
    ///
    /// A zero `connection_timeout`, `idle_timeout` or `max_lifetime`, or a
    /// `min_idle` above `max_size`, is [`Error::InvalidArgument`].
    pub fn open(self) -> Result<Database> {
        self.check_settings()?;
        let target = Target::parse(&self.url)?;
        let backend = target.backend();
        let capability = backend.capability();
        if self.statement_timeout.is_some() && !capability.statement_timeout {
            return Err(Error::Unsupported {
                backend,
                feature: "a statement timeout",
            });
        }
        if !self.attached.is_empty() && !capability.attach {
            return Err(Error::Unsupported {
                backend,
                feature: "attached databases (a PostgreSQL schema is part of the database)",
            });
        }
        if self.engine != crate::Engine::PostgreSql && backend != Backend::Postgres {
            return Err(Error::InvalidArgument {
                argument: "engine",
                reason: "an engine is PostgreSQL-compatible: it needs a postgres:// URL",
            });
        }
        let engine = self.engine.capability();
        if !self.replicas.is_empty() && backend == Backend::Postgres && !engine.streaming_replicas {
            return Err(Error::UnsupportedByEngine {
                engine: self.engine,
                feature:
                    "streaming replicas read by WAL position (use the engine's own follower reads)",
            });
        }
        if !self.replicas.is_empty() && backend != Backend::Postgres {
            return Err(Error::Unsupported {
                backend,
                feature: "read replicas (SQLite is one file: readers scale within it)",
            });
        }
        if self.transaction_pooling && self.statement_timeout.is_some() {
            return Err(Error::Unsupported {
                backend,
                feature: "a statement timeout through a transaction pooler (its SET would stay on one server connection)",
            });
        }
        let replica_targets = self
            .replicas
            .iter()
            .map(|url| match Target::parse(url)? {
                target @ Target::Postgres { .. } => Ok((url.trim().to_owned(), target)),
                Target::Sqlite { .. } => Err(Error::InvalidUrl {
                    url: redact(url),
                    reason: "a replica of a PostgreSQL primary must be a postgres:// URL",
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        let deadlines = Deadlines::new(
            self.statement_timeout,
            capability.busy_timeout.then_some(self.busy_timeout),
        );
        let in_memory = matches!(&target, Target::Sqlite { memory: true, .. });
        let server = Server::new(Role::Primary, &Server::address_of(self.url.trim()));
        let manager = ConnectionManager {
            target,
            busy_timeout: self.busy_timeout,
            slow: self.slow,
            deadlines,
            attached: self.attached.clone(),
            server: server.clone(),
            prepared_statements: self.prepared_statements,
            engine: self.engine,
        };
        // Surface the real cause now rather than as a pool timeout later.
        drop(r2d2::ManageConnection::connect(&manager)?);

        let last_error = LastError::default();
        let pool = self.pool(manager, in_memory, Box::new(last_error.clone()));
        let replicas = (!replica_targets.is_empty()).then(|| {
            let pools = replica_targets
                .into_iter()
                .map(|(url, target)| {
                    let manager = ConnectionManager {
                        server: Server::new(Role::Replica, &Server::address_of(&url)),
                        target,
                        busy_timeout: self.busy_timeout,
                        slow: self.slow,
                        deadlines,
                        attached: Vec::new(),
                        prepared_statements: self.prepared_statements,
                        engine: self.engine,
                    };
                    // A replica's connection errors mark it failed (a checkout
                    // timeout then means down, not busy); they are not kept to
                    // explain a primary's timeout.
                    let failed = crate::routing::Failed::default();
                    let pool = self.pool(manager, false, Box::new(failed.clone()));
                    (url, pool, failed)
                })
                .collect();
            let settings = ReplicaSettings {
                max_lag: self.max_replica_lag,
                check_interval: self.replica_check_interval,
                read_your_writes: self.read_your_writes.unwrap_or(
                    self.max_replica_lag
                        .saturating_add(self.replica_check_interval.saturating_mul(2)),
                ),
                checkout_timeout: self.replica_checkout_timeout,
            };
            Replicas::new(self.url.trim(), pools, settings)
        });
        #[cfg(feature = "tokio")]
        let workers = {
            let connections = pool.max_size()
                + replicas
                    .as_deref()
                    .map_or(0, |r| r.nodes.iter().map(|n| n.pool.max_size()).sum());
            let cpus = std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
            self.async_workers
                .unwrap_or(cpus.saturating_mul(2))
                .min(connections)
        };
        Ok(Database {
            #[cfg(feature = "tokio")]
            workers: Arc::new(crate::asynch::Workers::new(workers)),
            pool,
            backend,
            last_error,
            connection_timeout: self.connection_timeout,
            slow: self.slow,
            server,
            replicas,
        })
    }

    /// An r2d2 pool of `manager`'s connections with this builder's settings.
    fn pool(
        &self,
        manager: ConnectionManager,
        in_memory: bool,
        errors: Box<dyn r2d2::HandleError<Error>>,
    ) -> r2d2::Pool<ConnectionManager> {
        let mut builder = r2d2::Pool::builder()
            .connection_timeout(self.connection_timeout)
            .test_on_check_out(self.test_on_check_out)
            .error_handler(errors);
        builder = if in_memory {
            // Every connection to :memory: is its own database: keep exactly one, forever.
            builder
                .max_size(1)
                .min_idle(Some(1))
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            builder
                .max_size(self.max_size.unwrap_or(10))
                // r2d2 reads "no minimum" as "max_size": it would open every
                // connection of the pool at once, in the background.
                .min_idle(Some(self.min_idle.unwrap_or(0)))
                .idle_timeout(self.idle_timeout)
                .max_lifetime(self.max_lifetime)
        };
        builder.build_unchecked(manager)
    }
}

/// Whether a connection still answers (after a failed read on a replica).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
fn alive(conn: &mut AnyConnection) -> bool {
    health_check(|| conn.batch_execute("SELECT 1")).is_ok()
}

/// Keeps the last connection error the pool saw, to explain a later timeout.
#[derive(Clone, Default)]
struct LastError(Arc<Mutex<Option<Error>>>);

impl LastError {
    fn take(&self) -> Option<Error> {
        self.0.lock().ok().and_then(|mut e| e.take())
    }
}

impl std::fmt::Debug for LastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LastError")
    }
}

impl r2d2::HandleError<Error> for LastError {
    fn handle_error(&self, error: Error) {
        tracing::warn!(target: "orm::pool", %error, "connection error");
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(error);
        }
    }
}

#[derive(Debug, Clone)]
enum Target {
    Sqlite { path: String, memory: bool },
    Postgres { url: String },
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let invalid = |reason| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty url"));
        }
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            validate_postgres(trimmed).map_err(invalid)?;
            return Ok(Target::Postgres {
                url: trimmed.to_owned(),
            });
        }
        let path = if let Some(rest) = trimmed.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = trimmed.strip_prefix("sqlite:") {
            rest
        } else if trimmed.contains("://") {
            return Err(invalid(
                "unknown scheme (expected a file path, sqlite:// or postgres://)",
            ));
        } else {
            trimmed
        };
        if path.is_empty() {
            return Err(invalid("no sqlite file path"));
        }
        let memory = path == ":memory:" || path.contains("mode=memory");
        Ok(Target::Sqlite {
            path: path.to_owned(),
            memory,
        })
    }

    fn backend(&self) -> Backend {
        match self {
            Target::Sqlite { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }
}

/// Rejects what libpq would reject with a less helpful message.
fn validate_postgres(url: &str) -> std::result::Result<(), &'static str> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return Ok(()); // IPv6 literal; libpq checks it
    }
    for part in host_port.split(',') {
        if let Some((_, port)) = part.rsplit_once(':') {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err("port is not a number");
            }
            if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535) {
                return Err("port out of range");
            }
        }
    }
    Ok(())
}

/// The URL with any password replaced by `***`, for logs and messages.
///
/// ```
/// assert_eq!(orm::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
/// ```
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The r2d2 manager: opens connections by URL, sets SQLite pragmas, installs capture.
#[derive(Debug)]
pub struct ConnectionManager {
    target: Target,
    busy_timeout: Duration,
    slow: SlowQueries,
    deadlines: Deadlines,
    attached: Vec<Attached>,
    server: Server,
    prepared_statements: bool,
    engine: crate::Engine,
}

impl ConnectionManager {
    fn connect_error(&self, source: diesel::ConnectionError) -> Error {
        let message = source.to_string();
        let kind = ConnectErrorKind::classify(&message);
        if message.contains("invalid") && message.contains("connection option")
            || message.contains("invalid URI")
            || message.contains("invalid integer value")
        {
            return Error::InvalidUrl {
                url: match &self.target {
                    Target::Postgres { url } => redact(url),
                    Target::Sqlite { path, .. } => path.clone(),
                },
                reason: "rejected by the driver",
            };
        }
        Error::Connect {
            backend: self.target.backend(),
            kind,
            source,
        }
    }
}

impl ConnectionManager {
    /// `db.namespace` of this pool's statement spans: the PostgreSQL database's
    /// name, or the SQLite file.
    fn namespace(&self) -> std::sync::Arc<str> {
        match &self.target {
            Target::Postgres { url } => {
                let rest = url.split_once("://").map_or("", |(_, r)| r);
                let path = rest.split_once('/').map_or("", |(_, p)| p);
                std::sync::Arc::from(path.split('?').next().unwrap_or(""))
            }
            Target::Sqlite { path, .. } => std::sync::Arc::from(path.as_str()),
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = Error;

    fn connect(&self) -> Result<AnyConnection> {
        let mut conn = match &self.target {
            Target::Postgres { url } => diesel::PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(|e| self.connect_error(e))?,
            Target::Sqlite { path, memory } => {
                let mut c =
                    diesel::SqliteConnection::establish(path).map_err(|e| self.connect_error(e))?;
                // SQLite reads an int: a number of ours, at most i32::MAX ms.
                let busy_timeout = self.busy_timeout.as_millis().min(i32::MAX as u128);
                let pragmas = format!(
                    "PRAGMA busy_timeout = {busy_timeout}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;{}",
                    if *memory { "" } else { " PRAGMA journal_mode = WAL;" }
                );
                c.batch_execute(&pragmas).map_err(|e| {
                    self.connect_error(diesel::ConnectionError::CouldntSetupConfiguration(e))
                })?;
                if !*memory {
                    // The statistics SQLite recommends a new long-lived connection to
                    // refresh: every table is checked, and one with an index never
                    // analysed, or much changed, is analysed within a time limit
                    // SQLite sets itself. Best effort and without waiting: while
                    // another connection holds the write lock, ANALYZE cannot write its
                    // statistics, and the connection opens without them.
                    let optimize = format!(
                        "PRAGMA busy_timeout = 0; PRAGMA optimize = 0x10002; PRAGMA busy_timeout = {busy_timeout};"
                    );
                    if c.batch_execute(&optimize).is_err() {
                        c.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout};"))
                            .map_err(|e| {
                                self.connect_error(
                                    diesel::ConnectionError::CouldntSetupConfiguration(e),
                                )
                            })?;
                    }
                }
                for attached in &self.attached {
                    diesel::RunQueryDsl::execute(Attach(attached), &mut c).map_err(|e| {
                        self.connect_error(diesel::ConnectionError::CouldntSetupConfiguration(e))
                    })?;
                }
                AnyConnection::Sqlite(c)
            }
        };
        let backend = conn.backend();
        conn.set_instrumentation(CaptureInstrumentation::new(
            backend,
            self.slow,
            self.deadlines,
            self.server.clone(),
            self.engine,
            self.namespace(),
        ));
        if !self.prepared_statements {
            conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        }
        if let Some(timeout) = self.deadlines.statement {
            // `SET` takes no parameters: a number of ours, rendered.
            let millis = crate::count::timeout_millis(timeout);
            session(|| conn.batch_execute(&format!("SET statement_timeout = {millis}"))).map_err(
                |e| self.connect_error(diesel::ConnectionError::CouldntSetupConfiguration(e)),
            )?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<()> {
        health_check(|| conn.batch_execute("SELECT 1")).map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        use diesel::connection::TransactionManager;
        // A connection still inside a transaction (a panic mid-transaction) is not reused.
        let status =
            <AnyConnection as diesel::Connection>::TransactionManager::transaction_manager_status_mut(conn);
        !matches!(status.transaction_depth(), Ok(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_their_backend() {
        for (url, backend) in [
            ("threads.db", Backend::Sqlite),
            ("sqlite://threads.db", Backend::Sqlite),
            ("sqlite:///tmp/x.db", Backend::Sqlite),
            (":memory:", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("postgres://u@h/db", Backend::Postgres),
            (
                "postgresql://u@h:5432/db?sslmode=disable",
                Backend::Postgres,
            ),
        ] {
            assert_eq!(
                Target::parse(url).map(|t| t.backend()).ok(),
                Some(backend),
                "{url}"
            );
        }
    }

    #[test]
    fn malformed_urls_are_rejected_with_a_reason() {
        for (url, reason) in [
            ("", "empty url"),
            (
                "mysql://x/y",
                "unknown scheme (expected a file path, sqlite:// or postgres://)",
            ),
            ("postgres://u@h:port/db", "port is not a number"),
            ("postgres://u@h:99999/db", "port out of range"),
            ("sqlite://", "no sqlite file path"),
        ] {
            match Target::parse(url) {
                Err(Error::InvalidUrl { reason: r, .. }) => assert_eq!(r, reason, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("threads.db"), "threads.db");
    }
}
