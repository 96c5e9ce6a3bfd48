//! Every slide of the talk as a runnable before/after scenario.
//!
//! Each variant runs inside a capture scope, so its outcome carries the statements it
//! sent, the time they took on the database and the time the whole variant took.

use std::time::Instant;

use orm::prelude::*;
use serde::Serialize;

use crate::json::{full_name, PageJson, SenderText, ThreadJson};
use crate::models::{Message, NewMessage, Person, Thread};
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

/// The plan of list_some's main query: the page of messages, or the page joined to
/// the senders.
fn list_some_plan(conn: &mut AnyConnection, joined: bool) -> orm::Result<String> {
    use orm::explain::ExplainOptions;
    let page = Message::objects().limit(100);
    let plan = if joined {
        page.select_related(Message::sent_by)
            .explain(conn, ExplainOptions::new())?
    } else {
        page.explain(conn)?
    };
    Ok(plan.summary())
}

/// The plan of the threads page's main query (the page of threads).
fn threads_page_plan(conn: &mut AnyConnection) -> orm::Result<String> {
    Ok(Thread::objects().limit(100).explain(conn)?.summary())
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
        o.plan = Some(list_some_plan(conn, variant == "after")?);
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
        o.plan = Some(threads_page_plan(conn)?);
        out.push(o);
    }

    out.extend(index_slides(conn)?);
    out.extend(count_estimates(conn)?);

    out.extend(periodic_writes(conn)?);
    out.extend(streaming(conn)?);

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

/// Which indexes on `weave_message.deleted` a variant of the index slides keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeletedIndexes {
    /// No index that reads `deleted`: neither the `deleted` index nor a partial one.
    None,
    /// The plain `weave_message_deleted` index only (no partial index).
    Plain,
    /// Both, as migrated (the partial `soft_deletes_ignore` included).
    Both,
}

impl DeletedIndexes {
    /// The DDL that takes the database to this state, inside a transaction that is
    /// rolled back afterwards. The slide is about indexes, so it speaks SQL; the names
    /// are constants of the migration.
    fn ddl(self) -> &'static str {
        match self {
            // The partial indexes of live messages (their ordering, their thread) read
            // `deleted` too: a slide without an index on it drops them as well.
            DeletedIndexes::None => {
                "DROP INDEX soft_deletes_ignore; DROP INDEX weave_message_deleted; \
                 DROP INDEX weave_message_live_ordering; DROP INDEX weave_message_live_thread;"
            }
            DeletedIndexes::Plain => {
                "DROP INDEX soft_deletes_ignore; \
                 DROP INDEX weave_message_live_ordering; DROP INDEX weave_message_live_thread;"
            }
            DeletedIndexes::Both => "",
        }
    }
}

/// Examples 3 and 4, "covering and partial indexes" and "index scans": counting live
/// messages and listing deleted ones with no index on `deleted`, with the plain index,
/// and with the partial index, each with its plan. The indexes are dropped inside a
/// transaction that is rolled back, so the database keeps them.
pub fn index_slides(conn: &mut AnyConnection) -> orm::Result<Vec<Outcome>> {
    use diesel::connection::SimpleConnection;
    use orm::explain::ExplainOptions;

    let mut out = Vec::new();
    for (scenario, variant, indexes) in [
        ("count_live", "no index on deleted", DeletedIndexes::None),
        ("count_live", "deleted index", DeletedIndexes::Plain),
        ("count_live", "partial index", DeletedIndexes::Both),
        ("deleted_true", "no index on deleted", DeletedIndexes::None),
        ("deleted_true", "deleted index", DeletedIndexes::Plain),
    ] {
        let mut plan = None;
        let mut o = measure(conn, scenario, variant, |c| {
            rolled_back(c, |c| {
                if indexes != DeletedIndexes::Both {
                    c.batch_execute(indexes.ddl())?;
                }
                let (rows, p) = if scenario == "count_live" {
                    let qs = Message::objects();
                    let n = qs.count(c)?;
                    (n.max(0) as u64, qs.explain_count(c, ExplainOptions::new())?)
                } else {
                    let qs = Message::objects().only_deleted();
                    let n = qs.all(c)?.len() as u64;
                    (n, qs.explain_with(c, ExplainOptions::new())?)
                };
                plan = Some(p.summary());
                Ok(rows)
            })
        })?;
        // The statements of the variant: the DDL, the query and its EXPLAIN.
        o.plan = plan;
        o.value = o.rows.try_into().ok();
        o.exact = Some(true);
        out.push(o);
    }
    Ok(out)
}

/// The count strategies of the estimates slide (and of `demo bench`): name, strategy,
/// and whether it counts the whole table (table statistics cannot apply a filter: the
/// talk's `reltuples`, compared with the live count on purpose).
pub fn count_strategies() -> [(&'static str, orm::count::Count, bool); 7] {
    use orm::count::Count;
    use std::time::Duration;
    [
        ("exact", Count::Exact, false),
        (
            "table statistics (whole table)",
            Count::TableStatistics,
            true,
        ),
        ("planner estimate", Count::Planner, false),
        ("TABLESAMPLE BERNOULLI 10%", Count::bernoulli(10.0), false),
        ("TABLESAMPLE SYSTEM 10%", Count::system(10.0), false),
        (
            "exact within 50 ms, else planner",
            Count::ExactWithin(Duration::from_millis(50)).or(Count::Planner),
            false,
        ),
        ("at most 10,000", Count::AtMost(10_000), false),
    ]
}

/// "SELECT COUNT(*) Estimates": every count strategy on the live messages, each with
/// its error against the exact count. A strategy the backend cannot run (no
/// TABLESAMPLE or planner estimate on SQLite) is shown with the typed error it gives.
pub fn count_estimates(conn: &mut AnyConnection) -> orm::Result<Vec<Outcome>> {
    let live = Message::objects();
    let exact = live.count(conn)?;
    let strategies = count_strategies();
    let mut out = Vec::new();
    for (variant, strategy, whole_table) in strategies {
        let qs = if whole_table {
            live.clone().with_deleted()
        } else {
            live.clone()
        };
        let mut result = None;
        let mut o = measure(conn, "count_estimates", variant, |c| {
            match qs.count_with(c, &strategy) {
                Ok(r) => {
                    result = Some(Ok(r));
                    Ok(1)
                }
                Err(e) if e.is_unsupported() => {
                    result = Some(Err(e));
                    Ok(0)
                }
                Err(e) => Err(e),
            }
        })?;
        match result {
            Some(Ok(r)) => {
                o.value = Some(r.value);
                o.exact = Some(r.exact && !r.more);
                let error = if exact == 0 {
                    0.0
                } else {
                    (r.value - exact) as f64 / exact as f64 * 100.0
                };
                let mut note = if r.more {
                    format!("more than {} (exact {exact})", r.value)
                } else if r.exact {
                    "exact".to_owned()
                } else {
                    format!("{error:+.1}% vs exact {exact}")
                };
                if r.fell_back() {
                    note.push_str(&format!(", fell back: {:?}", r.fallbacks[0].reason));
                }
                add_note(&mut o, note);
            }
            Some(Err(e)) => add_note(&mut o, e.to_string()),
            None => {}
        }
        out.push(o);
    }
    Ok(out)
}

/// Runs `f` in a transaction that is rolled back whatever happens: the write
/// scenarios leave the dataset as they found it.
pub(crate) fn rolled_back(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> orm::Result<u64>,
) -> orm::Result<u64> {
    enum Undo {
        Done(u64),
        Failed(orm::Error),
    }
    impl From<orm::Error> for Undo {
        fn from(e: orm::Error) -> Self {
            Undo::Failed(e)
        }
    }
    match orm::atomic(conn, |c| -> Result<(), Undo> { Err(Undo::Done(f(c)?)) }) {
        Err(Undo::Done(n)) => Ok(n),
        Err(Undo::Failed(e)) => Err(e),
        Ok(()) => Ok(0),
    }
}

/// How many rows the write scenarios create and update.
pub const WRITE_ROWS: usize = 2_000;

/// `n` new messages from the first person in the first thread (none when the
/// database has no person or thread), all stamped now.
pub(crate) fn new_messages(conn: &mut AnyConnection, n: usize) -> orm::Result<Vec<NewMessage>> {
    let sender = Person::objects().with_deleted().first(conn)?;
    let thread = Thread::objects().with_deleted().first(conn)?;
    let (Some(sender), Some(thread)) = (sender, thread) else {
        return Ok(Vec::new());
    };
    let now = chrono::Utc::now().naive_utc();
    Ok((0..n)
        .map(|i| NewMessage {
            created: now,
            updated: now,
            deleted: false,
            text: format!("periodic task message {i}"),
            sent_by_id: sender.id,
            thread_id: thread.id,
        })
        .collect())
}

/// "Periodic tasks: do things in bulk": one statement per row against the bulk paths,
/// each inside a transaction that is rolled back afterwards.
pub fn periodic_writes(conn: &mut AnyConnection) -> orm::Result<Vec<Outcome>> {
    use orm::bulk::{BulkCreate, InsertMethod};
    let rows = new_messages(conn, WRITE_ROWS)?;
    let mut out = Vec::new();

    let one_by_one = rows.clone();
    out.push(measure(conn, "bulk_create", "create() per row", |c| {
        rolled_back(c, |c| {
            for row in one_by_one {
                Message::objects().create(c, row)?;
            }
            Ok(WRITE_ROWS as u64)
        })
    })?);
    let chunked = rows.clone();
    out.push(measure(
        conn,
        "bulk_create",
        "bulk_create (chunked INSERT)",
        |c| {
            rolled_back(c, |c| {
                Ok(Message::objects().bulk_create(c, chunked)?.len() as u64)
            })
        },
    )?);
    let copied = rows;
    let mut copy_error = None;
    let mut o = measure(conn, "bulk_create", "bulk_create (COPY)", |c| {
        let options = BulkCreate::new().method(InsertMethod::Copy);
        match rolled_back(c, |c| {
            Ok(Message::objects()
                .bulk_create_with(c, copied, &options)?
                .rows as u64)
        }) {
            Err(e) if e.is_unsupported() => {
                copy_error = Some(e.to_string());
                Ok(0)
            }
            other => other,
        }
    })?;
    if let Some(e) = copy_error {
        add_note(&mut o, e);
    }
    out.push(o);

    let targets: Vec<i64> = Message::objects()
        .limit(WRITE_ROWS as u32)
        .all(conn)?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let per_row = targets.clone();
    out.push(measure(conn, "bulk_update", "update() per row", |c| {
        rolled_back(c, |c| {
            let mut n = 0;
            for id in per_row {
                n += Message::objects()
                    .filter(weave_message::id.eq(id))
                    .update(c, weave_message::text.eq(format!("edited {id}")))?;
            }
            Ok(n as u64)
        })
    })?);
    let values: Vec<(i64, (String,))> = targets
        .iter()
        .map(|&id| (id, (format!("edited {id}"),)))
        .collect();
    out.push(measure(conn, "bulk_update", "bulk_update", |c| {
        rolled_back(c, |c| {
            Ok(Message::objects().bulk_update(c, (weave_message::text,), values)? as u64)
        })
    })?);
    Ok(out)
}

/// "Use iterators when looping over a large number of objects": every live message
/// loaded into one `Vec`, against a stream of 2,000-row chunks.
pub fn streaming(conn: &mut AnyConnection) -> orm::Result<Vec<Outcome>> {
    let live = Message::objects();
    let mut out = Vec::new();
    let mut o = measure(conn, "streaming", "all() into a Vec", |c| {
        let rows = live.all(c)?;
        Ok(rows.iter().filter(|m| m.text.len() > 40).count() as u64)
    })?;
    add_note(
        &mut o,
        "rows with text over 40 chars; memory grows with the table".into(),
    );
    out.push(o);
    let mut o = measure(conn, "streaming", "stream(2000)", |c| {
        let mut n = 0;
        for m in live.stream(c, 2_000)? {
            n += u64::from(m?.text.len() > 40);
        }
        Ok(n)
    })?;
    add_note(&mut o, "same rows; memory bounded by the chunk".into());
    out.push(o);
    Ok(out)
}

/// The outcomes as a table like the slides'.
pub fn table(outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<34} {:>8} {:>10} {:>10} {:>8}  plan / value / note",
        "scenario", "variant", "queries", "ms", "db ms", "rows"
    );
    let _ = writeln!(s, "{}", "-".repeat(116));
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
            "{:<16} {:<34} {:>8} {:>10.1} {:>10.1} {:>8}  {}",
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
