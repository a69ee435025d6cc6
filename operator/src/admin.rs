//! The operator's side of the plain-HTTP admin listener (`/livez`, `/readyz`, `/metrics`, served
//! by `osartifact-admin`): ready once the watches have synced, or while this replica is a standby
//! waiting for the lease; false once shutdown begins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

impl osartifact_admin::Readiness for Health {
    fn check(&self) -> Result<&'static str, &'static str> {
        if self.ready.load(Ordering::SeqCst) {
            Ok("ready")
        } else {
            Err("not ready")
        }
    }
}

/// Binds `addr` and serves until `shutdown`; a bind failure is the task's result.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "admin listener serving /livez, /readyz, /metrics");
    osartifact_admin::serve(listener, health, metrics, shutdown).await
}

#[cfg(test)]
mod tests {
    use osartifact_admin::Readiness;

    use super::*;

    #[test]
    fn readiness_follows_the_flag_with_the_bodies_probes_see() {
        let health = Health::default();
        assert_eq!(health.check(), Err("not ready"));
        health.set_ready(true);
        assert_eq!(health.check(), Ok("ready"));
        health.set_ready(false);
        assert_eq!(health.check(), Err("not ready"));
    }
}
