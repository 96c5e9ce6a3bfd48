//! `explain()` on querysets, their counts and writes, joins and prefetch hops.

use crate::connection::AsConnection;
use std::panic::Location;

use diesel::query_builder::{AsChangeset, QueryFragment};

use super::options::ExplainOptions;
use super::plan::{Plan, PlanContext};
use super::statement::{explain_fragment, render_explain};
use crate::connection::{AnyConnection, Backend, Db};
use crate::error::Result;
use crate::model::Model;
use crate::queryset::{Deleted, QuerySet};
use crate::relations::{JoinSet, PrefetchSet, Prefetched, Related};

/// What the queryset tells advice about its statement.
fn context_of<M: Model>(qs: &QuerySet<M>, ordered: bool) -> PlanContext {
    let name = crate::fragment::TableName::of(&M::Table::default()).ok();
    PlanContext {
        table: name.as_ref().map(|n| n.name.clone()),
        schema: name.and_then(|n| n.schema),
        order: if ordered {
            // An index on the model's table serves its own columns only; the
            // ordering is advised up to the first related column.
            qs.ordering()
                .iter()
                .map_while(|t| Some((t.own_column()?.to_owned(), t.is_descending())))
                .collect()
        } else {
            Vec::new()
        },
        limited: qs.source().limit.is_some(),
        live_rows_of: M::soft_delete_column()
            .filter(|_| qs.deleted_rows() == Deleted::Hide)
            .map(|c| c.name().to_owned()),
    }
}

impl<M: Model> QuerySet<M> {
    /// The database's plan for the statement [`all`](Self::all) sends, without
    /// running it (one `EXPLAIN` statement, the queryset's values bound).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Message::objects().filter(weave_message::text.like("What%")).limit(10);
    /// let plan = qs.explain(&mut conn)?;
    /// assert!(plan.has_seq_scan("weave_message")); // the doc database has no index
    /// // SQLite's own rows, `id|parent|notused|detail`:
    /// assert!(plan.raw.ends_with("|0|0|USE TEMP B-TREE FOR ORDER BY"));
    /// assert_eq!(plan.sql, qs.sql(Backend::Sqlite)?);
    /// # Ok(()) }
    /// ```
    ///
    /// The statement sent, on each backend (see [`explain_sql`](Self::explain_sql)):
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let qs = Message::objects().filter(weave_message::thread_id.eq(7)).limit(10);
    /// assert_eq!(
    ///     qs.explain_sql(Backend::Sqlite, ExplainOptions::new())?,
    ///     "EXPLAIN QUERY PLAN SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?)) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 10"
    /// );
    /// assert_eq!(
    ///     qs.explain_sql(Backend::Postgres, ExplainOptions::analyze())?,
    ///     r#"EXPLAIN (ANALYZE, COSTS, VERBOSE, BUFFERS, FORMAT JSON) SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1)) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC LIMIT $2"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`](crate::Error::Query) when the database rejects the statement,
    /// [`Error::PlanFormat`](crate::Error::PlanFormat) when its output cannot be read.
    #[track_caller]
    pub fn explain(&self, conn: &mut impl AsConnection) -> Result<Plan> {
        let conn = conn.connection();
        self.explain_at(conn, ExplainOptions::new(), Location::caller())
    }

    /// The plan with actual rows and times: the statement runs, inside a transaction
    /// that is rolled back (`EXPLAIN (ANALYZE, COSTS, VERBOSE, BUFFERS, FORMAT JSON)`).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) on SQLite, which has no
    /// `EXPLAIN ANALYZE`; see [`explain`](Self::explain).
    ///
    /// # Backend support
    /// | PostgreSQL | SQLite |
    /// |---|---|
    /// | actual rows, loops, times, buffers | `Unsupported` |
    #[track_caller]
    pub fn explain_analyze(&self, conn: &mut impl AsConnection) -> Result<Plan> {
        let conn = conn.connection();
        self.explain_at(conn, ExplainOptions::analyze(), Location::caller())
    }

    /// The plan of [`all`](Self::all)'s statement with chosen options.
    #[track_caller]
    pub fn explain_with(
        &self,
        conn: &mut impl AsConnection,
        options: ExplainOptions,
    ) -> Result<Plan> {
        let conn = conn.connection();
        self.explain_at(conn, options, Location::caller())
    }

    /// The EXPLAIN statement [`explain_with`](Self::explain_with) sends on
    /// `backend`, placeholders included (SQLite ignores the options).
    pub fn explain_sql(&self, backend: Backend, options: ExplainOptions) -> Result<String> {
        render_explain(&self.select_statement(), backend, options)
    }

    fn explain_at(
        &self,
        conn: &mut AnyConnection,
        options: ExplainOptions,
        site: &'static Location<'static>,
    ) -> Result<Plan> {
        let statement = self.select_statement();
        explain_fragment(conn, &statement, options, context_of(self, true), site)
    }

    /// The plan of the statement [`count`](Self::count) sends.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::explain::ExplainOptions;
    /// use orm::prelude::*;
    /// # conn.batch_execute("CREATE INDEX soft_deletes_ignore ON weave_message (deleted) WHERE deleted = false").unwrap();
    /// let plan = Message::objects().explain_count(&mut conn, ExplainOptions::new())?;
    /// assert!(plan.uses_index("soft_deletes_ignore"));
    /// assert_eq!(plan.summary(), "SEARCH weave_message USING COVERING INDEX soft_deletes_ignore (deleted=?)");
    /// // SQLite sent EXPLAIN QUERY PLAN followed by count()'s statement:
    /// assert_eq!(
    ///     plan.sql,
    ///     "SELECT COUNT(*) FROM `weave_message` WHERE (`weave_message`.`deleted` = false)"
    /// );
    /// // PostgreSQL sends the options' prefix followed by the same statement:
    /// assert_eq!(
    ///     format!("{}{}", ExplainOptions::new().postgres_prefix(), Message::objects().count_sql(Backend::Postgres)?),
    ///     r#"EXPLAIN (COSTS, VERBOSE, FORMAT JSON) SELECT COUNT(*) FROM "weave_message" WHERE ("weave_message"."deleted" = false)"#
    /// );
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn explain_count(
        &self,
        conn: &mut impl AsConnection,
        options: ExplainOptions,
    ) -> Result<Plan> {
        let conn = conn.connection();
        let statement = self.count_statement();
        explain_fragment(
            conn,
            &*statement,
            options,
            context_of(self, false),
            Location::caller(),
        )
    }

    /// The plan of the statement [`delete`](Self::delete) sends (a soft-delete
    /// `UPDATE`, or a `DELETE`). Never applied: without `analyze` nothing runs; with
    /// it the statement runs inside a transaction that is rolled back.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::explain::ExplainOptions;
    /// use orm::prelude::*;
    /// let thread_1 = Message::objects().filter(weave_message::thread_id.eq(1));
    /// let plan = thread_1.explain_delete(&mut conn, ExplainOptions::new())?;
    /// assert_eq!(plan.sql, "UPDATE `weave_message` SET `deleted` = true, `updated` = ? WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?))");
    /// assert_eq!(thread_1.count(&mut conn)?, 2); // nothing was deleted
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn explain_delete(
        &self,
        conn: &mut impl AsConnection,
        options: ExplainOptions,
    ) -> Result<Plan> {
        let conn = conn.connection();
        let statement = self.delete_statement();
        explain_fragment(
            conn,
            &statement,
            options,
            PlanContext::default(),
            Location::caller(),
        )
    }

    /// The plan of the `DELETE` [`hard_delete`](Self::hard_delete) sends. Never
    /// applied (see [`explain_delete`](Self::explain_delete)).
    #[track_caller]
    pub fn explain_hard_delete(
        &self,
        conn: &mut impl AsConnection,
        options: ExplainOptions,
    ) -> Result<Plan> {
        let conn = conn.connection();
        let statement = self.hard_delete_statement();
        explain_fragment(
            conn,
            &statement,
            options,
            PlanContext::default(),
            Location::caller(),
        )
    }

    /// The plan of the statement [`update`](Self::update) would send with
    /// `changes`. Never applied (see [`explain_delete`](Self::explain_delete)).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) when `changes` sets nothing
    /// and the model has no `updated` column: there is no statement to explain.
    #[track_caller]
    pub fn explain_update<C>(
        &self,
        conn: &mut impl AsConnection,
        changes: C,
        options: ExplainOptions,
    ) -> Result<Plan>
    where
        C: AsChangeset<Target = M::Table>,
        C::Changeset: QueryFragment<Db> + Send + Sync + 'static,
    {
        let conn = conn.connection();
        let backend = conn.backend();
        let Some(statement) = self.update_statement(backend, changes)? else {
            return Err(crate::Error::Unsupported {
                backend,
                feature: "explaining an update that sets nothing",
            });
        };
        explain_fragment(
            conn,
            &statement,
            options,
            PlanContext::default(),
            Location::caller(),
        )
    }
}

impl<C: Model, J: JoinSet<C>> Related<C, J> {
    /// The plan of the JOIN [`all`](Self::all) sends.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::explain::{ExplainOptions, NodeKind};
    /// use orm::prelude::*;
    /// let plan = Message::objects().select_related(Message::sent_by).explain(&mut conn, ExplainOptions::new())?;
    /// assert_eq!(plan.scan_kinds(), [NodeKind::Scan, NodeKind::Search]);
    /// assert!(plan.summary().contains("SEARCH weave_person USING INTEGER PRIMARY KEY (rowid=?)"));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn explain(&self, conn: &mut impl AsConnection, options: ExplainOptions) -> Result<Plan> {
        let conn = conn.connection();
        let statement = self.statement()?;
        explain_fragment(
            conn,
            &statement,
            options,
            context_of(self.queryset(), true),
            Location::caller(),
        )
    }
}

impl<P: Model, S: PrefetchSet<P>> Prefetched<P, S> {
    /// The plans of the parents' query and of each hop's query, in the order
    /// [`all`](Self::all) sends them.
    ///
    /// A hop's statement depends on the keys the previous query returned, so this
    /// runs the prefetch once (reading its rows, captured like any other
    /// statements), then explains each statement it sent with its values bound
    /// again (see [`explain_recorded`](crate::explain::explain_recorded)).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::explain::ExplainOptions;
    /// use orm::prelude::*;
    /// let plans = Thread::objects()
    ///     .prefetch(Thread::messages().select_related(Message::sent_by))
    ///     .explain(&mut conn, ExplainOptions::new())?;
    /// assert_eq!(plans.len(), 2);
    /// assert!(plans[1].sql.contains("`weave_message`.`thread_id` IN (SELECT value FROM json_each(?))"));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn explain(
        &self,
        conn: &mut impl AsConnection,
        options: ExplainOptions,
    ) -> Result<Vec<Plan>> {
        let conn = conn.connection();
        let site = Location::caller();
        let (qs, _) = self.parts();
        let parents_statement = qs.select_statement();
        let mut plans = vec![explain_fragment(
            conn,
            &parents_statement,
            options,
            context_of(qs, true),
            site,
        )?];
        let (loaded, captured) = crate::capture(|| self.all(conn));
        loaded?;
        for record in captured.data().into_iter().skip(1) {
            plans.push(super::explain_recorded(conn, record, options)?);
        }
        Ok(plans)
    }
}

impl<M: Model> crate::paginate::KeysetPaginator<M> {
    /// The database's plan for the page a token points to (`None`: the first page),
    /// without running it: the statement [`page`](Self::page) sends, its values bound.
    /// A deep page's plan shows whether the cursor is an index range.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// # conn.batch_execute("CREATE INDEX weave_message_ordering ON weave_message (updated DESC, id DESC)").unwrap();
    /// let secret = orm::paginate::CursorSecret::new("from the app's settings")?;
    /// let pages = Message::objects().with_deleted().keyset(1, &secret);
    /// let next = pages.page(&mut conn, None)?.next;
    /// let plan = pages.explain_page(&mut conn, next.as_deref(), ExplainOptions::new())?;
    /// assert!(plan.uses_index("weave_message_ordering"), "{plan}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`page`](Self::page) for a bad token; as
    /// [`QuerySet::explain_with`] for the plan.
    #[track_caller]
    pub fn explain_page(
        &self,
        conn: &mut impl AsConnection,
        cursor: Option<&str>,
        options: ExplainOptions,
    ) -> Result<Plan> {
        let conn = conn.connection();
        let site = Location::caller();
        let (statement, _) = self.statement(cursor, conn.backend())?;
        explain_fragment(
            conn,
            &statement,
            options,
            context_of(self.queryset(), true),
            site,
        )
    }
}
