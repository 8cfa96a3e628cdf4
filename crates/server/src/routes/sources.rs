//! `/api/v1/sources`: the HTTP adapters over [`crate::services::sources`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::SourceIdParam;
use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::extract::{Caller, JsonBody, PathId, QueryParams};
use crate::models::{ReconciliationsOut, SourceDeletedOut, SourcesOut};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, TooLarge, Unauthorized, Unavailable,
};
use crate::services::reconciliation::{self, RunsQuery};
use crate::services::sources::{self, CreateSource, PatchSource, SourceView};
use switchyard_core::model::ReconcileRun;

/// Create a source
///
/// An inbound endpoint for one marketplace connection. The answer's `ingestUrl` is what to
/// register with the marketplace (a SellerCenter source's carries a generated token, shown only
/// here). Secrets are write-only.
#[utoipa::path(
    post, path = "/api/v1/sources", tag = "sources", operation_id = "createSource",
    request_body(content = CreateSource, example = json!({
        "kind": "shopify", "name": "Shopify store", "partners": ["seller-1"],
        "secret": "shpss_0123456789abcdef"
    })),
    responses(
        (status = 201, description = "Created.", body = SourceView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = TooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<CreateSource>,
) -> AppResult<impl IntoResponse> {
    let view = sources::create(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// List sources
///
/// The sources of the partners the client manages, secrets masked.
#[utoipa::path(
    get, path = "/api/v1/sources", tag = "sources", operation_id = "listSources",
    responses(
        (status = 200, description = "The sources.", body = SourcesOut),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> AppResult<impl IntoResponse> {
    let views = sources::list(&state, &caller).await?;
    Ok(axum::Json(SourcesOut { sources: views }))
}

/// Get a source
///
/// Secrets masked.
#[utoipa::path(
    get, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "getSource",
    params(SourceIdParam),
    responses(
        (status = 200, description = "The source.", body = SourceView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(sources::get(&state, &caller, &id).await?))
}

/// Change a source
///
/// Changes only the fields given. `secrets` replaces the list; a masked value sent back keeps
/// the stored secret of that id.
#[utoipa::path(
    patch, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "updateSource",
    params(SourceIdParam),
    request_body(content = PatchSource, example = json!({"name": "Shopify store (EU)", "replayWindowSeconds": 600})),
    responses(
        (status = 200, description = "The source as changed.", body = SourceView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    JsonBody(patch): JsonBody<PatchSource>,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        sources::update(&state, &caller, &id, patch).await?,
    ))
}

/// Delete a source
///
/// Its ingest URL stops accepting requests.
#[utoipa::path(
    delete, path = "/api/v1/sources/{id}", tag = "sources", operation_id = "deleteSource",
    params(SourceIdParam),
    responses(
        (status = 200, description = "Deleted.", body = SourceDeletedOut),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    let id = sources::delete(&state, &caller, &id).await?;
    Ok(axum::Json(SourceDeletedOut {
        message: "Successfully deleted source",
        source_id: id,
    }))
}

/// Reconcile a source now
///
/// Asks the marketplace's orders API which orders changed in the window (from the last run's
/// end less the lookback to three minutes ago), and stores, as events with `origin:
/// reconciliation`, each order fact no received webhook stated; they are delivered like
/// received events. The answer is the run: `ordersChecked`, `missing`, `backfilled` (each
/// event made) and `errors` (a refused credential, a rate limit that outlasted the retries;
/// the next run asks for the same window again).
#[utoipa::path(
    post, path = "/api/v1/sources/{id}/reconcile", tag = "sources", operation_id = "reconcileSource",
    params(SourceIdParam),
    responses(
        (status = 200, description = "The run, finished.", body = ReconcileRun),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn reconcile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(
        reconciliation::run_now(&state, &caller, &id).await?,
    ))
}

/// List a source's reconciliations
///
/// Its runs, scheduled and manual, newest first (500 are kept per source).
#[utoipa::path(
    get, path = "/api/v1/sources/{id}/reconciliations", tag = "sources",
    operation_id = "listReconciliations",
    params(SourceIdParam, RunsQuery),
    responses(
        (status = 200, description = "The runs.", body = ReconciliationsOut),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list_reconciliations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
    QueryParams(query): QueryParams<RunsQuery>,
) -> AppResult<impl IntoResponse> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid("limit", "limit is 1 to 500"));
    }
    Ok(axum::Json(ReconciliationsOut {
        reconciliations: reconciliation::list_runs(&state, &caller, &id, limit).await?,
    }))
}
