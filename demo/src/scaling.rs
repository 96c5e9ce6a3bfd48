//! `demo scaling`: the same reads on databases of different sizes, as a table and an
//! SVG chart. A paginated page should cost the same however large the table (it reads
//! one page); an exact count grows with the table.

use std::fmt::Write as _;
use std::time::Instant;

use orm::{AnyConnection, Database, Model};
use serde::Serialize;

use crate::bench::{measure, workloads, Workload};
use crate::models::Message;

/// One database's size and its times.
#[derive(Debug, Clone, Serialize)]
pub struct Sized {
    /// The database, its password redacted.
    pub database: String,
    /// Messages in it (live and deleted).
    pub messages: i64,
    /// Threads in it.
    pub threads: i64,
    /// `(workload, orm median ms, hand-written diesel median ms)`.
    pub times: Vec<(String, f64, f64)>,
}

/// The workloads compared across sizes: the read workloads of `demo bench` and the
/// exact count of live messages (the count on both sides is the same statement).
fn scaled_workloads() -> Vec<Workload> {
    let mut all: Vec<Workload> = workloads()
        .into_iter()
        .filter(|w| !w.name.contains("senders joined"))
        .collect();
    all.push(Workload::read(
        "exact count of live messages",
        count_ours,
        count_diesel,
    ));
    all
}

fn count_ours(conn: &mut AnyConnection) -> orm::Result<usize> {
    Ok(Message::objects().count(conn)? as usize)
}

fn count_diesel(conn: &mut AnyConnection) -> orm::Result<usize> {
    Ok(crate::bench::exact_count_by_hand(conn)? as usize)
}

/// Measures every workload on each database, `runs` times per side.
///
/// # Errors
/// A database that cannot be opened or read, or sides that disagree.
pub fn run(
    urls: &[String],
    runs: usize,
) -> Result<Vec<Sized>, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = Vec::new();
    for url in urls {
        let db = Database::open(url)?;
        let conn = &mut *db.get()?;
        let messages = Message::objects().with_deleted().count(conn)?;
        let threads = crate::models::Thread::objects()
            .with_deleted()
            .count(conn)?;
        let started = Instant::now();
        let mut times = Vec::new();
        for w in scaled_workloads() {
            let r = measure(conn, &w, runs)?;
            times.push((w.name.to_string(), r.ours_ms, r.diesel_ms));
        }
        eprintln!(
            "{}: {messages} messages measured in {:.1} s",
            orm::redact_url(url),
            started.elapsed().as_secs_f64()
        );
        out.push(Sized {
            database: orm::redact_url(url),
            messages,
            threads,
            times,
        });
    }
    Ok(out)
}

/// The growth of each workload against the first (smallest) database.
pub fn markdown(sizes: &[Sized]) -> String {
    let mut s = String::from("| workload |");
    for z in sizes {
        let _ = write!(
            s,
            " {} messages, {} threads (ms) |",
            thousands(z.messages),
            thousands(z.threads)
        );
    }
    for z in sizes.iter().skip(1) {
        let _ = write!(s, " {} / first |", thousands(z.messages));
    }
    s.push('\n');
    s.push_str("|---|");
    for _ in 0..(2 * sizes.len()).saturating_sub(1) {
        s.push_str("---:|");
    }
    s.push('\n');
    let Some(first) = sizes.first() else {
        return s;
    };
    for (i, (name, base, _)) in first.times.iter().enumerate() {
        let _ = write!(s, "| {name} |");
        for z in sizes {
            let _ = write!(s, " {:.2} |", z.times[i].1);
        }
        for z in sizes.iter().skip(1) {
            let _ = write!(s, " {:.2}x |", z.times[i].1 / base);
        }
        s.push('\n');
    }
    s
}

fn thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Escapes text for SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart: one group per workload, one bar per database, each bar's
/// height its time relative to the first database (log scale, 1x to the largest
/// growth), labelled with its milliseconds; a dashed line marks 1.5x, the page's
/// target.
pub fn svg(sizes: &[Sized]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 90.0;
    const COLORS: [&str; 4] = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1"];
    let Some(first) = sizes.first() else {
        return String::new();
    };
    let groups = first.times.len().max(1);
    let growth = |z: &Sized, i: usize| z.times[i].1 / first.times[i].1.max(1e-9);
    let top_ratio = sizes
        .iter()
        .flat_map(|z| (0..groups).map(move |i| (z, i)))
        .map(|(z, i)| growth(z, i))
        .fold(2.0_f64, f64::max)
        .max(2.0);
    let plot_h = H - TOP - BOTTOM;
    let y = |ratio: f64| TOP + plot_h * (1.0 - ratio.max(0.5).ln().max(0.0) / top_ratio.ln());
    let group_w = (W - LEFT - 20.0) / groups as f64;
    let bar_w = (group_w * 0.7) / sizes.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">Time relative to {} messages (log scale; labels: ms, orm, median)</text>"#,
        thousands(first.messages)
    );
    for tick in [1.0, 1.5, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0] {
        if tick > top_ratio * 1.01 {
            break;
        }
        let ty = y(tick);
        let dash = if tick == 1.5 {
            r##" stroke-dasharray="6 4" stroke="#c00""##
        } else {
            r##" stroke="#ddd""##
        };
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" x2="{}" y1="{ty:.1}" y2="{ty:.1}"{dash}/><text x="{}" y="{:.1}" text-anchor="end">{tick}x</text>"#,
            W - 20.0,
            LEFT - 6.0,
            ty + 4.0
        );
    }
    for i in 0..groups {
        let gx = LEFT + group_w * i as f64 + group_w * 0.15;
        for (k, z) in sizes.iter().enumerate() {
            let ratio = growth(z, i);
            let x = gx + bar_w * k as f64;
            let top = y(ratio);
            let base = y(1.0);
            let (y0, h) = if top < base {
                (top, base - top)
            } else {
                (base, (top - base).max(1.0))
            };
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{h:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.1}</text>"#,
                bar_w - 2.0,
                COLORS[k % COLORS.len()],
                x + bar_w / 2.0 - 1.0,
                y0 - 4.0,
                z.times[i].1
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w * 0.35,
            H - BOTTOM + 18.0,
            esc(&first.times[i].0)
        );
    }
    for (k, z) in sizes.iter().enumerate() {
        let lx = LEFT + 240.0 * k as f64;
        let ly = H - 30.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{ly}">{} messages, {} threads</text>"#,
            ly - 10.0,
            COLORS[k % COLORS.len()],
            lx + 16.0,
            thousands(z.messages),
            thousands(z.threads)
        );
    }
    let lx = LEFT + 240.0 * sizes.len() as f64;
    let ly = H - 30.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{}" y="{ly}">1.5x: the page's target</text>"##,
        lx + 24.0,
        ly - 4.0,
        ly - 4.0,
        lx + 28.0
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(messages: i64, page: f64, count: f64) -> Sized {
        Sized {
            database: "x".into(),
            messages,
            threads: messages / 100,
            times: vec![
                ("threads page + JSON".into(), page, page),
                ("exact count".into(), count, count),
            ],
        }
    }

    #[test]
    fn the_table_shows_growth_against_the_first_database() {
        let table = markdown(&[sized(100_000, 20.0, 10.0), sized(1_000_000, 25.0, 80.0)]);
        assert!(
            table.contains("| threads page + JSON | 20.00 | 25.00 | 1.25x |"),
            "{table}"
        );
        assert!(
            table.contains("| exact count | 10.00 | 80.00 | 8.00x |"),
            "{table}"
        );
        assert!(
            table.contains("1,000,000 messages, 10,000 threads"),
            "{table}"
        );
    }

    #[test]
    fn the_chart_has_a_bar_per_database_and_workload() {
        let chart = svg(&[sized(100_000, 20.0, 10.0), sized(1_000_000, 25.0, 80.0)]);
        assert!(chart.starts_with("<svg"));
        assert_eq!(
            chart.matches("<rect x=").count(),
            4 + 2,
            "4 bars, 2 legend keys"
        );
        assert!(chart.contains(">80.0</text>"));
        assert!(
            chart.contains("1.5x: the page&#39;s target")
                || chart.contains("1.5x: the page's target")
        );
        assert!(svg(&[]).is_empty());
    }
}
