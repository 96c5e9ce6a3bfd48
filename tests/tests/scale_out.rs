//! Read replicas against real streaming replicas (`bash .ci/scale_out.sh start`): reads
//! on the replica, writes and read-your-writes on the primary, overrides, a replica
//! that lags or stops and comes back, and what SQLite says instead. Tests that read on
//! a replica wait for its replay by WAL position, never for a fixed time.

use std::time::{Duration, Instant};

use demo::models::{Message, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::prelude::*;
use orm::routing::{Role, Route, RouteScope};
use orm::{capture, capture_async, Captured};
use orm_tests::{replicated, replicated_on, runtime, scale_out_env, seed};

/// The roles the data statements of `captured` ran on.
fn roles(captured: &Captured) -> Vec<Role> {
    captured.data().iter().map(|r| r.server.role).collect()
}

/// Settings that keep the background checks out of the way: the tests check by hand.
fn by_hand(b: orm::DatabaseBuilder) -> orm::DatabaseBuilder {
    b.replica_check_interval(Duration::from_secs(3600))
        .max_replica_lag(Duration::from_secs(3600))
        .read_your_writes(Duration::from_secs(3600))
        // A slow first connection under load must not take the replica out of the
        // rotation for the rest of the test: nothing would check it again.
        .replica_checkout_timeout(Duration::from_secs(30))
}

/// Seeds through the primary and waits until the replicas have it.
fn seeded(t: &orm_tests::TestDb) {
    seed(&mut t.conn());
    t.db.wait_for_replicas(Duration::from_secs(60))
        .expect("replayed");
}

#[test]
fn sqlite_refuses_replicas_when_the_database_is_built() {
    let path = std::env::temp_dir().join(format!("orm_replica_{}.db", std::process::id()));
    let err = orm::Database::builder(&path.to_string_lossy())
        .replica("postgres://postgres@127.0.0.1:5433/test")
        .open()
        .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("read replicas"), "{err}");
    let _ = std::fs::remove_file(path);
    // Without replicas the routed face is the primary's, on SQLite as on PostgreSQL.
    let t = orm_tests::sqlite();
    seed(&mut t.conn());
    let (n, captured) = capture(|| Message::objects().count(&mut t.db.read().unwrap()));
    assert_eq!(n.unwrap(), 7);
    assert_eq!(roles(&captured), [Role::Primary]);
    assert_eq!(captured.data()[0].server.address.as_ref(), t.url);
    let rt = runtime();
    let ((n, token), captured) = rt.block_on(capture_async(RouteScope::new().run_async(async {
        t.db.run(|conn| {
            Thread::objects()
                .filter(weave_thread::id.eq(1))
                .update(conn, weave_thread::title.eq("Renamed"))
        })
        .await
        .unwrap();
        Thread::objects().acount(&t.db).await
    })));
    assert_eq!(n.unwrap(), 2);
    assert!(token.is_some(), "the scope wrote");
    assert_eq!(roles(&captured), [Role::Primary, Role::Primary]);
    // A statement of the application's own is checked for a write by its text.
    use diesel::connection::SimpleConnection;
    let (_, token) = RouteScope::new().run(|| {
        t.conn()
            .batch_execute("UPDATE weave_thread SET title = 'raw' WHERE id = 2")
            .unwrap()
    });
    assert!(token.is_some());
    let (_, token) = RouteScope::new().run(|| t.conn().batch_execute("SELECT 1").unwrap());
    assert_eq!(token, None);
    assert!(t.db.replicas().is_empty());
    assert!(t.db.check_replicas().is_empty());
    t.db.wait_for_replicas(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_replica_must_be_a_postgres_url() {
    let Some(url) = orm_tests::postgres().map(|t| t.url.clone()) else {
        return;
    };
    let err = orm::Database::builder(&url)
        .replica("threads.db")
        .open()
        .unwrap_err();
    assert!(matches!(err, orm::Error::InvalidUrl { .. }), "{err}");
}

#[test]
fn a_fresh_scope_reads_on_the_replica_and_writes_go_to_the_primary() {
    let Some(t) = replicated(by_hand) else { return };
    seeded(&t);
    let status = t.db.replicas();
    assert_eq!(status.len(), 1);
    assert!(status[0].usable, "{status:?}");
    assert_eq!(status[0].server.role, Role::Replica);
    let db = t.db.clone();
    let rt = runtime();
    // Awaited reads of a fresh scope: on the replica, the same rows as the primary's.
    let (rows, captured) = rt.block_on(capture_async(RouteScope::new().run_async(async {
        let all = Message::objects()
            .order_by(weave_message::id.asc())
            .aall(&db)
            .await
            .unwrap();
        let count = Message::objects().acount(&db).await.unwrap();
        let one = Thread::objects()
            .filter(weave_thread::id.eq(2))
            .aget(&db)
            .await
            .unwrap();
        (
            all.iter().map(|m| m.id).collect::<Vec<_>>(),
            count,
            one.title,
        )
    })));
    let ((ids, count, title), token) = rows;
    assert_eq!(ids, [1, 2, 3, 5, 6, 8, 9]);
    assert_eq!(count, 7);
    assert_eq!(title, "Machines");
    assert_eq!(token, None, "nothing written");
    assert_eq!(roles(&captured), [Role::Replica; 3]);
    assert_eq!(captured.data()[0].server, t.db.replicas()[0].server);
    // The sync routed checkout too; `get` is always the primary's.
    let (_, captured) = capture(|| Message::objects().count(&mut t.db.read().unwrap()).unwrap());
    assert_eq!(roles(&captured), [Role::Replica]);
    let (_, captured) = capture(|| Message::objects().count(&mut t.conn()).unwrap());
    assert_eq!(roles(&captured), [Role::Primary]);
    // Writes: `run` and `adelete` on the primary, never on the replica.
    let (written, captured) = rt.block_on(capture_async(async {
        let n = db
            .run(|conn| {
                Thread::objects()
                    .filter(weave_thread::id.eq(1))
                    .update(conn, weave_thread::title.eq("Renamed"))
            })
            .await
            .unwrap();
        let d = Message::objects()
            .filter(weave_message::id.eq(1))
            .adelete(&db)
            .await
            .unwrap();
        (n, d)
    }));
    assert_eq!(written, (1, 1));
    assert!(
        roles(&captured).iter().all(|r| *r == Role::Primary),
        "{captured}"
    );
    // A write sent where reads go is refused by the standby, with its kind.
    let err = rt
        .block_on(db.run_read(Route::Replica, |conn| {
            Thread::objects()
                .filter(weave_thread::id.eq(2))
                .update(conn, weave_thread::title.eq("x"))
        }))
        .unwrap_err();
    assert_eq!(
        err.db_kind(),
        Some(orm::DbErrorKind::ReadOnlyTransaction),
        "{err}"
    );
    // The profile of a request shows where each statement ran.
    let profile = orm::profile(|| {
        Message::objects().count(&mut t.db.read().unwrap()).unwrap();
        Message::objects().count(&mut t.conn()).unwrap();
    })
    .1;
    let servers: Vec<&str> = profile
        .queries
        .iter()
        .filter(|q| q.kind == orm::instrument::QueryKind::Data)
        .map(|q| q.server.as_str())
        .collect();
    assert!(servers[0].starts_with("replica "), "{servers:?}");
    assert!(servers[1].starts_with("primary "), "{servers:?}");
    assert!(
        profile.summary().contains("servers: 1 on replica"),
        "{}",
        profile.summary()
    );
}

#[test]
fn a_scope_that_wrote_reads_its_writes_and_carries_them_in_a_token() {
    let Some(t) = replicated(by_hand) else { return };
    seeded(&t);
    let db = t.db.clone();
    let rt = runtime();
    // A POST: write, then read in the same scope, with no wait for replication.
    let ((title, token), captured) =
        rt.block_on(capture_async(RouteScope::new().run_async(async {
            db.run(|conn| {
                Thread::objects()
                    .filter(weave_thread::id.eq(1))
                    .update(conn, weave_thread::title.eq("Just written"))
            })
            .await
            .unwrap();
            Thread::objects()
                .filter(weave_thread::id.eq(1))
                .aget(&db)
                .await
                .unwrap()
                .title
        })));
    assert_eq!(title, "Just written");
    assert_eq!(roles(&captured), [Role::Primary, Role::Primary]);
    let token = token.expect("the scope wrote");
    // The redirected GET, carrying the token as a cookie would: its text form.
    let carried: orm::routing::WriteToken = token.to_string().parse().unwrap();
    let (_, captured) = rt.block_on(capture_async(
        RouteScope::new()
            .after(Some(carried))
            .run_async(Thread::objects().acount(&db)),
    ));
    assert_eq!(roles(&captured), [Role::Primary]);
    // Overrides: the queryset's route beats the scope's window; a pinned scope.
    let (_, captured) = rt.block_on(capture_async(
        RouteScope::new()
            .after(Some(carried))
            .run_async(Thread::objects().route(Route::Replica).acount(&db)),
    ));
    assert_eq!(roles(&captured), [Role::Replica]);
    let (_, captured) = rt.block_on(capture_async(
        RouteScope::new()
            .route(Route::Primary)
            .run_async(Thread::objects().acount(&db)),
    ));
    assert_eq!(roles(&captured), [Role::Primary]);
    let (_, captured) = rt.block_on(capture_async(
        Thread::objects().route(Route::Primary).acount(&db),
    ));
    assert_eq!(roles(&captured), [Role::Primary]);
    // A sync scope: a write through `get`, then `read` gives the primary's connection.
    let ((), captured) = capture(|| {
        let ((), token) = RouteScope::new().run(|| {
            Thread::objects()
                .filter(weave_thread::id.eq(2))
                .update(&mut t.conn(), weave_thread::title.eq("Sync"))
                .unwrap();
            let title = Thread::objects()
                .filter(weave_thread::id.eq(2))
                .get(&mut t.db.read().unwrap())
                .unwrap()
                .title;
            assert_eq!(title, "Sync");
        });
        assert!(token.is_some());
    });
    assert_eq!(roles(&captured), [Role::Primary, Role::Primary]);
    // A fresh scope after replay: the replica again, with the writes.
    t.db.wait_for_replicas(Duration::from_secs(60)).unwrap();
    let (title, captured) = rt.block_on(capture_async(
        Thread::objects().filter(weave_thread::id.eq(1)).aget(&db),
    ));
    assert_eq!(title.unwrap().title, "Just written");
    assert_eq!(roles(&captured), [Role::Replica]);
}

#[test]
fn a_stream_reads_on_the_replica() {
    let Some(t) = replicated(by_hand) else { return };
    seeded(&t);
    let db = t.db.clone();
    let rt = runtime();
    let (ids, captured) = rt.block_on(capture_async(async {
        use std::future::poll_fn;
        use std::pin::Pin;
        let mut rows = Message::objects()
            .order_by(weave_message::id.asc())
            .astream(&db, 3);
        let mut ids = Vec::new();
        while let Some(row) =
            poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut rows), cx)).await
        {
            ids.push(row.unwrap().id);
        }
        ids
    }));
    assert_eq!(ids, [1, 2, 3, 5, 6, 8, 9]);
    assert!(!roles(&captured).is_empty());
    assert!(
        roles(&captured).iter().all(|r| *r == Role::Replica),
        "{captured}"
    );
}

/// Starts the stoppable replica's cluster again even if the test fails midway.
struct Restart<'a>(&'a [String]);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        let _ = cluster(self.0, "start");
    }
}

fn cluster(name: &[String], action: &str) -> std::io::Result<std::process::ExitStatus> {
    let mut command = std::process::Command::new("pg_ctlcluster");
    command
        .arg("--skip-systemctl-redirect")
        .args(name)
        .arg(action);
    if action == "stop" {
        command.args(["-m", "fast"]);
    }
    command.status()
}

/// Checks the replicas until `done` holds for the first, up to a minute.
fn check_until(
    db: &orm::Database,
    what: &str,
    mut done: impl FnMut(&orm::routing::ReplicaStatus) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = db.check_replicas();
        if done(&status[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never became {what}: {status:?}"
        );
        // Waiting for the replica to change, not for a time to pass.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one test with a replica of its own (`ORM_TEST_STOPPABLE_REPLICA_URL`, cluster
/// `ORM_TEST_STOPPABLE_REPLICA_CLUSTER` as "version name"): it pauses its replay and
/// stops it, so the other tests' replica is never disturbed.
#[test]
fn a_lagging_or_stopped_replica_is_skipped_and_comes_back() {
    let Some(cluster_name) =
        scale_out_env("ORM_TEST_STOPPABLE_REPLICA_CLUSTER", "a stoppable replica")
    else {
        return;
    };
    let name: Vec<String> = cluster_name.split_whitespace().map(str::to_owned).collect();
    let Some(t) = replicated_on("ORM_TEST_STOPPABLE_REPLICA_URL", |b| {
        b.replica_check_interval(Duration::from_secs(3600))
            .max_replica_lag(Duration::from_millis(300))
            .read_your_writes(Duration::from_secs(3600))
            .replica_checkout_timeout(Duration::from_secs(30))
    }) else {
        return;
    };
    seeded(&t);
    let db = t.db.clone();
    check_until(&db, "usable", |s| s.usable);
    let rt = runtime();
    let fresh_read = || rt.block_on(capture_async(Message::objects().acount(&db)));
    let (n, captured) = fresh_read();
    assert_eq!(n.unwrap(), 7);
    assert_eq!(roles(&captured), [Role::Replica]);

    // Lag: the replica stops replaying while the primary writes.
    let replica_url = db.replicas()[0].server.address.to_string();
    let mut replica =
        diesel::PgConnection::establish(&format!("postgres://postgres@{replica_url}/postgres"))
            .unwrap();
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    struct Resume(diesel::PgConnection);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = self.0.batch_execute("SELECT pg_wal_replay_resume()");
        }
    }
    let resume = Resume(replica);
    let mut written = 0;
    check_until(&db, "lagging", |s| {
        // Each round writes, so the primary's position moves past the replica's.
        Thread::objects()
            .filter(weave_thread::id.eq(2))
            .update(
                &mut t.conn(),
                weave_thread::title.eq(format!("lag {written}")),
            )
            .unwrap();
        written += 1;
        !s.usable && s.lag.is_some_and(|l| l > Duration::from_millis(300))
    });
    let status = db.replicas();
    assert!(
        status[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("lags "),
        "{status:?}"
    );
    // Reads of a fresh scope now go to the primary and see the latest write.
    let (title, captured) = rt.block_on(capture_async(
        Thread::objects().filter(weave_thread::id.eq(2)).aget(&db),
    ));
    assert!(title.unwrap().title.starts_with("lag "));
    assert_eq!(roles(&captured), [Role::Primary]);
    drop(resume);
    check_until(&db, "usable after the lag", |s| s.usable);
    t.db.wait_for_replicas(Duration::from_secs(60)).unwrap();
    assert_eq!(roles(&fresh_read().1), [Role::Replica]);

    // Down: the replica's server stops mid-test; reads continue on the primary.
    let restart = Restart(&name);
    assert!(cluster(&name, "stop").unwrap().success());
    let (n, captured) = fresh_read();
    assert_eq!(n.unwrap(), 7, "the read is answered on the primary");
    assert_eq!(roles(&captured).last(), Some(&Role::Primary), "{captured}");
    let (n, captured) = capture(|| Message::objects().count(&mut t.db.read().unwrap()));
    assert_eq!(n.unwrap(), 7);
    assert_eq!(roles(&captured), [Role::Primary]);
    let status = db.check_replicas();
    assert!(!status[0].usable);
    assert!(
        status[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("unreachable"),
        "{status:?}"
    );
    // Back: the next check finds it, and reads return to it.
    assert!(cluster(&name, "start").unwrap().success());
    std::mem::forget(restart);
    check_until(&db, "usable after the restart", |s| s.usable);
    t.db.wait_for_replicas(Duration::from_secs(60)).unwrap();
    let (n, captured) = fresh_read();
    assert_eq!(n.unwrap(), 7);
    assert_eq!(roles(&captured), [Role::Replica]);
}

/// libpq's multi-host URLs pick the server by its role at connect time: the
/// primary's URL with `target_session_attrs=read-write` follows a failover, a
/// replica's with `standby` never lands on a primary.
#[test]
fn multi_host_urls_choose_the_server_by_its_role() {
    let Some(replica) = scale_out_env("ORM_TEST_REPLICA_URL", "a streaming replica") else {
        return;
    };
    let primary = orm_tests::postgres_url();
    // `postgres://user@host:port/db`: the authority and the database.
    let split = |url: &str| {
        let rest = url.split_once("://").unwrap().1;
        let (authority, database) = rest.split_once('/').unwrap();
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, h)| h)
            .to_owned();
        (host, database.split('?').next().unwrap().to_owned())
    };
    let ((primary_host, database), (replica_host, _)) = (split(&primary), split(&replica));
    #[derive(diesel::QueryableByName)]
    struct Recovery {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        standby: bool,
    }
    let standby = |url: &str| {
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::PgConnection::establish(url).unwrap();
        diesel::sql_query("SELECT pg_is_in_recovery() AS standby")
            .get_result::<Recovery>(&mut conn)
            .unwrap()
            .standby
    };
    // The standby listed first: read-write skips it.
    let writer = format!("postgres://postgres@{replica_host},{primary_host}/{database}?target_session_attrs=read-write");
    assert!(!standby(&writer));
    let reader = format!(
        "postgres://postgres@{primary_host},{replica_host}/{database}?target_session_attrs=standby"
    );
    assert!(standby(&reader));
    // As the pool's URLs: the primary a multi-host URL, the replica one too.
    let db = orm::Database::builder(&writer)
        .replica(&reader)
        .replica_check_interval(Duration::from_secs(3600))
        .open()
        .unwrap();
    assert_eq!(
        db.server().address.as_ref(),
        format!("{replica_host},{primary_host}")
    );
    let status = db.replicas();
    assert!(status[0].usable, "{status:?}");
    let (done, captured) = capture(|| {
        use diesel::connection::SimpleConnection;
        db.read().unwrap().batch_execute("SELECT 1")
    });
    done.unwrap();
    assert_eq!(roles(&captured), [Role::Replica]);
}
