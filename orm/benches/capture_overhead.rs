//! What capture costs: the threads page (100 threads, their 1,000 messages and the
//! senders, by prefetch: 2 queries) with capture off, capture on, a profile, a
//! profile that also collects plans, and with a subscriber taking each statement's
//! OpenTelemetry span (`orm::statement`, dropped as an exporter's queue would take it).
//!
//! `cargo bench -p orm --bench capture_overhead`. SQLite runs on a seeded temporary
//! file; PostgreSQL runs too when `ORM_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) is reachable, in a schema of its own.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use orm::prelude::*;
use orm::profile::PlanPolicy;

include!("../doctest_setup.rs");

const SQLITE_SCHEMA: &str = include_str!("../../migrations/sqlite/2026-11-24-000001_weave/up.sql");
const POSTGRES_SCHEMA: &str =
    include_str!("../../migrations/postgres/2026-11-24-000001_weave/up.sql");

type Page = Vec<(Thread, Vec<(Message, Person)>)>;

fn threads_page(conn: &mut AnyConnection) -> Page {
    Thread::objects()
        .limit(100)
        .prefetch(Thread::messages().select_related(Message::sent_by))
        .all(conn)
        .expect("threads page")
}

fn sqlite_database() -> (orm::Database, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("orm_bench_{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = orm::Database::open(&path.to_string_lossy()).expect("open sqlite");
    let mut conn = db.get().expect("connection");
    conn.batch_execute(SQLITE_SCHEMA).expect("schema");
    conn.batch_execute(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20)
             INSERT INTO weave_person (first_name, last_name, email_address) SELECT 'First' || i, 'Last' || i, 'p' || i || '@example.org' FROM s;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100)
             INSERT INTO weave_thread (title) SELECT 'Thread ' || i FROM s;
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000)
             INSERT INTO weave_message (text, sent_by_id, thread_id, deleted)
             SELECT 'message ' || i, 1 + i % 20, 1 + i % 100, i % 7 = 0 FROM s;",
    )
    .expect("seed");
    (db, path)
}

/// A schema of its own on PostgreSQL, or `None` when unreachable.
fn postgres_database() -> Option<(orm::Database, String)> {
    let url = std::env::var("ORM_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = orm::Database::builder(&url).max_size(1).open().ok()?;
    let schema = format!("orm_bench_{}", std::process::id());
    admin
        .get()
        .ok()?
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .ok()?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let db =
        orm::Database::open(&format!("{url}{separator}options=-csearch_path%3D{schema}")).ok()?;
    let mut conn = db.get().ok()?;
    conn.batch_execute(POSTGRES_SCHEMA).expect("schema");
    conn.batch_execute(
        "INSERT INTO weave_person (first_name, last_name, email_address) SELECT 'First' || i, 'Last' || i, 'p' || i || '@example.org' FROM generate_series(1, 20) i;
         INSERT INTO weave_thread (title) SELECT 'Thread ' || i FROM generate_series(1, 100) i;
         INSERT INTO weave_message (text, sent_by_id, thread_id, deleted)
             SELECT 'message ' || i, 1 + i % 20, 1 + i % 100, i % 7 = 0 FROM generate_series(1, 1000) i;
         ANALYZE;",
    )
    .expect("seed");
    Some((db, schema))
}

fn bench_backend(c: &mut Criterion, name: &str, db: &orm::Database) {
    let mut conn = db.get().expect("connection");
    let conn = &mut *conn;
    assert_eq!(threads_page(conn).len(), 100);
    let mut group = c.benchmark_group(format!("threads_page/{name}"));
    group.bench_function("capture_off", |b| b.iter(|| black_box(threads_page(conn))));
    group.bench_function("capture_on", |b| {
        b.iter(|| black_box(orm::capture(|| threads_page(conn))))
    });
    group.bench_function("profile", |b| {
        b.iter(|| black_box(orm::profile(|| threads_page(conn))))
    });
    group.bench_function("profile_with_plans", |b| {
        b.iter(|| {
            let (page, mut profile) = orm::Profiler::new("threads")
                .plans(PlanPolicy::EveryShape)
                .run(|| threads_page(conn));
            assert_eq!(profile.collect_plans(conn), 2);
            black_box((page, profile))
        })
    });
    group.bench_function("spans_on", |b| {
        b.iter(|| {
            tracing::subscriber::with_default(SpansOnly::default(), || {
                black_box(threads_page(conn))
            })
        })
    });
    group.finish();

    paired(name, "spans", conn, |conn, on| {
        if on {
            tracing::subscriber::with_default(SpansOnly::default(), || {
                black_box(threads_page(conn))
            });
        } else {
            black_box(threads_page(conn));
        }
    });

    // The machine is shared, so the groups above drift with other load. Paired
    // runs measure the ratio directly: each iteration runs the page once with
    // capture off and once with capture on, back to back, alternating which goes
    // first.
    let (mut off, mut on) = (Duration::ZERO, Duration::ZERO);
    let timed = |conn: &mut AnyConnection, captured: bool| {
        let started = std::time::Instant::now();
        if captured {
            black_box(orm::capture(|| threads_page(conn)));
        } else {
            black_box(threads_page(conn));
        }
        started.elapsed()
    };
    for i in 0..400 {
        // Alternate which goes first.
        let first_captured = i % 2 == 1;
        let a = timed(conn, first_captured);
        let b = timed(conn, !first_captured);
        let (t_on, t_off) = if first_captured { (a, b) } else { (b, a) };
        on += t_on;
        off += t_off;
    }
    println!(
        "threads_page/{name}/paired: capture off {:.3} ms, capture on {:.3} ms per page: {:+.1}%",
        off.as_secs_f64() * 1000.0 / 400.0,
        on.as_secs_f64() * 1000.0 / 400.0,
        100.0 * (on.as_secs_f64() / off.as_secs_f64() - 1.0)
    );
}

/// A subscriber that takes the statements' spans and nothing else, and keeps none
/// of them: what the library spends on spans, not what an exporter spends.
#[derive(Default)]
struct SpansOnly {
    next: std::sync::atomic::AtomicU64,
}

impl tracing::Subscriber for SpansOnly {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "orm::statement"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(
            1 + self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
    fn try_close(&self, _: tracing::span::Id) -> bool {
        true
    }
}

/// The page with `what` off and on, 400 pairs back to back, alternating which goes
/// first; prints the ratio (the machine is shared: pairs see the same moments).
fn paired(
    name: &str,
    what: &str,
    conn: &mut AnyConnection,
    run: impl Fn(&mut AnyConnection, bool),
) {
    let (mut off, mut on) = (Duration::ZERO, Duration::ZERO);
    for i in 0..400 {
        for first in [i % 2 == 1, i % 2 == 0] {
            let started = std::time::Instant::now();
            run(conn, first);
            if first {
                on += started.elapsed();
            } else {
                off += started.elapsed();
            }
        }
    }
    println!(
        "threads_page/{name}/paired: {what} off {:.3} ms, {what} on {:.3} ms per page: {:+.1}%",
        off.as_secs_f64() * 1000.0 / 400.0,
        on.as_secs_f64() * 1000.0 / 400.0,
        100.0 * (on.as_secs_f64() / off.as_secs_f64() - 1.0)
    );
}

fn capture_overhead(c: &mut Criterion) {
    let (sqlite, path) = sqlite_database();
    bench_backend(c, "sqlite", &sqlite);
    drop(sqlite);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    match postgres_database() {
        Some((postgres, schema)) => {
            bench_backend(c, "postgres", &postgres);
            if let Ok(mut conn) = postgres.get() {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
        None => eprintln!("PostgreSQL unreachable: benchmarked SQLite only"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = capture_overhead
}
criterion_main!(benches);
