//! Opening databases: URL dispatch, pragmas, and a typed error naming the real cause
//! for each way it can fail.

use std::time::Duration;

use diesel::RunQueryDsl;
use orm::{ConnectErrorKind, Database, Error};
use orm_tests::{on_both_backends, postgres_url};

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

#[derive(diesel::QueryableByName)]
struct Int {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    value: i64,
}

#[test]
fn sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout() {
    let db = orm_tests::sqlite();
    let conn = &mut db.conn();
    let mode: Vec<Text> =
        diesel::sql_query("SELECT journal_mode AS value FROM pragma_journal_mode")
            .load(&mut **conn)
            .unwrap();
    assert_eq!(mode[0].value, "wal");
    let fk: Vec<Int> = diesel::sql_query("SELECT foreign_keys AS value FROM pragma_foreign_keys")
        .load(&mut **conn)
        .unwrap();
    assert_eq!(fk[0].value, 1);
    let busy: Vec<Int> = diesel::sql_query("SELECT timeout AS value FROM pragma_busy_timeout")
        .load(&mut **conn)
        .unwrap();
    assert_eq!(busy[0].value, 5000);
}

#[test]
fn in_memory_sqlite_is_one_database_shared_by_the_pool() {
    let db = Database::open(":memory:").unwrap();
    assert_eq!(db.pool().max_size(), 1);
    db.migrate(&demo::MIGRATIONS).unwrap();
    // A second checkout sees the tables the first created.
    let conn = &mut db.get().unwrap();
    use orm::Model;
    assert_eq!(demo::models::Message::objects().count(conn).unwrap(), 0);
}

#[test]
fn unknown_schemes_and_bad_ports_are_invalid_urls() {
    for (url, reason) in [
        (
            "mysql://root@localhost/x",
            "unknown scheme (expected a file path, sqlite:// or postgres://)",
        ),
        ("", "empty url"),
        ("postgres://u@localhost:notaport/db", "port is not a number"),
    ] {
        match Database::open(url) {
            Err(Error::InvalidUrl { reason: r, .. }) => assert_eq!(r, reason),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn invalid_url_errors_do_not_show_the_password() {
    let err = Database::open("postgres://u:secret@localhost:99999/db").unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(err.to_string().contains("u:***@"), "{err}");
}

#[test]
fn an_unopenable_sqlite_file_names_the_cause() {
    let err = Database::open("/nonexistent-dir/sub/threads.db").unwrap_err();
    assert_eq!(
        err.connect_kind(),
        Some(ConnectErrorKind::CannotOpenFile),
        "{err}"
    );
    assert!(
        err.to_string().contains("unable to open database file"),
        "{err}"
    );
}

#[test]
fn a_refused_postgres_connection_names_the_cause() {
    // Port 1 on loopback: nothing listens there.
    let err = Database::open("postgres://postgres@127.0.0.1:1/test").unwrap_err();
    assert_eq!(err.connect_kind(), Some(ConnectErrorKind::Refused), "{err}");
    let text = err.to_string();
    assert!(text.contains("refused"), "{text}");
    assert!(!text.contains("Invalid connection url"), "{text}");
}

#[test]
fn a_missing_postgres_database_names_the_database() {
    let Some(_db) = orm_tests::postgres() else {
        return;
    };
    let base = postgres_url();
    let (head, _) = base.rsplit_once('/').expect("url with a database");
    let url = format!("{head}/orm_no_such_database");
    let err = Database::open(&url).unwrap_err();
    assert_eq!(
        err.connect_kind(),
        Some(ConnectErrorKind::MissingDatabase),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("\"orm_no_such_database\" does not exist"),
        "{err}"
    );
}

on_both_backends! {
    fn a_pool_timeout_is_a_typed_error(db) {
        let _ = db;
        let small = match db.backend() {
            orm::Backend::Sqlite => orm_tests::sqlite_with(|b| b.max_size(1).connection_timeout(Duration::from_millis(200))),
            orm::Backend::Postgres => orm_tests::postgres_with(|b| b.max_size(1).connection_timeout(Duration::from_millis(200))).expect("postgres"),
        };
        let held = small.db.get().unwrap();
        let err = small.db.get().map(|_| ()).unwrap_err();
        assert!(err.is_pool_timeout(), "{err:?}");
        assert!(err.to_string().starts_with("timed out after 200ms waiting for a pooled connection"), "{err}");
        drop(held);
        assert!(small.db.get().is_ok(), "the connection is usable again once returned");
    }

    fn a_connection_left_in_a_transaction_by_a_panic_is_not_reused(db) {
        let conn_panics = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut conn = db.conn();
            let _: orm::Result<()> = orm::atomic(&mut conn, |_| panic!("boom"));
        }));
        assert!(conn_panics.is_err());
        // The next checkout is outside any transaction.
        let conn = &mut db.conn();
        use diesel::connection::TransactionManager;
        let depth = <orm::AnyConnection as diesel::Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()
            .unwrap();
        assert_eq!(depth, None);
    }
}

/// A change to a pool's settings.
type Configure = fn(orm::DatabaseBuilder) -> orm::DatabaseBuilder;

on_both_backends! {
    fn pool_settings_it_cannot_work_with_are_typed_errors_not_panics(db) {
        use std::time::Duration;
        let cases: [(&str, Configure); 4] = [
            ("connection_timeout", |b| b.connection_timeout(Duration::ZERO)),
            ("idle_timeout", |b| b.idle_timeout(Some(Duration::ZERO))),
            ("max_lifetime", |b| b.max_lifetime(Some(Duration::ZERO))),
            ("min_idle", |b| b.max_size(2).min_idle(3)),
        ];
        for (name, configure) in cases {
            match configure(orm::Database::builder(&db.url)).open() {
                Err(orm::Error::InvalidArgument { argument, .. }) => assert_eq!(argument, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        // A busy timeout beyond what SQLite's pragma takes is clamped, not broken.
        let long = orm::Database::builder(&db.url).busy_timeout(Duration::from_secs(u64::MAX / 4)).open();
        assert!(long.is_ok(), "{long:?}");
    }
}
