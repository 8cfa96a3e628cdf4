//! The tail of a batch: COMMIT sent right behind the batch's last statements instead of a round
//! trip after them.
//!
//! tokio-postgres sends a statement the first time its future is polled, provided the statement
//! is prepared already (a statement still to prepare first sends only its `Parse`), and the
//! server runs a connection's statements in the order they were sent. So once every part of a
//! batch (its events, its attempts) has sent its last statement, the COMMIT can be sent too, and
//! the batch costs one round trip less. If a statement ahead of it fails, the transaction is
//! aborted and the server turns the COMMIT into a rollback, which the writer sees as the failed
//! statement's error (not the COMMIT's: it reports success), and the batch is written again with
//! savepoints, as before.
//!
//! A part says it has sent its last statement with [`Share::sent`]; after that it only awaits the
//! answers of what it sent and reads them (columns of the schema's own types), so an error can
//! come only from a statement the server rolls back. A part that cannot say so early says it
//! when it ends; a part that fails never opens the tail, and the writer does not commit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Where a batch's parts say they are done sending; the writer waits on it to send COMMIT.
pub(super) struct Tail {
    /// Parts that may still send a statement.
    sending: AtomicUsize,
    /// Set when the tail opens or is closed; `open` says which.
    settled: AtomicBool,
    open: AtomicBool,
    /// Some part made deliveries due: the COMMIT carries the batch's `NOTIFY`.
    due: AtomicBool,
    changed: Notify,
}

impl Tail {
    pub(super) fn new(parts: usize) -> Tail {
        Tail {
            sending: AtomicUsize::new(parts),
            settled: AtomicBool::new(parts == 0),
            open: AtomicBool::new(parts == 0),
            due: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    /// A part of the batch, which says once that it has sent its last statement.
    pub(super) fn share(&self) -> Share<'_> {
        Share {
            tail: self,
            sent: AtomicBool::new(false),
        }
    }

    /// The batch's parts ended: `ok`, they all succeeded (the tail opens if it had not); not
    /// `ok`, one failed (a tail not yet open never will: nothing is committed).
    pub(super) fn end(&self, ok: bool) {
        self.settle(ok);
    }

    fn settle(&self, open: bool) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.open.store(open, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// Waits until every part has sent its last statement (`true`) or the batch failed first
    /// (`false`). One waiter: the writer.
    pub(super) async fn opened(&self) -> bool {
        loop {
            // A `notify_one` before this wait leaves a permit, so no wake-up is lost.
            if self.settled.load(Ordering::Acquire) {
                return self.open.load(Ordering::Acquire);
            }
            self.changed.notified().await;
        }
    }

    /// Deliveries were made due: the COMMIT is sent with a `NOTIFY`.
    pub(super) fn due(&self) -> bool {
        self.due.load(Ordering::Acquire)
    }
}

/// One part's handle on the [`Tail`].
pub(super) struct Share<'a> {
    tail: &'a Tail,
    sent: AtomicBool,
}

impl Share<'_> {
    /// This part sends nothing more: what follows is only awaiting the answers of what it sent.
    /// Saying it again is harmless.
    pub(super) fn sent(&self) {
        if !self.sent.swap(true, Ordering::AcqRel)
            && self.tail.sending.fetch_sub(1, Ordering::AcqRel) == 1
        {
            self.tail.settle(true);
        }
    }

    /// This part made deliveries due (said before [`Share::sent`]).
    pub(super) fn made_due(&self) {
        self.tail.due.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_when_every_part_has_sent_and_not_after_a_failure() {
        let tail = Tail::new(2);
        let (a, b) = (tail.share(), tail.share());
        a.sent();
        a.sent();
        assert!(
            !tail.settled.load(Ordering::Acquire),
            "one part is still sending"
        );
        b.made_due();
        b.sent();
        assert!(tail.opened().await);
        assert!(tail.due());
        tail.end(false);
        assert!(
            tail.opened().await,
            "a failure after the tail opened does not close it"
        );

        let failed = Tail::new(2);
        failed.share().sent();
        failed.end(false);
        assert!(!failed.opened().await);

        let quiet = Tail::new(1);
        let part = quiet.share();
        quiet.end(true);
        part.sent();
        assert!(quiet.opened().await, "parts that ended open it");
        assert!(!quiet.due());
    }
}
