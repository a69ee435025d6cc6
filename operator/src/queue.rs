//! The build queue: at most `--max-concurrent-builds` builder pods run at once; the artifacts
//! beyond it stay `Pending` with their place in the queue.
//!
//! The order is derived from the API, never from memory, so a restarted operator keeps it: the
//! artifacts waiting in each namespace go first come, first served (creation time, then name),
//! and each free slot goes to the namespace with the fewest builds, so one namespace applying
//! hundreds of artifacts does not starve the others.
//!
//! What runs is counted from the builder pods in the caches (not finished, not being deleted),
//! plus the builds this process admitted whose pods the caches do not show yet: the admission is
//! made under one lock, so concurrent reconciles cannot overshoot the limit.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use osartifact_shared::{OSArtifact, Phase};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::Metrics;

/// An admitted build whose pod no cache shows after this long is not counted any more (it was
/// refused, or its artifact deleted).
const ADMITTED_TTL: Duration = Duration::from_secs(120);

/// An artifact waiting for a build slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub namespace: String,
    pub name: String,
    /// RFC 3339 creation time; sorts as time.
    pub created: String,
}

/// The waiting artifacts in the order they get slots. Each next slot goes to the namespace that
/// would then have the fewest builds (running, plus its artifacts queued ahead), so a namespace
/// with many builds yields to one with few; within a namespace, first come, first served; ties
/// go to the older artifact, then the name.
pub fn fair_order(mut waiting: Vec<Waiting>, running: &HashMap<String, usize>) -> Vec<Waiting> {
    waiting.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    let mut ahead: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, Waiting)> = waiting
        .into_iter()
        .map(|w| {
            let j = ahead.entry(w.namespace.clone()).or_insert(0);
            let share = running.get(&w.namespace).copied().unwrap_or(0) + *j;
            *j += 1;
            (share, w)
        })
        .collect();
    keyed.sort_by(|(sa, a), (sb, b)| {
        (sa, &a.created, &a.name, &a.namespace).cmp(&(sb, &b.created, &b.name, &b.namespace))
    });
    keyed.into_iter().map(|(_, w)| w).collect()
}

/// The decision for one artifact that wants to start its build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Start,
    /// `position` (1-based) of `waiting` artifacts; `running` builds hold the slots.
    Queued {
        position: usize,
        waiting: usize,
        running: usize,
    },
}

impl Admission {
    pub fn message(&self) -> Option<String> {
        match self {
            Admission::Start => None,
            Admission::Queued {
                position,
                waiting,
                running,
            } => Some(format!(
                "queued: {position} of {waiting} waiting; {running} builds running"
            )),
        }
    }
}

/// Whether the artifact at `index` of the fair order (or, when it is not in it, behind all of
/// it) may start, with `running` builds and at most `max` (0: no limit).
pub fn admit(index: Option<usize>, waiting: usize, running: usize, max: usize) -> Admission {
    let (index, waiting) = match index {
        Some(i) => (i, waiting),
        None => (waiting, waiting + 1),
    };
    if max == 0 || index < max.saturating_sub(running) {
        return Admission::Start;
    }
    Admission::Queued {
        position: index + 1,
        waiting,
        running,
    }
}

/// True for a builder pod that holds a slot: controlled by an OSArtifact, not finished, not
/// being deleted.
fn holds_slot(pod: &Pod) -> bool {
    let builder = pod
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "OSArtifact");
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    builder && !finished && pod.metadata.deletion_timestamp.is_none()
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

pub struct Queue {
    max: usize,
    artifacts: Store<OSArtifact>,
    pods: Store<Pod>,
    admitted: Mutex<HashMap<(String, String), Instant>>,
    wake: Option<UnboundedSender<ObjectRef<OSArtifact>>>,
}

impl Queue {
    pub fn new(
        max: usize,
        artifacts: Store<OSArtifact>,
        pods: Store<Pod>,
        wake: Option<UnboundedSender<ObjectRef<OSArtifact>>>,
    ) -> Self {
        Self {
            max,
            artifacts,
            pods,
            admitted: Mutex::new(HashMap::new()),
            wake,
        }
    }

    /// Artifacts whose build runs (pod in the caches, or admitted and not yet cached).
    fn running(
        &self,
        admitted: &mut HashMap<(String, String), Instant>,
    ) -> HashSet<(String, String)> {
        let pods = self.pods.state();
        let owner_key = |p: &Pod| {
            let owner = p
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true) && o.kind == "OSArtifact")?;
            Some(key(&p.namespace().unwrap_or_default(), &owner.name))
        };
        let mut running: HashSet<(String, String)> = pods
            .iter()
            .filter(|p| holds_slot(p))
            .filter_map(|p| owner_key(p))
            .collect();
        // An admitted build counts on its own only until the caches show its pod, whatever the
        // pod's state: a build that finished before this look holds no slot.
        let seen: HashSet<(String, String)> = pods.iter().filter_map(|p| owner_key(p)).collect();
        let now = Instant::now();
        admitted.retain(|k, at| !seen.contains(k) && now.duration_since(*at) < ADMITTED_TTL);
        running.extend(admitted.keys().cloned());
        running
    }

    /// The artifacts that wait for a slot, in the fair order: new or `Pending`, not being
    /// deleted, not running.
    fn waiting(&self, running: &HashSet<(String, String)>) -> Vec<Waiting> {
        let mut per_ns: HashMap<String, usize> = HashMap::new();
        for (ns, _) in running {
            *per_ns.entry(ns.clone()).or_insert(0) += 1;
        }
        let waiting = self
            .artifacts
            .state()
            .iter()
            .filter(|a| a.metadata.deletion_timestamp.is_none())
            .filter(|a| {
                matches!(
                    a.status.as_ref().and_then(|s| s.phase),
                    None | Some(Phase::Pending)
                )
            })
            .filter_map(|a| {
                let (namespace, name) = (a.namespace()?, a.name_any());
                (!running.contains(&key(&namespace, &name))).then(|| Waiting {
                    namespace,
                    name,
                    created: a
                        .metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_default(),
                })
            })
            .collect();
        fair_order(waiting, &per_ns)
    }

    /// Admits the artifact's build, or says where it waits. Admitting takes the slot at once.
    pub fn admit(&self, namespace: &str, name: &str, metrics: &Metrics) -> Admission {
        if self.max == 0 {
            return Admission::Start;
        }
        let Ok(mut admitted) = self.admitted.lock() else {
            return Admission::Start;
        };
        let running = self.running(&mut admitted);
        let me = key(namespace, name);
        if running.contains(&me) {
            return Admission::Start;
        }
        let order = self.waiting(&running);
        let index = order
            .iter()
            .position(|w| w.namespace == namespace && w.name == name);
        let decision = admit(index, order.len(), running.len(), self.max);
        if decision == Admission::Start {
            admitted.insert(me, Instant::now());
            metrics.set_builds(running.len() + 1, order.len().saturating_sub(1));
        } else {
            metrics.set_builds(running.len(), order.len());
        }
        decision
    }

    /// Gives back the slot of a build that did not start.
    pub fn release(&self, namespace: &str, name: &str) {
        if let Ok(mut admitted) = self.admitted.lock() {
            admitted.remove(&key(namespace, name));
        }
    }

    /// Reconciles the head of the queue when slots are free (a build finished, or an admitted
    /// one was refused): the artifacts at the head do not wait for their periodic look.
    pub fn wake_heads(&self) {
        let Some(wake) = &self.wake else {
            return;
        };
        if self.max == 0 {
            return;
        }
        let Ok(mut admitted) = self.admitted.lock() else {
            return;
        };
        let running = self.running(&mut admitted);
        let free = self.max.saturating_sub(running.len());
        for w in self.waiting(&running).into_iter().take(free) {
            let _ = wake.send(ObjectRef::new(&w.name).within(&w.namespace));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(ns: &str, name: &str, created: &str) -> Waiting {
        Waiting {
            namespace: ns.into(),
            name: name.into(),
            created: created.into(),
        }
    }

    fn names(order: &[Waiting]) -> Vec<String> {
        order
            .iter()
            .map(|w| format!("{}/{}", w.namespace, w.name))
            .collect()
    }

    #[test]
    fn first_come_first_served_within_a_namespace_and_namespaces_take_turns() {
        let none = HashMap::new();
        let order = fair_order(
            vec![
                w("big", "a3", "2026-01-01T00:00:03Z"),
                w("big", "a1", "2026-01-01T00:00:01Z"),
                w("big", "a2", "2026-01-01T00:00:02Z"),
                w("big", "a4", "2026-01-01T00:00:04Z"),
                w("small", "b1", "2026-01-01T00:00:05Z"),
                w("other", "c1", "2026-01-01T00:00:02Z"),
                w("other", "c2", "2026-01-01T00:00:09Z"),
            ],
            &none,
        );
        assert_eq!(
            names(&order),
            vec![
                "big/a1", "other/c1", "small/b1", "big/a2", "other/c2", "big/a3", "big/a4"
            ]
        );
    }

    #[test]
    fn a_namespace_with_builds_running_yields_to_one_without() {
        let running = HashMap::from([("big".to_string(), 2)]);
        let order = fair_order(
            vec![
                w("big", "a1", "2026-01-01T00:00:01Z"),
                w("big", "a2", "2026-01-01T00:00:02Z"),
                w("small", "b1", "2026-01-01T00:00:09Z"),
                w("small", "b2", "2026-01-01T00:00:10Z"),
                w("small", "b3", "2026-01-01T00:00:11Z"),
            ],
            &running,
        );
        // small: 0, 1, 2 builds; big: 2, 3: equal shares go to the older artifact.
        assert_eq!(
            names(&order),
            vec!["small/b1", "small/b2", "big/a1", "small/b3", "big/a2"]
        );
    }

    #[test]
    fn same_creation_time_is_ordered_by_name() {
        let t = "2026-01-01T00:00:00Z";
        let order = fair_order(vec![w("ns", "b", t), w("ns", "a", t)], &HashMap::new());
        assert_eq!(names(&order), vec!["ns/a", "ns/b"]);
    }

    #[test]
    fn admission_fills_free_slots_in_order() {
        // 4 slots, 1 running: the first three waiting start.
        assert_eq!(admit(Some(0), 10, 1, 4), Admission::Start);
        assert_eq!(admit(Some(2), 10, 1, 4), Admission::Start);
        assert_eq!(
            admit(Some(3), 10, 1, 4),
            Admission::Queued {
                position: 4,
                waiting: 10,
                running: 1
            }
        );
        // Full: everyone waits, with a place.
        assert_eq!(
            admit(Some(0), 12, 4, 4).message().as_deref(),
            Some("queued: 1 of 12 waiting; 4 builds running")
        );
        // No limit.
        assert_eq!(admit(Some(99), 100, 500, 0), Admission::Start);
    }

    #[test]
    fn an_artifact_outside_the_queue_goes_behind_it() {
        // An artifact that was in Error and whose cause was fixed is not in the queue: it waits
        // behind the queued ones.
        assert_eq!(
            admit(None, 3, 1, 4),
            Admission::Queued {
                position: 4,
                waiting: 4,
                running: 1
            }
        );
        // Enough free slots for the queue and for it.
        assert_eq!(admit(None, 2, 1, 4), Admission::Start);
    }

    fn builder_pod(name: &str, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": format!("{name}-build"), "namespace": "ns",
                "ownerReferences": [{"apiVersion": "v1", "kind": "OSArtifact", "name": name,
                    "uid": "u", "controller": true}],
            },
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn an_admitted_build_that_already_finished_frees_its_slot() {
        use kube::runtime::reflector;
        use kube::runtime::watcher::Event;
        let (artifacts, _aw) = reflector::store::<OSArtifact>();
        let (pods, mut pw) = reflector::store::<Pod>();
        let q = Queue::new(1, artifacts, pods, None);
        let m = Metrics::default();
        assert_eq!(q.admit("ns", "a", &m), Admission::Start);
        // Admitted, its pod not cached yet: the slot is taken.
        assert!(matches!(q.admit("ns", "b", &m), Admission::Queued { .. }));
        // The pod appears already finished: the slot is free again.
        pw.apply_watcher_event(&Event::Apply(builder_pod("a", "Succeeded")));
        assert_eq!(q.admit("ns", "b", &m), Admission::Start);
        // b's pod runs: the slot is b's.
        pw.apply_watcher_event(&Event::Apply(builder_pod("b", "Running")));
        assert!(matches!(q.admit("ns", "c", &m), Admission::Queued { .. }));
    }

    #[test]
    fn only_unfinished_builder_pods_hold_slots() {
        let pod = |kind: &str, phase: Option<&str>, deleting: bool| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "p", "namespace": "ns",
                    "ownerReferences": [{"apiVersion": "v1", "kind": kind, "name": "a",
                        "uid": "u", "controller": true}],
                    "deletionTimestamp": if deleting { Some("2026-01-01T00:00:00Z") } else { None },
                },
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        assert!(holds_slot(&pod("OSArtifact", Some("Running"), false)));
        assert!(holds_slot(&pod("OSArtifact", None, false)));
        assert!(!holds_slot(&pod("OSArtifact", Some("Succeeded"), false)));
        assert!(!holds_slot(&pod("OSArtifact", Some("Failed"), false)));
        assert!(!holds_slot(&pod("OSArtifact", Some("Running"), true)));
        // An exporter Job's pod carries the artifact's labels but belongs to the Job.
        assert!(!holds_slot(&pod("Job", Some("Running"), false)));
    }
}
