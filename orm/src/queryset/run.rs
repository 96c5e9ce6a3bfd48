//! Terminal methods that read: each sends exactly one statement.

use crate::connection::AsConnection;
use std::collections::HashMap;
use std::panic::Location;

use diesel::{ExpressionMethods, RunQueryDsl};

use super::statement::SelectStatement;
use super::QuerySet;
use crate::connection::AnyConnection;
use crate::error::{Error, Result};
use crate::instrument::{note_rows, with_call_site};
use crate::model::Model;

/// How many rows `get()` reads before giving up counting duplicates (as Django).
pub(crate) const MAX_GET_RESULTS: i64 = 21;

/// The one row of `rows`, or `NotFound` / `MultipleObjectsReturned` for model `M`.
pub(crate) fn exactly_one<M: Model, R>(mut rows: Vec<R>) -> Result<R> {
    match rows.len() {
        0 => Err(Error::NotFound { model: M::NAME }),
        1 => Ok(rows.remove(0)),
        count => Err(Error::MultipleObjectsReturned {
            model: M::NAME,
            count,
        }),
    }
}

impl<M: Model> QuerySet<M> {
    /// Loads every row (one query).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (messages, captured) = orm::capture(|| {
    ///     Message::objects().filter(weave_message::thread_id.eq(1)).all(&mut conn)
    /// });
    /// assert_eq!(messages?.len(), 2);
    /// assert_eq!(captured.len(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`] when the database rejects the statement.
    #[track_caller]
    pub fn all(&self, conn: &mut impl AsConnection) -> Result<Vec<M>> {
        let conn = conn.connection();
        self.check_lock(conn)?;
        let statement = self.select_statement();
        run_read(Location::caller(), || M::load_rows(&statement, conn))
    }

    /// The first row in the queryset's ordering (by primary key when it has none),
    /// or `None` (one query, `LIMIT 1`).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Person::objects();
    /// let (first, captured) = orm::capture(|| qs.first(&mut conn));
    /// assert_eq!(first?.map(|p| p.first_name).as_deref(), Some("Alan"));
    /// // What it sent is the queryset with `LIMIT 1`:
    /// assert_eq!(captured.sql(), [qs.clone().limit(1).sql(Backend::Sqlite)?]);
    /// assert!(captured.sql()[0].ends_with(
    ///     "WHERE (`weave_person`.`deleted` = false) ORDER BY `weave_person`.`updated` DESC, `weave_person`.`id` DESC LIMIT 1"
    /// ));
    /// // and on PostgreSQL:
    /// assert!(qs.limit(1).sql(Backend::Postgres)?.ends_with(
    ///     r#"WHERE ("weave_person"."deleted" = false) ORDER BY "weave_person"."updated" DESC, "weave_person"."id" DESC LIMIT $1"#
    /// ));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`] when the database rejects the statement.
    #[track_caller]
    pub fn first(&self, conn: &mut impl AsConnection) -> Result<Option<M>> {
        let conn = conn.connection();
        self.check_lock(conn)?;
        let statement = self.first_statement(false);
        run_read(Location::caller(), || M::load_rows(&statement, conn))
            .map(|rows| rows.into_iter().next())
    }

    /// The last row: the first of the reversed ordering (by primary key when it has
    /// none), or `None` (one query, `LIMIT 1`).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let qs = Person::objects();
    /// let (last, captured) = orm::capture(|| qs.last(&mut conn));
    /// assert_eq!(last?.map(|p| p.first_name).as_deref(), Some("Ada"));
    /// // The ordering reversed, LIMIT 1; on PostgreSQL the same with "quotes" and $1:
    /// let reversed = qs.clone().order_by((weave_person::updated.asc(), weave_person::id.asc())).limit(1);
    /// assert_eq!(captured.sql(), [reversed.sql(Backend::Sqlite)?]);
    /// assert!(reversed.sql(Backend::Postgres)?.ends_with(
    ///     r#"ORDER BY "weave_person"."updated" ASC, "weave_person"."id" ASC LIMIT $1"#
    /// ));
    /// assert!(qs.limit(5).last(&mut conn).is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Unsupported`] on a sliced queryset (its last row depends on the
    /// slice; reverse the ordering instead), as Django.
    #[track_caller]
    pub fn last(&self, conn: &mut impl AsConnection) -> Result<Option<M>> {
        let conn = conn.connection();
        if self.is_sliced() {
            return Err(Error::Unsupported {
                backend: conn.backend(),
                feature: "last() on a sliced queryset",
            });
        }
        self.check_lock(conn)?;
        let statement = self.first_statement(true);
        run_read(Location::caller(), || M::load_rows(&statement, conn))
            .map(|rows| rows.into_iter().next())
    }

    /// This queryset as `first` reads it: ordered (by primary key when it has no
    /// ordering), at most one row.
    pub(crate) fn for_first(&self) -> QuerySet<M> {
        let mut qs = self.clone();
        if qs.ordering().is_empty() {
            qs = qs.order_by(M::PrimaryKey::default().asc());
        }
        qs.limit = Some(qs.limit.map_or(1, |limit| limit.min(1)));
        qs
    }

    /// This queryset as `get` reads it: at most [`MAX_GET_RESULTS`] rows, enough to
    /// say there is more than one.
    pub(crate) fn for_get(&self) -> QuerySet<M> {
        let mut qs = self.clone();
        qs.limit = Some(
            qs.limit
                .map_or(MAX_GET_RESULTS, |limit| limit.min(MAX_GET_RESULTS)),
        );
        qs
    }

    fn first_statement(
        &self,
        reverse: bool,
    ) -> SelectStatement<diesel::helper_types::AsSelect<M, crate::Db>> {
        let mut statement = self.select_statement();
        if statement.source.order.is_empty() {
            statement.source.order =
                crate::IntoOrdering::<M::Table>::into_ordering(M::PrimaryKey::default().asc());
        }
        if reverse {
            statement.source.order = statement
                .source
                .order
                .iter()
                .map(|t| t.reversed())
                .collect();
        }
        if !matches!(statement.source.limit, Some(0)) {
            statement.limit_override = Some(1);
        }
        statement
    }

    /// The one row of the queryset (one query, reading at most 21 rows).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none, [`Error::MultipleObjectsReturned`] when
    /// there are several (its `count` stops at 21).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let ada = Person::objects().filter(weave_person::first_name.eq("Ada")).get(&mut conn)?;
    /// assert_eq!(ada.last_name, "Lovelace");
    /// let err = Person::objects().filter(weave_person::first_name.eq("Nobody")).get(&mut conn).unwrap_err();
    /// assert!(err.is_not_found());
    /// assert_eq!(err.to_string(), "Person matching query does not exist");
    ///
    /// // It reads at most 21 rows: the queryset with LIMIT 21 (`LIMIT $n` on PostgreSQL).
    /// let qs = Person::objects().filter(weave_person::first_name.eq("Ada"));
    /// let (_, captured) = orm::capture(|| qs.get(&mut conn));
    /// assert_eq!(captured.sql(), [qs.clone().limit(21).sql(Backend::Sqlite)?]);
    /// assert!(qs.limit(21).sql(Backend::Postgres)?.ends_with(
    ///     r#"WHERE ("weave_person"."deleted" = false) AND (("weave_person"."first_name" = $1)) ORDER BY "weave_person"."updated" DESC, "weave_person"."id" DESC LIMIT $2"#
    /// ));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get(&self, conn: &mut impl AsConnection) -> Result<M> {
        let conn = conn.connection();
        self.check_lock(conn)?;
        let mut statement = self.select_statement();
        statement.limit_override = Some(match self.limit {
            Some(limit) => limit.min(MAX_GET_RESULTS),
            None => MAX_GET_RESULTS,
        });
        let rows = run_read(Location::caller(), || M::load_rows(&statement, conn))?;
        exactly_one::<M, _>(rows)
    }

    /// The number of rows, counted by the database (one query, never with
    /// `ORDER BY`). On a sliced queryset it counts the rows of the slice, as Django.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (n, captured) = orm::capture(|| Message::objects().count(&mut conn));
    /// assert_eq!(n?, 3);
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["SELECT COUNT(*) FROM `weave_message` WHERE (`weave_message`.`deleted` = false)"]
    /// );
    /// // PostgreSQL: SELECT COUNT(*) FROM "weave_message" WHERE ("weave_message"."deleted" = false)
    /// assert_eq!(Message::objects().limit(2).count(&mut conn)?, 2); // a slice: a subquery
    /// # Ok(()) }
    /// ```
    ///
    /// [`count_sql`](Self::count_sql) renders either backend's SQL.
    ///
    /// # Errors
    /// [`Error::Query`] when the database rejects the statement.
    #[track_caller]
    #[doc(alias = "len")]
    pub fn count(&self, conn: &mut impl AsConnection) -> Result<i64> {
        let conn = conn.connection();
        let statement = self.count_statement();
        run_read(Location::caller(), || {
            CountQuery(&*statement).get_result::<i64>(conn)
        })
    }

    /// True when the queryset has at least one row (one query: `SELECT 1 ... LIMIT 1`).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let about_engines = Message::objects().filter(weave_message::text.like("%engine%"));
    /// let (any, captured) = orm::capture(|| about_engines.exists(&mut conn));
    /// assert!(any?);
    /// assert_eq!(
    ///     captured.sql(),
    ///     ["SELECT 1 FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`text` LIKE ?)) LIMIT 1"]
    /// );
    /// assert_eq!(
    ///     about_engines.exists_sql(Backend::Postgres)?,
    ///     r#"SELECT 1 FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."text" LIKE $1)) LIMIT $2"#
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`] when the database rejects the statement.
    #[track_caller]
    pub fn exists(&self, conn: &mut impl AsConnection) -> Result<bool> {
        let conn = conn.connection();
        let statement = self.exists_statement();
        run_read(Location::caller(), || statement.load::<i32>(conn)).map(|rows| !rows.is_empty())
    }

    /// The rows whose primary key is in `ids`, by primary key, within this queryset's
    /// filters. Missing ids are absent from the map; duplicates are looked up once.
    ///
    /// One query per chunk: on PostgreSQL the ids are one array bind
    /// (`"id" = ANY($1)`), so any number is one query; on SQLite they are chunked under
    /// the bind limit (32,766 parameters). An empty `ids` sends nothing.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let (people, captured) = orm::capture(|| Person::objects().in_bulk(&mut conn, &[1, 2, 999, 2]));
    /// let people = people?;
    /// assert_eq!(people.len(), 2);
    /// assert_eq!(people[&1].first_name, "Ada");
    /// // Three distinct ids, one query; PostgreSQL binds them as one array: `"id" = ANY($1)`.
    /// assert_eq!(captured.len(), 1);
    /// assert!(captured.sql()[0].contains("`weave_person`.`id` IN (?, ?, ?)"));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn in_bulk(
        &self,
        conn: &mut impl AsConnection,
        ids: &[M::Key],
    ) -> Result<HashMap<M::Key, M>> {
        let conn = conn.connection();
        let site = Location::caller();
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let rows = fetch_chunks(conn, &ids, |conn, part| {
            let qs = self.clone().unordered().filter_fragment(M::pk_in(part));
            let statement = qs.select_statement();
            run_read(site, || M::load_rows(&statement, conn))
        })?;
        Ok(rows.into_iter().map(|m| (m.pk(), m)).collect())
    }
}

/// Runs `load` over `keys` in chunks the backend can bind: all at once where the
/// backend binds one array (PostgreSQL `= ANY($1)`), else under the bind limit with
/// room left for the queryset's own binds. No keys: no call.
pub(crate) fn fetch_chunks<K: Clone, T>(
    conn: &mut AnyConnection,
    keys: &[K],
    mut load: impl FnMut(&mut AnyConnection, Vec<K>) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let capability = conn.backend().capability();
    let chunk = if capability.array_binds {
        keys.len().max(1)
    } else {
        capability.max_bind_params - 1_000
    };
    let mut rows = Vec::new();
    for part in keys.chunks(chunk) {
        rows.extend(load(conn, part.to_vec())?);
    }
    Ok(rows)
}

/// Runs one statement with its call site recorded and its row count noted.
pub(crate) fn run<T: RowCount>(
    site: &'static Location<'static>,
    f: impl FnOnce() -> diesel::QueryResult<T>,
) -> Result<T> {
    // The rows are noted inside the call site's scope: a statement's span closes
    // with them, or at the scope's end.
    Ok(with_call_site(site, || {
        f().inspect(|value| note_rows(value.row_count()))
    })?)
}

/// [`run`] for a statement that only reads (a `SELECT`, a cursor's `DECLARE`,
/// `FETCH` or `CLOSE`): a routing scope does not check it for a write.
pub(crate) fn run_read<T: RowCount>(
    site: &'static Location<'static>,
    f: impl FnOnce() -> diesel::QueryResult<T>,
) -> Result<T> {
    crate::instrument::reading(|| run(site, f))
}

/// How many rows a statement's result stands for.
pub(crate) trait RowCount {
    fn row_count(&self) -> usize;
}

impl<T> RowCount for Vec<T> {
    fn row_count(&self) -> usize {
        self.len()
    }
}

impl RowCount for i64 {
    fn row_count(&self) -> usize {
        1
    }
}

impl RowCount for String {
    fn row_count(&self) -> usize {
        1
    }
}

impl RowCount for usize {
    fn row_count(&self) -> usize {
        *self
    }
}

/// Adapts a boxed count fragment to diesel's `Query` (`SELECT COUNT(*)` is a BigInt).
struct CountQuery<'a>(&'a dyn diesel::query_builder::QueryFragment<crate::Db>);

/// `statement` (a `SELECT COUNT(*)`) as a query whose one row is an `i64`.
pub(crate) fn count_query(
    statement: &dyn diesel::query_builder::QueryFragment<crate::Db>,
) -> impl diesel::query_dsl::LoadQuery<'_, AnyConnection, i64> + '_ {
    CountQuery(statement)
}

impl diesel::query_builder::QueryFragment<crate::Db> for CountQuery<'_> {
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, crate::Db>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl diesel::query_builder::QueryId for CountQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for CountQuery<'_> {
    type SqlType = diesel::sql_types::BigInt;
}

impl<Conn> RunQueryDsl<Conn> for CountQuery<'_> {}
