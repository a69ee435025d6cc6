//! The CRD's CEL rules refuse the worst specs on their own: before the webhook is installed,
//! and after it is uninstalled. While the configurations are registered and the webhook is
//! down, requests fail closed (failurePolicy: Fail). One sequential test: the webhook's state
//! is global to the cluster.

use osartifact_e2e::{env, paths};

const CEL_MESSAGES: &[&str] = &[
    "exactly one of spec.imageName and spec.baseImageDockerfile must be set",
    "volume names artifacts, rootfs, config, dockerfile and cloudconfig are reserved for the builder",
    "volumeBindings.overlayISO must name a volume in spec.volumes",
];

#[test]
fn cel_rules_refuse_the_worst_specs_without_the_webhook() {
    let e = env();
    let ns = e.namespace("cel");
    let file = paths::workspace()
        .join("e2e/testdata/cel-worst.yaml")
        .display()
        .to_string();

    let assert_cel = |out: &osartifact_e2e::kubectl::Output| {
        assert!(!out.success, "admitted:\n{out}");
        assert!(
            out.stderr
                .contains(r#"The OSArtifact "cel-worst" is invalid: "#),
            "{out}"
        );
        for m in CEL_MESSAGES {
            assert!(out.stderr.contains(m), "missing {m:?}:\n{out}");
        }
        assert!(!out.stderr.contains("admission webhook"), "{out}");
    };

    // 1. No webhook registered: CEL alone.
    let out = ns.k(&["apply", "-f", &file]);
    assert_cel(&out);
    let out = ns.k(&["apply", "--dry-run=server", "-f", &file]);
    assert_cel(&out);

    // 2. Webhook up: schema and CEL validation run before validating webhooks, so the same
    //    CEL refusal comes back; a valid spec is admitted (the webhook answers).
    {
        let g = e.webhook();
        let w = g.as_ref().unwrap();
        let out = ns.k(&["apply", "-f", &file]);
        assert_cel(&out);
        let valid = paths::workspace()
            .join("examples/iso.yaml")
            .display()
            .to_string();
        let out = ns.k(&["apply", "--dry-run=server", "-f", &valid]);
        assert!(out.success, "{out}");
        let port = w.port;
        drop(g);

        // 3. Webhook stopped, configurations still registered: fails closed.
        let mut g = e.webhook();
        g.as_mut().unwrap().stop();
        let out = ns.k(&["apply", "-f", &file]);
        assert!(!out.success, "{out}");
        assert!(
            out.stderr.contains("failed calling webhook")
                && out.stderr.contains(&format!("127.0.0.1:{port}")),
            "{out}"
        );
        let out = ns.k(&["apply", "-f", &valid]);
        assert!(!out.success, "admitted while the webhook is down:\n{out}");
        assert!(out.stderr.contains("failed calling webhook"), "{out}");
    }

    // 4. Webhook uninstalled: CEL still refuses.
    let out = e
        .k()
        .run(&[
            "delete",
            "validatingwebhookconfiguration/osartifact-validating",
            "mutatingwebhookconfiguration/osartifact-mutating",
        ])
        .unwrap();
    assert!(out.success, "{out}");
    let out = osartifact_e2e::wait::poll(
        "the apiserver to drop the webhook configurations",
        std::time::Duration::from_secs(30),
        |last| {
            let o = ns.k(&["apply", "--dry-run=server", "-f", &file]);
            *last = o.to_string();
            Ok((!o.stderr.contains("failed calling webhook")).then_some(o))
        },
    )
    .unwrap();
    assert_cel(&out);
    let out = ns.k(&["apply", "-f", &file]);
    assert_cel(&out);
    // Every CEL error names its field (a rule without fieldPath on the root prints `<nil>`).
    assert!(
        !out.stderr.contains("<nil>"),
        "a CEL error without a field:\n{out}"
    );
}
