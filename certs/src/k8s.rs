//! The certificate Secret and the webhook configurations' caBundle, in a cluster.
//!
//! Several replicas run this concurrently without leader election: the Secret is created only if
//! absent (the loser of the race reads the winner's), and every later write is an update with the
//! resourceVersion read, so a conflicting writer re-reads and reconciles again. Whatever is in the
//! Secret is what every replica serves.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::{CertError, CertSet, Change, Policy, Subject};

pub const FIELD_MANAGER: &str = "osartifact-webhook-certs";
const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("Secret {0} kept changing under us; giving up for now")]
    Contended(String),
    #[error("webhook configuration {0:?} not found (as validating or mutating)")]
    ConfigNotFound(String),
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn set_from_secret(s: &Secret) -> Result<CertSet, CertError> {
    let data = s.data.clone().unwrap_or_default();
    CertSet::from_data(|k| data.get(k).map(|b| b.0.clone()))
}

fn secret_data(set: &CertSet) -> BTreeMap<String, ByteString> {
    set.to_data()
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v)))
        .collect()
}

/// Makes sure the Secret holds a valid, current CertSet, creating or renewing it as needed.
/// Returns the set in force and the changes this call made.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    subject: &Subject,
    policy: &Policy,
    now: i64,
) -> Result<(CertSet, Vec<Change>), K8sError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut secret) = api.get_opt(name).await? else {
            let set = CertSet::bootstrap(subject, policy, now)?;
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(namespace.to_string()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_string(),
                        "osartifact-webhook".to_string(),
                    )])),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".to_string()),
                data: Some(secret_data(&set)),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(_) => {
                    tracing::info!(namespace, name, "created the certificate Secret");
                    return Ok((set, vec![Change::AddedNextCa, Change::PromotedNextCa]));
                }
                // Another replica won the race: use its certificates.
                Err(e) if is_status(&e, 409) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut set = match set_from_secret(&secret) {
            Ok(s) => s,
            Err(e) => {
                // Unusable contents (edited by hand?): start over rather than serve nothing.
                tracing::warn!(namespace, name, error = %e, "certificate Secret unreadable; regenerating");
                CertSet::bootstrap(subject, policy, now)?
            }
        };
        let before = set.clone();
        let changes = set.reconcile(subject, policy, now)?;
        if set == before
            && secret
                .data
                .as_ref()
                .is_some_and(|d| *d == secret_data(&set))
        {
            return Ok((set, changes));
        }
        let mut data = secret.data.take().unwrap_or_default();
        // Drop next-CA keys no longer in the set, keep unrelated keys someone else added.
        for k in [crate::NEXT_CA_CRT, crate::NEXT_CA_KEY, crate::NEXT_CA_SINCE] {
            data.remove(k);
        }
        data.extend(secret_data(&set));
        secret.data = Some(data);
        // replace carries metadata.resourceVersion: a concurrent writer makes this 409.
        match api.replace(name, &PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(namespace, name, ?changes, "updated the certificate Secret");
                return Ok((set, changes));
            }
            Err(e) if is_status(&e, 409) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(K8sError::Contended(format!("{namespace}/{name}")))
}

/// Reads the Secret as it is (for replicas that only follow it).
pub async fn read_secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<CertSet>, K8sError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await? {
        Some(s) => Ok(Some(set_from_secret(&s)?)),
        None => Ok(None),
    }
}

/// Which kind a configured name refers to: `validating:NAME`, `mutating:NAME`, or a bare NAME
/// (tried as both).
fn split_kind(spec: &str) -> (Option<&str>, &str) {
    match spec.split_once(':') {
        Some((k @ ("validating" | "mutating"), n)) => (Some(k), n),
        _ => (None, spec),
    }
}

/// Writes `bundle` into `clientConfig.caBundle` of every webhook in the named configurations,
/// with a strategic merge patch keyed by webhook name: only caBundle is touched, so GitOps-owned
/// fields stay as they are. Returns how many configurations were patched.
pub async fn sync_ca_bundle(
    client: &Client,
    configs: &[String],
    bundle: &[u8],
) -> Result<usize, K8sError> {
    let mut patched = 0;
    for spec in configs {
        let (kind, name) = split_kind(spec);
        let mut found = false;
        if kind.is_none_or(|k| k == "validating") {
            let state = ca_bundle_state::<ValidatingWebhookConfiguration>(
                client,
                name,
                bundle,
                kind.is_none(),
                |c| {
                    c.webhooks
                        .iter()
                        .flatten()
                        .map(|w| (w.name.clone(), w.client_config.clone()))
                        .collect()
                },
            )
            .await?;
            found |= state.is_some();
            patched += usize::from(state == Some(true));
        }
        if kind.is_none_or(|k| k == "mutating") {
            let state = ca_bundle_state::<MutatingWebhookConfiguration>(
                client,
                name,
                bundle,
                kind.is_none(),
                |c| {
                    c.webhooks
                        .iter()
                        .flatten()
                        .map(|w| (w.name.clone(), w.client_config.clone()))
                        .collect()
                },
            )
            .await?;
            found |= state.is_some();
            patched += usize::from(state == Some(true));
        }
        if !found {
            return Err(K8sError::ConfigNotFound(spec.clone()));
        }
    }
    Ok(patched)
}

/// Brings one configuration of kind `K` up to date: `None` when it does not exist, else whether
/// it was patched. `webhooks` lists each webhook's name and client config.
async fn ca_bundle_state<K>(
    client: &Client,
    name: &str,
    bundle: &[u8],
    kind_unnamed: bool,
    webhooks: impl Fn(&K) -> Vec<(String, WebhookClientConfig)>,
) -> Result<Option<bool>, K8sError>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    match api.get_opt(name).await {
        Ok(Some(c)) => {
            let current: Vec<(String, bool)> = webhooks(&c)
                .into_iter()
                .map(|(n, cc)| (n, cc.ca_bundle.is_some_and(|b| b.0 == bundle)))
                .collect();
            Ok(Some(patch_webhooks(&api, name, &current, bundle).await?))
        }
        Ok(None) => Ok(None),
        // A bare name is tried as both kinds; the one we may not read is simply not ours.
        Err(e) if kind_unnamed && is_status(&e, 403) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn patch_webhooks<K>(
    api: &Api<K>,
    name: &str,
    webhooks: &[(String, bool)],
    bundle: &[u8],
) -> Result<bool, K8sError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if webhooks.iter().all(|(_, up_to_date)| *up_to_date) {
        return Ok(false);
    }
    let encoded = serde_json::to_value(ByteString(bundle.to_vec()))
        .map_err(|e| CertError::Parse(e.to_string()))?;
    let items: Vec<serde_json::Value> = webhooks
        .iter()
        .map(|(n, _)| serde_json::json!({"name": n, "clientConfig": {"caBundle": encoded}}))
        .collect();
    let patch = serde_json::json!({ "webhooks": items });
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..Default::default()
        },
        &Patch::Strategic(patch),
    )
    .await?;
    tracing::info!(config = name, "caBundle updated");
    Ok(true)
}
