//! Query insight: plans as data on the demo's queries, index advice, analysed writes
//! that change nothing, query budgets and the profile report.

use std::time::Duration;

use demo::models::{Message, Thread};
use demo::schema::weave_message;
use diesel::connection::SimpleConnection;
use diesel::RunQueryDsl;
use orm::explain::{explain_recorded, AdviceKind, ExplainOptions, NodeKind};
use orm::instrument::max_queries;
use orm::prelude::*;
use orm::profile::{render_html, render_html_list, PlanPolicy};
use orm::{Error, Profiler};
use orm_tests::{on_both_backends, seed, TestDb};

#[derive(diesel::QueryableByName)]
struct AllVisible {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    all_visible: bool,
}

const MESSAGES: i64 = 5_000;
/// Every 20th message is deleted.
const DELETED: i64 = MESSAGES / 20;

/// 50 people, 100 threads and 5,000 messages (every 20th deleted, `updated` all
/// different). On PostgreSQL then `VACUUM ANALYZE` (fresh statistics, and a
/// visibility map that allows index-only scans); SQLite is left without statistics,
/// as most SQLite databases are.
fn seed_large(db: &TestDb) {
    let conn = &mut db.conn();
    match db.backend() {
        Backend::Postgres => {
            conn.batch_execute(
                "INSERT INTO weave_person (first_name, last_name, email_address, deleted)
                     SELECT 'First' || i, 'Last' || i, 'p' || i || '@example.org', i % 10 = 0 FROM generate_series(1, 50) i;
                 INSERT INTO weave_thread (title) SELECT 'Thread ' || i FROM generate_series(1, 100) i;
                 INSERT INTO weave_message (text, sent_by_id, thread_id, deleted, updated)
                     SELECT 'message number ' || i || ' with some text to make the row wider than an index entry',
                            1 + i % 50, 1 + i % 100, i % 20 = 0, now() - i * interval '1 second'
                     FROM generate_series(1, 5000) i;",
            )
            .unwrap();
            // VACUUM marks pages all-visible only once no other transaction (other
            // tests run in parallel) may still see their old state: retry until the
            // visibility map covers the table, or index-only scans are not chosen.
            // Up to 30 s: other suites may share the server.
            for _ in 0..600 {
                conn.batch_execute("VACUUM ANALYZE weave_message").unwrap();
                let visible: Vec<AllVisible> = orm::with_inner!(&mut **conn, |c| diesel::sql_query(
                    "SELECT relallvisible >= relpages AS all_visible FROM pg_class WHERE oid = 'weave_message'::regclass"
                )
                .load(c))
                .unwrap();
                if visible.first().is_some_and(|v| v.all_visible) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            conn.batch_execute("ANALYZE weave_person").unwrap();
            conn.batch_execute("ANALYZE weave_thread").unwrap();
        }
        Backend::Sqlite => {
            conn.batch_execute(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50)
                     INSERT INTO weave_person (first_name, last_name, email_address, deleted)
                     SELECT 'First' || i, 'Last' || i, 'p' || i || '@example.org', i % 10 = 0 FROM s;
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100)
                     INSERT INTO weave_thread (title) SELECT 'Thread ' || i FROM s;
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
                     INSERT INTO weave_message (text, sent_by_id, thread_id, deleted, updated)
                     SELECT 'message number ' || i || ' with some text to make the row wider than an index entry',
                            1 + i % 50, 1 + i % 100, i % 20 = 0,
                            strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || i || ' seconds')
                     FROM s;",
            )
            .unwrap();
        }
    }
}

on_both_backends! {
    fn counting_live_messages_reads_only_the_partial_index(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        assert_eq!(Message::objects().count(conn).unwrap(), MESSAGES - DELETED);
        let plan = Message::objects().explain_count(conn, ExplainOptions::new()).unwrap();
        assert!(plan.uses_index("soft_deletes_ignore"), "{plan}");
        assert!(!plan.has_seq_scan("weave_message"), "{plan}");
        match db.backend() {
            Backend::Postgres => {
                assert_eq!(plan.scan_kinds(), [NodeKind::IndexOnlyScan], "{plan}");
                assert_eq!(plan.root.kind, NodeKind::Aggregate);
                assert!(plan.raw.contains("\"Index Only Scan\""));
            }
            Backend::Sqlite => {
                let scan = plan.nodes()[0];
                assert!(scan.covering, "{plan}");
                assert_eq!(scan.relation.as_deref(), Some("weave_message"));
                assert!(plan.raw.contains("COVERING INDEX soft_deletes_ignore"));
            }
        }
    }

    fn filtering_deleted_messages_uses_an_index(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let deleted = Message::objects().only_deleted();
        assert_eq!(deleted.count(conn).unwrap(), DELETED);
        let plan = deleted.explain(conn).unwrap();
        assert!(plan.uses_index("weave_message_deleted"), "{plan}");
        assert!(!plan.has_seq_scan("weave_message"), "{plan}");
        let kinds = plan.scan_kinds();
        match db.backend() {
            Backend::Postgres => assert!(
                kinds == [NodeKind::BitmapHeapScan, NodeKind::BitmapIndexScan]
                    || kinds == [NodeKind::IndexScan],
                "{plan}"
            ),
            Backend::Sqlite => assert_eq!(kinds, [NodeKind::Search], "{plan}"),
        }
    }

    fn without_indexes_counting_is_a_seq_scan(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        conn.batch_execute("DROP INDEX soft_deletes_ignore; DROP INDEX weave_message_deleted; DROP INDEX weave_message_live_ordering; DROP INDEX weave_message_live_thread;").unwrap();
        let plan = Message::objects().explain_count(conn, ExplainOptions::new()).unwrap();
        assert!(plan.has_seq_scan("weave_message"), "{plan}");
        assert!(!plan.uses_index("soft_deletes_ignore"));
        let expected = match db.backend() {
            Backend::Postgres => NodeKind::SeqScan,
            Backend::Sqlite => NodeKind::Scan,
        };
        assert_eq!(plan.scan_kinds(), [expected], "{plan}");
    }

    fn explain_analyze_reports_actual_rows_or_a_typed_error(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let qs = Message::objects().filter(weave_message::thread_id.eq(7));
        let result = qs.explain_analyze(conn);
        match db.backend() {
            Backend::Postgres => {
                let plan = result.unwrap();
                assert!(plan.is_analyzed());
                let expected = qs.count(conn).unwrap() as f64;
                assert_eq!(plan.root.actual_rows, Some(expected), "{plan}");
                assert!(plan.execution_ms.is_some());
                assert!(plan.planning_ms.is_some());
                assert!(plan.nodes().iter().all(|n| n.actual_loops.is_some()));
                assert!(plan.summary().contains(&format!("; {expected} rows in ")), "{}", plan.summary());
            }
            Backend::Sqlite => {
                let err = result.unwrap_err();
                assert!(err.is_unsupported(), "{err}");
                assert_eq!(err.to_string(), "EXPLAIN ANALYZE is not supported on sqlite");
            }
        }
    }

    fn explain_keeps_the_querysets_values_bound(db) {
        let conn = &mut db.conn();
        seed(conn);
        let qs = Message::objects().filter(weave_message::text.like("What'%")).limit(3);
        let (plan, captured) = orm::capture(|| qs.explain(conn));
        let plan = plan.unwrap();
        assert_eq!(plan.sql, qs.sql(db.backend()).unwrap());
        assert_eq!(captured.len(), 1);
        let sent = &captured.data()[0];
        let prefix = match db.backend() {
            Backend::Postgres => "EXPLAIN (COSTS, VERBOSE, FORMAT JSON) SELECT ",
            Backend::Sqlite => "EXPLAIN QUERY PLAN SELECT ",
        };
        assert!(sent.sql.starts_with(prefix), "{}", sent.sql);
        assert!(!sent.sql.contains("What"), "{}", sent.sql);
        let binds: &[&str] = if db.backend().dialect().limit_literal { &["\"What'%\""] } else { &["\"What'%\"", "3"] };
        assert_eq!(sent.binds, binds);
    }

    fn an_analysed_write_changes_nothing(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let thread_7 = Message::objects().filter(weave_message::thread_id.eq(7));
        let live = thread_7.count(conn).unwrap();
        let all_deleted = Message::objects().only_deleted().count(conn).unwrap();
        assert!(live > 0);

        let soft = thread_7.explain_delete(conn, ExplainOptions::analyze());
        let update = thread_7.explain_update(conn, weave_message::text.eq("changed"), ExplainOptions::analyze());
        let all_rows = thread_7.clone().with_deleted().count(conn).unwrap();
        let hard = thread_7.clone().with_deleted().explain_hard_delete(conn, ExplainOptions::analyze());
        match db.backend() {
            Backend::Postgres => {
                let soft = soft.unwrap();
                assert_eq!(soft.root.kind, NodeKind::ModifyTable, "{soft}");
                assert_eq!(soft.root.label, "ModifyTable (Update)");
                // The UPDATE really ran (its scan found the rows)...
                let scan = soft.nodes().into_iter().find(|n| n.kind.is_scan()).unwrap();
                assert_eq!(scan.actual_rows, Some(live as f64), "{soft}");
                assert!(update.unwrap().sql.starts_with("UPDATE \"weave_message\" SET \"text\" = $1"));
                let hard = hard.unwrap();
                assert_eq!(hard.root.label, "ModifyTable (Delete)");
                assert!(hard.sql.starts_with("DELETE FROM \"weave_message\" WHERE"), "{}", hard.sql);
            }
            Backend::Sqlite => {
                assert!(soft.unwrap_err().is_unsupported());
                assert!(update.unwrap_err().is_unsupported());
                assert!(hard.unwrap_err().is_unsupported());
                // Without ANALYZE the plan is read and the statement never runs.
                let plan = thread_7.explain_delete(conn, ExplainOptions::new()).unwrap();
                assert!(plan.sql.starts_with("UPDATE `weave_message` SET `deleted` = true"));
            }
        }
        // ...and was rolled back: same rows live and deleted, no text changed.
        assert_eq!(thread_7.count(conn).unwrap(), live);
        assert_eq!(thread_7.clone().with_deleted().count(conn).unwrap(), all_rows);
        assert_eq!(Message::objects().only_deleted().count(conn).unwrap(), all_deleted);
        assert_eq!(
            Message::objects().filter(weave_message::text.eq("changed")).count(conn).unwrap(),
            0
        );

        // Inside an open transaction the analysis rolls back to a savepoint only.
        let outer = orm::atomic(conn, |conn| {
            thread_7.clone().limit(1).delete(conn)?;
            if conn.backend() == Backend::Postgres {
                thread_7.explain_delete(conn, ExplainOptions::analyze())?;
            }
            thread_7.count(conn)
        });
        assert_eq!(outer.unwrap(), live - 1);
        assert_eq!(thread_7.count(conn).unwrap(), live - 1);
    }

    fn joins_and_each_prefetch_hop_are_explained(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let related = Message::objects()
            .filter(weave_message::thread_id.eq(3))
            .select_related(Message::sent_by);
        let plan = related.explain(conn, ExplainOptions::new()).unwrap();
        let relations: Vec<_> = plan.nodes().iter().filter_map(|n| n.relation.clone()).collect();
        assert!(relations.contains(&"weave_message".to_owned()), "{plan}");
        assert!(relations.contains(&"weave_person".to_owned()), "{plan}");
        match db.backend() {
            // The thread's live messages: the partial index of them, or the key's.
            Backend::Postgres => assert!(
                plan.uses_index("weave_message_live_thread") || plan.uses_index("weave_message_thread_id"),
                "{plan}"
            ),
            // Without statistics SQLite prefers the soft-delete partial index; each
            // sender is found by primary key.
            Backend::Sqlite => assert_eq!(plan.scan_kinds(), [NodeKind::Search, NodeKind::Search], "{plan}"),
        }

        let page = Thread::objects()
            .limit(10)
            .prefetch(Thread::messages().select_related(Message::sent_by));
        let (plans, captured) = orm::capture(|| page.explain(conn, ExplainOptions::new()));
        let plans = plans.unwrap();
        // EXPLAIN the parents, run the prefetch (parents, hop), EXPLAIN the hop.
        assert_eq!(captured.len(), 4);
        assert!(captured.sql()[0].starts_with("EXPLAIN"));
        assert!(captured.sql()[3].starts_with("EXPLAIN"));
        assert_eq!(plans.len(), 2);
        assert!(plans[0].nodes().iter().any(|n| n.relation.as_deref() == Some("weave_thread")));
        assert_eq!(plans[1].sql, captured.sql()[2]);
        match db.backend() {
            Backend::Postgres => assert!(plans[1].sql.contains("\"weave_message\".\"thread_id\" = ANY($1)"), "{}", plans[1].sql),
            Backend::Sqlite => assert!(plans[1].sql.contains("`weave_message`.`thread_id` IN (SELECT value FROM json_each(?))"), "{}", plans[1].sql),
        }
        assert!(!plans[1].has_seq_scan("weave_message"), "{}", plans[1]);
        if db.backend() == Backend::Postgres {
            let by_thread = plans[1].uses_index("weave_message_live_thread") || plans[1].uses_index("weave_message_thread_id");
            assert!(by_thread, "{}", plans[1]);
        }
    }

    fn the_served_list_reads_the_live_ordering_index_without_a_sort(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        // list_some as users write it: soft-deleted rows hidden, senders joined.
        let served = Message::objects().select_related(Message::sent_by).limit(100);
        let plan = served.explain(conn, ExplainOptions::new()).unwrap();
        assert!(plan.uses_index("weave_message_live_ordering"), "{plan}");
        assert!(!plan.uses_index("soft_deletes_ignore"), "{plan}");
        // No sort of the live rows: PostgreSQL sorts nothing below the LIMIT, SQLite
        // only the joined page (its outer ORDER BY over at most 100 rows).
        let page = Message::objects().limit(100).explain(conn).unwrap();
        assert!(page.uses_index("weave_message_live_ordering"), "{page}");
        assert!(!page.nodes().iter().any(|n| n.kind.is_sort()), "{page}");
        assert!(page.advice().is_empty(), "{page}");
    }

    fn the_default_ordering_gets_sort_for_limit_advice(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        // The demo's schema has indexes on the default ordering; without them:
        conn.batch_execute("DROP INDEX weave_message_ordering; DROP INDEX weave_message_live_ordering;").unwrap();
        let page = Message::objects().limit(20);
        let plan = page.explain(conn).unwrap();
        let advice = plan.advice();
        assert_eq!(advice.len(), 1, "{plan}\n{advice:?}");
        let a = &advice[0];
        assert!(matches!(a.kind, AdviceKind::SortForLimit { .. }), "{a:?}");
        assert_eq!(a.table, "weave_message");
        match db.backend() {
            Backend::Postgres => {
                assert_eq!(a.columns, ["updated DESC", "id DESC"]);
                assert_eq!(a.partial.as_deref(), Some("deleted = false"));
                assert_eq!(
                    a.create_index,
                    "CREATE INDEX weave_message_updated_id_idx ON weave_message (updated DESC, id DESC) WHERE deleted = false"
                );
            }
            Backend::Sqlite => {
                assert_eq!(a.columns, ["deleted", "updated DESC", "id DESC"]);
                assert_eq!(a.partial, None);
                assert_eq!(
                    a.create_index,
                    "CREATE INDEX weave_message_deleted_updated_id_idx ON weave_message (deleted, updated DESC, id DESC)"
                );
            }
        }
        assert!(a.to_string().starts_with("advice from one plan: "));
        if db.backend() == Backend::Postgres {
            assert!(matches!(a.kind, AdviceKind::SortForLimit { rows_sorted: Some(r) } if r > 4_000.0), "{a:?}");
        }

        // Following the advice removes the sort, and the advice with it.
        conn.batch_execute(&a.create_index).unwrap();
        if db.backend() == Backend::Postgres {
            conn.batch_execute("ANALYZE weave_message").unwrap();
        }
        let plan = page.explain(conn).unwrap();
        let name = a.create_index.split(' ').nth(2).unwrap();
        assert!(plan.uses_index(name), "{plan}");
        assert!(plan.nodes().iter().all(|n| !n.kind.is_sort()), "{plan}");
        assert!(plan.advice().is_empty(), "{plan}");
        // A small LIMIT over a filter on an indexed column is not advised on either.
        let by_thread = Message::objects().filter(weave_message::thread_id.eq(3)).limit(5);
        assert!(by_thread.explain(conn).unwrap().advice().iter().all(|a| a.table == "weave_message"));
    }

    fn a_seq_scan_whose_filter_removes_most_rows_gets_advice_where_rows_are_measured(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let qs = Message::objects().filter(weave_message::text.like("message number 42 %")).unordered();
        match db.backend() {
            Backend::Postgres => {
                let plan = qs.explain_analyze(conn).unwrap();
                let advice = plan.advice();
                assert_eq!(advice.len(), 1, "{plan}");
                let a = &advice[0];
                let AdviceKind::SeqScanFilter { rows_read, rows_removed } = a.kind else {
                    panic!("{a:?}")
                };
                assert_eq!(rows_read, (MESSAGES - DELETED) as f64 + 0.0_f64.max(0.0) + (rows_read - (MESSAGES - DELETED) as f64));
                assert!(rows_removed / rows_read > 0.99, "{a:?}");
                assert_eq!(a.columns, ["text"]);
                assert_eq!(a.partial.as_deref(), Some("deleted = false"));
            }
            Backend::Sqlite => {
                // SQLite reports no row counts: no scan advice from its plans.
                let plan = qs.explain(conn).unwrap();
                assert!(plan.nodes().iter().all(|n| n.rows_removed_by_filter.is_none()));
                assert!(plan.advice().is_empty(), "{plan}");
            }
        }
    }

    fn a_budget_failure_groups_statements_by_shape_and_call_site(db) {
        let conn = &mut db.conn();
        seed(conn);
        let loop_line = line!() + 4;
        let result = max_queries(2, || -> orm::Result<()> {
            let threads = Thread::objects().all(conn)?;
            for thread in &threads {
                Message::objects().filter(weave_message::thread_id.eq(thread.id)).count(conn)?;
            }
            Ok(())
        });
        let err = result.unwrap_err();
        assert!(err.is_query_budget());
        let Error::QueryBudget(exceeded) = &err else { panic!("{err}") };
        assert_eq!(exceeded.max, 2);
        assert_eq!(exceeded.captured.len(), 3);
        assert_eq!(exceeded.groups.len(), 2);
        let repeated = &exceeded.groups[0];
        assert_eq!(repeated.count, 2);
        assert!(repeated.fingerprint.starts_with("SELECT COUNT(*) FROM"));
        assert_eq!(repeated.call_sites.len(), 1);
        let site = repeated.call_sites[0].call_site.unwrap();
        assert!(site.file().ends_with("explain_and_profile.rs"));
        assert_eq!(site.line(), loop_line);
        assert_eq!(repeated.call_sites[0].count, 2);
        let text = err.to_string();
        assert!(text.starts_with("query budget exceeded: 3 queries, at most 2 allowed; by shape:\n  2 x SELECT COUNT(*)"), "{text}");
        assert!(text.contains(&format!("      2 x at {}:{loop_line}:", site.file())), "{text}");

        // The same page by prefetch fits: 2 queries.
        let page = max_queries(2, || Thread::objects().prefetch(Thread::messages()).all(conn));
        assert_eq!(page.unwrap().unwrap().len(), 2);
        // Transaction statements do not count.
        let within = max_queries(1, || orm::atomic(conn, |c| Message::objects().count(c)));
        assert_eq!(within.unwrap().unwrap(), 7);
    }

    fn an_exact_count_failure_also_names_the_repeated_shapes(db) {
        let conn = &mut db.conn();
        seed(conn);
        let line = line!() + 3;
        let err = orm::instrument::expect_queries(1, || {
            for id in [1, 2, 3] {
                Message::objects().filter(weave_message::id.eq(id)).first(conn).unwrap();
            }
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("expected 1 queries, got 3:\n"), "{text}");
        let shapes = text.split_once("repeated shapes:\n").map(|(_, s)| s).unwrap_or_default();
        assert!(shapes.starts_with("  3 x SELECT "), "{text}");
        assert!(shapes.contains(&format!("      3 x at tests/tests/explain_and_profile.rs:{line}:")), "{text}");
    }

    /// The panic is caught and read (not `#[should_panic]`): a backend skipped for
    /// want of a server must pass, not fail for not panicking.
    fn assert_max_queries_panics_over_budget(db) {
        let conn = &mut db.conn();
        seed(conn);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            orm::assert_max_queries!(1, {
                Message::objects().count(conn).unwrap();
                Thread::objects().count(conn).unwrap();
            });
        }))
        .expect_err("over budget: a panic");
        let message = panicked
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panicked.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        assert!(message.contains("query budget exceeded: 2 queries, at most 1 allowed"), "{message}");
    }

    fn a_profile_reports_every_statement_its_shapes_n_plus_one_and_plans(db) {
        let conn = &mut db.conn();
        seed(conn);
        let loop_line = line!() + 7;
        let (result, mut profile) = Profiler::new("GET /threads/ <naive>")
            .plans(PlanPolicy::EveryShape)
            .max_queries(3)
            .run(|| -> orm::Result<usize> {
                let threads = Thread::objects().all(conn)?;
                for thread in &threads {
                    Message::objects().filter(weave_message::thread_id.eq(thread.id)).all(conn)?;
                }
                Message::objects().filter(weave_message::thread_id.eq(99)).delete(conn)
            });
        assert_eq!(result.unwrap(), 0);

        // Statements: 1 + 2 threads + 1 delete, each with SQL, binds, rows, call site.
        assert_eq!(profile.totals.queries, 4);
        assert_eq!(profile.queries.len(), profile.totals.statements);
        let data: Vec<_> = profile.queries.iter().filter(|q| q.kind == orm::instrument::QueryKind::Data).collect();
        assert_eq!(data.len(), 4);
        assert_eq!(data[1].binds, ["2"]);
        assert_eq!(data[2].binds, ["1"]);
        assert_eq!(data[1].rows, Some(2));
        assert_eq!(data[2].rows, Some(4));
        assert!(data[1].call_site.as_deref().unwrap().contains(&format!("explain_and_profile.rs:{loop_line}:")));
        assert!(data.windows(2).all(|w| w[0].start_us <= w[1].start_us));
        assert!(profile.totals.wall_us >= profile.totals.database_us);
        assert_eq!(profile.totals.rows, 2 + 2 + 4);

        // Shapes and N+1.
        assert_eq!(profile.groups.len(), 3);
        assert_eq!(profile.groups[0].count, 2);
        assert_eq!(profile.n_plus_one.len(), 1);
        assert_eq!(profile.n_plus_one[0].count, 2);
        assert_eq!(profile.queries.iter().filter(|q| q.n_plus_one).count(), 2);

        // Budget.
        let over = profile.check_budget().unwrap_err();
        assert!(over.to_string().starts_with("query budget exceeded: 4 queries, at most 3 allowed"));

        // Plans: one per SELECT shape; the write is refused, never re-sent.
        let (collected, during) = orm::capture(|| profile.collect_plans(conn));
        assert_eq!(collected, 2);
        assert_eq!(during.len(), 2);
        assert!(during.sql().iter().all(|s| s.starts_with("EXPLAIN")));
        assert_eq!(profile.plans.len(), 3);
        let refused = profile.plans.iter().find(|p| p.plan.is_none()).unwrap();
        assert_eq!(refused.error.as_deref(), Some("cannot explain the captured statement again: only SELECT statements are explained again"));
        assert_eq!(profile.totals.queries, 4, "plans are not part of the profile");

        // Text summary.
        let summary = profile.summary();
        assert!(summary.starts_with("GET /threads/ <naive>: 4 queries in "), "{summary}");
        assert!(summary.contains("(OVER budget of 3)"), "{summary}");
        assert!(summary.contains("n+1: 2 x at "), "{summary}");
        assert!(summary.contains("plan of #"), "{summary}");

        // JSON.
        let json: serde_json::Value = serde_json::from_str(&profile.to_json()).unwrap();
        assert_eq!(json["label"], "GET /threads/ <naive>");
        assert_eq!(json["totals"]["queries"], 4);
        assert_eq!(json["queries"].as_array().unwrap().len(), profile.queries.len());
        assert_eq!(json["queries"][1]["binds"][0], "2");
        assert_eq!(json["n_plus_one"][0]["count"], 2);
        assert_eq!(json["plans"].as_array().unwrap().len(), 3);
        assert_eq!(json["plan_policy"]["policy"], "every_shape");

        // HTML: one self-contained page showing every statement, escaped.
        let html = render_html(&profile);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("@import"));
        for q in &profile.queries {
            assert!(html.contains(&format!("id=\"p0-q{}\"", q.index)));
            assert!(html.contains(&format!("data-target=\"p0-q{}\"", q.index)));
        }
        assert!(html.contains("GET /threads/ &lt;naive&gt;"));
        assert!(!html.contains("<naive>"));
        assert!(html.contains("class=\"bar n1\""));
        assert!(html.contains("id=\"p0-plan0\""));
        let list = render_html_list(&[profile.clone(), profile]);
        assert!(list.contains("id=\"p1-q0\"") && list.contains("href=\"#p1\""));
        if let Ok(dir) = std::env::var("ORM_PROFILE_HTML_DIR") {
            // For looking at the report in a browser.
            std::fs::write(format!("{dir}/profile_{}.html", db.backend()), &html).unwrap();
        }
    }

    fn a_profile_scope_can_span_a_request_and_plans_follow_the_policy(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        // Opened by a middleware, closed when the response goes out.
        let scope = Profiler::new("GET /threads/").plans(PlanPolicy::SlowerThan(Duration::from_secs(3600))).start();
        let (page, inner) = orm::capture(|| {
            Thread::objects().limit(100).prefetch(Thread::messages().select_related(Message::sent_by)).all(conn)
        });
        assert_eq!(page.unwrap().len(), 100);
        let mut profile = scope.finish();
        assert_eq!(inner.len(), 2);
        assert_eq!(profile.totals.queries, 2);
        assert!(profile.n_plus_one.is_empty());
        assert_eq!(profile.collect_plans(conn), 0, "no statement took an hour");

        let (_, mut profile) = Profiler::new("every shape").plans(PlanPolicy::EveryShape).run(|| {
            Thread::objects().limit(100).prefetch(Thread::messages()).all(conn)
        });
        assert_eq!(profile.collect_plans(conn), 2);
        // The hop's plan comes from the captured statement, its keys bound again.
        let hop = profile.plans[1].plan.as_ref().unwrap();
        assert_eq!(hop.sql, profile.queries.iter().rfind(|q| q.sql.starts_with("SELECT")).unwrap().sql);
        assert!(hop.nodes().iter().any(|n| n.relation.as_deref() == Some("weave_message")), "{hop}");

        // Scopes closed out of order keep their own statements.
        let outer = Profiler::new("outer").start();
        let inner = Profiler::new("inner").start();
        Message::objects().count(conn).unwrap();
        let outer = outer.finish();
        Thread::objects().count(conn).unwrap();
        let inner = inner.finish();
        assert_eq!(outer.totals.queries, 1);
        assert_eq!(inner.totals.queries, 2);
        let (_, after) = orm::capture(|| Thread::objects().count(conn));
        assert_eq!(after.len(), 1);

        let (_, mut never) = Profiler::new("quiet").run(|| Message::objects().count(conn));
        assert_eq!(never.collect_plans(conn), 0);
        assert!(never.plans.is_empty());
    }

    fn a_captured_select_is_explained_again_with_its_values(db) {
        seed_large(&db);
        let conn = &mut db.conn();
        let (_, captured) = orm::capture(|| {
            Message::objects().filter(weave_message::text.like("message \"42\"%")).limit(3).all(conn).unwrap();
            Message::objects().in_bulk(conn, &[1, 2, 3]).unwrap();
        });
        for record in captured.data() {
            let plan = explain_recorded(conn, record, ExplainOptions::new()).unwrap();
            assert_eq!(plan.sql, record.sql);
        }
        let by_id = explain_recorded(conn, captured.data()[1], ExplainOptions::new()).unwrap();
        assert!(!by_id.has_seq_scan("weave_message"), "{by_id}");
        if db.backend() == Backend::Postgres {
            let analysed = explain_recorded(conn, captured.data()[1], ExplainOptions::analyze()).unwrap();
            assert_eq!(analysed.root.actual_rows, Some(3.0), "{analysed}");
        }
    }
}

on_both_backends! {
    /// Sampling is counted per profiler (its clones share the count), so no other
    /// test's profiles move this one's.
    fn sampling_collects_plans_for_one_profile_in_n(db) {
        let conn = &mut db.conn();
        seed(conn);
        let profiler = Profiler::new("sampled").plans(PlanPolicy::Sample { one_in: 3 });
        let mut sampled = Vec::new();
        for i in 0..6 {
            let (_, mut profile) = profiler
                .clone()
                .label(format!("request {i}"))
                .run(|| Message::objects().count(conn));
            assert_eq!(profile.label, format!("request {i}"));
            sampled.push(profile.collect_plans(conn));
        }
        assert_eq!(sampled, [1, 0, 0, 1, 0, 0]);
        // A new profiler counts from its own start.
        let (_, mut first) = Profiler::new("other").plans(PlanPolicy::Sample { one_in: 3 }).run(|| Message::objects().count(conn));
        assert_eq!(first.collect_plans(conn), 1);
    }
}

#[derive(diesel::QueryableByName)]
struct Counted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// SQLite: a new connection refreshes statistics SQLite lacks (`PRAGMA
/// optimize=0x10002`, as SQLite recommends for long-lived connections), so an index
/// created since the last `ANALYZE` is planned with its real numbers. PostgreSQL's
/// autovacuum keeps its own statistics; there is nothing to run.
#[test]
fn sqlite_connections_refresh_missing_statistics_when_they_open() {
    let db = orm_tests::sqlite();
    seed_large(&db);
    let conn = &mut db.conn();
    conn.batch_execute("ANALYZE; CREATE INDEX weave_message_text ON weave_message (text);")
        .unwrap();
    let stats = |conn: &mut orm::AnyConnection| -> i64 {
        orm::with_inner!(&mut *conn, |c| {
            diesel::sql_query(
                "SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE idx = 'weave_message_text'",
            )
            .get_result::<Counted>(c)
        })
        .unwrap()
        .n
    };
    assert_eq!(
        stats(conn),
        0,
        "a new index has no statistics until analysed"
    );
    let fresh = orm::Database::open(&db.url).unwrap();
    let conn = &mut fresh.get().unwrap();
    assert_eq!(stats(conn), 1, "the new connection analysed the table");
}
