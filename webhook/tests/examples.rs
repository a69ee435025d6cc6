//! Every file in examples/ passes `osartifact-webhook check` (the CLI contract), and a broken
//! spec is denied with every problem on its own line.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osartifact-webhook"));
    cmd.arg("check").args(args).current_dir(root());
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn osartifact-webhook");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn every_example_is_admissible() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("examples/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in &files {
        let (code, out) = check(&["-f", f], None);
        assert_eq!(code, 0, "{f}:\n{out}");
        assert!(!out.contains("warning:"), "{f} has warnings:\n{out}");
        assert!(
            out.contains("1 OSArtifact(s) checked, 1 admissible"),
            "{f}:\n{out}"
        );
    }
}

#[test]
fn all_examples_at_once_resolve_their_secrets() {
    let mut args = Vec::new();
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        args.push("-f".to_string());
        args.push(p.to_string_lossy().into_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out) = check(&args, None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_broken_spec_is_denied_line_by_line_from_stdin() {
    let yaml = r#"
apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {name: broken}
spec:
  imageName: "quay.io/kairos/@flavor:@flavorRelease-core-amd64-generic-master"
  iso: true
  diskSize: "32GB"
  volumes:
  - {name: data, emptyDir: {}}
  - {name: data, emptyDir: {}}
  volumeBindings:
    overlayISO: iso-extra
"#;
    let (code, out) = check(&["-f", "-"], Some(yaml));
    assert_eq!(code, 1, "{out}");
    for line in [
        "<stdin>: OSArtifact default/broken: spec.imageName: Invalid value: \"quay.io/kairos/@flavor:@flavorRelease-core-amd64-generic-master\": \"@flavor\" and \"@flavorRelease\" are placeholders",
        "<stdin>: OSArtifact default/broken: spec.diskSize: Invalid value: \"32GB\": must be a positive whole number of megabytes",
        "<stdin>: OSArtifact default/broken: spec.volumes[1].name: Duplicate value: \"data\"",
        "<stdin>: OSArtifact default/broken: spec.volumeBindings.overlayISO: Not found: \"iso-extra\": no volume of that name in spec.volumes",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "missing {line:?} in:\n{out}"
        );
    }
}

#[test]
fn unreadable_input_exits_2() {
    let (code, _) = check(&["-f", "does-not-exist.yaml"], None);
    assert_eq!(code, 2);
    let (code, _) = check(&["-f", "-"], Some("a: [unclosed"));
    assert_eq!(code, 2);
}
