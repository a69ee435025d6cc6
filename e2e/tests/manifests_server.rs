//! Every kustomization under manifests/ is accepted by the pinned kube-apiserver:
//! `manifests/tests/dry-run.sh` renders each one and sends it with
//! `kubectl apply --dry-run=server --validate=strict`, so every object is checked against the
//! schemas of the release, with admission, and nothing is persisted (but the CRD and the
//! namespace, which the other objects need).

use osartifact_e2e::{env, paths};

#[test]
fn every_kustomization_passes_server_side_dry_run() {
    let e = env();
    let k = e.k();
    let out = std::process::Command::new("bash")
        .arg(paths::workspace().join("manifests/tests/dry-run.sh"))
        .arg(&k.kubeconfig)
        .env("KUBECTL", &k.bin)
        .current_dir(paths::workspace())
        .output()
        .expect("running manifests/tests/dry-run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "dry-run.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("[manifests/dry-run] ok   crd (client-side apply, Established)"),
        "{stderr}"
    );
    for kustomization in [
        "crd",
        "rbac",
        "operator",
        "webhook",
        "default",
        "cert-manager",
        "nginx",
        "samples",
    ] {
        let line = format!("[manifests/dry-run] ok   {kustomization} (");
        assert!(
            stderr.contains(&line),
            "{kustomization} did not pass:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("kustomizations passed server-side dry-run"),
        "{stderr}"
    );
}
