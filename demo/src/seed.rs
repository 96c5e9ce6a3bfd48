//! The talk's dataset, generated deterministically from a seed.
//!
//! 1,000 persons, 1,000 threads and 100,000 messages by default (`--messages` scales
//! the messages). Each row is deleted with probability 10%; a message's sender and
//! thread are uniform over all persons and threads (deleted or not); `created` is
//! spread over 2024 and `updated` falls within 30 days after it. The same seed gives
//! the same rows on SQLite and PostgreSQL.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use indicatif::{ProgressBar, ProgressStyle};
use orm::bulk::{BulkCreate, InsertMethod};
use orm::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::models::{Message, NewMessage, NewPerson, NewThread, Person, Thread};
use crate::schema::{weave_person, weave_thread};

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedConfig {
    /// Number of persons.
    pub persons: usize,
    /// Number of threads.
    pub threads: usize,
    /// Number of messages.
    pub messages: usize,
    /// The random seed: the same seed gives the same rows.
    pub seed: u64,
    /// Draw a progress bar on standard error (hidden when it is not a terminal).
    pub progress: bool,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            persons: 1_000,
            threads: 1_000,
            messages: 100_000,
            seed: 0,
            progress: true,
        }
    }
}

/// What [`seed`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    /// Persons inserted.
    pub persons: usize,
    /// Threads inserted.
    pub threads: usize,
    /// Messages inserted.
    pub messages: usize,
}

const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Dennis",
    "Frances",
    "Ken",
    "Radia",
    "John",
    "Katherine",
    "Tony",
    "Sophie",
    "Niklaus",
    "Hedy",
    "Leslie",
    "Annie",
    "Linus",
    "Joan",
    "Guido",
    "Adele",
    "Bjarne",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Thompson",
    "Perlman",
    "McCarthy",
    "Johnson",
    "Hoare",
    "Wilson",
    "Wirth",
    "Lamarr",
    "Lamport",
    "Easley",
    "Torvalds",
    "Clarke",
    "Rossum",
    "Goldberg",
    "Stroustrup",
];
const WORDS: &[&str] = &[
    "what",
    "about",
    "the",
    "index",
    "query",
    "plan",
    "count",
    "rows",
    "page",
    "thread",
    "message",
    "sender",
    "cache",
    "scan",
    "join",
    "batch",
    "stream",
    "delete",
    "update",
    "server",
    "latency",
    "budget",
    "profile",
    "table",
    "sample",
    "estimate",
    "cursor",
    "bulk",
    "write",
    "read",
    "fast",
    "slow",
    "partial",
    "covering",
    "sequential",
    "bitmap",
];

/// Counts of live rows already present: a database with any person is left as it is.
pub fn is_seeded(conn: &mut AnyConnection) -> orm::Result<bool> {
    Person::objects().with_deleted().exists(conn)
}

fn timestamps(rng: &mut ChaCha8Rng) -> (NaiveDateTime, NaiveDateTime) {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    let created = start + TimeDelta::microseconds(rng.random_range(0..365 * 86_400_000_000i64));
    let updated = created + TimeDelta::microseconds(rng.random_range(0..30 * 86_400_000_000i64));
    (created, updated)
}

fn words(rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
    let n = rng.random_range(min..=max);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    // Sentence case, like the talk's "What ..." messages.
    let mut chars = out.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => out,
    }
}

fn progress_bar(config: &SeedConfig, len: u64, what: &str) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos:>9}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Generates the dataset and writes it in one transaction (all or nothing).
///
/// Rows go through the library's bulk path; ids are read back so senders and threads
/// point at real rows whatever ids the database hands out.
pub fn seed(conn: &mut AnyConnection, config: &SeedConfig) -> orm::Result<Seeded> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let persons: Vec<NewPerson> = (0..config.persons)
        .map(|i| {
            let (created, updated) = timestamps(&mut rng);
            let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
            let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
            NewPerson {
                created,
                updated,
                deleted: rng.random_bool(0.1),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                email_address: format!(
                    "{}.{}.{i}@example.org",
                    first.to_lowercase(),
                    last.to_lowercase()
                ),
            }
        })
        .collect();
    let threads: Vec<NewThread> = (0..config.threads)
        .map(|_| {
            let (created, updated) = timestamps(&mut rng);
            NewThread {
                created,
                updated,
                deleted: rng.random_bool(0.1),
                title: words(&mut rng, 2, 5),
            }
        })
        .collect();

    orm::atomic(conn, |conn| {
        let bar = progress_bar(config, (config.persons + config.threads) as u64, "people");
        insert_persons(conn, &persons, &bar)?;
        bar.set_message("threads");
        insert_threads(conn, &threads, &bar)?;
        bar.finish_and_clear();

        let person_ids = ids_of_persons(conn)?;
        let thread_ids = ids_of_threads(conn)?;
        if config.messages > 0 && (person_ids.is_empty() || thread_ids.is_empty()) {
            return Err(orm::Error::Unsupported {
                backend: conn.backend(),
                feature: "seeding messages without persons and threads",
            });
        }
        let bar = progress_bar(config, config.messages as u64, "messages");
        let mut batch = Vec::with_capacity(MESSAGE_BATCH);
        for _ in 0..config.messages {
            let (created, updated) = timestamps(&mut rng);
            batch.push(NewMessage {
                created,
                updated,
                deleted: rng.random_bool(0.1),
                text: words(&mut rng, 5, 30),
                sent_by_id: person_ids[rng.random_range(0..person_ids.len())],
                thread_id: thread_ids[rng.random_range(0..thread_ids.len())],
            });
            if batch.len() == MESSAGE_BATCH {
                insert_messages(conn, &batch)?;
                bar.inc(batch.len() as u64);
                batch.clear();
            }
        }
        insert_messages(conn, &batch)?;
        bar.inc(batch.len() as u64);
        bar.finish_and_clear();
        Ok(())
    })?;
    analyze(conn)?;
    Ok(Seeded {
        persons: config.persons,
        threads: config.threads,
        messages: config.messages,
    })
}

/// Messages are generated and written this many at a time, so memory stays flat
/// however many are asked for.
const MESSAGE_BATCH: usize = 20_000;

pub(crate) fn ids_of_persons(conn: &mut AnyConnection) -> orm::Result<Vec<i64>> {
    Ok(Person::objects()
        .with_deleted()
        .order_by(weave_person::id.asc())
        .all(conn)?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

pub(crate) fn ids_of_threads(conn: &mut AnyConnection) -> orm::Result<Vec<i64>> {
    Ok(Thread::objects()
        .with_deleted()
        .order_by(weave_thread::id.asc())
        .all(conn)?
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// The library's bulk path with the generated timestamps kept: binary `COPY` on
/// PostgreSQL for large batches, multi-row `INSERT`s under the bind limit on SQLite.
fn load_options<M: orm::Model>() -> BulkCreate<M> {
    BulkCreate::new()
        .method(InsertMethod::Auto)
        .keep_timestamps()
}

fn insert_persons(
    conn: &mut AnyConnection,
    rows: &[NewPerson],
    bar: &ProgressBar,
) -> orm::Result<()> {
    Person::objects().bulk_create_with(conn, rows.to_vec(), &load_options())?;
    bar.inc(rows.len() as u64);
    Ok(())
}

fn insert_threads(
    conn: &mut AnyConnection,
    rows: &[NewThread],
    bar: &ProgressBar,
) -> orm::Result<()> {
    Thread::objects().bulk_create_with(conn, rows.to_vec(), &load_options())?;
    bar.inc(rows.len() as u64);
    Ok(())
}

fn insert_messages(conn: &mut AnyConnection, rows: &[NewMessage]) -> orm::Result<()> {
    Message::objects().bulk_create_with(conn, rows.to_vec(), &load_options())?;
    Ok(())
}

/// Refreshes the planner's statistics after a bulk load, as a loader would: `ANALYZE`
/// on SQLite; `VACUUM ANALYZE` on PostgreSQL, whose VACUUM also sets the visibility
/// map that index-only scans (counting through the partial index) depend on.
pub fn analyze(conn: &mut AnyConnection) -> orm::Result<()> {
    use diesel::connection::SimpleConnection;
    match conn.backend() {
        Backend::Sqlite => conn.batch_execute("ANALYZE")?,
        Backend::Postgres => conn.batch_execute("VACUUM ANALYZE")?,
    }
    Ok(())
}

/// Live and soft-deleted rows per table.
pub fn table_counts(conn: &mut AnyConnection) -> orm::Result<Vec<(&'static str, i64, i64)>> {
    Ok(vec![
        (
            "weave_person",
            Person::objects().count(conn)?,
            Person::objects().only_deleted().count(conn)?,
        ),
        (
            "weave_thread",
            Thread::objects().count(conn)?,
            Thread::objects().only_deleted().count(conn)?,
        ),
        (
            "weave_message",
            Message::objects().count(conn)?,
            Message::objects().only_deleted().count(conn)?,
        ),
    ])
}
