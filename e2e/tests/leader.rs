//! Two operator replicas: only the Lease holder reconciles; when it stops, the other takes
//! over. Its own test binary, so no shared operator competes for the Lease.

use std::time::Duration;

use osartifact_e2e::artifacts::*;
use osartifact_e2e::env;
use osartifact_e2e::operator::Operator;
use osartifact_e2e::wait::poll;

const IMAGE: &str =
    "quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0-k3sv1.35.0-k3s1";

fn reconciliations(o: &Operator) -> f64 {
    o.metrics()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("osartifact_operator_reconciliations_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn holder(e: &osartifact_e2e::Env) -> String {
    e.k()
        .run(&[
            "get",
            "lease",
            "osartifact-operator",
            "-n",
            "osartifact-system",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .map(|o| o.stdout)
        .unwrap_or_default()
}

#[test]
fn only_the_lease_holder_reconciles_and_the_other_takes_over() {
    let e = env();
    drop(e.webhook());
    let ns = e.namespace("leader");
    let mut a = Operator::start(&e.log_dir, "operator-a", &e.operator_id, &[]).unwrap();
    let mut b = Operator::start(&e.log_dir, "operator-b", &e.operator_id, &[]).unwrap();

    let first = poll("a Lease holder", Duration::from_secs(60), |last| {
        let h = holder(e);
        *last = h.clone();
        Ok((h == "operator-a" || h == "operator-b").then_some(h))
    })
    .unwrap();
    let (leader, standby) = if first == "operator-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    let y = |name: &str| {
        format!(
            r#"{{"apiVersion":"build.kairos.io/v1alpha2","kind":"OSArtifact","metadata":{{"name":"{name}"}},"spec":{{"imageName":"{IMAGE}","iso":true}}}}"#
        )
    };
    assert!(ns.k_stdin(&["apply", "-f", "-"], Some(&y("one"))).success);
    wait_phase(&ns, "one", "Building");
    assert!(
        reconciliations(leader) > 0.0,
        "the leader did not reconcile"
    );
    assert_eq!(
        reconciliations(standby),
        0.0,
        "the standby reconciled:\n{}",
        standby.tail(20)
    );

    // Graceful stop releases the Lease; the standby takes over and reconciles.
    leader.stop();
    let standby_name = standby.replica.clone();
    poll(
        "the standby to take the Lease",
        Duration::from_secs(60),
        |last| {
            let h = holder(e);
            *last = h.clone();
            Ok((h == standby_name).then_some(()))
        },
    )
    .unwrap();
    assert!(ns.k_stdin(&["apply", "-f", "-"], Some(&y("two"))).success);
    wait_phase(&ns, "two", "Building");
    finish_build(&ns, "one");
    wait_phase(&ns, "one", "Ready");
    assert!(reconciliations(standby) > 0.0);
    assert!(standby.is_running());
}
