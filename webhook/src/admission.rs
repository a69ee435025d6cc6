//! `POST /validate` and `POST /mutate`: thin adapters between AdmissionReview v1 and the shared
//! validation and defaulting functions. All rules live in `osartifact-shared`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use osartifact_shared::defaults::defaulted;
use osartifact_shared::validation::{Mode, Report, validate_owned};
use osartifact_shared::{OSArtifact, OSArtifactSpec};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tower_http::timeout::TimeoutLayer;
use tracing::{Instrument, field};

use crate::authz::{Authorizer, Permission};
use crate::metrics::{AdmissionLabels, Metrics, Outcome, Webhook, WebhookLabel};
use crate::review::{Operation, Request, Response, ReviewIn, Status, StatusCause, StatusDetails};
use crate::secrets::{SecretSource, known_secrets};

pub const GROUP: &str = "build.kairos.io";
pub const KIND: &str = "OSArtifact";
/// controller-runtime's limit: an UPDATE review carries object and oldObject, each up to 3 MiB.
pub const MAX_BODY: usize = 7 * 1024 * 1024;
/// Below the webhook configurations' timeoutSeconds (10), so the apiserver gets our answer rather
/// than its own timeout. Covers reading the body too: hyper's header timeout ends at the headers,
/// and a body that trickles in must not hold a handler forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(9);

/// What the handlers need; built once at start-up (or per test).
pub struct AppState {
    pub secrets: Arc<dyn SecretSource>,
    /// `None` switches the authorization check off (`--authorization-check=false`).
    pub authz: Option<Arc<dyn Authorizer>>,
    pub metrics: Arc<Metrics>,
}

/// The webhook's HTTP routes, ready to serve over TLS (or to drive with `oneshot` in tests).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate_handler))
        .route("/mutate", post(mutate_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Refuses a too-large Content-Length before reading any of the body, so a client that
        // announces a huge body and then stalls gets its 413 at once instead of holding a
        // connection until the request timeout.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        // A bug must cost one request (a 500, handled by failurePolicy), not the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

async fn validate_handler(State(state): State<Arc<AppState>>, body: Bytes) -> HttpResponse {
    handle(state, Webhook::Validate, body).await
}

async fn mutate_handler(State(state): State<Arc<AppState>>, body: Bytes) -> HttpResponse {
    handle(state, Webhook::Mutate, body).await
}

async fn handle(state: Arc<AppState>, webhook: Webhook, body: Bytes) -> HttpResponse {
    let started = Instant::now();
    let req = match parse(&body) {
        Ok(r) => r,
        Err(msg) => {
            tracing::warn!(webhook = webhook.as_str(), error = %msg, "malformed AdmissionReview");
            state
                .metrics
                .admissions
                .get_or_create(&AdmissionLabels {
                    webhook,
                    operation: String::new(),
                    outcome: Outcome::Malformed,
                    dry_run: false,
                })
                .inc();
            // A 400 is a failed webhook call for the apiserver (failurePolicy applies), which is
            // right: we cannot produce a response it would accept without a uid.
            return (StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    let span = tracing::info_span!(
        "admission",
        webhook = webhook.as_str(),
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = %req.namespace,
        name = %display_name(&req),
        operation = req.operation.as_str(),
        dry_run = req.dry_run.unwrap_or(false),
        allowed = field::Empty,
        patched = field::Empty,
    );
    let operation = req.operation.as_str();
    let dry_run = req.dry_run.unwrap_or(false);
    let (resp, outcome) = match webhook {
        Webhook::Validate => review_validate(&state, req).instrument(span.clone()).await,
        Webhook::Mutate => review_mutate(req),
    };
    span.record("allowed", resp.allowed);
    span.record("patched", resp.patch.is_some());
    span.in_scope(|| {
        if resp.allowed {
            tracing::debug!(warnings = resp.warnings.len(), "admitted");
        } else {
            let msg = resp.status.as_ref().map(|s| s.message.as_str());
            tracing::info!(message = msg.unwrap_or_default(), "denied");
        }
    });
    let body = serde_json::to_vec(&resp.into_review()).unwrap_or_default();
    state
        .metrics
        .admissions
        .get_or_create(&AdmissionLabels {
            webhook,
            operation: operation.to_string(),
            outcome,
            dry_run,
        })
        .inc();
    state
        .metrics
        .duration
        .get_or_create(&WebhookLabel { webhook })
        .observe(started.elapsed().as_secs_f64());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Parses the review envelope; the error is the message for a 400.
pub fn parse(body: &[u8]) -> Result<Request<'_>, String> {
    let review: ReviewIn = serde_json::from_slice(body)
        .map_err(|e| format!("request body is not an AdmissionReview: {e}"))?;
    if !review.api_version.is_empty() && review.api_version != crate::review::API_VERSION {
        return Err(format!(
            "unsupported AdmissionReview apiVersion {:?}: only {} is served (set admissionReviewVersions: [\"v1\"])",
            review.api_version,
            crate::review::API_VERSION
        ));
    }
    let req = review
        .request
        .ok_or_else(|| "AdmissionReview has no request".to_string())?;
    if req.uid.is_empty() {
        return Err("AdmissionReview request has no uid".into());
    }
    Ok(req)
}

/// The metadata fields the webhook reads: whether the object is being deleted, and the names the
/// rules check. The rest (`managedFields`, labels, annotations), which the apiserver sends with
/// every object, is skipped.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    deletion_timestamp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    metadata: Option<Meta>,
}

/// Best effort: an unreadable object has no metadata worth acting on here.
fn meta(raw: Option<&RawValue>) -> Meta {
    raw.and_then(|r| serde_json::from_str::<MetaOnly>(r.get()).ok())
        .and_then(|m| m.metadata)
        .unwrap_or_default()
}

fn display_name(req: &Request) -> String {
    if !req.name.is_empty() {
        return req.name.clone();
    }
    meta(req.object).generate_name.unwrap_or_default()
}

/// Why a request is admitted without looking at the spec, if it is. The new object's own
/// deletionTimestamp is checked by the callers, from the decode they do anyway.
fn skip_reason(req: &Request) -> Option<&'static str> {
    match req.operation {
        Operation::Delete | Operation::Connect => return Some("delete"),
        Operation::Create | Operation::Update => {}
    }
    if req.sub_resource.as_deref().is_some_and(|s| !s.is_empty()) {
        return Some("subresource");
    }
    // oldObject: the request cannot forge stored state. Finalizer removal must always pass.
    if meta(req.old_object).deletion_timestamp.is_some() {
        return Some("terminating");
    }
    None
}

#[derive(Deserialize)]
struct SpecOnly {
    #[serde(default)]
    spec: Option<OSArtifactSpec>,
}

/// The typed spec of a raw object (an absent spec reads as the empty spec).
fn typed_spec(raw: &RawValue) -> Result<OSArtifactSpec, serde_json::Error> {
    Ok(serde_json::from_str::<SpecOnly>(raw.get())?
        .spec
        .unwrap_or_default())
}

fn unchanged_spec(req: &Request, new: &OSArtifactSpec) -> bool {
    if req.operation != Operation::Update {
        return false;
    }
    match req.old_object.map(typed_spec) {
        Some(Ok(old)) => old == *new,
        _ => false,
    }
}

fn bad_request(uid: &str, message: String) -> Response {
    Response::deny(uid, Status::failure(400, "BadRequest", message))
}

/// An OSArtifact as sent: metadata and spec (a missing spec is reported by validation).
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Option<OSArtifactSpec>,
}

/// The object of a CREATE/UPDATE, decoded.
pub struct Decoded {
    pub artifact: OSArtifact,
    /// It has a deletionTimestamp: never blocked, so that finalizers can always be removed.
    pub terminating: bool,
}

/// Decodes the object of a CREATE/UPDATE into an OSArtifact.
pub fn artifact(req: &Request) -> Result<Decoded, String> {
    let raw = req
        .object
        .as_ref()
        .ok_or_else(|| format!("{} request without an object", req.operation.as_str()))?;
    // Decoded plainly first; only a failure is decoded again with path tracking, which costs a
    // third of the decode and is needed only for the message.
    let inc: Incoming = match serde_json::from_str(raw.get()) {
        Ok(inc) => inc,
        Err(_) => return Err(decode_error(raw.get())),
    };
    let m = inc.metadata;
    let terminating = m.deletion_timestamp.is_some();
    let mut a = OSArtifact {
        metadata: kube::api::ObjectMeta {
            name: m.name,
            generate_name: m.generate_name,
            namespace: m.namespace,
            ..Default::default()
        },
        spec: inc.spec.unwrap_or_default(),
        status: None,
    };
    if a.metadata.namespace.as_deref().is_none_or(str::is_empty) && !req.namespace.is_empty() {
        a.metadata.namespace = Some(req.namespace.clone());
    }
    Ok(Decoded {
        artifact: a,
        terminating,
    })
}

/// The message for an object that does not decode. The path names the offending field
/// (`spec.iso: invalid type …`), which a line/column in the apiserver's re-encoded JSON would not.
fn decode_error(raw: &str) -> String {
    let mut de = serde_json::Deserializer::from_str(raw);
    match serde_path_to_error::deserialize::<_, Incoming>(&mut de) {
        Ok(_) => "could not decode the OSArtifact".to_string(),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.split(" at line ").next().unwrap_or_default();
            format!("could not decode the OSArtifact: {path}: {inner}")
        }
    }
}

/// The validating webhook's decision for one request.
pub async fn review_validate(state: &AppState, req: Request<'_>) -> (Response, Outcome) {
    let uid = req.uid.clone();
    if let Some(reason) = skip_reason(&req) {
        tracing::debug!(reason, "skipped");
        return (Response::allow(&uid), Outcome::Skipped);
    }
    let artifact = match artifact(&req) {
        Ok(d) if d.terminating => return (Response::allow(&uid), Outcome::Skipped),
        Ok(d) => d.artifact,
        // Even an undecodable object is never blocked while it is being deleted.
        Err(_) if meta(req.object).deletion_timestamp.is_some() => {
            return (Response::allow(&uid), Outcome::Skipped);
        }
        Err(msg) => return (bad_request(&uid, msg), Outcome::Malformed),
    };
    if unchanged_spec(&req, &artifact.spec) {
        // Metadata/status-only updates (labels, finalizers) never depend on the rules.
        tracing::debug!(reason = "spec unchanged", "skipped");
        return (Response::allow(&uid), Outcome::Skipped);
    }
    // As display_name, from the decode at hand.
    let name = [
        artifact.metadata.name.as_deref(),
        Some(req.name.as_str()),
        artifact.metadata.generate_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|n| !n.is_empty())
    .unwrap_or_default()
    .to_string();

    let namespace = req.namespace.as_str();
    let lookups = known_secrets(state.secrets.as_ref(), namespace, &artifact.spec);
    let authz = async {
        match &state.authz {
            Some(a) => Some(a.missing(&req.user_info, namespace).await),
            None => None,
        }
    };
    let (known, authz) = tokio::join!(lookups, authz);

    match authz {
        Some(Ok(missing)) if !missing.is_empty() => {
            return (forbidden(&uid, &req, &missing), Outcome::Forbidden);
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "authorization check failed");
            // Fail closed: this check guards privileged Pods. 500 tells the user to retry.
            let status = Status::failure(
                500,
                "InternalError",
                format!(
                    "could not check whether {} may create Pods and Jobs in namespace {:?} ({e}); try again",
                    user_name(&req),
                    namespace
                ),
            );
            return (Response::deny(&uid, status), Outcome::Denied);
        }
        _ => {}
    }

    // Off the async workers: rendering a Dockerfile template is CPU work bounded only by the
    // engine's budgets (a fraction of a second at worst), and other reviews must not wait on it.
    let report = match tokio::task::spawn_blocking(move || {
        validate_owned(artifact, &known, Mode::Admission)
    })
    .await
    {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(error = %e, "validation did not finish");
            let status = Status::failure(
                500,
                "InternalError",
                format!("the webhook could not validate this object ({e}); try again"),
            );
            return (Response::deny(&uid, status), Outcome::Denied);
        }
    };
    let outcome = if report.is_ok() {
        Outcome::Allowed
    } else {
        Outcome::Denied
    };
    (to_response(&uid, &name, report), outcome)
}

fn user_name(req: &Request) -> String {
    format!(
        "user {:?}",
        req.user_info.username.as_deref().unwrap_or_default()
    )
}

fn forbidden(uid: &str, req: &Request, missing: &[Permission]) -> Response {
    let list: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
    let msg = format!(
        "{} may not {} in namespace {:?}: an OSArtifact makes the operator create privileged builder Pods and exporter Jobs on the requester's behalf, so the requester needs these permissions too",
        user_name(req),
        list.join(" or "),
        req.namespace
    );
    let mut status = Status::failure(403, "Forbidden", msg);
    status.details = Some(StatusDetails {
        name: display_name(req),
        group: GROUP,
        kind: KIND,
        causes: vec![],
    });
    Response::deny(uid, status)
}

/// Turns a validation report into the response kubectl prints best: 422 Invalid with one cause
/// per violation (`The OSArtifact "a" is invalid:` then one `* field: message` line each).
pub fn to_response(uid: &str, name: &str, report: Report) -> Response {
    if report.errors.is_empty() {
        let mut r = Response::allow(uid);
        r.warnings = report.warnings;
        return r;
    }
    let all: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    let joined = if all.len() == 1 {
        all[0].clone()
    } else {
        format!("[{}]", all.join(", "))
    };
    let causes = report
        .errors
        .iter()
        .map(|e| StatusCause {
            reason: e.error_type.cause_reason(),
            message: e.body(),
            field: e.field.clone(),
        })
        .collect();
    let mut status = Status::failure(
        422,
        "Invalid",
        format!("{KIND}.{GROUP} {name:?} is invalid: {joined}"),
    );
    status.details = Some(StatusDetails {
        name: name.to_string(),
        group: GROUP,
        kind: KIND,
        causes,
    });
    let mut r = Response::deny(uid, status);
    // Warnings are shown even with a denial; keep them, the user fixes everything in one go.
    r.warnings = report.warnings;
    r
}

/// What defaulting reads of an object: whether it is being deleted, and its spec, kept raw.
#[derive(Deserialize)]
struct ForDefaults<'a> {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default, borrow)]
    spec: Option<&'a RawValue>,
}

/// The mutating webhook's decision: a patch of `add` operations for absent defaulted fields.
/// It never denies (validation does), so a spec it cannot decode is passed through untouched.
pub fn review_mutate(req: Request<'_>) -> (Response, Outcome) {
    let uid = req.uid.clone();
    if skip_reason(&req).is_some() {
        return (Response::allow(&uid), Outcome::Skipped);
    }
    let Some(raw) = req.object else {
        return (Response::allow(&uid), Outcome::Skipped);
    };
    let obj: ForDefaults = match serde_json::from_str(raw.get()) {
        Ok(o) => o,
        Err(_) => return (Response::allow(&uid), Outcome::Allowed),
    };
    if obj.metadata.is_some_and(|m| m.deletion_timestamp.is_some()) {
        return (Response::allow(&uid), Outcome::Skipped);
    }
    match defaulting_patch(obj.spec) {
        Ok(patch) if patch.0.is_empty() => (Response::allow(&uid), Outcome::Allowed),
        Ok(patch) => (Response::allow(&uid).with_patch(&patch), Outcome::Patched),
        Err(e) => {
            tracing::debug!(error = %e, "spec not decodable; no defaults applied");
            (Response::allow(&uid), Outcome::Allowed)
        }
    }
}

/// The JSON Patch that fills the absent defaulted fields of an object's `spec` (as sent, raw):
/// only `add` operations, computed by diffing typed round-trips, so it is deterministic and
/// empty when nothing is missing (then nothing but the typed spec is built).
pub fn defaulting_patch(spec: Option<&RawValue>) -> Result<json_patch::Patch, serde_json::Error> {
    use json_patch::{AddOperation, PatchOperation};

    let before: OSArtifactSpec = match spec {
        None => OSArtifactSpec::default(),
        Some(raw) => serde_json::from_str(raw.get())?,
    };
    let after = defaulted(&before);
    if after == before {
        return Ok(json_patch::Patch(vec![]));
    }
    let after_json = serde_json::to_value(&after)?;
    let Some(raw) = spec else {
        // Nothing to add into: add the whole defaulted spec at once.
        return Ok(json_patch::Patch(vec![PatchOperation::Add(AddOperation {
            path: json_patch::jsonptr::PointerBuf::from_tokens(["spec"]),
            value: after_json,
        })]));
    };
    let before_json = serde_json::to_value(&before)?;
    let diff = json_patch::diff(&before_json, &after_json);
    let mut ops = Vec::new();
    // Dry-apply to the spec as sent: the typed round-trip may differ from it, and an op whose
    // parent is absent there would make the apiserver reject the whole patch.
    let mut probe = serde_json::json!({ "spec": serde_json::from_str::<Value>(raw.get())? });
    for op in diff.0 {
        let PatchOperation::Add(add) = op else {
            // apply_defaults is fill-only, so this would be a bug there; never send it.
            tracing::error!(?op, "defaulting produced a non-add operation; dropped");
            continue;
        };
        let mut path = json_patch::jsonptr::PointerBuf::from_tokens(["spec"]);
        path.append(&add.path);
        let op = PatchOperation::Add(AddOperation {
            path,
            value: add.value,
        });
        let single = json_patch::Patch(vec![op.clone()]);
        if json_patch::patch(&mut probe, &single).is_ok() {
            ops.push(op);
        } else {
            tracing::warn!(
                ?op,
                "defaulting operation does not apply to the object; dropped"
            );
        }
    }
    Ok(json_patch::Patch(ops))
}
