//! The GitOps clients the tests drive, built from Go modules by `e2e/gitops/build.sh` (cached):
//! the real `helm` CLI, `flux-apply` (Flux's apply engine, `github.com/fluxcd/pkg/ssa`) and
//! `argo-diff` (Argo CD's diff, `github.com/argoproj/gitops-engine`).
//! Also what the Helm chart and the kustomize install are compared by.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::paths;

/// The directory with `helm`, `flux-apply` and `argo-diff`: `OSARTIFACT_GITOPS_BIN`, else the last stdout
/// line of `e2e/gitops/build.sh` (which builds them once and then only prints it).
pub fn bin() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| find_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_bin() -> Result<PathBuf> {
    let dir = match std::env::var_os("OSARTIFACT_GITOPS_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let script = paths::workspace().join("e2e/gitops/build.sh");
            let out = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "`bash e2e/gitops/build.sh` failed ({}); run it by hand to see why:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
        }
    };
    for b in ["helm", "flux-apply", "argo-diff"] {
        if !dir.join(b).is_file() {
            bail!(
                "{b} missing in {}: run `bash e2e/gitops/build.sh` (or set OSARTIFACT_GITOPS_BIN)",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// Exit status and output of one run.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Run {
    /// Fails with the whole output unless the program succeeded.
    pub fn ok(self) -> Result<Self> {
        if !self.success {
            bail!(
                "{} failed\n--- stdout\n{}--- stderr\n{}",
                self.what,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// Runs `program` (`helm`, `flux-apply`) from [`bin`] with `args`; `kubeconfig` is passed as
/// `--kubeconfig` when given. Helm's own state (cache, config, plugins) goes to `home`, so no
/// run reads or writes the user's.
pub fn run(program: &str, args: &[&str], kubeconfig: Option<&Path>, home: &Path) -> Result<Run> {
    let mut cmd = Command::new(bin()?.join(program));
    if let Some(k) = kubeconfig {
        cmd.arg(format!("--kubeconfig={}", k.display()));
    }
    cmd.args(args)
        .current_dir(paths::workspace())
        .env_remove("KUBECONFIG")
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let out = cmd.output().with_context(|| format!("running {program}"))?;
    Ok(Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        what: format!("{program} {}", args.join(" ")),
    })
}

/// The labels Helm's chart conventions add (`osartifact.helmLabels` in the chart); the only
/// difference the chart may have from `kubectl kustomize manifests/default`.
pub const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// Parses multi-document YAML into objects, dropping empty documents.
pub fn parse_yaml(yaml: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("parsing YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `kind/namespace/name` of an object.
pub fn key(o: &Value) -> String {
    format!(
        "{}/{}/{}",
        o["kind"].as_str().unwrap_or_default(),
        o["metadata"]["namespace"].as_str().unwrap_or_default(),
        o["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// The object without Helm's labels in `metadata.labels` (and without the map when nothing
/// else is left).
pub fn without_helm_labels(o: &Value) -> Value {
    let mut o = o.clone();
    // get_mut, not indexing: indexing a missing key of a mutable Value inserts a null.
    if let Some(labels) = o
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut)
    {
        for l in HELM_LABELS {
            labels.remove(l);
        }
        if labels.is_empty()
            && let Some(m) = o["metadata"].as_object_mut()
        {
            m.remove("labels");
        }
    }
    o
}

pub use crate::webhook::{SELF_MANAGED_SECRET as WEBHOOK_SECRET, self_managed_args};

/// Writes `docs` as one multi-document YAML (JSON documents) file.
pub fn write_docs(path: &Path, docs: &[Value]) -> Result<()> {
    let text: Vec<String> = docs.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n---\n"))
        .with_context(|| format!("writing {}", path.display()))
}

/// The caBundle of the validating and the mutating configuration (empty when not written).
pub fn ca_bundles(k: &crate::kubectl::Kubectl) -> Result<Vec<String>> {
    [
        "validatingwebhookconfiguration/osartifact-validating",
        "mutatingwebhookconfiguration/osartifact-mutating",
    ]
    .iter()
    .map(|kind| {
        let c = k.get_json(&[kind])?;
        Ok(c["webhooks"][0]["clientConfig"]["caBundle"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    })
    .collect()
}

/// The webhook as a local process in its default self-managed mode, serving on `port`: it
/// creates its Secret and writes caBundle into the configurations. Returns once it is ready and
/// both bundles are written, with them. It looks at its Secret every 2 s (the default is ten
/// minutes), so a rotation reaches it within seconds.
pub fn start_self_managed_webhook(
    e: &crate::env::Env,
    name: &str,
    port: u16,
) -> Result<(crate::procs::Proc, Vec<String>)> {
    let mut cmd = Command::new(paths::product_binary("osartifact-webhook")?);
    let admin = crate::procs::free_port()?;
    cmd.arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--admin-listen=127.0.0.1:{admin}"))
        .arg("--self-managed-certs=true")
        .args(self_managed_args())
        .arg("--cert-check-interval=2s")
        .arg("--shutdown-delay=0s")
        .env("KUBECONFIG", &e.webhook_id.kubeconfig)
        .env("RUST_LOG", "info");
    let mut webhook = crate::procs::Proc::spawn(name, cmd, &e.log_dir.join(format!("{name}.log")))?;
    webhook.wait_http(admin, "/readyz", std::time::Duration::from_secs(60), |c| {
        c == 200
    })?;
    let k = e.k();
    let bundles = crate::wait::poll(
        "caBundle written",
        std::time::Duration::from_secs(30),
        |_| {
            let b = ca_bundles(&k)?;
            Ok(b.iter().all(|x| !x.is_empty()).then_some(b))
        },
    )?;
    Ok((webhook, bundles))
}

/// Rotates the webhook's CA as the webhook does when it nears its end (a renewal window longer
/// than its whole life starts the rotation now), and waits for both configurations to carry a
/// bundle other than `before`.
pub fn rotate_ca(e: &crate::env::Env, before: &[String]) -> Result<()> {
    let out = Command::new(paths::product_binary("osartifact-webhook")?)
        .args(["certs", "ensure"])
        .args(self_managed_args())
        .args(["--ca-renew-before=3651d", "--ca-overlap=0s"])
        .env("KUBECONFIG", &e.webhook_id.kubeconfig)
        .output()
        .context("running osartifact-webhook certs ensure")?;
    if !out.status.success() {
        bail!(
            "certs ensure failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let k = e.k();
    crate::wait::poll(
        "the new caBundle",
        std::time::Duration::from_secs(30),
        |_| {
            let b = ca_bundles(&k)?;
            Ok((b != before && b.iter().all(|x| !x.is_empty())).then_some(()))
        },
    )
}

/// `kubectl kustomize DIR` (relative to the workspace, or absolute), parsed.
pub fn kustomize(dir: &Path) -> Result<Vec<Value>> {
    let kubectl = paths::controlplane_bin()?.join("kubectl");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .current_dir(paths::workspace())
        .output()
        .context("running kubectl kustomize")?;
    if !out.status.success() {
        bail!(
            "kubectl kustomize {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_yaml(&String::from_utf8_lossy(&out.stdout))
}

/// `manifests/default` as shipped, but for how the apiserver reaches the webhook on the loopback
/// control plane: the configurations call `https://localhost:PORT/validate|/mutate`.
pub fn install_calling_webhook_at(port: u16) -> Result<Vec<Value>> {
    let mut install = kustomize(Path::new("manifests/default"))?;
    for o in &mut install {
        let path = match o["kind"].as_str() {
            Some("ValidatingWebhookConfiguration") => "/validate",
            Some("MutatingWebhookConfiguration") => "/mutate",
            _ => continue,
        };
        for h in o["webhooks"].as_array_mut().context("webhooks")? {
            h["clientConfig"] =
                serde_json::json!({"url": format!("https://localhost:{port}{path}")});
        }
    }
    Ok(install)
}
