//! The `console` scenario: the operator console's pages on a database holding 100,000 events and
//! 1,000,000 delivery attempts (the size issue 5 names), each page requested repeatedly with a
//! signed-in session; the target is under 100 ms per page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use switchyard_core::model::{
    AttemptRecord, Breaker, OutcomeRecord, RejectionRecord, SubscriptionRecord,
};
use switchyard_server::Settings;
use switchyard_store::{DeliveryNext, FailurePolicy, SqliteStore, Store};

use crate::Options;
use crate::harness::{
    self, ADMIN, MASTER_KEY, PARTNER, percentile, seed_admin, seed_events_at, write_report,
};

const TARGET_MS: f64 = 100.0;

/// A subscription to an endpoint that does not exist: nothing here delivers to it.
fn subscription(n: u64) -> SubscriptionRecord {
    SubscriptionRecord {
        // Seeded failures must not open breakers and stop the seeding.
        breaker: Breaker {
            failure_threshold: 10_000,
            probe_interval_seconds: 60,
        },
        ..harness::subscription(format!("https://receiver-{n}.example.com/hooks"))
    }
}

/// Fills a store: `events` events over the last 7 days, each fanned out to `fanout`
/// subscriptions and attempted once (1 in 20 attempts fails), plus refusals and outcomes.
async fn seed(store: Arc<dyn Store>, o: &Options) -> (Vec<Uuid>, Uuid) {
    let now = Timestamp::now();
    seed_admin(&store).await;
    let subs: Vec<SubscriptionRecord> = (0..o.fanout).map(subscription).collect();
    store
        .create_subscriptions(subs.clone())
        .await
        .expect("subscriptions");
    let span_ms = 7 * 86_400_000 - 60_000;
    let step = (span_ms / o.events.max(1) as i64).max(1);
    let start = now - SignedDuration::from_millis(span_ms);
    let source = Uuid::now_v7();
    let (took, first_event) = seed_events_at(&store, &source.to_string(), o.events, |i| {
        start + SignedDuration::from_millis(i as i64 * step)
    })
    .await;
    eprintln!("seeded {} events in {:.1} s", o.events, took.as_secs_f64());
    let started = Instant::now();
    let mut attempts = 0u64;
    loop {
        let claimed = store
            .claim_due(now, 1000, now + SignedDuration::from_hours(1), "seed")
            .await
            .expect("claim");
        if claimed.is_empty() {
            break;
        }
        let mut writes = JoinSet::new();
        for c in claimed {
            attempts += 1;
            // One attempt in 20 fails, spread over the subscriptions (v7 ids end in random bits).
            let ok = !c.delivery.id.0.as_u128().is_multiple_of(20);
            let attempt = AttemptRecord {
                id: Uuid::now_v7(),
                delivery_id: c.delivery.id,
                attempted_at: c.delivery.created_at + SignedDuration::from_millis(800),
                succeeded: ok,
                status_code: Some(if ok { 200 } else { 503 }),
                latency_ms: 40 + attempts % 50,
                error_class: (!ok).then(|| "http_status".into()),
                error_message: (!ok).then(|| "HTTP 503".into()),
                response_excerpt: Some(if ok { "{\"ok\":true}" } else { "busy" }.into()),
                trace_id: None,
            };
            let store = store.clone();
            let next = if ok {
                DeliveryNext::Succeeded
            } else {
                DeliveryNext::Failed
            };
            writes.spawn(async move {
                store
                    .complete_attempt(attempt, next, "seed", FailurePolicy::lenient(now))
                    .await
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("joined").expect("attempt stored");
        }
    }
    eprintln!(
        "seeded {attempts} attempts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for i in 0..(o.events / 10) {
        let at = start + SignedDuration::from_millis(i as i64 * step * 10);
        store
            .insert_rejection(RejectionRecord {
                id: Uuid::now_v7(),
                source_id: source.to_string(),
                partners: vec![PARTNER.into()],
                reason: if i.is_multiple_of(3) {
                    "stale_timestamp"
                } else {
                    "signature_mismatch"
                }
                .into(),
                status_code: 401,
                message: "refused".into(),
                remote_addr: Some("127.0.0.1".into()),
                body_sha256: "00".repeat(32),
                body_size: 120,
                received_at: at,
            })
            .await
            .expect("rejection");
        if i.is_multiple_of(10)
            && let Some(event_id) = first_event
        {
            store
                .insert_outcome(OutcomeRecord {
                    id: Uuid::now_v7(),
                    event_id: event_id.into(),
                    partner_id: PARTNER.into(),
                    client_id: ADMIN.0.into(),
                    status: "failed".into(),
                    reason: Some("inventory_mismatch".into()),
                    message: None,
                    reported_at: at,
                })
                .await
                .expect("outcome");
        }
    }
    (
        subs.iter().map(|s| s.id.0).collect(),
        first_event.unwrap_or_default(),
    )
}

/// Signs in like a browser and returns the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let form = http
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login form");
    let nonce_cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_string();
    let nonce = nonce_cookie.split_once('=').map(|(_, v)| v).unwrap_or("");
    let answer = http
        .post(format!("{base}/login"))
        .header("cookie", &nonce_cookie)
        .form(&[
            ("csrf", nonce),
            ("client_id", ADMIN.0),
            ("client_secret", ADMIN.1),
        ])
        .send()
        .await
        .expect("login");
    answer
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string()
}

/// This process's peak resident memory, in MiB (the console scenario runs its hub in-process).
fn rss_mib() -> f64 {
    crate::harness::proc_rss(std::process::id()).1
}

pub async fn run(o: Options) {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = o.data.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("data dir");
    let db = dir.join("switchyard.db");
    let (subs, event) = {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
        seed(store, &o).await
    };
    let mut settings = Settings::new(dir.clone(), MASTER_KEY.to_vec());
    settings.database_url = Some(format!("sqlite:{}", db.display()));
    // The seeded endpoints do not exist; nothing is pending anyway.
    settings.delivery_concurrency = 1;
    let (listener, base, hub) = harness::bind_hub(&mut settings).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(hub.serve(listener, stopped));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let cookie = sign_in(&http, &base).await;
    let sub = subs.first().copied().unwrap_or_default();
    // A cursor deep in the log: the 2nd page of a webhook's attempts.
    let first_page = http
        .get(format!("{base}/console/webhooks/{sub}/logs"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .unwrap_or_default();
    let after = first_page
        .rsplit("after=")
        .next()
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    let pages: Vec<(&str, String)> = vec![
        ("webhooks", "/console/webhooks".into()),
        ("webhook", format!("/console/webhooks/{sub}")),
        ("callback logs", format!("/console/webhooks/{sub}/logs")),
        (
            "callback logs, page 2",
            format!("/console/webhooks/{sub}/logs?after={after}"),
        ),
        (
            "callback logs, failed",
            format!("/console/webhooks/{sub}/logs?status=failed"),
        ),
        ("events", "/console/events".into()),
        (
            "events by resource",
            "/console/events?resource=PO-4242".into(),
        ),
        (
            "events by topic",
            "/console/events?topic=order.created".into(),
        ),
        (
            "events, 3 days ago",
            format!(
                "/console/events?until={}",
                q_time(Timestamp::now() - SignedDuration::from_hours(72))
            ),
        ),
        ("event", format!("/console/events/{event}")),
        ("failures, 24 h", "/console/failures".into()),
        ("failures, 7 days", "/console/failures?window=7d".into()),
        ("refused requests", "/console/rejections".into()),
        ("reported outcomes", "/console/outcomes".into()),
        ("sources", "/console/sources".into()),
        ("partners", "/console/partners".into()),
    ];
    let mut rows = Vec::new();
    for (name, path) in &pages {
        let mut times = Vec::new();
        for _ in 0..o.requests {
            let started = Instant::now();
            let answer = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .expect("page");
            let status = answer.status().as_u16();
            let _ = answer.bytes().await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200, "{path} answered {status}");
        }
        times.sort_by(f64::total_cmp);
        rows.push((
            name.to_string(),
            percentile(&times, 50.0),
            percentile(&times, 95.0),
            times.last().copied().unwrap_or(0.0),
        ));
    }
    let _ = stop.send(true);
    let _ = server.await;

    println!(
        "\nconsole pages: {} events, {} attempts, {} requests per page (target: under {TARGET_MS} ms)\n",
        o.events,
        o.events * o.fanout,
        o.requests
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9}  target",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for (name, p50, p95, max) in &rows {
        let verdict = if *p95 < TARGET_MS { "met" } else { "MISSED" };
        println!("{name:<26} {p50:>9.1} {p95:>9.1} {max:>9.1}  {verdict}");
    }
    println!(
        "\npeak RSS of the harness process (hub included): {:.0} MiB",
        rss_mib()
    );
    let report = json!({
        "scenario": "console",
        "events": o.events,
        "attempts": o.events * o.fanout,
        "requestsPerPage": o.requests,
        "targetMs": TARGET_MS,
        "peakRssMiB": rss_mib(),
        "pages": rows.iter().map(|(name, p50, p95, max)| json!({
            "page": name, "p50Ms": p50, "p95Ms": p95, "maxMs": max, "met": *p95 < TARGET_MS,
        })).collect::<Vec<_>>(),
    });
    write_report(&o.out, "console.json", &report);
}

fn q_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M").to_string()
}
