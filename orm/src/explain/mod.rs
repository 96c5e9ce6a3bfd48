//! EXPLAIN as data: the database's plan for a queryset, as a tree you can assert on.
//!
//! | you want | call | sends |
//! |---|---|---|
//! | the plan of `all()` | [`QuerySet::explain`](crate::QuerySet::explain) | PostgreSQL `EXPLAIN (COSTS, VERBOSE, FORMAT JSON) SELECT ...`; SQLite `EXPLAIN QUERY PLAN SELECT ...` |
//! | the plan with actual rows and times | [`QuerySet::explain_analyze`](crate::QuerySet::explain_analyze) | `EXPLAIN (ANALYZE, COSTS, VERBOSE, BUFFERS, FORMAT JSON) ...` inside a transaction that is rolled back |
//! | chosen options | [`QuerySet::explain_with`](crate::QuerySet::explain_with) + [`ExplainOptions`] | |
//! | the plan of `count()` | [`QuerySet::explain_count`](crate::QuerySet::explain_count) | |
//! | the plan of a write | [`QuerySet::explain_delete`](crate::QuerySet::explain_delete), [`QuerySet::explain_hard_delete`](crate::QuerySet::explain_hard_delete), [`QuerySet::explain_update`](crate::QuerySet::explain_update) | never applied |
//! | a JOIN's plan | [`Related::explain`](crate::relations::Related::explain) | |
//! | each prefetch hop's plan | [`Prefetched::explain`](crate::relations::Prefetched::explain) | |
//! | a captured statement's plan | [`explain_recorded`] | only SELECTs, binds re-bound |
//!
//! The statement is wrapped by a prefix node, so its values stay bound parameters.
//! A [`Plan`] is a tree of [`PlanNode`]s with a [`NodeKind`] each; the helpers
//! [`Plan::uses_index`], [`Plan::has_seq_scan`] and [`Plan::scan_kinds`] make tests
//! short, and [`Plan::advice`] suggests indexes for the patterns that cost most.

mod advice;
mod options;
mod plan;
mod queryset;
mod replay;
mod statement;

pub use advice::{Advice, AdviceKind, AdviceThresholds};
pub use options::ExplainOptions;
pub use plan::{NodeKind, Plan, PlanNode};
pub use replay::{explain_recorded, ReplayRefusal};
