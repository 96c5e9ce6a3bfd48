//! One self-contained HTML page per profile (inline CSS and JS, no external assets).
//!
//! Everything that comes from the database or the application (SQL, binds, plans,
//! labels, call sites) goes through [`escape`]; numbers are formatted here.

use std::fmt::Write as _;

use super::report::{Profile, ProfiledQuery};
use crate::instrument::QueryKind;

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#6b7385; --line:#e3e6ee; --bg:#f7f8fb; --data:#3b6fd8; --tx:#a3aab8; --n1:#e0533d; --err:#b0002a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; padding: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
section.profile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 20px 24px; margin-bottom: 28px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 12px; }
.card.bad { border-color: var(--n1); color: var(--n1); }
.timeline { border: 1px solid var(--line); border-radius: 6px; padding: 6px 0; }
.row { display: grid; grid-template-columns: 48px 1fr 90px; align-items: center; gap: 8px; padding: 1px 10px; cursor: pointer; }
.row:hover { background: #eef2fb; }
.row .n { color: var(--muted); font-size: 12px; text-align: right; }
.row .ms { font-variant-numeric: tabular-nums; font-size: 12px; text-align: right; }
.track { position: relative; height: 14px; background: repeating-linear-gradient(90deg, transparent 0 9.9%, var(--line) 9.9% 10%); }
.bar { position: absolute; top: 2px; height: 10px; min-width: 2px; border-radius: 2px; background: var(--data); }
.bar.transaction, .bar.health_check { background: var(--tx); } .bar.n1 { background: var(--n1); } .bar.err { background: var(--err); }
.legend { color: var(--muted); font-size: 12px; margin: 6px 0; } .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 12px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; } pre { background: var(--bg); padding: 10px; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
details.query { border-bottom: 1px solid var(--line); padding: 4px 0; } details.query summary { cursor: pointer; }
details.query[open] { background: #fbfcff; } details.query.flash { outline: 2px solid var(--data); }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: var(--line); color: var(--fg); margin-right: 4px; }
.tag.n1 { background: var(--n1); color: #fff; } .tag.err { background: var(--err); color: #fff; }
.advice { border-left: 3px solid #e8a33d; padding: 4px 10px; margin: 6px 0; background: #fff8ec; }
.muted { color: var(--muted); } a { color: var(--data); }
"#;

const SCRIPT: &str = r#"
document.addEventListener('click', function (e) {
  var row = e.target.closest('[data-target]');
  if (!row) return;
  var d = document.getElementById(row.getAttribute('data-target'));
  if (!d) return;
  d.open = true; d.scrollIntoView({ behavior: 'smooth', block: 'center' });
  d.classList.add('flash'); setTimeout(function () { d.classList.remove('flash'); }, 1200);
});
"#;

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body></html>\n",
        escape(title)
    )
}

/// Renders one profile as a complete, self-contained HTML page: totals, a timeline
/// bar per statement (click one to open it), the statements with SQL, binds, rows
/// and call site, the shapes, the N+1 shapes, and the plans with their advice.
///
/// ```
/// # include!("../../doctest_setup.rs");
/// # fn main() -> orm::Result<()> {
/// # let (_db, mut conn) = setup();
/// use orm::prelude::*;
/// let (_, profile) = orm::profile(|| {
///     Message::objects().filter(weave_message::text.eq("<script>alert(1)</script>")).all(&mut conn)
/// });
/// let html = orm::profile::render_html(&profile);
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(html.contains("&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"));
/// assert!(!html.contains("<script>alert"));
/// # Ok(()) }
/// ```
pub fn render_html(profile: &Profile) -> String {
    let mut body = String::new();
    section(&mut body, profile, "p0");
    page(&profile.label, &body)
}

/// Renders several profiles on one page (a list of recent requests), each linked
/// from a table at the top.
pub fn render_html_list(profiles: &[Profile]) -> String {
    let mut body = String::from("<h1>Profiles</h1>\n<table><tr><th>profile</th><th>started</th><th>queries</th><th>database</th><th>wall</th><th>n+1</th></tr>\n");
    for (i, p) in profiles.iter().enumerate() {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"#p{i}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&p.label),
            escape(&p.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()),
            p.totals.queries,
            ms(p.totals.database_us),
            ms(p.totals.wall_us),
            p.n_plus_one.len()
        );
    }
    body.push_str("</table>\n");
    for (i, p) in profiles.iter().enumerate() {
        section(&mut body, p, &format!("p{i}"));
    }
    page("Profiles", &body)
}

fn section(out: &mut String, p: &Profile, id: &str) {
    let t = &p.totals;
    let _ = write!(
        out,
        "<section class=\"profile\" id=\"{id}\"><h1>{}</h1><div class=\"muted\">started {}</div>\n<div class=\"cards\">",
        escape(&p.label),
        escape(&p.started_at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
    );
    let over = p.max_queries.is_some_and(|max| t.queries > max);
    let budget = match p.max_queries {
        Some(max) => format!(" / {max}"),
        None => String::new(),
    };
    let cards = [
        (format!("{}{budget}", t.queries), "queries", over),
        (ms(t.database_us), "database time", false),
        (ms(t.wall_us), "wall time", false),
        (t.rows.to_string(), "rows", false),
        (p.groups.len().to_string(), "shapes", false),
        (
            p.n_plus_one.len().to_string(),
            "n+1 shapes",
            !p.n_plus_one.is_empty(),
        ),
    ];
    for (value, name, bad) in cards {
        let _ = write!(
            out,
            "<div class=\"card{}\"><b>{}</b><span>{name}</span></div>",
            if bad { " bad" } else { "" },
            escape(&value)
        );
    }
    out.push_str("</div>\n");
    timeline(out, p, id);
    queries(out, p, id);
    groups(out, p);
    n_plus_one(out, p);
    plans(out, p, id);
    out.push_str("</section>\n");
}

fn bar_class(q: &ProfiledQuery) -> &'static str {
    if q.error.is_some() {
        "err"
    } else if q.n_plus_one {
        "n1"
    } else {
        match q.kind {
            QueryKind::Data => "data",
            QueryKind::Transaction => "transaction",
            QueryKind::HealthCheck => "health_check",
            QueryKind::Session => "session",
        }
    }
}

fn timeline(out: &mut String, p: &Profile, id: &str) {
    let span = p
        .queries
        .iter()
        .map(|q| q.start_us + q.duration_us)
        .max()
        .unwrap_or(0)
        .max(p.totals.wall_us)
        .max(1) as f64;
    let _ = write!(
        out,
        "<h2>Timeline</h2><div class=\"legend\">each bar is one statement, placed in the scope's {} of wall time (grid: tenths)",
        ms(span as u64)
    );
    out.push_str("<i style=\"background:var(--data)\"></i>query<i style=\"background:var(--n1)\"></i>n+1<i style=\"background:var(--tx)\"></i>transaction / health check<i style=\"background:var(--err)\"></i>error</div>\n<div class=\"timeline\">\n");
    for q in &p.queries {
        let left = 100.0 * q.start_us as f64 / span;
        let width = 100.0 * q.duration_us as f64 / span;
        let _ = writeln!(
            out,
            "<div class=\"row\" data-target=\"{id}-q{i}\" title=\"{title}\"><span class=\"n\">#{i}</span><div class=\"track\"><div class=\"bar {class}\" style=\"left:{left:.3}%;width:{width:.3}%\"></div></div><span class=\"ms\">{dur}</span></div>",
            i = q.index,
            title = escape(&q.sql),
            class = bar_class(q),
            dur = ms(q.duration_us),
        );
    }
    out.push_str("</div>\n");
}

fn queries(out: &mut String, p: &Profile, id: &str) {
    out.push_str("<h2>Statements</h2>\n");
    for q in &p.queries {
        let mut tags = String::new();
        if q.n_plus_one {
            tags.push_str("<span class=\"tag n1\">n+1</span>");
        }
        if q.error.is_some() {
            tags.push_str("<span class=\"tag err\">error</span>");
        }
        if q.kind != QueryKind::Data {
            let _ = write!(tags, "<span class=\"tag\">{}</span>", bar_class(q));
        }
        let plan_link = p
            .plans
            .iter()
            .position(|pl| pl.fingerprint == q.fingerprint)
            .map(|n| format!(" <a href=\"#{id}-plan{n}\">plan</a>"))
            .unwrap_or_default();
        let short: String = q.sql.chars().take(140).collect();
        let ellipsis = if q.sql.chars().count() > 140 {
            "…"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<details class=\"query\" id=\"{id}-q{i}\"><summary><span class=\"muted\">#{i}</span> {tags}<code>{short}{ellipsis}</code> <span class=\"muted\">{dur}</span></summary>\n<pre>{sql}</pre>",
            i = q.index,
            short = escape(&short),
            dur = ms(q.duration_us),
            sql = escape(&q.sql),
        );
        let _ = write!(
            out,
            "<table><tr><th>binds</th><td><code>{}</code></td></tr><tr><th>rows</th><td>{}</td></tr><tr><th>started</th><td>+{}</td></tr><tr><th>call site</th><td><code>{}</code></td></tr><tr><th>server</th><td>{}</td></tr><tr><th>shape</th><td><code>{}</code>{plan_link}</td></tr>",
            escape(&format!("[{}]", q.binds.join(", "))),
            q.rows.map_or_else(|| "unknown".to_owned(), |r| r.to_string()),
            ms(q.start_us),
            escape(q.call_site.as_deref().unwrap_or("unknown")),
            escape(&q.server),
            escape(&q.fingerprint),
        );
        if let Some(e) = &q.error {
            let _ = write!(out, "<tr><th>error</th><td>{}</td></tr>", escape(e));
        }
        out.push_str("</table></details>\n");
    }
}

fn groups(out: &mut String, p: &Profile) {
    out.push_str("<h2>Shapes</h2><table><tr><th>count</th><th>total</th><th>shape</th><th>call sites</th></tr>\n");
    for g in &p.groups {
        let sites: Vec<String> = g
            .call_sites
            .iter()
            .map(|s| {
                let site = s
                    .call_site
                    .map(super::report::site_text)
                    .unwrap_or_else(|| "unknown".to_owned());
                format!("{} × <code>{}</code>", s.count, escape(&site))
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            g.count,
            ms(u64::try_from(g.total.as_micros()).unwrap_or(u64::MAX)),
            escape(&g.fingerprint),
            sites.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

fn n_plus_one(out: &mut String, p: &Profile) {
    out.push_str("<h2>N+1</h2>\n");
    if p.n_plus_one.is_empty() {
        out.push_str("<p class=\"muted\">No shape was repeated from one call site.</p>\n");
        return;
    }
    for r in &p.n_plus_one {
        let site = r
            .call_site
            .map(super::report::site_text)
            .unwrap_or_else(|| "unknown".to_owned());
        let _ = writeln!(
            out,
            "<div class=\"advice\"><b>{} ×</b> from <code>{}</code><pre>{}</pre>Load these rows for all parents at once: <code>select_related</code> for a foreign key, <code>prefetch</code> for a reverse relation.</div>",
            r.count,
            escape(&site),
            escape(&r.fingerprint)
        );
    }
}

fn plans(out: &mut String, p: &Profile, id: &str) {
    out.push_str("<h2>Plans</h2>\n");
    if p.plans.is_empty() {
        out.push_str(
            "<p class=\"muted\">No plans collected (see the profiler's plan policy).</p>\n",
        );
        return;
    }
    for (n, pl) in p.plans.iter().enumerate() {
        let _ = write!(
            out,
            "<div id=\"{id}-plan{n}\"><h3>Plan of <a href=\"#{id}-q{q}\">#{q}</a></h3>",
            q = pl.query
        );
        match (&pl.plan, &pl.error) {
            (Some(plan), _) => {
                let _ = write!(
                    out,
                    "<div><b>{}</b></div><pre>{}</pre><details><summary class=\"muted\">the database's own output</summary><pre>{}</pre></details>",
                    escape(&plan.summary()),
                    escape(&plan.tree()),
                    escape(&plan.raw)
                );
            }
            (None, Some(e)) => {
                let _ = write!(out, "<p class=\"muted\">{}</p>", escape(e));
            }
            (None, None) => {}
        }
        for a in &pl.advice {
            let _ = write!(
                out,
                "<div class=\"advice\">Advice from one plan: {}.<br>Consider <code>{}</code> — check it against the queries your application really sends; every index costs writes.</div>",
                escape(&a.reason),
                escape(&a.create_index)
            );
        }
        out.push_str("</div>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
