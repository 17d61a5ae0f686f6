//! The accept loop. It owns what `axum::serve` leaves open and an anonymous
//! client could otherwise exhaust: how many connections are served at once
//! (a semaphore; more wait in the kernel's backlog), how long a client may
//! take to send a request's headers (hyper's header-read timeout, which
//! also closes idle keep-alive connections), and the open-file limit the
//! cap must fit in. On shutdown it stops accepting and lets each
//! connection finish the request it is serving.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How the loop treats connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a shutdown waits for open requests before closing anyway.
    pub drain_timeout: Duration,
}

/// File descriptors kept free beside the served connections: the store's
/// files, log and PostgreSQL connections, the listener, and a margin.
const RESERVED_FDS: u64 = 256;

impl ConnectionLimits {
    /// The configured limits, with the connection cap lowered when the
    /// process's open-file limit cannot hold it beside the outbound
    /// requests. Raises the soft open-file limit to the hard one first.
    pub fn from_config(config: &Config) -> Self {
        let wanted = config.http.max_connections;
        let reserve = config.delivery.max_in_flight_total as u64 + RESERVED_FDS;
        let max_connections = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(nofile) => {
                let fits = usize::try_from(nofile.saturating_sub(reserve))
                    .unwrap_or(usize::MAX)
                    .max(16);
                if fits < wanted {
                    tracing::warn!(
                        open_file_limit = nofile,
                        http.max_connections = wanted,
                        serving = fits,
                        "the open-file limit cannot hold http.max_connections beside \
                         delivery.max_in_flight_total; serving fewer connections at once"
                    );
                }
                wanted.min(fits)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or raise the open-file limit");
                wanted
            }
        };
        Self {
            max_connections,
            header_read_timeout: Duration::from_millis(config.http.header_read_timeout_ms),
            drain_timeout: Duration::from_millis(config.http.body_read_timeout_ms)
                .max(Duration::from_secs(5)),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    open: Gauge,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset while
                    // queued: the listener is fine. A short pause keeps a
                    // full descriptor table from spinning this loop.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = graceful.watch(http1.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        ));
        let open = open.clone();
        open.inc();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            open.dec();
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
}
