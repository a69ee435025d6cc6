//! The Secret and caBundle logic against a scripted apiserver (tower-test): the create race
//! between replicas, optimistic-concurrency conflicts, and caBundle patches.

use std::collections::BTreeMap;

use hyper::{Request, Response, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::client::Body;
use osartifact_certs::k8s::{ensure_secret, sync_ca_bundle};
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type H = Handle<Request<Body>, Response<Body>>;

fn subject() -> Subject {
    Subject::for_service("osartifact-webhook", "osartifact-system", &[])
}

fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": reason, "reason": reason, "code": code});
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(v: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

fn secret(set: &CertSet, rv: &str) -> Value {
    let data: BTreeMap<String, ByteString> = set
        .to_data()
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v)))
        .collect();
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("cert".into()),
            namespace: Some("osartifact-system".into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    serde_json::to_value(s).unwrap()
}

async fn next(h: &mut H) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(std::time::Duration::from_secs(5), h.next_request())
        .await
        .expect("a request")
        .expect("a request")
}

async fn body_json(req: Request<Body>) -> Value {
    let bytes = req.into_body().collect_bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_loser_of_the_create_race_serves_the_winners_certificates() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let winner = CertSet::bootstrap(&subject(), &Policy::default(), unix_now()).unwrap();
    let w = winner.clone();
    let server = tokio::spawn(async move {
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "GET");
        assert!(
            req.uri()
                .path()
                .ends_with("/namespaces/osartifact-system/secrets/cert")
        );
        send.send_response(status(404, "NotFound"));
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "POST");
        let body = body_json(req).await;
        assert_eq!(body["type"], "kubernetes.io/tls");
        for k in [
            "tls.crt",
            "tls.key",
            "ca.crt",
            "ca-signing.crt",
            "ca-signing.key",
        ] {
            assert!(body["data"][k].is_string(), "{k} missing");
        }
        // Another replica created it first.
        send.send_response(status(409, "AlreadyExists"));
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "GET");
        send.send_response(ok(&secret(&w, "7")));
        // Nothing to change: no write follows.
    });
    let (set, changes) = ensure_secret(
        &client,
        "osartifact-system",
        "cert",
        &subject(),
        &Policy::default(),
        unix_now(),
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert_eq!(set, winner);
    assert!(changes.is_empty());
}

#[tokio::test]
async fn a_conflicting_update_is_retried_on_fresh_data() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let now = unix_now();
    // Stored certificate lacks a newly requested name, so this replica wants to re-issue it...
    let stale = CertSet::bootstrap(&subject(), &Policy::default(), now).unwrap();
    let wanted = Subject::for_service(
        "osartifact-webhook",
        "osartifact-system",
        &["extra.example".into()],
    );
    // ...but another replica already did.
    let mut fresh = stale.clone();
    fresh.reconcile(&wanted, &Policy::default(), now).unwrap();
    let f = fresh.clone();
    let server = tokio::spawn(async move {
        let (_, send) = next(&mut h).await;
        send.send_response(ok(&secret(&stale, "1")));
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "PUT");
        let body = body_json(req).await;
        assert_eq!(
            body["metadata"]["resourceVersion"], "1",
            "updates carry the version read"
        );
        send.send_response(status(409, "Conflict"));
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "GET");
        send.send_response(ok(&secret(&f, "2")));
    });
    let (set, _) = ensure_secret(
        &client,
        "osartifact-system",
        "cert",
        &wanted,
        &Policy::default(),
        now,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert_eq!(set, fresh);
}

#[tokio::test]
async fn ca_bundle_is_patched_only_where_it_differs() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let bundle = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec();
    let b64 = serde_json::to_value(ByteString(bundle.clone())).unwrap();
    let server = tokio::spawn(async move {
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "GET");
        assert!(
            req.uri()
                .path()
                .ends_with("/validatingwebhookconfigurations/osartifact-validating")
        );
        send.send_response(ok(&json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "osartifact-validating"},
            "webhooks": [{"name": "validate.osartifacts.build.kairos.io", "clientConfig": {"service": {"namespace": "osartifact-system", "name": "osartifact-webhook"}},
                "sideEffects": "None", "admissionReviewVersions": ["v1"]}]
        })));
        let (req, send) = next(&mut h).await;
        assert_eq!(req.method(), "PATCH");
        assert_eq!(
            req.headers()["content-type"],
            "application/strategic-merge-patch+json"
        );
        let body = body_json(req).await;
        assert_eq!(
            body,
            json!({"webhooks": [{"name": "validate.osartifacts.build.kairos.io", "clientConfig": {"caBundle": b64}}]})
        );
        send.send_response(ok(&json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "osartifact-validating"}})));
        // The mutating configuration is already up to date: read, not written.
        let (req, send) = next(&mut h).await;
        assert!(
            req.uri()
                .path()
                .ends_with("/mutatingwebhookconfigurations/osartifact-mutating")
        );
        send.send_response(ok(&json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "osartifact-mutating"},
            "webhooks": [{"name": "default.osartifacts.build.kairos.io", "clientConfig": {"caBundle": b64},
                "sideEffects": "None", "admissionReviewVersions": ["v1"]}]
        })));
    });
    let patched = sync_ca_bundle(
        &client,
        &[
            "validating:osartifact-validating".to_string(),
            "mutating:osartifact-mutating".to_string(),
        ],
        &bundle,
    )
    .await
    .unwrap();
    server.await.unwrap();
    assert_eq!(patched, 1);
}
