use std::collections::HashMap;
use std::panic::Location;

use super::capture::{capture, Captured};

/// What to do when a scope repeats one query shape from one call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NPlusOneMode {
    /// Do not look.
    Off,
    /// Log each repeated query through `tracing` at warn level (target `orm::n_plus_one`).
    Warn,
    /// Fail with [`Error::NPlusOne`](crate::Error::NPlusOne).
    Strict,
}

/// One query shape sent again and again from one place: the N+1 pattern.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Repeated {
    /// The normalised SQL shared by the repeats.
    pub fingerprint: String,
    /// Where the repeats were sent from, where known.
    #[serde(serialize_with = "super::record::serialize_location")]
    pub call_site: Option<&'static Location<'static>>,
    /// How many times.
    pub count: usize,
    /// The SQL of the first repeat.
    pub sql: String,
    /// The fix, when the repeats come from a lazy relation accessor
    /// (`select_related `Message::sent_by``, `prefetch `Thread::messages``).
    pub fix: Option<String>,
}

impl std::fmt::Display for Repeated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} x ", self.count)?;
        if let Some(site) = self.call_site {
            write!(f, "at {}:{}: ", site.file(), site.line())?;
        }
        match &self.fix {
            Some(fix) => write!(f, "{} (fix: {fix})", self.fingerprint),
            None => write!(
                f,
                "{} (load these rows for all parents at once: select_related for a foreign key, prefetch for a reverse relation)",
                self.fingerprint
            ),
        }
    }
}

/// A fingerprint and a call site (file, line, column).
type GroupKey<'a> = (&'a str, Option<(&'a str, u32, u32)>);

/// The repeated query shapes of a scope.
#[derive(Debug, Clone)]
pub struct NPlusOneReport {
    /// The repeats, most frequent first.
    pub repeated: Vec<Repeated>,
    /// Everything the scope sent.
    pub captured: Captured,
}

impl std::fmt::Display for NPlusOneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "n+1 queries detected:")?;
        for r in &self.repeated {
            writeln!(f, "  {r}")?;
        }
        Ok(())
    }
}

impl Captured {
    /// The data statements whose fingerprint was sent at least `threshold` times from
    /// the same call site, most frequent first.
    ///
    /// A lookup done once is never reported, nor is a prefetch (one query per hop),
    /// however many rows it loads, nor the chunks of a stream.
    pub fn repeated(&self, threshold: usize) -> Vec<Repeated> {
        let mut groups: HashMap<GroupKey<'_>, Repeated> = HashMap::new();
        let mut order = Vec::new();
        for r in self.all().iter().filter(|r| r.is_data() && !r.chunked) {
            let site = r.call_site.map(|l| (l.file(), l.line(), l.column()));
            let key = (r.fingerprint.as_str(), site);
            let entry = groups.entry(key).or_insert_with(|| {
                order.push(key);
                Repeated {
                    fingerprint: r.fingerprint.clone(),
                    call_site: r.call_site,
                    count: 0,
                    sql: r.sql.clone(),
                    fix: r.call_site.and_then(crate::relations::fix_at),
                }
            });
            entry.count += 1;
        }
        let mut repeated: Vec<Repeated> = order
            .into_iter()
            .filter_map(|k| groups.remove(&k))
            .filter(|r| r.count >= threshold.max(2))
            .collect();
        repeated.sort_by_key(|r| std::cmp::Reverse(r.count));
        repeated
    }
}

/// Runs `f` and looks for N+1 patterns: a query shape sent at least `threshold` times
/// from one call site.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::instrument::{detect_n_plus_one, NPlusOneMode};
/// use orm::prelude::*;
/// let naive = detect_n_plus_one(2, NPlusOneMode::Strict, || -> orm::Result<()> {
///     for thread in Thread::objects().all(&mut conn)? {
///         Message::objects().filter(weave_message::thread_id.eq(thread.id)).all(&mut conn)?;
///     }
///     Ok(())
/// });
/// assert!(naive.unwrap_err().to_string().starts_with("n+1 queries detected:\n  2 x at "));
///
/// let prefetched = detect_n_plus_one(2, NPlusOneMode::Strict, || {
///     Thread::objects().prefetch(Thread::messages()).all(&mut conn)
/// })??;
/// assert_eq!(prefetched.len(), 2);
/// # Ok(()) }
/// ```
///
/// # Errors
/// In [`NPlusOneMode::Strict`], [`Error::NPlusOne`](crate::Error::NPlusOne) with each
/// repeated shape, its count and call site.
pub fn detect_n_plus_one<R>(
    threshold: usize,
    mode: NPlusOneMode,
    f: impl FnOnce() -> R,
) -> crate::Result<R> {
    if mode == NPlusOneMode::Off {
        return Ok(f());
    }
    let (value, captured) = capture(f);
    let repeated = captured.repeated(threshold);
    if repeated.is_empty() {
        return Ok(value);
    }
    match mode {
        NPlusOneMode::Strict => Err(crate::Error::NPlusOne(Box::new(NPlusOneReport {
            repeated,
            captured,
        }))),
        _ => {
            for r in &repeated {
                tracing::warn!(target: "orm::n_plus_one", count = r.count, call_site = ?r.call_site.map(|l| l.to_string()), fingerprint = %r.fingerprint, "n+1 query");
            }
            Ok(value)
        }
    }
}
