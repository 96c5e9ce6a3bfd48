//! `QuerySet::count_with`: runs a [`Count`] strategy.

use crate::connection::AsConnection;
use crate::Capability;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use diesel::query_builder::QueryFragment;
use diesel::{Connection, RunQueryDsl};

use super::deadline::{
    is_deadline_cancellation, register_sqlite_deadline, timeout_millis, DeadlineFilter,
};
use super::statement::{
    Counted, Explain, RelTuples, SetLocalStatementTimeout, SqliteStat, SqliteStatTableExists,
    Subcount, TableSample,
};
use super::strategy::{Count, CountMethod, CountResult, Fallback, FallbackReason, SampleMethod};
use crate::connection::{AnyConnection, Backend, Db};
use crate::dialect::StatisticsSource;
use crate::error::{Error, Result};
use crate::fragment::render;
use crate::model::Model;
use crate::queryset::run::run_read as run;
use crate::queryset::statement::{One, SelectStatement, Source};
use crate::queryset::QuerySet;

/// What one strategy (not a chain) sends.
enum Plan {
    Exact(Box<dyn QueryFragment<Db>>),
    Capped {
        statement: Subcount,
        limit: u64,
    },
    Within {
        timeout: Duration,
        set_timeout: Option<SetLocalStatementTimeout>,
        count: Box<dyn QueryFragment<Db>>,
    },
    PgStatistics(RelTuples),
    SqliteStatistics(SqliteStatTableExists, SqliteStat),
    Planner(Explain),
    Sample {
        count: Box<dyn QueryFragment<Db>>,
        method: SampleMethod,
        percent: f64,
    },
}

impl<M: Model> QuerySet<M> {
    /// Counts the queryset's rows with `strategy` and says how the number was
    /// obtained: exact or estimated, by which method, after which fallbacks.
    ///
    /// See [`Count`] for the strategies and [`count_with_sql`](Self::count_with_sql)
    /// for the SQL each sends on both backends.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use std::time::Duration;
    /// use orm::count::{Count, CountMethod, FallbackReason};
    /// use orm::prelude::*;
    ///
    /// let exact = Message::objects().count_with(&mut conn, &Count::ExactWithin(Duration::from_secs(1)))?;
    /// assert_eq!((exact.value, exact.exact, exact.method), (3, true, CountMethod::Exact));
    ///
    /// let capped = Message::objects().count_with(&mut conn, &Count::AtMost(2))?;
    /// assert_eq!(capped.to_string(), "more than 2");
    ///
    /// // SQLite has no planner row estimates: the chain falls back and says so.
    /// let n = Message::objects().count_with(&mut conn, &Count::Planner.or(Count::Exact))?;
    /// assert_eq!(n.value, 3);
    /// assert_eq!(n.fallbacks[0].reason, FallbackReason::Unsupported);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::CountTimedOut`] when [`Count::ExactWithin`]'s deadline passes (the
    ///   connection stays usable);
    /// - [`Error::Unsupported`] for [`Count::Planner`] and [`Count::Sample`] on SQLite;
    /// - [`Error::NoStatistics`] for [`Count::TableStatistics`] before `ANALYZE`;
    /// - [`Error::CountNotApplicable`] for table statistics of a filtered queryset,
    ///   or a sample of a sliced or distinct one;
    /// - [`Error::InvalidSamplePercent`] for a percentage outside `(0, 100]`;
    /// - [`Error::Query`] when the database rejects a statement.
    ///
    /// A [`Count::or`] chain falls back on the first four and surfaces the others.
    ///
    /// # Backend support
    /// | strategy | SQLite | PostgreSQL |
    /// |---|---|---|
    /// | `Exact`, `AtMost` | yes | yes |
    /// | `ExactWithin` | deadline function checked per row | `SET LOCAL statement_timeout` in a transaction |
    /// | `TableStatistics` | `sqlite_stat1` (after `ANALYZE`) | `pg_class.reltuples` |
    /// | `Planner` | `Unsupported` | `EXPLAIN (FORMAT JSON)` |
    /// | `Sample` | `Unsupported` | `TABLESAMPLE ... REPEATABLE` |
    ///
    /// ### Notes
    /// Inside an open transaction on PostgreSQL, `ExactWithin` runs in a savepoint:
    /// it reads the `statement_timeout` in force
    /// (`SELECT current_setting('statement_timeout')`) and puts it back after the
    /// count (`SELECT set_config('statement_timeout', $1, true)`), so the pool's or
    /// the caller's timeout holds for the rest of the transaction. Both are
    /// [`QueryKind::Session`](crate::instrument::QueryKind) statements.
    #[track_caller]
    #[doc(alias = "estimate")]
    pub fn count_with(
        &self,
        conn: &mut impl AsConnection,
        strategy: &Count,
    ) -> Result<CountResult> {
        let conn = conn.connection();
        let site = Location::caller();
        self.count_chain(conn, strategy, site)
    }

    /// The SQL statements `count_with` sends on `backend` for `strategy` (for a
    /// [`Count::or`] chain, for its first strategy), without a connection.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use std::time::Duration;
    /// use orm::count::Count;
    /// use orm::prelude::*;
    /// let qs = Message::objects().filter(weave_message::thread_id.eq(1));
    ///
    /// assert_eq!(qs.count_with_sql(&Count::AtMost(10_000), Backend::Postgres)?, [
    ///     r#"SELECT COUNT(*) FROM (SELECT 1 FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1)) LIMIT $2) AS "counted""#,
    /// ]);
    /// assert_eq!(qs.count_with_sql(&Count::AtMost(10_000), Backend::Sqlite)?, [
    ///     "SELECT COUNT(*) FROM (SELECT 1 FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?)) LIMIT 10001) AS `counted`",
    /// ]);
    ///
    /// assert_eq!(qs.count_with_sql(&Count::Planner, Backend::Postgres)?, [
    ///     r#"EXPLAIN (FORMAT JSON) SELECT 1 FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1))"#,
    /// ]);
    /// // SQLite has neither planner row estimates nor TABLESAMPLE.
    /// assert!(qs.count_with_sql(&Count::Planner, Backend::Sqlite).unwrap_err().is_unsupported());
    /// assert!(qs.count_with_sql(&Count::bernoulli(1.0), Backend::Sqlite).unwrap_err().is_unsupported());
    ///
    /// assert_eq!(qs.count_with_sql(&Count::bernoulli(1.0), Backend::Postgres)?, [
    ///     r#"SELECT COUNT(*) FROM "weave_message" TABLESAMPLE BERNOULLI ($1) REPEATABLE ($2) WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $3))"#,
    /// ]);
    ///
    /// let within = Count::ExactWithin(Duration::from_millis(50));
    /// assert_eq!(qs.count_with_sql(&within, Backend::Postgres)?, [
    ///     "SET LOCAL statement_timeout = 50",
    ///     r#"SELECT COUNT(*) FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."thread_id" = $1))"#,
    /// ]);
    /// assert_eq!(qs.count_with_sql(&within, Backend::Sqlite)?, [
    ///     "SELECT COUNT(*) FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`thread_id` = ?)) AND (orm_count_deadline())",
    /// ]);
    ///
    /// let all = Message::objects().with_deleted();
    /// assert_eq!(all.count_with_sql(&Count::TableStatistics, Backend::Postgres)?, [
    ///     "SELECT CAST(reltuples AS float8) FROM pg_class WHERE oid = to_regclass($1)",
    /// ]);
    /// assert_eq!(all.count_with_sql(&Count::TableStatistics, Backend::Sqlite)?, [
    ///     "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
    ///     "SELECT stat FROM sqlite_stat1 WHERE tbl = ?",
    /// ]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`count_with`](Self::count_with) for a strategy the backend or queryset
    /// cannot use.
    pub fn count_with_sql(&self, strategy: &Count, backend: Backend) -> Result<Vec<String>> {
        let mut strategy = strategy;
        while let Count::Or(first, _) = strategy {
            strategy = first;
        }
        let sql =
            |fragment: &dyn QueryFragment<Db>| -> Result<String> { Ok(render(fragment, backend)?) };
        Ok(match self.plan(strategy, backend.capability())? {
            Plan::Exact(count) => vec![sql(&*count)?],
            Plan::Capped { statement, .. } => vec![sql(&statement)?],
            Plan::Within {
                set_timeout, count, ..
            } => {
                let mut statements = Vec::new();
                if let Some(set) = set_timeout {
                    statements.push(sql(&set)?);
                }
                statements.push(sql(&*count)?);
                statements
            }
            Plan::PgStatistics(reltuples) => vec![sql(&reltuples)?],
            Plan::SqliteStatistics(exists, stat) => vec![sql(&exists)?, sql(&stat)?],
            Plan::Planner(explain) => vec![sql(&explain)?],
            Plan::Sample { count, .. } => vec![sql(&*count)?],
        })
    }

    /// `count_with` with the call site its statements are recorded under.
    pub(crate) fn count_chain(
        &self,
        conn: &mut AnyConnection,
        strategy: &Count,
        site: &'static Location<'static>,
    ) -> Result<CountResult> {
        let Count::Or(first, fallback) = strategy else {
            return self.count_one(conn, strategy, site);
        };
        match self.count_chain(conn, first, site) {
            Ok(result) => Ok(result),
            Err(error) => {
                let Some(reason) = FallbackReason::of(&error) else {
                    return Err(error);
                };
                let mut result = self.count_chain(conn, fallback, site)?;
                result.fallbacks.insert(
                    0,
                    Fallback {
                        strategy: first.to_string(),
                        reason,
                    },
                );
                Ok(result)
            }
        }
    }

    fn count_one(
        &self,
        conn: &mut AnyConnection,
        strategy: &Count,
        site: &'static Location<'static>,
    ) -> Result<CountResult> {
        let backend = conn.backend();
        match self.plan(strategy, Capability::of_connection(conn))? {
            Plan::Exact(count) => {
                let n = run(site, || Counted(&*count).get_result::<i64>(conn))?;
                Ok(CountResult::new(n, true, CountMethod::Exact))
            }
            Plan::Capped { statement, limit } => {
                let n = run(site, || statement.get_result::<i64>(conn))?;
                let cap = i64::try_from(limit).unwrap_or(i64::MAX);
                let mut result =
                    CountResult::new(n.min(cap), n <= cap, CountMethod::Capped { limit });
                result.more = n > cap;
                Ok(result)
            }
            Plan::Within {
                timeout,
                set_timeout,
                count,
            } => {
                let started = std::time::Instant::now();
                let counted = match set_timeout {
                    None => {
                        if let AnyConnection::Sqlite(inner) = &*conn {
                            register_sqlite_deadline(inner, timeout)?;
                        }
                        run(site, || Counted(&*count).get_result::<i64>(conn))
                    }
                    set => count_in_transaction(conn, set, &*count, site),
                };
                match counted {
                    Ok(n) => Ok(CountResult::new(n, true, CountMethod::Exact)),
                    // `SET LOCAL` replaced any session timeout for the count: a
                    // timeout the pool set is ours too (PostgreSQL keeps a timer
                    // already armed for the statement).
                    Err(Error::Query(e) | Error::StatementTimeout { source: e, .. })
                        if is_deadline_cancellation(&e, backend, started.elapsed(), timeout) =>
                    {
                        Err(Error::CountTimedOut { backend, timeout })
                    }
                    Err(e) => Err(e),
                }
            }
            Plan::PgStatistics(reltuples) => {
                let rows = run(site, || reltuples.clone().load::<f64>(conn))?;
                match rows.first() {
                    // -1: never vacuumed or analysed (PostgreSQL 14+).
                    Some(&n) if n >= 0.0 => Ok(CountResult::new(
                        n.round() as i64,
                        false,
                        CountMethod::TableStatistics,
                    )),
                    _ => Err(Error::NoStatistics {
                        backend,
                        table: reltuples.regclass.clone(),
                    }),
                }
            }
            Plan::SqliteStatistics(exists, stat) => {
                let no_statistics = || Error::NoStatistics {
                    backend,
                    table: stat.table.clone(),
                };
                if run(site, || exists.clone().get_result::<i64>(conn))? == 0 {
                    return Err(no_statistics());
                }
                let rows = run(site, || stat.clone().load::<String>(conn))?;
                sqlite_table_rows(&rows)
                    .map(|n| CountResult::new(n, false, CountMethod::TableStatistics))
                    .ok_or_else(no_statistics)
            }
            Plan::Planner(explain) => {
                let plan = run(site, || explain.load::<String>(conn))?;
                let rows =
                    plan.first()
                        .and_then(|json| planned_rows(json))
                        .ok_or(Error::Unsupported {
                            backend,
                            feature: "a plan without \"Plan Rows\"",
                        })?;
                Ok(CountResult::new(rows, false, CountMethod::Planner))
            }
            Plan::Sample {
                count,
                method,
                percent,
            } => {
                let n = run(site, || Counted(&*count).get_result::<i64>(conn))?;
                let scaled = if percent >= 100.0 {
                    n
                } else {
                    (n as f64 * 100.0 / percent).round() as i64
                };
                Ok(CountResult::new(
                    scaled,
                    percent >= 100.0,
                    CountMethod::Sample {
                        sample: method,
                        percent,
                    },
                ))
            }
        }
    }

    fn plan(&self, strategy: &Count, capability: &'static Capability) -> Result<Plan> {
        let backend = capability.backend;
        Ok(match strategy {
            Count::Exact => Plan::Exact(self.count_statement()),
            Count::Or(first, _) => self.plan(first, capability)?,
            Count::AtMost(limit) => {
                let mut inner = self.rows_statement(self.source());
                let cap = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
                inner.limit_override = Some(match inner.source.limit {
                    Some(limit) => limit.min(cap),
                    None => cap,
                });
                Plan::Capped {
                    statement: Subcount {
                        inner: Box::new(inner),
                    },
                    limit: *limit,
                }
            }
            Count::ExactWithin(timeout) if capability.statement_timeout => Plan::Within {
                timeout: *timeout,
                set_timeout: Some(SetLocalStatementTimeout {
                    milliseconds: timeout_millis(*timeout),
                }),
                count: self.count_statement(),
            },
            Count::ExactWithin(timeout) => Plan::Within {
                timeout: *timeout,
                set_timeout: None,
                count: self
                    .clone()
                    .filter_fragment(Arc::new(DeadlineFilter))
                    .count_statement(),
            },
            Count::TableStatistics => {
                capability.require(capability.table_statistics, "table statistics")?;
                if !self.effective_filters().is_empty() || self.is_sliced() {
                    return Err(Error::CountNotApplicable {
                        method: "table statistics",
                        reason: "the statistics count every row of the table; the queryset has filters (soft delete included) or a slice",
                    });
                }
                let table = M::Table::default();
                match backend.dialect().table_statistics {
                    StatisticsSource::PgClass => Plan::PgStatistics(RelTuples {
                        regclass: render(&table, backend)?,
                    }),
                    StatisticsSource::SqliteStat1 => {
                        let name = crate::fragment::TableName::of(&table)?;
                        Plan::SqliteStatistics(
                            SqliteStatTableExists {
                                schema: name.schema.clone(),
                            },
                            SqliteStat {
                                schema: name.schema,
                                table: name.name,
                            },
                        )
                    }
                }
            }
            Count::Planner => {
                capability.require(capability.planner_row_estimates, "planner row estimates")?;
                capability.require(capability.explain_json, "EXPLAIN (FORMAT JSON)")?;
                Plan::Planner(Explain {
                    inner: Box::new(self.rows_statement(self.source())),
                })
            }
            Count::Sample {
                method,
                percent,
                seed,
            } => {
                capability.require(capability.tablesample, "TABLESAMPLE")?;
                if !(percent.is_finite() && *percent > 0.0 && *percent <= 100.0) {
                    return Err(Error::InvalidSamplePercent { percent: *percent });
                }
                if self.is_sliced() || self.source().distinct {
                    return Err(Error::CountNotApplicable {
                        method: "a sample",
                        reason: "a sliced or distinct queryset cannot be scaled from a sample",
                    });
                }
                let mut source = self.source();
                source.table = Arc::new(TableSample {
                    table: source.table,
                    method: *method,
                    percent: *percent,
                    seed: *seed,
                });
                let mut inner = SelectStatement::new(One, source);
                inner.with_order = false;
                Plan::Sample {
                    count: Box::new(crate::queryset::statement::CountStatement { inner }),
                    method: *method,
                    percent: *percent,
                }
            }
        })
    }

    /// `SELECT 1` (or the distinct rows) of `source`, without `ORDER BY`.
    fn rows_statement(&self, source: Source) -> SelectStatement<Box<dyn QueryFragment<Db>>> {
        let selection: Box<dyn QueryFragment<Db>> = if source.distinct {
            Box::new(M::selection())
        } else {
            Box::new(One)
        };
        let mut statement = SelectStatement::new(selection, source);
        statement.with_order = false;
        statement
    }
}

/// PostgreSQL `ExactWithin`: `SET LOCAL statement_timeout` and the count in one
/// transaction (a savepoint inside an open one, then the timeout in force before is
/// put back).
fn count_in_transaction(
    conn: &mut AnyConnection,
    set_timeout: Option<SetLocalStatementTimeout>,
    count: &dyn QueryFragment<Db>,
    site: &'static Location<'static>,
) -> Result<i64> {
    use diesel::connection::TransactionManager;
    type Manager = <AnyConnection as Connection>::TransactionManager;
    let nested = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    use diesel::dsl::sql;
    use diesel::sql_types::Text;
    conn.transaction::<i64, Error, _>(|conn| {
        // Inside a caller's transaction the deadline must not outlive the count (a
        // released savepoint keeps `SET LOCAL`): the setting in force before it (the
        // pool's, the caller's, or the server's) is read, then put back.
        let previous = if nested {
            let current = diesel::select(sql::<Text>("current_setting('statement_timeout')"));
            Some(run(site, || {
                crate::instrument::session(|| current.get_result::<String>(conn))
            })?)
        } else {
            None
        };
        if let Some(set) = &set_timeout {
            run(site, || crate::instrument::session(|| (*set).execute(conn)))?;
        }
        let n = run(site, || Counted(count).get_result::<i64>(conn))?;
        if let Some(previous) = previous {
            let restore = diesel::select(
                sql::<Text>("set_config('statement_timeout', ")
                    .bind::<Text, _>(previous)
                    .sql(", true)"),
            );
            run(site, || {
                crate::instrument::session(|| restore.get_result::<String>(conn))
            })?;
        }
        Ok(n)
    })
}

/// The table's row count in `sqlite_stat1`'s `stat` texts: the first integer of each
/// is the row count of the table (no index) or of an index; a partial index holds
/// fewer rows than the table, so the largest is the table's.
fn sqlite_table_rows(stats: &[String]) -> Option<i64> {
    stats
        .iter()
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<i64>().ok())
        .max()
}

/// The top plan node's "Plan Rows" of PostgreSQL's `EXPLAIN (FORMAT JSON)` output.
fn planned_rows(json: &str) -> Option<i64> {
    let plan: serde_json::Value = serde_json::from_str(json).ok()?;
    let rows = plan.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64()?;
    Some(rows.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_statistics_take_the_largest_leading_integer() {
        let stats = ["10 2 1".to_owned(), "7 7".to_owned(), "junk".to_owned()];
        assert_eq!(sqlite_table_rows(&stats), Some(10));
        assert_eq!(sqlite_table_rows(&[]), None);
    }

    #[test]
    fn plan_rows_come_from_the_top_node() {
        let json = r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 1234, "Plans": [{"Plan Rows": 9}]}}]"#;
        assert_eq!(planned_rows(json), Some(1234));
        assert_eq!(planned_rows("[]"), None);
        assert_eq!(planned_rows("not json"), None);
    }
}
