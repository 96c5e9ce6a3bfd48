//! `demo load`: a bounded HTTP load generator on loopback. `clients` tasks, each with
//! one kept-alive HTTP/1.1 connection, send `GET path` back to back for a fixed time;
//! the report is requests/s, latency percentiles and errors, per path and client
//! count, and the size and a hash of the body (to check two servers answer the same
//! bytes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One path at one client count.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// The path requested.
    pub path: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Responses with status 200.
    pub ok: u64,
    /// Other statuses and failed connections.
    pub errors: u64,
    /// Responses per second.
    pub rps: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Bytes of the first 200 body.
    pub body_bytes: usize,
    /// FNV-1a hash of the first 200 body.
    pub body_hash: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads one response: (status, body).
async fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other("connection closed in the headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok((status, body))
}

/// One client: requests `path` on one connection until `deadline`.
async fn client(
    addr: SocketAddr,
    path: String,
    deadline: Instant,
) -> (Vec<Duration>, u64, Option<Vec<u8>>) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first = None;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    'connect: while Instant::now() < deadline {
        let Ok(stream) = TcpStream::connect(addr).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut reader = BufReader::new(stream);
        while Instant::now() < deadline {
            let started = Instant::now();
            if reader
                .get_mut()
                .write_all(request.as_bytes())
                .await
                .is_err()
            {
                errors += 1;
                continue 'connect;
            }
            match read_response(&mut reader).await {
                Ok((200, body)) => {
                    latencies.push(started.elapsed());
                    if first.is_none() {
                        first = Some(body);
                    }
                }
                Ok(_) => errors += 1,
                Err(_) => {
                    errors += 1;
                    continue 'connect;
                }
            }
        }
    }
    (latencies, errors, first)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Loads `addr` with each client count on each path for `seconds` each.
///
/// # Errors
/// The runtime's error.
pub fn run(
    addr: SocketAddr,
    paths: &[String],
    clients: &[usize],
    seconds: f64,
) -> std::io::Result<Vec<LoadResult>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for path in paths {
        for &n in clients {
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let started = Instant::now();
            let outcomes = runtime.block_on(async {
                let tasks: Vec<_> = (0..n)
                    .map(|_| tokio::spawn(client(addr, path.clone(), deadline)))
                    .collect();
                let mut outcomes = Vec::new();
                for task in tasks {
                    if let Ok(outcome) = task.await {
                        outcomes.push(outcome);
                    }
                }
                outcomes
            });
            let wall = started.elapsed().as_secs_f64();
            let mut latencies: Vec<Duration> = Vec::new();
            let mut errors = 0;
            let mut body = None;
            for (l, e, b) in outcomes {
                latencies.extend(l);
                errors += e;
                if body.is_none() {
                    body = b;
                }
            }
            latencies.sort_unstable();
            let body = body.unwrap_or_default();
            results.push(LoadResult {
                path: path.clone(),
                clients: n,
                ok: latencies.len() as u64,
                errors,
                rps: latencies.len() as f64 / wall,
                p50_ms: percentile(&latencies, 50.0),
                p95_ms: percentile(&latencies, 95.0),
                p99_ms: percentile(&latencies, 99.0),
                body_bytes: body.len(),
                body_hash: fnv1a(&body),
            });
        }
    }
    Ok(results)
}

/// The results as a markdown table.
pub fn markdown(label: &str, results: &[LoadResult]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| server | path | clients | req/s | p50 ms | p95 ms | p99 ms | errors | body bytes (hash) |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {label} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} ({:016x}) |",
            r.path,
            r.clients,
            r.rps,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.errors,
            r.body_bytes,
            r.body_hash
        );
    }
    s
}
