//! `/api/v1/sources`: the HTTP adapters over [`crate::services::sources`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::SourceIdParam;
use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody, PathId};
use crate::models::{SourceDeletedOut, SourcesOut};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, NotFound, TooLarge, Unauthorized, Unavailable,
};
use crate::services::sources::{self, CreateSource, PatchSource, SourceView};

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
