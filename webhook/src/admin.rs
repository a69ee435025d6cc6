//! The plain-HTTP admin listener: `/livez`, `/readyz`, `/metrics`. Kept off the TLS port so
//! probes and scrapes need no certificate and never queue behind admission traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::tls::CertResolver;

/// Readiness: a certificate is loaded and shutdown has not begun.
pub struct Health {
    shutting_down: AtomicBool,
    resolver: Arc<CertResolver>,
}

impl Health {
    pub fn new(resolver: Arc<CertResolver>) -> Arc<Self> {
        Arc::new(Self {
            shutting_down: AtomicBool::new(false),
            resolver,
        })
    }

    /// Called as soon as a termination signal arrives, before the listener closes.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether a termination signal has arrived (the listener may still be open).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn ready(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !self.resolver.is_loaded() {
            return Err("no serving certificate loaded yet");
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { health, metrics })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.health.ready() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.to_string()),
    }
}

async fn metrics_handler(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
