use crate::connection::AsConnection;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::profiler::PlanPolicy;
use crate::connection::Backend;
use crate::error::{Error, Result};
use crate::explain::{explain_recorded, Advice, ExplainOptions, Plan};
use crate::instrument::{BudgetExceeded, Captured, QueryGroup, QueryKind, Repeated};

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One statement of a profile.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProfiledQuery {
    /// Its position in the scope (0-based).
    pub index: usize,
    /// The SQL with placeholders.
    pub sql: String,
    /// The bound values' debug text.
    pub binds: Vec<String>,
    /// The normalised SQL of its shape.
    pub fingerprint: String,
    /// Data statement, transaction control or health check.
    pub kind: QueryKind,
    /// Which backend ran it.
    pub backend: Backend,
    /// Microseconds from the scope's start to the statement's start.
    pub start_us: u64,
    /// Its duration in microseconds.
    pub duration_us: u64,
    /// Rows returned or affected, where known.
    pub rows: Option<usize>,
    /// `file:line:column` of the terminal method that sent it, where known.
    pub call_site: Option<String>,
    /// The database's error, if it failed.
    pub error: Option<String>,
    /// True when its shape and call site repeat (N+1).
    pub n_plus_one: bool,
    /// The server it ran on (`primary 127.0.0.1:5432`, `replica 127.0.0.1:5433`).
    pub server: String,
}

/// The totals of a profile.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Totals {
    /// Data statements (what budgets count).
    pub queries: usize,
    /// Every statement, transaction control and health checks included.
    pub statements: usize,
    /// Rows returned or affected, summed where known.
    pub rows: usize,
    /// Summed statement time, in microseconds.
    pub database_us: u64,
    /// The scope's wall-clock time, in microseconds.
    pub wall_us: u64,
}

/// A plan collected for one shape of a profile.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProfiledPlan {
    /// The statement explained (its slowest instance).
    pub query: usize,
    /// Its shape.
    pub fingerprint: String,
    /// The plan, when it could be had.
    pub plan: Option<Plan>,
    /// Index advice from that one plan.
    pub advice: Vec<Advice>,
    /// Why there is no plan (a refused replay or the database's error).
    pub error: Option<String>,
}

/// What a profiled scope sent: each statement, totals, groups by shape, N+1
/// shapes, and plans once [`collect_plans`](Self::collect_plans) ran.
///
/// `Display` prints [`summary`](Self::summary).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Profile {
    /// The profile's title.
    pub label: String,
    /// When the scope opened (UTC).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Totals.
    pub totals: Totals,
    /// Every statement, in the order sent.
    pub queries: Vec<ProfiledQuery>,
    /// Data statements grouped by shape, largest group first.
    pub groups: Vec<QueryGroup>,
    /// Shapes repeated from one call site: N+1.
    pub n_plus_one: Vec<Repeated>,
    /// The plans collected.
    pub plans: Vec<ProfiledPlan>,
    /// The budget, if one was declared.
    pub max_queries: Option<usize>,
    /// Which statements get plans.
    pub plan_policy: PlanPolicy,
    #[serde(skip)]
    explain: ExplainOptions,
    #[serde(skip)]
    captured: Captured,
}

impl Profile {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        label: String,
        started_at: chrono::DateTime<chrono::Utc>,
        origin: Instant,
        captured: Captured,
        plan_policy: PlanPolicy,
        explain: ExplainOptions,
        max_queries: Option<usize>,
        n_plus_one_threshold: usize,
    ) -> Profile {
        let n_plus_one = captured.repeated(n_plus_one_threshold);
        let repeated: HashSet<(&str, Option<String>)> = n_plus_one
            .iter()
            .map(|r| (r.fingerprint.as_str(), r.call_site.map(site_text)))
            .collect();
        let queries: Vec<ProfiledQuery> = captured
            .all()
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let call_site = r.call_site.map(site_text);
                ProfiledQuery {
                    index,
                    n_plus_one: r.is_data()
                        && repeated.contains(&(r.fingerprint.as_str(), call_site.clone())),
                    sql: r.sql.clone(),
                    binds: r.binds.clone(),
                    fingerprint: r.fingerprint.clone(),
                    kind: r.kind,
                    backend: r.backend,
                    start_us: micros(r.started_at.saturating_duration_since(origin)),
                    duration_us: micros(r.duration),
                    rows: r.rows,
                    call_site,
                    error: r.error.clone(),
                    server: r.server.to_string(),
                }
            })
            .collect();
        let totals = Totals {
            queries: captured.len(),
            statements: captured.all().len(),
            rows: captured.all().iter().filter_map(|r| r.rows).sum(),
            database_us: micros(captured.database_time()),
            wall_us: micros(captured.wall_time()),
        };
        Profile {
            label,
            started_at,
            totals,
            queries,
            groups: captured.groups(),
            n_plus_one,
            plans: Vec::new(),
            max_queries,
            plan_policy,
            explain,
            captured,
        }
    }

    /// Everything the scope captured.
    pub fn captured(&self) -> &Captured {
        &self.captured
    }

    /// The budget overrun, if the scope declared a budget and went over it.
    pub fn over_budget(&self) -> Option<BudgetExceeded> {
        self.max_queries
            .and_then(|max| BudgetExceeded::check(max, &self.captured))
    }

    /// `Ok` within budget (or without one).
    ///
    /// # Errors
    /// [`Error::QueryBudget`] with the statements grouped by shape and call site.
    pub fn check_budget(&self) -> Result<()> {
        match self.over_budget() {
            Some(exceeded) => Err(Error::QueryBudget(Box::new(exceeded))),
            None => Ok(()),
        }
    }

    /// The statements the plan policy selects: one per shape (its slowest), only
    /// data statements.
    fn selected(&self) -> Vec<usize> {
        let threshold = match self.plan_policy {
            PlanPolicy::Never => return Vec::new(),
            PlanPolicy::SlowerThan(d) => d,
            PlanPolicy::EveryShape | PlanPolicy::Sample { .. } => Duration::ZERO,
        };
        let records = self.captured.all();
        let mut chosen: Vec<usize> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if !r.is_data() || r.duration < threshold {
                continue;
            }
            match chosen
                .iter_mut()
                .find(|c| records[**c].fingerprint == r.fingerprint)
            {
                Some(c) if records[*c].duration < r.duration => *c = i,
                Some(_) => {}
                None => chosen.push(i),
            }
        }
        chosen
    }

    /// Explains the statements the [`PlanPolicy`] selects on `conn` (one per shape,
    /// `SELECT`s only, values bound again) and adds the plans and their advice.
    /// Returns how many plans were collected. A statement that cannot be explained
    /// gets its reason in [`ProfiledPlan::error`] instead of failing the profile.
    ///
    /// Run it after the scope, on a connection of the same database: the EXPLAIN
    /// statements are not part of the profile. Calling it again explains only the
    /// statements not explained yet.
    pub fn collect_plans(&mut self, conn: &mut impl AsConnection) -> usize {
        let conn = conn.connection();
        let mut collected = 0;
        for index in self.selected() {
            if self.plans.iter().any(|p| p.query == index) {
                continue;
            }
            let record = &self.captured.all()[index];
            let outcome = explain_recorded(conn, record, self.explain);
            let (plan, error) = match outcome {
                Ok(plan) => {
                    collected += 1;
                    (Some(plan), None)
                }
                Err(e) => (None, Some(e.to_string())),
            };
            self.plans.push(ProfiledPlan {
                query: index,
                fingerprint: record.fingerprint.clone(),
                advice: plan.as_ref().map(Plan::advice).unwrap_or_default(),
                plan,
                error,
            });
        }
        collected
    }

    /// A few lines: totals, the largest shapes, N+1 shapes, plans and advice.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut s = format!(
            "{}: {} queries in {:.3} ms of database time, {:.3} ms wall",
            self.label,
            t.queries,
            t.database_us as f64 / 1000.0,
            t.wall_us as f64 / 1000.0,
        );
        if let Some(max) = self.max_queries {
            let verdict = if t.queries > max { "OVER" } else { "within" };
            let _ = write!(s, " ({verdict} budget of {max})");
        }
        s.push('\n');
        let mut servers: Vec<(&str, usize)> = Vec::new();
        for q in self.queries.iter().filter(|q| q.kind == QueryKind::Data) {
            match servers.iter_mut().find(|(name, _)| *name == q.server) {
                Some((_, n)) => *n += 1,
                None => servers.push((&q.server, 1)),
            }
        }
        if servers.len() > 1 {
            let list: Vec<String> = servers
                .iter()
                .map(|(name, n)| format!("{n} on {name}"))
                .collect();
            let _ = writeln!(s, "  servers: {}", list.join(", "));
        }
        for g in self.groups.iter().take(5) {
            let _ = writeln!(
                s,
                "  {:>4} x {:>9.3} ms  {}",
                g.count,
                g.total.as_secs_f64() * 1000.0,
                g.fingerprint
            );
        }
        if self.groups.len() > 5 {
            let _ = writeln!(s, "  ... {} more shapes", self.groups.len() - 5);
        }
        for r in &self.n_plus_one {
            let _ = writeln!(s, "  n+1: {r}");
        }
        for p in &self.plans {
            match (&p.plan, &p.error) {
                (Some(plan), _) => {
                    let _ = writeln!(s, "  plan of #{}: {}", p.query, plan.summary());
                }
                (None, Some(e)) => {
                    let _ = writeln!(s, "  no plan for #{}: {e}", p.query);
                }
                (None, None) => {}
            }
            for a in &p.advice {
                let _ = writeln!(s, "    {a}");
            }
        }
        s
    }

    /// The profile as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Every field serializes infallibly (strings, numbers, plain enums).
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())
    }
}

pub(crate) fn site_text(l: &'static std::panic::Location<'static>) -> String {
    format!("{}:{}:{}", l.file(), l.line(), l.column())
}
