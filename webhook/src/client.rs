//! A minimal HTTPS client over the same stack (tokio-rustls + hyper), used by the TLS tests and
//! the benchmark's load generator: one keep-alive connection per `Conn`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client configuration (no session resumption) trusting the CAs in a PEM bundle, offering the given ALPN protocols.
pub fn client_config(ca_bundle_pem: &[u8], alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, BoxError> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_bundle_pem) {
        roots.add(c?)?;
    }
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only: a resumed session would report (and trust) the certificate of the
    // first connection, hiding what the server presents now.
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One TLS connection with HTTP/1.1 keep-alive or h2, as negotiated.
pub struct Conn {
    sender: Sender,
    /// DER of the certificate the server presented.
    pub peer_leaf: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
}

impl Conn {
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        cfg: Arc<ClientConfig>,
    ) -> Result<Self, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(server_name.to_string())?;
        let tls = TlsConnector::from(cfg).connect(name, tcp).await?;
        let (_, session) = tls.get_ref();
        let peer_leaf = session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let alpn = session.alpn_protocol().map(|p| p.to_vec());
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (s, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        Ok(Self {
            sender,
            peer_leaf,
            alpn,
        })
    }

    /// POSTs a JSON body and returns (status, body).
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(u16, Bytes), BoxError> {
        let req = hyper::Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
