use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::report::Profile;
use crate::explain::ExplainOptions;
use crate::instrument::ScopeGuard;

/// Which statements of a profile get a plan when
/// [`Profile::collect_plans`] runs. One plan per shape (fingerprint), for its
/// slowest statement; only `SELECT`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum PlanPolicy {
    /// No plans (the default).
    Never,
    /// Every shape: ask for it when you are looking at one request.
    EveryShape,
    /// The shapes with a statement at least this slow.
    SlowerThan(Duration),
    /// Every shape, in one profile out of `one_in`, counted per [`Profiler`]
    /// (its clones share the count: build it once, clone it per request); the
    /// others get none.
    Sample {
        /// 1 in how many profiles.
        one_in: u32,
    },
}

/// Settings of a profile: a label, a plan policy, a budget, the N+1 threshold.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::profile::PlanPolicy;
/// use orm::prelude::*;
/// let (threads, mut profile) = orm::Profiler::new("GET /threads/")
///     .plans(PlanPolicy::EveryShape)
///     .max_queries(5)
///     .run(|| Thread::objects().prefetch(Thread::messages()).all(&mut conn));
/// assert_eq!(threads?.len(), 2);
/// assert_eq!(profile.totals.queries, 2);
/// profile.check_budget()?;
/// assert_eq!(profile.collect_plans(&mut conn), 2);
/// assert!(profile.summary().starts_with("GET /threads/: 2 queries"));
/// let html = orm::profile::render_html(&profile);
/// assert!(html.contains("weave_thread"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Profiler {
    label: String,
    plans: PlanPolicy,
    explain: ExplainOptions,
    max_queries: Option<usize>,
    n_plus_one_threshold: usize,
    /// Profiles started by this profiler and its clones, for [`PlanPolicy::Sample`].
    started: Arc<AtomicU64>,
}

impl Profiler {
    /// A profiler whose reports are titled `label` (a route, a job name).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            plans: PlanPolicy::Never,
            explain: ExplainOptions::new(),
            max_queries: None,
            n_plus_one_threshold: 2,
            started: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same settings under another label, sharing the sampling count: a
    /// middleware keeps one profiler and labels each request's clone.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Which statements get plans (default [`PlanPolicy::Never`]).
    #[must_use]
    pub fn plans(mut self, policy: PlanPolicy) -> Self {
        self.plans = policy;
        self
    }

    /// The EXPLAIN options for plans (default [`ExplainOptions::new`]: estimates,
    /// nothing re-run). With `analyze` each selected `SELECT` runs again, inside a
    /// rolled-back transaction.
    #[must_use]
    pub fn explain_options(mut self, options: ExplainOptions) -> Self {
        self.explain = options;
        self
    }

    /// The scope may send at most `n` data statements; see [`Profile::check_budget`].
    #[must_use]
    pub fn max_queries(mut self, n: usize) -> Self {
        self.max_queries = Some(n);
        self
    }

    /// One shape sent this many times from one call site is reported as N+1
    /// (default 2).
    #[must_use]
    pub fn n_plus_one_threshold(mut self, n: usize) -> Self {
        self.n_plus_one_threshold = n.max(2);
        self
    }

    /// Profiles `f`.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> (R, Profile) {
        let scope = self.start();
        let value = f();
        (value, scope.finish())
    }

    /// Profiles an async `future` (a request's handler): every statement it sends,
    /// from whichever thread polls it and from the workers of
    /// [`Database::run`](crate::Database::run), across its `.await`s.
    #[cfg(feature = "tokio")]
    pub async fn run_async<F: std::future::Future>(self, future: F) -> (F::Output, Profile) {
        let sampled = match self.plans {
            PlanPolicy::Sample { one_in } => {
                self.started.fetch_add(1, Ordering::Relaxed) % u64::from(one_in.max(1)) == 0
            }
            _ => true,
        };
        let started_wall = chrono::Utc::now();
        let origin = std::time::Instant::now();
        let (value, captured) = crate::asynch::capture_async(future).await;
        let Profiler {
            label,
            plans,
            explain,
            max_queries,
            n_plus_one_threshold,
            started: _,
        } = self;
        let policy = if sampled { plans } else { PlanPolicy::Never };
        let profile = Profile::build(
            label,
            started_wall,
            origin,
            captured,
            policy,
            explain,
            max_queries,
            n_plus_one_threshold,
        );
        (value, profile)
    }

    /// Opens a profile on this thread until [`ProfileScope::finish`]: for a
    /// middleware that starts a profile when a request comes in and ends it when the
    /// response goes out. Dropping the scope unfinished discards it.
    pub fn start(self) -> ProfileScope {
        let sampled = match self.plans {
            PlanPolicy::Sample { one_in } => {
                self.started.fetch_add(1, Ordering::Relaxed) % u64::from(one_in.max(1)) == 0
            }
            _ => true,
        };
        ProfileScope {
            profiler: self,
            sampled,
            started_wall: chrono::Utc::now(),
            guard: ScopeGuard::open(),
        }
    }
}

/// An open profile; see [`Profiler::start`].
pub struct ProfileScope {
    profiler: Profiler,
    sampled: bool,
    started_wall: chrono::DateTime<chrono::Utc>,
    guard: ScopeGuard,
}

impl ProfileScope {
    /// Closes the scope and builds its report.
    pub fn finish(self) -> Profile {
        let origin = self.guard.started_at();
        let captured = self.guard.finish();
        let Profiler {
            label,
            plans,
            explain,
            max_queries,
            n_plus_one_threshold,
            started: _,
        } = self.profiler;
        let policy = if self.sampled {
            plans
        } else {
            PlanPolicy::Never
        };
        Profile::build(
            label,
            self.started_wall,
            origin,
            captured,
            policy,
            explain,
            max_queries,
            n_plus_one_threshold,
        )
    }
}

/// Profiles `f` with the default [`Profiler`] (no plans, no budget).
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// let (n, profile) = orm::profile(|| Message::objects().count(&mut conn));
/// assert_eq!(n?, 3);
/// assert_eq!(profile.totals.queries, 1);
/// assert_eq!(profile.queries[0].rows, Some(1));
/// let json: serde_json::Value = serde_json::from_str(&profile.to_json())?;
/// assert_eq!(json["totals"]["queries"], 1);
/// # Ok(()) }
/// ```
pub fn profile<R>(f: impl FnOnce() -> R) -> (R, Profile) {
    Profiler::new("profile").run(f)
}
