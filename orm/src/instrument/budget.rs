//! Query budgets: a scope declares how many statements it may send, and going over
//! fails with the statements grouped by shape and call site.

use std::collections::HashMap;
use std::panic::Location;
use std::time::Duration;

use serde::Serialize;

use super::capture::{capture, Captured};
use super::record::serialize_location;

/// The statements of one shape (fingerprint) in a scope.
#[derive(Debug, Clone, Serialize)]
pub struct QueryGroup {
    /// The normalised SQL shared by the group.
    pub fingerprint: String,
    /// How many statements.
    pub count: usize,
    /// Their summed duration.
    #[serde(rename = "total_us", serialize_with = "serialize_micros")]
    pub total: Duration,
    /// Where they were sent from, each with how many, most first.
    pub call_sites: Vec<CallSiteCount>,
    /// The SQL of the first one.
    pub sql: String,
}

/// A call site and how many statements of a group it sent.
#[derive(Debug, Clone, Serialize)]
pub struct CallSiteCount {
    /// The source location, where known.
    #[serde(serialize_with = "serialize_location")]
    pub call_site: Option<&'static Location<'static>>,
    /// How many.
    pub count: usize,
}

pub(crate) fn serialize_micros<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl std::fmt::Display for QueryGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} x {}", self.count, self.fingerprint)?;
        for site in &self.call_sites {
            match site.call_site {
                Some(l) => writeln!(
                    f,
                    "      {} x at {}:{}:{}",
                    site.count,
                    l.file(),
                    l.line(),
                    l.column()
                )?,
                None => writeln!(f, "      {} x at an unknown call site", site.count)?,
            }
        }
        Ok(())
    }
}

impl Captured {
    /// The data statements grouped by fingerprint, largest group first (ties in the
    /// order first sent), each with its call sites.
    pub fn groups(&self) -> Vec<QueryGroup> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<QueryGroup> = Vec::new();
        for r in self.all().iter().filter(|r| r.is_data()) {
            let i = *index.entry(r.fingerprint.as_str()).or_insert_with(|| {
                groups.push(QueryGroup {
                    fingerprint: r.fingerprint.clone(),
                    count: 0,
                    total: Duration::ZERO,
                    call_sites: Vec::new(),
                    sql: r.sql.clone(),
                });
                groups.len() - 1
            });
            let group = &mut groups[i];
            group.count += 1;
            group.total += r.duration;
            let same = |s: &CallSiteCount| match (s.call_site, r.call_site) {
                (Some(a), Some(b)) => {
                    (a.file(), a.line(), a.column()) == (b.file(), b.line(), b.column())
                }
                (None, None) => true,
                _ => false,
            };
            match group.call_sites.iter_mut().find(|s| same(s)) {
                Some(site) => site.count += 1,
                None => group.call_sites.push(CallSiteCount {
                    call_site: r.call_site,
                    count: 1,
                }),
            }
        }
        for g in &mut groups {
            g.call_sites.sort_by_key(|s| std::cmp::Reverse(s.count));
        }
        // Stable: equal counts keep the order first sent.
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        groups
    }
}

/// Appends the shapes sent more than once (with their call sites), if any: what a
/// failed count is usually about.
pub(crate) fn write_repeated_shapes(
    f: &mut std::fmt::Formatter<'_>,
    captured: &Captured,
) -> std::fmt::Result {
    let repeated: Vec<QueryGroup> = captured
        .groups()
        .into_iter()
        .filter(|g| g.count > 1)
        .collect();
    if repeated.is_empty() {
        return Ok(());
    }
    writeln!(f, "repeated shapes:")?;
    for g in &repeated {
        write!(f, "  {g}")?;
    }
    Ok(())
}

/// A scope sent more data statements than its budget allowed.
#[derive(Debug, Clone)]
pub struct BudgetExceeded {
    /// The budget.
    pub max: usize,
    /// The statements grouped by shape, largest group first.
    pub groups: Vec<QueryGroup>,
    /// Everything the scope sent.
    pub captured: Captured,
}

impl BudgetExceeded {
    /// The groups for `captured` when it is over `max`, else `None`.
    pub(crate) fn check(max: usize, captured: &Captured) -> Option<Self> {
        (captured.len() > max).then(|| BudgetExceeded {
            max,
            groups: captured.groups(),
            captured: captured.clone(),
        })
    }
}

impl std::fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "query budget exceeded: {} queries, at most {} allowed; by shape:",
            self.captured.len(),
            self.max
        )?;
        for g in &self.groups {
            write!(f, "  {g}")?;
        }
        Ok(())
    }
}

/// Runs `f` and fails with [`Error::QueryBudget`](crate::Error::QueryBudget) when it
/// sent more than `max` data statements (transaction control and pool health checks
/// are not counted). The error groups the statements by fingerprint, with the call
/// sites of each group: the repeated shape stands out.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// let err = orm::instrument::max_queries(2, || -> orm::Result<()> {
///     for thread in Thread::objects().all(&mut conn)? {
///         Message::objects().filter(weave_message::thread_id.eq(thread.id)).count(&mut conn)?;
///     }
///     Ok(())
/// })
/// .unwrap_err();
/// let text = err.to_string();
/// assert!(text.starts_with("query budget exceeded: 3 queries, at most 2 allowed; by shape:\n  2 x SELECT COUNT(*) FROM `weave_message`"));
/// assert!(text.contains("      2 x at "));
///
/// let page = orm::instrument::max_queries(2, || {
///     Thread::objects().prefetch(Thread::messages()).all(&mut conn)
/// })??;
/// assert_eq!(page.len(), 2);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::QueryBudget`](crate::Error::QueryBudget) over budget; `f`'s value is
/// dropped.
pub fn max_queries<R>(max: usize, f: impl FnOnce() -> R) -> crate::Result<R> {
    let (value, captured) = capture(f);
    match BudgetExceeded::check(max, &captured) {
        Some(exceeded) => Err(crate::Error::QueryBudget(Box::new(exceeded))),
        None => Ok(value),
    }
}

/// Asserts that an expression sends at most `n` data statements and evaluates to
/// its value; over budget it panics with the statements grouped by fingerprint and
/// call site.
///
/// ```
/// # fn main() -> orm::Result<()> {
/// use diesel::connection::SimpleConnection;
/// let db = orm::Database::open(":memory:")?;
/// let mut conn = db.get()?;
/// orm::assert_max_queries!(2, conn.batch_execute("CREATE TABLE t (x INTEGER)"))?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! assert_max_queries {
    ($n:expr, $body:expr $(,)?) => {{
        match $crate::instrument::max_queries($n, || $body) {
            Ok(value) => value,
            Err(err) => panic!("{}", err),
        }
    }};
}
