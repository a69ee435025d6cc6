//! The TLS accept loop: tokio-rustls + hyper-util (HTTP/1.1 and h2), with a handshake deadline,
//! a header-read timeout and graceful shutdown: from `drain` on, every HTTP/2 connection, open or
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

#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Deadline for the TLS handshake; for an HTTP/1 request's headers, this or
    /// [`MIN_KEEP_ALIVE_IDLE`], whichever is longer.
    pub header_read_timeout: Duration,
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
    loop {
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
        tasks.spawn(async move {
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
                .header_read_timeout(timeout.max(MIN_KEEP_ALIVE_IDLE));
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
