//! Reconciliation: asks a marketplace's orders API which orders changed in a window, and
//! backfills, as events, the order facts no webhook announced.
//!
//! A run of one source, manual (`POST /api/v1/sources/{id}/reconcile`) or scheduled (the
//! `reconciler` task), goes:
//!
//! 1. lease the source's reconciliation (one run at a time across nodes; a manual run takes a
//!    lease that is not due yet, never one held by another run);
//! 2. the window: from the last finished run's end less the lookback (the first run: now less
//!    the lookback) to three minutes ago, so that an order whose webhook is still on its way is
//!    left to it;
//! 3. an access token (kept per source until it expires, refreshed once when refused), then
//!    each page, retrying rate limits and transient failures a few times;
//! 4. each order's events (what a webhook would have said of it as it now stands) checked
//!    against the events already received for it; each fact none of them stated is stored as an
//!    event of the source, `origin: reconciliation`, and fans out like a received one. Its claim
//!    on the fact (`order_claims`) makes a webhook that states it later a duplicate, and a
//!    second run that finds it again changes nothing;
//! 5. the run recorded, and the cursor moved to the window's end only when the run had no
//!    error, so a failed run's window is asked again.
//!
//! The marketplaces' clients are sans-I/O (`switchyard_marketplaces::orders`): this module is
//! their only I/O, through the same address guard as deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use switchyard_core::metrics;
use switchyard_core::model::{
    Backfilled, EventFilter, EventRecord, PartnerId, ReconcileRun, RunError, SourceId, SourceRecord,
};
use switchyard_core::secrets::{random_token, random_unit};
use switchyard_delivery::guard::{AddressGuard, GuardedResolver};
use switchyard_marketplaces::Kind;
use switchyard_marketplaces::orders::{
    AccessToken, ApiError, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Window, fact_of,
};
use switchyard_store::InsertOutcome;

use super::receive_webhook::{Arrived, event_of};
use super::reconcile_settings::{base_url, open_credentials};
use super::scope::of_source;
use crate::AppState;
use crate::error::{AppError, AppResult};

/// How long before now a window ends: an order changed later may still have its webhook on
/// the way. (Amazon also refuses a `LastUpdatedBefore` later than two minutes ago.)
const SETTLE: SignedDuration = SignedDuration::from_mins(3);
/// How long a run may hold its lease.
const LEASE: SignedDuration = SignedDuration::from_mins(15);
/// Sends of one request at most (the first and its retries).
const ATTEMPTS: u32 = 4;
/// The longest wait before a retry, whatever `Retry-After` asks.
const MAX_WAIT: Duration = Duration::from_secs(10);
/// Pages read in one run at most: a cursor that never ends is an error, not a loop.
const MAX_PAGES: usize = 2_000;
/// A token is renewed this long before it expires.
const TOKEN_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// A kept access token, for the credentials it was issued to.
struct KeptToken {
    credentials_sealed: String,
    token: AccessToken,
    expires_at: Option<Timestamp>,
}

/// What runs share: the HTTP client, the tokens, this node's name for leases.
pub struct Reconciler {
    client: reqwest::Client,
    guard: AddressGuard,
    tokens: Mutex<HashMap<SourceId, KeptToken>>,
    /// This process, as the owner of the leases it takes.
    owner: String,
}

impl Reconciler {
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Reconciler, String> {
        let guard = AddressGuard { allow_private };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver::shared(guard))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Reconciler {
            client,
            guard,
            tokens: Mutex::new(HashMap::new()),
            owner: format!("reconciler-{}", random_token::<8>()),
        })
    }

    fn kept_token(
        &self,
        source: &SourceRecord,
        sealed: &str,
        now: Timestamp,
    ) -> Option<AccessToken> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(&source.id)
            .filter(|k| k.credentials_sealed == sealed)
            .filter(|k| k.expires_at.is_none_or(|at| at - TOKEN_MARGIN > now))
            .map(|k| k.token.clone())
    }

    fn keep_token(&self, source: SourceId, sealed: &str, token: &AccessToken, now: Timestamp) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(
            source,
            KeptToken {
                credentials_sealed: sealed.to_string(),
                token: token.clone(),
                expires_at: token.expires_in.map(|d| now + d),
            },
        );
    }

    fn forget_token(&self, source: SourceId) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(&source);
    }

    /// Sends one request, retrying what may be retried; a transport failure is transient.
    async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let mut attempt = 1;
        loop {
            let result = self.send_once(request).await;
            let error = match result {
                Ok(response) => match response.status_error() {
                    None => return Ok(response),
                    // Some APIs answer 200 with an error in the body: the client reads those.
                    Some(e) if !e.retryable() => return Ok(response),
                    Some(e) => e,
                },
                Err(e) => e,
            };
            if !error.retryable() || attempt >= ATTEMPTS {
                return Err(error);
            }
            let wait = match &error {
                ApiError::RateLimited {
                    retry_after: Some(after),
                    ..
                } => Duration::try_from(*after).unwrap_or_default(),
                _ => Duration::from_millis(250 << attempt),
            };
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| ApiError::Config(format!("the API URL {:?}: {e}", request.url)))?;
        self.guard
            .check_url(&url)
            .map_err(|e| ApiError::Config(format!("the API URL: {e}")))?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| ApiError::Config(e.to_string()))?;
        let mut builder = self.client.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder
            .send()
            .await
            .map_err(|e| ApiError::Transient(format!("sending: {}", without_url(&e))))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| ApiError::Transient(format!("reading the answer: {}", without_url(&e))))?
            .to_vec();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }
}

/// A reqwest error's text without its URL (a query may carry a signature or a key).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the API");
    }
    text
}

/// How a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// Runs one source's reconciliation now. `Ok(None)`: a scheduled run found it not due (or
/// another node running it). A manual run of a source whose run is under way is a 409.
pub async fn run(
    state: &AppState,
    source: &SourceRecord,
    trigger: Trigger,
) -> AppResult<Option<ReconcileRun>> {
    let Some(settings) = source.reconcile.as_ref() else {
        return Err(AppError::bad_request(
            "reconcile_not_set_up",
            "this source has no reconcile settings (PATCH the source with `reconcile`)",
        ));
    };
    let kind = Kind::parse(&source.kind).ok_or_else(AppError::internal)?;
    let api = super::reconcile_settings::orders_api(kind)?;
    let reconciler = &state.reconciler;
    let store = of_source(state, source);
    let started_at = state.clock.now();
    let lease = store
        .lease_reconcile(
            source.id,
            &reconciler.owner,
            started_at,
            started_at + LEASE,
            trigger == Trigger::Manual,
        )
        .await?;
    let Some(lease) = lease else {
        return match trigger {
            Trigger::Schedule => Ok(None),
            Trigger::Manual => Err(AppError::new(
                axum::http::StatusCode::CONFLICT,
                "reconcile_running",
                "a reconciliation of this source is under way; try again when it has finished",
            )),
        };
    };
    let lookback = SignedDuration::from_secs(settings.lookback_seconds);
    let until = started_at - SETTLE;
    let since =
        (lease.cursor.unwrap_or(until) - lookback).min(until - SignedDuration::from_secs(1));
    let window = Window { since, until };
    let mut run = ReconcileRun {
        run_id: Uuid::now_v7(),
        source_id: source.id,
        partners: source.partners.clone(),
        marketplace: kind.marketplace().to_string(),
        trigger: trigger.as_str().to_string(),
        started_at,
        finished_at: started_at,
        since,
        until,
        orders_checked: 0,
        missing: 0,
        backfilled: Vec::new(),
        errors: Vec::new(),
    };
    let outcome = match open_credentials(&state.secrets, settings) {
        Ok(credentials) => {
            let job = Job {
                state,
                source,
                kind,
                api,
                base_url: base_url(kind, settings),
                credentials: Mutex::new((credentials, settings.credentials_sealed.clone())),
                options: &settings.options,
                window,
            };
            job.read_all(&mut run).await
        }
        Err(_) => Err(RunError {
            code: "config".into(),
            message: "the stored credentials cannot be opened (was the master key changed?)".into(),
        }),
    };
    if let Err(e) = outcome {
        tracing::warn!(source_id = %source.id, code = %e.code, error = %e.message, "reconciliation failed");
        run.errors.push(e);
    }
    run.finished_at = state.clock.now();
    let cursor = run.errors.is_empty().then_some(until);
    let next_run_at = run.finished_at + jittered(settings.interval_seconds);
    store
        .finish_reconcile(run.clone(), &reconciler.owner, cursor, next_run_at)
        .await?;
    count(state, &run);
    Ok(Some(run))
}

/// The interval, give or take a tenth, so that sources set up together do not run together.
fn jittered(interval_seconds: i64) -> SignedDuration {
    let interval = interval_seconds as f64;
    SignedDuration::from_secs_f64(interval * (0.9 + 0.2 * random_unit()))
}

fn count(state: &AppState, run: &ReconcileRun) {
    let source = run.source_id.to_string();
    let outcome = if run.errors.is_empty() {
        "ok"
    } else {
        "failed"
    };
    let m = &state.metrics;
    m.inc(
        &metrics::RECONCILE_RUNS,
        &[("source", &source), ("outcome", outcome)],
    );
    m.add(
        &metrics::RECONCILE_ORDERS,
        &[("source", &source)],
        run.orders_checked,
    );
    m.add(
        &metrics::RECONCILE_MISSING,
        &[("source", &source)],
        run.missing,
    );
    for e in &run.errors {
        m.inc(
            &metrics::RECONCILE_ERRORS,
            &[("source", &source), ("code", &e.code)],
        );
    }
}

/// One run's reading of the API.
struct Job<'a> {
    state: &'a AppState,
    source: &'a SourceRecord,
    kind: Kind,
    api: &'static dyn OrdersApi,
    base_url: String,
    /// The credentials opened, and sealed as stored (a rotated refresh token changes both).
    credentials: Mutex<(Value, String)>,
    options: &'a Value,
    window: Window,
}

fn run_error(e: ApiError) -> RunError {
    RunError {
        code: e.code().into(),
        message: e.to_string(),
    }
}

impl Job<'_> {
    /// The credentials as they stand, and sealed.
    fn credentials(&self) -> (Value, String) {
        self.credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn context<'n>(&'n self, credentials: &'n Value, nonce: &'n str) -> OrdersContext<'n> {
        OrdersContext {
            base_url: &self.base_url,
            credentials,
            options: self.options,
            partner_id: self
                .source
                .partners
                .first()
                .map(|p| p.as_str())
                .unwrap_or_default(),
            now: self.state.clock.now(),
            nonce,
        }
    }

    /// A token: the kept one, or a new one from the API (`None` when the API takes none).
    async fn token(&self, fresh: bool) -> Result<Option<AccessToken>, ApiError> {
        let reconciler = &self.state.reconciler;
        let now = self.state.clock.now();
        let (credentials, sealed) = self.credentials();
        if !fresh && let Some(token) = reconciler.kept_token(self.source, &sealed, now) {
            return Ok(Some(token));
        }
        let nonce = random_token::<16>();
        let ctx = self.context(&credentials, &nonce);
        let Some(request) = self.api.token_request(&ctx)? else {
            return Ok(None);
        };
        let response = reconciler.send(&request).await?;
        let token = self.api.read_token(&ctx, &response)?;
        let sealed = match token.refresh_token.as_deref() {
            Some(rotated)
                if credentials.get("refreshToken").and_then(Value::as_str) != Some(rotated) =>
            {
                self.store_refresh_token(credentials, rotated).await?
            }
            _ => sealed,
        };
        reconciler.keep_token(self.source.id, &sealed, &token, now);
        Ok(Some(token))
    }

    /// Stores the refresh token a token answer rotated to (the one sent no longer works),
    /// sealed in the source's reconcile credentials; answers the credentials sealed anew.
    async fn store_refresh_token(
        &self,
        mut credentials: Value,
        rotated: &str,
    ) -> Result<String, ApiError> {
        let failed = |what: &str| {
            tracing::error!(source_id = %self.source.id, "reconciler: {what}");
            ApiError::Config(format!(
                "the marketplace rotated the refresh token and it could not be stored ({what})"
            ))
        };
        credentials["refreshToken"] = Value::String(rotated.to_string());
        let sealed = self.state.secrets.seal(&credentials.to_string());
        let store = of_source(self.state, self.source);
        let mut current = store
            .get_source(self.source.id)
            .await
            .map_err(|_| failed("reading the source"))?
            .ok_or_else(|| failed("the source is gone"))?;
        let Some(settings) = current.reconcile.as_mut() else {
            return Err(failed("reconciliation was turned off"));
        };
        settings.credentials_sealed = sealed.clone();
        current.updated_at = self.state.clock.now();
        store
            .update_source(current)
            .await
            .map_err(|_| failed("writing the source"))?;
        self.state.sources.forget(self.source.id);
        *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = (credentials, sealed.clone());
        Ok(sealed)
    }

    async fn page(
        &self,
        token: Option<&AccessToken>,
        next: Option<&str>,
    ) -> Result<switchyard_marketplaces::orders::Page, ApiError> {
        let nonce = random_token::<16>();
        let (credentials, _) = self.credentials();
        let ctx = self.context(&credentials, &nonce);
        let request = self.api.page_request(&ctx, token, self.window, next)?;
        let response = self.state.reconciler.send(&request).await?;
        self.api.read_page_of(&ctx, self.window, next, &response)
    }

    /// Reads every page of the window into `run`, backfilling as it goes.
    async fn read_all(&self, run: &mut ReconcileRun) -> Result<(), RunError> {
        let mut token = self.token(false).await.map_err(run_error)?;
        let mut refreshed = false;
        let mut next: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = match self.page(token.as_ref(), next.as_deref()).await {
                Ok(page) => page,
                // A kept token the API no longer takes: one new token, then the same page.
                Err(ApiError::Unauthorized(_)) if token.is_some() && !refreshed => {
                    refreshed = true;
                    self.state.reconciler.forget_token(self.source.id);
                    token = self.token(true).await.map_err(run_error)?;
                    continue;
                }
                Err(e) => return Err(run_error(e)),
            };
            run.orders_checked += page.orders.len() as u64;
            self.backfill(&page.orders, run).await?;
            match page.next {
                Some(cursor) if !seen_cursors.insert(cursor.clone()) => {
                    return Err(run_error(ApiError::Protocol(format!(
                        "the API named page {cursor:?} twice"
                    ))));
                }
                Some(cursor) => next = Some(cursor),
                None => return Ok(()),
            }
        }
        Err(run_error(ApiError::Protocol(format!(
            "more than {MAX_PAGES} pages in one window"
        ))))
    }

    /// Stores, for a page's orders, each fact the events received for them did not state.
    async fn backfill(
        &self,
        orders: &[switchyard_marketplaces::orders::ApiOrder],
        run: &mut ReconcileRun,
    ) -> Result<(), RunError> {
        let now = self.state.clock.now();
        let mut made: Vec<(
            EventRecord,
            Option<switchyard_core::model::ResourceSighting>,
        )> = Vec::new();
        for order in orders {
            for native in &order.events {
                let partner = native
                    .partner_id
                    .as_deref()
                    .and_then(|p| self.source.partners.iter().find(|q| q.as_str() == p))
                    .or(self.source.partners.first())
                    .cloned()
                    .ok_or_else(|| store_error("the source has no partner"))?;
                made.push(event_of(
                    self.kind,
                    self.source,
                    native.clone(),
                    partner,
                    Arrived::Reconciliation,
                    now,
                ));
            }
        }
        let known = self.known_facts(&made).await?;
        let store = of_source(self.state, self.source);
        for (event, sighting) in made {
            let Some(key) = event.resource_key.clone() else {
                continue;
            };
            let (fact, status) = fact_and_status(&event);
            if known.contains(&(event.partner_id.clone(), key.clone(), fact))
                || status.is_some_and(|s| {
                    known.contains(&(event.partner_id.clone(), key.clone(), format!("status|{s}")))
                })
            {
                continue;
            }
            let resource_id = key
                .split_once(':')
                .map_or(key.as_str(), |(_, id)| id)
                .to_string();
            match store.insert_event(event, sighting).await {
                Ok(InsertOutcome::Created {
                    event_id,
                    deliveries,
                }) => {
                    // The topic as stored: a first sighting may have set it.
                    let topic = match store.get_event(event_id).await {
                        Ok(stored) => stored.and_then(|e| e.topic),
                        Err(e) => return Err(store_error(&e.to_string())),
                    };
                    run.missing += 1;
                    run.backfilled.push(Backfilled {
                        event_id,
                        resource_id,
                        topic,
                    });
                    if deliveries > 0 {
                        self.state.dispatcher.wake();
                    }
                }
                // A webhook, or an earlier run, stated it first.
                Ok(InsertOutcome::Duplicate { .. }) => {}
                Err(e) => return Err(store_error(&e.to_string())),
            }
        }
        Ok(())
    }

    /// The facts (and `status|…`) the events already stored for these orders state, by
    /// partner and resource key. Events of any source of the same marketplace count: a seller
    /// with two sources for one marketplace is told each fact once.
    async fn known_facts(
        &self,
        made: &[(
            EventRecord,
            Option<switchyard_core::model::ResourceSighting>,
        )],
    ) -> Result<HashSet<(PartnerId, String, String)>, RunError> {
        let keys: Vec<String> = made
            .iter()
            .filter_map(|(e, _)| e.resource_key.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut known = HashSet::new();
        if keys.is_empty() {
            return Ok(known);
        }
        for chunk in keys.chunks(200) {
            let history = of_source(self.state, self.source)
                .list_events(&EventFilter {
                    marketplace: Some(self.kind.marketplace().to_string()),
                    resource_keys: Some(chunk.to_vec()),
                    limit: 10_000,
                    ..EventFilter::default()
                })
                .await
                .map_err(|e| store_error(&e.to_string()))?;
            for event in history {
                let Some(key) = event.resource_key.clone() else {
                    continue;
                };
                let (fact, status) = fact_and_status(&event);
                if let Some(status) = status {
                    known.insert((
                        event.partner_id.clone(),
                        key.clone(),
                        format!("status|{status}"),
                    ));
                }
                known.insert((event.partner_id.clone(), key, fact));
            }
        }
        Ok(known)
    }
}

/// The fact an event states, and the order status it names.
fn fact_and_status(event: &EventRecord) -> (String, Option<String>) {
    let status = event
        .normalized
        .as_ref()
        .and_then(|n| n.get("status"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    (fact_of(event.topic.as_deref(), status.as_deref()), status)
}

fn store_error(message: &str) -> RunError {
    RunError {
        code: "store".into(),
        message: message.to_string(),
    }
}

/// The scheduler: every `tick`, runs each reconciling source that is due, one after another.
pub async fn run_scheduler(state: AppState, tick: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let sources = match state.store.unscoped().list_sources(None).await {
            Ok(sources) => sources,
            Err(e) => {
                tracing::warn!(error = %e, "reconciler: listing sources failed; tried next tick");
                continue;
            }
        };
        for source in sources.iter().filter(|s| s.reconcile.is_some()) {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = run(&state, source, Trigger::Schedule).await {
                tracing::warn!(source_id = %source.id, error = ?e, "reconciler: a run failed");
            }
        }
    }
}

/// `POST /api/v1/sources/{id}/reconcile`: a run now, for a source the caller may see.
pub async fn run_now(
    state: &AppState,
    caller: &switchyard_core::model::Client,
    id: &str,
) -> AppResult<ReconcileRun> {
    let source = super::sources::visible_source(state, caller, id).await?;
    run(state, &source, Trigger::Manual)
        .await?
        .ok_or_else(AppError::internal)
}

/// `GET /api/v1/sources/{id}/reconciliations`: a source's runs, newest first.
pub async fn list_runs(
    state: &AppState,
    caller: &switchyard_core::model::Client,
    id: &str,
    limit: u32,
) -> AppResult<Vec<ReconcileRun>> {
    let source = super::sources::visible_source(state, caller, id).await?;
    Ok(super::scope::tenant(state, caller)
        .list_reconcile_runs(Some(source.id), Timestamp::UNIX_EPOCH, limit)
        .await?)
}

/// `GET /api/v1/sources/{id}/reconciliations`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// At most this many runs (1 to 500; default 50).
    pub limit: Option<u32>,
}
