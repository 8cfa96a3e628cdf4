//! Several `serve` processes on one PostgreSQL database share the deliveries: every (event,
//! subscription) pair is delivered, none twice while no node dies; after a SIGKILL, duplicates
//! only for what was in flight, under the same `webhook-id`; and cut database connections lose
//! no acknowledged event (`outage.rs` stops a whole server). Each needs a PostgreSQL server: they are `#[ignore]`d, so `cargo test`
//! lists them as ignored, and `bash .ci/run` runs them (with `--include-ignored`, after starting
//! the server); included without `SWITCHYARD_TEST_POSTGRES_URL`, they fail.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::*;

const MASTER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The PostgreSQL server's URL; a test that asks for it fails without one.
fn postgres_url() -> String {
    match std::env::var("SWITCHYARD_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "this test needs PostgreSQL: set SWITCHYARD_TEST_POSTGRES_URL \
             (for example postgres://postgres@127.0.0.1:5432/test)"
        ),
    }
}

/// A schema of the test's own, dropped at the end; its URL sets the search path and names the
/// application so the test can cut exactly its own connections.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    async fn new(base: &str) -> Schema {
        let name = format!("sy_nodes_{}", uuid::Uuid::now_v7().simple());
        let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL is up");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        Schema {
            base: base.to_string(),
            name,
        }
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-c%20search_path%3D{}&application_name={}",
            self.base, self.name, self.name
        )
    }

    /// Terminates every connection the nodes hold (the database "restarts" for them).
    async fn cut_connections(&self) -> u64 {
        let (client, conn) = tokio_postgres::connect(&self.base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = client
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&self.name])
            .await
            .unwrap();
        rows.len() as u64
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
            Ok::<(), std::io::Error>(())
        })
        .join();
    }
}

pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port")
}

pub(crate) async fn start_node(database_url: &str) -> Node {
    start_node_with(database_url, Stdio::inherit()).await
}

/// A node whose standard error goes to `stderr` (a file the test reads for panics).
pub(crate) async fn start_node_with(database_url: &str, stderr: Stdio) -> Node {
    start_node_at(database_url, free_port(), stderr).await
}

/// A node on a given port (a restarted node takes its place).
async fn start_node_at(database_url: &str, port: u16, stderr: Stdio) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("serve")
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_DATABASE_URL", database_url)
        .env("SWITCHYARD_MASTER_KEY", MASTER_KEY)
        .env("SWITCHYARD_ALLOW_PRIVATE_TARGETS", "true")
        .env("SWITCHYARD_REQUEST_TIMEOUT_SECS", "3")
        .env("SWITCHYARD_DELIVERY_LEASE_SECS", "5")
        .env("SWITCHYARD_POLL_INTERVAL_MS", "200")
        .env("SWITCHYARD_BOOTSTRAP_CLIENT_ID", ADMIN_ID)
        .env("SWITCHYARD_BOOTSTRAP_CLIENT_SECRET", ADMIN_SECRET)
        // The outage tests make nodes log every refused write; assertions tell what matters.
        .env("SWITCHYARD_LOG", "off")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("switchyard starts");
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    wait_for("the node is ready", || async {
        let ok = http
            .get(format!("{}/readyz", node.base))
            .send()
            .await
            .map(|r| r.status() == 200);
        ok.unwrap_or(false).then_some(())
    })
    .await;
    node
}

pub(crate) async fn token(http: &reqwest::Client, base: &str) -> String {
    let answer: Value = http
        .post(format!("{base}/v3/token"))
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

/// Three subscriptions of one partner to the same sink, told apart by a custom header.
pub(crate) async fn subscribe_three(http: &reqwest::Client, base: &str, token: &str, sink: &Sink) {
    for name in ["a", "b", "c"] {
        let answer = http
            .post(format!("{base}/v3/webhooks/subscriptions"))
            .bearer_auth(token)
            .json(&json!({"events": [{
                "eventType": "OFFER_UNPUBLISHED", "resourceName": "ITEM", "partnerId": "p1",
                "eventUrl": sink.hook_url(), "headers": {"X-Sub": name},
                "retryPolicy": {"type": "delays", "delaysSeconds": [1, 1, 1, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 5, 5]},
            }]}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
}

/// Publishes `n` events spread over the nodes, 24 at a time; returns the ids that were
/// acknowledged. `during(i)` runs after the i-th publish is sent (to kill or cut things).
async fn publish_across(bases: Vec<String>, token: &str, n: usize) -> HashSet<String> {
    let http = reqwest::Client::new();
    let token = Arc::new(token.to_string());
    let bases = Arc::new(bases);
    let mut acknowledged = HashSet::new();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        if tasks.len() >= 24
            && let Some(Ok(Some(id))) = tasks.join_next().await
        {
            acknowledged.insert(id);
        }
        let (http, token, bases) = (http.clone(), token.clone(), bases.clone());
        tasks.spawn(async move {
            let base = &bases[i % bases.len()];
            let response = http
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(token.as_str())
                .json(&json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": "p1", "eventId": format!("evt-{i}"), "payload": {"n": i}}))
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .ok()?;
            // Only a 2xx is an acknowledgment; anything else the publisher would retry.
            response.status().is_success().then(|| format!("evt-{i}"))
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Ok(Some(id)) = result {
            acknowledged.insert(id);
        }
    }
    acknowledged
}

/// (subscription, event id) → the webhook-ids it arrived under, one entry per arrival.
pub(crate) fn arrivals(sink: &Sink) -> HashMap<(String, String), Vec<String>> {
    let mut map: HashMap<(String, String), Vec<String>> = HashMap::new();
    for hook in sink.hooks() {
        let sub = hook.header("x-sub").unwrap_or_default();
        let event = hook.json()["source"]["eventId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        map.entry((sub, event))
            .or_default()
            .push(hook.header("webhook-id").unwrap_or_default());
    }
    map
}

pub(crate) async fn wait_for_all(sink: &Sink, acknowledged: &HashSet<String>, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let seen = arrivals(sink);
        let missing = acknowledged
            .iter()
            .flat_map(|e| ["a", "b", "c"].map(|s| (s.to_string(), e.clone())))
            .filter(|k| !seen.contains_key(k))
            .count();
        if missing == 0 {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("{missing} (event, subscription) pairs were never delivered");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const EVENTS: usize = 5_000;

/// The multi-node tests each run thousands of requests; one at a time keeps the machine usable
/// for the rest of the suite.
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn two_nodes_on_postgres_deliver_every_pair_exactly_once() {
    let base_url = postgres_url();
    let _heavy = HEAVY.lock().await;
    let schema = Schema::new(&base_url).await;
    let sink = Sink::start().await;
    let a = start_node(&schema.url()).await;
    let b = start_node(&schema.url()).await;
    let http = reqwest::Client::new();
    let token = token(&http, &a.base).await;
    subscribe_three(&http, &a.base, &token, &sink).await;

    let acknowledged = publish_across(vec![a.base.clone(), b.base.clone()], &token, EVENTS).await;
    assert_eq!(
        acknowledged.len(),
        EVENTS,
        "both nodes acknowledge every publish"
    );
    wait_for_all(&sink, &acknowledged, Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = arrivals(&sink);
    let twice: Vec<_> = seen.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "no pair delivered twice while no node dies: {:?}",
        twice.first()
    );
    assert_eq!(seen.len(), 3 * EVENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn a_node_killed_mid_run_loses_nothing_and_duplicates_keep_their_webhook_id() {
    let base_url = postgres_url();
    let _heavy = HEAVY.lock().await;
    let schema = Schema::new(&base_url).await;
    let sink = Sink::start().await;
    let a = start_node(&schema.url()).await;
    let mut b = start_node(&schema.url()).await;
    let http = reqwest::Client::new();
    let token = token(&http, &a.base).await;
    subscribe_three(&http, &a.base, &token, &sink).await;

    // Kill B once deliveries are flowing through it.
    let killer = {
        let sink_hooks = sink.state.clone();
        let pid = b.child.id();
        tokio::spawn(async move {
            while sink_hooks.hooks.lock().unwrap().len() < EVENTS {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        })
    };
    let acknowledged = publish_across(vec![a.base.clone(), b.base.clone()], &token, EVENTS).await;
    killer.await.unwrap();
    let _ = b.child.wait();
    assert!(
        acknowledged.len() >= EVENTS / 2,
        "most publishes were acknowledged"
    );
    wait_for_all(&sink, &acknowledged, Duration::from_secs(180)).await;
    for ((sub, event), ids) in arrivals(&sink) {
        let first = &ids[0];
        assert!(
            ids.iter().all(|id| id == first),
            "{sub}/{event} arrived under two identities: {ids:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn cut_database_connections_lose_no_acknowledged_event() {
    let base_url = postgres_url();
    let _heavy = HEAVY.lock().await;
    let schema = Schema::new(&base_url).await;
    let sink = Sink::start().await;
    let a = start_node(&schema.url()).await;
    let http = reqwest::Client::new();
    let token = token(&http, &a.base).await;
    subscribe_three(&http, &a.base, &token, &sink).await;

    let cutter = {
        let sink_hooks = sink.state.clone();
        let schema_name = schema.name.clone();
        let base = base_url.clone();
        tokio::spawn(async move {
            while sink_hooks.hooks.lock().unwrap().len() < 600 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let s = Schema {
                base,
                name: schema_name,
            };
            let cut = s.cut_connections().await;
            std::mem::forget(s); // the test's own Schema drops it
            cut
        })
    };
    let acknowledged = publish_across(vec![a.base.clone()], &token, 2_000).await;
    assert!(cutter.await.unwrap() > 0, "connections were cut mid-run");
    wait_for_all(&sink, &acknowledged, Duration::from_secs(120)).await;
    // The node recovered by itself.
    let ready = http.get(format!("{}/readyz", a.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SWITCHYARD_TEST_POSTGRES_URL); bash .ci/run runs it"]
async fn two_nodes_killed_one_at_a_time_under_load_lose_nothing() {
    // The soak's length: `SWITCHYARD_PG_SOAK_KILLS=N` SIGKILLs (default 4), alternating nodes.
    let kills: usize = std::env::var("SWITCHYARD_PG_SOAK_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(4);
    let base_url = postgres_url();
    let _heavy = HEAVY.lock().await;
    let schema = Schema::new(&base_url).await;
    let sink = Sink::start().await;
    let ports = [free_port(), free_port()];
    let mut nodes = [
        start_node_at(&schema.url(), ports[0], Stdio::inherit()).await,
        start_node_at(&schema.url(), ports[1], Stdio::inherit()).await,
    ];
    let http = reqwest::Client::new();
    let token = token(&http, &nodes[0].base).await;
    subscribe_three(&http, &nodes[0].base, &token, &sink).await;

    // Publishers on both nodes, 8 each, for the whole run; a request to a dead node fails and
    // is not acknowledged.
    let loads: Vec<_> = nodes
        .iter()
        .map(|node| crate::outage::Publisher::start_named(&node.base, &token, 8, node_payload))
        .collect();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("postgres soak: {kills} kills");
    for kill in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(500 + seed % 1500)).await;
        let victim = kill % 2;
        let _ = nodes[victim].child.kill();
        let _ = nodes[victim].child.wait();
        // Down for a moment; the other node goes on ingesting and delivering.
        tokio::time::sleep(Duration::from_millis(300)).await;
        nodes[victim] = start_node_at(&schema.url(), ports[victim], Stdio::inherit()).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut acknowledged = HashSet::new();
    for load in loads {
        acknowledged.extend(load.finish().await.acknowledged);
    }
    eprintln!(
        "postgres soak: {kills} SIGKILLs, {} events acknowledged",
        acknowledged.len()
    );
    assert!(acknowledged.len() > 100, "the load moved");
    wait_for_all(&sink, &acknowledged, Duration::from_secs(180)).await;
    crate::outage::assert_one_webhook_id_per_pair(&sink);
    let delivered = arrivals(&sink).len();
    eprintln!(
        "postgres soak: {delivered} (event, subscription) pairs delivered, {} acknowledged × 3, 0 lost",
        acknowledged.len()
    );
}

fn node_payload(i: u64) -> Value {
    json!({"n": i})
}
