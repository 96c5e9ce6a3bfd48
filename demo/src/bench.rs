//! `demo bench`: each workload through `orm` and, in the same run, through hand-written
//! diesel doing the same queries and the same work — the floor for a diesel-based
//! layer. The two sides alternate run by run; medians and spread are reported.

use std::collections::HashMap;
use std::time::Instant;

use diesel::prelude::*;
use orm::{AnyConnection, Model};
use serde::Serialize;

use crate::json::{MessageJson, PageJson, ThreadJson};
use crate::models::{Message, Person, Thread};
use crate::schema::weave_message;

/// The demo's tables as hand-written diesel on SQLite declares them. SQLite has no
/// time zone type and diesel's SQLite backend no `Timestamptz`, so a diesel user
/// declares the timestamps `Timestamp` there (the shared schema's `Timestamptz` is
/// what `orm` reads on both). The SQL text is the same.
mod sqlite_tables {
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

    diesel::joinable!(weave_message -> weave_person (sent_by_id));
    diesel::joinable!(weave_message -> weave_thread (thread_id));
    diesel::allow_tables_to_appear_in_same_query!(weave_person, weave_thread, weave_message);
}

/// Runs the same hand-written diesel on the inner connection, with the tables as
/// that backend's diesel declares them: `crate::schema` on PostgreSQL,
/// [`sqlite_tables`] on SQLite. Rows load positionally (`all_columns`).
macro_rules! on_inner {
    ($conn:expr, |$c:ident, $s:ident| $body:expr) => {
        match $conn {
            AnyConnection::Postgresql($c) => {
                use crate::schema as $s;
                $body
            }
            AnyConnection::Sqlite($c) => {
                use self::sqlite_tables as $s;
                $body
            }
        }
    };
}

/// One side of a workload: runs it once and returns the bytes (or rows) it produced,
/// so both sides can be checked to do the same work.
pub type Side = fn(&mut AnyConnection) -> orm::Result<usize>;

/// Untimed work around each run of a side: preparing its input, undoing its writes.
pub type Hook = fn(&mut AnyConnection) -> orm::Result<()>;

/// A workload with its two sides.
#[derive(Clone, Copy)]
pub struct Workload {
    /// Its name in the report.
    pub name: &'static str,
    /// Through `orm`.
    pub ours: Side,
    /// Hand-written diesel on the concrete connection.
    pub diesel: Side,
    /// Before each run of either side, outside the timing.
    pub before: Option<Hook>,
    /// After each run of either side, outside the timing.
    pub after: Option<Hook>,
}

impl Workload {
    /// A read workload: no hooks.
    pub const fn read(name: &'static str, ours: Side, diesel: Side) -> Self {
        Self {
            name,
            ours,
            diesel,
            before: None,
            after: None,
        }
    }

    /// Runs one side once with the hooks around it; returns its output and its time, ms.
    fn run_side(&self, conn: &mut AnyConnection, side: Side) -> orm::Result<(usize, f64)> {
        if let Some(before) = self.before {
            before(conn)?;
        }
        let started = Instant::now();
        let out = side(conn);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let undone = self.after.map_or(Ok(()), |after| after(conn));
        // The side's own error first: a failed cleanup after it is a consequence.
        let out = out?;
        undone?;
        Ok((out, ms))
    }
}

/// The measured result of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Workload name.
    pub workload: &'static str,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Timed runs per side (after one warm-up run each).
    pub runs: usize,
    /// Median of our runs, ms.
    pub ours_ms: f64,
    /// Fastest and slowest of our runs, ms.
    pub ours_spread: (f64, f64),
    /// Median of the hand-written diesel runs, ms.
    pub diesel_ms: f64,
    /// Fastest and slowest of the diesel runs, ms.
    pub diesel_spread: (f64, f64),
    /// `ours_ms / diesel_ms`.
    pub ratio: f64,
    /// What one run produced (bytes of JSON or rows), the same on both sides.
    pub output: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (lo, hi)
}

/// Runs a workload `runs` times per side, alternating which side goes first.
///
/// # Errors
/// A database error, or the two sides producing different output (then the numbers
/// would compare different work).
pub fn measure(
    conn: &mut AnyConnection,
    w: &Workload,
    runs: usize,
) -> Result<BenchResult, Box<dyn std::error::Error + Send + Sync>> {
    let (ours_out, _) = w.run_side(conn, w.ours)?;
    let (diesel_out, _) = w.run_side(conn, w.diesel)?;
    if ours_out != diesel_out {
        return Err(format!(
            "{}: orm produced {ours_out} bytes, diesel {diesel_out}: not the same work",
            w.name
        )
        .into());
    }
    let mut ours = Vec::with_capacity(runs);
    let mut diesel = Vec::with_capacity(runs);
    for i in 0..runs {
        let order: [(Side, &mut Vec<f64>); 2] = if i % 2 == 0 {
            [(w.ours, &mut ours), (w.diesel, &mut diesel)]
        } else {
            [(w.diesel, &mut diesel), (w.ours, &mut ours)]
        };
        for (side, times) in order {
            times.push(w.run_side(conn, side)?.1);
        }
    }
    let (ours_spread, diesel_spread) = (spread(&ours), spread(&diesel));
    let ours_ms = median(&mut ours);
    let diesel_ms = median(&mut diesel);
    Ok(BenchResult {
        workload: w.name,
        backend: conn.backend().to_string(),
        runs,
        ours_ms,
        ours_spread,
        diesel_ms,
        diesel_spread,
        ratio: if diesel_ms > 0.0 {
            ours_ms / diesel_ms
        } else {
            0.0
        },
        output: ours_out,
    })
}

// The workloads do exactly the peers' work (../shared/peer), so the JSON is byte for
// byte the same: Django's default manager does not hide soft-deleted rows, so neither
// list_some nor the threads page's nested messages filter on `deleted` here.

// ---- list_some: the newest 100 messages with their senders, as DRF JSON ------------

fn list_some_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows = Message::objects()
        .with_deleted()
        .select_related(Message::sent_by)
        .limit(100)
        .all(conn)?;
    let out: Vec<MessageJson<'_>> = rows.iter().map(|(m, p)| MessageJson::new(m, p)).collect();
    Ok(crate::json::to_vec(&out).map_or(0, |b| b.len()))
}

fn list_some_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows: Vec<(Message, Person)> = on_inner!(&mut *conn, |c, s| s::weave_message::table
        .inner_join(s::weave_person::table.on(s::weave_person::id.eq(s::weave_message::sent_by_id)))
        .order((
            s::weave_message::updated.desc(),
            s::weave_message::id.desc()
        ))
        .limit(100)
        .select((s::weave_message::all_columns, s::weave_person::all_columns))
        .load(c))?;
    let out: Vec<MessageJson<'_>> = rows.iter().map(|(m, p)| MessageJson::new(m, p)).collect();
    Ok(crate::json::to_vec(&out).map_or(0, |b| b.len()))
}

// ---- the threads page: 100 threads, their messages and senders, the count, as JSON -

/// DRF's `next` for the first page of `APIRequestFactory().get("/threads/")`.
const NEXT: &str = "http://testserver/threads/?page=2";

fn page_json(threads: &[(Thread, Vec<(Message, Person)>)], count: i64) -> usize {
    let results: Vec<ThreadJson<'_>> = threads.iter().map(|(t, m)| ThreadJson::new(t, m)).collect();
    let body = PageJson {
        count,
        next: (count > 100).then_some(NEXT),
        previous: None,
        results: &results,
    };
    crate::json::to_vec(&body).map_or(0, |b| b.len())
}

fn threads_page_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    let threads = Thread::objects();
    let page = threads
        .clone()
        .prefetch(
            Thread::messages()
                .with_deleted()
                .select_related(Message::sent_by),
        )
        .limit(100)
        .all(conn)?;
    Ok(page_json(&page, threads.count(conn)?))
}

fn threads_page_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let (threads, messages, count) = on_inner!(&mut *conn, |c, s| {
        let threads: Vec<Thread> = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .order((s::weave_thread::updated.desc(), s::weave_thread::id.desc()))
            .limit(100)
            .select(s::weave_thread::all_columns)
            .load(c)?;
        let ids: Vec<i64> = threads.iter().map(|t| t.id).collect();
        let messages: Vec<(Message, Person)> = s::weave_message::table
            .inner_join(
                s::weave_person::table.on(s::weave_person::id.eq(s::weave_message::sent_by_id)),
            )
            .filter(s::weave_message::thread_id.eq_any(&ids))
            .order((
                s::weave_message::updated.desc(),
                s::weave_message::id.desc(),
            ))
            .select((s::weave_message::all_columns, s::weave_person::all_columns))
            .load(c)?;
        let count: i64 = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .count()
            .get_result(c)?;
        diesel::QueryResult::Ok((threads, messages, count))
    })?;
    let mut by_thread: HashMap<i64, Vec<(Message, Person)>> = HashMap::new();
    for (m, p) in messages {
        by_thread.entry(m.thread_id).or_default().push((m, p));
    }
    let page: Vec<(Thread, Vec<(Message, Person)>)> = threads
        .into_iter()
        .map(|t| {
            let messages = by_thread.remove(&t.id).unwrap_or_default();
            (t, messages)
        })
        .collect();
    Ok(page_json(&page, count))
}

/// The threads page with the senders prefetched as their own hop (one query for the
/// distinct senders) instead of joined to every message.
fn threads_page_ours_sender_hop(conn: &mut AnyConnection) -> orm::Result<usize> {
    let threads = Thread::objects();
    let page = threads
        .clone()
        .prefetch(Thread::messages().with_deleted().prefetch(Message::sent_by))
        .limit(100)
        .all(conn)?;
    let count = threads.count(conn)?;
    let results: Vec<ThreadJson<'_>> = page
        .iter()
        .map(|(t, messages)| {
            let messages = messages
                .iter()
                .filter_map(|(m, p)| p.as_ref().map(|p| MessageJson::new(m, p)))
                .collect();
            ThreadJson::with_messages(t, messages)
        })
        .collect();
    let body = PageJson {
        count,
        next: (count > 100).then_some(NEXT),
        previous: None,
        results: &results,
    };
    Ok(crate::json::to_vec(&body).map_or(0, |b| b.len()))
}

/// The same page by hand with the senders as their own query: the threads, their
/// messages, the distinct senders (`id = ANY`), the count.
fn threads_page_diesel_sender_hop(conn: &mut AnyConnection) -> orm::Result<usize> {
    let (threads, messages, persons, count) = on_inner!(&mut *conn, |c, s| {
        let threads: Vec<Thread> = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .order((s::weave_thread::updated.desc(), s::weave_thread::id.desc()))
            .limit(100)
            .select(s::weave_thread::all_columns)
            .load(c)?;
        let ids: Vec<i64> = threads.iter().map(|t| t.id).collect();
        let messages: Vec<Message> = s::weave_message::table
            .filter(s::weave_message::thread_id.eq_any(&ids))
            .order((
                s::weave_message::updated.desc(),
                s::weave_message::id.desc(),
            ))
            .select(s::weave_message::all_columns)
            .load(c)?;
        let mut senders: Vec<i64> = messages.iter().map(|m| m.sent_by_id).collect();
        senders.sort_unstable();
        senders.dedup();
        let persons: Vec<Person> = s::weave_person::table
            .filter(s::weave_person::id.eq_any(&senders))
            .select(s::weave_person::all_columns)
            .load(c)?;
        let count: i64 = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .count()
            .get_result(c)?;
        diesel::QueryResult::Ok((threads, messages, persons, count))
    })?;
    Ok(hand_page_json(&threads, &messages, persons, count, NEXT))
}

/// A hand-written threads page's JSON from its parts: each thread with its messages
/// (and their senders, from `persons`), the count, `next` when there is a page 2.
fn hand_page_json(
    threads: &[Thread],
    messages: &[Message],
    persons: Vec<Person>,
    count: i64,
    next: &str,
) -> usize {
    let persons: HashMap<i64, Person> = persons.into_iter().map(|p| (p.id, p)).collect();
    let mut by_thread: HashMap<i64, Vec<MessageJson<'_>>> = HashMap::new();
    for m in messages {
        if let Some(p) = persons.get(&m.sent_by_id) {
            by_thread
                .entry(m.thread_id)
                .or_default()
                .push(MessageJson::new(m, p));
        }
    }
    let results: Vec<ThreadJson<'_>> = threads
        .iter()
        .map(|t| ThreadJson::with_messages(t, by_thread.remove(&t.id).unwrap_or_default()))
        .collect();
    let body = PageJson {
        count,
        next: (count > 100).then_some(next),
        previous: None,
        results: &results,
    };
    crate::json::to_vec(&body).map_or(0, |b| b.len())
}

// ---- the pages the API serves: soft-deleted rows hidden ------------------------------

/// The origin the served pages' links are made from here.
const SERVED_THREADS: &str = "http://testserver/api/threads/";

/// The API's own handler body (see `api::threads_body`).
fn served_threads_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    crate::api::threads_body(conn, &Vec::new(), SERVED_THREADS)
        .map(|b| b.len())
        .map_err(|_| orm::Error::InvalidArgument {
            argument: "threads page",
            reason: "the handler failed",
        })
}

/// The same page by hand: live threads, their live messages, the senders, the count.
fn served_threads_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let (threads, messages, persons, count) = on_inner!(&mut *conn, |c, s| {
        let threads: Vec<Thread> = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .order((s::weave_thread::updated.desc(), s::weave_thread::id.desc()))
            .limit(101)
            .select(s::weave_thread::all_columns)
            .load(c)?;
        let ids: Vec<i64> = threads.iter().take(100).map(|t| t.id).collect();
        let messages: Vec<Message> = s::weave_message::table
            .filter(s::weave_message::deleted.eq(false))
            .filter(s::weave_message::thread_id.eq_any(&ids))
            .order((
                s::weave_message::updated.desc(),
                s::weave_message::id.desc(),
            ))
            .select(s::weave_message::all_columns)
            .load(c)?;
        let mut senders: Vec<i64> = messages.iter().map(|m| m.sent_by_id).collect();
        senders.sort_unstable();
        senders.dedup();
        let persons: Vec<Person> = s::weave_person::table
            .filter(s::weave_person::id.eq_any(&senders))
            .select(s::weave_person::all_columns)
            .load(c)?;
        let count: i64 = s::weave_thread::table
            .filter(s::weave_thread::deleted.eq(false))
            .count()
            .get_result(c)?;
        diesel::QueryResult::Ok((threads, messages, persons, count))
    })?;
    let page = &threads[..threads.len().min(100)];
    let next = format!("{SERVED_THREADS}?page=2");
    Ok(hand_page_json(page, &messages, persons, count, &next))
}

/// The API's own list_some body.
fn served_list_some_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    crate::api::list_some_body(conn)
        .map(|b| b.len())
        .map_err(|_| orm::Error::InvalidArgument {
            argument: "list_some",
            reason: "the handler failed",
        })
}

/// The same by hand: the 100 newest live messages joined to their senders.
fn served_list_some_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows: Vec<(Message, Person)> = on_inner!(&mut *conn, |c, s| s::weave_message::table
        .inner_join(s::weave_person::table.on(s::weave_person::id.eq(s::weave_message::sent_by_id)))
        .filter(s::weave_message::deleted.eq(false))
        .order((
            s::weave_message::updated.desc(),
            s::weave_message::id.desc()
        ))
        .limit(100)
        .select((s::weave_message::all_columns, s::weave_person::all_columns))
        .load(c))?;
    let out: Vec<crate::json::SenderText<'_>> = rows
        .iter()
        .map(|(m, p)| crate::json::SenderText {
            sender: crate::json::full_name(p),
            text: &m.text,
        })
        .collect();
    Ok(crate::json::to_vec(&out).map_or(0, |b| b.len()))
}

// ---- an annotated list: 1,000 threads with their live message counts ---------------

/// What both sides produce from the rows: every thread's id and count, summed.
fn annotated_sum(rows: &[(Thread, i64)]) -> usize {
    rows.iter()
        .map(|(t, n)| usize::try_from(t.id + n).unwrap_or(0))
        .sum()
}

fn annotated_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows: Vec<(Thread, i64)> = Thread::objects()
        .limit(1000)
        .annotate(Thread::messages().count())
        .all(conn)?;
    Ok(annotated_sum(&rows))
}

/// As a diesel user writes it: a LEFT JOIN of the live messages, grouped by thread.
fn annotated_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows: Vec<(Thread, i64)> = on_inner!(&mut *conn, |c, s| s::weave_thread::table
        .left_join(
            s::weave_message::table.on(s::weave_message::thread_id
                .eq(s::weave_thread::id)
                .and(s::weave_message::deleted.eq(false))),
        )
        .filter(s::weave_thread::deleted.eq(false))
        .group_by(s::weave_thread::id)
        .order((s::weave_thread::updated.desc(), s::weave_thread::id.desc()))
        .limit(1000)
        .select((
            s::weave_thread::all_columns,
            diesel::dsl::count(s::weave_message::id.nullable()),
        ))
        .load(c))?;
    Ok(annotated_sum(&rows))
}

/// Every read workload, in the report's order.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload::read("list_some + JSON", list_some_ours, list_some_diesel),
        Workload::read(
            "threads page + JSON (senders joined)",
            threads_page_ours,
            threads_page_diesel,
        ),
        Workload::read(
            "threads page + JSON",
            threads_page_ours_sender_hop,
            threads_page_diesel_sender_hop,
        ),
        Workload::read(
            "list_some as served (live messages)",
            served_list_some_ours,
            served_list_some_diesel,
        ),
        Workload::read(
            "threads page as served (live messages)",
            served_threads_ours,
            served_threads_diesel,
        ),
        Workload::read(
            "1,000 threads with live message counts",
            annotated_ours,
            annotated_diesel,
        ),
    ]
}

/// The results as a markdown table.
pub fn markdown(results: &[BenchResult]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| workload | backend | runs | orm ms (median) | orm min–max | diesel ms (median) | diesel min–max | orm / diesel |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2}–{:.2} | {:.2} | {:.2}–{:.2} | {:.3} |",
            r.workload,
            r.backend,
            r.runs,
            r.ours_ms,
            r.ours_spread.0,
            r.ours_spread.1,
            r.diesel_ms,
            r.diesel_spread.0,
            r.diesel_spread.1,
            r.ratio
        );
    }
    s
}

// ---- writes: bulk_create and bulk_update, each run rolled back ---------------------

/// How many rows the bulk_create workloads insert.
pub const BULK_CREATE_ROWS: usize = 100_000;
/// How many rows the bulk_update workloads change.
pub const BULK_UPDATE_ROWS: usize = 10_000;

// The write workloads do what the peers' do (../shared/peer): rows built before the
// timer, the timed span from BEGIN to COMMIT, and the writes undone after each run,
// outside the timing (new rows deleted, edited texts set back, then VACUUM on
// PostgreSQL).

thread_local! {
    /// The rows the next bulk_create run inserts, built by its `before` hook.
    static NEW_ROWS: std::cell::RefCell<Vec<crate::models::NewMessage>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The rows the next bulk_update run writes, built by its `before` hook.
    static EDITS: std::cell::RefCell<Vec<(i64, (String,))>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The same rows as they were, `(id, text, updated)`, to put back after the run.
    static ORIGINALS: std::cell::RefCell<Vec<(i64, String, chrono::NaiveDateTime)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The largest message id before the writes began (`None`: not read yet).
    static LAST_ID: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
    /// Runs so far, to vary the rows from run to run.
    static RUN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// What the bulk_update workloads append to each text.
const EDIT_SUFFIX: &str = " (edited)";

/// The largest message id before this run's inserts (read by `build_new_rows`).
fn last_id(conn: &mut AnyConnection) -> orm::Result<i64> {
    if let Some(id) = LAST_ID.get() {
        return Ok(id);
    }
    read_last_id(conn)
}

/// Reads and remembers the largest message id now.
fn read_last_id(conn: &mut AnyConnection) -> orm::Result<i64> {
    let id = Message::objects()
        .with_deleted()
        .order_by(weave_message::id.desc())
        .first(conn)?
        .map_or(0, |m| m.id);
    LAST_ID.set(Some(id));
    Ok(id)
}

/// 100,000 new messages as the peers build theirs: texts drawn from the existing
/// messages, senders and threads uniform over all of them, 10% deleted; a different
/// draw each run.
fn build_new_rows(conn: &mut AnyConnection) -> orm::Result<()> {
    use rand::{Rng, SeedableRng};
    read_last_id(conn)?;
    let texts: Vec<String> = Message::objects()
        .with_deleted()
        .order_by(weave_message::id.asc())
        .limit(1_000)
        .all(conn)?
        .into_iter()
        .map(|m| m.text)
        .collect();
    let persons = crate::seed::ids_of_persons(conn)?;
    let threads = crate::seed::ids_of_threads(conn)?;
    if texts.is_empty() || persons.is_empty() || threads.is_empty() {
        return Err(orm::Error::Unsupported {
            feature: "the write bench on an empty database",
            backend: conn.backend(),
        });
    }
    RUN.set(RUN.get() + 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(RUN.get());
    let now = chrono::Utc::now().naive_utc();
    let rows = (0..BULK_CREATE_ROWS)
        .map(|_| crate::models::NewMessage {
            created: now,
            updated: now,
            deleted: rng.random_bool(0.1),
            text: texts[rng.random_range(0..texts.len())].clone(),
            sent_by_id: persons[rng.random_range(0..persons.len())],
            thread_id: threads[rng.random_range(0..threads.len())],
        })
        .collect();
    NEW_ROWS.set(rows);
    Ok(())
}

/// Deletes the messages the bench inserted.
fn drop_new_rows(conn: &mut AnyConnection) -> orm::Result<()> {
    let last = last_id(conn)?;
    Message::objects()
        .with_deleted()
        .filter(weave_message::id.gt(last))
        .hard_delete(conn)?;
    vacuum(conn)
}

/// `VACUUM weave_message` on PostgreSQL (the peers' cleanup); nothing on SQLite.
fn vacuum(conn: &mut AnyConnection) -> orm::Result<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("VACUUM weave_message").execute(pg)?;
    }
    Ok(())
}

fn bulk_create_ours(
    conn: &mut AnyConnection,
    method: orm::bulk::InsertMethod,
) -> orm::Result<usize> {
    let rows = NEW_ROWS.take();
    let options = orm::bulk::BulkCreate::new()
        .method(method)
        .keep_timestamps();
    Ok(Message::objects()
        .bulk_create_with(conn, rows, &options)?
        .rows)
}

fn bulk_create_ours_insert(conn: &mut AnyConnection) -> orm::Result<usize> {
    bulk_create_ours(conn, orm::bulk::InsertMethod::Insert)
}

/// COPY on PostgreSQL; SQLite has none, so there both sides use the chunked INSERT.
fn bulk_create_ours_copy(conn: &mut AnyConnection) -> orm::Result<usize> {
    let method = match conn.backend() {
        orm::Backend::Postgres => orm::bulk::InsertMethod::Copy,
        orm::Backend::Sqlite => orm::bulk::InsertMethod::Insert,
    };
    bulk_create_ours(conn, method)
}

/// Hand-written: multi-row INSERTs of as many rows as the bind limit allows, in one
/// transaction.
fn bulk_create_diesel_insert(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows = NEW_ROWS.take();
    let per_statement = conn.backend().capability().max_bind_params / 6;
    let n = on_inner!(&mut *conn, |c, s| c.transaction(|c| {
        let mut n = 0;
        for chunk in rows.chunks(per_statement) {
            let values: Vec<_> = chunk
                .iter()
                .map(|r| {
                    (
                        s::weave_message::created.eq(r.created),
                        s::weave_message::updated.eq(r.updated),
                        s::weave_message::deleted.eq(r.deleted),
                        s::weave_message::text.eq(&r.text),
                        s::weave_message::sent_by_id.eq(r.sent_by_id),
                        s::weave_message::thread_id.eq(r.thread_id),
                    )
                })
                .collect();
            n += diesel::insert_into(s::weave_message::table)
                .values(&values)
                .execute(c)?;
        }
        diesel::QueryResult::Ok(n)
    }))?;
    Ok(n)
}

/// Hand-written: binary COPY on PostgreSQL in one transaction (SQLite has none: the
/// chunked INSERT).
fn bulk_create_diesel_copy(conn: &mut AnyConnection) -> orm::Result<usize> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            let rows = NEW_ROWS.take();
            Ok(pg.transaction(|pg| {
                diesel::copy_from(weave_message::table)
                    .from_insertable(&rows)
                    .execute(pg)
            })?)
        }
        AnyConnection::Sqlite(_) => bulk_create_diesel_insert(conn),
    }
}

/// The first 10,000 messages by id, each text with [`EDIT_SUFFIX`] appended; their
/// text and `updated` as they are, to put back.
fn build_edits(conn: &mut AnyConnection) -> orm::Result<()> {
    let rows = Message::objects()
        .with_deleted()
        .order_by(weave_message::id.asc())
        .limit(BULK_UPDATE_ROWS as u32)
        .all(conn)?;
    EDITS.set(
        rows.iter()
            .map(|m| (m.id, (format!("{}{EDIT_SUFFIX}", m.text),)))
            .collect(),
    );
    ORIGINALS.set(
        rows.into_iter()
            .map(|m| (m.id, m.text, m.updated))
            .collect(),
    );
    Ok(())
}

/// Puts back the text and `updated` of the rows the run changed, by id (nothing else
/// is touched).
fn undo_edits(conn: &mut AnyConnection) -> orm::Result<()> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
    let originals = ORIGINALS.take();
    match conn {
        AnyConnection::Postgresql(pg) => {
            let ids: Vec<i64> = originals.iter().map(|o| o.0).collect();
            let texts: Vec<&str> = originals.iter().map(|o| o.1.as_str()).collect();
            let updated: Vec<chrono::NaiveDateTime> = originals.iter().map(|o| o.2).collect();
            diesel::sql_query(
                "UPDATE weave_message SET text = v.text, updated = v.updated \
                 FROM UNNEST($1, $2, $3) AS v(id, text, updated) WHERE weave_message.id = v.id",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(texts)
            .bind::<Array<Timestamptz>, _>(updated)
            .execute(pg)?;
        }
        AnyConnection::Sqlite(lite) => {
            lite.transaction(|lite| {
                use self::sqlite_tables::weave_message;
                for (id, text, updated) in &originals {
                    diesel::update(weave_message::table.filter(weave_message::id.eq(id)))
                        .set((
                            weave_message::text.eq(text),
                            weave_message::updated.eq(updated),
                        ))
                        .execute(lite)?;
                }
                diesel::QueryResult::Ok(())
            })?;
        }
    }
    vacuum(conn)
}

fn bulk_update_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows = EDITS.take();
    Message::objects().bulk_update(conn, (weave_message::text,), rows)
}

/// Hand-written: PostgreSQL `UPDATE ... FROM UNNEST($1, $2)` with two array binds in
/// one statement; SQLite has no arrays: one prepared UPDATE per row in one
/// transaction (SQLite's cheapest portable way).
fn bulk_update_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamptz};
    let rows = EDITS.take();
    let now = chrono::Utc::now().naive_utc();
    Ok(match conn {
        AnyConnection::Postgresql(pg) => pg.transaction(|pg| {
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let texts: Vec<&str> = rows.iter().map(|r| r.1 .0.as_str()).collect();
            diesel::sql_query(
                "UPDATE weave_message SET text = v.text, updated = $3 \
                 FROM UNNEST($1, $2) AS v(id, text) WHERE weave_message.id = v.id",
            )
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Text>, _>(texts)
            .bind::<Timestamptz, _>(now)
            .execute(pg)
        })?,
        AnyConnection::Sqlite(lite) => lite.transaction(|lite| {
            use self::sqlite_tables::weave_message;
            let mut n = 0;
            for (id, (text,)) in &rows {
                n += diesel::update(weave_message::table.filter(weave_message::id.eq(id)))
                    .set((weave_message::text.eq(text), weave_message::updated.eq(now)))
                    .execute(lite)?;
            }
            diesel::QueryResult::Ok(n)
        })?,
    })
}

/// The write workloads.
pub fn write_workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "bulk_create 100k (chunked INSERT)",
            ours: bulk_create_ours_insert,
            diesel: bulk_create_diesel_insert,
            before: Some(build_new_rows),
            after: Some(drop_new_rows),
        },
        Workload {
            name: "bulk_create 100k (COPY on PostgreSQL)",
            ours: bulk_create_ours_copy,
            diesel: bulk_create_diesel_copy,
            before: Some(build_new_rows),
            after: Some(drop_new_rows),
        },
        Workload {
            name: "bulk_update 10k",
            ours: bulk_update_ours,
            diesel: bulk_update_diesel,
            before: Some(build_edits),
            after: Some(undo_edits),
        },
    ]
}

// ---- counts --------------------------------------------------------------------------

/// One count strategy timed, with its value and its error against the exact count.
#[derive(Debug, Clone, Serialize)]
pub struct CountResultRow {
    /// The strategy.
    pub strategy: &'static str,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Median time of `runs` runs, ms.
    pub ms: f64,
    /// Timed runs.
    pub runs: usize,
    /// What it returned (`None`: the backend cannot, see `error`).
    pub value: Option<i64>,
    /// Its error against the exact count, percent.
    pub error_pct: Option<f64>,
    /// The typed error where the backend has no such method.
    pub error: Option<String>,
    /// The value is a lower bound ("more than"), not an estimate.
    pub more: bool,
    /// Median of the same count written by hand with diesel, in the same run
    /// (alternating); `None` where there is no such statement to compare with.
    pub diesel_ms: Option<f64>,
}

/// The live messages counted by hand-written diesel.
pub(crate) fn exact_count_by_hand(conn: &mut AnyConnection) -> orm::Result<i64> {
    Ok(orm::with_inner!(&mut *conn, |c| weave_message::table
        .filter(weave_message::deleted.eq(false))
        .count()
        .get_result::<i64>(c))?)
}

/// The hand-written diesel statement for the count strategy named `name` on this
/// connection's backend, if there is one: the same SQL the strategy sends.
fn count_by_hand(name: &str, conn: &mut AnyConnection) -> Option<orm::Result<i64>> {
    use diesel::sql_types::BigInt;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let raw = |conn: &mut AnyConnection, sql: &str| -> orm::Result<i64> {
        let rows: Vec<N> = orm::with_inner!(&mut *conn, |c| diesel::sql_query(sql).load(c))?;
        Ok(rows.first().map_or(0, |r| r.n))
    };
    let postgres = conn.backend() == orm::Backend::Postgres;
    Some(match name {
        "exact" => exact_count_by_hand(conn),
        "table statistics (whole table)" if postgres => raw(
            conn,
            "SELECT reltuples::bigint AS n FROM pg_class WHERE oid = 'weave_message'::regclass",
        ),
        "planner estimate" if postgres => {
            #[derive(diesel::QueryableByName)]
            struct Plan {
                #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
                plan: String,
            }
            orm::with_inner!(&mut *conn, |c| diesel::sql_query(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM weave_message WHERE deleted = false"
            )
            .load::<Plan>(c))
            .map_err(Into::into)
            .map(|rows| {
                rows.first()
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(&p.plan).ok())
                    .and_then(|v| v[0]["Plan"]["Plan Rows"].as_f64())
                    .map_or(0, |r| r as i64)
            })
        }
        "TABLESAMPLE BERNOULLI 10%" if postgres => raw(
            conn,
            "SELECT COUNT(*) * 10 AS n FROM weave_message TABLESAMPLE BERNOULLI (10) WHERE deleted = false",
        ),
        "TABLESAMPLE SYSTEM 10%" if postgres => raw(
            conn,
            "SELECT COUNT(*) * 10 AS n FROM weave_message TABLESAMPLE SYSTEM (10) WHERE deleted = false",
        ),
        "at most 10,000" => raw(
            conn,
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM weave_message WHERE deleted = false LIMIT 10001) AS t",
        ),
        _ => return None,
    })
}

/// Every count strategy on the live messages.
pub fn counts(conn: &mut AnyConnection, runs: usize) -> orm::Result<Vec<CountResultRow>> {
    let live = Message::objects();
    let exact = live.count(conn)?;
    let strategies = crate::scenarios::count_strategies();
    let mut out = Vec::new();
    for (name, strategy, whole) in strategies {
        let qs = if whole {
            live.clone().with_deleted()
        } else {
            live.clone()
        };
        let mut times = Vec::with_capacity(runs);
        let mut by_hand = Vec::with_capacity(runs);
        let mut value = None;
        let mut error = None;
        let mut more = false;
        // The hand-written count goes first in even runs, after orm's in odd ones.
        let time_by_hand = |conn: &mut AnyConnection, times: &mut Vec<f64>| -> orm::Result<()> {
            let started = Instant::now();
            if let Some(n) = count_by_hand(name, conn) {
                n?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            Ok(())
        };
        for i in 0..runs.max(1) {
            if i % 2 == 0 {
                time_by_hand(conn, &mut by_hand)?;
            }
            let started = Instant::now();
            match qs.count_with(conn, &strategy) {
                Ok(r) => {
                    value = Some(r.value);
                    more = r.more;
                }
                Err(e) if e.is_unsupported() => {
                    error = Some(e.to_string());
                    break;
                }
                Err(e) => return Err(e),
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
            if i % 2 == 1 {
                time_by_hand(conn, &mut by_hand)?;
            }
        }
        out.push(CountResultRow {
            strategy: name,
            backend: conn.backend().to_string(),
            ms: median(&mut times),
            runs: times.len(),
            value,
            error_pct: value.map(|v| {
                if exact == 0 {
                    0.0
                } else {
                    (v - exact) as f64 / exact as f64 * 100.0
                }
            }),
            error,
            more,
            diesel_ms: (!by_hand.is_empty() && value.is_some()).then(|| median(&mut by_hand)),
        });
    }
    Ok(out)
}

/// The count rows as a markdown table.
pub fn counts_markdown(rows: &[CountResultRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from("| count strategy | backend | runs | ms (median) | hand-written diesel ms | value | error vs exact |\n|---|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {} | {} | {} |",
            r.strategy,
            r.backend,
            r.runs,
            r.ms,
            r.diesel_ms
                .map_or_else(|| "—".to_owned(), |d| format!("{d:.2}")),
            r.value.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
            match (&r.error, r.error_pct) {
                (Some(e), _) => e.clone(),
                (None, Some(_)) if r.more => "a lower bound: more than the value".to_owned(),
                (None, Some(p)) => format!("{p:+.2}%"),
                (None, None) => String::new(),
            }
        );
    }
    s
}

// ---- streaming: each run a child process, so its peak RSS is its own ---------------

/// How a streaming probe reads every message (`demo bench-probe --mode ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamMode {
    /// `Message::objects().with_deleted().stream(conn, 2000)`.
    OrmStream,
    /// `Message::objects().with_deleted().all(conn)`.
    OrmAll,
    /// Hand-written diesel `load` into a Vec.
    DieselAll,
}

/// What one probe measured.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProbeResult {
    /// Wall time, ms.
    pub ms: f64,
    /// Messages read.
    pub rows: u64,
    /// Peak resident set of the process (`VmHWM`), KiB.
    pub peak_kib: u64,
}

/// The process's peak resident set (`VmHWM` of `/proc/self/status`), KiB; 0 where
/// the file does not exist.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Reads every message once in `mode` (touching each text) and measures it.
pub fn probe(conn: &mut AnyConnection, mode: StreamMode) -> orm::Result<ProbeResult> {
    let qs = Message::objects()
        .with_deleted()
        .order_by(weave_message::id.asc());
    let started = Instant::now();
    let mut rows = 0u64;
    let mut bytes = 0usize;
    match mode {
        StreamMode::OrmStream => {
            for m in qs.stream(conn, 2_000)? {
                let m = m?;
                rows += 1;
                bytes += m.text.len();
            }
        }
        StreamMode::OrmAll => {
            for m in qs.all(conn)? {
                rows += 1;
                bytes += m.text.len();
            }
        }
        StreamMode::DieselAll => {
            let all: Vec<Message> = on_inner!(&mut *conn, |c, s| s::weave_message::table
                .order(s::weave_message::id.asc())
                .select(s::weave_message::all_columns)
                .load(c))?;
            for m in all {
                rows += 1;
                bytes += m.text.len();
            }
        }
    }
    std::hint::black_box(bytes);
    Ok(ProbeResult {
        ms: started.elapsed().as_secs_f64() * 1e3,
        rows,
        peak_kib: peak_rss_kib(),
    })
}

/// One row of the async-cost table: a point lookup through each path.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncCost {
    /// The path.
    pub path: &'static str,
    /// The backend.
    pub backend: String,
    /// Median microseconds per lookup over the runs.
    pub us_per_lookup: f64,
    /// Against the synchronous path with a checkout per lookup.
    pub ratio: f64,
}

/// Lookups per timed run of [`async_cost`].
const LOOKUPS: i64 = 500;

/// The cost of the async face on a point lookup (`Message` by primary key), per
/// lookup, the paths alternating run by run: the synchronous path as a sync handler
/// runs it (a checkout per lookup, then `get`), the same with one connection held
/// throughout, and the async path (`aget`, awaited from a multi-threaded tokio
/// runtime: a worker permit, a blocking thread, a checkout, `get`).
///
/// # Errors
/// The database's error.
pub fn async_cost(db: &orm::Database, runs: usize) -> orm::Result<Vec<AsyncCost>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|_| orm::Error::InvalidArgument {
            argument: "runtime",
            reason: "tokio would not start",
        })?;
    let lookup = |id: i64| {
        Message::objects()
            .with_deleted()
            .filter(weave_message::id.eq(id))
    };
    let sync_checkout = || -> orm::Result<f64> {
        let started = Instant::now();
        for id in 1..=LOOKUPS {
            lookup(id).get(&mut db.get()?)?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64)
    };
    let sync_held = || -> orm::Result<f64> {
        let conn = &mut db.get()?;
        let started = Instant::now();
        for id in 1..=LOOKUPS {
            lookup(id).get(conn)?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64)
    };
    let awaited = || -> orm::Result<f64> {
        runtime.block_on(async {
            let started = Instant::now();
            for id in 1..=LOOKUPS {
                lookup(id).aget(db).await?;
            }
            Ok(started.elapsed().as_secs_f64() * 1e6 / LOOKUPS as f64)
        })
    };
    // One untimed round of each first.
    sync_checkout()?;
    sync_held()?;
    awaited()?;
    let (mut checkout, mut held, mut asynchronous) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        if i % 2 == 0 {
            checkout.push(sync_checkout()?);
            held.push(sync_held()?);
            asynchronous.push(awaited()?);
        } else {
            asynchronous.push(awaited()?);
            held.push(sync_held()?);
            checkout.push(sync_checkout()?);
        }
    }
    let backend = db.backend().to_string();
    let base = median(&mut checkout);
    let row = |path, us: f64| AsyncCost {
        path,
        backend: backend.clone(),
        us_per_lookup: us,
        ratio: if base > 0.0 { us / base } else { 0.0 },
    };
    Ok(vec![
        row("sync: a checkout per lookup, then get", base),
        row("sync: one connection held, get", median(&mut held)),
        row(
            "async: aget (worker permit, blocking thread, checkout, get)",
            median(&mut asynchronous),
        ),
    ])
}

/// The async-cost rows as a markdown table.
pub fn async_cost_markdown(rows: &[AsyncCost]) -> String {
    use std::fmt::Write;
    let mut s = String::from("| path | backend | µs per lookup (median) | against the sync checkout |\n|---|---|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.3} |",
            r.path, r.backend, r.us_per_lookup, r.ratio
        );
    }
    s
}

/// One row of the routing-cost table.
#[derive(Debug, Clone, Serialize)]
pub struct RoutingCost {
    /// The path.
    pub path: &'static str,
    /// Median microseconds per lookup over the runs.
    pub us_per_lookup: f64,
    /// Median over the runs of this path's time against its baseline's in the same
    /// run: the same pool without the routing.
    pub ratio: f64,
}

/// The routing layer's cost per statement: a point lookup (`Message` by primary key)
/// with and without the routing, on the same pool, so on the same connection and
/// server process (on a shared 2-core machine, which core a server process runs on
/// moves a round trip more than the routing does). Pairs: each lookup runs both
/// ways, in alternating order, each timed on its own; [`LOOKUPS`] pairs a run.
/// `routed` has one replica:
///
/// - reads: `routed.read()` in a fresh [`RouteScope`](orm::routing::RouteScope) (the
///   routing picks the replica) against a checkout of the replica's pool itself;
/// - the primary inside a scope (every statement checked for a write, for
///   read-your-writes): `routed.get()` in a scope against `routed.get()` outside one.
///
/// # Errors
/// The database's error; [`orm::Error::InvalidArgument`] without a replica.
pub fn routing_cost(routed: &orm::Database, runs: usize) -> orm::Result<Vec<RoutingCost>> {
    use orm::routing::RouteScope;
    let replica = routed.replica_pool(0).ok_or(orm::Error::InvalidArgument {
        argument: "replica",
        reason: "the routing bench needs a database with a replica",
    })?;
    let lookup = |id: i64| {
        Message::objects()
            .with_deleted()
            .filter(weave_message::id.eq(id))
    };
    routed.wait_for_replicas(std::time::Duration::from_secs(60))?;
    let time = |f: &dyn Fn() -> orm::Result<()>| -> orm::Result<f64> {
        let started = Instant::now();
        f()?;
        Ok(started.elapsed().as_secs_f64() * 1e6)
    };
    // One run of a pair: total microseconds of the baseline and of the routed path.
    let pair = |base: &dyn Fn(i64) -> orm::Result<()>,
                other: &dyn Fn(i64) -> orm::Result<()>|
     -> orm::Result<(f64, f64)> {
        let (mut a, mut b) = (0.0, 0.0);
        for id in 1..=LOOKUPS {
            if id % 2 == 0 {
                a += time(&|| base(id))?;
                b += time(&|| other(id))?;
            } else {
                b += time(&|| other(id))?;
                a += time(&|| base(id))?;
            }
        }
        Ok((a, b))
    };
    let read_pair = || {
        pair(
            &|id| {
                let mut conn = replica.get().map_err(|_| orm::Error::PoolTimeout {
                    timeout: replica.connection_timeout(),
                    last_error: None,
                })?;
                lookup(id).get(&mut conn).map(drop)
            },
            &|id| {
                RouteScope::new()
                    .run(|| lookup(id).get(&mut routed.read()?).map(drop))
                    .0
            },
        )
    };
    let primary_pair = || {
        pair(&|id| lookup(id).get(&mut routed.get()?).map(drop), &|id| {
            RouteScope::new()
                .run(|| lookup(id).get(&mut routed.get()?).map(drop))
                .0
        })
    };
    type Pair<'a> = (
        &'static str,
        &'static str,
        Box<dyn Fn() -> orm::Result<(f64, f64)> + 'a>,
    );
    let pairs: Vec<Pair> = vec![
        (
            "read: a checkout of the replica's pool itself, get",
            "read: routed read() in a fresh scope (picks the replica), get",
            Box::new(read_pair),
        ),
        (
            "primary: get() outside any scope, get",
            "primary: get() inside a scope (writes watched), get",
            Box::new(primary_pair),
        ),
    ];
    let mut rows = Vec::new();
    for (base_name, name, run) in &pairs {
        run()?; // untimed
        let (mut base, mut other, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (a, b) = run()?;
            base.push(a / LOOKUPS as f64);
            other.push(b / LOOKUPS as f64);
            ratios.push(if a > 0.0 { b / a } else { 0.0 });
        }
        rows.push(RoutingCost {
            path: base_name,
            us_per_lookup: median(&mut base),
            ratio: 1.0,
        });
        rows.push(RoutingCost {
            path: name,
            us_per_lookup: median(&mut other),
            ratio: median(&mut ratios),
        });
    }
    Ok(rows)
}

/// The routing-cost rows as a markdown table.
pub fn routing_cost_markdown(rows: &[RoutingCost]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| path | µs per lookup (median) | against the same pool without routing (median of the runs' ratios) |\n|---|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.3} |",
            r.path, r.us_per_lookup, r.ratio
        );
    }
    s
}
