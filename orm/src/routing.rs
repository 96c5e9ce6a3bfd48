//! Read replicas: reads go to healthy replicas, writes to the primary, and a scope
//! that wrote reads its own writes.
//!
//! A [`Database`](crate::Database) built with
//! [`replica`](crate::DatabaseBuilder::replica) URLs holds one pool per server. What
//! goes where:
//!
//! | work | server |
//! |---|---|
//! | [`Database::get`](crate::Database::get), [`Database::run`](crate::Database::run): writes, transactions, `select_for_update`, anything | the primary, always |
//! | [`Database::read`](crate::Database::read), [`Database::run_read`](crate::Database::run_read), the awaited reads (`aall`, `afirst`, `aget`, `acount`, `aexists`, `astream`) | a replica, unless one of the rules below says the primary |
//!
//! A read goes to the primary when:
//! - its queryset says so ([`QuerySet::route`](crate::QuerySet::route) with
//!   [`Route::Primary`]), or, when the queryset leaves it to [`Route::Auto`], the
//!   enclosing [`RouteScope`] does;
//! - the enclosing [`RouteScope`] wrote within the read-your-writes window
//!   ([`read_your_writes`](crate::DatabaseBuilder::read_your_writes)), directly or as
//!   carried by the [`WriteToken`] it was resumed from;
//! - no replica is usable: each is checked in the background every
//!   [`replica_check_interval`](crate::DatabaseBuilder::replica_check_interval), and
//!   one that is unreachable, is not a standby, or lags more than
//!   [`max_replica_lag`](crate::DatabaseBuilder::max_replica_lag) is skipped, with a
//!   log line (`tracing` target `orm::replica`) when it goes and when it comes back.
//!
//! Replicas are used round-robin. A read that fails on a replica because its
//! connection was lost marks that replica unusable and, for the awaited reads and
//! [`run_read`](crate::Database::run_read), runs again on the primary.
//!
//! **Lag is measured by WAL position**, not by `pg_last_xact_replay_timestamp()`,
//! which keeps growing on a primary that writes nothing: each check reads the
//! primary's `pg_current_wal_lsn()` and keeps the samples; a replica's lag is the
//! age of the newest sample its `pg_last_wal_replay_lsn()` has reached (zero when it
//! has replayed all the primary had at this check), so it is measured to the check
//! interval.
//!
//! Capture records the [`Server`] each statement ran on
//! ([`QueryRecord::server`](crate::instrument::QueryRecord::server)).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::{Connection as _, RunQueryDsl as _};

use crate::database::{ConnectionManager, PooledConnection};
use crate::error::{Error, Result};

/// Which kind of server a statement ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The primary: the pool of [`Database::open`](crate::Database::open)'s URL (and
    /// every SQLite database).
    Primary,
    /// A read replica ([`DatabaseBuilder::replica`](crate::DatabaseBuilder::replica)).
    Replica,
}

/// The server a connection talks to: its role and address (`host:port` as the URL
/// gives it, or the SQLite file).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Server {
    /// Primary or replica.
    pub role: Role,
    /// `host:port` of a PostgreSQL URL (every host of a multi-host URL), or the
    /// SQLite path.
    #[serde(serialize_with = "serialize_str")]
    pub address: Arc<str>,
}

fn serialize_str<S: serde::Serializer>(
    value: &Arc<str>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(value)
}

impl Server {
    pub(crate) fn new(role: Role, address: &str) -> Self {
        Self {
            role,
            address: Arc::from(address),
        }
    }

    /// The address part of a database URL: `host:port` of a PostgreSQL URL (no
    /// user, password, database or parameters), or the SQLite path as given.
    pub(crate) fn address_of(url: &str) -> String {
        let Some((_, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return rest.to_owned();
        }
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if hosts.is_empty() {
            "localhost".to_owned()
        } else {
            hosts.to_owned()
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self.role {
            Role::Primary => "primary",
            Role::Replica => "replica",
        };
        write!(f, "{role} {}", self.address)
    }
}

/// Where a read goes ([`QuerySet::route`](crate::QuerySet::route),
/// [`RouteScope::route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Route {
    /// A replica, unless the scope wrote within the read-your-writes window, or no
    /// replica is usable (the default).
    #[default]
    Auto,
    /// The primary, always.
    Primary,
    /// A usable replica even right after a write of the scope (a read that may be
    /// stale); the primary when no replica is usable.
    Replica,
}

/// When a [`RouteScope`] last wrote, to carry read-your-writes to a later scope (the
/// GET a POST redirects to), as a cookie or a header: its text form is the
/// milliseconds since the Unix epoch.
///
/// ```
/// let token: orm::routing::WriteToken = "1764633600000".parse()?;
/// assert_eq!(token.to_string(), "1764633600000");
/// assert!("yesterday".parse::<orm::routing::WriteToken>().is_err());
/// # Ok::<(), orm::Error>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct WriteToken(u64);

impl WriteToken {
    fn now() -> Self {
        Self(unix_millis(SystemTime::now()))
    }

    /// When the write was.
    pub fn written_at(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// Whether the write is less than `window` ago.
    pub(crate) fn within(self, window: Duration) -> bool {
        let now = unix_millis(SystemTime::now());
        // A token from the future (a forged cookie, a skewed clock) pins nothing
        // beyond a minute of skew.
        if self.0 > now.saturating_add(60_000) {
            return false;
        }
        now.saturating_sub(self.0) < u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .max(1)
}

impl std::fmt::Display for WriteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for WriteToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(WriteToken)
            .ok_or(Error::InvalidArgument {
                argument: "WriteToken",
                reason: "not a write token (milliseconds since the Unix epoch)",
            })
    }
}

/// The routing state of one scope, shared by the threads working for it.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The scope's last write, in Unix milliseconds; 0: none yet.
    last_write: AtomicU64,
    pub(crate) route: Route,
}

impl Session {
    pub(crate) fn token(&self) -> Option<WriteToken> {
        match self.last_write.load(Ordering::Acquire) {
            0 => None,
            ms => Some(WriteToken(ms)),
        }
    }
}

thread_local! {
    static SESSION: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// The routing scope open on this thread, if any.
pub(crate) fn current_session() -> Option<Arc<Session>> {
    SESSION.with(|s| s.borrow().clone())
}

/// Runs `f` with `session` as this thread's routing scope, then restores the one before.
pub(crate) fn enter_session<R>(session: &Arc<Session>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Session>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SESSION.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SESSION.with(|s| s.borrow_mut().replace(session.clone())));
    f()
}

/// Whether a routing scope is open on this thread (the instrumentation's fast check).
pub(crate) fn session_active() -> bool {
    SESSION.with(|s| s.borrow().is_some())
}

/// A transaction ended on the primary: a scope that wrote counts its window from now
/// (the writes became visible at the commit, not when they were sent).
pub(crate) fn note_commit() {
    SESSION.with(|s| {
        if let Some(session) = &*s.borrow() {
            if session.last_write.load(Ordering::Acquire) != 0 {
                session
                    .last_write
                    .store(WriteToken::now().0, Ordering::Release);
            }
        }
    });
}

/// A write reached the primary: the scope open on this thread reads from the primary
/// for the read-your-writes window.
pub(crate) fn note_write() {
    SESSION.with(|s| {
        if let Some(session) = &*s.borrow() {
            session
                .last_write
                .store(WriteToken::now().0, Ordering::Release);
        }
    });
}

/// Whether `sql` may change data (or the schema): anything but a plain read,
/// transaction control and session settings. A data-modifying `WITH` counts, and a
/// batch of several statements is a write if any of them is.
pub(crate) fn is_write(sql: &str) -> bool {
    if sql.contains(';') {
        return sql
            .split(';')
            .any(|part| !part.trim().is_empty() && is_one_write(part));
    }
    is_one_write(sql)
}

/// Whether `sql` ends a transaction (`COMMIT`, `END`): the moment its writes become
/// visible, from which read-your-writes counts.
pub(crate) fn is_commit(sql: &str) -> bool {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    word == "COMMIT" || word == "END"
}

fn is_one_write(sql: &str) -> bool {
    let head = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match word.as_str() {
        "SELECT" | "VALUES" | "TABLE" | "SHOW" | "EXPLAIN" | "BEGIN" | "START" | "COMMIT"
        | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" | "SET" | "RESET" | "DECLARE" | "FETCH"
        | "MOVE" | "CLOSE" | "PRAGMA" => false,
        "WITH" => {
            let upper = sql.to_ascii_uppercase();
            ["INSERT ", "UPDATE ", "DELETE ", "MERGE "]
                .iter()
                .any(|w| upper.contains(w))
        }
        _ => true,
    }
}

/// A scope of read-your-writes routing (a request, a task): its reads go to the
/// primary for the read-your-writes window after any write it sent to the primary.
/// Scopes follow the task across `.await`s and onto the workers of
/// [`Database::run`](crate::Database::run).
///
/// ```
/// # include!("../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// use orm::routing::RouteScope;
/// let (_, token) = RouteScope::new().run(|| Message::objects().filter(weave_message::id.eq(1)).update(&mut conn, weave_message::text.eq("edited")));
/// assert!(token.is_some()); // it wrote: carry the token to the next request
/// let (_, token) = RouteScope::new().after(token).run(|| Message::objects().count(&mut conn));
/// assert!(token.is_some()); // still inside the window
/// let (_, token) = RouteScope::new().run(|| Message::objects().count(&mut conn));
/// assert_eq!(token, None);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteScope {
    after: Option<WriteToken>,
    route: Route,
}

impl RouteScope {
    /// A scope that has not written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes from the token of an earlier scope (a cookie of the request before):
    /// inside its window, this scope's reads go to the primary too.
    pub fn after(mut self, token: Option<WriteToken>) -> Self {
        self.after = token;
        self
    }

    /// Where this scope's reads go when their queryset leaves it to [`Route::Auto`].
    pub fn route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    fn session(self) -> Arc<Session> {
        Arc::new(Session {
            last_write: AtomicU64::new(self.after.map_or(0, |t| t.0)),
            route: self.route,
        })
    }

    /// Runs `f` in this scope on this thread; returns its result and the scope's
    /// last write (the token it resumed from if it wrote nothing itself).
    pub fn run<R>(self, f: impl FnOnce() -> R) -> (R, Option<WriteToken>) {
        let session = self.session();
        let r = enter_session(&session, f);
        (r, session.token())
    }

    /// Runs `future` in this scope, on whichever threads poll it and on the workers
    /// it awaits; returns its output and the scope's last write.
    #[cfg(feature = "tokio")]
    pub async fn run_async<F: std::future::Future>(
        self,
        future: F,
    ) -> (F::Output, Option<WriteToken>) {
        let session = self.session();
        let context = crate::instrument::ScopeContext::with_session(session.clone());
        let output = crate::asynch::within(context, future).await;
        (output, session.token())
    }
}

/// The last write of the routing scope open here (or the token it resumed from):
/// `None` outside a scope or before a write.
pub fn last_write() -> Option<WriteToken> {
    current_session().and_then(|s| s.token())
}

/// A replica's state as last checked ([`Database::replicas`](crate::Database::replicas)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The replica.
    pub server: Server,
    /// Whether reads may go to it now.
    pub usable: bool,
    /// Its lag behind the primary, measured by WAL position at the last check:
    /// `None` when it could not be measured.
    pub lag: Option<Duration>,
    /// Why it is not usable, if it is not.
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
struct Health {
    usable: bool,
    lag: Option<Duration>,
    reason: Option<String>,
}

/// Set by a replica pool's error handler when a connection to it failed, so that a
/// checkout timeout can tell a replica that is down from one that is busy.
#[derive(Clone, Default)]
pub(crate) struct Failed(Arc<AtomicBool>);

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Failed")
    }
}

impl r2d2::HandleError<Error> for Failed {
    fn handle_error(&self, error: Error) {
        tracing::debug!(target: "orm::replica", %error, "replica connection error");
        self.0.store(true, Ordering::Release);
    }
}

/// One replica: its pool and what the last check found.
pub(crate) struct Replica {
    pub(crate) pool: r2d2::Pool<ConnectionManager>,
    failed: Failed,
    pub(crate) server: Server,
    url: String,
    usable: AtomicBool,
    health: Mutex<Health>,
}

/// The replicas of a [`Database`](crate::Database) and the routing settings.
pub(crate) struct Replicas {
    pub(crate) nodes: Vec<Replica>,
    next: AtomicUsize,
    pub(crate) settings: ReplicaSettings,
    primary_url: String,
    checker: Mutex<Checker>,
    /// Dropped with the replicas: the background check stops at once.
    _stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// The routing settings of a pool with replicas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaSettings {
    pub(crate) max_lag: Duration,
    pub(crate) check_interval: Duration,
    pub(crate) read_your_writes: Duration,
    pub(crate) checkout_timeout: Duration,
}

/// The checker's own connections (outside the pools, never captured) and the
/// primary's WAL positions it sampled.
#[derive(Default)]
struct Checker {
    primary: Option<diesel::PgConnection>,
    replicas: Vec<Option<diesel::PgConnection>>,
    samples: VecDeque<(Instant, i64)>,
}

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    standby: bool,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    lsn: i64,
}

/// The checker's URL: timeouts of its own, so that an unreachable or partitioned
/// host does not hold the checks for libpq's or TCP's defaults (a connect timeout,
/// TCP keepalives, a bound on unacknowledged sends); what the URL already sets stays.
fn with_connect_timeout(url: &str) -> String {
    let mut url = url.to_owned();
    for (key, value) in [
        ("connect_timeout", "2"),
        ("keepalives", "1"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "2"),
        ("keepalives_count", "2"),
        ("tcp_user_timeout", "5000"),
    ] {
        if !url.contains(&format!("{key}=")) {
            let separator = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{separator}{key}={value}");
        }
    }
    url
}

impl Replicas {
    pub(crate) fn new(
        primary_url: &str,
        nodes: Vec<(String, r2d2::Pool<ConnectionManager>, Failed)>,
        settings: ReplicaSettings,
    ) -> Arc<Self> {
        let count = nodes.len();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let replicas = Arc::new(Self {
            nodes: nodes
                .into_iter()
                .map(|(url, pool, failed)| Replica {
                    server: Server::new(Role::Replica, &Server::address_of(&url)),
                    url,
                    pool,
                    failed,
                    usable: AtomicBool::new(false),
                    health: Mutex::new(Health {
                        usable: false,
                        lag: None,
                        reason: Some("not checked yet".to_owned()),
                    }),
                })
                .collect(),
            next: AtomicUsize::new(0),
            settings,
            primary_url: primary_url.to_owned(),
            checker: Mutex::new(Checker {
                replicas: (0..count).map(|_| None).collect(),
                ..Checker::default()
            }),
            _stop: Mutex::new(Some(stop)),
        });
        replicas.check();
        let weak = Arc::downgrade(&replicas);
        let interval = settings.check_interval;
        let spawned = std::thread::Builder::new()
            .name("orm-replica-check".to_owned())
            .spawn(move || check_forever(&weak, interval, &stopped));
        if let Err(error) = spawned {
            tracing::warn!(target: "orm::replica", %error, "no thread for the replica checks: replicas are checked only by Database::check_replicas");
        }
        replicas
    }

    /// A usable replica, round-robin.
    pub(crate) fn pick(&self) -> Option<usize> {
        let n = self.nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.nodes[i].usable.load(Ordering::Acquire))
    }

    /// A connection of replica `i`, or `None` (the replica marked unusable) when none
    /// could be had within the replica checkout timeout.
    pub(crate) fn checkout(&self, i: usize) -> Option<PooledConnection> {
        let node = &self.nodes[i];
        node.failed.0.store(false, Ordering::Release);
        let deadline = Instant::now() + self.settings.checkout_timeout;
        // In slices, so that a replica whose connections fail is left at once rather
        // than at the end of the timeout.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match node.pool.get_timeout(left.min(Duration::from_millis(100))) {
                Ok(conn) => return Some(conn),
                // Connections to it failed meanwhile: it is down.
                Err(_) if node.failed.0.swap(false, Ordering::AcqRel) => {
                    self.mark_unusable(i, "its connections fail");
                    return None;
                }
                // Every connection busy the whole time: this read goes to the
                // primary, the replica stays.
                Err(_) if left <= Duration::from_millis(100) => return None,
                Err(_) => {}
            }
        }
    }

    /// Takes replica `i` out of rotation until a check finds it healthy again.
    pub(crate) fn mark_unusable(&self, i: usize, reason: &str) {
        let node = &self.nodes[i];
        if let Ok(mut health) = node.health.lock() {
            if health.usable {
                tracing::warn!(target: "orm::replica", replica = %node.server, reason, "replica skipped: reads go to the primary");
            }
            health.usable = false;
            health.reason = Some(reason.to_owned());
        }
        node.usable.store(false, Ordering::Release);
    }

    pub(crate) fn statuses(&self) -> Vec<ReplicaStatus> {
        self.nodes
            .iter()
            .map(|node| {
                let health = node.health.lock().map(|h| h.clone()).unwrap_or(Health {
                    usable: false,
                    lag: None,
                    reason: Some("health state poisoned".to_owned()),
                });
                ReplicaStatus {
                    server: node.server.clone(),
                    usable: health.usable,
                    lag: health.lag,
                    reason: health.reason,
                }
            })
            .collect()
    }

    /// Checks every replica now: reachable, a standby, and how far behind.
    pub(crate) fn check(&self) -> Vec<ReplicaStatus> {
        let Ok(mut checker) = self.checker.lock() else {
            return self.statuses();
        };
        let checker = &mut *checker;
        let now = Instant::now();
        match primary_position(&mut checker.primary, &self.primary_url) {
            Ok(lsn) => checker.samples.push_back((now, lsn)),
            Err(error) => {
                tracing::debug!(target: "orm::replica", %error, "the primary's WAL position could not be read")
            }
        }
        let keep = self
            .settings
            .max_lag
            .saturating_mul(4)
            .max(Duration::from_secs(30));
        while checker.samples.len() > 1
            && checker
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > keep)
        {
            checker.samples.pop_front();
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let found = replica_position(&mut checker.replicas[i], &node.url);
            let health = match found {
                Ok(Position { standby: false, .. }) => Health {
                    usable: false,
                    lag: None,
                    reason: Some("not a standby (promoted, or not a replica)".to_owned()),
                },
                Ok(Position { lsn, .. }) => match lag_of(&checker.samples, lsn, now) {
                    Ok(lag) if lag <= self.settings.max_lag => Health {
                        usable: true,
                        lag: Some(lag),
                        reason: None,
                    },
                    Ok(lag) => Health {
                        usable: false,
                        lag: Some(lag),
                        reason: Some(format!(
                            "lags {} ms, more than the {} ms allowed",
                            lag.as_millis(),
                            self.settings.max_lag.as_millis()
                        )),
                    },
                    // Behind every position sampled so far: its lag is not known
                    // until a later check finds a position it has reached.
                    Err(at_least) => Health {
                        usable: false,
                        lag: None,
                        reason: Some(format!(
                            "lag not known yet (at least {} ms)",
                            at_least.as_millis()
                        )),
                    },
                },
                Err(error) => Health {
                    usable: false,
                    lag: None,
                    reason: Some(format!("unreachable: {}", error.trim())),
                },
            };
            if let Ok(mut current) = node.health.lock() {
                match (current.usable, health.usable) {
                    (true, false) => {
                        tracing::warn!(target: "orm::replica", replica = %node.server, reason = health.reason.as_deref().unwrap_or(""), "replica skipped: reads go to the primary")
                    }
                    (false, true) => {
                        tracing::info!(target: "orm::replica", replica = %node.server, "replica usable again")
                    }
                    _ => {}
                }
                *current = health.clone();
            }
            node.usable.store(health.usable, Ordering::Release);
        }
        self.statuses()
    }

    /// Waits until every usable replica has replayed what the primary has written
    /// now, polling every few milliseconds, up to `timeout`.
    pub(crate) fn wait_for_replay(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        // The checker's connections are locked one query at a time: the background
        // check goes on between the polls.
        let target = {
            let Ok(mut checker) = self.checker.lock() else {
                return Ok(());
            };
            primary_position(&mut checker.primary, &self.primary_url).map_err(|reason| {
                Error::ReplicaBehind {
                    server: "primary".to_owned(),
                    reason,
                }
            })?
        };
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.usable.load(Ordering::Acquire) {
                continue;
            }
            loop {
                let found = match self.checker.lock() {
                    Ok(mut checker) => replica_position(&mut checker.replicas[i], &node.url),
                    Err(_) => return Ok(()),
                };
                match found {
                    Ok(p) if p.lsn >= target => break,
                    Ok(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Ok(p) => {
                        return Err(Error::ReplicaBehind {
                            server: node.server.to_string(),
                            reason: format!(
                                "replayed up to byte {} of the WAL, the primary is at {target}, after {} ms",
                                p.lsn,
                                timeout.as_millis()
                            ),
                        })
                    }
                    Err(reason) => {
                        return Err(Error::ReplicaBehind {
                            server: node.server.to_string(),
                            reason,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

/// The replica's lag: zero when it has replayed the newest primary position sampled,
/// else the age of the newest sample it has reached. `Err` with the age of the
/// oldest sample when it has not reached even that one (it lags at least so much:
/// how much more is unknown), or zero without samples.
fn lag_of(
    samples: &VecDeque<(Instant, i64)>,
    replayed: i64,
    now: Instant,
) -> std::result::Result<Duration, Duration> {
    let Some((_, newest)) = samples.back() else {
        return Err(Duration::ZERO);
    };
    if replayed >= *newest {
        return Ok(Duration::ZERO);
    }
    match samples.iter().rev().find(|(_, lsn)| *lsn <= replayed) {
        Some((at, _)) => Ok(now.saturating_duration_since(*at)),
        None => Err(samples
            .front()
            .map_or(Duration::ZERO, |(at, _)| now.saturating_duration_since(*at))),
    }
}

fn check_forever(
    replicas: &Weak<Replicas>,
    interval: Duration,
    stopped: &std::sync::mpsc::Receiver<()>,
) {
    // Each interval, until the replicas are dropped (the channel closes).
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let Some(replicas) = replicas.upgrade() else {
            return;
        };
        replicas.check();
    }
}

fn connected<'c>(
    slot: &'c mut Option<diesel::PgConnection>,
    url: &str,
) -> std::result::Result<&'c mut diesel::PgConnection, String> {
    if slot.is_none() {
        use diesel::connection::SimpleConnection;
        let mut conn = diesel::PgConnection::establish(&with_connect_timeout(url))
            .map_err(|e| e.to_string())?;
        // A check's query never waits long on a server that answers.
        conn.batch_execute("SET statement_timeout = 2000")
            .map_err(|e| e.to_string())?;
        *slot = Some(conn);
    }
    slot.as_mut().ok_or_else(|| "no connection".to_owned())
}

fn position(
    slot: &mut Option<diesel::PgConnection>,
    url: &str,
    sql: &'static str,
) -> std::result::Result<Position, String> {
    let conn = connected(slot, url)?;
    match diesel::sql_query(sql).get_result::<Position>(conn) {
        Ok(p) => Ok(p),
        Err(e) => {
            // The server went away, or the connection broke: reconnect next time.
            *slot = None;
            Err(e.to_string())
        }
    }
}

fn primary_position(
    slot: &mut Option<diesel::PgConnection>,
    url: &str,
) -> std::result::Result<i64, String> {
    position(
        slot,
        url,
        "SELECT pg_is_in_recovery() AS standby, pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS lsn",
    )
    .map(|p| p.lsn)
}

fn replica_position(
    slot: &mut Option<diesel::PgConnection>,
    url: &str,
) -> std::result::Result<Position, String> {
    position(
        slot,
        url,
        "SELECT pg_is_in_recovery() AS standby, COALESCE(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::int8 AS lsn",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "update t set x = 1",
            "DELETE FROM t",
            "COPY t FROM STDIN",
            "CREATE TABLE t (x int)",
            "WITH moved AS (DELETE FROM t RETURNING *) SELECT * FROM moved",
        ] {
            assert!(is_write(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            " (SELECT 1) UNION (SELECT 2)",
            "BEGIN",
            "COMMIT",
            "SET LOCAL statement_timeout = 5",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 100 FROM c",
            "WITH r AS (SELECT 1) SELECT * FROM r",
            "EXPLAIN SELECT 1",
        ] {
            assert!(!is_write(sql), "{sql}");
        }
    }

    #[test]
    fn addresses_keep_only_the_hosts() {
        assert_eq!(
            Server::address_of("postgres://u:p@db1:5432,db2:5432/app?sslmode=require"),
            "db1:5432,db2:5432"
        );
        assert_eq!(Server::address_of("postgresql:///app"), "localhost");
        assert_eq!(Server::address_of("threads.db"), "threads.db");
        assert_eq!(Server::address_of("sqlite://x.db"), "x.db");
    }

    #[test]
    fn lag_is_the_age_of_the_newest_position_replayed() {
        let t0 = Instant::now();
        let samples: VecDeque<(Instant, i64)> = [
            (t0, 100),
            (t0 + Duration::from_secs(1), 200),
            (t0 + Duration::from_secs(2), 300),
        ]
        .into();
        let now = t0 + Duration::from_secs(2);
        assert_eq!(lag_of(&samples, 300, now), Ok(Duration::ZERO));
        assert_eq!(lag_of(&samples, 250, now), Ok(Duration::from_secs(1)));
        assert_eq!(lag_of(&samples, 100, now), Ok(Duration::from_secs(2)));
        // Behind the oldest sample: at least its age, how much more is unknown.
        assert_eq!(lag_of(&samples, 50, now), Err(Duration::from_secs(2)));
        assert_eq!(lag_of(&VecDeque::new(), 50, now), Err(Duration::ZERO));
    }

    #[test]
    fn batches_and_commits_are_seen() {
        assert!(is_write(
            "SET LOCAL lock_timeout = '1s'; UPDATE t SET x = 1"
        ));
        assert!(!is_write("SELECT 1; SELECT 2;"));
        assert!(is_commit("COMMIT") && is_commit("end") && !is_commit("SELECT 1"));
        let future = WriteToken(unix_millis(SystemTime::now()) + 3_600_000);
        assert!(!future.within(Duration::from_secs(7_200)));
    }

    #[test]
    fn a_scope_remembers_its_last_write() {
        let (_, token) = RouteScope::new().run(note_write);
        let token = token.expect("wrote");
        assert!(token.within(Duration::from_secs(60)));
        let (inner, outer) = RouteScope::new().after(Some(token)).run(last_write);
        assert_eq!((inner, outer), (Some(token), Some(token)));
        assert_eq!(RouteScope::new().run(last_write), (None, None));
        assert_eq!(last_write(), None);
    }
}
