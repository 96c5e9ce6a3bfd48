//! `tracing` events: every statement at debug level, slow ones at warn level.
//!
//! tracing caches, per call site and for the whole process, whether anyone listens,
//! and a subscriber set for one thread (`with_default`) races with call sites first
//! reached on other threads. So this binary installs one global subscriber before
//! any statement runs (every test calls [`events_of`] first), and that subscriber
//! hands each event to the thread that emitted it: tests running side by side never
//! see each other's events, and no call site is ever cached as unheard.

use std::cell::RefCell;
use std::sync::Once;
use std::time::Duration;

use demo::models::{Message, Thread};
use demo::schema::weave_thread;
use orm::prelude::*;
use orm_tests::{on_both_backends, seed, TestDb};

#[derive(Debug, Clone)]
struct Event {
    level: tracing::Level,
    target: String,
    fields: String,
}

thread_local! {
    /// The events of the test running on this thread, while it listens.
    static EVENTS: RefCell<Option<Vec<Event>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns the events emitted on this thread meanwhile.
fn events_of<R>(f: impl FnOnce() -> R) -> (R, Vec<Event>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(PerThread).expect("the only global subscriber");
    });
    EVENTS.with(|e| *e.borrow_mut() = Some(Vec::new()));
    let r = f();
    (
        r,
        EVENTS.with(|e| e.borrow_mut().take().unwrap_or_default()),
    )
}

/// Listens to everything and keeps each event on the thread that emitted it.
struct PerThread;

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for PerThread {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        EVENTS.with(|e| {
            if let Some(events) = e.borrow_mut().as_mut() {
                events.push(Event {
                    level: *event.metadata().level(),
                    target: event.metadata().target().to_owned(),
                    fields: fields.0,
                });
            }
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn of_target<'e>(events: &'e [Event], target: &str) -> Vec<&'e Event> {
    events.iter().filter(|e| e.target == target).collect()
}

/// The same database's URL, opened again as a pool of its own with `configure`.
fn another_pool(
    db: &TestDb,
    configure: impl FnOnce(orm::DatabaseBuilder) -> orm::DatabaseBuilder,
) -> orm::Database {
    configure(orm::Database::builder(&db.url))
        .max_size(1)
        .open()
        .expect("second pool")
}

on_both_backends! {
    fn each_query_is_traced_at_debug_and_slow_ones_at_warn(db) {
        let (_, events) = events_of(|| {
            let conn = &mut db.conn();
            seed(conn);
        });
        assert!(of_target(&events, "orm::slow_query").is_empty(), "no threshold, no warnings: {events:?}");
        let slow_pool = another_pool(&db, |b| b.slow_query_threshold(Some(Duration::ZERO)));
        let (_, events) = events_of(|| {
            Message::objects().count(&mut db.conn()).unwrap();
            Thread::objects().filter(weave_thread::title.eq("secret title")).count(&mut slow_pool.get().unwrap()).unwrap();
        });
        let debug = of_target(&events, "orm::query");
        let debug_data: Vec<_> = debug.iter().filter(|e| e.fields.contains("COUNT(*)")).collect();
        assert_eq!(debug_data.len(), 2, "{events:?}");
        assert!(debug.iter().all(|e| e.level == tracing::Level::DEBUG && e.fields.contains("duration=")));
        assert!(debug_data[0].fields.contains("weave_message"));
        let warn = of_target(&events, "orm::slow_query");
        // The slow pool's statements only (its health check and its count): the
        // first pool has no threshold.
        assert!(!warn.is_empty(), "{events:?}");
        assert!(warn.iter().all(|e| e.level == tracing::Level::WARN && !e.fields.contains("weave_message")), "{warn:?}");
        let count = warn.iter().find(|e| e.fields.contains("weave_thread")).expect("the slow count");
        assert!(count.fields.contains("tracing_events.rs"), "{count:?}");
        // Bound values are user data: left out unless asked for, at either level.
        assert!(count.fields.contains("binds=1 ") && !count.fields.contains("secret title"), "{count:?}");
        assert!(!events.iter().any(|e| e.fields.contains("secret title")), "{events:?}");
    }

    fn slow_query_warnings_carry_bound_values_only_when_asked(db) {
        let pool = another_pool(&db, |b| b.slow_query_threshold(Some(Duration::ZERO)).log_bind_values(true));
        let (_, events) = events_of(|| {
            Thread::objects().filter(weave_thread::title.eq("secret title")).count(&mut pool.get().unwrap()).unwrap();
        });
        let warn = of_target(&events, "orm::slow_query");
        let count = warn.iter().find(|e| e.fields.contains("weave_thread")).expect("the slow count");
        assert!(count.fields.contains("secret title"), "{count:?}");
        let debug = of_target(&events, "orm::query");
        assert!(debug.iter().any(|e| e.fields.contains("secret title")), "{debug:?}");
    }

    fn a_threshold_no_statement_reaches_warns_about_none(db) {
        let pool = another_pool(&db, |b| b.slow_query_threshold(Some(Duration::from_secs(3600))));
        let (_, events) = events_of(|| Message::objects().count(&mut pool.get().unwrap()).unwrap());
        assert!(of_target(&events, "orm::slow_query").is_empty(), "{events:?}");
        assert!(!of_target(&events, "orm::query").is_empty(), "{events:?}");
    }
}
