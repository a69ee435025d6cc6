//! The webhook's serving certificate is replaced by one from a new CA while a client keeps
//! creating artifacts; no request fails. Sequence: caBundle = old + new CA, new certificate
//! files (the webhook reloads them), caBundle = new CA only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use osartifact_e2e::env;
use osartifact_e2e::pki::Ca;
use osartifact_e2e::wait::poll;

fn reloads(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("osartifact_webhook_certificate_reloads"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn certificate_rotation_under_load_fails_no_request() {
    let e = env();
    drop(e.webhook());
    let ns = Arc::new(e.namespace("rotation"));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client = {
        let (ns, stop, ok, failures) = (ns.clone(), stop.clone(), ok.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let y = format!(
                    r#"{{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{{"name":"rot-{i}"}},"spec":{{"imageName":"quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0-k3sv1.35.0-k3s1","iso":true}}}}"#
                );
                let out = ns.k_stdin(&["create", "-f", "-"], Some(&y));
                if out.success {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.lock().unwrap().push(out.to_string());
                }
            }
        })
    };
    let wait_ok = |n: usize, what: &str| {
        let target = ok.load(Ordering::SeqCst) + n;
        poll(what, Duration::from_secs(60), |last| {
            *last = format!(
                "{} ok, failures {:?}",
                ok.load(Ordering::SeqCst),
                failures.lock().unwrap()
            );
            Ok((ok.load(Ordering::SeqCst) >= target).then_some(()))
        })
        .unwrap();
    };
    wait_ok(5, "requests before the rotation");

    let g = e.webhook();
    let w = g.as_ref().unwrap();
    let before = reloads(&w.metrics().unwrap());
    let ca2 = Ca::new(&w.dir, "webhook-ca-2").unwrap();
    // 1. Trust both CAs.
    w.register(&e.cp, &format!("{}{}", w.ca.cert_pem, ca2.cert_pem))
        .unwrap();
    wait_ok(5, "requests with both CAs trusted");
    // 2. New serving certificate from the new CA, swapped in by rename (key first, so the
    //    webhook never pairs the old key with the new certificate for long; a mismatched
    //    read is skipped and retried by the webhook).
    let new = ca2.issue_server(&w.dir, "tls-next").unwrap();
    std::fs::rename(&new.key, &w.serving.key).unwrap();
    std::fs::rename(&new.cert, &w.serving.cert).unwrap();
    poll(
        "the webhook to reload its certificate",
        Duration::from_secs(30),
        |last| {
            let m = w.metrics()?;
            *last = format!("reloads {}", reloads(&m));
            Ok((reloads(&m) > before).then_some(()))
        },
    )
    .unwrap();
    wait_ok(5, "requests with the new certificate");
    // 3. Drop the old CA.
    w.register(&e.cp, &ca2.cert_pem).unwrap();
    wait_ok(5, "requests with only the new CA trusted");
    drop(g);

    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    let failures = failures.lock().unwrap();
    let total = ok.load(Ordering::SeqCst);
    eprintln!(
        "[e2e] certificate rotation: {total} creates succeeded, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "requests failed during rotation:\n{}",
        failures.join("\n")
    );
    assert!(total >= 20, "only {total} requests");
}
