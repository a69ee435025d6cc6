//! The webhook's side of the plain-HTTP admin listener (`/livez`, `/readyz`, `/metrics`, served by
//! `osartifact-admin`): what readiness means here. Kept off the TLS port so probes and scrapes
//! need no certificate and never queue behind admission traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use osartifact_admin::router;

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

impl osartifact_admin::Readiness for Health {
    fn check(&self) -> Result<&'static str, &'static str> {
        self.ready().map(|()| "ok")
    }
}
