//! `demo profile-load`: the profiler pages under concurrent viewers. Serves the API in
//! this process, fills `/profile/` with requests of the threads page (each profile
//! holds every statement of its request), then has viewers read `/profile/` at once,
//! and reports the bytes of a view and the process's peak resident set before and
//! after: what a viewer costs the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::{ApiConfig, AppState};
use crate::bench::peak_rss_kib;
use crate::server::{serve, ServeConfig};

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileLoad {
    /// Requests stored in `/profile/` (at most [`crate::api::KEEP_PROFILES`]).
    pub stored: usize,
    /// Concurrent viewers.
    pub viewers: usize,
    /// Views per viewer.
    pub views: usize,
    /// Bytes of one `/profile/` page.
    pub page_bytes: usize,
    /// Peak resident set after the profiles were stored, KiB.
    pub rss_before_kib: u64,
    /// Peak resident set after the viewers, KiB.
    pub rss_after_kib: u64,
    /// Wall time of all views, milliseconds.
    pub views_ms: f64,
}

/// One `GET` over a new connection: the response body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let body = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(Vec::new(), |at| response[at + 4..].to_vec());
    Ok(body)
}

/// Stores `requests` threads pages, then runs `viewers` threads reading `/profile/`
/// `views` times each.
///
/// # Errors
/// The server's or a request's I/O error.
pub fn run(
    db: orm::Database,
    requests: usize,
    viewers: usize,
    views: usize,
) -> std::io::Result<ProfileLoad> {
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let state = AppState::with_config(db, ApiConfig::default());
    let router = crate::api::router(state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve(listener, router, ServeConfig::default(), async {
        let _ = stopped.await;
    }));
    for _ in 0..requests {
        get(addr, "/api/threads/")?;
    }
    let stored = state.summaries(0).1;
    let rss_before_kib = peak_rss_kib();
    let page_bytes = get(addr, "/profile/")?.len();
    let started = Instant::now();
    std::thread::scope(|scope| -> std::io::Result<()> {
        let handles: Vec<_> = (0..viewers)
            .map(|_| {
                scope.spawn(move || -> std::io::Result<()> {
                    for _ in 0..views {
                        get(addr, "/profile/")?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| std::io::Error::other("a viewer panicked"))??;
        }
        Ok(())
    })?;
    let views_ms = started.elapsed().as_secs_f64() * 1e3;
    let rss_after_kib = peak_rss_kib();
    let _ = stop.send(());
    let _ = runtime.block_on(server);
    Ok(ProfileLoad {
        stored,
        viewers,
        views,
        page_bytes,
        rss_before_kib,
        rss_after_kib,
        views_ms,
    })
}
