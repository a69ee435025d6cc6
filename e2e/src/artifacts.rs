//! Helpers for operator scenarios: stand in for the kubelet and the job controller by
//! patching status subresources as admin, and wait for artifact phases.

use std::time::Duration;

use serde_json::{Value, json};

use crate::env::Ns;
use crate::kubectl::Output;

/// How long a phase change may take (the operator reacts to watches; this is generous for a
/// loaded 2-core machine).
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

fn patch_status(ns: &Ns, what: &str, patch: &Value) -> Output {
    let p = patch.to_string();
    ns.k(&[
        "patch",
        what,
        "--subresource=status",
        "--type=merge",
        "-p",
        &p,
    ])
}

/// Marks the builder pod of `artifact` Succeeded.
pub fn finish_build(ns: &Ns, artifact: &str) {
    let out = patch_status(
        ns,
        &format!("pod/{artifact}-build"),
        &json!({"status": {"phase": "Succeeded"}}),
    );
    assert!(out.success, "{out}");
}

/// Marks the builder pod Failed at init container `step` with `exit_code` and `message`.
pub fn fail_build(ns: &Ns, artifact: &str, step: &str, exit_code: i32, message: &str) {
    let out = patch_status(
        ns,
        &format!("pod/{artifact}-build"),
        &json!({"status": {"phase": "Failed", "initContainerStatuses": [{
            "name": step, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": "Error", "message": message}}
        }]}}),
    );
    assert!(out.success, "{out}");
}

/// The kube-controller-manager's job controller owns Job status, so an exporter is finished
/// the way a kubelet would: its pod's phase is set, and the job controller sets the Job's
/// conditions. Waits for the pod the job controller creates.
fn set_job_pod_phase(ns: &Ns, job: &str, phase: &str, exit_code: i32, message: &str) {
    let sel = format!("batch.kubernetes.io/job-name={job}");
    let pod = ns.wait_for(
        &["pods", "-l", &sel],
        &format!("a pod of Job {job}"),
        PHASE_TIMEOUT,
        |v| v["items"].as_array().is_some_and(|a| !a.is_empty()),
    );
    let name = pod["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let container = pod["items"][0]["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = patch_status(
        ns,
        &format!("pod/{name}"),
        &json!({"status": {"phase": phase, "containerStatuses": [{
            "name": container, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 { "Completed" } else { "Error" }, "message": message}}
        }]}}),
    );
    assert!(out.success, "{out}");
}

/// Marks exporter Job `job` succeeded (through its pod; the job controller sets Complete).
pub fn finish_export(ns: &Ns, job: &str) {
    set_job_pod_phase(ns, job, "Succeeded", 0, "");
}

/// Marks exporter Job `job` failed (its pod fails; with backoffLimit 0 the job controller
/// sets Failed, reason BackoffLimitExceeded).
pub fn fail_export(ns: &Ns, job: &str, message: &str) {
    set_job_pod_phase(ns, job, "Failed", 1, message);
}

/// Waits until the artifact's `status.phase` is `phase`; returns the artifact.
pub fn wait_phase(ns: &Ns, artifact: &str, phase: &str) -> Value {
    ns.wait_for(
        &["osartifact", artifact],
        &format!("{artifact} to reach phase {phase}"),
        PHASE_TIMEOUT,
        |a| a["status"]["phase"] == phase,
    )
}

/// Waits until the object exists; returns it.
pub fn wait_exists(ns: &Ns, what: &str) -> Value {
    ns.wait_for(&[what], &format!("{what} to exist"), PHASE_TIMEOUT, |_| {
        true
    })
}

/// Asserts `obj` is controlled by the artifact `a` and carries its labels.
pub fn assert_owned(obj: &Value, a: &Value) {
    let name = a["metadata"]["name"].as_str().unwrap_or_default();
    let uid = a["metadata"]["uid"].as_str().unwrap_or_default();
    let what = format!(
        "{}/{}",
        obj["kind"].as_str().unwrap_or_default(),
        obj["metadata"]["name"].as_str().unwrap_or_default()
    );
    let refs = obj["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let controller: Vec<&Value> = refs.iter().filter(|r| r["controller"] == true).collect();
    assert_eq!(controller.len(), 1, "{what}: controller refs {refs:?}");
    let r = controller[0];
    assert_eq!(r["kind"], "OSArtifact", "{what}");
    assert_eq!(r["apiVersion"], "build.kairos.io/v1alpha2", "{what}");
    assert_eq!(r["name"], name, "{what}");
    assert_eq!(r["uid"], uid, "{what}");
    assert_eq!(r["blockOwnerDeletion"], true, "{what}");
    let labels = &obj["metadata"]["labels"];
    assert_eq!(
        labels["build.kairos.io/artifact"], name,
        "{what} labels {labels}"
    );
    assert_eq!(
        labels["build.kairos.io/artifact-uid"], uid,
        "{what} labels {labels}"
    );
}

/// The events of `artifact` (`kubectl get events --field-selector involvedObject.name=`),
/// as "Type Reason: message" lines; both core and events.k8s.io events show here.
pub fn events(ns: &Ns, artifact: &str) -> Vec<String> {
    let sel = format!("involvedObject.name={artifact},involvedObject.kind=OSArtifact");
    let v = ns.get(&["events", "--field-selector", &sel]);
    v.and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{} {}: {}",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Waits until an event of the artifact matches `pred`; returns all event lines.
pub fn wait_event(ns: &Ns, artifact: &str, desc: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let r = crate::wait::poll(desc, PHASE_TIMEOUT, |last| {
        let ev = events(ns, artifact);
        *last = ev.join(" | ");
        Ok(ev.iter().any(|e| pred(e)).then_some(ev))
    });
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e:#}"),
    }
}
