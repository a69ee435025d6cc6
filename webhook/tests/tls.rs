//! Real TLS handshakes against certificates from osartifact-certs: ALPN, hot reload through a
//! Kubernetes-style `..data` symlink swap under concurrent load, and a CA rotation overlap.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use osartifact_webhook::admission::{AppState, router};
use osartifact_webhook::client::{Conn, client_config};
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use osartifact_webhook::server::{ServerOptions, serve_tls};
use osartifact_webhook::tls::{
    CertResolver, FileReloader, certified_key, install_crypto_provider, server_config,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn subject() -> Subject {
    Subject {
        dns_names: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse().unwrap()],
    }
}

fn review() -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate-create-valid.review.json");
    Bytes::from(std::fs::read(path).unwrap())
}

struct Server {
    addr: SocketAddr,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    start_with(ServerOptions::default()).await
}

async fn start_with(opts: ServerOptions) -> Server {
    install_crypto_provider();
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState {
        secrets: Arc::new(StaticSecrets::default()),
        authz: None,
        metrics: metrics.clone(),
    });
    let resolver = CertResolver::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve_tls(
        listener,
        server_config(resolver.clone()),
        router(state),
        opts,
        cancel.clone(),
    ));
    Server {
        addr,
        resolver,
        metrics,
        cancel,
        task,
    }
}

fn leaf_der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

async fn admit(conn: &mut Conn) -> Result<(), String> {
    let (status, body) = conn
        .post("/validate", review())
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 || !String::from_utf8_lossy(&body).contains(r#""allowed":true"#) {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn alpn_http11_and_h2() {
    let s = start().await;
    let set = CertSet::bootstrap(&subject(), &Policy::default(), unix_now()).unwrap();
    s.resolver
        .set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    // What the apiserver offers for service webhooks: only http/1.1.
    let cfg = client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    let mut c = Conn::connect(s.addr, "localhost", cfg).await.unwrap();
    assert_eq!(c.alpn.as_deref(), Some(&b"http/1.1"[..]));
    for _ in 0..3 {
        admit(&mut c).await.unwrap(); // keep-alive: three requests, one connection
    }
    // Localhost URL webhooks may negotiate h2.
    let cfg = client_config(set.ca_bundle.as_bytes(), &[b"h2", b"http/1.1"]).unwrap();
    let mut c = Conn::connect(s.addr, "localhost", cfg).await.unwrap();
    assert_eq!(c.alpn.as_deref(), Some(&b"h2"[..]));
    admit(&mut c).await.unwrap();
    // No ALPN at all works too.
    let cfg = client_config(set.ca_bundle.as_bytes(), &[]).unwrap();
    let mut c = Conn::connect(s.addr, "127.0.0.1", cfg).await.unwrap();
    admit(&mut c).await.unwrap();
    // A client that does not trust the CA is refused.
    let other = CertSet::bootstrap(&subject(), &Policy::default(), unix_now()).unwrap();
    let cfg = client_config(other.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    assert!(Conn::connect(s.addr, "localhost", cfg).await.is_err());
    s.cancel.cancel();
    s.task.await.unwrap();
}

/// Lays files out as the kubelet does for a Secret volume: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<timestamp>/`, and an update is an atomic rename of a new `..data` symlink.
#[cfg(unix)]
fn kubelet_write(dir: &Path, generation: usize, crt: &str, key: &str) {
    use std::os::unix::fs::symlink;
    let ts = dir.join(format!("..2026_11_25_{generation:04}"));
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), crt).unwrap();
    std::fs::write(ts.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(ts.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for f in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.join(f)).is_err() {
            symlink(Path::new("..data").join(f), dir.join(f)).unwrap();
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_concurrent_requests_without_failures() {
    let s = start().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::default();
    let mut set = CertSet::bootstrap(&subject(), &policy, unix_now()).unwrap();
    kubelet_write(dir.path(), 0, &set.tls_crt, &set.tls_key);

    let mut reloader = FileReloader::new(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
    assert!(reloader.poll(&s.resolver, &s.metrics).unwrap());
    let cancel = CancellationToken::new();
    let reload_task = tokio::spawn(reloader.run(
        s.resolver.clone(),
        s.metrics.clone(),
        Duration::from_millis(20),
        cancel.clone(),
    ));

    let cfg = client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeSet::<Vec<u8>>::new(),
    ));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (cfg, stop, ok, failures, seen) = (
            cfg.clone(),
            stop.clone(),
            ok.clone(),
            failures.clone(),
            seen.clone(),
        );
        let addr = s.addr;
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Half the workers reconnect for every request (new handshakes see each new
                // certificate), half keep a connection for 20 requests (in-flight keep-alive).
                let per_conn = if w % 2 == 0 { 1 } else { 20 };
                let mut conn = match Conn::connect(addr, "localhost", cfg.clone()).await {
                    Ok(c) => c,
                    Err(e) => {
                        failures.lock().unwrap().push(format!("connect: {e}"));
                        continue;
                    }
                };
                seen.lock().unwrap().insert(conn.peer_leaf.clone());
                for _ in 0..per_conn {
                    match admit(&mut conn).await {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            }
        }));
    }

    // Five certificate renewals (same CA, new leaf), each an atomic ..data swap.
    let mut leaves = vec![leaf_der(&set.tls_crt)];
    for generation in 1..=5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (crt, key) = osartifact_certs::issue(
            &set.signing,
            &subject(),
            Duration::from_secs(86400),
            unix_now(),
        )
        .unwrap();
        set.tls_crt = crt;
        set.tls_key = key;
        kubelet_write(dir.path(), generation, &set.tls_crt, &set.tls_key);
        leaves.push(leaf_der(&set.tls_crt));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    cancel.cancel();
    reload_task.await.unwrap();

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "too few requests: {}",
        ok.load(Ordering::Relaxed)
    );
    // The last certificate is served, and the reloads were picked up.
    let mut last = Conn::connect(s.addr, "localhost", cfg).await.unwrap();
    assert_eq!(&last.peer_leaf, leaves.last().unwrap());
    admit(&mut last).await.unwrap();
    let seen = seen.lock().unwrap().len();
    assert!(seen >= 4, "only {} distinct certificates served", seen);
    assert!(
        s.metrics
            .encode()
            .contains("osartifact_webhook_certificate_reloads_total 5")
    );
    s.cancel.cancel();
    s.task.await.unwrap();
}

#[tokio::test]
async fn ca_rotation_keeps_old_bundle_clients_working_through_the_overlap() {
    let s = start().await;
    let now = unix_now();
    let mut set = CertSet::bootstrap(&subject(), &Policy::default(), now).unwrap();
    let serve = |set: &CertSet| {
        s.resolver
            .set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap())
    };
    serve(&set);
    // A client holding the bundle from before the rotation (the apiserver until caBundle is
    // updated), and one holding the bundle published at the start of the overlap.
    let old_bundle = set.ca_bundle.clone();
    let old_client = client_config(old_bundle.as_bytes(), &[b"http/1.1"]).unwrap();

    // Step 1: the CA is due for renewal; the next CA joins the bundle, the leaf is unchanged.
    let start_rotation = Policy {
        ca_renew_before: Duration::from_secs(3650 * 86400 + 1),
        ca_overlap: Duration::from_secs(3600),
        ..Policy::default()
    };
    let changes = set.reconcile(&subject(), &start_rotation, now).unwrap();
    assert_eq!(changes, vec![osartifact_certs::Change::AddedNextCa]);
    serve(&set);
    let overlap_client = client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    for cfg in [&old_client, &overlap_client] {
        let mut c = Conn::connect(s.addr, "localhost", cfg.clone())
            .await
            .unwrap();
        admit(&mut c).await.unwrap();
    }
    // A keep-alive connection opened during the overlap survives the switch below.
    let mut kept = Conn::connect(s.addr, "localhost", old_client.clone())
        .await
        .unwrap();

    // Step 2: the overlap is over; the next CA signs a new serving certificate.
    let finish = Policy {
        ca_overlap: Duration::ZERO,
        ..Policy::default()
    };
    let changes = set.reconcile(&subject(), &finish, now).unwrap();
    assert!(
        changes.contains(&osartifact_certs::Change::PromotedNextCa),
        "{changes:?}"
    );
    serve(&set);
    let mut c = Conn::connect(s.addr, "localhost", overlap_client.clone())
        .await
        .unwrap();
    admit(&mut c).await.unwrap();
    admit(&mut kept).await.unwrap();
    // The current bundle still trusts the old CA (replicas that have not reloaded yet).
    assert!(set.ca_bundle.contains(old_bundle.trim()));
    // Without the overlap step a client with only the old CA would now fail: this is why it exists.
    assert!(
        Conn::connect(s.addr, "localhost", old_client)
            .await
            .is_err()
    );
    s.cancel.cancel();
    s.task.await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_keep_alive_requests_and_stops_accepting() {
    let s = start().await;
    let set = CertSet::bootstrap(&subject(), &Policy::default(), unix_now()).unwrap();
    s.resolver
        .set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    let cfg = client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    let mut c = Conn::connect(s.addr, "localhost", cfg.clone())
        .await
        .unwrap();
    admit(&mut c).await.unwrap();
    s.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .expect("drained within the grace period")
        .unwrap();
    assert!(Conn::connect(s.addr, "localhost", cfg).await.is_err());
}

/// A kept-alive HTTP/1 connection that sits idle longer than the header-read timeout still
/// takes the next review: closing it from the server races with the client's next request
/// (the apiserver does not retry a review written onto a connection being closed).
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_read_timeout() {
    let s = start_with(ServerOptions {
        header_read_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    })
    .await;
    let set = CertSet::bootstrap(&subject(), &Policy::default(), unix_now()).unwrap();
    s.resolver
        .set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    let cfg = client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap();
    let mut c = Conn::connect(s.addr, "localhost", cfg).await.unwrap();
    admit(&mut c).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    admit(&mut c).await.unwrap();
    s.cancel.cancel();
}
