/// Which EXPLAIN to ask for.
///
/// SQLite has one kind of plan (`EXPLAIN QUERY PLAN`) and ignores every option
/// but [`analyze`](Self::analyze), which it does not support. On PostgreSQL the
/// options map onto `EXPLAIN (...)`; the format is always JSON, parsed into a
/// [`Plan`](super::Plan).
///
/// ```
/// use orm::explain::ExplainOptions;
/// assert_eq!(ExplainOptions::new().postgres_prefix(), "EXPLAIN (COSTS, VERBOSE, FORMAT JSON) ");
/// assert_eq!(
///     ExplainOptions::analyze().postgres_prefix(),
///     "EXPLAIN (ANALYZE, COSTS, VERBOSE, BUFFERS, FORMAT JSON) "
/// );
/// assert_eq!(
///     ExplainOptions::analyze().costs(false).timing(false).postgres_prefix(),
///     "EXPLAIN (ANALYZE, COSTS false, VERBOSE, BUFFERS, TIMING false, FORMAT JSON) "
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExplainOptions {
    /// Run the statement and report actual rows and times (`ANALYZE`). Writes are
    /// rolled back. PostgreSQL only.
    pub analyze: bool,
    /// Estimated costs and rows (`COSTS`, on by default).
    pub costs: bool,
    /// Output columns and schema-qualified names (`VERBOSE`).
    pub verbose: bool,
    /// Shared-buffer hits and reads (`BUFFERS`).
    pub buffers: bool,
    /// Per-node timing under `ANALYZE` (`TIMING`, on by default; off is cheaper).
    pub timing: bool,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ExplainOptions {
    /// The plan only, with estimates: the statement does not run.
    pub const fn new() -> Self {
        Self {
            analyze: false,
            costs: true,
            verbose: true,
            buffers: false,
            timing: true,
        }
    }

    /// The plan with actual rows, times and buffers: the statement runs, inside a
    /// transaction that is rolled back.
    pub const fn analyze() -> Self {
        Self {
            analyze: true,
            costs: true,
            verbose: true,
            buffers: true,
            timing: true,
        }
    }

    /// Sets `COSTS`.
    #[must_use]
    pub const fn costs(mut self, on: bool) -> Self {
        self.costs = on;
        self
    }

    /// Sets `VERBOSE`.
    #[must_use]
    pub const fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// Sets `BUFFERS`.
    #[must_use]
    pub const fn buffers(mut self, on: bool) -> Self {
        self.buffers = on;
        self
    }

    /// Sets `TIMING` (meaningful with `ANALYZE`).
    #[must_use]
    pub const fn timing(mut self, on: bool) -> Self {
        self.timing = on;
        self
    }

    /// The PostgreSQL prefix these options render (`EXPLAIN (..., FORMAT JSON) `).
    /// `COSTS` is always written; the other options only when on (`TIMING` only
    /// when off, under `ANALYZE`).
    pub fn postgres_prefix(&self) -> String {
        let mut parts: Vec<&str> = Vec::with_capacity(6);
        if self.analyze {
            parts.push("ANALYZE");
        }
        parts.push(if self.costs { "COSTS" } else { "COSTS false" });
        if self.verbose {
            parts.push("VERBOSE");
        }
        if self.buffers {
            parts.push("BUFFERS");
        }
        if self.analyze && !self.timing {
            parts.push("TIMING false");
        }
        parts.push("FORMAT JSON");
        format!("EXPLAIN ({}) ", parts.join(", "))
    }
}
