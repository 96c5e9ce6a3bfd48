//! Writes of many rows: `create`, `bulk_create` (chunked multi-row `INSERT`, or
//! PostgreSQL binary `COPY`), `bulk_update` (`UPDATE ... FROM (VALUES ...)`).
//!
//! Every bulk write runs in one transaction ([`atomic`](crate::atomic)): it is
//! written whole or not at all. Chunks stay under the backend's bind limit
//! ([`Capability::max_bind_params`](crate::Capability)).
//!
//! Loading a large batch that carries its own history (a seed, an import): COPY on
//! PostgreSQL from [`COPY_THRESHOLD`] rows on, chunked `INSERT` otherwise, the rows'
//! timestamps kept.
//!
//! ```
//! # include!("../../doctest_setup.rs");
//! # fn main() -> orm::Result<()> {
//! # let (_db, mut conn) = setup();
//! use orm::bulk::{BulkCreate, InsertMethod};
//! use orm::prelude::*;
//!
//! #[derive(diesel::Insertable)]
//! #[diesel(table_name = weave_message, treat_none_as_default_value = false)]
//! struct NewMessage {
//!     created: chrono::NaiveDateTime,
//!     updated: chrono::NaiveDateTime,
//!     deleted: bool,
//!     text: String,
//!     sent_by_id: i64,
//!     thread_id: i64,
//! }
//! orm::insertable! { NewMessage => Message, timestamps: (created, updated) }
//!
//! let then = chrono::DateTime::from_timestamp(1_600_000_000, 0).unwrap().naive_utc();
//! let rows: Vec<NewMessage> = (0..20_000)
//!     .map(|i| NewMessage { created: then, updated: then, deleted: false, text: format!("m{i}"), sent_by_id: 1, thread_id: 1 + i % 2 })
//!     .collect();
//! let seed = BulkCreate::new().method(InsertMethod::Auto).keep_timestamps();
//! let (created, captured) = orm::capture(|| Message::objects().bulk_create_with(&mut conn, rows, &seed));
//! assert_eq!(created?.rows, 20_000);
//! // SQLite: 32,766 binds / 6 per row = 5,461 rows per INSERT, so 4 statements.
//! // PostgreSQL: one COPY.
//! assert_eq!(captured.len(), 4);
//! assert_eq!(Message::objects().filter(weave_message::created.eq(then)).count(&mut conn)?, 20_000);
//! # Ok(()) }
//! ```

mod columns;
mod create;
mod failure;
mod new_row;
pub(crate) mod statement;
mod update;

pub use columns::{Columns, UpdateColumns};
pub use create::{
    BulkCreate, Conflict, Created, InsertMethod, COPY_DIAGNOSIS_ROWS, COPY_THRESHOLD,
};
pub use new_row::{NewRow, RowValues, WriteTime};
pub use update::UPDATE_ARRAY_ROWS;
