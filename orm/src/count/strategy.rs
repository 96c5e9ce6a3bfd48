//! What a count strategy is, and what a count result says about itself.

use std::time::Duration;

use serde::Serialize;

use crate::error::Error;

/// How [`QuerySet::count_with`](crate::QuerySet::count_with) obtains a count.
///
/// | strategy | cost | answer | backends |
/// |---|---|---|---|
/// | [`Exact`](Count::Exact) | scans every matching row | exact | both |
/// | [`ExactWithin`](Count::ExactWithin) | as `Exact`, cancelled at the deadline | exact, or [`Error::CountTimedOut`] | both |
/// | [`AtMost`](Count::AtMost) | reads at most `n + 1` rows | exact up to `n`, else "more than `n`" | both |
/// | [`TableStatistics`](Count::TableStatistics) | one catalog row | the row count of the last `ANALYZE` | both, unfiltered querysets only |
/// | [`Planner`](Count::Planner) | plans the query, runs nothing | the planner's guess | PostgreSQL |
/// | [`Sample`](Count::Sample) | reads `percent` of the table | scaled sample count | PostgreSQL |
///
/// Chain with [`or`](Count::or): the fallback runs when the first strategy times
/// out, is unsupported on the backend, has no statistics, or does not apply to the
/// queryset, and the result records why ([`CountResult::fallbacks`]).
///
/// ```
/// use std::time::Duration;
/// use orm::count::Count;
/// let strategy = Count::ExactWithin(Duration::from_millis(50)).or(Count::Planner).or(Count::AtMost(10_000));
/// assert_eq!(strategy.to_string(), "exact within 50ms, else planner estimate, else exact up to 10000");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Count {
    /// `SELECT COUNT(*)`: always right, as slow as a scan of the matching rows.
    Exact,
    /// An exact count cancelled when `Duration` passes ([`Error::CountTimedOut`]).
    /// PostgreSQL: `SET LOCAL statement_timeout` inside a transaction (the smallest
    /// timeout is 1 ms). SQLite: a deadline check evaluated for every row the scan
    /// visits.
    ExactWithin(Duration),
    /// `SELECT COUNT(*) FROM (SELECT 1 ... LIMIT n + 1)`: exact when there are at
    /// most `n` rows, otherwise "more than `n`".
    AtMost(u64),
    /// The table's row count from the statistics of the last `ANALYZE`
    /// (PostgreSQL `pg_class.reltuples`, SQLite `sqlite_stat1`). Only for a
    /// queryset with no filter at all (soft-delete models: `with_deleted()`).
    TableStatistics,
    /// The planner's row estimate for the queryset with its filters (PostgreSQL
    /// `EXPLAIN (FORMAT JSON)`, top node's "Plan Rows").
    Planner,
    /// Counts a `TABLESAMPLE` of `percent` percent of the table with the queryset's
    /// filters applied, scaled by `100 / percent`. `REPEATABLE(seed)` makes it
    /// deterministic for an unchanged table.
    Sample {
        /// `BERNOULLI` (rows) or `SYSTEM` (pages).
        method: SampleMethod,
        /// The share of the table to read, in `(0, 100]`.
        percent: f64,
        /// The `REPEATABLE` seed.
        seed: f64,
    },
    /// The first strategy, else the second (see [`Count::or`]).
    Or(Box<Count>, Box<Count>),
}

/// The `TABLESAMPLE` method of [`Count::Sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleMethod {
    /// Each row with probability `percent / 100`: accurate, but reads every page.
    Bernoulli,
    /// Whole pages with probability `percent / 100`: fast, clumpy on clustered data.
    System,
}

impl Count {
    /// `self`, or `fallback` when `self` cannot answer (timed out, unsupported,
    /// no statistics, not applicable). Database errors are not hidden.
    #[must_use]
    pub fn or(self, fallback: Count) -> Count {
        Count::Or(Box::new(self), Box::new(fallback))
    }

    /// [`Count::Sample`] with `BERNOULLI` and seed 0.
    pub fn bernoulli(percent: f64) -> Count {
        Count::Sample {
            method: SampleMethod::Bernoulli,
            percent,
            seed: 0.0,
        }
    }

    /// [`Count::Sample`] with `SYSTEM` and seed 0.
    pub fn system(percent: f64) -> Count {
        Count::Sample {
            method: SampleMethod::System,
            percent,
            seed: 0.0,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact => f.write_str("exact"),
            Count::ExactWithin(d) => write!(f, "exact within {d:?}"),
            Count::AtMost(n) => write!(f, "exact up to {n}"),
            Count::TableStatistics => f.write_str("table statistics"),
            Count::Planner => f.write_str("planner estimate"),
            Count::Sample {
                method, percent, ..
            } => write!(f, "{percent}% {method:?} sample"),
            Count::Or(a, b) => write!(f, "{a}, else {b}"),
        }
    }
}

/// How a count was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CountMethod {
    /// `COUNT(*)`, with or without a deadline.
    Exact,
    /// `COUNT(*)` over at most `limit + 1` rows.
    Capped {
        /// The cap `n` of [`Count::AtMost`].
        limit: u64,
    },
    /// Table statistics.
    TableStatistics,
    /// The planner's estimate.
    Planner,
    /// A scaled `TABLESAMPLE`.
    Sample {
        /// `BERNOULLI` or `SYSTEM`.
        sample: SampleMethod,
        /// The share read, in percent.
        percent: f64,
    },
}

/// Why a strategy of a [`Count::or`] chain gave way to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// The deadline passed ([`Error::CountTimedOut`]).
    TimedOut,
    /// The backend lacks the method ([`Error::Unsupported`]).
    Unsupported,
    /// No statistics yet ([`Error::NoStatistics`]).
    NoStatistics,
    /// The method cannot count this queryset ([`Error::CountNotApplicable`]).
    NotApplicable,
}

impl FallbackReason {
    /// The reason an error lets a chain fall back, or `None` when it must surface.
    pub(crate) fn of(error: &Error) -> Option<Self> {
        match error {
            Error::CountTimedOut { .. } => Some(Self::TimedOut),
            Error::Unsupported { .. } => Some(Self::Unsupported),
            Error::NoStatistics { .. } => Some(Self::NoStatistics),
            Error::CountNotApplicable { .. } => Some(Self::NotApplicable),
            _ => None,
        }
    }
}

/// One strategy that gave way, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fallback {
    /// The strategy that could not answer, as text (`"exact within 50ms"`).
    pub strategy: String,
    /// Why.
    pub reason: FallbackReason,
}

/// A count and how it was obtained.
///
/// Serialises as `{"value": 7, "exact": true, "more": false, "method": {"method":
/// "exact"}, "fallbacks": []}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountResult {
    /// The number of rows (an estimate when `exact` is false; with `more`, a lower
    /// bound).
    pub value: i64,
    /// True when `value` is the exact count.
    pub exact: bool,
    /// True when there are more than `value` rows ([`Count::AtMost`] hit its cap).
    pub more: bool,
    /// The method that produced `value`.
    pub method: CountMethod,
    /// The strategies tried before, in order, that could not answer.
    pub fallbacks: Vec<Fallback>,
}

impl CountResult {
    pub(crate) fn new(value: i64, exact: bool, method: CountMethod) -> Self {
        Self {
            value,
            exact,
            more: false,
            method,
            fallbacks: Vec::new(),
        }
    }

    /// True when a strategy of the chain gave way to a fallback.
    pub fn fell_back(&self) -> bool {
        !self.fallbacks.is_empty()
    }
}

impl std::fmt::Display for CountResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.exact, self.more) {
            (_, true) => write!(f, "more than {}", self.value),
            (true, false) => write!(f, "{}", self.value),
            (false, false) => write!(f, "about {}", self.value),
        }
    }
}
