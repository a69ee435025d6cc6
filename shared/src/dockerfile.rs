//! The Dockerfile of a `baseImageDockerfile` build: read from its Secret, rendered as a Go template
//! with the values of `dockerfileTemplateValuesFrom` overlaid by `dockerfileTemplateValues`.

use std::collections::BTreeMap;

use osartifact_gotemplate::{Limits, RenderError, Template};

use crate::defaults::DEFAULT_DOCKERFILE_KEY;
use crate::secrets::{KnownSecrets, SecretLookup};
use crate::types::OSArtifactSpec;

/// Name under which template errors are reported (`template: Dockerfile:3:7: ...`).
pub const TEMPLATE_NAME: &str = "Dockerfile";

/// Why the Dockerfile could not be produced. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    #[error(
        "Secret {name:?} not found in the artifact's namespace; create it or fix the reference"
    )]
    SecretNotFound { name: String },
    #[error("could not read Secret {name:?}: {reason}")]
    SecretUnavailable { name: String, reason: String },
    #[error(
        "Secret {name:?} has no key {key:?} (it has: {available}); set the key or fix the reference"
    )]
    KeyNotFound {
        name: String,
        key: String,
        available: String,
    },
    #[error("Secret {name:?} key {key:?} is not valid UTF-8 text")]
    NotUtf8 { name: String, key: String },
    #[error("the Dockerfile template in Secret {name:?} key {key:?} is invalid: {source}")]
    Template {
        name: String,
        key: String,
        source: RenderError,
    },
}

impl DockerfileError {
    /// The Secret the problem is in.
    pub fn secret_name(&self) -> &str {
        match self {
            DockerfileError::SecretNotFound { name }
            | DockerfileError::SecretUnavailable { name, .. }
            | DockerfileError::KeyNotFound { name, .. }
            | DockerfileError::NotUtf8 { name, .. }
            | DockerfileError::Template { name, .. } => name,
        }
    }
}

fn secret<'a>(
    secrets: &'a KnownSecrets,
    name: &str,
) -> Result<Option<&'a BTreeMap<String, Vec<u8>>>, DockerfileError> {
    match secrets.get(name) {
        Some(SecretLookup::Found(data)) => Ok(Some(data)),
        Some(SecretLookup::NotFound) => Err(DockerfileError::SecretNotFound { name: name.into() }),
        Some(SecretLookup::Unavailable(reason)) => Err(DockerfileError::SecretUnavailable {
            name: name.into(),
            reason: reason.clone(),
        }),
        None => Ok(None),
    }
}

/// One key of a Secret: `Ok(None)` when the caller did not look the Secret up.
pub fn secret_value<'a>(
    secrets: &'a KnownSecrets,
    name: &str,
    key: &str,
) -> Result<Option<&'a [u8]>, DockerfileError> {
    let Some(data) = secret(secrets, name)? else {
        return Ok(None);
    };
    match data.get(key) {
        Some(v) => Ok(Some(v.as_slice())),
        None => Err(DockerfileError::KeyNotFound {
            name: name.into(),
            key: key.into(),
            available: if data.is_empty() {
                "no keys".into()
            } else {
                data.keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }),
    }
}

/// The template values: every entry of the values Secret, then the inline values on top.
/// `Ok(None)` when the values Secret was not looked up.
pub fn template_values(
    spec: &OSArtifactSpec,
    secrets: &KnownSecrets,
) -> Result<Option<BTreeMap<String, String>>, DockerfileError> {
    let mut values = BTreeMap::new();
    if let Some(from) = &spec.dockerfile_template_values_from {
        let Some(data) = secret(secrets, &from.name)? else {
            return Ok(None);
        };
        for (k, v) in data {
            let text = String::from_utf8(v.clone()).map_err(|_| DockerfileError::NotUtf8 {
                name: from.name.clone(),
                key: k.clone(),
            })?;
            values.insert(k.clone(), text);
        }
    }
    values.extend(spec.dockerfile_template_values.clone().unwrap_or_default());
    Ok(Some(values))
}

/// The rendered Dockerfile, `Ok(None)` when a needed Secret was not looked up, or when the spec
/// does not build from a Dockerfile.
pub fn render(
    spec: &OSArtifactSpec,
    secrets: &KnownSecrets,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, DockerfileError> {
    let Some(source) = &spec.base_image_dockerfile else {
        return Ok(None);
    };
    let key = source.key.as_deref().unwrap_or(DEFAULT_DOCKERFILE_KEY);
    let Some(raw) = secret_value(secrets, &source.name, key)? else {
        return Ok(None);
    };
    let text = std::str::from_utf8(raw).map_err(|_| DockerfileError::NotUtf8 {
        name: source.name.clone(),
        key: key.into(),
    })?;
    // Parse and check for forbidden actions before the values are needed, so a broken template is
    // reported even when the values Secret is still missing.
    let parsed = Template::parse(TEMPLATE_NAME, text).map_err(|e| DockerfileError::Template {
        name: source.name.clone(),
        key: key.into(),
        source: RenderError::from(e),
    })?;
    parsed
        .check_forbidden()
        .map_err(|e| DockerfileError::Template {
            name: source.name.clone(),
            key: key.into(),
            source: e,
        })?;
    let Some(values) = template_values(spec, secrets)? else {
        return Ok(None);
    };
    parsed
        .execute(&values, limits)
        .map(Some)
        .map_err(|e| DockerfileError::Template {
            name: source.name.clone(),
            key: key.into(),
            source: RenderError::from(e),
        })
}
