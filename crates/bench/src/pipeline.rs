//! The ingest pipeline without HTTP: `services::receive_webhook::receive` driven in-process,
//! with the ingest scenario's requests and concurrency, on a hub that stores but does not deliver
//! (as the ingest-only node). Beside the ingest-only row of the same run it splits an event's
//! cost into what HTTP takes and what verifying, deduplicating and storing durably take.
//!
//! The child (`pipeline-child DIR DATABASE_URL COUNT CONCURRENCY`) builds the hub in its own process,
//! so its CPU time is the pipeline's alone, and prints one JSON line like the load generator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use switchyard_marketplaces::{Kind, SignRequest};
use switchyard_server::services::receive_webhook::{self, InboundWebhook, Receipt};
use switchyard_server::services::{sources, subscriptions};
use switchyard_server::{Hub, Settings};

use crate::harness::{ADMIN, Db, MASTER_KEY, PARTNER, Row, WALMART_SECRET, percentile};
use crate::scenarios::{Backend, INGEST_CONCURRENCY, Sizes, db_label, f, per_op_us};

/// The child process: builds a hub, a Walmart source and one subscription, signs COUNT webhooks,
/// then receives them CONCURRENCY at a time.
pub async fn child(args: &[String]) {
    let dir = args.first().cloned().unwrap_or_else(|| ".".into());
    let database_url = args.get(1).cloned();
    let count: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args
        .get(3)
        .and_then(|c| c.parse().ok())
        .unwrap_or(32)
        .max(1);
    let mut settings = Settings::new(dir.into(), MASTER_KEY.to_vec());
    settings.database_url = database_url;
    settings.bootstrap_client = Some((ADMIN.0.into(), ADMIN.1.into()));
    settings.deliver = false;
    settings.public_url = "http://127.0.0.1:9".into();
    let hub = Hub::build(&settings, Arc::new(switchyard_core::SystemClock))
        .await
        .expect("hub");
    let state = hub.state.clone();
    let admin = state
        .store
        .get_client(ADMIN.0)
        .await
        .expect("store")
        .expect("the bootstrap client");
    let source = sources::create(
        &state,
        &admin,
        serde_json::from_value(json!({
            "kind": "walmart", "partners": [PARTNER], "secret": WALMART_SECRET,
        }))
        .expect("source input"),
    )
    .await
    .expect("source");
    subscriptions::create(
        &state,
        &admin,
        None,
        serde_json::from_value(json!({"events": [{
            "eventType": "PO_CREATED", "resourceName": "ORDER", "partnerId": PARTNER,
            "eventUrl": "http://127.0.0.1:9/hook",
        }]}))
        .expect("subscription input"),
    )
    .await
    .expect("subscription");

    let now = jiff::Timestamp::now();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let signed: Arc<Vec<(HeaderMap, Vec<u8>)>> = Arc::new(
        (0..count)
            .map(|i| {
                let s = Kind::Walmart
                    .sign(&SignRequest {
                        event_type: "PO_CREATED".into(),
                        secret: WALMART_SECRET.into(),
                        options: json!({"keyVersion": "1"}),
                        endpoint_url: source.ingest_url.clone(),
                        partner_id: PARTNER.into(),
                        resource_id: format!("PO-{run}-{i}"),
                        event_id: format!("evt-{run}-{i}"),
                        now,
                    })
                    .expect("signed");
                let headers = s
                    .headers
                    .iter()
                    .filter_map(|(n, v)| {
                        Some((
                            HeaderName::from_bytes(n.as_bytes()).ok()?,
                            HeaderValue::from_str(v).ok()?,
                        ))
                    })
                    .collect();
                (headers, s.body)
            })
            .collect(),
    );
    let source_ref = source.source_id.to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = crate::harness::proc_cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (state, signed, next, source_ref) = (
            state.clone(),
            signed.clone(),
            next.clone(),
            source_ref.clone(),
        );
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((headers, body)) = signed.get(i) else {
                    break;
                };
                let at = Instant::now();
                let inbound = InboundWebhook {
                    source_ref: &source_ref,
                    url_token: None,
                    method: "POST",
                    query: "",
                    headers,
                    body,
                    remote: None,
                    started: at,
                };
                match receive_webhook::receive(&state, inbound).await {
                    Ok(Receipt::Accepted { .. }) => {
                        latencies.push(at.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(Ok((l, e))) = workers.join_next().await {
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = crate::harness::proc_cpu_seconds(std::process::id()) - cpu_before;
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "ok": latencies.len(), "errors": errors, "seconds": seconds,
            "rps": latencies.len() as f64 / seconds.max(1e-9),
            "cpuSeconds": cpu,
            "peakRssMib": peak_rss_mib(),
            "p50Ms": percentile(&latencies, 50.0), "p95Ms": percentile(&latencies, 95.0),
            "p99Ms": percentile(&latencies, 99.0),
        })
    );
}

/// The row: the pipeline's rate and CPU per event beside the HTTP ingest-only node's.
pub async fn pipeline(
    backend: &Backend,
    sizes: Sizes,
    http_rps: f64,
    http_cpu_us: f64,
) -> Vec<Row> {
    let db: Db = backend.fresh();
    db.prepare().await;
    let count = sizes.ingest_requests;
    let r = crate::harness::run_child_json(vec![
        "pipeline-child".into(),
        db.dir().display().to_string(),
        db.url(),
        count.to_string(),
        INGEST_CONCURRENCY.to_string(),
    ])
    .await;
    db.remove().await;
    let rps = f(&r, "rps");
    let cpu_us = per_op_us(f(&r, "cpuSeconds"), f(&r, "ok"));
    vec![Row {
        scenario: "ingest pipeline without HTTP (in-process)".into(),
        store: db_label(backend),
        unit: "ev/s".into(),
        throughput: rps,
        p50_ms: f(&r, "p50Ms"),
        p95_ms: f(&r, "p95Ms"),
        p99_ms: f(&r, "p99Ms"),
        peak_rss_mib: f(&r, "peakRssMib"),
        cpu_us: Some(cpu_us),
        baseline_cpu_us: Some(http_cpu_us),
        baseline: Some(("ingest-only node over HTTP".into(), http_rps)),
        ratio: Some(rps / http_rps.max(1.0)),
        target: "-".into(),
        met: None,
        note: format!(
            "{count} signed Walmart webhooks, {INGEST_CONCURRENCY} at a time, {} errors; CPU per event {cpu_us:.0} µs in the pipeline against {http_cpu_us:.0} µs through HTTP: HTTP's share {:.0}%",
            r["errors"],
            (1.0 - cpu_us / http_cpu_us.max(1e-9)) * 100.0
        ),
    }]
}

/// This process's peak resident set (`VmHWM`), in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}
