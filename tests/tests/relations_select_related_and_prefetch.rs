//! select_related of several keys, chains and nullable keys (LEFT JOIN); forward,
//! nested and per-parent-limited prefetch; lazy access and the fix the N+1 detector
//! names. Every test asserts its query count and compares with per-row loading.
//!
//! A pin (a test-only table) points at a message (`NOT NULL`) and, maybe, at the
//! person who pinned it (nullable): the demo schema has no nullable foreign key.

use demo::models::{Message, Person, Thread};
use demo::schema::{weave_message, weave_person, weave_thread};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use orm::capture;
use orm::instrument::{detect_n_plus_one, NPlusOneMode};
use orm::prelude::*;
use orm::relations::Reverse;
use orm_tests::{on_all_backends, seed};

diesel::table! {
    weave_pin (id) {
        id -> BigInt,
        message_id -> BigInt,
        pinned_by_id -> Nullable<BigInt>,
        note -> Text,
    }
}

#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = weave_pin)]
struct Pin {
    id: i64,
    message_id: i64,
    pinned_by_id: Option<i64>,
    note: String,
}

orm::model! { Pin => weave_pin { primary_key: id, ordering: weave_pin::id.asc() } }

orm::relation! {
    Pin.message -> Message (weave_pin::message_id);
    Pin.pinned_by -> Option<Person> (weave_pin::pinned_by_id);
}

/// `Message::pins()` if `Message` were ours: the reverse hop built by hand.
fn message_pins() -> Reverse<Message, Pin> {
    Reverse::new("pins", Pin::message)
}

/// (id, message, pinned by): pin 2 has no one, pin 3 is Grace's (soft-deleted), pin
/// 6 pins deleted message 7, message 1 has three pins.
const PINS: [(i64, i64, Option<i64>); 7] = [
    (1, 1, Some(2)),
    (2, 1, None),
    (3, 3, Some(3)),
    (4, 5, Some(1)),
    (5, 8, Some(2)),
    (6, 7, Some(1)),
    (7, 1, Some(1)),
];

/// The fixture plus the pin table and its rows.
fn seed_pins(db: &orm_tests::TestDb, conn: &mut AnyConnection) {
    seed(conn);
    let ddl = match db.backend() {
        Backend::Sqlite => "CREATE TABLE weave_pin (id INTEGER PRIMARY KEY, message_id BIGINT NOT NULL REFERENCES weave_message (id), pinned_by_id BIGINT REFERENCES weave_person (id), note TEXT NOT NULL)",
        Backend::Postgres => "CREATE TABLE weave_pin (id BIGINT PRIMARY KEY, message_id BIGINT NOT NULL REFERENCES weave_message (id), pinned_by_id BIGINT REFERENCES weave_person (id), note TEXT NOT NULL)",
    };
    conn.batch_execute(ddl).expect("create weave_pin");
    for (id, message_id, pinned_by_id) in PINS {
        let row = Pin {
            id,
            message_id,
            pinned_by_id,
            note: format!("pin {id}"),
        };
        diesel::insert_into(weave_pin::table)
            .values(&row)
            .execute(&mut *conn)
            .expect("insert pin");
    }
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    rows.iter().map(id).collect()
}

on_all_backends! {
    fn a_hop_ordered_in_rust_on_postgresql_matches_the_sql_order(db) {
        let conn = &mut db.conn();
        seed(conn);
        // 60 more messages over three threads, many sharing an `updated` value (ties
        // broken by id), some deleted, microseconds apart.
        let rows: Vec<demo::models::NewMessage> = (0..60)
            .map(|i: i64| demo::models::NewMessage {
                created: orm_tests::at(0),
                updated: orm_tests::at(i % 7) + chrono::TimeDelta::microseconds(i % 3),
                deleted: i % 5 == 0,
                text: format!("reply {}", (i * 37) % 11),
                sent_by_id: 1 + i % 3,
                thread_id: 1 + i % 3,
            })
            .collect();
        Message::objects().bulk_create_with(conn, rows, &orm::bulk::BulkCreate::new().keep_timestamps()).unwrap();
        let mut check = |name: &str, hop: Reverse<Thread, Message>, expected_qs: &dyn Fn(i64) -> orm::QuerySet<Message>, exact: bool| {
            let (threads, captured) = capture(|| Thread::objects().with_deleted().prefetch(hop.clone()).all(conn));
            let threads = threads.unwrap();
            let sent = captured.all()[1].sql.clone();
            let in_rust = db.backend() == Backend::Postgres && exact;
            assert_eq!(!sent.contains("ORDER BY"), in_rust, "{name}: {sent}");
            for (thread, messages) in &threads {
                let expected = expected_qs(thread.id).all(conn).unwrap();
                assert_eq!(ids(messages, |m| m.id), ids(&expected, |m| m.id), "{name}, thread {}", thread.id);
                assert_eq!(ids(&hop.all_for(thread, conn).unwrap(), |m| m.id), ids(&expected, |m| m.id), "{name}: all_for");
            }
        };
        macro_rules! ordering {
            ($name:expr, $order:expr, $exact:expr) => {
                check(
                    $name,
                    Thread::messages().with_deleted().order_by($order),
                    &|thread: i64| Message::objects().with_deleted().filter(weave_message::thread_id.eq(thread)).order_by($order),
                    $exact,
                )
            };
        }
        ordering!("updated DESC, id DESC", (weave_message::updated.desc(), weave_message::id.desc()), true);
        ordering!("updated ASC, id DESC", (weave_message::updated.asc(), weave_message::id.desc()), true);
        ordering!("sent_by_id DESC, updated, id", (weave_message::sent_by_id.desc(), weave_message::updated.asc(), weave_message::id.asc()), true);
        // Not ordered in Rust: text (the database's collation decides), and a column
        // `model!` does not list in `cursor_columns`.
        ordering!("text, id", (weave_message::text.asc(), weave_message::id.asc()), false);
        ordering!("deleted, updated DESC, id DESC", (weave_message::deleted.asc(), weave_message::updated.desc(), weave_message::id.desc()), false);
    }

    fn select_related_loads_two_foreign_keys_in_one_query(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (rows, captured) = capture(|| {
            Message::objects().select_related((Message::sent_by, Message::thread)).all(conn)
        });
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 1, "{captured}");
        assert_eq!(ids(&rows, |(m, _, _)| m.id), [9, 8, 6, 5, 3, 2, 1]);

        // The same rows, loaded one by one.
        let (naive, naive_captured) = capture(|| {
            Message::objects()
                .all(conn)
                .unwrap()
                .into_iter()
                .map(|m| {
                    let sender = Message::sent_by.get(&m, conn).unwrap();
                    let thread = Message::thread.get(&m, conn).unwrap();
                    (m, sender, thread)
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(rows, naive);
        assert_eq!(naive_captured.len(), 1 + 2 * 7);

        // Related rows are returned soft-deleted or not: message 5 is Grace's, message
        // 9 lives in the deleted thread 3.
        let (_, grace, _) = rows.iter().find(|(m, _, _)| m.id == 5).unwrap();
        assert!(grace.deleted && grace.first_name == "Grace");
        let (_, _, deleted_thread) = rows.iter().find(|(m, _, _)| m.id == 9).unwrap();
        assert!(deleted_thread.deleted && deleted_thread.title == "Deleted");
    }

    fn select_related_follows_a_chain_and_left_joins_a_nullable_key(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let qs = Pin::objects().select_related((Pin::pinned_by, Pin::message.then(Message::thread)));
        let (rows, captured) = capture(|| qs.all(conn));
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 1, "{captured}");
        let sql = &captured.all()[0].sql;
        assert!((sql.contains(" INNER JOIN ") || sql.contains(" CROSS JOIN ")) && sql.contains(" LEFT JOIN "), "{sql}");
        let got: Vec<(i64, i64, i64, Option<i64>)> = rows
            .iter()
            .map(|(pin, person, (message, thread))| (pin.id, message.id, thread.id, person.as_ref().map(|p| p.id)))
            .collect();
        assert_eq!(
            got,
            [
                (1, 1, 1, Some(2)),
                (2, 1, 1, None),
                (3, 3, 2, Some(3)),
                (4, 5, 2, Some(1)),
                (5, 8, 1, Some(2)),
                (6, 7, 1, Some(1)),
                (7, 1, 1, Some(1)),
            ]
        );
        // A deleted message (7) and a deleted person (Grace, pin 3) still come back.
        assert!(rows[5].2 .0.deleted);
        assert!(rows[2].1.as_ref().unwrap().deleted);
        for (pin, person, (message, thread)) in &rows {
            assert_eq!(pin.message_id, message.id);
            assert_eq!(message.thread_id, thread.id);
            assert_eq!(pin.pinned_by_id, person.as_ref().map(|p| p.id));
        }
        // Filters and slices apply to the pins.
        let sliced = Pin::objects()
            .filter(weave_pin::message_id.eq(1))
            .select_related(Pin::pinned_by)
            .offset(1)
            .limit(2)
            .all(conn)
            .unwrap();
        assert_eq!(ids(&sliced, |(p, _)| p.id), [2, 7]);
        assert!(sliced[0].1.is_none());
    }

    fn a_chain_may_come_first_in_a_select_related_tuple(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let (rows, captured) = capture(|| {
            Pin::objects().select_related((Pin::message.then(Message::thread), Pin::pinned_by)).all(conn)
        });
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 1);
        let got: Vec<(i64, i64, i64, Option<i64>)> = rows
            .iter()
            .map(|(pin, (message, thread), person)| (pin.id, message.id, thread.id, person.as_ref().map(|p| p.id)))
            .collect();
        let last = Pin::objects().select_related((Pin::pinned_by, Pin::message.then(Message::thread))).all(conn).unwrap();
        let expected: Vec<(i64, i64, i64, Option<i64>)> = last
            .iter()
            .map(|(pin, person, (message, thread))| (pin.id, message.id, thread.id, person.as_ref().map(|p| p.id)))
            .collect();
        assert_eq!(got, expected);
    }

    fn select_related_reaching_a_table_twice_is_a_typed_error(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let qs = Pin::objects().select_related((Pin::pinned_by, Pin::message.then(Message::sent_by)));
        let (result, captured) = capture(|| qs.all(conn));
        match result {
            Err(orm::Error::TableJoinedTwice { model }) => assert_eq!(model, "Person"),
            other => panic!("expected TableJoinedTwice, got {other:?}"),
        }
        assert_eq!(captured.len(), 0, "nothing sent");
        assert!(qs.sql(db.backend()).is_err());
    }

    fn forward_prefetch_sends_one_query_with_deduplicated_keys(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (rows, captured) = capture(|| Message::objects().prefetch(Message::sent_by).all(conn));
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 2, "{captured}");
        // Seven messages, three distinct senders, one bound value.
        let binds = &captured.all()[1].binds;
        assert_eq!(binds.len(), 1, "{binds:?}");
        assert!(binds[0].contains('1') && binds[0].contains('2') && binds[0].contains('3'));
        assert_eq!(rows.len(), 7);
        for (message, sender) in &rows {
            assert_eq!(sender.as_ref().map(|p| p.id), Some(message.sent_by_id));
        }
        let grace = rows.iter().find(|(m, _)| m.id == 5).unwrap().1.as_ref().unwrap();
        assert!(grace.deleted, "a forward prefetch returns soft-deleted parents by default");

        // With a queryset of its own: live people only, so Grace's messages get None.
        let live = Message::objects().prefetch(Message::sent_by.using(Person::objects())).all(conn).unwrap();
        let missing: Vec<i64> = live.iter().filter(|(_, p)| p.is_none()).map(|(m, _)| m.id).collect();
        assert_eq!(missing, [6, 5]);
    }

    fn forward_prefetch_of_a_nullable_key_gives_none_and_skips_empty_key_sets(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let (rows, captured) = capture(|| Pin::objects().prefetch(Pin::pinned_by).all(conn));
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 2);
        let got: Vec<(i64, Option<i64>)> = rows.iter().map(|(p, person)| (p.id, person.as_ref().map(|x| x.id))).collect();
        let expected: Vec<(i64, Option<i64>)> = PINS.iter().map(|(id, _, by)| (*id, *by)).collect();
        assert_eq!(got, expected);

        // Only NULL keys: nothing to fetch, no second query.
        let (rows, captured) = capture(|| {
            Pin::objects().filter(weave_pin::pinned_by_id.is_null()).prefetch(Pin::pinned_by).all(conn)
        });
        assert_eq!(rows.unwrap().len(), 1);
        assert_eq!(captured.len(), 1);
    }

    fn nested_prefetch_takes_one_query_per_hop_and_equals_lazy_loading(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let hop = Thread::messages()
            .with_deleted()
            .order_by(weave_message::id.asc())
            .prefetch(message_pins().prefetch(Pin::pinned_by));
        let (page, captured) = capture(|| Thread::objects().with_deleted().prefetch(hop.clone()).all(conn));
        let page = page.unwrap();
        assert_eq!(captured.len(), 4, "threads, messages, pins, people: {captured}");

        type Flat = Vec<(i64, Vec<(i64, Vec<(i64, Option<String>)>)>)>;
        let flat: Flat = page
            .iter()
            .map(|(t, ms)| {
                (t.id, ms.iter().map(|(m, pins)| {
                    (m.id, pins.iter().map(|(p, by)| (p.id, by.as_ref().map(|x| x.first_name.clone()))).collect())
                }).collect())
            })
            .collect();
        let (naive, naive_captured) = capture(|| {
            let mut out: Flat = Vec::new();
            for t in Thread::objects().with_deleted().all(conn).unwrap() {
                let mut ms = Vec::new();
                for m in hop_messages(&t, conn) {
                    let pins = message_pins()
                        .all_for(&m, conn)
                        .unwrap()
                        .into_iter()
                        .map(|p| {
                            let by = Pin::pinned_by.get(&p, conn).unwrap().map(|x| x.first_name);
                            (p.id, by)
                        })
                        .collect();
                    ms.push((m.id, pins));
                }
                out.push((t.id, ms));
            }
            out
        });
        assert_eq!(flat, naive);
        // Per row: 1 for the threads, 3 for their messages, 10 for the pins of the ten
        // messages, 6 for the pins that have a person.
        assert_eq!(naive_captured.len(), 1 + 3 + 10 + 6);
        // Message 1 has three pins in key order, one without a person.
        let engines = &flat.iter().find(|(t, _)| *t == 1).unwrap().1;
        assert_eq!(engines[0], (1, vec![(1, Some("Alan".into())), (2, None), (7, Some("Ada".into()))]));
        // A message without pins gets an empty Vec; the deleted thread's messages come too.
        assert!(engines.iter().any(|(m, pins)| *m == 2 && pins.is_empty()));
        assert_eq!(flat.iter().find(|(t, _)| *t == 3).unwrap().1.len(), 2);
    }

    fn a_hop_keeps_only_the_first_rows_of_each_parent(db) {
        let conn = &mut db.conn();
        seed(conn);
        let hop = Thread::messages().with_deleted().order_by(weave_message::id.asc()).limit_per_parent(2);
        let (page, captured) = capture(|| Thread::objects().with_deleted().prefetch(hop).all(conn));
        assert_eq!(captured.len(), 2);
        let got: Vec<(i64, Vec<i64>)> = page.unwrap().iter().map(|(t, ms)| (t.id, ids(ms, |m| m.id))).collect();
        assert_eq!(got, [(3, vec![9, 10]), (2, vec![3, 4]), (1, vec![1, 2])]);

        // With the default ordering (latest first), live rows only, and a JOIN per row.
        let hop = Thread::messages().limit_per_parent(1).select_related(Message::sent_by);
        let (page, captured) = capture(|| Thread::objects().prefetch(hop).all(conn));
        assert_eq!(captured.len(), 2);
        let got: Vec<(i64, Vec<(i64, String)>)> = page
            .unwrap()
            .iter()
            .map(|(t, ms)| (t.id, ms.iter().map(|(m, p)| (m.id, p.first_name.clone())).collect()))
            .collect();
        assert_eq!(got, [(2, vec![(5, "Grace".to_owned())]), (1, vec![(8, "Ada".to_owned())])]);

        let none = Thread::objects().prefetch(Thread::messages().limit_per_parent(0)).all(conn).unwrap();
        assert!(none.iter().all(|(_, ms)| ms.is_empty()));
    }

    fn two_hops_from_the_same_parents_take_one_query_each(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let (rows, captured) = capture(|| {
            Message::objects()
                .with_deleted()
                .prefetch(message_pins())
                .prefetch(Message::sent_by)
                .prefetch(Message::thread)
                .all(conn)
        });
        let rows = rows.unwrap();
        assert_eq!(captured.len(), 4, "messages, pins, senders, threads: {captured}");
        assert_eq!(rows.len(), 10);
        for (message, ((pins, sender), thread)) in &rows {
            let expected: Vec<i64> = PINS.iter().filter(|p| p.1 == message.id).map(|p| p.0).collect();
            assert_eq!(ids(pins, |p| p.id), expected);
            assert_eq!(sender.as_ref().unwrap().id, message.sent_by_id);
            assert_eq!(thread.as_ref().unwrap().id, message.thread_id);
        }
    }

    fn a_reverse_hop_over_a_nullable_key_skips_rows_without_a_parent(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let pinned = Reverse::new("pins", Pin::pinned_by);
        let (people, captured) = capture(|| {
            Person::objects().with_deleted().order_by(weave_person::id.asc()).prefetch(pinned.clone()).all(conn)
        });
        assert_eq!(captured.len(), 2);
        let got: Vec<(i64, Vec<i64>)> = people.unwrap().iter().map(|(p, pins)| (p.id, ids(pins, |x| x.id))).collect();
        assert_eq!(got, [(1, vec![4, 6, 7]), (2, vec![1, 5]), (3, vec![3])]);
        let ada = Person::objects().filter(weave_person::id.eq(1)).get(conn).unwrap();
        assert_eq!(ids(&pinned.all_for(&ada, conn).unwrap(), |p| p.id), [4, 6, 7]);
    }

    fn lazy_access_costs_one_query_and_the_detector_names_the_fix(db) {
        let conn = &mut db.conn();
        seed_pins(&db, conn);
        let message = Message::objects().filter(weave_message::id.eq(5)).get(conn).unwrap();
        let (sender, captured) = capture(|| Message::sent_by.get(&message, conn));
        assert_eq!(sender.unwrap().first_name, "Grace");
        assert_eq!(captured.len(), 1);

        let unpinned = Pin::objects().filter(weave_pin::id.eq(2)).get(conn).unwrap();
        let (nobody, captured) = capture(|| Pin::pinned_by.get(&unpinned, conn));
        assert_eq!(nobody.unwrap(), None);
        assert_eq!(captured.len(), 0, "a NULL key needs no query");

        let senders = detect_n_plus_one(3, NPlusOneMode::Strict, || {
            for m in Message::objects().all(conn).unwrap() {
                Message::sent_by.get(&m, conn).unwrap();
            }
        });
        let report = match senders {
            Err(orm::Error::NPlusOne(report)) => report,
            other => panic!("expected an n+1 report, got {other:?}"),
        };
        assert_eq!(report.repeated.len(), 1, "{report}");
        assert_eq!(report.repeated[0].count, 7);
        assert_eq!(report.repeated[0].fix.as_deref(), Some("select_related `Message::sent_by`"));
        assert!(report.to_string().contains("(fix: select_related `Message::sent_by`)"), "{report}");

        let messages = detect_n_plus_one(3, NPlusOneMode::Strict, || {
            for t in Thread::objects().with_deleted().all(conn).unwrap() {
                Thread::messages().all_for(&t, conn).unwrap();
            }
        });
        let report = match messages {
            Err(orm::Error::NPlusOne(report)) => report,
            other => panic!("expected an n+1 report, got {other:?}"),
        };
        assert_eq!(report.repeated[0].count, 3);
        assert_eq!(report.repeated[0].fix.as_deref(), Some("prefetch `Thread::messages`"));

        // One lookup, and prefetches (of rows or of nothing), are never reported.
        let quiet = detect_n_plus_one(2, NPlusOneMode::Strict, || {
            Message::sent_by.get(&message, conn).unwrap();
            Thread::objects().prefetch(Thread::messages().prefetch(message_pins())).all(conn).unwrap();
            Thread::objects().filter(weave_thread::id.eq(-1)).prefetch(Thread::messages()).all(conn).unwrap();
            Pin::objects().filter(weave_pin::pinned_by_id.is_null()).prefetch(Pin::pinned_by).all(conn).unwrap();
        });
        assert!(quiet.is_ok(), "{:?}", quiet.err().map(|e| e.to_string()));
    }
}

/// A thread's messages as the nested hop sees them (deleted included, by id).
fn hop_messages(thread: &Thread, conn: &mut AnyConnection) -> Vec<Message> {
    Thread::messages()
        .with_deleted()
        .order_by(weave_message::id.asc())
        .all_for(thread, conn)
        .unwrap()
}
