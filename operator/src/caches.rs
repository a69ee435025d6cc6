//! The children a reconcile reads: reflector stores filled by the same label-selected watches that
//! trigger reconciles, so reading a child costs no request. Pods and Jobs are kept whole (their
//! status decides the phase); ConfigMaps and PVCs only as metadata (the attempt annotations and
//! the owner are all a reconcile reads of them). managedFields are dropped before storing: the
//! operator never reads them and they are a large part of each object.
//!
//! Not cached, on purpose: Secrets. The referenced ones are the user's (not labelled, possibly
//! large, and holding credentials the operator should not keep in memory); they are read live,
//! only when a build is about to start.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
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

    /// Resolves when every store is filled, then marks the caches synced. kube's store readiness
    /// is a oneshot that wakes only its latest waiter, and the controller waits on some of these
    /// too: ask again until each answers.
    pub async fn mark_synced_when_filled(&self, synced: watch::Sender<bool>) {
        async fn filled<K>(s: &Store<K>) -> bool
        where
            K: Resource + Clone + 'static,
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            loop {
                match tokio::time::timeout(Duration::from_millis(500), s.wait_until_ready()).await {
                    Ok(r) => return r.is_ok(),
                    Err(_) => continue,
                }
            }
        }
        let all = filled(&self.pods).await
            && filled(&self.jobs).await
            && filled(&self.config_maps).await
            && filled(&self.pvcs).await;
        if all {
            let _ = synced.send(true);
        }
    }
}

/// A label-selected watch that fills `writer` (managedFields dropped) and yields every object it
/// touches, for `Controller::owns_stream`. With `K = PartialObjectMeta<_>` it lists and watches
/// metadata only.
pub fn children<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config)
        .default_backoff()
        .modify(|o| o.meta_mut().managed_fields = None)
        .reflect(writer)
        .touched_objects()
}
