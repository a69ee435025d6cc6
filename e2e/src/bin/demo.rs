//! `just demo`: a local control plane with the webhook, the operator and the examples.
//! Nothing can run images here, so the demo marks builds and exports finished itself.
//! Runs until Ctrl-C, then tears everything down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use osartifact_e2e::artifacts;
use osartifact_e2e::env::{Env, Ns};
use osartifact_e2e::paths;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn say(s: &str) {
    println!("\n==> {s}");
}

fn main() -> Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    say("starting etcd, kube-apiserver and kube-controller-manager");
    let env: &'static Env = Box::leak(Box::new(Env::start("demo")?));
    let k = env.k();
    say("starting osartifact-webhook and osartifact-operator (as their ServiceAccounts)");
    drop(env.webhook());
    drop(env.operator());

    k.run(&["create", "namespace", "demo"])?.ok()?;
    let ns = Ns {
        name: "demo".into(),
        env,
    };
    let examples = paths::workspace().join("examples");
    say("kubectl apply -n demo -f examples/");
    let out = ns.k(&["apply", "-f", &examples.display().to_string()]);
    print!("{}{}", out.stdout, out.stderr);

    let bad = paths::workspace().join("e2e/testdata/invalid-several-errors.yaml");
    say(
        "an invalid spec is refused with every field error: kubectl apply -f invalid-several-errors.yaml",
    );
    let out = ns.k(&["apply", "-f", &bad.display().to_string()]);
    print!("{}{}", out.stdout, out.stderr);

    say("the operator builds; the demo marks each build and export finished (no kubelet here)");
    let start = Instant::now();
    let mut finished = std::collections::BTreeSet::new();
    loop {
        let list = ns.get(&["osartifacts"]).context("listing artifacts")?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let mut waiting = 0;
        for a in &items {
            let name = a["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match a["status"]["phase"].as_str().unwrap_or("Pending") {
                "Building" if ns.get(&["pod", &format!("{name}-build")]).is_some() => {
                    if finished.insert(format!("build/{name}")) {
                        artifacts::finish_build(&ns, &name);
                    }
                    waiting += 1;
                }
                "Exporting" => {
                    let jobs = ns
                        .get(&["jobs", "-l", &format!("build.kairos.io/artifact={name}")])
                        .and_then(|j| j["items"].as_array().cloned())
                        .unwrap_or_default();
                    for j in jobs {
                        let jn = j["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        if finished.insert(format!("job/{jn}")) {
                            artifacts::finish_export(&ns, &jn);
                        }
                    }
                    waiting += 1;
                }
                "Ready" | "Error" => {}
                _ => waiting += 1,
            }
        }
        let out = k.run(&["get", "osartifacts", "-A"])?;
        println!(
            "\n$ kubectl get osartifacts -A   ({}s)\n{}",
            start.elapsed().as_secs(),
            out.stdout
        );
        if waiting == 0 || start.elapsed() > Duration::from_secs(120) || STOP.load(Ordering::SeqCst)
        {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }

    say(
        "apiserver's latency for our webhooks (apiserver_admission_webhook_admission_duration_seconds)",
    );
    for l in osartifact_e2e::webhook::webhook_latency_metrics(&env.cp)? {
        if !l.contains("_bucket") {
            println!("{l}");
        }
    }

    say(&format!(
        "the cluster stays up until Ctrl-C. Try:\n    export KUBECONFIG={}\n    kubectl get osartifacts -A\n    kubectl describe osartifact -n demo hello-kairos\nLogs: {}",
        env.cp.admin.kubeconfig.display(),
        env.log_dir.display()
    ));
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    say("stopping");
    // The whole cluster goes away: deleting the namespace first would only slow the exit.
    std::mem::forget(ns);
    // Processes are stopped and the data dir removed by the exit hooks.
    Ok(())
}
