//! etcd, kube-apiserver and kube-controller-manager as local processes on free loopback
//! ports, with client-certificate authentication and RBAC authorization.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::audit;
use crate::identity::{self, Identity};
use crate::kubectl::Kubectl;
use crate::net;
use crate::pki::{self, Ca};
use crate::procs::{Proc, free_port};
use crate::wait::poll;

/// How the control plane is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Loopback only: the product runs as local processes, no kubelet.
    Loopback,
    /// For the one-node cluster (inside its network namespace): the apiserver also listens on
    /// the node bridge and advertises it, so pods reach it through the `kubernetes` Service;
    /// it authorizes kubelets (Node authorizer) and admits ServiceAccounts as a cluster does.
    Node,
}

/// A running control plane. Dropping it stops the processes (controller-manager first).
pub struct ControlPlane {
    pub bin: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    /// The CA of the apiserver's serving certificate and of every client certificate.
    pub ca: Ca,
    /// Where certificates and kubeconfigs are written.
    pub pki_dir: PathBuf,
    pub log_dir: PathBuf,
    /// system:masters.
    pub admin: Identity,
    pub mode: Mode,
    /// The apiserver's audit log (JSON lines): every request of the operator's identity, at
    /// Metadata level, nothing else. Benchmarks and tests count the operator's requests here.
    pub audit_log: PathBuf,
    kcm: Option<Proc>,
    apiserver: Option<Proc>,
    etcd: Option<Proc>,
}

/// One audit event per request of the operator, or of a user in [`audit::AUDITED_GROUP`] (when
/// its response is complete; a watch when it ends), none for anyone else, so the log costs the
/// apiserver next to nothing.
fn audit_policy_yaml() -> String {
    format!(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived, ResponseStarted]\nrules:\n- level: Metadata\n  users: [\"{}\"]\n- level: Metadata\n  userGroups: [\"{}\"]\n- level: None\n",
        identity::OPERATOR_USER,
        audit::AUDITED_GROUP,
    )
}

impl ControlPlane {
    /// Starts everything in `data_dir` (etcd data, certificates) with logs in `log_dir`,
    /// and returns once /readyz answers.
    pub fn start(bin: &Path, data_dir: &Path, log_dir: &Path) -> Result<Self> {
        Self::start_mode(bin, data_dir, log_dir, Mode::Loopback)
    }

    /// [`ControlPlane::start`] in the given mode.
    pub fn start_mode(bin: &Path, data_dir: &Path, log_dir: &Path, mode: Mode) -> Result<Self> {
        let pki_dir = data_dir.join("pki");
        std::fs::create_dir_all(&pki_dir)?;
        let ca = Ca::new(&pki_dir, "cluster-ca")?;
        let serving = match mode {
            Mode::Loopback => ca.issue_server(&pki_dir, "apiserver")?,
            Mode::Node => ca.issue_server_for(
                &pki_dir,
                "apiserver",
                &[
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ],
                &[net::NODE_IP.into(), net::KUBERNETES_SERVICE_IP.into()],
            )?,
        };
        let sa_key = pki_dir.join("sa.key");
        let sa_pub = pki_dir.join("sa.pub");
        pki::write_signing_key(&sa_key, &sa_pub)?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let api_port = free_port()?;
        let kcm_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");

        let mut etcd_cmd = Command::new(bin.join("etcd"));
        etcd_cmd.args([
            "--name=e2e".to_string(),
            format!("--data-dir={}", data_dir.join("etcd").display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=e2e=http://127.0.0.1:{peer_port}"),
            // Test data need not survive a crash; fsync dominates etcd latency otherwise.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ]);
        let etcd = Proc::spawn("etcd", etcd_cmd, &log_dir.join("etcd.log"))?;

        let audit_policy = data_dir.join("audit-policy.yaml");
        std::fs::write(&audit_policy, audit_policy_yaml())?;
        let audit_log = data_dir.join("audit.log");
        let mut api_cmd = Command::new(bin.join("kube-apiserver"));
        api_cmd.args([
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            format!("--secure-port={api_port}"),
            format!("--tls-cert-file={}", serving.cert.display()),
            format!("--tls-private-key-file={}", serving.key.display()),
            format!("--client-ca-file={}", ca.cert_path.display()),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", sa_pub.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
            format!("--cert-dir={}", data_dir.join("apiserver-certs").display()),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
            "--audit-log-format=json".into(),
            "--audit-log-maxsize=0".into(),
        ]);
        match mode {
            Mode::Loopback => {
                api_cmd.args([
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    // No token controller races: Pods may name ServiceAccounts that do not exist yet.
                    "--disable-admission-plugins=ServiceAccount",
                ]);
            }
            Mode::Node => {
                let kubelet_client = ca.issue_client(
                    &pki_dir,
                    "apiserver-kubelet-client",
                    "kube-apiserver-kubelet-client",
                    &["system:masters"],
                )?;
                api_cmd.args([
                    // Only loopback and the node bridge exist in the cluster's network namespace.
                    "--bind-address=0.0.0.0".to_string(),
                    format!("--advertise-address={}", net::NODE_IP),
                    "--authorization-mode=Node,RBAC".into(),
                    "--enable-admission-plugins=NodeRestriction".into(),
                    format!("--service-cluster-ip-range={}", net::SERVICE_CIDR),
                    format!(
                        "--kubelet-client-certificate={}",
                        kubelet_client.cert.display()
                    ),
                    format!("--kubelet-client-key={}", kubelet_client.key.display()),
                    format!("--kubelet-certificate-authority={}", ca.cert_path.display()),
                    "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
                ]);
            }
        }
        let apiserver = Proc::spawn(
            "kube-apiserver",
            api_cmd,
            &log_dir.join("kube-apiserver.log"),
        )?;

        let admin = identity::create(
            &pki_dir,
            &ca,
            &server,
            "admin",
            "e2e-admin",
            &["system:masters"],
        )?;
        let kcm_id = identity::create(
            &pki_dir,
            &ca,
            &server,
            "kube-controller-manager",
            "system:kube-controller-manager",
            &[],
        )?;

        let mut cp = Self {
            bin: bin.to_path_buf(),
            server,
            ca,
            pki_dir,
            log_dir: log_dir.to_path_buf(),
            admin,
            mode,
            audit_log,
            kcm: None,
            apiserver: Some(apiserver),
            etcd: Some(etcd),
        };
        let k = cp.kubectl();
        poll("kube-apiserver /readyz", Duration::from_secs(120), |last| {
            if let Some(p) = cp.apiserver.as_mut()
                && !p.is_running()
            {
                anyhow::bail!("kube-apiserver exited:\n{}", p.tail(30));
            }
            let out = k.run(&["get", "--raw", "/readyz"])?;
            *last = out.all();
            Ok(out.success.then_some(()))
        })?;

        let kcfg = kcm_id.kubeconfig.display().to_string();
        let mut kcm_cmd = Command::new(bin.join("kube-controller-manager"));
        kcm_cmd.args([
            format!("--kubeconfig={kcfg}"),
            format!("--authentication-kubeconfig={kcfg}"),
            format!("--authorization-kubeconfig={kcfg}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={kcm_port}"),
            format!("--cert-dir={}", data_dir.join("kcm-certs").display()),
            "--leader-elect=false".into(),
            "--authentication-skip-lookup=true".into(),
            "--use-service-account-credentials=true".into(),
            format!("--service-account-private-key-file={}", sa_key.display()),
            format!("--root-ca-file={}", cp.ca.cert_path.display()),
            "--controllers=*".into(),
            "--profiling=false".into(),
            // The default 20 requests/s would make the job controller, not the operator, the
            // bottleneck of a benchmark with thousands of exporter Jobs.
            "--kube-api-qps=200".into(),
            "--kube-api-burst=400".into(),
        ]);
        if mode == Mode::Node {
            // PVCs of the default StorageClass get host-path PVs (see isolation::HostDir).
            kcm_cmd.arg("--enable-hostpath-provisioner=true");
        }
        cp.kcm = Some(
            Proc::spawn(
                "kube-controller-manager",
                kcm_cmd,
                &log_dir.join("kube-controller-manager.log"),
            )
            .context("starting kube-controller-manager")?,
        );
        Ok(cp)
    }

    /// kubectl as the cluster admin.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.bin.join("kubectl"), &self.admin.kubeconfig)
    }

    /// kubectl as any identity.
    pub fn kubectl_as(&self, id: &Identity) -> Kubectl {
        Kubectl::new(&self.bin.join("kubectl"), &id.kubeconfig)
    }

    /// A new client-certificate identity (`file` names its kubeconfig).
    pub fn identity(&self, file: &str, user: &str, groups: &[&str]) -> Result<Identity> {
        identity::create(&self.pki_dir, &self.ca, &self.server, file, user, groups)
    }

    /// The last lines of every control-plane log, for failure reports.
    pub fn log_tails(&self, n: usize) -> String {
        let mut s = String::new();
        for p in [&self.kcm, &self.apiserver, &self.etcd]
            .into_iter()
            .flatten()
        {
            s.push_str(&format!(
                "----- {} ({})\n{}\n",
                p.name,
                p.log.display(),
                p.tail(n)
            ));
        }
        s
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for p in [&mut self.kcm, &mut self.apiserver, &mut self.etcd] {
            if let Some(mut p) = p.take() {
                p.stop(Duration::from_secs(10));
            }
        }
    }
}
