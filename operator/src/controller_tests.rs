//! Reconcile against a mocked API server, request by request.

use std::sync::Arc;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use osartifact_shared::{OSArtifact, OSArtifactSpec, OSArtifactStatus, Phase};
use serde_json::json;

use super::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn context() -> (Arc<Context>, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let ctx = Context::new(
        client,
        Settings::default(),
        Arc::new(Metrics::default()),
        "test".into(),
    );
    (Arc::new(ctx), handle)
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

async fn expect(
    handle: &mut Handle,
    method: &str,
    path_prefix: &str,
    reply: serde_json::Value,
) -> serde_json::Value {
    let (req, send) = handle.next_request().await.expect("a request");
    assert_eq!(req.method().as_str(), method, "{}", req.uri());
    assert!(
        req.uri().path().starts_with(path_prefix),
        "{} {}",
        req.method(),
        req.uri()
    );
    let body = req.into_body().collect_bytes().await.unwrap();
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
}

#[tokio::test]
async fn finished_artifact_does_nothing_on_restart() {
    let (ctx, mut handle) = context();
    let status = OSArtifactStatus {
        phase: Some(Phase::Ready),
        observed_generation: Some(2),
        ..Default::default()
    };
    let task = tokio::spawn(reconcile(artifact(Some(status)), ctx));
    expect(
        &mut handle,
        "GET",
        "/api/v1/namespaces/ns/configmaps/hello",
        config_map("uid-1", "2"),
    )
    .await;
    let action = tokio::time::timeout(std::time::Duration::from_secs(1), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(action, Action::requeue(IDLE_REQUEUE));
}

#[tokio::test]
async fn object_in_the_way_is_an_error_with_the_owner() {
    let (ctx, mut handle) = context();
    let task = tokio::spawn(reconcile(artifact(None), ctx));
    expect(
        &mut handle,
        "GET",
        "/api/v1/namespaces/ns/configmaps/hello",
        config_map("someone-else", "1"),
    )
    .await;
    let patch = expect(
        &mut handle,
        "PATCH",
        "/apis/build.kairos.io/v1alpha2/namespaces/ns/osartifacts/hello/status",
        serde_json::to_value(artifact(None).as_ref()).unwrap(),
    )
    .await;
    assert_eq!(patch["status"]["phase"], "Error");
    let msg = patch["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("ConfigMap \"hello\"") && msg.contains("someone-else"),
        "{msg}"
    );
    assert_eq!(patch["status"]["conditions"][0]["reason"], "ObjectInTheWay");
    // The Warning Event.
    let (req, send) = handle.next_request().await.unwrap();
    assert!(req.uri().path().contains("/events"), "{}", req.uri());
    send.send_response(
        Response::builder()
            .body(Body::from(b"{}".to_vec()))
            .unwrap(),
    );
    let action = tokio::time::timeout(std::time::Duration::from_secs(1), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
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
