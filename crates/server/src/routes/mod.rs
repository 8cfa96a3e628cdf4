//! The routes, by surface: `/v3/token`, `/v3/webhooks` (Walmart's API), `/api/v1` (Switchyard's
//! own: publishing, deliveries, replay, health, sources, rejections), `/ingest` (marketplaces'
//! webhooks), and the probes.

pub(crate) mod api;
mod ingest;
pub mod metrics;
pub(crate) mod orders;
pub mod sellercenter;
pub mod sources;
mod token;
pub(crate) mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::AppError;
use crate::models::{StatusOut, TaskDownOut, TasksDownError, TasksDownOut};

pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/docs", get(crate::openapi::docs_page))
        .route("/metrics", get(metrics::scrape))
        .route("/v3/token", post(token::issue))
        .route("/v3/webhooks/eventTypes", get(webhooks::event_types))
        .route(
            "/v3/webhooks/subscriptions",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/v3/webhooks/subscriptions/{id}",
            get(webhooks::get_one)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v3/webhooks/test", post(webhooks::test))
        .route("/api/v1/events", post(api::publish).get(api::list_events))
        .route("/api/v1/events/{id}", get(api::get_event))
        .route("/api/v1/events/{id}/outcome", post(api::report_outcome))
        .route("/api/v1/orders/facts", post(orders::post_facts))
        .route(
            "/sellercenter",
            get(sellercenter::handle).post(sellercenter::handle),
        )
        .route("/api/v1/performance/run", post(orders::run))
        .route("/api/v1/deliveries", get(api::list_deliveries))
        .route("/api/v1/deliveries/{id}", get(api::get_delivery))
        .route("/api/v1/deliveries/{id}/retry", post(api::retry_delivery))
        .route("/api/v1/subscriptions/{id}/replay", post(api::replay))
        .route(
            "/api/v1/subscriptions/{id}/rotate-secret",
            post(api::rotate_secret),
        )
        .route("/api/v1/subscriptions/{id}/health", get(api::health))
        .route("/api/v1/sources", post(sources::create).get(sources::list))
        .route(
            "/api/v1/sources/{id}",
            get(sources::get_one)
                .patch(sources::update)
                .delete(sources::delete),
        )
        .route("/api/v1/rejections", get(api::list_rejections))
        .route("/api/v1/rejections/summary", get(api::rejection_summary))
        .route(
            "/ingest/{source_id}",
            get(ingest::ingest).post(ingest::ingest),
        )
        .route(
            "/ingest/{source_id}/{token}",
            post(ingest::ingest_with_token),
        )
        .route("/ingest/{source_id}/oauth/token", post(ingest::oauth_token))
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(limit_header_size))
        .with_state(state)
}

/// Most bytes of request headers a request may carry (names and values). Heads larger than the
/// HTTP layer's own buffer (about 400 KiB) are refused by it with a bare 431 before this runs.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Refuses a request whose headers are over [`MAX_HEADER_BYTES`], with a JSON error.
async fn limit_header_size(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers are over the limit of {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

async fn healthz() -> impl IntoResponse {
    axum::Json(StatusOut { status: "ok" })
}

/// Ready when the database answers and every supervised background task is up; a 503 names
/// what is not.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "not ready: the database does not answer");
        return AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the database does not answer",
        )
        .retry_after(crate::error::STORE_RETRY_AFTER_SECS)
        .into_response();
    }
    let down = state.tasks.down();
    if !down.is_empty() {
        let names: Vec<_> = down.iter().map(|(name, _)| *name).collect();
        let message = down
            .iter()
            .map(|(name, reason)| format!("{name}: {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!(tasks = ?names, "not ready: background tasks are down");
        let tasks = down
            .into_iter()
            .map(|(name, reason)| TaskDownOut { name, reason })
            .collect();
        // The error envelope every refusal has, with the tasks as data for a probe that wants them.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(TasksDownOut {
                error: TasksDownError {
                    code: "task_down",
                    message: format!("background tasks are down and being restarted ({message})"),
                    tasks,
                },
            }),
        )
            .into_response();
    }
    (StatusCode::OK, axum::Json(StatusOut { status: "ready" })).into_response()
}

async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Parses a path id; anything that is not a UUID cannot name an object, so it is a 404.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(raw).map_err(|_| AppError::not_found(what))
}

/// The partner Walmart's `WM_PARTNER.ID` header names, if any.
pub(crate) fn wm_partner_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("WM_PARTNER.ID").and_then(|v| v.to_str().ok())
}
