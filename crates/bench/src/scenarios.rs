//! The hub's scenarios, each measured against its baseline in the same run: ingest (and its
//! latency at half its rate), delivery, end to end, backlog, fan-out and the idle hub. Every
//! wait is bounded; a scenario that times out reports what it saw.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    self, Child, Db, Row, Sink, admin_token, create_source, database_cpu_seconds, loadgen,
    percentile, seed_events, seed_subscriptions, start_hub, subscribe,
};

/// Which database the hubs of a run use.
#[derive(Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    pub fn fresh(&self) -> Db {
        match self {
            Backend::Sqlite => Db::sqlite(),
            Backend::Postgres(url) => Db::postgres(url),
        }
    }
}

/// Sizes: the full run, or `--quick` (for breakage, not timing).
#[derive(Clone, Copy)]
pub struct Sizes {
    pub ingest_requests: usize,
    pub latency_seconds: u64,
    pub deliveries: u64,
    pub e2e_seconds: u64,
    pub backlog: u64,
    /// How much of the backlog is drained while measuring (all of it when equal).
    pub drain: u64,
    pub fanout_subscriptions: u64,
    pub fanout_events: u64,
    /// Events stored before the large-store scenario's ingest.
    pub stored_events: u64,
    pub sustained_seconds: u64,
    /// How long the overload scenario's flood lasts.
    pub overload_seconds: u64,
    /// Connections the overload scenario's load generator opens.
    pub overload_connections: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                ingest_requests: 1_000,
                latency_seconds: 2,
                deliveries: 2_000,
                e2e_seconds: 2,
                backlog: 20_000,
                drain: 20_000,
                fanout_subscriptions: 100,
                fanout_events: 5,
                stored_events: 20_000,
                sustained_seconds: 5,
                overload_seconds: 5,
                overload_connections: 500,
            }
        } else {
            Sizes {
                ingest_requests: 20_000,
                latency_seconds: 10,
                deliveries: 50_000,
                e2e_seconds: 10,
                backlog: 1_000_000,
                drain: 1_000_000,
                fanout_subscriptions: 1_000,
                fanout_events: 20,
                stored_events: 2_000_000,
                sustained_seconds: 60,
                overload_seconds: 60,
                overload_connections: 10_000,
            }
        }
    }
}

pub(crate) const INGEST_CONCURRENCY: usize = 32;
/// The hub's default delivery concurrency; the direct baseline uses the same.
const DELIVERY_CONCURRENCY: usize = 64;

/// What a hub did while a sink received a number of deliveries.
pub(crate) struct Drained {
    /// All arrived before the timeout.
    pub(crate) finished: bool,
    /// Deliveries per second at the sink.
    pub(crate) rate: f64,
    /// The hub's CPU per delivery, in microseconds.
    pub(crate) cpu_us: f64,
    /// The hub's attempt latencies (p50, p95, p99), by histogram bucket.
    pub(crate) latency: (f64, f64, f64),
    pub(crate) peak: f64,
}

/// Waits (up to `timeout`) for `sink` to receive `n` deliveries from `hub`, measures, then
/// stops the hub and removes its database.
pub(crate) async fn drain(hub: Child, db: Db, sink: &Sink, n: u64, timeout: Duration) -> Drained {
    let finished = sink.wait_for(n, timeout).await;
    let cpu_us = per_op_us(hub.cpu_seconds(), n as f64);
    let rate = sink.rate();
    let latency = harness::attempt_latency(&hub.base).await;
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    Drained {
        finished,
        rate,
        cpu_us,
        latency,
        peak,
    }
}

impl Drained {
    /// A report row with what was measured; the caller names the scenario and its baseline.
    pub(crate) fn row(&self, store: String) -> Row {
        Row {
            store,
            unit: "deliveries/s".into(),
            throughput: self.rate,
            p50_ms: self.latency.0,
            p95_ms: self.latency.1,
            p99_ms: self.latency.2,
            peak_rss_mib: self.peak,
            cpu_us: Some(self.cpu_us),
            ..Row::default()
        }
    }

    fn timed_out(&self) -> &'static str {
        if self.finished { "" } else { "; TIMED OUT" }
    }
}

/// Microseconds of CPU per operation.
pub(crate) fn per_op_us(cpu_seconds: f64, ops: f64) -> f64 {
    cpu_seconds * 1e6 / ops.max(1.0)
}

pub(crate) fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

pub(crate) fn ingest_args(url: &str, count: usize, concurrency: usize, rate: u64) -> Vec<String> {
    vec![
        "ingest".into(),
        url.into(),
        count.to_string(),
        concurrency.to_string(),
        rate.to_string(),
    ]
}

/// A hub with a Walmart source and one subscription to `sink`; returns the hub and the ingest
/// URL.
pub(crate) async fn hub_with_source(db: &Db, deliver: bool, sink: &str) -> (Child, String) {
    let hub = start_hub(db, deliver).await;
    let http = reqwest::Client::new();
    let bearer = admin_token(&http, &hub.base).await;
    let ingest_url = create_source(&http, &hub.base, &bearer).await;
    subscribe(&http, &hub.base, &bearer, &format!("{sink}/hook")).await;
    (hub, ingest_url)
}

/// The target for a store: SQLite's or PostgreSQL's.
fn by_store<T>(backend: &Backend, sqlite: T, postgres: T) -> T {
    match backend {
        Backend::Sqlite => sqlite,
        Backend::Postgres(_) => postgres,
    }
}

/// Ingest against the bare-HTTP baseline: an ingest-only node (the scenario's measure) and an
/// all-in-one node delivering what it takes in. Returns the rows and the two rates.
pub async fn ingest(backend: &Backend, sizes: Sizes) -> (Vec<Row>, f64, f64) {
    let count = sizes.ingest_requests;
    let bare = Child::spawn(vec!["bare".into()]).await;
    let bare_cpu = bare.cpu_seconds();
    let baseline = loadgen(ingest_args(
        &format!("{}/ingest", bare.base),
        count,
        INGEST_CONCURRENCY,
        0,
    ))
    .await;
    let bare_cpu_us = per_op_us(bare.cpu_seconds() - bare_cpu, f(&baseline, "ok"));
    bare.stop().await;
    let bare_rps = f(&baseline, "rps");
    let mut rows = Vec::new();
    let mut ingest_only = 0.0;
    let mut all_in_one = 0.0;
    for deliver in [false, true] {
        let db = backend.fresh();
        let sink = Sink::start(false).await;
        let (hub, url) = hub_with_source(&db, deliver, &sink.url).await;
        let hub_cpu = hub.cpu_seconds();
        let db_cpu = database_cpu_seconds();
        let r = loadgen(ingest_args(&url, count, INGEST_CONCURRENCY, 0)).await;
        let cpu_us = per_op_us(hub.cpu_seconds() - hub_cpu, f(&r, "ok"));
        let db_cpu_us = per_op_us(database_cpu_seconds() - db_cpu, f(&r, "ok"));
        let (_, peak) = hub.rss_mib();
        hub.stop().await;
        db.remove().await;
        let rps = f(&r, "rps");
        let ratio = rps / bare_rps.max(1.0);
        if deliver {
            all_in_one = rps;
        } else {
            ingest_only = rps;
        }
        let goal = if deliver {
            by_store(backend, 0.25, 0.12)
        } else {
            by_store(backend, 0.35, 0.15)
        };
        rows.push(Row {
            scenario: if deliver {
                "ingest, all-in-one node delivering too".into()
            } else {
                "ingest (ingest-only node)".into()
            },
            store: db_label(backend),
            unit: "req/s".into(),
            throughput: rps,
            p50_ms: f(&r, "p50Ms"),
            p95_ms: f(&r, "p95Ms"),
            p99_ms: f(&r, "p99Ms"),
            peak_rss_mib: peak,
            cpu_us: Some(cpu_us),
            baseline_cpu_us: Some(bare_cpu_us),
            baseline: Some(("bare axum answering 200".into(), bare_rps)),
            ratio: Some(ratio),
            target: format!(">= {:.0}% of bare", goal * 100.0),
            met: Some(ratio >= goal),
            note: format!(
                "{count} signed Walmart webhooks, {INGEST_CONCURRENCY} in flight, {} errors; bare: {bare_rps:.0} req/s, p99 {:.2} ms{}",
                r["errors"],
                f(&baseline, "p99Ms"),
                match backend {
                    Backend::Postgres(_) => format!("; PostgreSQL {db_cpu_us:.0} µs CPU per request"),
                    _ => String::new(),
                }
            ),
        });
    }
    (rows, ingest_only, all_in_one)
}

/// Acknowledgement latency with the load generator sending at `rate` per second (open loop).
pub async fn latency(backend: &Backend, sizes: Sizes, rate: f64) -> Vec<Row> {
    let rate = (rate as u64).max(1);
    let count = (rate * sizes.latency_seconds) as usize;
    let db = backend.fresh();
    let sink = Sink::start(false).await;
    let (hub, url) = hub_with_source(&db, false, &sink.url).await;
    let r = loadgen(ingest_args(&url, count, 64, rate)).await;
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    let p99 = f(&r, "p99Ms");
    vec![Row {
        scenario: "ingest ack latency at half that rate".into(),
        store: db_label(backend),
        unit: "req/s".into(),
        throughput: f(&r, "rps"),
        p50_ms: f(&r, "p50Ms"),
        p95_ms: f(&r, "p95Ms"),
        p99_ms: p99,
        peak_rss_mib: peak,
        cpu_us: None,
        baseline_cpu_us: None,
        baseline: None,
        ratio: None,
        target: format!("p99 <= {} ms", by_store(backend, 10, 15)),
        met: Some(p99 <= by_store(backend, 10.0, 15.0)),
        note: format!(
            "{count} requests at {rate}/s, open loop (latency counted from each request's slot), {} errors",
            r["errors"]
        ),
    }]
}

/// Stores `deliveries` pending deliveries to the sink, then starts a hub and times the sink
/// receiving them; the baseline posts as many bodies of the same size straight to a sink.
/// Returns the rows, the hub's rate, and the direct client's rate and CPU per request.
pub async fn delivery(backend: &Backend, sizes: Sizes) -> (Vec<Row>, f64, f64, f64) {
    let n = sizes.deliveries;
    let sink = Sink::start(false).await;
    let db = backend.fresh();
    seed_events(&seed_subscriptions(&db, &sink.url, 1).await, n).await;
    let hub = start_hub(&db, true).await;
    let d = drain(hub, db, &sink, n, Duration::from_secs(600)).await;

    let direct_sink = Sink::start(false).await;
    let direct = loadgen(vec![
        "direct".into(),
        format!("{}/hook", direct_sink.url),
        n.to_string(),
        DELIVERY_CONCURRENCY.to_string(),
        sink.mean_bytes().to_string(),
    ])
    .await;
    let direct_rps = f(&direct, "rps");
    let direct_cpu_us = per_op_us(f(&direct, "cpuSeconds"), f(&direct, "ok"));
    let ratio = d.rate / direct_rps.max(1.0);
    let row = Row {
        scenario: "delivery to a sink answering 200".into(),
        baseline_cpu_us: Some(direct_cpu_us),
        baseline: Some(("reqwest posting straight to the sink".into(), direct_rps)),
        ratio: Some(ratio),
        target: format!(">= {:.0}% of direct", by_store(backend, 50, 25)),
        met: Some(ratio >= by_store(backend, 0.5, 0.25) && d.finished),
        note: format!(
            "{n} deliveries of {} bytes, {DELIVERY_CONCURRENCY} in flight{}; direct: {direct_rps:.0}/s, p99 {:.2} ms; hub latencies are attempt times by histogram bucket",
            sink.mean_bytes(),
            d.timed_out(),
            f(&direct, "p99Ms")
        ),
        ..d.row(db_label(backend))
    };
    (vec![row], d.rate, direct_rps, direct_cpu_us)
}

/// Events at 1,000 per second; from each acknowledgement to its arrival at the sink.
pub async fn end_to_end(backend: &Backend, sizes: Sizes) -> Vec<Row> {
    let rate = 1000u64;
    let count = (rate * sizes.e2e_seconds) as usize;
    let db = backend.fresh();
    let sink = Sink::start(true).await;
    let (hub, url) = hub_with_source(&db, true, &sink.url).await;
    let acks_dir = tempfile::tempdir().expect("temp dir");
    let acks_path = acks_dir.path().join("acks.txt");
    let mut args = ingest_args(&url, count, 64, rate);
    args.push(acks_path.display().to_string());
    let r = loadgen(args).await;
    let finished = sink
        .wait_for(f(&r, "ok") as u64, Duration::from_secs(60))
        .await;
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    let acks: HashMap<String, i128> = std::fs::read_to_string(&acks_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (id, at) = l.split_once(' ')?;
            Some((id.to_string(), at.parse().ok()?))
        })
        .collect();
    let mut early = 0;
    let mut latencies: Vec<f64> = sink
        .receipts()
        .iter()
        .filter_map(|(id, received)| {
            let acked = acks.get(id)?;
            let ms = (received - acked) as f64 / 1e6;
            if ms < 0.0 {
                early += 1;
            }
            Some(ms.max(0.0))
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
    );
    vec![Row {
        scenario: "end to end at 1,000 events/s".into(),
        store: db_label(backend),
        unit: "events/s".into(),
        throughput: f(&r, "rps"),
        p50_ms: p50,
        p95_ms: p95,
        p99_ms: p99,
        peak_rss_mib: peak,
        cpu_us: None,
        baseline_cpu_us: None,
        baseline: None,
        ratio: None,
        target: format!("p99 <= {} ms", by_store(backend, 5, 25)),
        met: Some(p99 <= by_store(backend, 5.0, 25.0) && finished),
        note: format!(
            "{} events matched ack to arrival; {early} arrived before the load generator read their ack (counted as 0){}",
            latencies.len(),
            if finished { "" } else { "; TIMED OUT" }
        ),
    }]
}

/// A backlog of pending deliveries (stored while the hub was down), drained into a sink; the
/// rate is compared with the delivery scenario's (an empty queue).
pub async fn backlog(backend: &Backend, sizes: Sizes, empty_queue_rate: f64) -> Vec<Row> {
    let subscriptions = 10u64;
    let events = sizes.backlog / subscriptions;
    let pending = events * subscriptions;
    let sink = Sink::start(false).await;
    let db = backend.fresh();
    let store = seed_subscriptions(&db, &sink.url, subscriptions).await;
    let seeded = seed_events(&store, events).await;
    drop(store);
    let hub = start_hub(&db, true).await;
    let measured = sizes.drain.min(pending);
    let started = Instant::now();
    let d = drain(hub, db, &sink, measured, Duration::from_secs(400)).await;
    let ratio = d.rate / empty_queue_rate.max(1.0);
    vec![Row {
        scenario: format!("backlog: {pending} pending deliveries"),
        baseline: Some(("delivery with an empty queue".into(), empty_queue_rate)),
        ratio: Some(ratio),
        target: ">= 95%; peak <= 256 MiB".into(),
        met: Some(ratio >= 0.95 && d.peak <= 256.0 && d.finished),
        note: format!(
            "{events} events x {subscriptions} subscriptions stored in {:.0} s; measured over the first {measured} delivered ({:.0} s){}",
            seeded.as_secs_f64(),
            started.elapsed().as_secs_f64(),
            d.timed_out()
        ),
        ..d.row(db_label(backend))
    }]
}

/// Events each fanned out to many subscriptions, posted through ingest.
pub async fn fanout(
    backend: &Backend,
    sizes: Sizes,
    direct_rate: f64,
    direct_cpu_us: f64,
) -> Vec<Row> {
    let subs = sizes.fanout_subscriptions;
    let events = sizes.fanout_events;
    let sink = Sink::start(false).await;
    let db = backend.fresh();
    drop(seed_subscriptions(&db, &sink.url, subs).await);
    let hub = start_hub(&db, true).await;
    let http = reqwest::Client::new();
    let bearer = admin_token(&http, &hub.base).await;
    let url = create_source(&http, &hub.base, &bearer).await;
    let r = loadgen(ingest_args(&url, events as usize, 4, 0)).await;
    let expected = f(&r, "ok") as u64 * subs;
    let d = drain(hub, db, &sink, expected, Duration::from_secs(300)).await;
    let ratio = d.rate / direct_rate.max(1.0);
    vec![Row {
        scenario: format!("fan-out: one event to {subs} subscriptions"),
        baseline_cpu_us: Some(direct_cpu_us),
        baseline: Some(("reqwest posting straight to the sink".into(), direct_rate)),
        ratio: Some(ratio),
        target: ">= 50% of direct".into(),
        met: Some(ratio >= 0.5 && d.finished),
        note: format!(
            "{events} events, {expected} deliveries; ingest answered in p99 {:.1} ms{}",
            f(&r, "p99Ms"),
            d.timed_out()
        ),
        ..d.row(db_label(backend))
    }]
}

/// A hub with nothing to do, a few seconds after it started.
pub async fn idle(backend: &Backend) -> Vec<Row> {
    let db = backend.fresh();
    let hub = start_hub(&db, true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    vec![Row {
        scenario: "idle hub".into(),
        store: db_label(backend),
        unit: "-".into(),
        peak_rss_mib: peak,
        cpu_us: None,
        baseline_cpu_us: None,
        target: "RSS <= 30 MiB".into(),
        met: Some(rss <= 30.0),
        note: format!("RSS {rss:.1} MiB after 3 s; peak while starting {peak:.1} MiB"),
        ..Default::default()
    }]
}

pub(crate) fn db_label(backend: &Backend) -> String {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    }
    .into()
}

/// Every scenario on SQLite, and on PostgreSQL when `SWITCHYARD_TEST_POSTGRES_URL` is set
/// (there without the backlog, fan-out and idle ones, and with two nodes and a network's round
/// trip).
pub async fn all(sizes: Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut backends = vec![Backend::Sqlite];
    match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => backends.push(Backend::Postgres(url)),
        Ok(_) => eprintln!("PostgreSQL rows not run: SWITCHYARD_TEST_POSTGRES_URL is empty"),
        Err(_) => eprintln!("SWITCHYARD_TEST_POSTGRES_URL is not set: PostgreSQL rows skipped"),
    }
    for backend in &backends {
        let started = Instant::now();
        // The scenarios of this store, as a bar on a terminal (nothing when piped).
        let steps = if matches!(backend, Backend::Sqlite) {
            9
        } else {
            10
        };
        let bar = indicatif::ProgressBar::new(steps).with_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(db_label(backend).to_string());
        let step = |name: &str| {
            bar.set_message(name.to_string());
        };
        step("ingest");
        let (r, ingest_rate, all_in_one_rate) = ingest(backend, sizes).await;
        let ingest_cpu_us = r.first().and_then(|row| row.cpu_us).unwrap_or(0.0);
        rows.extend(r);
        bar.inc(1);
        step("pipeline");
        rows.extend(crate::pipeline::pipeline(backend, sizes, ingest_rate, ingest_cpu_us).await);
        bar.inc(1);
        step("latency");
        rows.extend(latency(backend, sizes, ingest_rate / 2.0).await);
        bar.inc(1);
        step("delivery");
        let (r, empty_queue_rate, direct_rate, direct_cpu_us) = delivery(backend, sizes).await;
        rows.extend(r);
        bar.inc(1);
        step("end to end");
        rows.extend(end_to_end(backend, sizes).await);
        bar.inc(1);
        if matches!(backend, Backend::Sqlite) {
            step("backlog, fan-out, idle, shaping");
            rows.extend(backlog(backend, sizes, empty_queue_rate).await);
            rows.extend(fanout(backend, sizes, direct_rate, direct_cpu_us).await);
            rows.extend(idle(backend).await);
            rows.extend(crate::shaping::shaping(backend, sizes).await);
            bar.inc(1);
        }
        step("large store");
        rows.extend(crate::scale::large_store(backend, sizes, ingest_rate).await);
        bar.inc(1);
        step("sustained");
        rows.extend(
            crate::scale::sustained(backend, sizes, all_in_one_rate)
                .await
                .0,
        );
        bar.inc(1);
        step("overload");
        rows.extend(crate::overload::overload(backend, sizes, all_in_one_rate).await);
        bar.inc(1);
        if let Backend::Postgres(url) = backend {
            step("two nodes");
            rows.extend(crate::scale::two_nodes(url, sizes).await);
            bar.inc(1);
            step("network");
            rows.extend(crate::scale::network(url, sizes, ingest_rate, empty_queue_rate).await);
            bar.inc(1);
        }
        bar.finish_and_clear();
        eprintln!(
            "{} scenarios took {:.0} s",
            db_label(backend),
            started.elapsed().as_secs_f64()
        );
    }
    rows
}
