//! The use cases under the HTTP API, the console and SellerCenter's dialect: one function per use
//! case, taking typed input (and, where a tenant's objects are concerned, the caller) and
//! returning typed output or an [`crate::error::AppError`]. The routes are adapters over them: they
//! read the request, call the service, and write its answer.

pub mod deliveries;
pub mod events;
pub mod publish_event;
pub mod receive_webhook;
pub mod refusals;
pub mod rejections;
pub mod scope;
pub mod source_token;
pub mod sources;
pub mod subscriptions;

use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// An optional id a query names; one that is not a UUID is a 400 naming the field.
pub(crate) fn optional_uuid(raw: Option<&str>, field: &str) -> AppResult<Option<Uuid>> {
    raw.map(|r| {
        Uuid::parse_str(r).map_err(|_| AppError::invalid(field, format!("{field} must be a UUID")))
    })
    .transpose()
}
