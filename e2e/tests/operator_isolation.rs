//! Rebuilds on spec change, retries on the annotation, no cross-talk between namespaces, no
//! second build after an operator restart, and children removed with the artifact.

use osartifact_e2e::artifacts::*;
use osartifact_e2e::env;
use osartifact_e2e::env::Ns;
use serde_json::Value;

const IMAGE: &str =
    "quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0-k3sv1.35.0-k3s1";

fn apply_artifact(ns: &Ns, name: &str, extra: &str) {
    let y = format!(
        r#"{{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{{"name":"{name}"}},
        "spec":{{"imageName":"{IMAGE}","iso":true{extra}}}}}"#
    );
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&y));
    assert!(out.success, "{out}");
}

fn build_pods(ns: &Ns, name: &str) -> Vec<Value> {
    let sel = format!("build.kairos.io/artifact={name}");
    ns.get(&["pods", "-l", &sel])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn spec_change_rebuilds_and_retry_annotation_retries() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("rebuild");
    apply_artifact(
        &ns,
        "rb",
        r#","grubConfig":"menuentry \"x\" { linux /boot/vmlinuz }\n""#,
    );
    wait_phase(&ns, "rb", "Building");
    let first = wait_exists(&ns, "pod/rb-build");
    assert_eq!(
        first["metadata"]["annotations"]["build.kairos.io/generation"],
        "1"
    );
    let cm = wait_exists(&ns, "configmap/rb");
    assert!(cm["data"]["grub.cfg"].is_string(), "{cm}");

    // A spec change is a new generation: the old pod goes, a new one is built, and the record
    // of the attempt holds only what the new spec sets (no grub.cfg left over).
    apply_artifact(
        &ns,
        "rb",
        r#","netboot":true,"netbootURL":"https://example.com/boot""#,
    );
    let second = ns.wait_for(
        &["pod", "rb-build"],
        "a builder pod for generation 2",
        PHASE_TIMEOUT,
        |p| {
            p["metadata"]["annotations"]["build.kairos.io/generation"] == "2"
                && uid(p) != uid(&first)
        },
    );
    let a = wait_phase(&ns, "rb", "Building");
    assert_eq!(a["metadata"]["generation"], 2);
    assert_owned(&second, &a);
    let cm = wait_exists(&ns, "configmap/rb");
    assert_eq!(
        cm["metadata"]["annotations"]["build.kairos.io/generation"], "2",
        "{cm}"
    );
    assert!(cm["data"].get("grub.cfg").is_none(), "{cm}");
    assert_owned(&cm, &a);

    // A failed build is final until the retry annotation changes.
    fail_build(&ns, "rb", "iso", 1, "no space left on device");
    wait_phase(&ns, "rb", "Error");
    let out = ns.k(&[
        "annotate",
        "osartifact",
        "rb",
        "build.kairos.io/retry=1",
        "--overwrite",
    ]);
    assert!(out.success, "{out}");
    let third = ns.wait_for(
        &["pod", "rb-build"],
        "a builder pod for the retry",
        PHASE_TIMEOUT,
        |p| p["metadata"]["annotations"]["build.kairos.io/retry"] == "1" && uid(p) != uid(&second),
    );
    assert_eq!(
        third["metadata"]["annotations"]["build.kairos.io/generation"],
        "2"
    );
    wait_phase(&ns, "rb", "Building");
    finish_build(&ns, "rb");
    wait_phase(&ns, "rb", "Ready");
}

#[test]
fn same_name_in_two_namespaces_never_mix() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let a_ns = e.namespace("twin-a");
    let b_ns = e.namespace("twin-b");
    apply_artifact(&a_ns, "twin", "");
    apply_artifact(&b_ns, "twin", "");
    let a = wait_phase(&a_ns, "twin", "Building");
    let b = wait_phase(&b_ns, "twin", "Building");
    for (ns, art) in [(&a_ns, &a), (&b_ns, &b)] {
        for what in [
            "pod/twin-build",
            "persistentvolumeclaim/twin-artifacts",
            "configmap/twin",
        ] {
            let obj = wait_exists(ns, what);
            assert_owned(&obj, art);
        }
    }
    finish_build(&a_ns, "twin");
    wait_phase(&a_ns, "twin", "Ready");
    // B is untouched by A's completion.
    let b_now = b_ns.get(&["osartifact", "twin"]).unwrap();
    assert_eq!(b_now["status"]["phase"], "Building", "{}", b_now["status"]);
    assert_eq!(build_pods(&b_ns, "twin").len(), 1);
    fail_build(&b_ns, "twin", "iso", 3, "boom");
    wait_phase(&b_ns, "twin", "Error");
    let a_now = a_ns.get(&["osartifact", "twin"]).unwrap();
    assert_eq!(a_now["status"]["phase"], "Ready", "{}", a_now["status"]);
}

#[test]
fn operator_restart_mid_build_creates_no_second_build() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("restart");
    apply_artifact(&ns, "rs", "");
    wait_phase(&ns, "rs", "Building");
    let pod = wait_exists(&ns, "pod/rs-build");
    {
        // Held while restarting so no other test sees a half-started operator.
        let mut g = e.operator();
        g.as_mut().unwrap().restart().unwrap();
    }
    // The restarted operator must adopt the running build: finishing it makes the artifact
    // Ready, and there was only ever one pod.
    finish_build(&ns, "rs");
    wait_phase(&ns, "rs", "Ready");
    let pods = build_pods(&ns, "rs");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(uid(&pods[0]), uid(&pod), "the builder pod was replaced");
}

#[test]
fn deleting_the_artifact_removes_its_children() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("delete");
    apply_artifact(&ns, "gone", "");
    wait_phase(&ns, "gone", "Building");
    for what in [
        "pod/gone-build",
        "persistentvolumeclaim/gone-artifacts",
        "configmap/gone",
    ] {
        wait_exists(&ns, what);
    }
    let out = ns.k(&[
        "delete",
        "osartifact",
        "gone",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(out.success, "{out}");
    // The garbage collector (kube-controller-manager) removes the owned children.
    let kinds = "pods,configmaps,persistentvolumeclaims,secrets,jobs";
    osartifact_e2e::wait::poll(
        "the children to be garbage-collected",
        std::time::Duration::from_secs(90),
        |last| {
            let out = ns.k(&[
                "get",
                kinds,
                "-l",
                "build.kairos.io/artifact=gone",
                "-o",
                "name",
            ]);
            assert!(out.success, "{out}");
            *last = out.stdout.clone();
            Ok(out.stdout.trim().is_empty().then_some(()))
        },
    )
    .unwrap();
}
