//! Property: over random people, threads and messages (some soft-deleted), every way
//! of loading relations in a fixed number of queries returns exactly what per-row
//! loading returns, on both backends.

use std::cell::RefCell;
use std::sync::Arc;

use demo::models::{Message, NewMessage, NewPerson, NewThread, Person, Thread};
use demo::schema::{weave_message, weave_person, weave_thread};
use diesel::RunQueryDsl;
use orm::capture;
use orm::prelude::*;
use orm_tests::{at, on_both_backends};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Random rows: people and threads by their soft-delete flag; messages as
/// (sender index, thread index, deleted), indices taken modulo the counts.
#[derive(Debug, Clone)]
struct Data {
    people: Vec<bool>,
    threads: Vec<bool>,
    messages: Vec<(usize, usize, bool)>,
    per_parent: u32,
}

fn data() -> impl Strategy<Value = Data> {
    (
        prop::collection::vec(any::<bool>(), 1..5),
        prop::collection::vec(any::<bool>(), 1..5),
        prop::collection::vec((0..5usize, 0..5usize, any::<bool>()), 0..25),
        0..4u32,
    )
        .prop_map(|(people, threads, messages, per_parent)| Data {
            people,
            threads,
            messages,
            per_parent,
        })
}

/// Empties the tables and writes `data`; returns nothing, ids are read back.
fn load_data(conn: &mut AnyConnection, data: &Data) -> orm::Result<()> {
    orm::atomic(conn, |conn| {
        orm::with_inner!(&mut *conn, |c| {
            diesel::delete(weave_message::table).execute(c)?;
            diesel::delete(weave_thread::table).execute(c)?;
            diesel::delete(weave_person::table).execute(c)
        })?;
        for (i, deleted) in data.people.iter().enumerate() {
            let row = NewPerson {
                created: at(i as i64),
                updated: at(i as i64),
                deleted: *deleted,
                first_name: format!("P{i}"),
                last_name: String::new(),
                email_address: format!("p{i}@example.org"),
            };
            diesel::insert_into(weave_person::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        for (i, deleted) in data.threads.iter().enumerate() {
            let row = NewThread {
                created: at(i as i64),
                updated: at(i as i64),
                deleted: *deleted,
                title: format!("T{i}"),
            };
            diesel::insert_into(weave_thread::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        let people = ids_of(
            Person::objects()
                .with_deleted()
                .order_by(weave_person::id.asc())
                .all(conn)?,
        );
        let threads = ids_of(
            Thread::objects()
                .with_deleted()
                .order_by(weave_thread::id.asc())
                .all(conn)?,
        );
        for (i, (sender, thread, deleted)) in data.messages.iter().enumerate() {
            let row = NewMessage {
                created: at(i as i64),
                updated: at(i as i64),
                deleted: *deleted,
                text: format!("M{i}"),
                sent_by_id: people[sender % people.len()],
                thread_id: threads[thread % threads.len()],
            };
            diesel::insert_into(weave_message::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        Ok(())
    })
}

fn ids_of<M: Model<Key = i64>>(rows: Vec<M>) -> Vec<i64> {
    rows.iter().map(Model::pk).collect()
}

fn check(conn: &mut AnyConnection, data: &Data) -> Result<(), TestCaseError> {
    load_data(conn, data).map_err(|e| TestCaseError::fail(e.to_string()))?;

    // Live threads with their live messages and each message's sender: 2 queries.
    let (page, captured) = capture(|| {
        Thread::objects()
            .prefetch(Thread::messages().select_related(Message::sent_by))
            .all(conn)
            .unwrap()
    });
    // No live thread: no second query.
    prop_assert_eq!(captured.len(), 1 + usize::from(!page.is_empty()));
    let mut naive = Vec::new();
    for thread in Thread::objects().all(conn).unwrap() {
        let messages = Thread::messages()
            .all_for(&thread, conn)
            .unwrap()
            .into_iter()
            .map(|m| {
                let sender = Message::sent_by.get(&m, conn).unwrap();
                (m, sender)
            })
            .collect::<Vec<_>>();
        naive.push((thread, messages));
    }
    prop_assert_eq!(page, naive);

    // Everyone's first messages (deleted ones too, by id), then each one's thread:
    // one query per hop, the last one only when there are messages.
    let hop = Person::messages()
        .with_deleted()
        .order_by(weave_message::id.asc())
        .limit_per_parent(data.per_parent)
        .prefetch(Message::thread);
    let (page, captured) = capture(|| {
        Person::objects()
            .with_deleted()
            .prefetch(hop)
            .all(conn)
            .unwrap()
    });
    let any_message = page.iter().any(|(_, ms)| !ms.is_empty());
    prop_assert_eq!(captured.len(), 2 + usize::from(any_message));
    let mut naive = Vec::new();
    for person in Person::objects().with_deleted().all(conn).unwrap() {
        let messages = Person::messages()
            .with_deleted()
            .order_by(weave_message::id.asc())
            .all_for(&person, conn)
            .unwrap()
            .into_iter()
            .take(data.per_parent as usize)
            .map(|m| {
                let thread = Message::thread.get(&m, conn).unwrap();
                (m, Some(Arc::new(thread)))
            })
            .collect::<Vec<_>>();
        naive.push((person, messages));
    }
    prop_assert_eq!(page, naive);

    // Two foreign keys by JOIN: 1 query.
    let (rows, captured) = capture(|| {
        Message::objects()
            .select_related((Message::sent_by, Message::thread))
            .all(conn)
            .unwrap()
    });
    prop_assert_eq!(captured.len(), 1);
    let naive: Vec<_> = Message::objects()
        .all(conn)
        .unwrap()
        .into_iter()
        .map(|m| {
            let sender = Message::sent_by.get(&m, conn).unwrap();
            let thread = Message::thread.get(&m, conn).unwrap();
            (m, sender, thread)
        })
        .collect();
    prop_assert_eq!(rows, naive);

    // A forward hop with its own queryset: live threads only.
    let rows = Message::objects()
        .with_deleted()
        .prefetch(Message::thread.using(Thread::objects()))
        .all(conn)
        .unwrap();
    let mut shared: std::collections::HashMap<i64, Arc<Thread>> = Default::default();
    for (message, thread) in rows {
        let expected = Message::thread.get(&message, conn).unwrap();
        // The messages of one thread share one `Thread` (decoded once).
        if let Some(thread) = &thread {
            let first = shared
                .entry(thread.id)
                .or_insert_with(|| Arc::clone(thread));
            prop_assert!(Arc::ptr_eq(first, thread));
        }
        prop_assert_eq!(thread, (!expected.deleted).then(|| Arc::new(expected)));
    }
    Ok(())
}

on_both_backends! {
    fn prefetched_and_joined_rows_equal_per_row_loading_on_random_data(db) {
        let conn = RefCell::new(db.conn());
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&data(), |data| check(&mut conn.borrow_mut(), &data));
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}
