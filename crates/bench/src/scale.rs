//! The scenarios about scale: ingest into a store already holding millions of events, ingest
//! sustained at the all-in-one maximum, two nodes on one PostgreSQL database, and PostgreSQL
//! behind a network's round trip. Each compares with a figure of the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;
use tokio::task::JoinSet;

use switchyard_core::model::EventRecord;
use switchyard_store::Store;

use crate::harness::{
    Db, PARTNER, Row, Sink, admin_token, create_source, loadgen, seed_events, seed_subscriptions,
    start_hub, subscribe,
};
use crate::scenarios::{Backend, Sizes, db_label, f, ingest_args, per_op_us};

/// A published event as a producer would send it: payload and dedup key, nothing derived.
fn published(n: u64, at: Timestamp) -> EventRecord {
    let id = switchyard_core::model::EventId::new();
    EventRecord {
        id,
        origin: "publish".into(),
        dedup_key: Some(format!("stored-{n}")),
        partner_id: PARTNER.into(),
        event_type: "OFFER_UNPUBLISHED".into(),
        event_version: "V1".into(),
        topic: None,
        public_event_id: id.to_string(),
        occurred_at: at,
        received_at: at,
        payload: json!({"sku": format!("SKU-{n}"), "reason": "stored before the run"}),
        normalized: None,
        raw_body: None,
        resource_key: None,
        headers: Default::default(),
        trace_parent: None,
        resource_version: None,
        native_elided: false,
    }
}

/// Stores `n` published events, 4,000 at a time (the writers group them into transactions).
async fn seed_published(store: &Arc<dyn Store>, n: u64) -> Duration {
    let started = Instant::now();
    let at = Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let mut i = 0;
    while i < n {
        let mut writes = JoinSet::new();
        for k in i..(i + 4000).min(n) {
            let store = store.clone();
            writes.spawn(async move { store.insert_event(published(k, at), None).await });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("joined").expect("event stored");
        }
        i = (i + 4000).min(n);
    }
    started.elapsed()
}

/// Ingest (an ingest-only node) into a store that already holds `sizes.stored_events` events,
/// against the empty store's rate of this run.
pub async fn large_store(backend: &Backend, sizes: Sizes, empty_rate: f64) -> Vec<Row> {
    let stored = sizes.stored_events;
    let db = backend.fresh();
    let store = db.open().await;
    let seeded = seed_published(&store, stored).await;
    drop(store);
    let sink = Sink::start(false).await;
    let hub = start_hub(&db, false).await;
    let http = reqwest::Client::new();
    let bearer = admin_token(&http, &hub.base).await;
    let url = create_source(&http, &hub.base, &bearer).await;
    subscribe(&http, &hub.base, &bearer, &format!("{}/hook", sink.url)).await;
    let count = sizes.ingest_requests;
    let cpu = hub.cpu_seconds();
    let r = loadgen(ingest_args(&url, count, 32, 0)).await;
    let cpu_us = per_op_us(hub.cpu_seconds() - cpu, f(&r, "ok"));
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    let rps = f(&r, "rps");
    let ratio = rps / empty_rate.max(1.0);
    vec![Row {
        scenario: format!("ingest with {stored} events already stored"),
        store: db_label(backend),
        unit: "req/s".into(),
        throughput: rps,
        p50_ms: f(&r, "p50Ms"),
        p95_ms: f(&r, "p95Ms"),
        p99_ms: f(&r, "p99Ms"),
        peak_rss_mib: peak,
        cpu_us: Some(cpu_us),
        baseline_cpu_us: None,
        baseline: Some(("ingest into an empty store".into(), empty_rate)),
        ratio: Some(ratio),
        target: ">= 90% of the empty store".into(),
        met: Some(ratio >= 0.9),
        note: format!(
            "{stored} published events stored first ({:.0} s), then {count} signed Walmart webhooks, 32 in flight, {} errors",
            seeded.as_secs_f64(),
            r["errors"]
        ),
    }]
}

/// Ingest at `rate` per second, open loop, for `sizes.sustained_seconds` into an all-in-one
/// hub: in every 5-second window, deliveries must keep up with what was accepted, and nothing
/// may be left to drain afterwards. Returns the row and the delivered rate.
pub async fn sustained(backend: &Backend, sizes: Sizes, rate: f64) -> (Vec<Row>, f64) {
    let rate = (rate as u64).max(1);
    let seconds = sizes.sustained_seconds;
    let count = (rate * seconds) as usize;
    let db = backend.fresh();
    let sink = Sink::start(true).await;
    let hub = start_hub(&db, true).await;
    let http = reqwest::Client::new();
    let bearer = admin_token(&http, &hub.base).await;
    let url = create_source(&http, &hub.base, &bearer).await;
    subscribe(&http, &hub.base, &bearer, &format!("{}/hook", sink.url)).await;
    let acks_dir = tempfile::tempdir().expect("temp dir");
    let acks_path = acks_dir.path().join("acks.txt");
    let mut args = ingest_args(&url, count, 256, rate);
    args.push(acks_path.display().to_string());
    let started_ns = Timestamp::now().as_nanosecond();
    let r = loadgen(args).await;
    let accepted = f(&r, "ok") as u64;
    let drained = sink.wait_for(accepted, Duration::from_secs(120)).await;
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    let acks: Vec<i128> = std::fs::read_to_string(&acks_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ')?.1.parse().ok())
        .collect();
    let arrivals: Vec<i128> = sink.receipts().iter().map(|(_, at)| *at).collect();
    let window = 5_000_000_000i128;
    let bucket = |at: i128| ((at - started_ns) / window).max(0) as usize;
    let windows = (seconds as usize).div_ceil(5);
    let mut accepted_in = vec![0u64; windows];
    let mut delivered_in = vec![0u64; windows];
    for at in &acks {
        if let Some(w) = accepted_in.get_mut(bucket(*at)) {
            *w += 1;
        }
    }
    for at in &arrivals {
        if let Some(w) = delivered_in.get_mut(bucket(*at)) {
            *w += 1;
        }
    }
    let worst = accepted_in
        .iter()
        .zip(&delivered_in)
        .filter(|(a, _)| **a > 0)
        .map(|(a, d)| *d as f64 / *a as f64)
        .fold(f64::INFINITY, f64::min);
    let last_ack = acks.iter().max().copied().unwrap_or(started_ns);
    let last_arrival = arrivals.iter().max().copied().unwrap_or(started_ns);
    let drain_s = ((last_arrival - last_ack) as f64 / 1e9).max(0.0);
    let delivered_rate =
        arrivals.len() as f64 / ((last_arrival - started_ns) as f64 / 1e9).max(1e-9);
    let met = worst >= 0.9 && drain_s <= 2.0 && drained;
    (
        vec![Row {
            scenario: format!("sustained: ingest at the all-in-one max for {seconds} s"),
            store: db_label(backend),
            unit: "events/s".into(),
            throughput: delivered_rate,
            p50_ms: f(&r, "p50Ms"),
            p95_ms: f(&r, "p95Ms"),
            p99_ms: f(&r, "p99Ms"),
            peak_rss_mib: peak,
            cpu_us: None,
            baseline_cpu_us: None,
            baseline: Some(("accepted per second".into(), f(&r, "rps"))),
            ratio: Some(worst.min(9.99)),
            target: "delivered >= 90% of accepted in every 5 s; drain <= 2 s".into(),
            met: Some(met),
            note: format!(
                "{count} requests at {rate}/s offered, {accepted} accepted, {} delivered; worst 5 s window delivered {:.0}% of what it accepted; the last delivery {drain_s:.1} s after the last ack; latencies are the acks'{}",
                arrivals.len(),
                worst * 100.0,
                if drained { "" } else { "; NOT ALL DELIVERED" }
            ),
        }],
        delivered_rate,
    )
}

/// Events per second from the first request to the last arrival at the sink, read once every
/// event arrived.
fn end_to_end_rate(started: Instant, sink: &Sink) -> f64 {
    sink.count() as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Two all-in-one nodes on one PostgreSQL database, each taking half the load, against one node
/// taking all of it: events per second received, stored and delivered (end to end).
pub async fn two_nodes(url: &str, sizes: Sizes) -> Vec<Row> {
    let count = sizes.ingest_requests;
    let mut rates = Vec::new();
    let mut peaks = Vec::new();
    for nodes in [1usize, 2] {
        let db = Db::postgres(url);
        let sink = Sink::start(false).await;
        let mut hubs = Vec::new();
        for _ in 0..nodes {
            hubs.push(start_hub(&db, true).await);
        }
        let http = reqwest::Client::new();
        let bearer = admin_token(&http, &hubs[0].base).await;
        let first_url = create_source(&http, &hubs[0].base, &bearer).await;
        subscribe(&http, &hubs[0].base, &bearer, &format!("{}/hook", sink.url)).await;
        let started = Instant::now();
        let mut loads = JoinSet::new();
        for hub in &hubs {
            let url = first_url.replacen(&hubs[0].base, &hub.base, 1);
            loads.spawn(loadgen(ingest_args(&url, count / nodes, 32 / nodes, 0)));
        }
        let mut ok = 0.0;
        while let Some(r) = loads.join_next().await {
            ok += f(&r.expect("load generator"), "ok");
        }
        let all = sink.wait_for(ok as u64, Duration::from_secs(300)).await;
        rates.push((end_to_end_rate(started, &sink), all));
        peaks.push(hubs.iter().map(|h| h.rss_mib().1).fold(0.0f64, f64::max));
        for hub in hubs {
            hub.stop().await;
        }
        db.remove().await;
    }
    let ratio = rates[1].0 / rates[0].0.max(1.0);
    vec![Row {
        scenario: "two all-in-one nodes on one PostgreSQL".into(),
        store: "postgres".into(),
        unit: "events/s".into(),
        throughput: rates[1].0,
        peak_rss_mib: peaks[1],
        baseline: Some(("one node".into(), rates[0].0)),
        ratio: Some(ratio),
        target: ">= one node".into(),
        met: Some(ratio >= 1.0 && rates[0].1 && rates[1].1),
        note: format!(
            "{count} signed Walmart webhooks split over the nodes (16 in flight each, 32 for one), every one delivered; received to delivered end to end{}",
            if rates[0].1 && rates[1].1 {
                ""
            } else {
                "; NOT ALL DELIVERED"
            }
        ),
        ..Default::default()
    }]
}

/// PostgreSQL behind a relay holding each chunk 0.25 ms each way (a 0.5 ms round trip, a
/// network's), against the loopback rows of this run: ingest (an ingest-only node) and delivery.
pub async fn network(
    url: &str,
    sizes: Sizes,
    loopback_ingest: f64,
    loopback_delivery: f64,
) -> Vec<Row> {
    let config: tokio_postgres::Config = url.parse().expect("PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve PostgreSQL")
        .next()
        .expect("an address");
    let relay = crate::relay::Relay::start(target, Duration::from_micros(250));
    let relayed = url.replacen(&format!(":{port}/"), &format!(":{}/", relay.addr.port()), 1);
    assert_ne!(relayed, url, "the URL goes through the relay");
    let mut rows = Vec::new();

    // Ingest.
    let db = Db::postgres(url);
    let via = db.through(&relayed);
    let sink = Sink::start(false).await;
    let hub = start_hub(&via, false).await;
    let http = reqwest::Client::new();
    let bearer = admin_token(&http, &hub.base).await;
    let ingest_url = create_source(&http, &hub.base, &bearer).await;
    subscribe(&http, &hub.base, &bearer, &format!("{}/hook", sink.url)).await;
    let r = loadgen(ingest_args(&ingest_url, sizes.ingest_requests, 32, 0)).await;
    hub.stop().await;
    db.remove().await;
    let rps = f(&r, "rps");
    rows.push(Row {
        scenario: "ingest (ingest-only node), database 0.5 ms away".into(),
        store: "postgres".into(),
        unit: "req/s".into(),
        throughput: rps,
        p50_ms: f(&r, "p50Ms"),
        p95_ms: f(&r, "p95Ms"),
        p99_ms: f(&r, "p99Ms"),
        baseline: Some(("the same on loopback".into(), loopback_ingest)),
        ratio: Some(rps / loopback_ingest.max(1.0)),
        target: "within 20% of loopback".into(),
        met: Some(rps >= 0.8 * loopback_ingest),
        note: format!(
            "{} signed Walmart webhooks, 32 in flight, {} errors; a relay holds each chunk 0.25 ms each way",
            sizes.ingest_requests, r["errors"]
        ),
        ..Default::default()
    });

    // Delivery.
    let n = sizes.deliveries;
    let sink = Sink::start(false).await;
    let db = Db::postgres(url);
    seed_events(&seed_subscriptions(&db, &sink.url, 1).await, n).await;
    let via = db.through(&relayed);
    let hub = start_hub(&via, true).await;
    let finished = sink.wait_for(n, Duration::from_secs(600)).await;
    let rate = sink.rate();
    hub.stop().await;
    db.remove().await;
    rows.push(Row {
        scenario: "delivery to a sink answering 200, database 0.5 ms away".into(),
        store: "postgres".into(),
        unit: "deliveries/s".into(),
        throughput: rate,
        baseline: Some(("the same on loopback".into(), loopback_delivery)),
        ratio: Some(rate / loopback_delivery.max(1.0)),
        target: "within 20% of loopback".into(),
        met: Some(rate >= 0.8 * loopback_delivery && finished),
        note: format!(
            "{n} deliveries, 64 in flight{}",
            if finished { "" } else { "; TIMED OUT" }
        ),
        ..Default::default()
    });
    drop(relay);
    rows
}
