//! What the operator asks of the apiserver, from the apiserver's audit log: children read from
//! its caches (no GET of a Pod, Job, ConfigMap or PVC), each child created once, each status
//! change and each Event written once, also with many artifacts reconciled at the same time.

use std::collections::BTreeMap;

use osartifact_e2e::artifacts::*;
use osartifact_e2e::{audit, env};

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";
const N: usize = 40;

fn artifacts_yaml() -> String {
    (0..N)
        .map(|i| {
            format!(
                "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: req-{i}}}\nspec:\n  imageName: \"{IMAGE}\"\n  iso: true\n  exporters:\n  - template:\n      spec:\n        containers: [{{name: upload, image: \"alpine:3.20\"}}]\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn each_child_and_each_transition_is_written_once_and_nothing_is_read_back() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("requests");
    // All at once, so reconciles run side by side and on copies the watches have not refreshed.
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&artifacts_yaml()));
    assert!(out.success, "{out}");
    for i in 0..N {
        wait_phase(&ns, &format!("req-{i}"), "Building");
    }
    for i in 0..N {
        finish_build(&ns, &format!("req-{i}"));
    }
    for i in 0..N {
        finish_export(&ns, &format!("req-{i}-export-0"));
    }
    for i in 0..N {
        wait_phase(&ns, &format!("req-{i}"), "Ready");
    }
    // The Events are written after the status: wait for the last ones.
    for i in 0..N {
        wait_event(&ns, &format!("req-{i}"), "the Ready Event", |e| {
            e.contains("Ready")
        });
    }

    let requests = audit::read(&e.cp.audit_log).unwrap();
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| r.namespace.as_deref() == Some(ns.name.as_str()))
        .collect();
    let counts = audit::count(ours.iter().copied());
    let expected: BTreeMap<String, usize> = [
        ("create configmaps", N),
        ("create persistentvolumeclaims", N),
        ("create pods", N),
        ("create jobs", N),
        // Building, Exporting, Ready: one write each.
        ("patch osartifacts/status", 3 * N),
        ("create events", 3 * N),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        counts, expected,
        "the operator's requests in the namespace, by verb and resource"
    );
    let failed: Vec<_> = ours
        .iter()
        .filter(|r| r.code.is_some_and(|c| c >= 400))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");

    // The metric counts each artifact's transition once.
    let metrics = e
        .operator()
        .as_ref()
        .map(|o| o.metrics().unwrap())
        .unwrap_or_default();
    for phase in ["Building", "Exporting", "Ready"] {
        let line = format!("osartifact_operator_phase_transitions_total{{phase=\"{phase}\"}}");
        let value = metrics
            .lines()
            .find(|l| l.starts_with(&line))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        // The only test of this binary: exact.
        assert_eq!(value, N as f64, "{line}\n{metrics}");
    }
}
