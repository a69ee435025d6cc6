//! The `OSArtifact` API (`build.kairos.io/v1alpha2`). The CRD in `manifests/crd/` is generated from
//! these types (`just generate`); never edit the YAML by hand.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Affinity, Container, LocalObjectReference, PersistentVolumeClaimSpec, ResourceRequirements,
    Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Upper bounds on list sizes. They keep the CEL rules' estimated cost within the apiserver's budget
/// and bound the number of derived objects (exporter Job names carry the index).
pub const MAX_EXPORTERS: usize = 16;
pub const MAX_VOLUMES: usize = 32;
pub const MAX_IMPORTERS: usize = 16;
pub const MAX_BUNDLES: usize = 64;
pub const MAX_PULL_SECRETS: usize = 16;

/// Build OS artifacts (ISO, cloud images, netboot files) from a Kairos image or a templated Dockerfile.
// Each printcolumn repeats `type_`; clippy reads the derive's arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "build.kairos.io",
    version = "v1alpha2",
    kind = "OSArtifact",
    plural = "osartifacts",
    singular = "osartifact",
    shortname = "osa",
    namespaced,
    doc = "OSArtifact builds bootable OS artifacts (ISO, raw, VHD, GCE, netboot) from a Kairos image or a templated Dockerfile.",
    status = "OSArtifactStatus",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.message",
        priority = 1
    ),
    printcolumn(
        name = "Artifacts",
        type_ = "string",
        json_path = ".status.artifacts",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    // Each rule reports the field path, reason and text of the webhook's rule for the same fault
    // (shared/src/validation): the apiserver runs these before it calls the webhook, so where one
    // fires it is all the user sees. A CRD rule cannot give the reason FieldValueNotFound (only
    // Invalid, Forbidden, Required and Duplicate), so a binding to a missing volume reads
    // `Invalid value: "x": …` here where the webhook says `Not found: "x": …`.
    validation = kube::core::Rule::new("has(self.imageName) || has(self.baseImageDockerfile)")
        .message("set exactly one of spec.imageName (a pre-built image) and spec.baseImageDockerfile (a Dockerfile in a Secret)")
        .reason(kube::core::Reason::FieldValueRequired)
        .field_path(".imageName"),
    validation = kube::core::Rule::new("!has(self.imageName) || !has(self.baseImageDockerfile)")
        .message("may not be set together with spec.imageName: set exactly one of spec.imageName (a pre-built image) and spec.baseImageDockerfile (a Dockerfile in a Secret)")
        .reason(kube::core::Reason::FieldValueForbidden)
        .field_path(".baseImageDockerfile"),
    validation = kube::core::Rule::new("!has(self.volumeBindings) || !has(self.volumeBindings.buildContext) || (has(self.volumes) && self.volumes.exists(v, v.name == self.volumeBindings.buildContext))")
        .message(kube::core::Message::Expression("'\"' + self.volumeBindings.buildContext + '\": no volume of that name in spec.volumes'".into()))
        .field_path(".volumeBindings.buildContext"),
    validation = kube::core::Rule::new("!has(self.volumeBindings) || !has(self.volumeBindings.overlayISO) || (has(self.volumes) && self.volumes.exists(v, v.name == self.volumeBindings.overlayISO))")
        .message(kube::core::Message::Expression("'\"' + self.volumeBindings.overlayISO + '\": no volume of that name in spec.volumes'".into()))
        .field_path(".volumeBindings.overlayISO"),
    validation = kube::core::Rule::new("!has(self.volumeBindings) || !has(self.volumeBindings.overlayRootfs) || (has(self.volumes) && self.volumes.exists(v, v.name == self.volumeBindings.overlayRootfs))")
        .message(kube::core::Message::Expression("'\"' + self.volumeBindings.overlayRootfs + '\": no volume of that name in spec.volumes'".into()))
        .field_path(".volumeBindings.overlayRootfs"),
)]
pub struct OSArtifactSpec {
    /// Pre-built Kairos image to unpack, e.g. `quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0`.
    /// Exactly one of `imageName` and `baseImageDockerfile` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,

    /// Secret holding a Dockerfile (Go template syntax allowed) to build the image from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image_dockerfile: Option<SecretKeyRef>,

    /// Inline template values for the Dockerfile; they win over `dockerfileTemplateValuesFrom` on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_template_values: Option<BTreeMap<String, String>>,

    /// Secret whose every data entry is a Dockerfile template value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_template_values_from: Option<SecretRef>,

    /// Build a hybrid (UEFI/MBR) bootable ISO: `<name>.iso` and `<name>.iso.sha256`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub iso: bool,

    /// Build an EFI-bootable raw disk image: `<name>.raw`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cloud_image: bool,

    /// Build an Azure VHD: `<name>-azure.vhd`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub azure_image: bool,

    /// Build a GCE image: `<name>.gce.raw.tar.gz`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gce_image: bool,

    /// Extract netboot files from the ISO: `<name>.squashfs`, `<name>-kernel`, `<name>-initrd` and `<name>.ipxe`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub netboot: bool,

    /// URL the netboot files will be served from; written into the generated iPXE script.
    #[serde(
        default,
        rename = "netbootURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub netboot_url: Option<String>,

    /// Disk size in MB for the disk images (cloudImage, azureImage, gceImage), e.g. "32000".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<IntOrString>,

    /// Target architecture; the build node's architecture when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,

    /// Secret with a cloud-config embedded in every output; key defaults to `userdata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_config_ref: Option<SecretKeyRef>,

    /// Custom GRUB configuration, installed as the ISO's grub.cfg. It replaces the live ISO's whole
    /// boot menu, so give a complete grub.cfg with menu entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grub_config: Option<String>,

    /// Contents written to /etc/os-release in the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_release: Option<String>,

    /// Contents written to /etc/kairos-release in the image: a whole KEY=VALUE file. AuroraBoot reads
    /// KAIROS_ARCH (ISO, netboot) and KAIROS_FLAVOR and KAIROS_MODEL (disk images) from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kairos_release: Option<String>,

    /// Extra images (bundles) unpacked into the rootfs, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub bundles: Vec<String>,

    /// Registry credentials (kubernetes.io/dockerconfigjson Secrets) for the builder pod and its in-pod pulls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// The artifacts PVC `<name>-artifacts`; defaults to ReadWriteOnce, 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<PersistentVolumeClaimSpec>,

    /// One Job per entry, run after a successful build, with the artifacts PVC as volume `artifacts` (read-only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub exporters: Vec<JobSpec>,

    /// Extra volumes for importers and volume bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    // Reserved names are refused per item (`spec.volumes[i].name`) by a rule crd.rs adds to the
    // item schema, which the derive cannot reach.
    pub volumes: Vec<Volume>,

    /// Init containers that run first, in order, before the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub importers: Vec<Container>,

    /// Gives a volume from `volumes` a role in the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_bindings: Option<VolumeBindings>,

    /// Node selector for the builder pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations for the builder pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,

    /// Affinity for the builder pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Extra labels for the builder pod (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Extra annotations for the builder pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// Compute resources per output builder container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<OutputResources>,

    /// Longest time the builder pod, and then each exporter Job, may run, e.g. `3h`, `90m`,
    /// `1h30m` (units h, m, s; at most 720h). Enforced by Kubernetes as their
    /// `activeDeadlineSeconds`; a build or export that runs longer is stopped and the artifact
    /// ends in `Error` naming the step that was running. The operator's `--build-timeout` when
    /// unset; an exporter's own `activeDeadlineSeconds` wins for its Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub build_timeout: Option<String>,

    /// What happens to the artifacts PVC when the OSArtifact is deleted: `Delete` (the default)
    /// deletes it with the artifact; `Retain` keeps it, with its labels and without an owner, so
    /// the files outlive the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_retention: Option<VolumeRetention>,

    /// Base names of the output files per format, instead of the artifact's name: e.g. `iso: kairos`
    /// writes `kairos.iso` and `kairos.iso.sha256`. Each is a DNS label. The image tarball and the
    /// manifest keep the artifact's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_override: Option<NameOverride>,
}

// Whether the artifacts PVC goes with the OSArtifact. Not a doc comment: the schema would take it
// as the field's description in place of the field's own.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum VolumeRetention {
    /// The PVC is owned by the OSArtifact and deleted with it.
    #[default]
    Delete,
    /// The PVC has no owner and stays when the OSArtifact is deleted.
    Retain,
}

impl VolumeRetention {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeRetention::Delete => "Delete",
            VolumeRetention::Retain => "Retain",
        }
    }
}

/// Base names of the output files, per format.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NameOverride {
    /// `<iso>.iso` and `<iso>.iso.sha256` (also the ISO a netboot build extracts from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub iso: Option<String>,
    /// `<cloudImage>.raw`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub cloud_image: Option<String>,
    /// `<azureImage>-azure.vhd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub azure_image: Option<String>,
    /// `<gceImage>.gce.raw.tar.gz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub gce_image: Option<String>,
    /// `<netboot>.squashfs`, `<netboot>-kernel`, `<netboot>-initrd` and `<netboot>.ipxe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub netboot: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A key in a Secret of the artifact's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret (defaulted: `Dockerfile` for baseImageDockerfile, `userdata` for cloudConfigRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A Secret of the artifact's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
}

/// Target architecture of the image.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// Roles a user volume can play in the build.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeBindings {
    /// Volume mounted at /workspace as the build context of the Dockerfile build (Dockerfile builds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub build_context: Option<String>,
    /// Volume whose files are added to the ISO: copied to scratch and passed to AuroraBoot as
    /// --overlay-iso (ISO or netboot builds).
    #[serde(
        default,
        rename = "overlayISO",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 63))]
    pub overlay_iso: Option<String>,
    /// Volume whose files are copied onto the rootfs before the image tarball is made, so the
    /// tarball, the ISO and the disk images contain them (ISO or netboot builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub overlay_rootfs: Option<String>,
}

/// Compute resources for each output's builder container.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OutputResources {
    /// Requests and limits of the ISO builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso: Option<ResourceRequirements>,
    /// Requests and limits of the raw disk image builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_image: Option<ResourceRequirements>,
    /// Requests and limits of the Azure VHD builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_image: Option<ResourceRequirements>,
    /// Requests and limits of the GCE image builder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gce_image: Option<ResourceRequirements>,
    /// Requests and limits of the netboot extraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netboot: Option<ResourceRequirements>,
}

/// Where the build stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Pending,
    Building,
    Exporting,
    Ready,
    Error,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Building => "Building",
            Phase::Exporting => "Exporting",
            Phase::Ready => "Ready",
            Phase::Error => "Error",
        }
    }

    /// Ready and Error stay until the spec changes or a retry is requested.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Ready | Phase::Error)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OSArtifactStatus {
    /// Pending, Building, Exporting, Ready or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// What runs now, or what failed and how to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: Ready, Building, Exporting (reasons say why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Name of the PVC that holds the artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_pvc: Option<String>,
    /// Name of the builder pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_pod: Option<String>,
    /// Files the build produces in the artifacts PVC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// What was built: each file the build published with its size and SHA-256, as the builder
    /// pod's last step measured them in the artifacts PVC (the same list is in the PVC as
    /// `<name>.manifest.json`). Set once the build succeeded; empty while building, after a failed
    /// build, or when the builder pod's report could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ArtifactOutput>,
    /// When the current build started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the current build (and its exports) finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// One file the build published in the artifacts PVC.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactOutput {
    /// File name in the artifacts PVC.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the file's contents, lowercase hex.
    pub sha256: String,
}
