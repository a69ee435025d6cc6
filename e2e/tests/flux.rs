//! Flux's apply engine (`github.com/fluxcd/pkg/ssa`, as Flux's kustomize-controller uses it;
//! `e2e/gitops/flux-apply`) against the loopback control plane:
//! - a first reconcile applies `manifests/default` and, as a second Kustomization, every file
//!   of `examples/`, staged (CRDs, Namespaces, ClusterRoles first) with server-side apply under
//!   Flux's field manager;
//! - the webhook runs in its default self-managed mode (a local process: there is no node) and
//!   writes caBundle into the applied configurations; the operator writes status on every
//!   OSArtifact;
//! - a second reconcile finds every object `unchanged`: no drift from defaulting, from the
//!   caBundle writes or from the status writes;
//! - the webhook's CA is rotated (`osartifact-webhook certs ensure` with a renewal window
//!   longer than the CA's life), the replica picks it up, and a third reconcile again finds
//!   every object `unchanged`, its dry runs admitted through the webhook with the new chain.
//!
//! Only `clientConfig` of the two configurations differs from the shipped files (a URL on
//! loopback instead of the Service), as everywhere on the loopback control plane.

use std::collections::BTreeMap;
use std::time::Duration;

use osartifact_e2e::gitops::{self, parse_yaml};
use osartifact_e2e::identity::SYSTEM_NAMESPACE;
use osartifact_e2e::procs::free_port;
use osartifact_e2e::{env, paths};
use serde_json::{Value, json};

use osartifact_e2e::gitops::WEBHOOK_SECRET as SECRET;

/// One reconcile: `flux-apply -f` each file in order (each a Kustomization); returns
/// `subject → action` of every object.
fn reconcile(files: &[&std::path::Path]) -> BTreeMap<String, String> {
    let e = env();
    let mut args: Vec<String> = Vec::new();
    for f in files {
        args.push("-f".into());
        args.push(f.display().to_string());
    }
    args.push("-timeout=60s".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = gitops::run(
        "flux-apply",
        &args,
        Some(&e.cp.admin.kubeconfig),
        &e.data_dir.join("flux-home"),
    )
    .expect("running flux-apply");
    let run = run.ok().unwrap_or_else(|e| panic!("{e:#}"));
    let out: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", run.stdout));
    let mut actions = BTreeMap::new();
    let ks = out["kustomizations"].as_array().expect("kustomizations");
    assert_eq!(ks.len(), files.len(), "{out}");
    for k in ks {
        for entry in k["entries"].as_array().expect("entries") {
            actions.insert(
                entry["subject"].as_str().expect("subject").to_string(),
                entry["action"].as_str().expect("action").to_string(),
            );
        }
    }
    actions
}

fn assert_all_unchanged(actions: &BTreeMap<String, String>, expected: usize, when: &str) {
    let changed: Vec<_> = actions.iter().filter(|(_, a)| *a != "unchanged").collect();
    assert!(changed.is_empty(), "{when}: Flux would change {changed:?}");
    assert_eq!(actions.len(), expected, "{when}: {actions:?}");
}

#[test]
fn flux_finds_no_drift_after_the_webhook_the_operator_and_a_ca_rotation() {
    let e = env();
    let dir = e.data_dir.join("flux");
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port().expect("port");

    // manifests/default as shipped, but for how the apiserver reaches the webhook here.
    let install = gitops::install_calling_webhook_at(port).expect("manifests/default");
    let install_file = dir.join("osartifact.yaml");
    gitops::write_docs(&install_file, &install).expect("write");

    // Each file of examples/ as a Kustomization of its own with its own targetNamespace:
    // several examples carry a Secret of the same name with different contents.
    let mut files: Vec<_> = std::fs::read_dir(paths::workspace().join("examples"))
        .expect("examples/")
        .map(|d| d.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut namespaces = Vec::new();
    let mut example_files = Vec::new();
    let mut artifacts: Vec<(usize, String)> = Vec::new();
    let mut example_objects = 0;
    for (i, f) in files.iter().enumerate() {
        let ns = e.namespace("flux");
        let text = std::fs::read_to_string(f).expect("example");
        let mut docs = parse_yaml(&text).expect("example parses");
        for o in &mut docs {
            o["metadata"]["namespace"] = json!(ns.name);
            if o["kind"] == "OSArtifact" {
                let name = o["metadata"]["name"].as_str().expect("name").to_string();
                artifacts.push((i, name));
            }
        }
        example_objects += docs.len();
        let out = dir.join(f.file_name().expect("file name"));
        gitops::write_docs(&out, &docs).expect("write");
        example_files.push(out);
        namespaces.push(ns);
    }
    assert!(artifacts.len() >= 10, "{artifacts:?}");

    // First reconcile of the install: the CRD, namespace and RBAC exist already (the
    // harness applied them with kubectl), everything else is new.
    let first = reconcile(&[&install_file]);
    assert_eq!(first.len(), install.len(), "{first:?}");
    assert!(
        first
            .values()
            .all(|a| a == "created" || a == "configured" || a == "unchanged"),
        "{first:?}"
    );

    // The webhook in its default mode: it creates the Secret and writes caBundle.
    let (webhook, bundles) =
        gitops::start_self_managed_webhook(e, "webhook-flux", port).expect("webhook");
    drop(e.operator());

    // The examples, then wait for the operator's status on every artifact.
    let examples: Vec<&std::path::Path> = example_files.iter().map(|p| p.as_path()).collect();
    let created = reconcile(&examples);
    assert_eq!(created.len(), example_objects, "{created:?}");
    assert!(created.values().all(|a| a == "created"), "{created:?}");
    for (i, a) in &artifacts {
        namespaces[*i].wait_for(
            &["osartifact", a],
            "the operator's status",
            Duration::from_secs(60),
            |o| o["status"]["phase"].as_str().is_some_and(|p| !p.is_empty()),
        );
    }

    // Second reconcile of both Kustomizations: nothing to do.
    let mut all = vec![install_file.as_path()];
    all.extend(&examples);
    let second = reconcile(&all);
    assert_all_unchanged(
        &second,
        install.len() + example_objects,
        "after the webhook and the operator wrote",
    );

    // Rotate the CA as the webhook does when the CA nears its end: a renewal window longer
    // than its whole life starts the rotation now.
    let secret_before = e
        .k()
        .get_json(&["secret", SECRET, "-n", SYSTEM_NAMESPACE])
        .expect("secret");
    gitops::rotate_ca(e, &bundles).expect("CA rotated");
    let secret_after = e
        .k()
        .get_json(&["secret", SECRET, "-n", SYSTEM_NAMESPACE])
        .expect("secret");
    assert_ne!(
        secret_before["data"]["ca.crt"], secret_after["data"]["ca.crt"],
        "the CA was rotated"
    );
    // Let the replica load the rotated Secret (its check interval is 2 s).
    std::thread::sleep(Duration::from_secs(5));

    let third = reconcile(&all);
    assert_all_unchanged(
        &third,
        install.len() + example_objects,
        "after the CA rotation",
    );
    drop(webhook);
}
