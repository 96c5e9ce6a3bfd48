//! Counting at scale (exact, within a deadline, capped, table statistics, planner,
//! samples) and pagination (page numbers with a count, keyset cursors), with every
//! bad input a typed error.

use std::time::Duration;

use demo::models::{Message, NewMessage, Person};
use demo::schema::{weave_message, weave_person};
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use orm::count::{Count, CountMethod, FallbackReason, SampleMethod};
use orm::explain::ExplainOptions;
use orm::paginate::{CursorError, CursorSecret, PageLink};
use orm::prelude::*;
use orm::{assert_num_queries, capture, AnyConnection, Error};
use orm_tests::{at, on_all_backends, seed};

/// A cursor secret for the tests (long enough for `CursorSecret::new`).
fn key(name: &str) -> CursorSecret {
    CursorSecret::new(format!("{name}: a secret for the tests")).unwrap()
}

const FUZZ_KEY: &[u8] = b"the fuzz tests' secret";

fn fuzz_key() -> CursorSecret {
    CursorSecret::new(FUZZ_KEY).unwrap()
}

fn ids(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.id).collect()
}

/// A filter that makes each row slow to scan on PostgreSQL (`pg_sleep`); on SQLite
/// the deadline of these tests has already passed when the first row is read.
fn slow_rows(backend: Backend) -> QuerySet<Message> {
    match backend {
        Backend::Postgres => Message::objects().filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("pg_sleep(0.05) IS NOT NULL"),
        ),
        Backend::Sqlite => Message::objects(),
    }
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

fn analyze(conn: &mut AnyConnection) {
    conn.batch_execute("ANALYZE weave_message")
        .expect("analyze");
}

fn insert_message(conn: &mut AnyConnection, minute: i64, text: &str) -> i64 {
    let row = NewMessage {
        created: at(minute),
        updated: at(minute),
        deleted: false,
        text: text.into(),
        sent_by_id: 1,
        thread_id: 1,
    };
    diesel::insert_into(weave_message::table)
        .values(&row)
        .execute(&mut *conn)
        .expect("insert message");
    Message::objects()
        .filter(weave_message::text.eq(text.to_owned()))
        .get(conn)
        .expect("inserted message")
        .id
}

on_all_backends! {
    fn counting_a_sliced_queryset_counts_the_slice(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().limit(3).offset(5);
        assert_eq!(assert_num_queries!(1, qs.count(conn)).unwrap(), 2);
        assert_eq!(Message::objects().limit(3).count(conn).unwrap(), 3);
        assert_eq!(Message::objects().offset(6).count(conn).unwrap(), 1);
        assert_eq!(Message::objects().limit(0).count(conn).unwrap(), 0);
        assert!(qs.count_sql(db.backend()).unwrap().starts_with("SELECT COUNT(*) FROM (SELECT 1 FROM"));
        let capped = qs.count_with(conn, &Count::AtMost(1)).unwrap();
        assert_eq!((capped.value, capped.more), (1, true));
        // Every exact strategy counts the slice, the deadline's check included.
        let within = qs.count_with(conn, &Count::ExactWithin(Duration::from_secs(10))).unwrap();
        assert_eq!((within.value, within.exact), (2, true));
        let distinct = Message::objects().distinct().limit(4).count_with(conn, &Count::ExactWithin(Duration::from_secs(10)));
        assert_eq!(distinct.unwrap().value, 4);
    }

    fn exact_and_exact_within_a_deadline_agree(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().filter(weave_message::thread_id.eq(1));
        let exact = assert_num_queries!(1, qs.count_with(conn, &Count::Exact)).unwrap();
        assert_eq!((exact.value, exact.exact, exact.method), (4, true, CountMethod::Exact));
        let (within, captured) = capture(|| qs.count_with(conn, &Count::ExactWithin(Duration::from_secs(10))));
        let within = within.unwrap();
        assert_eq!((within.value, within.exact, within.more), (4, true, false));
        assert!(!within.fell_back());
        let sql = captured.sql();
        // The deadline's own setting is recorded as a session statement, not a query:
        // one query on both backends.
        assert_eq!(sql.len(), 1, "{captured}");
        match db.backend() {
            Backend::Postgres => {
                let session: Vec<_> = captured.all().iter().filter(|r| r.kind == orm::instrument::QueryKind::Session).collect();
                assert_eq!(session.len(), 1, "{captured}");
                assert_eq!(session[0].sql, "SET LOCAL statement_timeout = 10000");
                assert!(sql[0].starts_with("SELECT COUNT(*)"), "{sql:?}");
            }
            Backend::Sqlite => {
                assert!(sql[0].ends_with("AND (orm_count_deadline())"), "{sql:?}");
            }
        }
    }

    fn exact_within_a_passed_deadline_is_a_typed_timeout_and_the_connection_stays_usable(db) {
        let conn = &mut db.conn();
        seed(conn);
        let slow = slow_rows(db.backend());
        let deadline = Count::ExactWithin(Duration::from_millis(1));
        let err = match db.backend() {
            Backend::Postgres => slow.count_with(conn, &deadline).unwrap_err(),
            Backend::Sqlite => slow.count_with(conn, &Count::ExactWithin(Duration::ZERO)).unwrap_err(),
        };
        assert!(err.is_count_timed_out(), "{err}");
        assert!(err.to_string().starts_with("exact count did not finish within"), "{err}");
        // Usable afterwards, and the timeout did not outlive its transaction: the
        // same slow count (350 ms on PostgreSQL) now finishes.
        assert_eq!(slow.count(conn).unwrap(), 7);
        let fell_back = slow
            .count_with(conn, &Count::ExactWithin(Duration::ZERO).or(Count::AtMost(100)))
            .unwrap();
        assert_eq!((fell_back.value, fell_back.exact), (7, true));
        assert_eq!(fell_back.method, CountMethod::Capped { limit: 100 });
        assert_eq!(fell_back.fallbacks.len(), 1);
        assert_eq!(fell_back.fallbacks[0].reason, FallbackReason::TimedOut);
        assert_eq!(fell_back.fallbacks[0].strategy, "exact within 0ns");
    }

    fn a_deadline_inside_a_transaction_rolls_back_only_its_savepoint(db) {
        let conn = &mut db.conn();
        seed(conn);
        let slow = slow_rows(db.backend());
        let result: orm::Result<i64> = orm::atomic(conn, |c| {
            Message::objects().filter(weave_message::id.eq(1)).delete(c)?;
            let err = slow.count_with(c, &Count::ExactWithin(Duration::ZERO)).unwrap_err();
            assert!(err.is_count_timed_out(), "{err}");
            // A fast count within a deadline far above its time, then a slow one
            // (350 ms on PostgreSQL) with no deadline: the nested deadline did not
            // outlive its count.
            let within = Message::objects().count_with(c, &Count::ExactWithin(Duration::from_secs(60)))?;
            if c.backend() == Backend::Postgres {
                let setting: Vec<Setting> = orm::with_inner!(&mut *c, |c| diesel::sql_query(
                    "SELECT current_setting('statement_timeout') AS value"
                )
                .load(c))?;
                assert_eq!(setting[0].value, "0", "the deadline was reset after its count");
            }
            assert_eq!(slow.count(c)?, within.value);
            Ok(within.value)
        });
        assert_eq!(result.unwrap(), 6);
        assert_eq!(Message::objects().count(conn).unwrap(), 6);
    }

    fn a_capped_count_says_more_than_n(db) {
        let conn = &mut db.conn();
        seed(conn);
        let (capped, captured) = capture(|| Message::objects().count_with(conn, &Count::AtMost(5)));
        let capped = capped.unwrap();
        assert_eq!(captured.len(), 1);
        assert!(captured.sql()[0].starts_with("SELECT COUNT(*) FROM (SELECT 1 FROM"), "{:?}", captured.sql());
        assert_eq!((capped.value, capped.exact, capped.more), (5, false, true));
        assert_eq!(capped.to_string(), "more than 5");
        let all = Message::objects().count_with(conn, &Count::AtMost(7)).unwrap();
        assert_eq!((all.value, all.exact, all.more), (7, true, false));
        assert_eq!(all.to_string(), "7");
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(json["method"], serde_json::json!({"method": "capped", "limit": 7}));
        assert_eq!(Message::objects().distinct().count_with(conn, &Count::AtMost(3)).unwrap().value, 3);
    }

    fn table_statistics_need_analyze_and_an_unfiltered_queryset(db) {
        let conn = &mut db.conn();
        seed(conn);
        let all = Message::objects().with_deleted();
        let err = all.count_with(conn, &Count::TableStatistics).unwrap_err();
        assert!(matches!(err, Error::NoStatistics { .. }), "{err}");
        let fell_back = all.count_with(conn, &Count::TableStatistics.or(Count::Exact)).unwrap();
        assert_eq!((fell_back.value, fell_back.exact), (10, true));
        assert_eq!(fell_back.fallbacks[0].reason, FallbackReason::NoStatistics);

        analyze(conn);
        let stats = all.count_with(conn, &Count::TableStatistics).unwrap();
        assert_eq!((stats.value, stats.exact, stats.method), (10, false, CountMethod::TableStatistics));

        // The statistics count deleted rows too: a filtered queryset cannot use them.
        let err = Message::objects().count_with(conn, &Count::TableStatistics).unwrap_err();
        assert!(matches!(err, Error::CountNotApplicable { .. }), "{err}");
        let live = Message::objects().count_with(conn, &Count::TableStatistics.or(Count::Exact)).unwrap();
        assert_eq!(live.value, 7);
        assert_eq!(live.fallbacks[0].reason, FallbackReason::NotApplicable);
    }

    fn the_planner_estimates_a_filtered_queryset_on_postgres_only(db) {
        let conn = &mut db.conn();
        seed(conn);
        analyze(conn);
        let qs = Message::objects().filter(weave_message::thread_id.eq(1));
        match db.backend() {
            Backend::Postgres => {
                let (planned, captured) = capture(|| qs.count_with(conn, &Count::Planner));
                let planned = planned.unwrap();
                assert_eq!((planned.exact, planned.method), (false, CountMethod::Planner));
                assert!((1..=10).contains(&planned.value), "{planned:?}");
                assert_eq!(captured.len(), 1);
                let record = &captured.data()[0];
                assert!(record.sql.starts_with("EXPLAIN (FORMAT JSON) SELECT 1 FROM"), "{}", record.sql);
                assert_eq!(record.binds, vec!["1"]);
            }
            Backend::Sqlite => {
                let err = qs.count_with(conn, &Count::Planner).unwrap_err();
                assert!(err.is_unsupported());
                assert_eq!(err.to_string(), "planner row estimates is not supported on sqlite");
            }
        }
        let chained = qs.count_with(conn, &Count::Planner.or(Count::Exact)).unwrap();
        assert_eq!(chained.fell_back(), db.backend() == Backend::Sqlite);
    }

    fn a_sample_applies_the_filters_and_scales_on_postgres_only(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().filter(weave_message::thread_id.eq(1));
        if db.backend() == Backend::Sqlite {
            assert!(qs.count_with(conn, &Count::bernoulli(10.0)).unwrap_err().is_unsupported());
            let fell_back = qs.count_with(conn, &Count::system(10.0).or(Count::Exact)).unwrap();
            assert_eq!((fell_back.value, fell_back.exact), (4, true));
            assert_eq!(fell_back.fallbacks[0].reason, FallbackReason::Unsupported);
            return;
        }
        // A 100% sample reads every row: the exact count.
        let (whole, captured) = capture(|| qs.count_with(conn, &Count::bernoulli(100.0)));
        let whole = whole.unwrap();
        assert_eq!((whole.value, whole.exact), (4, true));
        assert_eq!(whole.method, CountMethod::Sample { sample: SampleMethod::Bernoulli, percent: 100.0 });
        let record = &captured.data()[0];
        assert!(record.sql.contains(r#"FROM "weave_message" TABLESAMPLE BERNOULLI ($1) REPEATABLE ($2) WHERE"#), "{}", record.sql);
        // Percentage and seed are bound parameters like the filter's value.
        assert_eq!(record.binds, vec!["100.0", "0.0", "1"]);
        assert_eq!(qs.count_with(conn, &Count::system(100.0)).unwrap().value, 4);
        // REPEATABLE: the same seed gives the same sample; the count is scaled by 2.
        let half = Count::Sample { method: SampleMethod::Bernoulli, percent: 50.0, seed: 7.0 };
        let a = Message::objects().count_with(conn, &half).unwrap();
        let b = Message::objects().count_with(conn, &half).unwrap();
        assert_eq!(a, b);
        assert!(!a.exact);
        assert_eq!(a.value % 2, 0);
        for percent in [0.0, -1.0, 100.5, f64::NAN] {
            let err = qs.count_with(conn, &Count::bernoulli(percent)).unwrap_err();
            assert!(matches!(err, Error::InvalidSamplePercent { .. }), "{err}");
        }
        let err = qs.clone().limit(2).count_with(conn, &Count::bernoulli(50.0)).unwrap_err();
        assert!(matches!(err, Error::CountNotApplicable { .. }), "{err}");
    }

    fn page_numbers_follow_drf_with_at_most_two_queries_a_page(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().paginate(3);
        let first = assert_num_queries!(2, pages.page(conn, "1")).unwrap();
        assert_eq!(ids(&first.results), vec![9, 8, 6]);
        assert_eq!((first.count, first.count_is_exact, first.num_pages), (7, true, Some(3)));
        assert_eq!((first.next.clone(), first.previous.clone()), (Some(PageLink::Number(2)), None));
        let json = serde_json::to_value(&first).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["count", "count_is_exact", "next", "previous", "results"]);
        assert_eq!(json["count"], 7);
        assert_eq!(json["next"], 2);
        assert_eq!(json["results"][0]["id"], 9);

        let (second, captured) = capture(|| pages.page_number(conn, 2));
        let second = second.unwrap();
        assert_eq!(captured.len(), 2);
        for record in captured.data() {
            let site = record.call_site.expect("call site");
            assert!(site.file().ends_with("counts_and_pagination.rs"), "{}", site.file());
        }
        assert_eq!(ids(&second.results), vec![5, 3, 2]);
        let last = assert_num_queries!(2, pages.page(conn, " 3 ")).unwrap();
        assert_eq!(ids(&last.results), vec![1]);
        assert_eq!((last.next.clone(), last.previous.clone()), (None, Some(PageLink::Number(2))));
    }

    fn page_links_are_urls_built_from_the_callers_base(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().paginate(3).links("https://api.test/messages?page=9&q=what+now");
        let second = pages.page(conn, "2").unwrap();
        assert_eq!(second.next, Some(PageLink::Url("https://api.test/messages?q=what+now&page=3".into())));
        // DRF drops the parameter for page 1.
        assert_eq!(second.previous, Some(PageLink::Url("https://api.test/messages?q=what+now".into())));
        let custom = Message::objects().paginate(3).links("/m").page_param("p");
        assert_eq!(custom.page(conn, "1").unwrap().next, Some(PageLink::Url("/m?p=2".into())));
    }

    fn page_number_errors_are_typed_and_clear(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().paginate(3);
        for raw in ["0", "-1", "-99999999999999999999"] {
            let err = assert_num_queries!(0, pages.page(conn, raw)).unwrap_err();
            assert!(err.is_empty_page(), "{raw}: {err}");
            assert!(err.to_string().ends_with("is less than 1"), "{err}");
        }
        for raw in ["", "two", "1.0", "1e3", "+", "3 4", "٣"] {
            let err = assert_num_queries!(0, pages.page(conn, raw)).unwrap_err();
            assert!(matches!(err, Error::PageNotAnInteger { .. }), "{raw}: {err}");
        }
        // Past the last page: the exact count says so before any rows query.
        let err = assert_num_queries!(1, pages.page(conn, "4")).unwrap_err();
        assert_eq!(err.to_string(), "page 4 contains no results (the last page is 3)");
        let err = pages.page(conn, "99999999999999999999").unwrap_err();
        assert!(err.is_empty_page(), "{err}");
        // An empty queryset still has a first page.
        let none = Message::objects().filter(weave_message::id.eq(-1)).paginate(3).page(conn, "1").unwrap();
        assert_eq!((none.count, none.results.len(), none.next.is_none()), (0, 0, true));

        let err = Message::objects().paginate(0).page(conn, "1").unwrap_err();
        assert_eq!(err.to_string(), "page size 0 is not between 1 and 1000");
        let err = Message::objects().paginate(50).max_per_page(20).page(conn, "1").unwrap_err();
        assert!(matches!(err, Error::InvalidPageSize { size: 50, max: 20 }), "{err}");
        let err = Message::objects().limit(2).paginate(1).page(conn, "1").unwrap_err();
        assert!(err.is_unsupported(), "{err}");
    }

    fn estimated_page_counts_are_corrected_by_the_rows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().paginate(3).count(Count::AtMost(4));
        let first = pages.page(conn, "1").unwrap();
        assert_eq!((first.count, first.count_is_exact, first.num_pages), (4, false, None));
        assert!(first.counted.more);
        // Past an estimated end the rows decide: page 3 exists, and knows the total.
        let last = pages.page(conn, "3").unwrap();
        assert_eq!((last.count, last.count_is_exact, last.num_pages), (7, true, Some(3)));
        let err = pages.page(conn, "4").unwrap_err();
        assert_eq!(err.to_string(), "page 4 contains no results");
    }

    fn page_ordering_gets_the_primary_key_as_tie_breaker(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().order_by(weave_message::thread_id.asc());
        assert!(qs.paginate(2).page_sql(1, db.backend()).unwrap().contains("ASC, "));
        let mut seen = Vec::new();
        for page in 1..=4 {
            seen.extend(ids(&qs.paginate(2).page_number(conn, page).unwrap().results));
        }
        assert_eq!(seen, vec![1, 2, 6, 8, 3, 5, 9]);
    }

    fn keyset_pages_forward_and_backward_one_query_each(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().keyset(3, &key("test secret"));
        let first = assert_num_queries!(1, pages.page(conn, None)).unwrap();
        assert_eq!(ids(&first.results), vec![9, 8, 6]);
        assert!(first.previous.is_none());
        let (second, captured) = capture(|| pages.page(conn, first.next.as_deref()));
        let second = second.unwrap();
        assert_eq!(ids(&second.results), vec![5, 3, 2]);
        assert_eq!(captured.len(), 1);
        // The cursor's values are binds: PostgreSQL `(updated, id) < ($1, $2) LIMIT $3`;
        // SQLite `updated = ? AND id < ? LIMIT 4`, `updated < ? LIMIT 4`, `LIMIT 4` (the limit is
        // the number itself there).
        let record = &captured.data()[0];
        let at_6 = &record.binds[0];
        assert!(at_6.contains("00:06:00"), "{}", record.sql);
        match db.backend() {
            Backend::Postgres => assert_eq!(record.binds, [at_6.as_str(), "6", "4"], "{}", record.sql),
            Backend::Sqlite => assert_eq!(record.binds, [at_6.as_str(), "6", at_6], "{}", record.sql),
        }
        let third = assert_num_queries!(1, pages.page(conn, second.next.as_deref())).unwrap();
        assert_eq!(ids(&third.results), vec![1]);
        assert!(third.next.is_none());

        let back = assert_num_queries!(1, pages.page(conn, third.previous.as_deref())).unwrap();
        assert_eq!(ids(&back.results), vec![5, 3, 2]);
        let front = assert_num_queries!(1, pages.page(conn, back.previous.as_deref())).unwrap();
        assert_eq!(ids(&front.results), vec![9, 8, 6]);
        assert!(front.previous.is_none());
        assert!(front.next.is_some());
        let json = serde_json::to_value(&front).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["next", "previous", "results"]);
    }

    fn keyset_pages_over_mixed_directions_match_the_full_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects()
            .with_deleted()
            .order_by((weave_message::thread_id.asc(), weave_message::sent_by_id.desc(), weave_message::updated.asc()));
        let expected = ids(&qs.clone().order_by((
            weave_message::thread_id.asc(),
            weave_message::sent_by_id.desc(),
            weave_message::updated.asc(),
        )).all(conn).unwrap());
        for per_page in [1, 2, 3, 4] {
            let (forward, backward) = walk_both_ways(&qs.keyset(per_page, &key("test secret")), conn);
            assert_eq!(forward, expected, "per_page {per_page}");
            assert_eq!(backward, expected, "per_page {per_page}");
        }
    }

    fn keyset_pages_are_stable_when_rows_are_inserted_between_pages(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().keyset(3, &key("test secret"));
        let first = pages.page(conn, None).unwrap();
        assert_eq!(ids(&first.results), vec![9, 8, 6]);
        // A newer row (before the cursor) and one between 5 and 3 (after it).
        insert_message(conn, 100, "newest");
        let between = insert_message(conn, 4, "between five and three");
        let second = pages.page(conn, first.next.as_deref()).unwrap();
        assert_eq!(ids(&second.results), vec![5, between, 3]);
        // Page-number pagination repeats row 6 in the same situation.
        let offset_page = Message::objects().paginate(3).page(conn, "2").unwrap();
        assert_eq!(ids(&offset_page.results)[0], 6);
    }

    fn bad_cursors_are_typed_errors(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().keyset(2, &key("one"));
        let next = pages.page(conn, None).unwrap().next.unwrap();
        let mut invalid = |token: &str| match pages.page(conn, Some(token)) {
            Err(Error::InvalidCursor { reason }) => reason,
            other => panic!("{token}: {other:?}"),
        };
        assert_eq!(invalid("!!not base64!!"), CursorError::Encoding);
        assert_eq!(invalid(&next[..12]), CursorError::Truncated);
        assert!(matches!(invalid(&next[..next.len() - 3]), CursorError::Signature | CursorError::Encoding));
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = engine.decode(&next).unwrap();
        let at = bytes.len() - 20;
        bytes[at] ^= 0x20;
        assert_eq!(invalid(&engine.encode(&bytes)), CursorError::Signature);
        bytes[0] = 9;
        assert_eq!(invalid(&engine.encode(&bytes)), CursorError::Version { found: 9 });
        // Another secret, another ordering.
        let other_secret = Message::objects().keyset(2, &key("two"));
        let err = other_secret.page(conn, Some(&next)).unwrap_err();
        assert_eq!(err.to_string(), "invalid cursor: the signature does not match (forged or altered token)");
        let reordered = Message::objects().order_by(weave_message::thread_id.asc()).keyset(2, &key("one"));
        let err = reordered.page(conn, Some(&next)).unwrap_err();
        assert!(matches!(err, Error::InvalidCursor { reason: CursorError::Stale }), "{err}");
        assert_eq!(err.to_string(), "invalid cursor: the token was made for another ordering");

        let err = Message::objects().keyset(0, &key("test secret")).page(conn, None).unwrap_err();
        assert!(matches!(err, Error::InvalidPageSize { size: 0, .. }), "{err}");
        let err = Message::objects().keyset(30, &key("test secret")).max_per_page(10).page(conn, None).unwrap_err();
        assert!(matches!(err, Error::InvalidPageSize { size: 30, max: 10 }), "{err}");
    }

    fn keyset_over_a_column_the_model_does_not_expose_is_a_typed_error(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Person::objects().order_by(weave_person::last_name.asc()).keyset(1, &key("test secret"));
        let err = pages.page(conn, None).unwrap_err();
        assert!(matches!(err, Error::CursorColumnUnavailable { model: "Person", column: "last_name" }), "{err}");
    }
}

diesel::table! {
    weave_rank (id) {
        id -> BigInt,
        rank -> Nullable<BigInt>,
    }
}

diesel::table! {
    weave_kind (id) {
        id -> BigInt,
        r#type -> Text,
    }
}

/// A row with a keyword column (`type`, a raw identifier in Rust).
#[derive(Debug, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_kind)]
struct Kind {
    id: i64,
    r#type: String,
}

orm::model! { Kind => weave_kind { primary_key: id, cursor_columns: (r#type) } }

on_all_backends! {
    fn keyset_pages_over_a_keyword_column(db) {
        let conn = &mut db.conn();
        conn.batch_execute(
            "CREATE TABLE weave_kind (id BIGINT PRIMARY KEY, \"type\" TEXT NOT NULL);
             INSERT INTO weave_kind VALUES (1, 'b'), (2, 'a'), (3, 'c'), (4, 'a'), (5, 'b');",
        )
        .unwrap();
        let ordering = Kind::objects().order_by(weave_kind::r#type.asc());
        let expected: Vec<i64> = ordering.clone().all(conn).unwrap().iter().map(|k| k.id).collect();
        assert_eq!(expected, [2, 4, 1, 5, 3]);
        for per_page in 1..=3 {
            let (forward, backward) = walk_both_ways(&ordering.keyset(per_page, &key("kinds")), conn);
            assert_eq!(forward, expected, "per_page {per_page}");
            assert_eq!(backward, expected, "per_page {per_page}");
        }
    }
}

/// A row with a nullable ordering column.
#[derive(Debug, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = weave_rank)]
struct Rank {
    id: i64,
    rank: Option<i64>,
}

orm::model! { Rank => weave_rank { primary_key: id, cursor_columns: (rank) } }

/// Ranks with NULLs at both ends of the id range and ties.
fn rank_table(conn: &mut AnyConnection) {
    conn.batch_execute(
        "CREATE TABLE weave_rank (id BIGINT PRIMARY KEY, rank BIGINT);
         INSERT INTO weave_rank VALUES (1, NULL), (2, 1), (3, 2), (4, NULL), (5, 2), (6, 3), (7, NULL), (8, 1);",
    )
    .expect("rank table");
}

/// Walks every page forward (`next`), then back from the last (`previous`): the
/// primary keys in the order each walk shows them, the backward pages re-reversed.
fn walk_both_ways<M: Model>(
    pages: &orm::paginate::KeysetPaginator<M>,
    conn: &mut AnyConnection,
) -> (Vec<M::Key>, Vec<M::Key>) {
    let pks = |rows: &[M]| rows.iter().map(Model::pk).collect::<Vec<_>>();
    let mut forward = Vec::new();
    let mut page = pages.page(conn, None).unwrap();
    loop {
        forward.extend(pks(&page.results));
        let Some(next) = page.next.clone() else { break };
        page = pages.page(conn, Some(&next)).unwrap();
    }
    let mut backward = vec![pks(&page.results)];
    while let Some(previous) = page.previous.clone() {
        page = pages.page(conn, Some(&previous)).unwrap();
        backward.push(pks(&page.results));
    }
    (forward, backward.into_iter().rev().flatten().collect())
}

on_all_backends! {
    fn keyset_pages_place_nulls_where_the_backend_sorts_them(db) {
        let conn = &mut db.conn();
        rank_table(conn);
        for ordering in [Rank::objects().order_by(weave_rank::rank.asc()), Rank::objects().order_by(weave_rank::rank.desc())] {
            let expected: Vec<i64> = ordering.paginate(100).page(conn, "1").unwrap().results.iter().map(|r| r.id).collect();
            assert_eq!(expected.len(), 8);
            for per_page in 1..=5 {
                let (forward, backward) = walk_both_ways(&ordering.keyset(per_page, &key("test secret")), conn);
                assert_eq!(forward, expected, "per_page {per_page}");
                assert_eq!(backward, expected, "per_page {per_page}");
            }
        }
        // NULLs first ascending on SQLite, last on PostgreSQL.
        let asc = Rank::objects().order_by(weave_rank::rank.asc()).keyset(3, &key("test secret")).page(conn, None).unwrap();
        let first: Vec<Option<i64>> = asc.results.iter().map(|r| r.rank).collect();
        match db.backend() {
            Backend::Sqlite => assert_eq!(first, [None, None, None]),
            Backend::Postgres => assert_eq!(first, [Some(1), Some(1), Some(2)]),
        }
    }
}

/// A token signed with [`FUZZ_KEY`] for `Message`'s default ordering
/// (`updated DESC, id DESC`), holding `values` (JSON) as they are.
fn signed_message_token(direction: u8, values: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(b"Message");
    for (column, sign) in [("updated", b"-"), ("id", b"-")] {
        hash.update([0]);
        hash.update(column.as_bytes());
        hash.update(sign);
    }
    let fingerprint = hash.finalize();
    let mut body = vec![1u8];
    body.extend_from_slice(&fingerprint[..8]);
    body.push(direction);
    body.extend_from_slice(values);
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(FUZZ_KEY).unwrap();
    mac.update(&body);
    body.extend_from_slice(&mac.finalize().into_bytes()[..16]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body)
}

/// `n` more messages on top of the fixture, one second apart, every 20th deleted;
/// then statistics, so the planner sees a table worth an index.
fn many_messages(conn: &mut AnyConnection, n: u32) {
    let insert = match conn.backend() {
        Backend::Postgres => format!(
            "INSERT INTO weave_message (text, sent_by_id, thread_id, deleted, created, updated)
             SELECT 'message ' || i, 1 + i % 2, 1 + i % 2, i % 20 = 0, now(), TIMESTAMP '2025-01-01' + i * interval '1 second'
             FROM generate_series(1, {n}) i"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
             INSERT INTO weave_message (text, sent_by_id, thread_id, deleted, created, updated)
             SELECT 'message ' || i, 1 + i % 2, 1 + i % 2, i % 20 = 0, datetime('now'), datetime('2025-01-01', '+' || i || ' seconds')
             FROM s"
        ),
    };
    conn.batch_execute(&insert).expect("many messages");
    conn.batch_execute("ANALYZE weave_message")
        .expect("analyze");
}

on_all_backends! {
    fn cursor_values_that_do_not_fit_their_columns_are_invalid_cursors(db) {
        let conn = &mut db.conn();
        seed(conn);
        let pages = Message::objects().keyset(3, &fuzz_key());
        let fits = signed_message_token(b'>', br#"[{"Timestamp":"2024-01-01T00:05:00"},{"Int":5}]"#);
        assert_eq!(ids(&pages.page(conn, Some(&fits)).unwrap().results), vec![3, 2, 1]);
        for (values, column) in [
            (&br#"[{"Text":"yesterday"},{"Int":5}]"#[..], "updated"),
            (br#"["Null",{"Int":5}]"#, "updated"),
            (br#"[{"Timestamp":"2024-01-01T00:05:00"},"Null"]"#, "id"),
            (br#"[{"Timestamp":"2024-01-01T00:05:00"},{"Float":5.0}]"#, "id"),
            (br#"[{"Timestamp":"2024-01-01T00:05:00"},{"Bool":true}]"#, "id"),
        ] {
            let token = signed_message_token(b'>', values);
            let (result, captured) = capture(|| pages.page(conn, Some(&token)));
            match result {
                Err(Error::InvalidCursor { reason: CursorError::Mistyped { column: c } }) => assert_eq!(c, column),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(values)),
            }
            assert!(captured.all().is_empty(), "rejected before any SQL: {captured}");
        }
        // A nullable column takes NULL.
        rank_table(conn);
        let ranks = Rank::objects().order_by(weave_rank::rank.asc()).keyset(2, &key("ranks"));
        let (forward, _) = walk_both_ways(&ranks, conn);
        assert_eq!(forward.len(), 8);
    }

    /// The row-value form over ties: many rows share `updated` (a bulk write stamps
    /// one time on all of them), so pages must split inside the tie by `id`.
    fn keyset_pages_through_ties_match_the_full_ordering(db) {
        let conn = &mut db.conn();
        seed(conn);
        let same_time: Vec<NewMessage> = (0..23)
            .map(|i| NewMessage {
                created: at(30),
                updated: at(30),
                deleted: i % 5 == 0,
                text: format!("tied {i}"),
                sent_by_id: 1,
                thread_id: 1,
            })
            .collect();
        Message::objects().bulk_create_with(conn, same_time, &orm::bulk::BulkCreate::new().keep_timestamps()).unwrap();
        for qs in [Message::objects(), Message::objects().with_deleted()] {
            let expected = ids(&qs.clone().all(conn).unwrap());
            for per_page in [1, 2, 4, 7] {
                let (forward, backward) = walk_both_ways(&qs.keyset(per_page, &key("ties")), conn);
                assert_eq!(forward, expected, "per_page {per_page}");
                assert_eq!(backward, expected, "per_page {per_page}");
            }
        }
    }

    fn extreme_page_sizes_and_numbers_are_answers_not_overflows(db) {
        let conn = &mut db.conn();
        seed(conn);
        let everything = Message::objects().keyset(u64::MAX, &key("huge")).max_per_page(u64::MAX);
        let page = everything.page(conn, None).unwrap();
        assert_eq!((page.results.len(), page.next.is_none()), (7, true));
        let pages = Message::objects().paginate(u64::MAX).max_per_page(u64::MAX);
        let first = pages.page(conn, "1").unwrap();
        assert_eq!((first.results.len(), first.num_pages), (7, Some(1)));
        for number in ["2", "9223372036854775807", "99999999999999999999999"] {
            assert!(pages.page(conn, number).unwrap_err().is_empty_page(), "{number}");
        }
        for number in ["8", "9223372036854775807", "99999999999999999999999"] {
            assert!(Message::objects().paginate(1).page(conn, number).unwrap_err().is_empty_page(), "{number}");
        }
        assert!(Message::objects().paginate(3).page(conn, "-99999999999999999999").unwrap_err().is_empty_page());
    }


    fn a_deep_keyset_page_is_an_index_range(db) {
        let conn = &mut db.conn();
        seed(conn);
        many_messages(conn, 20_000);
        for (qs, indexes) in [
            (Message::objects().with_deleted(), &["weave_message_ordering"][..]),
            // Live rows: either ordering index (the partial one holds only live rows).
            (Message::objects(), &["weave_message_live_ordering", "weave_message_ordering"][..]),
        ] {
            // A cursor 15,000 rows deep: the token is tied to the ordering, not to the
            // page size, so a page of 20 follows it.
            let wide = qs.keyset(15_000, &key("deep")).max_per_page(20_000);
            let deep = wide.page(conn, None).unwrap().next.expect("a next page");
            let pages = qs.keyset(20, &key("deep"));
            let page = pages.page(conn, Some(&deep)).unwrap();
            let all = ids(&qs.clone().all(conn).unwrap());
            assert_eq!(ids(&page.results), all[15_000..15_020]);
            let plan = pages.explain_page(conn, Some(&deep), ExplainOptions::new()).unwrap();
            // The cursor bounds the index scans, not a filter over every earlier row.
            let conditions: Vec<&str> = plan
                .nodes()
                .into_iter()
                .filter(|n| n.index.as_deref().is_some_and(|i| indexes.contains(&i)))
                .filter_map(|n| n.index_condition.as_deref())
                .collect();
            match db.backend() {
                // One scan bounded on both columns, no sort.
                Backend::Postgres => {
                    assert!(conditions.len() == 1 && conditions[0].contains("ROW(") && conditions[0].contains("id"), "{plan}");
                    assert!(!plan.nodes().iter().any(|n| n.kind.is_sort()), "{plan}");
                }
                // A seek per prefix: inside the cursor's `updated`, then before it;
                // only their union (at most twice the page) is sorted. The live
                // rows' partial index leads with `deleted`, an equality first.
                Backend::Sqlite => {
                    let bare: Vec<&str> = conditions.iter().map(|c| c.trim_start_matches("deleted=? AND ")).collect();
                    assert_eq!(bare, ["updated=? AND id<?", "updated<?"], "{plan}");
                }
            }
        }
    }
}

/// No database involved: a secret is checked when it is made.
#[test]
fn a_cursor_secret_is_required_and_long_enough() {
    for short in ["", "fifteen bytes!!"] {
        let err = CursorSecret::new(short).unwrap_err();
        assert!(
            matches!(err, Error::WeakCursorSecret { min: 16, .. }),
            "{err}"
        );
    }
    assert!(CursorSecret::new("sixteen bytes!!!").is_ok());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_cursor_decoder_never_panics_on_text(token in ".{0,200}") {
            let _ = orm::paginate::check_cursor_token(&token, &fuzz_key());
            let pages = Message::objects().keyset(3, &key("test secret"));
            for backend in Backend::ALL {
                prop_assert!(pages.page_sql(Some(&token), backend).is_err());
            }
        }

        /// Tokens signed with the right key and made for the right ordering, with
        /// arbitrary contents: the decoder's inner layers never panic either.
        #[test]
        fn signed_tokens_with_arbitrary_contents_never_panic(
            direction in any::<u8>(),
            payload in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..120),
                "\\[(null|true|1|-9223372036854775808|1e400|\"x\"|\\{\"Int\":[0-9]{1,20}\\}|\\{\"Timestamp\":\"[0-9T:.-]{0,30}\"\\}|,){0,6}\\]".prop_map(String::into_bytes),
            ],
        ) {
            let token = signed_message_token(direction, &payload);
            let pages = Message::objects().keyset(3, &fuzz_key());
            for backend in Backend::ALL {
                match pages.page_sql(Some(&token), backend) {
                    Ok(sql) => prop_assert!(sql.contains("LIMIT")),
                    Err(e) => prop_assert!(e.is_invalid_cursor(), "{e}"),
                }
            }
        }

        #[test]
        fn the_cursor_decoder_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            let _ = orm::paginate::check_cursor_token(&token, &fuzz_key());
            let pages = Message::objects().keyset(3, &key("test secret"));
            prop_assert!(pages.page_sql(Some(&token), Backend::Sqlite).is_err());
        }
    }
}
