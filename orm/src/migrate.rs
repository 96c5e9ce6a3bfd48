//! Embedded migrations, one directory per backend.

use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::connection::AnyConnection;
use crate::error::{Error, Result};

/// A project's migrations for both backends, embedded at compile time:
///
/// ```text
/// pub const MIGRATIONS: orm::Migrations = orm::Migrations {
///     sqlite: &diesel_migrations::embed_migrations!("../migrations/sqlite"),
///     postgres: &diesel_migrations::embed_migrations!("../migrations/postgres"),
/// };
/// ```
///
/// Run them with [`Database::migrate`](crate::Database::migrate).
#[derive(Clone, Copy)]
pub struct Migrations {
    /// The SQLite migrations.
    pub sqlite: &'static EmbeddedMigrations,
    /// The PostgreSQL migrations.
    pub postgres: &'static EmbeddedMigrations,
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Migrations { sqlite, postgres }")
    }
}

/// Lends embedded migrations to the harness, which wants them by value.
struct Lent(&'static EmbeddedMigrations);

impl<DB: diesel::backend::Backend> MigrationSource<DB> for Lent {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        MigrationSource::<DB>::migrations(self.0)
    }
}

impl Migrations {
    /// Runs the pending migrations of the connection's backend; returns how many ran.
    ///
    /// On SQLite, after migrations ran, `PRAGMA optimize = 0x10002` analyses what they left
    /// without statistics (a new index is otherwise planned with SQLite's guesses
    /// until the next `ANALYZE`), as SQLite recommends after schema changes.
    ///
    /// # Errors
    /// [`Error::Migration`] with the failing migration's error.
    pub fn run(&self, conn: &mut AnyConnection) -> Result<usize> {
        let source = Lent(match conn {
            AnyConnection::Sqlite(_) => self.sqlite,
            AnyConnection::Postgresql(_) => self.postgres,
        });
        let ran = conn
            .run_pending_migrations(source)
            .map(|ran| ran.len())
            .map_err(|source| Error::Migration { source })?;
        if ran > 0 {
            if let AnyConnection::Sqlite(c) = conn {
                use diesel::connection::SimpleConnection as _;
                c.batch_execute("PRAGMA optimize = 0x10002")?;
            }
        }
        Ok(ran)
    }
}
