//! Prometheus metrics (prometheus-client). Counter names carry no `_total`: the library appends it
//! on export and panics in debug builds when a name already ends with it.

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    reconciliations: Counter,
    failures: Family<CategoryLabels, Counter>,
    transitions: Family<PhaseLabels, Counter>,
    duration: Histogram,
    builds_running: Gauge,
    builds_queued: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("osartifact_operator");
        let reconciliations = Counter::default();
        let failures = Family::<CategoryLabels, Counter>::default();
        let transitions = Family::<PhaseLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let builds_running = Gauge::default();
        let builds_queued = Gauge::default();
        registry.register(
            "builds_running",
            "Builder pods holding a build slot, as last counted by the build queue",
            builds_running.clone(),
        );
        registry.register(
            "builds_queued",
            "Artifacts waiting for a build slot, as last counted by the build queue",
            builds_queued.clone(),
        );
        registry.register(
            "reconciliations",
            "Reconciliations started",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconcile failures by error category",
            failures.clone(),
        );
        registry.register(
            "phase_transitions",
            "Status phase transitions by new phase",
            transitions.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation",
            duration.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            reconciliations,
            failures,
            transitions,
            duration,
            builds_running,
            builds_queued,
        }
    }
}

/// Records the reconcile duration when dropped, so every exit path is measured.
pub struct Timer<'a> {
    start: Instant,
    histogram: &'a Histogram,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    pub fn reconciled(&self) {
        self.reconciliations.inc();
    }

    pub fn failed(&self, category: &str) {
        self.failures
            .get_or_create(&CategoryLabels {
                category: category.into(),
            })
            .inc();
    }

    pub fn transition(&self, phase: &str) {
        self.transitions
            .get_or_create(&PhaseLabels {
                phase: phase.into(),
            })
            .inc();
    }

    pub fn set_builds(&self, running: usize, queued: usize) {
        self.builds_running
            .set(i64::try_from(running).unwrap_or(i64::MAX));
        self.builds_queued
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    pub fn reconcile_timer(&self) -> Timer<'_> {
        Timer {
            start: Instant::now(),
            histogram: &self.duration,
        }
    }
}

impl osartifact_admin::MetricsSource for Metrics {
    /// The OpenMetrics text exposition; empty if a panic poisoned the registry lock.
    fn encode(&self) -> String {
        self.registry
            .lock()
            .map(|r| osartifact_admin::encode(&r))
            .unwrap_or_default()
    }
}
