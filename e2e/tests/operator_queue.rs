//! The build queue: with `--max-concurrent-builds=2`, the artifacts beyond the limit wait in
//! `Pending` with their place, the namespaces take turns, a finished build lets the head of the
//! queue start at once, and a restarted operator keeps the order.

use std::time::Duration;

use osartifact_e2e::artifacts::*;
use osartifact_e2e::env;
use osartifact_e2e::env::Ns;
use osartifact_e2e::operator::Operator;

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";

fn apply(ns: &Ns, name: &str) {
    let y = format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: {name}}}\nspec: {{imageName: \"{IMAGE}\", iso: true}}\n"
    );
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&y));
    assert!(out.success, "{out}");
    // Creation times have whole seconds: one apart, so the order is the order of creation.
    std::thread::sleep(Duration::from_millis(1100));
}

fn wait_message(ns: &Ns, name: &str, message: &str) {
    ns.wait_for(
        &["osartifact", name],
        &format!("{name}: {message}"),
        PHASE_TIMEOUT,
        |a| a["status"]["phase"] == "Pending" && a["status"]["message"] == message,
    );
}

#[test]
fn builds_beyond_the_limit_wait_in_a_fair_queue_that_survives_a_restart() {
    let e = env();
    drop(e.webhook());
    let mut op = Operator::start(
        &e.log_dir,
        "operator-queue",
        &e.operator_id,
        &["--leader-election=false", "--max-concurrent-builds=2"],
    )
    .unwrap();
    let big = e.namespace("queue-big");
    let small = e.namespace("queue-small");
    // Two builds take the slots; "big" then queues three more before "small" queues one.
    apply(&big, "b1");
    apply(&big, "b2");
    wait_phase(&big, "b1", "Building");
    wait_phase(&big, "b2", "Building");
    apply(&big, "b3");
    apply(&big, "b4");
    apply(&big, "b5");
    apply(&small, "s1");
    // "small" runs nothing, "big" runs two: s1 goes first, then big's in the order they came.
    wait_message(&small, "s1", "queued: 1 of 4 waiting; 2 builds running");
    wait_message(&big, "b3", "queued: 2 of 4 waiting; 2 builds running");
    wait_message(&big, "b4", "queued: 3 of 4 waiting; 2 builds running");
    wait_message(&big, "b5", "queued: 4 of 4 waiting; 2 builds running");
    let events = wait_event(&small, "s1", "the Pending Event", |e| e.contains("Pending"));
    assert!(!events.is_empty());

    // A restarted operator derives the same order from the API.
    op.restart().unwrap();
    wait_message(&big, "b3", "queued: 2 of 4 waiting; 2 builds running");

    // A finished build frees a slot: the head starts without waiting for its periodic look.
    finish_build(&big, "b1");
    wait_phase(&big, "b1", "Ready");
    let started = std::time::Instant::now();
    wait_phase(&small, "s1", "Building");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the head of the queue waited {:?}",
        started.elapsed()
    );
    // The others move up (at their next look, at most 30 s later).
    wait_message(&big, "b3", "queued: 1 of 3 waiting; 2 builds running");
    finish_build(&big, "b2");
    wait_phase(&big, "b3", "Building");
    wait_message(&big, "b4", "queued: 1 of 2 waiting; 2 builds running");
    let metrics = op.metrics().unwrap();
    assert!(
        metrics.contains("osartifact_operator_builds_running 2"),
        "{metrics}"
    );
    op.stop();
}
