//! The bad-input catalogue: hostile and broken requests against the webhook's TLS server on
//! loopback. Each gets a clear error or a bounded correct answer, and after each (or while it
//! lasts) a normal review on a fresh connection is still admitted. The limits these tests hit
//! are listed in docs/reliability.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use osartifact_shared::secrets::SecretLookup;
use osartifact_webhook::admission::{AppState, MAX_BODY, REQUEST_TIMEOUT, router};
use osartifact_webhook::client::{Conn, client_config};
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use osartifact_webhook::server::{ServerOptions, serve_tls};
use osartifact_webhook::tls::{
    CertResolver, certified_key, install_crypto_provider, server_config,
};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

mod support;
use support::fd_limit;

/// Handshake deadline of the test servers (the product's default is 5 s).
const HANDSHAKE: Duration = Duration::from_millis(500);
/// How long an HTTP/1 connection may take to send a request's headers (120 s in the product).
const HEADER_IDLE: Duration = Duration::from_secs(1);

struct Server {
    addr: SocketAddr,
    h1: Arc<ClientConfig>,
    h2: Arc<ClientConfig>,
    cancel: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The slowest template known per step of budget: seven nested calls, a million times.
const SLOW_TEMPLATE: &str = "FROM alpine\n{{range 1000000}}{{(print (print (print (print (print (print (print 1)))))))}}{{end}}\n";

/// A template whose output would be a GiB: a 1 KiB line a million times.
fn huge_template() -> String {
    format!(
        "FROM alpine\n{{{{range 1000000}}}}RUN {}\n{{{{end}}}}",
        "x".repeat(1020)
    )
}

async fn start(max_connections: usize) -> Server {
    start_with(max_connections, HEADER_IDLE).await
}

async fn start_with(max_connections: usize, keep_alive_idle: Duration) -> Server {
    install_crypto_provider();
    let secret = |text: &str| {
        SecretLookup::Found(BTreeMap::from([(
            "Dockerfile".to_string(),
            text.as_bytes().to_vec(),
        )]))
    };
    let secrets = BTreeMap::from([
        (("builds".into(), "slow".into()), secret(SLOW_TEMPLATE)),
        (("builds".into(), "huge".into()), secret(&huge_template())),
    ]);
    let state = Arc::new(AppState {
        secrets: Arc::new(StaticSecrets(secrets)),
        authz: None,
        metrics: Arc::new(Metrics::new()),
    });
    let resolver = CertResolver::new();
    let subject = Subject {
        dns_names: vec!["localhost".into()],
        ips: vec!["127.0.0.1".parse().unwrap()],
    };
    let set = CertSet::bootstrap(&subject, &Policy::default(), unix_now()).unwrap();
    resolver.set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(serve_tls(
        listener,
        server_config(resolver),
        router(state),
        ServerOptions {
            header_read_timeout: HANDSHAKE,
            keep_alive_idle,
            max_connections,
            shutdown_grace: Duration::from_secs(1),
            drain: None,
        },
        cancel.clone(),
    ));
    Server {
        addr,
        h1: client_config(set.ca_bundle.as_bytes(), &[b"http/1.1"]).unwrap(),
        h2: client_config(set.ca_bundle.as_bytes(), &[b"h2"]).unwrap(),
        cancel,
    }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn valid() -> Value {
    fixture("validate-create-valid.review.json")
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap())
}

/// A normal review on a new connection is admitted within a few seconds.
async fn still_serving(s: &Server) {
    let started = Instant::now();
    let fut = async {
        let mut c = Conn::connect(s.addr, "localhost", s.h1.clone()).await?;
        c.post("/validate", bytes(&valid())).await
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("a normal review is answered within 5 s")
        .expect("a normal review is answered");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""allowed":true"#), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn tls(s: &Server, cfg: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(cfg).connect(name, tcp).await.unwrap()
}

/// Reads until the server closes the connection; what it sent, and when it closed.
async fn read_until_closed<S: AsyncReadExt + Unpin>(
    io: &mut S,
    within: Duration,
) -> (String, Instant) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Err(_) => panic!(
                "not closed within {within:?}; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&buf).into_owned(), Instant::now());
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answer of the router to one body (over HTTP/1.1 or h2 on a fresh connection).
async fn answer(s: &Server, h2: bool, path: &str, body: Bytes) -> (u16, String) {
    let cfg = if h2 { s.h2.clone() } else { s.h1.clone() };
    let mut c = Conn::connect(s.addr, "localhost", cfg).await.unwrap();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), c.post(path, body))
        .await
        .expect("answered within 5 s")
        .expect("answered");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_are_refused_with_a_reason() {
    let s = start(64).await;
    let full = serde_json::to_vec(&valid()).unwrap();
    let deep = |n: usize| {
        let mut v = "[".repeat(n);
        v.push_str(&"]".repeat(n));
        v
    };
    let mut wrong_uid = valid();
    wrong_uid["request"]["uid"] = json!(42);
    let mut wrong_spec = valid();
    wrong_spec["request"]["object"]["spec"]["iso"] = json!("maybe");
    let mut wrong_request = valid();
    wrong_request["request"] = json!(["not", "an", "object"]);
    let valid_text = String::from_utf8(full.clone()).unwrap();
    // Two "request" keys: serde refuses a duplicated field rather than picking one.
    let dup_request = format!(
        "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{},\"request\":{}}}",
        valid()["request"],
        valid()["request"]
    );
    let dup_spec_key = valid_text.replacen(
        "\"imageName\":",
        "\"imageName\":\"quay.io/kairos/a:b\",\"imageName\":",
        1,
    );
    let deep_in_request = valid_text.replacen(
        "\"request\":{",
        &format!("\"request\":{{\"x\":{},", deep(100_000)),
        1,
    );
    let deep_in_object = valid_text.replacen(
        "\"iso\":true",
        &format!("\"iso\":true,\"x\":{}", deep(100_000)),
        1,
    );

    let mut deep_uid = valid_text.clone();
    deep_uid = deep_uid.replacen(
        "\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\"",
        &format!("\"uid\":{}", deep(100_000)),
        1,
    );

    // (what, body, HTTP status, text the answer must contain, allowed for a 200)
    let cases: Vec<(&str, Vec<u8>, u16, &str, bool)> = vec![
        ("empty", Vec::new(), 400, "not an AdmissionReview", false),
        (
            "truncated",
            full[..full.len() / 2].to_vec(),
            400,
            "EOF while parsing",
            false,
        ),
        (
            "truncated by one byte",
            full[..full.len() - 1].to_vec(),
            400,
            "EOF while parsing",
            false,
        ),
        (
            "not JSON",
            b"\x00\xff\xfe garbage".to_vec(),
            400,
            "not an AdmissionReview",
            false,
        ),
        (
            "100,000 nested arrays",
            deep(100_000).into_bytes(),
            400,
            "invalid type: sequence",
            false,
        ),
        (
            "100,000 nested arrays as the uid",
            deep_uid.into_bytes(),
            400,
            "invalid type: sequence",
            false,
        ),
        // Skipped without recursion: unknown fields are never decoded (and the apiserver
        // prunes them from objects before admission anyway).
        (
            "100,000 nested arrays in an unknown field of the request",
            deep_in_request.into_bytes(),
            200,
            r#""allowed":true"#,
            true,
        ),
        (
            "100,000 nested arrays in an unknown field of the spec",
            deep_in_object.into_bytes(),
            200,
            r#""allowed":true"#,
            true,
        ),
        (
            "uid is a number",
            bytes(&wrong_uid).to_vec(),
            400,
            "invalid type",
            false,
        ),
        (
            "request is a list",
            bytes(&wrong_request).to_vec(),
            400,
            "invalid type",
            false,
        ),
        (
            "duplicated request",
            dup_request.into_bytes(),
            400,
            "duplicate field `request`",
            false,
        ),
        // Well-formed envelopes with a bad object: a denial naming the field.
        (
            "spec.iso is a string",
            bytes(&wrong_spec).to_vec(),
            200,
            "spec.iso",
            false,
        ),
        (
            "spec.imageName twice",
            dup_spec_key.into_bytes(),
            200,
            "duplicate field `imageName`",
            false,
        ),
    ];
    for h2 in [false, true] {
        for (what, body, want_status, want_text, allowed) in &cases {
            let (status, text) = answer(&s, h2, "/validate", Bytes::from(body.clone())).await;
            let short = &text[..text.len().min(600)];
            assert_eq!(status, *want_status, "{what} (h2: {h2}): {short}");
            assert!(text.contains(want_text), "{what} (h2: {h2}): {short}");
            if status == 200 {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["response"]["allowed"], *allowed, "{what}: {short}");
                assert_eq!(v["response"]["uid"], valid()["request"]["uid"], "{what}");
            }
            still_serving(&s).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_path_and_content_type() {
    let s = start(64).await;
    // The apiserver always sends application/json; the body decides, whatever the label says.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/yaml",
    ] {
        let mut c = tls(&s, s.h1.clone()).await;
        let body = serde_json::to_vec(&valid()).unwrap();
        let head = format!(
            "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(&body).await.unwrap();
        let (text, _) = read_until_closed(&mut c, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{ct}: {text}");
        assert!(text.contains(r#""allowed":true"#), "{ct}: {text}");
    }
    for (req, want) in [
        (
            "GET /validate HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 405",
        ),
        (
            "POST /nope HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            "HTTP/1.1 404",
        ),
        // Not HTTP at all, inside TLS.
        ("\x16\x03\x01 hello?\r\n\r\n", "HTTP/1.1 400"),
    ] {
        let mut c = tls(&s, s.h1.clone()).await;
        c.write_all(req.as_bytes()).await.unwrap();
        let (text, _) = read_until_closed(&mut c, Duration::from_secs(5)).await;
        assert!(text.starts_with(want), "{req:?}: {text}");
        still_serving(&s).await;
    }
    // Plain HTTP on the TLS port: the handshake fails and the connection closes.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let (text, _) = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
    assert!(!text.contains("HTTP/1.1 200"), "{text}");
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413() {
    let s = start(64).await;
    // Over h2 the stream is refused and the connection lives on.
    let mut huge = valid();
    huge["request"]["object"]["spec"]["x"] = json!("a".repeat(MAX_BODY));
    let (status, text) = answer(&s, true, "/validate", bytes(&huge)).await;
    assert_eq!(status, 413, "{text}");
    still_serving(&s).await;
    // Over HTTP/1.1 the 413 comes from the announced length alone, before any of the body is
    // read, whether the body would follow or not. (The in-process router test covers a body
    // sent in full.)
    for length in [MAX_BODY + 1, 1 << 30] {
        let mut c = tls(&s, s.h1.clone()).await;
        let started = Instant::now();
        let head = format!(
            "POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let (text, _) = read_until_closed(&mut c, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 413"), "{length}: {text}");
        assert!(started.elapsed() < Duration::from_secs(2));
        still_serving(&s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off() {
    let s = start(64).await;
    let mut c = tls(&s, s.h1.clone()).await;
    let started = Instant::now();
    c.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms, never finishing the headers.
    let trickle = async {
        loop {
            if c.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
        c
    };
    let (mut c, ()) = tokio::join!(trickle, still_serving(&s));
    let (text, closed) = read_until_closed(&mut c, Duration::from_secs(1)).await;
    let took = closed - started;
    assert!(
        took >= HEADER_IDLE && took < HEADER_IDLE + Duration::from_secs(3),
        "cut after {took:?}: {text:?}"
    );
    // hyper answers a header timeout with 408 or closes silently.
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_503_at_the_request_timeout() {
    let s = start(64).await;
    let mut c = tls(&s, s.h1.clone()).await;
    let started = Instant::now();
    c.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{")
        .await
        .unwrap();
    let (read, write) = tokio::io::split(c);
    // A byte of body every 200 ms while others are served.
    let trickle = tokio::spawn(async move {
        let mut write = write;
        while started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(3) {
            if write.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    for _ in 0..3 {
        still_serving(&s).await;
    }
    let mut read = read;
    let mut buf = [0u8; 12];
    tokio::time::timeout(
        REQUEST_TIMEOUT + Duration::from_secs(3),
        read.read_exact(&mut buf),
    )
    .await
    .expect("answered at the request timeout")
    .unwrap();
    let took = started.elapsed();
    assert_eq!(&buf, b"HTTP/1.1 503");
    assert!(
        took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT + Duration::from_secs(2),
        "{took:?}"
    );
    trickle.abort();
    still_serving(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_handshakes_are_dropped() {
    let s = start(64).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Half a ClientHello: a record header announcing more than is sent.
    let mut half = Vec::new();
    for _ in 0..20 {
        let mut t = TcpStream::connect(s.addr).await.unwrap();
        t.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .unwrap();
        half.push(t);
    }
    let started = Instant::now();
    still_serving(&s).await;
    for mut t in silent.into_iter().chain(half) {
        let (_, closed) = read_until_closed(&mut t, Duration::from_secs(3)).await;
        assert!(closed - started < HANDSHAKE + Duration::from_secs(2));
    }
    still_serving(&s).await;
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_holds_under_a_flood() {
    const LIMIT: usize = 32;
    // Long enough to fill every slot and queue the flood before the first idle connection is
    // closed by the server.
    const IDLE: Duration = Duration::from_secs(8);
    let s = start_with(LIMIT, IDLE).await;
    // Each loopback connection costs two descriptors here (client and server end): stay at a
    // small fraction of the limit.
    let flood = (fd_limit() / 8).min(600);
    assert!(
        flood > 2 * LIMIT,
        "fd limit too low for the test: {}",
        fd_limit()
    );
    let before = open_fds();
    let filled = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..LIMIT {
        let mut c = tls(&s, s.h1.clone()).await;
        // Each takes a slot: an answer proves it was accepted.
        c.write_all(b"GET /validate HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 405");
        idle.push(c);
    }
    // Every slot is held by an idle keep-alive connection: the next one waits in the backlog.
    let waiting = tokio::spawn({
        let (addr, cfg) = (s.addr, s.h1.clone());
        async move {
            let started = Instant::now();
            let mut c = Conn::connect(addr, "localhost", cfg).await.unwrap();
            let (status, _) = c.post("/validate", bytes(&valid())).await.unwrap();
            (status, started.elapsed())
        }
    });
    // A flood of bare TCP connections on top, for at most two seconds: the kernel queues them,
    // the server does not take them.
    let mut flood_conns = Vec::new();
    let flood_started = Instant::now();
    while flood_conns.len() < flood && flood_started.elapsed() < Duration::from_secs(2) {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(s.addr)).await {
            Ok(Ok(t)) => flood_conns.push(t),
            _ => break,
        }
    }
    assert!(
        flood_conns.len() > LIMIT,
        "only {} connected",
        flood_conns.len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        filled.elapsed() < IDLE,
        "the test was too slow to observe the limit ({:?})",
        filled.elapsed()
    );
    assert!(
        !waiting.is_finished(),
        "a connection beyond the limit was served"
    );
    drop(flood_conns);
    // The server closes the idle connections after IDLE; the waiting review then gets a slot.
    let (status, took) = tokio::time::timeout(IDLE + Duration::from_secs(10), waiting)
        .await
        .expect("served once slots freed")
        .unwrap();
    assert_eq!(status, 200);
    eprintln!("a review beyond the limit of {LIMIT} waited {took:?} for a slot");
    for mut c in idle {
        read_until_closed(&mut c, Duration::from_secs(3)).await;
    }
    still_serving(&s).await;
    // Nothing leaked: the descriptors come back to where they were (the server closes the
    // flood's connections as their handshakes fail or time out).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > before + 4 {
        assert!(
            Instant::now() < deadline,
            "fds {} > {before} + 4",
            open_fds()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_h2_streams_on_one_connection() {
    let s = start(64).await;
    let tls = tls(&s, s.h2.clone()).await;
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut all = Vec::new();
    for _ in 0..500 {
        let mut sender = sender.clone();
        all.push(tokio::spawn(async move {
            let req = hyper::Request::post("https://localhost/validate")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes(&valid())))
                .unwrap();
            sender.ready().await.unwrap();
            let resp = sender.send_request(req).await.unwrap();
            resp.status().as_u16()
        }));
    }
    for r in all {
        assert_eq!(r.await.unwrap(), 200);
    }
    still_serving(&s).await;
}

fn with_dockerfile(secret: &str) -> Value {
    let mut v = valid();
    let spec = &mut v["request"]["object"]["spec"];
    spec.as_object_mut().unwrap().remove("imageName");
    spec["baseImageDockerfile"] = json!({"name": secret, "key": "Dockerfile"});
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_built_to_be_slow_or_huge_are_denied_in_bounded_time() {
    let s = start(64).await;
    for (secret, want) in [
        ("slow", "execution step budget of 2000000 exceeded"),
        ("huge", "output exceeds the limit of 16777216 bytes"),
    ] {
        let started = Instant::now();
        // Rendered off the async workers: other reviews are answered meanwhile.
        let denial = answer_within(&s, REQUEST_TIMEOUT, bytes(&with_dockerfile(secret)));
        let (text, ()) = tokio::join!(denial, still_serving(&s));
        let took = started.elapsed();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["response"]["allowed"], false, "{secret}: {text}");
        assert!(text.contains(want), "{secret}: {text}");
        eprintln!("{secret} template: denied in {took:?}");
        still_serving(&s).await;
    }
}

/// A 200 answer to a review on a new connection, within `within`.
async fn answer_within(s: &Server, within: Duration, body: Bytes) -> String {
    let fut = async {
        let mut c = Conn::connect(s.addr, "localhost", s.h1.clone()).await?;
        c.post("/validate", body).await
    };
    let (status, body) = tokio::time::timeout(within, fut)
        .await
        .expect("answered in time")
        .expect("answered");
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_at_every_limit() {
    let s = start(64).await;
    let review = |f: &dyn Fn(&mut Value)| {
        let mut v = valid();
        f(&mut v["request"]["object"]);
        v
    };
    let name = |n: usize| {
        move |o: &mut Value| {
            let name = "a".repeat(n);
            o["metadata"]["name"] = json!(name);
        }
    };
    let bundles = |n: usize| {
        move |o: &mut Value| {
            let list: Vec<String> = (0..n)
                .map(|i| format!("quay.io/kairos/bundle-{i}:v1"))
                .collect();
            o["spec"]["bundles"] = json!(list);
        }
    };
    let big_config = |n: usize| {
        move |o: &mut Value| {
            o["spec"]["cloudConfigRef"] = Value::Null;
            o["spec"]["grubConfig"] = json!(format!("menuentry x {{\n{}\n}}\n", "#".repeat(n)));
        }
    };
    let cases: Vec<(&str, Value, bool, &str)> = vec![
        ("name of 63", review(&name(63)), true, ""),
        ("name of 64", review(&name(64)), false, "metadata.name"),
        ("name of 253", review(&name(253)), false, "metadata.name"),
        ("64 bundles", review(&bundles(64)), true, ""),
        // List sizes are the CRD schema's (maxItems 64 here), which the apiserver checks before
        // the validating webhook is called; longer lists are still answered, in bounded time.
        ("10,000 bundles", review(&bundles(10_000)), true, ""),
        ("a 1 MiB grubConfig", review(&big_config(1 << 20)), true, ""),
        ("a 3 MiB grubConfig", review(&big_config(3 << 20)), true, ""),
    ];
    for (what, body, allowed, field) in cases {
        let started = Instant::now();
        let (status, text) = answer(&s, false, "/validate", bytes(&body)).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{what}: {}", &text[..text.len().min(500)]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["response"]["allowed"],
            allowed,
            "{what}: {}",
            &text[..text.len().min(500)]
        );
        assert!(text.contains(field), "{what}: {text}");
        assert!(took < Duration::from_secs(5), "{what}: {took:?}");
        still_serving(&s).await;
    }
}
