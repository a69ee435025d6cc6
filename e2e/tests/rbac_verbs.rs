//! Least privilege, shown by taking each verb away: for every verb that manifests/rbac grants the
//! operator, a fresh operator runs the scenario that needs it with copies of the shipped roles
//! that lack that verb, and the scenario fails (with every verb granted, each scenario passes).
//! The apiserver's audit log says which request was refused, which ends a failing scenario early.
//!
//! Each case runs as a user of its own, bound to its own copies of the roles, with its own Lease
//! and watching only its own namespace, so [`WORKERS`] cases run side by side.
//!
//! The webhook's verbs are taken away the same way in `webhook_verbs`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use osartifact_e2e::artifacts::{finish_build, finish_export};
use osartifact_e2e::identity::{Identity, SYSTEM_NAMESPACE};
use osartifact_e2e::operator::Operator;
use osartifact_e2e::procs::{Proc, free_port};
use osartifact_e2e::wait::poll;
use osartifact_e2e::webhook::self_managed_args;
use osartifact_e2e::{Ns, audit, env, paths};
use serde_json::{Value, json};

/// How long a step of a scenario may take when it works.
const STEP: Duration = Duration::from_secs(8);
/// How long a scenario goes on after the operator was refused a request.
const AFTER_DENIAL: Duration = Duration::from_secs(2);

/// Operator cases at once: each polls the apiserver with kubectl and runs an operator, and two
/// cores serve them, the apiserver and etcd.
const WORKERS: usize = 4;

/// The webhook test changes the configurations every artifact here goes through: one test at a
/// time.
static SERIAL: Mutex<()> = Mutex::new(());

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";

/// The RBAC objects as shipped (`kubectl kustomize manifests/rbac`).
fn shipped_rbac() -> Vec<Value> {
    let out = env()
        .k()
        .run(&[
            "kustomize",
            &paths::workspace()
                .join("manifests/rbac")
                .display()
                .to_string(),
        ])
        .unwrap();
    assert!(out.success, "{out}");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out.stdout).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn apply_role(role: &Value) {
    let out = env()
        .k()
        .run_stdin(
            &["apply", "-n", SYSTEM_NAMESPACE, "-f", "-"],
            Some(&role.to_string()),
        )
        .unwrap();
    assert!(out.success, "{out}");
}

/// `role` with `verb` taken out of rule `rule` (the rule dropped when it has no verb left).
fn without(role: &Value, rule: usize, verb: &str) -> Value {
    let mut r = role.clone();
    let rules = r["rules"].as_array_mut().unwrap();
    let verbs = rules[rule]["verbs"].as_array_mut().unwrap();
    verbs.retain(|v| v != verb);
    if verbs.is_empty() {
        rules.remove(rule);
    }
    r
}

/// A running scenario: its namespace, its operator's user, and the audit log since it started.
struct Run {
    ns: Ns,
    started: Instant,
    user: String,
    audit: RefCell<audit::Tail>,
    denied: RefCell<Option<String>>,
}

impl Run {
    fn new(user: &str) -> Self {
        Self {
            ns: env().namespace("rbac"),
            started: Instant::now(),
            user: user.to_string(),
            audit: RefCell::new(audit::Tail::from_end(&env().cp.audit_log)),
            denied: RefCell::new(None),
        }
    }

    /// The operator's first refused request (403) since the run started.
    fn denial(&self) -> Option<String> {
        if self.denied.borrow().is_none() {
            let found = self
                .audit
                .borrow_mut()
                .next_requests()
                .ok()?
                .into_iter()
                .find(|r| r.code == Some(403) && r.user == self.user)
                .map(|r| format!("{} {} {:?}", r.verb, r.resource, r.name));
            *self.denied.borrow_mut() = found;
        }
        self.denied.borrow().clone()
    }

    /// Waits for `pred`; fails after [`STEP`], or [`AFTER_DENIAL`] after a refused request.
    fn step(&self, desc: &str, pred: impl Fn(&Ns) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + STEP;
        let mut denied: Option<(Instant, String)> = None;
        loop {
            if pred(&self.ns) {
                return Ok(());
            }
            if denied.is_none()
                && let Some(d) = self.denial()
            {
                denied = Some((Instant::now(), d));
            }
            if let Some((t, d)) = &denied
                && t.elapsed() > AFTER_DENIAL
            {
                return Err(format!("{desc}: not reached after the refused request {d}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{desc}: not reached in {STEP:?}"));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn apply(&self, yaml: &str) -> Result<(), String> {
        let out = self.ns.k_stdin(&["apply", "-f", "-"], Some(yaml));
        out.success.then_some(()).ok_or_else(|| out.to_string())
    }
}

fn phase_is(ns: &Ns, name: &str, phase: &str) -> bool {
    ns.get(&["osartifact", name])
        .is_some_and(|a| a["status"]["phase"] == phase)
}

fn exists(ns: &Ns, what: &str) -> bool {
    ns.get(&[what]).is_some()
}

fn artifact(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: {name}}}\nspec:\n  baseImageDockerfile: {{name: {name}-df, key: Dockerfile}}\n  dockerfileTemplateValues: {{Image: \"{IMAGE}\"}}\n  iso: true\n  exporters:\n  - template:\n      spec:\n        restartPolicy: Never\n        containers: [{{name: upload, image: quay.io/curl/curl}}]\n{extra}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-df}}\nstringData:\n  Dockerfile: \"FROM {{{{ .Image }}}}\\n\"\n"
    )
}

/// The whole life of an artifact with a Dockerfile template and an exporter: every child
/// created and watched, the referenced Secret read, status and Events written, the Lease held.
fn lifecycle(run: &Run) -> Result<(), String> {
    run.apply(&artifact("life", ""))?;
    run.step("Building with its pod", |ns| {
        phase_is(ns, "life", "Building") && exists(ns, "pod/life-build")
    })?;
    finish_build(&run.ns, "life");
    run.step("Exporting with its Job", |ns| {
        phase_is(ns, "life", "Exporting") && exists(ns, "job/life-export-0")
    })?;
    finish_export(&run.ns, "life-export-0");
    run.step("Ready", |ns| phase_is(ns, "life", "Ready"))?;
    run.step("the Ready Event", |ns| {
        osartifact_e2e::artifacts::events(ns, "life")
            .iter()
            .any(|e| e.contains("Ready"))
    })
}

/// A spec change after an export: the previous attempt's pod, Job and ConfigMap are deleted
/// and the build starts again.
fn rebuild(run: &Run) -> Result<(), String> {
    lifecycle(run)?;
    let old = run.ns.get(&["pod", "life-build"]).unwrap_or_default()["metadata"]["uid"].clone();
    let out = run.ns.k(&[
        "patch",
        "osartifact",
        "life",
        "--type=merge",
        "-p",
        r#"{"spec":{"dockerfileTemplateValues":{"Image":"quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0"}}}"#,
    ]);
    if !out.success {
        return Err(out.to_string());
    }
    run.step("a new builder pod, no Job", |ns| {
        ns.get(&["pod", "life-build"])
            .is_some_and(|p| p["metadata"]["uid"] != old)
            && !exists(ns, "job/life-export-0")
            && ns
                .get(&["configmap", "life"])
                .is_some_and(|c| c["metadata"]["annotations"]["build.kairos.io/generation"] == "2")
    })
}

/// A volume change Kubernetes cannot apply to a PVC: the old one is deleted, a new one made.
fn pvc_replace(run: &Run) -> Result<(), String> {
    run.apply(&artifact(
        "vol",
        "  volume:\n    accessModes: [ReadWriteOnce]\n    resources: {requests: {storage: 1Gi}}\n",
    ))?;
    run.step("Building", |ns| phase_is(ns, "vol", "Building"))?;
    let old = run.ns.get(&["pvc", "vol-artifacts"]).unwrap_or_default()["metadata"]["uid"].clone();
    // The apiserver's PVCs keep their finalizer without a controller for it in this cluster:
    // the test takes it off once the operator has asked for the deletion.
    let out = run.ns.k(&[
        "patch",
        "osartifact",
        "vol",
        "--type=merge",
        "-p",
        r#"{"spec":{"volume":{"accessModes":["ReadWriteMany"]}}}"#,
    ]);
    if !out.success {
        return Err(out.to_string());
    }
    run.step("the old PVC deleted and a new one made", |ns| {
        if let Some(p) = ns.get(&["pvc", "vol-artifacts"])
            && p["metadata"]["uid"] == old
            && p["metadata"]["deletionTimestamp"].is_string()
        {
            let _ = ns.k(&[
                "patch",
                "pvc",
                "vol-artifacts",
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
        ns.get(&["pvc", "vol-artifacts"])
            .is_some_and(|p| p["metadata"]["uid"] != old)
    })
}

/// A child the operator made but its watch has not shown (created, then the operator stopped
/// before its watch delivered it: here, an owned child without the artifact-UID label the
/// watches select by). The operator's create meets AlreadyExists, reads the object (get),
/// finds it its own and applies over it (patch); the build goes on.
fn ours_unseen(kind: &str, run: &Run, op: &mut Operator) -> Result<(), String> {
    op.stop();
    run.apply(&artifact("seen", ""))?;
    let a = run.ns.get(&["osartifact", "seen"]).ok_or("no artifact")?;
    let uid = a["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let owner = json!([{"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
        "name": "seen", "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    let meta = |name: &str| json!({"name": name, "ownerReferences": owner});
    let (what, obj) = match kind {
        "configmaps" => (
            "configmap/seen",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("seen")}),
        ),
        "secrets" => (
            "secret/seen-rendered-dockerfile",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("seen-rendered-dockerfile")}),
        ),
        "persistentvolumeclaims" => (
            "pvc/seen-artifacts",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("seen-artifacts"),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        "pods" => (
            "pod/seen-build",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("seen-build"),
            "spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "busybox"}]}}),
        ),
        "jobs" => (
            "job/seen-export-0",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("seen-export-0"),
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "upload", "image": "quay.io/curl/curl"}]}}}}),
        ),
        k => return Err(format!("no scenario for {k}")),
    };
    let out = run
        .ns
        .k_stdin(&["create", "-f", "-"], Some(&obj.to_string()));
    if !out.success {
        return Err(out.to_string());
    }
    op.restart().map_err(|e| e.to_string())?;
    // The apply added the label: the operator took the object over.
    let labelled = move |ns: &Ns| {
        ns.get(&[what])
            .is_some_and(|o| o["metadata"]["labels"]["build.kairos.io/artifact-uid"].is_string())
    };
    if kind == "jobs" {
        run.step("Building", |ns| exists(ns, "pod/seen-build"))?;
        finish_build(&run.ns, "seen");
        run.step("Exporting with the Job taken over", |ns| {
            phase_is(ns, "seen", "Exporting") && labelled(ns)
        })
    } else {
        run.step("Building with the child taken over", |ns| {
            phase_is(ns, "seen", "Building") && labelled(ns)
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Lifecycle,
    Rebuild,
    PvcReplace,
    OursUnseen(&'static str),
}

/// A verb taken away: rule `rule` of role `role` loses `verb` on `resource`.
#[derive(Clone, Debug)]
struct Removed {
    role: usize,
    rule: usize,
    resource: String,
    verb: String,
}

/// `role` with `verb` taken from `resource` in rule `rule` only: a rule on several resources
/// keeps the verb for the others through a rule of their own.
fn reduced(role: &Value, rule: usize, resource: &str, verb: &str) -> Value {
    let mut r = without(role, rule, verb);
    let others: Vec<Value> = role["rules"][rule]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x.as_str() != Some(resource))
        .cloned()
        .collect();
    if !others.is_empty() {
        let mut extra = role["rules"][rule].clone();
        extra["resources"] = Value::Array(others);
        extra["verbs"] = json!([verb]);
        r["rules"].as_array_mut().unwrap().push(extra);
    }
    r
}

/// A user for case `n`, bound to copies of `roles` (the operator's ClusterRole and Lease Role)
/// with `removed` taken away.
fn grant(n: usize, roles: &[Value], removed: Option<&Removed>) -> Identity {
    let user = format!("osartifact-e2e:rbac-operator-{n}");
    // Only the bindings below grant it anything; the group has its requests audited.
    let id = env()
        .cp
        .identity(
            &format!("rbac-operator-{n}"),
            &user,
            &[audit::AUDITED_GROUP],
        )
        .unwrap();
    let mut items = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let mut r = match removed {
            Some(x) if x.role == i => reduced(role, x.rule, &x.resource, &x.verb),
            _ => role.clone(),
        };
        let name = format!("{}-case-{n}", role["metadata"]["name"].as_str().unwrap());
        r["metadata"]["name"] = json!(name);
        let kind = r["kind"].as_str().unwrap().to_string();
        let mut binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": format!("{kind}Binding"),
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        });
        if kind == "Role" {
            r["metadata"]["namespace"] = json!(SYSTEM_NAMESPACE);
            binding["metadata"]["namespace"] = json!(SYSTEM_NAMESPACE);
        }
        items.push(r);
        items.push(binding);
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = env()
        .k()
        .run_stdin(&["apply", "-f", "-"], Some(&list.to_string()))
        .unwrap();
    assert!(out.success, "{out}");
    id
}

/// Runs scenario `s` with an operator of its own (user `n`, `removed` taken away), watching only
/// the scenario's namespace and holding a Lease of its own.
fn run_scenario(
    n: usize,
    s: Scenario,
    roles: &[Value],
    removed: Option<&Removed>,
) -> Result<Duration, String> {
    let e = env();
    let id = grant(n, roles, removed);
    let run = Run::new(&id.user);
    let watch = format!("--watch-namespace={}", run.ns.name);
    let lease = format!("--leader-election-id=rbac-operator-{n}");
    let mut op = Operator::start(
        &e.log_dir,
        &format!("rbac-operator-{n}"),
        &id,
        &[&watch, &lease],
    )
    .map_err(|err| format!("starting the operator: {err:#}"))?;
    let r = match s {
        Scenario::Lifecycle => lifecycle(&run),
        Scenario::Rebuild => rebuild(&run),
        Scenario::PvcReplace => pvc_replace(&run),
        Scenario::OursUnseen(kind) => ours_unseen(kind, &run, &mut op),
    };
    op.stop();
    r.map(|()| run.started.elapsed())
}

/// Runs every case on [`WORKERS`] threads; results in the cases' order.
fn run_all(
    cases: &[(Scenario, Option<Removed>)],
    roles: &[Value],
) -> Vec<Result<Duration, String>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((s, removed)) = cases.get(i) else {
                        break;
                    };
                    let r = run_scenario(i, *s, roles, removed.as_ref());
                    results.lock().unwrap().insert(i, r);
                }
            });
        }
    });
    results.into_inner().unwrap().into_values().collect()
}

/// The scenario that needs `verb` on `resource`, or why none is run.
fn scenario_for(resource: &str, verb: &str) -> Result<Scenario, &'static str> {
    const CHILDREN: &[&str] = &[
        "pods",
        "persistentvolumeclaims",
        "jobs",
        "configmaps",
        "secrets",
    ];
    match (resource, verb) {
        ("osartifacts/finalizers", _) => Err(
            "needed only where the OwnerReferencesPermissionEnforcement admission plugin is on, which the test apiserver does not run",
        ),
        ("jobs" | "pods" | "persistentvolumeclaims", "get" | "patch") => Err(
            "only a race reaches it (the operator's create meets its own object before its watch shows it); an object made by the test differs in fields Kubernetes will not update, so the apply over it is refused either way",
        ),
        ("persistentvolumeclaims", "delete") => Ok(Scenario::PvcReplace),
        (r, "delete") if CHILDREN.contains(&r) => Ok(Scenario::Rebuild),
        (r, "get" | "patch") if CHILDREN.contains(&r) && r != "secrets" => {
            Ok(Scenario::OursUnseen(
                CHILDREN
                    .iter()
                    .find(|c| **c == r)
                    .copied()
                    .unwrap_or("pods"),
            ))
        }
        _ => Ok(Scenario::Lifecycle),
    }
}

#[test]
fn every_verb_granted_to_the_operator_is_needed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let docs = shipped_rbac();
    let roles: Vec<Value> = docs
        .into_iter()
        .filter(|d| {
            matches!(d["kind"].as_str(), Some("ClusterRole" | "Role"))
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("osartifact-operator"))
        })
        .collect();
    assert_eq!(roles.len(), 2, "{roles:#?}");
    let mut removals = Vec::new();
    for (r, role) in roles.iter().enumerate() {
        for (i, rule) in role["rules"].as_array().unwrap().iter().enumerate() {
            for res in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    removals.push(Removed {
                        role: r,
                        rule: i,
                        resource: res.as_str().unwrap().to_string(),
                        verb: verb.as_str().unwrap().to_string(),
                    });
                }
            }
        }
    }
    let name = |x: &Removed| {
        let role = roles[x.role]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        format!("{role}: {} {}", x.verb, x.resource)
    };
    // Every scenario with every verb granted, then each verb taken away, all side by side.
    let mut scenarios: Vec<Scenario> = removals
        .iter()
        .filter_map(|x| scenario_for(&x.resource, &x.verb).ok())
        .collect();
    scenarios.sort();
    scenarios.dedup();
    let mut cases: Vec<(Scenario, Option<Removed>)> =
        scenarios.iter().map(|s| (*s, None)).collect();
    let mut skipped = BTreeMap::new();
    for x in removals {
        match scenario_for(&x.resource, &x.verb) {
            Ok(s) => cases.push((s, Some(x))),
            Err(why) => {
                skipped.insert(name(&x), why);
            }
        }
    }
    let results = run_all(&cases, &roles);
    let mut not_needed = Vec::new();
    for ((s, removed), r) in cases.iter().zip(&results) {
        match (removed, r) {
            (None, Ok(took)) => eprintln!(
                "[rbac] {s:?} passes with every verb in {:.1}s",
                took.as_secs_f64()
            ),
            (None, Err(err)) => panic!("{s:?} with every verb: {err}"),
            (Some(x), Err(err)) => eprintln!("[rbac] without {}: {s:?} fails: {err}", name(x)),
            (Some(x), Ok(_)) => not_needed.push(format!("{} ({s:?} passes without it)", name(x))),
        }
    }
    for (k, why) in &skipped {
        eprintln!("[rbac] not tested: {k}: {why}");
    }
    // What no scenario here shows as needed, each with the reason; any other verb that a
    // scenario passes without fails the test.
    let unexplained: Vec<&String> = not_needed
        .iter()
        .filter(|n| {
            let name = n.split(" (").next().unwrap_or_default();
            !NO_SCENARIO.iter().any(|(v, _)| *v == name)
        })
        .collect();
    for n in &not_needed {
        eprintln!("[rbac] no scenario needs {n}");
    }
    assert!(
        unexplained.is_empty(),
        "verbs no scenario needs: {unexplained:#?}"
    );
}

/// Verbs of the operator's roles that no scenario here shows as needed, and why (see
/// docs/testing.md).
const NO_SCENARIO: &[(&str, &str)] = &[
    // Needed where these scenarios do not reach, or only for timeliness.
    (
        "osartifact-operator: watch configmaps",
        "refused, the cache relists: slower, not broken",
    ),
    (
        "osartifact-operator: watch persistentvolumeclaims",
        "refused, the cache relists",
    ),
    (
        "osartifact-operator: watch pods",
        "refused, the cache relists",
    ),
    (
        "osartifact-operator: watch jobs",
        "refused, the cache relists",
    ),
    // A build waiting for a Secret that appears later starts without them too (the artifact's
    // own requeue finds the Secret within seconds); the watch makes it start at once.
    (
        "osartifact-operator: list secrets",
        "a Secret that appears later is seen sooner",
    ),
    (
        "osartifact-operator: watch secrets",
        "a Secret that appears later is seen sooner",
    ),
    (
        "osartifact-operator: patch secrets",
        "create meets the operator's own unseen Secret",
    ),
    (
        "osartifact-operator: patch events",
        "an Event repeated as a series",
    ),
];

/// The webhook in self-managed-certificate mode as its ServiceAccount, with the shipped
/// configurations registered by URL (no caBundle).
fn self_managed_webhook(port: u16) -> (Proc, u16) {
    let e = env();
    let admin = free_port().unwrap();
    let mut cmd = Command::new(paths::product_binary("osartifact-webhook").unwrap());
    cmd.arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--admin-listen=127.0.0.1:{admin}"))
        .arg("--self-managed-certs=true")
        .args(self_managed_args())
        .arg("--shutdown-delay=0s")
        .env("KUBECONFIG", &e.webhook_id.kubeconfig)
        .env("RUST_LOG", "info");
    let p = Proc::spawn("rbac-webhook", cmd, &e.log_dir.join("rbac-webhook.log")).unwrap();
    (p, admin)
}

/// The first line of `log` after byte `from` that reports a request the apiserver refused.
fn refusal_logged(log: &std::path::Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let new = text.get(usize::try_from(from).ok()?..)?;
    String::from_utf8_lossy(new)
        .lines()
        .find(|l| l.contains(" is forbidden: "))
        .map(|l| l.chars().take(240).collect())
}

/// Both configurations carry a caBundle.
fn ca_bundles_written() -> bool {
    [
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
    ]
    .iter()
    .all(|kind| {
        env().k().get_json(&[kind]).is_ok_and(|c| {
            c["webhooks"].as_array().is_some_and(|w| {
                w.iter().all(|h| {
                    h["clientConfig"]["caBundle"]
                        .as_str()
                        .is_some_and(|b| !b.is_empty())
                })
            })
        })
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Certs {
    /// No Secret: the webhook creates it.
    Fresh,
    /// A Secret with no usable certificate: the webhook replaces it.
    Junk,
    /// The valid Secret a previous run left: the webhook reads and serves it.
    Existing,
}

/// Self-managed certificates in `mode`, with configurations that carry no caBundle: the
/// webhook gets ready and writes both caBundles.
fn self_managed(mode: Certs) -> Result<(), String> {
    let e = env();
    let k = e.k();
    if mode != Certs::Existing {
        let _ = k.run(&[
            "delete",
            "secret",
            "osartifact-webhook-tls",
            "-n",
            SYSTEM_NAMESPACE,
            "--ignore-not-found",
        ]);
    }
    // Deleted first: an apply would keep the caBundle a previous run wrote.
    let _ = k.run(&[
        "delete",
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
        "--ignore-not-found",
    ]);
    if mode == Certs::Junk {
        let junk = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "osartifact-webhook-tls", "namespace": SYSTEM_NAMESPACE},
            "stringData": {"tls.crt": "junk", "tls.key": "junk", "ca.crt": "junk"}});
        let out = k
            .run_stdin(&["create", "-f", "-"], Some(&junk.to_string()))
            .unwrap();
        assert!(out.success, "{out}");
    }
    let port = free_port().unwrap();
    let mut configs = osartifact_e2e::webhook::shipped_configurations(&e.cp, port, "").unwrap();
    for item in configs["items"].as_array_mut().unwrap() {
        for h in item["webhooks"].as_array_mut().unwrap() {
            let url = h["clientConfig"]["url"].as_str().unwrap().to_string();
            let path = url.rsplit_once(&format!(":{port}")).unwrap().1.to_string();
            h["clientConfig"] = json!({"url": format!("https://localhost:{port}{path}")});
            // Nothing else in this binary is to be refused while the webhook is down.
            h["failurePolicy"] = json!("Ignore");
        }
    }
    let out = k
        .run_stdin(&["apply", "-f", "-"], Some(&configs.to_string()))
        .unwrap();
    assert!(out.success, "{out}");
    // The log is appended to by every run: only this run's lines count.
    let log = e.log_dir.join("rbac-webhook.log");
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let (mut p, admin) = self_managed_webhook(port);
    let mut denied: Option<(Instant, String)> = None;
    let r = poll(
        "ready with both caBundles written",
        Duration::from_secs(8),
        |last| {
            let ready = osartifact_e2e::http::get_local(admin, "/readyz")
                .map(|r| r.0)
                .unwrap_or(0);
            *last = format!("readyz {ready}");
            if ready == 200 && ca_bundles_written() {
                return Ok(Some(()));
            }
            // A refused request (the webhook logs the apiserver's "is forbidden") ends the wait
            // soon after, as in the operator's scenarios.
            if denied.is_none() {
                denied = refusal_logged(&log, log_start).map(|l| (Instant::now(), l));
            }
            match &denied {
                Some((t, l)) if t.elapsed() > AFTER_DENIAL => {
                    anyhow::bail!("not reached after a refused request: {l}")
                }
                _ => Ok(None),
            }
        },
    )
    .map_err(|err| format!("{err:#}"));
    p.stop(Duration::from_secs(5));
    r
}

/// The shared webhook runs and the configurations call it: a self-managed scenario leaves them
/// pointing at its stopped process (failure policy Ignore), which admits everything.
fn calling_the_webhook() {
    let e = env();
    let g = e.webhook();
    let w = g.as_ref().unwrap();
    w.register(&e.cp, &w.ca.cert_pem.clone()).unwrap();
}

/// A Dockerfile template with `define` is refused by the webhook, which reads it from the
/// Secret the spec names.
fn template_checked() -> Result<(), String> {
    let e = env();
    calling_the_webhook();
    let ns = e.namespace("rbac-wh");
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: df}\nstringData:\n  Dockerfile: \"{{ define \\\"b\\\" }}x{{ end }}FROM {{ template \\\"b\\\" }}\\n\"\n---\napiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {name: t}\nspec:\n  baseImageDockerfile: {name: df, key: Dockerfile}\n  iso: true\n";
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(yaml));
    if !out.success && out.stderr.contains("define") {
        Ok(())
    } else {
        Err(format!("the template was not refused: {out}"))
    }
}

/// A user with the built-in `edit` role is admitted (the webhook's SubjectAccessReviews answer).
fn editor_admitted() -> Result<(), String> {
    let e = env();
    calling_the_webhook();
    let ns = e.namespace("rbac-wh");
    let bob =
        e.cp.identity("rbac-bob", "rbac-bob", &["e2e-users"])
            .unwrap();
    let out = ns.k(&[
        "create",
        "rolebinding",
        "bob",
        "--clusterrole=edit",
        "--user=rbac-bob",
    ]);
    assert!(out.success, "{out}");
    let yaml = format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: b}}\nspec: {{imageName: \"{IMAGE}\", iso: true}}\n"
    );
    // The RoleBinding reaches the authorizer's cache within a moment.
    let mut last = String::new();
    for _ in 0..15 {
        let o = ns.k_with(
            &e.k_as(&bob),
            &["create", "--dry-run=server", "-f", "-"],
            Some(&yaml),
        );
        if o.success {
            return Ok(());
        }
        last = o.to_string();
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(format!("the editor was refused: {last}"))
}

/// The scenarios that need the webhook's verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WebhookScenario {
    Editor,
    Template,
    SelfManaged(Certs),
}

impl WebhookScenario {
    fn run(self) -> Result<(), String> {
        match self {
            Self::Editor => editor_admitted(),
            Self::Template => template_checked(),
            Self::SelfManaged(mode) => self_managed(mode),
        }
    }

    /// The scenario that needs `verb` on `resource` in `role`.
    fn needing(role: &Value, resource: &str, verb: &str) -> Option<Self> {
        Some(match (resource, verb) {
            // The ClusterRole's Secret get is for the Dockerfile check, the Role's for the
            // certificate.
            ("secrets", _) if role["kind"] == "ClusterRole" => Self::Template,
            ("subjectaccessreviews", _) => Self::Editor,
            ("validatingwebhookconfigurations" | "mutatingwebhookconfigurations", _) => {
                Self::SelfManaged(Certs::Fresh)
            }
            ("secrets", "update") => Self::SelfManaged(Certs::Junk),
            ("secrets", "get") => Self::SelfManaged(Certs::Existing),
            ("secrets", _) => Self::SelfManaged(Certs::Fresh),
            _ => return None,
        })
    }
}

#[test]
fn every_verb_granted_to_the_webhook_is_needed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let roles: Vec<Value> = shipped_rbac()
        .into_iter()
        .filter(|d| {
            matches!(d["kind"].as_str(), Some("ClusterRole" | "Role"))
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("osartifact-webhook"))
        })
        .collect();
    assert_eq!(roles.len(), 2, "{roles:#?}");
    let mut cases = Vec::new();
    for role in &roles {
        for (i, rule) in role["rules"].as_array().unwrap().iter().enumerate() {
            for res in rule["resources"].as_array().unwrap() {
                let res = res.as_str().unwrap();
                for verb in rule["verbs"].as_array().unwrap() {
                    let verb = verb.as_str().unwrap();
                    let s = WebhookScenario::needing(role, res, verb)
                        .unwrap_or_else(|| panic!("no scenario for {verb} {res}"));
                    cases.push((role, i, res, verb, s));
                }
            }
        }
    }
    // Every scenario passes with every verb.
    let mut scenarios: Vec<WebhookScenario> = cases.iter().map(|c| c.4).collect();
    scenarios.sort();
    scenarios.dedup();
    for s in scenarios {
        s.run()
            .unwrap_or_else(|err| panic!("{s:?} with every verb: {err}"));
    }
    let mut not_needed = Vec::new();
    for (role, i, res, verb, s) in cases {
        let name = role["metadata"]["name"].as_str().unwrap_or_default();
        apply_role(&without(role, i, verb));
        // The ClusterRole's `get` on Secrets (the Dockerfile check) also covers the
        // certificate Secret: the Role's rule only shows as needed without both.
        let also = (role["kind"] == "Role" && res == "secrets" && verb == "get").then(|| {
            let cr = roles.iter().find(|r| r["kind"] == "ClusterRole").unwrap();
            let idx = cr["rules"]
                .as_array()
                .unwrap()
                .iter()
                .position(|r| r["resources"] == json!(["secrets"]))
                .unwrap();
            apply_role(&without(cr, idx, "get"));
            cr.clone()
        });
        let started = Instant::now();
        let r = s.run();
        apply_role(role);
        if let Some(cr) = &also {
            apply_role(cr);
        }
        match r {
            Err(err) => eprintln!(
                "[rbac] without {verb} {res} ({name}): {s:?} fails in {:.1}s: {}",
                started.elapsed().as_secs_f64(),
                err.lines().next().unwrap_or_default()
            ),
            Ok(()) => not_needed.push(format!("{name}: {verb} {res}")),
        }
    }
    assert!(
        not_needed.is_empty(),
        "verbs no scenario needs:\n{}",
        not_needed.join("\n")
    );
}
