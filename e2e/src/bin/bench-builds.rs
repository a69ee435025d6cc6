//! `just bench-builds`: real builds on the one-node cluster. Applies N small ISO OSArtifacts
//! (each with one exporter Job that only lists the volume), a few at a time, and watches the
//! OSArtifacts, Pods and Jobs of the namespace. From the moments the events are received it
//! derives, per artifact, the wall time from apply to Ready, the builder pod's run time and its
//! steps, and the operator's reaction times.
//!
//! A reaction time is the gap between two events received by this process's watchers (a
//! child's change, then the operator's write it caused): both went through one watch delivery
//! of the same apiserver, so the delivery latency cancels and the gap is the operator's reaction
//! (its own watch delivery, reconcile and write) plus one watch delivery. The operator's own
//! reconcile-duration histogram, read from its admin port before and after, is printed beside.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, ResourceExt};
use osartifact_e2e::builder_images::OS_CORE;
use osartifact_e2e::env::Env;
use osartifact_e2e::identity::SYSTEM_NAMESPACE;
use osartifact_e2e::{http, isolation};
use osartifact_shared::{OSArtifact, Phase, names};
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

osartifact_e2e::cluster_namespaces!();

#[derive(Parser, Clone)]
#[command(about = "Real ISO builds on the one-node cluster: wall, run and operator reaction times")]
struct Args {
    /// Number of OSArtifacts to build.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// Builds in flight: the next artifact is applied when one reaches Ready (or Error). Above
    /// the operator's build queue limit (4 as installed) the extra ones wait in its queue.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Stop after this many seconds, reporting what finished.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

const NAMESPACE: &str = "bench-builds";
/// The operator's reaction target, for (a), (b) and (c).
const TARGET_MS: f64 = 100.0;

fn artifact_name(i: usize) -> String {
    format!("bench-{i}")
}

/// Like examples/iso.yaml, but with the small core image, no bundles nor cloud-config, and an
/// exporter that only lists the volume: the figures are about the build and the operator, not
/// about an upload.
fn artifact(name: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "build.kairos.io/v1alpha2",
        "kind": "OSArtifact",
        "metadata": {"name": name},
        "spec": {
            "imageName": OS_CORE,
            "iso": true,
            "exporters": [{"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "list",
                    "image": "curlimages/curl:latest",
                    "command": ["sh", "-c", "ls -l /artifacts"],
                    "volumeMounts": [{"name": "artifacts", "readOnly": true, "mountPath": "/artifacts"}],
                }],
            }}}],
        },
    }))?)
}

async fn client_for(kubeconfig: &std::path::Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// One object as a watcher delivered it, stamped when it was received.
enum Seen {
    Artifact(Box<OSArtifact>),
    Pod(Box<Pod>),
    Job(Box<Job>),
}

/// Forwards every added or modified object of `api` with the instant it arrived; `listed` fires
/// once the first list is done. The stamp is taken here, before the channel, so the time the
/// main loop spends elsewhere (applying the next artifact, printing) does not shift it.
fn spawn_watch<K>(
    api: Api<K>,
    tx: mpsc::UnboundedSender<(Instant, Seen)>,
    listed: oneshot::Sender<()>,
    wrap: fn(K) -> Seen,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let obj = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::InitDone) => {
                    if let Some(l) = listed.take() {
                        let _ = l.send(());
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("watch error (retrying): {e}");
                    continue;
                }
            };
            if tx.send((now, wrap(obj))).is_err() {
                return;
            }
        }
    })
}

/// What was seen of one artifact, each the first time it was seen.
#[derive(Default)]
struct Track {
    applied: Option<Instant>,
    artifact_added: Option<Instant>,
    pod_added: Option<Instant>,
    /// First seen with an init container running or done (or the pod Running).
    pod_started: Option<Instant>,
    pod_succeeded: Option<Instant>,
    job_added: Option<Instant>,
    job_complete: Option<Instant>,
    ready: Option<Instant>,
    error: Option<String>,
    /// (container, seconds) from the Succeeded pod's container statuses; init steps first.
    steps: Vec<(String, i64, bool)>,
    /// The artifact's status as last seen, to tell a status write from other changes.
    last_status: Option<Value>,
    /// The last change of the builder pod or the Job seen since the artifact's last status
    /// write: the write that follows is taken as the operator's reaction to it.
    pending_child_change: Option<Instant>,
    /// Seconds from that change to the write.
    status_reactions: Vec<f64>,
}

fn first(slot: &mut Option<Instant>, t: Instant) {
    if slot.is_none() {
        *slot = Some(t);
    }
}

fn pod_started(pod: &Pod) -> bool {
    let Some(s) = pod.status.as_ref() else {
        return false;
    };
    let begun = |c: &ContainerStatus| {
        c.state
            .as_ref()
            .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
    };
    matches!(s.phase.as_deref(), Some("Running" | "Succeeded"))
        || s.init_container_statuses.iter().flatten().any(begun)
}

/// Whole seconds each container ran, as the kubelet reports them (RFC 3339, second precision).
fn step_durations(pod: &Pod) -> Vec<(String, i64, bool)> {
    let Some(s) = pod.status.as_ref() else {
        return Vec::new();
    };
    let init = s
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| (c, true));
    let main = s.container_statuses.iter().flatten().map(|c| (c, false));
    init.chain(main)
        .filter_map(|(c, is_init)| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            let secs = t.finished_at.as_ref()?.0.as_second() - t.started_at.as_ref()?.0.as_second();
            Some((c.name.clone(), secs, is_init))
        })
        .collect()
}

/// Finished successfully, as the operator judges it: Kubernetes sets SuccessCriteriaMet first
/// and Complete once the Job's pods are gone, and the operator acts on the first.
fn job_complete(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                matches!(c.type_.as_str(), "Complete" | "SuccessCriteriaMet") && c.status == "True"
            })
        })
}

struct Bench {
    tracks: BTreeMap<String, Track>,
    /// Builder pod and exporter Job names to their artifact.
    children: HashMap<String, String>,
}

impl Bench {
    fn new(n: usize) -> Self {
        let mut tracks = BTreeMap::new();
        let mut children = HashMap::new();
        for i in 0..n {
            let name = artifact_name(i);
            children.insert(names::builder_pod(&name), name.clone());
            children.insert(names::exporter_job(&name, 0), name.clone());
            tracks.insert(name, Track::default());
        }
        Self { tracks, children }
    }

    fn track_of_child(&mut self, child: &str) -> Option<&mut Track> {
        let name = self.children.get(child)?;
        self.tracks.get_mut(name)
    }

    /// Records one event; returns the artifact's name when it has just ended (Ready or Error).
    fn record(&mut self, t: Instant, seen: Seen) -> Option<String> {
        match seen {
            Seen::Artifact(a) => {
                let name = a.name_any();
                let tr = self.tracks.get_mut(&name)?;
                first(&mut tr.artifact_added, t);
                let status = a.status.as_ref().map(serde_json::to_value).transpose();
                let status = status.ok().flatten();
                if status.is_some() && status != tr.last_status {
                    if let Some(c) = tr.pending_child_change.take() {
                        tr.status_reactions.push(signed_secs(c, t));
                    }
                    tr.last_status = status;
                }
                let phase = a.status.as_ref().and_then(|s| s.phase);
                match phase {
                    Some(Phase::Ready) if tr.ready.is_none() => {
                        tr.ready = Some(t);
                        Some(name)
                    }
                    Some(Phase::Error) if tr.error.is_none() && tr.ready.is_none() => {
                        tr.error = Some(
                            a.status
                                .as_ref()
                                .and_then(|s| s.message.clone())
                                .unwrap_or_default(),
                        );
                        Some(name)
                    }
                    _ => None,
                }
            }
            Seen::Pod(p) => {
                let tr = self.track_of_child(&p.name_any())?;
                first(&mut tr.pod_added, t);
                tr.pending_child_change = Some(t);
                if pod_started(&p) {
                    first(&mut tr.pod_started, t);
                }
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase == Some("Succeeded") && tr.pod_succeeded.is_none() {
                    tr.pod_succeeded = Some(t);
                    tr.steps = step_durations(&p);
                }
                None
            }
            Seen::Job(j) => {
                let tr = self.track_of_child(&j.name_any())?;
                first(&mut tr.job_added, t);
                tr.pending_child_change = Some(t);
                if job_complete(&j) {
                    first(&mut tr.job_complete, t);
                }
                None
            }
        }
    }
}

/// count, mean, p50, p90, p99, max (nearest rank) of `v`.
struct Stats {
    n: usize,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Option<Stats> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let rank = |p: f64| v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Stats {
        n,
        mean: v.iter().sum::<f64>() / n as f64,
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: v[n - 1],
    })
}

/// `b - a` in seconds. Negative when the second event arrived first: the operator's write can
/// reach this process before this process's own copy of the change that caused it.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    match b.checked_duration_since(a) {
        Some(d) => d.as_secs_f64(),
        None => -a.duration_since(b).as_secs_f64(),
    }
}

fn gap(a: Option<Instant>, b: Option<Instant>) -> Option<f64> {
    Some(signed_secs(a?, b?))
}

fn row(label: &str, unit: &str, s: Option<&Stats>) -> String {
    let digits = if unit == "ms" { 1 } else { 2 };
    match s {
        Some(s) => format!(
            "| {label} ({unit}) | {} | {:.d$} | {:.d$} | {:.d$} | {:.d$} | {:.d$} |",
            s.n,
            s.mean,
            s.p50,
            s.p90,
            s.p99,
            s.max,
            d = digits
        ),
        None => format!("| {label} ({unit}) | 0 | | | | | |"),
    }
}

fn mem_total_gib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0 / 1024.0)
}

fn report(b: &Bench, args: &Args, elapsed: Duration) -> bool {
    let done: Vec<(&String, &Track)> = b.tracks.iter().filter(|(_, t)| t.ready.is_some()).collect();
    let failed: Vec<(&String, &Track)> =
        b.tracks.iter().filter(|(_, t)| t.error.is_some()).collect();
    let ms = |s: f64| s * 1e3;
    let collect = |f: &dyn Fn(&Track) -> Option<f64>| -> Vec<f64> {
        done.iter().filter_map(|(_, t)| f(t)).collect()
    };

    println!(
        "\nbench-builds: {} of {} ISO builds Ready ({} Error) in {:.1} s, {} in flight; {} cores, {:.1} GiB, {}",
        done.len(),
        args.count,
        failed.len(),
        elapsed.as_secs_f64(),
        args.parallel,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total_gib().unwrap_or(0.0),
        time::OffsetDateTime::now_utc().date(),
    );
    for (name, t) in &failed {
        println!("  {name}: Error: {}", t.error.as_deref().unwrap_or(""));
    }

    let wall = stats(collect(&|t| gap(t.applied, t.ready)));
    let before_run = stats(collect(&|t| gap(t.pod_added, t.pod_started)));
    let run = stats(collect(&|t| gap(t.pod_started, t.pod_succeeded)));
    let export = stats(collect(&|t| gap(t.job_added, t.job_complete)));
    let a = stats(collect(&|t| gap(t.pod_succeeded, t.job_added).map(ms)));
    let bb = stats(collect(&|t| gap(t.job_complete, t.ready).map(ms)));
    let c = stats(collect(&|t| gap(t.artifact_added, t.pod_added).map(ms)));
    let d = stats(
        done.iter()
            .flat_map(|(_, t)| t.status_reactions.iter().map(|r| ms(*r)))
            .collect(),
    );
    println!("\n| figure | count | mean | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    const A: &str = "(a) pod Succeeded → exporter Job created";
    const B: &str = "(b) Job finished → artifact Ready";
    const C: &str = "(c) artifact created → builder pod created";
    for (label, unit, s) in [
        ("apply → Ready", "s", &wall),
        ("builder pod created → first step running", "s", &before_run),
        ("builder pod run (started → Succeeded)", "s", &run),
        ("exporter Job created → finished", "s", &export),
        (A, "ms", &a),
        (B, "ms", &bb),
        (C, "ms", &c),
        ("(d) child change → status write", "ms", &d),
    ] {
        println!("{}", row(label, unit, s.as_ref()));
    }

    println!("\nTarget: operator reaction p99 ≤ {TARGET_MS} ms");
    let mut all_pass = true;
    for (label, s) in [(A, &a), (B, &bb), (C, &c)] {
        let (verdict, p99) = match s {
            Some(s) if s.p99 <= TARGET_MS => ("PASS", s.p99),
            Some(s) => ("FAIL", s.p99),
            None => ("FAIL (no samples)", f64::NAN),
        };
        all_pass &= verdict == "PASS";
        println!("  {label}: p99 {p99:.1} ms: {verdict}");
    }

    // The steps, in the order the pods ran them; the kubelet's times have whole seconds.
    let mut order: Vec<(String, bool)> = Vec::new();
    let mut per_step: HashMap<String, Vec<f64>> = HashMap::new();
    for (_, t) in &done {
        for (name, s, is_init) in &t.steps {
            if !per_step.contains_key(name) {
                order.push((name.clone(), *is_init));
            }
            per_step.entry(name.clone()).or_default().push(*s as f64);
        }
    }
    let sum_init = |t: &Track| -> f64 {
        t.steps
            .iter()
            .filter(|(_, _, init)| *init)
            .map(|(_, s, _)| *s as f64)
            .sum()
    };
    println!(
        "\nThe builder pod's run split into its steps (containerStatuses' startedAt/finishedAt: whole seconds)"
    );
    println!("\n| step | count | mean | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for (name, is_init) in &order {
        let kind = if *is_init {
            "init container"
        } else {
            "container"
        };
        let v = per_step.get(name).cloned().unwrap_or_default();
        println!(
            "{}",
            row(&format!("{kind} `{name}`"), "s", stats(v).as_ref())
        );
    }
    println!(
        "{}",
        row(
            "sum of the init steps",
            "s",
            stats(collect(&|t| t.pod_succeeded.map(|_| sum_init(t)))).as_ref()
        )
    );
    println!(
        "{}",
        row(
            "run − sum of the init steps",
            "s",
            stats(collect(&|t| {
                gap(t.pod_started, t.pod_succeeded).map(|r| r - sum_init(t))
            }))
            .as_ref()
        )
    );

    // The slowest reactions by name, to look up in the operator's log.
    for (label, f) in [
        (
            "(a)",
            (&|t: &Track| gap(t.pod_succeeded, t.job_added)) as &dyn Fn(&Track) -> Option<f64>,
        ),
        ("(b)", &|t: &Track| gap(t.job_complete, t.ready)),
        ("(c)", &|t: &Track| gap(t.artifact_added, t.pod_added)),
    ] {
        let mut v: Vec<(f64, &String)> =
            done.iter().filter_map(|(n, t)| Some((f(t)?, *n))).collect();
        v.sort_by(|x, y| y.0.total_cmp(&x.0));
        let top: Vec<String> = v
            .iter()
            .take(3)
            .map(|(d, n)| format!("{n} {:.1} ms", ms(*d)))
            .collect();
        println!("slowest {label}: {}", top.join(", "));
    }
    all_pass && done.len() == args.count
}

async fn run(env: &Env, args: &Args, sigs: &mut Signals) -> Result<bool> {
    let client = client_for(&env.cp.admin.kubeconfig).await?;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?,
        )
        .await?;
    let artifacts = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        NAMESPACE,
        &ApiResource::erase::<OSArtifact>(&()),
    );

    // The watches start, and have listed the empty namespace, before the first apply: the
    // first event of every object is then its ADDED.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (l1, r1) = oneshot::channel();
    let (l2, r2) = oneshot::channel();
    let (l3, r3) = oneshot::channel();
    let watches = [
        spawn_watch(
            Api::<OSArtifact>::namespaced(client.clone(), NAMESPACE),
            tx.clone(),
            l1,
            |o| Seen::Artifact(Box::new(o)),
        ),
        spawn_watch(
            Api::<Pod>::namespaced(client.clone(), NAMESPACE),
            tx.clone(),
            l2,
            |o| Seen::Pod(Box::new(o)),
        ),
        spawn_watch(
            Api::<Job>::namespaced(client.clone(), NAMESPACE),
            tx.clone(),
            l3,
            |o| Seen::Job(Box::new(o)),
        ),
    ];
    drop(tx);
    tokio::time::timeout(Duration::from_secs(60), async {
        r1.await?;
        r2.await?;
        r3.await
    })
    .await
    .context("the watches did not list within 60 s")?
    .context("a watch ended before listing")?;

    let histogram_before = scrape_reconciles(&client).await;
    let mut b = Bench::new(args.count);
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let (mut next, mut ended) = (0usize, 0usize);
    let mut retried: Vec<String> = Vec::new();
    let mut stopped_early = false;
    let parallel = args.parallel.max(1);
    println!(
        "applying {} ISO OSArtifacts in namespace {NAMESPACE}, {parallel} at a time",
        args.count
    );
    loop {
        while next < args.count && next - ended < parallel {
            let name = artifact_name(next);
            let t = create(&artifacts, &name, &mut retried).await;
            match (t, b.tracks.get_mut(&name)) {
                (Ok(t), Some(tr)) => tr.applied = Some(t),
                (Ok(_), None) => {}
                (Err(e), _) => {
                    println!("giving up on {name}: {e:#}");
                    stopped_early = true;
                    break;
                }
            }
            next += 1;
        }
        if ended == args.count || stopped_early {
            break;
        }
        tokio::select! {
            got = rx.recv() => {
                let Some((t, seen)) = got else { bail!("the watches ended") };
                if let Some(name) = b.record(t, seen) {
                    ended += 1;
                    let tr = &b.tracks[&name];
                    let what = match &tr.error {
                        Some(m) => format!("Error: {m}"),
                        None => format!(
                            "Ready in {:.1} s",
                            gap(tr.applied, tr.ready).unwrap_or_default()
                        ),
                    };
                    println!("[{ended:>3}/{}] {name} {what}", args.count);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                println!("timeout after {} s: {} of {} ended", args.timeout, ended, args.count);
                break;
            }
            _ = sigs.int.recv() => { println!("interrupted"); break; }
            _ = sigs.term.recv() => { println!("terminated"); break; }
        }
    }
    // Events already received count too (a Ready that arrived with the last one).
    while let Ok((t, seen)) = rx.try_recv() {
        b.record(t, seen);
    }
    for w in watches {
        w.abort();
    }
    if !retried.is_empty() {
        println!("{} create(s) retried:", retried.len());
        for r in &retried {
            println!("  {r}");
        }
    }
    let ok = report(&b, args, start.elapsed()) && !stopped_early;
    match (histogram_before, scrape_reconciles(&client).await) {
        (Ok(before), Ok(after)) => report_reconciles(&before, &after),
        (Err(e), _) | (_, Err(e)) => println!("\nthe operator's metrics could not be read: {e:#}"),
    }
    Ok(ok)
}

const RECONCILE_METRIC: &str = "osartifact_operator_reconcile_duration_seconds";

/// The operator's own reconcile-duration histogram: (upper bound in seconds, cumulative count)
/// per bucket, the sum and the count.
#[derive(Default)]
struct Reconciles {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Reads the histogram from every operator Pod's admin port (one replica, but a rollout could
/// leave two) and adds them up.
async fn scrape_reconciles(client: &Client) -> Result<Reconciles> {
    let pods = Api::<Pod>::namespaced(client.clone(), SYSTEM_NAMESPACE)
        .list(&ListParams::default().labels("app.kubernetes.io/name=osartifact-operator"))
        .await?;
    let mut total = Reconciles::default();
    for pod in pods {
        let Some(ip) = pod.status.and_then(|s| s.pod_ip) else {
            continue;
        };
        let (code, body) =
            tokio::task::spawn_blocking(move || http::get(&format!("{ip}:8080"), "/metrics"))
                .await??;
        if code != 200 {
            bail!("GET /metrics on the operator Pod: HTTP {code}");
        }
        let one = parse_reconciles(&body);
        if total.buckets.is_empty() {
            total.buckets = one.buckets.iter().map(|(le, _)| (*le, 0.0)).collect();
        }
        for ((_, t), (_, n)) in total.buckets.iter_mut().zip(&one.buckets) {
            *t += n;
        }
        total.sum += one.sum;
        total.count += one.count;
    }
    if total.buckets.is_empty() {
        bail!("no operator Pod with {RECONCILE_METRIC}");
    }
    Ok(total)
}

fn parse_reconciles(text: &str) -> Reconciles {
    let mut r = Reconciles::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(RECONCILE_METRIC) else {
            continue;
        };
        let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if let Some(le) = rest
            .strip_prefix("_bucket{le=\"")
            .and_then(|r| r.split('"').next())
        {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            r.buckets.push((le, value));
        } else if rest.starts_with("_sum") {
            r.sum = value;
        } else if rest.starts_with("_count") {
            r.count = value;
        }
    }
    r
}

/// The reconciles made during the run (after − before): how many, their mean, and the
/// share that finished within each bucket bound.
fn report_reconciles(before: &Reconciles, after: &Reconciles) {
    let count = after.count - before.count;
    if count <= 0.0 {
        println!("\nthe operator's metrics show no reconcile during the run");
        return;
    }
    let mean_ms = (after.sum - before.sum) / count * 1e3;
    println!(
        "\nThe operator's reconciles during the run (its {RECONCILE_METRIC} histogram): {count} \
         reconciles, mean {mean_ms:.1} ms"
    );
    let mut shares: Vec<String> = Vec::new();
    let before_buckets = before.buckets.iter().chain(std::iter::repeat(&(0.0, 0.0)));
    for ((le, a), (_, b)) in after.buckets.iter().zip(before_buckets) {
        let share = (a - b) / count * 100.0;
        shares.push(format!("≤ {:.0} ms: {share:.1}%", le * 1e3));
        // The buckets above the slowest reconcile say nothing more.
        if !le.is_finite() || share >= 100.0 {
            break;
        }
    }
    println!("  {}", shares.join(", "));
}

/// Creates artifact `name`; returns when the create that succeeded was sent. A call the
/// apiserver could not pass to the webhook (a connection reset on a reused keep-alive
/// connection was seen once) is retried a few times, each retry noted in `retried`.
async fn create(
    artifacts: &Api<DynamicObject>,
    name: &str,
    retried: &mut Vec<String>,
) -> Result<Instant> {
    let obj = artifact(name)?;
    let mut attempt = 1;
    loop {
        let t = Instant::now();
        match artifacts.create(&PostParams::default(), &obj).await {
            Ok(_) => return Ok(t),
            // An earlier attempt went through after all.
            Err(kube::Error::Api(e)) if e.code == 409 => return Ok(t),
            Err(e) if attempt < 5 => {
                let why = match &e {
                    kube::Error::Api(s) => format!("HTTP {}: {}", s.code, s.message),
                    other => other.to_string(),
                };
                retried.push(format!("{name} (attempt {attempt}): {why}"));
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {name}")),
        }
    }
}

/// SIGINT and SIGTERM, caught so that the run ends through `main` and the exit hooks tear the
/// cluster down.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

fn main() -> Result<()> {
    let args = Args::parse();
    isolation::entered()
        .context("`just bench-builds` runs as root (namespaces, mounts, cgroups)")?;
    let rt = tokio::runtime::Runtime::new()?;
    // Caught from here on: a Ctrl-C during start-up then ends the run as soon as it begins.
    let mut sigs = {
        let _in_runtime = rt.enter();
        Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        }
    };
    println!("==> starting the one-node cluster and installing manifests/default");
    let env = Env::start("bench-builds")?;
    env.node.as_ref().context("the benchmark needs the node")?;
    let ok = rt.block_on(run(&env, &args, &mut sigs))?;
    // The cluster's processes, cgroups and mounts go with the exit hooks.
    if !ok {
        bail!("not every build was Ready, or a reaction target was missed (see above)");
    }
    Ok(())
}
