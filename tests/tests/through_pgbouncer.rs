//! PgBouncer in transaction pooling mode (`bash .ci/scale_out.sh start`): what
//! `transaction_pooling` turns off and refuses, and many clients' transactions
//! interleaved on fewer server connections. The files that run every test a third
//! time through PgBouncer (`on_all_backends!`) are listed in docs/scaling-out.md.

use std::time::Duration;

use demo::models::{Message, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::prelude::*;
use orm::{atomic, capture};
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
    // More client connections than PgBouncer keeps per database and user would be
    // needed to force sharing; eight threads of twenty-five transactions each switch
    // server connections between transactions, where a prepared statement of one
    // server connection would be missing on the next.
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
    // Statements are sent unnamed: the same shape twice is two parses, never a
    // prepared statement looked up on another server connection.
    let (_, captured) = capture(|| {
        let mut conn = t.conn();
        for _ in 0..2 {
            Message::objects()
                .filter(weave_message::thread_id.eq(1))
                .all(&mut conn)
                .unwrap();
        }
    });
    assert_eq!(captured.len(), 2);
}
