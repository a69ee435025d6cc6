//! Names and labels of the objects the operator derives from an OSArtifact. Deterministic, so a
//! restart or a race can never start a second build.

use crate::types::{MAX_EXPORTERS, OSArtifactSpec};

/// Label on every child: the artifact's name (also documented as the way to find the PVC).
pub const ARTIFACT_LABEL: &str = "build.kairos.io/artifact";
/// Label on every child: the artifact's UID, so watches and lookups never confuse two artifacts
/// that share a name (in two namespaces, or one deleted and re-created).
pub const ARTIFACT_UID_LABEL: &str = "build.kairos.io/artifact-uid";
/// Annotation holding an exporter Job's index in `spec.exporters`.
pub const EXPORT_INDEX_ANNOTATION: &str = "build.kairos.io/export-index";
/// Annotation that retries a failed build without editing the spec: set it to any new value.
pub const RETRY_ANNOTATION: &str = "build.kairos.io/retry";
/// Annotation on children: the artifact generation they were built for.
pub const GENERATION_ANNOTATION: &str = "build.kairos.io/generation";
/// The one field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "osartifact-operator";

/// Kubernetes label values, DNS-1123 labels and Job names are limited to 63 characters.
pub const LABEL_VALUE_MAX: usize = 63;
/// The apiserver appends 5 random characters to `generateName`.
pub const GENERATE_NAME_SUFFIX_LEN: usize = 5;

/// Volume names the builder pod uses itself.
pub const RESERVED_VOLUMES: &[&str] =
    &["artifacts", "rootfs", "config", "dockerfile", "cloudconfig"];

/// Fixed container names of the builder pod (bundles add `bundle-<index>`).
pub const BUILDER_CONTAINERS: &[&str] = &[
    "unpack",
    "buildah",
    "release-files",
    "rootfs-overlay",
    "tarball",
    "iso-overlay",
    "iso",
    "netboot",
    "cloud-image",
    "azure-image",
    "gce-image",
    "done",
];

/// True for a name the builder pod uses for one of its own containers.
pub fn is_builder_container(name: &str) -> bool {
    BUILDER_CONTAINERS.contains(&name)
        || name
            .strip_prefix("bundle-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub fn artifacts_pvc(artifact: &str) -> String {
    format!("{artifact}-artifacts")
}

pub fn config_map(artifact: &str) -> String {
    artifact.to_string()
}

pub fn rendered_dockerfile_secret(artifact: &str) -> String {
    format!("{artifact}-rendered-dockerfile")
}

pub fn builder_pod(artifact: &str) -> String {
    format!("{artifact}-build")
}

pub fn exporter_job(artifact: &str, index: usize) -> String {
    format!("{artifact}-export-{index}")
}

/// The base name of each format's output files: `spec.nameOverride`'s, else the artifact's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseNames {
    pub iso: String,
    pub cloud_image: String,
    pub azure_image: String,
    pub gce_image: String,
    pub netboot: String,
}

pub fn base_names(spec: &OSArtifactSpec, artifact: &str) -> BaseNames {
    let o = spec.name_override.clone().unwrap_or_default();
    let pick = |v: Option<String>| {
        v.filter(|v| !v.is_empty())
            .unwrap_or_else(|| artifact.into())
    };
    BaseNames {
        iso: pick(o.iso),
        cloud_image: pick(o.cloud_image),
        azure_image: pick(o.azure_image),
        gce_image: pick(o.gce_image),
        netboot: pick(o.netboot),
    }
}

/// The longest artifact name whose derived names all fit: exporter Job names must be valid label
/// values (Kubernetes labels the Job's pods with it), so `<name>-export-<index>` must fit in 63.
pub fn max_artifact_name_len(exporters: usize) -> usize {
    if exporters == 0 {
        return LABEL_VALUE_MAX;
    }
    let last = exporters.clamp(1, MAX_EXPORTERS) - 1;
    LABEL_VALUE_MAX - exporter_job("", last).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names() {
        assert_eq!(artifacts_pvc("a"), "a-artifacts");
        assert_eq!(rendered_dockerfile_secret("a"), "a-rendered-dockerfile");
        assert_eq!(exporter_job("a", 3), "a-export-3");
        assert_eq!(builder_pod("a"), "a-build");
        assert_eq!(config_map("a"), "a");
    }

    #[test]
    fn name_limit_accounts_for_exporter_index() {
        assert_eq!(max_artifact_name_len(0), 63);
        assert_eq!(max_artifact_name_len(1), 63 - "-export-0".len());
        assert_eq!(max_artifact_name_len(11), 63 - "-export-10".len());
    }

    #[test]
    fn base_names_take_overrides_per_format() {
        let mut spec = OSArtifactSpec::default();
        assert_eq!(base_names(&spec, "a").iso, "a");
        spec.name_override = Some(crate::types::NameOverride {
            iso: Some("live".into()),
            gce_image: Some(String::new()),
            ..Default::default()
        });
        let b = base_names(&spec, "a");
        assert_eq!((b.iso.as_str(), b.gce_image.as_str()), ("live", "a"));
        assert_eq!((b.cloud_image.as_str(), b.netboot.as_str()), ("a", "a"));
    }

    #[test]
    fn builder_container_names() {
        assert!(is_builder_container("iso"));
        assert!(is_builder_container("bundle-12"));
        assert!(!is_builder_container("bundle-"));
        assert!(!is_builder_container("bundle-x"));
        assert!(!is_builder_container("fetch"));
    }
}
