//! What both stores' writers are sent, and how a writer sorts what it took into one batch.

use tokio::sync::oneshot;

use switchyard_core::model::AttemptRecord;

use crate::{AttemptEffects, DeliveryNext, FailurePolicy, StoreError};

/// One write for a writer: an event to store or an attempt to record (the typed operations of
/// the ack and delivery paths, which a writer runs set-wise and first), or any other write, a
/// backend's closure. Boxed: a channel slot is as large as its largest variant.
pub(crate) enum WriterOp<E, A, J> {
    Event(Box<E>),
    Attempt(Box<A>),
    Job(J),
}

/// A batch's events, attempts and jobs, each in the order they came.
pub(crate) fn sort<E, A, J>(batch: Vec<WriterOp<E, A, J>>) -> (Vec<E>, Vec<A>, Vec<J>) {
    let mut events = Vec::new();
    let mut attempts = Vec::new();
    let mut jobs = Vec::new();
    for op in batch {
        match op {
            WriterOp::Event(e) => events.push(*e),
            WriterOp::Attempt(a) => attempts.push(*a),
            WriterOp::Job(j) => jobs.push(j),
        }
    }
    (events, attempts, jobs)
}

/// Recording one attempt, as a writer runs it.
pub(crate) struct AttemptOp {
    pub attempt: AttemptRecord,
    pub next: DeliveryNext,
    pub owner: String,
    pub policy: FailurePolicy,
    pub reply: oneshot::Sender<Result<AttemptEffects, StoreError>>,
}
