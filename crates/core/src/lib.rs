//! Switchyard's domain, free of I/O: what an event, a subscription and a delivery are, the event
//! catalog with its payload schemas, the retry policies (pure functions of time), the clock that
//! tests can move, the Standard Webhooks and Walmart signatures, the box that encrypts secrets
//! at rest, the seller performance notifications (alarms, KPI report) with their
//! daylight-saving-correct schedule, and the per-hub metrics registry.
//!
//! Everything here is deterministic given its inputs, so it is tested without servers or sleeps.

pub mod catalog;
pub mod clock;
pub mod destination;
pub mod envelope;
pub mod error;
pub mod filter;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod performance;
pub mod retry;
pub mod schedule;
pub mod secrets;
pub mod signatures;
pub mod wire_schema;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CoreError;
