//! Exact counts within a deadline.
//!
//! PostgreSQL cancels the statement itself (`SET LOCAL statement_timeout`). diesel
//! gives no access to SQLite's raw handle (for `sqlite3_interrupt` or a progress
//! handler), so on SQLite the count carries a filter `orm_count_deadline()`: a
//! function registered on the connection, evaluated for every row the scan visits,
//! that fails the statement once the deadline has passed.

use std::time::{Duration, Instant};

use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Bool;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::QueryResult;

use crate::connection::{Backend, Db};

/// The error text `orm_count_deadline()` fails a statement with (for people; the
/// code recognises the failure by [`FIRED`], not by this text).
const SQLITE_DEADLINE_PASSED: &str = "orm: exact count deadline passed";

thread_local! {
    /// Set when `orm_count_deadline()` failed the statement running on this thread.
    static FIRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How many rows the SQLite scan visits between two clock readings.
const ROWS_PER_CLOCK_READING: u32 = 64;

diesel::define_sql_function! {
    /// True while the current count's deadline has not passed.
    fn orm_count_deadline() -> Bool;
}

/// The filter `orm_count_deadline()`.
pub(crate) struct DeadlineFilter;

impl QueryFragment<Db> for DeadlineFilter {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.push_sql("orm_count_deadline()");
        Ok(())
    }
}

/// What the deadline function returns for one row: `true`, or an error once the
/// deadline has passed.
#[derive(Debug)]
struct DeadlineCheck {
    passed: bool,
}

#[derive(Debug)]
struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(SQLITE_DEADLINE_PASSED)
    }
}

impl std::error::Error for DeadlinePassed {}

impl ToSql<Bool, Sqlite> for DeadlineCheck {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        if self.passed {
            return Err(Box::new(DeadlinePassed));
        }
        <bool as ToSql<Bool, Sqlite>>::to_sql(&true, out)
    }
}

/// Registers `orm_count_deadline()` on `conn` for a deadline `timeout` from now
/// (replacing any earlier registration). The clock is read on the first row and
/// then every few rows.
pub(crate) fn register_sqlite_deadline(
    conn: &SqliteConnection,
    timeout: Duration,
) -> QueryResult<()> {
    let deadline = Instant::now() + timeout;
    let mut rows: u32 = 0;
    FIRED.with(|f| f.set(false));
    orm_count_deadline_utils::register_nondeterministic_impl(conn, move || {
        let read_clock = rows % ROWS_PER_CLOCK_READING == 0;
        rows = rows.wrapping_add(1);
        let passed = read_clock && Instant::now() >= deadline;
        if passed {
            FIRED.with(|f| f.set(true));
        }
        DeadlineCheck { passed }
    })
}

/// PostgreSQL's `statement_timeout` takes whole milliseconds up to `i32::MAX`, and
/// 0 disables it: round up, at least 1, at most `i32::MAX`.
pub(crate) fn timeout_millis(timeout: Duration) -> u64 {
    let ms = timeout
        .as_micros()
        .div_ceil(1_000)
        .clamp(1, i32::MAX as u128);
    u64::try_from(ms).unwrap_or(i32::MAX as u64)
}

/// True when `error` is the cancellation of a count by our deadline `timeout`,
/// the count having run for `elapsed`. Never read from the message text:
///
/// - Without a server statement timeout (SQLite): our deadline function noted that
///   it failed the statement.
/// - With one, PostgreSQL reports SQLSTATE 57014 (`query_canceled`), which diesel 2.3 does not
///   expose: the count, the one statement under the `statement_timeout` we set,
///   failed with no code diesel knows after running at least that long. The server
///   measures from a later start than we do, so a real timeout always qualifies,
///   whatever language the server speaks.
pub(crate) fn is_deadline_cancellation(
    error: &diesel::result::Error,
    backend: Backend,
    elapsed: Duration,
    timeout: Duration,
) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    if backend.capability().statement_timeout {
        matches!(error, Error::DatabaseError(DatabaseErrorKind::Unknown, _)) && elapsed >= timeout
    } else {
        FIRED.with(std::cell::Cell::take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_rounds_up_to_whole_milliseconds_never_zero() {
        assert_eq!(timeout_millis(Duration::ZERO), 1);
        assert_eq!(timeout_millis(Duration::from_micros(1)), 1);
        assert_eq!(timeout_millis(Duration::from_micros(1_001)), 2);
        assert_eq!(timeout_millis(Duration::from_millis(50)), 50);
        assert_eq!(timeout_millis(Duration::MAX), 2_147_483_647);
    }
}
