//! PVC `<name>-artifacts` from `spec.volume` (defaults applied): the builder writes the outputs
//! there, exporters read them, and users can mount it (it carries the artifact label). With
//! `volumeRetention: Retain` it has no owner reference, so it outlives the artifact; it is still
//! recognised as the artifact's by its UID label (see [`super::is_ours`]).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;
use osartifact_shared::types::VolumeRetention;

use super::{Identity, child_meta};

pub fn pvc(spec: &OSArtifactSpec, id: &Identity) -> PersistentVolumeClaim {
    let mut metadata = child_meta(id, names::artifacts_pvc(&id.name));
    if spec.volume_retention == Some(VolumeRetention::Retain) {
        // Left out of the server-side apply, the reference the operator's field manager set
        // under Delete is removed: switching a live artifact to Retain releases the PVC.
        metadata.owner_references = None;
    }
    PersistentVolumeClaim {
        metadata,
        spec: spec.volume.clone(),
        ..Default::default()
    }
}
