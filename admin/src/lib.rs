//! The plain-HTTP admin listener the operator and the webhook both serve: `/livez` (the process
//! answers), `/readyz` (the program's own notion of ready) and `/metrics` (OpenMetrics text from
//! prometheus-client), with graceful shutdown.
//!
//! A crate of its own because neither program depends on the other, and `osartifact-shared` is
//! the API types crate: it stays free of an HTTP server stack. Each program keeps what differs —
//! when it is ready and what the body says ([`Readiness`]), and its metrics ([`MetricsSource`]);
//! this crate owns the endpoints, their responses and the serving loop, so the two listeners
//! cannot drift apart.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What `/readyz` answers, decided by each program.
pub trait Readiness: Send + Sync + 'static {
    /// `Ok(body)` answers 200, `Err(reason)` answers 503; the string is the response body.
    fn check(&self) -> Result<&'static str, &'static str>;
}

/// What `/metrics` answers.
pub trait MetricsSource: Send + Sync + 'static {
    /// The metrics as OpenMetrics text, usually [`encode`] of the program's registry.
    fn encode(&self) -> String;
}

/// The content type of `/metrics`: prometheus-client's text encoder writes OpenMetrics 1.0.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry as the OpenMetrics text that [`METRICS_CONTENT_TYPE`] announces.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[derive(Clone)]
struct AdminState {
    readiness: Arc<dyn Readiness>,
    metrics: Arc<dyn MetricsSource>,
}

/// The three endpoints; any other path answers 404.
pub fn router(readiness: Arc<dyn Readiness>, metrics: Arc<dyn MetricsSource>) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    match s.readiness.check() {
        Ok(body) => (StatusCode::OK, body),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

async fn metrics_handler(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
}

/// Serves [`router`] on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish. The caller binds, so it decides how a bind failure is reported.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<dyn Readiness>,
    metrics: Arc<dyn MetricsSource>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(readiness, metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::ServiceExt;

    use super::*;

    struct Fixed(Mutex<Result<&'static str, &'static str>>);

    impl Readiness for Fixed {
        fn check(&self) -> Result<&'static str, &'static str> {
            *self.0.lock().unwrap()
        }
    }

    struct OneCounter(Registry);

    impl OneCounter {
        fn new() -> Self {
            let mut registry = Registry::default();
            let c = Counter::<u64>::default();
            c.inc();
            registry.register("test_events", "Events seen", c);
            Self(registry)
        }
    }

    impl MetricsSource for OneCounter {
        fn encode(&self) -> String {
            encode(&self.0)
        }
    }

    async fn get(app: &Router, path: &str) -> (StatusCode, Option<String>, String) {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    const TEXT: &str = "text/plain; charset=utf-8";

    #[tokio::test]
    async fn readyz_answers_the_body_or_the_reason() {
        let readiness = Arc::new(Fixed(Mutex::new(Err("no certificate yet"))));
        let app = router(readiness.clone(), Arc::new(OneCounter::new()));

        let (status, ct, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ct.as_deref(), Some(TEXT));
        assert_eq!(body, "no certificate yet");

        *readiness.0.lock().unwrap() = Ok("ready");
        let (status, ct, body) = get(&app, "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some(TEXT));
        assert_eq!(body, "ready");
    }

    #[tokio::test]
    async fn livez_answers_ok_whatever_readiness_says() {
        let app = router(
            Arc::new(Fixed(Mutex::new(Err("not ready")))),
            Arc::new(OneCounter::new()),
        );
        assert_eq!(
            get(&app, "/livez").await,
            (StatusCode::OK, Some(TEXT.to_string()), "ok".to_string())
        );
        assert_eq!(get(&app, "/other").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let app = router(
            Arc::new(Fixed(Mutex::new(Ok("ok")))),
            Arc::new(OneCounter::new()),
        );
        let (status, ct, body) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            ct.as_deref(),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        assert!(body.contains("test_events_total 1\n"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn serves_until_cancelled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            Arc::new(Fixed(Mutex::new(Ok("ok")))),
            Arc::new(OneCounter::new()),
            shutdown.clone(),
        ));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /readyz HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("\r\n\r\nok"), "{reply}");

        shutdown.cancel();
        task.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
