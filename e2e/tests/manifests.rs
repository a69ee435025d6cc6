//! Checks of the kustomizations under `manifests/`, rendered by the real kustomize inside
//! kubectl (`$KUBECTL`, else `kubectl` on PATH):
//! - every kustomization builds offline and deterministically (same bytes twice, not empty);
//! - the policy the install promises holds on the rendered objects: webhook configurations,
//!   hardened Deployments, webhook availability, least-privilege RBAC, image overrides, the
//!   cert-manager wiring, the nginx objects the user docs list, and a CRD small enough for
//!   client-side apply.
//!
//! Validation against the apiserver's schemas is `manifests/tests/dry-run.sh`, run by
//! `manifests_server.rs` against the real kube-apiserver of the end-to-end suite.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .join("manifests")
}

fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

/// `kubectl kustomize DIR` with outgoing HTTP(S) pointed at a closed local port, so a remote
/// base or any other network fetch fails the build instead of passing on a connected machine.
fn kustomize_bytes(dir: &Path) -> Vec<u8> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{} kustomize` ({e}); install kubectl (it embeds kustomize) or set KUBECTL",
                kubectl()
            )
        });
    assert!(
        out.status.success(),
        "`kubectl kustomize {}` failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn parse(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn render(name: &str) -> Vec<Value> {
    let bytes = kustomize_bytes(&manifests_dir().join(name));
    parse(std::str::from_utf8(&bytes).expect("kustomize output is UTF-8"))
}

/// Every directory under manifests/ holding a kustomization.yaml, sorted.
fn kustomization_dirs() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, found);
            } else if p.file_name().is_some_and(|n| n == "kustomization.yaml") {
                found.push(dir.to_path_buf());
            }
        }
    }
    let mut found = Vec::new();
    walk(&manifests_dir(), &mut found);
    found
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn find<'a>(objs: &'a [Value], k: &str, n: &str) -> &'a Value {
    objs.iter()
        .find(|o| kind(o) == k && name(o) == n)
        .unwrap_or_else(|| panic!("{k}/{n} is not in the rendered output"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn every_kustomization_builds_offline_and_deterministically() {
    let dirs = kustomization_dirs();
    let names: BTreeSet<String> = dirs
        .iter()
        .map(|d| {
            d.strip_prefix(manifests_dir())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "crd",
        "rbac",
        "operator",
        "webhook",
        "default",
        "cert-manager",
        "samples",
        "nginx",
    ] {
        assert!(
            names.contains(expected),
            "manifests/{expected} has no kustomization.yaml (found {names:?})"
        );
    }
    for dir in &dirs {
        let first = kustomize_bytes(dir);
        let second = kustomize_bytes(dir);
        assert!(!first.is_empty(), "{} renders nothing", dir.display());
        assert!(
            first == second,
            "{} renders different bytes on two runs",
            dir.display()
        );
        let objs = parse(std::str::from_utf8(&first).unwrap());
        assert!(!objs.is_empty(), "{} renders no objects", dir.display());
        // Nothing the server owns or generates belongs in the files.
        for o in &objs {
            let id = format!("{} {}/{}", dir.display(), kind(o), name(o));
            assert!(o.get("status").is_none(), "{id} carries status");
            assert!(
                o["metadata"].get("creationTimestamp").is_none(),
                "{id} carries creationTimestamp"
            );
            assert!(
                o["spec"].get("clusterIP").is_none(),
                "{id} pins a clusterIP"
            );
        }
        // Secrets are never shipped (certificates are made at runtime).
        assert!(
            objs.iter().all(|o| kind(o) != "Secret"),
            "{} ships a Secret",
            dir.display()
        );
    }
}

#[test]
fn kustomizations_use_no_remote_bases_helm_or_plugins() {
    for dir in kustomization_dirs() {
        let text = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
        for bad in [
            "helmCharts",
            "generators:",
            "transformers:",
            "http://",
            "https://",
            "github.com/",
        ] {
            let used = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .any(|l| l.contains(bad));
            assert!(!used, "{}/kustomization.yaml uses `{bad}`", dir.display());
        }
    }
}

#[test]
fn crd_fits_client_side_apply() {
    // `kubectl apply` (client-side) stores the object's compact JSON in the
    // last-applied-configuration annotation; all annotations together may hold 262144 bytes.
    // Keep well under it (200 KiB) so the CRD can grow a little without breaking
    // `kubectl apply -k`, Argo CD's default client-side sync and similar tools.
    const LIMIT: usize = 200 * 1024;
    let objs = render("crd");
    assert_eq!(objs.len(), 1, "manifests/crd renders exactly the CRD");
    let crd = &objs[0];
    assert_eq!(kind(crd), "CustomResourceDefinition");
    assert_eq!(name(crd), "osartifacts.build.kairos.io");
    let compact = serde_json::to_vec(crd).unwrap();
    assert!(
        compact.len() < LIMIT,
        "the CRD's compact JSON is {} bytes, over the {LIMIT}-byte budget for client-side apply (hard limit 262144)",
        compact.len()
    );
    // No conversion webhook or caBundle to inject: a single served version.
    assert!(
        crd["spec"]
            .get("conversion")
            .is_none_or(|c| c["strategy"] == "None")
    );
}

#[test]
fn default_installs_everything_into_one_namespace() {
    let objs = render("default");
    let ns = find(&objs, "Namespace", "osartifact-system");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let cluster_scoped = [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ];
    for o in &objs {
        let ns = o["metadata"]["namespace"].as_str();
        if cluster_scoped.contains(&kind(o)) {
            assert_eq!(ns, None, "{}/{} is cluster-scoped", kind(o), name(o));
        } else {
            assert_eq!(ns, Some("osartifact-system"), "{}/{}", kind(o), name(o));
        }
    }
    for k in [
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(objs.iter().any(|o| kind(o) == k), "default has no {k}");
    }
    // Bindings point at the ServiceAccounts in the install namespace.
    for o in objs.iter().filter(|o| kind(o).ends_with("RoleBinding")) {
        for s in o["subjects"].as_array().unwrap() {
            assert_eq!(s["namespace"], "osartifact-system", "{}", name(o));
        }
    }
}

fn check_webhook_configurations(objs: &[Value]) {
    let expect = [
        (
            "ValidatingWebhookConfiguration",
            "osartifact-validating",
            "validate.osartifacts.build.kairos.io",
            "/validate",
        ),
        (
            "MutatingWebhookConfiguration",
            "osartifact-mutating",
            "default.osartifacts.build.kairos.io",
            "/mutate",
        ),
    ];
    for (k, n, hook, path) in expect {
        let cfg = find(objs, k, n);
        let hooks = cfg["webhooks"].as_array().unwrap();
        assert_eq!(hooks.len(), 1, "{n}");
        let w = &hooks[0];
        assert_eq!(w["name"], hook);
        assert_eq!(w["failurePolicy"], "Fail", "{n}");
        assert_eq!(w["sideEffects"], "None", "{n}");
        assert_eq!(w["admissionReviewVersions"], json!(["v1"]), "{n}");
        let t = w["timeoutSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{n}: set timeoutSeconds"));
        assert!((1..=15).contains(&t), "{n}: timeoutSeconds {t}");
        assert!(
            w["clientConfig"].get("caBundle").is_none(),
            "{n}: caBundle must not be in the files"
        );
        assert!(
            w["clientConfig"].get("url").is_none(),
            "{n}: service, not url"
        );
        let svc = &w["clientConfig"]["service"];
        assert_eq!(svc["name"], "osartifact-webhook");
        assert_eq!(svc["namespace"], "osartifact-system");
        assert_eq!(svc["path"], path);
        assert_eq!(svc["port"], 443);
        assert_eq!(
            w["rules"],
            json!([{
                "apiGroups": ["build.kairos.io"],
                "apiVersions": ["v1alpha2"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["osartifacts"],
                "scope": "Namespaced"
            }]),
            "{n}"
        );
        // Objects being deleted skip the webhook; the expression must be null-safe for oldObject
        // (null on CREATE), since an evaluation error rejects the request under Fail.
        let conds = w["matchConditions"]
            .as_array()
            .unwrap_or_else(|| panic!("{n}: no matchConditions"));
        let expr = conds
            .iter()
            .filter_map(|c| c["expression"].as_str())
            .find(|e| e.contains("deletionTimestamp"))
            .unwrap_or_else(|| panic!("{n}: no matchCondition on deletionTimestamp"));
        assert!(
            expr.contains("oldObject == null"),
            "{n}: not null-safe: {expr}"
        );
        assert!(
            expr.contains("!has(oldObject.metadata.deletionTimestamp)"),
            "{n}: {expr}"
        );
    }
    let mutating = find(objs, "MutatingWebhookConfiguration", "osartifact-mutating");
    assert_eq!(mutating["webhooks"][0]["reinvocationPolicy"], "Never");
}

#[test]
fn webhook_configurations_follow_policy() {
    check_webhook_configurations(&render("default"));
    check_webhook_configurations(&render("cert-manager"));
    // In the self-managed default nothing injects from outside.
    for o in render("default") {
        assert!(
            o["metadata"]["annotations"]
                .get("cert-manager.io/inject-ca-from")
                .is_none(),
            "{}",
            name(&o)
        );
    }
}

fn containers(d: &Value) -> &Vec<Value> {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
}

/// The hardening every Deployment we ship must have (ours and nginx).
fn check_hardened(d: &Value) {
    let n = name(d);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{n}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{n}"
    );
    assert_ne!(pod["hostNetwork"], true, "{n}");
    for c in containers(d) {
        let sc = &c["securityContext"];
        let cn = c["name"].as_str().unwrap();
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{n}/{cn}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{n}/{cn}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{n}/{cn}");
        assert!(sc["capabilities"].get("add").is_none(), "{n}/{cn}");
        assert_ne!(sc["privileged"], true, "{n}/{cn}");
        assert!(
            c["resources"]["requests"]["cpu"].is_string(),
            "{n}/{cn}: cpu request"
        );
        assert!(
            c["resources"]["requests"]["memory"].is_string(),
            "{n}/{cn}: memory request"
        );
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{n}/{cn}: memory limit"
        );
        assert!(c.get("livenessProbe").is_some(), "{n}/{cn}: livenessProbe");
        assert!(
            c.get("readinessProbe").is_some(),
            "{n}/{cn}: readinessProbe"
        );
        let image = c["image"].as_str().unwrap();
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "{n}/{cn}: pin a tag, not {image}"
        );
    }
}

#[test]
fn deployments_are_hardened() {
    for overlay in ["default", "cert-manager"] {
        let objs = render(overlay);
        for (n, sa) in [
            ("osartifact-operator", "osartifact-operator"),
            ("osartifact-webhook", "osartifact-webhook"),
        ] {
            let d = find(&objs, "Deployment", n);
            check_hardened(d);
            let pod = &d["spec"]["template"]["spec"];
            assert_eq!(pod["serviceAccountName"], sa, "{overlay} {n}");
            assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{overlay} {n}");
            let c = &containers(d)[0];
            assert_eq!(c["securityContext"]["runAsUser"], 65532, "{overlay} {n}");
            // Probes on the plain-HTTP admin port 8080.
            let admin = c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "admin")
                .unwrap_or_else(|| panic!("{overlay} {n}: no admin port"));
            assert_eq!(admin["containerPort"], 8080);
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"], "/livez",
                "{overlay} {n}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"], "/readyz",
                "{overlay} {n}"
            );
            for p in ["livenessProbe", "readinessProbe"] {
                assert_eq!(c[p]["httpGet"]["port"], "admin", "{overlay} {n} {p}");
            }
            assert!(
                strs(&c["args"]).contains(&"--admin-listen=0.0.0.0:8080"),
                "{overlay} {n}: {:?}",
                c["args"]
            );
        }
    }
    let nginx = render("nginx");
    check_hardened(find(&nginx, "Deployment", "kairos-operator-nginx"));
}

#[test]
fn self_managed_webhook_names_match_its_rbac() {
    let objs = render("default");
    let d = find(&objs, "Deployment", "osartifact-webhook");
    let args = strs(&containers(d)[0]["args"]);
    for a in [
        "--self-managed-certs=true",
        "--cert-secret=osartifact-webhook-tls",
        "--service=osartifact-webhook",
        "--webhook-configs=validating:osartifact-validating,mutating:osartifact-mutating",
    ] {
        assert!(args.contains(&a), "webhook args {args:?} lack {a}");
    }
    let env = containers(d)[0]["env"].as_array().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "POD_NAMESPACE"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"),
        "the webhook learns its namespace from POD_NAMESPACE"
    );
}

#[test]
fn webhook_stays_available() {
    let objs = render("default");
    let d = find(&objs, "Deployment", "osartifact-webhook");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pdb = find(&objs, "PodDisruptionBudget", "osartifact-webhook");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"],
        "the PDB selects the webhook Pods"
    );
    let svc = find(&objs, "Service", "osartifact-webhook");
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["port"], 443);
    let target = port["targetPort"].as_str().unwrap();
    let c = &containers(d)[0];
    let https = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == target)
        .unwrap();
    assert_eq!(https["containerPort"], 9443);
}

/// (apiGroup, resource) -> (verbs, resourceNames) for one Role or ClusterRole.
type Rules = BTreeMap<(String, String), (BTreeSet<String>, BTreeSet<String>)>;

fn rules(role: &Value) -> Rules {
    let mut out = Rules::new();
    for r in role["rules"].as_array().unwrap() {
        assert!(
            r.get("nonResourceURLs").is_none(),
            "{}: nonResourceURLs",
            name(role)
        );
        let names: BTreeSet<String> = strs(&r["resourceNames"])
            .into_iter()
            .map(String::from)
            .collect();
        for g in strs(&r["apiGroups"]) {
            for res in strs(&r["resources"]) {
                let e = out.entry((g.to_string(), res.to_string())).or_default();
                e.0.extend(strs(&r["verbs"]).into_iter().map(String::from));
                e.1.extend(names.iter().cloned());
            }
        }
    }
    out
}

fn expect_rules(role: &Value, expected: &[(&str, &str, &str, &str)]) {
    let mut want = Rules::new();
    for (g, res, verbs, names) in expected {
        let e = want.entry((g.to_string(), res.to_string())).or_default();
        e.0.extend(verbs.split_whitespace().map(String::from));
        e.1.extend(names.split_whitespace().map(String::from));
    }
    assert_eq!(rules(role), want, "{} {}", kind(role), name(role));
}

fn bound_to(objs: &[Value], role_kind: &str, role: &str) -> Vec<String> {
    objs.iter()
        .filter(|b| {
            kind(b).ends_with("RoleBinding")
                && b["roleRef"]["kind"] == role_kind
                && b["roleRef"]["name"] == role
        })
        .flat_map(|b| b["subjects"].as_array().unwrap().iter())
        .map(|s| {
            format!(
                "{}:{}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn rbac_is_least_privilege() {
    let objs = render("default");
    // No wildcards and no privilege-escalation verbs anywhere.
    for r in objs.iter().filter(|o| kind(o).ends_with("Role")) {
        for rule in r["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strs(&rule[field]).contains(&"*"),
                    "{}: wildcard in {field}",
                    name(r)
                );
            }
            for v in ["escalate", "bind", "impersonate"] {
                assert!(!strs(&rule["verbs"]).contains(&v), "{}: {v}", name(r));
            }
        }
    }

    expect_rules(
        find(&objs, "ClusterRole", "osartifact-operator"),
        &[
            ("build.kairos.io", "osartifacts", "list watch", ""),
            ("build.kairos.io", "osartifacts/status", "patch", ""),
            ("build.kairos.io", "osartifacts/finalizers", "update", ""),
            ("", "pods", "get list watch create patch delete", ""),
            (
                "",
                "persistentvolumeclaims",
                "get list watch create patch delete",
                "",
            ),
            ("batch", "jobs", "get list watch create patch delete", ""),
            ("", "configmaps", "get list watch create patch delete", ""),
            ("", "secrets", "get list watch create patch", ""),
            ("events.k8s.io", "events", "create patch", ""),
        ],
    );
    expect_rules(
        find(&objs, "Role", "osartifact-operator-leader-election"),
        &[("coordination.k8s.io", "leases", "get create patch", "")],
    );
    expect_rules(
        find(&objs, "ClusterRole", "osartifact-webhook"),
        &[
            ("", "secrets", "get", ""),
            ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
            (
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                "get patch",
                "osartifact-validating",
            ),
            (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                "get patch",
                "osartifact-mutating",
            ),
        ],
    );
    // The certificate Secret: everything but create is limited to its name. create cannot be
    // limited by name, so it is a separate rule in a namespaced Role.
    let certs = find(&objs, "Role", "osartifact-webhook-certs");
    let rs = certs["rules"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(strs(&rs[0]["resourceNames"]), ["osartifact-webhook-tls"]);
    assert_eq!(strs(&rs[0]["verbs"]), ["get", "update"]);
    assert!(rs[1].get("resourceNames").is_none());
    assert_eq!(strs(&rs[1]["verbs"]), ["create"]);

    // Each binary has its own ServiceAccount, bound to its own roles only.
    let op = ["ServiceAccount:osartifact-operator".to_string()];
    let wh = ["ServiceAccount:osartifact-webhook".to_string()];
    assert_eq!(bound_to(&objs, "ClusterRole", "osartifact-operator"), op);
    assert_eq!(
        bound_to(&objs, "Role", "osartifact-operator-leader-election"),
        op
    );
    assert_eq!(bound_to(&objs, "ClusterRole", "osartifact-webhook"), wh);
    assert_eq!(bound_to(&objs, "Role", "osartifact-webhook-certs"), wh);
    for sa in ["osartifact-operator", "osartifact-webhook"] {
        find(&objs, "ServiceAccount", sa);
    }

    // User-facing roles aggregate into the built-in ones and grant nothing beyond OSArtifacts.
    let editor = find(&objs, "ClusterRole", "osartifact-editor");
    assert_eq!(
        editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let viewer = find(&objs, "ClusterRole", "osartifact-viewer");
    assert_eq!(
        viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    for r in [editor, viewer] {
        assert!(
            rules(r).keys().all(|(g, _)| g == "build.kairos.io"),
            "{}",
            name(r)
        );
    }
    assert!(!rules(viewer).values().any(|(v, _)| {
        v.iter()
            .any(|v| !["get", "list", "watch"].contains(&v.as_str()))
    }));
}

#[test]
fn cert_manager_overlay_wires_certificates_and_drops_self_management() {
    let objs = render("cert-manager");
    let cert = find(&objs, "Certificate", "osartifact-webhook-serving");
    assert_eq!(cert["metadata"]["namespace"], "osartifact-system");
    assert_eq!(cert["spec"]["secretName"], "osartifact-webhook-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!([
            "osartifact-webhook.osartifact-system.svc",
            "osartifact-webhook.osartifact-system.svc.cluster.local"
        ])
    );
    let issuer = cert["spec"]["issuerRef"]["name"].as_str().unwrap();
    find(&objs, "Issuer", issuer);
    for (k, n) in [
        ("ValidatingWebhookConfiguration", "osartifact-validating"),
        ("MutatingWebhookConfiguration", "osartifact-mutating"),
    ] {
        assert_eq!(
            find(&objs, k, n)["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "osartifact-system/osartifact-webhook-serving"
        );
    }
    let d = find(&objs, "Deployment", "osartifact-webhook");
    let c = &containers(d)[0];
    let args = strs(&c["args"]);
    for a in [
        "--self-managed-certs=false",
        "--tls-cert-file=/tls/tls.crt",
        "--tls-private-key-file=/tls/tls.key",
    ] {
        assert!(args.contains(&a), "webhook args {args:?} lack {a}");
    }
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/tls")
        .unwrap();
    assert_eq!(mount["readOnly"], true);
    let vol = d["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(vol["secret"]["secretName"], "osartifact-webhook-tls");
    // Nothing left that writes Secrets or webhook configurations.
    assert!(objs.iter().all(|o| name(o) != "osartifact-webhook-certs"));
    expect_rules(
        find(&objs, "ClusterRole", "osartifact-webhook"),
        &[
            ("", "secrets", "get", ""),
            ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
        ],
    );
}

#[test]
fn images_have_one_overridable_name_each() {
    // Bases use neutral names; `default` maps both with kustomize `images:`.
    for (base, image) in [
        ("operator", "osartifact-operator"),
        ("webhook", "osartifact-webhook"),
    ] {
        let objs = render(base);
        let d = objs.iter().find(|o| kind(o) == "Deployment").unwrap();
        assert_eq!(containers(d)[0]["image"], image, "manifests/{base}");
    }
    let objs = render("default");
    let kust = std::fs::read_to_string(manifests_dir().join("default/kustomization.yaml")).unwrap();
    let kust: Value = serde_saphyr::from_str(&kust).unwrap();
    let images = kust["images"].as_array().unwrap();
    for n in ["osartifact-operator", "osartifact-webhook"] {
        let entry = images
            .iter()
            .find(|i| i["name"] == n)
            .unwrap_or_else(|| panic!("no images: entry for {n}"));
        let want = format!(
            "{}:{}",
            entry["newName"].as_str().unwrap(),
            entry["newTag"].as_str().unwrap()
        );
        assert_eq!(
            containers(find(&objs, "Deployment", n))[0]["image"],
            want.as_str()
        );
    }
}

#[test]
fn nginx_has_the_objects_the_user_docs_list() {
    let objs = render("nginx");
    for o in &objs {
        assert!(
            o["metadata"].get("namespace").is_none(),
            "{}/{}: no namespace, so `kubectl apply -k manifests/nginx -n NS` places it",
            kind(o),
            name(o)
        );
    }
    let svc = find(&objs, "Service", "kairos-operator-nginx");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(
        svc["spec"]["ports"][0]["port"], 80,
        "exporters use http://kairos-operator-nginx"
    );
    assert!(
        svc["spec"]["ports"][0].get("nodePort").is_none(),
        "node port is auto-assigned"
    );

    let role = find(&objs, "Role", "artifactCopier");
    expect_rules(
        role,
        &[
            ("", "pods", "get list", ""),
            ("", "pods/exec", "create", ""),
        ],
    );

    let d = find(&objs, "Deployment", "kairos-operator-nginx");
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        d["spec"]["strategy"]["type"], "Recreate",
        "a ReadWriteOnce volume"
    );
    let pod = &d["spec"]["template"]["spec"];
    let c = &containers(d)[0];
    let target = svc["spec"]["ports"][0]["targetPort"].as_str().unwrap();
    let port = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == target)
        .unwrap();
    let volumes = pod["volumes"].as_array().unwrap();
    let pvc_vol = volumes
        .iter()
        .find(|v| v.get("persistentVolumeClaim").is_some())
        .unwrap();
    let pvc = find(
        &objs,
        "PersistentVolumeClaim",
        pvc_vol["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    let cm_vol = volumes
        .iter()
        .find(|v| v.get("configMap").is_some())
        .unwrap();
    let cm = find(
        &objs,
        "ConfigMap",
        cm_vol["configMap"]["name"].as_str().unwrap(),
    );
    let conf = cm["data"]["nginx.conf"].as_str().unwrap();
    for directive in [
        "dav_methods PUT;",
        "create_full_put_path on;",
        "autoindex on;",
        "client_max_body_size 0;",
    ] {
        assert!(conf.contains(directive), "nginx.conf lacks `{directive}`");
    }
    let listen = format!("listen {};", port["containerPort"]);
    assert_eq!(
        conf.matches(&listen).count(),
        1,
        "nginx.conf listens on the container port ({listen})"
    );

    // The container runs exactly that file, with the artifacts volume at PREFIX/html.
    let cmd = strs(&c["command"]);
    let prefix = cmd[cmd.iter().position(|a| *a == "-p").unwrap() + 1];
    let conf_path = cmd[cmd.iter().position(|a| *a == "-c").unwrap() + 1];
    let mounts = c["volumeMounts"].as_array().unwrap();
    let mount_of = |vol: &Value| {
        mounts.iter().find(|m| m["name"] == vol["name"]).unwrap()["mountPath"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(format!("{}/nginx.conf", mount_of(cm_vol)), conf_path);
    assert_eq!(format!("{}html", prefix), mount_of(pvc_vol));
    assert!(conf.contains("root html;"));
    assert_eq!(
        pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsGroup"],
        "uploads need a writable volume"
    );
}

#[test]
fn samples_are_namespace_free_osartifacts() {
    let objs = render("samples");
    for o in &objs {
        assert_eq!(kind(o), "OSArtifact");
        assert_eq!(o["apiVersion"], "build.kairos.io/v1alpha2");
        assert!(o["metadata"].get("namespace").is_none(), "{}", name(o));
    }
}
