//! The processes the scenarios start from this same binary (hidden subcommands), so the harness
//! builds nothing else:
//! - `hub DIR DATABASE_URL [--no-deliver]`: a hub on 127.0.0.1;
//! - `bare`: an axum server answering 200 without doing anything (the HTTP limit);
//! - `loadgen ingest URL COUNT CONCURRENCY RATE [ACKS_FILE]`: signed Walmart webhooks (signed
//!   before the clock starts), as fast as they are answered (`RATE` 0) or at `RATE` per second;
//!   answers are counted as accepted (2xx), shed (503; with `Retry-After` or not) or errors;
//! - `loadgen direct URL COUNT CONCURRENCY BYTES`: plain posts of BYTES to a sink, with the same
//!   HTTP client the hub delivers with (the delivery limit).
//!
//! Servers print their base URL as their first line and stop when their stdin closes; the load
//! generator prints its measurements as one JSON line.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use switchyard_marketplaces::{Kind, SignRequest};
use switchyard_server::Settings;

use crate::harness::{ADMIN, MASTER_KEY, PARTNER, WALMART_SECRET, percentile};

/// Announces `base` to the parent and returns a receiver that turns true when stdin closes.
fn announce(base: &str) -> tokio::sync::watch::Receiver<bool> {
    println!("{base}");
    let _ = std::io::stdout().flush();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = stop.send(true);
    });
    stopped
}

pub async fn hub(args: &[String]) {
    let dir = args.first().cloned().unwrap_or_else(|| ".".into());
    let database_url = args.get(1).cloned();
    let mut settings = Settings::new(dir.into(), MASTER_KEY.to_vec());
    settings.database_url = database_url;
    settings.allow_private_targets = true;
    settings.bootstrap_client = Some((ADMIN.0.into(), ADMIN.1.into()));
    settings.deliver = !args.iter().any(|a| a == "--no-deliver");
    // The serve command's setting, for trying other bounds.
    if let Some(n) = std::env::var("SWITCHYARD_MAX_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        settings.max_connections = n;
    }
    let (listener, base, hub) = crate::harness::bind_hub(&mut settings).await;
    let stopped = announce(&base);
    hub.serve(listener, stopped).await.expect("serve");
}

pub async fn bare() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut stopped = announce(&base);
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
}

/// One request the load generator sends: body, headers, and for ingest its order id.
struct Prepared {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    order_id: String,
}

pub async fn loadgen(args: &[String]) {
    let mode = args.first().map(String::as_str).unwrap_or("");
    let url = args.get(1).cloned().unwrap_or_default();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|c| c.parse().ok()).unwrap_or(default);
    let count = arg(2, 1000);
    let concurrency = arg(3, 32).max(1);
    let (rate, acks_file, bytes) = match mode {
        "ingest" => (arg(4, 0), args.get(5).cloned(), 0),
        "direct" => (0, None, arg(4, 1000)),
        _ => {
            eprintln!("loadgen ingest|direct URL COUNT CONCURRENCY ...");
            std::process::exit(2)
        }
    };
    let now = jiff::Timestamp::now();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let requests: Arc<Vec<Prepared>> = Arc::new(
        (0..count)
            .map(|i| {
                let order_id = format!("PO-{run}-{i}");
                if mode == "direct" {
                    let mut body = format!("{{\"purchaseOrderId\":\"{order_id}\",\"pad\":\"");
                    while body.len() + 2 < bytes {
                        body.push('x');
                    }
                    body.push_str("\"}");
                    return Prepared {
                        body: body.into_bytes(),
                        headers: vec![("content-type".into(), "application/json".into())],
                        order_id,
                    };
                }
                let signed = Kind::Walmart
                    .sign(&SignRequest {
                        event_type: "PO_CREATED".into(),
                        secret: WALMART_SECRET.into(),
                        options: json!({"keyVersion": "1"}),
                        endpoint_url: url.clone(),
                        partner_id: PARTNER.into(),
                        resource_id: order_id.clone(),
                        event_id: format!("evt-{run}-{i}"),
                        now,
                    })
                    .expect("signed");
                Prepared {
                    body: signed.body,
                    headers: signed.headers,
                    order_id,
                }
            })
            .collect(),
    );
    // The hub's delivery client is reqwest with a pooled connection per target; so is this.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = crate::harness::proc_cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, requests, next, url) =
            (http.clone(), requests.clone(), next.clone(), url.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut from_send = Vec::new();
            let mut acks = Vec::new();
            let mut errors = 0u64;
            let mut shed = 0u64;
            let mut shed_without_retry_after = 0u64;
            let mut kinds = std::collections::BTreeMap::<String, u64>::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(prepared) = requests.get(i) else {
                    break;
                };
                // Open loop: a request is due at its slot, and its latency counts from then,
                // so a slow answer delays the clock rather than hiding in it.
                let due = if rate > 0 {
                    let at = started + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(at.into()).await;
                    at
                } else {
                    Instant::now()
                };
                let sent = Instant::now();
                let mut request = http.post(&url).body(prepared.body.clone());
                for (name, value) in &prepared.headers {
                    request = request.header(name, value);
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(due.elapsed().as_secs_f64() * 1000.0);
                        from_send.push(sent.elapsed().as_secs_f64() * 1000.0);
                        acks.push((i, jiff::Timestamp::now().as_nanosecond()));
                    }
                    Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                        shed += 1;
                        if !r.headers().contains_key(reqwest::header::RETRY_AFTER) {
                            shed_without_retry_after += 1;
                        }
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        errors += 1;
                        *kinds
                            .entry(format!("status {}", r.status().as_u16()))
                            .or_insert(0u64) += 1;
                    }
                    Err(e) => {
                        errors += 1;
                        let kind = if e.is_connect() {
                            "connect"
                        } else if e.is_timeout() {
                            "timeout"
                        } else {
                            "other"
                        };
                        *kinds.entry(kind.to_string()).or_insert(0u64) += 1;
                    }
                }
            }
            (
                latencies,
                from_send,
                acks,
                errors,
                shed,
                shed_without_retry_after,
                kinds,
            )
        });
    }
    let mut latencies = Vec::new();
    let mut from_send = Vec::new();
    let mut acks = Vec::new();
    let (mut errors, mut shed, mut shed_without_retry_after) = (0, 0, 0);
    let mut error_kinds = std::collections::BTreeMap::<String, u64>::new();
    while let Some(done) = workers.join_next().await {
        let (l, fs, a, e, s, w, k) = done.expect("worker");
        from_send.extend(fs);
        for (kind, n) in k {
            *error_kinds.entry(kind).or_insert(0) += n;
        }
        latencies.extend(l);
        acks.extend(a);
        errors += e;
        shed += s;
        shed_without_retry_after += w;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::harness::proc_cpu_seconds(std::process::id()) - cpu_before;
    if let Some(path) = acks_file {
        let lines: String = acks
            .iter()
            .map(|(i, at)| format!("{} {at}\n", requests[*i].order_id))
            .collect();
        std::fs::write(path, lines).expect("acks file");
    }
    latencies.sort_by(f64::total_cmp);
    from_send.sort_by(f64::total_cmp);
    let p = |q: f64| percentile(&latencies, q);
    println!(
        "{}",
        json!({
            "ok": latencies.len(), "errors": errors, "seconds": seconds,
            "shed": shed, "shedWithoutRetryAfter": shed_without_retry_after,
            "errorKinds": error_kinds,
            "cpuSeconds": cpu_seconds,
            "rps": latencies.len() as f64 / seconds,
            "p50Ms": p(50.0), "p95Ms": p(95.0), "p99Ms": p(99.0),
            // From when each request was sent, not its slot: what the server took, without
            // the generator's own lateness.
            "p99FromSendMs": percentile(&from_send, 99.0),
        })
    );
}
