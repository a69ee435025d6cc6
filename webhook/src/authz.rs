//! The authorization check: an OSArtifact makes the operator create privileged builder Pods and
//! user-defined importer/exporter containers and Jobs, so whoever creates or changes one must be
//! allowed to create Pods and Jobs in that namespace themselves. Checked with SubjectAccessReviews
//! carrying the request's userInfo (SARs are not persisted, so dry-run stays side-effect free).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};

/// One permission the requester needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{} {}", self.verb, self.resource)
        } else {
            write!(f, "{} {}.{}", self.verb, self.resource, self.group)
        }
    }
}

/// What the operator creates on the requester's behalf.
pub const REQUIRED: [Permission; 2] = [
    Permission {
        verb: "create",
        group: "",
        resource: "pods",
    },
    Permission {
        verb: "create",
        group: "batch",
        resource: "jobs",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("SubjectAccessReview failed: {0}")]
    Api(#[from] kube::Error),
    #[error("SubjectAccessReview timed out after {0:?}")]
    Timeout(Duration),
}

/// Answers "may this user do that in this namespace?". Returns the missing permissions.
pub trait Authorizer: Send + Sync {
    fn missing<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Permission>, AuthzError>>;
}

pub struct KubeAuthorizer {
    client: Client,
    timeout: Duration,
}

impl KubeAuthorizer {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    async fn allowed(
        &self,
        user: &UserInfo,
        namespace: &str,
        p: Permission,
    ) -> Result<bool, AuthzError> {
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let extra = user
            .extra
            .clone()
            .map(|m| m.into_iter().collect::<BTreeMap<_, _>>());
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone(),
                extra,
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some(p.verb.to_string()),
                    group: Some(p.group.to_string()),
                    resource: Some(p.resource.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let pp = PostParams::default();
        let fut = api.create(&pp, &sar);
        let out = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| AuthzError::Timeout(self.timeout))??;
        Ok(out.status.map(|s| s.allowed).unwrap_or(false))
    }
}

impl Authorizer for KubeAuthorizer {
    fn missing<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Permission>, AuthzError>> {
        Box::pin(async move {
            let checks = REQUIRED.map(|p| self.allowed(user, namespace, p));
            let results = futures::future::join_all(checks).await;
            let mut missing = Vec::new();
            for (p, r) in REQUIRED.iter().zip(results) {
                if !r? {
                    missing.push(*p);
                }
            }
            Ok(missing)
        })
    }
}

/// A fixed answer per username, for tests and benchmarks: listed users lack the given permissions.
#[derive(Default, Clone)]
pub struct StaticAuthorizer {
    pub denied: BTreeMap<String, Vec<Permission>>,
    /// Checks for these users fail as if the API were unreachable.
    pub unreachable: std::collections::BTreeSet<String>,
}

impl Authorizer for StaticAuthorizer {
    fn missing<'a>(
        &'a self,
        user: &'a UserInfo,
        _namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Permission>, AuthzError>> {
        let name = user.username.as_deref().unwrap_or_default();
        let out = if self.unreachable.contains(name) {
            Err(AuthzError::Timeout(Duration::from_secs(2)))
        } else {
            Ok(self.denied.get(name).cloned().unwrap_or_default())
        };
        Box::pin(async move { out })
    }
}
