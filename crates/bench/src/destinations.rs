//! Broker destinations and polling (issue 21).
//!
//! Per broker kind (the servers on 127.0.0.1 the machine runs): a backlog of deliveries stored
//! before the hub starts, timed from its start until the broker holds them all, against the same
//! client (`switchyard_delivery::brokers`, the hub's own publisher over each broker's crate)
//! publishing the same number of messages of the same size directly, with the hub's
//! concurrency, in the same run. For polling: events read by one consumer paging with
//! `limit=100`, and from each publish's acknowledgement to a long-polling reader's answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_core::destination::{self, BrokerAddress, Destination};
use switchyard_delivery::brokers::{Brokers, Credentials, Message};
use switchyard_delivery::guard::AddressGuard;

use crate::harness::{self, Row, admin_token, proc_cpu_seconds, seed_events, start_hub};
use crate::scenarios::{Backend, Sizes, db_label, per_op_us};

/// The hub's delivery concurrency, which the direct publisher matches.
const CONCURRENCY: usize = 64;

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

type Arrivals = Arc<std::sync::Mutex<Vec<(u64, Instant)>>>;

/// An `XRANGE` entry: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// The `payload.n` of an envelope.
fn n_of(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(body).ok()?["payload"]["n"].as_u64()
}

/// A broker kind's destination, and how many messages it holds now.
struct Target {
    kind: &'static str,
    url: String,
    /// With a reader: each message's `payload.n` and when it became readable.
    arrivals: Arrivals,
    count: Box<
        dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> + Send + Sync,
    >,
}

async fn nats_target(read: bool) -> Option<Target> {
    let client = async_nats::connect("nats://127.0.0.1:4222").await.ok()?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let subject = unique("sy.bench.");
    let stream = jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: subject.replace('.', "_"),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await
        .ok()?;
    let stream = Arc::new(stream);
    let arrivals = Arrivals::default();
    if read {
        let mut messages = client.subscribe(subject.clone()).await.ok()?;
        let sink = arrivals.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            while let Some(m) = messages.next().await {
                if let Some(n) = n_of(&m.payload) {
                    sink.lock().unwrap().push((n, Instant::now()));
                }
            }
        });
    }
    Some(Target {
        kind: "NATS JetStream",
        url: format!("nats://127.0.0.1:4222/{subject}"),
        arrivals,
        count: Box::new(move || {
            let stream = stream.clone();
            Box::pin(async move {
                stream
                    .get_info()
                    .await
                    .map(|i| i.state.messages)
                    .unwrap_or(0)
            })
        }),
    })
}

async fn redis_target(read: bool) -> Option<Target> {
    let client = redis::Client::open("redis://127.0.0.1:6379/0").ok()?;
    let connection = client.get_multiplexed_async_connection().await.ok()?;
    let stream = unique("sy-bench-");
    let url = format!("redis://127.0.0.1:6379/0?stream={stream}");
    let arrivals = Arrivals::default();
    if read {
        // XRANGE after the last id seen, as fast as it answers: a reader of the stream.
        let (mut connection, sink, name) = (connection.clone(), arrivals.clone(), stream.clone());
        tokio::spawn(async move {
            let mut last = "-".to_string();
            loop {
                let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
                    .arg(&name)
                    .arg(&last)
                    .arg("+")
                    .arg("COUNT")
                    .arg(100)
                    .query_async(&mut connection)
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                for (id, fields) in entries {
                    if let Some((_, body)) = fields.iter().find(|(k, _)| k == "body")
                        && let Some(n) = n_of(body)
                    {
                        sink.lock().unwrap().push((n, now));
                    }
                    last = format!("({id}");
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
                if Arc::strong_count(&sink) == 1 {
                    break;
                }
            }
        });
    }
    Some(Target {
        kind: "Redis Streams",
        url,
        arrivals,
        count: Box::new(move || {
            let mut connection = connection.clone();
            let stream = stream.clone();
            Box::pin(async move {
                redis::cmd("XLEN")
                    .arg(&stream)
                    .query_async(&mut connection)
                    .await
                    .unwrap_or(0)
            })
        }),
    })
}

async fn amqp_target(read: bool) -> Option<Target> {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .ok()?;
    let channel = connection.create_channel().await.ok()?;
    let queue = unique("sy-bench-");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .ok()?;
    let arrivals = Arrivals::default();
    if read {
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "sy-bench".into(),
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let sink = arrivals.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt as _;
            while let Some(Ok(delivery)) = consumer.next().await {
                if let Some(n) = n_of(&delivery.data) {
                    sink.lock().unwrap().push((n, Instant::now()));
                }
            }
        });
    }
    let held = Arc::new((connection, channel, queue.clone()));
    Some(Target {
        kind: "RabbitMQ",
        arrivals,
        // The default exchange routes a key to the queue of that name.
        url: format!("amqp://127.0.0.1:5672/%2f?routingKey={queue}"),
        count: Box::new(move || {
            let held = held.clone();
            Box::pin(async move {
                let (_, channel, queue) = &*held;
                channel
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions {
                            passive: true,
                            durable: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .map(|q| u64::from(q.message_count()))
                    .unwrap_or(0)
            })
        }),
    })
}

async fn mqtt_target(read: bool) -> Option<Target> {
    let arrivals = Arrivals::default();
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let topic = unique("sy-bench/");
    let mut options = MqttOptions::new(unique("sy-bench-reader-"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready);
    let counter = received.clone();
    let sink = arrivals.clone();
    let wanted = topic.clone();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::ConnAck(_)) => {
                    let _ = client.subscribe(wanted.clone(), QoS::AtLeastOnce).await;
                }
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Only the latency phase reads bodies: the counting phase keeps up with
                    // the hub (Mosquitto drops QoS 1 messages past 1,000 queued for a client).
                    if read && let Some(n) = n_of(&p.payload) {
                        sink.lock().unwrap().push((n, Instant::now()));
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed)
        .await
        .ok()?
        .ok()?;
    Some(Target {
        kind: "MQTT",
        arrivals,
        url: format!("mqtt://127.0.0.1:1883/{topic}"),
        count: Box::new(move || {
            let n = received.load(std::sync::atomic::Ordering::Relaxed);
            Box::pin(async move { n })
        }),
    })
}

/// Waits until `target` holds `n` messages (at most `timeout`); whether it did. An MQTT
/// broker holds nothing: its count is the hub's deliveries it acknowledged (PUBACKs), since a
/// subscriber that falls 1,000 behind loses QoS 1 messages at Mosquitto.
async fn wait_for_count(target: &Target, hub: &str, n: u64, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        let count = if target.kind == "MQTT" {
            acknowledged(hub).await
        } else {
            (target.count)().await
        };
        if count >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The hub's succeeded delivery attempts, from its `/metrics`.
async fn acknowledged(hub: &str) -> u64 {
    let text = match reqwest::get(format!("{hub}/metrics")).await {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(_) => return 0,
    };
    text.lines()
        .filter(|l| {
            l.starts_with("switchyard_delivery_attempts_total")
                && l.contains("outcome=\"succeeded\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The same number of messages published straight through the hub's publisher, `CONCURRENCY`
/// at a time: (messages per second, this process's CPU µs per message).
async fn direct(url: &str, n: u64, body_bytes: usize) -> (f64, f64) {
    let Ok(Destination::Broker(address)) = destination::parse("eventUrl", url) else {
        return (0.0, 0.0);
    };
    let address: Arc<BrokerAddress> = Arc::new(address);
    let brokers = Brokers::new(
        AddressGuard {
            allow_private: true,
        },
        Duration::from_secs(15),
    );
    let body = Arc::new(vec![b'x'; body_bytes]);
    let cpu = proc_cpu_seconds(std::process::id());
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (brokers, address, body, next) =
            (brokers.clone(), address.clone(), body.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let id = format!("msg_direct_{i}");
                let headers = vec![
                    ("content-type".to_string(), "application/json".to_string()),
                    ("webhook-id".to_string(), id.clone()),
                    ("webhook-timestamp".to_string(), "1796637600".to_string()),
                    (
                        "webhook-signature".to_string(),
                        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".to_string(),
                    ),
                ];
                let message = Message {
                    id: &id,
                    body: &body,
                    headers: &headers,
                };
                let _ = brokers
                    .publish(&address, &Credentials::default(), &message)
                    .await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let cpu = proc_cpu_seconds(std::process::id()) - cpu;
    (n as f64 / seconds.max(1e-9), per_op_us(cpu, n as f64))
}

async fn make_target(kind: usize, read: bool) -> Option<Target> {
    match kind {
        0 => nats_target(read).await,
        1 => amqp_target(read).await,
        2 => redis_target(read).await,
        _ => mqtt_target(read).await,
    }
}

/// From each publish's acknowledgement (`POST /api/v1/events`, 202) to its message being
/// readable by a reader of the broker: 20 events a second, one at a time. (p50, p99) in ms.
async fn ack_to_readable(backend: &Backend, kind: usize, events: u64) -> Option<(f64, f64)> {
    let target = make_target(kind, true).await?;
    let db = backend.fresh();
    let store = db.open().await;
    harness::seed_admin(&store).await;
    store
        .create_subscriptions(vec![harness::subscription(target.url.clone())])
        .await
        .expect("subscription");
    drop(store);
    let hub = start_hub(&db, true).await;
    let http = reqwest::Client::new();
    let token = admin_token(&http, &hub.base).await;
    let acks = publish_numbered(&http, &hub.base, &token, events).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while target.arrivals.lock().unwrap().len() < events as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.stop().await;
    db.remove().await;
    let latencies = latencies_ms(&acks, &target.arrivals.lock().unwrap());
    Some((
        harness::percentile(&latencies, 50.0),
        harness::percentile(&latencies, 99.0),
    ))
}

/// Publishes `events` order events (`payload.n` = 0, 1, …) one at a time, 20 a second; when
/// each was acknowledged. `None` if one was refused.
async fn publish_numbered(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    events: u64,
) -> Option<std::collections::HashMap<u64, Instant>> {
    let mut acks = std::collections::HashMap::new();
    for n in 0..events {
        let answer = http
            .post(format!("{base}/api/v1/events"))
            .header("authorization", token)
            .json(
                &json!({"eventType": "PO_CREATED", "partnerId": harness::PARTNER,
                          "payload": {"n": n}}),
            )
            .send()
            .await
            .ok()?;
        if !answer.status().is_success() {
            return None;
        }
        acks.insert(n, Instant::now());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(acks)
}

/// Milliseconds from each event's acknowledgement to its arrival, sorted.
fn latencies_ms(
    acks: &std::collections::HashMap<u64, Instant>,
    arrivals: &[(u64, Instant)],
) -> Vec<f64> {
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|(n, at)| {
            acks.get(n)
                .map(|ack| at.saturating_duration_since(*ack).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// One row per broker kind whose server answers; a kind whose server is down is reported so.
pub async fn brokers(backend: &Backend, sizes: Sizes) -> Vec<Row> {
    let n = (sizes.deliveries / 5).max(1_000);
    let mut rows = Vec::new();
    for make in [0, 1, 2, 3] {
        let target = make_target(make, false).await;
        let Some(target) = target else {
            rows.push(Row {
                scenario: format!(
                    "delivery to {}",
                    ["NATS JetStream", "RabbitMQ", "Redis Streams", "MQTT"][make]
                ),
                store: db_label(backend),
                note: "not run: its server does not answer on 127.0.0.1".into(),
                peak_rss_mib: 1.0,
                ..Row::default()
            });
            continue;
        };
        let db = backend.fresh();
        let store = db.open().await;
        harness::seed_admin(&store).await;
        store
            .create_subscriptions(vec![harness::subscription(target.url.clone())])
            .await
            .expect("subscription");
        seed_events(&store, n).await;
        drop(store);
        let hub = start_hub(&db, true).await;
        let started = Instant::now();
        let finished = wait_for_count(&target, &hub.base, n, Duration::from_secs(120)).await;
        let seconds = started.elapsed().as_secs_f64();
        let rate = n as f64 / seconds.max(1e-9);
        let cpu_us = per_op_us(hub.cpu_seconds(), n as f64);
        let (p50, p95, p99) = harness::attempt_latency(&hub.base).await;
        let (_, peak) = hub.rss_mib();
        hub.stop().await;
        db.remove().await;
        // The envelope of a seeded order event is about this size.
        let (direct_rate, direct_cpu) = direct(&target.url, n, 420).await;
        let ratio = rate / direct_rate.max(1.0);
        let events = if sizes.deliveries <= 2_000 { 20 } else { 200 };
        let readable = ack_to_readable(backend, make, events).await;
        rows.push(Row {
            scenario: format!("delivery to {}", target.kind),
            store: db_label(backend),
            unit: "deliveries/s".into(),
            throughput: rate,
            p50_ms: p50,
            p95_ms: p95,
            p99_ms: p99,
            peak_rss_mib: peak,
            cpu_us: Some(cpu_us),
            baseline_cpu_us: Some(direct_cpu),
            baseline: Some(("the same publisher, direct".into(), direct_rate)),
            ratio: Some(ratio),
            target: ">= 50% of direct".into(),
            met: Some(ratio >= 0.5 && finished),
            note: format!(
                "{n} deliveries stored before the hub starts, until the broker holds them all{}; direct: {direct_rate:.0}/s; latencies are the hub's attempt times (publish to the broker's acknowledgement) by histogram bucket; {}",
                if finished { "" } else { "; TIMED OUT" },
                match readable {
                    Some((p50, p99)) => format!(
                        "ack to readable ({events} events, 20/s): p50 {p50:.2} ms, p99 {p99:.2} ms"
                    ),
                    None => "ack to readable: not measured".into(),
                }
            ),
        });
    }
    rows
}

/// Polling: one consumer paging a backlog with `limit=100`, then a long-polling reader's
/// latency from each publish's acknowledgement to its answer.
pub async fn polling(backend: &Backend, sizes: Sizes) -> Vec<Row> {
    let n = (sizes.deliveries / 5).max(1_000);
    let db = backend.fresh();
    let store = db.open().await;
    harness::seed_admin(&store).await;
    let subscription = harness::subscription("poll:".into());
    let sub = subscription.id;
    store
        .create_subscriptions(vec![subscription])
        .await
        .expect("subscription");
    seed_events(&store, n).await;
    drop(store);
    let hub = start_hub(&db, false).await;
    let http = reqwest::Client::new();
    let token = admin_token(&http, &hub.base).await;
    let (page_http, page_token, page_base) = (http.clone(), token.clone(), hub.base.clone());
    let page = move |iterator: Option<String>, wait: u32| {
        let (http, token, base) = (page_http.clone(), page_token.clone(), page_base.clone());
        async move {
            let mut url =
                format!("{base}/api/v1/subscriptions/{sub}/poll?limit=100&waitSeconds={wait}");
            if let Some(i) = iterator {
                url.push_str(&format!("&iterator={i}"));
            }
            http.get(url)
                .header("authorization", token)
                .send()
                .await
                .expect("poll")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let cpu = hub.cpu_seconds();
    let started = Instant::now();
    let mut iterator = None;
    let mut read = 0u64;
    while read < n {
        let answer = page(iterator.clone(), 0).await;
        let got = answer["data"].as_array().map(Vec::len).unwrap_or(0) as u64;
        if got == 0 {
            break;
        }
        read += got;
        iterator = answer["iterator"].as_str().map(str::to_string);
    }
    let seconds = started.elapsed().as_secs_f64();
    let read_rate = read as f64 / seconds.max(1e-9);
    let read_cpu = per_op_us(hub.cpu_seconds() - cpu, read as f64);

    // Long poll: a reader always waiting; events published one at a time, 20 per second.
    let events = if sizes.deliveries <= 2_000 { 20 } else { 200 };
    let reader = {
        let page = page.clone();
        let iterator = iterator.clone();
        tokio::spawn(async move {
            let mut iterator = iterator;
            let mut arrivals: Vec<(u64, Instant)> = Vec::new();
            while arrivals.len() < events as usize {
                let answer = page(iterator.clone(), 10).await;
                let now = Instant::now();
                for item in answer["data"].as_array().into_iter().flatten() {
                    if let Some(n) = n_of(item["body"].as_str().unwrap_or("{}").as_bytes()) {
                        arrivals.push((n, now));
                    }
                }
                iterator = answer["iterator"].as_str().map(str::to_string).or(iterator);
            }
            arrivals
        })
    };
    let acks = publish_numbered(&http, &hub.base, &token, events)
        .await
        .expect("every event published");
    let arrivals = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let latencies = latencies_ms(&acks, &arrivals);
    let (_, peak) = hub.rss_mib();
    hub.stop().await;
    db.remove().await;
    vec![
        Row {
            scenario: "polling: one consumer paging with limit=100".into(),
            store: db_label(backend),
            unit: "events/s".into(),
            throughput: read_rate,
            peak_rss_mib: peak,
            cpu_us: Some(read_cpu),
            target: "measured".into(),
            note: format!("{read} of {n} stored events read, 100 per request"),
            ..Row::default()
        },
        Row {
            scenario: "polling: ack to a long-polling reader's answer".into(),
            store: db_label(backend),
            unit: "events".into(),
            throughput: latencies.len() as f64,
            p50_ms: harness::percentile(&latencies, 50.0),
            p95_ms: harness::percentile(&latencies, 95.0),
            p99_ms: harness::percentile(&latencies, 99.0),
            peak_rss_mib: peak,
            target: "measured".into(),
            note: format!(
                "{events} events published 20 a second while a reader waits (waitSeconds=10); a write on the hub wakes the wait (other nodes' writes: a look every 100 ms)"
            ),
            ..Row::default()
        },
    ]
}
