//! The admin listener: readiness follows the certificate and shutdown; metrics are exposed.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use osartifact_certs::{CertSet, Policy, Subject, unix_now};
use osartifact_webhook::admin::{Health, router};
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::tls::{CertResolver, certified_key, install_crypto_provider};
use tower::ServiceExt;

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn readiness_needs_a_certificate_and_turns_false_on_shutdown() {
    install_crypto_provider();
    let resolver = CertResolver::new();
    let health = Health::new(resolver.clone());
    let metrics = Arc::new(Metrics::new());
    let app = router(health.clone(), metrics);

    assert_eq!(get(&app, "/livez").await.0, StatusCode::OK);
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("certificate"), "{body}");

    let set = CertSet::bootstrap(
        &Subject {
            dns_names: vec!["localhost".into()],
            ips: vec![],
        },
        &Policy::default(),
        unix_now(),
    )
    .unwrap();
    resolver.set(certified_key(set.tls_crt.as_bytes(), set.tls_key.as_bytes()).unwrap());
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);

    health.begin_shutdown();
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "shutting down");
    assert_eq!(get(&app, "/livez").await.0, StatusCode::OK);

    let (status, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("osartifact_webhook_certificate_reloads_total"),
        "{text}"
    );
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
}
