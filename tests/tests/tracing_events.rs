//! `tracing` events: every statement at debug level, slow ones at warn level; and each
//! statement as a span in OpenTelemetry's database conventions.
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
    /// The spans opened on this thread (by id) and those closed, in order.
    static OPEN_SPANS: RefCell<Vec<(u64, Span)>> = const { RefCell::new(Vec::new()) };
    static CLOSED_SPANS: RefCell<Option<Vec<Span>>> = const { RefCell::new(None) };
}

/// A closed span: its target and every field recorded, as `name=value ` text.
#[derive(Debug, Clone)]
struct Span {
    target: String,
    fields: String,
}

static NEXT_SPAN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Runs `f` and returns the spans opened and closed on this thread meanwhile.
fn spans_of<R>(f: impl FnOnce() -> R) -> (R, Vec<Span>) {
    let (r, _) = events_of(|| {
        CLOSED_SPANS.with(|c| *c.borrow_mut() = Some(Vec::new()));
        f()
    });
    (
        r,
        CLOSED_SPANS.with(|c| c.borrow_mut().take().unwrap_or_default()),
    )
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
    fn new_span(&self, attributes: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = NEXT_SPAN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut fields = Fields(String::new());
        attributes.record(&mut fields);
        let span = Span {
            target: attributes.metadata().target().to_owned(),
            fields: fields.0,
        };
        OPEN_SPANS.with(|o| o.borrow_mut().push((id, span)));
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = Fields(String::new());
        values.record(&mut fields);
        OPEN_SPANS.with(|o| {
            if let Some((_, span)) = o.borrow_mut().iter_mut().find(|(i, _)| *i == id.into_u64()) {
                span.fields.push_str(&fields.0);
            }
        });
    }
    fn try_close(&self, id: tracing::span::Id) -> bool {
        let closed = OPEN_SPANS.with(|o| {
            let mut open = o.borrow_mut();
            let at = open.iter().position(|(i, _)| *i == id.into_u64())?;
            Some(open.remove(at).1)
        });
        if let Some(span) = closed {
            CLOSED_SPANS.with(|c| {
                if let Some(spans) = c.borrow_mut().as_mut() {
                    spans.push(span);
                }
            });
        }
        true
    }
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
    fn each_statement_is_a_span_in_opentelemetrys_database_conventions(db) {
        seed(&mut db.conn());
        let (_, spans) = spans_of(|| {
            Thread::objects().filter(weave_thread::title.eq("secret title")).count(&mut db.conn()).unwrap();
        });
        let spans: Vec<&Span> = spans.iter().filter(|s| s.target == "orm::statement").collect();
        // The pool's health check, then the count.
        assert_eq!(spans.len(), 2, "{spans:?}");
        let count = spans[1];
        let system = match db.backend() {
            orm::Backend::Postgres => "postgresql",
            orm::Backend::Sqlite => "sqlite",
        };
        for expected in [
            format!("db.system.name=\"{system}\" "),
            "otel.kind=\"client\" ".to_owned(),
            "db.operation.name=\"SELECT\" ".to_owned(),
            "db.collection.name=\"weave_thread\" ".to_owned(),
            "otel.name=\"SELECT weave_thread\" ".to_owned(),
            "db.response.returned_rows=1 ".to_owned(),
            "code.file.path=\"tests/tests/tracing_events.rs\" ".to_owned(),
        ] {
            assert!(count.fields.contains(&expected), "{expected} in {count:?}");
        }
        assert!(count.fields.contains("db.query.text=\"SELECT COUNT(*) FROM"), "{count:?}");
        // The normalised text: never a bound value.
        assert!(!count.fields.contains("secret title"), "{count:?}");
        assert!(!count.fields.contains("error.type"), "{count:?}");
        match db.backend() {
            orm::Backend::Postgres => {
                assert!(count.fields.contains("server.address=\"127.0.0.1\" ") && count.fields.contains("server.port="), "{count:?}");
                assert!(count.fields.contains("db.namespace=\"test"), "{count:?}");
            }
            orm::Backend::Sqlite => {
                assert!(!count.fields.contains("server.address="), "{count:?}");
                assert!(count.fields.contains(&format!("db.namespace={:?}", db.url)), "{count:?}");
            }
        }
        // A failure: its kind, the database's own code, the error status.
        let (created, spans) = spans_of(|| {
            use diesel::connection::SimpleConnection;
            db.conn().batch_execute("INSERT INTO weave_thread (id, created, updated, deleted, title) VALUES (1, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'x')")
        });
        assert!(created.is_err());
        let failed = spans.iter().find(|s| s.fields.contains("db.operation.name=\"INSERT\"")).expect("the insert's span");
        let code = match db.backend() {
            orm::Backend::Postgres => "23505",
            orm::Backend::Sqlite => "19",
        };
        assert!(failed.fields.contains("error.type=\"unique violation\" "), "{failed:?}");
        assert!(failed.fields.contains("otel.status_code=\"ERROR\" "), "{failed:?}");
        assert!(failed.fields.contains(&format!("db.response.status_code=\"{code}\"")), "{failed:?}");
    }

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
