//! `demo writers`: does another process's bulk write make this one's ordinary writes
//! fail on SQLite? A child process inserts `rows` messages in one `bulk_create` (one
//! transaction, holding SQLite's write lock throughout) while this process keeps
//! writing one row at a time, each in its own `atomic`, with the pool's busy timeout.
//! Prints how long the bulk write held the lock, how long the ordinary writes waited
//! at most, and how many failed (`Error::Busy`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orm::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::{Message, Thread};
use crate::schema::{weave_message, weave_thread};

/// The text the bulk write's rows carry, so they can be removed afterwards.
const MARKER: &str = "demo writers bulk row";

/// What the child process reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct BulkReport {
    /// Rows inserted.
    pub rows: usize,
    /// The whole `bulk_create`, lock held throughout.
    pub seconds: f64,
}

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct WritersReport {
    /// The busy timeout of the ordinary writers' pool.
    pub busy_timeout_ms: u128,
    /// The bulk write, as the child reported it.
    pub bulk: BulkReport,
    /// Ordinary writes made while the bulk write ran.
    pub writes: usize,
    /// Of those, failed with `Error::Busy`.
    pub busy_failures: usize,
    /// The longest an ordinary write took (waiting for the lock included).
    pub longest_write_ms: f64,
}

/// The child's side: `rows` messages in one `bulk_create`.
///
/// # Errors
/// The database's.
pub fn bulk_probe(conn: &mut AnyConnection, rows: usize) -> orm::Result<BulkReport> {
    let mut new_rows = crate::scenarios::new_messages(conn, rows)?;
    for row in &mut new_rows {
        row.text = MARKER.to_owned();
    }
    let started = Instant::now();
    let ids = Message::objects().bulk_create(conn, new_rows)?;
    Ok(BulkReport {
        rows: ids.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs the child (`exe writers-probe --rows N` on `database_url`) and writes one row
/// at a time beside it until it ends.
///
/// # Errors
/// The child's failure, or a database error other than `Busy`.
pub fn run(
    exe: &std::path::Path,
    database_url: &str,
    rows: usize,
    busy_timeout: Duration,
) -> Result<WritersReport, Box<dyn std::error::Error + Send + Sync>> {
    let db = orm::Database::builder(database_url)
        .busy_timeout(busy_timeout)
        .open()?;
    if db.backend() != Backend::Sqlite {
        return Err("demo writers measures SQLite's write lock: give it a SQLite file".into());
    }
    let conn = &mut db.get()?;
    let thread = Thread::objects()
        .with_deleted()
        .first(conn)?
        .ok_or("seed the database first")?;
    let mut child = Command::new(exe)
        .args([
            "--database-url",
            database_url,
            "writers-probe",
            "--rows",
            &rows.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let (mut writes, mut busy_failures, mut longest) = (0, 0, Duration::ZERO);
    let mut write_beside = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        while child.try_wait()?.is_none() {
            let started = Instant::now();
            let written = orm::atomic(conn, |c| {
                Thread::objects()
                    .with_deleted()
                    .filter(weave_thread::id.eq(thread.id))
                    .update(c, weave_thread::title.eq(format!("write {writes}")))
            });
            longest = longest.max(started.elapsed());
            writes += 1;
            match written {
                Ok(_) => {}
                Err(e) if e.db_kind() == Some(orm::DbErrorKind::Busy) => busy_failures += 1,
                Err(e) => return Err(e.into()),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    };
    let wrote = write_beside();
    if wrote.is_err() {
        // Stop the bulk writer before cleaning up after it.
        let _ = child.kill();
    }
    let output = child.wait_with_output();
    // Whatever happened, the database is left as it was found.
    Message::objects()
        .with_deleted()
        .filter(weave_message::text.eq(MARKER))
        .hard_delete(conn)?;
    Thread::objects()
        .with_deleted()
        .filter(weave_thread::id.eq(thread.id))
        .update(conn, weave_thread::title.eq(thread.title))?;
    wrote?;
    let output = output?;
    if !output.status.success() {
        return Err(format!("the bulk writer failed: {}", output.status).into());
    }
    let bulk: BulkReport = serde_json::from_slice(&output.stdout)?;
    Ok(WritersReport {
        busy_timeout_ms: busy_timeout.as_millis(),
        bulk,
        writes,
        busy_failures,
        longest_write_ms: longest.as_secs_f64() * 1e3,
    })
}
