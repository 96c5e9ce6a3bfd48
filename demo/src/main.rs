//! `cargo run -p demo`: the talk's threads app, every slide as a runnable scenario.
//!
//! With no command it opens `./threads.db`, migrates it, seeds it when empty and runs
//! every scenario (`tour`). `--database-url postgres://...` does the same on PostgreSQL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use clap::{Parser, Subcommand};
use demo::scenarios;
use demo::seed::{self, SeedConfig};
use orm::Database;

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    version,
    about = "The talk's threads app on orm: seed, scenarios, HTTP API"
)]
struct Cli {
    /// SQLite file, `sqlite://...`, `:memory:` or `postgres://...`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "threads.db"
    )]
    database_url: String,
    /// Messages to seed into an empty database.
    #[arg(long, global = true, default_value_t = 100_000)]
    messages: usize,
    /// Persons to seed into an empty database.
    #[arg(long, global = true, default_value_t = 1_000)]
    persons: usize,
    /// Threads to seed into an empty database.
    #[arg(long, global = true, default_value_t = 1_000)]
    threads: usize,
    /// Use the database as it is: no migrations (e.g. a copy of the Django peer's
    /// database, which has the same tables).
    #[arg(long, global = true)]
    no_migrate: bool,
    /// Do not test a connection each time it is checked out of the pool (the pool's
    /// `SELECT 1`; on by default).
    #[arg(long, global = true)]
    no_checkout_test: bool,
    /// PostgreSQL: a streaming replica of the database for reads (repeatable): the
    /// API's reads go to the replicas, migrations and the seed to the primary.
    #[arg(long = "replica", global = true)]
    replicas: Vec<String>,
    /// Random seed of the generated data.
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, seed when empty, run every scenario and print the table (the default).
    Tour,
    /// Migrate and seed when empty; print the rows per table.
    Seed,
    /// Run every scenario on the seeded database.
    Scenarios {
        /// One JSON object per line per scenario variant instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Time each workload through orm and through hand-written diesel, alternating.
    Bench {
        /// Timed runs per side and workload (writes and streaming take a third).
        #[arg(long, default_value_t = 15)]
        runs: usize,
        /// One JSON object per line instead of the markdown tables.
        #[arg(long)]
        json: bool,
        /// Which parts to run, comma-separated: reads, writes, counts, stream, async,
        /// routing (needs --replica).
        #[arg(long, value_delimiter = ',', default_value = "reads")]
        sections: Vec<String>,
    },
    /// Times the reads and the exact count on databases of different sizes (seeded
    /// beforehand) and prints their growth against the first; `--svg` draws it.
    Scaling {
        /// The databases, smallest first (`postgres://...` or SQLite files).
        #[arg(required = true)]
        databases: Vec<String>,
        /// Timed runs per side, workload and database.
        #[arg(long, default_value_t = 15)]
        runs: usize,
        /// Also write the chart here (SVG).
        #[arg(long)]
        svg: Option<std::path::PathBuf>,
        /// The measurements as one JSON object per database instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One streaming run in this process (the bench runs it as a child process so that
    /// the peak memory it reports is the run's own).
    #[command(hide = true)]
    BenchProbe {
        /// How to read the messages.
        #[arg(long, value_enum)]
        mode: demo::bench::StreamMode,
    },
    /// SQLite: another process bulk-writes `--rows` messages in one transaction while
    /// this one writes a row at a time; prints the lock's duration, the longest
    /// ordinary write and how many failed as busy.
    Writers {
        /// Rows of the other process's bulk write.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// The ordinary writers' busy timeout, in milliseconds (the pool's default: 5000).
        #[arg(long, default_value_t = 5_000)]
        busy_timeout_ms: u64,
        /// Runs of the whole measurement.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The bulk writer of `writers`, in its own process.
    #[command(hide = true)]
    WritersProbe {
        /// Rows to insert.
        #[arg(long)]
        rows: usize,
    },
    /// The profiler pages under concurrent viewers: fills /profile/ with threads pages,
    /// then has viewers read it at once; prints a view's bytes and the peak RSS
    ProfileLoad {
        /// Threads pages to store first.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Concurrent viewers.
        #[arg(long, default_value_t = 16)]
        viewers: usize,
        /// Views per viewer.
        #[arg(long, default_value_t = 10)]
        views: usize,
    },
    /// A bounded HTTP load on loopback: each client count on each path for a fixed
    /// time; requests/s, p50/p95/p99, errors, and the body's bytes and hash
    Load {
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: SocketAddr,
        /// Paths, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "/api/messages/list_some/,/api/threads/"
        )]
        paths: Vec<String>,
        /// Client counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32,100")]
        clients: Vec<usize>,
        /// Seconds per path and client count.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The server's name in the table.
        #[arg(long, default_value = "orm")]
        label: String,
        /// One JSON object per line instead of the markdown table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API and the profiler pages on 127.0.0.1.
    Serve {
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Absolute links from this origin (`https://api.example.org`) instead of
        /// the request's host.
        #[arg(long)]
        base_url: Option<String>,
        /// A host to serve (Django's ALLOWED_HOSTS: `name`, `.domain`, `*`);
        /// repeatable. Default: localhost, 127.0.0.1, [::1].
        #[arg(long = "allowed-host")]
        allowed_hosts: Vec<String>,
        /// Honour X-Forwarded-Proto and X-Forwarded-Host (behind a proxy that sets them).
        #[arg(long)]
        trust_forwarded: bool,
        /// Error bodies carry the library's whole error text.
        #[arg(long)]
        debug: bool,
        /// Do not profile requests (for measuring what profiling costs).
        #[arg(long)]
        no_profile: bool,
        /// Milliseconds a client has to send a request's headers (idle keep-alive
        /// connections included).
        #[arg(long, default_value_t = 10_000)]
        header_read_timeout_ms: u64,
        /// The most connections open at once.
        #[arg(long, default_value_t = 1_024)]
        max_connections: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn open(cli: &Cli, quiet: bool) -> Result<Database, Box<dyn std::error::Error + Send + Sync>> {
    let db = cli
        .replicas
        .iter()
        .fold(Database::builder(&cli.database_url), |b, url| {
            b.replica(url)
        })
        .test_on_check_out(!cli.no_checkout_test)
        .open()?;
    let ran = if cli.no_migrate {
        0
    } else {
        db.migrate(&demo::MIGRATIONS)?
    };
    let conn = &mut db.get()?;
    if !seed::is_seeded(conn)? {
        let config = SeedConfig {
            persons: cli.persons,
            threads: cli.threads,
            messages: cli.messages,
            seed: cli.seed,
            progress: !quiet,
        };
        if !quiet {
            eprintln!(
                "seeding {} persons, {} threads, {} messages ...",
                config.persons, config.threads, config.messages
            );
        }
        let started = std::time::Instant::now();
        seed::seed(conn, &config)?;
        if !quiet {
            eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    if !quiet {
        println!(
            "database: {} ({}), {ran} migration(s) applied",
            orm::redact_url(&cli.database_url),
            db.backend()
        );
    }
    Ok(db)
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match cli.command {
        None | Some(Command::Tour) => {
            let db = open(&cli, false)?;
            let conn = &mut db.get()?;
            print_counts(conn)?;
            println!();
            let outcomes = scenarios::run_all(conn)?;
            print!("{}", scenarios::table(&outcomes));
        }
        Some(Command::Seed) => {
            let db = open(&cli, false)?;
            print_counts(&mut *db.get()?)?;
        }
        Some(Command::Scenarios { json }) => {
            let db = open(&cli, json)?;
            let conn = &mut db.get()?;
            let outcomes = scenarios::run_all(conn)?;
            if json {
                for o in &outcomes {
                    println!("{}", serde_json::to_string(o)?);
                }
            } else {
                print!("{}", scenarios::table(&outcomes));
            }
        }
        Some(Command::Bench {
            runs,
            json,
            ref sections,
        }) => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: a debug build; measure with `cargo run --release -p demo -- bench`"
                );
            }
            let db = open(&cli, json)?;
            let conn = &mut db.get()?;
            let wants = |s: &str| sections.iter().any(|x| x == s || x == "all");
            let mut results = Vec::new();
            let mut workloads = Vec::new();
            if wants("reads") {
                workloads.extend(demo::bench::workloads().into_iter().map(|w| (w, runs)));
            }
            for (w, n) in workloads {
                let r = demo::bench::measure(conn, &w, n)?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                }
                results.push(r);
            }
            if !json && !results.is_empty() {
                print!("{}", demo::bench::markdown(&results));
            }
            if wants("counts") {
                let rows = demo::bench::counts(conn, runs)?;
                if json {
                    for r in &rows {
                        println!("{}", serde_json::to_string(r)?);
                    }
                } else {
                    println!();
                    print!("{}", demo::bench::counts_markdown(&rows));
                }
            }
            if wants("async") {
                let rows = demo::bench::async_cost(&db, runs)?;
                if json {
                    for r in &rows {
                        println!("{}", serde_json::to_string(r)?);
                    }
                } else {
                    println!();
                    print!("{}", demo::bench::async_cost_markdown(&rows));
                }
            }
            if wants("routing") {
                if cli.replicas.is_empty() {
                    return Err("bench --sections routing needs a --replica URL".into());
                }
                let rows = demo::bench::routing_cost(&db, runs)?;
                if json {
                    for r in &rows {
                        println!("{}", serde_json::to_string(r)?);
                    }
                } else {
                    println!();
                    print!("{}", demo::bench::routing_cost_markdown(&rows));
                }
            }
            if wants("stream") {
                stream_bench(&cli, (runs / 3).max(3), json)?;
            }
            // Writes last: their undone rows leave dead tuples that would skew the
            // planner's estimates until the ANALYZE below.
            if wants("writes") {
                let write_runs = (runs / 3).max(3);
                let mut results = Vec::new();
                for w in demo::bench::write_workloads() {
                    let r = demo::bench::measure(conn, &w, write_runs)?;
                    if json {
                        println!("{}", serde_json::to_string(&r)?);
                    }
                    results.push(r);
                }
                if !json {
                    println!();
                    print!("{}", demo::bench::markdown(&results));
                }
                seed::analyze(conn)?;
            }
        }
        Some(Command::Scaling {
            ref databases,
            runs,
            ref svg,
            json,
        }) => {
            if cfg!(debug_assertions) {
                eprintln!(
                    "warning: a debug build; measure with `cargo run --release -p demo -- scaling`"
                );
            }
            let sizes = demo::scaling::run(databases, runs)?;
            if json {
                for z in &sizes {
                    println!("{}", serde_json::to_string(z)?);
                }
            } else {
                print!("{}", demo::scaling::markdown(&sizes));
            }
            if let Some(path) = svg {
                std::fs::write(path, demo::scaling::svg(&sizes))?;
                eprintln!("wrote {}", path.display());
            }
        }
        Some(Command::BenchProbe { mode }) => {
            let db = Database::open(&cli.database_url)?;
            let result = demo::bench::probe(&mut *db.get()?, mode)?;
            println!("{}", serde_json::to_string(&result)?);
        }
        Some(Command::Writers {
            rows,
            busy_timeout_ms,
            runs,
        }) => {
            drop(open(&cli, true)?);
            let exe = std::env::current_exe()?;
            println!("| run | bulk rows | lock held | ordinary writes | busy failures | longest write | busy timeout |\n|---|---|---|---|---|---|---|");
            for run in 1..=runs {
                let r = demo::writers::run(
                    &exe,
                    &cli.database_url,
                    rows,
                    std::time::Duration::from_millis(busy_timeout_ms),
                )?;
                println!(
                    "| {run} | {} | {:.2} s | {} | {} | {:.0} ms | {} ms |",
                    r.bulk.rows,
                    r.bulk.seconds,
                    r.writes,
                    r.busy_failures,
                    r.longest_write_ms,
                    r.busy_timeout_ms
                );
            }
        }
        Some(Command::WritersProbe { rows }) => {
            let db = Database::open(&cli.database_url)?;
            let report = demo::writers::bulk_probe(&mut *db.get()?, rows)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Some(Command::Load {
            addr,
            ref paths,
            ref clients,
            seconds,
            ref label,
            json,
        }) => {
            let results = demo::load::run(addr, paths, clients, seconds)?;
            if json {
                for r in &results {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", demo::load::markdown(label, &results));
            }
        }
        Some(Command::ProfileLoad {
            requests,
            viewers,
            views,
        }) => {
            let db = open(&cli, false)?;
            let r = demo::profile_load::run(db, requests, viewers, views)?;
            println!("| stored requests | viewers x views | bytes per view | peak RSS before | peak RSS after | views |");
            println!("|---:|---:|---:|---:|---:|---:|");
            println!(
                "| {} | {} x {} | {} | {:.1} MiB | {:.1} MiB | {:.0} ms |",
                r.stored,
                r.viewers,
                r.views,
                r.page_bytes,
                r.rss_before_kib as f64 / 1024.0,
                r.rss_after_kib as f64 / 1024.0,
                r.views_ms
            );
        }
        Some(Command::Serve {
            port,
            ref base_url,
            ref allowed_hosts,
            trust_forwarded,
            debug,
            no_profile,
            header_read_timeout_ms,
            max_connections,
        }) => {
            let db = open(&cli, false)?;
            let (base_url, allowed_hosts) = (base_url.clone(), allowed_hosts.clone());
            let defaults = demo::api::ApiConfig::default();
            let config = demo::api::ApiConfig {
                base_url,
                allowed_hosts: if allowed_hosts.is_empty() {
                    defaults.allowed_hosts
                } else {
                    allowed_hosts
                },
                trust_forwarded,
                debug,
                profile: !no_profile,
            };
            let serve_config = demo::server::ServeConfig {
                header_read_timeout: std::time::Duration::from_millis(header_read_timeout_ms),
                max_connections,
            };
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                println!(
                    "serving on http://{} (API under /api/, profiler at /profile/); Ctrl-C stops",
                    listener.local_addr()?
                );
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                let workers = db.clone();
                let router = demo::api::router(demo::api::AppState::with_config(db, config));
                demo::server::serve(listener, router, serve_config, shutdown).await?;
                // The server has stopped accepting and its connections are done:
                // let the database work still running finish.
                workers.shutdown().await;
                std::io::Result::Ok(())
            })?;
        }
    }
    Ok(())
}

/// Streams every message, and loads them all, each run in a child process of its own
/// (alternating the modes), and reports medians of time and peak memory.
fn stream_bench(
    cli: &Cli,
    runs: usize,
    json: bool,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use demo::bench::{ProbeResult, StreamMode};
    let modes = [
        StreamMode::OrmStream,
        StreamMode::OrmAll,
        StreamMode::DieselAll,
    ];
    let mut results: Vec<Vec<ProbeResult>> = vec![Vec::new(); modes.len()];
    let exe = std::env::current_exe()?;
    for run in 0..runs {
        for i in 0..modes.len() {
            let i = (i + run) % modes.len();
            let mode = clap::ValueEnum::to_possible_value(&modes[i])
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default();
            let out = std::process::Command::new(&exe)
                .args([
                    "--database-url",
                    &cli.database_url,
                    "bench-probe",
                    "--mode",
                    &mode,
                ])
                .output()?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
            }
            results[i].push(serde_json::from_slice(&out.stdout)?);
        }
    }
    if !json {
        println!();
        println!("| reading every message | runs | ms (median) | peak RSS MiB (median) | rows |\n|---|---:|---:|---:|---:|");
    }
    for (mode, rs) in modes.iter().zip(&results) {
        let mut ms: Vec<f64> = rs.iter().map(|r| r.ms).collect();
        let mut peak: Vec<f64> = rs.iter().map(|r| r.peak_kib as f64 / 1024.0).collect();
        ms.sort_by(f64::total_cmp);
        peak.sort_by(f64::total_cmp);
        let (ms, peak) = (ms[ms.len() / 2], peak[peak.len() / 2]);
        let rows = rs.first().map_or(0, |r| r.rows);
        if json {
            println!(
                "{}",
                serde_json::json!({"stream": format!("{mode:?}"), "runs": rs.len(), "ms": ms, "peak_mib": peak, "rows": rows})
            );
        } else {
            println!("| {mode:?} | {} | {ms:.1} | {peak:.1} | {rows} |", rs.len());
        }
    }
    Ok(())
}

fn print_counts(conn: &mut orm::AnyConnection) -> orm::Result<()> {
    println!("{:<16} {:>10} {:>10}", "table", "live", "deleted");
    for (table, live, deleted) in seed::table_counts(conn)? {
        println!("{table:<16} {live:>10} {deleted:>10}");
    }
    let plan = <demo::models::Message as orm::Model>::objects()
        .explain_count(conn, orm::explain::ExplainOptions::new())?;
    println!("counting live messages: {}", plan.summary());
    Ok(())
}
