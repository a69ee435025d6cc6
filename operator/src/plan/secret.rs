//! Secrets the operator writes: the rendered Dockerfile (`<name>-rendered-dockerfile`, key
//! `Dockerfile`) and the registry credentials for in-pod pulls (`<name>-registry-auth`, key
//! `config.json`): the dockerconfigjson of every `imagePullSecrets` entry merged into one Docker
//! config, because AuroraBoot (`$DOCKER_CONFIG/config.json`) and buildah
//! (`$REGISTRY_AUTH_FILE`) read one such file, not the kubelet's pull secrets.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup};
use serde_json::{Map, Value};

use super::{Identity, PlanError, child_meta};

/// Key of the rendered Dockerfile in its Secret.
pub const DOCKERFILE_KEY: &str = "Dockerfile";
/// Key of the merged Docker config in the registry-auth Secret.
pub const DOCKER_CONFIG_KEY: &str = "config.json";

/// Name of the Secret holding the merged registry credentials.
pub fn registry_auth_secret(artifact: &str) -> String {
    format!("{artifact}-registry-auth")
}

pub fn rendered_dockerfile(id: &Identity, text: Vec<u8>) -> Secret {
    Secret {
        metadata: child_meta(id, names::rendered_dockerfile_secret(&id.name)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            DOCKERFILE_KEY.to_string(),
            ByteString(text),
        )])),
        ..Default::default()
    }
}

pub fn registry_auth_object(id: &Identity, config: Vec<u8>) -> Secret {
    Secret {
        metadata: child_meta(id, registry_auth_secret(&id.name)),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            DOCKER_CONFIG_KEY.to_string(),
            ByteString(config),
        )])),
        ..Default::default()
    }
}

/// The merged Docker config of all `imagePullSecrets`, `None` when there are none. On a registry
/// present in several Secrets the first one wins, as with the kubelet's ordered attempts.
pub fn registry_auth(
    spec: &OSArtifactSpec,
    secrets: &KnownSecrets,
) -> Result<Option<Vec<u8>>, PlanError> {
    if spec.image_pull_secrets.is_empty() {
        return Ok(None);
    }
    let mut auths = Map::new();
    for (index, r) in spec.image_pull_secrets.iter().enumerate() {
        let err = |missing: bool, problem: String| PlanError::PullSecret {
            index,
            missing,
            problem,
        };
        let data = match secrets.get(&r.name) {
            Some(SecretLookup::Found(data)) => data,
            Some(SecretLookup::NotFound) | None => {
                return Err(err(
                    true,
                    format!(
                        "Secret {:?} not found in the artifact's namespace; create it (type kubernetes.io/dockerconfigjson) or remove the reference",
                        r.name
                    ),
                ));
            }
            Some(SecretLookup::Unavailable(reason)) => {
                return Err(err(
                    true,
                    format!("could not read Secret {:?}: {reason}", r.name),
                ));
            }
        };
        let (raw, nested) = if let Some(v) = data.get(".dockerconfigjson") {
            (v, true)
        } else if let Some(v) = data.get(".dockercfg") {
            (v, false)
        } else {
            return Err(err(
                false,
                format!(
                    "Secret {:?} has no .dockerconfigjson key; registry credentials must be a kubernetes.io/dockerconfigjson Secret",
                    r.name
                ),
            ));
        };
        let parsed: Value = serde_json::from_slice(raw).map_err(|e| {
            err(
                false,
                format!("Secret {:?} does not hold valid JSON: {e}", r.name),
            )
        })?;
        let entries = if nested {
            parsed.get("auths").cloned().unwrap_or(Value::Null)
        } else {
            parsed
        };
        let Value::Object(entries) = entries else {
            return Err(err(
                false,
                format!("Secret {:?} has no \"auths\" object", r.name),
            ));
        };
        for (registry, auth) in entries {
            auths.entry(registry).or_insert(auth);
        }
    }
    let mut config = Map::new();
    config.insert("auths".into(), Value::Object(auths));
    serde_json::to_vec(&Value::Object(config))
        .map(Some)
        .map_err(|e| PlanError::PullSecret {
            index: 0,
            missing: false,
            problem: e.to_string(),
        })
}
