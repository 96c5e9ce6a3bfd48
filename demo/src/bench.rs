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
use crate::schema::{weave_message, weave_person, weave_thread};

/// One side of a workload: runs it once and returns the bytes (or rows) it produced,
/// so both sides can be checked to do the same work.
pub type Side = fn(&mut AnyConnection) -> orm::Result<usize>;

/// A workload with its two sides.
#[derive(Clone, Copy)]
pub struct Workload {
    /// Its name in the report.
    pub name: &'static str,
    /// Through `orm`.
    pub ours: Side,
    /// Hand-written diesel on the concrete connection.
    pub diesel: Side,
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
    let ours_out = (w.ours)(conn)?;
    let diesel_out = (w.diesel)(conn)?;
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
            let started = Instant::now();
            side(conn)?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
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
    Ok(serde_json::to_vec(&out).unwrap_or_default().len())
}

fn list_some_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    let rows: Vec<(Message, Person)> = orm::with_inner!(&mut *conn, |c| weave_message::table
        .inner_join(weave_person::table.on(weave_person::id.eq(weave_message::sent_by_id)))
        .order((weave_message::updated.desc(), weave_message::id.desc()))
        .limit(100)
        .select((Message::as_select(), Person::as_select()))
        .load(c))?;
    let out: Vec<MessageJson<'_>> = rows.iter().map(|(m, p)| MessageJson::new(m, p)).collect();
    Ok(serde_json::to_vec(&out).unwrap_or_default().len())
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
    serde_json::to_vec(&body).unwrap_or_default().len()
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
    let (threads, messages, count) = orm::with_inner!(&mut *conn, |c| {
        let threads: Vec<Thread> = weave_thread::table
            .filter(weave_thread::deleted.eq(false))
            .order((weave_thread::updated.desc(), weave_thread::id.desc()))
            .limit(100)
            .select(Thread::as_select())
            .load(c)?;
        let ids: Vec<i64> = threads.iter().map(|t| t.id).collect();
        let messages: Vec<(Message, Person)> = weave_message::table
            .inner_join(weave_person::table.on(weave_person::id.eq(weave_message::sent_by_id)))
            .filter(weave_message::thread_id.eq_any(&ids))
            .order((weave_message::updated.desc(), weave_message::id.desc()))
            .select((Message::as_select(), Person::as_select()))
            .load(c)?;
        let count: i64 = weave_thread::table
            .filter(weave_thread::deleted.eq(false))
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
    Ok(serde_json::to_vec(&body).unwrap_or_default().len())
}

/// The same page by hand with the senders as their own query: the threads, their
/// messages, the distinct senders (`id = ANY`), the count.
fn threads_page_diesel_sender_hop(conn: &mut AnyConnection) -> orm::Result<usize> {
    let (threads, messages, persons, count) = orm::with_inner!(&mut *conn, |c| {
        let threads: Vec<Thread> = weave_thread::table
            .filter(weave_thread::deleted.eq(false))
            .order((weave_thread::updated.desc(), weave_thread::id.desc()))
            .limit(100)
            .select(Thread::as_select())
            .load(c)?;
        let ids: Vec<i64> = threads.iter().map(|t| t.id).collect();
        let messages: Vec<Message> = weave_message::table
            .filter(weave_message::thread_id.eq_any(&ids))
            .order((weave_message::updated.desc(), weave_message::id.desc()))
            .select(Message::as_select())
            .load(c)?;
        let mut senders: Vec<i64> = messages.iter().map(|m| m.sent_by_id).collect();
        senders.sort_unstable();
        senders.dedup();
        let persons: Vec<Person> = weave_person::table
            .filter(weave_person::id.eq_any(&senders))
            .select(Person::as_select())
            .load(c)?;
        let count: i64 = weave_thread::table
            .filter(weave_thread::deleted.eq(false))
            .count()
            .get_result(c)?;
        diesel::QueryResult::Ok((threads, messages, persons, count))
    })?;
    let persons: HashMap<i64, Person> = persons.into_iter().map(|p| (p.id, p)).collect();
    let mut by_thread: HashMap<i64, Vec<MessageJson<'_>>> = HashMap::new();
    for m in &messages {
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
        next: (count > 100).then_some(NEXT),
        previous: None,
        results: &results,
    };
    Ok(serde_json::to_vec(&body).unwrap_or_default().len())
}

/// Every read workload, in the report's order.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "list_some + JSON",
            ours: list_some_ours,
            diesel: list_some_diesel,
        },
        Workload {
            name: "threads page + JSON (senders joined)",
            ours: threads_page_ours,
            diesel: threads_page_diesel,
        },
        Workload {
            name: "threads page + JSON (senders as a hop)",
            ours: threads_page_ours_sender_hop,
            diesel: threads_page_diesel_sender_hop,
        },
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
