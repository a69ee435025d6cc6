//! PVC `<name>-artifacts` from `spec.volume` (defaults applied): the builder writes the outputs
//! there, exporters read them, and users can mount it (it carries the artifact label).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;

use super::{Identity, child_meta};

pub fn pvc(spec: &OSArtifactSpec, id: &Identity) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: child_meta(id, names::artifacts_pvc(&id.name)),
        spec: spec.volume.clone(),
        ..Default::default()
    }
}
