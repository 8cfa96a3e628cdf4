//! Outbound HTTP, and the only code that opens sockets to subscriber URLs.
//!
//! - [`guard`]: refuses targets that resolve to loopback, private, link-local and other internal
//!   addresses, checked on the address actually connected to.
//! - [`sender`]: one HTTP request with the subscription's custom headers and auth (Basic, HMAC,
//!   OAuth client credentials with a token cache), classified into an [`sender::SendOutcome`].
//! - [`envelope`]: the body and the Standard Webhooks headers of a delivery.
//! - [`dispatcher`]: leases due deliveries from the store, sends them with bounded concurrency,
//!   and records each attempt with the next step its retry policy gives.

pub mod brokers;
pub mod dispatcher;
pub mod envelope;
pub mod guard;
pub mod sender;
pub mod trace_context;
pub mod transform;

pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use sender::{OutboundRequest, SendOutcome, Sender, SenderConfig};

/// The delivery crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("target refused: {0}")]
    RefusedTarget(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
}
