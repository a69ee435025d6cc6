//! Exporter Jobs `<name>-export-<i>`: the user's JobSpec with the artifacts PVC added read-only as
//! volume `artifacts`, `backoffLimit: 0` unless set (a failed upload is reported, not retried six
//! times), the build's deadline as `activeDeadlineSeconds` unless set (a hung upload ends), and
//! the artifact's pull secrets when the template sets none, and no ServiceAccount token unless
//! the template asks for one.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;

use super::{Identity, child_meta};

/// The exporter Jobs, each with `deadline` seconds unless its spec sets its own.
pub fn jobs(spec: &OSArtifactSpec, id: &Identity, deadline: i64) -> Vec<Job> {
    spec.exporters
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut job_spec = user.clone();
            job_spec.backoff_limit.get_or_insert(0);
            job_spec.active_deadline_seconds.get_or_insert(deadline);
            if let Some(pod) = job_spec.template.spec.as_mut() {
                pod.volumes.get_or_insert_with(Vec::new).push(Volume {
                    name: "artifacts".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: names::artifacts_pvc(&id.name),
                        read_only: Some(true),
                    }),
                    ..Default::default()
                });
                // An upload needs no API access: no ServiceAccount token unless the template
                // asks for one (a pod of the namespace's default ServiceAccount would get it).
                pod.automount_service_account_token.get_or_insert(false);
                if pod.image_pull_secrets.as_ref().is_none_or(Vec::is_empty)
                    && !spec.image_pull_secrets.is_empty()
                {
                    pod.image_pull_secrets = Some(spec.image_pull_secrets.clone());
                }
            }
            // The exporter's pods carry the artifact labels too, so they can be found like the rest.
            let tmeta = job_spec
                .template
                .metadata
                .get_or_insert_with(Default::default);
            let labels = tmeta.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(super::child_labels(id));

            let mut meta = child_meta(id, names::exporter_job(&id.name, i));
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(names::EXPORT_INDEX_ANNOTATION.to_string(), i.to_string());
            Job {
                metadata: meta,
                spec: Some(job_spec),
                ..Default::default()
            }
        })
        .collect()
}
