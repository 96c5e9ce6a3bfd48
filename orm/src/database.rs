//! `Database::open(url)`: the backend from the URL, an r2d2 pool, SQLite pragmas.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection as _;

use crate::connection::{AnyConnection, Backend};
use crate::error::{ConnectErrorKind, Error, Result};
use crate::error_kind::Deadlines;
use crate::instrument::{health_check, session, CaptureInstrumentation, SlowQueries};

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
        }
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
        let deadlines = Deadlines::new(
            self.statement_timeout,
            capability.busy_timeout.then_some(self.busy_timeout),
        );
        let in_memory = matches!(&target, Target::Sqlite { memory: true, .. });
        let manager = ConnectionManager {
            target,
            busy_timeout: self.busy_timeout,
            slow: self.slow,
            deadlines,
            attached: self.attached,
        };
        // Surface the real cause now rather than as a pool timeout later.
        drop(r2d2::ManageConnection::connect(&manager)?);

        let last_error = LastError::default();
        let mut builder = r2d2::Pool::builder()
            .connection_timeout(self.connection_timeout)
            .test_on_check_out(self.test_on_check_out)
            .error_handler(Box::new(last_error.clone()));
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
        let pool = builder.build_unchecked(manager);
        Ok(Database {
            #[cfg(feature = "tokio")]
            workers: Arc::new(crate::asynch::Workers::new(pool.max_size())),
            pool,
            backend,
            last_error,
            connection_timeout: self.connection_timeout,
            slow: self.slow,
        })
    }
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
        ));
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
