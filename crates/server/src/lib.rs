//! Switchyard's HTTP surface and the assembly of a running hub.
//!
//! [`Hub::build`] opens the store, makes the bootstrap client, and wires the dispatcher;
//! [`Hub::serve`] runs the HTTP server and the dispatcher until shutdown. Routes live in
//! [`routes`]; every refusal goes through [`error::AppError`].

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "256"]

pub mod admission;
pub mod console;
pub mod error;
pub mod extract;
pub mod key_fetch;
pub mod models;
pub mod openapi;
pub mod performance;
pub mod route_table;
pub mod routes;
pub mod services;
pub mod source_cache;
pub mod supervise;
pub mod throttle;
pub mod views;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use switchyard_core::Clock;
use switchyard_core::metrics::{self, Metrics};
use switchyard_core::model::Client;
use switchyard_core::secrets::{SecretBox, derive_key, hash_client_secret};
use switchyard_delivery::{Dispatcher, DispatcherConfig, Sender, SenderConfig};
use switchyard_store::{PostgresStore, SqliteStore, Store, StoreError, TenantStore};

/// What the key deriving SellerCenter API keys is derived for.
pub const SELLERCENTER_KEY_PURPOSE: &str = "switchyard/sellercenter-api-keys/v1";

/// Everything a hub needs to start; the binary fills it from flags, environment and file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or a path; `None` means `<data_dir>/switchyard.db`.
    pub database_url: Option<String>,
    pub master_key: Vec<u8>,
    pub allow_private_targets: bool,
    pub delivery_time_scale: f64,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub delivery_concurrency: usize,
    pub poll_interval: Duration,
    /// An admin client to create at start if it does not exist: (id, secret).
    pub bootstrap_client: Option<(String, String)>,
    /// How long a claimed delivery stays leased to this node; `None`: twice the request timeout
    /// plus 30 seconds. A node that dies holds its deliveries this long.
    pub delivery_lease: Option<Duration>,
    /// Events, attempts and rejections older than this are deleted (pending deliveries kept).
    pub retention: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Apply the database schema on start (`false`: `switchyard migrate` does it).
    pub migrate_on_start: bool,
    /// The URL marketplaces reach this hub at: ingest URLs are given under it, and eBay's
    /// challenge hashes it.
    pub public_url: String,
    /// How often the seller performance scheduler looks for a run that is due.
    pub performance_interval: Duration,
    /// How often the reconciler looks for a source whose reconciliation is due.
    pub reconcile_tick: Duration,
    /// Run the dispatcher (`false`: an ingest-only node; others on the database deliver).
    pub deliver: bool,
    /// How long a client may take to send a request's head before it is cut off.
    pub header_read_timeout: Duration,
    /// Connections served at once; one past it is answered 503 `overloaded` and closed.
    pub max_connections: usize,
    /// Requests served at once (the probes and `/metrics` aside); more wait for a place.
    pub max_in_flight: usize,
    /// How long a request waits for a place before it is answered 503 `overloaded`.
    pub queue_deadline: Duration,
    /// After shutdown is asked, how long requests and deliveries in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Settings {
    /// Defaults for a data directory, with a master key given.
    pub fn new(data_dir: PathBuf, master_key: Vec<u8>) -> Settings {
        Settings {
            data_dir,
            database_url: None,
            master_key,
            allow_private_targets: false,
            delivery_time_scale: 1.0,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_body_bytes: 1024 * 1024,
            delivery_concurrency: 64,
            poll_interval: Duration::from_secs(1),
            bootstrap_client: None,
            delivery_lease: None,
            retention: Duration::from_secs(30 * 86_400),
            retention_interval: Duration::from_secs(3600),
            migrate_on_start: true,
            public_url: "http://127.0.0.1:8080".into(),
            performance_interval: Duration::from_secs(60),
            reconcile_tick: Duration::from_secs(30),
            deliver: true,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: 4096,
            max_in_flight: 256,
            queue_deadline: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// What handlers share: cheap to clone (axum clones it for every extractor and middleware that
/// takes `State`), since it is one `Arc` of [`AppStateInner`], whose fields it derefs to.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: AppStateInner) -> AppState {
        AppState(Arc::new(inner))
    }
}

/// The fields of [`AppState`].
pub struct AppStateInner {
    /// Tenant data only through a scope (`store.scoped(Scope::of(caller))`).
    pub store: TenantStore,
    pub clock: Arc<dyn Clock>,
    /// Seals and opens secrets at rest.
    pub secrets: SecretBox,
    /// Signs bearer tokens.
    pub token_key: [u8; 32],
    /// Signs the tokens Walmart sources issue at their OAuth token URL.
    pub source_token_key: [u8; 32],
    /// Signs console session cookies and their CSRF tokens.
    pub console_key: [u8; 32],
    /// Derives each client's SellerCenter API key (`routes::sellercenter::api_key`).
    pub sellercenter_key: [u8; 32],
    /// Sends test notifications.
    pub sender: Sender,
    /// Woken after a write that makes deliveries due.
    pub dispatcher: Arc<Dispatcher>,
    pub max_body_bytes: usize,
    pub retention: Duration,
    pub retention_interval: Duration,
    /// How often the seller performance scheduler looks for a due run.
    pub performance_interval: Duration,
    /// Base of the ingest URLs handed out, without a trailing slash.
    pub public_url: String,
    /// Keys fetched for verifiers (Amazon certificates, eBay public keys), by reference.
    pub keys: key_fetch::KeyFetcher,
    /// This hub's counters and histograms, served at `/metrics`.
    pub metrics: Metrics,
    /// Sources read for ingest, with their secrets opened.
    pub sources: source_cache::SourceCache,
    /// Wrong client secrets per client id, for `POST /v3/token` and the console's sign-in.
    pub sign_in_throttle: throttle::SignInThrottle,
    /// The supervised background tasks and whether each is up; `/readyz` reports them.
    pub tasks: supervise::Tasks,
    /// Replays started from this node's console, with their progress.
    pub replays: console::replays::ReplayJobs,
    /// Bounds the requests served at once.
    pub admission: admission::Admission,
    /// Sends reconciliations' requests to the marketplaces' orders APIs and keeps their tokens.
    pub reconciler: services::reconciliation::Reconciler,
    pub reconcile_tick: Duration,
}

/// A hub ready to serve.
pub struct Hub {
    pub state: AppState,
    /// Whether `serve` runs the dispatcher.
    deliver: bool,
    header_read_timeout: Duration,
    max_connections: usize,
    /// How long requests in flight may take to finish after shutdown is asked.
    shutdown_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("delivery: {0}")]
    Delivery(#[from] switchyard_delivery::DeliveryError),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store a database URL names: `postgres://…` for PostgreSQL (several nodes), else a
/// SQLite file (`sqlite:PATH`, a path, or the data directory's default). `serving` is for the
/// process that delivers; tools that may run beside it pass `false`.
pub async fn open_store(settings: &Settings, serving: bool) -> Result<Arc<dyn Store>, HubError> {
    let url = settings.database_url.clone().unwrap_or_default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::connect(&url, settings.migrate_on_start || !serving).await?;
        return Ok(Arc::new(store));
    }
    let path = match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) => PathBuf::from(path),
        None if url.is_empty() => settings.data_dir.join("switchyard.db"),
        None => PathBuf::from(url),
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let store = if serving {
        SqliteStore::open_for_serving(&path)?
    } else {
        SqliteStore::open(&path)?
    };
    Ok(Arc::new(store))
}

/// Deletes what is older than the retention, in small batches so traffic is never blocked for
/// long; returns what was removed.
pub async fn purge_expired(state: &AppState) -> Result<switchyard_store::PurgeCounts, StoreError> {
    let Ok(retention) = jiff::SignedDuration::try_from(state.retention) else {
        return Ok(Default::default());
    };
    let before = state.clock.now() - retention;
    let mut total = switchyard_store::PurgeCounts::default();
    loop {
        let batch = state.store.unscoped().purge_before(before, 500).await?;
        total.events += batch.events;
        total.deliveries += batch.deliveries;
        total.attempts += batch.attempts;
        total.rejections += batch.rejections;
        if batch.total() == 0 {
            return Ok(total);
        }
        // Let other writes have the writer between batches.
        tokio::task::yield_now().await;
    }
}

/// The kinds of record retention removes, as the `kind` label of its counter.
fn retention_counts(c: &switchyard_store::PurgeCounts) -> [(&'static str, u64); 4] {
    [
        ("events", c.events),
        ("deliveries", c.deliveries),
        ("attempts", c.attempts),
        ("rejections", c.rejections),
    ]
}

async fn run_retention(state: AppState, mut shutdown: watch::Receiver<bool>) {
    // Every kind is exposed from the start, at 0, so rates are defined before the first removal.
    for (kind, n) in retention_counts(&Default::default()) {
        state
            .metrics
            .add(&metrics::RETENTION_REMOVED, &[("kind", kind)], n);
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.retention_interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let purged = purge_expired(&state).await;
        if let Ok(c) = &purged {
            for (kind, n) in retention_counts(c) {
                state
                    .metrics
                    .add(&metrics::RETENTION_REMOVED, &[("kind", kind)], n);
            }
        }
        match purged {
            Ok(c) if c.total() > 0 => tracing::info!(
                events = c.events,
                deliveries = c.deliveries,
                attempts = c.attempts,
                rejections = c.rejections,
                "retention removed old records"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention failed; it runs again later"),
        }
    }
}

impl Hub {
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Hub, HubError> {
        let store = open_store(settings, true).await?;
        let secrets = SecretBox::new(&settings.master_key);
        let token_key = derive_key(&settings.master_key, "switchyard/api-tokens/v1");
        let sender = Sender::new(
            &SenderConfig {
                connect_timeout: settings.connect_timeout,
                request_timeout: settings.request_timeout,
                allow_private_targets: settings.allow_private_targets,
            },
            clock.clone(),
        )?;
        let metrics = Metrics::new();
        let dispatcher = Dispatcher::new(
            store.clone(),
            sender.clone(),
            clock.clone(),
            secrets.clone(),
            DispatcherConfig {
                concurrency: settings.delivery_concurrency,
                lease: settings
                    .delivery_lease
                    .unwrap_or(settings.request_timeout * 2 + Duration::from_secs(30))
                    .max(settings.request_timeout + Duration::from_secs(1)),
                poll_interval: settings.poll_interval,
                time_scale: settings.delivery_time_scale,
                shutdown_grace: settings.shutdown_grace,
                metrics: metrics.clone(),
                transform_limits: Default::default(),
            },
        );
        if let Some((id, secret)) = &settings.bootstrap_client
            && store.get_client(id).await?.is_none()
        {
            store
                .create_client(Client {
                    id: id.clone().into(),
                    name: "bootstrap admin".into(),
                    secret_hash: hash_client_secret(secret),
                    partners: Vec::new(),
                    scopes: BTreeMap::new(),
                    admin: true,
                    created_at: clock.now(),
                })
                .await?;
            tracing::info!(client_id = %id, "created the bootstrap admin client");
        }
        Ok(Hub {
            state: AppState::new(AppStateInner {
                store: TenantStore::new(store),
                clock,
                secrets,
                token_key,
                source_token_key: derive_key(&settings.master_key, "switchyard/source-tokens/v1"),
                console_key: derive_key(&settings.master_key, "switchyard/console-sessions/v1"),
                sellercenter_key: derive_key(&settings.master_key, SELLERCENTER_KEY_PURPOSE),
                sender,
                dispatcher,
                max_body_bytes: settings.max_body_bytes,
                retention: settings.retention,
                retention_interval: settings.retention_interval,
                performance_interval: settings.performance_interval,
                public_url: settings.public_url.trim_end_matches('/').to_string(),
                keys: key_fetch::KeyFetcher::default(),
                sources: Default::default(),
                sign_in_throttle: Default::default(),
                tasks: Default::default(),
                replays: Default::default(),
                admission: admission::Admission::new(
                    settings.max_in_flight,
                    settings.queue_deadline,
                    metrics.clone(),
                ),
                metrics,
                reconciler: services::reconciliation::Reconciler::new(
                    settings.allow_private_targets,
                    settings.request_timeout.max(Duration::from_secs(30)),
                )
                .map_err(HubError::Config)?,
                reconcile_tick: settings.reconcile_tick,
            }),
            deliver: settings.deliver,
            header_read_timeout: settings.header_read_timeout,
            max_connections: settings.max_connections,
            shutdown_grace: settings.shutdown_grace,
        })
    }

    /// The routes, behind admission (a bound on requests served at once), with every answer,
    /// a shed one too, counted by route template, method and status.
    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.state.admission.clone(),
                admission::admit,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.state.metrics.clone(),
                routes::metrics::count_requests,
            ))
    }

    /// Serves on `listener` and delivers until `shutdown` turns true; then stops taking
    /// requests, lets requests and deliveries in flight finish within the shutdown grace (a
    /// delivery cut off is released, to be retried under the same id), and returns.
    ///
    /// The dispatcher, retention and the performance scheduler run supervised: one that panics
    /// or stops is restarted with backoff, and `/readyz` names it while it is down.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), HubError> {
        let state = &self.state;
        let dispatcher = self.deliver.then(|| {
            let dispatcher = state.dispatcher.clone();
            let stop = shutdown.clone();
            supervise::supervise(
                &state.tasks,
                &state.metrics,
                "dispatcher",
                shutdown.clone(),
                move || dispatcher.clone().run(stop.clone()),
            )
        });
        let (retention_state, stop) = (state.clone(), shutdown.clone());
        supervise::supervise(
            &state.tasks,
            &state.metrics,
            "retention",
            shutdown.clone(),
            move || run_retention(retention_state.clone(), stop.clone()),
        );
        let (scheduler_state, stop) = (state.clone(), shutdown.clone());
        supervise::supervise(
            &state.tasks,
            &state.metrics,
            "performance_scheduler",
            shutdown.clone(),
            move || {
                performance::run_scheduler(
                    scheduler_state.clone(),
                    scheduler_state.performance_interval,
                    stop.clone(),
                )
            },
        );
        let (reconciler_state, stop) = (state.clone(), shutdown.clone());
        supervise::supervise(
            &state.tasks,
            &state.metrics,
            "reconciler",
            shutdown.clone(),
            move || {
                services::reconciliation::run_scheduler(
                    reconciler_state.clone(),
                    reconciler_state.reconcile_tick,
                    stop.clone(),
                )
            },
        );
        serve_http(
            listener,
            self.router(),
            HttpLimits {
                header_read_timeout: self.header_read_timeout,
                max_connections: self.max_connections,
                grace: self.shutdown_grace,
            },
            self.state.metrics.clone(),
            shutdown.clone(),
        )
        .await;
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        Ok(())
    }
}

/// Connections the kernel may hold for the hub before it accepts them (Linux caps it at
/// `net.core.somaxconn`, 4096 by default). Larger than tokio's 1024, so that a burst of
/// connections, turned away or not, is queued rather than dropped into SYN retransmits of
/// 1, 3, 7 seconds.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `address` (`host:port`) for [`Hub::serve`], with [`LISTEN_BACKLOG`].
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// How long a client may take to send a request's head, by default. A client that sends its
/// headers byte by byte to hold connections open is cut off after this (axum's own `serve` has
/// no such bound).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The bounds of the HTTP server.
struct HttpLimits {
    header_read_timeout: Duration,
    /// Connections served at once; each costs its buffers and task (about 25 KiB under load).
    max_connections: usize,
    /// How long requests in flight may take to finish after shutdown.
    grace: Duration,
}

/// Serves HTTP/1.1 on `listener` until `shutdown` turns true, then lets requests in flight
/// finish for at most the grace (idle keep-alive connections are closed at once). A connection
/// past `max_connections` is answered 503 at once and closed ([`admission::turn_away`]), so a
/// flood of connections costs bounded memory. Each request carries its peer's address
/// (`ConnectInfo`), as with axum's `serve`.
async fn serve_http(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) {
    let grace = limits.grace;
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = shutdown;
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(place) = connections.clone().try_acquire_owned() else {
            tokio::spawn(admission::turn_away(stream, metrics.clone()));
            continue;
        };
        let service = tower::ServiceBuilder::new()
            .map_request(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(remote));
                    request
                },
            )
            .service(app.clone());
        let connection = http.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(place);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "requests still in flight after the shutdown grace are cut off"
        );
    }
}
