//! Slow-query warnings through `tracing`.
//!
//! Every statement is logged at debug level (target `orm::query`) with its duration
//! when a subscriber listens at that level. Statements slower than the threshold set
//! here are also logged at warn level (target `orm::slow_query`), listening scope or
//! not. Checking costs one atomic load per statement.

use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::connection::Backend;

/// Nanoseconds; `u64::MAX` is "off".
static THRESHOLD_NANOS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Warns (target `orm::slow_query`) about every statement that takes at least
/// `threshold`, process-wide; `None` turns the warnings off (the default).
///
/// ```
/// use std::time::Duration;
/// orm::instrument::set_slow_query_threshold(Some(Duration::from_millis(200)));
/// assert_eq!(orm::instrument::slow_query_threshold(), Some(Duration::from_millis(200)));
/// orm::instrument::set_slow_query_threshold(None);
/// assert_eq!(orm::instrument::slow_query_threshold(), None);
/// ```
pub fn set_slow_query_threshold(threshold: Option<Duration>) {
    let nanos = threshold.map_or(u64::MAX, |d| {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    });
    THRESHOLD_NANOS.store(nanos, Ordering::Relaxed);
}

/// The threshold in force, if any.
pub fn slow_query_threshold() -> Option<Duration> {
    match THRESHOLD_NANOS.load(Ordering::Relaxed) {
        u64::MAX => None,
        nanos => Some(Duration::from_nanos(nanos)),
    }
}

pub(crate) fn is_slow(duration: Duration) -> bool {
    let threshold = THRESHOLD_NANOS.load(Ordering::Relaxed);
    threshold != u64::MAX && duration.as_nanos() >= u128::from(threshold)
}

pub(crate) fn warn(
    backend: Backend,
    duration: Duration,
    sql: &str,
    binds: &[String],
    call_site: Option<&'static Location<'static>>,
) {
    let site = call_site.map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    tracing::warn!(
        target: "orm::slow_query",
        %backend,
        ?duration,
        sql = %sql,
        binds = ?binds,
        call_site = site.as_deref().unwrap_or("unknown"),
        "slow query"
    );
}
