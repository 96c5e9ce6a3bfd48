//! Index advice from one plan: the patterns that cost most, and the index that
//! would serve them.

use serde::Serialize;

use super::plan::{NodeKind, Plan, PlanContext, PlanNode};
use crate::dialect::ExplainFormat;

/// When a pattern is worth an index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdviceThresholds {
    /// A scan or sort is advised on only when it handles at least this many rows
    /// (where the backend reports rows).
    pub min_rows: f64,
    /// A sequential scan is advised on when its filter throws away at least this
    /// fraction of the rows it reads (0.5: "most rows").
    pub min_removed_fraction: f64,
}

impl Default for AdviceThresholds {
    fn default() -> Self {
        Self {
            min_rows: 1_000.0,
            min_removed_fraction: 0.5,
        }
    }
}

/// Which pattern the advice is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "pattern", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdviceKind {
    /// A sequential scan whose filter removed most of the rows it read
    /// (PostgreSQL with ANALYZE: the counts are measured).
    SeqScanFilter {
        /// Rows read.
        rows_read: f64,
        /// Rows thrown away by the filter.
        rows_removed: f64,
    },
    /// A sort of a whole (filtered) table to return the first rows of a `LIMIT`.
    SortForLimit {
        /// Rows sorted, where the backend says (SQLite does not).
        rows_sorted: Option<f64>,
    },
}

/// An index suggestion drawn from one plan.
///
/// It is advice from one plan of one query with one set of values: an index costs
/// every write to its table and space, and the planner's choice changes with the
/// data. Check it against the queries your application really sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Advice {
    /// The pattern found.
    pub kind: AdviceKind,
    /// The table to index.
    pub table: String,
    /// The index's columns, each with ` DESC` where the query sorts descending.
    pub columns: Vec<String>,
    /// The partial-index predicate, when the query always filters a boolean
    /// column to one value (a soft-delete flag: `deleted = false`).
    pub partial: Option<String>,
    /// The suggested statement (text to read and adapt, never run by the library).
    pub create_index: String,
    /// Why, in a sentence with the plan's numbers.
    pub reason: String,
}

impl std::fmt::Display for Advice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "advice from one plan: {}; consider `{}`",
            self.reason, self.create_index
        )
    }
}

pub(crate) fn advise(plan: &Plan, thresholds: &AdviceThresholds) -> Vec<Advice> {
    let mut advice = Vec::new();
    match plan.backend.dialect().explain {
        ExplainFormat::PostgresJson => {
            for node in plan.nodes() {
                if let Some(a) = seq_scan_filter(node, thresholds, plan.context()) {
                    advice.push(a);
                }
                if let Some(a) = postgres_sort_for_limit(node, thresholds, plan.context()) {
                    advice.push(a);
                }
            }
        }
        ExplainFormat::SqliteQueryPlan => advice.extend(sqlite_sort_for_limit(plan)),
    }
    advice.dedup_by(|a, b| a.create_index == b.create_index);
    advice
}

fn seq_scan_filter(node: &PlanNode, t: &AdviceThresholds, context: &PlanContext) -> Option<Advice> {
    if node.kind != NodeKind::SeqScan {
        return None;
    }
    let table = node.relation.clone()?;
    let loops = node.actual_loops.unwrap_or(1.0);
    let removed = node.rows_removed_by_filter? * loops;
    let kept = node.actual_rows? * loops;
    let read = removed + kept;
    if read < t.min_rows || removed / read < t.min_removed_fraction {
        return None;
    }
    let conditions = Conditions::parse(node.filter.as_deref()?);
    let mut columns = conditions.columns;
    if columns.is_empty() {
        columns.extend(conditions.constant_flag.iter().map(|(c, _)| c.clone()));
    }
    if columns.is_empty() {
        return None;
    }
    let partial = conditions
        .constant_flag
        .map(|(column, value)| format!("{} = {value}", quote(&column)));
    let reason = format!(
        "a sequential scan of {table} read {read} rows and its filter removed {removed} ({:.0}%)",
        100.0 * removed / read
    );
    Some(build(
        AdviceKind::SeqScanFilter {
            rows_read: read,
            rows_removed: removed,
        },
        context,
        table,
        columns,
        partial,
        reason,
    ))
}

fn postgres_sort_for_limit(
    node: &PlanNode,
    t: &AdviceThresholds,
    context: &PlanContext,
) -> Option<Advice> {
    if node.kind != NodeKind::Limit {
        return None;
    }
    let sort = descend(node.children.first()?, |n| {
        matches!(n.kind, NodeKind::Gather | NodeKind::Result)
    });
    if !sort.kind.is_sort() || sort.sort_keys.is_empty() {
        return None;
    }
    let input = sort.children.first()?;
    let rows = input
        .actual_rows
        .map(|r| r * input.actual_loops.unwrap_or(1.0))
        .or(input.estimated_rows)?;
    if rows < t.min_rows {
        return None;
    }
    let scan = input.walk().into_iter().find(|n| n.relation.is_some())?;
    let table = scan.relation.clone()?;
    let columns: Vec<String> = sort.sort_keys.iter().map(|k| unqualify_key(k)).collect();
    let partial = scan
        .filter
        .as_deref()
        .and_then(|f| Conditions::parse(f).constant_flag)
        .map(|(column, value)| format!("{} = {value}", quote(&column)));
    let reason = format!(
        "{} rows of {table} are sorted by {} to return the first rows of a LIMIT",
        rows.round(),
        columns.join(", ")
    );
    Some(build(
        AdviceKind::SortForLimit {
            rows_sorted: Some(rows),
        },
        context,
        table,
        columns,
        partial,
        reason,
    ))
}

fn sqlite_sort_for_limit(plan: &Plan) -> Option<Advice> {
    let context = plan.context();
    let sorts = plan
        .nodes()
        .into_iter()
        .any(|n| n.kind == NodeKind::TempBTree && n.label.contains("ORDER BY"));
    if !sorts || !context.limited || context.order.is_empty() {
        return None;
    }
    let table = context
        .table
        .clone()
        .or_else(|| plan.nodes().into_iter().find_map(|n| n.relation.clone()))?;
    // SQLite's planner keeps a soft-delete partial index (`WHERE deleted = false`)
    // over a partial index on the sort columns, but walks a composite index whose
    // leading column is the constant flag: `(deleted, updated DESC, id DESC)`.
    let mut columns: Vec<String> = context.live_rows_of.iter().cloned().collect();
    columns.extend(context.order.iter().map(|(c, desc)| {
        if *desc {
            format!("{c} DESC")
        } else {
            c.clone()
        }
    }));
    let partial = None;
    let reason = format!(
        "{table} is sorted by {} in a temporary b-tree to return the first rows of a LIMIT (SQLite reports no row counts: this matters when the table is large)",
        context
            .order
            .iter()
            .map(|(c, desc)| if *desc { format!("{c} DESC") } else { c.clone() })
            .collect::<Vec<_>>()
            .join(", ")
    );
    Some(build(
        AdviceKind::SortForLimit { rows_sorted: None },
        context,
        table,
        columns,
        partial,
        reason,
    ))
}

/// Follows single children while `skip` holds.
fn descend(mut node: &PlanNode, skip: impl Fn(&PlanNode) -> bool) -> &PlanNode {
    while skip(node) {
        match node.children.first() {
            Some(child) => node = child,
            None => break,
        }
    }
    node
}

fn build(
    kind: AdviceKind,
    context: &PlanContext,
    table: String,
    columns: Vec<String>,
    partial: Option<String>,
    reason: String,
) -> Advice {
    let name_parts: Vec<&str> = columns
        .iter()
        .map(|c| c.split_whitespace().next().unwrap_or(c))
        .collect();
    let name = format!("{table}_{}_idx", name_parts.join("_"));
    let cols: Vec<String> = columns
        .iter()
        .map(|c| match c.split_once(' ') {
            Some((col, dir)) => format!("{} {dir}", quote(col)),
            None => quote(c),
        })
        .collect();
    let mut create_index = format!(
        "CREATE INDEX {} ON {} ({})",
        quote(&name),
        // An index on the queryset's own table goes in its schema.
        match &context.schema {
            Some(schema) if context.table.as_ref() == Some(&table) => {
                format!("{}.{}", quote(schema), quote(&table))
            }
            _ => quote(&table),
        },
        cols.join(", ")
    );
    if let Some(p) = &partial {
        create_index.push_str(" WHERE ");
        create_index.push_str(p);
    }
    Advice {
        kind,
        table,
        columns,
        partial,
        create_index,
        reason,
    }
}

/// An identifier as SQL text: bare when it is a plain lowercase name, else quoted.
fn quote(ident: &str) -> String {
    let plain = ident
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        ident.to_owned()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

/// `weave_message.updated DESC` -> `updated DESC`.
fn unqualify_key(key: &str) -> String {
    let (column, rest) = match key.split_once(' ') {
        Some((c, r)) => (c, Some(r)),
        None => (key, None),
    };
    let column = column
        .rsplit('.')
        .next()
        .unwrap_or(column)
        .trim_matches('"');
    match rest {
        Some(r) => format!("{column} {r}"),
        None => column.to_owned(),
    }
}

/// What a PostgreSQL filter tests: the columns compared, and a boolean column held
/// constant (`NOT deleted`), which makes a partial index.
#[derive(Debug, Default, PartialEq)]
struct Conditions {
    columns: Vec<String>,
    constant_flag: Option<(String, bool)>,
}

impl Conditions {
    fn parse(filter: &str) -> Self {
        let mut out = Conditions::default();
        if filter.contains(" OR ") {
            return out;
        }
        for conjunct in filter.split(" AND ") {
            let c = conjunct.trim_matches(|ch: char| ch == '(' || ch == ')' || ch == ' ');
            if let Some(rest) = c.strip_prefix("NOT ") {
                if let Some(col) = whole_identifier(rest) {
                    out.constant_flag.get_or_insert((col, false));
                    continue;
                }
            }
            if let Some(col) = whole_identifier(c) {
                out.constant_flag.get_or_insert((col, true));
                continue;
            }
            if let Some(col) = leading_identifier(c) {
                if !out.columns.contains(&col) {
                    out.columns.push(col);
                }
            }
        }
        out
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '"'
}

/// The column when `s` is just a (qualified) identifier.
fn whole_identifier(s: &str) -> Option<String> {
    let s = s.trim_matches(|c: char| c == '(' || c == ')');
    (!s.is_empty() && s.chars().all(is_ident_char) && !s.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| last_segment(s))
}

/// The first identifier of a comparison: `(weave_message.text)::text ~~ ...` -> `text`.
fn leading_identifier(s: &str) -> Option<String> {
    let s = s.trim_start_matches('(');
    if s.starts_with(|c: char| c.is_ascii_digit() || c == '\'') {
        return None;
    }
    let ident: String = s.chars().take_while(|c| is_ident_char(*c)).collect();
    (!ident.is_empty()).then(|| last_segment(&ident))
}

fn last_segment(s: &str) -> String {
    s.rsplit('.')
        .next()
        .unwrap_or(s)
        .trim_matches('"')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_yield_columns_and_the_constant_flag() {
        assert_eq!(
            Conditions::parse(
                "((NOT weave_message.deleted) AND ((weave_message.text)::text ~~ 'What%'::text))"
            ),
            Conditions {
                columns: vec!["text".into()],
                constant_flag: Some(("deleted".into(), false)),
            }
        );
        assert_eq!(
            Conditions::parse("(weave_message.thread_id = 3)").columns,
            ["thread_id"]
        );
        assert_eq!(
            Conditions::parse("(a = 1) OR (b = 2)"),
            Conditions::default()
        );
    }

    #[test]
    fn suggested_statements_quote_odd_names() {
        let a = build(
            AdviceKind::SortForLimit { rows_sorted: None },
            &PlanContext::default(),
            "Weird".into(),
            vec!["updated DESC".into()],
            Some("deleted = false".into()),
            String::new(),
        );
        assert_eq!(
            a.create_index,
            r#"CREATE INDEX "Weird_updated_idx" ON "Weird" (updated DESC) WHERE deleted = false"#
        );
        assert_eq!(unqualify_key("weave_message.updated DESC"), "updated DESC");
    }
}
