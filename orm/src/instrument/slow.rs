//! Slow-query warnings through `tracing`.
//!
//! Every statement is logged at debug level (target `orm::query`) with its duration
//! when a subscriber listens at that level. Statements slower than a pool's threshold
//! ([`DatabaseBuilder::slow_query_threshold`](crate::DatabaseBuilder::slow_query_threshold))
//! are also logged at warn level (target `orm::slow_query`), listening scope or not.
//! The threshold belongs to the pool, not to the process: two pools (or two tests)
//! never change each other's. Checking costs one comparison per statement.

use std::panic::Location;
use std::time::Duration;

use crate::connection::Backend;

/// A pool's slow-query settings, copied into each of its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SlowQueries {
    /// Statements at least this slow are warned about; `None`: no warnings.
    pub(crate) threshold: Option<Duration>,
    /// Whether the warning carries the bound values (user data: off by default).
    pub(crate) with_binds: bool,
}

impl SlowQueries {
    pub(crate) fn is_slow(&self, duration: Duration) -> bool {
        self.threshold.is_some_and(|t| duration >= t)
    }

    pub(crate) fn warn(
        &self,
        backend: Backend,
        duration: Duration,
        sql: &str,
        binds: &[String],
        call_site: Option<&'static Location<'static>>,
    ) {
        let site = call_site.map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let call_site = site.as_deref().unwrap_or("unknown");
        if self.with_binds {
            tracing::warn!(
                target: "orm::slow_query",
                %backend,
                ?duration,
                sql = %sql,
                binds = ?binds,
                call_site,
                "slow query"
            );
        } else {
            tracing::warn!(
                target: "orm::slow_query",
                %backend,
                ?duration,
                sql = %sql,
                binds = binds.len(),
                call_site,
                "slow query"
            );
        }
    }
}
