//! The build plan: a pure function from an artifact (defaults applied in memory) and the Secrets it
//! references to the exact objects that build it. The controller applies it; `plan -f` prints it.
//! Nothing here talks to the API, so every behaviour is unit-tested.

mod builder;
mod configmap;
mod exporters;
mod pvc;
mod secret;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use osartifact_shared::defaults::defaulted;
use osartifact_shared::names;
use osartifact_shared::secrets::KnownSecrets;
use osartifact_shared::validation::{self, FieldError, Mode};
use osartifact_shared::{OSArtifact, OSArtifactSpec};

use crate::settings::Settings;

pub use builder::{deadline_seconds, outputs, step_names};
pub use configmap::config_map;

/// The exporter Jobs, with the spec's deadline, else the operator's (`--build-timeout`).
pub fn exporter_jobs(spec: &OSArtifactSpec, id: &Identity, settings: &Settings) -> Vec<Job> {
    exporters::jobs(spec, id, deadline_seconds(spec, settings))
}

/// Who the children belong to, and which build attempt they are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: i64,
    /// Value of the retry annotation (empty when absent).
    pub retry: String,
}

impl Identity {
    /// The identity of a stored artifact; `None` when the apiserver-assigned fields are missing.
    pub fn of(artifact: &OSArtifact) -> Option<Self> {
        let meta = &artifact.metadata;
        Some(Self {
            name: meta.name.clone()?,
            namespace: meta.namespace.clone()?,
            uid: meta.uid.clone()?,
            generation: meta.generation.unwrap_or(0),
            retry: retry_value(artifact),
        })
    }

    /// The build attempt these children are for: a new generation or a new retry value is a new build.
    pub fn attempt(&self) -> Attempt {
        Attempt {
            generation: self.generation.to_string(),
            retry: self.retry.clone(),
        }
    }
}

/// The value of the retry annotation, empty when absent.
pub fn retry_value(artifact: &OSArtifact) -> String {
    artifact
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::RETRY_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

/// A build attempt, as recorded in the annotations of the children built for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub generation: String,
    pub retry: String,
}

impl Attempt {
    /// The attempt a child was built for, read from its annotations.
    pub fn of_child(meta: &ObjectMeta) -> Option<Self> {
        let a = meta.annotations.as_ref()?;
        Some(Self {
            generation: a.get(names::GENERATION_ANNOTATION)?.clone(),
            retry: a.get(names::RETRY_ANNOTATION).cloned().unwrap_or_default(),
        })
    }
}

/// Every object one build needs, in the order the controller applies them.
#[derive(Clone, Debug)]
pub struct Plan {
    pub config_map: ConfigMap,
    pub pvc: PersistentVolumeClaim,
    /// The rendered Dockerfile and the merged registry credentials, when needed.
    pub secrets: Vec<Secret>,
    pub pod: Pod,
    /// Created only after the build succeeded.
    pub exporters: Vec<Job>,
    /// Names of the builder pod's init containers, in order (importers first).
    pub steps: Vec<String>,
    /// Files the build writes into the artifacts PVC.
    #[cfg_attr(not(test), allow(dead_code))]
    pub outputs: Vec<String>,
}

/// Why an artifact cannot be built. Every variant is fixable by the user; the message says how.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{}", join_errors(.0))]
    Invalid(Vec<FieldError>),
    #[error("spec.imagePullSecrets[{index}]: {problem}")]
    PullSecret {
        index: usize,
        missing: bool,
        problem: String,
    },
    #[error("spec.baseImageDockerfile: {0}")]
    Dockerfile(#[from] osartifact_shared::dockerfile::DockerfileError),
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

const SECRET_FIELDS: &[&str] = &[
    "spec.cloudConfigRef",
    "spec.baseImageDockerfile",
    "spec.dockerfileTemplateValuesFrom",
];

impl PlanError {
    /// PascalCase category: the Event reason, the condition reason and the metric label.
    pub fn category(&self) -> &'static str {
        match self {
            PlanError::Invalid(errors) => {
                let kind = |e: &FieldError| {
                    if !SECRET_FIELDS.contains(&e.field.as_str()) {
                        "InvalidSpec"
                    } else if e.detail.contains("template") {
                        "TemplateError"
                    } else {
                        "SecretNotFound"
                    }
                };
                let kinds: Vec<_> = errors.iter().map(kind).collect();
                ["InvalidSpec", "TemplateError", "SecretNotFound"]
                    .into_iter()
                    .find(|k| kinds.contains(k))
                    .unwrap_or("InvalidSpec")
            }
            PlanError::PullSecret { missing: true, .. } => "SecretNotFound",
            PlanError::PullSecret { .. } => "InvalidSpec",
            PlanError::Dockerfile(osartifact_shared::dockerfile::DockerfileError::Template {
                ..
            }) => "TemplateError",
            PlanError::Dockerfile(_) => "SecretNotFound",
        }
    }

    /// How to fix it, appended to the status message.
    pub fn hint(&self) -> &'static str {
        match self.category() {
            "SecretNotFound" => {
                "create the Secret (or key), then set the build.kairos.io/retry annotation to a new value"
            }
            "TemplateError" => {
                "fix the Dockerfile template in the Secret, then set the build.kairos.io/retry annotation to a new value"
            }
            _ => "fix the spec (kubectl edit osartifact); a new generation builds again",
        }
    }
}

/// The build plan for `artifact`. `secrets` must hold every Secret the spec references (see
/// [`secret_names`]); a missing one is reported like any other problem.
pub fn plan(
    artifact: &OSArtifact,
    id: &Identity,
    secrets: &KnownSecrets,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    let report = validation::validate(artifact, secrets, Mode::Build);
    if !report.is_ok() {
        return Err(PlanError::Invalid(report.errors));
    }
    let spec = defaulted(&artifact.spec);
    let registry_auth = secret::registry_auth(&spec, secrets)?;
    let dockerfile = osartifact_shared::dockerfile::render(
        &spec,
        secrets,
        &osartifact_gotemplate::Limits::default(),
    )?;
    if spec.base_image_dockerfile.is_some() && dockerfile.is_none() {
        // validate() saw the Secret, so this only happens when the caller did not look it up.
        let name = spec
            .base_image_dockerfile
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        return Err(PlanError::Dockerfile(
            osartifact_shared::dockerfile::DockerfileError::SecretNotFound { name },
        ));
    }

    let mut secrets_out = Vec::new();
    if let Some(text) = dockerfile {
        secrets_out.push(secret::rendered_dockerfile(id, text));
    }
    if let Some(auth) = &registry_auth {
        secrets_out.push(secret::registry_auth_object(id, auth.clone()));
    }
    let builder = builder::pod(&spec, id, settings, registry_auth.is_some());
    Ok(Plan {
        config_map: configmap::config_map(&spec, id),
        pvc: pvc::pvc(&spec, id),
        secrets: secrets_out,
        steps: builder.steps,
        outputs: builder.outputs,
        pod: builder.pod,
        exporters: exporter_jobs(&spec, id, settings),
    })
}

/// Every Secret the build reads: the referenced ones and the registry credentials.
pub fn secret_names(spec: &OSArtifactSpec) -> Vec<String> {
    let mut out: Vec<String> = osartifact_shared::secrets::referenced_secrets(spec)
        .into_iter()
        .collect();
    for r in &spec.image_pull_secrets {
        if !r.name.is_empty() && !out.contains(&r.name) {
            out.push(r.name.clone());
        }
    }
    out
}

/// The controller owner reference every child carries.
pub fn owner_reference(id: &Identity) -> OwnerReference {
    OwnerReference {
        api_version: OSArtifact::api_version(&()).into_owned(),
        kind: OSArtifact::kind(&()).into_owned(),
        name: id.name.clone(),
        uid: id.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a child with this metadata belongs to the artifact with UID `uid`: the one ownership
/// rule for every read and write of a child. Ours when its controller owner reference is to
/// `uid`; also, when it has no controller at all, when its artifact-UID label is `uid` (a PVC kept
/// with `volumeRetention: Retain` carries no owner reference, so the artifact's own PVC is
/// recognised by the label the operator gave it). An object controlled by anything else, or
/// without a controller and without our UID label, is never ours: it is neither adopted nor
/// overwritten. A retained PVC of a deleted artifact carries the old UID, so a re-created artifact
/// of the same name finds it in the way until it is deleted or relabelled.
pub fn is_ours(meta: &ObjectMeta, uid: &str) -> bool {
    let mut controllers = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .peekable();
    if controllers.peek().is_some() {
        return controllers.any(|o| o.uid == uid);
    }
    !uid.is_empty()
        && meta
            .labels
            .as_ref()
            .and_then(|l| l.get(names::ARTIFACT_UID_LABEL))
            .is_some_and(|v| v == uid)
}

/// The labels every child carries: the artifact's name and UID.
pub fn child_labels(id: &Identity) -> BTreeMap<String, String> {
    BTreeMap::from([
        (names::ARTIFACT_LABEL.to_string(), id.name.clone()),
        (names::ARTIFACT_UID_LABEL.to_string(), id.uid.clone()),
    ])
}

/// Annotations recording the build attempt a child belongs to.
pub fn child_annotations(id: &Identity) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([(
        names::GENERATION_ANNOTATION.to_string(),
        id.generation.to_string(),
    )]);
    if !id.retry.is_empty() {
        a.insert(names::RETRY_ANNOTATION.to_string(), id.retry.clone());
    }
    a
}

/// Metadata of a child: name, namespace, labels, attempt annotations and the controller owner.
pub fn child_meta(id: &Identity, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(id.namespace.clone()),
        labels: Some(child_labels(id)),
        annotations: Some(child_annotations(id)),
        owner_references: Some(vec![owner_reference(id)]),
        ..Default::default()
    }
}
