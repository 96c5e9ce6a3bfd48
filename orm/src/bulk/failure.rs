//! Where a bulk write failed: the chunk, and the row, found by probing prefixes of
//! the failing chunk in savepoints that are always rolled back.

use crate::connection::AnyConnection;
use crate::error::{Error, Result};

/// The rows of one chunk within the whole input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSpan {
    pub(crate) operation: &'static str,
    pub(crate) chunk: usize,
    pub(crate) first_row: usize,
    pub(crate) end_row: usize,
    pub(crate) total_rows: usize,
}

/// Runs one chunk's statement in a savepoint; on a database error, finds the first
/// row whose addition makes the chunk fail and reports it in the error.
///
/// `send(conn, n)` sends the statement for the chunk's first `n` rows. Only a
/// failure costs more: about `log2(rows in the chunk)` probes, each rolled back.
pub(crate) fn run_chunk<T>(
    conn: &mut AnyConnection,
    span: ChunkSpan,
    mut send: impl FnMut(&mut AnyConnection, usize) -> Result<T>,
) -> Result<T> {
    let rows = span.end_row - span.first_row;
    let error = match crate::atomic(conn, |c| send(c, rows)) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let row = if is_database_error(&error) {
        first_failing_row(conn, rows, &mut send).map(|i| span.first_row + i)
    } else {
        None
    };
    Err(bulk_error(span, row, error))
}

/// The index of the row that makes the first `k` rows fail (`k` smallest), or `None`
/// when a probe fails for another reason (then the chunk alone is reported).
fn first_failing_row<T>(
    conn: &mut AnyConnection,
    rows: usize,
    send: &mut impl FnMut(&mut AnyConnection, usize) -> Result<T>,
) -> Option<usize> {
    /// A probe's outcome, carried out of `atomic` as its error so it always rolls back.
    enum Probe {
        Passed,
        Failed(Error),
    }
    impl From<Error> for Probe {
        fn from(error: Error) -> Self {
            Probe::Failed(error)
        }
    }
    // Invariant: the first `passes` rows go in; the first `fails` rows do not.
    let (mut passes, mut fails) = (0, rows);
    while fails - passes > 1 {
        let mid = passes + (fails - passes) / 2;
        let outcome = crate::atomic(conn, |c| -> std::result::Result<(), Probe> {
            send(c, mid)?;
            Err(Probe::Passed)
        });
        match outcome {
            Err(Probe::Passed) => passes = mid,
            Err(Probe::Failed(e)) if is_database_error(&e) => fails = mid,
            Ok(()) | Err(Probe::Failed(_)) => return None,
        }
    }
    Some(fails - 1)
}

/// For a statement that failed as a whole (a `COPY`): the first row whose addition
/// makes `send` fail, and the error sending just the rows up to it gives, which the
/// library may classify where the whole statement's could not. Every probe is rolled
/// back; `None` when the rows go in one by one (the failure was the statement's).
pub(crate) fn diagnose<T>(
    conn: &mut AnyConnection,
    rows: usize,
    send: &mut impl FnMut(&mut AnyConnection, usize) -> Result<T>,
) -> Option<(usize, Error)> {
    let row = first_failing_row(conn, rows, send)?;
    let outcome = crate::atomic(conn, |c| -> std::result::Result<(), Error> {
        send(c, row + 1)?;
        Err(Error::InvalidArgument {
            argument: "rows",
            reason: "went in when tried again",
        })
    });
    match outcome {
        Err(e) if is_database_error(&e) => Some((row, e)),
        _ => None,
    }
}

/// An error a row's values can cause (the rows are searched for it).
fn is_database_error(error: &Error) -> bool {
    matches!(
        error,
        Error::Query(diesel::result::Error::DatabaseError(..)) | Error::NulInText { .. }
    )
}

/// Wraps a failed chunk's error with where it happened.
pub(crate) fn bulk_error(span: ChunkSpan, row: Option<usize>, error: Error) -> Error {
    let detail = match &error {
        Error::Query(diesel::result::Error::DatabaseError(_, info)) => {
            let parts: Vec<&str> = [info.details(), info.hint()]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    };
    Error::BulkWrite {
        operation: span.operation,
        row,
        chunk: span.chunk,
        first_row: span.first_row,
        end_row: span.end_row,
        total_rows: span.total_rows,
        detail,
        source: Box::new(error),
    }
}
