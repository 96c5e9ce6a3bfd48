//! Errors by kind, never by text: constraint violations with their names, statement
//! timeouts, SQLite busy, serialization failures, lost connections; the same kinds
//! when PostgreSQL speaks German; `atomic` on every failure path.

use std::time::Duration;

use demo::models::{Message, NewPerson};
use demo::schema::weave_message;
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use orm::count::{Count, FallbackReason};
use orm::prelude::*;
use orm::{atomic, DbErrorKind, Error};
use orm_tests::{at, on_all_backends, seed};

/// Each row takes 500 ms to scan on PostgreSQL (7 live rows: 3.5 s): far past the
/// tests' timeout, whatever the machine's load.
fn slow_rows() -> QuerySet<Message> {
    Message::objects().filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "pg_sleep(0.5) IS NOT NULL",
    ))
}

/// The tests' pool statement timeout: far above what their fast statements take
/// under load, far below the slow ones.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The fixture, seeded apart, and a pool of one connection with [`TIMEOUT`].
fn seeded_pool_with_timeout(db: &orm_tests::TestDb) -> orm::Database {
    seed(&mut db.conn());
    orm::Database::builder(&db.url)
        .max_size(1)
        .statement_timeout(Some(TIMEOUT))
        .open()
        .unwrap()
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

fn depth(conn: &mut AnyConnection) -> Option<std::num::NonZeroU32> {
    use diesel::connection::TransactionManager;
    <AnyConnection as diesel::Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .expect("a valid transaction state")
}

on_all_backends! {
    fn constraint_violations_have_their_kind_and_on_postgresql_their_name(db) {
        let conn = &mut db.conn();
        seed(conn);
        conn.batch_execute(
            "CREATE TABLE gadget (
                 id BIGINT PRIMARY KEY,
                 name TEXT NOT NULL CONSTRAINT gadget_name_unique UNIQUE,
                 size BIGINT CONSTRAINT gadget_size_positive CHECK (size > 0),
                 owner_id BIGINT CONSTRAINT gadget_owner_fk REFERENCES weave_person (id)
             );
             INSERT INTO gadget VALUES (1, 'a', 1, 1);",
        )
        .unwrap();
        for (sql, kind, name) in [
            ("INSERT INTO gadget VALUES (2, 'a', 1, 1)", DbErrorKind::UniqueViolation, Some("gadget_name_unique")),
            ("INSERT INTO gadget VALUES (1, 'b', 1, 1)", DbErrorKind::UniqueViolation, Some("gadget_pkey")),
            ("INSERT INTO gadget VALUES (2, 'b', 0, 1)", DbErrorKind::CheckViolation, Some("gadget_size_positive")),
            ("INSERT INTO gadget VALUES (2, 'b', 1, 99)", DbErrorKind::ForeignKeyViolation, Some("gadget_owner_fk")),
            ("INSERT INTO gadget VALUES (2, NULL, 1, 1)", DbErrorKind::NotNullViolation, None),
        ] {
            let err = Error::from(conn.batch_execute(sql).unwrap_err());
            assert_eq!(err.db_kind(), Some(kind), "{sql}: {err}");
            assert!(!err.is_retryable(), "{sql}");
            let expected_name = match db.backend() {
                Backend::Postgres => name,
                // SQLite names no constraint in its errors.
                Backend::Sqlite => None,
            };
            assert_eq!(err.constraint_name(), expected_name, "{sql}: {err}");
        }
        // Through the queryset API too, inside a failed bulk write.
        let duplicate = NewPerson {
            created: at(0),
            updated: at(0),
            deleted: false,
            first_name: "Ada".into(),
            last_name: "Again".into(),
            email_address: "ada@example.org".into(),
        };
        let err = demo::models::Person::objects().bulk_create(conn, vec![duplicate]).unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
        if db.backend() == Backend::Postgres {
            assert_eq!(err.constraint_name(), Some("weave_person_email_address_key"));
        }
    }

    fn a_failed_commit_leaves_no_transaction_open_and_writes_nothing(db) {
        let conn = &mut db.conn();
        seed(conn);
        // A foreign key checked at COMMIT: the demo's are deferred on PostgreSQL;
        // SQLite defers them on request.
        let result: orm::Result<()> = atomic(conn, |c| {
            if c.backend() == Backend::Sqlite {
                c.batch_execute("PRAGMA defer_foreign_keys = ON")?;
            }
            c.batch_execute(
                "INSERT INTO weave_message (text, sent_by_id, thread_id, deleted, created, updated)
                 VALUES ('orphan', 999, 1, false, '2024-01-01 00:00:00', '2024-01-01 00:00:00')",
            )?;
            Ok(())
        });
        let err = result.unwrap_err();
        assert!(err.is_foreign_key_violation(), "{err}");
        assert_eq!(depth(conn), None, "no transaction left open");
        assert_eq!(Message::objects().filter(weave_message::text.eq("orphan")).count(conn).unwrap(), 0);
        assert_eq!(Message::objects().count(conn).unwrap(), 7, "the connection is usable");
    }

    fn an_error_or_a_panic_in_the_body_leaves_no_transaction_open(db) {
        let conn = &mut db.conn();
        seed(conn);
        let result: orm::Result<()> = atomic(conn, |c| {
            Message::objects().delete(c)?;
            Err(Error::from(c.batch_execute("SELECT * FROM no_such_table").unwrap_err()))
        });
        assert!(result.is_err());
        assert_eq!(depth(conn), None);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: orm::Result<()> = atomic(conn, |c| {
                atomic(c, |c| {
                    Message::objects().delete(c)?;
                    panic!("inside a savepoint")
                })
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(depth(conn), None);
        assert_eq!(Message::objects().count(conn).unwrap(), 7, "nothing of either was written");
    }

    fn a_pool_statement_timeout_is_a_typed_error_on_postgresql_and_unsupported_on_sqlite(db) {
        let builder = orm::Database::builder(&db.url).max_size(1).statement_timeout(Some(TIMEOUT));
        match db.backend() {
            Backend::Sqlite => {
                let err = builder.open().unwrap_err();
                assert!(err.is_unsupported(), "{err}");
                assert_eq!(err.to_string(), "a statement timeout is not supported on sqlite");
            }
            Backend::Postgres => {
                seed(&mut db.conn());
                let pool = builder.open().unwrap();
                let conn = &mut pool.get().unwrap();
                let (err, captured) = orm::capture(|| slow_rows().count(conn).unwrap_err());
                assert!(matches!(err, Error::StatementTimeout { timeout, .. } if timeout == TIMEOUT), "{err:?}");
                assert_eq!(err.db_kind(), Some(DbErrorKind::StatementTimeout));
                assert_eq!(captured.len(), 1, "{captured}");
                // The connection is usable, and a fast statement is not cancelled.
                assert_eq!(Message::objects().count(conn).unwrap(), 7);
            }
        }
    }
}

/// SQLite: a writer that waits past the busy timeout gets a typed, retryable error.
#[test]
fn sqlite_busy_past_the_busy_timeout_is_a_typed_retryable_error() {
    let db = orm_tests::sqlite();
    seed(&mut db.conn());
    let impatient = orm::Database::builder(&db.url)
        .busy_timeout(Duration::from_millis(100))
        .open()
        .unwrap();
    let holder = &mut db.conn();
    holder.batch_execute("BEGIN IMMEDIATE").unwrap();
    let conn = &mut impatient.get().unwrap();
    let err = Message::objects()
        .filter(weave_message::id.eq(1))
        .update(conn, weave_message::text.eq("blocked"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Busy { timeout, .. } if timeout == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.db_kind(), Some(DbErrorKind::Busy));
    // An INSERT ... RETURNING (`create`) too.
    let row = NewPerson {
        created: at(0),
        updated: at(0),
        deleted: false,
        first_name: "Blocked".into(),
        last_name: "Writer".into(),
        email_address: "blocked@example.org".into(),
    };
    let err = demo::models::Person::objects()
        .create(conn, row)
        .unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    holder.batch_execute("ROLLBACK").unwrap();
    // Once the lock is free the same write goes through.
    assert_eq!(
        Message::objects()
            .filter(weave_message::id.eq(1))
            .update(conn, weave_message::text.eq("through"))
            .unwrap(),
        1
    );
}

/// PostgreSQL: two repeatable-read transactions writing one row; the second is a
/// serialization failure (40001), retryable. (SQLite serialises writers: none.)
#[test]
fn postgresql_serialization_failures_are_retryable() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    seed(&mut db.conn());
    let first = &mut db.conn();
    let second = &mut db.conn();
    first
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM weave_message;")
        .unwrap();
    second
        .batch_execute("UPDATE weave_message SET text = 'second' WHERE id = 1")
        .unwrap();
    let err = Error::from(
        first
            .batch_execute("UPDATE weave_message SET text = 'first' WHERE id = 1")
            .unwrap_err(),
    );
    assert_eq!(
        err.db_kind(),
        Some(DbErrorKind::SerializationFailure),
        "{err}"
    );
    assert!(err.is_retryable());
    first.batch_execute("ROLLBACK").unwrap();
}

/// PostgreSQL: a connection killed mid-transaction is a typed error, `atomic`
/// returns, and the pool hands out a working connection next. (SQLite is embedded:
/// there is no connection to lose.)
#[test]
fn postgresql_a_connection_lost_mid_transaction_is_typed_and_replaced() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    seed(&mut db.conn());
    let pool = orm::Database::builder(&db.url).max_size(1).open().unwrap();
    let result: orm::Result<i64> = {
        let conn = &mut pool.get().unwrap();
        atomic(conn, |c| {
            Message::objects()
                .filter(weave_message::id.eq(1))
                .delete(c)?;
            let pid: Vec<Pid> = orm::with_inner!(&mut *c, |c| diesel::sql_query(
                "SELECT pg_backend_pid() AS pid"
            )
            .load(c))?;
            // Waits (up to 10 s) until the backend has exited.
            db.conn().batch_execute(&format!(
                "SELECT pg_terminate_backend({}, 10000)",
                pid[0].pid
            ))?;
            Message::objects().count(c)
        })
    };
    let err = result.unwrap_err();
    assert_eq!(err.db_kind(), Some(DbErrorKind::ConnectionLost), "{err:?}");
    let conn = &mut pool.get().expect("a fresh connection");
    assert_eq!(depth(conn), None);
    assert_eq!(
        Message::objects().count(conn).unwrap(),
        7,
        "the delete was rolled back with the lost connection"
    );
}

/// Kinds do not depend on the server's language: with `lc_messages` German, a
/// deadline count still falls back, a pool timeout is still typed, a violation still
/// has its kind.
#[test]
fn postgresql_errors_are_classified_whatever_language_the_server_speaks() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    let pool = seeded_pool_with_timeout(&db);
    let conn = &mut pool.get().unwrap();
    if let Err(e) = conn.batch_execute("SET lc_messages = 'de_DE.UTF-8'") {
        assert!(
            !orm_tests::postgres_required(),
            "the de_DE.UTF-8 locale is needed (localedef, then restart PostgreSQL): {e}"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED: no de_DE.UTF-8 locale on the PostgreSQL server: {e}\n"
        );
        return;
    }
    let raw = conn.batch_execute("SELECT 1/0").unwrap_err().to_string();
    assert!(
        raw.contains("Division durch Null"),
        "the server speaks German: {raw}"
    );
    // The fallback must be fast too: the pool cancels anything past its timeout.
    let counted = slow_rows()
        .count_with(
            conn,
            &Count::ExactWithin(Duration::from_millis(1)).or(Count::Planner),
        )
        .unwrap();
    assert_eq!(counted.fallbacks.len(), 1);
    assert_eq!(counted.fallbacks[0].reason, FallbackReason::TimedOut);
    assert!(slow_rows()
        .count_with(conn, &Count::ExactWithin(Duration::from_millis(1)))
        .unwrap_err()
        .is_count_timed_out());
    let err = slow_rows().count(conn).unwrap_err();
    assert!(matches!(err, Error::StatementTimeout { .. }), "{err:?}");
    let err = Error::from(conn.batch_execute("INSERT INTO weave_person (id, first_name, last_name, email_address) VALUES (1, 'a', 'b', 'c')").unwrap_err());
    assert!(err.is_unique_violation(), "{err}");
}

on_all_backends! {
    fn database_open_checks_with_one_connection_and_opens_the_rest_when_needed(db) {
        let pool = orm::Database::open(&db.url).unwrap();
        assert_eq!(pool.pool().state().connections, 0, "the checking connection is closed again");
        for _ in 0..3 {
            let conn = &mut pool.get().unwrap();
            assert_eq!(Message::objects().count(conn).unwrap(), 0);
        }
        assert_eq!(pool.pool().state().connections, 1, "one at a time needs one connection");
        let (a, b) = (pool.get().unwrap(), pool.get().unwrap());
        assert_eq!(pool.pool().state().connections, 2);
        drop((a, b));
    }
}

on_all_backends! {
    /// SQLite rejects expressions deeper than 1,000; a long filter chain is joined as
    /// a balanced tree, so its depth stays small on both backends.
    fn thousands_of_filters_stay_below_the_expression_depth_limit(db) {
        let conn = &mut db.conn();
        seed(conn);
        let mut qs = Message::objects();
        for i in 0..3_000_i64 {
            qs = qs.filter(weave_message::id.ne(-i));
        }
        assert_eq!(qs.count(conn).unwrap(), 7);
        assert_eq!(qs.clone().all(conn).unwrap().len(), 7);
        let sql = qs.sql(db.backend()).unwrap();
        assert!(sql.contains(") AND ("), "{}", &sql[..200]);
    }
}

on_all_backends! {
    /// PostgreSQL's text types cannot store `\0`: the error says so, typed, and
    /// nothing is written. SQLite stores it, and it reads back whole.
    fn a_nul_character_in_text_is_a_typed_error_on_postgresql_and_stored_on_sqlite(db) {
        use demo::models::{Person, Thread};
        use demo::schema::{weave_person, weave_thread};
        let conn = &mut db.conn();
        seed(conn);
        let with_nul = "line one\0line two";
        let person = NewPerson {
            created: at(0),
            updated: at(0),
            deleted: false,
            first_name: with_nul.into(),
            last_name: "Nul".into(),
            email_address: "nul@example.org".into(),
        };
        let filtered = Thread::objects().filter(weave_thread::title.eq(with_nul)).count(conn);
        let created = Person::objects().bulk_create(conn, vec![person]);
        let updated = Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq(with_nul));
        match db.backend() {
            Backend::Postgres => {
                for err in [filtered.unwrap_err(), created.unwrap_err(), updated.unwrap_err()] {
                    assert_eq!(err.db_kind(), Some(DbErrorKind::NulInText), "{err:?}");
                }
                assert!(matches!(Thread::objects().filter(weave_thread::title.eq(with_nul)).count(conn).unwrap_err(), Error::NulInText { .. }));
                assert_eq!(Person::objects().filter(weave_person::last_name.eq("Nul")).count(conn).unwrap(), 0, "nothing written");
                assert_eq!(Thread::objects().filter(weave_thread::id.eq(1)).get(conn).unwrap().title, "Engines");
            }
            Backend::Sqlite => {
                assert_eq!(filtered.unwrap(), 0);
                assert_eq!(created.unwrap().len(), 1);
                assert_eq!(updated.unwrap(), 1);
                let read = Person::objects().filter(weave_person::last_name.eq("Nul")).get(conn).unwrap();
                assert_eq!(read.first_name, with_nul, "stored and read back whole");
                assert_eq!(Thread::objects().filter(weave_thread::title.eq(with_nul)).count(conn).unwrap(), 1);
            }
        }
    }

    /// More values than a backend binds in one statement is a typed error. SQLite
    /// takes 32,766 (each `eq_any` element is one); PostgreSQL binds `eq_any` as one
    /// array, and takes 65,535.
    fn more_binds_than_the_backend_takes_is_a_typed_error(db) {
        let conn = &mut db.conn();
        seed(conn);
        let ids: Vec<i64> = (0..40_000).collect();
        let listed = Message::objects().filter(weave_message::id.eq_any(ids)).count(conn);
        let mut many = Message::objects();
        for i in 0..70_000_i64 {
            many = many.filter(weave_message::id.ne(-i));
        }
        let filtered = many.count(conn);
        let too_many = |result: orm::Result<i64>, max: usize| match result {
            Err(Error::TooManyBinds { count, max: m, .. }) => assert!(m == max && count > max, "{count} > {m}"),
            other => panic!("{other:?}"),
        };
        match db.backend() {
            Backend::Sqlite => {
                too_many(listed, 32_766);
                too_many(filtered, 32_766);
            }
            Backend::Postgres => {
                assert_eq!(listed.unwrap(), 7, "one array bind");
                too_many(filtered, 65_535);
            }
        }
        assert_eq!(Message::objects().count(conn).unwrap(), 7, "the connection is usable");
    }
}

/// A stated limit, tested: diesel 2.3 reports PostgreSQL's deadlock (40P01) with no
/// code, so it is `DbErrorKind::Other`, not retryable by kind. Two transactions
/// each lock a row the other then wants; the server picks one victim.
#[test]
fn postgresql_a_deadlock_is_other_a_stated_limit() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    seed(&mut db.conn());
    let setup = "BEGIN; SET LOCAL deadlock_timeout = '50ms';";
    let mut first = db.conn();
    let mut second = db.conn();
    first
        .batch_execute(&format!(
            "{setup} UPDATE weave_message SET text = 'a' WHERE id = 1;"
        ))
        .unwrap();
    second
        .batch_execute(&format!(
            "{setup} UPDATE weave_message SET text = 'b' WHERE id = 2;"
        ))
        .unwrap();
    let waiting = std::thread::spawn(move || {
        let result = first
            .batch_execute("UPDATE weave_message SET text = 'a' WHERE id = 2")
            .map_err(Error::from);
        let _ = first.batch_execute("ROLLBACK");
        result
    });
    // Blocks until the first is chosen as the victim, or is chosen itself.
    let result = second
        .batch_execute("UPDATE weave_message SET text = 'b' WHERE id = 1")
        .map_err(Error::from);
    let _ = second.batch_execute("ROLLBACK");
    let results = [waiting.join().expect("no panic"), result];
    let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "one victim: {results:?}");
    assert_eq!(
        failed[0].db_kind(),
        Some(DbErrorKind::Other),
        "{:?}",
        failed[0]
    );
    assert!(!failed[0].is_retryable());
}

/// A stated limit, tested: too many connections (53300) is a connection error, which
/// diesel gives as text only; it is `ConnectErrorKind::Other`.
#[test]
fn postgresql_too_many_connections_is_other_a_stated_limit() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    let role = format!("orm_limit_{}", std::process::id());
    let admin = &mut db.conn();
    admin
        .batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN CONNECTION LIMIT 0"))
        .unwrap();
    // The suite's URL with the limited role as its user (and no password).
    let base = orm_tests::postgres_url();
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let url = format!("{scheme}://{role}@{host}");
    let refused = orm::Database::open(&url).map(|_| ());
    // The same URL connects once the role may: the limit was the cause.
    admin
        .batch_execute(&format!("ALTER ROLE \"{role}\" CONNECTION LIMIT 1"))
        .unwrap();
    let allowed = orm::Database::open(&url).map(drop);
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .unwrap();
    allowed.expect("connects when the role may");
    let err = refused.unwrap_err();
    assert_eq!(
        err.connect_kind(),
        Some(orm::ConnectErrorKind::Other),
        "{err}"
    );
}

/// A stated limit, tested: SQLite's `SQLITE_BUSY_SNAPSHOT` (a deferred read
/// transaction that then writes after another connection committed) fails at once,
/// with no code diesel passes on: `DbErrorKind::Other`. `atomic` starts writers with
/// `BEGIN IMMEDIATE`, which never meets it.
#[test]
fn sqlite_an_immediate_busy_snapshot_is_other_a_stated_limit() {
    let db = orm_tests::sqlite();
    seed(&mut db.conn());
    let reader = &mut db.conn();
    let writer = &mut db.conn();
    reader
        .batch_execute("BEGIN DEFERRED; SELECT count(*) FROM weave_message;")
        .unwrap();
    writer
        .batch_execute("UPDATE weave_message SET text = 'moved on' WHERE id = 1")
        .unwrap();
    let err = Error::from(
        reader
            .batch_execute("UPDATE weave_message SET text = 'stale' WHERE id = 2")
            .unwrap_err(),
    );
    reader.batch_execute("ROLLBACK").unwrap();
    assert_eq!(err.db_kind(), Some(DbErrorKind::Other), "{err:?}");
    // The same write through `atomic` goes through.
    let n = atomic(reader, |c| {
        Message::objects()
            .filter(weave_message::id.eq(2))
            .update(c, weave_message::text.eq("fresh"))
    })
    .unwrap();
    assert_eq!(n, 1);
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// PostgreSQL: a deadline count inside a transaction puts back the timeout that was
/// in force (here the pool's), rather than the server's default.
#[test]
fn postgresql_a_nested_deadline_count_keeps_the_pools_statement_timeout() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    let pool = seeded_pool_with_timeout(&db);
    let conn = &mut pool.get().unwrap();
    let setting = |c: &mut AnyConnection| -> String {
        let rows: Vec<Setting> = orm::with_inner!(&mut *c, |c| diesel::sql_query(
            "SELECT current_setting('statement_timeout') AS value"
        )
        .load(c))
        .unwrap();
        rows[0].value.clone()
    };
    assert_eq!(setting(conn), "1s");
    let (inside, captured) = orm::capture(|| {
        atomic(conn, |c| {
            let n =
                Message::objects().count_with(c, &Count::ExactWithin(Duration::from_secs(60)))?;
            Ok::<_, Error>((n.value, setting(c)))
        })
    });
    assert_eq!(
        inside.unwrap(),
        (7, "1s".to_owned()),
        "the pool's timeout holds after the count"
    );
    let session: Vec<&str> = captured
        .all()
        .iter()
        .filter(|r| r.kind == orm::instrument::QueryKind::Session)
        .map(|r| r.sql.as_str())
        .collect();
    assert_eq!(session.len(), 3, "read, set, put back: {captured}");
    assert!(
        session[2].starts_with("SELECT set_config('statement_timeout', $1, true)"),
        "{session:?}"
    );
    assert_eq!(
        captured.len(),
        2,
        "the count and the setting read by the test: {captured}"
    );
}

/// A stated limit, tested: a cancel requested from elsewhere (57014 without a timeout
/// of the pool's; here the session cancels itself) is `Other`.
#[test]
fn postgresql_a_cancel_from_elsewhere_is_other_a_stated_limit() {
    let Some(db) = orm_tests::postgres() else {
        return;
    };
    let conn = &mut db.conn();
    let err = Error::from(
        conn.batch_execute("SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5)")
            .unwrap_err(),
    );
    assert_eq!(err.db_kind(), Some(DbErrorKind::Other), "{err:?}");
    assert_eq!(
        Message::objects().count(conn).unwrap(),
        0,
        "the connection is usable"
    );
}
