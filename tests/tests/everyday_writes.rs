//! Updates by expression, get_or_create and update_or_create (concurrent callers
//! included), select_for_update (a job queue), and transactions with options, on
//! the shop's schema on both backends.

use std::sync::{mpsc, Arc, Barrier};

use diesel::dsl::count_star;
use orm::bulk::BulkCreate;
use orm::prelude::*;
use orm::{
    assert_num_queries, atomic, atomic_with, capture, Backend, DbErrorKind, Isolation, RowLock,
    TransactionOptions,
};
use orm_tests::shop::{shop_job, shop_tag, Job, NewTag, Order, Tag};
use orm_tests::shop_on_both_backends;

fn tag(name: &str) -> NewTag {
    NewTag {
        name: name.into(),
        uses: 0,
    }
}

fn named(name: &str) -> QuerySet<Tag> {
    Tag::objects().filter(shop_tag::name.eq(name.to_owned()))
}

shop_on_both_backends! {
    fn updates_take_expressions_of_the_row_and_still_set_updated(db) {
        let conn = &mut db.conn();
        let (hot, _) = named("hot").get_or_create(conn, tag("hot")).unwrap();
        let (changed, captured) = capture(|| named("hot").update(conn, shop_tag::uses.eq(shop_tag::uses + 2)));
        assert_eq!(changed.unwrap(), 1);
        let sql = &captured.sql()[0];
        assert!(sql.contains("uses") && sql.contains(" + ") && sql.contains("updated"), "{sql}");
        let after = named("hot").get(conn).unwrap();
        assert_eq!(after.uses, 2);
        assert!(after.updated >= hot.updated);
        // Twice more, from the value the database holds.
        named("hot").update(conn, shop_tag::uses.eq(shop_tag::uses * 3)).unwrap();
        assert_eq!(named("hot").get(conn).unwrap().uses, 6);
    }

    fn get_or_create_reads_or_inserts_one_row(db) {
        let conn = &mut db.conn();
        let (first, created) = assert_num_queries!(2, named("red").get_or_create(conn, tag("red"))).unwrap();
        assert!(created);
        let (again, created) = assert_num_queries!(1, named("red").get_or_create(conn, tag("red"))).unwrap();
        assert_eq!((again.id, created), (first.id, false));
        assert_eq!(Tag::objects().count(conn).unwrap(), 1);
        // A soft-deleted row holding the unique name is not the queryset's: the
        // insert's unique violation is the error, and nothing is written.
        named("red").delete(conn).unwrap();
        let refused = named("red").get_or_create(conn, tag("red"));
        assert!(refused.as_ref().is_err_and(|e| e.is_unique_violation()), "{refused:?}");
        assert_eq!(Tag::objects().with_deleted().count(conn).unwrap(), 1);
        // Looking among deleted rows finds it.
        let (deleted, created) = named("red").with_deleted().get_or_create(conn, tag("red")).unwrap();
        assert_eq!((deleted.id, deleted.deleted, created), (first.id, true, false));
        // Inside a transaction the insert runs in a savepoint: the refused insert
        // leaves the transaction usable.
        let kept = atomic(conn, |conn| {
            let refused = named("red").get_or_create(conn, tag("red"));
            assert!(refused.is_err());
            named("blue").get_or_create(conn, tag("blue"))
        })
        .unwrap();
        assert!(kept.1);
    }

    fn concurrent_get_or_create_inserts_once(db) {
        const CALLERS: usize = 4;
        let barrier = Arc::new(Barrier::new(CALLERS));
        let results: Vec<(i32, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let barrier = barrier.clone();
                    let mut conn = db.conn();
                    scope.spawn(move || {
                        barrier.wait();
                        let (row, created) = named("race").get_or_create(&mut conn, tag("race")).unwrap();
                        (row.id, created)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1, "{results:?}");
        assert!(results.iter().all(|(id, _)| *id == results[0].0), "{results:?}");
        assert_eq!(Tag::objects().count(&mut db.conn()).unwrap(), 1);
    }

    fn update_or_create_updates_the_row_or_inserts_one(db) {
        let conn = &mut db.conn();
        let (made, created) = named("green").update_or_create(conn, shop_tag::uses.eq(5), tag("green")).unwrap();
        assert!(created);
        assert_eq!(made.uses, 0);
        let (updated, created) = named("green").update_or_create(conn, shop_tag::uses.eq(shop_tag::uses + 5), tag("green")).unwrap();
        assert_eq!((updated.id, updated.uses, created), (made.id, 5, false));
        assert!(updated.updated >= made.updated);
        assert_eq!(Tag::objects().count(conn).unwrap(), 1);
        // Concurrent callers: every increment lands on the one row.
        const CALLERS: usize = 4;
        let barrier = Arc::new(Barrier::new(CALLERS));
        std::thread::scope(|scope| {
            for _ in 0..CALLERS {
                let barrier = barrier.clone();
                let mut conn = db.conn();
                scope.spawn(move || {
                    barrier.wait();
                    named("busy").update_or_create(&mut conn, shop_tag::uses.eq(shop_tag::uses + 1), tag("busy")).unwrap();
                });
            }
        });
        // One caller inserted (uses 0), the others each added one.
        assert_eq!(named("busy").get(conn).unwrap().uses, CALLERS as i32 - 1);
    }

    fn select_for_update_needs_a_transaction_and_feeds_a_job_queue(db) {
        let conn = &mut db.conn();
        for id in 1..=3 {
            Job::objects().create(conn, Job { id, state: "ready".into(), worker: None }).unwrap();
        }
        let next = || {
            Job::objects()
                .filter(shop_job::state.eq("ready"))
                .select_for_update(RowLock::update().skip_locked())
        };
        let refused = assert_num_queries!(0, next().first(conn));
        assert!(refused.is_err_and(|e| e.is_transaction_required()));
        let sql = next().limit(1).sql(db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(sql.ends_with("LIMIT $2 FOR UPDATE SKIP LOCKED"), "{sql}"),
            Backend::Sqlite => assert!(sql.ends_with("LIMIT 1"), "{sql}"),
        }
        // The other strengths, OF the own table beside a join, run on both.
        let share = Job::objects().select_for_update(RowLock::share().of_own_table());
        let no_key = Job::objects().select_for_update(RowLock::no_key_update().nowait());
        let (shared, keyed) = atomic(conn, |conn| Ok::<_, orm::Error>((share.all(conn)?.len(), no_key.first(conn)?.map(|j| j.id)))).unwrap();
        assert_eq!((shared, keyed), (3, Some(1)));
        if db.backend() == Backend::Postgres {
            assert!(share.sql(db.backend()).unwrap().ends_with(r#"ORDER BY "shop_job"."id" ASC FOR SHARE OF "shop_job""#));
            assert!(no_key.sql(db.backend()).unwrap().ends_with("FOR NO KEY UPDATE NOWAIT"));
        }
        let take = |conn: &mut orm::AnyConnection, worker: &str| -> orm::Result<i32> {
            let job = next().first(conn)?.expect("a ready job");
            Job::objects()
                .filter(shop_job::id.eq(job.id))
                .update(conn, (shop_job::state.eq("taken"), shop_job::worker.eq(worker.to_owned())))?;
            Ok(job.id)
        };
        let (a, b) = if db.backend() == Backend::Postgres {
            // Worker A holds its job's row lock while worker B takes the next one.
            let (taken_tx, taken_rx) = mpsc::channel();
            let (done_tx, done_rx) = mpsc::channel::<()>();
            std::thread::scope(|scope| {
                let mut a_conn = db.conn();
                let a = scope.spawn(move || {
                    atomic(&mut a_conn, |conn| {
                        let id = take(conn, "a")?;
                        taken_tx.send(id).unwrap();
                        done_rx.recv().unwrap();
                        Ok::<_, orm::Error>(id)
                    })
                    .unwrap()
                });
                let a_id = taken_rx.recv().unwrap();
                let mut b_conn = db.conn();
                // NOWAIT on A's row fails at once instead of waiting for A.
                let busy = atomic(&mut b_conn, |conn| {
                    Job::objects().filter(shop_job::id.eq(a_id)).select_for_update(RowLock::update().nowait()).first(conn)
                });
                assert!(busy.is_err(), "{busy:?}");
                let b = atomic(&mut b_conn, |conn| take(conn, "b")).unwrap();
                done_tx.send(()).unwrap();
                (a.join().unwrap(), b)
            })
        } else {
            // SQLite's transactions take the write lock at BEGIN: the workers run one
            // after the other, and the second finds the first's job taken.
            let a = atomic(conn, |conn| take(conn, "a")).unwrap();
            let b = atomic(&mut db.conn(), |conn| take(conn, "b")).unwrap();
            (a, b)
        };
        assert_ne!(a, b);
        let taken: Vec<(i32, Option<String>)> = Job::objects()
            .filter(shop_job::state.eq("taken"))
            .values_list((shop_job::id, shop_job::worker))
            .all(conn)
            .unwrap();
        assert_eq!(taken.len(), 2);
        assert_eq!(Job::objects().filter(shop_job::state.eq("ready")).count(conn).unwrap(), 1);
    }

    fn read_only_transactions_refuse_writes_and_take_no_write_lock(db) {
        let conn = &mut db.conn();
        named("one").get_or_create(conn, tag("one")).unwrap();
        let other = &mut db.conn();
        let read = atomic_with(conn, TransactionOptions::new().read_only(), |conn| {
            // Another connection writes meanwhile: no lock is held against it.
            named("one").update(other, shop_tag::uses.eq(7))?;
            named("one").get(conn)
        })
        .unwrap();
        assert_eq!(read.uses, 7);
        let refused = atomic_with(conn, TransactionOptions::new().read_only(), |conn| {
            named("one").update(conn, shop_tag::uses.eq(8))
        });
        let error = refused.unwrap_err();
        if db.backend() == Backend::Postgres {
            assert_eq!(error.db_kind(), Some(DbErrorKind::ReadOnlyTransaction), "{error}");
        }
        // The connection writes again afterwards.
        assert_eq!(named("one").update(conn, shop_tag::uses.eq(9)).unwrap(), 1);
        assert_eq!(named("one").get(conn).unwrap().uses, 9);
        // Options apply to an outermost transaction only.
        let nested = atomic(conn, |conn| atomic_with(conn, TransactionOptions::new().read_only(), |_| Ok(())));
        assert!(matches!(nested, Err(orm::Error::InvalidArgument { argument: "options", .. })), "{nested:?}");
    }

    fn serializable_transactions_retry_serialization_failures(db) {
        let conn = &mut db.conn();
        let other = &mut db.conn();
        let mut attempts = 0;
        let options = TransactionOptions::new().isolation(Isolation::Serializable).retries(2);
        let postgres = db.backend() == Backend::Postgres;
        atomic_with(conn, options, |conn| {
            attempts += 1;
            let seen: i64 = Tag::objects().aggregate(conn, count_star())?;
            if attempts == 1 && postgres {
                // A concurrent transaction reads what this one reads and writes
                // what this one will read: write skew, which SERIALIZABLE refuses.
                atomic_with(other, TransactionOptions::new().isolation(Isolation::Serializable), |other| {
                    let _: i64 = Tag::objects().aggregate(other, count_star())?;
                    Tag::objects().create(other, tag("theirs"))
                })?;
            }
            Tag::objects().create(conn, tag(&format!("mine after {seen}")))
        })
        .unwrap();
        // SQLite serialises writers at BEGIN IMMEDIATE: nothing to retry there.
        assert_eq!(attempts, if postgres { 2 } else { 1 });
        let names: Vec<String> = Tag::objects().values_list(shop_tag::name).all(conn).unwrap();
        if postgres {
            assert_eq!(names, ["theirs", "mine after 1"]);
        } else {
            assert_eq!(names, ["mine after 0"]);
        }
    }

    fn bulk_update_and_upserts_write_only_the_querysets_rows(db) {
        let conn = &mut db.conn();
        let ids: Vec<i32> = ["a", "b", "c"]
            .into_iter()
            .map(|name| named(name).get_or_create(conn, tag(name)).unwrap().0.id)
            .collect();
        let (a, b, c) = (ids[0], ids[1], ids[2]);
        named("b").delete(conn).unwrap();
        let uses = |conn: &mut orm::AnyConnection| -> Vec<(String, i32, bool)> {
            Tag::objects()
                .with_deleted()
                .values_list((shop_tag::name, shop_tag::uses, shop_tag::deleted))
                .all(conn)
                .unwrap()
        };
        let row = |name: &str, n, deleted| (name.to_owned(), n, deleted);
        // objects() hides soft-deleted b: it is skipped and not counted.
        let rows = |n: i32| vec![(a, (n,)), (b, (n,)), (c, (n,))];
        assert_eq!(Tag::objects().bulk_update(conn, (shop_tag::uses,), rows(1)).unwrap(), 2);
        assert_eq!(uses(conn), [row("a", 1, false), row("b", 0, true), row("c", 1, false)]);
        assert_eq!(Tag::objects().with_deleted().bulk_update(conn, (shop_tag::uses,), rows(2)).unwrap(), 3);
        // The queryset's own filters choose the rows too.
        let not_c = Tag::objects().filter(shop_tag::name.ne("c"));
        assert_eq!(not_c.bulk_update(conn, (shop_tag::uses,), rows(5)).unwrap(), 1);
        assert_eq!(uses(conn), [row("a", 5, false), row("b", 2, true), row("c", 2, false)]);
        let sliced = Tag::objects().limit(1).bulk_update(conn, (shop_tag::uses,), rows(6));
        assert!(matches!(sliced, Err(orm::Error::Unsupported { .. })), "{sliced:?}");
        // An upsert through objects() makes the row live: b collides, is updated and
        // restored.
        let on_name = || BulkCreate::new().update_conflicts((shop_tag::name,), (shop_tag::uses,));
        Tag::objects().bulk_create_with(conn, vec![NewTag { name: "b".into(), uses: 9 }], &on_name()).unwrap();
        assert_eq!(uses(conn)[1], row("b", 9, false));
        // Through with_deleted() the soft-delete column is left as it is.
        named("b").delete(conn).unwrap();
        Tag::objects().with_deleted().bulk_create_with(conn, vec![NewTag { name: "b".into(), uses: 10 }], &on_name()).unwrap();
        assert_eq!(uses(conn)[1], row("b", 10, true));
        // The queryset's filters: a (5 uses) is outside `uses < 5`, so it keeps its
        // value; c (2 uses) takes the new one.
        let few = Tag::objects().filter(shop_tag::uses.lt(5));
        let new = vec![NewTag { name: "a".into(), uses: 50 }, NewTag { name: "c".into(), uses: 50 }];
        few.bulk_create_with(conn, new, &on_name()).unwrap();
        assert_eq!(uses(conn), [row("a", 5, false), row("b", 10, true), row("c", 50, false)]);
    }

    fn a_joined_queryset_locks_its_own_rows(db) {
        let conn = &mut db.conn();
        orm_tests::shop::seed(conn).unwrap();
        let locked = Order::objects()
            .select_for_update(RowLock::update().of_own_table())
            .select_related(Order::customer);
        let refused = locked.all(conn);
        assert!(refused.is_err_and(|e| e.is_transaction_required()));
        let rows = atomic(conn, |conn| locked.all(conn)).unwrap();
        assert_eq!(rows.iter().map(|(o, c)| (o.id, c.id)).collect::<Vec<_>>(), [(4, 3), (3, 2), (2, 1), (1, 1)]);
        let (_, captured) = capture(|| atomic(conn, |conn| locked.first(conn)));
        let select = captured.sql().into_iter().find(|sql| sql.starts_with("SELECT")).unwrap();
        match db.backend() {
            // The slice is joined as a derived table under the table's name: OF locks
            // the rows of the table inside it.
            Backend::Postgres => assert!(select.ends_with(r#"DESC FOR UPDATE OF "order""#), "{select}"),
            Backend::Sqlite => assert!(!select.contains("FOR UPDATE"), "{select}"),
        }
    }
}
