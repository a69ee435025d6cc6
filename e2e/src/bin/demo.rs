//! `just demo`: the one-node cluster (kubelet, containerd, kube-proxy, CoreDNS, registries) in
//! namespaces of its own, the product installed from manifests/default as Pods, the nginx
//! kustomization, and the examples applied. A shell on the host reaches the apiserver and the
//! nginx NodePort through loopback forwards. Runs until Ctrl-C, then tears everything down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use osartifact_e2e::env::{Env, Ns};
use osartifact_e2e::kubectl::Output;
use osartifact_e2e::net::NODE_IP;
use osartifact_e2e::{isolation, paths};

osartifact_e2e::cluster_namespaces!();

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn say(s: &str) {
    println!("\n==> {s}");
}

/// `kubectl get osartifacts -n demo -o <output>`.
fn osartifacts(k: &osartifact_e2e::kubectl::Kubectl, output: &str) -> Result<Output> {
    k.run(&["get", "osartifacts", "-n", "demo", "-o", output])
}

fn main() -> Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    isolation::entered().context("`just demo` runs as root (namespaces, mounts, cgroups)")?;
    say(
        "starting the one-node cluster and installing manifests/default (operator and webhook Pods)",
    );
    let env: &'static Env = Box::leak(Box::new(Env::start("demo")?));
    let k = env.k();
    env.node.as_ref().context("the demo needs the node")?;
    print!(
        "{}",
        k.run(&["get", "pods", "-n", "osartifact-system", "-o", "wide"])?
            .stdout
    );

    k.run(&["create", "namespace", "demo"])?.ok()?;
    let ns = Ns {
        name: "demo".into(),
        env,
    };

    say("the nginx kustomization (Debian's nginx as its image) in namespace demo");
    let node_port = env.install_nginx(&ns)?;

    say(
        "a file server in namespace demo for the examples' importers: https://example.com/ and \
         https://github.com/ point at it, as the cluster has no route out",
    );
    osartifact_e2e::files::serve_tarballs(&ns, &["extra-files", "iso-extras", "rootfs-extras"])?;

    let examples = paths::workspace().join("examples");
    say("kubectl apply -n demo -f examples/...   (validated and defaulted by the webhook Pods)");
    let mut files: Vec<_> = std::fs::read_dir(&examples)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let yaml = osartifact_e2e::files::in_cluster(&std::fs::read_to_string(&f)?);
        let out = ns.k_stdin(&["apply", "-f", "-"], Some(&yaml));
        print!("{}{}", out.stdout, out.stderr);
    }

    let bad = paths::workspace().join("e2e/testdata/invalid-several-errors.yaml");
    say("an invalid spec is refused with every field error");
    let out = ns.k(&["apply", "-f", &bad.display().to_string()]);
    print!("{}{}", out.stdout, out.stderr);

    say(
        "the operator Pod creates each build's PVC and builder Pod; the kubelet runs them with \
         buildah, the AuroraBoot stand-in and the real file-system tools (docs/testing.md). \
         Waiting up to 10 minutes for the builds to settle (Ctrl-C to stop waiting)",
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(600) && !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(10));
        let out = osartifacts(
            &k,
            "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
        )?;
        let phases: Vec<&str> = out.stdout.lines().collect();
        let settled = phases
            .iter()
            .filter(|p| matches!(**p, "Ready" | "Error"))
            .count();
        println!("    {settled} of {} builds Ready or Error", phases.len());
        if settled == phases.len() {
            break;
        }
    }
    let out = osartifacts(&k, "wide")?;
    println!("$ kubectl get osartifacts -n demo -o wide\n{}", out.stdout);
    let out = osartifacts(
        &k,
        "custom-columns=NAME:.metadata.name,MESSAGE:.status.message",
    )?;
    println!("{}", out.stdout);

    // Host-side ends of the cluster: the apiserver and the nginx NodePort.
    let api_port: u16 = env
        .cp
        .server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("apiserver port")?;
    let api = isolation::forward_from_host(std::net::SocketAddr::from((
        std::net::Ipv4Addr::LOCALHOST,
        api_port,
    )))?;
    let nginx = isolation::forward_from_host(std::net::SocketAddr::from((NODE_IP, node_port)))?;
    let kubeconfig = env.data_dir.join("host.kubeconfig");
    let text = std::fs::read_to_string(&env.cp.admin.kubeconfig)?
        .replace(&env.cp.server, &format!("https://127.0.0.1:{api}"));
    std::fs::write(&kubeconfig, text)?;

    say(&format!(
        "the cluster stays up until Ctrl-C. From any shell on this machine:\n    \
         export KUBECONFIG={}\n    kubectl get osartifacts -A\n    \
         kubectl describe osartifact -n demo hello-kairos\n    kubectl get pods -A\n\
         The nginx NodePort ({NODE_IP}:{node_port} inside the cluster) is forwarded to \
         http://127.0.0.1:{nginx}/ (builds upload there).\nLogs (kubelet, containerd, every \
         component): {}",
        kubeconfig.display(),
        env.log_dir.display()
    ));
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    say("stopping");
    // The whole cluster goes away: deleting the namespace first would only slow the exit.
    std::mem::forget(ns);
    // Processes, cgroups and host-directory shadows go with the exit hooks.
    Ok(())
}
