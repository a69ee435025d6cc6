//! Admission through the real apiserver: examples apply, invalid specs are refused with every
//! field error in kubectl's text, warnings are printed, server dry-run works, defaults are
//! stored and stable, users who could not create Pods are refused, and the apiserver's own
//! per-webhook latency metric is reported.

use std::path::PathBuf;

use osartifact_e2e::webhook::{WEBHOOK_NAMES, webhook_latency_metrics};
use osartifact_e2e::{env, paths};

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(paths::workspace().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no examples found");
    v
}

fn testdata(name: &str) -> String {
    paths::workspace()
        .join("e2e/testdata")
        .join(name)
        .display()
        .to_string()
}

/// The OSArtifact names in a YAML file (documents of kind OSArtifact).
fn artifact_names(path: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs.iter()
        .filter(|d| d["kind"] == "OSArtifact")
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

const SEVERAL_ERRORS: &[&str] = &[
    r#"* spec.diskSize: Invalid value: "abc": must be a positive whole number of megabytes, e.g. "32000""#,
    r#"* spec.netbootURL: Invalid value: "ftp://example.com/boot": must be an http:// or https:// URL without spaces"#,
    r#"* spec.volume.accessModes[0]: Unsupported value: "ReadWriteSometimes": supported values: "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod""#,
];

#[test]
fn every_example_applies_and_reapplies_unchanged() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("examples");
    for f in examples() {
        let file = f.display().to_string();
        let out = ns.k(&["apply", "-f", &file]);
        assert!(out.success, "{} did not apply:\n{out}", f.display());
        let names = artifact_names(&f);
        assert!(!names.is_empty(), "{} has no OSArtifact", f.display());
        for n in &names {
            assert!(
                out.stdout
                    .contains(&format!("osartifact.build.kairos.io/{n} created")),
                "{out}"
            );
        }
        // Defaulting fills absent fields only and is idempotent: the same file again is a no-op.
        let again = ns.k(&["apply", "-f", &file]);
        assert!(again.success, "{again}");
        for n in &names {
            assert!(
                again
                    .stdout
                    .contains(&format!("osartifact.build.kairos.io/{n} unchanged")),
                "second apply of {} changed something:\n{again}",
                f.display()
            );
        }
    }
}

#[test]
fn invalid_spec_is_refused_with_every_field_error() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("invalid");
    let out = ns.k(&["apply", "-f", &testdata("invalid-several-errors.yaml")]);
    assert!(!out.success, "an invalid spec was admitted:\n{out}");
    assert!(
        out.stderr
            .contains(r#"The OSArtifact "several-errors" is invalid: "#),
        "{out}"
    );
    for line in SEVERAL_ERRORS {
        assert!(
            out.stderr.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{}",
            out.stderr
        );
    }
    assert!(
        ns.get(&["osartifact", "several-errors"]).is_none(),
        "refused object was stored"
    );
    // The same with a server-side dry run: same refusal, nothing stored.
    let out = ns.k(&[
        "apply",
        "--dry-run=server",
        "-f",
        &testdata("invalid-several-errors.yaml"),
    ]);
    assert!(!out.success, "{out}");
    for line in SEVERAL_ERRORS {
        assert!(out.stderr.lines().any(|l| l == *line), "{line:?}:\n{out}");
    }
}

#[test]
fn warnings_are_printed() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("warnings");
    let expected = [
        "Warning: spec.diskSize: has no effect without a disk image (cloudImage, azureImage or gceImage)",
        "Warning: spec.netbootURL: has no effect without netboot: true",
    ];
    // On a server dry-run first (warnings come back there too), then for real.
    let out = ns.k(&[
        "apply",
        "--dry-run=server",
        "-f",
        &testdata("warnings.yaml"),
    ]);
    assert!(out.success, "{out}");
    assert!(
        out.stdout
            .contains("osartifact.build.kairos.io/with-warnings created (server dry run)"),
        "{out}"
    );
    for w in expected {
        assert!(out.stderr.lines().any(|l| l == w), "missing {w:?}:\n{out}");
    }
    assert!(ns.get(&["osartifact", "with-warnings"]).is_none());

    let out = ns.k(&["apply", "-f", &testdata("warnings.yaml")]);
    assert!(out.success, "{out}");
    assert!(
        out.stdout
            .contains("osartifact.build.kairos.io/with-warnings created"),
        "{out}"
    );
    for w in expected {
        assert!(out.stderr.lines().any(|l| l == w), "missing {w:?}:\n{out}");
    }
    assert!(ns.get(&["osartifact", "with-warnings"]).is_some());
}

#[test]
fn server_dry_run_of_examples_stores_nothing() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("dryrun");
    for f in examples() {
        let out = ns.k(&["apply", "--dry-run=server", "-f", &f.display().to_string()]);
        assert!(out.success, "{out}");
        for n in artifact_names(&f) {
            assert!(
                out.stdout.contains(&format!(
                    "osartifact.build.kairos.io/{n} created (server dry run)"
                )),
                "{out}"
            );
        }
    }
    let out = ns.k(&["get", "osartifacts", "-o", "name"]);
    assert!(out.success, "{out}");
    assert_eq!(out.stdout.trim(), "", "dry run stored objects");
}

#[test]
fn defaults_are_stored_and_stable() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("defaults");
    let iso = paths::workspace()
        .join("examples/iso.yaml")
        .display()
        .to_string();
    let out = ns.k(&["apply", "-f", &iso]);
    assert!(out.success, "{out}");
    let a = ns.get(&["osartifact", "hello-kairos"]).unwrap();
    let spec = &a["spec"];
    assert_eq!(
        spec["volume"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"]),
        "{spec}"
    );
    assert_eq!(
        spec["volume"]["resources"]["requests"]["storage"], "10Gi",
        "{spec}"
    );
    assert_eq!(spec["cloudConfigRef"]["key"], "userdata", "{spec}");
    assert_eq!(
        spec["exporters"][0]["template"]["spec"]["restartPolicy"], "Never",
        "{spec}"
    );
    let rv = a["metadata"]["resourceVersion"].clone();
    let generation = a["metadata"]["generation"].clone();

    // A second client-side apply sends nothing; server-side apply does send the object, and
    // re-defaulting it must not change the stored object either.
    let out = ns.k(&["apply", "-f", &iso]);
    assert!(out.success, "{out}");
    assert!(
        out.stdout
            .contains("osartifact.build.kairos.io/hello-kairos unchanged"),
        "{out}"
    );
    let out = ns.k(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=e2e",
        "-f",
        &iso,
    ]);
    assert!(out.success, "{out}");
    let first_ssa = ns.get(&["osartifact", "hello-kairos"]).unwrap();
    let out = ns.k(&["apply", "--server-side", "--field-manager=e2e", "-f", &iso]);
    assert!(out.success, "{out}");
    let b = ns.get(&["osartifact", "hello-kairos"]).unwrap();
    assert_eq!(b["metadata"]["generation"], generation, "spec changed");
    assert_eq!(
        b["metadata"]["resourceVersion"], first_ssa["metadata"]["resourceVersion"],
        "a repeated server-side apply changed the object"
    );
    assert_eq!(b["spec"], a["spec"]);
    let _ = rv;
    // kubectl diff reports no difference for the file (exit 0 means no diff).
    let out = ns.k(&["diff", "-f", &iso]);
    assert_eq!(out.code, Some(0), "kubectl diff shows drift:\n{out}");
}

#[test]
fn user_who_cannot_create_pods_is_refused() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("authz");
    // alice may manage OSArtifacts (and Secrets, for the example) but not Pods or Jobs.
    let alice = e.cp.identity("alice", "alice", &["e2e-users"]).unwrap();
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"artifacts-only"},
        "rules":[{"apiGroups":["build.kairos.io"],"resources":["osartifacts"],"verbs":["*"]},
                 {"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}]}"#;
    assert!(ns.k_stdin(&["apply", "-f", "-"], Some(role)).success);
    let out = ns.k(&[
        "create",
        "rolebinding",
        "alice",
        "--role=artifacts-only",
        "--user=alice",
    ]);
    assert!(out.success, "{out}");
    let iso = paths::workspace()
        .join("examples/iso.yaml")
        .display()
        .to_string();
    let out = ns.k_with(&e.k_as(&alice), &["apply", "-f", &iso], None);
    assert!(
        !out.success,
        "alice created an OSArtifact without Pod rights:\n{out}"
    );
    assert!(
        out.stderr.contains("Error from server (Forbidden)")
            && out.stderr.contains(
                r#"admission webhook "validate.osartifacts.build.kairos.io" denied the request: user "alice" may not"#
            )
            && out.stderr.contains(&format!(r#"in namespace "{}""#, ns.name)),
        "{out}"
    );
    assert!(out.stderr.contains("pods"), "{out}");
    assert!(ns.get(&["osartifact", "hello-kairos"]).is_none());

    // bob has the built-in `edit` role (OSArtifacts aggregated into it): admitted.
    let bob = e.cp.identity("bob", "bob", &["e2e-users"]).unwrap();
    let out = ns.k(&[
        "create",
        "rolebinding",
        "bob",
        "--clusterrole=edit",
        "--user=bob",
    ]);
    assert!(out.success, "{out}");
    let out = osartifact_e2e::wait::poll(
        "bob's apply (edit aggregates osartifacts)",
        std::time::Duration::from_secs(30),
        |last| {
            let o = ns.k_with(&e.k_as(&bob), &["apply", "-f", &iso], None);
            *last = o.to_string();
            Ok(o.success.then_some(o))
        },
    )
    .unwrap();
    assert!(
        out.stdout
            .contains("osartifact.build.kairos.io/hello-kairos created"),
        "{out}"
    );
}

#[test]
fn revoked_permission_is_refused_within_the_cache_ttl() {
    use std::time::{Duration, Instant};
    // The webhook's --authorization-cache-ttl default, the documented bound; the slack is the
    // apiserver's own RBAC propagation and the polling interval.
    const TTL: Duration = Duration::from_secs(10);
    const SLACK: Duration = Duration::from_secs(2);
    let e = env();
    let hits = |e: &osartifact_e2e::Env| -> f64 {
        let g = e.webhook();
        let text = g.as_ref().unwrap().metrics().unwrap();
        text.lines()
            .find(|l| l.starts_with("osartifact_webhook_authorization_cache_hits_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    drop(e.webhook());
    let ns = e.namespace("revoke");
    // carol keeps her OSArtifact rights; Pods and Jobs come from a second binding, revoked below.
    let carol = e.cp.identity("carol", "carol", &["e2e-users"]).unwrap();
    let roles = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"artifacts-only"},
         "rules":[{"apiGroups":["build.kairos.io"],"resources":["osartifacts"],"verbs":["*"]},
                  {"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}]},
        {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"pods-and-jobs"},
         "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["create"]},
                  {"apiGroups":["batch"],"resources":["jobs"],"verbs":["create"]}]}]}"#;
    assert!(ns.k_stdin(&["apply", "-f", "-"], Some(roles)).success);
    for (binding, role) in [
        ("carol-artifacts", "artifacts-only"),
        ("carol-pods", "pods-and-jobs"),
    ] {
        let out = ns.k(&[
            "create",
            "rolebinding",
            binding,
            &format!("--role={role}"),
            "--user=carol",
        ]);
        assert!(out.success, "{out}");
    }
    let iso = paths::workspace()
        .join("examples/iso.yaml")
        .display()
        .to_string();
    let apply = || {
        ns.k_with(
            &e.k_as(&carol),
            &["apply", "--dry-run=server", "-f", &iso],
            None,
        )
    };
    osartifact_e2e::wait::poll("carol's first apply", Duration::from_secs(30), |last| {
        let o = apply();
        *last = o.to_string();
        Ok(o.success.then_some(()))
    })
    .unwrap();
    // Answered from the cache now.
    let before = hits(e);
    for _ in 0..3 {
        let out = apply();
        assert!(out.success, "{out}");
    }
    assert!(hits(e) >= before + 3.0, "no cache hits");

    let out = ns.k(&["delete", "rolebinding", "carol-pods"]);
    assert!(out.success, "{out}");
    let revoked = Instant::now();
    let out = loop {
        let o = apply();
        if !o.success || revoked.elapsed() > TTL + SLACK {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = revoked.elapsed();
    eprintln!("[e2e] revoked permission refused again after {took:?} (cache TTL {TTL:?})");
    assert!(
        !out.success,
        "still admitted {took:?} after the revocation:\n{out}"
    );
    assert!(out.stderr.contains(r#"user "carol" may not"#), "{out}");
    assert!(took <= TTL + SLACK, "{took:?}");
}

#[test]
fn apiserver_reports_webhook_latency() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("latency");
    // Some traffic of our own so the figures do not depend on test order.
    for f in examples() {
        let out = ns.k(&["apply", "--dry-run=server", "-f", &f.display().to_string()]);
        assert!(out.success, "{out}");
    }
    let lines = webhook_latency_metrics(&e.cp).unwrap();
    let report = lines.join("\n");
    for name in WEBHOOK_NAMES {
        let count: f64 = lines
            .iter()
            .filter(|l| {
                l.starts_with("apiserver_admission_webhook_admission_duration_seconds_count")
                    && l.contains(&format!("name=\"{name}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(
            count >= examples().len() as f64,
            "{name}: only {count} calls recorded:\n{report}"
        );
        let sum: f64 = lines
            .iter()
            .filter(|l| {
                l.starts_with("apiserver_admission_webhook_admission_duration_seconds_sum")
                    && l.contains(&format!("name=\"{name}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        eprintln!(
            "[e2e] apiserver_admission_webhook_admission_duration_seconds {name}: count={count} sum={sum:.4}s mean={:.2}ms",
            sum / count * 1000.0
        );
    }
    eprintln!("{report}");
    std::fs::write(e.log_dir.join("webhook-latency.txt"), &report).unwrap();
}
