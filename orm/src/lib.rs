//! Lazy, Django-style querysets over diesel, on SQLite and PostgreSQL, with every
//! statement captured.
//!
//! # A guide
//!
//! ## Open a database
//!
//! [`Database::open`] picks the backend from the URL (`threads.db`, `:memory:`,
//! `postgres://...`) and returns an r2d2 pool. Connections are [`AnyConnection`]s:
//! one type for both backends.
//!
//! ## Declare models
//!
//! A model is a diesel row struct (`Queryable` + `Selectable`) plus a few lines of
//! [`model!`]: its table, primary key, default ordering, soft-delete column and
//! timestamps.
//!
//! ```
//! # include!("../doctest_setup.rs");
//! # fn main() -> orm::Result<()> {
//! # let (_db, mut conn) = setup();
//! use orm::prelude::*;
//!
//! // Nothing runs while a queryset is built...
//! let recent = Message::objects()                       // deleted = false, ORDER BY updated DESC, id DESC
//!     .filter(weave_message::text.like("What%"))        // compile-time checked column and type
//!     .exclude(weave_message::thread_id.eq(7));
//! assert_eq!(
//!     recent.sql(Backend::Postgres)?,
//!     r#"SELECT "weave_message"."id", "weave_message"."created", "weave_message"."updated", "weave_message"."deleted", "weave_message"."text", "weave_message"."sent_by_id", "weave_message"."thread_id" FROM "weave_message" WHERE ("weave_message"."deleted" = false) AND (("weave_message"."text" LIKE $1)) AND (NOT (("weave_message"."thread_id" = $2))) ORDER BY "weave_message"."updated" DESC, "weave_message"."id" DESC"#
//! );
//!
//! // ...and each terminal method sends exactly one statement.
//! let (n, captured) = orm::capture(|| recent.count(&mut conn));
//! assert_eq!(n?, 2);
//! assert_eq!(captured.len(), 1);
//! assert_eq!(
//!     captured.sql(),
//!     ["SELECT COUNT(*) FROM `weave_message` WHERE (`weave_message`.`deleted` = false) AND ((`weave_message`.`text` LIKE ?)) AND (NOT ((`weave_message`.`thread_id` = ?)))"]
//! );
//! # Ok(()) }
//! ```
//!
//! ## Querysets
//!
//! | you want | call | SQL |
//! |---|---|---|
//! | rows | [`all`](QuerySet::all) | `SELECT cols FROM t WHERE ... ORDER BY ...` |
//! | one row or an error | [`get`](QuerySet::get) | `... LIMIT 21` (`NotFound`, `MultipleObjectsReturned`) |
//! | the first / last row | [`first`](QuerySet::first), [`last`](QuerySet::last) | `... ORDER BY ... LIMIT 1` |
//! | how many | [`count`](QuerySet::count) | `SELECT COUNT(*) FROM t WHERE ...` (never `ORDER BY`) |
//! | whether any | [`exists`](QuerySet::exists) | `SELECT 1 FROM t WHERE ... LIMIT 1` |
//! | rows by id | [`in_bulk`](QuerySet::in_bulk) | `... WHERE id = ANY($1)` / chunked `IN (?, ...)` |
//! | soft delete | [`delete`](QuerySet::delete) | `UPDATE t SET deleted = true, updated = ? WHERE ...` |
//! | remove | [`hard_delete`](QuerySet::hard_delete) | `DELETE FROM t WHERE ...` |
//! | set columns | [`update`](QuerySet::update) | `UPDATE t SET ..., updated = ? WHERE ...` |
//!
//! [`QuerySet::sql`], [`QuerySet::count_sql`] and [`QuerySet::exists_sql`] render a
//! statement for either backend without a connection.
//!
//! ## Relations
//!
//! [`relation!`] declares a foreign key (`Message::sent_by`, or a nullable one with
//! `-> Option<Person>`) and its reverse (`Person::messages()`). Three ways to load:
//!
//! | need | call | queries |
//! |---|---|---|
//! | the parent rows of many rows | [`QuerySet::select_related`] (`INNER`/`LEFT JOIN`; several keys, chains) | 1 |
//! | children (or parents) of many rows | [`QuerySet::prefetch`] (reverse, forward, nested, `limit_per_parent`) | 1 per hop |
//! | one row's relation, on purpose | [`relations::ForeignKey::get`], [`relations::Reverse::all_for`] | 1 each |
//!
//! 100 threads with their messages and senders are 2 queries. Related rows of
//! `select_related` and forward hops are returned even when soft-deleted (as Django).
//! [`instrument::detect_n_plus_one`] reports the shapes that were not loaded this way
//! and, for the lazy accessors, names the fix.
//!
//! ## Soft delete
//!
//! A model declared with `soft_delete: deleted` hides deleted rows from `objects()`;
//! [`with_deleted`](QuerySet::with_deleted) and
//! [`only_deleted`](QuerySet::only_deleted) show them. The filter is rendered as the
//! literal `deleted = false`, so a partial index `WHERE deleted = false` serves it on
//! both backends.
//!
//! ## Capture, count, budget
//!
//! Every statement on a pooled connection is reported to the open [`capture`]
//! scopes of the current thread: SQL, binds, a normalised
//! [fingerprint](instrument::fingerprint), duration, rows and the call site of the
//! terminal method. `BEGIN`/`COMMIT` and the pool's `SELECT 1` health checks are
//! recorded but not counted. [`assert_num_queries!`] checks a count in tests.
//!
//! ## Query insight
//!
//! [`QuerySet::explain`] returns the database's plan as data ([`explain::Plan`]:
//! node kinds, tables, indexes, estimated and actual rows), for counts, writes
//! (never applied), joins and each prefetch hop too; `plan.uses_index("...")` makes
//! a test of "this query uses that index", and [`explain::Plan::advice`] suggests
//! the index a costly plan lacks. [`profile()`] records a scope (a request, a job)
//! with its shapes, N+1 groups and, by policy, plans: as text, JSON, or one HTML
//! page ([`profile::render_html`]). [`instrument::max_queries`] fails a scope over
//! its budget with the statements grouped by shape and call site;
//! [`DatabaseBuilder::slow_query_threshold`] logs a pool's slow statements at warn
//! level.
//!
//! ## Counting and pagination
//!
//! [`QuerySet::count_with`] takes a [`count::Count`] strategy and returns a
//! [`count::CountResult`]: the value, whether it is exact, the method, and the
//! strategies that gave way before it. Exact (`COUNT(*)`), exact within a deadline
//! (cancelled on time, the connection still usable), capped ("more than 10,000"),
//! table statistics, the planner's estimate for a filtered queryset, and a
//! `TABLESAMPLE` with the filters applied; chain them with [`count::Count::or`]. A
//! method a backend lacks is [`Error::Unsupported`], never a silent substitute.
//!
//! [`QuerySet::paginate`] gives numbered pages in Django REST framework's shape
//! (`{count, next, previous, results}` plus `count_is_exact`), counted with any
//! strategy; [`QuerySet::keyset`] gives cursor pages, one query each however deep,
//! stable while rows are inserted, with signed tokens. Both append the primary key
//! to the ordering. Bad page numbers, page sizes and cursors are typed errors
//! ([`Error::PageNotAnInteger`], [`Error::EmptyPage`], [`Error::InvalidPageSize`],
//! [`Error::InvalidCursor`]).
//!
//! ## Transactions
//!
//! [`atomic`] commits on `Ok`, rolls back on `Err` or panic, nests with savepoints,
//! and starts SQLite write transactions with `BEGIN IMMEDIATE`.
//!
//! ## Streaming and bulk writes
//!
//! [`QuerySet::stream`] iterates any queryset (filters, ordering,
//! [`select_related`](QuerySet::select_related), [`prefetch`](QuerySet::prefetch) per
//! chunk) with memory bounded by the chunk size; [`QuerySet::stream_sql`] shows the
//! statements:
//!
//! | ordering | SQLite | PostgreSQL |
//! |---|---|---|
//! | by primary key, or none | keyset: `... AND id > ? ORDER BY id LIMIT n` per chunk | same, `$n` |
//! | any other | one `SELECT`, stepped | `DECLARE c NO SCROLL CURSOR FOR SELECT ...`, `FETCH FORWARD n FROM c` per chunk |
//!
//! Writes of many rows take a `Vec` of a row type declared with [`insertable!`]; each
//! runs in one transaction, so it is written whole or not at all, and every write
//! sets `updated` (and inserts `created`) to now:
//!
//! | you want | call | SQL |
//! |---|---|---|
//! | one row | [`create`](QuerySet::create) | `INSERT INTO t (...) VALUES (...) RETURNING id` |
//! | many rows, their ids | [`bulk_create`](QuerySet::bulk_create) | `INSERT ... VALUES (...), (...) RETURNING id`, chunked under the bind limit |
//! | skip or upsert conflicts | [`bulk_create_with`](QuerySet::bulk_create_with) | `... ON CONFLICT DO NOTHING` / `ON CONFLICT (k) DO UPDATE SET c = excluded.c` |
//! | the fastest load | `bulk_create_with(.., &BulkCreate::new().method(InsertMethod::Copy))` | PostgreSQL `COPY t (...) FROM STDIN WITH (FORMAT binary)` |
//! | per-row values | [`bulk_update`](QuerySet::bulk_update) | `UPDATE t SET c = v.column2, updated = ? FROM (VALUES (?, ?), ...) AS v WHERE t.id = v.column1` |
//!
//! [`BulkCreate`](bulk::BulkCreate) and [`InsertMethod`](bulk::InsertMethod) live in
//! [`bulk`]. A failure is an [`Error::BulkWrite`] naming the failing row, its chunk and
//! the database's detail; nothing is written.

#![warn(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "tokio")]
pub mod asynch;
pub mod bulk;
mod capability;
mod connection;
pub mod count;
mod database;
mod dialect;
mod error;
mod error_kind;
pub mod explain;
mod fragment;
pub mod instrument;
mod key;
mod migrate;
mod model;
mod ordering;
pub mod paginate;
pub mod prelude;
pub mod profile;
mod queryset;
pub mod relations;
pub mod routing;
mod sql_type;
mod stream;
mod transaction;
pub mod types;
mod value;

#[cfg(feature = "tokio")]
pub use asynch::capture_async;
pub use capability::{Capability, Engine};
pub use connection::{AnyConnection, AsConnection, Backend, Db, MultiBackend};
pub use database::{
    redact as redact_url, ConnectionManager, Database, DatabaseBuilder, PooledConnection,
};
pub use dialect::{Dialect, ExplainFormat, StatisticsSource};
pub use error::{ConnectErrorKind, Error, Result};
pub use error_kind::DbErrorKind;
pub use fragment::ColumnRef;
pub use instrument::{capture, Captured};
pub use key::{AnyKey, ColumnKey, Key, KeyExpressionMethods, KeyType};
pub use migrate::Migrations;
pub use model::Model;
pub use ordering::client::SqlOrder;
pub use ordering::{IntoOrdering, OrderTerm};
pub use profile::{profile, Profile, Profiler};
pub use queryset::escape::{at_call_site, Boxed, Raw};
pub use queryset::statement::RowLock;
pub use queryset::values::{Grouped, InValuesMethods, Values};
pub use queryset::{Deleted, QuerySet};
pub use sql_type::{ColumnType, SqlTypeInfo, ValueKind};
pub use stream::{Chunks, PrefetchChunks, Stream, StreamStrategy};
pub use transaction::{atomic, atomic_with, Isolation, TransactionOptions};
pub use types::pg;

/// Used by the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::connection::{Direct, DirectRows, SqliteIter};
    pub use crate::types::ReadOf;

    /// `column IN keys` for keys of any type (`= ANY($1)` on PostgreSQL).
    pub fn key_in<K: crate::Key>(column: crate::ColumnRef, keys: Vec<K>) -> Fragment {
        crate::key::KeyIn::fragment(column, keys)
    }
    pub use crate::fragment::{Fragment, Statement};
    pub use crate::ordering::client::orders_like_sql;
    pub use crate::queryset::statement::ModelSelect;
    pub use chrono;
    pub use diesel;
}
