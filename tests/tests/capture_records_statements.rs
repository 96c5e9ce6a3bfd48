//! Query capture: SQL, binds, fingerprint, rows, call site; transaction statements
//! and health checks kept apart from the data count.

use demo::models::Message;
use demo::schema::weave_message;
use orm::instrument::QueryKind;
use orm::prelude::*;
use orm::{assert_num_queries, capture};
use orm_tests::{on_all_backends, seed};

on_all_backends! {
    fn each_statement_is_recorded_with_binds_rows_and_call_site(db) {
        let conn = &mut db.conn();
        seed(conn);
        let line = line!() + 1;
        let (rows, captured) = capture(|| Message::objects().filter(weave_message::thread_id.eq(2)).limit(5).all(conn));
        assert_eq!(rows.unwrap().len(), 2);
        assert_eq!(captured.len(), 1);
        let record = &captured.data()[0];
        assert_eq!(record.backend, db.backend());
        assert_eq!(record.kind, QueryKind::Data);
        // SQLite's LIMIT is the number itself (`Dialect::limit_literal`).
        let binds = if db.backend().dialect().limit_literal { vec!["2"] } else { vec!["2", "5"] };
        assert_eq!(record.binds, binds);
        assert_eq!(record.rows, Some(2));
        assert!(record.error.is_none());
        let site = record.call_site.expect("call site");
        assert!(site.file().ends_with("capture_records_statements.rs"), "{}", site.file());
        assert_eq!(site.line(), line);
        assert_eq!(
            record.fingerprint,
            orm::instrument::fingerprint(&record.sql),
        );
        let limit = if db.backend().dialect().limit_literal { "LIMIT 5".to_owned() } else { "LIMIT ?".to_owned() };
        assert!(
            record.fingerprint.ends_with(&orm::instrument::fingerprint(&limit)),
            "{}",
            record.fingerprint
        );
    }

    fn the_same_query_with_other_values_has_one_fingerprint(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (_, captured) = capture(|| {
            for thread in 1..=3 {
                Message::objects().filter(weave_message::thread_id.eq(thread)).all(conn).unwrap();
            }
        });
        let prints: Vec<&str> = captured.data().iter().map(|r| r.fingerprint.as_str()).collect();
        assert_eq!(prints.len(), 3);
        assert!(prints.iter().all(|p| *p == prints[0]));
    }

    fn transaction_statements_are_recorded_but_not_counted(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (result, captured) = capture(|| orm::atomic(conn, |c| Message::objects().count(c)));
        assert_eq!(result.unwrap(), 7);
        assert_eq!(captured.len(), 1);
        assert_eq!(captured.count_of(QueryKind::Transaction), 2, "{captured}");
        let begin = &captured.all()[0].sql;
        match db.backend() {
            Backend::Sqlite => assert_eq!(begin, "BEGIN IMMEDIATE"),
            Backend::Postgres => assert_eq!(begin, "BEGIN"),
        }
    }

    fn pool_health_checks_are_recorded_but_not_counted(db) {
        let ((), captured) = capture(|| {
            let conn = &mut db.conn();
            Message::objects().exists(conn).unwrap();
        });
        assert_eq!(captured.len(), 1);
        assert_eq!(captured.count_of(QueryKind::HealthCheck), 1, "{captured}");
    }

    fn failed_statements_are_recorded_with_their_error(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (result, captured) = capture(|| {
            demo::models::Person::objects().filter(demo::schema::weave_person::id.eq(1)).hard_delete(conn)
        });
        assert!(result.is_err());
        assert_eq!(captured.len(), 1);
        assert!(captured.data()[0].error.is_some());
    }

    fn nested_scopes_each_see_their_statements(db) {
        let conn = &mut db.conn();
        let (inner, outer) = capture(|| {
            Message::objects().count(conn).unwrap();
            let ((), inner) = capture(|| {
                Message::objects().exists(conn).unwrap();
            });
            inner.len()
        });
        assert_eq!(inner, 1);
        assert_eq!(outer.len(), 2);
    }

    fn assert_num_queries_lists_the_statements_when_it_fails(db) {
        let conn = &mut db.conn();
        let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_num_queries!(0, Message::objects().count(conn).unwrap())
        }));
        let message = failure
            .expect_err("must fail")
            .downcast::<String>()
            .map(|s| *s)
            .unwrap_or_default();
        assert!(message.starts_with("expected 0 queries, got 1:"), "{message}");
        assert!(message.contains("SELECT COUNT(*)"), "{message}");
        assert!(message.contains("capture_records_statements.rs"), "the call site is named: {message}");
    }

    fn nothing_is_recorded_outside_a_scope(db) {
        let conn = &mut db.conn();
        Message::objects().count(conn).unwrap();
        let ((), captured) = capture(|| {});
        assert_eq!(captured.all().len(), 0);
    }
}
