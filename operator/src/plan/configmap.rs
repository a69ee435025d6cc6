//! ConfigMap `<name>`: grub.cfg, os-release and kairos-release. Only the keys the spec sets are
//! written, and the builder mounts only those keys, so no step ever sees an empty directory where a
//! file was expected (the predecessor mounted a `kairos-release` key it never wrote).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;

use super::{Identity, child_meta};

pub const GRUB_KEY: &str = "grub.cfg";
pub const OS_RELEASE_KEY: &str = "os-release";
pub const KAIROS_RELEASE_KEY: &str = "kairos-release";

/// The keys the spec sets (an empty string counts as unset), with their contents.
pub fn entries(spec: &OSArtifactSpec) -> BTreeMap<String, String> {
    [
        (GRUB_KEY, &spec.grub_config),
        (OS_RELEASE_KEY, &spec.os_release),
        (KAIROS_RELEASE_KEY, &spec.kairos_release),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| (k.to_string(), s.clone()))
    })
    .collect()
}

pub fn config_map(spec: &OSArtifactSpec, id: &Identity) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(id, names::config_map(&id.name)),
        data: Some(entries(spec)),
        ..Default::default()
    }
}
