//! The profiler: what a scope (an HTTP request, a job, a block) sent to the
//! database, grouped, with N+1 shapes, plans and index advice, as JSON, a text
//! summary and one self-contained HTML page.
//!
//! | you want | call |
//! |---|---|
//! | profile a block | [`profile`](crate::profile()) or [`Profiler::run`] |
//! | profile a request (open here, close there) | [`Profiler::start`] → [`ProfileScope::finish`] |
//! | plans for some statements | [`Profiler::plans`] with a [`PlanPolicy`], then [`Profile::collect_plans`] |
//! | a budget | [`Profiler::max_queries`], then [`Profile::check_budget`] |
//! | output | [`Profile::summary`], [`Profile::to_json`], [`render_html`], [`render_html_list`] |
//!
//! Recording costs what [`capture`](crate::capture()) costs. Plans are never
//! collected blindly: only for the statements the policy selects, one per shape,
//! after the scope has closed, and only for `SELECT`s (see
//! [`explain_recorded`](crate::explain::explain_recorded)).

mod html;
mod profiler;
mod report;

pub use html::{render_html, render_html_list};
pub use profiler::{profile, PlanPolicy, ProfileScope, Profiler};
pub use report::{Profile, ProfiledPlan, ProfiledQuery, Totals};
