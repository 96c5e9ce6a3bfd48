//! `atomic`: commit on Ok, roll back on Err or panic, nest with savepoints; SQLite
//! writers take the lock up front so concurrent writers wait instead of failing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use demo::models::{Message, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::prelude::*;
use orm::{atomic, capture, Error};
use orm_tests::{on_all_backends, seed};

on_all_backends! {
    fn atomic_commits_on_ok(db) {
        let conn = &mut db.conn();
        seed(conn);
        let n = atomic(conn, |c| Thread::objects().delete(c)).unwrap();
        assert_eq!(n, 2);
        assert_eq!(Thread::objects().count(conn).unwrap(), 0);
    }

    fn atomic_rolls_back_on_err(db) {
        let conn = &mut db.conn();
        seed(conn);
        let result: orm::Result<()> = atomic(conn, |c| {
            Thread::objects().delete(c)?;
            Message::objects().delete(c)?;
            Err(Error::NotFound { model: "Thread" })
        });
        assert!(result.unwrap_err().is_not_found());
        assert_eq!(Thread::objects().count(conn).unwrap(), 2);
        assert_eq!(Message::objects().count(conn).unwrap(), 7);
    }

    fn atomic_rolls_back_on_panic(db) {
        let conn = &mut db.conn();
        seed(conn);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: orm::Result<()> = atomic(conn, |c| {
                Thread::objects().delete(c)?;
                panic!("in the middle of a write");
            });
        }));
        assert!(outcome.is_err());
        assert_eq!(Thread::objects().count(conn).unwrap(), 2);
    }

    fn nested_atomic_rolls_back_only_the_inner_work(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (result, captured) = capture(|| atomic(conn, |c| {
            Thread::objects().filter(weave_thread::id.eq(1)).update(c, weave_thread::title.eq("kept"))?;
            let inner: orm::Result<()> = atomic(c, |c| {
                Message::objects().delete(c)?;
                Err(Error::NotFound { model: "Message" })
            });
            assert!(inner.is_err());
            Ok::<_, Error>(())
        }));
        result.unwrap();
        assert!(captured.all().iter().any(|r| r.sql.starts_with("SAVEPOINT")), "{captured}");
        assert_eq!(Thread::objects().filter(weave_thread::id.eq(1)).get(conn).unwrap().title, "kept");
        assert_eq!(Message::objects().count(conn).unwrap(), 7);
    }

    fn concurrent_readers_and_writers_neither_fail_nor_lose_writes(db) {
        {
            let conn = &mut db.conn();
            seed(conn);
        }
        let writes = Arc::new(AtomicUsize::new(0));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for writer in 0..2 {
            let (pool, writes) = (db.db.clone(), writes.clone());
            handles.push(std::thread::spawn(move || -> orm::Result<()> {
                let mut i = 0;
                while i < 50 {
                    let conn = &mut pool.get()?;
                    // Read, then write, in one transaction: the shape that fails with
                    // "database is locked" under deferred SQLite transactions.
                    atomic(conn, |c| {
                        let n = Message::objects().filter(weave_message::id.eq(1)).count(c)?;
                        Message::objects()
                            .filter(weave_message::id.eq(1 + writer))
                            .update(c, weave_message::text.eq(format!("writer {writer} write {i} saw {n}")))
                    })?;
                    writes.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            }));
        }
        for _ in 0..4 {
            let (pool, reads) = (db.db.clone(), reads.clone());
            handles.push(std::thread::spawn(move || -> orm::Result<()> {
                let mut i = 0;
                while i < 100 {
                    let conn = &mut pool.get()?;
                    Message::objects().all(conn)?;
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle.join().expect("no panic").expect("no database error");
        }
        assert_eq!(writes.load(Ordering::Relaxed), 2 * 50);
        assert_eq!(reads.load(Ordering::Relaxed), 4 * 100);
        // The last write of each writer is visible: nothing was lost.
        let conn = &mut db.conn();
        for writer in 0..2 {
            let m = Message::objects().filter(weave_message::id.eq(1 + writer)).get(conn).unwrap();
            assert!(m.text.starts_with(&format!("writer {writer} write")), "{}", m.text);
        }
    }
}
