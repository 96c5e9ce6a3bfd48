//! The talk's "threads" app on `orm`: Person, Thread, Message with soft delete and
//! the partial index `soft_deletes_ignore`.

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod api;
pub mod bench;
pub mod json;
pub mod load;
pub mod models;
pub mod openapi;
pub mod profile_load;
pub mod profile_pages;
pub mod scaling;
pub mod scenarios;
#[allow(missing_docs)]
pub mod schema;
pub mod seed;
pub mod server;
pub mod writers;

/// The demo schema for both backends (`migrations/sqlite`, `migrations/postgres`).
pub const MIGRATIONS: orm::Migrations = orm::Migrations {
    sqlite: &diesel_migrations::embed_migrations!("../migrations/sqlite"),
    postgres: &diesel_migrations::embed_migrations!("../migrations/postgres"),
};
