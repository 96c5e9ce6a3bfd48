//! Soft delete hides rows; delete marks them, hard_delete removes them; every write
//! the ORM performs moves `updated`.

use demo::models::{Message, Person, Thread};
use demo::schema::{weave_message, weave_thread};
use orm::capture;
use orm::prelude::*;
use orm_tests::{at, on_all_backends, seed};

on_all_backends! {
    fn delete_marks_rows_deleted_and_moves_updated(db) {
        let conn = &mut db.conn();
        seed(conn);
        let thread_1 = Message::objects().filter(weave_message::thread_id.eq(1));
        let before = thread_1.all(conn).unwrap();
        assert_eq!(before.len(), 4);
        let (n, captured) = capture(|| thread_1.delete(conn));
        assert_eq!(n.unwrap(), 4, "only the live rows are marked");
        assert!(captured.sql()[0].starts_with("UPDATE "), "{}", captured.sql()[0]);
        assert_eq!(thread_1.count(conn).unwrap(), 0);
        let after = thread_1.clone().only_deleted().order_by(weave_message::id.asc()).all(conn).unwrap();
        assert_eq!(after.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1, 2, 6, 7, 8]);
        for m in after.iter().filter(|m| m.id != 7) {
            assert!(m.deleted);
            assert!(m.updated > at(60), "updated was set to now: {}", m.updated);
            assert_eq!(m.created, at(m.id), "created is untouched");
        }
        // Message 7 was already deleted: not touched.
        assert_eq!(after.iter().find(|m| m.id == 7).map(|m| m.updated), Some(at(7)));
    }

    fn hard_delete_removes_only_the_rows_the_queryset_sees(db) {
        let conn = &mut db.conn();
        seed(conn);
        let n = Message::objects().filter(weave_message::thread_id.eq(3)).hard_delete(conn).unwrap();
        assert_eq!(n, 1, "the deleted message of thread 3 is not seen");
        assert_eq!(Message::objects().with_deleted().filter(weave_message::thread_id.eq(3)).count(conn).unwrap(), 1);
        let n = Message::objects().with_deleted().filter(weave_message::thread_id.eq(3)).hard_delete(conn).unwrap();
        assert_eq!(n, 1);
        assert_eq!(Message::objects().with_deleted().count(conn).unwrap(), 8);
    }

    fn hard_delete_of_a_referenced_row_is_a_foreign_key_error(db) {
        let conn = &mut db.conn();
        seed(conn);
        let err = Person::objects().filter(demo::schema::weave_person::id.eq(1)).hard_delete(conn).unwrap_err();
        assert!(err.is_foreign_key_violation(), "{err:?}");
        assert_eq!(Person::objects().count(conn).unwrap(), 2, "nothing was removed");
    }

    fn deleting_a_slice_deletes_the_rows_of_the_slice(db) {
        let conn = &mut db.conn();
        seed(conn);
        // The two most recently updated live messages: 9 and 8.
        let n = Message::objects().limit(2).delete(conn).unwrap();
        assert_eq!(n, 2);
        let remaining: Vec<i64> = Message::objects().all(conn).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(remaining, vec![6, 5, 3, 2, 1]);
        let n = Message::objects().offset(3).hard_delete(conn).unwrap();
        assert_eq!(n, 2);
        assert_eq!(Message::objects().count(conn).unwrap(), 3);
    }

    fn update_sets_columns_and_updated_on_every_row(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Thread::objects().filter(weave_thread::title.like("%ines"));
        let (n, captured) = capture(|| qs.update(conn, weave_thread::title.eq("Renamed")));
        assert_eq!(n.unwrap(), 2);
        let record = &captured.data()[0];
        assert!(record.sql.starts_with("UPDATE "), "{}", record.sql);
        assert!(record.sql.contains("updated"), "updated is set: {}", record.sql);
        assert_eq!(record.rows, Some(2));
        for t in Thread::objects().all(conn).unwrap() {
            assert_eq!(t.title, "Renamed");
            assert!(t.updated > at(60));
        }
        // The deleted thread was not seen, so not touched.
        let deleted = Thread::objects().only_deleted().get(conn).unwrap();
        assert_eq!(deleted.title, "Deleted");
    }

    fn an_empty_queryset_writes_nothing(db) {
        let conn = &mut db.conn();
        seed(conn);
        let none = Message::objects().filter(weave_message::thread_id.eq(42));
        assert_eq!(none.delete(conn).unwrap(), 0);
        assert_eq!(none.hard_delete(conn).unwrap(), 0);
        assert_eq!(none.update(conn, weave_message::text.eq("x")).unwrap(), 0);
        assert_eq!(Message::objects().with_deleted().count(conn).unwrap(), 10);
    }

    fn with_deleted_and_only_deleted_partition_the_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let all = Message::objects().with_deleted().count(conn).unwrap();
        let live = Message::objects().count(conn).unwrap();
        let deleted = Message::objects().only_deleted().count(conn).unwrap();
        assert_eq!((all, live, deleted), (10, 7, 3));
        assert!(Message::objects().only_deleted().all(conn).unwrap().iter().all(|m| m.deleted));
    }
}

on_all_backends! {
    fn update_keeps_an_updated_value_the_caller_sets(db) {
        let conn = &mut db.conn();
        orm_tests::seed(conn);
        let chosen = orm_tests::at(500);
        let qs = demo::models::Thread::objects().filter(demo::schema::weave_thread::id.eq(1));
        let (n, captured) = orm::capture(|| {
            qs.update(
                conn,
                (
                    demo::schema::weave_thread::title.eq("Kept"),
                    demo::schema::weave_thread::updated.eq(chosen),
                ),
            )
        });
        assert_eq!(n.unwrap(), 1, "one assignment of updated: {captured}");
        assert_eq!(captured.sql()[0].matches("updated").count(), 1, "{captured}");
        let thread = qs.get(conn).unwrap();
        assert_eq!((thread.title.as_str(), thread.updated), ("Kept", chosen));
        // Without it, updated moves to now.
        qs.update(conn, demo::schema::weave_thread::title.eq("Moved")).unwrap();
        assert!(qs.get(conn).unwrap().updated > chosen);
    }
}
