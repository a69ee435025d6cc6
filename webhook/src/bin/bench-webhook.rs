//! `just bench-webhook`: load-tests the webhook over TLS keep-alive with AdmissionReviews built
//! from `examples/*.yaml` (valid as written, plus an invalid twin of each, with the metadata the
//! apiserver adds to an applied object; Secrets come from the same files, so no request waits on
//! an API), in two comparisons:
//!
//! - **against a Go baseline** (`--go-baseline BIN`): the `osartifact-webhook serve` binary and a
//!   minimal controller-runtime webhook for the same CRD (webhook/bench/go-baseline), each a
//!   process of its own started by this program, one after the other, driven by the same load
//!   generator: closed-loop throughput, latency at a fixed rate, CPU per review from
//!   /proc/PID/stat and peak RSS (VmHWM), with the ratios. Neither talks to an apiserver here
//!   (ours with `--authorization-check=false` and no kubeconfig, the Go one without
//!   `--kubeconfig`).
//! - **a diagnostic against a fixed-body server** on the same stack (axum + hyper-util +
//!   tokio-rustls), in-process, each on one tokio worker thread: what the transport alone costs
//!   on this machine. Not a target.
//!
//! `--profile-handler SECS` instead prints the in-process cost of a review stage by stage.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use clap::Parser;
use k8s_openapi::api::core::v1::Secret;
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use osartifact_shared::manifest;
use osartifact_shared::secrets::{SecretLookup, secret_data};
use osartifact_webhook::admission::{AppState, router};
use osartifact_webhook::authz::StaticAuthorizer;
use osartifact_webhook::client::{Conn, client_config};
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use osartifact_webhook::server::{ServerOptions, serve_tls};
use osartifact_webhook::tls::{
    CertResolver, certified_key, install_crypto_provider, server_config,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(about = "Benchmark the admission webhook against a fixed-body ceiling server")]
struct Args {
    /// Directory with example OSArtifacts (and their Secrets).
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Concurrent keep-alive connections for the throughput phase.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds per throughput phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Request rate of the latency phase.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 5.0)]
    latency_seconds: f64,
    /// Profile one side only: spend the given number of seconds on the webhook in-process,
    /// without TLS or HTTP, and print the cost of a review stage by stage (also for `perf record`).
    #[arg(long)]
    profile_handler: Option<f64>,
    /// Load a running `osartifact-webhook serve` at HOST:PORT instead (its `/validate`, with the
    /// same reviews; no ceiling run). Needs --ca-file.
    #[arg(long, requires = "ca_file")]
    against: Option<SocketAddr>,
    /// CA bundle (PEM) that signed the certificate of --against, which must name `localhost`.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Process id of the webhook under --against: its peak RSS is printed at the end.
    #[arg(long, requires = "against")]
    pid: Option<u32>,
    /// The Go baseline webhook's binary (built from webhook/bench/go-baseline): run it and
    /// `osartifact-webhook serve` as processes and compare them.
    #[arg(long)]
    go_baseline: Option<PathBuf>,
    /// `osartifact-webhook` binary for the comparison with the Go baseline (default: beside
    /// this program).
    #[arg(long)]
    webhook_bin: Option<PathBuf>,
    /// Skip the fixed-body diagnostic.
    #[arg(long)]
    no_ceiling: bool,
}

/// Builds CREATE reviews from the examples, valid as written and an invalid variant of each.
fn reviews(dir: &PathBuf) -> anyhow::Result<(Vec<Bytes>, StaticSecrets)> {
    let mut paths: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    paths.sort();
    let docs = manifest::read_documents(&paths)?;
    let mut secrets = BTreeMap::new();
    let mut out = Vec::new();
    for doc in &docs {
        let ns = doc.namespace().to_string();
        if doc.kind() == "Secret" {
            let s: Secret = serde_json::from_value(doc.value.clone())?;
            let name = s.metadata.name.clone().unwrap_or_default();
            secrets.insert((ns, name), SecretLookup::Found(secret_data(&s)));
            continue;
        }
        if !doc.is_osartifact() {
            continue;
        }
        let mut obj = doc.value.clone();
        obj["metadata"]["namespace"] = json!(ns);
        let review = |obj: &Value, i: usize| {
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": format!("00000000-0000-4000-8000-{i:012}"),
                    "kind": {"group": "build.kairos.io", "version": "v1alpha2", "kind": "OSArtifact"},
                    "resource": {"group": "build.kairos.io", "version": "v1alpha2", "resource": "osartifacts"},
                    "name": obj.pointer("/metadata/name").cloned().unwrap_or(json!("")),
                    "namespace": ns,
                    "operation": "CREATE",
                    "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
                    "object": obj,
                    "oldObject": null,
                    "dryRun": false,
                    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
                }
            })
        };
        // The invalid twin: both image sources, a duplicate and a reserved volume name.
        let bad = manifest::invalid_twin(&obj);
        for mut o in [obj, bad] {
            as_the_apiserver_sends_it(&mut o, out.len());
            out.push(Bytes::from(serde_json::to_vec(&review(&o, out.len()))?));
        }
    }
    anyhow::ensure!(!out.is_empty(), "no OSArtifact in {}", dir.display());
    Ok((out, StaticSecrets(secrets)))
}

/// Adds what an object carries when the apiserver asks the validating webhook about a
/// `kubectl apply`: uid, creationTimestamp and generation, kubectl's last-applied-configuration
/// annotation (the object again, compact), and the managedFields entry of that apply. Without
/// them a review is a third of its real size.
fn as_the_apiserver_sends_it(obj: &mut Value, i: usize) {
    let applied = serde_json::to_string(&*obj).unwrap_or_default();
    let fields = json!({
        "f:metadata": {
            "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}
        },
        "f:spec": field_set(&obj["spec"]),
    });
    let meta = &mut obj["metadata"];
    meta["uid"] = json!(format!("6f1c2a4e-0000-4000-8000-{i:012}"));
    meta["creationTimestamp"] = json!("2026-11-26T10:00:00Z");
    meta["generation"] = json!(1);
    meta["annotations"] = json!({ "kubectl.kubernetes.io/last-applied-configuration": applied });
    meta["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": "build.kairos.io/v1alpha2",
        "time": "2026-11-26T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }]);
}

/// The FieldsV1 shape of a value: `f:<key>` per object field, nested; lists and scalars as `{}`.
fn field_set(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            out.insert(".".into(), json!({}));
            for (k, v) in m {
                out.insert(format!("f:{k}"), field_set(v));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

struct Stats {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// Closed loop: each connection sends its next request as soon as the last one is answered.
/// With `rate`, requests are paced instead (spread over the connections).
async fn load(
    addr: SocketAddr,
    ca: &[u8],
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    duration: Duration,
    rate: Option<u32>,
) -> anyhow::Result<Stats> {
    let cfg = client_config(ca, &[b"http/1.1"]).map_err(|e| anyhow::anyhow!(e))?;
    let mut conns = Vec::new();
    for _ in 0..connections {
        conns.push(
            Conn::connect(addr, "localhost", cfg.clone())
                .await
                .map_err(|e| anyhow::anyhow!(e))?,
        );
    }
    // Warm-up: one request per connection.
    for c in &mut conns {
        c.post("/validate", bodies[0].clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = w;
            let mut ticker = rate.map(|r| {
                let period = Duration::from_secs_f64(connections as f64 / r as f64);
                let mut t = tokio::time::interval_at(
                    tokio::time::Instant::now() + period.mul_f64(w as f64 / connections as f64),
                    period,
                );
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                t
            });
            while Instant::now() < deadline {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                }
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let t0 = Instant::now();
                match conn.post("/validate", body).await {
                    Ok((200, _)) => lat.push(t0.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Ok(Stats {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
    })
}

/// Starts a server on its own single-threaded runtime (one OS thread ≈ one core).
fn start_server(
    app: Router,
    resolver: Arc<CertResolver>,
) -> anyhow::Result<(SocketAddr, CancellationToken)> {
    let cancel = CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = cancel.clone();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(anyhow::anyhow!(e)));
                return;
            }
        };
        rt.block_on(async move {
            let listener = match TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            };
            let _ = tx.send(listener.local_addr().map_err(Into::into));
            serve_tls(
                listener,
                server_config(resolver),
                app,
                ServerOptions::default(),
                stop,
            )
            .await;
        });
    });
    let addr = rx.recv()??;
    Ok((addr, cancel))
}

/// Drives the router directly (no TLS, no sockets) to measure the handler's own cost, then the
/// cost of each stage of a review alone, so the handler's time can be read stage by stage.
fn profile_handler(state: Arc<AppState>, bodies: &[Bytes], secs: f64) -> anyhow::Result<()> {
    use osartifact_shared::validation::{Mode, validate_owned};
    use osartifact_webhook::admission::{artifact, parse, to_response};
    use osartifact_webhook::secrets::known_secrets;
    use tower::ServiceExt;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let secrets = state.secrets.clone();
    let app = router(state);
    let per_review = |f: &mut dyn FnMut(&Bytes) -> anyhow::Result<()>| -> anyhow::Result<f64> {
        // The time is shared by the five measurements below.
        let deadline = Instant::now() + Duration::from_secs_f64(secs / 5.0);
        let start = Instant::now();
        let mut n = 0usize;
        while Instant::now() < deadline {
            f(&bodies[n % bodies.len()])?;
            n += 1;
        }
        Ok(start.elapsed().as_secs_f64() / n as f64 * 1e6)
    };
    let envelope = per_review(&mut |b| {
        parse(b).map_err(anyhow::Error::msg)?;
        Ok(())
    })?;
    let decode = per_review(&mut |b| {
        let req = parse(b).map_err(anyhow::Error::msg)?;
        artifact(&req).map_err(anyhow::Error::msg)?;
        Ok(())
    })?;
    let validated = per_review(&mut |b| {
        let req = parse(b).map_err(anyhow::Error::msg)?;
        let a = artifact(&req).map_err(anyhow::Error::msg)?.artifact;
        let k =
            futures::executor::block_on(known_secrets(secrets.as_ref(), &req.namespace, &a.spec));
        let name = a.metadata.name.clone().unwrap_or_default();
        let report = validate_owned(a, &k, Mode::Admission);
        serde_json::to_vec(&to_response(&req.uid, &name, report).into_review())?;
        Ok(())
    })?;
    let through = |path: &'static str| {
        per_review(&mut |b| {
            rt.block_on(async {
                let req = axum::http::Request::post(path)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(b.clone()))?;
                let resp = app.clone().oneshot(req).await?;
                http_body_util::BodyExt::collect(resp.into_body()).await?;
                anyhow::Ok(())
            })
        })
    };
    let router = through("/validate")?;
    let mutate = through("/mutate")?;
    println!("in-process cost per review, cumulative (no TLS, no sockets):");
    println!("  parse the AdmissionReview envelope      {envelope:6.2} us");
    println!("  + decode the OSArtifact                 {decode:6.2} us");
    println!("  + validate and encode the response      {validated:6.2} us");
    println!("  the router (all of it, plus metrics)    {router:6.2} us");
    println!("the same reviews through /mutate (defaulting patch): {mutate:.2} us");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    install_crypto_provider();
    let (bodies, secrets) = reviews(&args.examples)?;
    let bodies = Arc::new(bodies);

    let set = CertSet::bootstrap(
        &Subject {
            dns_names: vec!["localhost".into()],
            ips: vec![],
        },
        &Policy::default(),
        unix_now(),
    )?;
    let resolver = CertResolver::new();
    resolver.set(certified_key(
        set.tls_crt.as_bytes(),
        set.tls_key.as_bytes(),
    )?);

    let state = Arc::new(AppState {
        secrets: Arc::new(secrets),
        // The in-memory authorizer keeps the SAR code path without an apiserver.
        authz: Some(Arc::new(StaticAuthorizer::default())),
        metrics: Arc::new(Metrics::new()),
    });
    if let Some(secs) = args.profile_handler {
        return profile_handler(state, &bodies, secs);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let avg = bodies.iter().map(|b| b.len()).sum::<usize>() / bodies.len();
    println!(
        "{} AdmissionReviews from {} (avg {} bytes, half of them invalid); {} connections, {}s per phase",
        bodies.len(),
        args.examples.display(),
        avg,
        args.connections,
        args.seconds
    );
    let d = Duration::from_secs_f64(args.seconds);
    let ld = Duration::from_secs_f64(args.latency_seconds);
    let measure = |addr: SocketAddr, ca: &[u8]| -> anyhow::Result<(Stats, Stats)> {
        let t = rt.block_on(load(addr, ca, bodies.clone(), args.connections, d, None))?;
        let l = rt.block_on(load(addr, ca, bodies.clone(), 4, ld, Some(args.rate)))?;
        Ok((t, l))
    };

    if let (Some(addr), Some(ca_file)) = (args.against, &args.ca_file) {
        let ca =
            std::fs::read(ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
        let (t, l) = measure(addr, &ca)?;
        print_rows(&[("osartifact-webhook", t, l)]);
        if let Some(pid) = args.pid {
            match peak_rss_kib(pid) {
                Some(kib) => println!("webhook peak RSS: {:.1} MiB", kib as f64 / 1024.0),
                None => println!("webhook peak RSS: unknown (no /proc/{pid}/status)"),
            }
        }
        return Ok(());
    }

    if let Some(go) = &args.go_baseline {
        let ours = match &args.webhook_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?.with_file_name("osartifact-webhook"),
        };
        let dir = std::env::temp_dir().join(format!("bench-webhook-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("tls.crt"), &set.tls_crt)?;
        std::fs::write(dir.join("tls.key"), &set.tls_key)?;
        let result = compare_processes(
            &rt,
            &args,
            &bodies,
            &ours,
            go,
            &dir,
            set.ca_bundle.as_bytes(),
        );
        let _ = std::fs::remove_dir_all(&dir);
        result?;
        if args.no_ceiling {
            return Ok(());
        }
        println!();
    }

    let (webhook, stop_webhook) = start_server(router(state), resolver.clone())?;
    let fixed: &'static [u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-4000-8000-000000000000","allowed":true}}"#;
    let ceiling_app = Router::new().route(
        "/validate",
        post(move |_body: Bytes| async move { ([("content-type", "application/json")], fixed) }),
    );
    let (ceiling, stop_ceiling) = start_server(ceiling_app, resolver)?;
    let ca = set.ca_bundle.as_bytes();
    let (ct, cl) = measure(ceiling, ca)?;
    let (wt, wl) = measure(webhook, ca)?;
    let ratio = wt.rps() / ct.rps();
    println!(
        "diagnostic: the router in-process vs a fixed-body server on the same stack (one thread each)"
    );
    print_rows(&[
        ("ceiling (fixed body)", ct, cl),
        ("webhook /validate", wt, wl),
    ]);
    println!("throughput ratio webhook/ceiling: {ratio:.2} (a diagnostic, not a target)");
    stop_webhook.cancel();
    stop_ceiling.cancel();
    Ok(())
}

/// One line per server: the closed-loop phase, then the paced one.
fn print_rows(rows: &[(&str, Stats, Stats)]) {
    println!(
        "{:<22} {:>10} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>7}",
        "server", "req/s", "p50 ms", "p99 ms", "errors", "@rate/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, t, l) in rows {
        println!(
            "{:<22} {:>10.0} {:>9.3} {:>9.3} {:>7} | {:>9.0} {:>9.3} {:>9.3} {:>7}",
            name,
            t.rps(),
            ms(t.pct(0.5)),
            ms(t.pct(0.99)),
            t.errors,
            l.rps(),
            ms(l.pct(0.5)),
            ms(l.pct(0.99)),
            l.errors
        );
    }
}

/// VmHWM of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, all threads) a process has used so far.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ, which /proc reports in, is 100 on every Linux architecture this runs on.
    Some(Duration::from_millis(ticks * 10))
}

/// A server process of the comparison, killed on drop.
struct Server {
    name: &'static str,
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(name: &'static str, mut cmd: std::process::Command, port: u16) -> anyhow::Result<Server> {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Server { name, child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "{name} did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

/// One server's figures in the comparison.
struct Measured {
    closed: Stats,
    closed_cpu: Duration,
    paced: Stats,
    paced_cpu: Duration,
    peak_rss_kib: u64,
}

impl Measured {
    /// Reviews per CPU-second of the server in the closed loop: throughput per core.
    fn per_core(&self) -> f64 {
        self.closed.requests as f64 / self.closed_cpu.as_secs_f64().max(1e-9)
    }
    /// CPU per review at the paced rate, in microseconds.
    fn cpu_per_review_us(&self) -> f64 {
        self.paced_cpu.as_secs_f64() / self.paced.requests.max(1) as f64 * 1e6
    }
}

fn measure_process(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    bodies: &Arc<Vec<Bytes>>,
    server: &Server,
    ca: &[u8],
) -> anyhow::Result<Measured> {
    let pid = server.child.id();
    let cpu = || cpu_time(pid).context("reading /proc/PID/stat");
    let d = Duration::from_secs_f64(args.seconds);
    let ld = Duration::from_secs_f64(args.latency_seconds);
    // Unmeasured warm-up: connections, TLS session state, allocator and GC steady state.
    rt.block_on(load(
        server.addr,
        ca,
        bodies.clone(),
        args.connections,
        Duration::from_secs(1),
        None,
    ))?;
    let c0 = cpu()?;
    let closed = rt.block_on(load(
        server.addr,
        ca,
        bodies.clone(),
        args.connections,
        d,
        None,
    ))?;
    let closed_cpu = cpu()? - c0;
    let c0 = cpu()?;
    let paced = rt.block_on(load(
        server.addr,
        ca,
        bodies.clone(),
        4,
        ld,
        Some(args.rate),
    ))?;
    let paced_cpu = cpu()? - c0;
    let peak_rss_kib = peak_rss_kib(pid).unwrap_or(0);
    Ok(Measured {
        closed,
        closed_cpu,
        paced,
        paced_cpu,
        peak_rss_kib,
    })
}

/// `osartifact-webhook serve` and the Go baseline as processes, one after the other, under the
/// same load; prints both and the ratios against the targets.
fn compare_processes(
    rt: &tokio::runtime::Runtime,
    args: &Args,
    bodies: &Arc<Vec<Bytes>>,
    ours: &std::path::Path,
    go: &std::path::Path,
    dir: &std::path::Path,
    ca: &[u8],
) -> anyhow::Result<()> {
    let port = free_port()?;
    let mut cmd = std::process::Command::new(ours);
    cmd.arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--admin-listen=127.0.0.1:{}", free_port()?))
        .arg(format!("--tls-cert-file={}", dir.join("tls.crt").display()))
        .arg(format!(
            "--tls-private-key-file={}",
            dir.join("tls.key").display()
        ))
        .arg("--authorization-check=false")
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "warn");
    let rust = spawn("osartifact-webhook", cmd, port)?;
    let ours_m = measure_process(rt, args, bodies, &rust, ca)?;
    drop(rust);

    let port = free_port()?;
    let mut cmd = std::process::Command::new(go);
    cmd.arg(format!("--port={port}"))
        .arg(format!("--cert-dir={}", dir.display()));
    let golang = spawn("go-baseline (controller-runtime)", cmd, port)?;
    let go_m = measure_process(rt, args, bodies, &golang, ca)?;
    let go_name = golang.name;
    drop(golang);

    println!(
        "osartifact-webhook vs a controller-runtime webhook, each a process; closed loop over {} connections, then {} req/s over 4",
        args.connections, args.rate
    );
    println!(
        "{:<34} {:>9} {:>12} {:>9} | {:>9} {:>9} {:>11} | {:>9}",
        "server", "req/s", "req/CPU-s", "errors", "p50 ms", "p99 ms", "CPU/review", "peak RSS"
    );
    for (name, m) in [("osartifact-webhook", &ours_m), (go_name, &go_m)] {
        println!(
            "{:<34} {:>9.0} {:>12.0} {:>9} | {:>9.3} {:>9.3} {:>9.1}us | {:>6.1}MiB",
            name,
            m.closed.rps(),
            m.per_core(),
            m.closed.errors + m.paced.errors,
            ms(m.paced.pct(0.5)),
            ms(m.paced.pct(0.99)),
            m.cpu_per_review_us(),
            m.peak_rss_kib as f64 / 1024.0
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let per_core = ours_m.per_core() / go_m.per_core();
    let cpu = ours_m.cpu_per_review_us() / go_m.cpu_per_review_us();
    let rss = ours_m.peak_rss_kib as f64 / go_m.peak_rss_kib.max(1) as f64;
    println!(
        "ratios ours/Go: throughput {:.2}, throughput per core {per_core:.2} (target >= 3: {}), CPU per review at {} req/s {cpu:.2} (target <= 0.5: {}), peak RSS {rss:.2} (target <= 0.5: {}), p99 at {} req/s {:.2}",
        ours_m.closed.rps() / go_m.closed.rps(),
        verdict(per_core >= 3.0),
        args.rate,
        verdict(cpu <= 0.5),
        verdict(rss <= 0.5),
        args.rate,
        ms(ours_m.paced.pct(0.99)) / ms(go_m.paced.pct(0.99)).max(1e-9),
    );
    Ok(())
}
