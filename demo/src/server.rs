//! The HTTP server under the API: HTTP/1.1 on hyper with a header-read timeout and a
//! cap on open connections, which `axum::serve` has neither of.
//!
//! hyper starts the header-read timer whenever it waits for a request: on a new
//! connection, on a slow client's partial headers, and on a kept-alive connection
//! between requests. So the one timeout closes idle sockets too: they cannot pile up
//! until the process runs out of file descriptors. Past `max_connections` the server
//! stops accepting; further clients wait in the kernel's backlog until a slot frees.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// How the server treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// How long a client has to send a request's headers, from the moment the server
    /// waits for them (a new connection, or a kept-alive one after a response).
    pub header_read_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

impl Default for ServeConfig {
    /// 10 s to send headers (idle keep-alive included), 1,024 connections.
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1_024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the open
/// connections finish their requests (HTTP/1 graceful shutdown) and returns.
///
/// # Errors
/// The listener's error when accepting fails for a reason other than a client's
/// (a closed listener).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A slot first: past the cap, clients wait in the backlog, not in memory.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A client that reset its connection before it was accepted.
                Err(e) if is_client_error(&e) => continue,
                Err(e) => return Err(e),
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let stopped = async move {
                // The guard `wait_for` returns is dropped at once: it is not `Send`.
                let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
            };
            tokio::select! {
                result = connection.as_mut() => drop(result),
                () = stopped => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        // Reap the connections that ended, so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Errors of one client's connection that `accept` reports.
fn is_client_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}
