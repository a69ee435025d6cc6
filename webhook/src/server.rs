//! The TLS accept loop: tokio-rustls + hyper-util (HTTP/1.1 and h2), with a connection limit, a
//! handshake deadline, a header-read timeout and graceful shutdown: from `drain` on, every HTTP/2 connection, open or
//! new, gets a GOAWAY while the listener still accepts (HTTP/1 connections close after their next
//! response, see serve.rs); from `shutdown` on, nothing is accepted and every connection task,
//! handshakes included, gets up to `shutdown_grace` to finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The least time an HTTP/1 connection may wait for its next request's headers. hyper runs its
/// header-read timer also while a kept-alive connection sits idle, so a short one closes idle
/// connections under the client's feet: the apiserver's Go transport keeps idle connections for
/// 90 s and does not retry a POST written onto a connection the server is closing, so such a
/// review fails with "connection reset by peer" (seen on the one-node cluster). Longer than 90 s,
/// the client always closes first.
pub const MIN_KEEP_ALIVE_IDLE: Duration = Duration::from_secs(120);

/// Default for [`ServerOptions::max_connections`]: far above what the apiserver opens (a few
/// per replica), and small enough that that many idle TLS connections fit in the Pod's memory
/// limit with room to spare (docs/reliability.md has the measurement).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Deadline for the TLS handshake; for an HTTP/1 request's headers, this or
    /// `keep_alive_idle`, whichever is longer.
    pub header_read_timeout: Duration,
    /// The least time an HTTP/1 connection may wait for its next request's headers;
    /// [`MIN_KEEP_ALIVE_IDLE`] except in tests.
    pub keep_alive_idle: Duration,
    /// Most connections open at once, handshakes included (0: no limit). Beyond it the
    /// listener stops accepting, so new connections wait in the kernel's backlog until one
    /// closes, instead of each costing a file descriptor and a TLS session.
    pub max_connections: usize,
    /// Longest wait for in-flight requests once the listener is closed.
    pub shutdown_grace: Duration,
    /// Cancelled when shutdown begins (before `shutdown`): connections start closing
    /// gracefully while the listener still accepts, so clients move to other replicas before
    /// this one stops answering. Without it, draining starts at `shutdown`.
    pub drain: Option<CancellationToken>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            keep_alive_idle: MIN_KEEP_ALIVE_IDLE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(20),
            drain: None,
        }
    }
}

/// Serves `app` on `listener` over TLS until `shutdown` is cancelled, then drains.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    opts: ServerOptions,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    // Cancelled by `drain` or, at the latest, by `shutdown`.
    let draining = CancellationToken::new();
    if let Some(drain) = opts.drain.clone() {
        let draining = draining.clone();
        tokio::spawn(async move {
            drain.cancelled().await;
            draining.cancel();
        });
    }
    let tasks = TaskTracker::new();
    let slots = (opts.max_connections > 0).then(|| Arc::new(Semaphore::new(opts.max_connections)));
    // Logged once each time the limit is reached, not once per waiting connection.
    let mut at_limit = false;
    loop {
        let slot = match &slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(p) => {
                    at_limit = false;
                    Some(p)
                }
                Err(_) => {
                    if !at_limit {
                        tracing::warn!(
                            max_connections = opts.max_connections,
                            "connection limit reached; new connections wait until one closes"
                        );
                        at_limit = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => Some(p),
                            // Never closed while this loop runs.
                            Err(_) => break,
                        },
                    }
                }
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let draining = draining.clone();
        let has_drain = opts.drain.is_some();
        let timeout = opts.header_read_timeout;
        let keep_alive_idle = opts.keep_alive_idle;
        tasks.spawn(async move {
            // Held until the connection ends.
            let _slot = slot;
            let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // HTTP/2 learns of the shutdown by GOAWAY as soon as draining starts. HTTP/1 has no
            // race-free signal for an idle connection (closing it races with a request being
            // written onto it), so it is never closed from here: each response from draining
            // on says `Connection: close` (serve.rs), and what is still idle when the grace
            // period ends goes with the process.
            // Without a drain phase (no delay before the listener closes) both close at once.
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let close_here = h2 || !has_drain;
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout.max(keep_alive_idle));
            builder.http2().timer(TokioTimer::new());
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app));
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = draining.cancelled(), if close_here => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    draining.cancel();
    tasks.close();
    tracing::info!(connections = tasks.len(), "listener closed; draining");
    if tokio::time::timeout(opts.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing the remaining connections");
    }
}
