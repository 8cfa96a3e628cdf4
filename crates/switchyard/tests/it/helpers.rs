//! `spawn_app()` starts a whole hub on an ephemeral port with a fresh SQLite file and a clock
//! the test moves; `Sink` is a real HTTP receiver on 127.0.0.1 that records what it gets.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tokio::sync::watch;

use switchyard_core::ManualClock;
use switchyard_core::model::{Access, Client};
use switchyard_core::secrets::hash_client_secret;
use switchyard_marketplaces::{Kind, SignRequest, SignedRequest};
use switchyard_server::{AppState, Hub, Settings};

pub const ADMIN_ID: &str = "admin";
pub const ADMIN_SECRET: &str = "admin-secret-for-tests";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
}

/// Where every test hub's clock starts, never the real now, so that no test depends on the day
/// it runs: Wednesday 2026-11-25, 07:00 Pacific, a whole second (the store keeps milliseconds).
/// A test that needs another instant sets the clock itself (`app.clock.set`).
pub const START: Timestamp = Timestamp::constant(1_795_618_800, 0);

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), configure).await
}

/// A hub on a data directory that may already hold a database (an upgrade's fixture, a
/// restart).
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::new(
        dir.path().to_path_buf(),
        b"test master key 0123456789".to_vec(),
    );
    settings.allow_private_targets = true;
    settings.poll_interval = Duration::from_millis(50);
    settings.request_timeout = Duration::from_secs(5);
    settings.bootstrap_client = Some((ADMIN_ID.into(), ADMIN_SECRET.into()));
    // Tests run reconciliations themselves; the scheduler's are tested on their own.
    settings.reconcile_tick = Duration::from_secs(3600);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    settings.public_url = base.clone();
    configure(&mut settings);
    let clock = ManualClock::new(START);
    // A hub just stopped on the same directory (`restart`) frees its file when its last task
    // ends: try again for a few seconds.
    let mut tries = 0;
    let hub = loop {
        match Hub::build(&settings, Arc::new(clock.clone())).await {
            Ok(hub) => break hub,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("hub builds: {e}"),
        }
    };
    let state = hub.state.clone();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(hub.serve(listener, stopped));
    TestApp {
        base,
        http: reqwest::Client::new(),
        clock,
        state,
        dir,
        stop,
    }
}

/// Stops `app` and starts a hub on its data directory again (its clock starts at [`START`]).
pub async fn restart(mut app: TestApp) -> TestApp {
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().expect("temp dir"));
    let now = {
        use switchyard_core::Clock;
        app.clock.now()
    };
    drop(app);
    let app = spawn_app_in(dir, |_| {}).await;
    app.clock.set(now);
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// An answer: status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    pub async fn token(&self, id: &str, secret: &str) -> String {
        let answer = self
            .http
            .post(format!("{}/v3/token", self.base))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(answer.status(), 200, "token for {id}");
        let body: Value = answer.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_ID, ADMIN_SECRET).await
    }

    /// A partner client with the given scopes, and its token.
    pub async fn partner_client(
        &self,
        id: &str,
        partners: &[&str],
        scopes: &[(&str, Access)],
    ) -> String {
        let secret = format!("{id}-secret");
        self.state
            .store
            .unscoped()
            .create_client(Client {
                id: id.into(),
                name: id.into(),
                secret_hash: hash_client_secret(&secret),
                partners: partners.iter().map(|p| (*p).into()).collect(),
                scopes: scopes
                    .iter()
                    .map(|(r, a)| (r.to_string(), *a))
                    .collect::<BTreeMap<_, _>>(),
                admin: false,
                created_at: self.clock.now_ts(),
            })
            .await
            .expect("client created");
        self.token(id, &secret).await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(reqwest::Method::DELETE, path, token, None).await
    }

    /// Creates one subscription (Walmart shape) and returns (id, signing secret).
    pub async fn subscribe(&self, token: &str, event: Value) -> (String, String) {
        let answer = self
            .post(
                "/v3/webhooks/subscriptions",
                token,
                json!({"events": [event]}),
            )
            .await;
        assert_eq!(answer.status, 200, "subscription created: {}", answer.body);
        let e = &answer.body["events"][0];
        (
            e["subscriptionId"].as_str().expect("id").to_string(),
            e["signingSecret"].as_str().expect("secret").to_string(),
        )
    }

    /// Publishes a Walmart OFFER_UNPUBLISHED event for a partner; returns the event id.
    pub async fn publish(&self, token: &str, partner: &str, payload: Value) -> String {
        let answer = self
            .post(
                "/api/v1/events",
                token,
                json!({"eventType": "OFFER_UNPUBLISHED", "partnerId": partner, "payload": payload}),
            )
            .await;
        assert_eq!(answer.status, 202, "published: {}", answer.body);
        answer.body["eventId"]
            .as_str()
            .expect("eventId")
            .to_string()
    }

    /// Moves the injected clock and tells the dispatcher to look.
    pub fn advance(&self, by: SignedDuration) {
        self.clock.advance(by);
        self.state.dispatcher.wake();
    }

    /// The attempts of a subscription's deliveries, as the API shows them.
    pub async fn deliveries_of(&self, token: &str, subscription: &str) -> Vec<Value> {
        let answer = self
            .get(
                &format!("/api/v1/deliveries?subscriptionId={subscription}"),
                token,
            )
            .await;
        assert_eq!(answer.status, 200);
        answer.body["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn delivery(&self, token: &str, id: &str) -> Value {
        let answer = self.get(&format!("/api/v1/deliveries/{id}"), token).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        use switchyard_core::Clock;
        self.now()
    }
}

/// Polls `check` until it holds, for at most thirty seconds of real time (generous, for a loaded
/// two-core machine; it returns as soon as the condition holds).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("sink got JSON")
    }
}

#[derive(Default)]
pub struct SinkState {
    pub hooks: Mutex<Vec<Received>>,
    pub token_requests: Mutex<Vec<Received>>,
    /// Statuses to answer the next hooks with; 200 once it runs out.
    pub script: Mutex<VecDeque<u16>>,
    /// When set, hooks need `Authorization: Bearer <this>` or get 401.
    pub valid_token: Mutex<Option<String>>,
    pub require_token: std::sync::atomic::AtomicBool,
    pub token_ttl_secs: AtomicU64,
    pub tokens_issued: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1: `POST /hook` records and answers from the script,
/// `POST /token` issues OAuth tokens `tok-1`, `tok-2`, ...
pub struct Sink {
    pub base: String,
    pub state: Arc<SinkState>,
}

impl Sink {
    pub async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        Sink::serve_on(listener).await
    }

    pub async fn serve_on(listener: tokio::net::TcpListener) -> Sink {
        let state = Arc::new(SinkState::default());
        state.token_ttl_secs.store(600, Ordering::SeqCst);
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .route("/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink { base, state }
    }

    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub fn hooks(&self) -> Vec<Received> {
        self.state.hooks.lock().unwrap().clone()
    }

    pub fn hook_count(&self) -> usize {
        self.state.hooks.lock().unwrap().len()
    }

    pub fn answer_with(&self, statuses: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }
}

async fn hook(State(state): State<Arc<SinkState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let authorized = !state.require_token.load(Ordering::SeqCst) || {
        let valid = state.valid_token.lock().unwrap().clone();
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        valid.is_some() && given == valid.map(|t| format!("Bearer {t}"))
    };
    state.hooks.lock().unwrap().push(Received { headers, body });
    if !authorized {
        return StatusCode::UNAUTHORIZED;
    }
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

async fn token(
    State(state): State<Arc<SinkState>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let n = state.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("tok-{n}");
    *state.valid_token.lock().unwrap() = Some(token.clone());
    state
        .token_requests
        .lock()
        .unwrap()
        .push(Received { headers, body });
    axum::Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.token_ttl_secs.load(Ordering::SeqCst),
    }))
}

/// Runs a python3 script, which must succeed; panics when python3 is missing, so that a test
/// that asks for it (such tests are `#[ignore = "needs python3 …"]`, run by `bash .ci/run`)
/// never passes without it.
pub fn python(script: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("this test needs python3 on PATH ({e})"));
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Python prelude that makes the PyPI `standardwebhooks` package judge timestamps at `now`
/// (a test's clock) instead of the machine's clock; everything after it is the package's own
/// code. It ends by importing `Webhook`.
pub fn standardwebhooks_at(now: Timestamp) -> String {
    format!(
        r#"
import datetime as _dt
import standardwebhooks.webhooks as _webhooks
class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp({}, tz or _dt.timezone.utc)
_webhooks.datetime = _FixedDatetime
from standardwebhooks.webhooks import Webhook
"#,
        now.as_second()
    )
}

// ---- Sources and signed webhooks ----

/// Creates a source; returns (id, ingest URL).
pub async fn source(app: &TestApp, token: &str, body: Value) -> (String, String) {
    let answer = app.post("/api/v1/sources", token, body).await;
    assert_eq!(answer.status, 201, "source created: {}", answer.body);
    (
        answer.body["sourceId"].as_str().unwrap().to_string(),
        answer.body["ingestUrl"].as_str().unwrap().to_string(),
    )
}

pub fn sign(
    kind: Kind,
    secret: &str,
    options: Value,
    event_type: &str,
    order: &str,
    event_id: &str,
    now: Timestamp,
) -> SignedRequest {
    kind.sign(&SignRequest {
        event_type: event_type.into(),
        secret: secret.into(),
        options,
        endpoint_url: String::new(),
        partner_id: "seller-1".into(),
        resource_id: order.into(),
        event_id: event_id.into(),
        now,
    })
    .unwrap_or_else(|e| panic!("{kind:?} signs: {e}"))
}

pub async fn send(app: &TestApp, url: &str, signed: &SignedRequest) -> Answer {
    let method: reqwest::Method = signed.method.parse().unwrap();
    let mut request = app
        .http
        .request(method, format!("{url}{}", signed.url_suffix))
        .body(signed.body.clone());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// Polls `check` until it yields a value, for at most thirty seconds of real time.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..1500 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Percent-encodes all but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`), as a path
/// segment or a query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Standard Webhooks signature of a message, computed here from the specification
/// (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the secret's base64 key), not by the
/// hub's code.
pub fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}
