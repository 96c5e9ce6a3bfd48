//! Keyset (cursor) pagination: `WHERE (ordering) after (last row's values)`, no
//! OFFSET, no COUNT.

use crate::connection::AsConnection;
use std::panic::Location;
use std::sync::Arc;

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{
    BigInt, Bool, Date, Double, Numeric, Text, Time, Timestamp, Timestamptz, Uuid,
};
use diesel::QueryResult;
use serde::Serialize;

use super::cursor::{decode, encode, fingerprint, Cursor, CursorSecret, CursorValue, Direction};
use super::page_number::DEFAULT_MAX_PER_PAGE;
use super::CursorError;
use super::{check_pageable, deterministic_ordering};
use crate::connection::{Backend, Db};
use crate::error::{Error, Result};
use crate::fragment::{is_qualified, render, ColumnRef, Fragment};
use crate::model::Model;
use crate::ordering::OrderTerm;
use crate::queryset::run::run_read as run;
use crate::queryset::statement::{ModelSelect, PkIn, SlicedKeys, SlicedTable};
use crate::queryset::QuerySet;
use crate::sql_type::ValueKind;

/// Pages of a queryset that follow a cursor: the ordering values of the row where
/// the previous page ended. Build it with [`QuerySet::keyset`].
///
/// Each page is one query, however deep: `WHERE <filters> AND <after the cursor>
/// ORDER BY <ordering, pk> LIMIT per_page + 1`. Rows inserted or deleted elsewhere
/// never shift a page (no OFFSET). Tokens are opaque, signed and tied to the
/// ordering: a forged, altered, truncated or stale one is [`Error::InvalidCursor`].
pub struct KeysetPaginator<M> {
    queryset: QuerySet<M>,
    per_page: u64,
    max_per_page: u64,
    secret: CursorSecret,
}

impl<M> Clone for KeysetPaginator<M> {
    fn clone(&self) -> Self {
        Self {
            queryset: self.queryset.clone(),
            per_page: self.per_page,
            max_per_page: self.max_per_page,
            secret: self.secret.clone(),
        }
    }
}

impl<M: Model> std::fmt::Debug for KeysetPaginator<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("KeysetPaginator")
            .field("queryset", &self.queryset)
            .field("per_page", &self.per_page)
            .field("max_per_page", &self.max_per_page)
            .finish_non_exhaustive()
    }
}

/// One keyset page: serialises to `{"next", "previous", "results"}` (DRF's
/// `CursorPagination` shape), the links being cursor tokens.
#[derive(Debug, Clone, Serialize)]
pub struct KeysetPage<T> {
    /// The token of the page after this one, if there are more rows.
    pub next: Option<String>,
    /// The token of the page before this one, if this is not the first.
    pub previous: Option<String>,
    /// The rows, in the queryset's ordering.
    pub results: Vec<T>,
}

impl<M: Model> QuerySet<M> {
    /// Keyset pages of `per_page` rows over this queryset's ordering with the primary
    /// key appended (see [`KeysetPaginator`]), their tokens signed with `secret`.
    ///
    /// The ordering columns' values are read from the rows: the primary key always,
    /// other columns when `model!` lists them in `cursor_columns`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let secret = orm::paginate::CursorSecret::new("from the app's settings")?;
    /// let pages = Message::objects().keyset(2, &secret);
    /// let first = pages.page(&mut conn, None)?;
    /// assert_eq!(first.results.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 2]);
    /// let second = pages.page(&mut conn, first.next.as_deref())?;
    /// assert_eq!(second.results.iter().map(|m| m.id).collect::<Vec<_>>(), [1]);
    /// assert!(second.next.is_none());
    /// let back = pages.page(&mut conn, second.previous.as_deref())?;
    /// assert_eq!(back.results.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 2]);
    /// assert!(pages.page(&mut conn, Some("forged")).unwrap_err().is_invalid_cursor());
    /// # Ok(()) }
    /// ```
    #[doc(alias = "CursorPagination")]
    pub fn keyset(&self, per_page: u64, secret: &CursorSecret) -> KeysetPaginator<M> {
        KeysetPaginator {
            queryset: self.clone(),
            per_page,
            max_per_page: DEFAULT_MAX_PER_PAGE,
            secret: secret.clone(),
        }
    }
}

impl<M: Model> KeysetPaginator<M> {
    /// The largest page size accepted (default [`DEFAULT_MAX_PER_PAGE`]).
    #[must_use]
    pub fn max_per_page(mut self, max: u64) -> Self {
        self.max_per_page = max;
        self
    }

    /// The first page (`cursor` `None`), or the page a `next` / `previous` token
    /// points to. One query.
    ///
    /// # Errors
    /// - [`Error::InvalidCursor`] for a token that is not base64, truncated,
    ///   forged or altered, or made for another ordering;
    /// - [`Error::InvalidPageSize`] for a page size of 0 or above the maximum;
    /// - [`Error::CursorColumnUnavailable`] when an ordering column is not in the
    ///   model's `cursor_columns`;
    /// - [`Error::Unsupported`] for a sliced queryset, or one ordered by a related
    ///   model's column;
    /// - [`Error::Query`] when the database rejects the statement.
    #[track_caller]
    pub fn page(
        &self,
        conn: &mut impl AsConnection,
        cursor: Option<&str>,
    ) -> Result<KeysetPage<M>> {
        let conn = conn.connection();
        let site = Location::caller();
        let (statement, cursor) = self.statement(cursor, conn.backend())?;
        let mut results = run(site, || M::load_rows(&statement, conn))?;
        let more = results.len() as u64 > self.per_page;
        results.truncate(usize::try_from(self.per_page).unwrap_or(usize::MAX));
        let direction = cursor.as_ref().map(|c| c.direction);
        if direction == Some(Direction::Before) {
            results.reverse();
        }
        let terms = deterministic_ordering(&self.queryset);
        let token = |row: Option<&M>, direction| -> Result<Option<String>> {
            let Some(row) = row else { return Ok(None) };
            let values = row_values(row, &terms)?;
            Ok(Some(self.encode(&terms, direction, values)))
        };
        let (has_next, has_previous) = match direction {
            None => (more, false),
            Some(Direction::After) => (more, true),
            Some(Direction::Before) => (true, more),
        };
        Ok(KeysetPage {
            next: token(results.last().filter(|_| has_next), Direction::After)?,
            previous: token(results.first().filter(|_| has_previous), Direction::Before)?,
            results,
        })
    }

    /// The query of the page a token points to, on `backend`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let secret = orm::paginate::CursorSecret::new("from the app's settings")?;
    /// let pages = Message::objects().keyset(2, &secret);
    /// let next = pages.page(&mut conn, None)?.next;
    /// assert_eq!(
    ///     pages.page_sql(next.as_deref(), Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."updated", "weave_message"."id") < ($1, $2)) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC LIMIT $3"#
    /// );
    /// // One row-value comparison: PostgreSQL bounds an index scan on (updated, id)
    /// // with it, so a page 50,000 deep costs what the first one does. SQLite seeks
    /// // on a row value's first column only: there it is one index range per
    /// // prefix, each read up to the page's size, and the page of their union.
    /// assert_eq!(
    ///     pages.page_sql(next.as_deref(), Backend::Sqlite)?,
    ///     "SELECT `weave_message`.`id`, `weave_message`.`created`, `weave_message`.`updated`, `weave_message`.`deleted`, `weave_message`.`text`, `weave_message`.`sent_by_id`, `weave_message`.`thread_id` FROM (\
    ///      SELECT * FROM (SELECT * FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (`weave_message`.`updated` = ? AND `weave_message`.`id` < ?) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 3) AS `weave_message` \
    ///      UNION ALL \
    ///      SELECT * FROM (SELECT * FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND (`weave_message`.`updated` < ?) ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 3) AS `weave_message`\
    ///     ) AS `weave_message` ORDER BY `weave_message`.`updated` DESC, `weave_message`.`id` DESC LIMIT 3"
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`page`](Self::page) for a bad token or page size.
    pub fn page_sql(&self, cursor: Option<&str>, backend: Backend) -> Result<String> {
        let (statement, _) = self.statement(cursor, backend)?;
        Ok(render(&statement, backend)?)
    }

    fn encode(
        &self,
        terms: &[OrderTerm],
        direction: Direction,
        values: Vec<CursorValue>,
    ) -> String {
        let cursor = Cursor { direction, values };
        encode(&cursor, fingerprint(M::NAME, terms), self.secret.key())
    }

    /// The queryset being paged.
    pub(crate) fn queryset(&self) -> &QuerySet<M> {
        &self.queryset
    }

    pub(crate) fn statement(
        &self,
        cursor: Option<&str>,
        backend: Backend,
    ) -> Result<(ModelSelect<M>, Option<Cursor>)> {
        check_pageable(
            &self.queryset,
            self.per_page,
            self.max_per_page,
            backend,
            "keyset pagination of a sliced queryset",
        )?;
        let terms = deterministic_ordering(&self.queryset);
        if terms.iter().any(|term| term.via().is_some()) {
            // A token holds the last row's ordering values, and a related model's
            // column is not in the row.
            return Err(Error::Unsupported {
                backend,
                feature: "keyset pagination ordered by a related model's column",
            });
        }
        let cursor = cursor
            .map(|token| decode(token, fingerprint(M::NAME, &terms), self.secret.key()))
            .transpose()
            .map_err(|reason| Error::InvalidCursor { reason })?;
        let mut statement = self.queryset.select_statement();
        statement.limit_override = Some(
            i64::try_from(self.per_page)
                .unwrap_or(i64::MAX)
                .saturating_add(1),
        );
        let terms = match &cursor {
            Some(Cursor {
                direction: Direction::Before,
                ..
            }) => terms.iter().map(OrderTerm::reversed).collect(),
            _ => terms,
        };
        if let Some(cursor) = &cursor {
            if cursor.values.len() != terms.len() {
                return Err(Error::InvalidCursor {
                    reason: super::CursorError::Stale,
                });
            }
            check_values(&terms, &cursor.values)
                .map_err(|reason| Error::InvalidCursor { reason })?;
            let after = After {
                terms: terms.clone(),
                values: cursor.values.clone(),
            };
            if after.row_value() && !backend.capability().row_value_index_range {
                // One index range per leading prefix, each read up to the page's
                // size, then the page of their union (see `IndexRanges`).
                let limit = statement.limit_override.unwrap_or(i64::MAX);
                let mut parts = Vec::with_capacity(terms.len());
                for prefix in (0..terms.len()).rev() {
                    let mut part = statement.source.clone();
                    part.filters.push(Arc::new(after.prefix_range(prefix)));
                    part.order = terms.clone();
                    part.limit = Some(limit);
                    parts.push(part);
                }
                let table = statement.source.table.clone();
                if is_qualified(&*table) {
                    // No alias can take a schema-qualified name: the table itself,
                    // filtered to the keys of the ranges.
                    let pk = ColumnRef::of(M::PrimaryKey::default());
                    statement.source.filters = vec![Arc::new(PkIn {
                        keys: Arc::new(IndexRanges {
                            parts: parts
                                .into_iter()
                                .map(|source| {
                                    Arc::new(SlicedKeys {
                                        pk: pk.clone(),
                                        source,
                                    }) as Fragment
                                })
                                .collect(),
                            alias: None,
                        }),
                        pk,
                    })];
                } else {
                    statement.source.table = Arc::new(IndexRanges {
                        parts: parts
                            .into_iter()
                            .map(|source| {
                                Arc::new(SlicedTable {
                                    source,
                                    alias: table.clone(),
                                }) as Fragment
                            })
                            .collect(),
                        alias: Some(table),
                    });
                    statement.source.filters.clear();
                }
            } else {
                statement.source.filters.push(Arc::new(after));
            }
        }
        statement.source.order = terms;
        Ok((statement, cursor))
    }
}

/// The ordering values of `row`: the primary key from `pk()`, other columns from
/// `cursor_value`.
fn row_values<M: Model>(row: &M, terms: &[OrderTerm]) -> Result<Vec<CursorValue>> {
    let pk = <M::PrimaryKey as diesel::Column>::NAME;
    terms
        .iter()
        .map(|term| {
            let column = term.column_name();
            if column == pk && term.via().is_none() {
                return Ok(crate::Key::cursor_value(&row.pk()));
            }
            row.cursor_value(column)
                .ok_or(Error::CursorColumnUnavailable {
                    model: M::NAME,
                    column,
                })
        })
        .collect()
}

/// The rows after a cursor in an ordering, in the form each backend reads as an
/// index range. Every value is bound.
///
/// - Every term in one direction and no column nullable (the common case: a
///   timestamp and the primary key): one row-value comparison,
///   `(c1, c2) < ($1, $2)`, which PostgreSQL uses as a range of an index on
///   `(c1, c2)`. SQLite seeks on `c1` only: there the statement reads one range per
///   prefix instead ([`After::prefix_range`], [`IndexRanges`]).
/// - Otherwise the expanded form `(c1 > v1) OR (c1 = v1 AND c2 < v2) OR ...`, each
///   comparison in its term's direction with NULL placed where the backend sorts it,
///   led by a range on the first column when that column cannot be NULL
///   (`c1 >= v1 AND (...)`), so the scan still starts at the cursor.
struct After {
    terms: Vec<OrderTerm>,
    values: Vec<CursorValue>,
}

impl After {
    /// Whether the row-value form applies.
    fn row_value(&self) -> bool {
        let descending = self.terms.first().is_some_and(OrderTerm::is_descending);
        self.terms.len() > 1
            && self.terms.iter().zip(&self.values).all(|(term, value)| {
                term.is_descending() == descending
                    && !term.column_type.nullable
                    && *value != CursorValue::Null
            })
    }

    /// The rows after the cursor whose first `prefix` values equal the cursor's and
    /// whose next value lies beyond it: `c1 = v1 AND c2 < v2`. The row-value
    /// comparison is the union of these for every prefix, each one index range.
    fn prefix_range(&self, prefix: usize) -> PrefixRange {
        PrefixRange {
            terms: self.terms[..=prefix].to_vec(),
            values: self.values[..=prefix].to_vec(),
        }
    }
}

/// See [`After::prefix_range`].
struct PrefixRange {
    terms: Vec<OrderTerm>,
    values: Vec<CursorValue>,
}

impl QueryFragment<Db> for PrefixRange {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        let last = self.terms.len() - 1;
        for (term, value) in self.terms[..last].iter().zip(&self.values) {
            equal(term, value, &mut out)?;
            out.push_sql(" AND ");
        }
        let term = &self.terms[last];
        beyond(
            term,
            &self.values[last],
            term.is_descending(),
            None,
            &mut out,
        )
    }
}

/// SQLite's form of a row-value cursor: it seeks an index on the leading column of a
/// row value only, so a deep page inside many rows that share the first value would
/// scan them all. Each [`PrefixRange`] is one seek (`updated = ? AND id < ?`, then
/// `updated < ?`), read up to the page's size; the page is the first rows of their
/// union, under the model's table name:
/// `(SELECT * FROM (SELECT * FROM t WHERE .. ORDER BY .. LIMIT n) UNION ALL ..) AS t`.
///
/// For a schema-qualified table, which no alias can be named as, the parts select
/// keys only and the union is the subquery of `pk IN (...)` (no alias).
struct IndexRanges {
    parts: Vec<Fragment>,
    alias: Option<Fragment>,
}

impl QueryFragment<Db> for IndexRanges {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        if self.alias.is_some() {
            out.push_sql("(");
        }
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql("SELECT * FROM ");
            if self.alias.is_some() {
                part.walk_ast(out.reborrow())?;
            } else {
                out.push_sql("(");
                part.walk_ast(out.reborrow())?;
                out.push_sql(") AS ");
                out.push_identifier(&format!("orm_range{i}"))?;
            }
        }
        if let Some(alias) = &self.alias {
            out.push_sql(") AS ");
            alias.walk_ast(out.reborrow())?;
        }
        Ok(())
    }
}

impl QueryFragment<Db> for After {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        let backend = Backend::rendering(out.backend());
        if self.row_value() {
            out.push_sql("(");
            for (i, term) in self.terms.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                term.column.qualified.walk_ast(out.reborrow())?;
            }
            out.push_sql(if self.terms[0].is_descending() {
                ") < ("
            } else {
                ") > ("
            });
            for (i, (term, value)) in self.terms.iter().zip(&self.values).enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                bind(term, value, &mut out)?;
            }
            out.push_sql(")");
            return Ok(());
        }
        let nulls_first = backend.capability().nulls_first_ascending;
        let leading = self.terms.len() > 1
            && !self.terms[0].column_type.nullable
            && self.values[0] != CursorValue::Null;
        if leading {
            // The rows after the cursor all lie at or beyond its first value.
            self.terms[0].column.qualified.walk_ast(out.reborrow())?;
            out.push_sql(if self.terms[0].is_descending() {
                " <= "
            } else {
                " >= "
            });
            bind(&self.terms[0], &self.values[0], &mut out)?;
            out.push_sql(" AND ");
        }
        out.push_sql("(");
        for i in 0..self.terms.len() {
            out.push_sql(if i == 0 { "(" } else { " OR (" });
            for j in 0..i {
                equal(&self.terms[j], &self.values[j], &mut out)?;
                out.push_sql(" AND ");
            }
            // "After" in a descending term is "before" in ascending order.
            let term = &self.terms[i];
            let nulls = term.column_type.nullable.then_some(nulls_first);
            beyond(term, &self.values[i], term.is_descending(), nulls, &mut out)?;
            out.push_sql(")");
        }
        out.push_sql(")");
        Ok(())
    }
}

/// Checks each decoded value against its column's type: a value of another kind,
/// or NULL for a column that cannot hold it, would be a database error or a wrong
/// page, so the token is rejected before any SQL.
fn check_values(
    terms: &[OrderTerm],
    values: &[CursorValue],
) -> std::result::Result<(), CursorError> {
    for (term, value) in terms.iter().zip(values) {
        let column_type = term.column_type;
        let fits = match value {
            CursorValue::Null => column_type.nullable,
            CursorValue::Bool(_) => column_type.kind == ValueKind::Bool,
            CursorValue::Int(_) => column_type.kind == ValueKind::Int,
            CursorValue::Float(f) => column_type.kind == ValueKind::Float && f.is_finite(),
            CursorValue::Text(_) => column_type.kind == ValueKind::Text,
            CursorValue::Timestamp(_) => {
                matches!(
                    column_type.kind,
                    ValueKind::Timestamp | ValueKind::Timestamptz
                )
            }
            CursorValue::Date(_) => column_type.kind == ValueKind::Date,
            CursorValue::Time(_) => column_type.kind == ValueKind::Time,
            CursorValue::Uuid(_) => column_type.kind == ValueKind::Uuid,
            CursorValue::Decimal(_) => column_type.kind == ValueKind::Decimal,
        };
        if !fits {
            return Err(CursorError::Mistyped {
                column: term.column_name(),
            });
        }
    }
    Ok(())
}

/// `c = v`, or `c IS NULL`.
fn equal<'b>(
    term: &'b OrderTerm,
    value: &'b CursorValue,
    out: &mut AstPass<'_, 'b, Db>,
) -> QueryResult<()> {
    term.column.qualified.walk_ast(out.reborrow())?;
    if *value == CursorValue::Null {
        out.push_sql(" IS NULL");
        Ok(())
    } else {
        out.push_sql(" = ");
        bind(term, value, out)
    }
}

/// The rows sorting after `value` in ascending order (`below`: before it). `nulls`
/// is `None` for a column that is never NULL, else whether NULL sorts first in
/// ascending order.
fn beyond<'b>(
    term: &'b OrderTerm,
    value: &'b CursorValue,
    below: bool,
    nulls: Option<bool>,
    out: &mut AstPass<'_, 'b, Db>,
) -> QueryResult<()> {
    let column = &term.column.qualified;
    // NULL lies on the side we look toward when it sorts there.
    let nulls_ahead = nulls.is_some_and(|nulls_first| nulls_first == below);
    if *value == CursorValue::Null {
        if nulls_ahead {
            // Nothing lies beyond NULL toward its own end.
            out.push_sql("1 = 0");
        } else {
            column.walk_ast(out.reborrow())?;
            out.push_sql(" IS NOT NULL");
        }
        return Ok(());
    }
    if nulls_ahead {
        out.push_sql("(");
    }
    column.walk_ast(out.reborrow())?;
    out.push_sql(if below { " < " } else { " > " });
    bind(term, value, out)?;
    if nulls_ahead {
        out.push_sql(" OR ");
        column.walk_ast(out.reborrow())?;
        out.push_sql(" IS NULL)");
    }
    Ok(())
}

/// `value` as a parameter of `term`'s column type (checked by `check_values`).
fn bind<'b>(
    term: &OrderTerm,
    value: &'b CursorValue,
    out: &mut AstPass<'_, 'b, Db>,
) -> QueryResult<()> {
    match value {
        CursorValue::Null => {
            out.push_sql("NULL");
            Ok(())
        }
        CursorValue::Bool(v) => out.push_bind_param::<Bool, bool>(v),
        CursorValue::Int(v) => out.push_bind_param::<BigInt, i64>(v),
        CursorValue::Float(v) => out.push_bind_param::<Double, f64>(v),
        CursorValue::Text(v) => out.push_bind_param::<Text, String>(v),
        CursorValue::Timestamp(v) if term.column_type.kind == ValueKind::Timestamptz => {
            out.push_bind_param::<Timestamptz, chrono::NaiveDateTime>(v)
        }
        CursorValue::Timestamp(v) => out.push_bind_param::<Timestamp, chrono::NaiveDateTime>(v),
        CursorValue::Date(v) => out.push_bind_param::<Date, chrono::NaiveDate>(v),
        CursorValue::Time(v) => out.push_bind_param::<Time, chrono::NaiveTime>(v),
        CursorValue::Uuid(v) => out.push_bind_param::<Uuid, uuid::Uuid>(v),
        CursorValue::Decimal(v) => out.push_bind_param::<Numeric, bigdecimal::BigDecimal>(v),
    }
}
