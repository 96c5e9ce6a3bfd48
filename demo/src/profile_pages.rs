//! `/profile/` and `/profile/<id>`: what each request sent to the database.

use std::fmt::Write;

use crate::api::{RequestProfile, RequestSummary};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
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

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}\
th{background:#f4f4f4}.num{text-align:right}.bad{color:#b00;font-weight:600}\
code,pre{font:12px ui-monospace,monospace}pre{white-space:pre-wrap;background:#f8f8f8;padding:6px}\
.bar{background:#4a7;height:10px;display:inline-block}";

fn page_html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// One page of the recent requests, newest first: `rows` of page `page` (1-based)
/// of the `kept` requests stored.
pub fn list(rows: &[RequestSummary], page: usize, kept: usize) -> String {
    let mut body = String::from("<h1>Recent requests</h1><table id=\"requests\"><tr><th>#</th><th>method</th><th>path</th><th>status</th><th class=\"num\">ms</th><th class=\"num\">queries</th><th class=\"num\">db ms</th><th>N+1</th></tr>");
    for p in rows {
        let flag = match p.n_plus_one {
            None => String::new(),
            Some((shapes, count)) => {
                format!("<span class=\"bad\">{shapes} shape(s), {count}x</span>")
            }
        };
        let _ = write!(
            body,
            "<tr class=\"request\"><td><a href=\"/profile/{id}\">{id}</a></td><td>{}</td><td><a href=\"/profile/{id}\">{}</a></td><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num queries\">{}</td><td class=\"num\">{:.1}</td><td>{flag}</td></tr>",
            escape(&p.method),
            escape(&p.path),
            p.status,
            p.ms,
            p.queries,
            p.db_ms,
            id = p.id,
        );
    }
    body.push_str("</table>");
    if kept == 0 {
        body.push_str("<p>No requests yet: call the API, then reload.</p>");
    }
    let pages = kept.div_ceil(crate::api::PROFILES_PER_PAGE).max(1);
    let _ = write!(
        body,
        "<p class=\"pages\">page {page} of {pages} ({kept} requests kept)"
    );
    if page > 1 {
        let _ = write!(
            body,
            " · <a rel=\"prev\" href=\"/profile/?page={}\">newer</a>",
            page - 1
        );
    }
    if page < pages {
        let _ = write!(
            body,
            " · <a rel=\"next\" href=\"/profile/?page={}\">older</a>",
            page + 1
        );
    }
    body.push_str("</p>");
    page_html("Profile", &body)
}

/// One request: the library's report (timeline, statements with call sites and
/// binds, shapes, N+1 groups, plans and index advice) under a link back to the list.
pub fn detail(p: &RequestProfile) -> String {
    let report = orm::profile::render_html(&p.profile);
    let banner = format!(
        "<p style=\"font:14px system-ui,sans-serif;margin:1em 2em\"><a href=\"/profile/\">all requests</a> · status {} · {:.1} ms</p>",
        p.status, p.ms
    );
    match report.find("<body>") {
        Some(at) => {
            let at = at + "<body>".len();
            format!("{}{banner}{}", &report[..at], &report[at..])
        }
        None => format!("{banner}{report}"),
    }
}
