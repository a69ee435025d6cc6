//! Every rule of the OSArtifact API in one pure function, used by the webhook, the operator and
//! `osartifact-webhook check`. It reports every violation at once, each with its field path, and
//! keeps soft problems apart as warnings.

mod field;
pub mod formats;
mod image;
pub mod release;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use osartifact_gotemplate::Limits;

pub use field::{ErrorType, FieldError, quote};

use crate::defaults::{
    DEFAULT_CLOUD_CONFIG_KEY, DEFAULT_DOCKERFILE_KEY, apply_defaults, defaulted,
};
use crate::dockerfile::{self, DockerfileError};
use crate::names;
use crate::secrets::{KnownSecrets, SecretLookup};
use crate::types::{MAX_EXPORTERS, OSArtifact, OSArtifactSpec, SecretKeyRef};

/// Who asks: admission tolerates Secrets that do not exist yet (GitOps tools apply in any order);
/// a build needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Admission,
    Build,
}

/// The outcome: errors deny (or fail the build), warnings are shown to the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn warn(&mut self, field: &str, text: impl AsRef<str>) {
        self.warnings.push(format!("{field}: {}", text.as_ref()));
    }
}

/// Validates an artifact against every rule, with `secrets` as far as the caller knows them.
/// Defaults are applied first, so the outcome is the same with or without the mutating webhook.
pub fn validate(artifact: &OSArtifact, secrets: &KnownSecrets, mode: Mode) -> Report {
    check(
        &artifact.metadata,
        &defaulted(&artifact.spec),
        secrets,
        mode,
    )
}

/// [`validate`] for a caller that is done with the artifact: defaults are applied in place
/// instead of to a copy (the admission webhook, where the copy was a tenth of a review's cost).
pub fn validate_owned(mut artifact: OSArtifact, secrets: &KnownSecrets, mode: Mode) -> Report {
    apply_defaults(&mut artifact.spec);
    check(&artifact.metadata, &artifact.spec, secrets, mode)
}

/// Every rule, on a spec whose defaults are applied.
fn check(meta: &ObjectMeta, spec: &OSArtifactSpec, secrets: &KnownSecrets, mode: Mode) -> Report {
    let mut r = Report::default();
    metadata(meta, spec, &mut r);
    image_source(spec, &mut r);
    outputs(spec, &mut r);
    release::check(spec, &mut r);
    secret_refs(spec, &mut r);
    volumes(spec, &mut r);
    bindings(spec, &mut r);
    importers(spec, &mut r);
    exporters(spec, &mut r);
    scheduling(spec, &mut r);
    deadline_and_names(spec, &mut r);
    referenced_contents(spec, secrets, mode, &mut r);
    r
}

fn metadata(meta: &ObjectMeta, spec: &OSArtifactSpec, r: &mut Report) {
    let max = names::max_artifact_name_len(spec.exporters.len());
    let why = if spec.exporters.is_empty() {
        "the name is used as the value of the build.kairos.io/artifact label".to_string()
    } else {
        let job = names::exporter_job("<name>", spec.exporters.len() - 1);
        format!("exporter Job names ({job}) must fit in 63 characters")
    };
    match (
        meta.name.as_deref().filter(|n| !n.is_empty()),
        meta.generate_name.as_deref(),
    ) {
        (Some(name), _) => {
            if name.len() > max {
                r.error(FieldError::too_long("metadata.name", max, why));
            } else if let Some(msg) = formats::dns1123_label(name) {
                r.error(FieldError::invalid(
                    "metadata.name",
                    name,
                    format!("{msg}; the name becomes part of Pod, Job and label names"),
                ));
            }
        }
        (None, Some(prefix)) => {
            let room = max.saturating_sub(names::GENERATE_NAME_SUFFIX_LEN);
            if prefix.len() > room {
                r.error(FieldError::too_long(
                    "metadata.generateName",
                    room,
                    format!(
                        "the apiserver appends {} characters and {why}",
                        names::GENERATE_NAME_SUFFIX_LEN
                    ),
                ));
            }
        }
        (None, None) => {}
    }
}

fn image_source(spec: &OSArtifactSpec, r: &mut Report) {
    match (&spec.image_name, &spec.base_image_dockerfile) {
        (Some(_), Some(_)) => r.error(FieldError::forbidden(
            "spec.baseImageDockerfile",
            "may not be set together with spec.imageName: set exactly one of spec.imageName (a pre-built image) and spec.baseImageDockerfile (a Dockerfile in a Secret)",
        )),
        (None, None) => r.error(FieldError::required(
            "spec.imageName",
            "set exactly one of spec.imageName (a pre-built image) and spec.baseImageDockerfile (a Dockerfile in a Secret)",
        )),
        _ => {}
    }
    if let Some(image) = &spec.image_name {
        image_ref("spec.imageName", image, r);
    }
    for (i, b) in spec.bundles.iter().enumerate() {
        image_ref(&format!("spec.bundles[{i}]"), b, r);
    }
    if spec.base_image_dockerfile.is_none() {
        if spec.dockerfile_template_values.is_some() {
            r.error(FieldError::forbidden(
                "spec.dockerfileTemplateValues",
                "template values only apply to a Dockerfile build: set spec.baseImageDockerfile or remove them",
            ));
        }
        if spec.dockerfile_template_values_from.is_some() {
            r.error(FieldError::forbidden(
                "spec.dockerfileTemplateValuesFrom",
                "template values only apply to a Dockerfile build: set spec.baseImageDockerfile or remove it",
            ));
        }
    }
}

fn image_ref(field: &str, image: &str, r: &mut Report) {
    if image.is_empty() {
        r.error(FieldError::required(field, "an image reference such as quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0"));
    } else if let Some(msg) = formats::image_reference(image) {
        r.error(FieldError::invalid(field, image, msg));
    }
}

fn outputs(spec: &OSArtifactSpec, r: &mut Report) {
    let disk = spec.cloud_image || spec.azure_image || spec.gce_image;
    if !(spec.iso || spec.netboot || disk) {
        r.warnings.push(
            "spec: no output selected (iso, cloudImage, azureImage, gceImage, netboot): only the image tarball <name>.tar will be built"
                .into(),
        );
    }
    if let Some(size) = &spec.disk_size {
        let text = match size {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        let positive =
            text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u64>().is_ok_and(|n| n > 0);
        if !positive {
            r.error(FieldError::invalid(
                "spec.diskSize",
                &text,
                "must be a positive whole number of megabytes, e.g. \"32000\"",
            ));
        } else if !disk {
            r.warn(
                "spec.diskSize",
                "has no effect without a disk image (cloudImage, azureImage or gceImage)",
            );
        }
    }
    match (&spec.netboot_url, spec.netboot) {
        (Some(url), _) if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) => {
            r.error(FieldError::invalid("spec.netbootURL", url, "must be an http:// or https:// URL without spaces"));
        }
        (Some(_), false) => r.warn("spec.netbootURL", "has no effect without netboot: true"),
        (None, true) => r.warn(
            "spec.netbootURL",
            "not set: the netboot files are built, but the generated iPXE script has no URL to load them from",
        ),
        _ => {}
    }
    if let Some(res) = &spec.resources {
        for (name, rr, enabled) in [
            ("iso", &res.iso, spec.iso),
            ("cloudImage", &res.cloud_image, spec.cloud_image),
            ("azureImage", &res.azure_image, spec.azure_image),
            ("gceImage", &res.gce_image, spec.gce_image),
            ("netboot", &res.netboot, spec.netboot),
        ] {
            if let Some(rr) = rr {
                resources(&format!("spec.resources.{name}"), rr, r);
                if !enabled {
                    r.warn(
                        &format!("spec.resources.{name}"),
                        format!("has no effect without {name}: true"),
                    );
                }
            }
        }
    }
    if let Some(v) = &spec.volume {
        for (i, mode) in v.access_modes.iter().flatten().enumerate() {
            const MODES: &[&str] = &[
                "ReadWriteOnce",
                "ReadOnlyMany",
                "ReadWriteMany",
                "ReadWriteOncePod",
            ];
            if !MODES.contains(&mode.as_str()) {
                r.error(FieldError::not_supported(
                    format!("spec.volume.accessModes[{i}]"),
                    mode,
                    MODES,
                ));
            }
        }
        if let Some(res) = &v.resources {
            for (kind, list) in [("requests", &res.requests), ("limits", &res.limits)] {
                for (k, q) in list.iter().flatten() {
                    if let Some(msg) = formats::quantity(&q.0) {
                        r.error(FieldError::invalid(
                            format!("spec.volume.resources.{kind}.{k}"),
                            &q.0,
                            msg,
                        ));
                    }
                }
            }
        }
    }
}

fn resources(path: &str, rr: &ResourceRequirements, r: &mut Report) {
    for (kind, list) in [("requests", &rr.requests), ("limits", &rr.limits)] {
        for (k, q) in list.iter().flatten() {
            if let Some(msg) = formats::quantity(&q.0) {
                r.error(FieldError::invalid(format!("{path}.{kind}.{k}"), &q.0, msg));
            }
        }
    }
}

fn secret_key_ref(path: &str, sel: &SecretKeyRef, default_key: &str, r: &mut Report) {
    if sel.name.is_empty() {
        r.error(FieldError::required(
            format!("{path}.name"),
            "the name of a Secret in the artifact's namespace",
        ));
    } else if let Some(msg) = formats::dns1123_subdomain(&sel.name) {
        r.error(FieldError::invalid(format!("{path}.name"), &sel.name, msg));
    }
    let key = sel.key.as_deref().unwrap_or(default_key);
    if let Some(msg) = formats::config_map_key(key) {
        r.error(FieldError::invalid(format!("{path}.key"), key, msg));
    }
}

fn secret_refs(spec: &OSArtifactSpec, r: &mut Report) {
    if let Some(s) = &spec.base_image_dockerfile {
        secret_key_ref("spec.baseImageDockerfile", s, DEFAULT_DOCKERFILE_KEY, r);
    }
    if let Some(s) = &spec.cloud_config_ref {
        secret_key_ref("spec.cloudConfigRef", s, DEFAULT_CLOUD_CONFIG_KEY, r);
    }
    if let Some(s) = &spec.dockerfile_template_values_from {
        if s.name.is_empty() {
            r.error(FieldError::required(
                "spec.dockerfileTemplateValuesFrom.name",
                "the name of a Secret in the artifact's namespace",
            ));
        } else if let Some(msg) = formats::dns1123_subdomain(&s.name) {
            r.error(FieldError::invalid(
                "spec.dockerfileTemplateValuesFrom.name",
                &s.name,
                msg,
            ));
        }
    }
    for (i, s) in spec.image_pull_secrets.iter().enumerate() {
        if s.name.is_empty() {
            r.error(FieldError::required(
                format!("spec.imagePullSecrets[{i}].name"),
                "the name of a kubernetes.io/dockerconfigjson Secret",
            ));
        }
    }
}

fn volumes(spec: &OSArtifactSpec, r: &mut Report) {
    let mut seen = BTreeSet::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}].name");
        // Reserved before duplicate: the CRD's per-item CEL rule reports every reserved name,
        // repeated or not, and the user sees the same error either way.
        if v.name.is_empty() {
            r.error(FieldError::required(path, ""));
        } else if names::RESERVED_VOLUMES.contains(&v.name.as_str()) {
            r.error(FieldError::invalid(
                path,
                &v.name,
                format!(
                    "reserved for the builder's own volumes ({}); choose another name",
                    names::RESERVED_VOLUMES.join(", ")
                ),
            ));
        } else if !seen.insert(v.name.as_str()) {
            r.error(FieldError::duplicate(path, &v.name));
        } else if let Some(msg) = formats::dns1123_label(&v.name) {
            r.error(FieldError::invalid(path, &v.name, msg));
        }
    }
}

fn volume_names(spec: &OSArtifactSpec) -> BTreeSet<&str> {
    spec.volumes.iter().map(|v| v.name.as_str()).collect()
}

fn bindings(spec: &OSArtifactSpec, r: &mut Report) {
    let Some(b) = &spec.volume_bindings else {
        return;
    };
    let known = volume_names(spec);
    let iso = spec.iso || spec.netboot;
    for (key, value, applies, why) in [
        (
            "buildContext",
            &b.build_context,
            spec.base_image_dockerfile.is_some(),
            "a build context is only used by a Dockerfile build: set spec.baseImageDockerfile or remove the binding",
        ),
        (
            "overlayISO",
            &b.overlay_iso,
            iso,
            "overlays are only used by ISO builds: set spec.iso (or spec.netboot) or remove the binding",
        ),
        (
            "overlayRootfs",
            &b.overlay_rootfs,
            iso,
            "overlays are only used by ISO builds: set spec.iso (or spec.netboot) or remove the binding",
        ),
    ] {
        let Some(name) = value else { continue };
        let path = format!("spec.volumeBindings.{key}");
        if !known.contains(name.as_str()) {
            r.error(FieldError::not_found(
                &path,
                name,
                "no volume of that name in spec.volumes",
            ));
        }
        if !applies {
            r.error(FieldError::forbidden(&path, why));
        }
    }
}

fn importers(spec: &OSArtifactSpec, r: &mut Report) {
    let known = volume_names(spec);
    let mut seen = BTreeSet::new();
    for (i, c) in spec.importers.iter().enumerate() {
        let path = format!("spec.importers[{i}]");
        if c.name.is_empty() {
            r.error(FieldError::required(format!("{path}.name"), ""));
        } else if !seen.insert(c.name.as_str()) {
            r.error(FieldError::duplicate(format!("{path}.name"), &c.name));
        } else if names::is_builder_container(&c.name) {
            r.error(FieldError::invalid(
                format!("{path}.name"),
                &c.name,
                format!("the builder pod uses this container name itself ({}, bundle-<n>); choose another", names::BUILDER_CONTAINERS.join(", ")),
            ));
        } else if let Some(msg) = formats::dns1123_label(&c.name) {
            r.error(FieldError::invalid(format!("{path}.name"), &c.name, msg));
        }
        container_image(&path, c, r);
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            if !known.contains(m.name.as_str()) {
                r.error(FieldError::not_found(
                    format!("{path}.volumeMounts[{j}].name"),
                    &m.name,
                    "no volume of that name in spec.volumes",
                ));
            }
        }
    }
}

fn container_image(path: &str, c: &Container, r: &mut Report) {
    match c.image.as_deref() {
        None | Some("") => r.error(FieldError::required(format!("{path}.image"), "")),
        Some(image) => {
            if let Some(msg) = formats::image_reference(image) {
                r.error(FieldError::invalid(format!("{path}.image"), image, msg));
            }
        }
    }
}

fn exporters(spec: &OSArtifactSpec, r: &mut Report) {
    if spec.exporters.len() > MAX_EXPORTERS {
        r.error(FieldError::too_many(
            "spec.exporters",
            spec.exporters.len(),
            MAX_EXPORTERS,
        ));
    }
    for (i, job) in spec.exporters.iter().enumerate() {
        let path = format!("spec.exporters[{i}].template.spec");
        if job.ttl_seconds_after_finished.is_some() {
            r.warn(
                &format!("spec.exporters[{i}].ttlSecondsAfterFinished"),
                "the Job may be deleted before the operator sees it finish, which fails the export; the operator's Jobs go with the artifact anyway, so leave it unset",
            );
        }
        let Some(pod) = &job.template.spec else {
            r.error(FieldError::required(
                path,
                "a pod template with at least one container",
            ));
            continue;
        };
        if pod.containers.is_empty() {
            r.error(FieldError::required(
                format!("{path}.containers"),
                "at least one container",
            ));
        }
        let mut own: BTreeSet<&str> = BTreeSet::new();
        for (j, v) in pod.volumes.iter().flatten().enumerate() {
            if v.name == "artifacts" {
                r.error(FieldError::invalid(
                    format!("{path}.volumes[{j}].name"),
                    &v.name,
                    "the operator adds the artifacts volume itself (the artifacts PVC, read-only): mount it by name without declaring it",
                ));
            }
            own.insert(v.name.as_str());
        }
        match pod.restart_policy.as_deref() {
            Some("Never") | Some("OnFailure") | None => {}
            Some(other) => r.error(FieldError::not_supported(
                format!("{path}.restartPolicy"),
                other,
                &["Never", "OnFailure"],
            )),
        }
        let mut names_seen = BTreeSet::new();
        let all = pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| ("initContainers", c))
            .chain(pod.containers.iter().map(|c| ("containers", c)));
        let mut counters: BTreeMap<&str, usize> = BTreeMap::new();
        for (kind, c) in all {
            let j = counters.entry(kind).or_default();
            let cpath = format!("{path}.{kind}[{j}]");
            *j += 1;
            if c.name.is_empty() {
                r.error(FieldError::required(format!("{cpath}.name"), ""));
            } else if !names_seen.insert(c.name.as_str()) {
                r.error(FieldError::duplicate(format!("{cpath}.name"), &c.name));
            }
            container_image(&cpath, c, r);
            for (k, m) in c.volume_mounts.iter().flatten().enumerate() {
                if m.name != "artifacts" && !own.contains(m.name.as_str()) {
                    r.error(FieldError::not_found(
                        format!("{cpath}.volumeMounts[{k}].name"),
                        &m.name,
                        "no volume of that name in the exporter's pod template (the artifacts volume is added by the operator)",
                    ));
                }
            }
        }
    }
}

fn scheduling(spec: &OSArtifactSpec, r: &mut Report) {
    for (field, map, values_are_labels) in [
        ("spec.nodeSelector", &spec.node_selector, true),
        ("spec.podLabels", &spec.pod_labels, true),
        ("spec.podAnnotations", &spec.pod_annotations, false),
    ] {
        for (k, v) in map {
            if let Some(msg) = formats::qualified_name(k) {
                r.error(FieldError::invalid(field, k, msg));
            }
            if values_are_labels && let Some(msg) = formats::label_value(v) {
                r.error(FieldError::invalid(format!("{field}[{k}]"), v, msg));
            }
        }
    }
    for key in [names::ARTIFACT_LABEL, names::ARTIFACT_UID_LABEL] {
        if spec.pod_labels.contains_key(key) {
            r.error(FieldError::forbidden(
                format!("spec.podLabels[{key}]"),
                "set by the operator; remove it",
            ));
        }
    }
}

fn deadline_and_names(spec: &OSArtifactSpec, r: &mut Report) {
    if let Some(t) = &spec.build_timeout
        && let Err(msg) = crate::duration::parse_seconds(t)
    {
        r.error(FieldError::invalid("spec.buildTimeout", t, msg));
    }
    let Some(o) = &spec.name_override else {
        return;
    };
    for (key, value, enabled) in [
        ("iso", &o.iso, spec.iso || spec.netboot),
        ("cloudImage", &o.cloud_image, spec.cloud_image),
        ("azureImage", &o.azure_image, spec.azure_image),
        ("gceImage", &o.gce_image, spec.gce_image),
        ("netboot", &o.netboot, spec.netboot),
    ] {
        let Some(v) = value else { continue };
        let path = format!("spec.nameOverride.{key}");
        if let Some(msg) = formats::dns1123_label(v) {
            r.error(FieldError::invalid(
                &path,
                v,
                format!("{msg}; it is the base name of the output files"),
            ));
        } else if !enabled {
            r.warn(&path, format!("has no effect without {key}: true"));
        }
    }
}

/// Checks that need the referenced Secrets' contents.
fn referenced_contents(spec: &OSArtifactSpec, secrets: &KnownSecrets, mode: Mode, r: &mut Report) {
    let missing = |field: &str, e: DockerfileError, r: &mut Report| {
        match (&e, mode) {
        // Warnings name the field at fault: the Secret's name, or the key it lacks.
        (DockerfileError::SecretNotFound { name }, Mode::Admission) => r.warn(
            &format!("{field}.name"),
            format!("Secret {name:?} not found; it may be applied later, but the build fails until it exists"),
        ),
        (DockerfileError::SecretUnavailable { name, reason }, Mode::Admission) => r.warn(
            &format!("{field}.name"),
            format!("could not read Secret {name:?} ({reason}); the operator checks it when it builds"),
        ),
        (DockerfileError::KeyNotFound { .. }, Mode::Admission) => {
            r.warn(&format!("{field}.key"), format!("{e}; the build fails until the key exists"))
        }
        _ => r.error(FieldError::invalid(field, &secret_field_value(spec, field), e.to_string())),
    }
    };

    if let Some(cc) = &spec.cloud_config_ref {
        let key = cc.key.as_deref().unwrap_or(DEFAULT_CLOUD_CONFIG_KEY);
        if let Err(e) = dockerfile::secret_value(secrets, &cc.name, key) {
            missing("spec.cloudConfigRef", e, r);
        }
    }
    let values_from = spec
        .dockerfile_template_values_from
        .as_ref()
        .map(|f| f.name.as_str());
    if let Some(from) = values_from
        && let Some(SecretLookup::NotFound | SecretLookup::Unavailable(_)) = secrets.get(from)
        && let Err(e) = dockerfile::template_values(spec, secrets)
    {
        missing("spec.dockerfileTemplateValuesFrom", e, r);
    }
    let Some(source) = &spec.base_image_dockerfile else {
        return;
    };
    if let Err(e) = dockerfile::render(spec, secrets, &Limits::default()) {
        let in_values = Some(e.secret_name()) == values_from && e.secret_name() != source.name;
        match e {
            // Already reported above.
            DockerfileError::SecretNotFound { .. } | DockerfileError::SecretUnavailable { .. }
                if in_values => {}
            e if in_values => missing("spec.dockerfileTemplateValuesFrom", e, r),
            e => missing("spec.baseImageDockerfile", e, r),
        }
    }
}

/// How an error names the referenced Secret: `name/key`.
fn secret_field_value(spec: &OSArtifactSpec, field: &str) -> String {
    let (sel, default) = match field {
        "spec.cloudConfigRef" => (spec.cloud_config_ref.as_ref(), DEFAULT_CLOUD_CONFIG_KEY),
        "spec.baseImageDockerfile" => (spec.base_image_dockerfile.as_ref(), DEFAULT_DOCKERFILE_KEY),
        _ => {
            return spec
                .dockerfile_template_values_from
                .as_ref()
                .map(|f| f.name.clone())
                .unwrap_or_default();
        }
    };
    sel.map(|s| format!("{}/{}", s.name, s.key.as_deref().unwrap_or(default)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
