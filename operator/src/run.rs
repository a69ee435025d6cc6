//! `osartifact-operator run`: the controller process. Watches OSArtifacts and the children they own
//! (label-selected, mapped to their owner by ownerReference UID), holds a Lease when leader election
//! is on, serves the admin endpoints, and shuts down gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use osartifact_shared::OSArtifact;
use osartifact_shared::names;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::admin::{self, Health};
use crate::caches;
use crate::controller::{self, Context};
use crate::leader::{self, LeaderArgs};
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::settings::Settings;
use crate::telemetry::{self, LogFormat};

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the plain-HTTP admin listener (/livez, /readyz, /metrics).
    #[arg(long, env = "OSARTIFACT_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Log format.
    #[arg(
        long,
        env = "OSARTIFACT_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Run the controller only while holding the Lease (`--leader-election=false` to turn off).
    #[arg(long, env = "OSARTIFACT_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_election: bool,
    /// Namespace of the Lease; default: $POD_NAMESPACE, else `default`.
    #[arg(long, env = "OSARTIFACT_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "OSARTIFACT_LEADER_ELECTION_ID",
        default_value = "osartifact-operator"
    )]
    pub leader_election_id: String,
    /// Only reconcile OSArtifacts in this namespace (default: all namespaces).
    #[arg(long, env = "OSARTIFACT_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Artifacts reconciled at the same time.
    #[arg(long, env = "OSARTIFACT_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,
    /// Builder pods running at once, cluster-wide; the artifacts beyond wait in `Pending` with
    /// their place in the queue (0: no limit).
    #[arg(long, env = "OSARTIFACT_MAX_CONCURRENT_BUILDS", default_value_t = 4)]
    pub max_concurrent_builds: usize,
    #[command(flatten)]
    pub settings: Settings,
}

/// Runs the operator until shutdown; returns the exit code.
pub fn main(args: RunArgs) -> i32 {
    telemetry::init(args.log_format);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return 1;
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            error!(error = format!("{e:#}"), "operator failed");
            1
        }
    }
}

fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("osartifact-operator-{}", std::process::id()))
}

async fn shutdown_signal(token: CancellationToken, health: Arc<Health>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
        _ = token.cancelled() => {},
    }
    info!("shutting down");
    health.set_ready(false);
    token.cancel();
}

async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let token = CancellationToken::new();
    tokio::spawn(shutdown_signal(token.clone(), health.clone()));
    let admin_task = tokio::spawn(admin::serve(
        args.admin_listen,
        health.clone(),
        metrics.clone(),
        token.clone(),
    ));
    let instance = identity();

    let mut code = 0;
    if args.leader_election {
        let lease = LeaderArgs {
            namespace: args
                .leader_election_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "default".into()),
            lease_name: args.leader_election_id.clone(),
            identity: instance.clone(),
        };
        // A standby replica is healthy and ready; it just does not reconcile.
        health.set_ready(true);
        let (mut rx, handle) = leader::elect(client.clone(), &lease)
            .await
            .context("starting leader election")?;
        info!(lease = %lease.lease_name, namespace = %lease.namespace, identity = %instance, "waiting for the lease");
        let leading = loop {
            if *rx.borrow_and_update() {
                break true;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break false; },
                _ = token.cancelled() => break false,
            }
        };
        if leading {
            info!("lease acquired; starting the controller");
            let stop = token.child_token();
            let lost = CancellationToken::new();
            let (stop2, lost2, mut rx2) = (stop.clone(), lost.clone(), rx.clone());
            let watcher_task = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        changed = rx2.changed() => {
                            if changed.is_err() || !*rx2.borrow_and_update() {
                                warn!("lease lost; stopping");
                                lost2.cancel();
                                stop2.cancel();
                                return;
                            }
                        }
                        _ = stop2.cancelled() => return,
                    }
                }
            });
            run_controller(
                client.clone(),
                &args,
                &metrics,
                &instance,
                health.clone(),
                stop.clone(),
            )
            .await;
            stop.cancel();
            let _ = watcher_task.await;
            if lost.is_cancelled() {
                code = 1;
            }
        }
        drop(rx);
        match handle.await {
            Ok(Ok(manager)) => {
                if let Err(e) = manager.release().await {
                    warn!(error = %e, "could not release the lease");
                }
            }
            Ok(Err(e)) => warn!(error = %e, "leader election ended with an error"),
            Err(e) => warn!(error = %e, "leader election task failed"),
        }
    } else {
        run_controller(
            client.clone(),
            &args,
            &metrics,
            &instance,
            health.clone(),
            token.clone(),
        )
        .await;
    }
    token.cancel();
    match admin_task.await {
        Ok(Err(e)) => {
            error!(error = %e, "admin listener failed");
            code = 1;
        }
        Err(e) => warn!(error = %e, "admin task failed"),
        Ok(Ok(())) => {}
    }
    Ok(code)
}

async fn run_controller(
    client: Client,
    args: &RunArgs,
    metrics: &Arc<Metrics>,
    instance: &str,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let artifacts: Api<OSArtifact> = match &args.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    fn scoped<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    // The caches are fresh for each term as leader: a new leader must not trust what it saw
    // before it led.
    let (caches, writers) = caches::new();
    // Only children carrying the artifact UID label are watched; `owns_stream` maps each event to
    // its controller ownerReference (namespace + UID), never to a label value. The same watches
    // fill the caches a reconcile reads.
    let children = watcher::Config::default().labels(names::ARTIFACT_UID_LABEL);
    let ns = &args.watch_namespace;
    // The build queue wakes the artifacts at its head when a build finishes.
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel();
    let woken =
        futures::stream::unfold(
            wake_rx,
            |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
        );
    // The artifacts' managedFields are never read either: they go before the store.
    let (artifact_reader, artifact_writer) = reflector::store();
    let artifact_stream = watcher(artifacts, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|a| a.metadata.managed_fields = None)
        .reflect(artifact_writer)
        .applied_objects();
    let controller = Controller::for_stream(artifact_stream, artifact_reader)
        .owns_stream(caches::children(
            scoped::<Pod>(&client, ns),
            caches::builder_pods(&children),
            writers.pods,
        ))
        .owns_stream(caches::children(
            scoped::<Job>(&client, ns),
            children.clone(),
            writers.jobs,
        ))
        .owns_stream(caches::children(
            scoped::<PartialObjectMeta<ConfigMap>>(&client, ns),
            children.clone(),
            writers.config_maps,
        ))
        .owns_stream(caches::children(
            scoped::<PartialObjectMeta<PersistentVolumeClaim>>(&client, ns),
            children,
            writers.pvcs,
        ))
        .reconcile_on(woken)
        .trigger_backoff(caches::TriggerBackoff::default())
        .with_config(ControllerConfig::default().concurrency(args.concurrency))
        .graceful_shutdown_on(stop.cancelled_owned());
    let queue = Queue::new(
        args.max_concurrent_builds,
        controller.store(),
        caches.pods.clone(),
        Some(wake_tx),
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        args.settings.clone(),
        metrics.clone(),
        instance.to_string(),
        caches.clone(),
        queue,
    ));
    // Referenced Secrets are the user's, not ours, so they carry no label: watch their metadata
    // only (never their data) and map each change to the artifacts that name the Secret.
    let artifact_store = controller.store();
    // Paced by its own backoff like every other watch here (see `caches::TriggerBackoff`).
    let secrets = watcher(
        scoped::<PartialObjectMeta<Secret>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let controller = controller.watches_stream(secrets, move |s| {
        let (namespace, name) = (s.namespace().unwrap_or_default(), s.name_any());
        controller::artifacts_referencing(&artifact_store.state(), &namespace, &name)
    });
    health.set_ready(false);
    let store = controller.store();
    let h = health.clone();
    let synced = writers.synced;
    let sync = tokio::spawn(async move {
        if !caches::filled(&store).await {
            return;
        }
        caches.mark_synced_when_filled(synced).await;
        info!("watches synced; ready");
        h.set_ready(true);
    });
    controller
        .run(controller::reconcile, controller::error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(name = %obj.name, namespace = ?obj.namespace, "reconciled"),
                Err(e) => debug!(error = %e, "reconcile error"),
            }
        })
        .await;
    sync.abort();
    health.set_ready(false);
    info!("controller stopped");
}
