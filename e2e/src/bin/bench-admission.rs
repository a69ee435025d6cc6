//! `just bench-admission`: the webhook's latency as the apiserver sees it. On the end-to-end
//! suite's loopback control plane, with release binaries, creates every OSArtifact of
//! `examples/` under fresh names and then updates its spec, `--rounds` times, and reads the
//! apiserver's own `apiserver_admission_webhook_admission_duration_seconds` for the validating
//! and the mutating webhook before and after: count, mean, and p50/p99 interpolated within the
//! apiserver's buckets (as Prometheus' histogram_quantile does).
//!
//! Three phases in one run, each in its own namespace:
//! 1. the webhook as shipped (allowed authorization answers cached, `--authorization-cache-ttl`);
//! 2. the webhook with the cache off (`--authorization-cache-ttl=0`: SubjectAccessReviews on
//!    every validating review);
//! 3. no webhook registered: the baseline for the client-side request times printed beside.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use osartifact_e2e::env::Env;
use osartifact_e2e::paths;
use osartifact_e2e::webhook::{WEBHOOK_NAMES, Webhook, webhook_latency_metrics};
use osartifact_shared::manifest;
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(about = "Admission webhook latency as the apiserver observes it")]
struct Args {
    /// Rounds: each creates every example OSArtifact once and updates its spec once.
    #[arg(long, default_value_t = 32)]
    rounds: usize,
}

/// A histogram read from the apiserver: bucket upper bounds → cumulative counts, sum, count.
#[derive(Default, Clone, Debug)]
struct Histogram {
    buckets: BTreeMap<u64, f64>,
    sum: f64,
    count: f64,
}

/// Bucket bounds in nanoseconds, so they order as integers.
fn le_ns(le: &str) -> u64 {
    if le == "+Inf" {
        u64::MAX
    } else {
        (le.parse::<f64>().unwrap_or(f64::MAX) * 1e9) as u64
    }
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// Every series of one webhook summed over its other labels (operation, rejected, type).
fn histogram(lines: &[String], webhook: &str) -> Histogram {
    let mut h = Histogram::default();
    for l in lines.iter().filter(|l| label(l, "name") == Some(webhook)) {
        let Some(v) = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if l.starts_with("apiserver_admission_webhook_admission_duration_seconds_bucket") {
            if let Some(le) = label(l, "le") {
                *h.buckets.entry(le_ns(le)).or_default() += v;
            }
        } else if l.starts_with("apiserver_admission_webhook_admission_duration_seconds_sum") {
            h.sum += v;
        } else if l.starts_with("apiserver_admission_webhook_admission_duration_seconds_count") {
            h.count += v;
        }
    }
    h
}

impl Histogram {
    fn minus(&self, before: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, c - before.buckets.get(le).copied().unwrap_or(0.0)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    fn mean_ms(&self) -> f64 {
        self.sum / self.count.max(1.0) * 1e3
    }

    /// histogram_quantile: linear within the bucket the rank falls in.
    fn quantile_ms(&self, q: f64) -> f64 {
        let rank = q * self.count;
        let mut lower = (0u64, 0.0f64);
        for (le, c) in &self.buckets {
            if *c >= rank {
                if *le == u64::MAX {
                    return lower.0 as f64 / 1e6;
                }
                let within = (rank - lower.1) / (c - lower.1).max(1e-9);
                return (lower.0 as f64 + (*le - lower.0) as f64 * within) / 1e6;
            }
            lower = (*le, *c);
        }
        f64::NAN
    }

    fn within_ms(&self, ms: f64) -> f64 {
        let bound = (ms * 1e6) as u64;
        let c = self.buckets.get(&bound).copied().unwrap_or(f64::NAN);
        c / self.count.max(1.0)
    }
}

async fn client_for(kubeconfig: &std::path::Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The examples' Secrets and OSArtifacts, as JSON without namespaces.
fn examples() -> Result<(Vec<Value>, Vec<Value>)> {
    let dir = paths::workspace().join("examples");
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let docs = manifest::read_documents(&files)?;
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        v
    };
    let secrets = docs
        .iter()
        .filter(|d| d.kind() == "Secret")
        .map(|d| strip(&d.value))
        .collect();
    let artifacts = docs
        .iter()
        .filter(|d| d.is_osartifact())
        .map(|d| strip(&d.value))
        .collect();
    Ok((secrets, artifacts))
}

/// Client-side request times of one phase, sorted.
struct Phase {
    times: Vec<Duration>,
    before: Vec<String>,
    after: Vec<String>,
}

impl Phase {
    fn pct_ms(&self, p: f64) -> f64 {
        let i = ((self.times.len() as f64 - 1.0) * p).round() as usize;
        self.times
            .get(i)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
    fn mean_ms(&self) -> f64 {
        self.times.iter().map(Duration::as_secs_f64).sum::<f64>() / self.times.len().max(1) as f64
            * 1e3
    }
}

async fn run_phase(env: &Env, client: &Client, ns: &str, args: &Args) -> Result<Phase> {
    let out = env.k().run(&["create", "namespace", ns])?;
    if !out.success {
        bail!("creating namespace {ns}: {out}");
    }
    let (secrets, artifacts) = examples()?;
    let secret_api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
    );
    for s in &secrets {
        let obj: DynamicObject = serde_json::from_value(s.clone())?;
        // Several examples share a Secret.
        match secret_api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let ar = ApiResource {
        group: "build.kairos.io".into(),
        version: "v1alpha2".into(),
        api_version: "build.kairos.io/v1alpha2".into(),
        kind: "OSArtifact".into(),
        plural: "osartifacts".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    // One unmeasured create warms the path (connections, the webhook's first SAR).
    let mut warm: DynamicObject = serde_json::from_value(artifacts[0].clone())?;
    warm.metadata.name = Some("warm-up".into());
    api.create(&PostParams::default(), &warm).await?;

    let before = webhook_latency_metrics(&env.cp)?;
    let mut times = Vec::new();
    for round in 0..args.rounds {
        for a in &artifacts {
            let mut obj: DynamicObject = serde_json::from_value(a.clone())?;
            let name = format!("{}-{round}", obj.metadata.name.clone().unwrap_or_default());
            obj.metadata.name = Some(name.clone());
            let t = Instant::now();
            api.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating {name}"))?;
            times.push(t.elapsed());
            // A spec change, so the validating webhook looks at the update too.
            let patch = json!({"spec": {"podLabels": {"bench-round": round.to_string()}}});
            let t = Instant::now();
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("updating {name}"))?;
            times.push(t.elapsed());
        }
    }
    let after = webhook_latency_metrics(&env.cp)?;
    times.sort();
    Ok(Phase {
        times,
        before,
        after,
    })
}

fn start_webhook(env: &Env, name: &str, extra: &[&str]) -> Result<Webhook> {
    let w = Webhook::start(
        &env.data_dir.join(name),
        &env.log_dir,
        &env.webhook_id,
        extra,
    )?;
    w.register(&env.cp, &w.ca.cert_pem.clone())?;
    Ok(w)
}

fn unregister(env: &Env) -> Result<()> {
    let out = env.k().run(&[
        "delete",
        "--ignore-not-found",
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
    ])?;
    if !out.success {
        bail!("{out}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let env = Env::start("bench-admission")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = client_for(&env.cp.admin.kubeconfig).await?;
        let mut phases = Vec::new();
        for (label, ns, extra) in [
            ("webhook (authorization cache on)", "bench-cached", vec![]),
            (
                "webhook (authorization cache off)",
                "bench-uncached",
                vec!["--authorization-cache-ttl=0"],
            ),
        ] {
            let mut w = start_webhook(&env, ns, &extra)?;
            // The configurations are read by the apiserver through an informer: give it a moment.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let phase = run_phase(&env, &client, ns, &args).await?;
            let metrics = w.metrics().unwrap_or_default();
            let hits = metrics
                .lines()
                .filter(|l| l.starts_with("osartifact_webhook_authorization_cache_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            w.stop();
            unregister(&env)?;
            phases.push((label, phase, hits));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let baseline = run_phase(&env, &client, "bench-baseline", &args).await?;

        println!(
            "bench-admission: {} creates and {} spec updates per phase ({} rounds of the examples), profile {}",
            baseline.times.len() / 2,
            baseline.times.len() / 2,
            args.rounds,
            paths::profile()
        );
        println!("\napiserver_admission_webhook_admission_duration_seconds (the apiserver's view):");
        println!(
            "{:<36} {:<10} {:>6} {:>9} {:>9} {:>9} {:>8}",
            "phase", "webhook", "calls", "mean ms", "p50 ms", "p99 ms", "≤5 ms"
        );
        for (label, p, _) in &phases {
            for (kind, name) in [("validating", WEBHOOK_NAMES[0]), ("mutating", WEBHOOK_NAMES[1])] {
                let h = histogram(&p.after, name).minus(&histogram(&p.before, name));
                println!(
                    "{:<36} {:<10} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>7.1}%",
                    label,
                    kind,
                    h.count,
                    h.mean_ms(),
                    h.quantile_ms(0.5),
                    h.quantile_ms(0.99),
                    h.within_ms(5.0) * 100.0
                );
            }
        }
        println!("(p50 and p99 interpolated within the apiserver's buckets: 5, 25, 100 ms, …)");
        println!("\nclient-side request time (create or update, one at a time):");
        println!(
            "{:<36} {:>9} {:>9} {:>9} {:>12}",
            "phase", "mean ms", "p50 ms", "p99 ms", "mean/base"
        );
        for (label, p) in phases
            .iter()
            .map(|(l, p, _)| (*l, p))
            .chain([("no webhook (baseline)", &baseline)])
        {
            println!(
                "{:<36} {:>9.3} {:>9.3} {:>9.3} {:>12.2}",
                label,
                p.mean_ms(),
                p.pct_ms(0.5),
                p.pct_ms(0.99),
                p.mean_ms() / baseline.mean_ms()
            );
        }
        for (label, _, hits) in &phases {
            println!("{label}: {hits}");
        }
        Ok(())
    })
}
