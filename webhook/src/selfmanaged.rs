//! In-cluster certificate management for `serve --self-managed-certs`: every replica keeps the
//! shared certificate Secret current (create-if-absent, optimistic updates), serves what the
//! Secret holds, and keeps the webhook configurations' caBundle in step.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use osartifact_certs::k8s::{ensure_secret, sync_ca_bundle};
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use tokio_util::sync::CancellationToken;

use crate::cli::{CertTargetArgs, PolicyArgs};
use crate::metrics::Metrics;
use crate::tls::{CertResolver, certified_key, not_after};

/// Retry delay after a failure (API down, configurations not applied yet).
const RETRY: Duration = Duration::from_secs(15);

pub fn policy(p: &PolicyArgs) -> Policy {
    Policy {
        ca_validity: p.ca_validity,
        cert_validity: p.cert_validity,
        ca_renew_before: p.ca_renew_before,
        cert_renew_before: p.cert_renew_before,
        ca_overlap: p.ca_overlap,
    }
}

pub fn subject(t: &CertTargetArgs) -> Subject {
    Subject::for_service(&t.service, &t.namespace, &t.extra_dns_names)
}

/// One pass: make the Secret current and return what it holds, then update caBundle.
/// The set is returned even when the caBundle update fails, so the replica can serve.
pub async fn reconcile_once(
    client: &Client,
    target: &CertTargetArgs,
) -> (Option<CertSet>, Result<(), String>) {
    let subject = subject(target);
    let policy = policy(&target.policy);
    let set = match ensure_secret(
        client,
        &target.namespace,
        &target.cert_secret,
        &subject,
        &policy,
        unix_now(),
    )
    .await
    {
        Ok((set, _changes)) => set,
        Err(e) => return (None, Err(e.to_string())),
    };
    let synced = sync_ca_bundle(client, &target.webhook_configs, set.ca_bundle.as_bytes())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    (Some(set), synced)
}

pub async fn run(
    client: Client,
    target: CertTargetArgs,
    interval: Duration,
    resolver: Arc<CertResolver>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let mut serving: Option<(String, String)> = None;
    loop {
        let (set, synced) = reconcile_once(&client, &target).await;
        let mut ok = synced.is_ok();
        if let Err(e) = &synced {
            tracing::warn!(error = %e, "certificate management: caBundle not updated");
        }
        match set {
            Some(set) => {
                let pair = (set.tls_crt.clone(), set.tls_key.clone());
                if serving.as_ref() != Some(&pair) {
                    match certified_key(pair.0.as_bytes(), pair.1.as_bytes()) {
                        Ok(ck) => {
                            resolver.set(ck);
                            if let Some(t) = not_after(pair.0.as_bytes()) {
                                metrics.cert_not_after.set(t);
                            }
                            if serving.is_some() {
                                metrics.cert_reloads.inc();
                            }
                            tracing::info!("serving certificate loaded from the Secret");
                            serving = Some(pair);
                        }
                        Err(e) => {
                            ok = false;
                            metrics.cert_reload_errors.inc();
                            tracing::error!(error = %e, "certificate in the Secret is unusable");
                        }
                    }
                }
            }
            None => ok = false,
        }
        let wait = if ok { interval } else { RETRY.min(interval) };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
