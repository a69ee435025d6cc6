//! Keeps the README (and the docs it links to) true: every command block that can run here
//! runs, against the local control plane with the webhook and the operator running.
//!
//! The convention, also stated in an HTML comment at the top of README.md:
//! - ```` ```sh ```` blocks are run with `bash -euo pipefail` from the workspace root, with the
//!   built `osartifact-operator`/`osartifact-webhook` first on PATH, then the control plane's
//!   kubectl, and `KUBECONFIG` = an admin kubeconfig whose current context defaults to a fresh
//!   namespace. Each must exit 0; the important ones have their output checked
//!   ([`EXPECTATIONS`]). Blocks that install cluster-wide (`manifests/default`) run after all
//!   the others, because they re-point the webhook configurations at an in-cluster Service
//!   that has no endpoints here, after which every OSArtifact write fails closed. A watch
//!   (`kubectl get -w`) is ended after a few seconds, as a reader ends it with Ctrl-C.
//! - ```` ```shell-session ```` blocks are transcripts: each `$ ` line runs the same way and the
//!   lines up to the next `$ ` line must be exactly its stdout.
//! - ```` ```console ```` and ```` ```text ```` blocks are shown only. Each one is listed in
//!   [`SHOWN_ONLY`] with the reason it cannot run here, so that a runnable block cannot be
//!   switched off silently.
//! - Every fence has an info string (a bare ```` ``` ```` is an error).

use std::path::{Path, PathBuf};
use std::process::Command;

use osartifact_e2e::{env, paths};

/// The documents whose code blocks are checked (relative to the workspace root).
const DOCS: &[&str] = &[
    "README.md",
    "docs/install.md",
    "docs/operator.md",
    "docs/webhook.md",
    "docs/templating.md",
    "docs/testing.md",
];

/// Seconds after which a `kubectl ... -w` is interrupted (SIGINT, like Ctrl-C).
const WATCH_SECONDS: u32 = 5;
/// Seconds a block may take.
const BLOCK_TIMEOUT_SECONDS: u32 = 180;

/// Blocks fenced `console` or `text`: (file, a string the block contains, why it is not run).
const SHOWN_ONLY: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "just demo",
        "the top-level command: builds everything and starts its own control plane until Ctrl-C",
    ),
    (
        "README.md",
        "just test",
        "the top-level command: runs every test, this one included",
    ),
    (
        "docs/install.md",
        "rollout status",
        "waits for the Deployments' pods to be ready, which needs nodes (there is no kubelet \
         here); the same `kubectl apply -k manifests/default` runs from README.md",
    ),
    (
        "docs/install.md",
        "just images REGISTRY TAG",
        "builds container images and pushes them to a registry",
    ),
    (
        "docs/install.md",
        "helm install osartifact manifests/helm/osartifact",
        "needs the helm CLI and installs cluster-wide; e2e/tests/helm.rs runs the same install, \
         upgrade and uninstall with the real helm",
    ),
    (
        "docs/install.md",
        "kubectl apply -k manifests/cert-manager",
        "needs cert-manager (its CRDs and controllers) installed in the cluster",
    ),
    (
        "docs/install.md",
        "kubectl apply -k manifests/nginx -n <namespace>",
        "placeholder <namespace>; README.md runs the same command with `-n default`",
    ),
    (
        "docs/install.md",
        "curl http://<node-ip>",
        "downloads through a NodePort, which needs a node; placeholder <node-ip>",
    ),
    (
        "docs/install.md",
        "git pull",
        "needs the repository's remote and would change the working tree",
    ),
    (
        "docs/install.md",
        "kubectl delete osartifacts --all --all-namespaces",
        "its last line has a placeholder (<namespace>)",
    ),
    (
        "docs/operator.md",
        "kubectl annotate osartifact NAME",
        "placeholder NAME; README.md runs the same command on hello-kairos",
    ),
    (
        "docs/operator.md",
        "\"phase\":\"Succeeded\"",
        "placeholders NAME and NS; the operator scenarios run this patch (e2e/src/artifacts.rs)",
    ),
    (
        "docs/operator.md",
        "\"phase\":\"Failed\"",
        "placeholders NAME and NS; the operator scenarios run this patch (e2e/src/artifacts.rs)",
    ),
    (
        "docs/operator.md",
        "ran longer than its deadline",
        "program output: the status messages of a build and an export stopped by their deadline",
    ),
    (
        "docs/operator.md",
        "kubectl patch job NAME-export-0",
        "placeholders NAME and NS; the operator scenarios run these patches (e2e/src/artifacts.rs)",
    ),
    (
        "docs/webhook.md",
        "is invalid:",
        "output of kubectl, not a command",
    ),
    (
        "docs/webhook.md",
        "Error from server (Forbidden)",
        "output of kubectl, not a command",
    ),
    (
        "docs/webhook.md",
        "osartifact-webhook certs bootstrap --out-dir",
        "`serve` runs in the foreground until Ctrl-C, on fixed ports, with a placeholder \
         kubeconfig path; the e2e harness runs the webhook this way (e2e/src/webhook.rs)",
    ),
    (
        "docs/webhook.md",
        "bench-webhook --against",
        "a benchmark: builds the release profile and loads both cores for seconds; run by hand, \
         figures in docs/performance.md",
    ),
    (
        "docs/templating.md",
        "template: Dockerfile:4:2",
        "an error message, not a command",
    ),
    (
        "docs/templating.md",
        "template: Dockerfile:3:12",
        "error messages, not a command",
    ),
    (
        "docs/templating.md",
        "--dockerfile Dockerfile.tmpl",
        "placeholder file names; README.md runs the same command on docs/examples/",
    ),
    (
        "docs/testing.md",
        "cargo test -p osartifact-e2e",
        "runs cargo and the end-to-end suite, this test included",
    ),
];

/// What the output of a run block must show: (file, a string the block contains, a
/// description, the check on its stdout and stderr).
type Check = fn(&str, &str) -> bool;
const EXPECTATIONS: &[(&str, &str, &str, Check)] = &[
    (
        "docs/webhook.md",
        "just webhook-certs target/webhook-certs",
        "the CA and the serving certificate with their keys",
        |out, _| {
            ["ca.crt", "ca.key", "tls.crt", "tls.key"]
                .iter()
                .all(|f| out.contains(f))
        },
    ),
    (
        "README.md",
        "osartifact-webhook check -f examples/iso.yaml",
        "stdout says \"1 admissible\" and \"0 would be denied\"",
        |out, _| out.contains("1 admissible") && out.contains("0 would be denied"),
    ),
    (
        "README.md",
        "osartifact-operator plan -f examples/iso.yaml",
        "a YAML document of kind Pod named hello-kairos-build, and the PVC hello-kairos-artifacts",
        |out, _| {
            out.split("\n---")
                .any(|d| d.contains("\nkind: Pod\n") && d.contains("  name: hello-kairos-build\n"))
                && out.contains("name: hello-kairos-artifacts")
        },
    ),
    (
        "README.md",
        "osartifact-operator render --dockerfile docs/examples/Dockerfile",
        "the rendered Dockerfile: FROM the values file's BaseImage, Version: 2.0.0 from --set",
        |out, _| {
            out.starts_with("FROM quay.io/kairos/")
                && out.contains("RUN zypper install -y vim curl\n")
                && out.contains("Version: 2.0.0")
                && !out.contains("{{")
        },
    ),
    (
        "README.md",
        "kubectl get osartifact hello-kairos -o wide",
        "apply creates the Secret and the OSArtifact; `get -o wide` shows a phase and the \
         MESSAGE column; describe shows conditions",
        |out, _| {
            out.contains("secret/cloud-config created")
                && out.contains("osartifact.build.kairos.io/hello-kairos created")
                && out.contains("MESSAGE")
                && out.lines().any(|l| {
                    l.starts_with("hello-kairos ")
                        && ["Pending", "Building", "Exporting", "Ready", "Error"]
                            .iter()
                            .any(|p| l.split_whitespace().any(|w| w == *p))
                })
                && out.contains("Conditions:")
        },
    ),
    (
        "README.md",
        "build.kairos.io/retry=",
        "kubectl says the artifact was annotated",
        |out, _| out.contains("osartifact.build.kairos.io/hello-kairos annotated"),
    ),
    (
        "README.md",
        "kubectl apply -k manifests/nginx -n default",
        "the nginx Deployment, PVC and Service exist",
        |out, _| {
            out.contains("deployment.apps/kairos-operator-nginx")
                && out.contains("persistentvolumeclaim/kairos-operator-nginx")
                && out.contains("service/kairos-operator-nginx")
        },
    ),
    (
        "README.md",
        "kubectl apply -k manifests/default",
        "the CRD, both Deployments and both webhook configurations are applied",
        |out, _| {
            out.contains("customresourcedefinition.apiextensions.k8s.io/osartifacts.build.kairos.io")
                && out.contains("deployment.apps/osartifact-operator")
                && out.contains("deployment.apps/osartifact-webhook")
                && out.contains(
                    "validatingwebhookconfiguration.admissionregistration.k8s.io/osartifact-validating",
                )
                && out.contains(
                    "mutatingwebhookconfiguration.admissionregistration.k8s.io/osartifact-mutating",
                )
        },
    ),
    (
        "docs/install.md",
        "kubectl apply -k manifests/samples -n default",
        "the sample OSArtifact is created and the watch lists it",
        |out, _| {
            out.contains("osartifact.build.kairos.io/my-kairos-iso created")
                && out.lines().any(|l| l.starts_with("my-kairos-iso "))
        },
    ),
];

/// One fenced code block.
#[derive(Clone, Debug)]
struct Block {
    file: String,
    /// Line of the opening fence (from 1).
    line: usize,
    info: String,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

fn read(rel: &str) -> String {
    let p = paths::workspace().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The fenced code blocks of a Markdown text (also indented ones, e.g. in list items).
fn blocks_of(file: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, Vec<String>)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, indent, info.trim().to_string(), Vec::new()));
                }
            }
            Some((start, ind, info, lines)) => {
                if trimmed.trim_end() == "```" {
                    out.push(Block {
                        file: file.to_string(),
                        line: *start,
                        info: info.clone(),
                        text: lines.join("\n") + "\n",
                    });
                    open = None;
                } else {
                    let cut = line.len() - line.trim_start().len();
                    lines.push(line[cut.min(*ind)..].to_string());
                }
            }
        }
    }
    assert!(open.is_none(), "{file}: a code fence is never closed");
    out
}

fn all_blocks() -> Vec<Block> {
    DOCS.iter().flat_map(|f| blocks_of(f, &read(f))).collect()
}

/// Blocks that install cluster-wide and re-point the webhook configurations.
fn installs_cluster_wide(b: &Block) -> bool {
    b.text.contains("manifests/default") || b.text.contains("manifests/cert-manager")
}

#[test]
fn every_fence_is_classified() {
    let blocks = all_blocks();
    let mut problems = Vec::new();
    let mut used = vec![false; SHOWN_ONLY.len()];
    for b in &blocks {
        match b.info.as_str() {
            "" => problems.push(format!(
                "{}: a fence without an info string; use sh (run by this test), shell-session \
                 (a transcript, run), console or text (shown only, listed in SHOWN_ONLY)",
                b.at()
            )),
            "console" | "text" => {
                let hits: Vec<usize> = SHOWN_ONLY
                    .iter()
                    .enumerate()
                    .filter(|(_, (f, key, _))| *f == b.file && b.text.contains(key))
                    .map(|(i, _)| i)
                    .collect();
                match hits.as_slice() {
                    [i] => used[*i] = true,
                    [] => problems.push(format!(
                        "{}: a ```{} block that is not in SHOWN_ONLY; if it can run here, fence \
                         it ```sh, else list it with the reason:\n{}",
                        b.at(),
                        b.info,
                        b.text
                    )),
                    _ => problems.push(format!("{}: matches several SHOWN_ONLY entries", b.at())),
                }
            }
            _ => {}
        }
    }
    for (i, (f, key, _)) in SHOWN_ONLY.iter().enumerate() {
        if !used[i] {
            problems.push(format!(
                "SHOWN_ONLY entry ({f}, {key:?}) matches no console/text block: remove it, or \
                 the block it names became runnable"
            ));
        }
    }
    let runnable = blocks.iter().filter(|b| b.info == "sh").count();
    assert!(runnable >= 7, "only {runnable} sh blocks found");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn readme_links_point_to_existing_files() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in DOCS {
        let text = read(file);
        let base = paths::workspace().join(file);
        let dir = base.parent().unwrap();
        let mut in_fence = false;
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if in_fence {
                continue;
            }
            for target in link_targets(line) {
                if target.contains("://")
                    || target.starts_with('#')
                    || target.starts_with("mailto:")
                {
                    continue;
                }
                let path = target.split('#').next().unwrap_or_default();
                checked += 1;
                if !dir.join(path).exists() {
                    broken.push(format!("{file}:{}: [..]({target}) — no such file", i + 1));
                }
            }
        }
    }
    assert!(checked > 5, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The targets of inline links `[text](target)` on one line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                let t = after[..j].trim();
                let t = t.split_whitespace().next().unwrap_or_default(); // drop a "title"
                if !t.is_empty() {
                    out.push(t.trim_matches(|c| c == '<' || c == '>').to_string());
                }
                rest = &after[j..];
            }
            None => break,
        }
    }
    out
}

/// Where and how blocks run.
struct Runner {
    path: String,
    kubeconfig: PathBuf,
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Runner {
    fn run(&self, script: &str) -> Ran {
        let out = Command::new("timeout")
            .args([
                "--kill-after=10",
                &BLOCK_TIMEOUT_SECONDS.to_string(),
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script,
            ])
            .current_dir(paths::workspace())
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running bash: {e}"));
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn report(b: &Block, script: &str, r: &Ran, why: &str) -> String {
    format!(
        "{} ```{}: {why}\n--- block\n{script}--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
        b.at(),
        b.info,
        r.code,
        r.stdout,
        r.stderr
    )
}

/// A `kubectl` first on PATH that runs the real one, ending watches after [`WATCH_SECONDS`]
/// with SIGINT (as a reader ends them with Ctrl-C; that counts as success).
fn kubectl_wrapper(dir: &Path, real: &Path) {
    let script = format!(
        r#"#!/usr/bin/env bash
for a in "$@"; do
  case "$a" in
    -w|--watch|--watch=true|--watch-only|--watch-only=true)
      rc=0; timeout -s INT {WATCH_SECONDS} '{real}' "$@" || rc=$?
      if [ "$rc" -eq 124 ]; then exit 0; fi
      exit "$rc";;
  esac
done
exec '{real}' "$@"
"#,
        real = real.display()
    );
    let p = dir.join("kubectl");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn readme_command_blocks_run() {
    let blocks = all_blocks();
    let runnable: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.info == "sh" || b.info == "shell-session")
        .collect();
    // Every expectation names exactly one block, so a check cannot vanish with an edit.
    for (file, key, desc, _) in EXPECTATIONS {
        let n = runnable
            .iter()
            .filter(|b| b.file == *file && b.text.contains(key))
            .count();
        assert_eq!(
            n, 1,
            "the expectation {desc:?} is for the block containing {key:?}, found in {n} run blocks of {file}"
        );
    }

    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("readme");

    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let cp_bin = paths::controlplane_bin().unwrap();
    kubectl_wrapper(&bin, &cp_bin.join("kubectl"));
    // Fail early, with the command that builds them, when the product binaries are missing.
    let product = paths::product_binary("osartifact-operator")
        .and_then(|_| paths::product_binary("osartifact-webhook"))
        .unwrap_or_else(|err| panic!("{err:#}"));
    let product_dir = product.parent().unwrap();
    let kubeconfig = scratch.path().join("kubeconfig");
    std::fs::copy(&e.cp.admin.kubeconfig, &kubeconfig).unwrap();
    let out = Command::new(cp_bin.join("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "config",
            "set-context",
            "--current",
            "--namespace",
            &ns.name,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = std::env::join_paths(
        [bin.clone(), product_dir.to_path_buf(), cp_bin.clone()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let runner = Runner {
        path: path.to_string_lossy().into_owned(),
        kubeconfig,
    };

    // Documents in order, cluster-wide installs last.
    let (installs, others): (Vec<&Block>, Vec<&Block>) =
        runnable.iter().partition(|b| installs_cluster_wide(b));
    let mut failures = Vec::new();
    let mut ran = 0;
    for b in others.iter().chain(installs.iter()) {
        eprintln!("[readme] {} ```{}", b.at(), b.info);
        if b.info == "shell-session" {
            for (cmd, expected) in transcript(&b.text) {
                let r = runner.run(&cmd);
                ran += 1;
                let script = format!("$ {cmd}\n{expected}");
                if r.code != Some(0) {
                    failures.push(report(b, &script, &r, "the command failed"));
                } else if r.stdout.trim_end() != expected.trim_end() {
                    failures.push(report(b, &script, &r, "stdout differs from the transcript"));
                }
            }
            continue;
        }
        let r = runner.run(&b.text);
        ran += 1;
        eprintln!("{}{}", r.stdout, r.stderr);
        if r.code != Some(0) {
            failures.push(report(b, &b.text, &r, "the block failed"));
            continue;
        }
        for (file, key, desc, check) in EXPECTATIONS {
            if b.file == *file && b.text.contains(key) && !check(&r.stdout, &r.stderr) {
                failures.push(report(b, &b.text, &r, &format!("expected {desc}")));
            }
        }
    }
    assert!(ran >= 7, "only {ran} commands ran");

    // What the README says the install does, beyond kubectl's exit code.
    if failures.is_empty() {
        let k = e.k();
        let wh = k
            .get_json(&[
                "deployment",
                "osartifact-webhook",
                "-n",
                "osartifact-system",
            ])
            .unwrap();
        assert_eq!(wh["spec"]["replicas"], 2, "two webhook replicas: {wh}");
        let vwc = k
            .get_json(&["validatingwebhookconfiguration", "osartifact-validating"])
            .unwrap();
        assert_eq!(
            vwc["webhooks"][0]["clientConfig"]["service"]["name"], "osartifact-webhook",
            "{vwc}"
        );
    }

    if !failures.is_empty() {
        eprintln!("{}", e.log_tails(20));
    }
    assert!(
        failures.is_empty(),
        "{} of the documentation's commands failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    drop(ns);
}

/// The commands of a transcript (`$ ` lines) with the output lines after each.
fn transcript(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push((cmd.to_string(), String::new()));
        } else if let Some((_, expected)) = out.last_mut() {
            expected.push_str(line);
            expected.push('\n');
        } else {
            panic!("a transcript must start with a `$ ` line:\n{text}");
        }
    }
    out
}
