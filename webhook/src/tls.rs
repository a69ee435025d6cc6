//! TLS for the webhook listener: a rustls certificate resolver whose certificate can be swapped
//! while serving, fed either by polling files or by the self-managed certificate loop.
//!
//! Files are polled and their *contents* compared: Kubernetes updates Secret volumes by swapping a
//! `..data` symlink, which inotify on the file paths and mtime checks both miss.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no certificate in the PEM data")]
    NoCertificate,
    #[error("bad certificate PEM: {0}")]
    CertPem(rustls_pki_types::pem::Error),
    #[error("bad private key PEM: {0}")]
    KeyPem(rustls_pki_types::pem::Error),
    #[error("certificate and key do not form a usable pair: {0}")]
    Pair(#[from] rustls::Error),
    #[error("no rustls crypto provider installed")]
    NoProvider,
}

/// Hands out the current certificate to every new handshake; connections already established
/// keep theirs, so swapping never drops a request.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: ArcSwapOption<CertifiedKey>,
}

impl CertResolver {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn set(&self, key: CertifiedKey) {
        self.current.store(Some(Arc::new(key)));
    }

    /// Whether a certificate is loaded (readiness waits for it).
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// Installs the ring provider for the process (idempotent; tests call it too).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a serving certificate from PEM: the chain (leaf first) and its private key.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::CertPem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::KeyPem)?;
    let provider = rustls::crypto::CryptoProvider::get_default().ok_or(TlsError::NoProvider)?;
    // from_der checks that the key matches the certificate, so a half-updated pair is refused.
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

/// The server configuration: our resolver, no client auth, ALPN h2 and http/1.1 (the apiserver
/// offers only http/1.1 to service webhooks; rustls has no fallback for a server without it).
pub fn server_config(resolver: Arc<CertResolver>) -> Arc<ServerConfig> {
    let mut cfg = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Seconds since the epoch at which the leaf of a PEM chain expires, if it parses.
pub fn not_after(cert_pem: &[u8]) -> Option<i64> {
    osartifact_certs::not_after_unix(cert_pem).ok()
}

/// Re-reads a certificate/key file pair and swaps it into the resolver when the bytes change.
pub struct FileReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    last: Option<(Vec<u8>, Vec<u8>)>,
}

impl FileReloader {
    pub fn new(cert_path: &Path, key_path: &Path) -> Self {
        Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            last: None,
        }
    }

    fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads the pair if it changed. Ok(true) when a new certificate went into use.
    pub fn poll(&mut self, resolver: &CertResolver, metrics: &Metrics) -> Result<bool, TlsError> {
        let cert = Self::read(&self.cert_path)?;
        let key = Self::read(&self.key_path)?;
        if self
            .last
            .as_ref()
            .is_some_and(|(c, k)| *c == cert && *k == key)
        {
            return Ok(false);
        }
        let ck = certified_key(&cert, &key)?;
        resolver.set(ck);
        if let Some(t) = not_after(&cert) {
            metrics.cert_not_after.set(t);
        }
        self.last = Some((cert, key));
        Ok(true)
    }

    /// Polls until cancelled. Errors keep the certificate in use: a Secret being rewritten is
    /// briefly inconsistent, and the next poll sees the finished state.
    pub async fn run(
        mut self,
        resolver: Arc<CertResolver>,
        metrics: Arc<Metrics>,
        interval: Duration,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.poll(&resolver, &metrics) {
                Ok(true) => {
                    metrics.cert_reloads.inc();
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    metrics.cert_reload_errors.inc();
                    tracing::warn!(error = %e, "serving certificate not reloaded; keeping the current one");
                }
            }
        }
    }
}
