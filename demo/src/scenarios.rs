//! Every slide of the talk as a runnable before/after scenario.
//!
//! Each variant runs inside a capture scope, so its outcome carries the statements it
//! sent, the time they took on the database and the time the whole variant took.

use std::time::Instant;

use orm::prelude::*;
use serde::Serialize;

use crate::json::{full_name, PageJson, SenderText, ThreadJson};
use crate::models::{Message, Person, Thread};
use crate::schema::weave_message;

/// One run of one scenario variant.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The slide (`list_some`, `threads_page`, ...).
    pub scenario: &'static str,
    /// `before`, `after`, or the method's name.
    pub variant: &'static str,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Data statements sent (transaction statements and health checks not counted).
    pub queries: usize,
    /// Wall time of the variant, in milliseconds.
    pub ms: f64,
    /// Time the statements took on the database, in milliseconds.
    pub db_ms: f64,
    /// Rows the variant produced (objects serialised, rows counted, rows written).
    pub rows: u64,
    /// The main query's plan, summarised (scan kinds and index names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A computed value (a count or an estimate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// Whether `value` is exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact: Option<bool>,
    /// Anything else worth a line: N+1 groups, JSON size, an estimate's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A query shape repeated this many times from one call site is flagged as N+1.
pub const N_PLUS_ONE_THRESHOLD: usize = 10;

/// Runs `f` in a capture scope and measures it.
pub fn measure(
    conn: &mut AnyConnection,
    scenario: &'static str,
    variant: &'static str,
    f: impl FnOnce(&mut AnyConnection) -> orm::Result<u64>,
) -> orm::Result<Outcome> {
    let backend = conn.backend().to_string();
    let started = Instant::now();
    let (rows, captured) = orm::capture(|| f(conn));
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let rows = rows?;
    let note = captured.repeated(N_PLUS_ONE_THRESHOLD).first().map(|r| {
        let site = r
            .call_site
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "?".into());
        let fix = r.fix.as_ref().map(|f| format!(" (fix: {f})"));
        format!(
            "N+1: one shape sent {} times from {site}{}",
            r.count,
            fix.unwrap_or_default()
        )
    });
    Ok(Outcome {
        scenario,
        variant,
        backend,
        queries: captured.len(),
        ms,
        db_ms: captured.database_time().as_secs_f64() * 1e3,
        rows,
        plan: None,
        value: None,
        exact: None,
        note,
    })
}

/// Appends `extra` to an outcome's note.
fn add_note(outcome: &mut Outcome, extra: String) {
    outcome.note = Some(match outcome.note.take() {
        Some(n) => format!("{n}; {extra}"),
        None => extra,
    });
}

/// The sender of one message, loaded on its own: the lazy access the talk starts from.
pub fn sender_of(conn: &mut AnyConnection, message: &Message) -> orm::Result<Person> {
    Message::sent_by.get(message, conn)
}

/// `GET /api/messages/list_some/` as the talk wrote it first: 100 messages, then each
/// message's sender on its own (101 queries).
pub fn list_some_naive(conn: &mut AnyConnection) -> orm::Result<Vec<u8>> {
    let messages = Message::objects().limit(100).all(conn)?;
    let mut out = Vec::with_capacity(messages.len());
    for m in &messages {
        let sender = sender_of(conn, m)?;
        out.push(SenderText {
            sender: full_name(&sender),
            text: &m.text,
        });
    }
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}

/// The same with `select_related`: one query.
pub fn list_some(conn: &mut AnyConnection) -> orm::Result<Vec<u8>> {
    let rows = Message::objects()
        .select_related(Message::sent_by)
        .limit(100)
        .all(conn)?;
    let out: Vec<SenderText<'_>> = rows
        .iter()
        .map(|(m, p)| SenderText {
            sender: full_name(p),
            text: &m.text,
        })
        .collect();
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}

/// How the threads page loads its messages and their senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadsPage {
    /// Each thread's messages, then each message's sender, one query each.
    Naive,
    /// The messages prefetched; each sender still on its own.
    PrefetchMessages,
    /// Messages prefetched with their senders joined: a constant number of queries.
    PrefetchMessagesAndSenders,
}

/// The first page (100 threads) of `GET /api/threads/` with nested messages and
/// senders, serialised to DRF's page shape.
pub fn threads_page(conn: &mut AnyConnection, how: ThreadsPage) -> orm::Result<Vec<u8>> {
    let threads = Thread::objects().limit(100);
    let page: Vec<(Thread, Vec<(Message, Person)>)> = match how {
        ThreadsPage::Naive => {
            let mut page = Vec::new();
            for t in threads.all(conn)? {
                let messages = Thread::messages().all_for(&t, conn)?;
                let mut with_senders = Vec::with_capacity(messages.len());
                for m in messages {
                    let sender = sender_of(conn, &m)?;
                    with_senders.push((m, sender));
                }
                page.push((t, with_senders));
            }
            page
        }
        ThreadsPage::PrefetchMessages => {
            let mut page = Vec::new();
            for (t, messages) in threads.prefetch(Thread::messages()).all(conn)? {
                let mut with_senders = Vec::with_capacity(messages.len());
                for m in messages {
                    let sender = sender_of(conn, &m)?;
                    with_senders.push((m, sender));
                }
                page.push((t, with_senders));
            }
            page
        }
        ThreadsPage::PrefetchMessagesAndSenders => threads
            .prefetch(Thread::messages().select_related(Message::sent_by))
            .all(conn)?,
    };
    let count = Thread::objects().count(conn)?;
    let results: Vec<ThreadJson<'_>> = page.iter().map(|(t, m)| ThreadJson::new(t, m)).collect();
    let body = PageJson {
        count,
        next: (count > 100).then_some("/api/threads/?page=2"),
        previous: None,
        results: &results,
    };
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

/// Runs every scenario on `conn`, in the talk's order.
pub fn run_all(conn: &mut AnyConnection) -> orm::Result<Vec<Outcome>> {
    let mut out = Vec::new();

    // Example 1: the N+1 query problem (101 queries -> 1).
    for (variant, f) in [
        (
            "before",
            list_some_naive as fn(&mut AnyConnection) -> orm::Result<Vec<u8>>,
        ),
        ("after", list_some),
    ] {
        let mut bytes = 0;
        let mut o = measure(conn, "list_some", variant, |c| {
            let body = f(c)?;
            bytes = body.len();
            Ok(serde_json::from_slice::<Vec<serde_json::Value>>(&body)
                .map(|v| v.len() as u64)
                .unwrap_or(0))
        })?;
        add_note(&mut o, format!("{bytes} bytes of JSON"));
        out.push(o);
    }

    // Example 2: the threads page (10,000+ queries -> 3).
    for (variant, how) in [
        ("naive", ThreadsPage::Naive),
        ("prefetch messages", ThreadsPage::PrefetchMessages),
        (
            "prefetch messages+senders",
            ThreadsPage::PrefetchMessagesAndSenders,
        ),
    ] {
        let mut bytes = 0;
        let mut o = measure(conn, "threads_page", variant, |c| {
            let body = threads_page(c, how)?;
            bytes = body.len();
            Ok(100)
        })?;
        add_note(&mut o, format!("{bytes} bytes of JSON"));
        out.push(o);
    }

    // Periodic tasks: count instead of loading, exists instead of loading.
    let live = Message::objects();
    let mut o = measure(conn, "count_vs_len", "load all, then len()", |c| {
        Ok(live.all(c)?.len() as u64)
    })?;
    o.value = o.rows.try_into().ok();
    o.exact = Some(true);
    out.push(o);
    let mut o = measure(conn, "count_vs_len", "count()", |c| {
        Ok(live.count(c)?.max(0) as u64)
    })?;
    o.value = o.rows.try_into().ok();
    o.exact = Some(true);
    out.push(o);

    let about_plans = Message::objects().filter(weave_message::text.like("%plan%"));
    let mut o = measure(conn, "exists_vs_load", "load all, then is_empty()", |c| {
        Ok(u64::from(!about_plans.all(c)?.is_empty()))
    })?;
    o.value = Some(o.rows as i64);
    out.push(o);
    let mut o = measure(conn, "exists_vs_load", "exists()", |c| {
        Ok(u64::from(about_plans.exists(c)?))
    })?;
    o.value = Some(o.rows as i64);
    out.push(o);

    Ok(out)
}

/// The outcomes as a table like the slides'.
pub fn table(outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<28} {:>8} {:>10} {:>10} {:>8}  plan / value / note",
        "scenario", "variant", "queries", "ms", "db ms", "rows"
    );
    let _ = writeln!(s, "{}", "-".repeat(110));
    for o in outcomes {
        let mut tail = Vec::new();
        if let Some(p) = &o.plan {
            tail.push(p.clone());
        }
        if let Some(v) = o.value {
            tail.push(match o.exact {
                Some(false) => format!("~{v}"),
                _ => v.to_string(),
            });
        }
        if let Some(n) = &o.note {
            tail.push(n.clone());
        }
        let _ = writeln!(
            s,
            "{:<16} {:<28} {:>8} {:>10.1} {:>10.1} {:>8}  {}",
            o.scenario,
            o.variant,
            o.queries,
            o.ms,
            o.db_ms,
            o.rows,
            tail.join("; ")
        );
    }
    s
}
