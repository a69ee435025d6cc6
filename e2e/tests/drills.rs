//! Failure drills on the one-node cluster, with real builds in flight: components killed with
//! SIGKILL and started again (etcd, the apiserver, the kubelet), containerd killed mid-build
//! and mid-export (its supervisor starts it again, as systemd would; the shims keep the
//! containers running), the operator's process killed mid-build and mid-export (its container
//! restarts) or frozen (cut off from the apiserver), a webhook replica killed while reviews
//! keep coming. After each: every artifact reaches the phase it should, no builder pod or
//! exporter Job was made twice, no child is left without its owner, no phase went backwards,
//! and the Events tell the story.
//!
//! Drills run one at a time (they take down what every test shares); each uses its own
//! namespace.
//!
//! The product is installed with the real `helm` from the chart (`installed_with_helm!`), so
//! these drills also show the chart's Pods Ready and serving on a real node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use osartifact_e2e::artifacts::events;
use osartifact_e2e::builder_images::OS_CORE;
use osartifact_e2e::identity::SYSTEM_NAMESPACE;
use osartifact_e2e::node::{self, busybox_image};
use osartifact_e2e::wait::poll;
use osartifact_e2e::{Ns, drill, env};
use serde_json::Value;

osartifact_e2e::cluster_namespaces!();
osartifact_e2e::installed_with_helm!();

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bound on a build of the small OS plus the drill's sleeps, on a busy 2-core machine.
const DONE_TIMEOUT: Duration = Duration::from_secs(240);

/// An ISO artifact whose build first sleeps `build_s` seconds (an importer) and whose exporter
/// sleeps `export_s` seconds, so a drill can strike mid-build and mid-export.
fn artifact(name: &str, build_s: u32, export_s: u32) -> String {
    let bb = busybox_image();
    format!(
        r#"apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {{name: {name}}}
spec:
  imageName: {OS_CORE}
  iso: true
  importers:
  - name: wait
    image: {bb}
    command: ["sleep", "{build_s}"]
  exporters:
  - template:
      spec:
        restartPolicy: Never
        containers:
        - name: upload
          image: {bb}
          command: ["sh", "-ec", "sleep {export_s}; ls /artifacts"]
          volumeMounts:
          - {{name: artifacts, mountPath: /artifacts, readOnly: true}}
"#
    )
}

fn rank(phase: &str) -> u8 {
    match phase {
        "" => 0,
        "Pending" => 1,
        "Building" => 2,
        "Exporting" => 3,
        _ => 4,
    }
}

/// What a watcher saw in a namespace, polling through whatever the drill takes down.
#[derive(Default, Debug)]
struct Seen {
    /// Each artifact's phases in the order seen (repeats folded).
    phases: BTreeMap<String, Vec<String>>,
    /// UIDs of each builder pod, exporter Job and exporter pod name.
    uids: BTreeMap<String, BTreeSet<String>>,
    /// The status of the Node's Ready condition, in the order seen (repeats folded).
    node_ready: Vec<String>,
}

struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(ns: &Ns) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s2, seen2, name) = (stop.clone(), seen.clone(), ns.name.clone());
        let thread = std::thread::spawn(move || {
            let k = env().k();
            while !s2.load(Ordering::SeqCst) {
                let out = k.run(&[
                    "get",
                    "osartifacts,pods,jobs,nodes",
                    "-n",
                    &name,
                    "-o",
                    "json",
                    "--request-timeout=5s",
                ]);
                if let Ok(out) = out
                    && out.success
                    && let Ok(v) = serde_json::from_str::<Value>(&out.stdout)
                {
                    let mut seen = seen2.lock().unwrap_or_else(|e| e.into_inner());
                    for o in v["items"].as_array().cloned().unwrap_or_default() {
                        let n = o["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        match o["kind"].as_str() {
                            Some("OSArtifact") => {
                                let p = o["status"]["phase"].as_str().unwrap_or_default();
                                let list = seen.phases.entry(n).or_default();
                                if list.last().map(String::as_str) != Some(p) {
                                    list.push(p.to_string());
                                }
                            }
                            Some("Node") => {
                                let ready = o["status"]["conditions"]
                                    .as_array()
                                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                                    .and_then(|c| c["status"].as_str())
                                    .unwrap_or("none")
                                    .to_string();
                                if seen.node_ready.last() != Some(&ready) {
                                    seen.node_ready.push(ready);
                                }
                            }
                            Some(_) => {
                                // Exporter pods are named after their Job: key them by the Job.
                                let key =
                                    match o["metadata"]["labels"]["batch.kubernetes.io/job-name"]
                                        .as_str()
                                    {
                                        Some(job) => format!("pod of {job}"),
                                        None => format!(
                                            "{} {n}",
                                            o["kind"].as_str().unwrap_or_default()
                                        ),
                                    };
                                let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
                                seen.uids.entry(key).or_default().insert(uid.to_string());
                            }
                            None => {}
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn apply(ns: &Ns, yaml: &str) {
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(yaml));
    assert!(out.success, "{out}");
}

/// Waits (polling through outages) until `pred` holds for artifact `name`.
fn wait_artifact(
    ns: &Ns,
    name: &str,
    desc: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let k = ns.env.k();
    let r = poll(desc, timeout, |last| {
        let out = k.run(&[
            "get",
            "osartifact",
            name,
            "-n",
            &ns.name,
            "-o",
            "json",
            "--request-timeout=5s",
        ])?;
        if !out.success {
            *last = out.all();
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&out.stdout)?;
        *last = v["status"].to_string();
        Ok(pred(&v).then_some(v))
    });
    r.unwrap_or_else(|e| panic!("{e:#} (namespace {})", ns.name))
}

fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or_default()
}

/// The builder pod's first step is running (the importer sleeping): mid-build.
fn wait_mid_build(ns: &Ns, name: &str) {
    let pod = format!("{name}-build");
    let k = ns.env.k();
    poll(
        &format!("{pod} running its first step"),
        DONE_TIMEOUT,
        |last| {
            let out = k.run(&["get", "pod", &pod, "-n", &ns.name, "-o", "json"])?;
            *last = out.all();
            if !out.success {
                return Ok(None);
            }
            let v: Value = serde_json::from_str(&out.stdout)?;
            let running = v["status"]["initContainerStatuses"]
                .as_array()
                .is_some_and(|a| {
                    a.iter()
                        .any(|c| c["name"] == "wait" && c["state"]["running"].is_object())
                });
            Ok(running.then_some(()))
        },
    )
    .unwrap();
}

/// Every artifact ended as `want`, each phase list only moved forward, one builder pod, one
/// exporter Job and one exporter pod at most per artifact, every child owned by a live
/// artifact, and the Events name each transition. Returns the Events by artifact.
fn assert_story(ns: &Ns, seen: &Seen, want: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut stories = BTreeMap::new();
    for (name, final_phase) in want {
        let a = ns.get(&["osartifact", name]).unwrap();
        assert_eq!(phase(&a), *final_phase, "{name}: {:#}", a["status"]);
        let mut phases = seen.phases.get(*name).cloned().unwrap_or_default();
        // The watcher may have stopped between its last look and the final phase.
        if phases.last().map(String::as_str) != Some(phase(&a)) {
            phases.push(phase(&a).to_string());
        }
        assert!(
            phases.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
            "{name}: a phase went backwards: {phases:?}"
        );
        assert_eq!(
            phases.last().map(String::as_str),
            Some(*final_phase),
            "{phases:?}"
        );
        for key in [
            format!("Pod {name}-build"),
            format!("Job {name}-export-0"),
            format!("pod of {name}-export-0"),
        ] {
            let n = seen.uids.get(&key).map_or(0, BTreeSet::len);
            assert!(
                n <= 1,
                "{key} was made {n} times: {:?}",
                seen.uids.get(&key)
            );
        }
        assert_eq!(
            seen.uids
                .get(&format!("Pod {name}-build"))
                .map_or(0, BTreeSet::len),
            1,
            "{name}: {:?}",
            seen.uids
        );
        let ev = events(ns, name);
        // The story, each transition told once: a restarted operator does not tell it again.
        for reason in ["Normal Building:", "Normal Exporting:", "Normal Ready:"] {
            let n = ev.iter().filter(|e| e.starts_with(reason)).count();
            assert_eq!(n, 1, "{name}: {reason} {n} times: {ev:#?}");
        }
        stories.insert(name.to_string(), ev);
    }
    // No orphan: every child carrying an artifact label is owned by that artifact, alive.
    let live: BTreeMap<String, String> = ns.get(&["osartifacts"]).unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["metadata"]["uid"].as_str().unwrap().to_string(),
                a["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let children = ns
        .get(&[
            "pods,jobs,configmaps,secrets,persistentvolumeclaims",
            "-l",
            "build.kairos.io/artifact-uid",
        ])
        .unwrap();
    let children = children["items"].as_array().unwrap();
    assert!(!children.is_empty());
    for c in children {
        let what = format!("{} {}", c["kind"], c["metadata"]["name"]);
        let uid = c["metadata"]["labels"]["build.kairos.io/artifact-uid"]
            .as_str()
            .unwrap();
        let kind = c["kind"].as_str().unwrap_or_default();
        // Exporter pods belong to their Job, which the artifact owns.
        if kind == "Pod" && c["metadata"]["labels"]["batch.kubernetes.io/job-name"].is_string() {
            continue;
        }
        assert!(live.contains_key(uid), "{what}: its artifact {uid} is gone");
        let owners = c["metadata"]["ownerReferences"].to_string();
        assert!(
            owners.contains(uid),
            "{what} not owned by its artifact: {owners}"
        );
    }
    stories
}

/// The product came from the chart: its Deployments are the Helm release's, their Pods Ready.
#[test]
fn the_product_runs_as_installed_by_helm() {
    let _s = serial();
    let k = env().k();
    for (name, replicas) in [("osartifact-operator", 1), ("osartifact-webhook", 2)] {
        let d = k
            .get_json(&["deployment", name, "-n", SYSTEM_NAMESPACE])
            .unwrap();
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        assert_eq!(
            d["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "osartifact"
        );
        assert_eq!(d["spec"]["replicas"], replicas, "{name}");
        // A drill before this test may have killed a replica: Ready again within two minutes.
        poll(
            &format!("{name}: {replicas} Ready"),
            Duration::from_secs(120),
            |last| {
                let d = k.get_json(&["deployment", name, "-n", SYSTEM_NAMESPACE])?;
                *last = d["status"].to_string();
                Ok((d["status"]["readyReplicas"] == replicas).then_some(()))
            },
        )
        .unwrap();
    }
}

fn operator_pod() -> Value {
    let k = env().k();
    let out = k
        .run(&[
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=osartifact-operator",
            "-o",
            "json",
        ])
        .unwrap();
    assert!(out.success, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v:#}");
    items[0].clone()
}

fn restarts(pod: &Value) -> u64 {
    pod["status"]["containerStatuses"][0]["restartCount"]
        .as_u64()
        .unwrap_or(0)
}

/// The one operator process of this run's pods.
fn operator_pid() -> u32 {
    poll("the operator's process", Duration::from_secs(120), |last| {
        let p = drill::pod_processes("osartifact-operator");
        *last = format!("{p:?}");
        Ok((p.len() == 1).then(|| p[0]))
    })
    .unwrap()
}

/// Waits until the apiserver answers /readyz again.
fn wait_apiserver() {
    let k = env().k();
    poll("kube-apiserver /readyz", Duration::from_secs(120), |last| {
        let out = k.run(&["get", "--raw", "/readyz", "--request-timeout=5s"])?;
        *last = out.all();
        Ok(out.success.then_some(()))
    })
    .unwrap();
}

fn print_story(drill: &str, took: Duration, seen: &Seen, stories: &BTreeMap<String, Vec<String>>) {
    eprintln!(
        "[drill] {drill}: {:.1}s; phases {:?}; node Ready {:?}",
        took.as_secs_f64(),
        seen.phases,
        seen.node_ready
    );
    for (a, ev) in stories {
        eprintln!("[drill]   {a}: {}", ev.join(" | "));
    }
}

#[test]
fn operator_killed_mid_build_and_mid_export() {
    let e = env();
    let _s = serial();
    let ns = e.namespace("drill-operator");
    let w = Watcher::start(&ns);
    let started = Instant::now();
    let before = restarts(&operator_pod());
    apply(&ns, &artifact("kill-op", 10, 10));
    wait_mid_build(&ns, "kill-op");
    drill::kill9(operator_pid()).unwrap();
    // The kubelet restarts the container; the new process finds the build in flight.
    wait_artifact(&ns, "kill-op", "Exporting", DONE_TIMEOUT, |v| {
        phase(v) == "Exporting"
    });
    assert!(
        restarts(&operator_pod()) > before,
        "{:#}",
        operator_pod()["status"]
    );
    let mid = restarts(&operator_pod());
    drill::kill9(operator_pid()).unwrap();
    wait_artifact(&ns, "kill-op", "Ready", DONE_TIMEOUT, |v| {
        matches!(phase(v), "Ready" | "Error")
    });
    assert!(restarts(&operator_pod()) > mid);
    let seen = w.finish();
    let stories = assert_story(&ns, &seen, &[("kill-op", "Ready")]);
    print_story(
        "operator kill -9 mid-build and mid-export",
        started.elapsed(),
        &seen,
        &stories,
    );
}

#[test]
fn operator_frozen_while_its_build_finishes() {
    let e = env();
    let _s = serial();
    let ns = e.namespace("drill-freeze");
    let w = Watcher::start(&ns);
    let started = Instant::now();
    apply(&ns, &artifact("frozen", 3, 1));
    wait_mid_build(&ns, "frozen");
    let pid = operator_pid();
    let before = restarts(&operator_pod());
    drill::freeze(pid).unwrap();
    // Frozen for less than the liveness probe's patience (3 x 20 s): the build and the
    // exporter finish meanwhile, unseen; the watch events queue up in the socket.
    std::thread::sleep(Duration::from_secs(25));
    let mid = ns.get(&["osartifact", "frozen"]).unwrap();
    drill::thaw(pid).unwrap();
    assert_eq!(
        phase(&mid),
        "Building",
        "nobody reconciled while frozen: {:#}",
        mid["status"]
    );
    wait_artifact(&ns, "frozen", "Ready", DONE_TIMEOUT, |v| {
        matches!(phase(v), "Ready" | "Error")
    });
    let seen = w.finish();
    let stories = assert_story(&ns, &seen, &[("frozen", "Ready")]);
    eprintln!(
        "[drill] operator restarts during the freeze: {}",
        restarts(&operator_pod()) - before
    );
    print_story(
        "operator frozen 25 s (SIGSTOP/SIGCONT)",
        started.elapsed(),
        &seen,
        &stories,
    );
}

/// Kills a control-plane or node component with SIGKILL mid-build and starts it again after
/// `down`; the artifacts must then finish as if nothing happened.
fn component_drill(prefix: &str, program: &str, arg: &str, log: &str, down: Duration) {
    let e = env();
    let _s = serial();
    let ns = e.namespace(prefix);
    let w = Watcher::start(&ns);
    let started = Instant::now();
    apply(&ns, &artifact("a", 12, 1));
    wait_mid_build(&ns, "a");
    let pid = drill::child(program, arg).unwrap();
    let also = drill::children(pid);
    drill::kill_and_restart(pid, program, &e.log_dir.join(log), &also, down).unwrap();
    wait_apiserver();
    wait_artifact(&ns, "a", "Ready", DONE_TIMEOUT, |v| {
        matches!(phase(v), "Ready" | "Error")
    });
    let seen = w.finish();
    let stories = assert_story(&ns, &seen, &[("a", "Ready")]);
    print_story(
        &format!("{program} kill -9, down {down:?}"),
        started.elapsed(),
        &seen,
        &stories,
    );
}

#[test]
fn etcd_killed_and_restarted_mid_build() {
    component_drill(
        "drill-etcd",
        "etcd",
        "--data-dir",
        "etcd.log",
        Duration::from_secs(5),
    );
}

#[test]
fn apiserver_killed_and_restarted_mid_build() {
    component_drill(
        "drill-apiserver",
        "kube-apiserver",
        "--etcd-servers",
        "kube-apiserver.log",
        Duration::from_secs(5),
    );
}

#[test]
fn kubelet_killed_and_restarted_mid_build() {
    component_drill(
        "drill-kubelet",
        "kubelet",
        "--node-ip",
        "kubelet.log",
        Duration::from_secs(5),
    );
}

#[test]
fn a_webhook_replica_killed_the_other_keeps_answering() {
    let e = env();
    let _s = serial();
    let ns = e.namespace("drill-webhook");
    let pids = poll("both webhook processes", Duration::from_secs(120), |last| {
        let p = drill::pod_processes("osartifact-webhook");
        *last = format!("{p:?}");
        Ok((p.len() == 2).then_some(p))
    })
    .unwrap();
    let obj = |i: usize| {
        format!(
            "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: r{i}}}\nspec: {{imageName: \"{OS_CORE}\", iso: true}}\n"
        )
    };
    let victim = pids[0];
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drill::kill9(victim).unwrap();
        Instant::now()
    });
    let start = Instant::now();
    let mut results: Vec<(Instant, bool, String)> = Vec::new();
    // Reviews for 25 s: the kill, the container's restart and its readiness fall in it.
    while start.elapsed() < Duration::from_secs(25) {
        let out = ns.k_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            Some(&obj(results.len())),
        );
        results.push((Instant::now(), out.success, out.to_string()));
    }
    let killed_at = killer.join().unwrap();
    e.rolled_out("osartifact-webhook", Duration::from_secs(120))
        .unwrap();
    let after: Vec<_> = results.iter().filter(|(t, _, _)| *t > killed_at).collect();
    let answered = after
        .iter()
        .filter(|(t, ok, _)| *ok && t.duration_since(killed_at) < Duration::from_secs(10))
        .count();
    let failures: Vec<_> = results.iter().filter(|(_, ok, _)| !ok).collect();
    eprintln!(
        "[drill] webhook replica kill -9: {} reviews, {} failed, {answered} answered in the 10 s after the kill",
        results.len(),
        failures.len()
    );
    for (t, _, msg) in &failures {
        eprintln!(
            "[drill]   {:.1}s after the kill: {}",
            t.duration_since(killed_at).as_secs_f64(),
            msg.lines().last().unwrap_or_default()
        );
    }
    assert!(results.len() > 20, "only {} reviews", results.len());
    assert!(answered >= 5, "the other replica did not keep answering");
    // A review that failed did so calling the dead replica, never as a wrong answer.
    for (_, _, msg) in &failures {
        assert!(msg.contains("failed calling webhook"), "{msg}");
    }
    // Once both are Ready again, nothing fails.
    for i in 0..10 {
        let out = ns.k_stdin(
            &["create", "--dry-run=server", "-f", "-"],
            Some(&obj(1000 + i)),
        );
        assert!(out.success, "{out}");
    }
}

/// containerd's config: an argument of containerd and of its supervisor, and of no other.
const CONTAINERD_CONFIG: &str = "containerd/config.toml";

/// The status of container `container` of pod `pod` (an init container or not).
fn container_status(ns: &Ns, pod: &str, container: &str) -> Option<Value> {
    let p = ns.get(&["pod", pod])?;
    let s = &p["status"];
    ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| s[k].as_array())
        .flatten()
        .find(|c| c["name"] == container)
        .cloned()
}

/// The name of the pod of Job `job`, once its container `container` runs.
fn wait_job_container_running(ns: &Ns, job: &str, container: &str) -> String {
    let label = format!("batch.kubernetes.io/job-name={job}");
    let k = ns.env.k();
    poll(
        &format!("{job}: {container} running"),
        DONE_TIMEOUT,
        |last| {
            let out = k.run(&["get", "pods", "-n", &ns.name, "-l", &label, "-o", "json"])?;
            *last = out.all();
            if !out.success {
                return Ok(None);
            }
            let v: Value = serde_json::from_str(&out.stdout)?;
            Ok(v["items"].as_array().into_iter().flatten().find_map(|p| {
                let running = p["status"]["containerStatuses"]
                    .as_array()?
                    .iter()
                    .any(|c| c["name"] == container && c["state"]["running"].is_object());
                running
                    .then(|| p["metadata"]["name"].as_str().map(str::to_string))
                    .flatten()
            }))
        },
    )
    .unwrap()
}

/// The product's Pods: each one's UID and, per container, its ID and restart count.
fn product_pods() -> BTreeMap<String, String> {
    let k = env().k();
    let v = k.get_json(&["pods", "-n", SYSTEM_NAMESPACE]).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{v:#}");
    items
        .iter()
        .map(|p| {
            let containers: Vec<String> = p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{} {} restarts {}",
                        c["name"], c["containerID"], c["restartCount"]
                    )
                })
                .collect();
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                format!("{} {containers:?}", p["metadata"]["uid"]),
            )
        })
        .collect()
}

/// The product's processes (operator and webhook), by pid.
fn product_processes() -> Vec<u32> {
    let mut p = drill::pod_processes("osartifact-operator");
    p.extend(drill::pod_processes("osartifact-webhook"));
    p.sort_unstable();
    p
}

/// Kills containerd with SIGKILL while container `container` of pod `pod` (from
/// `wait_moment`) runs its `sleep`, and lets containerd's supervisor start it again, as
/// systemd does on a real node. The container, its shim and the product's Pods must live
/// through it, the kubelet must carry on through the new containerd, and the artifact must
/// finish as if nothing happened.
fn containerd_drill(
    prefix: &str,
    yaml: &str,
    name: &str,
    container: &str,
    wait_moment: impl Fn(&Ns) -> String,
) {
    let e = env();
    let _s = serial();
    let ns = e.namespace(prefix);
    let sock = &e.node.as_ref().unwrap().containerd_sock;
    let w = Watcher::start(&ns);
    let started = Instant::now();
    e.rolled_out("osartifact-operator", Duration::from_secs(120))
        .unwrap();
    e.rolled_out("osartifact-webhook", Duration::from_secs(120))
        .unwrap();
    let pods_before = product_pods();
    let procs_before = product_processes();
    apply(&ns, yaml);
    let pod = wait_moment(&ns);
    let victim = container_status(&ns, &pod, container).unwrap();
    let sleep = poll("the container's sleep", Duration::from_secs(30), |last| {
        let p = drill::pod_processes("sleep");
        *last = format!("{p:?}");
        Ok((p.len() == 1).then(|| p[0]))
    })
    .unwrap();

    let supervisor = drill::descendant("sh", CONTAINERD_CONFIG).unwrap();
    let old = drill::descendant("containerd", CONTAINERD_CONFIG).unwrap();
    assert!(drill::children(supervisor).contains(&old));
    let shims: Vec<u32> = drill::children(supervisor)
        .into_iter()
        .filter(|&p| p != old)
        .collect();
    assert!(!shims.is_empty(), "no shim under the supervisor");
    let kubelet_log = e.log_dir.join("kubelet.log");
    let log_from = std::fs::metadata(&kubelet_log).unwrap().len();

    let killed = Instant::now();
    drill::kill9(old).unwrap();
    poll("containerd to die", Duration::from_secs(30), |_| {
        Ok(drill::is_dead(old).then_some(()))
    })
    .unwrap();
    // Down: the shims and the containers they run go on without it.
    for &p in shims.iter().chain([&sleep]) {
        assert!(!drill::is_dead(p), "{p} died with containerd");
    }
    let new = poll(
        "containerd started again",
        Duration::from_secs(30),
        |last| {
            let p = drill::descendant("containerd", CONTAINERD_CONFIG);
            *last = format!("{p:?}");
            Ok(p.ok().filter(|&p| p != old))
        },
    )
    .unwrap();
    node::wait_containerd(sock, Duration::from_secs(30)).unwrap();
    let down = killed.elapsed();
    assert!(
        down >= node::CONTAINERD_RESTART_DELAY,
        "containerd back after {down:?}, before its supervisor's delay"
    );
    assert!(drill::children(supervisor).contains(&new));
    assert!(
        !drill::is_dead(sleep),
        "the container's process died while containerd restarted"
    );

    // The container ends on its own, and the kubelet learns it through the new containerd:
    // the same container (same ID, never restarted), exit 0.
    let done = poll(
        &format!("{pod}/{container} to finish"),
        DONE_TIMEOUT,
        |last| {
            let c = container_status(&ns, &pod, container);
            *last = format!("{c:?}");
            Ok(c.filter(|c| c["state"]["terminated"].is_object()))
        },
    )
    .unwrap();
    assert_eq!(done["containerID"], victim["containerID"], "{done:#}");
    assert_eq!(done["restartCount"], 0, "{done:#}");
    assert_eq!(done["state"]["terminated"]["exitCode"], 0, "{done:#}");

    wait_artifact(&ns, name, "Ready", DONE_TIMEOUT, |v| {
        matches!(phase(v), "Ready" | "Error")
    });
    // The Node is (again) Ready.
    let k = e.k();
    poll("the Node Ready", Duration::from_secs(120), |last| {
        let v = k.get_json(&["nodes"])?;
        *last = v.to_string();
        Ok(v["items"][0]["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .then_some(()))
    })
    .unwrap();
    let seen = w.finish();
    let stories = assert_story(&ns, &seen, &[(name, "Ready")]);
    assert_eq!(
        seen.node_ready.last().map(String::as_str),
        Some("True"),
        "{:?}",
        seen.node_ready
    );

    // The product's Pods ran through it: the same Pods, containers and processes.
    assert_eq!(product_pods(), pods_before);
    assert_eq!(product_processes(), procs_before);
    // Shims that ended since (the finished pods') were reaped by the supervisor.
    poll(
        "no zombie under the supervisor",
        Duration::from_secs(10),
        |last| {
            let z = drill::zombie_children(supervisor);
            *last = format!("{z:?}");
            Ok(z.is_empty().then_some(()))
        },
    )
    .unwrap();

    // The kubelet's calls failed while containerd was down, and it carried on after.
    let log = std::fs::read(&kubelet_log).unwrap();
    let log = String::from_utf8_lossy(&log[usize::try_from(log_from).unwrap()..]);
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("containerd.sock")
                && (l.contains("connection refused") || l.contains("no such file"))
        })
        .collect();
    assert!(
        !refused.is_empty(),
        "no failed CRI call in the kubelet's log"
    );
    eprintln!(
        "[drill] containerd kill -9: back (answering) after {:.1}s; {} kubelet log lines with the socket refused, first: {}",
        down.as_secs_f64(),
        refused.len(),
        refused[0]
    );
    print_story(
        &format!("containerd kill -9 ({prefix})"),
        started.elapsed(),
        &seen,
        &stories,
    );
}

#[test]
fn containerd_killed_mid_build_restarted_by_its_supervisor() {
    containerd_drill(
        "drill-containerd",
        &artifact("ctrd", 25, 1),
        "ctrd",
        "wait",
        |ns| {
            wait_mid_build(ns, "ctrd");
            "ctrd-build".to_string()
        },
    );
}

#[test]
fn containerd_killed_mid_export_restarted_by_its_supervisor() {
    containerd_drill(
        "drill-containerd-export",
        &artifact("ctrdx", 1, 25),
        "ctrdx",
        "upload",
        |ns| wait_job_container_running(ns, "ctrdx-export-0", "upload"),
    );
}
