use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;

fn steps() -> Vec<String> {
    ["fetch", "unpack", "bundle-0", "tarball", "iso"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn outputs() -> Vec<String> {
    vec!["a.tar".into(), "a.iso".into()]
}

fn pod(phase: &str, scheduled: bool, inits: Vec<ContainerStatus>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("a-build".into()),
            ..Default::default()
        },
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: if scheduled { "True" } else { "False" }.into(),
                message: (!scheduled).then(|| "0/3 nodes are available".into()),
                ..Default::default()
            }]),
            init_container_statuses: Some(inits),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn done(name: &str) -> ContainerStatus {
    term(name, 0, None)
}

fn term(name: &str, code: i32, msg: Option<&str>) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                message: msg.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn running(name: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: Some(ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn job(conds: &[(&str, &str)]) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("a-export-0".into()),
            ..Default::default()
        },
        status: Some(JobStatus {
            conditions: Some(
                conds
                    .iter()
                    .map(|(t, s)| JobCondition {
                        type_: t.to_string(),
                        status: s.to_string(),
                        reason: Some("BackoffLimitExceeded".into()),
                        message: Some("Job has reached the specified backoff limit".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn eval(pod: Option<&Pod>, jobs: Vec<Option<&Job>>, previous: Option<Phase>) -> Outcome {
    let s = steps();
    let o = outputs();
    evaluate(&Observed {
        pod,
        jobs,
        previous,
        steps: &s,
        outputs: &o,
        namespace: "ns",
    })
}

#[test]
fn pending_before_the_pod_exists() {
    let out = eval(None, vec![], None);
    assert_eq!(out.phase, Phase::Pending);
}

#[test]
fn unscheduled_pod_is_building_and_says_why() {
    // In a cluster without nodes the pod stays Pending with no status beyond scheduling.
    let p = pod("Pending", false, vec![]);
    let out = eval(Some(&p), vec![], None);
    assert_eq!(out.phase, Phase::Building);
    assert!(
        out.message.contains("waiting to be scheduled: 0/3 nodes"),
        "{}",
        out.message
    );
    let bare = Pod {
        metadata: p.metadata.clone(),
        ..Default::default()
    };
    assert!(
        eval(Some(&bare), vec![], None)
            .message
            .contains("waiting to be scheduled")
    );
}

#[test]
fn message_names_the_running_step_of_how_many() {
    let p = pod(
        "Pending",
        true,
        vec![done("fetch"), done("unpack"), running("bundle-0")],
    );
    let out = eval(Some(&p), vec![], None);
    assert_eq!(out.phase, Phase::Building);
    assert_eq!(out.message, "step 3 of 6 (bundle-0) running");
}

#[test]
fn waiting_reason_is_reported() {
    let mut w = running("fetch");
    w.state = Some(ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some("ImagePullBackOff".into()),
            message: Some("pull denied".into()),
        }),
        ..Default::default()
    });
    let p = pod("Pending", true, vec![w]);
    let out = eval(Some(&p), vec![], None);
    assert_eq!(
        out.message,
        "step 1 of 6 (fetch) is waiting: ImagePullBackOff: pull denied"
    );
}

#[test]
fn failed_step_names_container_reason_and_exit_code() {
    let p = pod(
        "Failed",
        true,
        vec![
            done("fetch"),
            done("unpack"),
            term(
                "bundle-0",
                3,
                Some("line1\nunauthorized: authentication required\n"),
            ),
        ],
    );
    let out = eval(Some(&p), vec![], None);
    assert_eq!(out.phase, Phase::Error);
    assert_eq!(out.reason, "BuildFailed");
    assert!(
        out.message
            .starts_with("step 3 of 6 (bundle-0) failed: Error, exit code 3: line1 | unauthorized"),
        "{}",
        out.message
    );
    assert!(
        out.message
            .contains("kubectl logs -n ns a-build -c bundle-0")
    );
    assert!(out.message.contains("build.kairos.io/retry"));
}

#[test]
fn a_failed_step_is_final_even_before_the_pod_phase_says_so() {
    let p = pod("Running", true, vec![term("fetch", 1, None)]);
    assert_eq!(eval(Some(&p), vec![], None).phase, Phase::Error);
}

#[test]
fn evicted_pod_is_an_error_with_the_reason() {
    let mut p = pod("Failed", true, vec![]);
    let st = p.status.as_mut().unwrap();
    st.reason = Some("Evicted".into());
    st.message = Some("The node was low on resource: ephemeral-storage.".into());
    let out = eval(Some(&p), vec![], None);
    assert_eq!(
        (out.phase, out.reason.as_str()),
        (Phase::Error, "BuilderPodEvicted")
    );
    assert!(out.message.contains("ephemeral-storage"));
}

#[test]
fn unknown_pod_phase_waits_and_does_not_rebuild() {
    let p = pod("Unknown", true, vec![]);
    let out = eval(Some(&p), vec![], Some(Phase::Building));
    assert_eq!(
        (out.phase, out.reason.as_str()),
        (Phase::Building, "NodeUnreachable")
    );
}

#[test]
fn pod_deleted_under_us_is_an_error() {
    let out = eval(None, vec![], Some(Phase::Building));
    assert_eq!(
        (out.phase, out.reason.as_str()),
        (Phase::Error, "BuilderPodDeleted")
    );
    let mut p = pod("Running", true, vec![running("fetch")]);
    p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    assert_eq!(
        eval(Some(&p), vec![], Some(Phase::Building)).phase,
        Phase::Error
    );
}

#[test]
fn success_without_exporters_is_ready_directly() {
    let p = pod("Succeeded", true, vec![]);
    let out = eval(Some(&p), vec![], Some(Phase::Building));
    assert_eq!(out.phase, Phase::Ready, "never passes through Exporting");
    assert_eq!(out.message, "built a.tar, a.iso");
    assert!(out.exporting.is_none());
}

#[test]
fn success_with_exporters_is_exporting_until_jobs_complete() {
    let p = pod("Succeeded", true, vec![]);
    assert_eq!(
        eval(Some(&p), vec![None], Some(Phase::Building)).phase,
        Phase::Exporting
    );
    let running = job(&[]);
    assert_eq!(
        eval(Some(&p), vec![Some(&running)], Some(Phase::Exporting)).phase,
        Phase::Exporting
    );
    let complete = job(&[("Complete", "True")]);
    assert_eq!(
        eval(Some(&p), vec![Some(&complete)], Some(Phase::Exporting)).phase,
        Phase::Ready
    );
    // The pod is no longer needed once the build succeeded.
    assert_eq!(
        eval(None, vec![Some(&complete)], Some(Phase::Exporting)).phase,
        Phase::Ready
    );
}

#[test]
fn bug11_exporter_judged_by_conditions_for_any_completions() {
    let p = pod("Succeeded", true, vec![]);
    for (conds, want) in [
        (
            vec![("Failed", "True")],
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
            ),
        ),
        (
            vec![("FailureTarget", "True")],
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
            ),
        ),
        (vec![("SuccessCriteriaMet", "True")], JobState::Succeeded),
        (vec![("Complete", "True")], JobState::Succeeded),
        (vec![("Complete", "False")], JobState::Running),
    ] {
        let j = job(&conds);
        assert_eq!(judge_job(Some(&j)), want, "{conds:?}");
    }
    let failed = job(&[("Failed", "True")]);
    let out = eval(Some(&p), vec![Some(&failed)], Some(Phase::Exporting));
    assert_eq!(
        (out.phase, out.reason.as_str()),
        (Phase::Error, "ExportFailed")
    );
    assert!(out.message.contains("Job a-export-0"));
}

#[test]
fn conditions_carry_reasons_generation_and_stable_transition_times() {
    let p = pod("Pending", true, vec![running("fetch")]);
    let out = eval(Some(&p), vec![None], None);
    let t0 = Time(Timestamp::from_second(1_000).unwrap());
    let t1 = Time(Timestamp::from_second(2_000).unwrap());
    let first = conditions(&out, 4, &[], &t0);
    let types: Vec<_> = first
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("Ready", "False", "Step"),
            ("Building", "True", "Step"),
            ("Exporting", "Unknown", "WaitingForBuild")
        ]
    );
    assert!(first.iter().all(|c| c.observed_generation == Some(4)));
    let again = conditions(&out, 4, &first, &t1);
    assert!(
        again.iter().all(|c| c.last_transition_time == t0),
        "unchanged status keeps its time"
    );
    let ready = eval(Some(&pod("Succeeded", true, vec![])), vec![], None);
    let flipped = conditions(&ready, 4, &first, &t1);
    assert_eq!(flipped[0].last_transition_time, t1);
    assert_eq!(
        (flipped[0].status.as_str(), flipped[0].reason.as_str()),
        ("True", "Ready")
    );
}

fn succeeded_with_report(message: Option<&str>) -> Pod {
    let mut p = pod("Succeeded", true, vec![]);
    if let Some(s) = p.status.as_mut() {
        s.container_statuses = Some(vec![term("done", 0, message)]);
    }
    p
}

const SUM_A: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const SUM_B: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn the_done_report_becomes_the_list_of_built_files() {
    let msg = format!(
        r#"{{"files":[{{"name":"a.tar","size":6,"sha256":"{SUM_A}"}},{{"name":"a.iso","size":3,"sha256":"{SUM_B}"}}]}}"#
    );
    let p = succeeded_with_report(Some(&msg));
    let files = built_outputs(Some(&p), &outputs()).unwrap().unwrap();
    assert_eq!(
        files,
        vec![
            ArtifactOutput {
                name: "a.tar".into(),
                size: 6,
                sha256: SUM_A.into()
            },
            ArtifactOutput {
                name: "a.iso".into(),
                size: 3,
                sha256: SUM_B.into()
            },
        ]
    );
    // A truncated report gives the entries that fit.
    let cut =
        format!(r#"{{"files":[{{"name":"a.tar","size":6,"sha256":"{SUM_A}"}}],"truncated":true}}"#);
    let p = succeeded_with_report(Some(&cut));
    assert_eq!(
        built_outputs(Some(&p), &outputs()).unwrap().unwrap().len(),
        1
    );
}

#[test]
fn nothing_to_read_before_done_finished() {
    assert_eq!(built_outputs(None, &outputs()), Ok(None));
    let p = pod("Running", true, vec![done("fetch")]);
    assert_eq!(built_outputs(Some(&p), &outputs()), Ok(None));
    let mut failed = pod("Failed", true, vec![]);
    if let Some(s) = failed.status.as_mut() {
        s.container_statuses = Some(vec![term("done", 1, Some("missing output"))]);
    }
    assert_eq!(built_outputs(Some(&failed), &outputs()), Ok(None));
}

#[test]
fn a_broken_or_foreign_report_is_an_error_to_log_not_a_list() {
    let entry = |name: &str, size: i64, sum: &str| {
        format!(r#"{{"name":"{name}","size":{size},"sha256":"{sum}"}}"#)
    };
    let both = |a: String| format!(r#"{{"files":[{a},{}]}}"#, entry("a.iso", 3, SUM_B));
    let bad = [
        None,
        Some("".to_string()),
        Some("-rw-r--r-- 1 root root 6 a.tar".to_string()),
        Some(r#"{"files":[{"name":"a.tar"}]}"#.to_string()),
        Some(both(entry("../etc/passwd", 6, SUM_A))),
        Some(both(entry("a.tar", -1, SUM_A))),
        Some(both(entry("a.tar", 6, "abc"))),
        Some(both(entry("a.tar", 6, &SUM_A.to_uppercase()))),
        // Untruncated but incomplete.
        Some(format!(r#"{{"files":[{}]}}"#, entry("a.tar", 6, SUM_A))),
    ];
    for m in bad {
        let p = succeeded_with_report(m.as_deref());
        assert!(built_outputs(Some(&p), &outputs()).is_err(), "{m:?}");
    }
    // The phase does not depend on the report.
    let p = succeeded_with_report(Some("garbage"));
    assert_eq!(eval(Some(&p), vec![], None).phase, Phase::Ready);
}

fn with_deadline(mut p: Pod, seconds: i64) -> Pod {
    p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
        active_deadline_seconds: Some(seconds),
        ..Default::default()
    });
    let st = p.status.get_or_insert_with(Default::default);
    st.reason = Some("DeadlineExceeded".into());
    st.message = Some("Pod was active on the node longer than the specified deadline".into());
    p
}

#[test]
fn a_builder_pod_past_its_deadline_is_an_error_naming_the_step_and_the_deadline() {
    // The kubelet killed the running step (exit 137): the deadline is the cause, not the step.
    let p = with_deadline(
        pod(
            "Failed",
            true,
            vec![done("fetch"), done("unpack"), term("bundle-0", 137, None)],
        ),
        5400,
    );
    let out = eval(Some(&p), vec![], Some(Phase::Building));
    assert_eq!(out.phase, Phase::Error);
    assert_eq!(out.reason, "DeadlineExceeded");
    assert_eq!(out.building.reason, "DeadlineExceeded");
    assert!(
        out.message.starts_with(
            "the build ran longer than its deadline of 1h30m (activeDeadlineSeconds 5400) and was stopped during step 3 of 6 (bundle-0); see kubectl logs -n ns a-build -c bundle-0;"
        ),
        "{}",
        out.message
    );
    assert!(!out.built());

    // Still running when the status was written, or every init step done: the step is named all the same.
    let p = with_deadline(
        pod("Failed", true, vec![done("fetch"), running("unpack")]),
        45,
    );
    let out = eval(Some(&p), vec![], Some(Phase::Building));
    assert!(
        out.message.contains(
            "of 45s (activeDeadlineSeconds 45) and was stopped during step 2 of 6 (unpack)"
        ),
        "{}",
        out.message
    );
    let all: Vec<_> = steps().iter().map(|s| done(s)).collect();
    let p = with_deadline(pod("Failed", true, all), 60);
    let out = eval(Some(&p), vec![], Some(Phase::Building));
    assert!(
        out.message.contains("step 6 of 6 (done)"),
        "{}",
        out.message
    );
}

#[test]
fn an_exporter_past_its_deadline_fails_the_export_naming_the_deadline() {
    let p = pod("Succeeded", true, vec![]);
    for kind in ["Failed", "FailureTarget"] {
        let mut j = job(&[(kind, "True")]);
        j.spec = Some(k8s_openapi::api::batch::v1::JobSpec {
            active_deadline_seconds: Some(10800),
            ..Default::default()
        });
        if let Some(c) = j.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            c[0].reason = Some("DeadlineExceeded".into());
        }
        assert_eq!(judge_job(Some(&j)), JobState::DeadlineExceeded);
        let out = eval(Some(&p), vec![Some(&j)], Some(Phase::Exporting));
        assert_eq!(out.phase, Phase::Error);
        assert_eq!(out.reason, "DeadlineExceeded");
        assert!(out.built(), "the build itself succeeded");
        assert_eq!(out.exporting, Some(Cond::new("False", "DeadlineExceeded")));
        assert!(
            out.message.starts_with(
                "exporter 0 (Job a-export-0) ran longer than its deadline of 3h (activeDeadlineSeconds 10800) and was stopped;"
            ),
            "{}",
            out.message
        );
    }
}
