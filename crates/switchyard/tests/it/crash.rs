//! The crash proof: the real binary under ingest (signed Walmart webhooks and the publish API)
//! and delivery load is killed with SIGKILL at random moments and restarted each time, then
//! stopped a few times with SIGTERM under the same load. At the end: every publish that was acknowledged is stored; every stored event reached the
//! receiver; no event reached it under two different `webhook-id`s; no delivery is left pending;
//! and nothing published in the SIGTERM rounds was delivered twice.
//!
//! `SWITCHYARD_CRASH_KILLS=N` (default 10) sets the number of SIGKILLs for a longer soak run; the
//! seed of the random kill moments is printed, and `SWITCHYARD_CRASH_SEED` replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use switchyard_core::model::{DeliveryFilter, DeliveryStatus, EventFilter};
use switchyard_marketplaces::{Kind, SignRequest};
use switchyard_store::{SqliteStore, Store};

use crate::helpers::*;
use crate::restart::{admin_token, free_port, start_hub};

/// xorshift64*: the kill moments, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The Walmart source's secret.
const WALMART_SECRET: &str = "crash-test-walmart-secret";

/// Sends events `{prefix}-{n}` with 4 in flight until `stop`: two workers post signed Walmart
/// webhooks to `ingest_url`, two publish through the API; each event has its own id (so a retry
/// is deduplicated). Keeps the ones acknowledged.
async fn publish_until(
    base: String,
    ingest_url: String,
    token: String,
    prefix: &'static str,
    next: Arc<AtomicUsize>,
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (http, base, ingest_url, token, next, acked, stop) = (
            http.clone(),
            base.clone(),
            ingest_url.clone(),
            token.clone(),
            next.clone(),
            acked.clone(),
            stop.clone(),
        );
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let via_api = worker % 2 == 0;
                let key = format!("{prefix}-{n}-{}", if via_api { "api" } else { "walmart" });
                let request = if via_api {
                    http.post(format!("{base}/api/v1/events"))
                        .bearer_auth(&token)
                        .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1",
                                      "eventId": key, "payload": {"sku": key}}))
                } else {
                    let signed = Kind::Walmart
                        .sign(&SignRequest {
                            event_type: "PO_CREATED".into(),
                            secret: WALMART_SECRET.into(),
                            options: json!({"keyVersion": "1"}),
                            endpoint_url: ingest_url.clone(),
                            partner_id: "p1".into(),
                            resource_id: format!("PO-{key}"),
                            event_id: key.clone(),
                            now: jiff::Timestamp::now(),
                        })
                        .expect("signed");
                    let mut request = http.post(&ingest_url).body(signed.body);
                    for (name, value) in &signed.headers {
                        request = request.header(name, value);
                    }
                    request
                };
                let answer = request.send().await;
                match answer {
                    Ok(a) if a.status().is_success() => {
                        acked.lock().expect("acked").insert(key);
                    }
                    // Killed mid-request, or not up: the publisher would retry; this one moves on.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

#[tokio::test]
async fn acknowledged_events_survive_sigkill_and_sigterm_under_load() {
    let kills: usize = std::env::var("SWITCHYARD_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("SWITCHYARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("crash test: {kills} kills, SWITCHYARD_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().await;
    let port = free_port();
    let http = reqwest::Client::new();
    let mut hub = start_hub(dir.path(), port).await;
    let token = admin_token(&http, &hub.base).await;
    let retry = json!({"type": "delays", "delaysSeconds": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]});
    let created = http
        .post(format!("{}/v3/webhooks/subscriptions", hub.base))
        .bearer_auth(&token)
        .json(&json!({"events": [
            {"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "p1",
             "eventUrl": format!("{}/hook", sink.base), "retryPolicy": retry},
            {"eventType": "PO_CREATED", "resourceName": "ORDER", "partnerId": "p1",
             "eventUrl": format!("{}/hook", sink.base), "retryPolicy": retry},
        ]}))
        .send()
        .await
        .expect("subscribe");
    assert!(created.status().is_success(), "subscribed");
    let source: Value = http
        .post(format!("{}/api/v1/sources", hub.base))
        .bearer_auth(&token)
        .json(&json!({"kind": "walmart", "partners": ["p1"],
                      "secrets": [{"id": "1", "value": WALMART_SECRET}]}))
        .send()
        .await
        .expect("source")
        .json()
        .await
        .expect("source json");
    let ingest_url = source["ingestUrl"].as_str().expect("ingestUrl").to_string();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let next_term = Arc::new(AtomicUsize::new(0));
    let rounds: Vec<bool> = std::iter::repeat_n(true, kills)
        .chain(std::iter::repeat_n(false, 3))
        .collect();
    for sigkill in rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let token = admin_token(&http, &hub.base).await;
        let load = tokio::spawn(publish_until(
            hub.base.clone(),
            ingest_url.clone(),
            token,
            if sigkill { "kill" } else { "term" },
            if sigkill {
                next.clone()
            } else {
                next_term.clone()
            },
            acked.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
        if sigkill {
            hub.child.kill().expect("SIGKILL");
        } else {
            hub.sigterm();
        }
        let status = tokio::task::spawn_blocking(move || {
            let status = hub.child.wait();
            (hub, status)
        })
        .await
        .expect("joined");
        hub = status.0;
        if !sigkill {
            assert!(
                status.1.is_ok_and(|s| s.success()),
                "a clean exit on SIGTERM"
            );
        }
        stop.store(true, Ordering::Relaxed);
        let _ = load.await;
        drop(hub);
        hub = start_hub(dir.path(), port).await;
    }

    // Let the last hub deliver what is owed, then stop it and read the database.
    let acked: BTreeSet<String> = acked.lock().expect("acked").clone();
    for path in ["-api", "-walmart"] {
        let n = acked.iter().filter(|k| k.ends_with(path)).count();
        assert!(n >= kills, "events through {path} acknowledged: {n}");
    }
    let store = SqliteStore::open(dir.path().join("switchyard.db")).expect("store");
    let stored = stored_skus(&store).await;
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    eventually("every stored event reaches the receiver", || async {
        let seen = received(&sink);
        stored.iter().all(|sku| seen.contains_key(sku))
    })
    .await;
    eventually("no delivery is left pending", || async {
        store
            .list_deliveries(&DeliveryFilter {
                partners: None,
                subscription_id: None,
                event_id: None,
                status: Some(DeliveryStatus::Pending),
                before: None,
                limit: 10,
            })
            .await
            .is_ok_and(|d| d.is_empty())
    })
    .await;
    let seen = received(&sink);
    for (sku, ids) in &seen {
        assert_eq!(ids.len(), 1, "{sku} reached the receiver as {ids:?}");
    }
    // SIGTERM is graceful: what was published in those rounds arrived exactly once.
    let hooks = sink.hooks();
    for sku in stored.iter().filter(|s| s.starts_with("term-")) {
        let times = hooks
            .iter()
            .filter(|h| h.json()["source"]["eventId"] == sku.as_str())
            .count();
        assert_eq!(times, 1, "{sku} delivered {times} times around SIGTERM");
    }
    eprintln!(
        "crash test: {kills} SIGKILLs and 3 SIGTERMs survived; {} acknowledged, {} stored, {} delivered, 0 lost",
        acked.len(),
        stored.len(),
        seen.len()
    );
    drop(hub);
}

/// The id of every stored event the load sent (`kill-…`, `term-…`).
async fn stored_skus(store: &SqliteStore) -> BTreeSet<String> {
    let mut skus = BTreeSet::new();
    let mut filter = EventFilter {
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = store.list_events(&filter).await.expect("events");
        for e in &page {
            if e.public_event_id.starts_with("kill-") || e.public_event_id.starts_with("term-") {
                skus.insert(e.public_event_id.clone());
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => filter.before = Some(last.id),
            _ => return skus,
        }
    }
}

/// The `webhook-id`s each event (by its id) arrived under.
fn received(sink: &Sink) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for hook in sink.hooks() {
        let body: Value = hook.json();
        if let Some(sku) = body["source"]["eventId"].as_str() {
            seen.entry(sku.to_string())
                .or_default()
                .insert(hook.header("webhook-id").unwrap_or_default());
        }
    }
    seen
}
