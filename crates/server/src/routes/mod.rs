//! The routes, by surface: `/v3/token`, `/v3/webhooks` (Walmart's API), `/api/v1` (Switchyard's
//! own: publishing, deliveries, replay, health, sources, rejections), `/ingest` (marketplaces'
//! webhooks), and the probes.

pub(crate) mod api;
mod ingest;
pub mod metrics;
pub(crate) mod orders;
mod params;
pub mod sellercenter;
pub mod sources;
mod token;
pub(crate) mod webhooks;

pub(crate) use params::{
    DeliveryIdParam, EventIdParam, PartnerHeader, SourceIdParam, SubscriptionIdParam,
};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::AppError;
use crate::models::{StatusOut, TaskDownOut, TasksDownError, TasksDownOut};

/// The JSON API: every route here is in the OpenAPI document, because the document's operations
/// are read from this router (each handler's `#[utoipa::path]` names its method and path).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(token::issue))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(
            webhooks::get_one,
            webhooks::update,
            webhooks::delete
        ))
        .routes(routes!(webhooks::test))
        .routes(routes!(api::publish, api::list_events))
        .routes(routes!(api::get_event))
        .routes(routes!(api::report_outcome))
        .routes(routes!(orders::post_facts))
        .routes(routes!(sellercenter::handle_get, sellercenter::handle_post))
        .routes(routes!(orders::run))
        .routes(routes!(api::list_deliveries))
        .routes(routes!(api::get_delivery))
        .routes(routes!(api::retry_delivery))
        .routes(routes!(api::replay))
        .routes(routes!(api::rotate_secret))
        .routes(routes!(api::health))
        .routes(routes!(api::try_transform))
        .routes(routes!(api::poll))
        .routes(routes!(sources::create, sources::list))
        .routes(routes!(sources::get_one, sources::update, sources::delete))
        .routes(routes!(sources::reconcile))
        .routes(routes!(sources::list_reconciliations))
        .routes(routes!(api::list_rejections))
        .routes(routes!(api::rejection_summary))
        .routes(routes!(ingest::ingest, ingest::ingest_challenge))
        .routes(routes!(ingest::ingest_with_token))
        .routes(routes!(ingest::oauth_token))
}

pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let (api, _) = api_routes().split_for_parts();
    // Beside the JSON API, and not in its document: the document itself, its page, metrics and
    // the console (`route_table` lists these from this source).
    Router::new()
        .merge(api)
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/docs", get(crate::openapi::docs_page))
        .route("/metrics", get(metrics::scrape))
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

/// Liveness
///
/// Answers while the process serves.
#[utoipa::path(
    get, path = "/healthz", tag = "probes", operation_id = "healthz", security(()),
    responses((status = 200, description = "Serving.", body = StatusOut)),
)]
async fn healthz() -> impl IntoResponse {
    axum::Json(StatusOut { status: "ok" })
}

/// Readiness
///
/// Ready when the database answers and every background task (dispatcher, retention,
/// performance scheduler) is up; a 503 `task_down` lists the tasks down in `error.tasks`.
#[utoipa::path(
    get, path = "/readyz", tag = "probes", operation_id = "readyz", security(()),
    responses(
        (status = 200, description = "The database answers and every task is up.", body = StatusOut),
        (status = 503, description = "The database does not answer (`store_unavailable`, with `Retry-After`), or background tasks are down (`task_down`, listed in `error.tasks`).", body = TasksDownOut),
    ),
)]
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
pub(crate) fn parse_id<Id: std::str::FromStr>(raw: &str, what: &str) -> Result<Id, AppError> {
    raw.parse().map_err(|_| AppError::not_found(what))
}

/// The partner Walmart's `WM_PARTNER.ID` header names, if any.
pub(crate) fn wm_partner_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("WM_PARTNER.ID").and_then(|v| v.to_str().ok())
}
