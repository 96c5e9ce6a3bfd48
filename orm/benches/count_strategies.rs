//! Count strategies on seeded data: each method's time (criterion) and its error
//! against the exact count, on SQLite and PostgreSQL.
//!
//! `cargo bench -p orm --bench count_strategies`. Rows: `ORM_BENCH_ROWS` (default
//! 100,000; one in ten soft-deleted, 50 threads). PostgreSQL:
//! `ORM_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a
//! schema of its own, dropped afterwards; skipped with a line when unreachable.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use orm::count::Count;
use orm::prelude::*;

include!("../doctest_setup.rs");
include!("common/bench_schema.rs");

fn rows() -> u64 {
    std::env::var("ORM_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

/// The schema and `rows` messages (every tenth deleted, thread `1 + id % 50`).
fn seed_sql(backend: Backend, rows: u64) -> String {
    let (table, generate) = match backend {
        Backend::Sqlite => (
            "CREATE TABLE weave_message (id INTEGER PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, text TEXT NOT NULL, sent_by_id BIGINT NOT NULL, thread_id BIGINT NOT NULL);",
            format!("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) INSERT INTO weave_message SELECT n, '2024-01-01 00:00:00', '2024-01-01 00:00:00', n % 10 = 0, 'message ' || n, 1 + n % 2, 1 + n % 50 FROM g;"),
        ),
        Backend::Postgres => (
            "CREATE TABLE weave_message (id BIGINT PRIMARY KEY, created TIMESTAMP NOT NULL, updated TIMESTAMP NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, text TEXT NOT NULL, sent_by_id BIGINT NOT NULL, thread_id BIGINT NOT NULL);",
            format!("INSERT INTO weave_message SELECT g, now(), now(), g % 10 = 0, 'message ' || g, 1 + g % 2, 1 + g % 50 FROM generate_series(1, {rows}) g;"),
        ),
    };
    format!(
        "{table} {generate}
         CREATE INDEX message_thread_id ON weave_message (thread_id);
         CREATE INDEX soft_deletes_ignore ON weave_message (deleted) WHERE deleted = false;
         ANALYZE weave_message;"
    )
}

struct Target {
    backend: Backend,
    db: orm::Database,
    /// Dropped with the target (PostgreSQL).
    _schema: Option<BenchSchema>,
}

fn sqlite(rows: u64) -> Target {
    let path = std::env::temp_dir().join(format!("orm_bench_counts_{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = orm::Database::open(&path.to_string_lossy()).expect("open sqlite");
    db.get()
        .expect("conn")
        .batch_execute(&seed_sql(Backend::Sqlite, rows))
        .expect("seed sqlite");
    Target {
        backend: Backend::Sqlite,
        db,
        _schema: None,
    }
}

fn postgres(rows: u64) -> Option<Target> {
    let (schema, db) = BenchSchema::open("orm_bench_counts")?;
    db.get()
        .ok()?
        .batch_execute(&seed_sql(Backend::Postgres, rows))
        .expect("seed postgres");
    Some(Target {
        backend: Backend::Postgres,
        db,
        _schema: Some(schema),
    })
}

fn strategies() -> Vec<(&'static str, Count)> {
    vec![
        ("exact", Count::Exact),
        (
            "exact within 50ms",
            Count::ExactWithin(Duration::from_millis(50)),
        ),
        ("at most 10000", Count::AtMost(10_000)),
        ("table statistics", Count::TableStatistics),
        ("planner", Count::Planner),
        ("bernoulli 1%", Count::bernoulli(1.0)),
        ("system 1%", Count::system(1.0)),
    ]
}

fn querysets() -> Vec<(&'static str, QuerySet<Message>)> {
    vec![
        ("whole table", Message::objects().with_deleted()),
        ("live rows", Message::objects()),
        (
            "one thread",
            Message::objects().filter(weave_message::thread_id.eq(7)),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let mut targets = vec![sqlite(rows)];
    targets.extend(postgres(rows));
    println!("\n{rows} messages\n| backend | queryset | method | value | exact count | error | one run |\n|---|---|---|---|---|---|---|");
    for target in &targets {
        let conn = &mut target.db.get().expect("conn");
        for (qs_name, qs) in querysets() {
            let exact = qs.count(conn).expect("exact count");
            for (name, strategy) in strategies() {
                let started = Instant::now();
                let result = qs.count_with(conn, &strategy);
                let once = started.elapsed();
                let (value, error) = match &result {
                    Ok(r) if r.more => (r.to_string(), "lower bound".to_owned()),
                    Ok(r) => {
                        let error = (r.value - exact) as f64 * 100.0 / exact.max(1) as f64;
                        (r.to_string(), format!("{error:+.1}%"))
                    }
                    Err(e) => (format!("({e})"), "-".to_owned()),
                };
                println!(
                    "| {} | {qs_name} | {name} | {value} | {exact} | {error} | {once:.2?} |",
                    target.backend
                );
                if result.is_err() {
                    continue;
                }
                c.bench_function(&format!("{}/{qs_name}/{name}", target.backend), |b| {
                    b.iter(|| qs.count_with(conn, &strategy))
                });
            }
        }
    }
}

criterion_group! {
    name = counts;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(counts);
