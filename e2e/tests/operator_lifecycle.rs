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
