//! `just bench-operator`: against a running control plane (KUBECONFIG), creates N OSArtifacts at
//! once and reports the time until every one has its builder pod and phase Building, then (after
//! marking every build complete by patching the pod status, as the e2e tests do) until all are
//! Ready, and the operator's peak RSS. Starts the operator itself with `--operator-bin`, or reads
//! the peak RSS of a running one with `--operator-pid` (Linux /proc).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use osartifact_shared::{OSArtifact, OSArtifactSpec, Phase};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Number of OSArtifacts.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Operator binary to start (with --leader-election=false); otherwise one must be running.
    #[arg(long)]
    operator_bin: Option<String>,
    /// PID of an already running operator, for the peak RSS.
    #[arg(long)]
    operator_pid: Option<u32>,
    /// Give up after this many seconds per stage.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

async fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<(usize, usize)>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let (done, total) = check().await?;
        if done == total {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("{what}: only {done} of {total} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::try_default().await.context("KUBECONFIG")?;
    let ns = format!("bench-operator-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let mut child = None;
    if let Some(bin) = &args.operator_bin {
        child = Some(
            tokio::process::Command::new(bin)
                .args([
                    "run",
                    "--leader-election=false",
                    "--admin-listen=127.0.0.1:0",
                ])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting the operator")?,
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let pid = args
        .operator_pid
        .or_else(|| child.as_ref().and_then(|c| c.id()));
    let timeout = Duration::from_secs(args.timeout);
    let artifacts: Api<OSArtifact> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let start = Instant::now();
    stream::iter(0..args.count)
        .map(|i| {
            let api = artifacts.clone();
            async move {
                let a = OSArtifact::new(
                    &format!("bench-{i}"),
                    OSArtifactSpec {
                        image_name: Some(
                            "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0".into(),
                        ),
                        iso: true,
                        ..Default::default()
                    },
                );
                api.create(&PostParams::default(), &a).await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await?;
    let created = start.elapsed();
    let n = args.count;
    let building = wait_until("Building", timeout, async || {
        let list = artifacts.list(&ListParams::default()).await?;
        let with_pod: BTreeSet<String> = pods
            .list(&ListParams::default().labels(osartifact_shared::names::ARTIFACT_UID_LABEL))
            .await?
            .into_iter()
            .map(|p| p.name_any())
            .collect();
        let done = list
            .iter()
            .filter(|a| a.status.as_ref().and_then(|s| s.phase) == Some(Phase::Building))
            .filter(|a| with_pod.contains(&format!("{}-build", a.name_any())))
            .count();
        Ok((done, n))
    })
    .await?
        + created;

    let mark = Instant::now();
    let body = json!({"status": {"phase": "Succeeded"}});
    stream::iter(0..n)
        .map(|i| {
            let pods = pods.clone();
            let body = body.clone();
            async move {
                pods.patch_status(
                    &format!("bench-{i}-build"),
                    &PatchParams::default(),
                    &Patch::Merge(&body),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await?;
    let ready = wait_until("Ready", timeout, async || {
        let list = artifacts.list(&ListParams::default()).await?;
        let done = list
            .iter()
            .filter(|a| a.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready))
            .count();
        Ok((done, n))
    })
    .await?
        + Duration::ZERO;
    let rss = pid.and_then(peak_rss_kib);
    println!("osartifacts:                  {n}");
    println!(
        "create all:                   {:.2}s",
        created.as_secs_f64()
    );
    println!(
        "all Building with a pod:      {:.2}s (from the first create)",
        building.as_secs_f64()
    );
    println!(
        "all Ready after marking done: {:.2}s (marking took part of it: {:.2}s)",
        (mark.elapsed()).as_secs_f64(),
        (mark.elapsed() - ready).as_secs_f64()
    );
    match rss {
        Some(kib) => println!(
            "operator peak RSS:            {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!(
            "operator peak RSS:            unknown (pass --operator-bin or --operator-pid)"
        ),
    }
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    if let Some(mut c) = child {
        let _ = c.kill().await;
    }
    Ok(())
}
