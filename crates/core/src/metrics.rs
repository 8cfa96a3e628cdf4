//! A hub's metrics, kept and rendered by `prometheus-client` (the Prometheus project's Rust
//! client) in the Prometheus text exposition format (0.0.4).
//!
//! Each hub owns one [`Metrics`] (a cheap `Clone` sharing the same registry), so the several hubs
//! one test process starts never mix their counts, as a process-global recorder (the `metrics`
//! crate's) would. Counters and histograms are kept by label set; gauges (queue depth, build
//! info) are computed by the caller at scrape time and handed to [`Metrics::render`]. The series
//! the hub exposes are the [`Family`] constants below, their names documented in the README;
//! label values must come from small fixed sets (route templates, refusal codes, source ids as
//! stored), never from raw request input.
//!
//! Nothing here does I/O or reads a clock: latencies are measured by the caller and observed as
//! seconds.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as Series;
use prometheus_client::metrics::gauge::Gauge as GaugeMetric;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What kind of series a family is, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric family: its name, help text and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: FamilyKind,
}

pub const HTTP_REQUESTS: Family = Family {
    name: "switchyard_http_requests_total",
    help: "HTTP requests answered, by route template (or unmatched), method and status.",
    kind: FamilyKind::Counter,
};
pub const INGEST_REQUESTS: Family = Family {
    name: "switchyard_ingest_requests_total",
    help: "Inbound webhooks by source and outcome (accepted, duplicate, refused with its reason).",
    kind: FamilyKind::Counter,
};
pub const INGEST_ACK_SECONDS: Family = Family {
    name: "switchyard_ingest_ack_seconds",
    help: "From receiving an inbound webhook to its durable acknowledgement (accepted or duplicate).",
    kind: FamilyKind::Histogram,
};
pub const DELIVERY_ATTEMPTS: Family = Family {
    name: "switchyard_delivery_attempts_total",
    help: "Delivery attempts by outcome: succeeded, or the failure class.",
    kind: FamilyKind::Counter,
};
pub const DELIVERY_SECONDS: Family = Family {
    name: "switchyard_delivery_seconds",
    help: "HTTP latency of one delivery attempt.",
    kind: FamilyKind::Histogram,
};
pub const RETENTION_REMOVED: Family = Family {
    name: "switchyard_retention_removed_total",
    help: "Records removed by retention, by kind.",
    kind: FamilyKind::Counter,
};
pub const TASK_RESTARTS: Family = Family {
    name: "switchyard_task_restarts_total",
    help: "Background tasks (dispatcher, retention, performance scheduler) restarted after a panic or an early exit, by task.",
    kind: FamilyKind::Counter,
};
pub const HTTP_SHED: Family = Family {
    name: "switchyard_http_shed_total",
    help: "Requests answered 503 overloaded without being served, by reason: deadline (waited past the queueing deadline), line_full (too many already waiting), connections (the connection was over the bound and closed).",
    kind: FamilyKind::Counter,
};
pub const HTTP_IN_FLIGHT: Family = Family {
    name: "switchyard_http_in_flight",
    help: "Requests being served now, out of the bound on requests served at once (the probes and /metrics aside).",
    kind: FamilyKind::Gauge,
};
pub const DELIVERIES: Family = Family {
    name: "switchyard_deliveries",
    help: "Pending deliveries by state: due (waiting to be claimed), scheduled (due later), leased (being attempted).",
    kind: FamilyKind::Gauge,
};
pub const OLDEST_DUE_AGE_SECONDS: Family = Family {
    name: "switchyard_oldest_due_delivery_age_seconds",
    help: "Age of the oldest due, unclaimed delivery of an ACTIVE subscription; 0 when none.",
    kind: FamilyKind::Gauge,
};
pub const RECONCILE_RUNS: Family = Family {
    name: "switchyard_reconcile_runs_total",
    help: "Reconciliation runs against marketplaces' orders APIs, by source and outcome (ok, or failed when the run recorded an error).",
    kind: FamilyKind::Counter,
};
pub const RECONCILE_ORDERS: Family = Family {
    name: "switchyard_reconcile_orders_checked_total",
    help: "Orders the orders APIs reported to reconciliation runs, by source.",
    kind: FamilyKind::Counter,
};
pub const RECONCILE_MISSING: Family = Family {
    name: "switchyard_reconcile_missing_total",
    help: "Order facts a reconciliation found that no webhook had announced (each backfilled as an event), by source.",
    kind: FamilyKind::Counter,
};
pub const RECONCILE_ERRORS: Family = Family {
    name: "switchyard_reconcile_errors_total",
    help: "Errors that ended reconciliation runs, by source and code (unauthorized, rate_limited, transient, refused, protocol, config, store).",
    kind: FamilyKind::Counter,
};
pub const BUILD_INFO: Family = Family {
    name: "switchyard_build_info",
    help: "Always 1; the version is in the label.",
    kind: FamilyKind::Gauge,
};

/// The families the registry keeps, in the order they are rendered (each is rendered, with its
/// `# HELP` and `# TYPE`, even before it has a sample).
const KEPT: [Family; 12] = [
    HTTP_REQUESTS,
    INGEST_REQUESTS,
    INGEST_ACK_SECONDS,
    DELIVERY_ATTEMPTS,
    DELIVERY_SECONDS,
    RETENTION_REMOVED,
    TASK_RESTARTS,
    HTTP_SHED,
    RECONCILE_RUNS,
    RECONCILE_ORDERS,
    RECONCILE_MISSING,
    RECONCILE_ERRORS,
];

/// Upper bounds of the latency histograms' buckets, in seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Label names and values, in the order given.
type Labels = Vec<(&'static str, String)>;

type HistogramSeries = Series<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// What a family is registered as: prometheus-client adds `_total` to a counter's name and a
/// full stop to its help, so both are given without.
fn registered(family: &Family) -> (&'static str, &'static str) {
    let name = match family.kind {
        FamilyKind::Counter => family.name.strip_suffix("_total").unwrap_or(family.name),
        _ => family.name,
    };
    (name, family.help.strip_suffix('.').unwrap_or(family.help))
}

#[derive(Debug)]
struct Kept {
    registry: Registry,
    counters: HashMap<&'static str, Series<Labels, Counter>>,
    histograms: HashMap<&'static str, HistogramSeries>,
}

/// A hub's counters and histograms. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Metrics {
    kept: Arc<Kept>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut counters = HashMap::new();
        let mut histograms = HashMap::new();
        for family in KEPT {
            let (name, help) = registered(&family);
            match family.kind {
                FamilyKind::Counter => {
                    let series = Series::<Labels, Counter>::default();
                    registry.register(name, help, series.clone());
                    counters.insert(family.name, series);
                }
                FamilyKind::Histogram => {
                    let series: HistogramSeries = Series::new_with_constructor(latency_histogram);
                    registry.register(name, help, series.clone());
                    histograms.insert(family.name, series);
                }
                FamilyKind::Gauge => unreachable!("gauges are computed at scrape time"),
            }
        }
        Metrics {
            kept: Arc::new(Kept {
                registry,
                counters,
                histograms,
            }),
        }
    }
}

/// A gauge family's values at scrape time.
#[derive(Debug, Clone)]
pub struct Gauge {
    pub family: Family,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn counters(&self, family: &Family) -> &Series<Labels, Counter> {
        match self.kept.counters.get(family.name) {
            Some(series) => series,
            None => panic!("{} is not a kept counter", family.name),
        }
    }

    /// Adds one to a counter.
    pub fn inc(&self, family: &Family, pairs: &[(&'static str, &str)]) {
        self.add(family, pairs, 1);
    }

    /// Adds `n` to a counter (creating the series at 0 when `n` is 0).
    pub fn add(&self, family: &Family, pairs: &[(&'static str, &str)], n: u64) {
        self.counters(family)
            .get_or_create(&labels(pairs))
            .inc_by(n);
    }

    /// Records one observation, in seconds, in a histogram (a negative or non-finite one as 0).
    pub fn observe(&self, family: &Family, pairs: &[(&'static str, &str)], seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        match self.kept.histograms.get(family.name) {
            Some(series) => series.get_or_create(&labels(pairs)).observe(seconds),
            None => panic!("{} is not a kept histogram", family.name),
        }
    }

    /// A counter's value (0 if it was never touched); for tests and logs.
    pub fn counter(&self, family: &Family, pairs: &[(&'static str, &str)]) -> u64 {
        self.counters(family)
            .get(&labels(pairs))
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Everything kept, then `gauges`, in the text exposition format 0.0.4.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_text::encode(&mut out, &self.kept.registry);
        let mut now = Registry::default();
        for gauge in gauges {
            let series =
                Series::<Labels, GaugeMetric<f64, std::sync::atomic::AtomicU64>>::default();
            for (labels, value) in &gauge.samples {
                series.get_or_create(labels).set(*value);
            }
            let (name, help) = registered(&gauge.family);
            now.register(name, help, series);
        }
        let _ = prometheus_text::encode(&mut out, &now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_rendered_under_its_documented_name() {
        let metrics = Metrics::new();
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]);
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]);
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "timeout")]);
        metrics.add(&RETENTION_REMOVED, &[("kind", "events")], 0);
        let text = metrics.render(&[Gauge {
            family: BUILD_INFO,
            samples: vec![(vec![("version", "1.2.3".into())], 1.0)],
        }]);
        // A family is rendered, with its help, once it has a sample.
        for family in [&DELIVERY_ATTEMPTS, &RETENTION_REMOVED, &BUILD_INFO] {
            assert!(
                text.contains(&format!("# HELP {} {}\n", family.name, family.help)),
                "{} in\n{text}",
                family.name
            );
        }
        assert!(text.contains("switchyard_delivery_attempts_total{outcome=\"succeeded\"} 2\n"));
        assert!(text.contains("switchyard_delivery_attempts_total{outcome=\"timeout\"} 1\n"));
        assert!(text.contains("switchyard_retention_removed_total{kind=\"events\"} 0\n"));
        assert!(text.contains("switchyard_build_info{version=\"1.2.3\"} 1"));
        assert_eq!(
            metrics.counter(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]),
            2
        );
        assert_eq!(
            metrics.counter(&DELIVERY_ATTEMPTS, &[("outcome", "nope")]),
            0
        );
        // Reading a counter creates no series.
        assert!(!metrics.render(&[]).contains("nope"));
    }

    #[test]
    fn histograms_count_bad_observations_as_zero_seconds() {
        let metrics = Metrics::new();
        for seconds in [0.0005, 0.001, 0.003, 0.2, 0.2, 29.0, 31.0, -1.0, f64::NAN] {
            metrics.observe(&DELIVERY_SECONDS, &[], seconds);
        }
        let text = metrics.render(&[]);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} in\n{text}"))
                .to_string()
        };
        // -1 and NaN count as 0 s, in the first bucket.
        assert!(line("switchyard_delivery_seconds_bucket{le=\"0.001\"}").ends_with(" 4"));
        assert!(line("switchyard_delivery_seconds_bucket{le=\"30\"}").ends_with(" 8"));
        assert!(line("switchyard_delivery_seconds_bucket{le=\"+Inf\"}").ends_with(" 9"));
        assert!(line("switchyard_delivery_seconds_count").ends_with(" 9"));
        assert!(
            line("switchyard_delivery_seconds_sum")
                .starts_with("switchyard_delivery_seconds_sum 60.40")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.inc(
            &INGEST_REQUESTS,
            &[("source", "we\"ird\\id\n"), ("outcome", "accepted")],
        );
        let text = metrics.render(&[]);
        assert!(text.contains(
            "switchyard_ingest_requests_total{source=\"we\\\"ird\\\\id\\n\",outcome=\"accepted\"} 1\n"
        ), "{text}");
        // Every line is a comment or a sample; no raw newline broke one in two.
        assert!(
            text.lines()
                .all(|l| l.starts_with("# ") || l.starts_with("switchyard_"))
        );
    }

    #[test]
    fn clones_share_numbers_and_separate_registries_do_not() {
        let a = Metrics::new();
        let shared = a.clone();
        let b = Metrics::new();
        shared.inc(&HTTP_REQUESTS, &[("route", "/healthz")]);
        assert_eq!(a.counter(&HTTP_REQUESTS, &[("route", "/healthz")]), 1);
        assert_eq!(b.counter(&HTTP_REQUESTS, &[("route", "/healthz")]), 0);
    }
}
