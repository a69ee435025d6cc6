//! What this process wrote that its watches may not have delivered yet.
//!
//! A reconcile reads the artifact and its children from the controller's caches, and a cache lags
//! the process's own writes by one watch delivery. kube's runner never reconciles one artifact
//! twice at the same time, but it starts the next reconcile as soon as the previous one returns,
//! often before the watch has brought back what that one wrote. Without this ledger, that
//! reconcile sees no pod and creates it again, or sees the old status and writes the same
//! transition (and its Event) a second time.
//!
//! Per artifact it keeps the children created but not yet seen in a cache, and the last status
//! written together with the resourceVersions that status supersedes. An entry is dropped once
//! the caches show what it holds, and in any case after [`TTL`] without a write.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use osartifact_shared::{OSArtifact, OSArtifactStatus};

use crate::caches::Slim;

/// Far longer than a watch delivery; bounds the memory of entries whose artifact was deleted.
pub const TTL: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_artifact: HashMap<ObjectRef<OSArtifact>, Entry>,
    last_prune: Option<Instant>,
}

struct Entry {
    /// The artifact's UID: an artifact deleted and created again under the same name starts anew.
    uid: String,
    touched: Instant,
    status: Option<StatusWrite>,
    /// Children created and not yet seen in a cache, by (kind, name).
    created: HashMap<(String, String), Arc<dyn Any + Send + Sync>>,
}

struct StatusWrite {
    status: OSArtifactStatus,
    /// resourceVersions of the artifact from before this write: a copy at one of them is stale.
    superseded: Vec<String>,
    /// The resourceVersion the write produced: a copy at it is current.
    written: Option<String>,
}

fn key_of(obj: &OSArtifact) -> Option<(ObjectRef<OSArtifact>, String)> {
    Some((ObjectRef::from_obj(obj), obj.metadata.uid.clone()?))
}

impl Ledger {
    fn with_entry<T>(&self, owner: &OSArtifact, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let (key, uid) = key_of(owner)?;
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.by_artifact.get_mut(&key).filter(|e| e.uid == uid)?;
        Some(f(entry))
    }

    fn record(&self, owner: &OSArtifact, f: impl FnOnce(&mut Entry)) {
        let Some((key, uid)) = key_of(owner) else {
            return;
        };
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        entries.prune(now);
        let entry = entries.by_artifact.entry(key).or_insert_with(|| Entry {
            uid: uid.clone(),
            touched: now,
            status: None,
            created: HashMap::new(),
        });
        if entry.uid != uid {
            *entry = Entry {
                uid,
                touched: now,
                status: None,
                created: HashMap::new(),
            };
        }
        entry.touched = now;
        f(entry);
    }

    /// The artifact's status as this process last knows it: what it wrote, when `obj` is a copy
    /// from before that write; otherwise `obj`'s own.
    pub fn status(&self, obj: &OSArtifact) -> OSArtifactStatus {
        let rv = obj.metadata.resource_version.clone();
        let own = || obj.status.clone().unwrap_or_default();
        self.with_entry(obj, |e| {
            let w = e.status.as_ref()?;
            if rv.is_some() && w.written == rv {
                // The cache has caught up with the last write.
                e.status = None;
                return None;
            }
            rv.as_ref()
                .filter(|rv| w.superseded.contains(rv))
                .map(|_| w.status.clone())
        })
        .flatten()
        .unwrap_or_else(own)
    }

    /// Records a status written on top of `obj` (the copy the decision was made from), and the
    /// resourceVersion the write returned.
    pub fn wrote_status(
        &self,
        obj: &OSArtifact,
        status: OSArtifactStatus,
        written: Option<String>,
    ) {
        let based_on = obj.metadata.resource_version.clone();
        self.record(obj, |e| {
            let mut superseded = e
                .status
                .take()
                .map(|w| {
                    let mut s = w.superseded;
                    s.extend(w.written);
                    s
                })
                .unwrap_or_default();
            superseded.extend(based_on);
            superseded.dedup();
            e.status = Some(StatusWrite {
                status,
                superseded,
                written,
            });
        });
    }

    /// Records a child this process created (or wrote) for `owner`, slimmed as the caches keep
    /// their objects; returns it.
    pub fn created<K>(&self, owner: &OSArtifact, mut child: K) -> Arc<K>
    where
        K: Resource<DynamicType = ()> + Slim + Send + Sync + 'static,
    {
        child.slim();
        let child = Arc::new(child);
        let id = (
            K::kind(&()).into_owned(),
            child.meta().name.clone().unwrap_or_default(),
        );
        let stored = child.clone();
        self.record(owner, |e| {
            e.created.insert(id, Arc::new(stored));
        });
        child
    }

    /// Forgets a child this process deleted.
    pub fn deleted<K: Resource<DynamicType = ()>>(&self, owner: &OSArtifact, name: &str) {
        self.with_entry(owner, |e| {
            e.created
                .remove(&(K::kind(&()).into_owned(), name.to_string()))
        });
    }

    /// The child named `name` as this process knows it: the cache's copy, unless a child this
    /// process created has not reached the cache yet.
    pub fn child<K>(&self, owner: &OSArtifact, name: &str, cached: Option<Arc<K>>) -> Option<Arc<K>>
    where
        K: Resource<DynamicType = ()> + Send + Sync + 'static,
    {
        let id = (K::kind(&()).into_owned(), name.to_string());
        let recorded = self
            .with_entry(owner, |e| {
                let r = e.created.get(&id)?.downcast_ref::<Arc<K>>()?.clone();
                let seen = cached
                    .as_ref()
                    .is_some_and(|c| c.meta().uid.is_some() && c.meta().uid == r.meta().uid);
                if seen {
                    e.created.remove(&id);
                    return None;
                }
                Some(r)
            })
            .flatten();
        recorded.or(cached)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .map(|e| e.by_artifact.len())
            .unwrap_or(0)
    }
}

impl Entries {
    /// Drops entries not written for [`TTL`]; at most once per tenth of it, so writes stay O(1)
    /// on average.
    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.duration_since(t) < TTL / 10)
        {
            return;
        }
        self.last_prune = Some(now);
        self.by_artifact
            .retain(|_, e| now.duration_since(e.touched) < TTL);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use osartifact_shared::{OSArtifactSpec, Phase};

    use super::*;

    fn artifact(uid: &str, rv: &str, phase: Option<Phase>) -> OSArtifact {
        let mut a = OSArtifact::new("a", OSArtifactSpec::default());
        a.metadata.namespace = Some("ns".into());
        a.metadata.uid = Some(uid.into());
        a.metadata.resource_version = Some(rv.into());
        a.status = phase.map(|p| OSArtifactStatus {
            phase: Some(p),
            ..Default::default()
        });
        a
    }

    fn pod(uid: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("a-build".into());
        p.metadata.uid = Some(uid.into());
        p
    }

    fn phase(s: &OSArtifactStatus) -> Option<Phase> {
        s.phase
    }

    #[test]
    fn a_copy_from_before_the_write_reads_as_the_write() {
        let l = Ledger::default();
        let stale = artifact("u", "10", None);
        l.wrote_status(
            &stale,
            OSArtifactStatus {
                phase: Some(Phase::Building),
                ..Default::default()
            },
            Some("11".into()),
        );
        assert_eq!(phase(&l.status(&stale)), Some(Phase::Building));
        // A second write from the same stale copy supersedes the first write's version too.
        l.wrote_status(
            &stale,
            OSArtifactStatus {
                phase: Some(Phase::Exporting),
                ..Default::default()
            },
            Some("12".into()),
        );
        assert_eq!(phase(&l.status(&stale)), Some(Phase::Exporting));
        let first_write = artifact("u", "11", Some(Phase::Building));
        assert_eq!(phase(&l.status(&first_write)), Some(Phase::Exporting));
        // The cache caught up: its copy is believed and the entry's status forgotten.
        let current = artifact("u", "12", Some(Phase::Exporting));
        assert_eq!(phase(&l.status(&current)), Some(Phase::Exporting));
        assert_eq!(phase(&l.status(&stale)), None);
    }

    #[test]
    fn a_newer_copy_written_by_someone_else_is_believed() {
        let l = Ledger::default();
        let a = artifact("u", "10", None);
        l.wrote_status(
            &a,
            OSArtifactStatus {
                phase: Some(Phase::Building),
                ..Default::default()
            },
            Some("11".into()),
        );
        let other = artifact("u", "15", Some(Phase::Error));
        assert_eq!(phase(&l.status(&other)), Some(Phase::Error));
    }

    #[test]
    fn an_artifact_created_again_under_the_same_name_starts_anew() {
        let l = Ledger::default();
        l.wrote_status(
            &artifact("old", "10", None),
            OSArtifactStatus {
                phase: Some(Phase::Ready),
                ..Default::default()
            },
            Some("11".into()),
        );
        l.created(&artifact("old", "10", None), pod("p1"));
        let new = artifact("new", "10", None);
        assert_eq!(phase(&l.status(&new)), None);
        assert!(l.child::<Pod>(&new, "a-build", None).is_none());
    }

    #[test]
    fn a_created_child_is_returned_until_the_cache_shows_it() {
        let l = Ledger::default();
        let a = artifact("u", "1", None);
        l.created(&a, pod("p1"));
        let before = l.child::<Pod>(&a, "a-build", None);
        assert_eq!(
            before.and_then(|p| p.metadata.uid.clone()).as_deref(),
            Some("p1")
        );
        // The cache still shows an older pod of that name: the created one wins.
        let older = l.child(&a, "a-build", Some(Arc::new(pod("p0"))));
        assert_eq!(
            older.and_then(|p| p.metadata.uid.clone()).as_deref(),
            Some("p1")
        );
        // Seen: from now on the cache is the only source, so a later deletion shows.
        let seen = l.child(&a, "a-build", Some(Arc::new(pod("p1"))));
        assert_eq!(
            seen.and_then(|p| p.metadata.uid.clone()).as_deref(),
            Some("p1")
        );
        assert!(l.child::<Pod>(&a, "a-build", None).is_none());
    }

    #[test]
    fn a_deleted_child_is_forgotten() {
        let l = Ledger::default();
        let a = artifact("u", "1", None);
        l.created(&a, pod("p1"));
        l.deleted::<Pod>(&a, "a-build");
        assert!(l.child::<Pod>(&a, "a-build", None).is_none());
    }

    #[test]
    fn entries_expire() {
        let l = Ledger::default();
        l.created(&artifact("u", "1", None), pod("p1"));
        {
            let mut e = l.entries.lock().unwrap();
            let later = Instant::now() + TTL + Duration::from_secs(1);
            e.last_prune = None;
            e.prune(later);
        }
        assert_eq!(l.len(), 0);
    }
}
