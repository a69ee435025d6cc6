//! `just bench-operator`: on the local control plane of the end-to-end suite, creates N
//! OSArtifacts at once and measures the time until every one has its builder pod and phase
//! Building, then, after marking every build finished, until all are Ready; and the operator's
//! peak RSS.
//!
//! The baseline, in the same run and on the same apiserver: a client that writes exactly what
//! the operator writes (the artifact, then its ConfigMap, PVC and Pod from `osartifact-operator
//! plan`, then the status twice) as fast as it can, with no watches and no decisions. It is the
//! ceiling for any controller of this API on this machine; the operator's figures are reported
//! as ratios to it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use osartifact_e2e::env::Env;
use osartifact_e2e::operator::Operator;
use osartifact_e2e::paths;
use osartifact_shared::names::{ARTIFACT_UID_LABEL, FIELD_MANAGER};
use osartifact_shared::{OSArtifact, Phase};
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(about = "Operator throughput and memory against the local control plane")]
struct Args {
    /// Number of OSArtifacts.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Requests in flight from the benchmark client (and the baseline).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up a stage after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";
const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

fn artifact_yaml(name: &str) -> String {
    format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: {name}}}\nspec: {{imageName: \"{IMAGE}\", iso: true}}\n"
    )
}

fn artifact(name: &str) -> Result<OSArtifact> {
    Ok(serde_json::from_value(serde_saphyr::from_str::<Value>(
        &artifact_yaml(name),
    )?)?)
}

/// The children the operator would apply for `bench-0`, from `osartifact-operator plan`.
fn planned_children() -> Result<Vec<Value>> {
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
        .write_all(artifact_yaml("bench-0").as_bytes())?;
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
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
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

async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    while !done().await? {
        if start.elapsed() > timeout {
            bail!("{what}: not done after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn status_body(phase: Phase) -> Value {
    json!({"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
           "status": {"phase": phase.as_str(), "message": "benchmark baseline"}})
}

/// Marks every builder pod Succeeded, as the end-to-end tests do in place of a kubelet.
async fn finish_builds(pods: &Api<Pod>, n: usize, c: usize) -> Result<()> {
    let body = json!({"status": {"phase": "Succeeded"}});
    for_each(n, c, |i| {
        let (pods, body) = (pods.clone(), body.clone());
        async move {
            pods.patch_status(
                &format!("bench-{i}-build"),
                &PatchParams::default(),
                &Patch::Merge(&body),
            )
            .await?;
            Ok(())
        }
    })
    .await
}

struct Figures {
    building: Duration,
    ready: Duration,
}

/// The ceiling: the operator's writes, made directly, in namespace `ns`.
async fn baseline(client: &Client, args: &Args, children: &[Value], ns: &str) -> Result<Figures> {
    create_namespace(client, ns).await?;
    let artifacts: Api<OSArtifact> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let start = Instant::now();
    for_each(args.count, args.concurrency, |i| {
        let (client, artifacts, apply) = (client.clone(), artifacts.clone(), apply.clone());
        async move {
            let name = format!("bench-{i}");
            let created = artifacts
                .create(&PostParams::default(), &artifact(&name)?)
                .await?;
            let uid = created.uid().unwrap_or_default();
            artifacts
                .patch_status(&name, &apply, &Patch::Apply(status_body(Phase::Pending)))
                .await?;
            for template in children {
                let obj: DynamicObject =
                    serde_json::from_value(child_for(template, ns, &name, &uid)?)?;
                let kind = obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
                let child_name = obj.name_any();
                let body = serde_json::to_value(&obj)?;
                match kind {
                    "ConfigMap" => {
                        Api::<ConfigMap>::namespaced(client.clone(), ns)
                            .patch(&child_name, &apply, &Patch::Apply(body))
                            .await?;
                    }
                    "PersistentVolumeClaim" => {
                        Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
                            .patch(&child_name, &apply, &Patch::Apply(body))
                            .await?;
                    }
                    "Pod" => {
                        Api::<Pod>::namespaced(client.clone(), ns)
                            .patch(&child_name, &apply, &Patch::Apply(body))
                            .await?;
                    }
                    other => bail!("unexpected planned object {other}"),
                }
            }
            artifacts
                .patch_status(&name, &apply, &Patch::Apply(status_body(Phase::Building)))
                .await?;
            Ok(())
        }
    })
    .await?;
    let building = start.elapsed();
    let start = Instant::now();
    finish_builds(&pods, args.count, args.concurrency).await?;
    for_each(args.count, args.concurrency, |i| {
        let (artifacts, apply) = (artifacts.clone(), apply.clone());
        async move {
            artifacts
                .patch_status(
                    &format!("bench-{i}"),
                    &apply,
                    &Patch::Apply(status_body(Phase::Ready)),
                )
                .await?;
            Ok(())
        }
    })
    .await?;
    Ok(Figures {
        building,
        ready: start.elapsed(),
    })
}

fn count_phase(list: &[OSArtifact], phase: Phase) -> usize {
    list.iter()
        .filter(|a| a.status.as_ref().and_then(|s| s.phase) == Some(phase))
        .count()
}

/// The operator, watching only its namespace so the baseline's artifacts stay out of it.
async fn with_operator(env: &Env, client: &Client, args: &Args) -> Result<(Figures, u64)> {
    let ns = "bench-operator";
    create_namespace(client, ns).await?;
    let mut operator = Operator::start(
        &env.log_dir,
        "osartifact-operator",
        &env.operator_id,
        &[
            "--leader-election=false",
            &format!("--watch-namespace={ns}"),
        ],
    )?;
    let pid = operator
        .proc
        .as_ref()
        .map(|p| p.pid)
        .context("operator pid")?;
    let artifacts: Api<OSArtifact> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let n = args.count;
    let timeout = Duration::from_secs(args.timeout);

    let start = Instant::now();
    for_each(n, args.concurrency, |i| {
        let artifacts = artifacts.clone();
        async move {
            artifacts
                .create(&PostParams::default(), &artifact(&format!("bench-{i}"))?)
                .await?;
            Ok(())
        }
    })
    .await?;
    wait_until(
        "every artifact Building with its pod",
        timeout,
        async || {
            let list = artifacts.list(&ListParams::default()).await?.items;
            let pods = pods
                .list_metadata(&ListParams::default().labels(ARTIFACT_UID_LABEL))
                .await?
                .items
                .len();
            Ok(count_phase(&list, Phase::Building) == n && pods == n)
        },
    )
    .await?;
    let building = start.elapsed();

    let start = Instant::now();
    finish_builds(&pods, n, args.concurrency).await?;
    wait_until("every artifact Ready", timeout, async || {
        let list = artifacts.list(&ListParams::default()).await?.items;
        Ok(count_phase(&list, Phase::Ready) == n)
    })
    .await?;
    let ready = start.elapsed();
    let rss = peak_rss_kib(pid).unwrap_or(0);
    operator.stop();
    Ok((Figures { building, ready }, rss))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let env = Env::start("bench-operator")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = client_for(&env.cp.admin.kubeconfig).await?;
        let children = planned_children()?;
        // A first, unmeasured round warms the apiserver (schema caches, connections).
        let warm = Args {
            count: args.count.min(50),
            ..args.clone()
        };
        baseline(&client, &warm, &children, "bench-warmup").await?;
        let base = baseline(&client, &args, &children, "bench-baseline").await?;
        let (op, rss) = with_operator(&env, &client, &args).await?;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "bench-operator: {} OSArtifacts, {} requests in flight, profile {}",
            args.count,
            args.concurrency,
            paths::profile()
        );
        println!("{:<44} {:>10} {:>10}", "", "Building", "Ready");
        println!(
            "{:<44} {:>9.2}s {:>9.2}s",
            "baseline (the same writes, made directly)",
            base.building.as_secs_f64(),
            base.ready.as_secs_f64()
        );
        println!(
            "{:<44} {:>9.2}s {:>9.2}s",
            "osartifact-operator",
            op.building.as_secs_f64(),
            op.ready.as_secs_f64()
        );
        println!(
            "{:<44} {:>10.2} {:>10.2}",
            "ratio operator / baseline",
            ratio(op.building, base.building),
            ratio(op.ready, base.ready)
        );
        println!("operator peak RSS: {:.1} MiB", rss as f64 / 1024.0);
        Ok(())
    })
}
