//! The operator drives an artifact through its phases with real children, and reports build
//! and exporter failures in status and Events.

use osartifact_e2e::artifacts::*;
use osartifact_e2e::{env, paths};

fn testdata(name: &str) -> String {
    paths::workspace()
        .join("e2e/testdata")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn pending_building_exporting_ready() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("lifecycle");
    let out = ns.k(&["apply", "-f", &testdata("lifecycle.yaml")]);
    assert!(out.success, "{out}");

    let a = wait_phase(&ns, "lifecycle", "Building");
    assert_eq!(
        a["status"]["builderPod"], "lifecycle-build",
        "{}",
        a["status"]
    );
    assert_eq!(
        a["status"]["artifactsPvc"], "lifecycle-artifacts",
        "{}",
        a["status"]
    );
    for what in [
        "persistentvolumeclaim/lifecycle-artifacts",
        "configmap/lifecycle",
        "secret/lifecycle-rendered-dockerfile",
        "pod/lifecycle-build",
    ] {
        let obj = wait_exists(&ns, what);
        assert_owned(&obj, &a);
        assert_eq!(
            obj["metadata"]["annotations"]["build.kairos.io/generation"], "1",
            "{what}"
        );
    }
    // The rendered Dockerfile has the template values in it.
    let s = ns
        .get(&["secret", "lifecycle-rendered-dockerfile"])
        .unwrap();
    let rendered = s["data"]["Dockerfile"].as_str().unwrap();
    use base64::Engine;
    let rendered = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(rendered)
            .unwrap(),
    )
    .unwrap();
    assert!(
        rendered.contains("FROM quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0"),
        "{rendered}"
    );
    // No exporter before the build finished.
    assert!(ns.get(&["job", "lifecycle-export-0"]).is_none());

    finish_build(&ns, "lifecycle");
    let a = wait_phase(&ns, "lifecycle", "Exporting");
    let job = wait_exists(&ns, "job/lifecycle-export-0");
    assert_owned(&job, &a);
    let vols = job["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(vols.contains("lifecycle-artifacts"), "{vols}");

    finish_export(&ns, "lifecycle-export-0");
    let a = wait_phase(&ns, "lifecycle", "Ready");
    let arts = a["status"]["artifacts"].to_string();
    assert!(arts.contains("lifecycle.iso"), "{}", a["status"]);
    assert_eq!(a["status"]["observedGeneration"], 1);
    let ready = a["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{}", a["status"]);
    let ev = wait_event(&ns, "lifecycle", "a Ready event", |e| e.contains(" Ready"));
    for phase in ["Building", "Exporting", "Ready"] {
        assert!(
            ev.iter().any(|e| e.contains(&format!(" {phase}:"))),
            "no {phase} event: {ev:?}"
        );
    }
    // kubectl shows the phase.
    let out = ns.k(&["get", "osartifact", "lifecycle"]);
    assert!(out.stdout.contains("Ready"), "{out}");
}

#[test]
fn failed_build_is_an_error_with_reason_and_event() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("buildfail");
    let out = ns.k(&["apply", "-f", &testdata("lifecycle.yaml")]);
    assert!(out.success, "{out}");
    wait_phase(&ns, "lifecycle", "Building");
    wait_exists(&ns, "pod/lifecycle-build");
    fail_build(&ns, "lifecycle", "buildah", 2, "unauthorized: pull denied");
    let a = wait_phase(&ns, "lifecycle", "Error");
    let msg = a["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("(buildah) failed"), "{msg}");
    assert!(msg.contains("exit code 2"), "{msg}");
    assert!(msg.contains("kubectl logs"), "{msg}");
    wait_event(&ns, "lifecycle", "a BuildFailed warning event", |e| {
        e.starts_with("Warning BuildFailed:") && e.contains("(buildah) failed")
    });
    // No exporter after a failed build.
    assert!(ns.get(&["job", "lifecycle-export-0"]).is_none());
}

#[test]
fn failed_exporter_is_an_error_with_reason_and_event() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("exportfail");
    let out = ns.k(&["apply", "-f", &testdata("lifecycle.yaml")]);
    assert!(out.success, "{out}");
    wait_phase(&ns, "lifecycle", "Building");
    wait_exists(&ns, "pod/lifecycle-build");
    finish_build(&ns, "lifecycle");
    wait_phase(&ns, "lifecycle", "Exporting");
    wait_exists(&ns, "job/lifecycle-export-0");
    fail_export(&ns, "lifecycle-export-0", "upload refused by the server");
    let a = wait_phase(&ns, "lifecycle", "Error");
    let msg = a["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("exporter 0 (Job lifecycle-export-0) failed"),
        "{msg}"
    );
    // The job controller's reason and message for a failed pod under backoffLimit 0.
    assert!(msg.contains("BackoffLimitExceeded"), "{msg}");
    // The build succeeded: its files stay listed for the user to fetch or export again.
    let files = &a["status"]["artifacts"];
    assert!(
        files
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "lifecycle.iso")),
        "{a}"
    );
    wait_event(&ns, "lifecycle", "an ExportFailed warning event", |e| {
        e.starts_with("Warning ExportFailed:") && e.contains("lifecycle-export-0")
    });
}

#[test]
fn the_leader_reports_ready_once_its_watches_have_synced() {
    let e = env();
    let port = e
        .operator()
        .as_ref()
        .map(|o| o.admin_port)
        .expect("the operator runs");
    // The Deployment's readiness probe: 200 once the lease is held and the caches are filled.
    let body = osartifact_e2e::wait::poll(
        "the operator's /readyz to answer 200",
        std::time::Duration::from_secs(30),
        |last| {
            let (code, body) = osartifact_e2e::http::get_local(port, "/readyz")?;
            *last = format!("{code} {body}");
            Ok((code == 200).then_some(body))
        },
    )
    .unwrap();
    assert!(body.contains("ready"), "{body}");
    let (code, _) = osartifact_e2e::http::get_local(port, "/livez").unwrap();
    assert_eq!(code, 200);
}

/// An ISO build with one exporter, a name override, a deadline and a retention policy.
fn deadline_artifact(name: &str, timeout: &str, retention: &str) -> String {
    format!(
        r#"apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata:
  name: {name}
spec:
  imageName: quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0
  iso: true
  nameOverride:
    iso: kairos-live
  buildTimeout: {timeout}
  volumeRetention: {retention}
  exporters:
  - template:
      spec:
        restartPolicy: Never
        containers:
        - name: upload
          image: quay.io/curl/curl
          command: ["sh", "-ec", "sleep 3600"]
          volumeMounts:
          - name: artifacts
            readOnly: true
            mountPath: /artifacts
"#
    )
}

#[test]
fn an_exporter_past_its_deadline_is_an_error_and_name_overrides_reach_the_status() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("deadline");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&deadline_artifact("dl", "8s", "Delete")),
    );
    assert!(out.success, "{out}");
    wait_phase(&ns, "dl", "Building");
    let pod = wait_exists(&ns, "pod/dl-build");
    assert_eq!(pod["spec"]["activeDeadlineSeconds"], 8, "{}", pod["spec"]);
    let done = &pod["spec"]["containers"][0];
    assert_eq!(done["name"], "done");
    assert_eq!(
        done["args"],
        serde_json::json!(["dl.tar", "kairos-live.iso", "kairos-live.iso.sha256"]),
        "done checks the overridden names"
    );

    finish_build(&ns, "dl");
    let a = wait_phase(&ns, "dl", "Exporting");
    assert_eq!(
        a["status"]["artifacts"],
        serde_json::json!(["dl.tar", "kairos-live.iso", "kairos-live.iso.sha256"]),
        "{}",
        a["status"]
    );
    let job = wait_exists(&ns, "job/dl-export-0");
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 8, "{}", job["spec"]);
    // Nothing finishes the exporter's pod: the job controller fails the Job at its deadline.
    let a = wait_phase(&ns, "dl", "Error");
    let msg = a["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(
            "exporter 0 (Job dl-export-0) ran longer than its deadline of 8s (activeDeadlineSeconds 8) and was stopped"
        ),
        "{msg}"
    );
    let ready = a["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["reason"], "DeadlineExceeded", "{}", a["status"]);
    wait_event(&ns, "dl", "a DeadlineExceeded warning event", |e| {
        e.starts_with("Warning DeadlineExceeded:") && e.contains("dl-export-0")
    });
}

#[test]
fn a_retained_pvc_outlives_its_artifact_with_its_labels_and_no_owner() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("retain");
    for (name, retention) in [("kept", "Retain"), ("gone", "Delete")] {
        let out = ns.k_stdin(
            &["apply", "-f", "-"],
            Some(&deadline_artifact(name, "1h", retention)),
        );
        assert!(out.success, "{out}");
    }
    let kept = wait_phase(&ns, "kept", "Building");
    let uid = kept["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pvc = wait_exists(&ns, "persistentvolumeclaim/kept-artifacts");
    assert!(
        pvc["metadata"].get("ownerReferences").is_none(),
        "{}",
        pvc["metadata"]
    );
    let gone = wait_phase(&ns, "gone", "Building");
    assert_owned(
        &wait_exists(&ns, "persistentvolumeclaim/gone-artifacts"),
        &gone,
    );

    for name in ["kept", "gone"] {
        let out = ns.k(&["delete", "osartifact", name, "--wait=true"]);
        assert!(out.success, "{out}");
    }
    // The garbage collector deletes the owned PVC; the retained one stays, labelled.
    ns.wait_for(
        &["persistentvolumeclaims"],
        "only the retained PVC to be left",
        PHASE_TIMEOUT,
        |v| {
            // An owned PVC may wait for pvc-protection with a deletionTimestamp: it is going.
            let live: Vec<_> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
                .collect();
            live.len() == 1 && live[0]["metadata"]["name"] == "kept-artifacts"
        },
    );
    let pvc = ns
        .get(&["persistentvolumeclaim", "kept-artifacts"])
        .unwrap();
    let labels = &pvc["metadata"]["labels"];
    assert_eq!(labels["build.kairos.io/artifact"], "kept", "{labels}");
    assert_eq!(
        labels["build.kairos.io/artifact-uid"],
        uid.as_str(),
        "{labels}"
    );
    assert!(pvc["metadata"].get("ownerReferences").is_none());
}
