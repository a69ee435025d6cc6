//! A connection flood against the webhook binary as a process (default flags): up to its
//! connection limit of kept-alive TLS connections, each having sent a review, plus bare TCP
//! connections beyond it. The process's peak RSS stays under the memory limit of
//! manifests/webhook, and a review on a new connection is still answered once a slot frees.
//! Bounded in count (well below this process's fd limit) and in time.

#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use osartifact_webhook::client::{Conn, client_config};
use osartifact_webhook::server::DEFAULT_MAX_CONNECTIONS;
use osartifact_webhook::tls::install_crypto_provider;

mod support;
use support::{fd_limit, free_port};

/// The flood stops opening connections after this long, however far it got.
const FLOOD_FOR: Duration = Duration::from_secs(10);

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of /proc/PID/status in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// limits.memory of the webhook container in manifests/webhook, in MiB.
fn manifest_memory_limit_mib() -> u64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/webhook/deployment.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut in_limits = false;
    for line in text.lines() {
        let t = line.trim();
        if t == "limits:" {
            in_limits = true;
        } else if in_limits && let Some(v) = t.strip_prefix("memory:") {
            let v = v.trim();
            return v.strip_suffix("Mi").and_then(|n| n.parse().ok()).unwrap();
        }
    }
    panic!("no limits.memory in manifests/webhook/deployment.yaml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_rss_under_a_connection_flood_stays_under_the_manifest_limit() {
    install_crypto_provider();
    let dir = support::bootstrap_certs();
    let (port, admin) = (free_port(), free_port());
    let child = support::serve(dir.path(), port, admin)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Kill(child);
    let pid = child.0.id();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let cfg = client_config(&ca, &[b"http/1.1"]).unwrap();
    let review = Bytes::from(
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/validate-create-valid.review.json"),
        )
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut first = loop {
        match Conn::connect(addr, "localhost", cfg.clone()).await {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("never served: {e}"),
        }
    };
    let (status, _) = first.post("/validate", review.clone()).await.unwrap();
    assert_eq!(status, 200);
    let idle_rss = status_kib(pid, "VmRSS:");

    // Two descriptors per connection here at most; a quarter of the limit. A few slots are left
    // free so that no connection of the flood waits for one (the queued ones below take them).
    let tls_conns = (DEFAULT_MAX_CONNECTIONS - 8).min(fd_limit() / 4);
    let started = Instant::now();
    let mut held = vec![first];
    let mut opened = 1;
    while opened <= tls_conns && started.elapsed() < FLOOD_FOR {
        // 32 at a time: the handshakes run in parallel as the apiserver's would.
        let batch = (tls_conns + 1 - opened).min(32);
        let mut tasks = Vec::new();
        for _ in 0..batch {
            let (cfg, review) = (cfg.clone(), review.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::connect(addr, "localhost", cfg).await.unwrap();
                let (status, _) = c.post("/validate", review).await.unwrap();
                assert_eq!(status, 200);
                c
            }));
        }
        for t in tasks {
            held.push(t.await.unwrap());
        }
        opened += batch;
    }
    let tls_time = started.elapsed();
    // Beyond the limit: bare TCP connections the kernel queues.
    let extra = (fd_limit() / 8).min(256);
    let mut queued = Vec::new();
    for _ in 0..extra {
        // Once the backlog is full the kernel drops SYNs and connect retries for minutes.
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(t)) => queued.push(t),
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = status_kib(pid, "VmHWM:");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit_mib = manifest_memory_limit_mib();
    eprintln!(
        "flood: {} kept-alive TLS connections (each with one review) in {tls_time:?}, {} more queued; \
         webhook RSS idle {} KiB, peak {} KiB ({:.1} MiB; manifest limit {limit_mib} MiB); {fds} open fds",
        held.len(),
        queued.len(),
        idle_rss,
        peak,
        peak as f64 / 1024.0
    );
    assert!(
        peak / 1024 < limit_mib,
        "peak RSS {peak} KiB over {limit_mib} MiB"
    );
    // The server holds no more than its limit (plus listeners, logs, the runtime's own).
    assert!(fds < DEFAULT_MAX_CONNECTIONS + 64, "{fds} fds");

    // Slots free as connections close; a new client is then served.
    drop(queued);
    held.truncate(held.len() / 2);
    let mut c = tokio::time::timeout(
        Duration::from_secs(10),
        Conn::connect(addr, "localhost", cfg.clone()),
    )
    .await
    .expect("a new connection is accepted once slots free")
    .unwrap();
    let (status, body) = c.post("/validate", review.clone()).await.unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    drop(held);
    drop(child);
}
