//! Fill-only defaulting. The mutating webhook applies it (as a JSON Patch of additions) and the
//! operator applies the same function in memory, so an object that bypassed the webhook behaves
//! identically. It never changes a value the user set, and applying it twice changes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::types::OSArtifactSpec;

pub const DEFAULT_DOCKERFILE_KEY: &str = "Dockerfile";
pub const DEFAULT_CLOUD_CONFIG_KEY: &str = "userdata";
pub const DEFAULT_ACCESS_MODE: &str = "ReadWriteOnce";
pub const DEFAULT_STORAGE: &str = "10Gi";
pub const DEFAULT_EXPORTER_RESTART_POLICY: &str = "Never";

/// Fills every absent defaulted field of `spec`.
pub fn apply_defaults(spec: &mut OSArtifactSpec) {
    if let Some(r) = spec.base_image_dockerfile.as_mut() {
        r.key
            .get_or_insert_with(|| DEFAULT_DOCKERFILE_KEY.to_string());
    }
    if let Some(r) = spec.cloud_config_ref.as_mut() {
        r.key
            .get_or_insert_with(|| DEFAULT_CLOUD_CONFIG_KEY.to_string());
    }

    let volume = spec
        .volume
        .get_or_insert_with(PersistentVolumeClaimSpec::default);
    let modes = volume.access_modes.get_or_insert_with(Vec::new);
    if modes.is_empty() {
        modes.push(DEFAULT_ACCESS_MODE.to_string());
    }
    let requests = volume
        .resources
        .get_or_insert_with(VolumeResourceRequirements::default)
        .requests
        .get_or_insert_with(BTreeMap::new);
    requests
        .entry("storage".to_string())
        .or_insert_with(|| Quantity(DEFAULT_STORAGE.to_string()));

    for job in &mut spec.exporters {
        // A template without a pod spec is invalid anyway; defaulting does not invent one.
        if let Some(pod) = job.template.spec.as_mut() {
            pod.restart_policy
                .get_or_insert_with(|| DEFAULT_EXPORTER_RESTART_POLICY.to_string());
        }
    }
}

/// `spec` with defaults applied, leaving the input untouched.
pub fn defaulted(spec: &OSArtifactSpec) -> OSArtifactSpec {
    let mut out = spec.clone();
    apply_defaults(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SecretKeyRef;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};

    fn spec() -> OSArtifactSpec {
        OSArtifactSpec {
            image_name: Some("quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn fills_absent_fields() {
        let mut s = spec();
        s.base_image_dockerfile = Some(SecretKeyRef {
            name: "d".into(),
            key: None,
        });
        s.cloud_config_ref = Some(SecretKeyRef {
            name: "c".into(),
            key: None,
        });
        s.exporters = vec![JobSpec {
            template: PodTemplateSpec {
                spec: Some(PodSpec::default()),
                ..Default::default()
            },
            ..Default::default()
        }];
        apply_defaults(&mut s);
        assert_eq!(
            s.base_image_dockerfile.unwrap().key.as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(s.cloud_config_ref.unwrap().key.as_deref(), Some("userdata"));
        let v = s.volume.unwrap();
        assert_eq!(v.access_modes.unwrap(), vec!["ReadWriteOnce".to_string()]);
        assert_eq!(v.resources.unwrap().requests.unwrap()["storage"].0, "10Gi");
        let pod = s.exporters[0].template.spec.clone().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        // Unset means Delete; not stored, so objects created before the field do not change
        // spec (and rebuild) on their next update.
        assert_eq!(s.volume_retention, None);
    }

    #[test]
    fn never_overwrites_user_values() {
        let mut s = spec();
        s.cloud_config_ref = Some(SecretKeyRef {
            name: "c".into(),
            key: Some("cloud-config.yaml".into()),
        });
        s.volume = Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity("50Gi".into()),
                )])),
                ..Default::default()
            }),
            storage_class_name: Some("fast".into()),
            ..Default::default()
        });
        s.volume_retention = Some(crate::types::VolumeRetention::Retain);
        let before = s.clone();
        apply_defaults(&mut s);
        assert_eq!(s, before);
    }

    #[test]
    fn idempotent() {
        let once = defaulted(&spec());
        assert_eq!(defaulted(&once), once);
    }

    #[test]
    fn exporter_without_pod_spec_is_left_alone() {
        let mut s = spec();
        s.exporters = vec![JobSpec::default()];
        apply_defaults(&mut s);
        assert!(s.exporters[0].template.spec.is_none());
    }
}
