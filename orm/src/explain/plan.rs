//! The plan tree and its parsers (PostgreSQL JSON, SQLite `EXPLAIN QUERY PLAN` rows).

use serde::Serialize;
use serde_json::Value;

use super::advice::{advise, Advice, AdviceThresholds};
use super::options::ExplainOptions;
use crate::connection::Backend;
use crate::error::{Error, Result};

/// What a plan node does. PostgreSQL's node types and SQLite's plan lines map onto
/// one enum; a type this library does not name is kept as [`NodeKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// Reads the whole table (PostgreSQL `Seq Scan`).
    SeqScan,
    /// Walks an index, then fetches each row from the table.
    IndexScan,
    /// Answers from the index alone (PostgreSQL `Index Only Scan`).
    IndexOnlyScan,
    /// Fetches the table pages a bitmap index scan marked.
    BitmapHeapScan,
    /// Marks matching rows in a bitmap from an index.
    BitmapIndexScan,
    /// Sorts its input.
    Sort,
    /// Sorts input already sorted by a prefix of the keys.
    IncrementalSort,
    /// `COUNT`, `SUM`, `GROUP BY`, ...
    Aggregate,
    /// `LIMIT` / `OFFSET`.
    Limit,
    /// Nested-loop join.
    NestedLoop,
    /// Hash join.
    HashJoin,
    /// Merge join.
    MergeJoin,
    /// Builds the hash table of a hash join.
    Hash,
    /// Keeps its input in memory for re-reads.
    Materialize,
    /// Caches inner rows of a nested loop by key.
    Memoize,
    /// Parallel workers' rows gathered (`Gather`, `Gather Merge`).
    Gather,
    /// A computed row with no table (`Result`).
    Result,
    /// `INSERT`, `UPDATE` or `DELETE` (PostgreSQL `ModifyTable`).
    ModifyTable,
    /// Removes duplicates (`DISTINCT`).
    Unique,
    /// A subquery in `FROM` (`Subquery Scan`).
    SubqueryScan,
    /// SQLite `SCAN t`: every row of the table, or of an index when
    /// [`PlanNode::index`] is set.
    Scan,
    /// SQLite `SEARCH t USING ...`: the rows an index or the primary key finds.
    Search,
    /// SQLite `USE TEMP B-TREE FOR ORDER BY` (or `GROUP BY`, `DISTINCT`): a sort.
    TempBTree,
    /// Anything else, with the database's own name.
    Other(String),
}

impl NodeKind {
    fn from_postgres(node_type: &str) -> Self {
        match node_type {
            "Seq Scan" => Self::SeqScan,
            "Index Scan" => Self::IndexScan,
            "Index Only Scan" => Self::IndexOnlyScan,
            "Bitmap Heap Scan" => Self::BitmapHeapScan,
            "Bitmap Index Scan" => Self::BitmapIndexScan,
            "Sort" => Self::Sort,
            "Incremental Sort" => Self::IncrementalSort,
            "Aggregate" => Self::Aggregate,
            "Limit" => Self::Limit,
            "Nested Loop" => Self::NestedLoop,
            "Hash Join" => Self::HashJoin,
            "Merge Join" => Self::MergeJoin,
            "Hash" => Self::Hash,
            "Materialize" => Self::Materialize,
            "Memoize" => Self::Memoize,
            "Gather" | "Gather Merge" => Self::Gather,
            "Result" => Self::Result,
            "ModifyTable" => Self::ModifyTable,
            "Unique" => Self::Unique,
            "Subquery Scan" => Self::SubqueryScan,
            other => Self::Other(other.to_owned()),
        }
    }

    /// True for the kinds that read a table or an index.
    pub fn is_scan(&self) -> bool {
        matches!(
            self,
            Self::SeqScan
                | Self::IndexScan
                | Self::IndexOnlyScan
                | Self::BitmapHeapScan
                | Self::BitmapIndexScan
                | Self::Scan
                | Self::Search
        )
    }

    /// True for the kinds that sort.
    pub fn is_sort(&self) -> bool {
        matches!(self, Self::Sort | Self::IncrementalSort | Self::TempBTree)
    }
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SeqScan => "Seq Scan",
            Self::IndexScan => "Index Scan",
            Self::IndexOnlyScan => "Index Only Scan",
            Self::BitmapHeapScan => "Bitmap Heap Scan",
            Self::BitmapIndexScan => "Bitmap Index Scan",
            Self::Sort => "Sort",
            Self::IncrementalSort => "Incremental Sort",
            Self::Aggregate => "Aggregate",
            Self::Limit => "Limit",
            Self::NestedLoop => "Nested Loop",
            Self::HashJoin => "Hash Join",
            Self::MergeJoin => "Merge Join",
            Self::Hash => "Hash",
            Self::Materialize => "Materialize",
            Self::Memoize => "Memoize",
            Self::Gather => "Gather",
            Self::Result => "Result",
            Self::ModifyTable => "ModifyTable",
            Self::Unique => "Unique",
            Self::SubqueryScan => "Subquery Scan",
            Self::Scan => "SCAN",
            Self::Search => "SEARCH",
            Self::TempBTree => "TEMP B-TREE",
            Self::Other(name) => name,
        })
    }
}

impl Serialize for NodeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One node of a plan. Fields a backend does not report are `None` (SQLite gives
/// no row counts or costs).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PlanNode {
    /// What the node does.
    pub kind: NodeKind,
    /// The database's own line for it (PostgreSQL node type, SQLite detail text).
    pub label: String,
    /// The table read, for scans.
    pub relation: Option<String>,
    /// The index used, for index scans (SQLite: `USING [COVERING] INDEX name`).
    pub index: Option<String>,
    /// True when the index alone answers (index-only scan, SQLite covering index).
    pub covering: bool,
    /// The planner's estimate of the rows this node returns.
    pub estimated_rows: Option<f64>,
    /// The planner's total cost estimate.
    pub estimated_cost: Option<f64>,
    /// Rows actually returned, per loop (ANALYZE).
    pub actual_rows: Option<f64>,
    /// How many times the node ran (ANALYZE).
    pub actual_loops: Option<f64>,
    /// Milliseconds until the last row, per loop (ANALYZE with timing).
    pub actual_time_ms: Option<f64>,
    /// The condition rows were filtered by after reading them.
    pub filter: Option<String>,
    /// Rows read and thrown away by [`filter`](Self::filter) (ANALYZE).
    pub rows_removed_by_filter: Option<f64>,
    /// The condition an index was searched with.
    pub index_condition: Option<String>,
    /// Sort keys, for sorts (PostgreSQL).
    pub sort_keys: Vec<String>,
    /// The nodes feeding this one.
    pub children: Vec<PlanNode>,
}

impl PlanNode {
    fn new(kind: NodeKind, label: String) -> Self {
        Self {
            kind,
            label,
            relation: None,
            index: None,
            covering: false,
            estimated_rows: None,
            estimated_cost: None,
            actual_rows: None,
            actual_loops: None,
            actual_time_ms: None,
            filter: None,
            rows_removed_by_filter: None,
            index_condition: None,
            sort_keys: Vec::new(),
            children: Vec::new(),
        }
    }

    /// This node and every node under it, depth first.
    pub fn walk(&self) -> Vec<&PlanNode> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.walk());
        }
        out
    }

    /// `Seq Scan on weave_message`, `Index Only Scan using soft_deletes_ignore on
    /// weave_message`, `SEARCH weave_person USING INTEGER PRIMARY KEY (rowid=?)`.
    pub fn describe(&self) -> String {
        if matches!(
            self.kind,
            NodeKind::Scan | NodeKind::Search | NodeKind::TempBTree
        ) || matches!(self.kind, NodeKind::Other(_)) && self.relation.is_none()
        {
            return self.label.clone();
        }
        let mut s = self.kind.to_string();
        if let Some(index) = &self.index {
            s.push_str(" using ");
            s.push_str(index);
        }
        if let Some(relation) = &self.relation {
            s.push_str(" on ");
            s.push_str(relation);
        }
        s
    }

    fn from_postgres(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| value.get(key).and_then(Value::as_f64);
        let node_type = text("Node Type").unwrap_or_default();
        let mut node = PlanNode::new(NodeKind::from_postgres(&node_type), node_type);
        node.relation = text("Relation Name");
        node.index = text("Index Name");
        node.covering = node.kind == NodeKind::IndexOnlyScan;
        node.estimated_rows = number("Plan Rows");
        node.estimated_cost = number("Total Cost");
        node.actual_rows = number("Actual Rows");
        node.actual_loops = number("Actual Loops");
        node.actual_time_ms = number("Actual Total Time");
        node.filter = text("Filter");
        node.rows_removed_by_filter = number("Rows Removed by Filter");
        node.index_condition = text("Index Cond");
        node.sort_keys = value
            .get("Sort Key")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if node.kind == NodeKind::ModifyTable {
            node.label = format!("{} ({})", node.label, text("Operation").unwrap_or_default());
        }
        node.children = value
            .get("Plans")
            .and_then(Value::as_array)
            .map(|plans| plans.iter().map(PlanNode::from_postgres).collect())
            .unwrap_or_default();
        node
    }

    /// One SQLite plan line: `SCAN t`, `SEARCH t USING INDEX i (a=?)`,
    /// `SCAN t USING COVERING INDEX i`, `USE TEMP B-TREE FOR ORDER BY`, ...
    fn from_sqlite(detail: &str) -> Self {
        let mut words = detail.split_whitespace();
        let kind = match words.next() {
            Some("SCAN") => NodeKind::Scan,
            Some("SEARCH") => NodeKind::Search,
            Some("USE") if detail.starts_with("USE TEMP B-TREE") => NodeKind::TempBTree,
            _ => NodeKind::Other(detail.to_owned()),
        };
        let mut node = PlanNode::new(kind, detail.to_owned());
        if matches!(node.kind, NodeKind::Scan | NodeKind::Search) {
            node.relation = words.next().map(str::to_owned);
            if let Some(rest) = detail.split_once(" USING ").map(|(_, r)| r) {
                let (index, covering) = if let Some(r) = rest.strip_prefix("COVERING INDEX ") {
                    (r.split_whitespace().next(), true)
                } else if let Some(r) = rest.strip_prefix("INDEX ") {
                    (r.split_whitespace().next(), false)
                } else {
                    (None, false)
                };
                node.index = index.map(str::to_owned);
                node.covering = covering;
            }
            if let (Some(open), true) = (detail.find(" ("), detail.ends_with(')')) {
                node.index_condition = Some(detail[open + 2..detail.len() - 1].to_owned());
            }
        }
        node
    }
}

/// What the library knew about the statement it explained: lets advice name
/// columns when the plan does not (SQLite's plan never names ORDER BY columns).
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PlanContext {
    /// The queryset's table.
    pub(crate) table: Option<String>,
    /// Its schema, when the model's table is declared with one (`"s"."t"`).
    pub(crate) schema: Option<String>,
    /// `ORDER BY` columns and whether each is descending.
    pub(crate) order: Vec<(String, bool)>,
    /// True when the statement has a `LIMIT`.
    pub(crate) limited: bool,
    /// The soft-delete column when the statement filters it to `false`.
    pub(crate) live_rows_of: Option<String>,
}

/// A query plan as data.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// use orm::explain::NodeKind;
/// # conn.batch_execute("CREATE INDEX weave_message_thread_id ON weave_message (thread_id)").unwrap();
/// let plan = Message::objects().filter(weave_message::thread_id.eq(1)).explain(&mut conn)?;
/// assert!(plan.uses_index("weave_message_thread_id"));
/// assert!(!plan.has_seq_scan("weave_message"));
/// assert_eq!(plan.scan_kinds(), [NodeKind::Search]);
/// assert_eq!(
///     plan.summary(),
///     "SEARCH weave_message USING INDEX weave_message_thread_id (thread_id=?) → USE TEMP B-TREE FOR ORDER BY"
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The backend that planned it.
    pub backend: Backend,
    /// The statement explained, with placeholders.
    pub sql: String,
    /// The options asked for.
    pub options: ExplainOptions,
    /// The top node. SQLite plans with several top lines get a `QUERY PLAN` root.
    pub root: PlanNode,
    /// Planning time in milliseconds (PostgreSQL with ANALYZE).
    pub planning_ms: Option<f64>,
    /// Execution time in milliseconds (PostgreSQL with ANALYZE).
    pub execution_ms: Option<f64>,
    /// The database's own output: PostgreSQL's JSON, or SQLite's rows as
    /// `id|parent|notused|detail` lines.
    pub raw: String,
    #[serde(skip)]
    pub(crate) context: PlanContext,
}

impl Plan {
    pub(crate) fn from_postgres_json(
        json: &str,
        sql: String,
        options: ExplainOptions,
        context: PlanContext,
    ) -> Result<Plan> {
        let malformed = |reason| Error::PlanFormat {
            backend: Backend::Postgres,
            reason,
        };
        let value: Value =
            serde_json::from_str(json).map_err(|_| malformed("output is not JSON"))?;
        let top = value
            .as_array()
            .and_then(|a| a.first())
            .ok_or(malformed("expected a JSON array with one plan"))?;
        let root = top
            .get("Plan")
            .ok_or(malformed("the JSON has no \"Plan\" key"))?;
        Ok(Plan {
            backend: Backend::Postgres,
            sql,
            options,
            root: PlanNode::from_postgres(root),
            planning_ms: top.get("Planning Time").and_then(Value::as_f64),
            execution_ms: top.get("Execution Time").and_then(Value::as_f64),
            raw: json.to_owned(),
            context,
        })
    }

    pub(crate) fn from_sqlite_rows(
        rows: &[(i32, i32, i32, String)],
        sql: String,
        context: PlanContext,
    ) -> Plan {
        fn children_of(rows: &[(i32, i32, i32, String)], parent: i32) -> Vec<PlanNode> {
            rows.iter()
                .filter(|(id, p, _, _)| *p == parent && *id != parent)
                .map(|(id, _, _, detail)| {
                    let mut node = PlanNode::new_sqlite(detail);
                    node.children = children_of(rows, *id);
                    node
                })
                .collect()
        }
        let mut top = children_of(rows, 0);
        let root = if top.len() == 1 {
            top.remove(0)
        } else {
            let mut root = PlanNode::new(
                NodeKind::Other("QUERY PLAN".to_owned()),
                "QUERY PLAN".to_owned(),
            );
            root.children = top;
            root
        };
        let raw = rows
            .iter()
            .map(|(id, parent, notused, detail)| format!("{id}|{parent}|{notused}|{detail}"))
            .collect::<Vec<_>>()
            .join("\n");
        Plan {
            backend: Backend::Sqlite,
            sql,
            options: ExplainOptions::new(),
            root,
            planning_ms: None,
            execution_ms: None,
            raw,
            context,
        }
    }

    /// Every node, depth first from the root.
    pub fn nodes(&self) -> Vec<&PlanNode> {
        let mut nodes = self.root.walk();
        // A synthetic SQLite root is not a node of the database's plan.
        if matches!(&self.root.kind, NodeKind::Other(n) if n == "QUERY PLAN") {
            nodes.remove(0);
        }
        nodes
    }

    /// True when some node reads the index `name`.
    pub fn uses_index(&self, name: &str) -> bool {
        self.nodes()
            .iter()
            .any(|n| n.index.as_deref() == Some(name))
    }

    /// True when some node reads every row of `table` without an index: PostgreSQL
    /// `Seq Scan`, SQLite `SCAN table` with no `USING ... INDEX`.
    pub fn has_seq_scan(&self, table: &str) -> bool {
        self.nodes().iter().any(|n| {
            n.relation.as_deref() == Some(table)
                && (n.kind == NodeKind::SeqScan || n.kind == NodeKind::Scan && n.index.is_none())
        })
    }

    /// The kinds of the nodes that read a table or an index, depth first.
    pub fn scan_kinds(&self) -> Vec<NodeKind> {
        self.nodes()
            .into_iter()
            .filter(|n| n.kind.is_scan())
            .map(|n| n.kind.clone())
            .collect()
    }

    /// True when the plan ran (ANALYZE): actual rows and times are filled in.
    pub fn is_analyzed(&self) -> bool {
        self.options.analyze
    }

    /// One line for logs and the profile report: the nodes depth first, then rows
    /// and time where known.
    ///
    /// `Aggregate → Index Only Scan using soft_deletes_ignore on weave_message; est. 1 row`
    pub fn summary(&self) -> String {
        let mut s = self
            .nodes()
            .iter()
            .map(|n| n.describe())
            .collect::<Vec<_>>()
            .join(" → ");
        let root = &self.root;
        let plural = |rows: f64| if rows == 1.0 { "row" } else { "rows" };
        if let Some(rows) = root.actual_rows {
            s.push_str(&format!("; {} {}", rows.round(), plural(rows)));
        } else if let Some(rows) = root.estimated_rows {
            s.push_str(&format!("; est. {} {}", rows.round(), plural(rows)));
        }
        if let Some(ms) = self.execution_ms {
            s.push_str(&format!(" in {ms:.3} ms"));
        }
        s
    }

    /// The plan as an indented tree, one node a line, with estimates and actuals.
    pub fn tree(&self) -> String {
        fn line(node: &PlanNode, depth: usize, out: &mut String) {
            out.push_str(&"  ".repeat(depth));
            if depth > 0 {
                out.push_str("-> ");
            }
            out.push_str(&node.describe());
            let mut facts = Vec::new();
            if let Some(rows) = node.estimated_rows {
                facts.push(format!("est. rows={rows}"));
            }
            if let Some(cost) = node.estimated_cost {
                facts.push(format!("cost={cost}"));
            }
            if let Some(rows) = node.actual_rows {
                facts.push(format!("actual rows={rows}"));
            }
            if let Some(ms) = node.actual_time_ms {
                facts.push(format!("time={ms} ms"));
            }
            if let Some(loops) = node.actual_loops.filter(|l| *l != 1.0) {
                facts.push(format!("loops={loops}"));
            }
            if !facts.is_empty() {
                out.push_str(&format!("  ({})", facts.join(", ")));
            }
            out.push('\n');
            let pad = "  ".repeat(depth + 2);
            if let Some(c) = &node.index_condition {
                out.push_str(&format!("{pad}Index Cond: {c}\n"));
            }
            if let Some(f) = &node.filter {
                out.push_str(&format!("{pad}Filter: {f}"));
                if let Some(removed) = node.rows_removed_by_filter {
                    out.push_str(&format!(" (removed {removed} rows)"));
                }
                out.push('\n');
            }
            if !node.sort_keys.is_empty() {
                out.push_str(&format!("{pad}Sort Key: {}\n", node.sort_keys.join(", ")));
            }
            for child in &node.children {
                line(child, depth + 1, out);
            }
        }
        let mut out = String::new();
        for node in self.top_nodes() {
            line(node, 0, &mut out);
        }
        if let Some(ms) = self.planning_ms {
            out.push_str(&format!("Planning Time: {ms} ms\n"));
        }
        if let Some(ms) = self.execution_ms {
            out.push_str(&format!("Execution Time: {ms} ms\n"));
        }
        out
    }

    fn top_nodes(&self) -> Vec<&PlanNode> {
        if matches!(&self.root.kind, NodeKind::Other(n) if n == "QUERY PLAN") {
            self.root.children.iter().collect()
        } else {
            vec![&self.root]
        }
    }

    /// Index suggestions for the costly patterns in this plan, with the default
    /// thresholds. Advice from one plan: see [`Advice`].
    pub fn advice(&self) -> Vec<Advice> {
        advise(self, &AdviceThresholds::default())
    }

    /// Index suggestions with chosen thresholds.
    pub fn advice_with(&self, thresholds: &AdviceThresholds) -> Vec<Advice> {
        advise(self, thresholds)
    }

    pub(crate) fn context(&self) -> &PlanContext {
        &self.context
    }
}

impl PlanNode {
    fn new_sqlite(detail: &str) -> Self {
        Self::from_sqlite(detail)
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tree())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_lines_are_parsed_into_scan_kinds_and_indexes() {
        let n = PlanNode::from_sqlite(
            "SEARCH weave_message USING COVERING INDEX weave_message_deleted (deleted=?)",
        );
        assert_eq!(n.kind, NodeKind::Search);
        assert_eq!(n.relation.as_deref(), Some("weave_message"));
        assert_eq!(n.index.as_deref(), Some("weave_message_deleted"));
        assert!(n.covering);
        assert_eq!(n.index_condition.as_deref(), Some("deleted=?"));
        let n = PlanNode::from_sqlite("SEARCH weave_person USING INTEGER PRIMARY KEY (rowid=?)");
        assert_eq!(n.index, None);
        assert_eq!(n.index_condition.as_deref(), Some("rowid=?"));
        let n = PlanNode::from_sqlite("SCAN weave_message");
        assert_eq!((n.kind, n.index), (NodeKind::Scan, None));
        assert_eq!(
            PlanNode::from_sqlite("USE TEMP B-TREE FOR ORDER BY").kind,
            NodeKind::TempBTree
        );
    }

    #[test]
    fn sqlite_rows_nest_by_parent() {
        let rows = vec![
            (2, 0, 0, "SCAN weave_message".to_owned()),
            (
                5,
                0,
                0,
                "SEARCH weave_person USING INTEGER PRIMARY KEY (rowid=?)".to_owned(),
            ),
            (9, 0, 0, "USE TEMP B-TREE FOR ORDER BY".to_owned()),
        ];
        let plan = Plan::from_sqlite_rows(&rows, String::new(), PlanContext::default());
        assert_eq!(plan.nodes().len(), 3);
        assert!(plan.has_seq_scan("weave_message"));
        assert!(!plan.has_seq_scan("weave_person"));
        assert_eq!(plan.scan_kinds(), [NodeKind::Scan, NodeKind::Search]);
        assert_eq!(plan.raw.lines().next(), Some("2|0|0|SCAN weave_message"));
    }

    #[test]
    fn postgres_json_is_parsed_recursively() {
        let json = r#"[{"Plan": {"Node Type": "Limit", "Plan Rows": 10, "Total Cost": 5.5, "Actual Rows": 10, "Plans": [
            {"Node Type": "Sort", "Sort Key": ["weave_message.updated DESC"], "Plan Rows": 5000, "Plans": [
              {"Node Type": "Seq Scan", "Relation Name": "weave_message", "Filter": "(NOT weave_message.deleted)", "Rows Removed by Filter": 10, "Plan Rows": 5000}]}]},
            "Planning Time": 0.2, "Execution Time": 1.5}]"#;
        let plan = Plan::from_postgres_json(
            json,
            String::new(),
            ExplainOptions::analyze(),
            PlanContext::default(),
        )
        .unwrap();
        assert_eq!(plan.scan_kinds(), [NodeKind::SeqScan]);
        assert!(plan.has_seq_scan("weave_message"));
        assert_eq!(
            plan.root.children[0].sort_keys,
            ["weave_message.updated DESC"]
        );
        assert_eq!(plan.execution_ms, Some(1.5));
        assert_eq!(
            plan.summary(),
            "Limit → Sort → Seq Scan on weave_message; 10 rows in 1.500 ms"
        );
        let err = Plan::from_postgres_json(
            "{}",
            String::new(),
            ExplainOptions::new(),
            PlanContext::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::PlanFormat { .. }));
    }
}
