//! Page-number pagination with a count, in Django REST framework's shape.

use crate::connection::AsConnection;
use std::panic::Location;

use diesel::RunQueryDsl;
use serde::Serialize;

use super::link::{with_query_param, PageLink};
use super::{check_pageable, deterministic_ordering};
use crate::connection::{AnyConnection, Backend};
use crate::count::{Count, CountResult};
use crate::error::{Error, Result};
use crate::fragment::render;
use crate::model::Model;
use crate::queryset::run::run_read as run;
use crate::queryset::statement::ModelSelect;
use crate::queryset::QuerySet;

/// The page texts that name the last page (DRF's `last_page_strings`).
const LAST_PAGE: [&str; 1] = ["last"];

/// The largest page size a paginator accepts unless told otherwise.
pub const DEFAULT_MAX_PER_PAGE: u64 = 1_000;

/// Numbered pages of a queryset, each with a count (Django's `Paginator`, DRF's
/// `PageNumberPagination`). Build it with [`QuerySet::paginate`].
pub struct Paginator<M> {
    queryset: QuerySet<M>,
    per_page: u64,
    max_per_page: u64,
    count: Count,
    base_url: Option<String>,
    page_param: String,
}

impl<M> Clone for Paginator<M> {
    fn clone(&self) -> Self {
        Self {
            queryset: self.queryset.clone(),
            per_page: self.per_page,
            max_per_page: self.max_per_page,
            count: self.count.clone(),
            base_url: self.base_url.clone(),
            page_param: self.page_param.clone(),
        }
    }
}

impl<M: Model> std::fmt::Debug for Paginator<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paginator")
            .field("queryset", &self.queryset)
            .field("per_page", &self.per_page)
            .field("max_per_page", &self.max_per_page)
            .field("count", &self.count)
            .field("base_url", &self.base_url)
            .field("page_param", &self.page_param)
            .finish()
    }
}

/// One page: serialises to DRF's `{"count", "next", "previous", "results"}` plus
/// `"count_is_exact"`.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The number of rows of the whole queryset (see `count_is_exact`).
    pub count: i64,
    /// False when `count` is an estimate or a lower bound.
    pub count_is_exact: bool,
    /// The next page, if there is one.
    pub next: Option<PageLink>,
    /// The previous page, if there is one.
    pub previous: Option<PageLink>,
    /// The rows of this page.
    pub results: Vec<T>,
    /// This page's number (1-based).
    #[serde(skip)]
    pub number: u64,
    /// The number of pages, when the count is exact.
    #[serde(skip)]
    pub num_pages: Option<u64>,
    /// The count as the strategy returned it, before this page corrected it.
    #[serde(skip)]
    pub counted: CountResult,
}

/// Parses a page number from query-string text as Django does: surrounding
/// whitespace and a leading `+` are allowed.
///
/// ```
/// use orm::paginate::parse_page_number;
/// assert_eq!(parse_page_number(" 3 ")?, 3);
/// assert!(parse_page_number("0").unwrap_err().is_empty_page());
/// assert!(parse_page_number("-2").unwrap_err().is_empty_page());
/// assert_eq!(parse_page_number("two").unwrap_err().to_string(), "page number `two` is not an integer");
/// # Ok::<(), orm::Error>(())
/// ```
///
/// # Errors
/// [`Error::PageNotAnInteger`] for anything but an integer, [`Error::EmptyPage`] for
/// an integer less than 1.
pub fn parse_page_number(raw: &str) -> Result<u64> {
    let text = raw.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::PageNotAnInteger {
            raw: raw.to_owned(),
        });
    }
    // An integer too large for i64 is still an integer: past any last page.
    let page = text.parse::<i64>().unwrap_or(if text.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    });
    if page < 1 {
        return Err(Error::EmptyPage {
            page,
            last_page: None,
        });
    }
    Ok(page.unsigned_abs())
}

impl<M: Model> QuerySet<M> {
    /// Numbered pages of `per_page` rows, counted with [`Count::Exact`] unless
    /// [`Paginator::count`] says otherwise.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let pages = Message::objects().paginate(2).links("/api/messages?format=json");
    /// let page = pages.page(&mut conn, "1")?;
    /// assert_eq!(
    ///     page.next,
    ///     Some(orm::paginate::PageLink::Url("/api/messages?format=json&page=2".into()))
    /// );
    /// assert_eq!(page.results.iter().map(|m| m.id).collect::<Vec<_>>(), [3, 2]);
    /// assert!(pages.page(&mut conn, "3").unwrap_err().is_empty_page());
    /// # Ok(()) }
    /// ```
    #[doc(alias = "Paginator")]
    pub fn paginate(&self, per_page: u64) -> Paginator<M> {
        Paginator {
            queryset: self.clone(),
            per_page,
            max_per_page: DEFAULT_MAX_PER_PAGE,
            count: Count::Exact,
            base_url: None,
            page_param: "page".to_owned(),
        }
    }
}

impl<M: Model> Paginator<M> {
    /// The largest page size accepted (default [`DEFAULT_MAX_PER_PAGE`]).
    #[must_use]
    pub fn max_per_page(mut self, max: u64) -> Self {
        self.max_per_page = max;
        self
    }

    /// How to count the queryset (default [`Count::Exact`]); estimates make
    /// `count_is_exact` false except on the last page, where the rows tell.
    #[must_use]
    pub fn count(mut self, strategy: Count) -> Self {
        self.count = strategy;
        self
    }

    /// Makes `next` / `previous` URLs: `base_url` with the page parameter set (and
    /// removed for page 1, as DRF), other parameters kept.
    #[must_use]
    pub fn links(mut self, base_url: &str) -> Self {
        self.base_url = Some(base_url.to_owned());
        self
    }

    /// The query parameter of the page number in links (default `page`).
    #[must_use]
    pub fn page_param(mut self, name: &str) -> Self {
        self.page_param = name.to_owned();
        self
    }

    /// The page whose number is the query-string text `raw` (see
    /// [`parse_page_number`]).
    ///
    /// # Errors
    /// As [`parse_page_number`] and [`page_number`](Self::page_number).
    ///
    /// `last` is the last page (DRF's `last_page_strings`): the count is taken first
    /// and serves the page too.
    #[track_caller]
    pub fn page(&self, conn: &mut impl AsConnection, raw: &str) -> Result<Page<M>> {
        let conn = conn.connection();
        let site = Location::caller();
        let (number, counted) = self.resolve(conn, raw, site)?;
        let statement = self.rows_statement(number, conn.backend())?;
        let counted = match counted {
            Some(counted) => counted,
            None => self.queryset.count_chain(conn, &self.count, site)?,
        };
        self.assemble_counted(conn, number, counted, |conn| {
            run(site, || M::load_rows(&statement, conn))
        })
    }

    /// The page number `raw` names, and the count when naming it took one (`last`).
    fn resolve(
        &self,
        conn: &mut AnyConnection,
        raw: &str,
        site: &'static Location<'static>,
    ) -> Result<(u64, Option<CountResult>)> {
        if !LAST_PAGE.contains(&raw.trim()) {
            return Ok((parse_page_number(raw)?, None));
        }
        check_pageable(
            &self.queryset,
            self.per_page,
            self.max_per_page,
            conn.backend(),
            "paginating a sliced queryset",
        )?;
        let counted = self.queryset.count_chain(conn, &self.count, site)?;
        let pages = u64::try_from(counted.value)
            .unwrap_or(0)
            .div_ceil(self.per_page)
            .max(1);
        Ok((pages, Some(counted)))
    }

    /// Page `number` (1-based): the count strategy's queries, then one rows query
    /// (`LIMIT per_page + 1`: the extra row tells whether a next page exists).
    ///
    /// # Errors
    /// - [`Error::InvalidPageSize`] for a page size of 0 or above the maximum;
    /// - [`Error::EmptyPage`] for page 0, or a page past the last (from an exact
    ///   count before any rows query; else when a page after the first is empty);
    /// - [`Error::Unsupported`] for a sliced queryset;
    /// - the count strategy's errors ([`QuerySet::count_with`]).
    #[track_caller]
    pub fn page_number(&self, conn: &mut impl AsConnection, number: u64) -> Result<Page<M>> {
        let conn = conn.connection();
        self.page_at(conn, number, Location::caller())
    }

    /// The rows query of page `number` on `backend`.
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// use orm::prelude::*;
    /// let pages = Message::objects().order_by(weave_message::thread_id.asc()).paginate(20);
    /// assert_eq!(
    ///     pages.page_sql(3, Backend::Postgres)?,
    ///     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) ORDER BY "weave_message"."thread_id" ASC, "weave_message"."id" ASC LIMIT $1 OFFSET $2"#
    /// );
    /// assert!(pages.page_sql(3, Backend::Sqlite)?.ends_with("ORDER BY `weave_message`.`thread_id` ASC, `weave_message`.`id` ASC LIMIT 21 OFFSET ?"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`page_number`](Self::page_number) for a bad page size or number.
    pub fn page_sql(&self, number: u64, backend: Backend) -> Result<String> {
        Ok(render(&self.rows_statement(number, backend)?, backend)?)
    }

    /// Page `number` of any rows built from the page's slice of the queryset: `load`
    /// gets the queryset ordered deterministically and sliced to this page (one row
    /// more than a page, to tell whether a next page exists) and may chain
    /// `select_related` or `prefetch` before loading. The count and the links are the
    /// paginator's, as for [`page`](Self::page).
    ///
    /// ```
    /// # include!("../../doctest_setup.rs");
    /// # fn main() -> orm::Result<()> {
    /// # let (_db, mut conn) = setup();
    /// use orm::prelude::*;
    /// let pages = Message::objects().paginate(2);
    /// let (page, captured) = orm::capture(|| {
    ///     pages.page_with(&mut conn, "1", |qs, conn| qs.select_related(Message::sent_by).all(conn))
    /// });
    /// let page = page?;
    /// assert_eq!(captured.len(), 2); // the count, then the rows JOIN their senders
    /// assert_eq!(page.results.len(), 2);
    /// assert_eq!(page.results[0].1.first_name, "Alan");
    /// assert_eq!(page.next, Some(orm::paginate::PageLink::Number(2)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`page`](Self::page), and whatever `load` returns.
    #[track_caller]
    pub fn page_with<T>(
        &self,
        conn: &mut impl AsConnection,
        raw: &str,
        load: impl FnOnce(QuerySet<M>, &mut AnyConnection) -> Result<Vec<T>>,
    ) -> Result<Page<T>> {
        let conn = conn.connection();
        let site = Location::caller();
        let (number, counted) = self.resolve(conn, raw, site)?;
        // Validates the page size, the slice and the number before anything runs.
        self.rows_statement(number, conn.backend())?;
        let per_page = i64::try_from(self.per_page).unwrap_or(i64::MAX);
        let offset = (i64::try_from(number).unwrap_or(i64::MAX) - 1).saturating_mul(per_page);
        let slice = self.queryset.clone().page_slice(
            deterministic_ordering(&self.queryset),
            per_page.saturating_add(1),
            offset,
        );
        let counted = match counted {
            Some(counted) => counted,
            None => self.queryset.count_chain(conn, &self.count, site)?,
        };
        self.assemble_counted(conn, number, counted, |conn| load(slice, conn))
    }

    fn rows_statement(&self, number: u64, backend: Backend) -> Result<ModelSelect<M>> {
        check_pageable(
            &self.queryset,
            self.per_page,
            self.max_per_page,
            backend,
            "paginating a sliced queryset",
        )?;
        let page = i64::try_from(number).unwrap_or(i64::MAX);
        if page < 1 {
            return Err(Error::EmptyPage {
                page,
                last_page: None,
            });
        }
        let per_page = i64::try_from(self.per_page).unwrap_or(i64::MAX);
        let offset = (page - 1).checked_mul(per_page).ok_or(Error::EmptyPage {
            page,
            last_page: None,
        })?;
        let mut statement = self.queryset.select_statement();
        statement.source.order = deterministic_ordering(&self.queryset);
        statement.limit_override = Some(per_page.saturating_add(1));
        statement.source.offset = (offset > 0).then_some(offset);
        Ok(statement)
    }

    fn page_at(
        &self,
        conn: &mut AnyConnection,
        number: u64,
        site: &'static Location<'static>,
    ) -> Result<Page<M>> {
        let statement = self.rows_statement(number, conn.backend())?;
        self.assemble(conn, number, site, |conn| {
            run(site, || M::load_rows(&statement, conn))
        })
    }

    /// Counts, loads the page's rows with `load` (at most `per_page + 1` of them) and
    /// builds the page.
    fn assemble<T>(
        &self,
        conn: &mut AnyConnection,
        number: u64,
        site: &'static Location<'static>,
        load: impl FnOnce(&mut AnyConnection) -> Result<Vec<T>>,
    ) -> Result<Page<T>> {
        let counted = self.queryset.count_chain(conn, &self.count, site)?;
        self.assemble_counted(conn, number, counted, load)
    }

    /// As [`assemble`](Self::assemble) with the count already taken.
    fn assemble_counted<T>(
        &self,
        conn: &mut AnyConnection,
        number: u64,
        counted: CountResult,
        load: impl FnOnce(&mut AnyConnection) -> Result<Vec<T>>,
    ) -> Result<Page<T>> {
        let page = i64::try_from(number).unwrap_or(i64::MAX);
        let per_page = self.per_page;
        let pages_for = |rows: i64| u64::try_from(rows).unwrap_or(0).div_ceil(per_page).max(1);
        let known_pages = (counted.exact && !counted.more).then(|| pages_for(counted.value));
        if let Some(last) = known_pages {
            if number > last {
                return Err(Error::EmptyPage {
                    page,
                    last_page: Some(last),
                });
            }
        }
        let mut results = load(conn)?;
        let has_next = results.len() as u64 > per_page;
        results.truncate(usize::try_from(per_page).unwrap_or(usize::MAX));
        if results.is_empty() && number > 1 {
            return Err(Error::EmptyPage {
                page,
                last_page: known_pages,
            });
        }
        // The rows correct an estimate: the last page knows the total, and any page
        // knows a lower bound.
        let before = number.saturating_sub(1).saturating_mul(per_page);
        let seen = i64::try_from(before.saturating_add(results.len() as u64)).unwrap_or(i64::MAX);
        let (count, count_is_exact) = if !has_next {
            (seen, true)
        } else if counted.exact && !counted.more {
            (counted.value, true)
        } else {
            (counted.value.max(seen.saturating_add(1)), false)
        };
        let num_pages = count_is_exact.then(|| pages_for(count));
        Ok(Page {
            count,
            count_is_exact,
            next: has_next.then(|| self.link(number.saturating_add(1))),
            previous: (number > 1).then(|| self.link(number - 1)),
            results,
            number,
            num_pages,
            counted,
        })
    }

    fn link(&self, number: u64) -> PageLink {
        match &self.base_url {
            None => PageLink::Number(number),
            Some(base) => {
                let value = number.to_string();
                let value = (number > 1).then_some(value.as_str());
                PageLink::Url(with_query_param(base, &self.page_param, value))
            }
        }
    }
}

/// Numbered pages of some columns of a queryset's rows (see
/// [`Values::paginate`](crate::Values::paginate)): the same count and pages as
/// [`Paginator`], rows of the projection.
pub struct ValuesPaginator<M, S, U> {
    pages: Paginator<M>,
    values: crate::Values<M, S, U>,
}

impl<M: Model, S, U> crate::Values<M, S, U>
where
    S: diesel::Expression + diesel::query_builder::QueryFragment<crate::Db>,
    S: Clone + Send + Sync + 'static,
    crate::queryset::statement::SelectStatement<S>:
        diesel::query_dsl::LoadQuery<'static, AnyConnection, U>,
    U: 'static,
{
    /// Pages of `per_page` rows, ordered as the queryset (by primary key last, so
    /// pages do not overlap), counted as [`QuerySet::paginate`] counts.
    pub fn paginate(&self, per_page: u64) -> ValuesPaginator<M, S, U> {
        ValuesPaginator {
            pages: self.queryset().paginate(per_page),
            values: self.clone(),
        }
    }
}

impl<M: Model, S, U> ValuesPaginator<M, S, U>
where
    S: diesel::Expression + diesel::query_builder::QueryFragment<crate::Db>,
    S: Clone + Send + Sync + 'static,
    crate::queryset::statement::SelectStatement<S>:
        diesel::query_dsl::LoadQuery<'static, AnyConnection, U>,
    U: 'static,
{
    /// As [`Paginator::max_per_page`].
    #[must_use]
    pub fn max_per_page(mut self, max: u64) -> Self {
        self.pages = self.pages.max_per_page(max);
        self
    }

    /// As [`Paginator::count`].
    #[must_use]
    pub fn count(mut self, strategy: Count) -> Self {
        self.pages = self.pages.count(strategy);
        self
    }

    /// As [`Paginator::links`].
    #[must_use]
    pub fn links(mut self, base_url: &str) -> Self {
        self.pages = self.pages.links(base_url);
        self
    }

    /// The page whose number is the query-string text `raw`: the count strategy's
    /// queries, then one query for the page's rows.
    ///
    /// # Errors
    /// As [`Paginator::page`], and [`Error::Unsupported`] for distinct values.
    #[track_caller]
    pub fn page(&self, conn: &mut impl AsConnection, raw: &str) -> Result<Page<U>> {
        let conn = conn.connection();
        let site = Location::caller();
        let number = super::parse_page_number(raw)?;
        if self.values.queryset().is_distinct() || self.values.is_grouped() {
            // Pages are ordered by the primary key last, which a distinct selection
            // of other columns cannot be ordered by.
            return Err(Error::Unsupported {
                backend: conn.backend(),
                feature: "paginating distinct or grouped values",
            });
        }
        let rows = self.pages.rows_statement(number, conn.backend())?;
        let mut statement = self.values.statement();
        statement.source = rows.source;
        statement.limit_override = rows.limit_override;
        self.pages.assemble(conn, number, site, |conn| {
            run(site, || statement.load(conn))
        })
    }
}
