//! Broker destinations (issue 21), against the real servers on 127.0.0.1 (NATS with JetStream on
//! 4222, RabbitMQ on 5672, Redis on 6379, Mosquitto on 1883; `bash .ci/run` starts any that is
//! down): a subscription whose `eventUrl` names a broker gets each event as a message there, read
//! back here with the broker's own client and verified with a Standard Webhooks signature
//! computed here from the specification. The recovery tests start brokers of their own on
//! ports of their own, stop them while events flow, start them again, and find every event
//! delivered (a retry may repeat one, never under another `webhook-id`).
//!
//! The tests are `#[ignore = "needs …"]`: a plain `cargo test` on a machine without the brokers
//! lists them as ignored, and `bash .ci/run` runs them.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::SignedDuration;
use serde_json::{Value, json};

use crate::helpers::*;

/// A message as a broker gave it back: its headers (or stream fields) and body.
#[derive(Debug, Clone)]
struct Got {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The message carries the envelope, a valid signature over it, and the custom header.
    fn check(&self, secret: &str, sku: &str) {
        assert_eq!(
            self.header("webhook-signature"),
            standard_signature(
                secret,
                self.header("webhook-id"),
                self.header("webhook-timestamp"),
                &self.body
            ),
            "{self:?}"
        );
        let envelope: Value = serde_json::from_slice(&self.body).expect("JSON body");
        assert_eq!(envelope["payload"]["sku"], sku, "{envelope}");
        assert_eq!(envelope["source"]["eventType"], "OFFER_UNPUBLISHED");
        assert_eq!(self.header("content-type"), "application/json");
        assert_eq!(self.header("x-team"), "warehouse");
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

async fn subscribe_to(app: &TestApp, admin: &str, url: &str) -> String {
    let (sub, secret) = app
        .subscribe(
            admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
                   "eventUrl": url, "headers": {"x-team": "warehouse"}}),
        )
        .await;
    let _ = sub;
    secret
}

// ---- NATS JetStream ----

async fn nats_stream(port: u16, subject: &str) -> async_nats::jetstream::stream::Stream {
    let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("NATS (is nats-server -js running?)");
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: subject.replace('.', "_"),
            subjects: vec![subject.to_string()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("stream")
}

async fn nats_messages(port: u16, subject: &str) -> Vec<Got> {
    let stream = nats_stream(port, subject).await;
    let mut got = Vec::new();
    let mut sequence = 1;
    while let Ok(m) = stream.get_raw_message(sequence).await {
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.iter().next().map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        got.push(Got {
            headers,
            body: m.payload.to_vec(),
        });
        sequence += 1;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs NATS with JetStream on 127.0.0.1:4222; bash .ci/run runs it"]
async fn a_nats_subscription_gets_each_event_as_a_signed_jetstream_message() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let subject = unique("sy.test.");
    nats_stream(4222, &subject).await;
    let secret = subscribe_to(&app, &admin, &format!("nats://127.0.0.1:4222/{subject}")).await;
    app.publish(&admin, "seller-1", json!({"sku": "N-1"})).await;
    let got = wait_for("the JetStream message", || async {
        let got = nats_messages(4222, &subject).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1);
    got[0].check(&secret, "N-1");
    assert_eq!(
        got[0].header("Nats-Msg-Id"),
        got[0].header("webhook-id"),
        "JetStream dedups on the webhook-id"
    );

    // The test notification publishes its sample the same way; a subject no stream captures
    // is a failure the answer names.
    let tested = app
        .post(
            "/v3/webhooks/test",
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
                   "eventUrl": format!("nats://127.0.0.1:4222/{subject}")}),
        )
        .await;
    assert_eq!(tested.status, 200, "{}", tested.body);
    assert_eq!(nats_messages(4222, &subject).await.len(), 2);
    let nowhere = app
        .post(
            "/v3/webhooks/test",
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
                   "eventUrl": format!("nats://127.0.0.1:4222/{}", unique("sy.nostream."))}),
        )
        .await;
    assert_eq!(nowhere.status, 400, "{}", nowhere.body);
    assert_eq!(nowhere.body["error"]["code"], "test_delivery_failed");
}

// ---- Redis Streams ----

/// An `XRANGE` entry: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

async fn redis_entries(port: u16, stream: &str) -> Vec<Got> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).expect("client");
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return Vec::new();
    };
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap_or_default();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            let mut body = Vec::new();
            for (name, value) in fields {
                if name == "body" {
                    body = value;
                } else {
                    headers.insert(name, String::from_utf8_lossy(&value).into_owned());
                }
            }
            Got { headers, body }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis on 127.0.0.1:6379; bash .ci/run runs it"]
async fn a_redis_subscription_gets_each_event_as_a_signed_stream_entry() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let stream = unique("sy-test-");
    let secret = subscribe_to(
        &app,
        &admin,
        &format!("redis://127.0.0.1:6379/0?stream={stream}&maxlen=1000"),
    )
    .await;
    app.publish(&admin, "seller-1", json!({"sku": "R-1"})).await;
    let got = wait_for("the stream entry", || async {
        let got = redis_entries(6379, &stream).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1);
    got[0].check(&secret, "R-1");
}

// ---- RabbitMQ ----

/// A message's AMQP headers (the hub writes each as a long string).
fn amqp_headers(properties: &lapin::BasicProperties) -> BTreeMap<String, String> {
    use lapin::types::AMQPValue;
    properties
        .headers()
        .as_ref()
        .map(|table| {
            table
                .inner()
                .iter()
                .filter_map(|(k, v)| match v {
                    AMQPValue::LongString(s) => Some((
                        k.to_string(),
                        String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    )),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs RabbitMQ on 127.0.0.1:5672 (guest/guest); bash .ci/run runs it"]
async fn an_amqp_subscription_gets_each_event_as_a_confirmed_persistent_message() {
    use lapin::options::{
        BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    let connection = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = connection.create_channel().await.expect("channel");
    let name = unique("sy-test-");
    channel
        .exchange_declare(
            name.as_str().into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "orders".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, secret) = app
        .subscribe(
            &admin,
            json!({"eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "seller-1",
                   "eventUrl": format!("amqp://127.0.0.1:5672/%2f?exchange={name}&routingKey=orders"),
                   "headers": {"x-team": "warehouse"},
                   "authDetails": {"authMethod": "BASIC_AUTH", "userName": "guest", "password": "guest"}}),
        )
        .await;
    app.publish(&admin, "seller-1", json!({"sku": "A-1"})).await;
    let message = wait_for("the AMQP message", || async {
        channel
            .basic_get(name.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .ok()
            .flatten()
    })
    .await;
    let properties = &message.delivery.properties;
    let headers = amqp_headers(properties);
    let got = Got {
        headers,
        body: message.delivery.data.clone(),
    };
    got.check(&secret, "A-1");
    assert_eq!(
        properties.message_id().as_ref().map(|m| m.to_string()),
        Some(got.header("webhook-id").to_string())
    );
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    let _ = channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await;
}

// ---- MQTT ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Mosquitto on 127.0.0.1:1883; bash .ci/run runs it"]
async fn an_mqtt_subscription_gets_each_event_as_a_signed_qos1_publish() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let topic = unique("sy-test/");
    let reader = mqtt_staying_reader(1883, &topic);
    wait_for("the reader subscribes", || async {
        (reader.subscribed.load(std::sync::atomic::Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let got = reader.got;
    let secret = subscribe_to(&app, &admin, &format!("mqtt://127.0.0.1:1883/{topic}")).await;
    app.publish(&admin, "seller-1", json!({"sku": "M-1"})).await;
    let got = wait_for("the MQTT message", || async {
        let got = got.lock().unwrap().clone();
        (!got.is_empty()).then_some(got)
    })
    .await;
    got[0].check(&secret, "M-1");
}

// ---- A broker that goes away and comes back ----

/// A broker server of this test's own, on a port of its own, which it may stop and start.
struct OwnServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    start: fn(u16, &std::path::Path) -> std::process::Command,
}

impl OwnServer {
    fn new(start: fn(u16, &std::path::Path) -> std::process::Command) -> OwnServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = OwnServer {
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            start,
        };
        server.up();
        server
    }

    fn up(&mut self) {
        use std::os::unix::process::CommandExt as _;
        let child = (self.start)(self.port, self.dir.path())
            // Its own process group, so that stopping it stops whatever it started (RabbitMQ's
            // script starts the Erlang VM as a child).
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the broker's server starts (is it installed?)");
        self.child = Some(child);
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the broker on port {} did not come up", self.port);
    }

    /// Kills the server and everything in its process group, as a crash would.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            // A server that runs as another user in a session of its own (RabbitMQ's node)
            // names its process in a pid file.
            if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid.trim()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.down();
    }
}

/// Publishes `n` events while the broker is stopped and started again in the middle; then
/// moves the hub's clock past the retries until every event is there. Returns the events' SKUs
/// by webhook-id as the broker holds them.
async fn through_a_restart(
    server: &mut OwnServer,
    url: &str,
    read: impl AsyncFn(u16) -> Vec<Got>,
) -> (String, Vec<Got>) {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let secret = subscribe_to(&app, &admin, url).await;
    let n = 30;
    for i in 0..n {
        if i == 10 {
            server.down();
        }
        if i == 20 {
            server.up();
        }
        app.publish(&admin, "seller-1", json!({"sku": format!("S-{i}")}))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (got, deliveries) = wait_for(
        "every event reaches the broker, as the hub knows",
        || async {
            // Failed attempts retry on the Walmart ladder (5, 15, 45 minutes): move the clock.
            app.advance(SignedDuration::from_mins(6));
            let got = read(server.port).await;
            if every_sku(&got) != n {
                return None;
            }
            Some((got, all_succeeded(&app).await?))
        },
    )
    .await;
    assert!(
        deliveries.iter().any(|d| d["attempts"].as_u64() >= Some(2)),
        "some attempts failed while the broker was down: {deliveries:?}"
    );
    (secret, got)
}

/// How many SKUs the messages carry, each counted once.
fn every_sku(got: &[Got]) -> usize {
    got.iter()
        .filter_map(|g| {
            let v: Value = serde_json::from_slice(&g.body).ok()?;
            v["payload"]["sku"].as_str().map(str::to_string)
        })
        .collect::<std::collections::HashSet<String>>()
        .len()
}

/// The deliveries of the test's one subscription once the hub has recorded every one of them
/// as succeeded. A message reaches the broker's reader before the hub has its acknowledgement
/// and has written the attempt, so the messages alone do not say the attempts are counted.
async fn all_succeeded(app: &TestApp) -> Option<Vec<Value>> {
    // The tests move the clock past a token's 15 minutes: a new one each time.
    let admin = app.admin_token().await;
    let deliveries = app
        .deliveries_of(&admin, &app_subscription(app, &admin).await)
        .await;
    deliveries
        .iter()
        .all(|d| d["status"] == "succeeded")
        .then_some(deliveries)
}

/// The one subscription of a test's hub.
async fn app_subscription(app: &TestApp, admin: &str) -> String {
    let listed = app.get("/v3/webhooks/subscriptions", admin).await;
    listed.body["events"][0]["subscriptionId"]
        .as_str()
        .expect("a subscription")
        .to_string()
}

/// Every message is signed, and an event seen twice is seen under one webhook-id.
fn once_per_event(secret: &str, got: &[Got]) {
    let mut ids_of: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for g in got {
        let v: Value = serde_json::from_slice(&g.body).expect("JSON");
        let sku = v["payload"]["sku"].as_str().expect("sku").to_string();
        g.check_signature(secret);
        ids_of
            .entry(sku)
            .or_default()
            .insert(g.header("webhook-id").to_string());
    }
    assert!(
        ids_of.values().all(|ids| ids.len() == 1),
        "an event under two ids: {ids_of:?}"
    );
}

impl Got {
    fn check_signature(&self, secret: &str) {
        assert_eq!(
            self.header("webhook-signature"),
            standard_signature(
                secret,
                self.header("webhook-id"),
                self.header("webhook-timestamp"),
                &self.body
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (with JetStream); bash .ci/run runs it"]
async fn nats_deliveries_survive_the_broker_restarting() {
    let mut server = OwnServer::new(|port, dir| {
        let mut c = std::process::Command::new("nats-server");
        c.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir);
        c
    });
    let subject = unique("sy.restart.");
    nats_stream(server.port, &subject).await;
    let url = format!("nats://127.0.0.1:{}/{subject}", server.port);
    let reader = async |port: u16| {
        let subject = subject.clone();
        nats_messages(port, &subject).await
    };
    let (secret, got) = through_a_restart(&mut server, &url, reader).await;
    once_per_event(&secret, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; bash .ci/run runs it"]
async fn redis_deliveries_survive_the_broker_restarting() {
    let mut server = OwnServer::new(|port, dir| {
        let mut c = std::process::Command::new("redis-server");
        c.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
        ])
        .arg(dir);
        c
    });
    let stream = unique("sy-restart-");
    let url = format!("redis://127.0.0.1:{}/0?stream={stream}", server.port);
    let reader = async |port: u16| redis_entries(port, &stream).await;
    let (secret, got) = through_a_restart(&mut server, &url, reader).await;
    once_per_event(&secret, &got);
}

/// A subscriber to a topic, collecting what arrives with its user properties. It stays: it
/// connects again after its broker went away and subscribes again each time it is connected.
/// (`subscribed` counts its SUBACKs.)
struct StayingReader {
    got: std::sync::Arc<std::sync::Mutex<Vec<Got>>>,
    subscribed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn mqtt_staying_reader(port: u16, topic: &str) -> StayingReader {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let mut options = MqttOptions::new(unique("sy-test-reader-"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 100);
    let reader = StayingReader {
        got: Default::default(),
        subscribed: Default::default(),
    };
    let (got, subscribed, topic) = (
        reader.got.clone(),
        reader.subscribed.clone(),
        topic.to_string(),
    );
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscribed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let headers = p
                        .properties
                        .map(|props| props.user_properties.into_iter().collect())
                        .unwrap_or_default();
                    got.lock().unwrap().push(Got {
                        headers,
                        body: p.payload.to_vec(),
                    });
                }
                Ok(_) => {}
                // The broker is away: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    reader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs mosquitto; bash .ci/run runs it"]
async fn mqtt_deliveries_survive_the_broker_restarting() {
    let mut server = OwnServer::new(|port, _| {
        let mut c = std::process::Command::new("mosquitto");
        c.args(["-p", &port.to_string()]);
        c
    });
    let topic = unique("sy-restart/");
    let reader = mqtt_staying_reader(server.port, &topic);
    wait_for("the reader subscribes", || async {
        (reader.subscribed.load(std::sync::atomic::Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let secret = subscribe_to(
        &app,
        &admin,
        &format!("mqtt://127.0.0.1:{}/{topic}", server.port),
    )
    .await;
    let publish = async |from: usize, to: usize| {
        for i in from..to {
            app.publish(&admin, "seller-1", json!({"sku": format!("S-{i}")}))
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Ten while it is up (all of them at the reader before it stops: MQTT keeps nothing for a
    // subscriber across a restart of a broker without persistence), ten while it is down, ten
    // once it and the reader are back.
    publish(0, 10).await;
    wait_for("the first ten arrive", || async {
        (reader.got.lock().unwrap().len() >= 10).then_some(())
    })
    .await;
    server.down();
    publish(10, 20).await;
    server.up();
    wait_for("the reader subscribes again", || async {
        (reader.subscribed.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    publish(20, 30).await;
    let (got, deliveries) = wait_for(
        "every event reaches the reader, as the hub knows",
        || async {
            app.advance(SignedDuration::from_mins(6));
            let got = reader.got.lock().unwrap().clone();
            if every_sku(&got) != 30 {
                return None;
            }
            Some((got, all_succeeded(&app).await?))
        },
    )
    .await;
    once_per_event(&secret, &got);
    assert!(
        deliveries.iter().any(|d| d["attempts"].as_u64() >= Some(2)),
        "some attempts failed while the broker was down: {deliveries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rabbitmq-server; bash .ci/run runs it"]
async fn amqp_deliveries_survive_the_broker_restarting() {
    use lapin::options::{BasicGetOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    // A node of the test's own: its name, ports and data under the test's directory, so the
    // shared broker is never touched; started again on the same data, it keeps its queue.
    let mut server = OwnServer::new(|port, dir| {
        let dist = if port > 40_000 {
            port - 20_000
        } else {
            port + 20_000
        };
        let _ = std::fs::write(dir.join("plugins"), "[].");
        // The server's script runs the node as the rabbitmq user, who must write here.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
        let _ =
            std::fs::set_permissions(dir.join("plugins"), std::fs::Permissions::from_mode(0o666));
        let mut c = std::process::Command::new("rabbitmq-server");
        c.env("RABBITMQ_NODENAME", format!("sytest{port}@localhost"))
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"));
        c
    });
    let queue = unique("sy-restart-");
    // The queue declared (or, `passive`, found without being made) on a connection of its own.
    let declare = async |port: u16, passive: bool| -> Option<(lapin::Connection, lapin::Channel)> {
        let connection = lapin::Connection::connect(
            &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            lapin::ConnectionProperties::default(),
        )
        .await
        .ok()?;
        let channel = connection.create_channel().await.ok()?;
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    passive,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()?;
        Some((connection, channel))
    };
    declare(server.port, false)
        .await
        .expect("the test's RabbitMQ answers");
    // A node of RabbitMQ 3.10 killed within seconds of its first start can come back without
    // a queue declared in those seconds, and without the messages it confirmed into it (3 runs
    // in 40 here): Mnesia writes its tables' files at start, and recovers its log
    // of the first seconds only in part. A user's queue is older than that. The test's is, once
    // its node has been killed and started again and has kept it.
    let mut restarts = 0;
    loop {
        server.down();
        server.up();
        if declare(server.port, true).await.is_some() {
            break;
        }
        restarts += 1;
        assert!(
            restarts < 5,
            "the test's RabbitMQ keeps no queue across a restart"
        );
        declare(server.port, false)
            .await
            .expect("the test's RabbitMQ answers");
    }
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Got>>> = Default::default();
    let reader = async |port: u16| {
        if let Some((_connection, channel)) = declare(port, false).await {
            while let Ok(Some(m)) = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
            {
                let headers = amqp_headers(&m.delivery.properties);
                seen.lock().unwrap().push(Got {
                    headers,
                    body: m.delivery.data.clone(),
                });
            }
        }
        seen.lock().unwrap().clone()
    };
    let url = format!("amqp://127.0.0.1:{}/%2f?routingKey={queue}", server.port);
    let (secret, got) = through_a_restart(&mut server, &url, reader).await;
    once_per_event(&secret, &got);
}
