//! Building a queryset sends nothing; each terminal method sends exactly one statement
//! and returns what Django's would.

use demo::models::{Message, Person, Thread};
use demo::schema::{weave_message, weave_person, weave_thread};
use orm::prelude::*;
use orm::{assert_num_queries, capture};
use orm_tests::{on_all_backends, seed};

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

on_all_backends! {
    fn building_a_queryset_sends_no_query(db) {
        let (qs, captured) = capture(|| {
            Message::objects()
                .filter(weave_message::text.like("What%"))
                .exclude(weave_message::thread_id.eq(7))
                .order_by(weave_message::id.asc())
                .limit(3)
                .offset(1)
                .distinct()
                .with_deleted()
        });
        assert_eq!(captured.all().len(), 0);
        assert!(qs.is_sliced());
        drop(db);
    }

    fn each_terminal_method_sends_exactly_one_query(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().filter(weave_message::thread_id.eq(1));
        assert_eq!(assert_num_queries!(1, qs.all(conn)).unwrap().len(), 4);
        assert!(assert_num_queries!(1, qs.first(conn)).unwrap().is_some());
        assert!(assert_num_queries!(1, qs.last(conn)).unwrap().is_some());
        assert_eq!(assert_num_queries!(1, qs.count(conn)).unwrap(), 4);
        assert!(assert_num_queries!(1, qs.exists(conn)).unwrap());
        assert_eq!(assert_num_queries!(1, qs.in_bulk(conn, &[1, 2, 3])).unwrap().len(), 2);
        let one = qs.clone().filter(weave_message::id.eq(1));
        assert_eq!(assert_num_queries!(1, one.get(conn)).unwrap().id, 1);
        assert_eq!(assert_num_queries!(1, one.update(conn, weave_message::text.eq("edited"))).unwrap(), 1);
        assert_eq!(assert_num_queries!(1, one.delete(conn)).unwrap(), 1);
        assert_eq!(assert_num_queries!(1, one.clone().with_deleted().hard_delete(conn)).unwrap(), 1);
    }

    fn objects_hide_deleted_rows_in_default_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        // Updated at minute i for message i: -updated is id descending.
        assert_eq!(ids(&Message::objects().all(conn).unwrap()), vec![9, 8, 6, 5, 3, 2, 1]);
        assert_eq!(Person::objects().count(conn).unwrap(), 2);
        assert_eq!(Thread::objects().count(conn).unwrap(), 2);
    }

    fn filter_and_exclude_combine_with_and(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects()
            .filter(weave_message::text.like("What%"))
            .exclude(weave_message::thread_id.eq(2));
        assert_eq!(ids(&qs.all(conn).unwrap()), vec![6, 1]);
        let qs = Message::objects()
            .filter(weave_message::sent_by_id.eq(1).or(weave_message::sent_by_id.eq(3)))
            .filter(weave_message::thread_id.eq(1));
        assert_eq!(ids(&qs.all(conn).unwrap()), vec![8, 6, 1]);
    }

    fn order_by_replaces_the_default_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().order_by((weave_message::thread_id.asc(), weave_message::id.desc()));
        assert_eq!(ids(&qs.all(conn).unwrap()), vec![8, 6, 2, 1, 5, 3, 9]);
        assert!(qs.sql(db.backend()).unwrap().contains("ORDER BY"));
        assert!(!qs.sql(db.backend()).unwrap().contains("updated\" DESC"));
        assert!(!Message::objects().unordered().sql(db.backend()).unwrap().contains("ORDER BY"));
    }

    fn limit_and_offset_slice_the_ordered_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let all = Message::objects();
        assert_eq!(ids(&all.clone().limit(2).all(conn).unwrap()), vec![9, 8]);
        assert_eq!(ids(&all.clone().offset(5).all(conn).unwrap()), vec![2, 1]);
        assert_eq!(ids(&all.clone().offset(2).limit(2).all(conn).unwrap()), vec![6, 5]);
        assert!(all.clone().offset(100).all(conn).unwrap().is_empty());
        assert!(all.clone().limit(0).all(conn).unwrap().is_empty());
    }

    fn distinct_removes_duplicate_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().distinct();
        assert!(qs.sql(db.backend()).unwrap().starts_with("SELECT DISTINCT "));
        assert_eq!(qs.all(conn).unwrap().len(), 7);
        assert_eq!(qs.count(conn).unwrap(), 7);
    }

    fn first_and_last_follow_the_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        assert_eq!(Message::objects().first(conn).unwrap().map(|m| m.id), Some(9));
        assert_eq!(Message::objects().last(conn).unwrap().map(|m| m.id), Some(1));
        let by_text = Message::objects().order_by(weave_message::text.asc());
        assert_eq!(by_text.first(conn).unwrap().map(|m| m.text), Some("A machine that computes.".to_owned()));
        // Unordered: by primary key, as Django.
        assert_eq!(Message::objects().unordered().first(conn).unwrap().map(|m| m.id), Some(1));
        assert_eq!(Message::objects().unordered().last(conn).unwrap().map(|m| m.id), Some(9));
        assert!(Message::objects().filter(weave_message::id.eq(-1)).first(conn).unwrap().is_none());
        assert!(Message::objects().filter(weave_message::id.eq(-1)).last(conn).unwrap().is_none());
    }

    fn last_of_a_sliced_queryset_is_an_error(db) {
        let conn = &mut db.conn();
        let err = Message::objects().limit(3).last(conn).unwrap_err();
        assert!(err.is_unsupported());
        assert_eq!(err.to_string(), format!("last() on a sliced queryset is not supported on {}", db.backend()));
    }

    fn get_returns_the_one_row_or_a_typed_error(db) {
        let conn = &mut db.conn();
        seed(conn);
        let ada = Person::objects().filter(weave_person::first_name.eq("Ada")).get(conn).unwrap();
        assert_eq!(ada.email_address, "ada@example.org");

        let missing = Person::objects().filter(weave_person::first_name.eq("Nobody")).get(conn).unwrap_err();
        assert!(missing.is_not_found());
        assert_eq!(missing.to_string(), "Person matching query does not exist");

        // Grace is soft-deleted: not found through objects(), found with_deleted().
        let grace = Person::objects().filter(weave_person::first_name.eq("Grace"));
        assert!(grace.get(conn).unwrap_err().is_not_found());
        assert_eq!(grace.with_deleted().get(conn).unwrap().last_name, "Hopper");

        let many = Message::objects().get(conn).unwrap_err();
        assert!(many.is_multiple_objects_returned());
        assert_eq!(many.to_string(), "get() returned more than one Message (at least 7)");
    }

    fn count_never_orders_and_counts_slices_as_django(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (n, captured) = capture(|| Message::objects().count(conn));
        assert_eq!(n.unwrap(), 7);
        assert!(!captured.sql()[0].contains("ORDER BY"), "{}", captured.sql()[0]);
        assert_eq!(Message::objects().limit(3).count(conn).unwrap(), 3);
        assert_eq!(Message::objects().offset(5).count(conn).unwrap(), 2);
        assert_eq!(Message::objects().offset(5).limit(10).count(conn).unwrap(), 2);
        assert_eq!(Message::objects().offset(50).count(conn).unwrap(), 0);
        assert_eq!(Message::objects().with_deleted().count(conn).unwrap(), 10);
        assert_eq!(Message::objects().only_deleted().count(conn).unwrap(), 3);
    }

    fn exists_reads_at_most_one_row(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (found, captured) = capture(|| Message::objects().exists(conn));
        assert!(found.unwrap());
        let sql = captured.sql()[0];
        assert!(sql.starts_with("SELECT 1 FROM"), "{sql}");
        assert!(!sql.contains("ORDER BY"), "{sql}");
        // LIMIT 1: bound on PostgreSQL, the number itself on SQLite.
        let binds: Vec<&str> = if db.backend().dialect().limit_literal { vec![] } else { vec!["1"] };
        assert_eq!(captured.data()[0].binds, binds);
        assert!(sql.contains(if db.backend() == Backend::Postgres { "LIMIT $1" } else { "LIMIT 1" }), "{sql}");
        assert!(!Message::objects().filter(weave_message::thread_id.eq(99)).exists(conn).unwrap());
        assert!(Message::objects().offset(6).exists(conn).unwrap());
        assert!(!Message::objects().offset(7).exists(conn).unwrap());
        assert!(!Message::objects().limit(0).exists(conn).unwrap());
    }

    fn in_bulk_maps_ids_to_rows_within_the_filters(db) {
        let conn = &mut db.conn();
        seed(conn);
        let found = Message::objects().in_bulk(conn, &[1, 1, 4, 5, 999]).unwrap();
        let mut keys: Vec<_> = found.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![1, 5], "4 is deleted, 999 does not exist");
        assert_eq!(found[&5].text, "Bugs are moths.");
        let (empty, captured) = capture(|| Message::objects().in_bulk(conn, &[]));
        assert!(empty.unwrap().is_empty());
        assert_eq!(captured.len(), 0, "an empty id list sends nothing");
    }

    fn in_bulk_with_70000_ids_stays_under_the_bind_limit(db) {
        let conn = &mut db.conn();
        seed(conn);
        let ids: Vec<i64> = (1..=70_000).collect();
        let (found, captured) = capture(|| Thread::objects().in_bulk(conn, &ids));
        assert_eq!(found.unwrap().len(), 2);
        let expected = match db.backend() {
            Backend::Postgres => 1, // one array bind: "id" = ANY($1)
            Backend::Sqlite => 3,   // chunks under 32,766 variables
        };
        assert_eq!(captured.len(), expected);
    }

    fn filters_on_nullable_booleans_compile_and_run(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Thread::objects().filter(weave_thread::title.nullable().eq("Engines"));
        assert_eq!(qs.count(conn).unwrap(), 1);
    }
}
