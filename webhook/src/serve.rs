//! `osartifact-webhook serve`: wires the admission router, TLS, certificates, the admin listener
//! and shutdown together.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admission::{AppState, router};
use crate::authz::{Authorizer, KubeAuthorizer};
use crate::authz_cache::CachingAuthorizer;
use crate::cli::ServeArgs;
use crate::metrics::Metrics;
use crate::secrets::{KubeSecrets, NoApi, SecretSource};
use crate::server::{ServerOptions, serve_tls};
use crate::tls::{CertResolver, FileReloader, server_config};
use crate::{admin, selfmanaged};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let files = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    if !args.self_managed.self_managed_certs && files.is_none() {
        anyhow::bail!(
            "--tls-cert-file and --tls-private-key-file are required without --self-managed-certs"
        );
    }
    // Standard client discovery: KUBECONFIG / ~/.kube/config, else the in-cluster service account.
    let client = match kube::Client::try_default().await {
        Ok(c) => Some(c),
        // Only the Secret lookups would remain: those become warnings, as with an unreachable
        // API. Handy for local development and benchmarks; anything else needs the API.
        Err(e) if !args.authorization_check && !args.self_managed.self_managed_certs => {
            tracing::warn!(error = %e, "no Kubernetes API configured; Secret lookups will report it as a warning");
            None
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context("no Kubernetes API configuration (set KUBECONFIG or run in a Pod)"));
        }
    };
    let metrics = Arc::new(Metrics::new());
    let resolver = CertResolver::new();
    let health = admin::Health::new(resolver.clone());
    let cancel = CancellationToken::new();

    if let (true, Some(client)) = (args.self_managed.self_managed_certs, &client) {
        tokio::spawn(selfmanaged::run(
            client.clone(),
            args.self_managed.target.clone(),
            args.self_managed.cert_check_interval,
            resolver.clone(),
            metrics.clone(),
            cancel.clone(),
        ));
    } else {
        let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_private_key_file) else {
            anyhow::bail!(
                "--tls-cert-file and --tls-private-key-file are required without --self-managed-certs"
            );
        };
        let mut reloader = FileReloader::new(cert, key);
        // Not fatal: a Secret volume may still be filling; readiness stays false until it loads.
        if let Err(e) = reloader.poll(&resolver, &metrics) {
            tracing::warn!(error = %e, "serving certificate not loaded yet; will retry");
        }
        tokio::spawn(reloader.run(
            resolver.clone(),
            metrics.clone(),
            args.cert_reload_interval,
            cancel.clone(),
        ));
    }

    let authz: Option<Arc<dyn Authorizer>> = match (&client, args.authorization_check) {
        (Some(c), true) => {
            let direct: Arc<dyn Authorizer> =
                Arc::new(KubeAuthorizer::new(c.clone(), args.api_timeout));
            if args.authorization_cache_ttl.is_zero() || args.authorization_cache_size == 0 {
                Some(direct)
            } else {
                Some(Arc::new(CachingAuthorizer::new(
                    direct,
                    args.authorization_cache_ttl,
                    args.authorization_cache_size,
                    metrics.authz_cache.clone(),
                )))
            }
        }
        _ => {
            tracing::warn!("authorization check disabled (--authorization-check=false)");
            None
        }
    };
    let secrets: Arc<dyn SecretSource> = match &client {
        Some(c) => Arc::new(KubeSecrets::new(c.clone(), args.api_timeout)),
        None => Arc::new(NoApi),
    };
    let state = Arc::new(AppState {
        secrets,
        authz,
        metrics: metrics.clone(),
    });

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let admin_listener = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding {}", args.admin_listen))?;
    tracing::info!(listen = %args.listen, admin = %args.admin_listen, "serving");

    let admin_cancel = CancellationToken::new();
    let admin_serve = osartifact_admin::serve(
        admin_listener,
        health.clone(),
        metrics.clone(),
        admin_cancel.clone(),
    );
    let admin_task = tokio::spawn(async move {
        if let Err(e) = admin_serve.await {
            tracing::error!(error = %e, "admin listener failed");
        }
    });

    let signal_health = health.clone();
    let signal_cancel = cancel.clone();
    let drain = CancellationToken::new();
    let signal_drain = drain.clone();
    let delay = args.shutdown_delay;
    tokio::spawn(async move {
        wait_for_signal().await;
        // Unready first, so endpoints stop sending us new connections; existing connections
        // start closing gracefully (clients reconnect to the other replicas) while we still
        // accept; then stop accepting.
        signal_health.begin_shutdown();
        signal_drain.cancel();
        tracing::info!(delay = ?delay, "shutdown requested; readiness is now false");
        tokio::time::sleep(delay).await;
        signal_cancel.cancel();
    });

    let app = close_when_draining(router(state), health.clone());
    serve_tls(
        listener,
        server_config(resolver),
        app,
        ServerOptions {
            header_read_timeout: args.header_read_timeout,
            keep_alive_idle: crate::server::MIN_KEEP_ALIVE_IDLE,
            max_connections: args.max_connections,
            shutdown_grace: args.shutdown_grace,
            drain: Some(drain),
        },
        cancel,
    )
    .await;
    admin_cancel.cancel();
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Once shutdown begins, every response closes its connection. Established connections keep
/// reaching this Pod after its endpoint is gone (conntrack keeps their DNAT), so the apiserver
/// must learn to open new ones before the listener closes: a response saying
/// `Connection: close` is the race-free way; closing an idle pooled connection is not (a request
/// written onto it at that moment fails with a broken pipe, as the one-node cluster showed).
fn close_when_draining(app: axum::Router, health: Arc<admin::Health>) -> axum::Router {
    app.layer(axum::middleware::map_response(
        move |mut res: axum::response::Response| {
            let health = health.clone();
            async move {
                if health.is_shutting_down() {
                    res.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                }
                res
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn responses_close_their_connection_once_shutdown_begins() {
        let health = admin::Health::new(CertResolver::new());
        let app = close_when_draining(
            axum::Router::new().route("/x", axum::routing::get(|| async { "ok" })),
            health.clone(),
        );
        let get = || {
            axum::http::Request::get("/x")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let res = app.clone().oneshot(get()).await.unwrap();
        assert!(res.headers().get(axum::http::header::CONNECTION).is_none());
        health.begin_shutdown();
        let res = app.oneshot(get()).await.unwrap();
        assert_eq!(res.headers()[axum::http::header::CONNECTION], "close");
    }
}
