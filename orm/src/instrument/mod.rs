//! Query capture: what the code sent to the database, per scope.
//!
//! Every connection of a [`Database`](crate::Database) pool reports each statement to
//! the capture scopes open on the current thread. Outside any scope (and with
//! `tracing` below debug level) nothing is formatted, so capture costs nothing when
//! nobody listens.

mod budget;
mod capture;
mod fingerprint;
mod n_plus_one;
mod record;
mod slow;
pub(crate) mod span;

pub use budget::{max_queries, BudgetExceeded, QueryGroup};
pub use capture::{capture, expect_queries, Captured, QueryCountMismatch};
pub use fingerprint::fingerprint;
pub use n_plus_one::{detect_n_plus_one, NPlusOneMode, NPlusOneReport, Repeated};
pub use record::{QueryKind, QueryRecord};

#[cfg(feature = "tokio")]
pub(crate) use capture::ScopeContext;
pub(crate) use capture::{
    chunked, health_check, note_rows, reading, session, with_call_site, with_site,
    CaptureInstrumentation, ScopeGuard,
};
pub(crate) use record::{bind_facts, split_binds};
pub(crate) use slow::SlowQueries;
