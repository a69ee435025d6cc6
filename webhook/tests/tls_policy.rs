//! Security checks of the webhook's listeners: TLS 1.2 and 1.3 only, AEAD suites only, no
//! plaintext HTTP on the TLS port; the admin router serves only health and metrics, and its
//! metrics carry no Secret content.
//!
//! rustls cannot speak TLS 1.0/1.1 or the CBC suites, so those clients are Debian's
//! `openssl s_client` (skipped with a message when it is not installed), with a positive control
//! that the same client does complete a TLS 1.2 handshake.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use osartifact_shared::secrets::SecretLookup;
use osartifact_webhook::admission::{AppState, router};
use osartifact_webhook::client::Conn;
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use osartifact_webhook::server::{ServerOptions, serve_tls};
use osartifact_webhook::tls::{
    CertResolver, certified_key, install_crypto_provider, server_config,
};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const MARKER: &str = "SECRET-MARKER-7f3a9c1e";

struct Server {
    addr: SocketAddr,
    ca: String,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
}

fn secrets() -> StaticSecrets {
    let mut m = BTreeMap::new();
    m.insert(
        ("builds".to_string(), "good-dockerfile".to_string()),
        SecretLookup::Found(BTreeMap::from([(
            "Dockerfile".to_string(),
            format!("FROM quay.io/kairos/{{{{ .Flavor }}}}:latest\nRUN echo {MARKER}\n")
                .into_bytes(),
        )])),
    );
    StaticSecrets(m)
}

async fn start() -> Server {
    install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState {
        secrets: Arc::new(secrets()),
        authz: None,
        metrics: metrics.clone(),
    });
    let resolver = CertResolver::new();
    let set = CertSet::bootstrap(
        &Subject {
            dns_names: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
        },
        &Policy::default(),
        unix_now(),
    )
    .unwrap();
    resolver.set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(serve_tls(
        listener,
        server_config(resolver),
        router(state),
        ServerOptions::default(),
        cancel.clone(),
    ));
    Server {
        addr,
        ca: set.ca_bundle,
        metrics,
        cancel,
    }
}

fn review() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate-create-dockerfile-good.review.json");
    std::fs::read(path).unwrap()
}

/// A rustls client offering only `versions`.
fn client(
    ca: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_and_tls13_are_served() {
    let s = start().await;
    for (name, v) in [
        ("TLS 1.2", &rustls::version::TLS12),
        ("TLS 1.3", &rustls::version::TLS13),
    ] {
        let mut c = Conn::connect(s.addr, "localhost", client(&s.ca, &[v]))
            .await
            .unwrap_or_else(|e| panic!("{name} handshake: {e}"));
        let (status, body) = c.post("/validate", review().into()).await.unwrap();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.contains(r#""allowed":true"#), "{name}: {body}");
        // The Secret's content never comes back in the review.
        assert!(!body.contains(MARKER), "{name}: {body}");
    }
    s.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_on_the_tls_port_gets_no_http_answer() {
    let s = start().await;
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    // The server answers with at most a TLS alert and closes; it never waits for more.
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open after plaintext");
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/"),
        "plaintext got an HTTP answer: {:?}",
        String::from_utf8_lossy(&buf)
    );
    // Only a TLS record (an alert, content type 21) or nothing at all.
    assert!(buf.is_empty() || buf[0] == 21, "{buf:?}");
    // The listener keeps serving TLS clients.
    let mut c = Conn::connect(
        s.addr,
        "localhost",
        client(&s.ca, &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    assert_eq!(c.post("/validate", review().into()).await.unwrap().0, 200);
    s.cancel.cancel();
}

/// `openssl s_client` against `addr` with `args`; None when openssl is not installed.
fn s_client(addr: SocketAddr, args: &[&str]) -> Option<(bool, String)> {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(["-servername", "localhost"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) => Some((
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("running openssl: {e}"),
    }
}

/// The cipher a successful s_client session negotiated ("New, TLSv1.3, Cipher is X"; a failed
/// handshake prints "Cipher is (NONE)").
fn negotiated(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| {
            l.split_once("Cipher is ")
                .map(|(_, c)| c.trim().to_string())
        })
        .filter(|c| c != "(NONE)" && c != "0000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_protocols_and_weak_ciphers_are_refused() {
    let s = start().await;
    let addr = s.addr;
    let results = tokio::task::spawn_blocking(move || {
        // SECLEVEL=0 makes the client willing to offer what the server must refuse.
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("TLS 1.2 (control)", vec!["-tls1_2"]),
            ("TLS 1.3 (control)", vec!["-tls1_3"]),
            ("TLS 1.1", vec!["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"]),
            ("TLS 1.0", vec!["-tls1", "-cipher", "ALL:@SECLEVEL=0"]),
            // Every TLS 1.2 suite that is not AEAD: CBC with SHA-1 or SHA-2, RSA key exchange,
            // 3DES, RC4, NULL, export and anonymous suites, as far as this openssl has them.
            (
                "TLS 1.2 non-AEAD suites",
                vec![
                    "-tls1_2",
                    "-cipher",
                    "ALL:COMPLEMENTOFALL:!AESGCM:!CHACHA20:!AESCCM:!ARIAGCM:@SECLEVEL=0",
                ],
            ),
            // Static RSA key exchange (no forward secrecy), even with AES-GCM.
            (
                "TLS 1.2 RSA key exchange",
                vec!["-tls1_2", "-cipher", "kRSA:@SECLEVEL=0"],
            ),
        ];
        cases
            .into_iter()
            .map(|(name, args)| (name, s_client(addr, &args)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (name, r) in results {
        let Some((ok, text)) = r else {
            eprintln!("openssl is not installed: skipping the TLS 1.0/1.1 and cipher checks");
            s.cancel.cancel();
            return;
        };
        if name.ends_with("(control)") {
            assert!(ok, "{name}: the openssl client must work:\n{text}");
            let c = negotiated(&text).unwrap_or_else(|| panic!("{name}: no cipher:\n{text}"));
            assert!(
                c.contains("GCM") || c.contains("CHACHA20"),
                "{name}: negotiated {c}"
            );
        } else {
            assert!(
                negotiated(&text).is_none(),
                "{name}: a session was established:\n{text}"
            );
            assert!(!ok, "{name}: openssl succeeded:\n{text}");
            let why = text
                .lines()
                .find(|l| l.contains("alert") || l.contains("error"))
                .unwrap_or_default();
            eprintln!("{name}: refused ({why})");
        }
    }
    s.cancel.cancel();
}

async fn admin_get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_port_serves_health_and_metrics_only_without_secrets() {
    let s = start().await;
    // A review that reads the Secret holding the marker, so its content has passed through.
    let mut c = Conn::connect(
        s.addr,
        "localhost",
        client(&s.ca, &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    assert_eq!(c.post("/validate", review().into()).await.unwrap().0, 200);

    let resolver = CertResolver::new();
    let app = osartifact_webhook::admin::router(
        osartifact_webhook::admin::Health::new(resolver),
        s.metrics.clone(),
    );
    let (status, metrics) = admin_get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("osartifact_webhook_"), "{metrics}");
    for leak in [MARKER, "good-dockerfile", "alice", "BEGIN", "PRIVATE KEY"] {
        assert!(!metrics.contains(leak), "/metrics shows {leak}:\n{metrics}");
    }
    // Nothing but the three endpoints: no profiler, no environment or configuration dump.
    for path in [
        "/debug/pprof/",
        "/debug/pprof/heap",
        "/debug/vars",
        "/env",
        "/config",
        "/configz",
        "/flags",
        "/",
        "/metrics/../env",
    ] {
        let (status, body) = admin_get(&app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    s.cancel.cancel();
}
