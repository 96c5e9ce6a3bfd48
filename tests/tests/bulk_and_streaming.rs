//! Bulk writes (chunked INSERT, COPY, upsert, bulk_update) and bounded-memory
//! streaming, on both backends: chunk boundaries, conflicts, rollback, ids,
//! timestamps, and the number of statements each sends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use demo::models::{Message, NewMessage, NewPerson, NewThread, Person, Thread};
use demo::schema::{weave_message, weave_person, weave_thread};
use orm::bulk::{BulkCreate, InsertMethod, COPY_THRESHOLD};
use orm::prelude::*;
use orm::{atomic, capture, Error, StreamStrategy};
use orm_tests::{at, on_all_backends, seed};

/// A new message in thread `thread` from person `sender`, timestamps left for the ORM.
fn message(text: impl Into<String>, sender: i64, thread: i64) -> NewMessage {
    NewMessage {
        created: at(0),
        updated: at(0),
        deleted: false,
        text: text.into(),
        sent_by_id: sender,
        thread_id: thread,
    }
}

fn person(first: &str, email: &str) -> NewPerson {
    NewPerson {
        created: at(0),
        updated: at(0),
        deleted: false,
        first_name: first.into(),
        last_name: "Bulk".into(),
        email_address: email.into(),
    }
}

fn messages(n: usize) -> Vec<NewMessage> {
    (0..n)
        .map(|i| message(format!("bulk {i}"), 1 + (i % 2) as i64, 1 + (i % 2) as i64))
        .collect()
}

fn inserts(captured: &orm::Captured) -> usize {
    captured
        .sql()
        .iter()
        .filter(|s| s.starts_with("INSERT"))
        .count()
}

/// The data statements. PostgreSQL's `SET CONSTRAINTS ALL IMMEDIATE`, which a bulk
/// write that is its own transaction sends first, is a session statement: recorded,
/// never counted, so the counts are the same on both backends.
fn writes(captured: &orm::Captured) -> Vec<&str> {
    let session: Vec<_> = captured
        .all()
        .iter()
        .filter(|r| r.kind == orm::instrument::QueryKind::Session)
        .collect();
    assert!(
        session
            .iter()
            .all(|r| r.sql == "SET CONSTRAINTS ALL IMMEDIATE"),
        "{captured}"
    );
    captured.sql()
}

on_all_backends! {
    fn bulk_create_of_no_rows_sends_nothing(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (ids, captured) = capture(|| Message::objects().bulk_create(conn, Vec::<NewMessage>::new()));
        assert_eq!(ids.unwrap(), Vec::<i64>::new());
        assert!(captured.all().is_empty(), "{captured}");
    }

    fn bulk_create_of_exactly_one_chunk_is_one_statement(db) {
        let conn = &mut db.conn();
        seed(conn);
        let options = BulkCreate::new().batch_size(4);
        let (created, captured) = capture(|| Message::objects().bulk_create_with(conn, messages(4), &options));
        assert_eq!(created.unwrap().rows, 4);
        assert_eq!(writes(&captured).len(), 1, "{captured}");
        assert_eq!(inserts(&captured), 1);
    }

    fn bulk_create_of_one_row_over_a_chunk_is_two_statements_in_one_transaction(db) {
        let conn = &mut db.conn();
        seed(conn);
        let options = BulkCreate::new().batch_size(4);
        let (created, captured) = capture(|| Message::objects().bulk_create_with(conn, messages(5), &options));
        assert_eq!(created.unwrap().ids.len(), 5);
        assert_eq!(inserts(&captured), 2, "{captured}");
        let begins = captured.all().iter().filter(|r| r.sql.starts_with("BEGIN")).count();
        assert_eq!(begins, 1, "one transaction for both chunks: {captured}");
        assert_eq!(Message::objects().count(conn).unwrap(), 7 + 5);
    }

    fn bulk_create_fills_statements_up_to_the_bind_limit(db) {
        let conn = &mut db.conn();
        seed(conn);
        // A message row binds 6 values (all columns but the id).
        let per_statement = db.backend().capability().max_bind_params / 6;
        let (ids, captured) = capture(|| Message::objects().bulk_create(conn, messages(per_statement)));
        assert_eq!(ids.unwrap().len(), per_statement);
        assert_eq!(inserts(&captured), 1, "exactly one chunk at the limit");
        let (ids, captured) = capture(|| Message::objects().bulk_create(conn, messages(per_statement + 1)));
        assert_eq!(ids.unwrap().len(), per_statement + 1);
        assert_eq!(inserts(&captured), 2, "one row over the limit is a second statement");
        assert_eq!(Message::objects().count(conn).unwrap() as usize, 7 + 2 * per_statement + 1);
    }

    fn bulk_create_returns_the_new_ids_in_input_order(db) {
        let conn = &mut db.conn();
        seed(conn);
        let rows: Vec<NewMessage> = (0..7).map(|i| message(format!("ordered {i}"), 1, 2)).collect();
        let options = BulkCreate::new().batch_size(3);
        let ids = Message::objects().bulk_create_with(conn, rows, &options).unwrap().ids;
        assert_eq!(ids.len(), 7);
        let by_id = Message::objects().in_bulk(conn, &ids).unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(by_id[id].text, format!("ordered {i}"));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0] > 10, "after the seeded rows: {ids:?}");
    }

    fn bulk_create_sets_created_and_updated_to_now_unless_told_to_keep_them(db) {
        let conn = &mut db.conn();
        seed(conn);
        let before = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let ids = Message::objects().bulk_create(conn, messages(2)).unwrap();
        for m in Message::objects().in_bulk(conn, &ids).unwrap().values() {
            assert!(m.created >= before, "{}", m.created);
            assert_eq!(m.created, m.updated);
        }
        let kept = BulkCreate::new().keep_timestamps();
        let ids = Message::objects().bulk_create_with(conn, vec![message("old", 1, 1)], &kept).unwrap().ids;
        let m = Message::objects().in_bulk(conn, &ids).unwrap().remove(&ids[0]).unwrap();
        assert_eq!((m.created, m.updated), (at(0), at(0)));
    }

    fn create_inserts_one_row_with_timestamps_and_returns_its_id(db) {
        let conn = &mut db.conn();
        seed(conn);
        let before = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let (id, captured) = capture(|| Thread::objects().create(conn, NewThread {
            created: at(0), updated: at(0), deleted: false, title: "Created".into(),
        }));
        let id = id.unwrap();
        assert_eq!(captured.len(), 1, "{captured}");
        let thread = Thread::objects().filter(weave_thread::id.eq(id)).get(conn).unwrap();
        assert_eq!(thread.title, "Created");
        assert!(thread.created >= before && thread.updated == thread.created);
    }

    fn bulk_create_can_skip_conflicting_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let rows = vec![person("Ada again", "ada@example.org"), person("Barbara", "barbara@example.org")];
        let options = BulkCreate::new().ignore_conflicts();
        let (created, captured) = capture(|| Person::objects().bulk_create_with(conn, rows, &options));
        let created = created.unwrap();
        assert_eq!(created.rows, 1, "the duplicate e-mail is skipped");
        assert!(writes(&captured)[0].contains("ON CONFLICT DO NOTHING"), "{captured}");
        let ada = Person::objects().filter(weave_person::email_address.eq("ada@example.org")).get(conn).unwrap();
        assert_eq!(ada.first_name, "Ada");
        let barbara = Person::objects().filter(weave_person::id.eq(created.ids[0])).get(conn).unwrap();
        assert_eq!(barbara.first_name, "Barbara");
    }

    fn bulk_create_can_update_chosen_columns_of_conflicting_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let ada_before = Person::objects().filter(weave_person::id.eq(1)).get(conn).unwrap();
        let rows = vec![person("Augusta", "ada@example.org"), person("Barbara", "barbara@example.org")];
        let options = BulkCreate::new().update_conflicts((weave_person::email_address,), (weave_person::first_name,));
        let (created, captured) = capture(|| Person::objects().bulk_create_with(conn, rows, &options));
        let created = created.unwrap();
        assert_eq!(created.rows, 2);
        assert_eq!(created.ids[0], 1, "the upserted row keeps its id");
        let sql = writes(&captured)[0].to_owned();
        assert!(sql.contains("ON CONFLICT") && sql.contains("DO UPDATE SET"), "{sql}");
        let ada = Person::objects().filter(weave_person::id.eq(1)).get(conn).unwrap();
        assert_eq!(ada.first_name, "Augusta");
        assert_eq!(ada.last_name, "Lovelace", "columns not chosen are kept");
        assert_eq!(ada.created, ada_before.created, "created is kept");
        assert!(ada.updated > ada_before.updated, "updated moves");
        assert_eq!(Person::objects().with_deleted().count(conn).unwrap(), 4);
    }

    fn failed_bulk_create_writes_nothing_and_names_the_chunk(db) {
        let conn = &mut db.conn();
        seed(conn);
        let mut rows: Vec<NewPerson> = (0..10).map(|i| person("P", &format!("p{i}@example.org"))).collect();
        rows[7].email_address = "ada@example.org".into(); // row 7: the third chunk of 3
        let options = BulkCreate::new().batch_size(3);
        let err = Person::objects().bulk_create_with(conn, rows, &options).unwrap_err();
        match &err {
            Error::BulkWrite { operation, row, chunk, first_row, end_row, total_rows, .. } => {
                assert_eq!((*operation, *chunk, *first_row, *end_row, *total_rows), ("bulk_create", 2, 6, 9, 10));
                assert_eq!(*row, Some(7), "the duplicate row is found");
            }
            other => panic!("expected a bulk write error, got {other:?}"),
        }
        assert!(err.is_unique_violation(), "{err}");
        assert!(err.to_string().starts_with("bulk_create failed at row 7, chunk 2 (rows 6..9 of 10), nothing written"), "{err}");
        if db.backend() == Backend::Postgres {
            assert!(err.to_string().contains("ada@example.org"), "PostgreSQL names the key: {err}");
        }
        assert_eq!(Person::objects().with_deleted().count(conn).unwrap(), 3, "chunks 0 and 1 were rolled back");
    }

    fn bulk_create_with_a_batch_size_of_zero_is_an_invalid_argument(db) {
        let conn = &mut db.conn();
        let (err, captured) = capture(|| Message::objects().bulk_create_with(conn, messages(3), &BulkCreate::new().batch_size(0)));
        assert!(matches!(err, Err(Error::InvalidArgument { argument: "batch_size", .. })), "{err:?}");
        assert!(captured.all().is_empty());
    }

    fn a_failure_deep_in_a_large_input_names_its_row_and_writes_nothing(db) {
        let conn = &mut db.conn();
        seed(conn);
        let mut rows = messages(20_000);
        rows[12_345].thread_id = 999; // no such thread
        let (err, captured) = capture(|| Message::objects().bulk_create(conn, rows));
        let err = err.unwrap_err();
        let per_statement = db.backend().capability().max_bind_params / 6;
        let chunk = 12_345 / per_statement;
        match &err {
            Error::BulkWrite { row, chunk: failed, first_row, .. } => {
                assert_eq!(*row, Some(12_345), "{err}");
                assert_eq!((*failed, *first_row), (chunk, chunk * per_statement));
            }
            other => panic!("expected a bulk write error, got {other:?}"),
        }
        assert!(err.is_foreign_key_violation(), "{err}");
        // Finding the row took a handful of probes, not one per row.
        assert!(inserts(&captured) < chunk + 1 + 20, "{} statements", inserts(&captured));
        assert_eq!(Message::objects().count(conn).unwrap(), 7, "nothing written");
    }

    fn bulk_create_inside_atomic_rolls_back_with_it(db) {
        let conn = &mut db.conn();
        seed(conn);
        let result: orm::Result<()> = atomic(conn, |c| {
            Message::objects().bulk_create(c, messages(20))?;
            Err(Error::NotFound { model: "Message" })
        });
        assert!(result.is_err());
        assert_eq!(Message::objects().count(conn).unwrap(), 7);
    }

    fn copy_inserts_on_postgresql_and_is_a_typed_error_on_sqlite(db) {
        let conn = &mut db.conn();
        seed(conn);
        let options = BulkCreate::new().method(InsertMethod::Copy);
        let (result, captured) = capture(|| Message::objects().bulk_create_with(conn, messages(1_000), &options));
        match db.backend() {
            Backend::Postgres => {
                assert_eq!(
                    writes(&captured),
                    [r#"COPY "weave_message"("created", "updated", "deleted", "text", "sent_by_id", "thread_id") FROM STDIN WITH (FORMAT binary)"#],
                    "one COPY for 1,000 rows"
                );
                let created = result.unwrap();
                assert_eq!(created.rows, 1_000);
                assert!(created.ids.is_empty(), "COPY reports no ids");
                let copied = Message::objects().filter(weave_message::text.like("bulk %")).all(conn).unwrap();
                assert_eq!(copied.len(), 1_000);
                assert!(copied.iter().all(|m| m.created > at(60) && m.created == m.updated), "timestamps set");
            }
            Backend::Sqlite => {
                let err = result.unwrap_err();
                assert!(err.is_unsupported(), "{err}");
                assert_eq!(err.to_string(), "COPY is not supported on sqlite");
                assert_eq!(Message::objects().count(conn).unwrap(), 7);
            }
        }
    }

    fn failed_copy_writes_nothing_and_names_the_key(db) {
        let conn = &mut db.conn();
        seed(conn);
        let mut rows = messages(100);
        rows[49].thread_id = 999; // no such thread: a foreign-key violation
        let options = BulkCreate::new().method(InsertMethod::Copy);
        let err = Message::objects().bulk_create_with(conn, rows, &options).unwrap_err();
        match db.backend() {
            Backend::Postgres => {
                assert!(matches!(err, Error::BulkWrite { row: None, chunk: 0, .. }), "{err:?}");
                assert!(err.is_foreign_key_violation(), "{err}");
                assert!(err.to_string().contains("999"), "the database names the key: {err}");
            }
            Backend::Sqlite => assert!(err.is_unsupported(), "no COPY on SQLite: {err}"),
        }
        assert_eq!(Message::objects().count(conn).unwrap(), 7);
    }

    /// A COPY PostgreSQL rejects with no code (a NUL character in text): the rows are
    /// tried again as INSERTs, each probe rolled back, for the row and the typed error.
    fn a_copy_rejected_for_a_nul_character_names_the_row_and_the_kind(db) {
        let conn = &mut db.conn();
        seed(conn);
        let mut rows = messages(100);
        rows[42].text = "before\0after".into();
        let options = BulkCreate::new().method(InsertMethod::Copy);
        let err = Message::objects().bulk_create_with(conn, rows, &options).unwrap_err();
        match db.backend() {
            Backend::Postgres => {
                assert!(matches!(err, Error::BulkWrite { row: Some(42), chunk: 0, .. }), "{err:?}");
                assert_eq!(err.db_kind(), Some(orm::DbErrorKind::NulInText), "{err:?}");
            }
            Backend::Sqlite => assert!(err.is_unsupported(), "no COPY on SQLite: {err}"),
        }
        assert_eq!(Message::objects().count(conn).unwrap(), 7, "nothing written");
    }

    fn auto_method_copies_large_inputs_on_postgresql(db) {
        let conn = &mut db.conn();
        seed(conn);
        let options = BulkCreate::new().method(InsertMethod::Auto);
        let small = Message::objects().bulk_create_with(conn, messages(10), &options).unwrap();
        assert_eq!(small.ids.len(), 10, "small inputs go by INSERT ... RETURNING");
        let large = Message::objects().bulk_create_with(conn, messages(COPY_THRESHOLD), &options).unwrap();
        assert_eq!(large.rows, COPY_THRESHOLD);
        match db.backend() {
            Backend::Postgres => assert!(large.ids.is_empty(), "COPY on PostgreSQL"),
            Backend::Sqlite => assert_eq!(large.ids.len(), COPY_THRESHOLD, "INSERT on SQLite"),
        }
        assert_eq!(Message::objects().count(conn).unwrap() as usize, 7 + 10 + COPY_THRESHOLD);
    }

    fn copy_with_conflict_handling_is_an_invalid_argument(db) {
        let conn = &mut db.conn();
        let options = BulkCreate::new().method(InsertMethod::Copy).ignore_conflicts();
        let err = Person::objects().bulk_create_with(conn, vec![person("A", "a@example.org")], &options).unwrap_err();
        match db.backend() {
            Backend::Postgres => assert!(matches!(err, Error::InvalidArgument { argument: "method", .. }), "{err}"),
            Backend::Sqlite => assert!(err.is_unsupported(), "{err}"),
        }
    }

    fn bulk_update_sets_each_row_its_own_values_and_moves_updated(db) {
        let conn = &mut db.conn();
        seed(conn);
        let rows = vec![(1, ("first".to_string(), 2_i64)), (2, ("second".to_string(), 2)), (999, ("missing".to_string(), 1))];
        let (n, captured) = capture(|| Message::objects().bulk_update(conn, (weave_message::text, weave_message::thread_id), rows));
        assert_eq!(n.unwrap(), 2, "the missing id changes nothing");
        assert_eq!(writes(&captured).len(), 1, "{captured}");
        let from = match db.backend() {
            Backend::Postgres => "FROM UNNEST($2, $3, $4) AS \"v\"(\"column1\", \"column2\", \"column3\")",
            Backend::Sqlite => "FROM (VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?))",
        };
        assert!(writes(&captured)[0].contains(from), "{captured}");
        let changed = Message::objects().in_bulk(conn, &[1, 2, 3]).unwrap();
        assert_eq!((changed[&1].text.as_str(), changed[&1].thread_id), ("first", 2));
        assert_eq!((changed[&2].text.as_str(), changed[&2].thread_id), ("second", 2));
        assert!(changed[&1].updated > at(60) && changed[&1].created == at(1));
        assert_eq!(changed[&3].updated, at(3), "rows not named are untouched");
    }

    fn bulk_update_chunks_at_the_bind_limit(db) {
        let conn = &mut db.conn();
        seed(conn);
        // SQLite: (id, text) per row plus one `updated` bind per statement; PostgreSQL
        // binds one array per column, up to a fixed number of rows.
        let per_statement = match db.backend() {
            Backend::Postgres => orm::bulk::UPDATE_ARRAY_ROWS,
            Backend::Sqlite => (db.backend().capability().max_bind_params - 1) / 2,
        };
        let ids = Message::objects().bulk_create(conn, messages(per_statement + 1)).unwrap();
        let rows: Vec<(i64, (String,))> = ids.iter().map(|id| (*id, (format!("updated {id}"),))).collect();
        let (n, captured) = capture(|| Message::objects().bulk_update(conn, (weave_message::text,), rows));
        assert_eq!(n.unwrap(), per_statement + 1);
        assert_eq!(writes(&captured).len(), 2, "one row over a full chunk: two statements");
        let last = ids[ids.len() - 1];
        assert_eq!(Message::objects().filter(weave_message::id.eq(last)).get(conn).unwrap().text, format!("updated {last}"));
    }

    fn bulk_update_takes_borrowed_values(db) {
        let conn = &mut db.conn();
        seed(conn);
        let n = Message::objects().bulk_update(conn, (weave_message::text,), vec![(1, ("borrowed",)), (3, ("too",))]).unwrap();
        assert_eq!(n, 2);
        let texts: Vec<String> = Message::objects().in_bulk(conn, &[1, 3]).unwrap().into_values().map(|m| m.text).collect();
        assert!(texts.contains(&"borrowed".to_string()) && texts.contains(&"too".to_string()), "{texts:?}");
    }

    fn failed_bulk_update_changes_nothing(db) {
        let conn = &mut db.conn();
        seed(conn);
        let rows = vec![(1, (2_i64,)), (2, (999,))]; // thread 999 does not exist
        let err = Message::objects().bulk_update(conn, (weave_message::thread_id,), rows).unwrap_err();
        assert!(matches!(err, Error::BulkWrite { operation: "bulk_update", chunk: 0, row: Some(1), .. }), "{err:?}");
        assert!(err.is_foreign_key_violation(), "{err}");
        let m = Message::objects().filter(weave_message::id.eq(1)).get(conn).unwrap();
        assert_eq!((m.thread_id, m.updated), (1, at(1)));
    }

    fn bulk_update_rejects_setting_updated_itself_and_sends_nothing_for_no_rows(db) {
        let conn = &mut db.conn();
        let err = Message::objects().bulk_update(conn, (weave_message::updated,), vec![(1, (at(5),))]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { argument: "columns", .. }), "{err}");
        let (n, captured) = capture(|| Message::objects().bulk_update(conn, (weave_message::text,), Vec::<(i64, (String,))>::new()));
        assert_eq!(n.unwrap(), 0);
        assert!(captured.all().is_empty());
    }

    fn queryset_update_and_delete_maintain_updated_and_keep_created(db) {
        let conn = &mut db.conn();
        seed(conn);
        let one = Thread::objects().filter(weave_thread::id.eq(1));
        assert_eq!(one.update(conn, weave_thread::title.eq("renamed")).unwrap(), 1);
        let t = one.get(conn).unwrap();
        assert!(t.updated > at(60) && t.created == at(0), "{t:?}");
        let two = Message::objects().filter(weave_message::id.eq(2));
        assert_eq!(two.delete(conn).unwrap(), 1);
        let m = two.clone().only_deleted().get(conn).unwrap();
        assert!(m.updated > at(60) && m.created == at(2), "{m:?}");
    }

    fn streaming_by_primary_key_reads_one_query_per_chunk(db) {
        let conn = &mut db.conn();
        seed(conn);
        Message::objects().bulk_create(conn, messages(18)).unwrap(); // 25 live rows
        let qs = Message::objects().order_by(weave_message::id.asc());
        let expected: Vec<i64> = qs.all(conn).unwrap().iter().map(|m| m.id).collect();
        let (ids, captured) = capture(|| {
            let stream = qs.stream(conn, 10).unwrap();
            assert_eq!(stream.strategy(), StreamStrategy::Keyset);
            stream.map(|m| m.map(|m| m.id)).collect::<orm::Result<Vec<_>>>()
        });
        assert_eq!(ids.unwrap(), expected);
        assert_eq!(captured.len(), 3, "10 + 10 + 5: the short chunk ends it: {captured}");
        // Exactly two full chunks: a third, empty query tells the end.
        let twenty = Message::objects().order_by(weave_message::id.desc()).filter(weave_message::id.gt(6));
        let expected: Vec<i64> = twenty.all(conn).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(expected.len(), 20);
        let (chunks, captured) = capture(|| twenty.chunks(conn, 10).unwrap().collect::<orm::Result<Vec<_>>>());
        let chunks = chunks.unwrap();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10]);
        assert_eq!(chunks.concat().iter().map(|m| m.id).collect::<Vec<_>>(), expected, "descending keyset");
        assert_eq!(captured.len(), 3, "{captured}");
    }

    fn streaming_in_another_order_uses_a_cursor_or_steps_and_equals_all(db) {
        let conn = &mut db.conn();
        seed(conn);
        Message::objects().bulk_create_with(conn, messages(30), &BulkCreate::new().keep_timestamps()).unwrap();
        let qs = Message::objects().filter(weave_message::text.like("bulk%")).order_by((weave_message::sent_by_id.desc(), weave_message::id.asc()));
        let expected: Vec<i64> = qs.all(conn).unwrap().iter().map(|m| m.id).collect();
        let (chunks, captured) = capture(|| {
            let chunks = qs.chunks(conn, 7).unwrap();
            let strategy = chunks.strategy();
            (strategy, chunks.collect::<orm::Result<Vec<_>>>())
        });
        let (strategy, chunks) = chunks;
        let chunks = chunks.unwrap();
        assert!(chunks.iter().all(|c| c.len() <= 7), "memory bounded by the chunk size");
        assert_eq!(chunks.len(), 5, "30 rows in chunks of 7");
        assert_eq!(chunks.concat().iter().map(|m| m.id).collect::<Vec<_>>(), expected);
        match db.backend() {
            Backend::Postgres => {
                assert_eq!(strategy, StreamStrategy::Cursor);
                let sql = captured.sql();
                assert!(sql[0].starts_with("DECLARE \"orm_stream_"), "{captured}");
                assert_eq!(sql.iter().filter(|s| s.starts_with("FETCH FORWARD 7 FROM")).count(), 5, "{captured}");
                assert!(sql.last().unwrap().starts_with("CLOSE"), "{captured}");
                assert_eq!(captured.len(), 7);
            }
            Backend::Sqlite => {
                assert_eq!(strategy, StreamStrategy::Step);
                assert_eq!(captured.len(), 1, "one stepped SELECT: {captured}");
            }
        }
    }

    fn streaming_with_the_default_ordering_equals_all(db) {
        let conn = &mut db.conn();
        seed(conn);
        let expected: Vec<i64> = Message::objects().all(conn).unwrap().iter().map(|m| m.id).collect();
        let streamed: Vec<i64> = Message::objects().stream(conn, 3).unwrap().map(|m| m.unwrap().id).collect();
        assert_eq!(streamed, expected);
        // The connection is usable afterwards (the cursor's transaction ended).
        assert_eq!(Message::objects().count(conn).unwrap(), 7);
    }

    fn streaming_select_related_equals_all(db) {
        let conn = &mut db.conn();
        seed(conn);
        Message::objects().bulk_create(conn, messages(11)).unwrap();
        // 7 + 11 = 18 live messages in chunks of 5: 4 chunks.
        let by_id = Message::objects().order_by(weave_message::id.asc()).select_related(Message::sent_by);
        let default_order = Message::objects().select_related(Message::sent_by);
        let cursor_or_step = match db.backend() {
            Backend::Postgres => (StreamStrategy::Cursor, 1 + 4 + 1), // DECLARE, 4 FETCHes, CLOSE
            Backend::Sqlite => (StreamStrategy::Step, 1),
        };
        for (related, (strategy, statements)) in [(by_id, (StreamStrategy::Keyset, 4)), (default_order, cursor_or_step)] {
            let expected: Vec<(i64, String)> = related.all(conn).unwrap().into_iter().map(|(m, p)| (m.id, p.first_name)).collect();
            assert_eq!(expected.len(), 18);
            let (streamed, captured) = capture(|| {
                let stream = related.stream(conn, 5).unwrap();
                assert_eq!(stream.strategy(), strategy);
                stream.map(|r| r.map(|(m, p)| (m.id, p.first_name))).collect::<orm::Result<Vec<_>>>()
            });
            assert_eq!(streamed.unwrap(), expected);
            assert_eq!(captured.len(), statements, "{captured}");
            assert!(captured.sql().iter().all(|s| !s.contains("SELECT") || s.contains("INNER JOIN") || s.contains("CROSS JOIN")), "{captured}");
        }
    }

    fn streaming_with_prefetch_runs_the_hop_per_chunk(db) {
        let conn = &mut db.conn();
        seed(conn);
        let titles: Vec<NewThread> = (0..3).map(|i| NewThread { created: at(0), updated: at(0), deleted: false, title: format!("extra {i}") }).collect();
        let new_threads = Thread::objects().bulk_create(conn, titles).unwrap();
        Message::objects().bulk_create(conn, vec![message("in extra", 1, new_threads[0])]).unwrap();
        let qs = Thread::objects().order_by(weave_thread::id.asc()).prefetch(Thread::messages());
        let expected: Vec<(i64, Vec<i64>)> = qs.all(conn).unwrap().into_iter().map(|(t, ms)| (t.id, ms.iter().map(|m| m.id).collect())).collect();
        assert_eq!(expected.len(), 5);
        let (streamed, captured) = capture(|| qs.stream(conn, 2).unwrap().map(|r| r.map(|(t, ms)| (t.id, ms.iter().map(|m| m.id).collect::<Vec<_>>()))).collect::<orm::Result<Vec<_>>>());
        assert_eq!(streamed.unwrap(), expected);
        assert_eq!(captured.len(), 6, "3 chunks of threads (2, 2, 1), each with its messages query: {captured}");
        // On SQLite another ordering would step one SELECT, which holds the connection.
        let default_order = Thread::objects().prefetch(Thread::messages());
        match db.backend() {
            Backend::Postgres => {
                let n = default_order.stream(conn, 2).unwrap().count();
                assert_eq!(n, 5);
            }
            Backend::Sqlite => {
                let err = default_order.stream(conn, 2).err().expect("unsupported");
                assert!(err.is_unsupported(), "{err}");
            }
        }
    }

    fn streaming_a_sliced_queryset_reads_only_the_slice(db) {
        let conn = &mut db.conn();
        seed(conn);
        Message::objects().bulk_create(conn, messages(20)).unwrap();
        let qs = Message::objects().order_by(weave_message::id.asc()).offset(3).limit(9);
        let expected: Vec<i64> = qs.all(conn).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(expected.len(), 9);
        let (chunks, captured) = capture(|| qs.chunks(conn, 4).unwrap().collect::<orm::Result<Vec<_>>>());
        let chunks = chunks.unwrap();
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
        assert_eq!(chunks.concat().iter().map(|m| m.id).collect::<Vec<_>>(), expected);
        let expected_statements = match db.backend() {
            Backend::Postgres => 1 + 3 + 1, // DECLARE, 3 FETCHes, CLOSE
            Backend::Sqlite => 1,           // one stepped SELECT
        };
        assert_eq!(captured.len(), expected_statements, "{captured}");
    }

    fn a_chunk_size_of_zero_is_an_invalid_argument(db) {
        let conn = &mut db.conn();
        let err = Message::objects().stream(conn, 0).err().expect("an error");
        assert!(matches!(err, Error::InvalidArgument { argument: "chunk_size", .. }), "{err}");
    }

    fn dropping_a_stream_early_leaves_the_connection_usable(db) {
        let conn = &mut db.conn();
        seed(conn);
        {
            let mut stream = Message::objects().stream(conn, 2).unwrap();
            assert!(stream.next().unwrap().is_ok());
        }
        // A write on the same connection: no cursor transaction or open statement left.
        assert_eq!(Message::objects().filter(weave_message::id.eq(1)).update(conn, weave_message::text.eq("after")).unwrap(), 1);
        let n = atomic(conn, |c| Message::objects().count(c)).unwrap();
        assert_eq!(n, 7);
    }

    fn streaming_inside_atomic_uses_a_savepoint_and_sees_uncommitted_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let n = atomic(conn, |c| {
            Message::objects().bulk_create(c, messages(4))?;
            let mut n = 0;
            for m in Message::objects().stream(c, 3)? {
                m?;
                n += 1;
            }
            Ok::<_, Error>(n)
        }).unwrap();
        assert_eq!(n, 11);
    }

    fn bulk_writers_and_streaming_readers_run_concurrently_without_lock_errors_or_lost_writes(db) {
        {
            let conn = &mut db.conn();
            seed(conn);
        }
        let inserted = Arc::new(AtomicUsize::new(0));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for writer in 0..2_i64 {
            let (pool, inserted) = (db.db.clone(), inserted.clone());
            handles.push(std::thread::spawn(move || -> orm::Result<()> {
                let mut i = 0;
                while i < 30 {
                    let conn = &mut pool.get()?;
                    let rows = (0..10).map(|k| message(format!("writer {writer} batch {i} row {k}"), 1, 1 + writer)).collect();
                    let ids = Message::objects().bulk_create(conn, rows)?;
                    let updates = ids.iter().map(|id| (*id, (format!("writer {writer} updated {id}"),))).collect();
                    let n = Message::objects().bulk_update(conn, (weave_message::text,), updates)?;
                    assert_eq!(n, 10);
                    inserted.fetch_add(ids.len(), Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            }));
        }
        for _ in 0..4 {
            let (pool, reads) = (db.db.clone(), reads.clone());
            handles.push(std::thread::spawn(move || -> orm::Result<()> {
                let mut i = 0;
                while i < 50 {
                    let conn = &mut pool.get()?;
                    let mut seen = 0;
                    for m in Message::objects().order_by(weave_message::id.asc()).stream(conn, 50)? {
                        m?;
                        seen += 1;
                    }
                    assert!(seen >= 7);
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle.join().expect("no panic").expect("no database error (no \"database is locked\")");
        }
        let inserted = inserted.load(Ordering::Relaxed);
        assert_eq!((inserted, reads.load(Ordering::Relaxed)), (2 * 30 * 10, 4 * 50));
        let conn = &mut db.conn();
        assert_eq!(Message::objects().count(conn).unwrap() as usize, 7 + inserted, "no lost writes");
        let updated = Message::objects().filter(weave_message::text.like("writer % updated %")).count(conn).unwrap();
        assert_eq!(updated as usize, inserted, "every bulk_update landed");
    }
}

on_all_backends! {
    fn stream_chunks_are_not_reported_as_n_plus_one(db) {
        let conn = &mut db.conn();
        orm_tests::seed(conn);
        for qs in [
            Message::objects().with_deleted().order_by(weave_message::id.asc()),
            Message::objects().with_deleted(),
        ] {
            let (count, captured) = orm::capture(|| {
                qs.stream(conn, 2).unwrap().collect::<orm::Result<Vec<_>>>().unwrap().len()
            });
            assert_eq!(count, 10);
            assert!(captured.all().iter().filter(|r| r.is_data()).count() >= 1);
            assert!(captured.repeated(2).is_empty(), "{captured}");
        }
        // A stream per parent is still N+1: only the chunks after a stream's first are
        // its continuation.
        let (_, captured) = orm::capture(|| {
            for thread in 1..=3 {
                let rows = Message::objects()
                    .filter(weave_message::thread_id.eq(thread))
                    .order_by(weave_message::id.asc())
                    .stream(conn, 100)
                    .unwrap()
                    .collect::<orm::Result<Vec<_>>>()
                    .unwrap();
                assert!(rows.len() < 100);
            }
        });
        assert_eq!(captured.repeated(2).len(), 1, "{captured}");
        // A loop of single-row queries from one call site is still reported.
        let (_, captured) = orm::capture(|| {
            for id in 1..=3 {
                Message::objects().filter(weave_message::id.eq(id)).all(conn).unwrap();
            }
        });
        assert_eq!(captured.repeated(2).len(), 1);
    }
}
