//! An upgrade from the parent commit's manifests to the current ones, on the loopback control
//! plane: `manifests/default` of `HEAD~1` (from git; CI checks out the whole history) is
//! applied as a user installed it, OSArtifacts are built to `Ready` under it, then the current
//! `manifests/default` is applied over it with the operator stopped, as a rollout replaces its
//! Pod; the restarted operator takes the artifacts over: the CRD still serves them with their
//! status, and a finished artifact is not built again (same builder Pod, same status).
//!
//! The webhook configurations are left out of both installs: the apiserver here cannot reach a
//! Service, and admission through an installed webhook is tested elsewhere (flux.rs, argo.rs).
//! The operator is the current binary throughout; what changes is the install.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use osartifact_e2e::artifacts::{finish_build, wait_phase};
use osartifact_e2e::gitops;
use osartifact_e2e::{env, paths};
use serde_json::Value;

/// `kubectl kustomize DIR/manifests/default` without the webhook configurations.
fn install_objects(root: &Path) -> String {
    let objs = gitops::kustomize(&root.join("manifests/default")).expect("kubectl kustomize");
    let kept: Vec<String> = objs
        .iter()
        .filter(|o| {
            !o["kind"]
                .as_str()
                .is_some_and(|k| k.ends_with("WebhookConfiguration"))
        })
        .map(Value::to_string)
        .collect();
    assert!(kept.len() > 10, "{kept:?}");
    kept.join("\n---\n")
}

fn apply(objects: &str, what: &str) {
    env()
        .k()
        .run_stdin(&["apply", "-f", "-"], Some(objects))
        .and_then(|o| o.ok())
        .unwrap_or_else(|e| panic!("applying {what}: {e:#}"));
}

#[test]
fn the_current_install_takes_over_artifacts_built_under_the_parent_commits() {
    let e = env();
    let ws = paths::workspace();
    let old = e.data_dir.join("parent");
    std::fs::create_dir_all(&old).expect("dir");
    let parent = Command::new("git")
        .args(["rev-parse", "--verify", "HEAD~1"])
        .current_dir(&ws)
        .output()
        .expect("git");
    assert!(
        parent.status.success(),
        "the parent commit is needed (a shallow clone has none): {}",
        String::from_utf8_lossy(&parent.stderr)
    );
    let parent = String::from_utf8_lossy(&parent.stdout).trim().to_string();
    let archive = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive {parent} manifests | tar -x -C '{}'",
            ws.display(),
            old.display()
        ))
        .output()
        .expect("git archive");
    assert!(
        archive.status.success(),
        "{}",
        String::from_utf8_lossy(&archive.stderr)
    );

    apply(
        &install_objects(&old),
        "the parent commit's manifests/default",
    );

    let ns = e.namespace("upgrade");
    let mut operator = e.operator();
    let artifact = "upgrade-iso";
    let yaml = format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata:\n  name: {artifact}\nspec:\n  imageName: quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.4.2\n  iso: true\n"
    );
    ns.k_stdin(&["apply", "-f", "-"], Some(&yaml))
        .ok()
        .expect("an OSArtifact");
    wait_phase(&ns, artifact, "Building");
    finish_build(&ns, artifact);
    let before = wait_phase(&ns, artifact, "Ready");
    let pod_before = ns
        .get(&["pod", &format!("{artifact}-build")])
        .expect("the builder pod");

    // The upgrade: the operator's Pod goes while the new objects are applied, a new one starts.
    operator.as_mut().expect("operator").stop();
    apply(&install_objects(&ws), "the current manifests/default");
    operator
        .as_mut()
        .expect("operator")
        .restart()
        .expect("restart");
    drop(operator);
    // Time for the restarted operator to list everything and reconcile it.
    std::thread::sleep(Duration::from_secs(8));

    let after = ns
        .get(&["osartifact", artifact])
        .expect("the OSArtifact stays");
    assert_eq!(
        after["status"], before["status"],
        "status changed by the upgrade"
    );
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    let pod_after = ns
        .get(&["pod", &format!("{artifact}-build")])
        .expect("the builder pod");
    assert_eq!(
        pod_after["metadata"]["uid"], pod_before["metadata"]["uid"],
        "the finished build was started again"
    );
    let pods = ns.get(&["pods"]).expect("pods");
    assert_eq!(
        pods["items"].as_array().map(Vec::len),
        Some(1),
        "new pods after the upgrade: {pods}"
    );
}
