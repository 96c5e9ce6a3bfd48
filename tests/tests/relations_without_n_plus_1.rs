//! select_related and prefetch: the talk's N+1 shapes loaded in a fixed number of
//! queries, with the same results as naive per-row loading.

use demo::models::{Message, NewMessage, NewPerson, NewThread, Person, Thread};
use demo::schema::{weave_message, weave_person, weave_thread};
use diesel::RunQueryDsl;
use orm::capture;
use orm::instrument::{detect_n_plus_one, NPlusOneMode};
use orm::prelude::*;
use orm_tests::{at, on_all_backends, seed};

/// 100 threads, 20 people and 1,000 messages (every 7th deleted) spread over them.
fn seed_many(conn: &mut AnyConnection) {
    orm::atomic(conn, |conn| {
        for p in 0..20 {
            let row = NewPerson {
                created: at(p),
                updated: at(p),
                deleted: p % 5 == 4,
                first_name: format!("First{p}"),
                last_name: format!("Last{p}"),
                email_address: format!("p{p}@example.org"),
            };
            diesel::insert_into(weave_person::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        for t in 0..100 {
            let row = NewThread {
                created: at(t),
                updated: at(t),
                deleted: false,
                title: format!("Thread {t}"),
            };
            diesel::insert_into(weave_thread::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        for m in 0..1_000i64 {
            let row = NewMessage {
                created: at(m),
                updated: at(m),
                deleted: m % 7 == 0,
                text: format!("message {m}"),
                sent_by_id: 1 + (m * 7) % 20,
                // Thread 100 gets no messages.
                thread_id: 1 + (m * 13) % 99,
            };
            diesel::insert_into(weave_message::table)
                .values(&row)
                .execute(&mut *conn)?;
        }
        Ok::<_, orm::Error>(())
    })
    .expect("seed");
}

type Page = Vec<(i64, Vec<(i64, String)>)>;

fn naive_threads_page(conn: &mut AnyConnection) -> Page {
    let mut page = Vec::new();
    for thread in Thread::objects().all(conn).unwrap() {
        let mut messages = Vec::new();
        for m in Message::objects()
            .filter(weave_message::thread_id.eq(thread.id))
            .all(conn)
            .unwrap()
        {
            let sender = Person::objects()
                .with_deleted()
                .filter(weave_person::id.eq(m.sent_by_id))
                .get(conn)
                .unwrap();
            messages.push((m.id, sender.full_name()));
        }
        page.push((thread.id, messages));
    }
    page
}

on_all_backends! {
    fn select_related_loads_senders_in_the_same_query(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (pairs, captured) = capture(|| Message::objects().select_related(Message::sent_by).all(conn));
        let pairs = pairs.unwrap();
        assert_eq!(captured.len(), 1);
        assert_eq!(pairs.len(), 7);
        for (message, sender) in &pairs {
            assert_eq!(message.sent_by_id, sender.id);
        }
        // Message 5's sender (Grace) is soft-deleted; the live message still has her.
        let (_, grace) = pairs.iter().find(|(m, _)| m.id == 5).expect("message 5");
        assert!(grace.deleted);
        assert_eq!(grace.first_name, "Grace");
    }

    fn select_related_keeps_filters_ordering_and_slices(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pairs = Message::objects()
            .filter(weave_message::thread_id.eq(1))
            .select_related(Message::thread)
            .limit(2)
            .all(conn)
            .unwrap();
        let ids: Vec<i64> = pairs.iter().map(|(m, _)| m.id).collect();
        assert_eq!(ids, vec![8, 6]);
        assert!(pairs.iter().all(|(_, t)| t.title == "Engines"));
    }

    fn prefetch_issues_one_query_per_relation_hop(db) {
        let conn = &mut db.conn();
        seed_many(conn);
        let (page, captured) = capture(|| {
            Thread::objects()
                .prefetch(Thread::messages().select_related(Message::sent_by))
                .all(conn)
        });
        let page = page.unwrap();
        assert_eq!(captured.len(), 2, "{captured}");
        assert_eq!(page.len(), 100);
        let flattened: Page = page
            .iter()
            .map(|(t, ms)| (t.id, ms.iter().map(|(m, p)| (m.id, p.full_name())).collect()))
            .collect();
        let (naive, naive_captured) = capture(|| naive_threads_page(conn));
        assert_eq!(flattened, naive, "prefetched equals per-row loading");
        assert!(naive_captured.len() > 900, "the naive page is the N+1 shape: {}", naive_captured.len());
    }

    fn prefetch_gives_parents_without_children_an_empty_vec(db) {
        let conn = &mut db.conn();
        seed_many(conn);
        let page = Thread::objects().prefetch(Thread::messages()).all(conn).unwrap();
        let empty = page.iter().find(|(t, _)| t.id == 100).expect("thread 100");
        assert!(empty.1.is_empty());
        assert!(page.iter().filter(|(t, _)| t.id != 100).all(|(_, ms)| !ms.is_empty()));
    }

    fn prefetch_hops_carry_their_own_filters_and_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        let page = Thread::objects()
            .prefetch(Thread::messages().with_deleted().order_by(weave_message::id.asc()).exclude(weave_message::sent_by_id.eq(3)))
            .all(conn)
            .unwrap();
        let engines = page.iter().find(|(t, _)| t.title == "Engines").expect("Engines");
        let ids: Vec<i64> = engines.1.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 2, 7, 8], "deleted message 7 included, Grace's 6 excluded, ascending");
    }

    fn prefetch_of_no_parents_sends_one_query(db) {
        let conn = &mut db.conn();
        let (page, captured) = capture(|| Thread::objects().prefetch(Thread::messages()).all(conn));
        assert!(page.unwrap().is_empty());
        assert_eq!(captured.len(), 1);
    }

    fn prefetch_of_70000_parents_stays_under_the_bind_limit(db) {
        let conn = &mut db.conn();
        seed(conn);
        // 70,000 persons in one statement per backend-sized chunk, through diesel.
        let rows: Vec<NewPerson> = (0..70_000)
            .map(|i| NewPerson {
                created: at(0),
                updated: at(0),
                deleted: false,
                first_name: "Bulk".into(),
                last_name: format!("{i}"),
                email_address: format!("bulk{i}@example.org"),
            })
            .collect();
        orm::atomic(conn, |conn| {
            for chunk in rows.chunks(4_000) {
                match conn {
                    AnyConnection::Postgresql(c) => diesel::insert_into(weave_person::table).values(chunk).execute(c)?,
                    AnyConnection::Sqlite(_) => {
                        let mut n = 0;
                        for row in chunk {
                            n += diesel::insert_into(weave_person::table).values(row).execute(&mut *conn)?;
                        }
                        n
                    }
                };
            }
            Ok::<_, orm::Error>(())
        })
        .unwrap();
        let (page, captured) = capture(|| Person::objects().prefetch(Person::messages()).all(conn));
        let page = page.unwrap();
        assert_eq!(page.len(), 70_002);
        // One statement for all 70,002 keys: an array bind on PostgreSQL, a JSON list
        // on SQLite (its bind limit is 32,766).
        assert_eq!(captured.len(), 2, "{captured}");
        assert_eq!(captured.all()[1].binds.len(), 1);
        let with_messages: usize = page.iter().map(|(_, ms)| ms.len()).sum();
        assert_eq!(with_messages, 5, "the live messages of Ada (1, 8, 9) and Alan (2, 3)");
    }

    fn the_detector_fires_on_the_naive_page_and_not_on_the_prefetched_one(db) {
        let conn = &mut db.conn();
        seed_many(conn);
        let naive = detect_n_plus_one(5, NPlusOneMode::Strict, || naive_threads_page(conn));
        let report = match naive {
            Err(orm::Error::NPlusOne(report)) => report,
            other => panic!("expected an n+1 report, got {:?}", other.map(|p| p.len())),
        };
        assert_eq!(report.repeated.len(), 2, "{report}");
        assert_eq!(report.repeated[0].count, 857, "one sender lookup per live message");
        assert_eq!(report.repeated[1].count, 100, "one message query per thread");
        let site = report.repeated[1].call_site.expect("call site");
        assert!(site.file().ends_with("relations_without_n_plus_1.rs"));

        let prefetched = detect_n_plus_one(5, NPlusOneMode::Strict, || {
            Thread::objects().prefetch(Thread::messages().select_related(Message::sent_by)).all(conn)
        });
        assert_eq!(prefetched.expect("no n+1").expect("loaded").len(), 100);
    }

    fn the_detector_ignores_single_lookups_and_empty_prefetches(db) {
        let conn = &mut db.conn();
        seed(conn);
        let quiet = detect_n_plus_one(2, NPlusOneMode::Strict, || {
            Person::objects().filter(weave_person::id.eq(1)).get(conn).unwrap();
            Thread::objects().filter(weave_thread::id.eq(-1)).prefetch(Thread::messages()).all(conn).unwrap()
        });
        assert!(quiet.expect("no n+1").is_empty());
        let off = detect_n_plus_one(2, NPlusOneMode::Off, || naive_threads_page(conn));
        assert!(off.is_ok());
        let warn = detect_n_plus_one(2, NPlusOneMode::Warn, || naive_threads_page(conn));
        assert!(warn.is_ok());
    }
}

on_all_backends! {
    fn the_demo_naive_scenarios_are_reported_with_their_fix(db) {
        let conn = &mut db.conn();
        seed(conn);
        let naive = detect_n_plus_one(5, NPlusOneMode::Strict, || demo::scenarios::list_some_naive(conn));
        let report = match naive {
            Err(orm::Error::NPlusOne(report)) => report,
            other => panic!("expected an n+1 report, got {:?}", other.map(|b| b.map(|b| b.len()))),
        };
        assert_eq!(report.repeated.len(), 1, "{report}");
        assert_eq!(report.repeated[0].count, 7, "one sender per live message");
        assert_eq!(report.repeated[0].fix.as_deref(), Some("select_related `Message::sent_by`"));

        // Two live threads: their messages one thread at a time, then the six live
        // messages' senders one at a time.
        let page = detect_n_plus_one(2, NPlusOneMode::Strict, || {
            demo::scenarios::threads_page(conn, demo::scenarios::ThreadsPage::Naive)
        });
        let report = match page {
            Err(orm::Error::NPlusOne(report)) => report,
            other => panic!("expected an n+1 report, got {:?}", other.map(|b| b.map(|b| b.len()))),
        };
        let found: Vec<(usize, Option<&str>)> =
            report.repeated.iter().map(|r| (r.count, r.fix.as_deref())).collect();
        assert_eq!(
            found,
            [(6, Some("select_related `Message::sent_by`")), (2, Some("prefetch `Thread::messages`"))],
            "{report}"
        );

        let quiet = detect_n_plus_one(2, NPlusOneMode::Strict, || {
            demo::scenarios::threads_page(conn, demo::scenarios::ThreadsPage::PrefetchMessagesAndSenders)
        });
        assert!(quiet.is_ok());
    }
}

on_all_backends! {
    fn a_sliced_select_related_joins_only_the_slice_and_equals_per_row_loading(db) {
        let conn = &mut db.conn();
        seed_many(conn);
        for (offset, limit) in [(0u64, 100u32), (0, 7), (13, 25), (990, 50)] {
            let qs = Message::objects()
                .filter(weave_message::text.like("%1%"))
                .offset(offset)
                .limit(limit);
            let joined = qs.clone().select_related(Message::sent_by);
            let (rows, captured) = capture(|| joined.all(conn));
            let rows = rows.unwrap();
            assert_eq!(captured.len(), 1);
            // The slice is a derived table; the join runs on its rows only.
            let sql = &captured.all()[0].sql;
            assert!(sql.contains("FROM (SELECT * FROM"), "{sql}");
            let expected: Vec<(i64, i64)> = qs
                .all(conn)
                .unwrap()
                .iter()
                .map(|m| (m.id, Message::sent_by.get(m, conn).unwrap().id))
                .collect();
            let got: Vec<(i64, i64)> = rows.iter().map(|(m, p)| (m.id, p.id)).collect();
            assert_eq!(got, expected, "offset {offset}, limit {limit}");
        }
        // Unsliced: a plain join.
        let sql = Message::objects().select_related(Message::sent_by).sql(db.backend()).unwrap();
        assert!(!sql.contains("(SELECT *"), "{sql}");
    }
}
