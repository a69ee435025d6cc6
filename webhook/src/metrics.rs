//! Prometheus metrics (prometheus-client), served on the admin listener.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
}

impl Webhook {
    /// The label value and log field: the path it serves, without the slash.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed without looking (delete, terminating, status, unchanged spec).
    Skipped,
    Allowed,
    Patched,
    Denied,
    Forbidden,
    Malformed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Allowed => "allowed",
            Outcome::Patched => "patched",
            Outcome::Denied => "denied",
            Outcome::Forbidden => "forbidden",
            Outcome::Malformed => "malformed",
        }
    }
}

// Lower-case label values, as Kubernetes' own admission metrics have them.
impl EncodeLabelValue for Webhook {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub webhook: Webhook,
    pub operation: String,
    pub outcome: Outcome,
    pub dry_run: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: Webhook,
}

pub struct Metrics {
    pub registry: Registry,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub duration: Family<WebhookLabel, Histogram>,
    pub cert_reloads: Counter,
    pub cert_reload_errors: Counter,
    pub cert_not_after: Gauge<i64, AtomicI64>,
    pub authz_cache: crate::authz_cache::CacheCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("osartifact_webhook");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        // Counter names must not end in _total: prometheus-client appends it on export.
        registry.register(
            "admission_reviews",
            "AdmissionReviews answered, by webhook, operation and outcome",
            admissions.clone(),
        );
        let duration = Family::<WebhookLabel, Histogram>::new_with_constructor(|| {
            // Fine buckets below the apiserver's lowest (5 ms): a healthy webhook lives there.
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 2.5,
            ])
        });
        registry.register(
            "admission_duration_seconds",
            "Time to answer an AdmissionReview, from parsed request to serialised response",
            duration.clone(),
        );
        let cert_reloads = Counter::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate changes picked up without a restart",
            cert_reloads.clone(),
        );
        let cert_reload_errors = Counter::default();
        registry.register(
            "certificate_reload_errors",
            "Serving certificate reads that failed (the previous certificate stays in use)",
            cert_reload_errors.clone(),
        );
        let cert_not_after = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "certificate_not_after_seconds",
            "Expiry of the serving certificate in use, as a Unix timestamp",
            cert_not_after.clone(),
        );
        let authz_cache = crate::authz_cache::CacheCounters::default();
        registry.register(
            "authorization_cache_hits",
            "Reviews whose authorization check was answered from the cache of allowed answers",
            authz_cache.hits.clone(),
        );
        registry.register(
            "authorization_cache_misses",
            "Reviews whose authorization check asked the apiserver (SubjectAccessReviews)",
            authz_cache.misses.clone(),
        );
        Self {
            registry,
            authz_cache,
            admissions,
            duration,
            cert_reloads,
            cert_reload_errors,
            cert_not_after,
        }
    }

    pub fn encode(&self) -> String {
        osartifact_admin::encode(&self.registry)
    }
}

impl osartifact_admin::MetricsSource for Metrics {
    fn encode(&self) -> String {
        Metrics::encode(self)
    }
}
