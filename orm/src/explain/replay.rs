//! Explaining a captured statement again, with its values bound again.
//!
//! Capture keeps binds as their debug text (`42`, `"What%"`, `false`,
//! `2024-01-01T00:05:00`, `[1, 2]`). The kinds that text identifies without doubt are
//! bound again with their SQL type; anything else refuses, rather than explain
//! another query than the one that ran.

use crate::connection::AsConnection;
use std::panic::Location;

use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Array, BigInt, Bool, Double, Text, Timestamp};
use diesel::RunQueryDsl;

use super::options::ExplainOptions;
use super::plan::{Plan, PlanContext};
use super::statement::{explain_fragment, rolled_back, PostgresExplain};
use crate::connection::{AnyConnection, Backend, Db, MultiBackend};
use crate::error::{Error, Result};
use crate::instrument::{with_call_site, QueryKind, QueryRecord};

/// Why a captured statement was not explained again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplayRefusal {
    /// Only `SELECT` statements are explained again: a write is never re-sent.
    NotASelect,
    /// The statement ran on the other backend.
    OtherBackend {
        /// Where it ran.
        recorded: Backend,
    },
    /// A bound value's debug text does not say its type for certain.
    UnreadableBind {
        /// Its position (0-based).
        index: usize,
        /// Its text.
        text: String,
    },
}

impl std::fmt::Display for ReplayRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotASelect => f.write_str("only SELECT statements are explained again"),
            Self::OtherBackend { recorded } => write!(f, "it ran on {recorded}"),
            Self::UnreadableBind { index, text } => {
                write!(
                    f,
                    "bind {index} (`{text}`) cannot be bound again with certainty"
                )
            }
        }
    }
}

/// A value read back from its debug text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Timestamp(chrono::NaiveDateTime),
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

/// Explains a captured `SELECT` again on `conn`, its binds bound again.
///
/// The profiler uses this to collect plans after a scope, for the statements its
/// [`PlanPolicy`](crate::profile::PlanPolicy) selects.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::explain::{explain_recorded, ExplainOptions};
/// use orm::prelude::*;
/// let (_, captured) = orm::capture(|| Message::objects().filter(weave_message::text.like("What%")).all(&mut conn));
/// let plan = explain_recorded(&mut conn, captured.data()[0], ExplainOptions::new())?;
/// assert!(plan.has_seq_scan("weave_message"));
///
/// let (_, captured) = orm::capture(|| Message::objects().delete(&mut conn));
/// let err = explain_recorded(&mut conn, captured.data()[0], ExplainOptions::new()).unwrap_err();
/// assert_eq!(err.to_string(), "cannot explain the captured statement again: only SELECT statements are explained again");
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::NotReplayable`] when the statement is not a `SELECT`, ran on the other
/// backend, or has a bind whose type its text does not give; then the errors of
/// [`QuerySet::explain`](crate::QuerySet::explain).
#[track_caller]
pub fn explain_recorded(
    conn: &mut impl AsConnection,
    record: &QueryRecord,
    options: ExplainOptions,
) -> Result<Plan> {
    let conn = conn.connection();
    let refuse = |reason| Error::NotReplayable { reason };
    if record.kind != QueryKind::Data || !is_select(&record.sql) {
        return Err(refuse(ReplayRefusal::NotASelect));
    }
    if record.backend != conn.backend() {
        return Err(refuse(ReplayRefusal::OtherBackend {
            recorded: record.backend,
        }));
    }
    let values = record
        .binds
        .iter()
        .enumerate()
        .map(|(index, text)| {
            parse(text)
                .filter(|v| record.backend.capability().array_binds || !v.is_array())
                .ok_or_else(|| {
                    refuse(ReplayRefusal::UnreadableBind {
                        index,
                        text: text.clone(),
                    })
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let site = Location::caller();
    let sql = record.sql.as_str();
    match conn {
        // Array binds (`= ANY($1)`) exist only on PostgreSQL and only bind on its own
        // connection type.
        AnyConnection::Postgresql(pg) => {
            let statement = bind_all!(
                diesel::sql_query("").into_boxed::<diesel::pg::Pg>().sql(sql),
                values,
                with arrays
            );
            let run = |pg: &mut diesel::PgConnection| -> Result<Plan> {
                let query = PostgresExplain {
                    prefix: options.postgres_prefix(),
                    statement: &statement,
                };
                let json = with_call_site(site, || query.get_result::<String>(pg))?;
                Plan::from_postgres_json(&json, sql.to_owned(), options, PlanContext::default())
            };
            if options.analyze {
                rolled_back(pg, run)
            } else {
                run(pg)
            }
        }
        AnyConnection::Sqlite(_) => {
            // The SQL text this library rendered earlier, placeholders included; the
            // values go in as bound parameters.
            let statement = bind_all!(
                diesel::sql_query("").into_boxed::<MultiBackend>().sql(sql),
                values
            );
            let fragment: &dyn QueryFragment<Db> = &statement;
            explain_fragment(conn, fragment, options, PlanContext::default(), site)
        }
    }
}

/// Binds each value with its SQL type; `with arrays` on PostgreSQL's own connection,
/// where array types bind (the caller refuses arrays elsewhere).
macro_rules! bind_all {
    ($statement:expr, $values:expr, with arrays) => {
        bind_all!(@each $statement, $values, {
            Value::Ints(v) => |s| s.bind::<Array<BigInt>, _>(v),
            Value::Texts(v) => |s| s.bind::<Array<Text>, _>(v),
        })
    };
    ($statement:expr, $values:expr) => {
        bind_all!(@each $statement, $values, {
            Value::Ints(_) | Value::Texts(_) => |s| s,
        })
    };
    (@each $statement:expr, $values:expr, { $($pat:pat => |$s:ident| $bind:expr,)* }) => {{
        let mut statement = $statement;
        for value in $values.iter().cloned() {
            statement = match value {
                Value::Bool(v) => statement.bind::<Bool, _>(v),
                Value::Int(v) => statement.bind::<BigInt, _>(v),
                Value::Float(v) => statement.bind::<Double, _>(v),
                Value::Text(v) => statement.bind::<Text, _>(v),
                Value::Timestamp(v) => statement.bind::<Timestamp, _>(v),
                $($pat => { let $s = statement; $bind })*
            };
        }
        statement
    }};
}
use bind_all;

fn is_select(sql: &str) -> bool {
    let word = sql.split_whitespace().next().unwrap_or("");
    word.eq_ignore_ascii_case("SELECT")
}

impl Value {
    fn is_array(&self) -> bool {
        matches!(self, Value::Ints(_) | Value::Texts(_))
    }
}

fn parse(text: &str) -> Option<Value> {
    let t = text.trim();
    match t {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::Int(i));
    }
    if t.starts_with('"') {
        return unescape_debug(t).map(Value::Text);
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items = crate::instrument::split_binds(&format!("[{inner}]"));
        if items.iter().all(|i| i.parse::<i64>().is_ok()) {
            return Some(Value::Ints(
                items.iter().filter_map(|i| i.parse().ok()).collect(),
            ));
        }
        return items
            .iter()
            .map(|i| unescape_debug(i))
            .collect::<Option<Vec<_>>>()
            .map(Value::Texts);
    }
    if t.contains('.') || t.contains('e') || t.contains('E') {
        if let Ok(f) = t.parse::<f64>() {
            if t.chars().all(|c| c.is_ascii_digit() || "-+.eE".contains(c)) {
                return Some(Value::Float(f));
            }
        }
    }
    if let Ok(ts) = t.parse::<chrono::NaiveDateTime>() {
        return Some(Value::Timestamp(ts));
    }
    None
}

/// A Rust debug string literal (`"a \"b\"\n"`) back to its text.
fn unescape_debug(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_texts_are_read_back_with_their_types() {
        assert_eq!(parse("false"), Some(Value::Bool(false)));
        assert_eq!(parse("-42"), Some(Value::Int(-42)));
        assert_eq!(parse("1.5"), Some(Value::Float(1.5)));
        assert_eq!(
            parse(r#""it's \"x\"\n\u{e9}""#),
            Some(Value::Text("it's \"x\"\né".into()))
        );
        assert_eq!(parse("[1, 2, 3]"), Some(Value::Ints(vec![1, 2, 3])));
        assert_eq!(
            parse(r#"["a", "b, c"]"#),
            Some(Value::Texts(vec!["a".into(), "b, c".into()]))
        );
        assert!(matches!(
            parse("2024-01-01T00:05:00.250"),
            Some(Value::Timestamp(_))
        ));
        assert_eq!(parse("Some(3)"), None);
        assert_eq!(parse("inf"), None);
        assert_eq!(parse(r#""bad \q""#), None);
    }
}
