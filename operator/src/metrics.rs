//! Prometheus metrics (prometheus-client). Counter names carry no `_total`: the library appends it
//! on export and panics in debug builds when a name already ends with it.

use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("osartifact_operator");
        let reconciliations = Counter::default();
        let failures = Family::<CategoryLabels, Counter>::default();
        let transitions = Family::<PhaseLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
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
