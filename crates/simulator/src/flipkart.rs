//! This marketplace's orders API: not simulated yet (its routes answer 404).

use std::sync::Arc;

use axum::Router;

use crate::Shared;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
