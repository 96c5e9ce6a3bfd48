//! Writes of many rows: `create`, `bulk_create` (chunked multi-row `INSERT`, or
//! PostgreSQL binary `COPY`), `bulk_update` (`UPDATE ... FROM (VALUES ...)`).
//!
//! Every bulk write runs in one transaction ([`atomic`](crate::atomic)): it is
//! written whole or not at all. Chunks stay under the backend's bind limit
//! ([`Capability::max_bind_params`](crate::Capability)).

mod columns;
mod create;
mod new_row;
mod statement;
mod update;

pub use columns::{Columns, UpdateColumns};
pub use create::{BulkCreate, Conflict, Created, InsertMethod, COPY_THRESHOLD};
pub use new_row::{NewRow, RowValues};
