//! Column types beyond the shared set (the shop's `Event`: a `uuid` key and a
//! nullable `uuid` key to its own table, `timestamptz`, a date, a time, `jsonb`,
//! `numeric`, and `timestamptz` bookkeeping columns) through the whole API on both
//! backends, with query counts. SQLite holds them as text, JSONB and REAL.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use orm::bulk::BulkCreate;
use orm::paginate::CursorSecret;
use orm::prelude::*;
use orm::{assert_num_queries, capture, AnyConnection, StreamStrategy};
use orm_tests::shop::{seed, shop_customer, shop_event, Customer, Event};
use orm_tests::shop_on_both_backends;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn when(minutes: i64) -> DateTime<Utc> {
    orm_tests::at(minutes).and_utc()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
}

fn time(h: u32, m: u32, micros: u32) -> NaiveTime {
    NaiveTime::from_hms_micro_opt(h, m, 0, micros).unwrap()
}

fn amount(text: &str) -> BigDecimal {
    BigDecimal::from_str(text).unwrap()
}

/// Five events of three customers; 2 follows 1, 4 follows 3, 5 follows 2. Their
/// bookkeeping times are the events' own (written with `keep_timestamps`).
fn events() -> Vec<Event> {
    let event =
        |n, customer_id, follows: Option<u128>, minutes, d, at_time, payload, amount_text| Event {
            id: id(n),
            customer_id,
            follows_id: follows.map(id),
            happened_at: when(minutes),
            day: day(d),
            at_time,
            payload,
            amount: amount(amount_text),
            created: when(minutes),
            updated: when(minutes),
        };
    vec![
        event(
            1,
            1,
            None,
            10,
            1,
            time(9, 0, 0),
            serde_json::json!({"kind": "visit"}),
            "0.00",
        ),
        event(
            2,
            1,
            Some(1),
            20,
            2,
            time(10, 30, 0),
            serde_json::json!({"kind": "order", "items": [1, 2]}),
            "12.50",
        ),
        event(
            3,
            2,
            None,
            30,
            2,
            time(11, 15, 0),
            serde_json::json!({"kind": "visit"}),
            "0.00",
        ),
        event(
            4,
            2,
            Some(3),
            40,
            3,
            time(8, 5, 0),
            serde_json::json!({"kind": "refund"}),
            "-3.25",
        ),
        event(
            5,
            3,
            Some(2),
            50,
            4,
            time(23, 59, 123_456),
            serde_json::json!({"kind": "order", "items": []}),
            "99.99",
        ),
    ]
}

fn seeded(db: &orm_tests::TestDb) -> orm::PooledConnection {
    let mut conn = db.conn();
    seed(&mut conn).expect("seed the shop");
    let created = Event::objects()
        .bulk_create_with(&mut conn, events(), &BulkCreate::new().keep_timestamps())
        .expect("seed the events");
    assert_eq!(created.ids, (1..=5).map(id).collect::<Vec<_>>());
    conn
}

/// An event's followed event and the one that follows in turn, by id.
type Chain = Option<(Uuid, Option<Uuid>)>;

/// Each follower's id with its followers' ids.
type Followers = Vec<(Uuid, Vec<Uuid>)>;

fn ids_of(events: &[Event]) -> Vec<Uuid> {
    ids(events)
}

fn ids(events: &[Event]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn walk(pages: &orm::paginate::KeysetPaginator<Event>, conn: &mut AnyConnection) -> Vec<Uuid> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = pages.page(conn, cursor.as_deref()).unwrap();
        keys.extend(page.results.iter().map(|e| e.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

shop_on_both_backends! {
    fn every_column_type_round_trips(db) {
        let conn = &mut seeded(&db);
        // Default ordering: happened_at descending.
        let mut all = assert_num_queries!(1, Event::objects().all(conn)).unwrap();
        let mut expected = events();
        expected.reverse();
        if db.backend() == Backend::Sqlite {
            // SQLite keeps NUMERIC as a REAL: 99.99 comes back as the nearest double.
            assert_ne!(all[0].amount, amount("99.99"));
            for event in &mut all {
                event.amount = event.amount.round(2);
            }
        }
        assert_eq!(all, expected);
        let one = assert_num_queries!(1, Event::objects().filter(shop_event::id.eq(id(5))).get(conn)).unwrap();
        assert_eq!(one.at_time, time(23, 59, 123_456));
        assert_eq!(one.payload["items"], serde_json::json!([]));
        // `create` returns the uuid; the bookkeeping columns are set to now, in UTC.
        let before = Utc::now();
        let row = Event { id: id(9), follows_id: None, ..events().remove(0) };
        let key = Event::objects().create(conn, row).unwrap();
        assert_eq!(key, id(9));
        let written = Event::objects().filter(shop_event::id.eq(id(9))).get(conn).unwrap();
        assert_eq!(written.created, written.updated);
        assert!((written.created - before).num_minutes().abs() < 30, "{} vs {before}", written.created);
        // `create_returning`: the row as stored, in the same statement.
        let row = Event { id: id(10), follows_id: Some(id(9)), ..events().remove(1) };
        let returned = assert_num_queries!(1, Event::objects().create_returning(conn, row)).unwrap();
        let stored = Event::objects().filter(shop_event::id.eq(id(10))).get(conn).unwrap();
        assert_eq!(returned, stored);
        assert_eq!((returned.follows_id, returned.day), (Some(id(9)), day(2)));
        assert!((returned.created - before).num_minutes().abs() < 30, "{}", returned.created);
    }

    fn filters_take_values_of_each_type(db) {
        let conn = &mut seeded(&db);
        let qs = Event::objects();
        let later = qs.clone().filter(shop_event::happened_at.gt(when(30))).all(conn).unwrap();
        assert_eq!(ids(&later), [id(5), id(4)]);
        let on_day = qs.clone().filter(shop_event::day.eq(day(2))).all(conn).unwrap();
        assert_eq!(ids(&on_day), [id(3), id(2)]);
        let mornings = qs.clone().filter(shop_event::at_time.lt(time(10, 0, 0))).all(conn).unwrap();
        assert_eq!(ids(&mornings), [id(4), id(1)]);
        let big = qs.clone().filter(shop_event::amount.gt(amount("10"))).all(conn).unwrap();
        assert_eq!(ids(&big), [id(5), id(2)]);
        let firsts = qs.clone().filter(shop_event::follows_id.is_null()).all(conn).unwrap();
        assert_eq!(ids(&firsts), [id(3), id(1)]);
        let after_two = qs.clone().filter(shop_event::follows_id.eq(id(2))).all(conn).unwrap();
        assert_eq!(ids(&after_two), [id(5)]);
        let some = qs.clone().filter(shop_event::id.eq_any_key([id(2), id(4), id(7)])).all(conn).unwrap();
        assert_eq!(ids(&some), [id(4), id(2)]);
        // Any number of keys in one bound value (an array; SQLite: a JSON list).
        let many: Vec<Uuid> = (100..40_100).map(id).chain([id(2)]).collect();
        let found = assert_num_queries!(1, qs.clone().filter(shop_event::id.eq_any_key(many)).all(conn)).unwrap();
        assert_eq!(ids(&found), [id(2)]);
        let found = assert_num_queries!(1, qs.in_bulk(conn, &[id(1), id(3), id(8)])).unwrap();
        let mut keys: Vec<_> = found.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, [id(1), id(3)]);
        assert_eq!(qs.clone().filter(shop_event::day.ge(day(3))).count(conn).unwrap(), 2);
        assert!(qs.clone().filter(shop_event::amount.lt(amount("0"))).exists(conn).unwrap());
    }

    fn keyset_pages_and_streams_follow_uuid_time_and_date_columns(db) {
        let conn = &mut seeded(&db);
        let secret = CursorSecret::new("the column types' secret for the tests").unwrap();
        // (happened_at DESC, id DESC): a timestamptz cursor, bound as a timestamptz.
        let pages = Event::objects().keyset(2, &secret);
        assert_eq!(walk(&pages, conn), [5, 4, 3, 2, 1].map(id));
        // (day ASC, id ASC): a date cursor and a uuid tie-breaker.
        let pages = Event::objects().order_by((shop_event::day.asc(), shop_event::id.asc())).keyset(2, &secret);
        assert_eq!(walk(&pages, conn), [1, 2, 3, 4, 5].map(id));
        // (at_time DESC, id ASC): a time cursor.
        let pages = Event::objects().order_by((shop_event::at_time.desc(), shop_event::id.asc())).keyset(1, &secret);
        assert_eq!(walk(&pages, conn), [5, 3, 2, 1, 4].map(id));

        // (amount DESC, id ASC): a decimal cursor.
        let pages = Event::objects().order_by((shop_event::amount.desc(), shop_event::id.asc())).keyset(2, &secret);
        assert_eq!(walk(&pages, conn), [5, 2, 1, 3, 4].map(id));

        // Chunks after the last uuid of each: three statements for five rows by two.
        let by_key = Event::objects().order_by(shop_event::id.asc());
        assert_eq!(by_key.stream_sql(db.backend(), 2).unwrap().0, StreamStrategy::Keyset);
        let (chunks, captured) = capture(|| {
            by_key.chunks(conn, 2).unwrap().map(|c| ids(&c.unwrap())).collect::<Vec<_>>()
        });
        assert_eq!(chunks, [vec![id(1), id(2)], vec![id(3), id(4)], vec![id(5)]]);
        assert_eq!(captured.len(), 3);
        // The default ordering streams with a cursor (PostgreSQL) or by stepping (SQLite).
        let streamed: Vec<Uuid> = Event::objects().stream(conn, 2).unwrap().map(|e| e.unwrap().id).collect();
        assert_eq!(streamed, [5, 4, 3, 2, 1].map(id));
    }

    fn relations_follow_uuid_keys(db) {
        let conn = &mut seeded(&db);
        // Reverse over an i32 key: each customer's events, newest first.
        let customers = assert_num_queries!(2, Customer::objects().prefetch(Customer::events()).all(conn)).unwrap();
        let got: Vec<(i32, Vec<Uuid>)> = customers.iter().map(|(c, e)| (c.id, ids(e))).collect();
        assert_eq!(got, [(3, vec![id(5)]), (2, vec![id(4), id(3)]), (1, vec![id(2), id(1)])]);
        // Forward over a nullable uuid key to the same table: one list of uuids.
        let events = assert_num_queries!(2, Event::objects().prefetch(Event::follows).all(conn)).unwrap();
        let follows: Vec<(Uuid, Option<Uuid>)> = events.iter().map(|(e, f)| (e.id, f.as_ref().map(|f| f.id))).collect();
        assert_eq!(
            follows,
            [(id(5), Some(id(2))), (id(4), Some(id(3))), (id(3), None), (id(2), Some(id(1))), (id(1), None)]
        );
        // Reverse over it, two levels: each event's followers and theirs.
        let chains = assert_num_queries!(
            3,
            Event::objects()
                .filter(shop_event::follows_id.is_null())
                .prefetch(Event::followers().prefetch(Event::followers()))
                .all(conn)
        )
        .unwrap();
        let got: Vec<(Uuid, Followers)> = chains
            .iter()
            .map(|(e, fs)| (e.id, fs.iter().map(|(f, ffs)| (f.id, ids(ffs))).collect()))
            .collect();
        assert_eq!(got, [(id(3), vec![(id(4), vec![])]), (id(1), vec![(id(2), vec![id(5)])])]);
        // Joined: each event with its customer, one statement.
        let joined = assert_num_queries!(1, Event::objects().select_related(Event::customer).limit(2).all(conn)).unwrap();
        let got: Vec<(Uuid, &str)> = joined.iter().map(|(e, c)| (e.id, c.name.as_str())).collect();
        assert_eq!(got, [(id(5), "Cy"), (id(4), "Bo")]);
        // The lazy accessor binds the uuid.
        let followed = assert_num_queries!(1, Event::follows.get(&joined[0].0, conn)).unwrap();
        assert_eq!(followed.map(|e| e.id), Some(id(2)));
    }

    fn lookups_and_orderings_through_a_self_referential_key(db) {
        let conn = &mut seeded(&db);
        // Events following one of customer 1's: 2 follows 1, 5 follows 2.
        let after_ones = Event::objects().filter(Event::follows.is(shop_event::customer_id.eq(1)));
        assert_eq!(ids(&assert_num_queries!(1, after_ones.all(conn)).unwrap()), [5, 2].map(id));
        // Two hops on the same table: events following an event that follows event 1.
        let second = Event::objects().filter(Event::follows.is(Event::follows.is(shop_event::id.eq(id(1)))));
        assert_eq!(ids(&second.all(conn).unwrap()), [id(5)]);
        // Exclude keeps the events that follow nothing (a NULL key).
        let others = Event::objects().exclude(Event::follows.is(shop_event::customer_id.eq(1)));
        assert_eq!(ids(&others.all(conn).unwrap()), [4, 3, 1].map(id));
        // Reverse: events someone follows, and the others.
        let followed = Event::objects().filter(Event::followers().exists());
        assert_eq!(ids(&assert_num_queries!(1, followed.all(conn)).unwrap()), [3, 2, 1].map(id));
        let last = Event::objects().exclude(Event::followers().exists());
        assert_eq!(ids(&last.all(conn).unwrap()), [5, 4].map(id));
        let sql = followed.sql(db.backend()).unwrap();
        assert!(sql.contains(" IS NOT NULL AND ") && !sql.contains("EXISTS"), "{sql}");
        // Ordered by the followed event's time: 2 (after 1, at 10), 5 (after 2, at
        // 20), 4 (after 3, at 30); the related table is read under an alias.
        let by_followed = Event::objects()
            .filter(shop_event::follows_id.is_not_null())
            .order_by((Event::follows.by(shop_event::happened_at.asc()), shop_event::id.asc()));
        assert_eq!(ids(&assert_num_queries!(1, by_followed.all(conn)).unwrap()), [2, 5, 4].map(id));
        // An aggregate through a key to the same table cannot name the outer row:
        // a typed error before anything is sent.
        let refused = assert_num_queries!(0, Event::objects().annotate::<_, (Event, i64)>(Event::followers().count()).all(conn));
        assert!(matches!(refused, Err(orm::Error::InvalidArgument { argument: "relation", .. })), "{refused:?}");
        // Through another table: events by their customer's name, Z to A.
        let by_name = Event::objects().order_by((Event::customer.by(shop_customer::name.desc()), shop_event::id.asc()));
        assert_eq!(ids(&by_name.all(conn).unwrap()), [5, 3, 4, 1, 2].map(id));
    }

    fn writes_key_by_uuid_and_stamp_a_timestamptz(db) {
        let conn = &mut seeded(&db);
        let before = Utc::now();
        let changed = assert_num_queries!(
            1,
            Event::objects().bulk_update(
                conn,
                (shop_event::amount, shop_event::day),
                vec![(id(1), (amount("1.25"), day(9))), (id(5), (amount("2.50"), day(9))), (id(8), (amount("0"), day(1)))],
            )
        )
        .unwrap();
        assert_eq!(changed, 2);
        let rows = Event::objects().filter(shop_event::day.eq(day(9))).all(conn).unwrap();
        assert_eq!(ids(&rows), [id(5), id(1)]);
        assert_eq!(rows[0].amount, amount("2.5"));
        assert!((rows[0].updated - before).num_minutes().abs() < 30, "{}", rows[0].updated);
        let changed = Event::objects()
            .filter(shop_event::id.eq(id(3)))
            .update(conn, shop_event::payload.eq(serde_json::json!({"kind": "seen"})))
            .unwrap();
        assert_eq!(changed, 1);
        let three = Event::objects().filter(shop_event::id.eq(id(3))).get(conn).unwrap();
        assert_eq!(three.payload, serde_json::json!({"kind": "seen"}));
        assert!((three.updated - before).num_minutes().abs() < 30, "{}", three.updated);
        let deleted = Event::objects().filter(shop_event::follows_id.eq(id(2))).delete(conn).unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(Event::objects().count(conn).unwrap(), 4);
    }

    fn timestamptz_is_right_whatever_the_session_time_zone(db) {
        let conn = &mut seeded(&db);
        if db.backend() == Backend::Postgres {
            // Berlin is an hour ahead of UTC in January: a `timestamp` bind would be
            // read as Berlin time and stored an hour early.
            conn.batch_execute("SET TIME ZONE 'Europe/Berlin'").unwrap();
        }
        let noon = when(12 * 60);
        let row = Event { id: id(7), happened_at: noon, follows_id: None, ..events().remove(0) };
        Event::objects().bulk_create_with(conn, vec![row], &BulkCreate::new().keep_timestamps()).unwrap();
        let read = Event::objects().filter(shop_event::happened_at.eq(noon)).get(conn).unwrap();
        assert_eq!((read.id, read.happened_at), (id(7), noon));
        if db.backend() == Backend::Postgres {
            #[derive(diesel::QueryableByName)]
            struct Utc_ {
                #[diesel(sql_type = diesel::sql_types::Text)]
                utc: String,
            }
            let stored: Utc_ = orm::with_inner!(&mut **conn, |c| diesel::sql_query(
                "SELECT to_char(happened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS utc FROM shop_event WHERE happened_at = '2024-01-01 12:00:00+00'"
            )
            .get_result(c))
            .unwrap();
            assert_eq!(stored.utc, "2024-01-01 12:00");
        }
        // The bookkeeping stamp and a keyset cursor over the zone-aware column.
        let before = Utc::now();
        Event::objects().filter(shop_event::id.eq(id(7))).update(conn, shop_event::day.eq(day(20))).unwrap();
        let seven = Event::objects().filter(shop_event::id.eq(id(7))).get(conn).unwrap();
        assert!((seven.updated - before).num_minutes().abs() < 30, "{} vs {before}", seven.updated);
        let secret = CursorSecret::new("the column types' secret for the tests").unwrap();
        let pages = Event::objects().keyset(1, &secret);
        assert_eq!(walk(&pages, conn), [7, 5, 4, 3, 2, 1].map(id));
    }
}

orm_tests::on_both_backends! {
    fn the_demo_writes_its_timestamps_as_instants(db) {
        use demo::models::{NewPerson, Person};
        use demo::schema::weave_person;
        let conn = &mut db.conn();
        if db.backend() == Backend::Postgres {
            conn.batch_execute("SET TIME ZONE 'Asia/Tokyo'").unwrap();
        }
        let before = Utc::now().naive_utc();
        let row = NewPerson {
            created: before,
            updated: before,
            deleted: false,
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email_address: "ada@example.org".into(),
        };
        let id = Person::objects().create(conn, row).unwrap();
        Person::objects().filter(weave_person::id.eq(id)).update(conn, weave_person::first_name.eq("Augusta")).unwrap();
        let ada = Person::objects().filter(weave_person::id.eq(id)).get(conn).unwrap();
        // Tokyo is nine hours ahead: a `timestamp` bind would land nine hours off.
        assert!((ada.created - before).num_minutes().abs() < 30, "{} vs {before}", ada.created);
        assert!((ada.updated - before).num_minutes().abs() < 30, "{} vs {before}", ada.updated);
        let found = Person::objects().filter(weave_person::created.eq(ada.created)).count(conn).unwrap();
        assert_eq!(found, 1);
        if db.backend() == Backend::Sqlite {
            // Text another program wrote with an offset is read as its UTC instant.
            conn.batch_execute(
                "INSERT INTO weave_person (id, created, updated, deleted, first_name, last_name, email_address) \
                 VALUES (90, '2024-01-01 09:00:00+09:00', '2024-01-01 00:00:00', false, 'Kenji', 'Sato', 'kenji@example.org')",
            )
            .unwrap();
            let kenji = Person::objects().filter(weave_person::id.eq(90)).get(conn).unwrap();
            assert_eq!(kenji.created, kenji.updated);
        }
    }
}

shop_on_both_backends! {
    fn a_key_to_its_own_table_joins_under_an_alias(db) {
        let conn = &mut seeded(&db);
        let qs = Event::objects().select_related(Event::follows.aliased("follows"));
        let rows = assert_num_queries!(1, qs.all(conn)).unwrap();
        let got: Vec<(Uuid, Option<Uuid>)> = rows.iter().map(|(e, f)| (e.id, f.as_ref().map(|f| f.id))).collect();
        assert_eq!(
            got,
            [(id(5), Some(id(2))), (id(4), Some(id(3))), (id(3), None), (id(2), Some(id(1))), (id(1), None)]
        );
        // The followed event's own columns, not the follower's.
        assert_eq!(rows[0].1.as_ref().map(|f| f.happened_at), Some(when(20)));
        let sql = qs.sql(db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(
                sql.contains(r#"LEFT JOIN "shop_event" AS "follows" ON "follows"."id" = "shop_event"."follows_id""#),
                "{sql}"
            ),
            Backend::Sqlite => assert!(
                sql.contains("LEFT JOIN `shop_event` AS `follows` ON `follows`.`id` = `shop_event`.`follows_id`"),
                "{sql}"
            ),
        }
        // Sliced first, then joined to itself.
        let two = assert_num_queries!(1, qs.clone().limit(2).all(conn)).unwrap();
        assert_eq!(two.iter().map(|(e, _)| e.id).collect::<Vec<_>>(), [id(5), id(4)]);
        // A chain from the nullable key: the followed event's customer, LEFT JOINs.
        let chain = Event::objects().select_related(Event::follows.aliased("f").then(Event::customer));
        let rows = assert_num_queries!(1, chain.all(conn)).unwrap();
        let got: Vec<(Uuid, Option<(Uuid, &str)>)> = rows
            .iter()
            .map(|(e, f)| (e.id, f.as_ref().map(|(f, c)| (f.id, c.name.as_str()))))
            .collect();
        assert_eq!(
            got,
            [(id(5), Some((id(2), "Ada"))), (id(4), Some((id(3), "Bo"))), (id(3), None), (id(2), Some((id(1), "Ada"))), (id(1), None)]
        );
        let sql = chain.sql(db.backend()).unwrap();
        match db.backend() {
            Backend::Postgres => assert!(sql.contains(r#"LEFT JOIN "shop_event" AS "f" ON "f"."id" = "shop_event"."follows_id" LEFT JOIN "shop_customer" ON "shop_customer"."id" = "f"."customer_id""#), "{sql}"),
            Backend::Sqlite => assert!(sql.contains("LEFT JOIN `shop_event` AS `f` ON `f`.`id` = `shop_event`.`follows_id` LEFT JOIN `shop_customer` ON `shop_customer`.`id` = `f`.`customer_id`"), "{sql}"),
        }
        // Two levels of the same key (an employee, their manager, the manager's).
        let twice = Event::objects().select_related(Event::follows.aliased("f").then(Event::follows.aliased("ff")));
        let rows = assert_num_queries!(1, twice.all(conn)).unwrap();
        let got: Vec<(Uuid, Chain)> = rows
            .iter()
            .map(|(e, f)| (e.id, f.as_ref().map(|(f, ff)| (f.id, ff.as_ref().map(|ff| ff.id)))))
            .collect();
        assert_eq!(
            got,
            [(id(5), Some((id(2), Some(id(1))))), (id(4), Some((id(3), None))), (id(3), None), (id(2), Some((id(1), None))), (id(1), None)]
        );
        // A plain nullable chain into the same table needs the alias too.
        let err = Event::objects().select_related(Event::follows.then(Event::customer)).all(conn).unwrap_err();
        assert!(matches!(err, orm::Error::TableJoinedTwice { model: "Event" }), "{err}");
        // Without the alias: refused before any SQL.
        let err = Event::objects().select_related(Event::follows).all(conn).unwrap_err();
        assert!(matches!(err, orm::Error::TableJoinedTwice { .. }), "{err}");
    }
}

shop_on_both_backends! {
    fn postgresql_only_types_and_operators(db) {
        use diesel::{PgArrayExpressionMethods, PgJsonbExpressionMethods, PgTextExpressionMethods};
        use orm_tests::shop::{shop_customer, shop_note, Mood, Note};
        let conn = &mut seeded(&db);
        let note = |id, customer_id, mood, tags: &[&str], body: &str| Note {
            id,
            customer_id,
            mood,
            tags: tags.iter().map(|t| Some((*t).to_owned())).collect(),
            body: body.into(),
        };
        let notes = vec![
            note(1, 1, Mood::Glad, &["vip", "early"], "Hello there"),
            note(2, 2, Mood::Cross, &["late"], "Refund please"),
            note(3, 1, Mood::Calm, &[], "hello again"),
        ];
        let note_ids = |rows: &[Note]| rows.iter().map(|n| n.id).collect::<Vec<_>>();
        match db.backend() {
            Backend::Postgres => {
                // One INSERT, and diesel's lookup of the enum's type (once per connection).
                let ids = assert_num_queries!(2, Note::objects().bulk_create(conn, notes.clone())).unwrap();
                assert_eq!(ids, [1, 2, 3]);
                assert_eq!(Note::objects().all(conn).unwrap(), notes);
                let vip = Note::objects()
                    .filter(orm::pg(shop_note::tags.contains(vec![Some("vip".to_owned())])))
                    .all(conn)
                    .unwrap();
                assert_eq!(note_ids(&vip), [1]);
                let cross = Note::objects().filter(orm::pg(shop_note::mood.eq(Mood::Cross))).all(conn).unwrap();
                assert_eq!(note_ids(&cross), [2]);
                let hello = Note::objects().filter(orm::pg(shop_note::body.ilike("hello%"))).all(conn).unwrap();
                assert_eq!(note_ids(&hello), [1, 3]);
                assert_eq!(Note::objects().filter(orm::pg(shop_note::tags.overlaps_with(vec![Some("late".to_owned())]))).count(conn).unwrap(), 1);
                // Relations of a PostgreSQL-only model.
                let customers = assert_num_queries!(2, Customer::objects().prefetch(Customer::notes()).all(conn)).unwrap();
                let of_ada: Vec<i32> = customers.iter().filter(|(c, _)| c.id == 1).flat_map(|(_, n)| note_ids(n)).collect();
                assert_eq!(of_ada, [1, 3]);
                let joined = assert_num_queries!(1, Note::objects().select_related(Note::customer).all(conn)).unwrap();
                assert_eq!(joined.iter().map(|(n, c)| (n.id, c.name.as_str())).collect::<Vec<_>>(), [(1, "Ada"), (2, "Bo"), (3, "Ada")]);
                // Pages, keyset pages and streams of a PostgreSQL-only model.
                let page = Note::objects().paginate(2).page(conn, "2").unwrap();
                assert_eq!(note_ids(&page.results), [3]);
                let secret = CursorSecret::new("the column types' secret for the tests").unwrap();
                let first = Note::objects().keyset(2, &secret).page(conn, None).unwrap();
                assert_eq!(note_ids(&first.results), [1, 2]);
                let streamed: Vec<i32> = Note::objects().stream(conn, 2).unwrap().map(|n| n.unwrap().id).collect();
                assert_eq!(streamed, [1, 2, 3]);
                // An update of a PostgreSQL-only column.
                let changed = Note::objects()
                    .filter(shop_note::id.eq(2))
                    .update(conn, orm::pg((shop_note::mood.eq(Mood::Calm), shop_note::tags.eq(vec![Some("done".to_owned())]))))
                    .unwrap();
                assert_eq!(changed, 1);
                let two = Note::objects().filter(shop_note::id.eq(2)).get(conn).unwrap();
                assert_eq!((two.mood, two.tags), (Mood::Calm, vec![Some("done".to_owned())]));
                // A jsonb operator on a portable model.
                let orders = Event::objects()
                    .filter(orm::pg(shop_event::payload.contains(serde_json::json!({"kind": "order"}))))
                    .all(conn)
                    .unwrap();
                assert_eq!(ids_of(&orders), [id(5), id(2)]);
            }
            Backend::Sqlite => {
                // No SQL reaches SQLite: each is refused while the statement is built.
                let (rows, captured) = capture(|| Note::objects().all(conn));
                assert!(rows.unwrap_err().is_unsupported());
                let (created, captured_too) = capture(|| Note::objects().bulk_create(conn, notes));
                assert!(created.unwrap_err().is_unsupported());
                let (found, captured_three) = capture(|| {
                    Customer::objects().filter(orm::pg(shop_customer::name.ilike("a%"))).all(conn)
                });
                assert!(found.unwrap_err().is_unsupported());
                let all = [captured, captured_too, captured_three];
                let statements: Vec<&str> = all
                    .iter()
                    .flat_map(|c| c.sql())
                    .filter(|sql| !sql.starts_with("BEGIN") && !sql.starts_with("ROLLBACK") && !sql.starts_with("COMMIT"))
                    .collect();
                assert!(statements.is_empty(), "{statements:?}");
            }
        }
    }
}

shop_on_both_backends! {
    fn rows_without_timestamp_fields_get_them_from_the_write(db) {
        use orm::bulk::InsertMethod;
        use orm_tests::shop::NewEvent;
        let conn = &mut seeded(&db);
        let new_event = |n, minutes| NewEvent {
            id: id(n),
            customer_id: 2,
            follows_id: None,
            happened_at: when(minutes),
            day: day(5),
            at_time: time(7, 0, 0),
            payload: serde_json::json!({"kind": "new"}),
            amount: amount("1.50"),
        };
        let before = Utc::now();
        let (event, captured) = capture(|| Event::objects().create_returning(conn, new_event(20, 60)));
        let event = event.unwrap();
        assert_eq!(captured.len(), 1);
        assert!(captured.sql()[0].contains("\"created\", \"updated\")") || captured.sql()[0].contains("`created`, `updated`)"), "{}", captured.sql()[0]);
        assert_eq!(event.created, event.updated);
        assert!((event.created - before).num_minutes().abs() < 30, "{}", event.created);
        let ids = assert_num_queries!(1, Event::objects().bulk_create(conn, vec![new_event(21, 61), new_event(22, 62)])).unwrap();
        assert_eq!(ids, [id(21), id(22)]);
        let stamped = Event::objects().filter(shop_event::day.eq(day(5))).all(conn).unwrap();
        assert_eq!(stamped.len(), 3);
        assert!(stamped.iter().all(|e| e.created == e.updated && (e.created - before).num_minutes().abs() < 30));
        // They are inserted, never copied.
        let err = Event::objects()
            .bulk_create_with(conn, vec![new_event(23, 63)], &BulkCreate::new().method(InsertMethod::Copy))
            .unwrap_err();
        assert!(matches!(err, orm::Error::InvalidArgument { argument: "method", .. }), "{err}");
    }
}
