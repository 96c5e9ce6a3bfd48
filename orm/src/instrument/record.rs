use std::panic::Location;
use std::time::{Duration, Instant};

use crate::connection::Backend;

/// What a captured statement was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// A statement the code asked for: SELECT, INSERT, UPDATE, DELETE, ...
    Data,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE SAVEPOINT`.
    Transaction,
    /// The pool's check that a connection is alive before handing it out.
    HealthCheck,
    /// A session setting the library sends for its own work (`SET LOCAL
    /// statement_timeout` of a deadline count, `SET CONSTRAINTS ALL IMMEDIATE` of a
    /// bulk write on PostgreSQL): recorded, but not counted as a query, so a count
    /// is the same on both backends.
    Session,
}

/// One statement as the database received it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryRecord {
    /// The SQL text with placeholders (`$1` on PostgreSQL, `?` on SQLite).
    pub sql: String,
    /// The bound values, each as its debug text (`"42"`, `"\"What%\""`, `"false"`).
    pub binds: Vec<String>,
    /// The SQL with literals and placeholders normalised to `?` and `IN (...)` lists
    /// collapsed: equal for the "same query" with other values.
    pub fingerprint: String,
    /// Data statement, transaction control or health check.
    pub kind: QueryKind,
    /// Which backend ran it.
    pub backend: Backend,
    /// Time from sending to the end of the statement (on SQLite: until the rows were
    /// read, since SQLite produces rows while they are read).
    pub duration: Duration,
    /// Rows returned or affected, where the library knows them.
    pub rows: Option<usize>,
    /// The database's error, if the statement failed.
    pub error: Option<String>,
    /// The source location of the terminal method that sent it, where known.
    #[serde(serialize_with = "serialize_location")]
    pub call_site: Option<&'static Location<'static>>,
    /// When the statement was sent.
    #[serde(skip)]
    pub started_at: Instant,
    /// Sent by a chunked iteration (a stream's keyset chunks or cursor fetches): the
    /// repetition is the design, so it is never reported as N+1.
    pub chunked: bool,
    /// The server it ran on: the primary, or which replica
    /// ([`routing`](crate::routing)).
    pub server: crate::routing::Server,
}

pub(crate) fn serialize_location<S: serde::Serializer>(
    loc: &Option<&'static Location<'static>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match loc {
        Some(l) => s.serialize_str(&format!("{}:{}:{}", l.file(), l.line(), l.column())),
        None => s.serialize_none(),
    }
}

impl QueryRecord {
    /// True for data statements (not transaction control, not health checks).
    pub fn is_data(&self) -> bool {
        self.kind == QueryKind::Data
    }
}

pub(crate) fn classify(sql: &str) -> QueryKind {
    let head = sql.trim_start();
    let word = head
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()
        .unwrap_or("");
    if ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
    {
        QueryKind::Transaction
    } else {
        QueryKind::Data
    }
}

/// The SQL and binds of diesel's `Debug` rendering of a statement,
/// `Query { sql: "<escaped>", binds: [..] }`, read exactly: the SQL is a Rust string
/// literal, so text inside a bound value (even ` -- binds: `) cannot end it early.
/// Statements diesel renders otherwise (`BEGIN`, `batch_execute` text) are `None`.
pub(crate) fn parse_debug_query(debug: &str) -> Option<(String, Vec<String>)> {
    let (sql, binds) = debug_parts(debug)?;
    Some((sql, split_binds(binds)))
}

/// The unescaped SQL and the binds' list text of diesel's `Debug` rendering.
fn debug_parts(debug: &str) -> Option<(String, &str)> {
    let rest = debug.strip_prefix("Query { sql: \"")?;
    let (sql, rest) = unescape_debug_str(rest)?;
    let binds = rest.strip_prefix(", binds: ")?.strip_suffix(" }")?;
    Some((sql, binds))
}

/// What a failed statement's bound values show: how many there were, and whether
/// any text among them holds a NUL character.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BindFacts {
    pub(crate) count: usize,
    pub(crate) nul_in_text: bool,
}

/// Reads the binds of `query` from its `Debug` form (run on failures only).
pub(crate) fn bind_facts(query: &dyn diesel::connection::DebugQuery) -> BindFacts {
    use std::fmt::Write as _;
    let mut debug = String::new();
    if write!(debug, "{query:?}").is_err() {
        // A statement that could not be built has no binds to speak of.
        return BindFacts::default();
    }
    debug_parts(&debug)
        .map(|(_, binds)| BindFacts {
            count: split_binds(binds).len(),
            nul_in_text: debug_text_has_nul(binds),
        })
        .unwrap_or_default()
}

/// Whether a string literal in `debug` (values' `Debug` text) holds `\0`.
fn debug_text_has_nul(debug: &str) -> bool {
    let mut rest = debug;
    while let Some(open) = rest.find('"') {
        match unescape_debug_str(&rest[open + 1..]) {
            Some((text, after)) => {
                if text.contains('\0') {
                    return true;
                }
                rest = after;
            }
            None => return false,
        }
    }
    false
}

/// Reads a Rust `Debug` string literal up to its closing quote; returns the text
/// and what follows the quote.
fn unescape_debug_str(s: &str) -> Option<(String, &str)> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                'u' => {
                    let (open, _) = chars.next()?;
                    let close = s[open..].find('}')? + open;
                    let hex = s.get(open + 1..close)?;
                    out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                    while chars.next()?.0 < close {}
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Splits diesel's debug list of binds (`[false, "a, b", 3]`) into its items.
pub(crate) fn split_binds(list: &str) -> Vec<String> {
    let inner = list
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or("");
    let mut items = Vec::new();
    let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
    let mut current = String::new();
    for c in inner.chars() {
        if in_str {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                current.push(c);
            }
            '[' | '(' | '{' => {
                depth += 1;
                current.push(c);
            }
            ']' | ')' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => {
                items.push(current.trim().to_owned());
                current.clear();
            }
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_owned());
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_binds_respects_strings_and_nesting() {
        assert_eq!(
            split_binds(r#"[false, "a, \"b\"", [1, 2], 3]"#),
            vec!["false", r#""a, \"b\"""#, "[1, 2]", "3"]
        );
        assert!(split_binds("[]").is_empty());
    }

    #[test]
    fn debug_queries_are_read_exactly_whatever_the_binds_contain() {
        let sql = "SELECT \"t\".\"x\" FROM t WHERE a = $1 -- binds: fake\n\u{1b}é";
        let binds: Vec<Box<dyn std::fmt::Debug>> = vec![
            Box::new(" -- binds: [1]\"}"),
            Box::new(7),
            Box::new(vec![1, 2]),
        ];
        let debug = format!("Query {{ sql: {sql:?}, binds: {binds:?} }}");
        let (parsed, parsed_binds) = parse_debug_query(&debug).unwrap();
        assert_eq!(parsed, sql);
        assert_eq!(
            parsed_binds,
            vec![
                r#"" -- binds: [1]\"}""#.to_owned(),
                "7".into(),
                "[1, 2]".into()
            ]
        );
        assert_eq!(parse_debug_query("\"BEGIN\""), None);
    }

    /// Pins diesel's own `Debug` rendering, which the capture reads.
    #[test]
    fn diesels_debug_form_is_read_exactly() {
        use diesel::sql_types::{BigInt, Text};
        let tricky = " -- binds: [1]\"} \n\0 end";
        let query = diesel::select(
            diesel::dsl::sql::<Text>("'a -- binds: ' || ")
                .bind::<Text, _>(tricky)
                .sql(" || ")
                .bind::<BigInt, _>(7_i64),
        );
        let debug = format!(
            "{:?}",
            diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query)
        );
        let (sql, binds) = parse_debug_query(&debug).expect("diesel's Query { sql, binds } form");
        assert_eq!(sql, "SELECT 'a -- binds: ' || ? || ?");
        assert_eq!(binds, vec![format!("{tricky:?}"), "7".to_owned()]);
        assert!(debug_text_has_nul(&binds[0]));
    }

    #[test]
    fn nul_characters_are_found_in_any_bound_text() {
        assert!(debug_text_has_nul(&format!("{:?}", ["a", "b\0c"])));
        assert!(debug_text_has_nul(&format!("{:?}", (1, Some("\0")))));
        // An escaped backslash followed by a zero is no NUL.
        assert!(!debug_text_has_nul(&format!("{:?}", ["a\\0", "0"])));
        assert!(!debug_text_has_nul("[1, 2, 3]"));
    }

    #[test]
    fn transaction_statements_are_classified_apart() {
        assert_eq!(classify("BEGIN IMMEDIATE"), QueryKind::Transaction);
        assert_eq!(
            classify("SAVEPOINT diesel_savepoint_1"),
            QueryKind::Transaction
        );
        assert_eq!(classify("release savepoint x"), QueryKind::Transaction);
        assert_eq!(classify("SELECT 1"), QueryKind::Data);
        assert_eq!(classify("BEGINNING"), QueryKind::Data);
    }
}
