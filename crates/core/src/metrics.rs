//! A hub's own metrics registry, rendered in the Prometheus text exposition format (0.0.4).
//!
//! Each hub owns one [`Metrics`] (a cheap `Clone` sharing the same numbers), so the several hubs
//! one test process starts never mix their counts, as a process-global recorder would. Counters
//! and histograms are kept by label set; gauges (queue depth, build info) are computed by the
//! caller at scrape time and handed to [`Metrics::render`]. The series the hub exposes are the
//! [`Family`] constants below; label values must come from small fixed sets (route templates,
//! refusal codes, source ids as stored), never from raw request input.
//!
//! Nothing here does I/O or reads a clock: latencies are measured by the caller and observed as
//! seconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// What kind of series a family is, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
}

impl FamilyKind {
    fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Counter => "counter",
            FamilyKind::Gauge => "gauge",
            FamilyKind::Histogram => "histogram",
        }
    }
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
pub const BUILD_INFO: Family = Family {
    name: "switchyard_build_info",
    help: "Always 1; the version is in the label.",
    kind: FamilyKind::Gauge,
};

/// The families the registry keeps, in the order they are rendered (each is rendered, with its
/// `# HELP` and `# TYPE`, even before it has a sample).
const KEPT: [Family; 8] = [
    HTTP_REQUESTS,
    INGEST_REQUESTS,
    INGEST_ACK_SECONDS,
    DELIVERY_ATTEMPTS,
    DELIVERY_SECONDS,
    RETENTION_REMOVED,
    TASK_RESTARTS,
    HTTP_SHED,
];

/// Upper bounds of the latency histograms' buckets, in seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Label names and values, in the order given.
type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above the highest bound.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Numbers {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// A hub's counters and histograms. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    numbers: Arc<Mutex<Numbers>>,
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

    fn numbers(&self) -> std::sync::MutexGuard<'_, Numbers> {
        // A panic elsewhere while holding the lock leaves whole numbers behind; keep counting.
        self.numbers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one to a counter.
    pub fn inc(&self, family: &Family, pairs: &[(&'static str, &str)]) {
        self.add(family, pairs, 1);
    }

    /// Adds `n` to a counter (creating the series at 0 when `n` is 0).
    pub fn add(&self, family: &Family, pairs: &[(&'static str, &str)], n: u64) {
        debug_assert_eq!(family.kind, FamilyKind::Counter);
        let mut numbers = self.numbers();
        let value = numbers
            .counters
            .entry((family.name, labels(pairs)))
            .or_default();
        *value = value.saturating_add(n);
    }

    /// Records one observation, in seconds, in a histogram.
    pub fn observe(&self, family: &Family, pairs: &[(&'static str, &str)], seconds: f64) {
        debug_assert_eq!(family.kind, FamilyKind::Histogram);
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        let mut numbers = self.numbers();
        let h = numbers
            .histograms
            .entry((family.name, labels(pairs)))
            .or_default();
        h.buckets[slot] += 1;
        h.sum += seconds;
        h.count += 1;
    }

    /// A counter's value (0 if it was never touched); for tests and logs.
    pub fn counter(&self, family: &Family, pairs: &[(&'static str, &str)]) -> u64 {
        self.numbers()
            .counters
            .get(&(family.name, labels(pairs)))
            .copied()
            .unwrap_or(0)
    }

    /// Everything kept, then `gauges`, in the text exposition format 0.0.4.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let numbers = self.numbers();
        let mut out = String::new();
        for family in KEPT {
            header(&mut out, &family);
            match family.kind {
                FamilyKind::Histogram => {
                    let series = numbers
                        .histograms
                        .iter()
                        .filter(|((n, _), _)| *n == family.name);
                    for ((_, labels), h) in series {
                        let mut cumulative = 0;
                        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                            cumulative += h.buckets[i];
                            let le = number(*bound);
                            sample(&mut out, family.name, "_bucket", labels, Some(&le));
                            let _ = writeln!(out, " {cumulative}");
                        }
                        sample(&mut out, family.name, "_bucket", labels, Some("+Inf"));
                        let _ = writeln!(out, " {}", h.count);
                        sample(&mut out, family.name, "_sum", labels, None);
                        let _ = writeln!(out, " {}", number(h.sum));
                        sample(&mut out, family.name, "_count", labels, None);
                        let _ = writeln!(out, " {}", h.count);
                    }
                }
                _ => {
                    let series = numbers
                        .counters
                        .iter()
                        .filter(|((n, _), _)| *n == family.name);
                    for ((_, labels), value) in series {
                        sample(&mut out, family.name, "", labels, None);
                        let _ = writeln!(out, " {value}");
                    }
                }
            }
        }
        drop(numbers);
        for gauge in gauges {
            header(&mut out, &gauge.family);
            for (labels, value) in &gauge.samples {
                sample(&mut out, gauge.family.name, "", labels, None);
                let _ = writeln!(out, " {}", number(*value));
            }
        }
        out
    }
}

fn header(out: &mut String, family: &Family) {
    let help = family.help.replace('\\', r"\\").replace('\n', r"\n");
    let _ = writeln!(out, "# HELP {} {help}", family.name);
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
}

/// Writes `name{labels}` (with `le` last for a bucket), without the value.
fn sample(out: &mut String, name: &str, suffix: &str, labels: &Labels, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    let le = le.map(|le| ("le", le.to_string()));
    let all: Vec<&(&str, String)> = labels.iter().chain(le.as_ref()).collect();
    if all.is_empty() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in all.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape(value));
    }
    out.push('}');
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value: Rust's shortest round-trip form (never an exponent), or the format's words
/// for the non-finite values.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_exactly() {
        let metrics = Metrics::new();
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]);
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]);
        metrics.inc(&DELIVERY_ATTEMPTS, &[("outcome", "timeout")]);
        metrics.add(&RETENTION_REMOVED, &[("kind", "events")], 0);
        let text = metrics.render(&[Gauge {
            family: BUILD_INFO,
            samples: vec![(vec![("version", "1.2.3".into())], 1.0)],
        }]);
        let expected = "\
# HELP switchyard_http_requests_total HTTP requests answered, by route template (or unmatched), method and status.
# TYPE switchyard_http_requests_total counter
# HELP switchyard_ingest_requests_total Inbound webhooks by source and outcome (accepted, duplicate, refused with its reason).
# TYPE switchyard_ingest_requests_total counter
# HELP switchyard_ingest_ack_seconds From receiving an inbound webhook to its durable acknowledgement (accepted or duplicate).
# TYPE switchyard_ingest_ack_seconds histogram
# HELP switchyard_delivery_attempts_total Delivery attempts by outcome: succeeded, or the failure class.
# TYPE switchyard_delivery_attempts_total counter
switchyard_delivery_attempts_total{outcome=\"succeeded\"} 2
switchyard_delivery_attempts_total{outcome=\"timeout\"} 1
# HELP switchyard_delivery_seconds HTTP latency of one delivery attempt.
# TYPE switchyard_delivery_seconds histogram
# HELP switchyard_retention_removed_total Records removed by retention, by kind.
# TYPE switchyard_retention_removed_total counter
switchyard_retention_removed_total{kind=\"events\"} 0
# HELP switchyard_task_restarts_total Background tasks (dispatcher, retention, performance scheduler) restarted after a panic or an early exit, by task.
# TYPE switchyard_task_restarts_total counter
# HELP switchyard_http_shed_total Requests answered 503 overloaded without being served, by reason: deadline (waited past the queueing deadline), line_full (too many already waiting), connections (the connection was over the bound and closed).
# TYPE switchyard_http_shed_total counter
# HELP switchyard_build_info Always 1; the version is in the label.
# TYPE switchyard_build_info gauge
switchyard_build_info{version=\"1.2.3\"} 1
";
        assert_eq!(text, expected);
        assert_eq!(
            metrics.counter(&DELIVERY_ATTEMPTS, &[("outcome", "succeeded")]),
            2
        );
        assert_eq!(
            metrics.counter(&DELIVERY_ATTEMPTS, &[("outcome", "nope")]),
            0
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let metrics = Metrics::new();
        for seconds in [0.0005, 0.001, 0.003, 0.2, 0.2, 29.0, 31.0, -1.0, f64::NAN] {
            metrics.observe(&DELIVERY_SECONDS, &[], seconds);
        }
        let text = metrics.render(&[]);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("switchyard_delivery_seconds"))
            .collect();
        // -1 and NaN count as 0 s, in the first bucket.
        let expected = [
            "switchyard_delivery_seconds_bucket{le=\"0.001\"} 4",
            "switchyard_delivery_seconds_bucket{le=\"0.0025\"} 4",
            "switchyard_delivery_seconds_bucket{le=\"0.005\"} 5",
            "switchyard_delivery_seconds_bucket{le=\"0.01\"} 5",
            "switchyard_delivery_seconds_bucket{le=\"0.025\"} 5",
            "switchyard_delivery_seconds_bucket{le=\"0.05\"} 5",
            "switchyard_delivery_seconds_bucket{le=\"0.1\"} 5",
            "switchyard_delivery_seconds_bucket{le=\"0.25\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"0.5\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"1\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"2.5\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"5\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"10\"} 7",
            "switchyard_delivery_seconds_bucket{le=\"30\"} 8",
            "switchyard_delivery_seconds_bucket{le=\"+Inf\"} 9",
            "switchyard_delivery_seconds_sum 60.4045",
            "switchyard_delivery_seconds_count 9",
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let metrics = Metrics::new();
        metrics.inc(
            &INGEST_REQUESTS,
            &[("source", "we\"ird\\id\n"), ("outcome", "accepted")],
        );
        metrics.observe(&INGEST_ACK_SECONDS, &[("x", "q\"")], 0.01);
        let text = metrics.render(&[]);
        assert!(text.contains(
            "switchyard_ingest_requests_total{source=\"we\\\"ird\\\\id\\n\",outcome=\"accepted\"} 1\n"
        ));
        assert!(text.contains("switchyard_ingest_ack_seconds_bucket{x=\"q\\\"\",le=\"0.01\"} 1\n"));
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
