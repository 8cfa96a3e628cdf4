//! What the scenarios are built from: the hub, the bare-HTTP baseline and the load generator run
//! as child processes of this binary (so each one's CPU and memory are its own, and the hub's
//! peak RSS can be read), a sink in this process that answers 200 and counts what reaches it,
//! seeding through the `Store` trait, and the rows of the report.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use switchyard_core::SystemClock;
use switchyard_core::model::{
    Breaker, Client, EventRecord, SubscriptionRecord, SubscriptionStatus,
};
use switchyard_core::retry::RetryPolicy;
use switchyard_core::secrets::{SecretBox, hash_client_secret};
use switchyard_core::signatures::standard_webhooks;
use switchyard_server::{Hub, Settings};
use switchyard_store::{PostgresStore, SqliteStore, Store};

pub const MASTER_KEY: &[u8] = b"bench master key 0123456789";
pub const ADMIN: (&str, &str) = ("bench-admin", "bench-admin-secret-0123456789");
pub const PARTNER: &str = "bench-seller";
pub const WALMART_SECRET: &str = "bench-walmart-secret";

/// Where a hub keeps its data: a SQLite file in a temporary directory, or a fresh schema of the
/// PostgreSQL database `SWITCHYARD_TEST_POSTGRES_URL` names (dropped afterwards).
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    pub fn postgres(url: &str) -> Db {
        Db::Postgres {
            url: url.to_string(),
            schema: format!("bench_{}", Uuid::now_v7().simple()),
        }
    }

    /// The data directory a hub on this database is given.
    /// Makes the database ready for a hub: on PostgreSQL, its schema.
    pub async fn prepare(&self) {
        if let Db::Postgres { url, schema } = self {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("postgres");
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .expect("schema");
        }
    }

    pub fn dir(&self) -> std::path::PathBuf {
        match self {
            Db::Sqlite(dir) => dir.path().to_path_buf(),
            Db::Postgres { .. } => std::env::temp_dir(),
        }
    }

    /// `SWITCHYARD_DATABASE_URL` for the hub.
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite:{}", dir.path().join("switchyard.db").display()),
            Db::Postgres { url, schema } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// The store, opened (and migrated) for seeding before the hub starts.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path().join("switchyard.db")).expect("sqlite"))
            }
            Db::Postgres { url, schema } => Arc::new(
                PostgresStore::connect_in_schema(url, schema, true)
                    .await
                    .expect("postgres"),
            ),
        }
    }

    /// The same PostgreSQL schema reached through another URL (a relay); only for a hub to be
    /// started on: this value removes the schema, not the other.
    pub fn through(&self, url: &str) -> Db {
        match self {
            Db::Postgres { schema, .. } => Db::Postgres {
                url: url.to_string(),
                schema: schema.clone(),
            },
            Db::Sqlite(_) => panic!("only a PostgreSQL database is reached through a URL"),
        }
    }

    /// Drops a PostgreSQL schema; a SQLite directory goes with the value.
    pub async fn remove(self) {
        if let Db::Postgres { url, schema } = self
            && let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
        {
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await;
            // A dropped schema leaves its tables' catalog rows dead. Where autovacuum is off (as
            // on this machine) they pile up over a run and every new connection's catalog
            // lookups slow down: in one `all` run, ingest fell from 5,000 to 1,800 req/s by its
            // last scenarios. Vacuumed here as autovacuum would; not being allowed to is no error.
            let _ = client.batch_execute(VACUUM_CATALOGS).await;
        }
    }
}

/// The catalogs a dropped schema leaves dead rows in.
const VACUUM_CATALOGS: &str = "VACUUM pg_catalog.pg_attribute, pg_catalog.pg_class,
    pg_catalog.pg_depend, pg_catalog.pg_type, pg_catalog.pg_index, pg_catalog.pg_constraint,
    pg_catalog.pg_attrdef, pg_catalog.pg_sequence, pg_catalog.pg_statistic";

/// A child process of this binary: prints its base URL on its first line, runs until its stdin
/// closes.
pub struct Child {
    /// `None` once stopped.
    process: Option<std::process::Child>,
    pub base: String,
}

/// The environment variable naming a command a hub child runs under (its words split at
/// spaces, the hub's own command line after them).
pub const HUB_WRAPPER: &str = "SWITCHYARD_BENCH_HUB_WRAPPER";

impl Child {
    pub async fn spawn(args: Vec<String>) -> Child {
        Self::spawn_with_allocator(args, "").await
    }

    /// As [`Child::spawn`], the child on `allocator` (`crate::allocator`) unless the run puts
    /// every process on one.
    pub async fn spawn_with_allocator(args: Vec<String>, allocator: &'static str) -> Child {
        tokio::task::spawn_blocking(move || {
            let exe = std::env::current_exe().expect("own path");
            // A hub may run under a tool (`valgrind --tool=callgrind ...`), for counting the
            // instructions a scenario's work takes where wall time and CPU time are too noisy.
            let wrapper = std::env::var(HUB_WRAPPER)
                .ok()
                .filter(|_| args.first().is_some_and(|a| a == "hub"));
            let mut words = wrapper.iter().flat_map(|w| w.split_whitespace());
            let mut command = match words.next() {
                Some(tool) => {
                    let mut command = Command::new(tool);
                    command.args(words).arg(exe);
                    command
                }
                None => Command::new(exe),
            };
            if !allocator.is_empty() && std::env::var_os(crate::allocator::VARIABLE).is_none() {
                command.env(crate::allocator::VARIABLE, allocator);
            }
            let mut process = command
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("child process");
            let stdout = process.stdout.take().expect("stdout");
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("child's first line");
            assert!(line.starts_with("http://"), "child {args:?} did not start");
            Child {
                process: Some(process),
                base: line.trim().to_string(),
            }
        })
        .await
        .expect("joined")
    }

    /// (current, peak) resident memory in MiB, from `/proc`.
    pub fn rss_mib(&self) -> (f64, f64) {
        self.process
            .as_ref()
            .map(|p| proc_rss(p.id()))
            .unwrap_or_default()
    }

    /// CPU time (user and system) it has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.process
            .as_ref()
            .map(|p| proc_cpu_seconds(p.id()))
            .unwrap_or_default()
    }

    /// Closes its stdin (it stops gracefully) and waits, killing it after 60 s.
    pub async fn stop(mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        drop(process.stdin.take());
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = process.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = process.kill();
            let _ = process.wait();
        })
        .await
        .expect("joined");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// (current, peak) resident memory of a process in MiB, from `/proc`.
pub fn proc_rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user and system) a process has used, in seconds, from `/proc/<pid>/stat`. CPU
/// per operation is steadier than throughput on a shared machine: it does not count the time a
/// process waited for a core.
pub fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime and stime.
    stat_ticks(&stat, 11..13) / 100.0
}

/// The sum of `fields` of a `/proc/<pid>/stat` line, counted after the command name (which may
/// hold spaces) from its closing parenthesis: 11 and 12 are utime and stime, 13 and 14 the
/// ended children's, in clock ticks (100 per second on Linux).
fn stat_ticks(stat: &str, fields: std::ops::Range<usize>) -> f64 {
    let after: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    fields
        .filter_map(|i| after.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// CPU time every PostgreSQL process on this machine has used, in seconds, counting the ones
/// that have ended: a backend's time moves to the postmaster's children's time when it exits,
/// so the sum only grows by what was used. Zero without a local server.
pub fn database_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0.0;
    for entry in dir.flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(name, _)| name.ends_with("(postgres"))
        {
            // utime, stime, and the ended children's.
            ticks += stat_ticks(&stat, 11..15);
        }
    }
    ticks / 100.0
}

/// Starts a hub as a child process on `db` (its PostgreSQL schema created first if needed).
pub async fn start_hub(db: &Db, deliver: bool) -> Child {
    db.prepare().await;
    let mut args = vec!["hub".to_string(), db.dir().display().to_string(), db.url()];
    if !deliver {
        args.push("--no-deliver".into());
    }
    Child::spawn_with_allocator(args, "jemalloc").await
}

/// Runs the load generator in its own process and reads its measurements.
pub async fn loadgen(args: Vec<String>) -> Value {
    let mut all = vec!["loadgen".to_string()];
    all.extend(args);
    run_child_json(all).await
}

/// Runs this binary with `args` (a child command) to its end and reads the JSON line it prints.
pub async fn run_child_json(args: Vec<String>) -> Value {
    let what = args.first().cloned().unwrap_or_default();
    let output = tokio::task::spawn_blocking(move || {
        let exe = std::env::current_exe().expect("own path");
        Command::new(exe).args(args).output()
    })
    .await
    .expect("joined")
    .expect("child");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{what} failed: {}", String::from_utf8_lossy(&output.stderr)))
}

/// A server answering 200 to everything, counting what it receives; with `receipts`, it also
/// keeps when each order id (`PO-…` in the body) arrived, for end-to-end latency.
pub struct Sink {
    pub url: String,
    state: Arc<SinkState>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct SinkState {
    count: AtomicU64,
    bytes: AtomicU64,
    window: Mutex<Option<(Instant, Instant)>>,
    receipts: Option<Mutex<Vec<(String, i128)>>>,
}

impl Sink {
    pub async fn start(receipts: bool) -> Sink {
        let state = Arc::new(SinkState {
            receipts: receipts.then(|| Mutex::new(Vec::new())),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            url,
            state,
            _task: task,
        }
    }

    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Mean body size received so far.
    pub fn mean_bytes(&self) -> u64 {
        self.state.bytes.load(Ordering::Relaxed) / self.count().max(1)
    }

    /// Waits until `n` requests arrived; `false` on timeout.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Requests per second between the first and the last arrival.
    pub fn rate(&self) -> f64 {
        match *self.state.window.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((first, last)) if last > first => {
                (self.count().saturating_sub(1)) as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// (order id, arrival in Unix nanoseconds) of every request seen.
    pub fn receipts(&self) -> Vec<(String, i128)> {
        self.state
            .receipts
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }
}

async fn receive(State(state): State<Arc<SinkState>>, body: Bytes) -> axum::http::StatusCode {
    let now = Instant::now();
    if let Some(receipts) = &state.receipts
        && let Some(id) = order_id(&body)
    {
        let at = Timestamp::now().as_nanosecond();
        receipts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, at));
    }
    {
        let mut window = state.window.lock().unwrap_or_else(|p| p.into_inner());
        let (first, _) = window.unwrap_or((now, now));
        *window = Some((first, now));
    }
    state.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    state.count.fetch_add(1, Ordering::Relaxed);
    axum::http::StatusCode::OK
}

/// The first `PO-…` string in a body: the order id the load generator put in its webhook.
pub fn order_id(body: &[u8]) -> Option<String> {
    let start = body.windows(3).position(|w| w == b"PO-")?;
    let len = body[start..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&body[start..start + len]).into_owned())
}

/// A bearer token for the admin client.
pub async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let token: Value = http
        .post(format!("{base}/v3/token"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    format!(
        "Bearer {}",
        token["access_token"].as_str().unwrap_or_default()
    )
}

/// Creates a Walmart source for the bench partner; returns its ingest URL.
pub async fn create_source(http: &reqwest::Client, base: &str, bearer: &str) -> String {
    let source: Value = http
        .post(format!("{base}/api/v1/sources"))
        .header("authorization", bearer)
        .json(&json!({"kind": "walmart", "partners": [PARTNER],
                      "secrets": [{"id": "1", "value": WALMART_SECRET}]}))
        .send()
        .await
        .expect("source")
        .json()
        .await
        .expect("source json");
    source["ingestUrl"].as_str().expect("ingestUrl").to_string()
}

/// Subscribes `url` to the bench partner's `PO_CREATED` through the API.
pub async fn subscribe(http: &reqwest::Client, base: &str, bearer: &str, url: &str) {
    let subscribed = http
        .post(format!("{base}/v3/webhooks/subscriptions"))
        .header("authorization", bearer)
        .json(
            &json!({"events": [{"eventType": "PO_CREATED", "resourceName": "ORDER",
                                  "eventUrl": url, "partnerId": PARTNER}]}),
        )
        .send()
        .await
        .expect("subscription");
    assert!(subscribed.status().is_success(), "subscription refused");
}

/// An ACTIVE subscription of the bench partner to `PO_CREATED`, with a real signing secret.
pub fn subscription(url: String) -> SubscriptionRecord {
    let now = Timestamp::now();
    SubscriptionRecord {
        id: Uuid::now_v7().into(),
        partner_id: PARTNER.into(),
        client_id: ADMIN.0.into(),
        event_types: vec!["PO_CREATED".into()],
        event_version: "V1".into(),
        resource_name: "ORDER".into(),
        event_url: url,
        headers: BTreeMap::new(),
        auth_sealed: None,
        status: SubscriptionStatus::Active,
        retry_policy: RetryPolicy::Walmart,
        signing_secret_sealed: SecretBox::new(MASTER_KEY)
            .seal(&standard_webhooks::generate_secret()),
        previous_secret_sealed: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        ordering: Default::default(),
        max_in_flight: None,
        rate_limit: None,
        disabled_reason: None,
        breaker: Breaker::default(),
        auto_disable_after_secs: switchyard_core::model::DEFAULT_AUTO_DISABLE_AFTER_SECS,
        envelope: Default::default(),
        filter: None,
        transform: None,
        coalesce: false,
    }
}

/// Opens `db`, creates the admin client and `n` subscriptions to `{sink}/hook/{i}`; returns the
/// store for further seeding.
pub async fn seed_subscriptions(db: &Db, sink: &str, n: u64) -> Arc<dyn Store> {
    let store = db.open().await;
    seed_admin(&store).await;
    store
        .create_subscriptions(
            (0..n)
                .map(|i| subscription(format!("{sink}/hook/{i}")))
                .collect(),
        )
        .await
        .expect("subscriptions");
    store
}

/// Binds 127.0.0.1 on an ephemeral port, points `settings` at it and builds the hub there;
/// returns the listener to serve on, its base URL and the hub.
pub async fn bind_hub(settings: &mut Settings) -> (tokio::net::TcpListener, String, Hub) {
    let listener = switchyard_server::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    settings.public_url = base.clone();
    let hub = Hub::build(settings, Arc::new(SystemClock))
        .await
        .expect("hub");
    (listener, base, hub)
}

/// The admin client, as the hub's bootstrap would make it.
pub async fn seed_admin(store: &Arc<dyn Store>) {
    store
        .create_client(Client {
            id: ADMIN.0.into(),
            name: "bench admin".into(),
            secret_hash: hash_client_secret(ADMIN.1),
            partners: Vec::new(),
            scopes: BTreeMap::new(),
            admin: true,
            created_at: Timestamp::now(),
        })
        .await
        .expect("client");
}

/// The `n`th order event of a seeding run (`origin` tells runs apart), received at `at`: a
/// Walmart `PO_CREATED` for order `PO-{n}` with its normalized form.
pub fn order_event(origin: &str, n: u64, at: Timestamp) -> EventRecord {
    let po = format!("PO-{n}");
    EventRecord {
        id: Uuid::now_v7().into(),
        origin: origin.to_string(),
        dedup_key: Some(format!("seed-{n}")),
        partner_id: PARTNER.into(),
        event_type: "PO_CREATED".into(),
        event_version: "V1".into(),
        topic: Some("order.created".into()),
        public_event_id: format!("seed-{n}"),
        occurred_at: at,
        received_at: at,
        payload: json!({"purchaseOrderId": po, "orderLines": [{"lineNumber": "1",
            "item": {"sku": "SKU-1", "productName": "Bench item"},
            "charges": [{"chargeAmount": {"currency": "USD", "amount": 19.99}}]}]}),
        normalized: Some(json!({"marketplace": "walmart", "partnerId": PARTNER,
            "resource": {"type": "order", "id": po}, "status": "created"})),
        raw_body: Some(format!("{{\"purchaseOrderId\":\"{po}\"}}").into_bytes()),
        resource_key: Some(format!("order:{po}")),
        headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
        trace_parent: None,
        resource_version: None,
        native_elided: false,
    }
}

/// Stores `events` order events for the bench partner through the store (each fanned out to
/// every subscription there is), as the ingest path would, 1,000 at a time, all from `origin`
/// (a source's id); `at(n)` is the `n`th one's time. Returns how long it took and the first
/// event's id.
pub async fn seed_events_at(
    store: &Arc<dyn Store>,
    origin: &str,
    events: u64,
    at: impl Fn(u64) -> Timestamp,
) -> (Duration, Option<Uuid>) {
    let started = Instant::now();
    let mut first = None;
    let mut i = 0;
    while i < events {
        let mut writes = JoinSet::new();
        for n in i..(i + 1000).min(events) {
            let store = store.clone();
            let event = order_event(origin, n, at(n));
            first.get_or_insert(event.id.0);
            writes.spawn(async move { store.insert_event(event, None).await });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("joined").expect("event stored");
        }
        i = (i + 1000).min(events);
    }
    // What ingest derives after the ack (order facts, the resource search) is part of storing
    // them: done here, it is not left for the scenario's hub to catch up on while measured.
    store.derive_pending().await.expect("events derived");
    (started.elapsed(), first)
}

/// [`seed_events_at`] with every event received now; returns how long it took.
pub async fn seed_events(store: &Arc<dyn Store>, events: u64) -> Duration {
    let origin = Uuid::now_v7().to_string();
    seed_events_at(store, &origin, events, |_| Timestamp::now())
        .await
        .0
}

/// Latency percentiles (milliseconds) of the hub's delivery attempts, from its `/metrics`
/// histogram: each is the upper bound of the bucket it falls in.
pub async fn attempt_latency(base: &str) -> (f64, f64, f64) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap_or_default();
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("switchyard_delivery_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let q = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= total * p / 100.0)
            .map(|(le, _)| le * 1000.0)
            .unwrap_or(0.0)
    };
    (q(50.0), q(95.0), q(99.0))
}

/// The value at percentile `p` of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One line of the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub scenario: String,
    pub store: String,
    pub unit: String,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_mib: f64,
    /// The hub's CPU time per unit of throughput, in microseconds, and the baseline's.
    pub cpu_us: Option<f64>,
    pub baseline_cpu_us: Option<f64>,
    /// What the ratio is taken against, and its throughput.
    pub baseline: Option<(String, f64)>,
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
    pub note: String,
}

pub fn print_table(rows: &[Row]) {
    println!(
        "\n{:<44} {:<8} {:>10} {:<13} {:>8} {:>8} {:>8} {:>9} {:>7} {:>11}  {:<22} met",
        "scenario",
        "store",
        "throughput",
        "unit",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "peak MiB",
        "ratio",
        "CPU us/op",
        "target"
    );
    for r in rows {
        println!(
            "{:<44} {:<8} {:>10.0} {:<13} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>7} {:>11}  {:<22} {}",
            r.scenario,
            r.store,
            r.throughput,
            r.unit,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.peak_rss_mib,
            r.ratio
                .map(|x| format!("{:.0}%", x * 100.0))
                .unwrap_or_else(|| "-".into()),
            match (r.cpu_us, r.baseline_cpu_us) {
                (Some(hub), Some(base)) => format!("{hub:.0} / {base:.0}"),
                (Some(hub), None) => format!("{hub:.0}"),
                _ => "-".into(),
            },
            r.target,
            match r.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
        if !r.note.is_empty() {
            println!("    {}", r.note);
        }
    }
}

pub fn write_report(dir: &std::path::Path, name: &str, report: &Value) {
    std::fs::create_dir_all(dir).expect("report dir");
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("report file");
    let _ = writeln!(
        file,
        "{}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    println!("wrote {}", path.display());
}
