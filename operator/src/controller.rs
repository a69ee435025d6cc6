//! The reconciler: from an OSArtifact to the children that build it, following them, and a status a
//! user can read. The decisions are pure (`plan`, `phase`); this module does the IO.
//!
//! Build attempts: a build is for one (generation, retry annotation) pair. The pair is recorded in
//! the annotations of every child; the ConfigMap, written first, is the record of the current
//! attempt. A finished attempt (Ready or Error) is left alone, also across restarts; a new
//! generation or a new retry value deletes the previous attempt's pod and Jobs and builds again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use osartifact_shared::defaults::defaulted;
use osartifact_shared::names;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup};
use osartifact_shared::{ArtifactOutput, OSArtifact, OSArtifactStatus, Phase};
use serde_json::json;
use tracing::{info, warn};

use crate::apply;
use crate::errors::Error;
use crate::metrics::Metrics;
use crate::phase::{self, Observed, Outcome};
use crate::plan::{self, Attempt, Identity};
use crate::settings::Settings;

/// Safety-net requeue while a build runs; the owned-object watches do the real work.
const ACTIVE_REQUEUE: Duration = Duration::from_secs(120);
/// Periodic resync of finished artifacts (they do nothing unless their attempt changed).
const IDLE_REQUEUE: Duration = Duration::from_secs(3600);
/// While the previous attempt's objects terminate.
const WAIT_REQUEUE: Duration = Duration::from_secs(3);
/// An error found before the builder pod existed (an object in the way, the API refusing the
/// pod) may be fixed outside the artifact: look again now and then. A referenced Secret that
/// changes triggers a look at once; so does a spec change.
const RECHECK_REQUEUE: Duration = Duration::from_secs(30);

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per artifact, for the exponential backoff.
    backoff: Mutex<HashMap<ObjectRef<OSArtifact>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> Self {
        let reporter = Reporter {
            controller: names::FIELD_MANAGER.into(),
            instance: Some(instance),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            backoff: Mutex::new(HashMap::new()),
        }
    }

    fn reset_backoff(&self, key: &ObjectRef<OSArtifact>) {
        if let Ok(mut m) = self.backoff.lock() {
            m.remove(key);
        }
    }

    /// 2 s, 4 s, 8 s … capped at 5 minutes, per artifact.
    fn next_backoff(&self, key: ObjectRef<OSArtifact>) -> Duration {
        let n = match self.backoff.lock() {
            Ok(mut m) => {
                let n = m.entry(key).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        Duration::from_secs(2u64.saturating_pow(n.min(9))).min(Duration::from_secs(300))
    }
}

struct Apis {
    pods: Api<Pod>,
    jobs: Api<Job>,
    config_maps: Api<ConfigMap>,
    pvcs: Api<PersistentVolumeClaim>,
    secrets: Api<Secret>,
    artifacts: Api<OSArtifact>,
}

impl Apis {
    fn new(client: &Client, ns: &str) -> Self {
        Self {
            pods: Api::namespaced(client.clone(), ns),
            jobs: Api::namespaced(client.clone(), ns),
            config_maps: Api::namespaced(client.clone(), ns),
            pvcs: Api::namespaced(client.clone(), ns),
            secrets: Api::namespaced(client.clone(), ns),
            artifacts: Api::namespaced(client.clone(), ns),
        }
    }
}

#[tracing::instrument(skip(obj, ctx), fields(namespace = obj.namespace(), name = obj.name_any(), generation = obj.metadata.generation))]
pub async fn reconcile(obj: Arc<OSArtifact>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_timer();
    ctx.metrics.reconciled();
    if obj.metadata.deletion_timestamp.is_some() {
        // Children go with the artifact through their owner references; nothing to clean up.
        return Ok(Action::await_change());
    }
    let id = Identity::of(&obj).ok_or(Error::MissingMetadata("name, namespace or uid"))?;
    let apis = Apis::new(&ctx.client, &id.namespace);
    let key = ObjectRef::from_obj(obj.as_ref());
    match step(&obj, &id, &apis, &ctx).await {
        Ok(action) => {
            ctx.reset_backoff(&key);
            Ok(action)
        }
        Err(e) if e.is_user_fixable() => {
            ctx.reset_backoff(&key);
            ctx.metrics.failed(e.category());
            let mut message = e.to_string();
            if let Error::Plan(p) = &e {
                message = format!("{message}; {}", p.hint());
            }
            let out = Outcome::error(e.category(), message, !obj.spec.exporters.is_empty());
            // Writes (and Events) happen only when the message changes, so looking again is quiet.
            write_status(&obj, &id, &apis, &ctx, &out, &[], &[]).await?;
            Ok(Action::requeue(RECHECK_REQUEUE))
        }
        Err(e) => Err(e),
    }
}

pub fn error_policy(obj: Arc<OSArtifact>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(err.category());
    let delay = ctx.next_backoff(ObjectRef::from_obj(obj.as_ref()));
    warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

async fn step(
    obj: &OSArtifact,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
) -> Result<Action, Error> {
    let attempt = id.attempt();
    let status = obj.status.clone().unwrap_or_default();
    let has_exporters = !obj.spec.exporters.is_empty();
    let spec = defaulted(&obj.spec);

    let record = apply::get_owned(&apis.config_maps, &names::config_map(&id.name), &id.uid).await?;
    let same_attempt =
        record.as_ref().and_then(|c| Attempt::of_child(&c.metadata)) == Some(attempt.clone());
    let previous = status
        .phase
        .filter(|_| same_attempt && status.observed_generation == Some(id.generation));
    // A finished build does nothing until the spec changes or a retry is requested. An Error
    // found before the builder pod existed (a missing Secret, a broken template, an object in the
    // way) has its cause outside the build, so this attempt goes on when its cause is fixed.
    if previous == Some(Phase::Ready) {
        return Ok(Action::requeue(IDLE_REQUEUE));
    }
    let pod_name = names::builder_pod(&id.name);
    let mut pod = apply::get_owned(&apis.pods, &pod_name, &id.uid).await?;
    if previous == Some(Phase::Error) && (pod.is_some() || ran_and_failed(&status)) {
        return Ok(Action::requeue(IDLE_REQUEUE));
    }
    let mut jobs = Vec::new();
    for i in 0..spec.exporters.len() {
        jobs.push(apply::get_owned(&apis.jobs, &names::exporter_job(&id.name, i), &id.uid).await?);
    }

    if !same_attempt {
        if status.phase.is_none() {
            let out = Outcome::pending(
                "Pending",
                "queued: preparing the build".into(),
                has_exporters,
            );
            write_status(obj, id, apis, ctx, &out, &[], &[]).await?;
        }
        // Children of another attempt go first: pods are immutable and names are fixed.
        let mut waiting = false;
        if let Some(p) = pod.take() {
            if Attempt::of_child(&p.metadata) == Some(attempt.clone()) {
                pod = Some(p);
            } else {
                apply::delete(&apis.pods, &p).await?;
                waiting = true;
            }
        }
        for slot in &mut jobs {
            if let Some(j) = slot.take() {
                if Attempt::of_child(&j.metadata) == Some(attempt.clone()) {
                    *slot = Some(j);
                } else {
                    apply::delete(&apis.jobs, &j).await?;
                }
            }
        }
        if waiting {
            let out = Outcome::pending(
                "Replacing",
                format!("waiting for the previous build's pod {pod_name} to be deleted"),
                has_exporters,
            );
            write_status(obj, id, apis, ctx, &out, &[], &[]).await?;
            return Ok(Action::requeue(WAIT_REQUEUE));
        }
    }

    if pod.is_none() && previous != Some(Phase::Building) && previous != Some(Phase::Exporting) {
        // Record the attempt first, so a failure below is remembered as this attempt's outcome.
        let cm = plan::config_map(&spec, id);
        apply::apply(&apis.config_maps, &cm, &id.uid).await?;
        let known = lookup_secrets(&apis.secrets, &spec).await?;
        let p = plan::plan(obj, id, &known, &ctx.settings)?;
        if let Err(e) = apply::apply(&apis.pvcs, &p.pvc, &id.uid).await {
            if let Some(action) = replace_pvc(&e, obj, id, apis, ctx).await? {
                return Ok(action);
            }
            return Err(e);
        }
        for s in &p.secrets {
            apply::apply(&apis.secrets, s, &id.uid).await?;
        }
        let created = apply::apply(&apis.pods, &p.pod, &id.uid).await?;
        info!(pod = %pod_name, steps = p.steps.len(), "builder pod applied");
        pod = Some(created);
    }

    let outputs = plan::outputs(&spec, &id.name);
    let steps = pod.as_ref().map(plan::step_names).unwrap_or_default();
    let observe = |pod: Option<&Pod>, jobs: &[Option<Job>]| {
        phase::evaluate(&Observed {
            pod,
            jobs: jobs.iter().map(Option::as_ref).collect(),
            previous,
            steps: &steps,
            outputs: &outputs,
            namespace: &id.namespace,
        })
    };
    let mut out = observe(pod.as_ref(), &jobs);
    let missing = spec
        .exporters
        .iter()
        .enumerate()
        .find(|(i, _)| jobs.get(*i).is_some_and(Option::is_none));
    if let (Phase::Exporting, Some(Phase::Exporting), Some((i, _))) = (out.phase, previous, missing)
    {
        // The Jobs were all created before the status said Exporting: this one was deleted
        // (by hand, or by its ttlSecondsAfterFinished) before its outcome was seen. Exporting
        // again on our own could repeat an upload forever; the user decides.
        let job = names::exporter_job(&id.name, i);
        out = Outcome::export_failed(format!(
            "exporter {i} (Job {job}) was deleted before the operator saw it finish; set the build.kairos.io/retry annotation to a new value to build and export again"
        ));
    } else if out.phase == Phase::Exporting && jobs.iter().any(Option::is_none) {
        // The build succeeded: create the missing exporter Jobs.
        for (i, job) in plan::exporter_jobs(&spec, id).into_iter().enumerate() {
            if jobs.get(i).is_some_and(Option::is_none) {
                jobs[i] = Some(apply::apply(&apis.jobs, &job, &id.uid).await?);
            }
        }
        out = observe(pod.as_ref(), &jobs);
    }
    // Also after a failed export: the files are in the PVC for the user to fetch or export again.
    let (produced, files) = if out.built() {
        (outputs.clone(), built_files(obj, pod.as_ref(), &outputs))
    } else {
        (Vec::new(), Vec::new())
    };
    write_status(obj, id, apis, ctx, &out, &produced, &files).await?;
    Ok(if out.phase.is_terminal() {
        Action::requeue(IDLE_REQUEUE)
    } else {
        Action::requeue(ACTIVE_REQUEUE)
    })
}

/// True when the Error of this attempt came from the build itself (a failed step or exporter, an
/// evicted or deleted pod): that stays failed until a retry, even when its pod is gone.
fn ran_and_failed(status: &OSArtifactStatus) -> bool {
    const RAN: &[&str] = &[
        "BuildFailed",
        "BuilderPodEvicted",
        "BuilderPodDeleted",
        "ExportFailed",
    ];
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .is_some_and(|c| RAN.contains(&c.reason.as_str()))
}

/// The artifacts in the Secret's namespace that refer to it (Dockerfile, template values,
/// cloud-config, pull secrets): when it changes, a build that waits for it can go on.
pub fn artifacts_referencing(
    artifacts: &[Arc<OSArtifact>],
    namespace: &str,
    secret: &str,
) -> Vec<ObjectRef<OSArtifact>> {
    artifacts
        .iter()
        .filter(|a| a.namespace().as_deref() == Some(namespace))
        .filter(|a| plan::secret_names(&a.spec).iter().any(|n| n == secret))
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// A new generation that changes an immutable PVC field: delete our PVC (no pod uses it any more)
/// and wait for it to go. `None` when the error is something else.
async fn replace_pvc(
    e: &Error,
    obj: &OSArtifact,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
) -> Result<Option<Action>, Error> {
    let Error::Refused { .. } = e else {
        return Ok(None);
    };
    let name = names::artifacts_pvc(&id.name);
    let Some(existing) = apply::get_owned(&apis.pvcs, &name, &id.uid).await? else {
        return Ok(None);
    };
    if Attempt::of_child(&existing.metadata) == Some(id.attempt()) {
        return Ok(None);
    }
    apply::delete(&apis.pvcs, &existing).await?;
    let out = Outcome::pending(
        "Replacing",
        format!(
            "the artifacts PVC {name} changed in a way Kubernetes cannot update; waiting for the old one to be deleted"
        ),
        !obj.spec.exporters.is_empty(),
    );
    write_status(obj, id, apis, ctx, &out, &[], &[]).await?;
    Ok(Some(Action::requeue(WAIT_REQUEUE)))
}

async fn lookup_secrets(
    api: &Api<Secret>,
    spec: &osartifact_shared::OSArtifactSpec,
) -> Result<KnownSecrets, Error> {
    let mut known = KnownSecrets::new();
    for name in plan::secret_names(spec) {
        match api.get_opt(&name).await {
            Ok(Some(s)) => known.insert_secret(&s),
            Ok(None) => known.insert(name, SecretLookup::NotFound),
            Err(e) => return Err(Error::kube(format!("reading Secret {name}"), e)),
        }
    }
    Ok(known)
}

/// What a succeeded build published, from the builder pod's report; what the status already says
/// when the pod is gone (its report was recorded while it existed). A report that cannot be used
/// is logged and leaves the list empty: it never fails the reconcile.
fn built_files(obj: &OSArtifact, pod: Option<&Pod>, promised: &[String]) -> Vec<ArtifactOutput> {
    match phase::built_outputs(pod, promised) {
        Ok(Some(files)) => files,
        Ok(None) => obj
            .status
            .as_ref()
            .map(|s| s.outputs.clone())
            .unwrap_or_default(),
        Err(why) => {
            warn!(%why, "ignoring the builder pod's report of what was built");
            Vec::new()
        }
    }
}

/// Writes the status (server-side apply on /status) when it changed, and records an Event for a
/// transition or a new failure.
async fn write_status(
    obj: &OSArtifact,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
    out: &Outcome,
    produced: &[String],
    files: &[ArtifactOutput],
) -> Result<(), Error> {
    let old = obj.status.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    let same_gen = old.observed_generation == Some(id.generation);
    let start_time = match (&old.start_time, same_gen, old.phase) {
        (Some(t), true, Some(p)) if !p.is_terminal() || p == out.phase => Some(t.clone()),
        _ => Some(now.clone()),
    };
    let completion_time = if out.phase.is_terminal() {
        old.completion_time
            .clone()
            .filter(|_| old.phase == Some(out.phase) && same_gen)
            .or(Some(now.clone()))
    } else {
        None
    };
    let new = OSArtifactStatus {
        phase: Some(out.phase),
        message: Some(out.message.clone()),
        observed_generation: Some(id.generation),
        conditions: phase::conditions(out, id.generation, &old.conditions, &now),
        artifacts_pvc: Some(names::artifacts_pvc(&id.name)),
        builder_pod: Some(names::builder_pod(&id.name)),
        artifacts: produced.to_vec(),
        outputs: files.to_vec(),
        start_time,
        completion_time,
    };
    if new == old {
        return Ok(());
    }
    let body = json!({
        "apiVersion": OSArtifact::api_version(&()),
        "kind": OSArtifact::kind(&()),
        "status": new,
    });
    let pp = PatchParams::apply(names::FIELD_MANAGER).force();
    apis.artifacts
        .patch_status(&id.name, &pp, &Patch::Apply(&body))
        .await
        .map_err(|e| Error::kube("writing the status", e))?;
    let transition = old.phase != Some(out.phase);
    if transition {
        ctx.metrics.transition(out.phase.as_str());
    }
    if transition || (out.phase == Phase::Error && old.message.as_deref() != Some(&out.message)) {
        let (type_, reason) = if out.phase == Phase::Error {
            (EventType::Warning, out.reason.clone())
        } else {
            (EventType::Normal, out.phase.as_str().to_string())
        };
        let ev = Event {
            type_,
            reason,
            note: Some(truncate(&out.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, "could not record an Event");
        }
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
