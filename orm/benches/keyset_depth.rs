//! Keyset pages cost the same at any depth: page 1 against page 5,000 (rows 499,901
//! to 500,000) of 1,000,000 messages, on SQLite and PostgreSQL, for the whole table
//! (`with_deleted()`) and for the default queryset (soft-deleted rows hidden), with
//! `updated` one a row and with one `updated` for all rows (the ties a bulk write
//! makes).
//!
//! `cargo bench -p orm --bench keyset_depth`. Rows: `ORM_BENCH_ROWS` (default
//! 1,000,000; one in ten soft-deleted). PostgreSQL: `ORM_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own, dropped
//! afterwards; skipped with a line when unreachable. Besides criterion's numbers it
//! prints one table: each page timed alternately, its median, and the ratio.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use orm::paginate::CursorSecret;
use orm::prelude::*;

include!("../doctest_setup.rs");
include!("common/bench_schema.rs");

const PER_PAGE: u64 = 100;
const DEEP_PAGE: u64 = 5_000;

fn rows() -> u64 {
    std::env::var("ORM_BENCH_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// The schema, `rows` messages one second apart (every tenth deleted), or all at one
/// time (`ties`: as a bulk write stamps them), and the demo's ordering indexes.
fn seed_sql(backend: Backend, rows: u64, ties: bool) -> String {
    let (sqlite_updated, pg_updated) = if ties {
        ("'2024-01-01 00:00:00'", "TIMESTAMP '2024-01-01'")
    } else {
        (
            "datetime('2024-01-01', '+' || n || ' seconds')",
            "TIMESTAMP '2024-01-01' + g * interval '1 second'",
        )
    };
    let (table, generate) = match backend {
        Backend::Sqlite => (
            "CREATE TABLE weave_message (id INTEGER PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, text TEXT NOT NULL, sent_by_id BIGINT NOT NULL, thread_id BIGINT NOT NULL);",
            format!("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) INSERT INTO weave_message SELECT n, '2024-01-01 00:00:00', {sqlite_updated}, n % 10 = 0, 'message ' || n, 1 + n % 2, 1 + n % 50 FROM g;"),
        ),
        Backend::Postgres => (
            "CREATE TABLE weave_message (id BIGINT PRIMARY KEY, created TIMESTAMP NOT NULL, updated TIMESTAMP NOT NULL, deleted BOOLEAN NOT NULL DEFAULT false, text TEXT NOT NULL, sent_by_id BIGINT NOT NULL, thread_id BIGINT NOT NULL);",
            format!("INSERT INTO weave_message SELECT g, now(), {pg_updated}, g % 10 = 0, 'message ' || g, 1 + g % 2, 1 + g % 50 FROM generate_series(1, {rows}) g;"),
        ),
    };
    format!(
        "{table} {generate}
         CREATE INDEX weave_message_ordering ON weave_message (updated DESC, id DESC);
         CREATE INDEX weave_message_live_ordering ON weave_message (updated DESC, id DESC) WHERE deleted = false;
         ANALYZE weave_message;"
    )
}

struct Target {
    backend: Backend,
    ties: bool,
    db: orm::Database,
    /// Removed with the target: the SQLite file, or the PostgreSQL schema.
    _cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(std::path::PathBuf),
    Schema(#[allow(dead_code)] BenchSchema),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::SqliteFile(path) = self {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

fn sqlite(rows: u64, ties: bool) -> Target {
    let path =
        std::env::temp_dir().join(format!("orm_bench_keyset_{}_{ties}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = orm::Database::open(&path.to_string_lossy()).expect("open sqlite");
    db.get()
        .expect("conn")
        .batch_execute(&seed_sql(Backend::Sqlite, rows, ties))
        .expect("seed sqlite");
    Target {
        backend: Backend::Sqlite,
        ties,
        db,
        _cleanup: Cleanup::SqliteFile(path),
    }
}

fn postgres(rows: u64, ties: bool) -> Option<Target> {
    let (schema, db) = BenchSchema::open(&format!("orm_bench_keyset_{ties}"))?;
    let mut conn = db.get().ok()?;
    conn.batch_execute(&seed_sql(Backend::Postgres, rows, ties))
        .expect("seed postgres");
    // Its own statement: VACUUM runs outside a transaction. The visibility map lets
    // the pages be read by index-only scans, as on a table that has lived a while.
    conn.batch_execute("VACUUM ANALYZE weave_message")
        .expect("vacuum");
    drop(conn);
    Some(Target {
        backend: Backend::Postgres,
        ties,
        db,
        _cleanup: Cleanup::Schema(schema),
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let secret = CursorSecret::new("the keyset depth benchmark's secret").expect("secret");
    let mut targets = Vec::new();
    for ties in [false, true] {
        targets.push(sqlite(rows, ties));
        targets.extend(postgres(rows, ties));
    }
    println!(
        "\n{rows} messages, {PER_PAGE} a page\n| backend | `updated` | queryset | page 1 | page {DEEP_PAGE} | deep / first | deep page's plan |\n|---|---|---|---|---|---|---|"
    );
    for target in &targets {
        let conn = &mut target.db.get().expect("conn");
        for (name, qs) in [
            ("with_deleted()", Message::objects().with_deleted()),
            ("live rows", Message::objects()),
        ] {
            let pages = qs.keyset(PER_PAGE, &secret);
            // The token of page DEEP_PAGE: the `next` of one wide page.
            let skipped = PER_PAGE * (DEEP_PAGE - 1);
            let wide = qs.keyset(skipped, &secret).max_per_page(skipped);
            let deep = wide
                .page(conn, None)
                .expect("wide page")
                .next
                .expect("a deep page");
            let mut first = Vec::new();
            let mut deeper = Vec::new();
            for _ in 0..30 {
                let started = Instant::now();
                assert_eq!(
                    pages.page(conn, None).expect("page 1").results.len() as u64,
                    PER_PAGE
                );
                first.push(started.elapsed());
                let started = Instant::now();
                assert_eq!(
                    pages
                        .page(conn, Some(&deep))
                        .expect("deep page")
                        .results
                        .len() as u64,
                    PER_PAGE
                );
                deeper.push(started.elapsed());
            }
            let (first, deeper) = (median(first), median(deeper));
            let plan = pages
                .explain_page(conn, Some(&deep), orm::explain::ExplainOptions::new())
                .expect("plan")
                .summary();
            let spread = if target.ties {
                "one for all rows"
            } else {
                "one a row"
            };
            println!(
                "| {} | {spread} | {name} | {first:.2?} | {deeper:.2?} | {:.2} | {plan} |",
                target.backend,
                deeper.as_secs_f64() / first.as_secs_f64()
            );
            let data = if target.ties { "ties" } else { "distinct" };
            let label = format!("{}/{data}/{name}", target.backend);
            c.bench_function(&format!("{label}/page 1"), |b| {
                b.iter(|| pages.page(conn, None).expect("page 1"))
            });
            c.bench_function(&format!("{label}/page {DEEP_PAGE}"), |b| {
                b.iter(|| pages.page(conn, Some(&deep)).expect("deep page"))
            });
        }
    }
}

criterion_group! {
    name = keyset;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(keyset);
