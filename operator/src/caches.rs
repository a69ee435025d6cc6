//! The children a reconcile reads: reflector stores filled by the same label-selected watches that
//! trigger reconciles, so reading a child costs no request. Pods and Jobs are kept whole (their
//! status decides the phase); ConfigMaps and PVCs only as metadata (the attempt annotations and
//! the owner are all a reconcile reads of them). Before storing, each object is slimmed to what a
//! reconcile reads (see [`Slim`]): managedFields, and of a Pod or Job spec everything but the
//! container names and the deadline, are a large part of each object and never read.
//!
//! Not cached, on purpose: Secrets. The referenced ones are the user's (not labelled, possibly
//! large, and holding credentials the operator should not keep in memory); they are read live,
//! only when a build is about to start.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec,
};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

pub type ConfigMapMeta = PartialObjectMeta<ConfigMap>;
pub type PvcMeta = PartialObjectMeta<PersistentVolumeClaim>;

#[derive(Clone)]
pub struct Caches {
    pub pods: Store<Pod>,
    pub jobs: Store<Job>,
    pub config_maps: Store<ConfigMapMeta>,
    pub pvcs: Store<PvcMeta>,
    synced: watch::Receiver<bool>,
}

/// The write side of [`Caches`], consumed by the watches (`run`) or filled by hand (tests).
pub struct Writers {
    pub pods: Writer<Pod>,
    pub jobs: Writer<Job>,
    pub config_maps: Writer<ConfigMapMeta>,
    pub pvcs: Writer<PvcMeta>,
    pub synced: watch::Sender<bool>,
}

pub fn new() -> (Caches, Writers) {
    let (pods, pods_w) = reflector::store();
    let (jobs, jobs_w) = reflector::store();
    let (config_maps, cms_w) = reflector::store();
    let (pvcs, pvcs_w) = reflector::store();
    let (tx, rx) = watch::channel(false);
    (
        Caches {
            pods,
            jobs,
            config_maps,
            pvcs,
            synced: rx,
        },
        Writers {
            pods: pods_w,
            jobs: jobs_w,
            config_maps: cms_w,
            pvcs: pvcs_w,
            synced: tx,
        },
    )
}

/// The cached object `name` in `namespace`.
pub fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

impl Caches {
    /// Waits until every store has had its first full list; false if the watches stopped first.
    pub async fn synced(&self) -> bool {
        let mut rx = self.synced.clone();
        rx.wait_for(|s| *s).await.is_ok()
    }

    /// Resolves when every store is filled, then marks the caches synced.
    pub async fn mark_synced_when_filled(&self, synced: watch::Sender<bool>) {
        let all = filled(&self.pods).await
            && filled(&self.jobs).await
            && filled(&self.config_maps).await
            && filled(&self.pvcs).await;
        if all {
            let _ = synced.send(true);
        }
    }
}

/// Resolves when `store` has had its first full list: true, or false if its writer went away.
/// kube's store readiness is a oneshot behind a lock that wakes only its latest waiter, and the
/// controller waits on some stores too: ask again until it answers.
pub async fn filled<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        if let Ok(r) =
            tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready()).await
        {
            return r.is_ok();
        }
    }
}

/// What a cached object keeps: what `controller`, `phase` and `queue` read of it.
pub trait Slim {
    fn slim(&mut self);
}

fn names_only(containers: &[Container]) -> Vec<Container> {
    containers
        .iter()
        .map(|c| Container {
            name: c.name.clone(),
            ..Default::default()
        })
        .collect()
}

impl Slim for Pod {
    /// Metadata, status, the step names (init containers) and the deadline.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        self.spec = self.spec.take().map(|s| PodSpec {
            init_containers: s.init_containers.as_deref().map(names_only),
            containers: names_only(&s.containers),
            active_deadline_seconds: s.active_deadline_seconds,
            ..Default::default()
        });
    }
}

impl Slim for Job {
    /// Metadata, status and the deadline; the pod template is never read.
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
        self.spec = self.spec.take().map(|s| JobSpec {
            active_deadline_seconds: s.active_deadline_seconds,
            template: PodTemplateSpec::default(),
            ..Default::default()
        });
    }
}

impl<K> Slim for PartialObjectMeta<K> {
    fn slim(&mut self) {
        self.metadata.managed_fields = None;
    }
}

/// The pause the controller takes after a watch error before it reads any of its triggers again.
/// kube applies it to all watches merged, and its default (0.8 s doubling to 30 s, reset only
/// after two minutes without an error) let the errors six watches queued during a 5 s apiserver
/// outage stall every watch for minutes (the drills saw builds finish unnoticed). Each watch here
/// paces its own retries (`default_backoff`), so this pause stays short: 100 ms doubling to 1 s,
/// back to 100 ms after the first item that is not an error.
#[derive(Debug, Clone, Copy)]
pub struct TriggerBackoff {
    next: Duration,
}

impl TriggerBackoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);
}

impl Default for TriggerBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for TriggerBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        Some(d)
    }
}

impl Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// A label-selected watch that fills `writer` (objects slimmed) and yields every object it
/// touches, for `Controller::owns_stream`. With `K = PartialObjectMeta<_>` it lists and watches
/// metadata only.
pub fn children<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Slim + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config)
        .default_backoff()
        .modify(Slim::slim)
        .reflect(writer)
        .touched_objects()
}

/// Builder pods only: an exporter Job's pod carries the artifact's labels too (the Job's
/// template has them), but its Job is what the operator follows.
pub fn builder_pods(children: &watcher::Config) -> watcher::Config {
    let selector = children
        .label_selector
        .as_deref()
        .map(|s| format!("{s},!{JOB_NAME_LABEL}"))
        .unwrap_or_else(|| format!("!{JOB_NAME_LABEL}"));
    children.clone().labels(&selector)
}

/// The label the job controller puts on the pods of a Job.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_slim_pod_keeps_what_reconciles_read() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "a-build", "annotations": {"build.kairos.io/generation": "2"},
                "managedFields": [{"manager": "x"}]},
            "spec": {
                "activeDeadlineSeconds": 60,
                "initContainers": [{"name": "unpack", "image": "i", "args": ["a", "b"]}],
                "containers": [{"name": "done", "image": "i", "env": [{"name": "K", "value": "V"}]}],
                "volumes": [{"name": "artifacts", "emptyDir": {}}]
            },
            "status": {"phase": "Running"}
        }))
        .unwrap();
        pod.slim();
        assert_eq!(
            serde_json::to_value(&pod).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "a-build", "annotations": {"build.kairos.io/generation": "2"}},
                "spec": {"activeDeadlineSeconds": 60, "initContainers": [{"name": "unpack"}],
                    "containers": [{"name": "done"}]},
                "status": {"phase": "Running"}
            })
        );
    }

    #[test]
    fn a_slim_job_keeps_its_deadline_and_status() {
        let mut job: Job = serde_json::from_value(json!({
            "metadata": {"name": "a-export-0"},
            "spec": {"activeDeadlineSeconds": 60, "backoffLimit": 0,
                "template": {"spec": {"containers": [{"name": "upload", "image": "i"}]}}},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}
        }))
        .unwrap();
        job.slim();
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(60));
        assert_eq!(spec.template, PodTemplateSpec::default());
        assert!(job.status.is_some());
    }

    #[test]
    fn the_trigger_pause_stays_under_a_second_and_resets() {
        let mut b = TriggerBackoff::default();
        let first: Vec<Duration> = b.by_ref().take(6).collect();
        assert_eq!(first[0], Duration::from_millis(100));
        assert!(first.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(first[5], Duration::from_secs(1));
        // A burst of queued errors costs at most a second each.
        assert!(b.by_ref().take(100).all(|d| d == Duration::from_secs(1)));
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn exporter_pods_are_left_out_of_the_pod_watch() {
        let children = watcher::Config::default().labels("build.kairos.io/artifact-uid");
        assert_eq!(
            builder_pods(&children).label_selector.as_deref(),
            Some("build.kairos.io/artifact-uid,!batch.kubernetes.io/job-name")
        );
    }
}
