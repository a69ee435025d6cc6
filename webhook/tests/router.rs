//! Golden tests of the router: every `fixtures/*.review.json` is POSTed to the path its name
//! starts with (`validate-…` → /validate, `mutate-…` → /mutate) and the answer is compared with
//! `fixtures/*.golden.json` (HTTP status, body, and the decoded patch for readability).
//! `UPDATE_GOLDEN=1 cargo test -p osartifact-webhook --test router` rewrites the golden files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use osartifact_shared::secrets::SecretLookup;
use osartifact_shared::testing::Mangler;
use osartifact_webhook::admission::{AppState, REQUEST_TIMEOUT, router};
use osartifact_webhook::authz::{REQUIRED, StaticAuthorizer};
use osartifact_webhook::metrics::Metrics;
use osartifact_webhook::secrets::StaticSecrets;
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn state() -> Arc<AppState> {
    let mut secrets = BTreeMap::new();
    let found = |entries: &[(&str, &str)]| {
        SecretLookup::Found(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        )
    };
    let ns = |n: &str| ("builds".to_string(), n.to_string());
    secrets.insert(
        ns("good-dockerfile"),
        found(&[(
            "Dockerfile",
            "FROM quay.io/kairos/{{ .Flavor }}:latest\nRUN echo hello\n",
        )]),
    );
    secrets.insert(
        ns("define-dockerfile"),
        found(&[(
            "Dockerfile",
            "{{define \"base\"}}FROM alpine{{end}}{{template \"base\"}}\n",
        )]),
    );
    secrets.insert(
        ns("unreachable"),
        SecretLookup::Unavailable("no answer from the API within 2s".into()),
    );
    secrets.insert(
        ns("cloud-config"),
        found(&[("userdata", "#cloud-config\n")]),
    );
    let authz = StaticAuthorizer {
        denied: BTreeMap::from([("mallory".to_string(), vec![REQUIRED[1]])]),
        unreachable: BTreeSet::from(["unreachable".to_string()]),
    };
    Arc::new(AppState {
        secrets: Arc::new(StaticSecrets(secrets)),
        authz: Some(Arc::new(authz)),
        metrics: Arc::new(Metrics::new()),
    })
}

async fn post(state: Arc<AppState>, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

fn decode_patch(body: &Value) -> Option<Value> {
    let b64 = body.pointer("/response/patch")?.as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(serde_json::from_slice(&raw).unwrap())
}

fn observed(status: StatusCode, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let mut out = json!({"httpStatus": status.as_u16(), "body": v});
            if let Some(p) = decode_patch(&out["body"]) {
                out["decodedPatch"] = p;
            }
            out
        }
        Err(_) => json!({"httpStatus": status.as_u16(), "text": String::from_utf8_lossy(body)}),
    }
}

#[tokio::test]
async fn golden_fixtures() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".review.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "fixtures missing");
    let mut failures = Vec::new();
    for path in &names {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let case = file.trim_end_matches(".review.json");
        let route = if case.starts_with("validate-") {
            "/validate"
        } else {
            "/mutate"
        };
        let input = std::fs::read(path).unwrap();
        let (status, body) = post(state(), route, input.clone()).await;
        let got = observed(status, &body);

        // Invariants that hold for every well-formed review.
        if status == StatusCode::OK {
            let req: Value = serde_json::from_slice(&input).unwrap();
            assert_eq!(got["body"]["apiVersion"], "admission.k8s.io/v1", "{case}");
            assert_eq!(got["body"]["kind"], "AdmissionReview", "{case}");
            assert_eq!(
                got["body"]["response"]["uid"], req["request"]["uid"],
                "{case}: uid must echo the request's"
            );
            if route == "/validate" {
                assert!(got["body"]["response"].get("patch").is_none(), "{case}");
            }
        }

        let golden = fixtures().join(format!("{case}.golden.json"));
        let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
        if update {
            std::fs::write(&golden, pretty).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("{case}: no golden file; run with UPDATE_GOLDEN=1"));
        let want: Value = serde_json::from_str(&want).unwrap();
        if want != got {
            failures.push(format!("{case}:\n--- want\n{want:#}\n+++ got\n{got:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The patch applied to the object yields an object whose patch is empty (idempotent), and the
/// same input always yields the same bytes (deterministic: GitOps dry-runs see no drift).
#[tokio::test]
async fn defaulting_is_idempotent_and_deterministic() {
    for case in [
        "mutate-create-fills-defaults",
        "mutate-create-partial-volume",
        "mutate-create-no-spec",
        "mutate-create-generatename",
    ] {
        let input = std::fs::read(fixtures().join(format!("{case}.review.json"))).unwrap();
        let (_, first) = post(state(), "/mutate", input.clone()).await;
        let (_, second) = post(state(), "/mutate", input.clone()).await;
        assert_eq!(first, second, "{case}: not deterministic");

        let body: Value = serde_json::from_slice(&first).unwrap();
        let patch: json_patch::Patch =
            serde_json::from_value(decode_patch(&body).expect("a patch")).unwrap();
        for op in &patch.0 {
            assert!(
                matches!(op, json_patch::PatchOperation::Add(_)),
                "{case}: {op:?}"
            );
        }
        let mut review: Value = serde_json::from_slice(&input).unwrap();
        json_patch::patch(&mut review["request"]["object"], &patch).unwrap();
        let (_, again) = post(state(), "/mutate", serde_json::to_vec(&review).unwrap()).await;
        let again: Value = serde_json::from_slice(&again).unwrap();
        assert!(
            again["response"].get("patch").is_none(),
            "{case}: {again:#}"
        );
        assert!(again["response"].get("patchType").is_none(), "{case}");
    }
}

#[tokio::test]
async fn authorization_check_can_be_switched_off() {
    let s = state();
    let off = Arc::new(AppState {
        secrets: s.secrets.clone(),
        authz: None,
        metrics: Arc::new(Metrics::new()),
    });
    let input =
        std::fs::read(fixtures().join("validate-create-forbidden-user.review.json")).unwrap();
    let (status, body) = post(off, "/validate", input).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["response"]["allowed"], true);
}

#[tokio::test]
async fn large_bodies_up_to_7_mib_are_accepted() {
    let input = std::fs::read(fixtures().join("validate-create-valid.review.json")).unwrap();
    let mut review: Value = serde_json::from_slice(&input).unwrap();
    // An UPDATE can carry two objects of up to 3 MiB each.
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"big": "x".repeat(6 * 1024 * 1024)});
    let (status, _) = post(state(), "/validate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"big": "x".repeat(8 * 1024 * 1024)});
    let (status, _) = post(state(), "/validate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A body that stalls (or trickles in) cannot hold a handler: hyper's header timeout ends at the
/// headers, so the request timeout answers 503 before the apiserver's own deadline (10 s).
#[tokio::test(start_paused = true)]
async fn a_stalled_body_times_out_before_the_apiserver_gives_up() {
    use futures::StreamExt;
    let first = axum::body::Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","#);
    let stalled = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
        .chain(futures::stream::pending());
    let req = Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from_stream(stalled))
        .unwrap();
    let started = tokio::time::Instant::now();
    // Paused time: the clock jumps to the next timer, so this runs in no real time, and fails
    // (rather than hangs) if nothing ends the request.
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        router(state()).oneshot(req),
    )
    .await
    .expect("the request was still waiting after 60 s")
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let waited = started.elapsed();
    assert!(
        waited >= REQUEST_TIMEOUT && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
}

#[tokio::test]
async fn metrics_count_reviews() {
    let s = state();
    let input = std::fs::read(fixtures().join("validate-create-invalid.review.json")).unwrap();
    post(s.clone(), "/validate", input).await;
    post(s.clone(), "/validate", b"nope".to_vec()).await;
    let text = s.metrics.encode();
    assert!(
        text.contains(
            r#"osartifact_webhook_admission_reviews_total{webhook="validate",operation="CREATE",outcome="denied",dry_run="false"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"outcome="malformed""#), "{text}");
    assert!(
        text.contains("osartifact_webhook_admission_duration_seconds_bucket"),
        "{text}"
    );
}

/// Bad input gets an answer, never a panic: every fixture's object, mangled (values swapped for
/// odd ones, list entries doubled; deterministically, 4,000 variants), goes to both webhooks.
/// Each answer is a 200 AdmissionReview that echoes the uid, or a 400 naming the problem.
#[tokio::test]
async fn mangled_objects_get_an_answer_never_a_crash() {
    const VARIANTS: usize = 4000;
    let mut seeds: Vec<Value> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".review.json"))
        .filter_map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).ok())
        .filter(|r| r.pointer("/request/object").is_some_and(Value::is_object))
        .collect();
    seeds.sort_by_key(|v| v.to_string());
    assert!(seeds.len() >= 20, "fixtures missing");

    let s = state();
    let mut mangler = Mangler::new(0x9E37_79B9_7F4A_7C15);
    let mut answered = [0usize; 2];
    for i in 0..VARIANTS {
        let mut review = seeds[i % seeds.len()].clone();
        let object = review.pointer_mut("/request/object").unwrap();
        mangler.mangle(object);
        let uid = review["request"]["uid"].clone();
        let body = serde_json::to_vec(&review).unwrap();
        for (n, route) in ["/validate", "/mutate"].into_iter().enumerate() {
            let (status, out) = post(s.clone(), route, body.clone()).await;
            let text = String::from_utf8_lossy(&out);
            match status {
                StatusCode::OK => {
                    let v: Value = serde_json::from_slice(&out).unwrap();
                    assert_eq!(v["response"]["uid"], uid, "{route} {review}");
                    if v["response"]["allowed"] == false {
                        let msg = v["response"]["status"]["message"].as_str().unwrap_or("");
                        assert!(!msg.is_empty(), "{route}: a denial without a message: {v}");
                    }
                    answered[n] += 1;
                }
                StatusCode::BAD_REQUEST => assert!(!text.is_empty(), "{route}: empty 400"),
                other => panic!("{route} answered {other} for {review}: {text}"),
            }
        }
    }
    // Most variants still are reviews with a uid, so most got a real answer.
    assert!(answered.iter().all(|&a| a > VARIANTS / 2), "{answered:?}");
}
