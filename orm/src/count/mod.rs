//! Counting rows at scale: exact, estimated, exact within a deadline, capped.
//!
//! [`QuerySet::count_with`](crate::QuerySet::count_with) takes a [`Count`] strategy
//! and returns a [`CountResult`]: the number and how it was obtained.

mod deadline;
pub(crate) use deadline::timeout_millis;
mod run;
mod statement;
mod strategy;

pub use strategy::{Count, CountMethod, CountResult, Fallback, FallbackReason, SampleMethod};
