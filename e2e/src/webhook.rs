//! osartifact-webhook as a local process: TLS on a loopback port with a certificate from a
//! test CA, authenticating to the apiserver as its ServiceAccount; and the shipped webhook
//! configurations registered by `url` with that CA as caBundle.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::controlplane::ControlPlane;
use crate::identity::Identity;
use crate::paths;
use crate::pki::{Ca, CertFiles};
use crate::procs::{Proc, free_port};
use crate::wait::poll;

/// The Secret the self-managed webhook keeps its CA and serving certificate in.
pub const SELF_MANAGED_SECRET: &str = "osartifact-webhook-tls";

/// The flags naming what the self-managed webhook manages (as manifests/webhook passes them),
/// plus `localhost`, the name the configurations call it by on the loopback control plane.
pub fn self_managed_args() -> Vec<String> {
    vec![
        format!("--namespace={}", crate::identity::SYSTEM_NAMESPACE),
        format!("--cert-secret={SELF_MANAGED_SECRET}"),
        "--service=osartifact-webhook".into(),
        "--webhook-configs=validating:osartifact-validating,mutating:osartifact-mutating".into(),
        "--extra-dns-name=localhost".into(),
    ]
}

/// A running webhook.
pub struct Webhook {
    pub proc: Option<Proc>,
    pub port: u16,
    pub admin_port: u16,
    /// The serving certificate files the webhook reads (and reloads).
    pub serving: CertFiles,
    pub ca: Ca,
    pub dir: PathBuf,
    bin: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
}

impl Webhook {
    /// Issues a CA and serving certificate in `dir` and starts the webhook as `id`.
    pub fn start(dir: &Path, log_dir: &Path, id: &Identity, extra_args: &[&str]) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ca = Ca::new(dir, "webhook-ca")?;
        let serving = ca.issue_server(dir, "tls")?;
        let mut w = Self {
            proc: None,
            port: free_port()?,
            admin_port: free_port()?,
            serving,
            ca,
            dir: dir.to_path_buf(),
            bin: paths::product_binary("osartifact-webhook")?,
            kubeconfig: id.kubeconfig.clone(),
            log: log_dir.join("osartifact-webhook.log"),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        w.spawn()?;
        Ok(w)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--admin-listen=127.0.0.1:{}", self.admin_port))
            .arg(format!("--tls-cert-file={}", self.serving.cert.display()))
            .arg(format!(
                "--tls-private-key-file={}",
                self.serving.key.display()
            ))
            // Rotation tests should not wait the default 5 s for a reload.
            .arg("--cert-reload-interval=500ms")
            // No endpoints to drain locally.
            .arg("--shutdown-delay=0s")
            .args(&self.extra_args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info");
        let mut p = Proc::spawn("osartifact-webhook", cmd, &self.log)?;
        p.wait_http(
            self.admin_port,
            "/readyz",
            Duration::from_secs(30),
            |code| code == 200,
        )?;
        self.proc = Some(p);
        Ok(())
    }

    /// Stops the webhook process (SIGTERM, graceful).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Starts it again on the same ports with the same files.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// The webhook's own /metrics (admin listener).
    pub fn metrics(&self) -> Result<String> {
        let (code, body) = crate::http::get_local(self.admin_port, "/metrics")?;
        if code != 200 {
            bail!("webhook /metrics answered {code}");
        }
        Ok(body)
    }

    /// Registers `osartifact-validating` and `osartifact-mutating` from manifests/webhook with
    /// `url` client configs and `ca_bundle`, and waits until the apiserver calls the webhook.
    pub fn register(&self, cp: &ControlPlane, ca_bundle: &str) -> Result<()> {
        let configs = shipped_configurations(cp, self.port, ca_bundle)?;
        let k = cp.kubectl();
        k.run_stdin(&["apply", "-f", "-"], Some(&configs.to_string()))?
            .ok()?;
        wait_until_called(cp)
    }

    /// Last log lines.
    pub fn tail(&self, n: usize) -> String {
        crate::procs::tail_file(&self.log, n)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The two configurations from `kubectl kustomize manifests/webhook`, with each webhook's
/// `service` client config replaced by `https://127.0.0.1:PORT<path>` and `caBundle`.
pub fn shipped_configurations(cp: &ControlPlane, port: u16, ca_bundle: &str) -> Result<Value> {
    let dir = paths::workspace().join("manifests/webhook");
    let out = cp
        .kubectl()
        .run(&["kustomize", &dir.display().to_string()])?
        .ok()?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&out.stdout).context("parsing kubectl kustomize output")?;
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_bundle);
    let mut items = Vec::new();
    for mut doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        if kind != "ValidatingWebhookConfiguration" && kind != "MutatingWebhookConfiguration" {
            continue;
        }
        let Some(hooks) = doc["webhooks"].as_array_mut() else {
            bail!("{kind} without webhooks");
        };
        for h in hooks {
            let path = h["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap_or("/")
                .to_string();
            h["clientConfig"] = json!({
                "url": format!("https://127.0.0.1:{port}{path}"),
                "caBundle": bundle,
            });
        }
        items.push(doc);
    }
    if items.len() != 2 {
        bail!(
            "expected 2 webhook configurations in manifests/webhook, found {}",
            items.len()
        );
    }
    Ok(json!({"apiVersion": "v1", "kind": "List", "items": items}))
}

/// Waits until server-side dry-run creates reach both webhooks, as the apiserver's own
/// per-webhook latency metric shows (a positive signal that does not depend on the
/// webhook's answer).
fn wait_until_called(cp: &ControlPlane) -> Result<()> {
    let k = cp.kubectl();
    let probe = json!({
        "apiVersion": "build.kairos.io/v1alpha2",
        "kind": "OSArtifact",
        "metadata": {"name": "webhook-probe", "namespace": "default"},
        "spec": {"imageName": "quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0-k3sv1.35.0-k3s1", "iso": true}
    })
    .to_string();
    poll(
        "the apiserver to call both webhooks",
        Duration::from_secs(30),
        |last| {
            let out = k.run_stdin(&["create", "--dry-run=server", "-f", "-"], Some(&probe))?;
            *last = out.all();
            if out.stderr.contains("failed calling webhook") {
                bail!("the apiserver cannot call the webhook:\n{}", out.stderr);
            }
            let m = webhook_latency_metrics(cp)?;
            let called = WEBHOOK_NAMES.iter().all(|n| {
                m.iter()
                    .any(|l| l.contains("_count{") && l.contains(&format!("name=\"{n}\"")))
            });
            Ok(called.then_some(()))
        },
    )
}

/// The names of our webhooks in the shipped configurations.
pub const WEBHOOK_NAMES: &[&str] = &[
    "validate.osartifacts.build.kairos.io",
    "default.osartifacts.build.kairos.io",
];

/// The apiserver's `apiserver_admission_webhook_admission_duration_seconds` series for our
/// webhooks (count, sum and bucket lines), scraped from /metrics as admin.
pub fn webhook_latency_metrics(cp: &ControlPlane) -> Result<Vec<String>> {
    let out = cp.kubectl().run(&["get", "--raw", "/metrics"])?.ok()?;
    Ok(out
        .stdout
        .lines()
        .filter(|l| l.starts_with("apiserver_admission_webhook_admission_duration_seconds"))
        .filter(|l| {
            WEBHOOK_NAMES
                .iter()
                .any(|n| l.contains(&format!("name=\"{n}\"")))
        })
        .map(str::to_string)
        .collect())
}
