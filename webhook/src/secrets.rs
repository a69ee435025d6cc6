//! Looking up the Secrets an OSArtifact references, for template validation. One GET per Secret
//! with a short deadline: the apiserver waits on us (timeoutSeconds: 10), so a slow or failing
//! lookup becomes a warning rather than a timeout. No cache of our own: it would mean holding
//! every Secret of the cluster in memory and widening their exposure, or judging a fixed Secret
//! by a stale copy; the GET is answered from the apiserver's watch cache instead.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::GetParams;
use kube::{Api, Client};
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup, referenced_secrets, secret_data};

/// Where Secrets come from: the apiserver in production, a map in tests and benchmarks.
pub trait SecretSource: Send + Sync {
    fn lookup<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, SecretLookup>;
}

/// Every Secret `spec` references, looked up at once (concurrently), as validation wants them.
pub async fn known_secrets(
    source: &dyn SecretSource,
    namespace: &str,
    spec: &OSArtifactSpec,
) -> KnownSecrets {
    let names = referenced_secrets(spec);
    let found = futures::future::join_all(names.iter().map(|n| source.lookup(namespace, n))).await;
    let mut known = KnownSecrets::new();
    for (n, l) in names.into_iter().zip(found) {
        known.insert(n, l);
    }
    known
}

/// Reads Secrets through the Kubernetes API (get only).
pub struct KubeSecrets {
    client: Client,
    timeout: Duration,
}

impl KubeSecrets {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }
}

impl SecretSource for KubeSecrets {
    fn lookup<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, SecretLookup> {
        Box::pin(async move {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            // resourceVersion=0: served from the apiserver's watch cache instead of a quorum read
            // of etcd. The cache trails etcd by the watch's delivery delay (milliseconds), far
            // less than the time between a user fixing a Secret and applying again.
            let params = GetParams::any();
            let get = api.get_with(name, &params);
            match tokio::time::timeout(self.timeout, get).await {
                Ok(Ok(secret)) => SecretLookup::Found(secret_data(&secret)),
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => SecretLookup::NotFound,
                Ok(Err(kube::Error::Api(s))) if s.code == 403 => SecretLookup::Unavailable(
                    "the webhook is not allowed to read Secrets in this namespace".into(),
                ),
                Ok(Err(e)) => {
                    tracing::warn!(namespace, name, error = %e, "secret lookup failed");
                    SecretLookup::Unavailable(format!("API error: {e}"))
                }
                Err(_) => {
                    tracing::warn!(namespace, name, "secret lookup timed out");
                    SecretLookup::Unavailable(format!(
                        "no answer from the API within {}s",
                        self.timeout.as_secs_f32()
                    ))
                }
            }
        })
    }
}

/// A fixed set of Secrets, keyed by (namespace, name); everything else is NotFound.
#[derive(Default, Clone)]
pub struct StaticSecrets(pub std::collections::BTreeMap<(String, String), SecretLookup>);

impl SecretSource for StaticSecrets {
    fn lookup<'a>(&'a self, namespace: &'a str, name: &'a str) -> BoxFuture<'a, SecretLookup> {
        let found = self
            .0
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or(SecretLookup::NotFound);
        Box::pin(async move { found })
    }
}

/// No API configured (local runs without a kubeconfig): every lookup is Unavailable, which
/// validation turns into a warning.
pub struct NoApi;

impl SecretSource for NoApi {
    fn lookup<'a>(&'a self, _namespace: &'a str, _name: &'a str) -> BoxFuture<'a, SecretLookup> {
        Box::pin(async { SecretLookup::Unavailable("no Kubernetes API configured".into()) })
    }
}
