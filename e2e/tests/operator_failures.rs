//! A missing Secret, a forbidden template, a foreign object in the way and a builder pod refused
//! by Pod Security each end in Error with a message that says how to fix it, and the artifact
//! recovers once fixed, without a retry annotation: the operator follows the Secrets artifacts
//! refer to, and looks again at errors found before the build every 30 seconds.

use osartifact_e2e::artifacts::*;
use osartifact_e2e::env;

fn artifact(name: &str, secret: &str) -> String {
    format!(
        r#"{{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{{"name":"{name}"}},
        "spec":{{"baseImageDockerfile":{{"name":"{secret}","key":"Dockerfile"}},"iso":true}}}}"#
    )
}

fn dockerfile_secret(name: &str, dockerfile: &str) -> String {
    serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":name},
        "stringData":{"Dockerfile":dockerfile}})
    .to_string()
}

fn error_message(a: &serde_json::Value) -> String {
    a["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn missing_secret_then_fixed() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("nosecret");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&artifact("nosecret", "not-yet")),
    );
    assert!(out.success, "{out}");
    // Admission only warns: the Secret may be applied later.
    assert!(
        out.stderr
            .contains(r#"Warning: spec.baseImageDockerfile.name: Secret "not-yet" not found"#),
        "{out}"
    );
    let a = wait_phase(&ns, "nosecret", "Error");
    let msg = error_message(&a);
    assert!(msg.contains("not-yet"), "{msg}");
    wait_event(&ns, "nosecret", "a SecretNotFound event", |e| {
        e.starts_with("Warning SecretNotFound:")
    });
    assert!(ns.get(&["pod", "nosecret-build"]).is_none());

    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&dockerfile_secret(
            "not-yet",
            "FROM quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0\n",
        )),
    );
    assert!(out.success, "{out}");
    // No retry annotation: the new Secret itself starts the build.
    wait_phase(&ns, "nosecret", "Building");
    wait_exists(&ns, "pod/nosecret-build");
}

#[test]
fn forbidden_template_then_fixed() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("template");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&artifact("tpl", "tpl-dockerfile")),
    );
    assert!(out.success, "{out}");
    wait_phase(&ns, "tpl", "Error");
    // The template arrives after the artifact (so admission could not see it) and uses
    // `define`, which the operator refuses.
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&dockerfile_secret(
            "tpl-dockerfile",
            "{{ define \"base\" }}quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0{{ end }}\nFROM {{ template \"base\" }}\n",
        )),
    );
    assert!(out.success, "{out}");
    let a = ns.wait_for(
        &["osartifact", "tpl"],
        "a TemplateError message",
        PHASE_TIMEOUT,
        |a| {
            a["status"]["phase"] == "Error"
                && a["status"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("define")
        },
    );
    let msg = error_message(&a);
    assert!(msg.contains("tpl-dockerfile"), "{msg}");
    wait_event(&ns, "tpl", "a TemplateError event", |e| {
        e.starts_with("Warning TemplateError:")
    });
    assert!(ns.get(&["pod", "tpl-build"]).is_none());

    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&dockerfile_secret(
            "tpl-dockerfile",
            "FROM quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0\n",
        )),
    );
    assert!(out.success, "{out}");
    // Fixing the Secret is enough.
    wait_phase(&ns, "tpl", "Building");
    wait_exists(&ns, "pod/tpl-build");
}

#[test]
fn foreign_object_in_the_way_then_removed() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("inway");
    let out = ns.k(&["create", "configmap", "inway", "--from-literal=mine=yes"]);
    assert!(out.success, "{out}");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&dockerfile_secret(
            "inway-dockerfile",
            "FROM quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0\n",
        )),
    );
    assert!(out.success, "{out}");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(&artifact("inway", "inway-dockerfile")),
    );
    assert!(out.success, "{out}");
    let a = wait_phase(&ns, "inway", "Error");
    let msg = error_message(&a);
    assert!(msg.contains("ConfigMap") && msg.contains("inway"), "{msg}");
    wait_event(&ns, "inway", "an ObjectInTheWay event", |e| {
        e.starts_with("Warning ObjectInTheWay:")
    });
    // Never adopted or overwritten.
    let cm = ns.get(&["configmap", "inway"]).unwrap();
    assert_eq!(cm["data"]["mine"], "yes");
    assert!(cm["metadata"]["ownerReferences"].is_null(), "{cm}");

    let out = ns.k(&["delete", "configmap", "inway"]);
    assert!(out.success, "{out}");
    // The operator looks again on its own (every 30 s); the retry annotation would be at once.
    let a = wait_phase(&ns, "inway", "Building");
    let cm = wait_exists(&ns, "configmap/inway");
    assert_owned(&cm, &a);
}

#[test]
fn builder_pod_refused_by_pod_security_then_allowed() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("psa");
    let level = |l: &str| {
        let out = e.k().run(&[
            "label",
            "namespace",
            &ns.name,
            &format!("pod-security.kubernetes.io/enforce={l}"),
            "--overwrite",
        ]);
        assert!(out.as_ref().is_ok_and(|o| o.success), "{out:?}");
    };
    level("baseline");
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{"name":"psa"},
            "spec":{"imageName":"quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0","cloudImage":true}}"#,
        ),
    );
    assert!(out.success, "{out}");
    // An ISO needs no privilege: its builder pod runs at the baseline level.
    let out = ns.k_stdin(
        &["apply", "-f", "-"],
        Some(
            r#"{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{"name":"iso-only"},
            "spec":{"imageName":"quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0","iso":true}}"#,
        ),
    );
    assert!(out.success, "{out}");
    wait_exists(&ns, "pod/iso-only-build");
    let a = wait_phase(&ns, "psa", "Error");
    let msg = error_message(&a);
    assert!(
        msg.contains("the API refused Pod \"psa-build\"") && msg.contains("PodSecurity"),
        "{msg}"
    );
    wait_event(&ns, "psa", "a Refused event", |e| {
        e.starts_with("Warning Refused:")
    });
    assert!(ns.get(&["pod", "psa-build"]).is_none());

    // Disk images need privileged containers for loop devices (docs/operator.md).
    level("privileged");
    wait_phase(&ns, "psa", "Building");
    wait_exists(&ns, "pod/psa-build");
}
