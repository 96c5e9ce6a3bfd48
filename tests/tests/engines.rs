//! Engine profiles (`DatabaseBuilder::engine`): on the test PostgreSQL opened as each
//! PostgreSQL-compatible engine, what the profile lacks is refused before any SQL
//! (nothing captured), or done another way. No live Citus, CockroachDB or YugabyteDB
//! server runs here: docs/scaling-out.md says what that leaves unproven.

use chrono::NaiveDateTime;
use demo::models::{Message, NewMessage};
use orm::bulk::{BulkCreate, InsertMethod};
use orm::count::Count;
use orm::prelude::*;
use orm::{capture, Engine, Error};

fn new_message(i: usize) -> NewMessage {
    let at = NaiveDateTime::default();
    NewMessage {
        created: at,
        updated: at,
        deleted: false,
        text: format!("engine {i}"),
        sent_by_id: 1,
        thread_id: 1,
    }
}

fn refused(engine: Engine, result: orm::Result<impl std::fmt::Debug>, captured: &orm::Captured) {
    match result {
        Err(Error::UnsupportedByEngine { engine: e, .. }) => assert_eq!(e, engine),
        other => panic!("{engine}: expected a refusal, got {other:?}"),
    }
    assert!(
        captured.all().is_empty(),
        "{engine}: SQL was sent: {captured}"
    );
}

#[test]
fn sqlite_takes_no_engine() {
    let err = orm::Database::builder(":memory:")
        .engine(Engine::YugabyteDb)
        .open()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                argument: "engine",
                ..
            }
        ),
        "{err}"
    );
    // SQLite's own facts stay its own.
    let t = orm_tests::sqlite();
    let mut conn = t.conn();
    assert_eq!(
        orm::Capability::of_connection(&mut conn).engine,
        Engine::PostgreSql
    );
    assert!(!orm::Capability::of_connection(&mut conn).explain_json);
}

#[test]
fn each_profile_refuses_what_it_lacks_before_any_sql() {
    for engine in [Engine::Citus, Engine::CockroachDb, Engine::YugabyteDb] {
        let Some(t) = orm_tests::postgres_with(|b| b.engine(engine)) else {
            return;
        };
        orm_tests::seed(&mut t.conn());
        let mut conn = t.conn();
        let capability = *orm::Capability::of_connection(&mut conn);
        assert_eq!(capability.engine, engine);
        assert_eq!(&capability, engine.capability());
        assert!(!capability.tablesample);
        let (r, c) = capture(|| Message::objects().count_with(&mut conn, &Count::bernoulli(10.0)));
        refused(engine, r, &c);
        if !capability.table_statistics {
            let (r, c) =
                capture(|| Message::objects().count_with(&mut conn, &Count::TableStatistics));
            refused(engine, r, &c);
        }
        if !capability.explain_json {
            let (r, c) = capture(|| Message::objects().explain(&mut conn));
            refused(engine, r, &c);
            let (r, c) = capture(|| Message::objects().count_with(&mut conn, &Count::Planner));
            refused(engine, r, &c);
        } else {
            Message::objects().explain(&mut conn).unwrap();
        }
        // COPY: refused when asked for; the automatic choice inserts instead.
        let rows: Vec<NewMessage> = (0..orm::bulk::COPY_THRESHOLD).map(new_message).collect();
        let copy = BulkCreate::new()
            .method(InsertMethod::Copy)
            .keep_timestamps();
        if !capability.copy_from {
            let (r, c) =
                capture(|| Message::objects().bulk_create_with(&mut conn, rows.clone(), &copy));
            refused(engine, r, &c);
        }
        let auto = BulkCreate::new()
            .method(InsertMethod::Auto)
            .keep_timestamps();
        let (created, c) = capture(|| Message::objects().bulk_create_with(&mut conn, rows, &auto));
        assert_eq!(created.unwrap().rows, orm::bulk::COPY_THRESHOLD);
        let sent = c.all().iter().map(|r| r.sql.as_str()).collect::<Vec<_>>();
        let copied = sent.iter().any(|s| s.starts_with("COPY"));
        assert_eq!(copied, capability.copy_from, "{engine}: copied {copied}");
        // No deferrable constraints: nothing to make immediate, nothing sent for it.
        let immediate = sent.iter().any(|s| s.starts_with("SET CONSTRAINTS"));
        assert_eq!(
            immediate, capability.deferrable_constraints,
            "{engine}: SET CONSTRAINTS sent {immediate}"
        );
        // Replicas by WAL position: refused where the engine has none, at open.
        let built = orm::Database::builder(&t.url)
            .engine(engine)
            .replica(&t.url)
            .open();
        if capability.streaming_replicas {
            assert!(built.is_ok());
        } else {
            match built {
                Err(Error::UnsupportedByEngine { engine: e, .. }) => assert_eq!(e, engine),
                other => panic!("{engine}: {other:?}"),
            }
        }
    }
}
