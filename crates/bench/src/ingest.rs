//! The ingest scenario: signed Walmart webhooks into a hub (verified, deduplicated, stored
//! durably, fanned out to one subscription) against the bare-HTTP baseline, an axum server that
//! answers 200 and does nothing, with the same load generator (`loadgen`, a child process) and
//! the same pre-signed requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use switchyard_core::SystemClock;
use switchyard_marketplaces::{Kind, SignRequest};
use switchyard_server::{Hub, Settings};

const PARTNER: &str = "bench-seller";
const SECRET: &str = "bench-walmart-secret";

/// `loadgen URL COUNT CONCURRENCY`: posts COUNT signed Walmart webhooks (signed before the clock
/// starts) with CONCURRENCY in flight, and prints its measurements as one JSON line.
pub async fn loadgen(args: &[String]) {
    let url = args.first().cloned().unwrap_or_default();
    let count: usize = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(32);
    let now = jiff::Timestamp::now();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let requests: Arc<Vec<_>> = Arc::new(
        (0..count)
            .map(|i| {
                Kind::Walmart
                    .sign(&SignRequest {
                        event_type: "PO_CREATED".into(),
                        secret: SECRET.into(),
                        options: json!({"keyVersion": "1"}),
                        endpoint_url: url.clone(),
                        partner_id: PARTNER.into(),
                        resource_id: format!("PO-{run}-{i}"),
                        event_id: format!("evt-{run}-{i}"),
                        now,
                    })
                    .expect("signed")
            })
            .collect(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, requests, next, url) =
            (http.clone(), requests.clone(), next.clone(), url.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(signed) = requests.get(i) else { break };
                let mut request = http.post(&url).body(signed.body.clone());
                for (name, value) in &signed.headers {
                    request = request.header(name, value);
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = workers.join_next().await {
        let (l, e) = done.expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p = |q: f64| crate::percentile(&latencies, q);
    println!(
        "{}",
        json!({
            "ok": latencies.len(), "errors": errors, "seconds": seconds,
            "rps": latencies.len() as f64 / seconds,
            "p50Ms": p(50.0), "p95Ms": p(95.0), "p99Ms": p(99.0),
        })
    );
}

/// Runs the load generator in its own process and reads its measurements.
async fn measure(url: &str, count: usize, concurrency: usize) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let args = [
        "loadgen".to_string(),
        url.to_string(),
        count.to_string(),
        concurrency.to_string(),
    ];
    // The child does the waiting; off the async workers, which serve the hub meanwhile.
    let output =
        tokio::task::spawn_blocking(move || std::process::Command::new(exe).args(args).output())
            .await
            .expect("joined")
            .expect("load generator");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "load generator failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Serves 200 for every request: the bare-HTTP baseline, and the subscriber's sink.
async fn answer_200() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

pub async fn run(quick: bool, out: &std::path::Path) {
    let (count, concurrency) = if quick { (500, 16) } else { (20_000, 32) };
    let (bare, _bare_task) = answer_200().await;
    let baseline = measure(&format!("{bare}/ingest"), count, concurrency).await;

    let (sink, _sink_task) = answer_200().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::new(
        dir.path().to_path_buf(),
        b"bench master key 0123456789".to_vec(),
    );
    settings.allow_private_targets = true;
    settings.bootstrap_client = Some(("bench-admin".into(), "bench-admin-secret".into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    settings.public_url = base.clone();
    let hub = Hub::build(&settings, Arc::new(SystemClock))
        .await
        .expect("hub");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(hub.serve(listener, stopped));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{base}/v3/token"))
        .basic_auth("bench-admin", Some("bench-admin-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let bearer = format!(
        "Bearer {}",
        token["access_token"].as_str().unwrap_or_default()
    );
    let source: Value = http
        .post(format!("{base}/api/v1/sources"))
        .header("authorization", &bearer)
        .json(&json!({"kind": "walmart", "partners": [PARTNER], "secrets": [{"id": "1", "value": SECRET}]}))
        .send()
        .await
        .expect("source")
        .json()
        .await
        .expect("source json");
    let ingest_url = source["ingestUrl"].as_str().expect("ingestUrl").to_string();
    let subscribed = http
        .post(format!("{base}/v3/webhooks/subscriptions"))
        .header("authorization", &bearer)
        .json(
            &json!({"events": [{"eventType": "PO_CREATED", "resourceName": "ORDER",
            "eventUrl": format!("{sink}/hook"), "partnerId": PARTNER}]}),
        )
        .send()
        .await
        .expect("subscription");
    assert!(subscribed.status().is_success(), "subscription refused");
    let hub_result = measure(&ingest_url, count, concurrency).await;
    let _ = stop.send(true);
    let _ = server.await;

    let ratio = hub_result["rps"].as_f64().unwrap_or(0.0) / baseline["rps"].as_f64().unwrap_or(1.0);
    println!(
        "\ningest: {count} signed Walmart webhooks, {concurrency} in flight, load generator in its own process\n"
    );
    println!(
        "{:<34} {:>10} {:>8} {:>8} {:>8}",
        "", "req/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for (name, r) in [
        ("bare axum answering 200 (baseline)", &baseline),
        ("hub: verify, dedup, store, fan out", &hub_result),
    ] {
        println!(
            "{name:<34} {:>10.0} {:>8.2} {:>8.2} {:>8.2}",
            r["rps"].as_f64().unwrap_or(0.0),
            r["p50Ms"].as_f64().unwrap_or(0.0),
            r["p95Ms"].as_f64().unwrap_or(0.0),
            r["p99Ms"].as_f64().unwrap_or(0.0),
        );
    }
    println!(
        "ratio to the baseline: {:.0}% (target: at least 30%)",
        ratio * 100.0
    );
    crate::write_report(
        out,
        "ingest.json",
        &json!({"scenario": "ingest", "count": count, "concurrency": concurrency,
                "baseline": baseline, "hub": hub_result, "ratio": ratio, "targetRatio": 0.3}),
    );
}
