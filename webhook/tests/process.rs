//! The binary as a local process, the way the e2e harness runs it: `certs bootstrap`, then
//! `serve` with cert files by path, readiness, a TLS review, and SIGTERM (unready, drain, exit 0).

#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use osartifact_webhook::client::{Conn, client_config};
use osartifact_webhook::tls::install_crypto_provider;

mod support;
use support::free_port;

async fn http_get(port: u16, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn serve_as_a_local_process() {
    install_crypto_provider();
    let dir = support::bootstrap_certs();
    for f in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }

    let (port, admin) = (free_port(), free_port());
    let mut child = support::serve(dir.path(), port, admin)
        .arg("--shutdown-delay=1s")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The idle keep-alive connection above is never closed from the server (that races with a
    // request written onto it), so the process waits out the 3 s delay and the 20 s grace
    // period: within the Pod's 30 s terminationGracePeriodSeconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(admin, "/readyz").await != Some(200) {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let cfg = client_config(&ca, &[b"http/1.1"]).unwrap();
    let mut conn = Conn::connect(
        format!("127.0.0.1:{port}").parse().unwrap(),
        "localhost",
        cfg,
    )
    .await
    .unwrap();
    let review = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/validate-create-dockerfile-missing-secret.review.json"),
    )
    .unwrap();
    let (status, body) = conn.post("/validate", Bytes::from(review)).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""allowed":true"#), "{body}");
    // Without an API the Secret lookup is reported, not fatal.
    assert!(body.contains("no Kubernetes API configured"), "{body}");

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Readiness turns false at once, before the listener closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(http_get(admin, "/readyz").await, Some(503));
    // The idle keep-alive connection above is never closed from the server (that races with a
    // request written onto it), so the process waits out the 3 s delay and the 20 s grace
    // period: within the Pod's 30 s terminationGracePeriodSeconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
