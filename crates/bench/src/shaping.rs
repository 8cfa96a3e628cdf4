//! What a subscriber's shaping costs per delivery (issue 22): a content filter, matched at
//! fan-out, and a transformation, run on each attempt.
//!
//! Two measurements, each against a baseline taken in the same run:
//! - in this process, on one thread: CPU per call of matching a filter against an event, and of
//!   running a transformation on its envelope, next to building the envelope itself (the work
//!   every delivery does anyway);
//! - through a hub: the same backlog delivered to a subscription with a transformation and to
//!   one without, the hub's CPU per delivery and its rate compared.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_core::envelope;
use switchyard_core::model::{Envelope, EventRecord};
use switchyard_delivery::transform::{self, Limits, Webhook};
use switchyard_store::rules::TargetFilter;

use crate::harness::{self, Row, Sink, proc_cpu_seconds, seed_events, start_hub};
use crate::scenarios::{Backend, Sizes, db_label, drain};

/// A filter of the usual kind: two conditions on the order, one on its type.
const FILTER: &str = r#"{"$and": [{"payload.orderLines.item.sku": {"$startsWith": "SKU"}},
    {"payload.orderLines.charges.chargeAmount.amount": {"$gte": 10}},
    {"source.eventType": {"$in": ["PO_CREATED", "order.created"]}}]}"#;

/// A transformation of the usual kind: a slimmer body and a header.
pub const TRANSFORM: &str = "function handler(webhook) {
    var order = webhook.payload.payload;
    webhook.payload = {
        po: order.purchaseOrderId,
        skus: order.orderLines.map(function (l) { return l.item.sku; }),
        total: order.orderLines.reduce(function (t, l) {
            return t + l.charges[0].chargeAmount.amount; }, 0),
        type: webhook.eventType
    };
    webhook.headers['x-shape'] = 'slim';
    return webhook;
}";

pub async fn shaping(backend: &Backend, sizes: Sizes) -> Vec<Row> {
    let mut rows = in_process(sizes.deliveries <= 2_000);
    rows.extend(through_the_hub(backend, sizes).await);
    rows
}

/// Calls of `op` for about `for_how_long` of this thread's time: (calls per second, CPU
/// microseconds per call).
fn measure(for_how_long: Duration, mut op: impl FnMut()) -> (f64, f64) {
    // Warm up: the first calls fill caches and allocate.
    for _ in 0..10 {
        op();
    }
    let cpu = proc_cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < for_how_long {
        for _ in 0..10 {
            op();
        }
        calls += 10;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = (proc_cpu_seconds(std::process::id()) - cpu).max(0.0);
    (calls as f64 / wall, cpu * 1e6 / calls.max(1) as f64)
}

fn in_process(quick: bool) -> Vec<Row> {
    let span = Duration::from_millis(if quick { 300 } else { 2_000 });
    let event: EventRecord = harness::order_event("bench", 1, jiff::Timestamp::now());
    let (envelope_rate, envelope_cpu) = measure(span, || {
        std::hint::black_box(envelope::body(&event, Envelope::Walmart, false));
    });
    let filter = TargetFilter::from_stored(Some(FILTER), "walmart").expect("the filter parses");
    assert!(filter.passes(&event, false), "the bench event passes");
    let (filter_rate, filter_cpu) = measure(span, || {
        std::hint::black_box(filter.passes(&event, false));
    });
    let given = Webhook {
        event_type: event.event_type.clone(),
        payload: serde_json::from_slice(&envelope::body(&event, Envelope::Walmart, false))
            .expect("an envelope is JSON"),
        headers: Default::default(),
        url: "http://127.0.0.1:9/hook".into(),
    };
    let limits = Limits::default();
    transform::run(TRANSFORM, &given, &limits).expect("the bench transformation runs");
    let (fresh_rate, fresh_cpu) = measure(span, || {
        std::hint::black_box(transform::run(TRANSFORM, &given, &limits).ok());
    });
    let (transform_rate, transform_cpu) = measure(span, || {
        std::hint::black_box(transform::run_kept("bench", TRANSFORM, &given, &limits).ok());
    });
    let row = |scenario: &str, rate: f64, cpu: f64, note: String| Row {
        scenario: scenario.into(),
        store: "—".into(),
        unit: "calls/s".into(),
        throughput: rate,
        cpu_us: Some(cpu),
        baseline_cpu_us: Some(envelope_cpu),
        baseline: Some(("building the envelope".into(), envelope_rate)),
        ratio: Some(rate / envelope_rate.max(1.0)),
        target: "measured".into(),
        note,
        peak_rss_mib: crate::pipeline::peak_rss_mib(),
        ..Row::default()
    };
    vec![
        row(
            "content filter, per delivery",
            filter_rate,
            filter_cpu,
            format!(
                "three conditions matched against the envelope at fan-out: {filter_cpu:.1} µs of CPU per delivery, {:.1}× building the envelope ({envelope_cpu:.1} µs)",
                filter_cpu / envelope_cpu.max(0.001)
            ),
        ),
        row(
            "transformation, per delivery",
            transform_rate,
            transform_cpu,
            format!(
                "the subscription's engine kept on the thread, the handler run on the envelope (JSON in and out): {transform_cpu:.1} µs of CPU per attempt"
            ),
        ),
        row(
            "transformation in a fresh engine (try it)",
            fresh_rate,
            fresh_cpu,
            format!(
                "a QuickJS runtime and context made, the code compiled, run once and dropped: {fresh_cpu:.0} µs"
            ),
        ),
    ]
}

/// The same backlog delivered by a hub to a subscription with [`TRANSFORM`] and to one
/// without.
async fn through_the_hub(backend: &Backend, sizes: Sizes) -> Vec<Row> {
    let n = sizes.deliveries;
    let mut measured = Vec::new();
    for transformed in [false, true] {
        let sink = Sink::start(false).await;
        let db = backend.fresh();
        let store: Arc<dyn switchyard_store::Store> = db.open().await;
        harness::seed_admin(&store).await;
        let mut subscription = harness::subscription(format!("{}/hook/0", sink.url));
        if transformed {
            subscription.transform = Some(TRANSFORM.into());
        }
        store
            .create_subscriptions(vec![subscription])
            .await
            .expect("subscription");
        seed_events(&store, n).await;
        drop(store);
        let hub = start_hub(&db, true).await;
        measured.push(drain(hub, db, &sink, n, Duration::from_secs(600)).await);
    }
    let (plain, transformed) = (&measured[0], &measured[1]);
    let ratio = transformed.rate / plain.rate.max(1.0);
    vec![Row {
        scenario: "delivery with a transformation".into(),
        baseline_cpu_us: Some(plain.cpu_us),
        baseline: Some(("the same, without".into(), plain.rate)),
        ratio: Some(ratio),
        target: "measured".into(),
        note: format!(
            "{n} deliveries; the hub's CPU per delivery {:.0} µs with, {:.0} µs without (+{:.0} µs)",
            transformed.cpu_us,
            plain.cpu_us,
            transformed.cpu_us - plain.cpu_us
        ),
        ..transformed.row(db_label(backend))
    }]
}
