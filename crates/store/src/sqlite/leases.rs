//! Delivery leases, in memory: a SQLite file serves one process, so no other node can hold a
//! lease, and writing them cost a write per claimed delivery. A claim reads due deliveries on
//! a reader connection and leases them here; recording the attempt frees the lease after its
//! transaction committed. A process that dies takes its leases with it, so its in-flight
//! deliveries are due again at once when it starts.
//!
//! Why a claim never takes a delivery whose attempt was just recorded: the claim reads and
//! leases while holding this table's lock, and a lease is freed (under the same lock) only
//! after the attempt's COMMIT; so a claim that does not see the lease reads after the commit,
//! and sees the delivery moved on.
//!
//! A lease does not run out while its attempt may still be recorded: the attempt's request has
//! its timeouts, and the process that sent it is the one that records it, so nothing is presumed
//! dead (a clock moved far ahead cannot hand an attempt in progress to a second one). Only when a
//! recording failed (the database refused the write) does the lease run out, its hold after the
//! failure, so the delivery is tried again then rather than at once or never. Shutdown releases
//! what is left (`Store::release_leases`).

use std::collections::HashMap;

use uuid::Uuid;

/// One leased delivery.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    /// Who may record its attempt (the dispatcher that claimed it).
    pub owner: String,
    pub subscription: Uuid,
    /// How long the lease holds after a recording of its attempt failed (milliseconds).
    pub hold_ms: i64,
    /// `None` while its attempt may be recorded; after a recording failed, when it runs out.
    pub expires: Option<i64>,
}

impl Lease {
    fn live(&self, now: i64) -> bool {
        self.expires.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Default)]
pub(super) struct Leases {
    by_delivery: HashMap<Uuid, Lease>,
    /// Deliveries the writer has marked superseded in a transaction not committed yet, until
    /// when (ms): a claim reading before that commit would still see them pending, and must not
    /// lease them (under per-resource ordering, one would then go out after its successor).
    superseded: HashMap<Uuid, i64>,
}

/// How long a superseded delivery is held back from claims: far longer than a write batch takes
/// to commit, after which it is no longer pending anyway.
const SUPERSEDED_HOLD_MS: i64 = 10_000;

impl Leases {
    /// Leased and not run out at `now`.
    pub fn alive(&self, delivery: &Uuid, now: i64) -> Option<&Lease> {
        self.by_delivery.get(delivery).filter(|l| l.live(now))
    }

    /// When a lease on `delivery` runs out (`i64::MAX` while its attempt is under way).
    pub fn expiry(&self, delivery: &Uuid) -> Option<i64> {
        self.by_delivery
            .get(delivery)
            .map(|l| l.expires.unwrap_or(i64::MAX))
    }

    /// `owner` holds the lease (run out or not: until someone else claims it).
    pub fn holds(&self, delivery: &Uuid, owner: &str) -> bool {
        self.by_delivery
            .get(delivery)
            .is_some_and(|l| l.owner == owner)
    }

    /// The subscription of `delivery` when `owner` holds its lease (run out or not: until
    /// someone else claims it).
    pub fn held_by(&self, delivery: &Uuid, owner: &str) -> Option<Uuid> {
        self.by_delivery
            .get(delivery)
            .filter(|l| l.owner == owner)
            .map(|l| l.subscription)
    }

    /// The writer marked `delivery` superseded at `now` (not committed yet): hold it back.
    pub fn superseding(&mut self, delivery: Uuid, now: i64) {
        self.superseded.retain(|_, until| *until > now);
        self.superseded
            .insert(delivery, now.saturating_add(SUPERSEDED_HOLD_MS));
    }

    /// Neither leased nor being superseded at `now`: a claim may take it.
    pub fn claimable(&self, delivery: &Uuid, now: i64) -> bool {
        self.alive(delivery, now).is_none()
            && self
                .superseded
                .get(delivery)
                .is_none_or(|until| *until <= now)
    }

    pub fn take(&mut self, delivery: Uuid, lease: Lease) {
        self.by_delivery.insert(delivery, lease);
    }

    pub fn release(&mut self, delivery: Uuid) {
        self.by_delivery.remove(&delivery);
    }

    /// A recording of the delivery's attempt failed at `at`: the lease runs out its hold later.
    pub fn recording_failed(&mut self, delivery: &Uuid, at: i64) {
        if let Some(lease) = self.by_delivery.get_mut(delivery) {
            lease.expires = Some(at.saturating_add(lease.hold_ms));
        }
    }

    /// Drops every lease `owner` holds; how many.
    pub fn release_owner(&mut self, owner: &str) -> u64 {
        let before = self.by_delivery.len();
        self.by_delivery.retain(|_, l| l.owner != owner);
        (before - self.by_delivery.len()) as u64
    }

    /// Drops the leases of a subscription's deliveries (it was deleted).
    pub fn release_subscription(&mut self, subscription: Uuid) {
        self.by_delivery
            .retain(|_, l| l.subscription != subscription);
    }

    /// Live leases of a subscription's deliveries.
    pub fn in_flight(&self, subscription: &Uuid, now: i64) -> u32 {
        self.by_delivery
            .values()
            .filter(|l| l.subscription == *subscription && l.live(now))
            .count() as u32
    }

    /// Live leases.
    pub fn count(&self, now: i64) -> u64 {
        self.by_delivery.values().filter(|l| l.live(now)).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_out_only_after_a_failed_recording() {
        let (d, s) = (Uuid::now_v7(), Uuid::now_v7());
        let mut leases = Leases::default();
        leases.take(
            d,
            Lease {
                owner: "node".into(),
                subscription: s,
                hold_ms: 1_000,
                expires: None,
            },
        );
        assert!(leases.alive(&d, i64::MAX - 1).is_some(), "however late");
        assert_eq!(leases.in_flight(&s, 0), 1);
        leases.recording_failed(&d, 5_000);
        assert!(leases.alive(&d, 5_999).is_some());
        assert!(leases.alive(&d, 6_000).is_none());
        assert!(leases.holds(&d, "node"), "its holder may still record it");
        assert_eq!(leases.release_owner("node"), 1);
        assert_eq!(leases.count(0), 0);
    }

    #[test]
    fn a_delivery_being_superseded_is_held_back_from_claims_until_its_write_commits() {
        let d = Uuid::now_v7();
        let mut leases = Leases::default();
        assert!(leases.claimable(&d, 0));
        leases.superseding(d, 1_000);
        assert!(!leases.claimable(&d, 1_001), "held back");
        assert!(
            leases.claimable(&d, 1_000 + SUPERSEDED_HOLD_MS),
            "not for ever: a rolled-back write frees it"
        );
        leases.superseding(Uuid::now_v7(), 1_000 + SUPERSEDED_HOLD_MS);
        assert!(
            !leases.superseded.contains_key(&d),
            "held-back marks past their time are dropped"
        );
        assert_eq!(leases.count(0), 0, "a hold is no lease");
    }
}
