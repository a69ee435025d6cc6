//! The phase machine: a pure function of what the controller observed (the builder pod, the
//! exporter Jobs and the phase already recorded for this build attempt) to the phase, a message a
//! user can act on, and the conditions. No IO, so every transition is unit-tested.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use osartifact_shared::{ArtifactOutput, Phase};
use serde::Deserialize;

/// What the controller saw for the current build attempt.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    pub pod: Option<&'a Pod>,
    /// The exporter Jobs by index; `None` where not created yet.
    pub jobs: Vec<Option<&'a Job>>,
    /// The phase already recorded for this attempt (`None` on first sight and for a new attempt).
    pub previous: Option<Phase>,
    /// Names of the builder pod's init containers, in order.
    pub steps: &'a [String],
    /// Files the build promises, for the Ready message.
    pub outputs: &'a [String],
    pub namespace: &'a str,
}

/// Status of one condition: `True`, `False` or `Unknown`, with its one-word reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub status: &'static str,
    pub reason: String,
}

impl Cond {
    fn new(status: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// Where the build stands and what to tell the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub phase: Phase,
    /// PascalCase: the Ready condition's reason and, on failure, the Event reason.
    pub reason: String,
    pub message: String,
    pub building: Cond,
    /// `None` when the artifact has no exporters.
    pub exporting: Option<Cond>,
}

impl Outcome {
    /// A failure found before or outside the pod (invalid spec, missing Secret, object in the way,
    /// pod refused by the API).
    pub fn error(category: &str, message: String, has_exporters: bool) -> Self {
        Self {
            phase: Phase::Error,
            reason: category.into(),
            message,
            building: Cond::new("False", category),
            exporting: has_exporters.then(|| Cond::new("False", "BuildFailed")),
        }
    }

    /// An exporter failed, or its Job vanished before its outcome was seen: the build itself
    /// succeeded, and its files are in the PVC.
    pub fn export_failed(message: String) -> Self {
        Self {
            phase: Phase::Error,
            reason: "ExportFailed".into(),
            message,
            building: Cond::new("False", "BuildSucceeded"),
            exporting: Some(Cond::new("False", "ExportFailed")),
        }
    }

    /// Whether the build succeeded, so the files it produces exist (also when an export failed).
    pub fn built(&self) -> bool {
        self.building.reason == "BuildSucceeded"
    }

    /// Waiting before the builder pod exists (first sight, or the previous build's pod terminating).
    pub fn pending(reason: &str, message: String, has_exporters: bool) -> Self {
        Self {
            phase: Phase::Pending,
            reason: reason.into(),
            message,
            building: Cond::new("Unknown", reason),
            exporting: has_exporters.then(|| Cond::new("Unknown", "WaitingForBuild")),
        }
    }

    fn building(reason: &str, message: String, has_exporters: bool) -> Self {
        Self {
            phase: Phase::Building,
            reason: reason.into(),
            message,
            building: Cond::new("True", reason),
            exporting: has_exporters.then(|| Cond::new("Unknown", "WaitingForBuild")),
        }
    }
}

fn terminated_ok(s: &ContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

fn failure(s: &ContainerStatus) -> Option<String> {
    let t = s.state.as_ref()?.terminated.as_ref()?;
    if t.exit_code == 0 {
        return None;
    }
    let mut text = format!(
        "{}, exit code {}",
        t.reason.as_deref().unwrap_or("Error"),
        t.exit_code
    );
    if let Some(m) = t
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        text.push_str(": ");
        text.push_str(&last_lines(m, 3, 400));
    }
    Some(text)
}

/// The tail of a termination message: the end of a log is where the error is.
fn last_lines(text: &str, lines: usize, max: usize) -> String {
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    let joined = tail.into_iter().rev().collect::<Vec<_>>().join(" | ");
    if joined.len() <= max {
        return joined;
    }
    let mut start = joined.len() - max;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &joined[start..])
}

/// The builder pod's story: `Ok(None)` = build succeeded, `Ok(Some(outcome))` = still going,
/// `Err(outcome)` = failed.
// Both sides are outcomes of the same size; boxing one would only add noise.
#[allow(clippy::result_large_err)]
fn judge_build(o: &Observed, has_exporters: bool) -> Result<Option<Outcome>, Outcome> {
    let fail = |reason: &str, message: String| Outcome::error(reason, message, has_exporters);
    let Some(pod) = o.pod else {
        if o.previous == Some(Phase::Building) {
            return Err(fail(
                "BuilderPodDeleted",
                "the builder pod was deleted before the build finished; set the build.kairos.io/retry annotation to a new value to build again".into(),
            ));
        }
        return Ok(Some(Outcome::pending(
            "Pending",
            "creating the builder pod".into(),
            has_exporters,
        )));
    };
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" {
        return Ok(None);
    }
    let total = o.steps.len() + 1;
    let logs = |c: &str| format!("kubectl logs -n {} {pod_name} -c {c}", o.namespace);
    let inits = status
        .and_then(|s| s.init_container_statuses.as_deref())
        .unwrap_or(&[]);
    let mains = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or(&[]);
    // Before the steps: the kubelet kills the running step when the deadline passes, and its
    // non-zero exit would otherwise read as the step's own failure.
    if phase == "Failed" && status.and_then(|s| s.reason.as_deref()) == Some(DEADLINE_EXCEEDED) {
        let all = o.steps.iter().map(String::as_str).chain(["done"]);
        let (index, name) = all
            .enumerate()
            .find(|(_, name)| {
                !inits
                    .iter()
                    .chain(mains.iter())
                    .any(|s| s.name == *name && terminated_ok(s))
            })
            .unwrap_or((o.steps.len(), "done"));
        let deadline = pod.spec.as_ref().and_then(|s| s.active_deadline_seconds);
        return Err(fail(
            DEADLINE_EXCEEDED,
            format!(
                "the build ran longer than its deadline{} and was stopped during step {} of {total} ({name}); see {}; raise spec.buildTimeout or find why the step hangs, then set the build.kairos.io/retry annotation to a new value",
                deadline_text(deadline),
                index + 1,
                logs(name)
            ),
        ));
    }
    // With restartPolicy Never a container that exited non-zero is final, even before the pod's
    // phase says Failed. Steps are reported in the order they ran.
    for (i, name) in o
        .steps
        .iter()
        .chain(std::iter::once(&"done".to_string()))
        .enumerate()
    {
        let s = inits.iter().chain(mains.iter()).find(|s| &s.name == name);
        if let Some(text) = s.and_then(failure) {
            return Err(fail(
                "BuildFailed",
                format!(
                    "step {} of {total} ({name}) failed: {text}; see {}; fix the cause, then set the build.kairos.io/retry annotation to a new value",
                    i + 1,
                    logs(name)
                ),
            ));
        }
    }
    if phase == "Failed" {
        let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or("Failed");
        let msg = status
            .and_then(|s| s.message.as_deref())
            .unwrap_or("no details");
        let category = if reason == "Evicted" {
            "BuilderPodEvicted"
        } else {
            "BuildFailed"
        };
        return Err(fail(
            category,
            format!(
                "the builder pod {pod_name} failed ({reason}: {msg}); set the build.kairos.io/retry annotation to a new value to build again"
            ),
        ));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(fail(
            "BuilderPodDeleted",
            format!(
                "the builder pod {pod_name} is being deleted before the build finished; set the build.kairos.io/retry annotation to a new value to build again"
            ),
        ));
    }
    if phase == "Unknown" {
        return Ok(Some(Outcome::building(
            "NodeUnreachable",
            format!(
                "the node of the builder pod {pod_name} stopped reporting (pod phase Unknown); waiting for it to come back"
            ),
            has_exporters,
        )));
    }
    let scheduled = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    if scheduled.is_none_or(|c| c.status != "True") {
        let why = scheduled
            .and_then(|c| c.message.as_deref())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Ok(Some(Outcome::building(
            "Scheduling",
            format!("the builder pod {pod_name} is waiting to be scheduled{why}"),
            has_exporters,
        )));
    }
    let all: Vec<&String> = o.steps.iter().collect();
    let current = all
        .iter()
        .position(|name| !inits.iter().any(|s| &&s.name == name && terminated_ok(s)));
    let (index, name, s) = match current {
        Some(i) => (i, all[i].as_str(), inits.iter().find(|s| &s.name == all[i])),
        None => (all.len(), "done", mains.iter().find(|s| s.name == "done")),
    };
    let waiting = s
        .and_then(|s| s.state.as_ref())
        .and_then(|st| st.waiting.as_ref())
        .and_then(|w| w.reason.as_deref().map(|r| (r, w.message.as_deref())));
    let what = if name == "done" {
        "checking the outputs"
    } else {
        "running"
    };
    let message = match waiting {
        Some((reason, msg)) if reason != "PodInitializing" => format!(
            "step {} of {total} ({name}) is waiting: {reason}{}",
            index + 1,
            msg.map(|m| format!(": {m}")).unwrap_or_default()
        ),
        _ => format!("step {} of {total} ({name}) {what}", index + 1),
    };
    Ok(Some(Outcome::building("Step", message, has_exporters)))
}

/// The reason Kubernetes gives a pod stopped by its `activeDeadlineSeconds` and a Job's `Failed`
/// condition when its deadline passed; also the outcome's reason (Event, Ready condition).
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// ` of 3h (activeDeadlineSeconds 10800)`, or nothing when the deadline is not known.
fn deadline_text(seconds: Option<i64>) -> String {
    match seconds.and_then(|s| u64::try_from(s).ok()) {
        Some(s) => format!(
            " of {} (activeDeadlineSeconds {s})",
            osartifact_shared::duration::format_seconds(s)
        ),
        None => String::new(),
    }
}

/// The report `done` writes as its termination message (see `plan::builder`).
#[derive(Deserialize)]
struct Manifest {
    files: Vec<ArtifactOutput>,
    #[serde(default)]
    truncated: bool,
}

/// What was built, as the builder pod's `done` container reported it in its termination message:
/// `Ok(None)` when there is no finished `done` to read (no pod, or not succeeded yet), `Err` with
/// the reason when the message is not a manifest of promised files (a foreign or broken message
/// must never fail the reconcile: the caller logs it and leaves the list empty). A truncated report
/// yields the entries that fit.
pub fn built_outputs(
    pod: Option<&Pod>,
    promised: &[String],
) -> Result<Option<Vec<ArtifactOutput>>, String> {
    let Some(t) = pod
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.container_statuses.as_deref())
        .and_then(|c| c.iter().find(|s| s.name == "done"))
        .and_then(|s| s.state.as_ref())
        .and_then(|st| st.terminated.as_ref())
        .filter(|t| t.exit_code == 0)
    else {
        return Ok(None);
    };
    let text = t.message.as_deref().unwrap_or_default().trim();
    if text.is_empty() {
        return Err("the done container left no termination message".into());
    }
    let m: Manifest = serde_json::from_str(text)
        .map_err(|e| format!("the done container's termination message is not a manifest: {e}"))?;
    for f in &m.files {
        if !promised.contains(&f.name) {
            return Err(format!(
                "the manifest names {:?}, not a file of this build",
                f.name
            ));
        }
        if f.size < 0 {
            return Err(format!("the manifest gives {} a negative size", f.name));
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if f.sha256.len() != 64 || !f.sha256.chars().all(hex) {
            return Err(format!("the manifest gives {} a malformed sha256", f.name));
        }
    }
    if !m.truncated && m.files.len() != promised.len() {
        return Err(format!(
            "the manifest lists {} file(s), the build promised {}",
            m.files.len(),
            promised.len()
        ));
    }
    Ok(Some(m.files))
}

/// How one exporter Job ended, judged by its conditions (so any `completions` works).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    NotCreated,
    Running,
    Succeeded,
    Failed(String),
    /// Stopped by its `activeDeadlineSeconds`.
    DeadlineExceeded,
}

pub fn judge_job(job: Option<&Job>) -> JobState {
    let Some(job) = job else {
        return JobState::NotCreated;
    };
    let conds = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    let is = |t: &str| conds.iter().find(|c| c.type_ == t && c.status == "True");
    if let Some(c) = is("Failed").or_else(|| is("FailureTarget")) {
        if c.reason.as_deref() == Some(DEADLINE_EXCEEDED) {
            return JobState::DeadlineExceeded;
        }
        return JobState::Failed(format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("Failed"),
            c.message.as_deref().unwrap_or("no details")
        ));
    }
    if is("Complete").is_some() || is("SuccessCriteriaMet").is_some() {
        return JobState::Succeeded;
    }
    JobState::Running
}

/// The phase, message and conditions for what was observed.
pub fn evaluate(o: &Observed) -> Outcome {
    let has_exporters = !o.jobs.is_empty();
    let built = o.previous == Some(Phase::Exporting) && has_exporters;
    if !built {
        match judge_build(o, has_exporters) {
            Err(outcome) => return outcome,
            Ok(Some(outcome)) => return outcome,
            Ok(None) => {}
        }
    }
    let files = o.outputs.join(", ");
    if !has_exporters {
        return Outcome {
            phase: Phase::Ready,
            reason: "Ready".into(),
            message: format!("built {files}"),
            building: Cond::new("False", "BuildSucceeded"),
            exporting: None,
        };
    }
    let total = o.jobs.len();
    let mut done = 0;
    let mut running = Vec::new();
    for (i, job) in o.jobs.iter().enumerate() {
        let name = job
            .and_then(|j| j.metadata.name.clone())
            .unwrap_or_else(|| format!("exporter {i}"));
        match judge_job(*job) {
            JobState::Succeeded => done += 1,
            JobState::Failed(why) => {
                return Outcome::export_failed(format!(
                    "exporter {i} (Job {name}) failed: {why}; see kubectl logs -n {} job/{name}; fix the exporter, then set the build.kairos.io/retry annotation to a new value",
                    o.namespace
                ));
            }
            JobState::DeadlineExceeded => {
                let deadline = job
                    .and_then(|j| j.spec.as_ref())
                    .and_then(|s| s.active_deadline_seconds);
                let mut out = Outcome::export_failed(format!(
                    "exporter {i} (Job {name}) ran longer than its deadline{} and was stopped; see kubectl logs -n {} job/{name}; raise spec.buildTimeout (or the exporter's activeDeadlineSeconds) or find why it hangs, then set the build.kairos.io/retry annotation to a new value",
                    deadline_text(deadline),
                    o.namespace
                ));
                out.reason = DEADLINE_EXCEEDED.into();
                out.exporting = Some(Cond::new("False", DEADLINE_EXCEEDED));
                return out;
            }
            JobState::Running | JobState::NotCreated => running.push(name),
        }
    }
    if done == total {
        return Outcome {
            phase: Phase::Ready,
            reason: "Ready".into(),
            message: format!("built {files}; {total} exporter(s) succeeded"),
            building: Cond::new("False", "BuildSucceeded"),
            exporting: Some(Cond::new("False", "ExportSucceeded")),
        };
    }
    Outcome {
        phase: Phase::Exporting,
        reason: "Exporting".into(),
        message: format!(
            "build succeeded; {done} of {total} exporter(s) finished, running: {}",
            running.join(", ")
        ),
        building: Cond::new("False", "BuildSucceeded"),
        exporting: Some(Cond::new("True", "Exporting")),
    }
}

/// Standard conditions for an outcome. `lastTransitionTime` is kept when a condition's status did
/// not change, as the API conventions ask.
pub fn conditions(
    out: &Outcome,
    generation: i64,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    let ready = if out.phase == Phase::Ready {
        Cond::new("True", "Ready")
    } else {
        Cond::new("False", out.reason.clone())
    };
    let mut list = vec![("Ready", ready, out.message.clone())];
    list.push(("Building", out.building.clone(), building_message(out)));
    if let Some(e) = &out.exporting {
        list.push(("Exporting", e.clone(), String::new()));
    }
    list.into_iter()
        .map(|(type_, c, message)| {
            let since = previous
                .iter()
                .find(|p| p.type_ == type_ && p.status == c.status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            Condition {
                type_: type_.into(),
                status: c.status.into(),
                reason: c.reason,
                message,
                observed_generation: Some(generation),
                last_transition_time: since,
            }
        })
        .collect()
}

fn building_message(out: &Outcome) -> String {
    match out.phase {
        Phase::Pending | Phase::Building => out.message.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "phase_tests.rs"]
mod tests;
