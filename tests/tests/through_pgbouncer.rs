//! PgBouncer in transaction pooling mode (`bash .ci/scale_out.sh start`): what
//! `transaction_pooling` turns off and refuses, and many clients' transactions
//! interleaved on fewer server connections. The files that run every test a third
//! time through PgBouncer (`on_all_backends!`) are listed in docs/scaling-out.md.

use std::time::Duration;

use demo::models::{Message, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::atomic;
use orm::prelude::*;
use orm_tests::{pgbouncer, seed};

#[test]
fn session_state_is_refused_with_transaction_pooling_on_both_backends() {
    // What a transaction pooler would carry from one transaction to the next is
    // refused when the pool is built, before any SQL.
    let err = orm::Database::builder(":memory:")
        .transaction_pooling(true)
        .statement_timeout(Some(Duration::from_secs(1)))
        .open()
        .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    let Some(t) = orm_tests::postgres() else {
        return;
    };
    let err = orm::Database::builder(&t.url)
        .transaction_pooling(true)
        .statement_timeout(Some(Duration::from_secs(1)))
        .open()
        .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("transaction pooler"), "{err}");
}

#[test]
fn interleaved_transactions_of_many_clients_share_fewer_server_connections() {
    let Some(t) = pgbouncer() else { return };
    seed(&mut t.conn());
    // Eight threads of twenty-five transactions each: PgBouncer hands each
    // transaction whichever server connection is free, so a client connection moves
    // between server connections, where a statement prepared on one is missing on
    // the next (with `prepared_statements(true)` this fails at once, measured).
    let db = t.db.clone();
    std::thread::scope(|s| {
        for worker in 0..8i64 {
            let db = db.clone();
            s.spawn(move || {
                for round in 0..25 {
                    let mut conn = db.get().unwrap();
                    let title = format!("w{worker} r{round}");
                    let read = atomic(&mut conn, |conn| {
                        Thread::objects()
                            .filter(weave_thread::id.eq(1 + worker % 2))
                            .update(conn, weave_thread::title.eq(title.clone()))?;
                        Thread::objects()
                            .filter(weave_thread::id.eq(1 + worker % 2))
                            .get(conn)
                    })
                    .unwrap();
                    assert_eq!(read.title, title);
                    assert_eq!(Message::objects().count(&mut conn).unwrap(), 7);
                }
            });
        }
    });
    // The same shape again on one client connection, which PgBouncer may have moved
    // to another server connection meanwhile: with statements prepared once per
    // client connection, this is where "prepared statement does not exist" comes.
    let mut conn = t.conn();
    for _ in 0..20 {
        let rows = Message::objects()
            .filter(weave_message::thread_id.eq(1))
            .all(&mut conn)
            .unwrap();
        assert_eq!(rows.len(), 4);
    }
}
