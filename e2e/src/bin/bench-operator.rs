//! `just bench-operator`: on the local control plane of the end-to-end suite, creates N
//! OSArtifacts at once, spread over namespaces, each with one exporter (`--exporters`), and
//! measures the time until every one has its builder pod and phase Building, then, after every
//! builder pod and exporter pod is marked finished (as a kubelet would), until all are Ready;
//! the operator's peak RSS; and the operator's requests, counted by the apiserver's audit log
//! by verb and resource, per artifact, with the status writes and Events beside the transitions.
//!
//! The operator runs as its ServiceAccount with the RBAC of `manifests/rbac`, under the
//! apiserver's default API Priority and Fairness; the benchmark reports what APF made it wait
//! or refused.
//!
//! The baseline, in the same run and on the same apiserver: a client that writes exactly what
//! the operator writes (the children from `osartifact-operator plan`, each status change and its
//! Event) as fast as it can, with no watches of its own beyond what finishing the exporters needs
//! and no decisions. It is the ceiling for any controller of this API on this machine; the
//! operator's figures are reported as ratios to it.
//!
//! `--counts 100,500,2000` runs each count in a fresh control plane (a child process each) and
//! prints the curve.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, ResourceExt};
use osartifact_e2e::env::Env;
use osartifact_e2e::operator::Operator;
use osartifact_e2e::{audit, paths};
use osartifact_shared::names::{ARTIFACT_UID_LABEL, FIELD_MANAGER};
use osartifact_shared::{OSArtifact, Phase};
// serde through k8s-openapi's re-export: the e2e crate does not depend on it directly.
use k8s_openapi::serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(about = "Operator throughput, requests and memory against the local control plane")]
struct Args {
    /// Number of OSArtifacts.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Run each of these counts in a fresh control plane and print the curve (e.g. 100,500,2000).
    #[arg(long, value_delimiter = ',')]
    counts: Vec<usize>,
    /// Namespaces the artifacts are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Exporter Jobs per artifact (0 or 1).
    #[arg(long, default_value_t = 1)]
    exporters: usize,
    /// Requests in flight from the benchmark client (and the baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up a stage after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Print the figures as one JSON line (used by --counts).
    #[arg(long, hide = true)]
    json: bool,
}

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";
const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn artifact_yaml(name: &str, exporters: usize) -> String {
    let mut y = format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: {name}}}\nspec:\n  imageName: \"{IMAGE}\"\n  iso: true\n"
    );
    if exporters > 0 {
        y.push_str("  exporters:\n");
        for _ in 0..exporters {
            y.push_str("  - template:\n      spec:\n        containers: [{name: upload, image: \"alpine:3.20\"}]\n");
        }
    }
    y
}

fn artifact(name: &str, exporters: usize) -> Result<OSArtifact> {
    Ok(serde_json::from_value(serde_saphyr::from_str::<Value>(
        &artifact_yaml(name, exporters),
    )?)?)
}

/// The objects the operator would create for `bench-0`, from `osartifact-operator plan`.
fn planned_children(exporters: usize) -> Result<Vec<Value>> {
    use std::io::Write;
    let bin = paths::product_binary("osartifact-operator")?;
    let mut child = std::process::Command::new(bin)
        .args(["plan", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running osartifact-operator plan")?;
    child
        .stdin
        .take()
        .context("plan stdin")?
        .write_all(artifact_yaml("bench-0", exporters).as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("osartifact-operator plan failed");
    }
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout)?)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `template` (planned for bench-0) for artifact `name` with UID `uid` in `namespace`.
fn child_for(template: &Value, namespace: &str, name: &str, uid: &str) -> Result<Value> {
    let text = template
        .to_string()
        .replace(PLACEHOLDER_UID, uid)
        .replace("bench-0", name);
    let mut child: Value = serde_json::from_str(&text)?;
    child["metadata"]["namespace"] = json!(namespace);
    Ok(child)
}

async fn client_for(kubeconfig: &std::path::Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

/// Runs `f(i)` for 0..n with `c` in flight.
async fn for_each<F, Fut>(n: usize, c: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    stream::iter(0..n)
        .map(f)
        .buffer_unordered(c)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            bail!("{what}: not done after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Where the artifacts of one run live: `bench-<i>` in namespace `<prefix>-<i mod k>`.
#[derive(Clone)]
struct Layout {
    prefix: String,
    namespaces: usize,
    count: usize,
}

impl Layout {
    fn namespace(&self, i: usize) -> String {
        format!("{}-{}", self.prefix, i % self.namespaces.max(1))
    }
    fn name(i: usize) -> String {
        format!("bench-{i}")
    }
    fn owns(&self, namespace: &str) -> bool {
        namespace
            .strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.starts_with('-'))
    }
    async fn create_namespaces(&self, client: &Client) -> Result<()> {
        for k in 0..self.namespaces.min(self.count).max(1) {
            create_namespace(client, &format!("{}-{k}", self.prefix)).await?;
        }
        Ok(())
    }
}

/// A cluster-wide reflector store of `K` (optionally label-selected), kept while the task runs.
fn store_of<K>(client: &Client, labels: Option<&str>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let mut cfg = watcher::Config::default();
    if let Some(l) = labels {
        cfg = cfg.labels(l);
    }
    let stream = watcher(Api::<K>::all(client.clone()), cfg)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        stream.for_each(|_| async {}).await;
    });
    (reader, task)
}

/// Marks every exporter Job's pod Succeeded as a kubelet would (the job controller then
/// completes the Job), in the layout's namespaces, until aborted.
fn finish_job_pods(
    client: &Client,
    layout: &Layout,
    concurrency: usize,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    let layout = layout.clone();
    tokio::spawn(async move {
        let done = Arc::new(Mutex::new(HashSet::<String>::new()));
        let cfg = watcher::Config::default().labels(JOB_NAME_LABEL);
        watcher(Api::<Pod>::all(client.clone()), cfg)
            .default_backoff()
            .applied_objects()
            .filter_map(|p| async move { p.ok() })
            .filter(|p| {
                let ns = p.namespace().unwrap_or_default();
                let fresh = p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded");
                futures::future::ready(layout.owns(&ns) && fresh)
            })
            .for_each_concurrent(concurrency, |p| {
                let (client, done) = (client.clone(), done.clone());
                async move {
                    let key = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
                    if !done.lock().map(|mut d| d.insert(key)).unwrap_or(false) {
                        return;
                    }
                    let container = p
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .map(|c| c.name.clone())
                        .unwrap_or_default();
                    let body = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
                        "name": container, "image": "x", "imageID": "", "ready": false,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}});
                    let pods: Api<Pod> =
                        Api::namespaced(client, &p.namespace().unwrap_or_default());
                    let _ = pods
                        .patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(&body))
                        .await;
                }
            })
            .await;
    })
}

/// Marks every builder pod Succeeded, as the end-to-end tests do in place of a kubelet.
async fn finish_builds(client: &Client, layout: &Layout, c: usize) -> Result<()> {
    let body = json!({"status": {"phase": "Succeeded"}});
    for_each(layout.count, c, |i| {
        let (client, body) = (client.clone(), body.clone());
        let ns = layout.namespace(i);
        async move {
            Api::<Pod>::namespaced(client, &ns)
                .patch_status(
                    &format!("{}-build", Layout::name(i)),
                    &PatchParams::default(),
                    &Patch::Merge(&body),
                )
                .await?;
            Ok(())
        }
    })
    .await
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(crate = "k8s_openapi::serde")]
struct Figures {
    count: usize,
    building_s: f64,
    ready_s: f64,
}

fn ready_phase(list: &Store<OSArtifact>, layout: &Layout, phase: Phase) -> usize {
    list.state()
        .iter()
        .filter(|a| layout.owns(&a.namespace().unwrap_or_default()))
        .filter(|a| a.status.as_ref().and_then(|s| s.phase) == Some(phase))
        .count()
}

fn status_body(phase: Phase, generation: i64) -> Value {
    json!({"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
           "status": {"phase": phase.as_str(), "message": "benchmark baseline",
                      "observedGeneration": generation}})
}

/// The Event the operator records for a transition.
fn event_for(a: &OSArtifact, phase: Phase) -> Result<Event> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("{}.{}", a.name_any(), phase.as_str().to_lowercase())},
        "eventTime": Timestamp::now().to_string(),
        "reportingController": FIELD_MANAGER,
        "reportingInstance": "bench-baseline",
        "action": "Reconcile",
        "reason": phase.as_str(),
        "type": "Normal",
        "note": "benchmark baseline",
        "regarding": {"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
            "name": a.name_any(), "namespace": a.namespace(), "uid": a.uid()},
    }))?)
}

/// One status write and its Event, as the operator makes them.
async fn transition(client: &Client, a: &OSArtifact, phase: Phase) -> Result<()> {
    let ns = a.namespace().unwrap_or_default();
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    Api::<OSArtifact>::namespaced(client.clone(), &ns)
        .patch_status(&a.name_any(), &apply, &Patch::Apply(status_body(phase, 1)))
        .await?;
    Api::<Event>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &event_for(a, phase)?)
        .await?;
    Ok(())
}

/// Creates the object `body` of the planned kind (ConfigMap, PVC, Pod or Job), as the operator
/// does: a POST under its field manager.
async fn create_child(client: &Client, ns: &str, body: Value) -> Result<()> {
    let obj: DynamicObject = serde_json::from_value(body)?;
    let types = obj
        .types
        .clone()
        .context("planned object without apiVersion/kind")?;
    let gvk = kube::core::GroupVersionKind::try_from(&types)?;
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
        .create(&pp, &obj)
        .await?;
    Ok(())
}

fn job_complete(j: &Job) -> bool {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                (c.type_ == "Complete" || c.type_ == "SuccessCriteriaMet") && c.status == "True"
            })
        })
}

/// The ceiling: the operator's writes, made directly.
async fn baseline(
    client: &Client,
    args: &Args,
    layout: &Layout,
    children: &[Value],
) -> Result<Figures> {
    layout.create_namespaces(client).await?;
    let (builds, jobs): (Vec<&Value>, Vec<&Value>) =
        children.iter().partition(|c| c["kind"] != "Job");
    let created: Arc<Mutex<BTreeMap<usize, OSArtifact>>> = Arc::default();
    let start = Instant::now();
    for_each(layout.count, args.concurrency, |i| {
        let (client, created, builds) = (client.clone(), created.clone(), builds.clone());
        let ns = layout.namespace(i);
        async move {
            let name = Layout::name(i);
            let a = Api::<OSArtifact>::namespaced(client.clone(), &ns)
                .create(&PostParams::default(), &artifact(&name, args.exporters)?)
                .await?;
            let uid = a.uid().unwrap_or_default();
            for template in builds {
                create_child(&client, &ns, child_for(template, &ns, &name, &uid)?).await?;
            }
            transition(&client, &a, Phase::Building).await?;
            if let Ok(mut m) = created.lock() {
                m.insert(i, a);
            }
            Ok(())
        }
    })
    .await?;
    let building = start.elapsed();

    let (job_store, job_task) = store_of::<Job>(client, Some(ARTIFACT_UID_LABEL));
    let finisher = finish_job_pods(client, layout, args.concurrency);
    let artifacts = created.lock().map(|m| m.clone()).unwrap_or_default();
    let start = Instant::now();
    finish_builds(client, layout, args.concurrency).await?;
    let timeout = Duration::from_secs(args.timeout);
    for_each(layout.count, args.concurrency, |i| {
        let (client, jobs, job_store) = (client.clone(), jobs.clone(), job_store.clone());
        let ns = layout.namespace(i);
        let a = artifacts.get(&i).cloned();
        async move {
            let a = a.context("created artifact")?;
            if !jobs.is_empty() {
                let uid = a.uid().unwrap_or_default();
                for template in &jobs {
                    create_child(&client, &ns, child_for(template, &ns, &a.name_any(), &uid)?)
                        .await?;
                }
                transition(&client, &a, Phase::Exporting).await?;
                let job_name = format!("{}-export-0", a.name_any());
                let started = Instant::now();
                loop {
                    let done = job_store
                        .get(&reflector::ObjectRef::new(&job_name).within(&ns))
                        .is_some_and(|j| job_complete(&j));
                    if done {
                        break;
                    }
                    if started.elapsed() > timeout {
                        bail!("Job {ns}/{job_name} not complete after {timeout:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            transition(&client, &a, Phase::Ready).await
        }
    })
    .await?;
    let ready = start.elapsed();
    finisher.abort();
    job_task.abort();
    Ok(Figures {
        count: layout.count,
        building_s: building.as_secs_f64(),
        ready_s: ready.as_secs_f64(),
    })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(crate = "k8s_openapi::serde")]
struct OperatorRun {
    figures: Figures,
    peak_rss_kib: u64,
    /// `verb resource` → requests, until every artifact was Building.
    to_building: BTreeMap<String, usize>,
    /// The same from then until every artifact was Ready.
    to_ready: BTreeMap<String, usize>,
    /// The phase-transition metric, by phase.
    transitions: BTreeMap<String, f64>,
    /// API Priority and Fairness, for the operator's requests (FlowSchema service-accounts).
    apf_rejected: f64,
    apf_waited_mean_ms: f64,
}

/// The operator, as its ServiceAccount, over the layout's namespaces.
async fn with_operator(
    env: &Env,
    client: &Client,
    args: &Args,
    layout: &Layout,
) -> Result<OperatorRun> {
    layout.create_namespaces(client).await?;
    let apf_before = apf(env)?;
    let mut operator = Operator::start(
        &env.log_dir,
        "osartifact-operator",
        &env.operator_id,
        &["--leader-election=false"],
    )?;
    let pid = operator
        .proc
        .as_ref()
        .map(|p| p.pid)
        .context("operator pid")?;
    let (artifacts, art_task) = store_of::<OSArtifact>(client, None);
    let (pods, pod_task) = store_of::<Pod>(client, Some(ARTIFACT_UID_LABEL));
    let n = layout.count;
    let timeout = Duration::from_secs(args.timeout);

    let start = Instant::now();
    for_each(n, args.concurrency, |i| {
        let client = client.clone();
        let ns = layout.namespace(i);
        async move {
            Api::<OSArtifact>::namespaced(client, &ns)
                .create(
                    &PostParams::default(),
                    &artifact(&Layout::name(i), args.exporters)?,
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    wait_until("every artifact Building with its pod", timeout, || {
        let builder_pods = pods
            .state()
            .iter()
            .filter(|p| layout.owns(&p.namespace().unwrap_or_default()))
            .filter(|p| p.name_any().ends_with("-build"))
            .count();
        ready_phase(&artifacts, layout, Phase::Building) == n && builder_pods == n
    })
    .await?;
    let building = start.elapsed();
    let second_stage = Timestamp::now();

    let finisher = finish_job_pods(client, layout, args.concurrency);
    let start = Instant::now();
    finish_builds(client, layout, args.concurrency).await?;
    wait_until("every artifact Ready", timeout, || {
        ready_phase(&artifacts, layout, Phase::Ready) == n
    })
    .await?;
    let ready = start.elapsed();
    finisher.abort();
    // Let the last Events land before the operator stops.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = operator.metrics().unwrap_or_default();
    let peak_rss_kib = peak_rss_kib(pid).unwrap_or(0);
    operator.stop();
    art_task.abort();
    pod_task.abort();
    let apf_after = apf(env)?;

    let requests = audit::read(&env.cp.audit_log)?;
    let ours: Vec<&audit::Request> = requests
        .iter()
        .filter(|r| r.namespace.as_deref().is_some_and(|ns| layout.owns(ns)))
        .collect();
    let to_building = audit::count(ours.iter().copied().filter(|r| r.received < second_stage));
    let to_ready = audit::count(ours.iter().copied().filter(|r| r.received >= second_stage));
    let transitions = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("osartifact_operator_phase_transitions_total{phase=\"")?;
            let (phase, value) = rest.split_once("\"} ")?;
            Some((phase.to_string(), value.trim().parse().ok()?))
        })
        .collect();
    let waited = apf_after.wait_count - apf_before.wait_count;
    Ok(OperatorRun {
        figures: Figures {
            count: n,
            building_s: building.as_secs_f64(),
            ready_s: ready.as_secs_f64(),
        },
        peak_rss_kib,
        to_building,
        to_ready,
        transitions,
        apf_rejected: apf_after.rejected - apf_before.rejected,
        apf_waited_mean_ms: if waited > 0.0 {
            (apf_after.wait_sum - apf_before.wait_sum) / waited * 1000.0
        } else {
            0.0
        },
    })
}

#[derive(Default)]
struct Apf {
    rejected: f64,
    wait_sum: f64,
    wait_count: f64,
}

/// APF's figures for the FlowSchema that ServiceAccounts fall under by default.
fn apf(env: &Env) -> Result<Apf> {
    let out = env.cp.kubectl().run(&["get", "--raw", "/metrics"])?;
    if !out.success {
        bail!("reading the apiserver's metrics: {out}");
    }
    let text = out.stdout;
    let mut apf = Apf::default();
    for l in text
        .lines()
        .filter(|l| l.contains("flow_schema=\"service-accounts\""))
    {
        let value: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if l.starts_with("apiserver_flowcontrol_rejected_requests_total") {
            apf.rejected += value;
        } else if l.starts_with("apiserver_flowcontrol_request_wait_duration_seconds_sum") {
            apf.wait_sum += value;
        } else if l.starts_with("apiserver_flowcontrol_request_wait_duration_seconds_count") {
            apf.wait_count += value;
        }
    }
    Ok(apf)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(crate = "k8s_openapi::serde")]
struct Run {
    baseline: Figures,
    operator: OperatorRun,
    exporters: usize,
    namespaces: usize,
}

async fn delete_namespace_and_wait(client: &Client, name: &str, timeout: Duration) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.delete(name, &DeleteParams::default()).await?;
    let start = Instant::now();
    while api.get_opt(name).await?.is_some() {
        if start.elapsed() > timeout {
            bail!("namespace {name} not gone after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn run_single(args: &Args) -> Result<Run> {
    let env = Env::start("bench-operator")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = client_for(&env.cp.admin.kubeconfig).await?;
        let children = planned_children(args.exporters)?;
        // A first, unmeasured round warms the apiserver (schema caches, connections); its
        // namespace is gone before the operator starts, so the operator never sees it.
        let warm = Layout {
            prefix: "warm".into(),
            namespaces: 1,
            count: args.count.min(50),
        };
        baseline(&client, args, &warm, &children).await?;
        delete_namespace_and_wait(&client, "warm-0", Duration::from_secs(args.timeout)).await?;
        // The operator first, then the baseline once it is stopped: it watches every namespace.
        let op = with_operator(
            &env,
            &client,
            args,
            &Layout {
                prefix: "op".into(),
                namespaces: args.namespaces,
                count: args.count,
            },
        )
        .await?;
        let base = baseline(
            &client,
            args,
            &Layout {
                prefix: "base".into(),
                namespaces: args.namespaces,
                count: args.count,
            },
            &children,
        )
        .await?;
        Ok(Run {
            baseline: base,
            operator: op,
            exporters: args.exporters,
            namespaces: args.namespaces,
        })
    })
}

fn total(m: &BTreeMap<String, usize>) -> usize {
    m.values().sum()
}

fn print_run(r: &Run) {
    let n = r.operator.figures.count as f64;
    let ratio = |a: f64, b: f64| a / b.max(1e-9);
    println!(
        "bench-operator: {} OSArtifacts over {} namespaces, {} exporter(s) each, profile {}",
        r.operator.figures.count,
        r.namespaces,
        r.exporters,
        paths::profile()
    );
    println!("{:<44} {:>10} {:>10}", "", "Building", "Ready");
    println!(
        "{:<44} {:>9.2}s {:>9.2}s",
        "baseline (the same writes, made directly)", r.baseline.building_s, r.baseline.ready_s
    );
    println!(
        "{:<44} {:>9.2}s {:>9.2}s",
        "osartifact-operator", r.operator.figures.building_s, r.operator.figures.ready_s
    );
    println!(
        "{:<44} {:>10.2} {:>10.2}",
        "ratio operator / baseline",
        ratio(r.operator.figures.building_s, r.baseline.building_s),
        ratio(r.operator.figures.ready_s, r.baseline.ready_s)
    );
    println!(
        "operator peak RSS: {:.1} MiB",
        r.operator.peak_rss_kib as f64 / 1024.0
    );
    println!("operator requests per artifact (apiserver audit log), by verb and resource:");
    let keys: std::collections::BTreeSet<&String> = r
        .operator
        .to_building
        .keys()
        .chain(r.operator.to_ready.keys())
        .collect();
    println!("  {:<40} {:>10} {:>10}", "", "to Building", "to Ready");
    for k in keys {
        let a = r.operator.to_building.get(k).copied().unwrap_or(0) as f64;
        let b = r.operator.to_ready.get(k).copied().unwrap_or(0) as f64;
        println!("  {:<40} {:>10.2} {:>10.2}", k, a / n, b / n);
    }
    let all: usize = total(&r.operator.to_building) + total(&r.operator.to_ready);
    let events = r
        .operator
        .to_building
        .get("create events")
        .copied()
        .unwrap_or(0)
        + r.operator
            .to_ready
            .get("create events")
            .copied()
            .unwrap_or(0);
    println!(
        "  total {:.2} per artifact ({:.2} without Events)",
        all as f64 / n,
        (all - events) as f64 / n
    );
    let status_writes = r
        .operator
        .to_building
        .get("patch osartifacts/status")
        .copied()
        .unwrap_or(0)
        + r.operator
            .to_ready
            .get("patch osartifacts/status")
            .copied()
            .unwrap_or(0);
    let per = if r.exporters > 0 { 3 } else { 2 };
    let expected = per * r.operator.figures.count;
    println!(
        "status writes {status_writes}, Events {events}, transitions {expected} (Building, {}Ready): {} duplicate status writes, {} duplicate Events",
        if r.exporters > 0 { "Exporting, " } else { "" },
        status_writes.saturating_sub(expected),
        events.saturating_sub(expected)
    );
    println!("phase-transition metric: {:?}", r.operator.transitions);
    println!(
        "API Priority and Fairness (FlowSchema service-accounts): {} rejected, mean queue wait {:.2} ms",
        r.operator.apf_rejected, r.operator.apf_waited_mean_ms
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.counts.is_empty() {
        let run = run_single(&args)?;
        if args.json {
            println!("{}", serde_json::to_string(&run)?);
        } else {
            print_run(&run);
        }
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut runs = Vec::new();
    for &count in &args.counts {
        eprintln!("bench-operator: {count} OSArtifacts in a fresh control plane ...");
        let out = std::process::Command::new(&exe)
            .args([
                format!("--count={count}"),
                format!("--namespaces={}", args.namespaces),
                format!("--exporters={}", args.exporters),
                format!("--concurrency={}", args.concurrency),
                format!("--timeout={}", args.timeout),
                "--json".into(),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !out.status.success() {
            eprintln!(
                "bench-operator: {count} stopped early (the control plane saturated or a stage timed out); the curve ends here"
            );
            break;
        }
        let line = String::from_utf8(out.stdout)?;
        let run: Run = serde_json::from_str(line.lines().last().unwrap_or_default())?;
        print_run(&run);
        println!();
        runs.push(run);
    }
    println!(
        "curve ({} namespaces, {} exporter(s) each):",
        args.namespaces, args.exporters
    );
    println!(
        "{:>7} {:>11} {:>9} {:>11} {:>9} {:>13} {:>10}",
        "count", "Building s", "ratio", "Ready s", "ratio", "requests/art", "peak MiB"
    );
    for r in &runs {
        let n = r.operator.figures.count as f64;
        let all = total(&r.operator.to_building) + total(&r.operator.to_ready);
        println!(
            "{:>7} {:>11.2} {:>9.2} {:>11.2} {:>9.2} {:>13.2} {:>10.1}",
            r.operator.figures.count,
            r.operator.figures.building_s,
            r.operator.figures.building_s / r.baseline.building_s.max(1e-9),
            r.operator.figures.ready_s,
            r.operator.figures.ready_s / r.baseline.ready_s.max(1e-9),
            all as f64 / n,
            r.operator.peak_rss_kib as f64 / 1024.0
        );
    }
    Ok(())
}
