//! The default install: the webhook manages its own certificates. Registered by the shipped
//! configurations with no caBundle, two replicas running as the webhook's ServiceAccount (with
//! the RBAC of manifests/rbac) create one CA and serving certificate in one Secret, write the CA
//! into both configurations, and the apiserver then trusts them: a bad spec is refused through
//! the webhook.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use osartifact_e2e::identity::SYSTEM_NAMESPACE;
use osartifact_e2e::procs::{Proc, free_port};
use osartifact_e2e::wait::poll;
use osartifact_e2e::webhook::{
    SELF_MANAGED_SECRET as SECRET, self_managed_args, shipped_configurations,
};
use osartifact_e2e::{env, paths};
use serde_json::{Value, json};

/// One replica in self-managed mode; the Service name is not resolvable here, so `localhost`
/// is added to the certificate and the configurations call `https://localhost:PORT`.
fn replica(name: &str, port: u16) -> Proc {
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
    let mut p = Proc::spawn(name, cmd, &e.log_dir.join(format!("{name}.log"))).unwrap();
    p.wait_http(admin, "/readyz", Duration::from_secs(60), |code| {
        code == 200
    })
    .unwrap();
    p
}

/// `kubectl get ARGS -o json` as admin.
fn get(args: &[&str]) -> Value {
    env().k().get_json(args).unwrap()
}

fn ca_bundles() -> Vec<String> {
    let mut out = Vec::new();
    for kind in [
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
    ] {
        let c = get(&[kind]);
        for w in c["webhooks"].as_array().unwrap() {
            out.push(
                w["clientConfig"]["caBundle"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    out
}

#[test]
fn two_replicas_share_one_self_managed_certificate_and_the_apiserver_trusts_it() {
    let e = env();
    let port = free_port().unwrap();
    // The shipped configurations, called by URL, with no caBundle: as installed from manifests/.
    let mut configs = shipped_configurations(&e.cp, port, "").unwrap();
    for item in configs["items"].as_array_mut().unwrap() {
        for h in item["webhooks"].as_array_mut().unwrap() {
            let url = h["clientConfig"]["url"].as_str().unwrap().to_string();
            let path = url.rsplit_once(&format!(":{port}")).unwrap().1.to_string();
            h["clientConfig"] = json!({"url": format!("https://localhost:{port}{path}")});
        }
    }
    let out = e
        .k()
        .run_stdin(&["apply", "-f", "-"], Some(&configs.to_string()))
        .unwrap();
    assert!(out.success, "{out}");
    assert!(ca_bundles().iter().all(String::is_empty));

    let _first = replica("webhook-self-managed-1", port);
    let secret = get(&["secret", SECRET, "-n", SYSTEM_NAMESPACE]);
    let data = secret["data"].as_object().expect("the Secret has data");
    let pem = |k: &str| {
        let b64 = data
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {k} in {data:?}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let ca = pem("ca.crt");
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    assert!(pem("tls.crt").contains("BEGIN CERTIFICATE"));

    // Both configurations carry the CA (the bundle may hold more than one during a rotation).
    let bundles = poll(
        "caBundle in both configurations",
        Duration::from_secs(30),
        |_| {
            let b = ca_bundles();
            Ok((b.len() == 2 && b.iter().all(|x| !x.is_empty())).then_some(b))
        },
    )
    .unwrap();
    for b in &bundles {
        let decoded =
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap())
                .unwrap();
        assert!(
            decoded.contains(ca.trim()),
            "caBundle lacks the Secret's CA"
        );
    }

    // The apiserver now reaches the webhook over TLS it trusts: a bad spec is refused by it.
    let ns = e.namespace("selfmanaged");
    let bad = r#"{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{"name":"bad"},
        "spec":{"imageName":"quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0","iso":true,"diskSize":"abc"}}"#;
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(bad));
    assert!(!out.success, "{out}");
    assert!(
        out.stderr.contains(
            "spec.diskSize: Invalid value: \"abc\": must be a positive whole number of megabytes"
        ),
        "{out}"
    );

    // A second replica takes the same Secret instead of making its own.
    let version = secret["metadata"]["resourceVersion"].clone();
    let _second = replica("webhook-self-managed-2", free_port().unwrap());
    let again = get(&["secret", SECRET, "-n", SYSTEM_NAMESPACE]);
    assert_eq!(again["metadata"]["resourceVersion"], version);
    assert_eq!(ca_bundles(), bundles);
}
