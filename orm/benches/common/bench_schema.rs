// Shared by the benchmarks (`include!("common/bench_schema.rs")`): a PostgreSQL schema of
// their own on the server `ORM_BENCH_POSTGRES_URL` names (default
// `postgres://postgres@127.0.0.1:5432/test`), dropped when the value is.

/// A benchmark's own PostgreSQL schema; dropped (with everything in it) on drop.
struct BenchSchema {
    admin_url: String,
    name: String,
}

impl BenchSchema {
    /// Creates the schema `<prefix>_<process id>` and opens a pool whose connections
    /// use it; `None`, with a line, when the server cannot be reached.
    fn open(prefix: &str) -> Option<(BenchSchema, orm::Database)> {
        use diesel::connection::SimpleConnection as _;
        let admin_url = std::env::var("ORM_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let admin = match orm::Database::open(&admin_url) {
            Ok(db) => db,
            Err(e) => {
                println!("postgres skipped: {e}");
                return None;
            }
        };
        let name = format!("{prefix}_{}", std::process::id());
        admin
            .get()
            .ok()?
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .ok()?;
        let db =
            orm::Database::open(&format!("{admin_url}?options=-csearch_path%3D{name}")).ok()?;
        Some((BenchSchema { admin_url, name }, db))
    }
}

impl Drop for BenchSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection as _;
        if let Ok(admin) = orm::Database::open(&self.admin_url) {
            if let Ok(mut conn) = admin.get() {
                let _ = conn.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
            }
        }
    }
}
