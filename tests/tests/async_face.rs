//! The async face on both backends: awaited reads and writes, transactions on one
//! worker, futures dropped at each await point (the pool stays clean), capture and
//! profiles that follow the task, and shutdown.

use std::sync::mpsc;
use std::time::Duration;

use demo::models::{Message, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::prelude::*;
use orm::{atomic, capture_async, Profiler};
use orm_tests::{on_both_backends, runtime, seed};

/// Whether a fresh checkout of `db` is outside any transaction and usable.
fn clean(db: &orm::Database) -> bool {
    let mut conn = db.get().unwrap();
    let in_transaction = orm::with_inner!(&mut *conn, |c| {
        Ok::<_, diesel::result::Error>(
            <diesel::connection::AnsiTransactionManager as diesel::connection::TransactionManager<_>>::transaction_manager_status_mut(c)
                .transaction_depth()
                .map(|d| d.is_some())
                .unwrap_or(true),
        )
    })
    .unwrap();
    !in_transaction && Thread::objects().count(&mut conn).is_ok()
}

on_both_backends! {
    fn awaited_reads_and_writes_match_the_synchronous_ones(t) {
        seed(&mut t.conn());
        let db = t.db.clone();
        let rt = runtime();
        let conn = &mut t.conn();
        let thread_1 = Message::objects().filter(weave_message::thread_id.eq(1));
        let (all, first, count, exists) = rt.block_on(async {
            tokio::join!(thread_1.aall(&db), thread_1.afirst(&db), thread_1.acount(&db), thread_1.aexists(&db))
        });
        let expected: Vec<i64> = thread_1.all(conn).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(all.unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), expected);
        assert_eq!(first.unwrap().map(|m| m.id), expected.first().copied());
        assert_eq!(count.unwrap(), expected.len() as i64);
        assert!(exists.unwrap());
        let one = rt.block_on(Thread::objects().filter(weave_thread::id.eq(2)).aget(&db)).unwrap();
        assert_eq!(one.id, 2);
        let missing = rt.block_on(Thread::objects().filter(weave_thread::id.eq(-1)).aget(&db));
        assert!(missing.unwrap_err().is_not_found());
        // Writes: an update through run, a soft delete awaited.
        let renamed = rt
            .block_on(db.run(|conn| Thread::objects().filter(weave_thread::id.eq(2)).update(conn, weave_thread::title.eq("Renamed"))))
            .unwrap();
        assert_eq!(renamed, 1);
        assert_eq!(Thread::objects().filter(weave_thread::id.eq(2)).get(conn).unwrap().title, "Renamed");
        let deleted = rt.block_on(thread_1.adelete(&db)).unwrap();
        assert_eq!(deleted, expected.len());
        assert_eq!(thread_1.count(conn).unwrap(), 0);
    }

    fn a_transaction_runs_on_one_worker_and_commits_or_rolls_back(t) {
        seed(&mut t.conn());
        let db = t.db.clone();
        let rt = runtime();
        let committed = rt.block_on(db.run(|conn| {
            atomic(conn, |conn| {
                Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq("in a transaction"))?;
                Thread::objects().filter(weave_thread::id.eq(1)).get(conn)
            })
        }));
        assert_eq!(committed.unwrap().title, "in a transaction");
        let failed: orm::Result<()> = rt.block_on(db.run(|conn| {
            atomic(conn, |conn| {
                Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq("rolled back"))?;
                Err(orm::Error::NotFound { model: "Thread" })
            })
        }));
        assert!(failed.is_err());
        let title = Thread::objects().filter(weave_thread::id.eq(1)).get(&mut t.conn()).unwrap().title;
        assert_eq!(title, "in a transaction");
        assert!(clean(&db));
    }

    fn dropped_futures_leave_no_transaction_open_and_run_whole_or_not_at_all(t) {
        seed(&mut t.conn());
        let db = orm::Database::builder(&t.url).max_size(1).open().unwrap();
        let rt = runtime();
        // Dropped while waiting for the only worker: the job never runs.
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let holder = rt.spawn(db.run(move |conn| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Thread::objects().count(conn)
        }));
        started_rx.recv().unwrap();
        let waiting = db.run(|conn| {
            Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq("never"))
        });
        let dropped = rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), waiting).await });
        assert!(dropped.is_err(), "the second job waited for the worker and was dropped");
        release_tx.send(()).unwrap();
        assert!(rt.block_on(holder).unwrap().is_ok());
        assert_ne!(Thread::objects().filter(weave_thread::id.eq(1)).get(&mut t.conn()).unwrap().title, "never");
        // Dropped mid-transaction: the closure runs on to its end and commits.
        let (inside_tx, inside_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let midway = db.run(move |conn| {
            let result = atomic(conn, |conn| {
                Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq("finished"))?;
                inside_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Ok::<_, orm::Error>(())
            });
            done_tx.send(()).unwrap();
            result
        });
        let handle = rt.spawn(midway);
        inside_rx.recv().unwrap();
        handle.abort();
        let _ = rt.block_on(handle);
        go_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        // Dropped mid-transaction that then fails: rolled back.
        let (inside_tx, inside_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let failing = db.run(move |conn| {
            let result: orm::Result<()> = atomic(conn, |conn| {
                Thread::objects().filter(weave_thread::id.eq(1)).update(conn, weave_thread::title.eq("rolled back"))?;
                inside_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Err(orm::Error::NotFound { model: "Thread" })
            });
            done_tx.send(()).unwrap();
            result
        });
        let handle = rt.spawn(failing);
        inside_rx.recv().unwrap();
        handle.abort();
        let _ = rt.block_on(handle);
        go_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        // The pool's one connection is back, outside any transaction, and the first
        // transaction's write is there, the second's is not.
        assert!(rt.block_on(db.run(|conn| Thread::objects().count(conn))).is_ok());
        assert!(clean(&db));
        assert_eq!(Thread::objects().filter(weave_thread::id.eq(1)).get(&mut db.get().unwrap()).unwrap().title, "finished");
    }

    fn capture_and_profiles_follow_the_task_across_workers(t) {
        seed(&mut t.conn());
        let db = t.db.clone();
        let rt = runtime();
        let (ids, captured) = rt.block_on(capture_async(async {
            let threads = Thread::objects().aall(&db).await?;
            // Two at once, on two workers.
            let (a, b) = tokio::join!(Message::objects().acount(&db), Thread::objects().acount(&db));
            a?;
            b?;
            tokio::task::yield_now().await;
            Ok::<_, orm::Error>(threads.iter().map(|t| t.id).collect::<Vec<_>>())
        }));
        assert!(!ids.unwrap().is_empty());
        assert_eq!(captured.len(), 3, "{:?}", captured.sql());
        assert!(captured.data().iter().all(|r| r.call_site.is_some_and(|s| s.file().ends_with("async_face.rs"))));
        // A profile of an async handler: N+1 across awaits is reported.
        let (_, profile) = rt.block_on(Profiler::new("handler").n_plus_one_threshold(3).run_async(async {
            for id in 1..=4 {
                let _ = Thread::objects().filter(weave_thread::id.eq(id)).afirst(&db).await;
            }
        }));
        assert_eq!(profile.totals.queries, 4);
        assert_eq!(profile.n_plus_one.len(), 1, "{:?}", profile.n_plus_one);
        // Nothing leaks into a capture of this thread afterwards.
        let (_, after) = orm::capture(|| Thread::objects().count(&mut t.conn()));
        assert_eq!(after.len(), 1);
    }

    fn shutdown_drains_the_workers_and_refuses_new_work(t) {
        seed(&mut t.conn());
        let db = t.db.clone();
        let rt = runtime();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let flag = finished.clone();
        let running = rt.spawn(db.run(move |conn| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let n = Thread::objects().count(conn);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            n
        }));
        started_rx.recv().unwrap();
        rt.block_on(db.shutdown());
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst), "shutdown waited for the running unit");
        assert!(rt.block_on(running).unwrap().is_ok());
        let refused = rt.block_on(Thread::objects().acount(&db));
        assert!(refused.unwrap_err().is_unsupported());
        // The pool itself still serves synchronous work.
        assert!(Thread::objects().count(&mut db.get().unwrap()).is_ok());
    }

    fn an_async_stream_reads_every_row_and_frees_its_worker_when_dropped(t) {
        seed(&mut t.conn());
        let db = orm::Database::builder(&t.url).max_size(1).open().unwrap();
        let rt = runtime();
        let qs = Message::objects().order_by(weave_message::id.asc());
        let expected: Vec<i64> = qs.all(&mut db.get().unwrap()).unwrap().iter().map(|m| m.id).collect();
        let (ids, captured) = rt.block_on(capture_async(async {
            let mut rows = qs.astream(&db, 7);
            let mut ids = Vec::new();
            while let Some(row) = next(&mut rows).await {
                ids.push(row?.id);
            }
            Ok::<_, orm::Error>(ids)
        }));
        assert_eq!(ids.unwrap(), expected);
        assert!(!captured.data().is_empty());
        assert!(captured.data().iter().all(|r| r.call_site.is_some_and(|s| s.file().ends_with("async_face.rs"))));
        // Dropped after a few rows: the one worker and connection come back.
        rt.block_on(async {
            let mut rows = qs.astream(&db, 2);
            for _ in 0..3 {
                next(&mut rows).await.unwrap().unwrap();
            }
        });
        let count = rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), qs.acount(&db)).await });
        assert_eq!(count.expect("the worker was freed").unwrap(), expected.len() as i64);
        assert!(clean(&db));
    }
}

/// The next item of an async stream.
async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
