//! The Helm chart `manifests/helm/osartifact`, driven by the real helm CLI (built from Go
//! modules by `e2e/gitops/build.sh`):
//! - `helm lint --strict` passes; `crds/` holds exactly the generated CRD;
//! - `helm template` with default values renders the same objects as `kubectl kustomize
//!   manifests/default`, and with `certificates.mode=cert-manager` those of
//!   `manifests/cert-manager`, apart from Helm's labels, so the installs cannot drift apart;
//! - every value reaches the flag, field or object it is documented to set;
//! - on the loopback control plane: `helm install`, an upgrade without changes that leaves the
//!   Deployments alone, an upgrade to a new image tag that changes their Pod templates, and
//!   `helm uninstall`, after which the CRD and the OSArtifacts are still there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use osartifact_e2e::controlplane::ControlPlane;
use osartifact_e2e::gitops::{self, key, parse_yaml, without_helm_labels};
use osartifact_e2e::paths;
use serde_json::{Value, json};

const CHART: &str = "manifests/helm/osartifact";
const NS: &str = "osartifact-system";

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("osartifact-helm-")
        .tempdir()
        .expect("temp dir")
}

/// `helm ARGS` without a cluster; panics with the output on failure.
fn helm(args: &[&str]) -> String {
    let home = scratch();
    let run = gitops::run("helm", args, None, home.path()).expect("running helm");
    run.ok().unwrap_or_else(|e| panic!("{e:#}")).stdout
}

/// `helm template` of the chart as release `osartifact` in `namespace`, CRDs included.
fn template(namespace: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "osartifact",
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    parse_yaml(&helm(&args)).expect("helm template output parses")
}

fn kustomize(dir: &str) -> Vec<Value> {
    gitops::kustomize(Path::new(dir)).expect("kubectl kustomize")
}

fn by_key(objs: &[Value]) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for o in objs {
        assert!(
            m.insert(key(o), o.clone()).is_none(),
            "{} rendered twice",
            key(o)
        );
    }
    m
}

/// The chart's objects equal the kustomization's, object by object, once Helm's labels are
/// removed; and every chart object carries those labels.
fn assert_same_objects(chart: &[Value], kustomized: &[Value], what: &str) {
    for o in chart {
        let labels = &o["metadata"]["labels"];
        let want = [
            ("helm.sh/chart", "osartifact-0.1.0"),
            ("app.kubernetes.io/managed-by", "Helm"),
            ("app.kubernetes.io/instance", "osartifact"),
            ("app.kubernetes.io/version", "v0.1.0"),
        ];
        // crds/ is copied verbatim from manifests/crd: Helm adds no labels to it.
        if o["kind"] == "CustomResourceDefinition" {
            continue;
        }
        for (k, v) in want {
            assert_eq!(labels[k], v, "{}: label {k}", key(o));
        }
    }
    let chart = by_key(&chart.iter().map(without_helm_labels).collect::<Vec<_>>());
    let kustomized = by_key(kustomized);
    let only_chart: Vec<_> = chart
        .keys()
        .filter(|k| !kustomized.contains_key(*k))
        .collect();
    let only_kustomize: Vec<_> = kustomized
        .keys()
        .filter(|k| !chart.contains_key(*k))
        .collect();
    assert!(
        only_chart.is_empty() && only_kustomize.is_empty(),
        "{what}: objects only in the chart: {only_chart:?}; only in the kustomization: {only_kustomize:?}"
    );
    for (k, o) in &kustomized {
        assert_eq!(
            &chart[k], o,
            "{what}: {k} differs (left: helm template, right: kubectl kustomize)"
        );
    }
}

#[test]
fn crds_dir_holds_the_generated_crd() {
    let ws = paths::workspace();
    let chart = std::fs::read(ws.join(CHART).join("crds/osartifacts.build.kairos.io.yaml"))
        .expect("the chart's CRD");
    let generated =
        std::fs::read(ws.join("manifests/crd/osartifacts.build.kairos.io.yaml")).expect("the CRD");
    assert!(
        chart == generated,
        "{CHART}/crds differs from manifests/crd: run `just generate`"
    );
    let entries: Vec<_> = std::fs::read_dir(ws.join(CHART).join("crds"))
        .expect("crds/")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(entries.len(), 1, "crds/ holds only the CRD: {entries:?}");
}

#[test]
fn chart_lints_strictly() {
    let out = helm(&["lint", "--strict", CHART, "--namespace", NS]);
    assert!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}"
    );
    let out = helm(&[
        "lint",
        "--strict",
        CHART,
        "--namespace",
        NS,
        "--set",
        "certificates.mode=cert-manager",
    ]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

#[test]
fn default_values_render_manifests_default() {
    assert_same_objects(
        &template(NS, &[]),
        &kustomize("manifests/default"),
        "default values vs manifests/default",
    );
}

#[test]
fn cert_manager_mode_renders_manifests_cert_manager() {
    assert_same_objects(
        &template(NS, &["--set", "certificates.mode=cert-manager"]),
        &kustomize("manifests/cert-manager"),
        "certificates.mode=cert-manager vs manifests/cert-manager",
    );
}

#[test]
fn an_unknown_certificate_mode_is_refused() {
    let home = scratch();
    let run = gitops::run(
        "helm",
        &["template", "x", CHART, "--set", "certificates.mode=magic"],
        None,
        home.path(),
    )
    .expect("running helm");
    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("certificates.mode must be self-managed or cert-manager"),
        "{}",
        run.stderr
    );
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

fn args(d: &Value) -> Vec<String> {
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg").to_string())
        .collect()
}

#[test]
fn values_reach_their_flags_and_fields() {
    let values = r#"
namespace: {create: false}
logFormat: json
nodeSelector: {disk: ssd}
tolerations: [{key: dedicated, operator: Equal, value: builds, effect: NoSchedule}]
affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a]}]}]}}}
operator:
  image: {repository: reg.example/op, tag: v9, digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
  replicas: 2
  leaderElection: {enabled: false}
  watchNamespace: builds
  # Helm merges maps with the defaults: a null removes a default key.
  resources: {requests: {cpu: 100m, memory: 100Mi}, limits: null}
  extraArgs: [--max-concurrent-builds=2]
webhook:
  image: {repository: reg.example/wh, tag: v9, pullPolicy: Always}
  replicas: 3
  failurePolicy: Ignore
  timeoutSeconds: {validating: 7, mutating: 3}
  resources: {limits: {memory: 1Gi}}
"#;
    let dir = scratch();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).expect("write values");
    let file = file.display().to_string();
    let objs = template("tools", &["-f", &file]);

    assert!(
        !objs.iter().any(|o| o["kind"] == "Namespace"),
        "namespace.create=false renders no Namespace"
    );
    for o in &objs {
        if o["kind"] != "CustomResourceDefinition" && o["metadata"].get("namespace").is_some() {
            assert_eq!(o["metadata"]["namespace"], "tools", "{}", key(o));
        }
    }
    let op = find(&objs, "Deployment", "osartifact-operator");
    let wh = find(&objs, "Deployment", "osartifact-webhook");
    let opc = &op["spec"]["template"]["spec"]["containers"][0];
    let whc = &wh["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        opc["image"],
        "reg.example/op@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(whc["image"], "reg.example/wh:v9");
    assert_eq!(whc["imagePullPolicy"], "Always");
    assert_eq!(op["spec"]["replicas"], 2);
    assert_eq!(wh["spec"]["replicas"], 3);
    assert_eq!(
        args(op),
        [
            "--admin-listen=0.0.0.0:8080",
            "--log-format=json",
            "--leader-election=false",
            "--watch-namespace=builds",
            "--max-concurrent-builds=2"
        ]
    );
    assert!(args(wh).contains(&"--log-format=json".to_string()));
    assert_eq!(
        opc["resources"],
        json!({"requests": {"cpu": "100m", "memory": "100Mi"}})
    );
    assert_eq!(
        whc["resources"],
        json!({"requests": {"cpu": "50m", "memory": "48Mi"}, "limits": {"memory": "1Gi"}})
    );
    for d in [op, wh] {
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["nodeSelector"], json!({"disk": "ssd"}));
        assert_eq!(spec["tolerations"][0]["value"], "builds");
        assert_eq!(
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"][0]["key"],
            "zone"
        );
    }
    let v = find(
        &objs,
        "ValidatingWebhookConfiguration",
        "osartifact-validating",
    );
    let m = find(&objs, "MutatingWebhookConfiguration", "osartifact-mutating");
    assert_eq!(v["webhooks"][0]["failurePolicy"], "Ignore");
    assert_eq!(m["webhooks"][0]["failurePolicy"], "Ignore");
    assert_eq!(v["webhooks"][0]["timeoutSeconds"], 7);
    assert_eq!(m["webhooks"][0]["timeoutSeconds"], 3);
    for c in [v, m] {
        assert_eq!(
            c["webhooks"][0]["clientConfig"]["service"]["namespace"],
            "tools"
        );
    }
    for b in ["osartifact-operator", "osartifact-webhook"] {
        let crb = find(&objs, "ClusterRoleBinding", b);
        assert_eq!(crb["subjects"][0]["namespace"], "tools");
    }
}

/// A helm run against the control plane, with its own Helm home.
struct Helm<'a> {
    kubeconfig: &'a Path,
    home: PathBuf,
}

impl Helm<'_> {
    fn run(&self, args: &[&str]) -> String {
        let run =
            gitops::run("helm", args, Some(self.kubeconfig), &self.home).expect("running helm");
        run.ok().unwrap_or_else(|e| panic!("{e:#}")).stdout
    }
}

fn deployment(k: &osartifact_e2e::kubectl::Kubectl, name: &str) -> Value {
    k.get_json(&["deployment", name, "-n", NS])
        .expect("the Deployment")
}

#[test]
fn install_upgrade_and_uninstall_on_the_control_plane() {
    let data = scratch();
    let log_dir = paths::log_dir("helm").expect("log dir");
    let cp = ControlPlane::start(
        &paths::controlplane_bin().expect("control plane binaries"),
        data.path(),
        &log_dir,
    )
    .expect("the control plane starts");
    let k = cp.kubectl();
    let helm = Helm {
        kubeconfig: &cp.admin.kubeconfig,
        home: data.path().join("helm"),
    };
    // No node here, so no webhook Pod can answer: with failurePolicy Fail nothing could create
    // an OSArtifact. The same values are given to every command, as a user keeps a values file.
    let values = data.path().join("values.yaml");
    std::fs::write(&values, "webhook:\n  failurePolicy: Ignore\n").expect("values");
    let values = values.display().to_string();
    let install = |extra: &[&str]| {
        let mut a = vec![
            "upgrade",
            "--install",
            "osartifact",
            CHART,
            "--namespace",
            NS,
            "--create-namespace",
            "--take-ownership",
            "-f",
            &values,
        ];
        a.extend_from_slice(extra);
        helm.run(&a)
    };

    let out = install(&[]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(out.contains("REVISION: 1"), "{out}");
    let ns = k.get_json(&["namespace", NS]).expect("the namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let crd = k
        .get_json(&["crd", "osartifacts.build.kairos.io"])
        .expect("helm installed the CRD from crds/");
    assert!(crd["metadata"]["labels"]["app.kubernetes.io/managed-by"].is_null());
    for name in ["osartifact-operator", "osartifact-webhook"] {
        let d = deployment(&k, name);
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        assert_eq!(
            d["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "osartifact"
        );
    }
    // An OSArtifact made by a user, with a status as the operator writes one.
    k.run(&["create", "namespace", "builds"])
        .and_then(|o| o.ok())
        .expect("namespace");
    k.run_stdin(
        &["apply", "-n", "builds", "-f", "-"],
        Some("apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata:\n  name: kept\nspec:\n  imageName: quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.4.2\n  iso: true\n"),
    )
    .and_then(|o| o.ok())
    .expect("an OSArtifact");
    k.run(&[
        "patch",
        "osartifact",
        "kept",
        "-n",
        "builds",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready","message":"built"}}"#,
    ])
    .and_then(|o| o.ok())
    .expect("status");

    let before: BTreeMap<_, _> = ["osartifact-operator", "osartifact-webhook"]
        .into_iter()
        .map(|n| (n, deployment(&k, n)))
        .collect();

    // The same chart and values again: a new revision, and nothing a Deployment would roll for.
    let out = install(&[]);
    assert!(out.contains("REVISION: 2"), "{out}");
    for (n, d) in &before {
        let now = deployment(&k, n);
        assert_eq!(
            now["metadata"]["generation"], d["metadata"]["generation"],
            "{n}: an upgrade without changes changed the Deployment"
        );
        assert_eq!(now["spec"]["template"], d["spec"]["template"], "{n}");
    }

    // A new tag: each Deployment gets a new Pod template, which is a rollout.
    let out = install(&[
        "--set",
        "operator.image.tag=v0.2.0",
        "--set",
        "webhook.image.tag=v0.2.0",
    ]);
    assert!(out.contains("REVISION: 3"), "{out}");
    for (n, d) in &before {
        let now = deployment(&k, n);
        let gen_before = d["metadata"]["generation"].as_i64().expect("generation");
        assert_eq!(
            now["metadata"]["generation"].as_i64(),
            Some(gen_before + 1),
            "{n}"
        );
        let image = now["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .expect("image");
        assert_eq!(image, format!("ghcr.io/kairos-io/{n}:v0.2.0"));
    }

    let out = helm.run(&["uninstall", "osartifact", "--namespace", NS]);
    assert!(out.contains("uninstalled"), "{out}");
    for name in ["osartifact-operator", "osartifact-webhook"] {
        let out = k
            .run(&[
                "get",
                "deployment",
                name,
                "-n",
                NS,
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .expect("kubectl");
        assert!(out.stdout.trim().is_empty(), "{name} left after uninstall");
    }
    for kind in [
        "clusterrole",
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
    ] {
        let out = k.run(&["get", kind, "-o", "name"]).expect("kubectl");
        assert!(
            !out.stdout.contains("osartifact-"),
            "{kind} left: {}",
            out.stdout
        );
    }
    k.get_json(&["crd", "osartifacts.build.kairos.io"])
        .expect("the CRD stays: Helm never deletes crds/");
    let a = k
        .get_json(&["osartifact", "kept", "-n", "builds"])
        .expect("the OSArtifact stays");
    assert_eq!(a["status"]["phase"], "Ready");
    assert_eq!(a["status"]["message"], "built");
}
