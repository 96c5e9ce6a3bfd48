//! Each statement as a `tracing` span in OpenTelemetry's stable database semantic
//! conventions, so an OpenTelemetry exporter (`tracing-opentelemetry`) shows it as a
//! client span under the request's span.
//!
//! The span (target `orm::statement`, level INFO, named by its `otel.name` field
//! `"{db.operation.name} {db.collection.name}"`, e.g. `SELECT weave_message`) opens
//! when the statement is sent and closes when its rows are counted. Its attributes:
//!
//! | attribute | value |
//! |---|---|
//! | `db.system.name` | `postgresql` or `sqlite` |
//! | `db.namespace` | the PostgreSQL database name, or the SQLite file |
//! | `db.operation.name` | the statement's first keyword: `SELECT`, `INSERT`, `COPY`, `BEGIN`... |
//! | `db.collection.name` | the first table it names, where one follows `FROM`, `INTO`, `UPDATE` or `COPY` |
//! | `db.query.text` | the normalised statement (placeholders, literals as `?`, `IN` lists collapsed): never a bound value |
//! | `db.response.status_code` | on failure, the SQLSTATE (PostgreSQL) or primary result code (SQLite: `19` for a constraint, `5` busy) of its [`DbErrorKind`](crate::DbErrorKind) |
//! | `error.type` | on failure, the kind (`unique violation`...); `otel.status_code` is then `ERROR` |
//! | `db.response.returned_rows` | the rows read or written, where the library counts them |
//! | `server.address`, `server.port` | the host and port of a PostgreSQL connection |
//! | `code.file.path`, `code.line.number` | the call site of the terminal method that sent it |
//!
//! With no subscriber listening to `orm::statement`, a span costs one check of
//! tracing's cached interest; with one, the statement is rendered once more (the
//! capture overhead bench measures both).

use std::cell::RefCell;

use tracing::field::Empty;

use crate::connection::Backend;
use crate::error_kind::DbErrorKind;
use crate::routing::Server;

thread_local! {
    /// The span of the statement that just finished, until its rows are counted.
    static FINISHED: RefCell<Option<tracing::Span>> = const { RefCell::new(None) };
}

/// A statement's span, opened as it is sent; `None` when no one listens.
pub(crate) fn open(backend: Backend, server: &Server, namespace: &str) -> Option<tracing::Span> {
    let system = match backend {
        Backend::Postgres => "postgresql",
        Backend::Sqlite => "sqlite",
    };
    let span = tracing::info_span!(
        target: "orm::statement",
        "statement",
        otel.name = Empty,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = system,
        db.namespace = namespace,
        db.operation.name = Empty,
        db.collection.name = Empty,
        db.query.text = Empty,
        db.response.status_code = Empty,
        db.response.returned_rows = Empty,
        error.type = Empty,
        server.address = Empty,
        server.port = Empty,
        code.file.path = Empty,
        code.line.number = Empty,
    );
    if span.is_disabled() {
        return None;
    }
    if backend == Backend::Postgres {
        // The first host of the address (`host:port`, or several of them).
        let first = server.address.split(',').next().unwrap_or("");
        match first.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                span.record("server.address", host);
                if let Ok(port) = port.parse::<u16>() {
                    span.record("server.port", port);
                }
            }
            _ => {
                span.record("server.address", first);
            }
        }
    }
    Some(span)
}

/// Fills the span of a statement that finished: its normalised text, operation and
/// table, call site and error. Inside a terminal method it stays open until the
/// method counts the rows ([`rows`]); otherwise it closes now.
pub(crate) fn finish(
    span: tracing::Span,
    backend: Backend,
    fingerprint: &str,
    site: Option<&'static std::panic::Location<'static>>,
    error: Option<&diesel::result::Error>,
) {
    let operation = operation_of(fingerprint);
    let collection = collection_of(fingerprint);
    span.record("db.operation.name", operation.as_str());
    span.record("db.query.text", fingerprint);
    match &collection {
        Some(table) => {
            span.record("db.collection.name", table.as_str());
            span.record("otel.name", format!("{operation} {table}").as_str());
        }
        None => {
            span.record("otel.name", operation.as_str());
        }
    }
    if let Some(site) = site {
        span.record("code.file.path", site.file());
        span.record("code.line.number", site.line());
    }
    if let Some(error) = error {
        let kind = DbErrorKind::of(error).unwrap_or(DbErrorKind::Other);
        span.record("otel.status_code", "ERROR");
        span.record("error.type", kind.to_string().as_str());
        if let Some(code) = status_code(kind, backend) {
            span.record("db.response.status_code", code);
        }
    }
    if site.is_some() {
        FINISHED.with(|f| *f.borrow_mut() = Some(span));
    }
}

/// The rows of the statement that just finished: recorded on its span, which closes.
pub(crate) fn rows(rows: usize) {
    if let Some(span) = FINISHED.with(|f| f.borrow_mut().take()) {
        span.record("db.response.returned_rows", rows);
    }
}

/// Closes the span of the last statement if its rows were not counted.
pub(crate) fn close() {
    FINISHED.with(|f| f.borrow_mut().take());
}

/// The first keyword, upper case.
fn operation_of(sql: &str) -> String {
    sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The first table after `FROM`, `INTO`, `UPDATE` or `COPY`, unquoted.
fn collection_of(sql: &str) -> Option<String> {
    let mut words = sql.split_whitespace();
    while let Some(word) = words.next() {
        if ["FROM", "INTO", "UPDATE", "COPY"]
            .iter()
            .any(|k| word.eq_ignore_ascii_case(k))
        {
            let next = words.next()?;
            let name: String = next
                .chars()
                .take_while(|c| !matches!(c, '(' | ')' | ',' | ';'))
                .filter(|c| *c != '"' && *c != '`')
                .collect();
            if !name.is_empty() && !name.starts_with('?') && !name.eq_ignore_ascii_case("SELECT") {
                return Some(name);
            }
        }
    }
    None
}

/// The code the database itself gives a kind: PostgreSQL's SQLSTATE, SQLite's
/// primary result code.
fn status_code(kind: DbErrorKind, backend: Backend) -> Option<&'static str> {
    Some(match (backend, kind) {
        (Backend::Postgres, DbErrorKind::UniqueViolation) => "23505",
        (Backend::Postgres, DbErrorKind::ForeignKeyViolation) => "23503",
        (Backend::Postgres, DbErrorKind::NotNullViolation) => "23502",
        (Backend::Postgres, DbErrorKind::CheckViolation) => "23514",
        (Backend::Postgres, DbErrorKind::RestrictViolation) => "23001",
        (Backend::Postgres, DbErrorKind::ExclusionViolation) => "23P01",
        (Backend::Postgres, DbErrorKind::SerializationFailure) => "40001",
        (Backend::Postgres, DbErrorKind::ReadOnlyTransaction) => "25006",
        (Backend::Postgres, DbErrorKind::ConnectionLost) => "08006",
        (Backend::Postgres, DbErrorKind::StatementTimeout) => "57014",
        (Backend::Postgres, DbErrorKind::NulInText) => "22021",
        // SQLite's primary result codes: diesel's kinds do not keep the extended
        // one (a primary key and a unique constraint are one kind).
        (
            Backend::Sqlite,
            DbErrorKind::UniqueViolation
            | DbErrorKind::ForeignKeyViolation
            | DbErrorKind::NotNullViolation
            | DbErrorKind::CheckViolation,
        ) => "19",
        (Backend::Sqlite, DbErrorKind::Busy) => "5",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_tables_are_read_from_the_normalised_text() {
        let cases = [
            (
                r#"SELECT "weave_message"."id" FROM "weave_message" WHERE ("weave_message"."id" = ?)"#,
                "SELECT",
                Some("weave_message"),
            ),
            (
                r#"INSERT INTO "weave_thread" ("title") VALUES (?)"#,
                "INSERT",
                Some("weave_thread"),
            ),
            (
                r#"UPDATE "shop_ledger"."entry" SET "x" = ?"#,
                "UPDATE",
                Some("shop_ledger.entry"),
            ),
            (
                "COPY \"weave_person\" (\"id\") FROM STDIN WITH (FORMAT binary)",
                "COPY",
                Some("weave_person"),
            ),
            ("SELECT 1", "SELECT", None),
            ("BEGIN", "BEGIN", None),
            (
                "SELECT COUNT(*) FROM (SELECT 1 FROM \"t\") AS q",
                "SELECT",
                Some("t"),
            ),
        ];
        for (sql, op, table) in cases {
            assert_eq!(operation_of(sql), op, "{sql}");
            assert_eq!(collection_of(sql).as_deref(), table, "{sql}");
        }
    }

    #[test]
    fn kinds_map_to_the_codes_of_each_database() {
        assert_eq!(
            status_code(DbErrorKind::UniqueViolation, Backend::Postgres),
            Some("23505")
        );
        assert_eq!(
            status_code(DbErrorKind::UniqueViolation, Backend::Sqlite),
            Some("19")
        );
        assert_eq!(status_code(DbErrorKind::Other, Backend::Postgres), None);
    }
}
