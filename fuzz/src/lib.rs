//! Shared pieces of the fuzz targets. The operator is a binary crate, so its `plan` and `preview`
//! modules are compiled in here from their sources: the targets fuzz the very code the operator
//! runs, with no second copy.

// The operator's modules are compiled whole; the targets call only part of them.
#[allow(dead_code)]
#[path = "../../operator/src/plan/mod.rs"]
pub mod plan;
#[allow(dead_code)]
#[path = "../../operator/src/preview.rs"]
pub mod preview;
#[allow(dead_code)]
#[path = "../../operator/src/settings.rs"]
pub mod settings;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use osartifact_shared::secrets::SecretLookup;
use osartifact_webhook::admission::{AppState, router};
use osartifact_webhook::authz::StaticAuthorizer;
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use tower::ServiceExt;

/// Template data for the template targets: the conformance corpus' keys, odd values included.
pub fn template_values() -> BTreeMap<String, String> {
    [
        ("A", "alpha"),
        ("B", ""),
        ("N", "3"),
        ("Z", "0"),
        ("T", "true"),
        ("Q", "it's \"q\" <b>&"),
        ("Ctl", "\u{1}\t\n"),
        ("Emo", "😀x"),
        ("NUL", "a\u{0}b"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Budgets small enough that one input runs in milliseconds; the engine's defaults are the same
/// code with bigger numbers.
pub fn small_limits() -> osartifact_gotemplate::Limits {
    osartifact_gotemplate::Limits {
        max_output_bytes: 64 * 1024,
        max_range_iterations: 10_000,
        max_steps: 200_000,
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Timers for the router's request timeout; the blocking pool for validation.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
}

fn state() -> Arc<AppState> {
    static STATE: OnceLock<Arc<AppState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let mut secrets = BTreeMap::new();
            let dockerfile = SecretLookup::Found(BTreeMap::from([(
                "Dockerfile".to_string(),
                b"FROM quay.io/kairos/{{ .Flavor }}:latest\n".to_vec(),
            )]));
            secrets.insert(("default".into(), "dockerfile".into()), dockerfile);
            Arc::new(AppState {
                secrets: Arc::new(StaticSecrets(secrets)),
                authz: Some(Arc::new(StaticAuthorizer::default())),
                metrics: Arc::new(Metrics::new()),
            })
        })
        .clone()
}

/// POSTs `body` to the webhook's router in-process; the HTTP status and the body.
pub fn post(path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
    runtime().block_on(async {
        let req = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
            .expect("a request");
        let resp = router(state())
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("an in-memory body")
            .to_bytes();
        (status, bytes.to_vec())
    })
}
