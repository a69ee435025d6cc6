//! The node of the one-node cluster: two image registries, containerd (with runc and the CNI
//! bridge plugin), the kubelet, kube-proxy, kube-scheduler and CoreDNS, all inside the test
//! process's private network and mount namespaces (see `isolation`). The configuration and
//! the reasons behind each setting are in docs/testing.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::controlplane::ControlPlane;
use crate::identity::Identity;
use crate::isolation::{self, CgroupRoot};
use crate::net::{self, NODE_IP};
use crate::oci;
use crate::paths;
use crate::procs::{Proc, free_port};
use crate::wait::poll;

/// The sandbox ("pause") image every pod starts with.
pub fn pause_image() -> String {
    format!("{}/pause:3.10", net::registry())
}

/// A small image with a shell and the usual tools, for test pods.
pub fn busybox_image() -> String {
    format!("{}/busybox:1.35", net::registry())
}

/// The controller-manager's fixed directory for host-path volumes.
const HOSTPATH_PV_DIR: &str = "/tmp/hostpath_pv";

/// The host-path provisioner creates each volume 0750 root:root and the kubelet cannot apply
/// a pod's fsGroup to a host path, so a non-root pod could not write to its PVC; the volume
/// plugins of real clusters do apply it. A thread of the harness opens each new volume
/// directory (0777) to stand in for that.
fn open_new_volumes(dir: PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::thread::Builder::new()
        .name("e2e-pv-permissions".into())
        .spawn(move || {
            loop {
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    for e in rd.flatten() {
                        let p = e.path();
                        if let Ok(m) = std::fs::metadata(&p)
                            && m.is_dir()
                            && m.permissions().mode() & 0o777 != 0o777
                        {
                            let _ = std::fs::set_permissions(
                                &p,
                                std::fs::Permissions::from_mode(0o777),
                            );
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
}

/// A running node. Dropping it stops the components (kubelet first, containerd and with it
/// every pod last) and removes the run's cgroups and loop devices.
pub struct Node {
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    /// The containerd socket (for `ctr`).
    pub containerd_sock: PathBuf,
    procs: Vec<Proc>,
    containerd: Option<Proc>,
    registries: Vec<Proc>,
    cgroup_root: String,
}

impl Node {
    /// Starts the node against `cp` (started in `Mode::Node`) and returns once the Node is
    /// Ready and kube-proxy has written the `kubernetes` Service's rules.
    pub fn start(cp: &ControlPlane, dir: &Path, log_dir: &Path) -> Result<Self> {
        isolation::entered()?;
        std::fs::create_dir_all(dir)?;
        for tool in ["containerd", "runc", "iptables", "skopeo", "ip"] {
            which(tool)?;
        }
        let registry_bin = paths::node_tool("docker-registry")?;

        // The bridge first: the node IP must exist before anything binds to it.
        let br = net::BRIDGE;
        isolation::run("ip", &["link", "add", br, "type", "bridge"])?;
        isolation::run("ip", &["addr", "add", &format!("{NODE_IP}/24"), "dev", br])?;
        isolation::run("ip", &["link", "set", br, "up"])?;
        // Connections from this namespace to a ClusterIP need a route before kube-proxy's DNAT
        // (there is no default route); one to the bridge keeps unmatched packets inside.
        isolation::run("ip", &["route", "add", net::SERVICE_CIDR, "dev", br])?;
        isolation::shadow_sysctls(&dir.join("sysctl"))?;

        let cgroup = CgroupRoot::create()?;
        let cgroup_root = cgroup.name.clone();
        let host_dirs = isolation::shadow_host_dirs(&dir.join("host"))?;
        isolation::clean_up_later(cgroup, host_dirs, dir);
        open_new_volumes(
            dir.join("host")
                .join(HOSTPATH_PV_DIR.trim_start_matches('/').replace('/', "_")),
        );
        let mut node = Self {
            dir: dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            containerd_sock: dir.join("containerd/containerd.sock"),
            procs: Vec::new(),
            containerd: None,
            registries: Vec::new(),
            cgroup_root,
        };
        node.start_registries(&registry_bin)?;
        node.push_base_images()?;
        node.start_containerd()?;
        node.start_kubelet(cp)?;
        node.start_scheduler(cp)?;
        node.start_proxy(cp)?;
        node.start_coredns(cp)?;
        node.wait_ready(cp)?;
        Ok(node)
    }

    fn spawn(&mut self, name: &str, cmd: Command) -> Result<()> {
        let p = Proc::spawn(name, cmd, &self.log_dir.join(format!("{name}.log")))?;
        self.procs.push(p);
        Ok(())
    }

    fn start_registries(&mut self, bin: &Path) -> Result<()> {
        let htpasswd = self.dir.join("registry-auth/htpasswd");
        std::fs::create_dir_all(self.dir.join("registry-auth"))?;
        let line = isolation::run(
            "htpasswd",
            &["-nbB", net::AUTH_REGISTRY_USER, net::AUTH_REGISTRY_PASSWORD],
        )?;
        std::fs::write(&htpasswd, line.trim())?;
        for (name, port, auth) in [
            ("registry", net::REGISTRY_PORT, None),
            ("registry-auth", net::AUTH_REGISTRY_PORT, Some(&htpasswd)),
        ] {
            let data = self.dir.join(name);
            std::fs::create_dir_all(&data)?;
            let auth = auth
                .map(|f| {
                    format!(
                        "auth:\n  htpasswd:\n    realm: e2e\n    path: {}\n",
                        f.display()
                    )
                })
                .unwrap_or_default();
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 0.0.0.0:{port}\n{auth}",
                data.join("storage").display()
            );
            let cfg = data.join("config.yml");
            std::fs::write(&cfg, config)?;
            let mut cmd = Command::new(bin);
            cmd.arg("serve").arg(&cfg);
            let p = Proc::spawn(name, cmd, &self.log_dir.join(format!("{name}.log")))?;
            self.registries.push(p);
        }
        let reg = &mut self.registries;
        poll("the registries' /v2/", Duration::from_secs(30), |last| {
            for r in reg.iter_mut() {
                if !r.is_running() {
                    bail!("{} exited:\n{}", r.name, r.tail(20));
                }
            }
            let a = crate::http::get(&format!("{NODE_IP}:{}", net::REGISTRY_PORT), "/v2/");
            let b = crate::http::get(&format!("{NODE_IP}:{}", net::AUTH_REGISTRY_PORT), "/v2/");
            *last = format!("{a:?} {b:?}");
            Ok(matches!((a, b), (Ok((200, _)), Ok((401, _)))).then_some(()))
        })
    }

    /// The pause and busybox images, pushed before containerd needs the first.
    fn push_base_images(&self) -> Result<()> {
        let work = self.dir.join("images");
        std::fs::create_dir_all(&work)?;
        let pause = oci::pause_image(&work)?;
        push(&work, "pause", &pause, &pause_image(), None)?;
        let busybox = oci::busybox_image("osartifact e2e busybox")?;
        push(&work, "busybox", &busybox, &busybox_image(), None)?;
        Ok(())
    }

    fn start_containerd(&mut self) -> Result<()> {
        let d = self.dir.join("containerd");
        let certs = d.join("certs.d");
        for host in [net::registry(), net::auth_registry()] {
            let hd = certs.join(&host);
            std::fs::create_dir_all(&hd)?;
            // `server` names the registry itself: no fallback to any other host.
            std::fs::write(
                hd.join("hosts.toml"),
                format!(
                    "server = \"http://{host}\"\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
                ),
            )?;
        }
        // The registries the examples' images come from: their images are pushed to the
        // local registry under the same repository paths (`builder_images`).
        for host in crate::builder_images::MIRRORED_REGISTRIES {
            let hd = certs.join(host);
            std::fs::create_dir_all(&hd)?;
            let local = net::registry();
            std::fs::write(
                hd.join("hosts.toml"),
                format!(
                    "server = \"http://{local}\"\n[host.\"http://{local}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
                ),
            )?;
        }
        let cni_conf = self.dir.join("cni/net.d");
        std::fs::create_dir_all(&cni_conf)?;
        std::fs::write(
            cni_conf.join("10-nodebr.conflist"),
            format!(
                r#"{{"cniVersion": "1.0.0", "name": "nodebr", "plugins": [
  {{"type": "bridge", "bridge": "{br}", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {{"type": "host-local", "dataDir": "{ipam}",
            "ranges": [[{{"subnet": "{cidr}", "gateway": "{NODE_IP}"}}]], "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "portmap", "capabilities": {{"portMappings": true}}}},
  {{"type": "loopback"}}]}}
"#,
                br = net::BRIDGE,
                ipam = self.dir.join("cni/ipam").display(),
                cidr = net::POD_CIDR,
            ),
        )?;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
oom_score = 0
[grpc]
  address = "{sock}"
[ttrpc]
  address = ""
[metrics]
  address = ""
[plugins]
  # Its default is the host's /opt/containerd, which containerd creates at start.
  [plugins."io.containerd.internal.v1.opt"]
    path = "{opt}"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    # This machine's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
    restrict_oom_score_adj = true
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true
    max_container_log_line_size = 16384
    # Pod network namespaces are bind-mounted in the state dir (this mount namespace).
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "{runc}"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{cni_conf}"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "{certs}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            opt = d.join("opt").display(),
            sock = self.containerd_sock.display(),
            pause = pause_image(),
            runc = which("runc")?.display(),
            cni_conf = cni_conf.display(),
            certs = certs.display(),
        );
        let cfg = d.join("config.toml");
        std::fs::write(&cfg, config)?;
        // A PID namespace of its own whose PID 1 is a supervisor shell, as systemd runs the
        // unit containerd ships with (KillMode=process, Restart=always, RestartSec=5): the
        // shims reparent to it and outlive a crashed containerd, it reaps them (its wait takes
        // any child), and it starts containerd again by itself, so a drill only kills and the
        // restart and its delay are the node's, not the test's. When the supervisor ends (the
        // node is dropped, or the test process dies and `unshare --kill-child` with it), the
        // kernel ends every shim and container in the namespace. containerd needs a /proc of
        // that namespace (it opens /proc/self/task/..), so a mount namespace too: a slave of
        // this one, which receives the kubelet's volume mounts and sends nothing back, and
        // where a restarted containerd finds the same mounts, shim sockets and state.
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "slave",
            "sh",
            "-c",
        ])
        .arg(containerd_supervisor())
        .arg(which("containerd")?)
        .arg(&cfg);
        let started = Instant::now();
        let p = Proc::spawn("containerd", cmd, &self.log_dir.join("containerd.log"))?;
        self.containerd = Some(p);
        let c = self.containerd.as_mut().context("containerd")?;
        if !c.is_running() {
            bail!("containerd's supervisor exited:\n{}", c.tail(30));
        }
        wait_containerd(&self.containerd_sock, Duration::from_secs(30)).with_context(|| {
            self.containerd
                .as_ref()
                .map(|c| c.tail(30))
                .unwrap_or_default()
        })?;
        eprintln!(
            "[e2e] containerd answering {} ms after its start",
            started.elapsed().as_millis()
        );
        Ok(())
    }

    fn start_kubelet(&mut self, cp: &ControlPlane) -> Result<()> {
        let pki = &cp.pki_dir;
        let id = cp.identity(
            "kubelet",
            &format!("system:node:{}", net::NODE_NAME),
            &["system:nodes"],
        )?;
        let serving =
            cp.ca
                .issue_server_for(pki, "kubelet-serving", &[net::NODE_NAME], &[NODE_IP.into()])?;
        let root = self.dir.join("kubelet");
        std::fs::create_dir_all(&root)?;
        let resolv = self.dir.join("resolv.conf");
        // No upstream resolver: names outside cluster.local get NXDOMAIN from CoreDNS.
        std::fs::write(&resolv, "options ndots:5\n")?;
        let cgroup_root = &self.cgroup_root;
        let config = format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: {cert}
tlsPrivateKeyFile: {key}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: Webhook}}
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://{sock}
imageServiceEndpoint: unix://{sock}
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
evictionPressureTransitionPeriod: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
serializeImagePulls: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
clusterDomain: cluster.local
clusterDNS: ["{NODE_IP}"]
resolvConf: {resolv}
hairpinMode: hairpin-veth
maxPods: 60
podPidsLimit: -1
syncFrequency: 10s
fileCheckFrequency: 5s
rotateCertificates: false
serverTLSBootstrap: false
"#,
            cert = serving.cert.display(),
            key = serving.key.display(),
            ca = cp.ca.cert_path.display(),
            sock = self.containerd_sock.display(),
            resolv = resolv.display(),
        );
        let cfg = self.dir.join("kubelet-config.yaml");
        std::fs::write(&cfg, config)?;
        let mut cmd = Command::new(cp.bin.join("kubelet"));
        cmd.arg(format!("--config={}", cfg.display()))
            .arg(format!("--kubeconfig={}", id.kubeconfig.display()))
            .arg(format!("--root-dir={}", root.display()))
            .arg(format!("--cert-dir={}", root.join("pki").display()))
            .arg(format!("--hostname-override={}", net::NODE_NAME))
            .arg(format!("--node-ip={NODE_IP}"))
            .arg("--v=2");
        self.spawn("kubelet", cmd)
    }

    fn start_scheduler(&mut self, cp: &ControlPlane) -> Result<()> {
        let id = cp.identity("kube-scheduler", "system:kube-scheduler", &[])?;
        let k = id.kubeconfig.display().to_string();
        let mut cmd = Command::new(cp.bin.join("kube-scheduler"));
        cmd.args([
            format!("--kubeconfig={k}"),
            format!("--authentication-kubeconfig={k}"),
            format!("--authorization-kubeconfig={k}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()?),
            "--leader-elect=false".into(),
            "--authentication-skip-lookup=true".into(),
        ]);
        self.spawn("kube-scheduler", cmd)
    }

    fn start_proxy(&mut self, cp: &ControlPlane) -> Result<()> {
        let id = cp.identity("kube-proxy", "system:kube-proxy", &[])?;
        let config = format!(
            r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {node}
mode: iptables
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:{healthz}
metricsBindAddress: 127.0.0.1:{metrics}
clusterCIDR: {pods}
nodePortAddresses: ["{NODE_IP}/32"]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
"#,
            kubeconfig = id.kubeconfig.display(),
            node = net::NODE_NAME,
            healthz = free_port()?,
            metrics = free_port()?,
            pods = net::POD_CIDR,
        );
        let cfg = self.dir.join("kube-proxy.yaml");
        std::fs::write(&cfg, config)?;
        let mut cmd = Command::new(cp.bin.join("kube-proxy"));
        cmd.arg(format!("--config={}", cfg.display()));
        self.spawn("kube-proxy", cmd)
    }

    fn start_coredns(&mut self, cp: &ControlPlane) -> Result<()> {
        let id: Identity = cp.identity("coredns", "e2e-coredns", &["system:masters"])?;
        let corefile = format!(
            "cluster.local:53 in-addr.arpa:53 {{\n  bind {NODE_IP}\n  errors\n  \
             kubernetes cluster.local in-addr.arpa {{\n    kubeconfig {} e2e\n    pods insecure\n  }}\n}}\n\
             .:53 {{\n  bind {NODE_IP}\n  template ANY ANY {{\n    rcode NXDOMAIN\n  }}\n}}\n",
            id.kubeconfig.display()
        );
        let cfg = self.dir.join("Corefile");
        std::fs::write(&cfg, corefile)?;
        let mut cmd = Command::new(cp.bin.join("coredns"));
        cmd.arg("-conf").arg(&cfg);
        self.spawn("coredns", cmd)
    }

    fn wait_ready(&mut self, cp: &ControlPlane) -> Result<()> {
        let k = cp.kubectl();
        let procs = &mut self.procs;
        poll("Node Ready", Duration::from_secs(120), |last| {
            for p in procs.iter_mut() {
                if !p.is_running() {
                    bail!("{} exited:\n{}", p.name, p.tail(30));
                }
            }
            let out = k.run(&[
                "get",
                "node",
                net::NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])?;
            *last = out.all();
            Ok((out.success && out.stdout.trim() == "True").then_some(()))
        })?;
        // The default StorageClass: the controller-manager's host-path provisioner.
        k.run_stdin(
            &["apply", "-f", "-"],
            Some(
                r#"{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"standard","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}},"provisioner":"kubernetes.io/host-path","reclaimPolicy":"Delete","volumeBindingMode":"Immediate"}"#,
            ),
        )?
        .ok()
        .context("creating the default StorageClass")?;
        // No Service traffic before its rules exist (it would follow no route, but say so).
        poll(
            "kube-proxy's rules for the kubernetes Service",
            Duration::from_secs(60),
            |last| {
                let rules = isolation::run("iptables-save", &["-t", "nat"])?;
                *last = format!("{} nat rules", rules.lines().count());
                Ok(rules
                    .contains(&format!("{}/32", net::KUBERNETES_SERVICE_IP))
                    .then_some(()))
            },
        )
    }

    /// The last lines of every node component's log, for failure reports.
    pub fn log_tails(&self, n: usize) -> String {
        let mut s = String::new();
        for p in self
            .procs
            .iter()
            .chain(&self.containerd)
            .chain(&self.registries)
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

    /// Builds an image and pushes it to the cluster's registry as `reference`.
    pub fn push_image(&self, name: &str, image: &oci::Image, reference: &str) -> Result<()> {
        push(&self.dir.join("images"), name, image, reference, None)
    }

    /// [`Node::push_image`] to a registry that asks for credentials.
    pub fn push_image_with_creds(
        &self,
        name: &str,
        image: &oci::Image,
        reference: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        push(
            &self.dir.join("images"),
            name,
            image,
            reference,
            Some((user, password)),
        )
    }
}

/// How long containerd stays down after it ends before its supervisor starts it again.
pub const CONTAINERD_RESTART_DELAY: Duration = Duration::from_secs(5);

/// PID 1 of containerd's PID namespace (`sh -c`, with containerd's path as `$0` and its
/// config as `$1`): containerd in a loop, started again [`CONTAINERD_RESTART_DELAY`] after it
/// ends.
fn containerd_supervisor() -> String {
    let delay = CONTAINERD_RESTART_DELAY.as_secs();
    format!(
        r#"while :; do
  "$0" --config "$1"
  echo "supervisor: containerd exited with status $?, starting it again in {delay} s" >&2
  sleep {delay}
done"#
    )
}

/// Waits until containerd answers on `sock` (`ctr version`).
pub fn wait_containerd(sock: &Path, timeout: Duration) -> Result<()> {
    poll("containerd's socket", timeout, |last| {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(sock)
            .arg("version")
            .output()?;
        *last = String::from_utf8_lossy(&out.stderr).into_owned();
        Ok(out.status.success().then_some(()))
    })
}

fn push(
    work: &Path,
    name: &str,
    image: &oci::Image,
    reference: &str,
    creds: Option<(&str, &str)>,
) -> Result<()> {
    let layout = work.join("layouts").join(name);
    let _ = std::fs::remove_dir_all(&layout);
    oci::write_layout(&layout, "latest", image)?;
    oci::push_as(&layout, "latest", reference, creds)
        .with_context(|| format!("pushing {reference}"))
}

impl Drop for Node {
    fn drop(&mut self) {
        // The kubelet first (nothing restarts pods), containerd last but one (its supervisor's
        // PID namespace takes every shim and pod along), the registries last.
        if let Some(i) = self.procs.iter().position(|p| p.name == "kubelet") {
            self.procs.remove(i).stop(Duration::from_secs(5));
        }
        for mut p in self.procs.drain(..) {
            p.stop(Duration::from_secs(5));
        }
        if let Some(mut c) = self.containerd.take() {
            // SIGKILL at once: `unshare` blocks SIGTERM (a stop would wait out its grace), and
            // nothing of the namespace is kept.
            c.kill();
        }
        for mut r in self.registries.drain(..) {
            r.stop(Duration::from_secs(5));
        }
        isolation::cleanup();
    }
}

/// The path of a command on PATH, or an error that says how to install it.
pub fn which(tool: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]) {
        let p = d.join(tool);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{tool} not found: run `bash e2e/controlplane/install-tools.sh node`")
}
