//! Reconcile against a mocked API server, request by request.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Request, Response};
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kube::Client;
use kube::client::Body;
use osartifact_shared::types::SecretKeyRef;
use osartifact_shared::{OSArtifact, OSArtifactSpec, OSArtifactStatus, Phase};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, Handle) {
    context_with(&[])
}

/// A context whose caches hold `children` (stored objects as JSON, any of the watched kinds), as
/// the watches would have filled them.
fn context_with(children: &[Value]) -> (Arc<Context>, Handle) {
    use kube::runtime::watcher::Event;
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (caches, mut w) = caches::new();
    for c in children {
        let v = c.clone();
        match c["kind"].as_str() {
            Some("Pod") => w
                .pods
                .apply_watcher_event(&Event::Apply(serde_json::from_value(v).unwrap())),
            Some("Job") => w
                .jobs
                .apply_watcher_event(&Event::Apply(serde_json::from_value(v).unwrap())),
            Some("ConfigMap") => w
                .config_maps
                .apply_watcher_event(&Event::Apply(serde_json::from_value(v).unwrap())),
            Some("PersistentVolumeClaim") => w
                .pvcs
                .apply_watcher_event(&Event::Apply(serde_json::from_value(v).unwrap())),
            other => panic!("not a cached kind: {other:?}"),
        }
    }
    w.synced.send(true).unwrap();
    // The receivers read the last value after the sender is gone; keep it anyway, as `run` does.
    std::mem::forget(w.synced);
    let (artifacts, _) = kube::runtime::reflector::store();
    let queue = Queue::new(0, artifacts, caches.pods.clone(), None);
    let ctx = Context::new(
        client,
        Settings::default(),
        Arc::new(Metrics::default()),
        "test".into(),
        caches,
        queue,
    );
    (Arc::new(ctx), handle)
}

impl Context {
    fn metrics_text(&self) -> String {
        osartifact_admin::MetricsSource::encode(self.metrics.as_ref())
    }
}

fn artifact(status: Option<OSArtifactStatus>) -> Arc<OSArtifact> {
    let mut a = OSArtifact::new(
        "hello",
        OSArtifactSpec {
            image_name: Some("quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0".into()),
            iso: true,
            ..Default::default()
        },
    );
    a.metadata.namespace = Some("ns".into());
    a.metadata.uid = Some("uid-1".into());
    a.metadata.generation = Some(2);
    a.status = status;
    Arc::new(a)
}

fn config_map(owner_uid: &str, generation: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "hello", "namespace": "ns", "uid": "cm-uid",
            "annotations": {"build.kairos.io/generation": generation},
            "ownerReferences": [{"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
                "name": "hello", "uid": owner_uid, "controller": true}]
        }
    })
}

#[tokio::test]
async fn finished_artifact_does_nothing_on_restart() {
    let (ctx, handle) = context_with(&[config_map("uid-1", "2")]);
    let mut server = Server { handle };
    let status = OSArtifactStatus {
        phase: Some(Phase::Ready),
        observed_generation: Some(2),
        ..Default::default()
    };
    let task = start(&artifact(Some(status)), &ctx);
    // Not a single request.
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

#[tokio::test]
async fn object_in_the_way_is_an_error_with_the_owner() {
    // Not in the caches (it lacks the label): the create is refused, and only then it is read.
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let obj = artifact(None);
    let task = start(&obj, &ctx);
    server.already_exists(CM).await;
    // The PVC went out with the record; it is the artifact's own, and no pod follows.
    server.create(PVC).await;
    server.get(CM, config_map("someone-else", "1")).await;
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("ConfigMap \"hello\"") && msg.contains("someone-else"),
        "{msg}"
    );
    assert_eq!(st["conditions"][0]["reason"], "ObjectInTheWay");
    assert_eq!(server.event().await["type"], "Warning");
    let action = finish(&mut server, task).await.unwrap();
    // Looked at again later: the foreign object may go away.
    assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
}

#[test]
fn secret_changes_reach_the_artifacts_that_name_them() {
    let mut with_dockerfile = (*artifact(None)).clone();
    with_dockerfile.spec.image_name = None;
    with_dockerfile.spec.base_image_dockerfile = Some(osartifact_shared::types::SecretKeyRef {
        name: "df".into(),
        key: None,
    });
    let mut other_ns = with_dockerfile.clone();
    other_ns.metadata.namespace = Some("elsewhere".into());
    let mut pulls = (*artifact(None)).clone();
    pulls.metadata.name = Some("pulls".into());
    pulls.spec.image_pull_secrets =
        vec![k8s_openapi::api::core::v1::LocalObjectReference { name: "df".into() }];
    let all = vec![
        Arc::new(with_dockerfile),
        Arc::new(other_ns),
        Arc::new(pulls),
        artifact(None),
    ];
    let hit = artifacts_referencing(&all, "ns", "df");
    let names: Vec<&str> = hit.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["hello", "pulls"]);
    assert!(artifacts_referencing(&all, "ns", "unrelated").is_empty());
}

// ---------------------------------------------------------------------------------------------
// A scripted API server: each helper takes the next request, asserts its method and exact path,
// answers it, and hands back what was sent. `finish` fails on any request nobody expected.
// ---------------------------------------------------------------------------------------------

type SendResponse = tower_test::mock::SendResponse<Response<Body>>;

/// No single request or reconcile may take longer: a missing reply fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(5);

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";
const CM: &str = "/api/v1/namespaces/ns/configmaps/hello";
const POD: &str = "/api/v1/namespaces/ns/pods/hello-build";
const PVC: &str = "/api/v1/namespaces/ns/persistentvolumeclaims/hello-artifacts";
const CLOUD_CONFIG: &str = "/api/v1/namespaces/ns/secrets/cc";
const JOB: &str = "/apis/batch/v1/namespaces/ns/jobs/hello-export-0";
const STATUS: &str = "/apis/build.kairos.io/v1alpha2/namespaces/ns/osartifacts/hello/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";

/// One request as the server saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    body: Value,
}

struct Server {
    handle: Handle,
}

impl Server {
    async fn next(&mut self) -> (Seen, SendResponse) {
        let (req, send) = tokio::time::timeout(PATIENCE, self.handle.next_request())
            .await
            .expect("timed out waiting for the next request")
            .expect("the client went away");
        let query = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.to_string(), String::new()),
            })
            .collect();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let seen = Seen {
            method,
            path,
            query,
            content_type,
            body,
        };
        (seen, send)
    }

    /// The next request must be `method path`; it is answered with `code` and `reply(request)`.
    async fn answer(
        &mut self,
        method: &str,
        path: &str,
        code: u16,
        reply: impl FnOnce(&Seen) -> Value,
    ) -> Seen {
        let (seen, send) = self.next().await;
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            (method, path),
            "unexpected request {seen:?}"
        );
        let body = reply(&seen);
        send.send_response(
            Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
        seen
    }

    async fn get(&mut self, path: &str, obj: Value) -> Seen {
        self.answer("GET", path, 200, |_| obj).await
    }

    /// 404 with a Status body, which kube's `get_opt` turns into `None`.
    async fn get_missing(&mut self, path: &str) -> Seen {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        self.answer("GET", path, 404, |_| {
            api_status(404, "NotFound", &format!("{name:?} not found"))
        })
        .await
    }

    /// A forced server-side apply by the operator's field manager; answers with the stored object.
    async fn apply(&mut self, path: &str) -> Value {
        let seen = self
            .answer("PATCH", path, 200, |s| {
                stored(s.body.clone(), "applied-uid")
            })
            .await;
        assert_ssa(&seen);
        seen.body
    }

    /// A child the caches do not show: created with a POST to its collection under the
    /// operator's field manager; answers with the stored object.
    async fn create(&mut self, path: &str) -> Value {
        self.create_answered(path, |s| stored(s.body.clone(), "created-uid"))
            .await
    }

    async fn create_answered(&mut self, path: &str, reply: impl FnOnce(&Seen) -> Value) -> Value {
        let seen = self.answer("POST", collection(path), 201, reply).await;
        assert_post(&seen);
        assert_eq!(
            seen.body["metadata"]["name"],
            json!(path.rsplit('/').next().unwrap()),
            "{path}"
        );
        seen.body
    }

    /// A create refused because the name is taken.
    async fn already_exists(&mut self, path: &str) -> Value {
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        let seen = self
            .answer("POST", collection(path), 409, |_| {
                api_status(409, "AlreadyExists", &format!("{name:?} already exists"))
            })
            .await;
        assert_post(&seen);
        seen.body
    }

    /// The status written with server-side apply on /status; returns the status sent.
    async fn status(&mut self, obj: &OSArtifact) -> Value {
        let mut reply = serde_json::to_value(obj).unwrap();
        let seen = self
            .answer("PATCH", STATUS, 200, |s| {
                reply["status"] = s.body["status"].clone();
                // Every write makes a new version.
                reply["metadata"]["resourceVersion"] = json!("after-status-write");
                reply
            })
            .await;
        assert_ssa(&seen);
        assert_eq!(seen.body["apiVersion"], "build.kairos.io/v1alpha2");
        assert_eq!(seen.body["kind"], "OSArtifact");
        seen.body["status"].clone()
    }

    /// An events.k8s.io Event about the artifact; returns it after checking whom it is about.
    async fn event(&mut self) -> Value {
        let seen = self
            .answer("POST", EVENTS, 201, |s| stored(s.body.clone(), "event-uid"))
            .await;
        let ev = seen.body;
        assert_eq!(ev["regarding"]["kind"], "OSArtifact", "{ev}");
        assert_eq!(ev["regarding"]["name"], "hello", "{ev}");
        assert_eq!(ev["regarding"]["uid"], "uid-1", "{ev}");
        assert_eq!(ev["reportingController"], "osartifact-operator", "{ev}");
        assert_eq!(ev["action"], "Reconcile", "{ev}");
        ev
    }

    async fn delete(&mut self, path: &str, reply: Value) -> Value {
        self.answer("DELETE", path, 200, |_| reply).await.body
    }
}

fn api_status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "message": message, "code": code
    })
}

/// The collection an object path belongs to.
fn collection(path: &str) -> &str {
    path.rsplit_once('/').map(|(c, _)| c).unwrap_or(path)
}

fn assert_post(seen: &Seen) {
    let expected = BTreeMap::from([(
        "fieldManager".to_string(),
        "osartifact-operator".to_string(),
    )]);
    assert_eq!(seen.query, expected, "{} {}", seen.method, seen.path);
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/json"),
        "{}",
        seen.path
    );
}

fn assert_ssa(seen: &Seen) {
    let expected = BTreeMap::from([
        (
            "fieldManager".to_string(),
            "osartifact-operator".to_string(),
        ),
        ("force".to_string(), "true".to_string()),
    ]);
    assert_eq!(seen.query, expected, "{} {}", seen.method, seen.path);
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/apply-patch+yaml"),
        "{}",
        seen.path
    );
}

/// `obj` as the apiserver stores it: with a UID and a resourceVersion.
fn stored(mut obj: Value, uid: &str) -> Value {
    obj["metadata"]["uid"] = json!(uid);
    obj["metadata"]["resourceVersion"] = json!("1");
    obj
}

fn start(obj: &Arc<OSArtifact>, ctx: &Arc<Context>) -> JoinHandle<Result<Action, Error>> {
    tokio::spawn(reconcile(obj.clone(), ctx.clone()))
}

/// The reconcile's result; panics on any request it still makes.
async fn finish(
    server: &mut Server,
    mut task: JoinHandle<Result<Action, Error>>,
) -> Result<Action, Error> {
    tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            biased;
            done = &mut task => done.expect("reconcile panicked"),
            req = server.handle.next_request() => match req {
                Some((req, _)) => panic!("unexpected extra request {} {}", req.method(), req.uri()),
                None => task.await.expect("reconcile panicked"),
            },
        }
    })
    .await
    .expect("reconcile did not finish")
}

fn with_spec(spec: OSArtifactSpec, status: Option<OSArtifactStatus>) -> Arc<OSArtifact> {
    let mut a = (*artifact(status)).clone();
    a.spec = spec;
    Arc::new(a)
}

/// ISO of an image, one importer and one exporter: steps fetch, unpack, tarball, iso (+ done).
fn exporting_spec() -> OSArtifactSpec {
    OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        iso: true,
        importers: vec![container("fetch", "alpine:3.20")],
        exporters: vec![JobSpec {
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![container("upload", "alpine:3.20")],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The ISO of `artifact`, with a cloud-config from Secret `cc`.
fn with_cloud_config() -> OSArtifactSpec {
    OSArtifactSpec {
        cloud_config_ref: Some(SecretKeyRef {
            name: "cc".into(),
            key: None,
        }),
        ..artifact(None).spec.clone()
    }
}

fn container(name: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        ..Default::default()
    }
}

/// What the controller would apply for `obj`, with no Secrets referenced.
fn planned(obj: &OSArtifact) -> plan::Plan {
    let id = Identity::of(obj).unwrap();
    plan::plan(obj, &id, &KnownSecrets::new(), &Settings::default()).unwrap()
}

/// A stored child of `generation`, with the given status.
fn child(obj: impl serde::Serialize, uid: &str, generation: &str, status: Value) -> Value {
    let mut v = stored(serde_json::to_value(obj).unwrap(), uid);
    v["metadata"]["annotations"]["build.kairos.io/generation"] = json!(generation);
    if !status.is_null() {
        v["status"] = status;
    }
    v
}

fn builder_pod(obj: &OSArtifact, generation: &str, status: Value) -> Value {
    child(planned(obj).pod, "pod-uid", generation, status)
}

fn exporter_job(obj: &OSArtifact, generation: &str, status: Value) -> Value {
    let job = planned(obj).exporters.remove(0);
    child(job, "job-uid", generation, status)
}

fn our_config_map(obj: &OSArtifact, generation: &str) -> Value {
    child(planned(obj).config_map, "cm-uid", generation, Value::Null)
}

fn terminated(name: &str, reason: &str, exit_code: i32, message: Option<&str>) -> Value {
    let mut t = json!({"exitCode": exit_code, "reason": reason});
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    container_status(name, json!({"terminated": t}))
}

fn container_status(name: &str, state: Value) -> Value {
    json!({"name": name, "image": "img", "imageID": "", "ready": false, "restartCount": 0, "state": state})
}

fn scheduled() -> Value {
    json!([{"type": "PodScheduled", "status": "True"}])
}

fn time(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn status(phase: Phase, generation: i64, message: &str) -> OSArtifactStatus {
    OSArtifactStatus {
        phase: Some(phase),
        message: Some(message.into()),
        observed_generation: Some(generation),
        artifacts_pvc: Some("hello-artifacts".into()),
        builder_pod: Some("hello-build".into()),
        start_time: Some(time("2024-05-01T10:00:00Z")),
        ..Default::default()
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// An export failure: Ready and Exporting say so, the build is reported as succeeded, and the
/// files it made stay listed (they are in the PVC).
fn assert_export_failed(st: &Value) {
    assert_eq!(condition(st, "Ready")["reason"], "ExportFailed");
    assert_eq!(condition(st, "Building")["reason"], "BuildSucceeded");
    assert_eq!(condition(st, "Exporting")["reason"], "ExportFailed");
    assert_eq!(
        st["artifacts"],
        json!(["hello.tar", "hello.iso", "hello.iso.sha256"]),
        "{st}"
    );
}

fn assert_child_meta(obj: &Value, name: &str) {
    let m = &obj["metadata"];
    assert_eq!(m["name"], name, "{obj}");
    assert_eq!(m["namespace"], "ns", "{obj}");
    assert_eq!(m["labels"]["build.kairos.io/artifact"], "hello", "{obj}");
    assert_eq!(
        m["labels"]["build.kairos.io/artifact-uid"], "uid-1",
        "{obj}"
    );
    assert_eq!(m["annotations"]["build.kairos.io/generation"], "2", "{obj}");
    assert_eq!(
        m["ownerReferences"],
        json!([{
            "apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact", "name": "hello",
            "uid": "uid-1", "controller": true, "blockOwnerDeletion": true
        }]),
        "{obj}"
    );
}

fn names_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn new_artifact_creates_every_child_and_reports_building() {
    let spec = OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        iso: true,
        bundles: vec!["quay.io/kairos/bundles:k3s".into()],
        importers: vec![container("fetch", "alpine:3.20")],
        os_release: Some("NAME=hello\n".into()),
        grub_config: Some("set timeout=1\n".into()),
        cloud_config_ref: Some(SecretKeyRef {
            name: "cc".into(),
            key: None,
        }),
        ..Default::default()
    };
    let obj = with_spec(spec, None);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);

    // The caches show nothing. The build starts at once (no Pending write), the ConfigMap
    // first: it records the attempt.
    let cm = server.create(CM).await;
    assert_eq!(
        (&cm["apiVersion"], &cm["kind"]),
        (&json!("v1"), &json!("ConfigMap"))
    );
    assert_child_meta(&cm, "hello");
    assert_eq!(
        cm["data"],
        json!({"grub.cfg": "set timeout=1\n", "os-release": "NAME=hello\n"})
    );
    // The referenced Secret is read.
    server
        .get(
            CLOUD_CONFIG,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "cc", "namespace": "ns", "uid": "cc-uid"},
                "data": {"userdata": "I2Nsb3VkLWNvbmZpZwo="}}),
        )
        .await;
    let pvc = server.create(PVC).await;
    assert_eq!(pvc["kind"], "PersistentVolumeClaim");
    assert_child_meta(&pvc, "hello-artifacts");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "10Gi");

    // The builder pod; the apiserver answers that it is not scheduled yet.
    let pod = server
        .create_answered(POD, |s| {
            let mut pod = stored(s.body.clone(), "pod-uid");
            pod["status"] = json!({"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available"}]});
            pod
        })
        .await;
    assert_eq!(pod["kind"], "Pod");
    assert_child_meta(&pod, "hello-build");
    assert_eq!(
        names_of(&pod["spec"]["initContainers"]),
        vec![
            "fetch",
            "unpack",
            "bundle-0",
            "release-files",
            "tarball",
            "iso-overlay",
            "iso"
        ]
    );
    assert_eq!(names_of(&pod["spec"]["containers"]), vec!["done"]);
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let cc = volumes.iter().find(|v| v["name"] == "cloudconfig").unwrap();
    assert_eq!(cc["secret"]["secretName"], "cc");
    let artifacts = volumes.iter().find(|v| v["name"] == "artifacts").unwrap();
    assert_eq!(
        artifacts["persistentVolumeClaim"]["claimName"],
        "hello-artifacts"
    );

    // Building, with where to look.
    let building = server.status(&obj).await;
    assert_eq!(building["phase"], "Building");
    assert_eq!(
        building["message"],
        "the builder pod hello-build is waiting to be scheduled: 0/3 nodes are available"
    );
    assert_eq!(building["builderPod"], "hello-build");
    assert_eq!(building["artifactsPvc"], "hello-artifacts");
    assert_eq!(building["observedGeneration"], 2);
    assert!(building["startTime"].is_string(), "{building}");
    assert!(building.get("completionTime").is_none(), "{building}");
    assert!(building.get("artifacts").is_none(), "{building}");
    assert_eq!(condition(&building, "Ready")["status"], "False");
    assert_eq!(condition(&building, "Building")["status"], "True");
    assert_eq!(condition(&building, "Building")["reason"], "Scheduling");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Normal"), &json!("Building"))
    );

    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));
}

// ---------------------------------------------------------------------------------------------
// progress
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn running_step_is_reported_as_step_k_of_n() {
    let obj = with_spec(
        exporting_spec(),
        Some(status(Phase::Building, 2, "step 1 of 5 (fetch) running")),
    );
    let pod_status = json!({
        "phase": "Pending",
        "conditions": scheduled(),
        "initContainerStatuses": [
            terminated("fetch", "Completed", 0, None),
            container_status("unpack", json!({"running": {"startedAt": "2024-05-01T10:01:00Z"}})),
            container_status("tarball", json!({"waiting": {"reason": "PodInitializing"}})),
            container_status("iso", json!({"waiting": {"reason": "PodInitializing"}})),
        ],
    });
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "2"),
        builder_pod(&obj, "2", pod_status),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    // Everything from the caches: the status write is the only request.
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Building");
    assert_eq!(st["message"], "step 2 of 5 (unpack) running");
    assert_eq!(condition(&st, "Building")["reason"], "Step");
    assert_eq!(condition(&st, "Exporting")["reason"], "WaitingForBuild");
    // The same build: its start time stays.
    assert_eq!(st["startTime"], "2024-05-01T10:00:00Z");
    // No transition, no Event.
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));
}

#[tokio::test]
async fn succeeded_build_creates_the_exporter_jobs_then_ready_when_they_complete() {
    let outputs = json!(["hello.tar", "hello.iso", "hello.iso.sha256"]);
    let sum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    let built = json!([
        {"name": "hello.tar", "size": 6, "sha256": sum},
        {"name": "hello.iso", "size": 7, "sha256": sum},
        {"name": "hello.iso.sha256", "size": 8, "sha256": sum},
    ]);
    let report = json!({"files": built}).to_string();
    let done = json!([{"name": "done", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": report}}}]);
    let succeeded =
        json!({"phase": "Succeeded", "conditions": scheduled(), "containerStatuses": done});

    // The pod succeeded: the exporter Job is applied, phase Exporting.
    let obj = with_spec(
        exporting_spec(),
        Some(status(
            Phase::Building,
            2,
            "step 5 of 5 (done) checking the outputs",
        )),
    );
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "2"),
        builder_pod(&obj, "2", succeeded.clone()),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let job = server.create(JOB).await;
    assert_eq!(
        (&job["apiVersion"], &job["kind"]),
        (&json!("batch/v1"), &json!("Job"))
    );
    assert_child_meta(&job, "hello-export-0");
    assert_eq!(
        job["metadata"]["annotations"]["build.kairos.io/export-index"],
        "0"
    );
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let tmpl = &job["spec"]["template"];
    assert_eq!(
        tmpl["metadata"]["labels"]["build.kairos.io/artifact-uid"],
        "uid-1"
    );
    assert_eq!(names_of(&tmpl["spec"]["containers"]), vec!["upload"]);
    assert_eq!(
        tmpl["spec"]["volumes"],
        json!([{"name": "artifacts", "persistentVolumeClaim": {"claimName": "hello-artifacts", "readOnly": true}}])
    );
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Exporting");
    assert_eq!(
        st["message"],
        "build succeeded; 0 of 1 exporter(s) finished, running: hello-export-0"
    );
    assert_eq!(st["artifacts"], outputs);
    assert_eq!(st["outputs"], built, "what done reported");
    assert_eq!(condition(&st, "Building")["reason"], "BuildSucceeded");
    assert_eq!(condition(&st, "Exporting")["status"], "True");
    assert!(st.get("completionTime").is_none(), "{st}");
    assert_eq!(st["startTime"], "2024-05-01T10:00:00Z");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Normal"), &json!("Exporting"))
    );
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));

    // The Job completed: Ready, with a completion time and the outputs. The pod's report is no
    // longer readable (a pod status without it): the recorded one stays.
    let succeeded = json!({"phase": "Succeeded", "conditions": scheduled()});
    let obj = with_spec(
        exporting_spec(),
        Some(OSArtifactStatus {
            artifacts: serde_json::from_value(outputs.clone()).unwrap(),
            outputs: serde_json::from_value(built.clone()).unwrap(),
            ..status(
                Phase::Exporting,
                2,
                "build succeeded; 0 of 1 exporter(s) finished, running: hello-export-0",
            )
        }),
    );
    let complete = json!({"conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"},
        {"type": "Complete", "status": "True"},
    ]});
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "2"),
        builder_pod(&obj, "2", succeeded),
        exporter_job(&obj, "2", complete),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Ready");
    assert_eq!(
        st["message"],
        "built hello.tar, hello.iso, hello.iso.sha256; 1 exporter(s) succeeded"
    );
    assert_eq!(st["artifacts"], outputs);
    assert_eq!(st["outputs"], built);
    assert!(st["completionTime"].is_string(), "{st}");
    assert_eq!(st["startTime"], "2024-05-01T10:00:00Z");
    assert_eq!(condition(&st, "Ready")["status"], "True");
    assert_eq!(condition(&st, "Exporting")["reason"], "ExportSucceeded");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Normal"), &json!("Ready"))
    );
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

// ---------------------------------------------------------------------------------------------
// failure
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn failed_step_is_an_error_naming_the_container_and_is_not_retried() {
    let spec = OSArtifactSpec {
        exporters: Vec::new(),
        ..exporting_spec()
    };
    let obj = with_spec(
        spec.clone(),
        Some(status(Phase::Building, 2, "step 2 of 5 (unpack) running")),
    );
    let failed = json!({
        "phase": "Failed",
        "conditions": scheduled(),
        "initContainerStatuses": [
            terminated("fetch", "Completed", 0, None),
            terminated("unpack", "Error", 3, Some("pulling\nmanifest unknown\n")),
            container_status("tarball", json!({"waiting": {"reason": "PodInitializing"}})),
            container_status("iso", json!({"waiting": {"reason": "PodInitializing"}})),
        ],
    });
    let pod = builder_pod(&obj, "2", failed);
    let (ctx, handle) = context_with(&[our_config_map(&obj, "2"), pod.clone()]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "step 2 of 5 (unpack) failed: Error, exit code 3: pulling | manifest unknown; see kubectl logs -n ns hello-build -c unpack"
        ),
        "{msg}"
    );
    assert_eq!(condition(&st, "Ready")["reason"], "BuildFailed");
    assert_eq!(condition(&st, "Building")["status"], "False");
    assert!(st["completionTime"].is_string(), "{st}");
    assert!(st.get("artifacts").is_none(), "{st}");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Warning"), &json!("BuildFailed"))
    );
    assert_eq!(ev["note"], json!(msg));
    // Idle: a failed build waits for a new generation or a retry annotation.
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));

    // Looked at again (a resync, a restart): nothing is written, nothing is rebuilt.
    let mut after = status(Phase::Error, 2, msg);
    after.completion_time = Some(time("2024-05-01T10:05:00Z"));
    let obj = with_spec(spec, Some(after));
    let (ctx, handle) = context_with(&[our_config_map(&obj, "2"), pod]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

#[tokio::test]
async fn missing_secret_is_an_error_and_no_pod_is_created() {
    let obj = with_spec(with_cloud_config(), None);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.create(CM).await;
    server.get_missing(CLOUD_CONFIG).await;
    // No PVC, no pod: the Error straight away.
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("spec.cloudConfigRef") && msg.contains("Secret \"cc\" not found"),
        "{msg}"
    );
    assert!(msg.ends_with("create the Secret (or key), then set the build.kairos.io/retry annotation to a new value"), "{msg}");
    assert_eq!(condition(&st, "Ready")["reason"], "SecretNotFound");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Warning"), &json!("SecretNotFound"))
    );
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
}

// ---------------------------------------------------------------------------------------------
// rebuild
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn new_generation_deletes_the_old_pod_then_builds_again() {
    let mut done = status(
        Phase::Ready,
        1,
        "built hello.tar, hello.iso, hello.iso.sha256; 1 exporter(s) succeeded",
    );
    done.completion_time = Some(time("2024-05-01T11:00:00Z"));
    let obj = with_spec(exporting_spec(), Some(done));
    // Everything there is of generation 1.
    let old_pod = builder_pod(&obj, "1", json!({"phase": "Succeeded"}));
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "1"),
        old_pod.clone(),
        exporter_job(
            &obj,
            "1",
            json!({"conditions": [{"type": "Complete", "status": "True"}]}),
        ),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    // Deleted only if still the object seen, with its dependents in the background.
    let mut terminating = old_pod;
    terminating["metadata"]["deletionTimestamp"] = json!("2024-05-02T10:00:00Z");
    let body = server.delete(POD, terminating).await;
    assert_eq!(body["preconditions"], json!({"uid": "pod-uid"}), "{body}");
    assert_eq!(body["propagationPolicy"], "Background", "{body}");
    let body = server.delete(JOB, api_status(200, "", "deleted")).await;
    assert_eq!(body["preconditions"], json!({"uid": "job-uid"}), "{body}");
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Pending");
    assert_eq!(
        st["message"],
        "waiting for the previous build's pod hello-build to be deleted"
    );
    assert_eq!(condition(&st, "Ready")["reason"], "Replacing");
    assert_eq!(st["observedGeneration"], 2);
    assert!(st.get("completionTime").is_none(), "{st}");
    assert!(st.get("artifacts").is_none(), "{st}");
    // A new build: a new start time.
    assert_ne!(st["startTime"], "2024-05-01T10:00:00Z");
    let ev = server.event().await;
    assert_eq!(ev["reason"], "Pending");
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(WAIT_REQUEUE));

    // The pod is gone: the new attempt is recorded and a new pod applied.
    let obj = with_spec(
        exporting_spec(),
        Some(status(
            Phase::Pending,
            2,
            "waiting for the previous build's pod hello-build to be deleted",
        )),
    );
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "1"),
        child(planned(&obj).pvc, "pvc-uid", "1", Value::Null),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    // The previous attempt's record is replaced (deleted, if still the object seen), the PVC
    // applied over with the new attempt's annotations.
    let body = server.delete(CM, api_status(200, "", "deleted")).await;
    assert_eq!(body["preconditions"], json!({"uid": "cm-uid"}), "{body}");
    // The PVC goes out while the record is being replaced.
    let pvc = server.apply(PVC).await;
    assert_child_meta(&pvc, "hello-artifacts");
    let cm = server.create(CM).await;
    assert_child_meta(&cm, "hello");
    let pod = server.create(POD).await;
    assert_child_meta(&pod, "hello-build");
    assert_eq!(
        names_of(&pod["spec"]["initContainers"]),
        vec!["fetch", "unpack", "tarball", "iso"]
    );
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Building");
    let ev = server.event().await;
    assert_eq!(ev["reason"], "Building");
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));
}

// ---------------------------------------------------------------------------------------------
// collision
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn foreign_pod_is_an_error_naming_it_and_its_owner_and_is_left_alone() {
    let foreign = |owners: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello-build", "namespace": "ns", "uid": "other-pod",
                "ownerReferences": owners},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
    };
    let cases = [
        (
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                "uid": "rs-uid", "controller": true}]),
            "controlled by ReplicaSet web-abc uid rs-uid",
        ),
        // Owned by this artifact but not as controller: still not ours.
        (
            json!([{"apiVersion": "build.kairos.io/v1alpha2", "kind": "OSArtifact",
                "name": "hello", "uid": "uid-1"}]),
            "it has no controller",
        ),
    ];
    for (owners, owner) in cases {
        let obj = artifact(None);
        let (ctx, handle) = context();
        let mut server = Server { handle };
        let task = start(&obj, &ctx);
        server.create(CM).await;
        server.create(PVC).await;
        server.already_exists(POD).await;
        server.get(POD, foreign(owners)).await;
        let st = server.status(&obj).await;
        assert_eq!(st["phase"], "Error");
        let msg = st["message"].as_str().unwrap();
        assert!(
            msg.starts_with(&format!(
                "Pod \"hello-build\" already exists and is not owned by this OSArtifact ({owner})"
            )),
            "{msg}"
        );
        assert_eq!(condition(&st, "Ready")["reason"], "ObjectInTheWay");
        let ev = server.event().await;
        assert_eq!(
            (&ev["type"], &ev["reason"]),
            (&json!("Warning"), &json!("ObjectInTheWay"))
        );
        // Nothing applied over it, nothing deleted.
        let action = finish(&mut server, task).await.unwrap();
        assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
    }
}

/// A pod of that name in the caches (it carries the label) but controlled by another artifact:
/// refused without a request.
#[tokio::test]
async fn cached_child_of_another_artifact_is_in_the_way() {
    let obj = artifact(None);
    let mut pod = builder_pod(&obj, "2", Value::Null);
    pod["metadata"]["ownerReferences"][0]["uid"] = json!("uid-other");
    let (ctx, handle) = context_with(&[pod]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let st = server.status(&obj).await;
    assert_eq!(condition(&st, "Ready")["reason"], "ObjectInTheWay");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.contains("uid-other"), "{msg}");
    server.event().await;
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
}

/// A child created by this process but not yet delivered by its watch (the next reconcile often
/// starts first) is neither created again nor missed.
#[tokio::test]
async fn a_child_created_but_not_yet_cached_is_not_created_again() {
    let mut obj = (*artifact(None)).clone();
    obj.metadata.resource_version = Some("5".into());
    let obj = Arc::new(obj);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.create(CM).await;
    server.create(PVC).await;
    server.create(POD).await;
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Building");
    server.event().await;
    finish(&mut server, task).await.unwrap();
    // The same stale copy of the artifact, and caches that have seen nothing yet.
    let task = start(&obj, &ctx);
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));
    assert_eq!(
        ctx.metrics_text().matches("phase=\"Building\"").count(),
        1,
        "{}",
        ctx.metrics_text()
    );
}

#[tokio::test]
async fn foreign_pvc_stops_the_build_before_anything_is_applied_over_it() {
    let obj = artifact(None);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.create(CM).await;
    server.already_exists(PVC).await;
    server
        .get(
            PVC,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "hello-artifacts", "namespace": "ns", "uid": "pvc-x"}}),
        )
        .await;
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with("PersistentVolumeClaim \"hello-artifacts\" already exists and is not owned by this OSArtifact (it has no controller)"),
        "{msg}"
    );
    assert_eq!(server.event().await["reason"], "ObjectInTheWay");
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
}

// ---------------------------------------------------------------------------------------------
// transient
// ---------------------------------------------------------------------------------------------

async fn reconcile_against_500(
    obj: &Arc<OSArtifact>,
    ctx: &Arc<Context>,
    server: &mut Server,
    pvc_known: bool,
) -> Error {
    let task = start(obj, ctx);
    server
        .answer("POST", collection(CM), 500, |_| {
            api_status(500, "InternalError", "etcd is sad")
        })
        .await;
    // The PVC goes out with the record; once created, the ledger knows it.
    if !pvc_known {
        server.create(PVC).await;
    }
    finish(server, task).await.unwrap_err()
}

#[tokio::test]
async fn api_500_is_returned_for_backoff_that_grows_and_resets_after_a_success() {
    let obj = artifact(None);
    let (ctx, handle) = context();
    let mut server = Server { handle };

    let err = reconcile_against_500(&obj, &ctx, &mut server, false).await;
    assert!(matches!(err, Error::Kube { .. }), "{err:?}");
    assert!(!err.is_user_fixable());
    assert_eq!(err.category(), "KubeApi");
    assert!(
        err.to_string().starts_with("applying ConfigMap hello: "),
        "{err}"
    );
    // No status was written (finish saw no other request).
    assert_eq!(
        error_policy(obj.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    let err = reconcile_against_500(&obj, &ctx, &mut server, true).await;
    assert_eq!(
        error_policy(obj.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(4))
    );
    assert_eq!(
        error_policy(obj.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(8))
    );

    // Another artifact has its own count.
    let mut other = (*obj).clone();
    other.metadata.name = Some("other".into());
    assert_eq!(
        error_policy(Arc::new(other), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );

    // A successful reconcile resets it.
    let ready = artifact(Some(OSArtifactStatus {
        phase: Some(Phase::Ready),
        observed_generation: Some(2),
        ..Default::default()
    }));
    let (cached, _handle) = context_with(&[config_map("uid-1", "2")]);
    let ctx = Arc::new(Context {
        caches: cached.caches.clone(),
        ..Arc::into_inner(ctx).unwrap()
    });
    let task = start(&ready, &ctx);
    assert_eq!(
        finish(&mut server, task).await.unwrap(),
        Action::requeue(IDLE_REQUEUE)
    );
    assert_eq!(
        error_policy(obj.clone(), &err, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );

    // Capped at five minutes.
    let mut last = Action::await_change();
    for _ in 0..12 {
        last = error_policy(obj.clone(), &err, ctx.clone());
    }
    assert_eq!(last, Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn api_500_reading_a_secret_is_transient_not_secret_not_found() {
    let obj = with_spec(with_cloud_config(), None);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.create(CM).await;
    server
        .answer("GET", CLOUD_CONFIG, 500, |_| {
            api_status(500, "InternalError", "etcd is sad")
        })
        .await;
    let err = finish(&mut server, task).await.unwrap_err();
    assert!(matches!(err, Error::Kube { .. }), "{err:?}");
    assert!(err.to_string().starts_with("reading Secret cc: "), "{err}");
}

// ---------------------------------------------------------------------------------------------
// more failure, rebuild and replacement paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn failed_exporter_job_is_an_export_error() {
    let obj = with_spec(
        exporting_spec(),
        Some(status(
            Phase::Exporting,
            2,
            "build succeeded; 0 of 1 exporter(s) finished, running: hello-export-0",
        )),
    );
    let failed = json!({"conditions": [{"type": "Failed", "status": "True",
        "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "2"),
        builder_pod(&obj, "2", json!({"phase": "Succeeded"})),
        exporter_job(&obj, "2", failed),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with("exporter 0 (Job hello-export-0) failed: BackoffLimitExceeded: Job has reached the specified backoff limit; see kubectl logs -n ns job/hello-export-0"),
        "{msg}"
    );
    assert_export_failed(&st);
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Warning"), &json!("ExportFailed"))
    );
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

#[tokio::test]
async fn pod_refused_by_the_api_is_a_refused_error_rechecked_later() {
    let obj = artifact(None);
    let (ctx, handle) = context();
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.create(CM).await;
    server.create(PVC).await;
    let refusal = "pods \"hello-build\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"iso\" must not set securityContext.privileged=true)";
    let seen = server
        .answer("POST", collection(POD), 403, |_| {
            api_status(403, "Forbidden", refusal)
        })
        .await;
    assert_post(&seen);
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    assert_eq!(
        st["message"],
        json!(format!(
            "the API refused Pod \"hello-build\": {refusal}; fix the cause (for example the namespace's Pod Security level or quota), then set the build.kairos.io/retry annotation to a new value"
        ))
    );
    assert_eq!(condition(&st, "Ready")["reason"], "Refused");
    let ev = server.event().await;
    assert_eq!(
        (&ev["type"], &ev["reason"]),
        (&json!("Warning"), &json!("Refused"))
    );
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(RECHECK_REQUEUE));
}

#[tokio::test]
async fn new_retry_value_replaces_a_failed_build_of_the_same_generation() {
    let mut obj = (*artifact(Some(status(
        Phase::Error,
        2,
        "step 2 of 4 (unpack) failed: Error, exit code 3",
    ))))
    .clone();
    obj.metadata.annotations = Some(BTreeMap::from([(
        "build.kairos.io/retry".to_string(),
        "again".to_string(),
    )]));
    let obj = Arc::new(obj);
    // The children were built for generation 2 without a retry value.
    let mut before = (*obj).clone();
    before.metadata.annotations = None;
    let pod = builder_pod(&before, "2", json!({"phase": "Failed"}));
    let (ctx, handle) = context_with(&[our_config_map(&before, "2"), pod.clone()]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let body = server.delete(POD, pod).await;
    assert_eq!(body["preconditions"], json!({"uid": "pod-uid"}), "{body}");
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Pending");
    assert_eq!(condition(&st, "Ready")["reason"], "Replacing");
    assert!(st.get("completionTime").is_none(), "{st}");
    assert_eq!(server.event().await["reason"], "Pending");
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(WAIT_REQUEUE));

    // The pod is gone: the children are applied with the retry value recorded.
    let mut obj = (*obj).clone();
    obj.status = Some(status(
        Phase::Pending,
        2,
        "waiting for the previous build's pod hello-build to be deleted",
    ));
    let obj = Arc::new(obj);
    let (ctx, handle) = context_with(&[our_config_map(&before, "2")]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.delete(CM, api_status(200, "", "deleted")).await;
    // The PVC goes out while the record is being replaced.
    server.create(PVC).await;
    let cm = server.create(CM).await;
    assert_eq!(
        cm["metadata"]["annotations"]["build.kairos.io/retry"],
        "again"
    );
    let pod = server.create(POD).await;
    assert_eq!(
        pod["metadata"]["annotations"]["build.kairos.io/retry"],
        "again"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["build.kairos.io/generation"],
        "2"
    );
    assert_eq!(server.status(&obj).await["phase"], "Building");
    server.event().await;
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(ACTIVE_REQUEUE));
}

#[tokio::test]
async fn immutable_pvc_change_deletes_the_old_pvc_and_waits() {
    let mut spec = exporting_spec();
    spec.exporters.clear();
    let obj = with_spec(
        spec,
        Some(status(
            Phase::Pending,
            2,
            "waiting for the previous build's pod hello-build to be deleted",
        )),
    );
    let old_pvc = child(planned(&obj).pvc, "pvc-uid", "1", Value::Null);
    let (ctx, handle) = context_with(&[our_config_map(&obj, "1"), old_pvc.clone()]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    server.delete(CM, api_status(200, "", "deleted")).await;
    // The PVC goes out while the record is being replaced.
    let seen = server
        .answer("PATCH", PVC, 422, |_| {
            api_status(
                422,
                "Invalid",
                "PersistentVolumeClaim \"hello-artifacts\" is invalid: spec: Forbidden: spec is immutable after creation",
            )
        })
        .await;
    assert_ssa(&seen);
    server.create(CM).await;
    // Ours and of the previous attempt: deleted, if still the object seen.
    server.get(PVC, old_pvc.clone()).await;
    let body = server.delete(PVC, old_pvc).await;
    assert_eq!(body["preconditions"], json!({"uid": "pvc-uid"}), "{body}");
    assert_eq!(body["propagationPolicy"], "Background", "{body}");
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Pending");
    assert_eq!(
        st["message"],
        "the artifacts PVC hello-artifacts changed in a way Kubernetes cannot update; waiting for the old one to be deleted"
    );
    // Pending before and after: no transition, no Event.
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(WAIT_REQUEUE));
}

/// While Exporting, a Job that is gone (the user's `ttlSecondsAfterFinished`, or a manual
/// delete) was deleted before its outcome was seen: the export is not run again on the
/// operator's own (it could repeat an upload forever); the artifact fails with a fix-it message.
#[tokio::test]
async fn exporter_job_gone_while_exporting_is_an_error_not_a_second_export() {
    let obj = with_spec(
        exporting_spec(),
        Some(status(
            Phase::Exporting,
            2,
            "build succeeded; 0 of 1 exporter(s) finished, running: hello-export-0",
        )),
    );
    let (ctx, handle) = context_with(&[
        our_config_map(&obj, "2"),
        builder_pod(&obj, "2", json!({"phase": "Succeeded"})),
    ]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let st = server.status(&obj).await;
    assert_eq!(st["phase"], "Error");
    assert_export_failed(&st);
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "exporter 0 (Job hello-export-0) was deleted before the operator saw it finish"
        ) && msg.contains("build.kairos.io/retry"),
        "{msg}"
    );
    let ev = server.event().await;
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "ExportFailed");
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

/// A build that failed in its pod stays failed when the pod is deleted afterwards: only a retry
/// annotation or a new generation builds again.
#[tokio::test]
async fn failed_build_stays_failed_when_its_pod_is_deleted() {
    let mut failed = status(
        Phase::Error,
        2,
        "step 2 of 4 (unpack) failed: Error, exit code 3",
    );
    failed.completion_time = Some(time("2024-05-01T10:05:00Z"));
    failed.conditions = vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: "Ready".into(),
        status: "False".into(),
        reason: "BuildFailed".into(),
        message: "step 2 of 4 (unpack) failed".into(),
        observed_generation: Some(2),
        last_transition_time: time("2024-05-01T10:05:00Z"),
    }];
    let obj = artifact(Some(failed));
    let (ctx, handle) = context_with(&[our_config_map(&obj, "2")]);
    let mut server = Server { handle };
    let task = start(&obj, &ctx);
    let action = finish(&mut server, task).await.unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}
