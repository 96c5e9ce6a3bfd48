//! Pagination: page numbers with a count (Django REST framework's shape), and keyset
//! cursors without one.
//!
//! | you want | use | each page costs |
//! |---|---|---|
//! | numbered pages, a total | [`QuerySet::paginate`](crate::QuerySet::paginate) → [`Paginator`] | the rows query + the count strategy's queries |
//! | infinite scroll, deep pages, live data | [`QuerySet::keyset`](crate::QuerySet::keyset) → [`KeysetPaginator`] | the rows query only |
//!
//! Both append the primary key to the ordering when it is missing, so every row has
//! one place and no row repeats or goes missing between pages.

mod cursor;
mod keyset;
mod link;
mod page_number;

pub use cursor::{check_cursor_token, CursorError, CursorSecret, CursorValue};
pub use keyset::{KeysetPage, KeysetPaginator};
pub use link::PageLink;
pub use page_number::{parse_page_number, Page, Paginator, ValuesPaginator, DEFAULT_MAX_PER_PAGE};

use diesel::ExpressionMethods;

use crate::model::Model;
use crate::ordering::{IntoOrdering, OrderTerm};
use crate::queryset::QuerySet;

/// The queryset's ordering with the primary key appended (ascending) when absent.
pub(crate) fn deterministic_ordering<M: Model>(queryset: &QuerySet<M>) -> Vec<OrderTerm> {
    let mut terms = queryset.ordering();
    let pk = <M::PrimaryKey as diesel::Column>::NAME;
    if !terms.iter().any(|t| t.own_column() == Some(pk)) {
        terms.extend(IntoOrdering::<M::Table>::into_ordering(
            M::PrimaryKey::default().asc(),
        ));
    }
    terms
}

/// The checks both paginators make before building a page's statement: a page size
/// in `1..=max`, and a queryset that is not sliced.
pub(crate) fn check_pageable<M: Model>(
    queryset: &QuerySet<M>,
    per_page: u64,
    max_per_page: u64,
    backend: crate::Backend,
    feature: &'static str,
) -> crate::Result<()> {
    if per_page == 0 || per_page > max_per_page {
        return Err(crate::Error::InvalidPageSize {
            size: per_page,
            max: max_per_page,
        });
    }
    if queryset.is_sliced() {
        return Err(crate::Error::Unsupported { backend, feature });
    }
    Ok(())
}
