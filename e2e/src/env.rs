//! One control plane per test binary, started on first use, with the CRD and RBAC installed;
//! the webhook and the operator started on demand; and a namespace per test.
//!
//! Statics are never dropped, so the processes of the shared environment are stopped by the
//! exit hook and PR_SET_PDEATHSIG (see `procs`); the temp dir goes with the exit hook too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::controlplane::{ControlPlane, Mode};
use crate::identity::{self, Identity, SA_GROUPS, SYSTEM_NAMESPACE};
use crate::isolation;
use crate::kubectl::{Kubectl, Output};
use crate::net;
use crate::node::Node;
use crate::oci;
use crate::operator::Operator;
use crate::paths;
use crate::wait::poll;
use crate::webhook::Webhook;

/// The shared environment of one test binary.
pub struct Env {
    pub cp: ControlPlane,
    /// The node, in a test binary that declared `cluster_namespaces!()`; the product then runs
    /// as Pods installed from manifests/default (see [`Env::install_product`]).
    pub node: Option<Node>,
    /// The operator's ServiceAccount identity (client certificate).
    pub operator_id: Identity,
    /// The webhook's ServiceAccount identity.
    pub webhook_id: Identity,
    /// Scratch space (removed at exit).
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    webhook: Mutex<Option<Webhook>>,
    operator: Mutex<Option<Operator>>,
    counter: AtomicUsize,
}

static ENV: OnceLock<std::result::Result<Env, String>> = OnceLock::new();
/// Set by [`installed_with_helm!`](crate::installed_with_helm): the one-node cluster gets the
/// product from the Helm chart instead of manifests/default.
pub static INSTALL_WITH_HELM: AtomicBool = AtomicBool::new(false);

/// Declares that this (one-node cluster) test binary installs the product with the real `helm`
/// from `manifests/helm/osartifact`, as a cluster admin using Helm would, rather than with
/// `kubectl apply -k manifests/default`: its tests then run against the chart's Pods.
#[macro_export]
macro_rules! installed_with_helm {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static OSARTIFACT_INSTALL_WITH_HELM: extern "C" fn() = {
            extern "C" fn set() {
                $crate::env::INSTALL_WITH_HELM.store(true, ::std::sync::atomic::Ordering::Relaxed);
            }
            set
        };
    };
}
/// Set by [`installed_with_flux!`](crate::installed_with_flux): the one-node cluster gets
/// manifests/default through Flux's apply engine (`flux-apply -wait`) instead of kubectl.
pub static INSTALL_WITH_FLUX: AtomicBool = AtomicBool::new(false);

/// Declares that this (one-node cluster) test binary installs manifests/default as Flux's
/// kustomize-controller would with `wait: true`: `flux-apply`'s staged server-side apply, then
/// its health check until every object is Current. The first reconcile's JSON result is left in
/// [`Env::flux_install_result`]; the Kustomization file beside it is
/// [`Env::flux_install_file`].
#[macro_export]
macro_rules! installed_with_flux {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static OSARTIFACT_INSTALL_WITH_FLUX: extern "C" fn() = {
            extern "C" fn set() {
                $crate::env::INSTALL_WITH_FLUX.store(true, ::std::sync::atomic::Ordering::Relaxed);
            }
            set
        };
    };
}
static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_data_dir() {
    if let Some(d) = DATA_DIR.get()
        && std::env::var_os("OSARTIFACT_E2E_KEEP").is_none()
    {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The environment of this test binary (started on first call). Panics with the reason
/// when it cannot start: every test depends on it.
pub fn env() -> &'static Env {
    match ENV.get_or_init(|| Env::start(&paths::test_binary_name()).map_err(|e| format!("{e:#}"))) {
        Ok(e) => e,
        Err(e) => panic!("the e2e environment did not start: {e}"),
    }
}

impl Env {
    /// Starts a control plane, installs manifests/crd and manifests/rbac.
    pub fn start(name: &str) -> Result<Self> {
        let bin = paths::controlplane_bin()?;
        let log_dir = paths::log_dir(name)?;
        let data_dir = tempfile::Builder::new()
            .prefix(&format!("osartifact-e2e-{name}-"))
            .tempdir()?
            .keep();
        if DATA_DIR.set(data_dir.clone()).is_ok() {
            // SAFETY: registering a plain extern "C" fn; it runs after the processes' exit
            // hook (atexit runs in reverse order of registration, and procs registers first).
            unsafe {
                libc::atexit(remove_data_dir);
            }
        }
        let started = std::time::Instant::now();
        let mode = match isolation::entered() {
            Ok(()) => Mode::Node,
            Err(_) => Mode::Loopback,
        };
        let cp = ControlPlane::start_mode(&bin, &data_dir, &log_dir, mode)?;
        let node = match mode {
            Mode::Node => {
                let node = Node::start(&cp, &data_dir.join("node"), &log_dir)?;
                crate::builder_images::push_all(&node)?;
                Some(node)
            }
            Mode::Loopback => None,
        };
        let operator_id = cp.identity("operator", identity::OPERATOR_USER, SA_GROUPS)?;
        let webhook_id = cp.identity("webhook", identity::WEBHOOK_USER, SA_GROUPS)?;
        let env = Self {
            cp,
            node,
            operator_id,
            webhook_id,
            data_dir,
            log_dir,
            webhook: Mutex::new(None),
            operator: Mutex::new(None),
            counter: AtomicUsize::new(0),
        };
        match mode {
            Mode::Loopback => env.install()?,
            Mode::Node => env.install_product()?,
        }
        eprintln!(
            "[e2e] {} {} ready in {:.1}s; logs in {}",
            match mode {
                Mode::Loopback => "control plane",
                Mode::Node => "one-node cluster",
            },
            env.cp.server,
            started.elapsed().as_secs_f64(),
            env.log_dir.display()
        );
        Ok(env)
    }

    /// Installs the CRD and the RBAC manifests as admin, as a cluster admin would.
    fn install(&self) -> Result<()> {
        let k = self.k();
        let ws = paths::workspace();
        k.run_stdin(
            &["apply", "-f", "-"],
            Some(&format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{SYSTEM_NAMESPACE}\"}}}}"
            )),
        )?
        .ok()?;
        // OSARTIFACT_E2E_CRD: a CRD file under development instead of the shipped one (for
        // trying a fix; CI never sets it).
        let crd = match std::env::var("OSARTIFACT_E2E_CRD") {
            Ok(f) => vec!["apply".to_string(), "-f".into(), f],
            Err(_) => vec![
                "apply".to_string(),
                "-k".into(),
                ws.join("manifests/crd").display().to_string(),
            ],
        };
        let crd: Vec<&str> = crd.iter().map(String::as_str).collect();
        k.run(&crd)?.ok().context("installing the CRD")?;
        // The rbac base leaves namespaces to the overlay; -n puts its namespaced objects
        // where the default overlay would.
        k.run(&[
            "apply",
            "-n",
            SYSTEM_NAMESPACE,
            "-k",
            &ws.join("manifests/rbac").display().to_string(),
        ])?
        .ok()
        .context("installing manifests/rbac")?;
        wait_crd_established(&k)?;
        Ok(())
    }

    /// The product as a cluster admin installs it: the operator and webhook images (built from
    /// the static release binaries) pushed to the cluster's registry, then `kubectl apply -k`
    /// of an overlay on manifests/default that only points the images at that registry; and
    /// returns once the Deployments are available and the webhooks answer through their
    /// Service.
    pub fn install_product(&self) -> Result<()> {
        let node = self
            .node
            .as_ref()
            .context("install_product needs the node")?;
        for name in ["osartifact-operator", "osartifact-webhook"] {
            let bin = paths::static_product_binary(name)?;
            node.push_image(name, &oci::product_image(&bin, name), &product_image(name))?;
        }
        let k = self.k();
        if INSTALL_WITH_HELM.load(Ordering::Relaxed) {
            self.helm_install()?;
        } else {
            let overlay = self.data_dir.join("install");
            std::fs::create_dir_all(&overlay)?;
            std::fs::write(
                overlay.join("kustomization.yaml"),
                product_overlay(&relative_path(
                    &overlay,
                    &paths::workspace().join("manifests/default"),
                )),
            )?;
            if INSTALL_WITH_FLUX.load(Ordering::Relaxed) {
                self.flux_install(&overlay)?;
            } else {
                k.run(&["apply", "-k", &overlay.display().to_string()])?
                    .ok()
                    .context("kubectl apply -k (manifests/default with the local images)")?;
            }
        }
        wait_crd_established(&k)?;
        for d in ["osartifact-operator", "osartifact-webhook"] {
            self.rolled_out(d, Duration::from_secs(180))?;
        }
        // Ready Pods are not yet a routed Service: until kube-proxy has the endpoints, the
        // ClusterIP rejects. Wait for a review to go through, as a careful installer would.
        let probe = r#"{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{"name":"install-probe","namespace":"default"},"spec":{"imageName":"quay.io/kairos/x:v1","iso":true}}"#;
        poll(
            "the webhooks to answer through their Service",
            Duration::from_secs(60),
            |last| {
                let out = k.run_stdin(&["create", "--dry-run=server", "-f", "-"], Some(probe))?;
                *last = out.all();
                Ok(out.success.then_some(()))
            },
        )
    }

    /// Waits until the product's Deployment `name` has rolled out (`kubectl rollout status`).
    pub fn rolled_out(&self, name: &str, timeout: Duration) -> Result<()> {
        self.k()
            .run(&[
                "rollout",
                "status",
                "-n",
                SYSTEM_NAMESPACE,
                &format!("deployment/{name}"),
                &format!("--timeout={}s", timeout.as_secs()),
            ])?
            .ok()
            .with_context(|| format!("{name} did not become available"))?;
        Ok(())
    }

    /// The Kustomization file (the overlay on manifests/default, built) that a binary declaring
    /// [`installed_with_flux!`](crate::installed_with_flux) was installed from.
    pub fn flux_install_file(&self) -> PathBuf {
        self.data_dir.join("flux-install/osartifact.yaml")
    }

    /// `flux-apply`'s JSON result of that install.
    pub fn flux_install_result(&self) -> Result<serde_json::Value> {
        let f = self.data_dir.join("flux-install/result.json");
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The built `overlay` applied by `flux-apply` as one Kustomization named osartifact, with
    /// Flux's health check (`-wait`): returns once every object is Current.
    fn flux_install(&self, overlay: &Path) -> Result<()> {
        let docs = crate::gitops::kustomize(overlay)?;
        let file = self.flux_install_file();
        std::fs::create_dir_all(file.parent().context("a parent")?)?;
        crate::gitops::write_docs(&file, &docs)?;
        let home = self.data_dir.join("flux-home");
        let run = crate::gitops::run(
            "flux-apply",
            &["-f", &file.display().to_string(), "-wait", "-timeout=180s"],
            Some(&self.cp.admin.kubeconfig),
            &home,
        )?
        .ok()
        .context("flux-apply -wait (manifests/default with the local images)")?;
        std::fs::write(self.data_dir.join("flux-install/result.json"), &run.stdout)?;
        Ok(())
    }

    /// `helm install` of the chart with only the images changed (the local ones), waiting as
    /// `--wait` does for every Deployment's Pods to be Ready.
    fn helm_install(&self) -> Result<()> {
        let mut args: Vec<String> = [
            "install",
            "osartifact",
            "manifests/helm/osartifact",
            "--namespace",
            SYSTEM_NAMESPACE,
            "--create-namespace",
            "--take-ownership",
            "--wait",
            "--timeout=180s",
        ]
        .map(String::from)
        .to_vec();
        for name in ["operator", "webhook"] {
            args.push("--set".into());
            args.push(format!(
                "{name}.image.repository={}/osartifact-{name}",
                net::registry()
            ));
            args.push("--set".into());
            args.push(format!("{name}.image.tag=e2e"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let home = self.data_dir.join("helm");
        crate::gitops::run("helm", &args, Some(&self.cp.admin.kubeconfig), &home)?
            .ok()
            .context("helm install (the chart with the local images)")?;
        Ok(())
    }

    /// manifests/nginx in `ns` as a user installs it: an overlay that only names the image
    /// (Debian's nginx, pushed to the cluster's registry), applied, rolled out; returns the
    /// Service's NodePort.
    pub fn install_nginx(&self, ns: &Ns) -> Result<u16> {
        let node = self.node.as_ref().context("install_nginx needs the node")?;
        node.push_image(
            "nginx",
            &crate::images::nginx_image()?,
            &format!("{}/nginx:debian", net::registry()),
        )?;
        let overlay = self.data_dir.join(format!("nginx-{}", ns.name));
        std::fs::create_dir_all(&overlay)?;
        let base = relative_path(&overlay, &paths::workspace().join("manifests/nginx"));
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {base}\nimages:\n  - name: nginx\n    newName: {}/nginx\n    newTag: debian\n",
                net::registry()
            ),
        )?;
        ns.k(&["apply", "-k", &overlay.display().to_string()])
            .ok()?;
        ns.k(&[
            "rollout",
            "status",
            "deployment/kairos-operator-nginx",
            "--timeout=120s",
        ])
        .ok()?;
        let svc = ns
            .get(&["service", "kairos-operator-nginx"])
            .context("the nginx Service")?;
        let port = svc["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .context("the nginx NodePort")?;
        Ok(u16::try_from(port)?)
    }

    /// The holder of the operator's Lease (a Pod name on the one-node cluster), or "" when
    /// there is none or it cannot be read.
    pub fn operator_lease_holder(&self) -> String {
        self.k()
            .run(&[
                "get",
                "lease",
                "osartifact-operator",
                "-n",
                SYSTEM_NAMESPACE,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .map(|o| o.stdout)
            .unwrap_or_default()
    }

    /// kubectl as admin.
    pub fn k(&self) -> Kubectl {
        self.cp.kubectl()
    }

    /// kubectl as `id`.
    pub fn k_as(&self, id: &Identity) -> Kubectl {
        self.cp.kubectl_as(id)
    }

    /// Starts the webhook (once per binary) and registers the shipped configurations.
    pub fn webhook(&self) -> MutexGuard<'_, Option<Webhook>> {
        let mut g = self.webhook.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            let w = Webhook::start(
                &self.data_dir.join("webhook"),
                &self.log_dir,
                &self.webhook_id,
                &[],
            )
            .and_then(|w| {
                w.register(&self.cp, &w.ca.cert_pem.clone())?;
                Ok(w)
            });
            match w {
                Ok(w) => *g = Some(w),
                Err(e) => panic!("starting osartifact-webhook: {e:#}"),
            }
        }
        g
    }

    /// Starts the shared operator (once per binary).
    pub fn operator(&self) -> MutexGuard<'_, Option<Operator>> {
        let mut g = self.operator.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            match Operator::start(&self.log_dir, "osartifact-operator", &self.operator_id, &[]) {
                Ok(o) => *g = Some(o),
                Err(e) => panic!("starting osartifact-operator: {e:#}"),
            }
        }
        g
    }

    /// A fresh namespace for one test, deleted when the returned guard drops.
    pub fn namespace(&'static self, prefix: &str) -> Ns {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{n}");
        let out = self.k().run(&["create", "namespace", &name]);
        match out.and_then(Output::ok) {
            Ok(_) => {}
            Err(e) => panic!("creating namespace {name}: {e:#}"),
        }
        Ns { name, env: self }
    }

    /// The last log lines of every process, for failure reports.
    pub fn log_tails(&self, n: usize) -> String {
        let mut s = self.cp.log_tails(n);
        if let Some(node) = &self.node {
            s.push_str(&node.log_tails(n));
        }
        if let Ok(g) = self.webhook.try_lock()
            && let Some(w) = g.as_ref()
        {
            s.push_str(&format!("----- osartifact-webhook\n{}\n", w.tail(n)));
        }
        if let Ok(g) = self.operator.try_lock()
            && let Some(o) = g.as_ref()
        {
            s.push_str(&format!("----- osartifact-operator\n{}\n", o.tail(n)));
        }
        s
    }
}

/// A test's namespace. Dropping it deletes the namespace (without waiting) and, when the
/// test is failing, prints the last lines of every process log.
pub struct Ns {
    pub name: String,
    pub env: &'static Env,
}

impl Ns {
    /// kubectl as admin in this namespace: `args` then `-n <ns>`.
    pub fn k(&self, args: &[&str]) -> Output {
        self.k_stdin(args, None)
    }

    /// Same, with stdin.
    pub fn k_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.k_with(&self.env.k(), args, stdin)
    }

    /// kubectl as `kubectl` in this namespace.
    pub fn k_with(&self, kubectl: &Kubectl, args: &[&str], stdin: Option<&str>) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend_from_slice(&["-n", &self.name]);
        match kubectl.run_stdin(&a, stdin) {
            Ok(o) => o,
            Err(e) => panic!("running kubectl {}: {e:#}", a.join(" ")),
        }
    }

    /// `kubectl get <what> -o json` in this namespace; `None` when not found.
    pub fn get(&self, what: &[&str]) -> Option<serde_json::Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(what);
        a.extend_from_slice(&["-o", "json", "--ignore-not-found"]);
        let out = self.k(&a);
        if !out.success {
            panic!("{out}");
        }
        if out.stdout.trim().is_empty() {
            return None;
        }
        Some(serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout)))
    }

    /// Polls `kubectl get <what> -o json` until `pred` holds; returns the object.
    pub fn wait_for(
        &self,
        what: &[&str],
        desc: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let r = poll(desc, timeout, |last| {
            let v = self.get(what);
            *last = v
                .as_ref()
                .map(|v| {
                    let s = v.get("status").cloned().unwrap_or_default();
                    format!("status: {s}")
                })
                .unwrap_or_else(|| "not found".into());
            Ok(v.filter(|v| pred(v)))
        });
        match r {
            Ok(v) => v,
            Err(e) => panic!("{e:#} ({} in namespace {})", what.join(" "), self.name),
        }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[e2e] test in namespace {} failed; logs in {}\n{}",
                self.name,
                self.env.log_dir.display(),
                self.env.log_tails(25)
            );
            if let Ok(o) = self
                .env
                .k()
                .run(&["get", "all,osartifacts,events", "-n", &self.name])
            {
                eprintln!("{}{}", o.stdout, o.stderr);
            }
        }
        let _ = self
            .env
            .k()
            .run(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Where the cluster's registry holds the image of a product binary.
pub fn product_image(name: &str) -> String {
    format!("{}/{name}:e2e", net::registry())
}

/// An overlay on `base` (a path relative to the overlay) that changes only the images, as the
/// comment in manifests/default/kustomization.yaml tells a user to.
pub fn product_overlay(base: &str) -> String {
    let mut s = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {base}\nimages:\n"
    );
    for name in ["osartifact-operator", "osartifact-webhook"] {
        s.push_str(&format!(
            "  - name: ghcr.io/kairos-io/{name}\n    newName: {}/{name}\n    newTag: e2e\n",
            net::registry()
        ));
    }
    s
}

/// `to` relative to the directory `from` (both absolute): kustomize wants relative bases.
pub fn relative_path(from: &std::path::Path, to: &std::path::Path) -> String {
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Waits until the apiserver serves the OSArtifact CRD.
fn wait_crd_established(k: &Kubectl) -> Result<()> {
    k.run(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/osartifacts.build.kairos.io",
    ])?
    .ok()?;
    Ok(())
}
