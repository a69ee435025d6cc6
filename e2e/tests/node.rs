//! The one-node cluster: a real kubelet with containerd runs the pods, in network and mount
//! namespaces of this test process (no route out), with the product installed from
//! manifests/default as Pods, by Flux's apply engine with its health check (`flux-apply -wait`,
//! as kustomize-controller with `wait: true`). One cluster for the whole binary, a namespace per
//! test.

use std::time::{Duration, Instant};

use osartifact_e2e::identity::SYSTEM_NAMESPACE;
use osartifact_e2e::net::{self, NODE_IP};
use osartifact_e2e::node::busybox_image;
use osartifact_e2e::wait::poll;
use osartifact_e2e::{env, http, oci};
use serde_json::Value;

osartifact_e2e::cluster_namespaces!();
osartifact_e2e::installed_with_flux!();

/// Tests that delete the product's Pods, or count them, run one at a time.
static PRODUCT_PODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn product_pods() -> std::sync::MutexGuard<'static, ()> {
    PRODUCT_PODS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pod (or other object) manifest, `{BUSYBOX}` replaced by the cluster's busybox image.
fn manifest(y: &str) -> String {
    y.replace("{BUSYBOX}", &busybox_image())
}

/// An image no registry of the cluster has.
fn unpullable_image() -> String {
    format!("{}/e2e/never-pushed:v1", net::registry())
}

/// A minimal ISO OSArtifact named `name` whose first step (an importer) has an image that
/// cannot be pulled, so its build stays at step 1 until the test ends it.
fn iso_artifact(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{{"name":"{name}"}},"spec":{{"imageName":"quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0","iso":true,"importers":[{{"name":"fetch","image":"{}"}}]}}}}"#,
        unpullable_image()
    )
}

/// Applies [`iso_artifact`] in `ns`, asserting success.
fn apply_iso_artifact(ns: &osartifact_e2e::Ns, name: &str) {
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&iso_artifact(name)));
    assert!(out.success, "{out}");
}

fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or_default()
}

#[test]
fn a_pod_with_init_containers_volumes_and_a_pvc_runs_to_success() {
    let e = env();
    let ns = e.namespace("pods");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&manifest(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a.txt: "from-configmap", b.txt: "not-listed"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {token: "from-secret"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: full}
spec:
  restartPolicy: Never
  initContainers:
    - name: init
      image: {BUSYBOX}
      command: [sh, -c, "echo from-init > /scratch/init.txt && echo on-pvc > /data/pvc.txt"]
      volumeMounts:
        - {name: scratch, mountPath: /scratch}
        - {name: data, mountPath: /data}
  containers:
    - name: main
      image: {BUSYBOX}
      command:
        - sh
        - -c
        - >-
          for f in /sub/init.txt /cfg/nested/a.txt /sec/token /data/pvc.txt; do echo "$(cat $f)"; done;
          test ! -e /cfg/b.txt && echo only-listed-items;
          test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo sa-token
      volumeMounts:
        - {name: scratch, mountPath: /sub/init.txt, subPath: init.txt}
        - {name: cfg, mountPath: /cfg}
        - {name: sec, mountPath: /sec}
        - {name: data, mountPath: /data}
  volumes:
    - {name: scratch, emptyDir: {}}
    - name: cfg
      configMap: {name: cfg, items: [{key: a.txt, path: nested/a.txt}]}
    - {name: sec, secret: {secretName: sec}}
    - {name: data, persistentVolumeClaim: {claimName: data}}
"#,
        )),
    );
    assert!(out.success, "{out}");
    let pod = ns.wait_for(
        &["pod", "full"],
        "pod full to finish",
        Duration::from_secs(120),
        |v| matches!(phase(v), "Succeeded" | "Failed"),
    );
    let logs = ns.k(&["logs", "full", "-c", "main"]);
    assert_eq!(phase(&pod), "Succeeded", "{logs}\n{pod:#}");
    assert_eq!(
        logs.stdout.lines().collect::<Vec<_>>(),
        [
            "from-init",
            "from-configmap",
            "from-secret",
            "on-pvc",
            "only-listed-items",
            "sa-token"
        ],
        "{logs}"
    );
    let pvc = ns.get(&["pvc", "data"]).unwrap();
    assert_eq!(pvc["status"]["phase"], "Bound", "{pvc:#}");
}

#[test]
fn services_dns_nodeports_exec_and_the_apiserver_are_reachable() {
    let e = env();
    let ns = e.namespace("net");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&manifest(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: httpd
          image: {BUSYBOX}
          command: [sh, -c, "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
          readinessProbe:
            httpGet: {path: /index.html, port: 8080}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#,
        )),
    );
    assert!(out.success, "{out}");
    let rollout = ns.k(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    assert!(rollout.success, "{rollout}");

    // The NodePort from the test process (which lives in the cluster's network namespace).
    let svc = ns.get(&["service", "web"]).unwrap();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    let body = poll(
        "the NodePort",
        Duration::from_secs(30),
        |last| match http::get(&format!("{NODE_IP}:{node_port}"), "/index.html") {
            Ok((200, b)) => Ok(Some(b)),
            r => {
                *last = format!("{r:?}");
                Ok(None)
            }
        },
    )
    .unwrap();
    assert_eq!(body.trim(), "hello-from-pod");

    // From inside a pod: the Service by its DNS name, and the apiserver through the
    // `kubernetes` Service (plain HTTP to its TLS port earns Go's "HTTP request to an HTTPS
    // server" answer, which only the apiserver gives). busybox's wget is static glibc and
    // crashes in NSS, so nc speaks HTTP by hand.
    let exec = ns.k(&[
        "exec",
        "deployment/web",
        "-n",
        &ns.name,
        "--",
        "sh",
        "-c",
        &format!(
            "nslookup web.{ns}.svc.cluster.local {NODE_IP} >/dev/null && echo dns-ok; \
             printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc web 80 | tail -n1; \
             printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 kubernetes.default.svc.cluster.local 443 \
               | grep -q 'HTTPS server' && echo apiserver-ok; \
             nslookup example.com {NODE_IP} >/dev/null 2>&1 || echo no-upstream",
            ns = ns.name
        ),
    ]);
    assert!(exec.success, "{exec}");
    assert_eq!(
        exec.stdout.lines().collect::<Vec<_>>(),
        ["dns-ok", "hello-from-pod", "apiserver-ok", "no-upstream"],
        "{exec}"
    );
}

#[test]
fn no_route_leaves_the_cluster_namespace() {
    osartifact_e2e::isolation::entered().unwrap();
    let routes = osartifact_e2e::isolation::run("ip", &["-4", "route", "show"]).unwrap();
    assert!(
        routes.lines().all(|r| !r.starts_with("default")
            && (r.starts_with(net::POD_CIDR) || r.starts_with(net::SERVICE_CIDR))),
        "a route leads elsewhere than the pod and service ranges: {routes}"
    );
    let links = osartifact_e2e::isolation::run("ip", &["-o", "link", "show"]).unwrap();
    for l in links.lines() {
        let name = l.split(':').nth(1).unwrap_or_default().trim();
        let name = name.split('@').next().unwrap_or_default();
        assert!(
            name == "lo" || name == net::BRIDGE || name.starts_with("veth"),
            "unexpected link {name} in the cluster namespace: {links}"
        );
    }
    // An address outside the node's ranges is unreachable at once, not timed out.
    let r = std::net::TcpStream::connect_timeout(
        &"192.0.2.1:80".parse().unwrap(),
        Duration::from_secs(2),
    );
    let err = r.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NetworkUnreachable, "{err}");
}

#[test]
fn an_image_from_the_registry_with_credentials_needs_its_pull_secret() {
    let e = env();
    let node = e.node.as_ref().unwrap();
    let ns = e.namespace("pull");
    let image = format!("{}/private/busybox:1.35", net::auth_registry());
    // Distinct content from the public busybox (containerd 1.6 confuses identical images).
    node.push_image_with_creds(
        "private-busybox",
        &oci::busybox_image("osartifact e2e private busybox").unwrap(),
        &image,
        net::AUTH_REGISTRY_USER,
        net::AUTH_REGISTRY_PASSWORD,
    )
    .unwrap();
    let out = ns.k(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", net::auth_registry()),
        &format!("--docker-username={}", net::AUTH_REGISTRY_USER),
        &format!("--docker-password={}", net::AUTH_REGISTRY_PASSWORD),
    ]);
    assert!(out.success, "{out}");
    let pod = |name: &str, secret: bool| {
        let secrets = if secret {
            "imagePullSecrets: [{name: regcred}]"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  {secrets}\n  containers: [{{name: c, image: \"{image}\", command: [sh, -c, 'echo pulled']}}]\n"
        )
    };
    for (name, secret) in [("without", false), ("with", true)] {
        let out = ns.k_stdin(&["apply", "-f", "-"], Some(&pod(name, secret)));
        assert!(out.success, "{out}");
    }
    let with = ns.wait_for(
        &["pod", "with"],
        "the pod with the secret",
        Duration::from_secs(90),
        |v| phase(v) == "Succeeded",
    );
    assert_eq!(phase(&with), "Succeeded");
    let without = ns.wait_for(
        &["pod", "without"],
        "the pod without the secret to fail its pull",
        Duration::from_secs(90),
        |v| {
            let reason = v["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or_default();
            reason == "ErrImagePull" || reason == "ImagePullBackOff"
        },
    );
    let msg = without["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("401") || msg.to_lowercase().contains("unauthorized"),
        "{msg}"
    );
}

/// Both webhook configurations carry the CA the webhook Pods wrote.
fn ca_bundles() -> Vec<String> {
    let e = env();
    [
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
    ]
    .iter()
    .map(|c| {
        e.k()
            .run(&[
                "get",
                c,
                "-o",
                "jsonpath={.webhooks[*].clientConfig.caBundle}",
            ])
            .unwrap()
            .stdout
    })
    .collect()
}

#[test]
fn the_product_runs_as_pods_and_the_apiserver_calls_the_webhook_pods() {
    let e = env();
    let _serial = product_pods();
    // Installed by the environment from manifests/default; the Pods are Ready by their probes.
    let pods = e
        .k()
        .run(&["get", "pods", "-n", SYSTEM_NAMESPACE, "-o", "json"])
        .unwrap();
    let pods: Value = serde_json::from_str(&pods.stdout).unwrap();
    let ready: Vec<String> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .map(|p| {
            p["metadata"]["labels"]["app.kubernetes.io/name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let count = |n: &str| ready.iter().filter(|r| *r == n).count();
    assert_eq!(count("osartifact-operator"), 1, "{ready:?}");
    assert_eq!(count("osartifact-webhook"), 2, "{ready:?}");
    for b in ca_bundles() {
        assert!(b.len() > 100, "caBundle not written: {b:?}");
    }

    let ns = e.namespace("install");
    // Defaulting through the mutating webhook Pods.
    let out = ns.k(&[
        "apply",
        "-f",
        &osartifact_e2e::paths::workspace()
            .join("examples/iso.yaml")
            .display()
            .to_string(),
    ]);
    assert!(out.success, "{out}");
    let name = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("osartifact.build.kairos.io/"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no OSArtifact in {out}"))
        .to_string();
    let obj = ns.get(&["osartifact", &name]).unwrap();
    assert!(
        obj["spec"].as_object().unwrap().len() > 2,
        "no defaults filled in: {obj:#}"
    );
    // A refusal only the validating webhook gives: a user who may create OSArtifacts but not
    // the Pods a build runs (its SubjectAccessReview, from the webhook Pod through the API).
    let alice = e.cp.identity("alice", "alice", &["e2e-users"]).unwrap();
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"artifacts-only"},
        "rules":[{"apiGroups":["build.kairos.io"],"resources":["osartifacts"],"verbs":["*"]}]}"#;
    assert!(ns.k_stdin(&["apply", "-f", "-"], Some(role)).success);
    let out = ns.k(&[
        "create",
        "rolebinding",
        "alice",
        "--role=artifacts-only",
        "--user=alice",
    ]);
    assert!(out.success, "{out}");
    let bad = ns.k_with(
        &e.k_as(&alice),
        &["apply", "-f", "-"],
        Some(&iso_artifact("by-alice")),
    );
    assert!(!bad.success, "{bad}");
    assert!(
        bad.stderr.contains(r#"admission webhook "validate.osartifacts.build.kairos.io" denied the request: user "alice" may not"#),
        "{bad}"
    );
}

/// `subject → action` of each object in `flux-apply`'s result for its one Kustomization, and
/// whether its health check passed, in how many seconds.
fn flux_result(out: &Value) -> (std::collections::BTreeMap<String, String>, bool, f64) {
    let ks = out["kustomizations"].as_array().expect("kustomizations");
    assert_eq!(ks.len(), 1, "{out}");
    assert_eq!(ks[0]["name"], "osartifact", "{out}");
    let actions = ks[0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().expect("subject").to_string(),
                e["action"].as_str().expect("action").to_string(),
            )
        })
        .collect();
    let waited = ks[0]["waited"].as_bool().expect("waited");
    (
        actions,
        waited,
        ks[0]["waitSeconds"].as_f64().expect("waitSeconds"),
    )
}

#[test]
fn flux_installs_the_product_waits_until_its_deployments_are_ready_then_finds_no_drift() {
    let e = env();
    let _serial = product_pods();
    // The environment's install: one Kustomization, every object created, then Flux's health
    // check (kstatus until Current).
    let (first, waited, seconds) = flux_result(&e.flux_install_result().unwrap());
    let created: Vec<_> = first.iter().filter(|(_, a)| *a != "created").collect();
    assert!(created.is_empty(), "not created: {created:?}");
    for d in ["osartifact-operator", "osartifact-webhook"] {
        let subject = format!("Deployment/{SYSTEM_NAMESPACE}/{d}");
        assert_eq!(
            first.get(&subject).map(String::as_str),
            Some("created"),
            "{first:?}"
        );
    }
    assert!(waited);
    // The check polls every 2 s and a Deployment just created has no Ready Pods: a wait that
    // returned at once would have passed nothing.
    assert!(seconds >= 2.0, "the health check took {seconds} s");
    eprintln!("[e2e] Flux's health check of the install passed after {seconds:.1}s");
    // It returned only once every Deployment was Ready (the Pods counted by
    // the_product_runs_as_pods_and_the_apiserver_calls_the_webhook_pods): checked here from
    // the Deployments' own status.
    for d in ["osartifact-operator", "osartifact-webhook"] {
        let dep = e
            .k()
            .get_json(&["deployment", "-n", SYSTEM_NAMESPACE, d])
            .unwrap();
        assert_eq!(
            dep["status"]["readyReplicas"], dep["spec"]["replicas"],
            "{d}: {:#}",
            dep["status"]
        );
    }

    // A second reconcile of the same Kustomization, with the webhook Pods having written
    // caBundle and their Secret: nothing to change, and the health check passes again.
    let run = osartifact_e2e::gitops::run(
        "flux-apply",
        &[
            "-f",
            &e.flux_install_file().display().to_string(),
            "-wait",
            "-timeout=120s",
        ],
        Some(&e.cp.admin.kubeconfig),
        &e.data_dir.join("flux-home"),
    )
    .unwrap()
    .ok()
    .unwrap_or_else(|e| panic!("{e:#}"));
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    let (second, waited, _) = flux_result(&out);
    let changed: Vec<_> = second.iter().filter(|(_, a)| *a != "unchanged").collect();
    assert!(changed.is_empty(), "Flux would change {changed:?}");
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    assert!(waited);
    for b in ca_bundles() {
        assert!(b.len() > 100, "caBundle not written: {b:?}");
    }
}

#[test]
fn deleting_a_webhook_pod_never_fails_a_request() {
    let e = env();
    let _serial = product_pods();
    let ns = e.namespace("webhook-pod");
    let victim = e
        .k()
        .run(&[
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=osartifact-webhook",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .unwrap()
        .stdout;
    assert!(!victim.is_empty());
    let obj = |i: usize| iso_artifact(&format!("a{i}"));
    let del = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        env()
            .k()
            .run(&[
                "delete",
                "pod",
                "-n",
                SYSTEM_NAMESPACE,
                &victim,
                "--wait=true",
            ])
            .unwrap()
    });
    let start = Instant::now();
    let mut n = 0;
    let mut failures = Vec::new();
    // Reviews for 20 s: the deletion, the replacement's start and its readiness all fall in it.
    while start.elapsed() < Duration::from_secs(20) {
        let out = ns.k_stdin(&["create", "--dry-run=server", "-f", "-"], Some(&obj(n)));
        if !out.success {
            failures.push(out.to_string());
        }
        n += 1;
    }
    let d = del.join().unwrap();
    assert!(d.success, "{d}");
    assert!(n > 20, "only {n} requests");
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    e.rolled_out("osartifact-webhook", Duration::from_secs(120))
        .unwrap();
}

#[test]
fn deleting_the_operator_pod_hands_over_the_lease_and_loses_no_work() {
    let e = env();
    let _serial = product_pods();
    let ns = e.namespace("operator-pod");
    let first = poll(
        "the operator Pod to hold the Lease",
        Duration::from_secs(60),
        |last| {
            let h = e.operator_lease_holder();
            *last = h.clone();
            Ok(h.starts_with("osartifact-operator-").then_some(h))
        },
    )
    .unwrap();
    let d = e
        .k()
        .run(&[
            "delete",
            "pod",
            "-n",
            SYSTEM_NAMESPACE,
            &first,
            "--wait=false",
        ])
        .unwrap();
    assert!(d.success, "{d}");
    // Created while no operator runs: the next holder must pick it up.
    apply_iso_artifact(&ns, "during-handover");
    let second = poll(
        "another operator Pod to take the Lease",
        Duration::from_secs(120),
        |last| {
            let h = e.operator_lease_holder();
            *last = h.clone();
            Ok((h.starts_with("osartifact-operator-") && h != first).then_some(h))
        },
    )
    .unwrap();
    assert_ne!(first, second);
    let obj = ns.wait_for(
        &["osartifact", "during-handover"],
        "the new leader to reconcile it",
        Duration::from_secs(120),
        |v| v["status"]["phase"].as_str().is_some_and(|p| !p.is_empty()),
    );
    assert_eq!(obj["status"]["observedGeneration"], 1, "{obj:#}");
    // Its builder pod exists once: no work lost, none doubled.
    let pods = ns.get(&["pods"]).unwrap();
    assert_eq!(pods["items"].as_array().unwrap().len(), 1, "{pods:#}");
    e.rolled_out("osartifact-operator", Duration::from_secs(120))
        .unwrap();
}

#[test]
fn the_nginx_kustomization_serves_uploads_through_its_service_and_nodeport() {
    let e = env();
    let ns = e.namespace("nginx");
    let node_port = e.install_nginx(&ns).unwrap();

    // An upload as the user docs' exporters do it: PUT to the Service name from a pod.
    let body = "kairos-iso-bytes\n";
    let pod = manifest(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: uploader}}
spec:
  restartPolicy: Never
  containers:
    - name: put
      image: {{BUSYBOX}}
      command: [sh, -c, "printf 'PUT /builds/a.iso HTTP/1.0\r\nContent-Length: {len}\r\n\r\n{body_escaped}' | nc kairos-operator-nginx 80"]
"#,
        len = body.len(),
        body_escaped = body.replace('\n', "\\n"),
    ));
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&pod));
    assert!(out.success, "{out}");
    let done = ns.wait_for(
        &["pod", "uploader"],
        "the upload",
        Duration::from_secs(90),
        |v| matches!(phase(v), "Succeeded" | "Failed"),
    );
    let logs = ns.k(&["logs", "uploader"]);
    assert_eq!(phase(&done), "Succeeded", "{logs}");
    assert!(logs.stdout.starts_with("HTTP/1.1 201"), "{logs}");

    let (code, got) = http::get_bytes(&format!("{NODE_IP}:{node_port}"), "/builds/a.iso").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        got,
        body.as_bytes(),
        "not byte-identical through the NodePort"
    );
    let (code, listing) = http::get(&format!("{NODE_IP}:{node_port}"), "/builds/").unwrap();
    assert_eq!(code, 200);
    assert!(listing.contains("a.iso"), "{listing}");
}

#[test]
fn a_build_whose_image_cannot_be_pulled_says_so_and_a_deleted_builder_pod_ends_it() {
    let e = env();
    let ns = e.namespace("pull-failure");
    // The importer's image is in no registry this cluster can reach, so the kubelet reports
    // the first step's pull failure; the operator Pod relays it.
    apply_iso_artifact(&ns, "unpullable");
    let obj = ns.wait_for(
        &["osartifact", "unpullable"],
        "the pull failure in status.message",
        Duration::from_secs(120),
        |v| {
            let m = v["status"]["message"].as_str().unwrap_or_default();
            m.contains("is waiting: ErrImagePull") || m.contains("is waiting: ImagePullBackOff")
        },
    );
    assert_eq!(obj["status"]["phase"], "Building", "{obj:#}");
    let msg = obj["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("step 1 of "), "{msg}");
    // The reason came from the kubelet, in the builder pod's own status.
    let pod = ns.get(&["pod", "unpullable-build"]).unwrap();
    let reason = pod["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        matches!(reason, "ErrImagePull" | "ImagePullBackOff"),
        "{pod:#}"
    );

    // The builder pod deleted before the build finished: Error, with the way to build again.
    let d = ns.k(&["delete", "pod", "unpullable-build", "--wait=true"]);
    assert!(d.success, "{d}");
    let obj = ns.wait_for(
        &["osartifact", "unpullable"],
        "Error after the pod's deletion",
        Duration::from_secs(60),
        |v| v["status"]["phase"] == "Error",
    );
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("deleted before the build finished") && msg.contains("build.kairos.io/retry"),
        "{msg}"
    );
    let events = ns.k(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=unpullable",
        "-o",
        "json",
    ]);
    assert!(events.stdout.contains("\"type\": \"Warning\""), "{events}");
    assert!(
        ns.get(&["pod", "unpullable-build"]).is_none(),
        "a second builder pod was created"
    );
}

#[test]
fn deleting_an_artifact_mid_build_removes_its_running_pod_and_volume() {
    let e = env();
    let ns = e.namespace("gc");
    apply_iso_artifact(&ns, "doomed");
    // The kubelet has the pod (its sandbox started, its first step pulling) and the PVC is bound.
    ns.wait_for(
        &["pod", "doomed-build"],
        "the builder pod on the node",
        Duration::from_secs(120),
        |v| v["status"]["initContainerStatuses"][0]["state"]["waiting"].is_object(),
    );
    let pvc = ns.wait_for(
        &["pvc", "doomed-artifacts"],
        "the artifacts PVC bound",
        Duration::from_secs(60),
        |v| v["status"]["phase"] == "Bound",
    );
    let pv = pvc["spec"]["volumeName"].as_str().unwrap().to_string();
    let d = ns.k(&[
        "delete",
        "osartifact",
        "doomed",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(d.success, "{d}");
    // Owner references, not finalizers: the garbage collector and the kubelet do the rest.
    poll(
        "the pod, PVC and PV to go",
        Duration::from_secs(120),
        |last| {
            let pod = ns.get(&["pod", "doomed-build"]);
            let pvc = ns.get(&["pvc", "doomed-artifacts"]);
            let pv_left = e
                .k()
                .run(&["get", "pv", &pv, "--ignore-not-found", "-o", "name"])?
                .stdout;
            *last = format!(
                "pod {:?} pvc {:?} pv {pv_left:?}",
                pod.is_some(),
                pvc.is_some()
            );
            Ok((pod.is_none() && pvc.is_none() && pv_left.trim().is_empty()).then_some(()))
        },
    )
    .unwrap();
}
