//! The reconciler: from an OSArtifact to the children that build it, following them, and a status a
//! user can read. The decisions are pure (`plan`, `phase`); this module does the IO.
//!
//! Requests: a reconcile reads the artifact and its children from the controller's caches and the
//! ledger (what this process wrote that the caches may not show yet), so following a build costs
//! no request at all; it writes only what changed: each child once, each status change once, one
//! Event per transition. Live reads are left where no cache answers: the user's Secrets, when a
//! build is about to start (see `caches`), and the error paths (a name taken by someone else, an
//! immutable PVC field changed).
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
use kube::core::PartialObjectMetaExt;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use osartifact_shared::defaults::defaulted;
use osartifact_shared::names;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup};
use osartifact_shared::{ArtifactOutput, OSArtifact, OSArtifactSpec, OSArtifactStatus, Phase};
use serde_json::json;
use tracing::{info, warn};

use crate::apply;
use crate::caches::{self, Caches};
use crate::errors::Error;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::phase::{self, Observed, Outcome};
use crate::plan::{self, Attempt, Identity};
use crate::queue::{Admission, Queue};
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
/// A queued artifact looks again this often (its place in the queue may have changed); the head
/// of the queue is also woken when a build finishes.
const QUEUED_REQUEUE: Duration = Duration::from_secs(30);

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub caches: Caches,
    pub ledger: Ledger,
    pub queue: Queue,
    /// Consecutive transient failures per artifact, for the exponential backoff.
    backoff: Mutex<HashMap<ObjectRef<OSArtifact>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        instance: String,
        caches: Caches,
        queue: Queue,
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
            caches,
            ledger: Ledger::default(),
            queue,
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
    if !ctx.caches.synced().await {
        return Err(Error::NotSynced);
    }
    let id = Identity::of(&obj).ok_or(Error::MissingMetadata("name, namespace or uid"))?;
    let apis = Apis::new(&ctx.client, &id.namespace);
    let key = ObjectRef::from_obj(obj.as_ref());
    let status = ctx.ledger.status(&obj);
    match step(&obj, &status, &id, &apis, &ctx).await {
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
            write_status(&obj, &status, &id, &apis, &ctx, &out, &[], &[]).await?;
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

/// The child `name` as this process knows it (cache, then ledger), checked to be this artifact's.
fn known_child<K>(
    ctx: &Context,
    obj: &OSArtifact,
    id: &Identity,
    store: &kube::runtime::reflector::Store<K>,
    name: &str,
) -> Result<Option<Arc<K>>, Error>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let child = ctx
        .ledger
        .child(obj, name, caches::get(store, &id.namespace, name));
    if let Some(c) = &child {
        apply::check_owned(c.as_ref(), &id.uid)?;
    }
    Ok(child)
}

async fn step(
    obj: &OSArtifact,
    status: &OSArtifactStatus,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
) -> Result<Action, Error> {
    let attempt = id.attempt();
    let has_exporters = !obj.spec.exporters.is_empty();
    let spec = defaulted(&obj.spec);
    let caches = &ctx.caches;

    let cm_name = names::config_map(&id.name);
    let record = known_child(ctx, obj, id, &caches.config_maps, &cm_name)?;
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
    let mut pod = known_child(ctx, obj, id, &caches.pods, &pod_name)?;
    if previous == Some(Phase::Error) && (pod.is_some() || ran_and_failed(status)) {
        return Ok(Action::requeue(IDLE_REQUEUE));
    }
    let mut jobs = Vec::new();
    for i in 0..spec.exporters.len() {
        let name = names::exporter_job(&id.name, i);
        jobs.push(known_child(ctx, obj, id, &caches.jobs, &name)?);
    }

    if !same_attempt {
        // Children of another attempt go first: pods are immutable and names are fixed.
        let mut waiting = false;
        if let Some(p) = pod.take() {
            if Attempt::of_child(&p.metadata) == Some(attempt.clone()) {
                pod = Some(p);
            } else {
                if p.metadata.deletion_timestamp.is_none() {
                    apply::delete::<Pod>(&apis.pods, &p.metadata).await?;
                    ctx.ledger.deleted::<Pod>(obj, &pod_name);
                }
                waiting = true;
            }
        }
        for slot in &mut jobs {
            if let Some(j) = slot.take() {
                if Attempt::of_child(&j.metadata) == Some(attempt.clone()) {
                    *slot = Some(j);
                } else if j.metadata.deletion_timestamp.is_none() {
                    apply::delete::<Job>(&apis.jobs, &j.metadata).await?;
                    ctx.ledger.deleted::<Job>(obj, &j.name_any());
                }
            }
        }
        if waiting {
            let out = Outcome::pending(
                "Replacing",
                format!("waiting for the previous build's pod {pod_name} to be deleted"),
                has_exporters,
            );
            write_status(obj, status, id, apis, ctx, &out, &[], &[]).await?;
            return Ok(Action::requeue(WAIT_REQUEUE));
        }
    }

    if pod.is_none() && previous != Some(Phase::Building) && previous != Some(Phase::Exporting) {
        if let queued @ Admission::Queued { .. } =
            ctx.queue.admit(&id.namespace, &id.name, &ctx.metrics)
        {
            let message = queued.message().unwrap_or_default();
            let out = Outcome::pending("Queued", message, has_exporters);
            write_status(obj, status, id, apis, ctx, &out, &[], &[]).await?;
            return Ok(Action::requeue(QUEUED_REQUEUE));
        }
        let started = start_build(
            obj,
            status,
            id,
            apis,
            ctx,
            &spec,
            same_attempt,
            record.as_ref(),
        )
        .await;
        if !matches!(started, Ok(None)) {
            // A build that did not start holds no slot.
            ctx.queue.release(&id.namespace, &id.name);
        }
        if let Some(action) = started? {
            return Ok(action);
        }
        pod = known_child(ctx, obj, id, &caches.pods, &pod_name)?;
    }

    let outputs = plan::outputs(&spec, &id.name);
    let steps = pod.as_deref().map(plan::step_names).unwrap_or_default();
    let observe = |pod: Option<&Pod>, jobs: &[Option<Arc<Job>>]| {
        phase::evaluate(&Observed {
            pod,
            jobs: jobs.iter().map(Option::as_deref).collect(),
            previous,
            steps: &steps,
            outputs: &outputs,
            namespace: &id.namespace,
        })
    };
    let mut out = observe(pod.as_deref(), &jobs);
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
        for (i, job) in plan::exporter_jobs(&spec, id, &ctx.settings)
            .into_iter()
            .enumerate()
        {
            if jobs.get(i).is_some_and(Option::is_none) {
                let created = apply::create(&apis.jobs, &job, &id.uid).await?;
                jobs[i] = Some(ctx.ledger.created(obj, created));
            }
        }
        out = observe(pod.as_deref(), &jobs);
    }
    // Also after a failed export: the files are in the PVC for the user to fetch or export again.
    let (produced, files) = if out.built() {
        (
            outputs.clone(),
            built_files(status, pod.as_deref(), &outputs),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    write_status(obj, status, id, apis, ctx, &out, &produced, &files).await?;
    if status.phase == Some(Phase::Building) && out.phase != Phase::Building {
        // The build's slot is free: the head of the queue need not wait for its next look.
        ctx.queue.wake_heads();
    }
    Ok(if out.phase.is_terminal() {
        Action::requeue(IDLE_REQUEUE)
    } else {
        Action::requeue(ACTIVE_REQUEUE)
    })
}

/// Records the attempt and creates what the build needs: ConfigMap, PVC, Secrets, builder pod.
/// `Some(action)` when the build cannot start yet (the old PVC is being replaced). `spec` is the
/// artifact's, defaulted.
#[allow(clippy::too_many_arguments)]
async fn start_build(
    obj: &OSArtifact,
    status: &OSArtifactStatus,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
    spec: &OSArtifactSpec,
    same_attempt: bool,
    record: Option<&Arc<caches::ConfigMapMeta>>,
) -> Result<Option<Action>, Error> {
    // The attempt's record and the volume do not depend on each other, so they are written
    // concurrently (one round trip fewer before the pod). Both are awaited to the end: a failure
    // of planning is still remembered as this attempt's outcome by its record.
    let record_attempt = async {
        if same_attempt {
            return Ok(());
        }
        // The record of another attempt is replaced, not applied over: it was created, and keys
        // its spec no longer sets would stay with the creating manager.
        if let Some(old) = record {
            apply::delete::<ConfigMap>(&apis.config_maps, &old.metadata).await?;
        }
        let cm = apply::create(&apis.config_maps, &plan::config_map(spec, id), &id.uid).await?;
        ctx.ledger
            .created(obj, cm.metadata.into_response_partial::<ConfigMap>());
        Ok::<_, Error>(())
    };
    let prepare = async {
        let known = lookup_secrets(&apis.secrets, spec).await?;
        let p = plan::plan(obj, id, &known, &ctx.settings)?;
        if let Err(e) = ensure_pvc(obj, id, apis, ctx, &p.pvc).await {
            if let Some(action) = replace_pvc(&e, obj, status, id, apis, ctx).await? {
                return Ok(Err(action));
            }
            return Err(e);
        }
        for s in &p.secrets {
            apply::create(&apis.secrets, s, &id.uid).await?;
        }
        Ok::<_, Error>(Ok(p))
    };
    // `futures::join!` polls in order (the record first), so the requests go out in a fixed order.
    let (recorded, prepared) = futures::join!(record_attempt, prepare);
    recorded?;
    // The pod comes last: it mounts the PVC by name, so the PVC must be known to be ours.
    let p = match prepared? {
        Ok(p) => p,
        Err(action) => return Ok(Some(action)),
    };
    let created = apply::create(&apis.pods, &p.pod, &id.uid).await?;
    info!(pod = %p.pod.name_any(), steps = p.steps.len(), "builder pod created");
    ctx.ledger.created(obj, created);
    Ok(None)
}

/// The artifacts PVC for this attempt: created when the caches show none, applied over when it
/// is another attempt's (a new size, the attempt's annotations), left alone when it is this one's.
async fn ensure_pvc(
    obj: &OSArtifact,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
    desired: &PersistentVolumeClaim,
) -> Result<(), Error> {
    let name = names::artifacts_pvc(&id.name);
    let written = match known_child(ctx, obj, id, &ctx.caches.pvcs, &name)? {
        Some(c) if Attempt::of_child(&c.metadata) == Some(id.attempt()) => return Ok(()),
        Some(_) => apply::apply(&apis.pvcs, desired).await?,
        None => apply::create(&apis.pvcs, desired, &id.uid).await?,
    };
    ctx.ledger.created(
        obj,
        written
            .metadata
            .into_response_partial::<PersistentVolumeClaim>(),
    );
    Ok(())
}

/// True when the Error of this attempt came from the build itself (a failed step or exporter, an
/// evicted or deleted pod): that stays failed until a retry, even when its pod is gone.
fn ran_and_failed(status: &OSArtifactStatus) -> bool {
    const RAN: &[&str] = &[
        "BuildFailed",
        "BuilderPodEvicted",
        "BuilderPodDeleted",
        "ExportFailed",
        "DeadlineExceeded",
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
    status: &OSArtifactStatus,
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
    apply::delete::<PersistentVolumeClaim>(&apis.pvcs, &existing.metadata).await?;
    ctx.ledger.deleted::<PersistentVolumeClaim>(obj, &name);
    let out = Outcome::pending(
        "Replacing",
        format!(
            "the artifacts PVC {name} changed in a way Kubernetes cannot update; waiting for the old one to be deleted"
        ),
        !obj.spec.exporters.is_empty(),
    );
    write_status(obj, status, id, apis, ctx, &out, &[], &[]).await?;
    Ok(Some(Action::requeue(WAIT_REQUEUE)))
}

async fn lookup_secrets(api: &Api<Secret>, spec: &OSArtifactSpec) -> Result<KnownSecrets, Error> {
    // Read concurrently: a spec may name several (Dockerfile, values, cloud-config, pull secrets).
    let reads = plan::secret_names(spec).into_iter().map(|name| async move {
        let got = api.get_opt(&name).await;
        (name, got)
    });
    let mut known = KnownSecrets::new();
    for (name, got) in futures::future::join_all(reads).await {
        match got {
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
fn built_files(
    status: &OSArtifactStatus,
    pod: Option<&Pod>,
    promised: &[String],
) -> Vec<ArtifactOutput> {
    match phase::built_outputs(pod, promised) {
        Ok(Some(files)) => files,
        Ok(None) => status.outputs.clone(),
        Err(why) => {
            warn!(%why, "ignoring the builder pod's report of what was built");
            Vec::new()
        }
    }
}

/// Writes the status (server-side apply on /status) when it differs from `old` (the status as this
/// process last knows it, see `ledger`), and records an Event for a transition or a new failure.
#[allow(clippy::too_many_arguments)]
async fn write_status(
    obj: &OSArtifact,
    old: &OSArtifactStatus,
    id: &Identity,
    apis: &Apis,
    ctx: &Context,
    out: &Outcome,
    produced: &[String],
    files: &[ArtifactOutput],
) -> Result<(), Error> {
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
    if &new == old {
        return Ok(());
    }
    let body = json!({
        "apiVersion": OSArtifact::api_version(&()),
        "kind": OSArtifact::kind(&()),
        "status": new,
    });
    let pp = PatchParams::apply(names::FIELD_MANAGER).force();
    let written = apis
        .artifacts
        .patch_status(&id.name, &pp, &Patch::Apply(&body))
        .await
        .map_err(|e| Error::kube("writing the status", e))?;
    ctx.ledger
        .wrote_status(obj, new, written.metadata.resource_version);
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
