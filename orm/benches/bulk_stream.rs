//! Streaming against loading everything, and the ways to write many rows, on both
//! backends. Each case runs in a child process of its own, which reports its time
//! and its peak resident memory (`VmHWM` from `/proc/self/status`).
//!
//! ```text
//! cargo bench -p orm --bench bulk_stream                       # 1,000,000 / 100,000 / 10,000 rows
//! ORM_BENCH_SCALE=0.01 cargo bench -p orm --bench bulk_stream  # 1% of that, for a quick run
//! ```
//!
//! PostgreSQL comes from `ORM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the bench works in a schema of its
//! own and drops it. Without a reachable server the PostgreSQL rows are skipped.

use std::process::Command;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use orm::bulk::{BulkCreate, InsertMethod};
use orm::prelude::*;

diesel::table! {
    weave_person (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        first_name -> Text,
        last_name -> Text,
        email_address -> Text,
    }
}

diesel::table! {
    weave_thread (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        title -> Text,
    }
}

diesel::table! {
    weave_message (id) {
        id -> BigInt,
        created -> Timestamp,
        updated -> Timestamp,
        deleted -> Bool,
        text -> Text,
        sent_by_id -> BigInt,
        thread_id -> BigInt,
    }
}

#[allow(dead_code)]
#[derive(Debug, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_message)]
struct Message {
    id: i64,
    created: chrono::NaiveDateTime,
    updated: chrono::NaiveDateTime,
    deleted: bool,
    text: String,
    sent_by_id: i64,
    thread_id: i64,
}

orm::model! {
    Message => weave_message {
        primary_key: id,
        ordering: (weave_message::updated.desc(), weave_message::id.desc()),
        soft_delete: deleted,
        timestamps: (created, updated),
    }
}

#[derive(Clone, diesel::Insertable)]
#[diesel(table_name = weave_message, treat_none_as_default_value = false)]
struct NewMessage {
    created: chrono::NaiveDateTime,
    updated: chrono::NaiveDateTime,
    deleted: bool,
    text: String,
    sent_by_id: i64,
    thread_id: i64,
}

orm::insertable! { NewMessage => Message, timestamps: (created, updated) }

const MIGRATIONS: orm::Migrations = orm::Migrations {
    sqlite: &diesel_migrations::embed_migrations!("../migrations/sqlite"),
    postgres: &diesel_migrations::embed_migrations!("../migrations/postgres"),
};

const CHUNK: u32 = 2_000;

fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("ORM_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(10)
}

fn rows(n: usize, from: usize) -> Vec<NewMessage> {
    let now = chrono::Utc::now().naive_utc();
    (from..from + n)
        .map(|i| NewMessage {
            created: now,
            updated: now,
            // One in ten is soft-deleted, as in the talk's data.
            deleted: i % 10 == 9,
            text: format!("message number {i} about something or other"),
            sent_by_id: 1 + (i % 100) as i64,
            thread_id: 1 + (i % 1_000) as i64,
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one case in this (child) process; prints `seconds peak_kib count`.
fn child(case: &str, url: &str) -> orm::Result<()> {
    let db = orm::Database::builder(url).max_size(1).open()?;
    let conn = &mut db.get()?;
    let started = Instant::now();
    let count = match case {
        "load_all" => Message::objects().all(conn)?.len(),
        "stream_keyset" => {
            let qs = Message::objects().order_by(weave_message::id.asc());
            let mut n = 0;
            for m in qs.stream(conn, CHUNK)? {
                m?;
                n += 1;
            }
            n
        }
        "stream_ordered" => {
            let mut n = 0;
            for m in Message::objects().stream(conn, CHUNK)? {
                m?;
                n += 1;
            }
            n
        }
        "insert_row_by_row" | "insert_chunked" | "insert_copy" => {
            let n = scaled(100_000);
            let batch = rows(n, 0);
            let started = Instant::now();
            let written = match case {
                "insert_row_by_row" => orm::atomic(conn, |c| {
                    for row in batch {
                        Message::objects().create(c, row)?;
                    }
                    Ok::<_, orm::Error>(n)
                })?,
                "insert_chunked" => Message::objects().bulk_create(conn, batch)?.len(),
                _ => {
                    let copy = BulkCreate::new().method(InsertMethod::Copy);
                    Message::objects()
                        .bulk_create_with(conn, batch, &copy)?
                        .rows
                }
            };
            let elapsed = started.elapsed();
            println!("{:.3} {} {written}", elapsed.as_secs_f64(), peak_rss_kib());
            // Put the table back as it was (not timed).
            Message::objects()
                .with_deleted()
                .filter(weave_message::text.like("message number %"))
                .filter(weave_message::id.gt(seeded(conn)?))
                .hard_delete(conn)?;
            return Ok(());
        }
        "bulk_update" => {
            let n = scaled(10_000) as i64;
            let updates: Vec<(i64, (String,))> =
                (1..=n).map(|id| (id, (format!("updated {id}"),))).collect();
            let started = Instant::now();
            let changed = Message::objects().bulk_update(conn, (weave_message::text,), updates)?;
            println!(
                "{:.3} {} {changed}",
                started.elapsed().as_secs_f64(),
                peak_rss_kib()
            );
            return Ok(());
        }
        other => panic!("unknown case {other}"),
    };
    println!(
        "{:.3} {} {count}",
        started.elapsed().as_secs_f64(),
        peak_rss_kib()
    );
    Ok(())
}

/// The number of messages the parent seeded (their ids are 1..=n).
fn seeded(_conn: &mut orm::AnyConnection) -> orm::Result<i64> {
    Ok(scaled(1_000_000) as i64)
}

fn seed(url: &str) -> orm::Result<()> {
    let db = orm::Database::builder(url).max_size(1).open()?;
    db.migrate(&MIGRATIONS)?;
    let conn = &mut db.get()?;
    let mut people = String::new();
    for i in 1..=100 {
        people.push_str(&format!(
            "INSERT INTO weave_person (id, created, updated, deleted, first_name, last_name, email_address) VALUES ({i}, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'P{i}', 'L', 'p{i}@example.org');"
        ));
    }
    for i in 1..=1_000 {
        people.push_str(&format!(
            "INSERT INTO weave_thread (id, created, updated, deleted, title) VALUES ({i}, '2024-01-01 00:00:00', '2024-01-01 00:00:00', false, 'T{i}');"
        ));
    }
    orm::atomic(conn, |c| Ok::<_, orm::Error>(c.batch_execute(&people)?))?;
    let total = scaled(1_000_000);
    let method = match conn.backend() {
        Backend::Postgres => InsertMethod::Copy,
        Backend::Sqlite => InsertMethod::Insert,
    };
    let mut done = 0;
    while done < total {
        let n = (total - done).min(100_000);
        Message::objects().bulk_create_with(
            conn,
            rows(n, done),
            &BulkCreate::new().method(method),
        )?;
        done += n;
    }
    if conn.backend() == Backend::Postgres {
        conn.batch_execute("VACUUM ANALYZE weave_message")?;
    }
    Ok(())
}

fn run_child(case: &str, url: &str) -> Option<(f64, u64, usize)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--child", case, url])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{case} failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        if let Err(e) = child(&args[i + 1], &args[i + 2]) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let sqlite_path = std::env::temp_dir().join(format!("orm_bench_{}.db", std::process::id()));
    let sqlite_url = sqlite_path.to_string_lossy().into_owned();
    let pg_admin = std::env::var("ORM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("orm_bench_{}", std::process::id());
    let pg = diesel::PgConnection::establish(&pg_admin)
        .ok()
        .map(|mut admin| {
            admin
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create bench schema");
            let separator = if pg_admin.contains('?') { '&' } else { '?' };
            (
                admin,
                format!("{pg_admin}{separator}options=-csearch_path%3D{schema}"),
            )
        });
    if pg.is_none() {
        eprintln!(
            "PostgreSQL unreachable at {}: its rows are skipped",
            orm::redact_url(&pg_admin)
        );
    }

    println!(
        "stream vs load-all: {} messages (10% soft-deleted, so {} read), chunks of {CHUNK}",
        scaled(1_000_000),
        scaled(1_000_000) - scaled(1_000_000) / 10
    );
    println!("| backend | case | rows | time | peak RSS |");
    println!("|---|---|---|---|---|");
    let mut backends = vec![("sqlite", sqlite_url.clone())];
    if let Some((_, url)) = &pg {
        backends.push(("postgres", url.clone()));
    }
    for (name, url) in &backends {
        let started = Instant::now();
        if let Err(e) = seed(url) {
            eprintln!("seeding {name} failed: {e}");
            continue;
        }
        eprintln!("seeded {name} in {:.1} s", started.elapsed().as_secs_f64());
        let mut cases = vec![
            "load_all",
            "stream_keyset",
            "stream_ordered",
            "insert_row_by_row",
            "insert_chunked",
        ];
        if *name == "postgres" {
            cases.push("insert_copy");
        }
        cases.push("bulk_update");
        for case in cases {
            let label = match (case, *name) {
                ("stream_ordered", "postgres") => "stream, -updated (cursor)",
                ("stream_ordered", _) => "stream, -updated (stepped)",
                ("stream_keyset", _) => "stream, by id (keyset)",
                ("load_all", _) => "all() into a Vec",
                ("insert_row_by_row", _) => "create() row by row, one transaction",
                ("insert_chunked", _) => "bulk_create (chunked INSERT)",
                ("insert_copy", _) => "bulk_create (COPY)",
                _ => "bulk_update",
            };
            match run_child(case, url) {
                Some((secs, kib, n)) => println!(
                    "| {name} | {label} | {n} | {secs:.2} s | {:.1} MiB |",
                    kib as f64 / 1024.0
                ),
                None => println!("| {name} | {label} | - | failed | - |"),
            }
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{sqlite_url}{suffix}"));
    }
    if let Some((mut admin, _)) = pg {
        let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
    }
}
