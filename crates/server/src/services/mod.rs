//! The use cases under the HTTP API, the console and SellerCenter's dialect: one function per use
//! case, taking typed input (and, where a tenant's objects are concerned, the caller) and
//! returning typed output or an [`crate::error::AppError`]. The routes are adapters over them: they
//! read the request, call the service, and write its answer.

pub mod deliveries;
pub mod publish_event;
pub mod receive_webhook;
pub mod refusals;
pub mod scope;
pub mod source_token;
pub mod sources;
pub mod subscriptions;
