//! The CRD's CEL rules refuse the worst specs on their own: before the webhook is installed,
//! and after it is uninstalled. While the configurations are registered and the webhook is
//! down, requests fail closed (failurePolicy: Fail). One sequential test: the webhook's state
//! is global to the cluster.

//!
//! For every invalid file (in e2e/testdata/, and the invalid twin of every example), the field
//! paths kubectl prints are the same with the webhook installed and uninstalled, each fault CEL
//! catches is one the webhook reports at the same path with the same reason, and where CEL
//! catches nothing the webhook's paths are those of `osartifact-webhook check -f`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use osartifact_e2e::{env, paths};

/// The CRD's rules give the webhook's field path and text (see cel_and_webhook_agree).
const CEL_LINES: &[&str] = &[
    r#"spec.baseImageDockerfile: Forbidden: may not be set together with spec.imageName: set exactly one of spec.imageName (a pre-built image) and spec.baseImageDockerfile (a Dockerfile in a Secret)"#,
    r#"spec.volumes[0].name: Invalid value: "artifacts": reserved for the builder's own volumes (artifacts, rootfs, config, dockerfile, cloudconfig); choose another name"#,
    r#"spec.volumeBindings.overlayISO: Invalid value: "iso-extra": no volume of that name in spec.volumes"#,
];

/// kubectl's and `check -f`'s words for each kind of field error.
const ERROR_TYPES: &[&str] = &[
    "Invalid value",
    "Required value",
    "Forbidden",
    "Not found",
    "Duplicate value",
    "Unsupported value",
    "Too long",
    "Too many",
    "unknown field",
];

/// `object name → field path → error type` of every field error in `text`: kubectl's refusal
/// (`The OSArtifact "x" is invalid: …`, one `* …` line per error when there are several) or the
/// lines of `check -f` (`file: OSArtifact ns/x: spec.y: Required value: …`).
fn field_errors(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut object = String::new();
    for line in text.lines() {
        if line.starts_with("warning:") {
            continue;
        }
        let mut rest = line.trim_start_matches("* ");
        if let Some(i) = rest.find("The OSArtifact \"") {
            let after = &rest[i + "The OSArtifact \"".len()..];
            object = after.split('"').next().unwrap_or_default().to_string();
            rest = after.split_once(" is invalid: ").map(|x| x.1).unwrap_or("");
        } else if let Some((_, after)) = line.split_once(": OSArtifact ") {
            let (who, r) = after.split_once(": ").unwrap_or((after, ""));
            object = who.rsplit('/').next().unwrap_or_default().to_string();
            rest = r;
        }
        let Some((path, body)) = rest.split_once(": ") else {
            continue;
        };
        let is_path = ["spec", "metadata", "apiVersion"]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}.")));
        if let Some(t) = ERROR_TYPES.iter().find(|t| body.starts_with(**t))
            && is_path
        {
            out.entry(object.clone())
                .or_default()
                .insert(path.to_string(), t.to_string());
        }
    }
    out
}

/// Every invalid input: the files of e2e/testdata/ that `check -f` denies, and the invalid twin
/// of each example (its OSArtifacts only) written into `dir`.
fn invalid_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(paths::workspace().join("e2e/testdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(paths::workspace().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    examples.sort();
    std::fs::create_dir_all(dir).unwrap();
    for ex in examples {
        let text = std::fs::read_to_string(&ex).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        let twins: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "OSArtifact")
            .map(|d| osartifact_shared::manifest::invalid_twin(d).to_string())
            .collect();
        let stem = ex.file_stem().unwrap().to_string_lossy().to_string();
        let twin = dir.join(format!("{stem}-invalid.yaml"));
        std::fs::write(&twin, twins.join("\n---\n")).unwrap();
        files.push(twin);
    }
    files.sort();
    files.retain(|f| check(f).0 == Some(1));
    files
}

/// `osartifact-webhook check -f FILE`: exit code and output.
fn check(file: &std::path::Path) -> (Option<i32>, String) {
    let bin = paths::product_binary("osartifact-webhook").unwrap();
    let out = std::process::Command::new(bin)
        .args(["check", "-f"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

type Seen = BTreeMap<PathBuf, BTreeMap<String, BTreeMap<String, String>>>;

/// What a server-side dry-run apply of each file prints, as field errors. With the webhook
/// installed every file is refused; without it, those CEL does not catch are admitted.
fn apply_all(ns: &osartifact_e2e::env::Ns, files: &[PathBuf], webhook: bool) -> Seen {
    files
        .iter()
        .map(|f| {
            let out = ns.k(&["apply", "--dry-run=server", "-f", &f.display().to_string()]);
            let errors = field_errors(&out.stderr);
            assert_eq!(out.success, errors.is_empty(), "{}:\n{out}", f.display());
            assert!(!webhook || !out.success, "{} admitted:\n{out}", f.display());
            (f.clone(), errors)
        })
        .collect()
}

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
        for m in CEL_LINES {
            assert!(
                out.stderr.lines().any(|l| l.ends_with(m)),
                "missing {m:?}:\n{out}"
            );
        }
        assert!(!out.stderr.contains("admission webhook"), "{out}");
    };
    let invalid = invalid_files(&e.data_dir.join("invalid-twins"));
    assert!(invalid.len() > 10, "{invalid:?}");

    // 1. No webhook registered: CEL alone.
    let out = ns.k(&["apply", "-f", &file]);
    assert_cel(&out);
    let without = apply_all(&ns, &invalid, false);
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
        let with = apply_all(&ns, &invalid, true);
        cel_and_webhook_agree(&invalid, &without, &with);
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
    assert_eq!(
        apply_all(&ns, &invalid, false),
        without,
        "uninstalled: not the same field errors as before the webhook was installed"
    );
    // Every CEL error names its field (a rule without fieldPath on the root prints `<nil>`).
    assert!(
        !out.stderr.contains("<nil>"),
        "a CEL error without a field:\n{out}"
    );
}

/// The comparison of the issue: per invalid file, CEL's field errors (webhook not installed)
/// against the refusal with the webhook installed and against `check -f`.
fn cel_and_webhook_agree(files: &[PathBuf], without: &Seen, with: &Seen) {
    let mut cel_files = 0;
    for f in files {
        let (cel, hook) = (&without[f], &with[f]);
        let (_, checked) = check(f);
        let webhook = field_errors(&checked);
        if cel.is_empty() {
            // CEL lets it through: what the user sees is the webhook's, as `check -f` prints it.
            assert_eq!(hook, &webhook, "{}: apply vs check -f", f.display());
            continue;
        }
        cel_files += 1;
        // The apiserver refuses before it calls the webhook: the same refusal either way.
        assert_eq!(hook, cel, "{}: with vs without the webhook", f.display());
        for (object, errors) in cel {
            for (path, kind) in errors {
                let theirs = webhook.get(object).and_then(|w| w.get(path));
                // A CRD rule has no FieldValueNotFound: Invalid stands in for it.
                let same = theirs == Some(kind)
                    || (theirs.map(String::as_str) == Some("Not found") && kind == "Invalid value");
                assert!(
                    same,
                    "{}: CEL reports {object} {path}: {kind}; the webhook {theirs:?}\ncheck -f:\n{checked}",
                    f.display()
                );
            }
        }
    }
    assert!(cel_files >= 10, "CEL refused only {cel_files} files");
}
