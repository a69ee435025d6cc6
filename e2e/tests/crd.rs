//! The CRD is accepted with client-side and server-side apply, and `kubectl explain` shows
//! the fields.

use osartifact_e2e::{env, paths};

fn crd_file() -> String {
    paths::workspace()
        .join("manifests/crd/osartifacts.build.kairos.io.yaml")
        .display()
        .to_string()
}

#[test]
fn crd_applies_client_side_and_server_side() {
    let e = env();
    let k = e.k();
    // The environment installed it with client-side `kubectl apply -k`; a second client-side
    // apply must be a no-op, then server-side apply must take ownership of every field.
    let out = k.run(&["apply", "-f", &crd_file()]).unwrap();
    assert!(out.success, "{out}");
    assert!(
        out.stdout.contains(
            "customresourcedefinition.apiextensions.k8s.io/osartifacts.build.kairos.io unchanged"
        ),
        "{out}"
    );
    let out = k
        .run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &crd_file(),
        ])
        .unwrap();
    assert!(out.success, "{out}");
    assert!(
        out.stdout
            .contains("osartifacts.build.kairos.io serverside-applied"),
        "{out}"
    );
    // And server-side on its own (no conflicts left to force).
    let out = k
        .run(&["apply", "--server-side", "-f", &crd_file()])
        .unwrap();
    assert!(out.success, "{out}");
    // Server-side dry-run of the generated file is accepted too (what GitOps diffs do).
    let out = k
        .run(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-f",
            &crd_file(),
        ])
        .unwrap();
    assert!(out.success, "{out}");

    let crd = k.get_json(&["crd", "osartifacts.build.kairos.io"]).unwrap();
    let established = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "CRD not Established: {}", crd["status"]);
    let names = &crd["status"]["acceptedNames"];
    assert_eq!(names["kind"], "OSArtifact");
    assert_eq!(names["plural"], "osartifacts");
}

#[test]
fn kubectl_explain_shows_the_fields() {
    let e = env();
    let k = e.k();
    // kubectl explain reads the published OpenAPI, which lags CRD creation by a moment.
    let out = osartifact_e2e::wait::poll(
        "OSArtifact in the OpenAPI",
        std::time::Duration::from_secs(60),
        |last| {
            let o = k.run(&["explain", "osartifacts.spec"])?;
            *last = o.all();
            Ok(o.success.then_some(o))
        },
    )
    .unwrap();
    assert!(out.stdout.contains("KIND:       OSArtifact"), "{out}");
    assert!(out.stdout.contains("GROUP:      build.kairos.io"), "{out}");
    assert!(out.stdout.contains("VERSION:    v1alpha2"), "{out}");
    for field in ["imageName", "iso", "exporters", "cloudConfigRef", "bundles"] {
        assert!(
            out.stdout.contains(&format!("  {field}\t")),
            "field {field} missing from kubectl explain:\n{out}"
        );
    }
    let out = k.run(&["explain", "osartifacts.spec.imageName"]).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("FIELD: imageName <string>"), "{out}");
    assert!(out.stdout.contains("DESCRIPTION:"), "{out}");
    let out = k.run(&["explain", "osartifacts.status"]).unwrap();
    assert!(out.success, "{out}");
    assert!(out.stdout.contains("phase"), "{out}");
}
