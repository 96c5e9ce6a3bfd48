//! The shared test harness: each test runs once on SQLite and once on PostgreSQL.
//!
//! PostgreSQL comes from `ORM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Every test gets its own schema there
//! (or its own SQLite file), so tests run in parallel without seeing each other's
//! rows. When PostgreSQL cannot be reached its tests are skipped with a loud line,
//! unless `ORM_REQUIRE_POSTGRES=1`, when they fail.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDateTime;
use demo::models::{NewMessage, NewPerson, NewThread};
use demo::schema::{weave_message, weave_person, weave_thread};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use orm::{AnyConnection, Backend, Database};

/// The default PostgreSQL URL of the test suite.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub mod shop;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database of its own for one test, removed when dropped.
pub struct TestDb {
    /// The pool.
    pub db: Database,
    /// The URL the pool was opened with.
    pub url: String,
    cleanup: Cleanup,
    /// PostgreSQL: a connection holding the lock on the shared `shop_ledger`
    /// schema for this test's lifetime (see [`shop_postgres`]).
    ledger_lock: Option<diesel::PgConnection>,
}

enum Cleanup {
    SqliteFile(PathBuf),
    SqliteFiles(Vec<PathBuf>),
    PostgresSchema { admin_url: String, schema: String },
    PostgresDatabase { admin_url: String, database: String },
}

fn remove_sqlite_file(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.to_path_buf().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

impl TestDb {
    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// A pooled connection (panics if none can be had: this is a test).
    pub fn conn(&self) -> orm::PooledConnection {
        self.db.get().expect("test connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => remove_sqlite_file(path),
            Cleanup::SqliteFiles(paths) => paths.iter().for_each(|p| remove_sqlite_file(p)),
            Cleanup::PostgresSchema { admin_url, schema } => {
                if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                    let _ =
                        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
                }
            }
            Cleanup::PostgresDatabase {
                admin_url,
                database,
            } => {
                if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                    let _ = admin.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                    ));
                }
            }
        }
        if let Some(lock) = &mut self.ledger_lock {
            let _ = lock
                .batch_execute("DELETE FROM shop_ledger.entry; SELECT pg_advisory_unlock_all()");
        }
    }
}

fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// An empty, migrated SQLite file database.
pub fn sqlite() -> TestDb {
    sqlite_with(|b| b)
}

/// Like [`sqlite`], with pool settings.
pub fn sqlite_with(configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder) -> TestDb {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("orm_test")));
    let url = path.to_string_lossy().into_owned();
    let db = configure(Database::builder(&url))
        .open()
        .expect("open sqlite");
    db.migrate(&demo::MIGRATIONS).expect("migrate sqlite");
    TestDb {
        db,
        url,
        cleanup: Cleanup::SqliteFile(path),
        ledger_lock: None,
    }
}

/// An SQLite database with the shop's schema, its ledger in a second database file
/// attached as `shop_ledger`; not seeded.
pub fn shop_sqlite() -> TestDb {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("orm_shop")));
    let ledger = std::env::temp_dir().join(format!("{}.db", unique_name("orm_ledger")));
    let url = path.to_string_lossy().into_owned();
    let db = Database::builder(&url)
        .attach(shop::LEDGER_SCHEMA, &ledger.to_string_lossy())
        .open()
        .expect("open sqlite");
    db.migrate(&shop::MIGRATIONS).expect("migrate the shop");
    TestDb {
        db,
        url,
        cleanup: Cleanup::SqliteFiles(vec![path, ledger]),
        ledger_lock: None,
    }
}

/// A PostgreSQL schema of its own with the shop's tables, or `None` as
/// [`postgres`]; not seeded.
///
/// The ledger table lives in the schema `shop_ledger` every test database shares
/// (diesel's `table!` names its schema at compile time): the test holds an
/// advisory lock on it for its lifetime, and finds and leaves it empty.
pub fn shop_postgres() -> Option<TestDb> {
    let mut test = postgres_schema(|b| b, &shop::MIGRATIONS)?;
    let mut lock =
        diesel::PgConnection::establish(&postgres_url()).expect("ledger lock connection");
    lock.batch_execute("SELECT pg_advisory_lock(7235002); DELETE FROM shop_ledger.entry")
        .expect("lock the shared ledger");
    test.ledger_lock = Some(lock);
    Some(test)
}

/// The PostgreSQL URL tests use.
pub fn postgres_url() -> String {
    std::env::var("ORM_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether `ORM_REQUIRE_POSTGRES` makes a missing PostgreSQL (or what its tests need) a failure.
pub fn postgres_required() -> bool {
    matches!(
        std::env::var("ORM_REQUIRE_POSTGRES").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// An empty, migrated schema of its own on PostgreSQL, or `None` (with a loud line
/// on stderr) when PostgreSQL cannot be reached and `ORM_REQUIRE_POSTGRES` is unset.
pub fn postgres() -> Option<TestDb> {
    postgres_with(|b| b)
}

/// Like [`postgres`], with pool settings.
pub fn postgres_with(
    configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder,
) -> Option<TestDb> {
    postgres_schema(configure, &demo::MIGRATIONS)
}

fn postgres_schema(
    configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder,
    migrations: &orm::Migrations,
) -> Option<TestDb> {
    postgres_schema_named(|b, _| configure(b), migrations)
}

/// [`postgres_schema`], `configure` told the schema's name.
fn postgres_schema_named(
    configure: impl FnOnce(orm::DatabaseBuilder, &str) -> orm::DatabaseBuilder,
    migrations: &orm::Migrations,
) -> Option<TestDb> {
    let admin_url = postgres_url();
    let mut admin = match diesel::PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) if !postgres_required() => {
            // Written straight to stderr (not eprintln!, which the test harness
            // captures), once per test binary.
            static LOUD: std::sync::Once = std::sync::Once::new();
            LOUD.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!! SKIPPED ON POSTGRESQL: cannot connect to {admin_url}: {}\n!!! the ::postgres tests of this binary pass without running; set ORM_TEST_POSTGRES_URL, or ORM_REQUIRE_POSTGRES=1 to make this a failure\n",
                    e.to_string().trim()
                );
            });
            return None;
        }
        Err(e) => panic!("ORM_REQUIRE_POSTGRES is set but {admin_url} is unreachable: {e}"),
    };
    let schema = unique_name("orm_test");
    admin
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .expect("create test schema");
    let url = with_search_path(&admin_url, &schema);
    let db = configure(Database::builder(&url), &schema)
        .open()
        .expect("open postgres");
    db.migrate(migrations).expect("migrate postgres");
    Some(TestDb {
        db,
        url,
        cleanup: Cleanup::PostgresSchema { admin_url, schema },
        ledger_lock: None,
    })
}

/// Says once per test binary, straight to stderr (the harness captures `eprintln!`),
/// that the tests needing `what` pass without running; panics instead when
/// `ORM_REQUIRE_POSTGRES` is set.
fn skip_loudly(what: &str, why: &str) {
    if postgres_required() {
        panic!("ORM_REQUIRE_POSTGRES is set but {what} is not available: {why}");
    }
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let first = SAID.lock().map_or(true, |mut said| {
        let first = !said.iter().any(|w| w == what);
        if first {
            said.push(what.to_owned());
        }
        first
    });
    if first {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED: {what} is not available: {why}\n!!! its tests in this binary pass without running; `eval \"$(bash .ci/scale_out.sh start)\"` starts it, ORM_REQUIRE_POSTGRES=1 makes this a failure\n",
        );
    }
}

/// The environment variable `name`, or a loud skip (a failure under
/// `ORM_REQUIRE_POSTGRES`).
pub fn scale_out_env(name: &str, what: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            skip_loudly(what, &format!("{name} is not set"));
            None
        }
    }
}

/// A URL with the test schema's `search_path` startup option.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// A migrated PostgreSQL schema of its own on the primary, read through the shared
/// streaming replica `ORM_TEST_REPLICA_URL` (`bash .ci/scale_out.sh start`), whose
/// schema has replayed when this returns; `None` (loudly) without one.
pub fn replicated(
    configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder,
) -> Option<TestDb> {
    replicated_on("ORM_TEST_REPLICA_URL", configure)
}

/// [`replicated`] through the replica of the variable `replica_env`.
pub fn replicated_on(
    replica_env: &str,
    configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder,
) -> Option<TestDb> {
    let replica = scale_out_env(replica_env, "a streaming replica")?;
    let test = postgres_schema_named(
        |b, schema| configure(b.replica(&with_search_path(&replica, schema))),
        &demo::MIGRATIONS,
    )?;
    test.db
        .wait_for_replicas(std::time::Duration::from_secs(60))
        .expect("the replica replays the test schema");
    // Checked again after the replay: at the pool's opening the replica may have
    // been a little behind the one position sampled, its lag not yet known.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = test.db.check_replicas();
        if status.iter().all(|s| s.usable) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never became usable: {status:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(test)
}

/// A migrated PostgreSQL database of its own, reached through PgBouncer in
/// transaction pooling mode (`ORM_TEST_PGBOUNCER_URL`, a URL without a database:
/// PgBouncer 1.18 refuses the `options` startup parameter the schema-per-test
/// harness uses, so each test gets a database behind its `* =` entry), opened with
/// [`transaction_pooling`](orm::DatabaseBuilder::transaction_pooling); `None`
/// (loudly) without PgBouncer.
pub fn pgbouncer() -> Option<TestDb> {
    let bouncer = scale_out_env("ORM_TEST_PGBOUNCER_URL", "PgBouncer")?;
    let admin_url = postgres_url();
    let mut admin = diesel::PgConnection::establish(&admin_url)
        .unwrap_or_else(|e| panic!("PgBouncer is set but {admin_url} is unreachable: {e}"));
    let database = unique_name("orm_pooled");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{database}\""))
        .expect("create the test database");
    let url = format!("{}/{database}", bouncer.trim_end_matches('/'));
    let cleanup = Cleanup::PostgresDatabase {
        admin_url,
        database,
    };
    let db = Database::builder(&url)
        .transaction_pooling(true)
        .open()
        .expect("open through pgbouncer");
    db.migrate(&demo::MIGRATIONS)
        .expect("migrate through pgbouncer");
    Some(TestDb {
        db,
        url,
        cleanup,
        ledger_lock: None,
    })
}

/// A multi-threaded tokio runtime of two workers, for the async tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes one test once and runs it on both backends:
///
/// ```text
/// on_both_backends! {
///     fn counting_sends_one_query(db) { ... }
/// }
/// ```
/// makes `counting_sends_one_query::sqlite` and `counting_sends_one_query::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    (@with $sqlite:ident, $postgres:ident; $($(#[$meta:meta])* fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn sqlite() {
                let $db = $crate::$sqlite();
                $body
            }

            $(#[$meta])*
            #[test]
            fn postgres() {
                let Some($db) = $crate::$postgres() else { return };
                $body
            }
        }
    )*};
    ($($tests:tt)*) => {
        $crate::on_both_backends!(@with sqlite, postgres; $($tests)*);
    };
}

/// [`on_both_backends!`], and a third time on PostgreSQL through PgBouncer in
/// transaction pooling mode ([`pgbouncer`]): `name::pgbouncer`.
#[macro_export]
macro_rules! on_all_backends {
    ($($(#[$meta:meta])* fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn sqlite() {
                let $db = $crate::sqlite();
                $body
            }

            $(#[$meta])*
            #[test]
            fn postgres() {
                let Some($db) = $crate::postgres() else { return };
                $body
            }

            $(#[$meta])*
            #[test]
            fn pgbouncer() {
                let Some($db) = $crate::pgbouncer() else { return };
                $body
            }
        }
    )*};
}

/// [`on_both_backends!`] on the shop's schema ([`shop_sqlite`], [`shop_postgres`]).
#[macro_export]
macro_rules! shop_on_both_backends {
    ($($tests:tt)*) => {
        $crate::on_both_backends!(@with shop_sqlite, shop_postgres; $($tests)*);
    };
}

/// A timestamp `minutes` after 2024-01-01 00:00 UTC.
pub fn at(minutes: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_704_067_200 + minutes * 60, 0)
        .expect("valid timestamp")
        .naive_utc()
}

/// The fixture: 3 people (Ada, Alan, Grace; Grace deleted), 3 threads ("Engines",
/// "Machines", "Deleted" deleted), and 10 messages (7 live). Message `i` (1-based)
/// is updated at minute `i`, so the default ordering is by id descending.
pub fn seed(conn: &mut AnyConnection) {
    let people = [
        ("Ada", "Lovelace", false),
        ("Alan", "Turing", false),
        ("Grace", "Hopper", true),
    ];
    for (i, (first, last, deleted)) in people.iter().enumerate() {
        let row = NewPerson {
            created: at(i as i64),
            updated: at(i as i64),
            deleted: *deleted,
            first_name: (*first).into(),
            last_name: (*last).into(),
            email_address: format!("{}@example.org", first.to_lowercase()),
        };
        diesel::insert_into(weave_person::table)
            .values(&row)
            .execute(&mut *conn)
            .expect("insert person");
    }
    for (i, (title, deleted)) in [("Engines", false), ("Machines", false), ("Deleted", true)]
        .iter()
        .enumerate()
    {
        let row = NewThread {
            created: at(i as i64),
            updated: at(i as i64),
            deleted: *deleted,
            title: (*title).into(),
        };
        diesel::insert_into(weave_thread::table)
            .values(&row)
            .execute(&mut *conn)
            .expect("insert thread");
    }
    // (text, sender, thread, deleted)
    let messages = [
        ("What is an engine?", 1, 1, false),
        ("A machine that computes.", 2, 1, false),
        ("What can machines think?", 2, 2, false),
        ("deleted reply", 1, 2, true),
        ("Bugs are moths.", 3, 2, false),
        ("What about compilers?", 3, 1, false),
        ("deleted again", 2, 1, true),
        ("Notes on the engine", 1, 1, false),
        ("in a deleted thread", 1, 3, false),
        ("deleted in a deleted thread", 2, 3, true),
    ];
    for (i, (text, sent_by, thread, deleted)) in messages.iter().enumerate() {
        let minute = i as i64 + 1;
        let row = NewMessage {
            created: at(minute),
            updated: at(minute),
            deleted: *deleted,
            text: (*text).into(),
            sent_by_id: *sent_by,
            thread_id: *thread,
        };
        diesel::insert_into(weave_message::table)
            .values(&row)
            .execute(&mut *conn)
            .expect("insert message");
    }
}
