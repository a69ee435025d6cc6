//! Secrets an artifact refers to, as far as the caller knows them. Validation is pure: the webhook,
//! the operator and `osartifact-webhook check` each look the Secrets up their own way first.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;

use crate::types::OSArtifactSpec;

/// What a lookup of one Secret found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretLookup {
    /// The Secret's data (`stringData` merged over `data`, as the apiserver does).
    Found(BTreeMap<String, Vec<u8>>),
    NotFound,
    /// The lookup failed (API unreachable, forbidden, timeout); the reason is kept for the message.
    Unavailable(String),
}

/// Secrets known to the caller, by name. A name absent from the map was not looked up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownSecrets(BTreeMap<String, SecretLookup>);

impl KnownSecrets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, lookup: SecretLookup) {
        self.0.insert(name.into(), lookup);
    }

    pub fn insert_secret(&mut self, secret: &Secret) {
        if let Some(name) = &secret.metadata.name {
            self.insert(name.clone(), SecretLookup::Found(secret_data(secret)));
        }
    }

    pub fn get(&self, name: &str) -> Option<&SecretLookup> {
        self.0.get(name)
    }

    /// The value of one key, when the Secret was found and has it.
    pub fn value(&self, name: &str, key: &str) -> Option<&[u8]> {
        match self.0.get(name) {
            Some(SecretLookup::Found(data)) => data.get(key).map(Vec::as_slice),
            _ => None,
        }
    }
}

/// A Secret's entries: `stringData` wins over `data`, as when the apiserver stores it.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// Names of the Secrets whose contents validation and the build need.
pub fn referenced_secrets(spec: &OSArtifactSpec) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Some(r) = &spec.base_image_dockerfile {
        names.insert(r.name.clone());
    }
    if let Some(r) = &spec.dockerfile_template_values_from {
        names.insert(r.name.clone());
    }
    if let Some(r) = &spec.cloud_config_ref {
        names.insert(r.name.clone());
    }
    names.retain(|n| !n.is_empty());
    names
}
