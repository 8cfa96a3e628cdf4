//! `/api/v1/sources`: the HTTP adapters over [`crate::services::sources`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::AppState;
use crate::error::AppResult;
use crate::extract::{Caller, JsonBody, PathId};
use crate::models::{SourceDeletedOut, SourcesOut};
use crate::services::sources::{self, CreateSource, PatchSource};

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<CreateSource>,
) -> AppResult<impl IntoResponse> {
    let view = sources::create(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> AppResult<impl IntoResponse> {
    let views = sources::list(&state, &caller).await?;
    Ok(axum::Json(SourcesOut { sources: views }))
}

pub async fn get_one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> AppResult<impl IntoResponse> {
    Ok(axum::Json(sources::get(&state, &caller, &id).await?))
}

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
