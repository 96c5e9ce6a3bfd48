//! The demo's scenarios on both backends: each slide's before/after query counts, and
//! the JSON lines `demo scenarios --json` prints.

use demo::models::{Message, Thread};
use demo::scenarios::{self, Outcome};
use demo::seed::{seed, SeedConfig};
use orm::prelude::*;
use orm_tests::on_both_backends;

fn outcome<'a>(all: &'a [Outcome], scenario: &str, variant: &str) -> &'a Outcome {
    all.iter()
        .find(|o| o.scenario == scenario && o.variant == variant)
        .unwrap_or_else(|| panic!("no outcome {scenario}/{variant} in {all:#?}"))
}

on_both_backends! {
    fn every_slide_runs_with_the_talks_query_counts(t) {
        let conn = &mut t.conn();
        let config = SeedConfig { persons: 50, threads: 120, messages: 1_500, seed: 3, progress: false };
        let seeded = seed(conn, &config).unwrap();
        assert_eq!(seeded.messages, 1_500);
        let all = scenarios::run_all(conn).unwrap();

        // Example 1: 101 queries -> 1.
        let before = outcome(&all, "list_some", "before");
        assert_eq!((before.queries, before.rows), (101, 100));
        assert!(before.note.as_deref().unwrap_or("").starts_with("N+1: one shape sent 100 times from demo/src/scenarios.rs"));
        let after = outcome(&all, "list_some", "after");
        assert_eq!((after.queries, after.rows), (1, 100));
        assert!(!after.note.as_deref().unwrap_or("").contains("N+1"));

        // Example 2: 1 + threads + messages + 1 queries -> 3.
        let threads = Thread::objects().limit(100).all(conn).unwrap();
        let ids: Vec<i64> = threads.iter().map(|t| t.id).collect();
        let messages = Message::objects()
            .filter(demo::schema::weave_message::thread_id.eq_any(ids))
            .count(conn)
            .unwrap() as usize;
        assert!(messages > 100);
        let naive = outcome(&all, "threads_page", "naive");
        assert_eq!(naive.queries, 1 + threads.len() + messages + 1);
        let prefetch = outcome(&all, "threads_page", "prefetch messages");
        assert_eq!(prefetch.queries, 2 + messages + 1);
        let both = outcome(&all, "threads_page", "prefetch messages+senders");
        assert_eq!(both.queries, 3);
        assert_eq!(both.note.as_deref().map(|n| n.contains("N+1")), Some(false));

        let live = Message::objects().count(conn).unwrap();
        for variant in ["load all, then len()", "count()"] {
            let o = outcome(&all, "count_vs_len", variant);
            assert_eq!((o.queries, o.value, o.exact), (1, Some(live), Some(true)), "{variant}");
        }

        // Every outcome is one JSON line with the fields docs/demo.md promises.
        for o in &all {
            let line = serde_json::to_string(o).unwrap();
            assert!(!line.contains('\n'));
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            for field in ["scenario", "variant", "backend", "queries", "ms", "rows"] {
                assert!(v.get(field).is_some(), "{field} in {line}");
            }
            assert_eq!(v["backend"], t.backend().to_string());
        }
    }

    fn seeding_is_deterministic_and_all_or_nothing(t) {
        let conn = &mut t.conn();
        let config = SeedConfig { persons: 10, threads: 5, messages: 200, seed: 11, progress: false };
        seed(conn, &config).unwrap();
        let first: Vec<(i64, String, bool)> = Message::objects()
            .with_deleted()
            .order_by(demo::schema::weave_message::id.asc())
            .all(conn)
            .unwrap()
            .into_iter()
            .map(|m| (m.sent_by_id, m.text, m.deleted))
            .collect();
        assert_eq!(first.len(), 200);
        assert!(first.iter().any(|m| m.2) && first.iter().any(|m| !m.2), "some deleted, some not");

        // The same seed in a second database gives the same rows.
        let other = match t.backend() {
            Backend::Sqlite => orm_tests::sqlite(),
            Backend::Postgres => orm_tests::postgres().expect("postgres is up: this test runs on it"),
        };
        let conn2 = &mut other.conn();
        seed(conn2, &config).unwrap();
        let second: Vec<(i64, String, bool)> = Message::objects()
            .with_deleted()
            .order_by(demo::schema::weave_message::id.asc())
            .all(conn2)
            .unwrap()
            .into_iter()
            .map(|m| (m.sent_by_id, m.text, m.deleted))
            .collect();
        assert_eq!(first, second);

        // Seeding messages with no persons fails and writes nothing.
        let empty = match t.backend() {
            Backend::Sqlite => orm_tests::sqlite(),
            Backend::Postgres => orm_tests::postgres().expect("postgres is up"),
        };
        let conn3 = &mut empty.conn();
        let bad = SeedConfig { persons: 0, threads: 3, messages: 10, seed: 1, progress: false };
        assert!(seed(conn3, &bad).is_err());
        assert_eq!(Thread::objects().with_deleted().count(conn3).unwrap(), 0, "rolled back");
    }
}

on_both_backends! {
    /// `demo writers`' bulk writer inserts its rows in one statement sequence; the
    /// measurement itself is SQLite's (PostgreSQL has no database-wide write lock).
    fn the_writers_measurement_bulk_writes_and_refuses_postgresql(db) {
        let conn = &mut db.conn();
        orm_tests::seed(conn);
        let report = demo::writers::bulk_probe(conn, 500).unwrap();
        assert_eq!(report.rows, 500);
        if db.backend() == orm::Backend::Postgres {
            let err = demo::writers::run(std::path::Path::new("demo"), &db.url, 10, std::time::Duration::from_secs(5)).unwrap_err();
            assert!(err.to_string().starts_with("demo writers measures SQLite"), "{err}");
        }
    }
}
