//! Tenant scope, applied by the store. The hub's requests reach a partner's objects only through
//! [`TenantStore::scoped`], which takes the caller's [`Scope`] (the partners it manages) and
//! applies it to every read and write: a list is narrowed to the scope's partners, an object
//! outside it reads as absent, a write naming a partner outside it is refused. There is no
//! unscoped method for tenant data on [`TenantStore`]; the whole store ([`TenantStore::unscoped`])
//! is for the hub's own work across every partner (dispatch, retention, the performance
//! scheduler) and for tests' fixtures.
//!
//! Why a wrapper rather than a scope argument on every `Store` method: the backends stay plain
//! (one implementation of each query per database), and the scope is applied in one place for
//! both.

use std::sync::Arc;

use jiff::Timestamp;
use switchyard_core::model::{
    AttemptFilter, AttemptRecord, Client, DeliveryFilter, DeliveryId, DeliveryRecord, EventFilter,
    EventId, EventRecord, LoggedAttempt, OutcomeFilter, OutcomeRecord, ReconcileRun,
    RejectionFilter, RejectionRecord, SourceId, SourceRecord, SubscriptionFilter, SubscriptionId,
    SubscriptionRecord,
};

use crate::{
    FailureReport, InsertOutcome, OrderUpdate, QueueDepth, ReconcileLease, RejectionCount,
    ResourceSighting, SourceStats, Store, StoreError, SubscriptionState,
};
use switchyard_core::model::PartnerId;

/// The partners a caller may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every partner: an admin client, or the hub itself acting on an inbound request before
    /// any tenant is known (the URL names the source) or for every partner (the scheduler).
    All,
    /// These partners only.
    Partners(&'a [PartnerId]),
}

impl<'a> Scope<'a> {
    /// What a client may reach: every partner for an admin, else the partners it manages.
    pub fn of(client: &'a Client) -> Scope<'a> {
        if client.admin {
            Scope::All
        } else {
            Scope::Partners(&client.partners)
        }
    }

    pub fn admits(&self, partner: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Partners(partners) => partners.iter().any(|p| p == partner),
        }
    }

    /// A source is within the scope when all of its partners are.
    pub fn admits_all(&self, partners: &[PartnerId]) -> bool {
        partners.iter().all(|p| self.admits(p))
    }

    /// The partners a filter may name: those asked for (`None`: any) within the scope.
    pub fn narrow(&self, asked: Option<&[PartnerId]>) -> Option<Vec<PartnerId>> {
        match (self, asked) {
            (Scope::All, asked) => asked.map(<[PartnerId]>::to_vec),
            (Scope::Partners(mine), None) => Some(mine.to_vec()),
            (Scope::Partners(_), Some(asked)) => {
                Some(asked.iter().filter(|p| self.admits(p)).cloned().collect())
            }
        }
    }
}

/// The store as the hub's request path sees it: tenant data only through a [`Scope`].
#[derive(Clone)]
pub struct TenantStore(Arc<dyn Store>);

impl TenantStore {
    pub fn new(store: Arc<dyn Store>) -> TenantStore {
        TenantStore(store)
    }

    /// A partner's objects, within `scope`.
    pub fn scoped<'a>(&'a self, scope: Scope<'a>) -> Scoped<'a> {
        Scoped {
            store: self.0.as_ref(),
            scope,
        }
    }

    /// The whole store, across every partner: for the hub's own background work (dispatch,
    /// retention, the performance scheduler) and tests' fixtures, never for a request.
    pub fn unscoped(&self) -> &Arc<dyn Store> {
        &self.0
    }

    // What belongs to no tenant.

    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }

    /// A client by id: what every request's credentials are checked against.
    pub async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.0.get_client(id).await
    }

    /// Pending deliveries by state, over every partner (the operator's scrape).
    pub async fn queue_depth(&self, now: Timestamp) -> Result<QueueDepth, StoreError> {
        self.0.queue_depth(now).await
    }

    /// The partners whose console was switched off (read at sign-in, before a scope).
    pub async fn console_disabled_partners(&self) -> Result<Vec<String>, StoreError> {
        self.0.console_disabled_partners().await
    }
}

/// A store seen through a scope. Reads outside it find nothing; writes outside it are refused
/// with [`StoreError::OutOfScope`].
pub struct Scoped<'a> {
    store: &'a dyn Store,
    scope: Scope<'a>,
}

impl Scoped<'_> {
    fn check(&self, partner: &str) -> Result<(), StoreError> {
        if self.scope.admits(partner) {
            Ok(())
        } else {
            Err(StoreError::OutOfScope)
        }
    }

    // --- subscriptions ---

    pub async fn create_subscriptions(
        &self,
        subs: Vec<SubscriptionRecord>,
    ) -> Result<(), StoreError> {
        for sub in &subs {
            self.check(&sub.partner_id)?;
        }
        self.store.create_subscriptions(subs).await
    }

    pub async fn get_subscription(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        let sub = self.store.get_subscription(id).await?;
        Ok(sub.filter(|s| self.scope.admits(&s.partner_id)))
    }

    pub async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let filter = SubscriptionFilter {
            partners: self.scope.narrow(filter.partners.as_deref()),
            ..filter.clone()
        };
        self.store.list_subscriptions(&filter).await
    }

    /// Replaces a subscription within the scope; `false` if there is none (or not here).
    pub async fn update_subscription(&self, sub: SubscriptionRecord) -> Result<bool, StoreError> {
        self.check(&sub.partner_id)?;
        if self.get_subscription(sub.id).await?.is_none() {
            return Ok(false);
        }
        self.store.update_subscription(sub).await
    }

    pub async fn delete_subscription(
        &self,
        id: SubscriptionId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if self.get_subscription(id).await?.is_none() {
            return Ok(false);
        }
        self.store.delete_subscription(id, now).await
    }

    /// A subscription's delivery state; `None` when it is not within the scope.
    pub async fn subscription_state(
        &self,
        sub: &SubscriptionRecord,
    ) -> Result<Option<SubscriptionState>, StoreError> {
        if !self.scope.admits(&sub.partner_id) {
            return Ok(None);
        }
        self.store.subscription_state(sub.id).await.map(Some)
    }

    /// Attempts of a subscription's deliveries since `since` (none outside the scope).
    pub async fn attempts_since(
        &self,
        sub: &SubscriptionRecord,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        if !self.scope.admits(&sub.partner_id) {
            return Ok(Vec::new());
        }
        self.store.attempts_since(sub.id, since, limit).await
    }

    /// A polling subscription's deliveries after `after` (none outside the scope).
    pub async fn poll_deliveries(
        &self,
        sub: &SubscriptionRecord,
        after: Option<(i64, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<crate::Polled>, StoreError> {
        if !self.scope.admits(&sub.partner_id) {
            return Ok(Vec::new());
        }
        self.store.poll_deliveries(sub.id, after, limit).await
    }

    /// A subscription's callback log (empty outside the scope).
    pub async fn list_attempts(
        &self,
        filter: &AttemptFilter,
    ) -> Result<Vec<LoggedAttempt>, StoreError> {
        if self
            .get_subscription(filter.subscription_id)
            .await?
            .is_none()
        {
            return Ok(Vec::new());
        }
        self.store.list_attempts(filter).await
    }

    pub async fn replay(
        &self,
        subscription_id: SubscriptionId,
        since: Timestamp,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if self.get_subscription(subscription_id).await?.is_none() {
            return Err(StoreError::OutOfScope);
        }
        self.store.replay(subscription_id, since, until, now).await
    }

    // --- events ---

    /// Stores an event of a partner within the scope (see [`Store::insert_event`]).
    pub async fn insert_event(
        &self,
        event: EventRecord,
        sighting: Option<ResourceSighting>,
    ) -> Result<InsertOutcome, StoreError> {
        self.check(&event.partner_id)?;
        self.store.insert_event(event, sighting).await
    }

    pub async fn get_event(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let event = self.store.get_event(id).await?;
        Ok(event.filter(|e| self.scope.admits(&e.partner_id)))
    }

    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let filter = EventFilter {
            partners: self.scope.narrow(filter.partners.as_deref()),
            ..filter.clone()
        };
        self.store.list_events(&filter).await
    }

    pub async fn insert_outcome(&self, outcome: OutcomeRecord) -> Result<(), StoreError> {
        self.check(&outcome.partner_id)?;
        self.store.insert_outcome(outcome).await
    }

    pub async fn list_outcomes(
        &self,
        filter: &OutcomeFilter,
    ) -> Result<Vec<OutcomeRecord>, StoreError> {
        let filter = OutcomeFilter {
            partners: self.scope.narrow(filter.partners.as_deref()),
            ..filter.clone()
        };
        self.store.list_outcomes(&filter).await
    }

    // --- deliveries ---

    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let filter = DeliveryFilter {
            partners: self.scope.narrow(filter.partners.as_deref()),
            ..filter.clone()
        };
        self.store.list_deliveries(&filter).await
    }

    pub async fn get_delivery(
        &self,
        id: DeliveryId,
    ) -> Result<Option<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let found = self.store.get_delivery(id).await?;
        Ok(found.filter(|(d, _)| self.scope.admits(&d.partner_id)))
    }

    /// Makes a delivery within the scope due now; `None` if there is none (or not here).
    pub async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: Timestamp,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        if self.get_delivery(id).await?.is_none() {
            return Ok(None);
        }
        self.store.retry_delivery(id, now).await
    }

    // --- sources and rejections ---

    pub async fn create_source(&self, source: SourceRecord) -> Result<(), StoreError> {
        if !self.scope.admits_all(&source.partners) {
            return Err(StoreError::OutOfScope);
        }
        self.store.create_source(source).await
    }

    pub async fn get_source(&self, id: SourceId) -> Result<Option<SourceRecord>, StoreError> {
        let source = self.store.get_source(id).await?;
        Ok(source.filter(|s| self.scope.admits_all(&s.partners)))
    }

    /// Sources all of whose partners are within the scope (and among `partners`, if given).
    pub async fn list_sources(
        &self,
        partners: Option<&[PartnerId]>,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        self.store.list_sources(self.scope.narrow(partners)).await
    }

    pub async fn update_source(&self, source: SourceRecord) -> Result<bool, StoreError> {
        if !self.scope.admits_all(&source.partners) {
            return Err(StoreError::OutOfScope);
        }
        if self.get_source(source.id).await?.is_none() {
            return Ok(false);
        }
        self.store.update_source(source).await
    }

    pub async fn delete_source(&self, id: SourceId) -> Result<bool, StoreError> {
        if self.get_source(id).await?.is_none() {
            return Ok(false);
        }
        self.store.delete_source(id).await
    }

    /// Accepted, duplicate and refused requests of a source within the scope.
    pub async fn source_stats(&self, id: SourceId) -> Result<Option<SourceStats>, StoreError> {
        if self.get_source(id).await?.is_none() {
            return Ok(None);
        }
        self.store.source_stats(id).await.map(Some)
    }

    /// Leases a source's reconciliation within the scope (see [`Store::lease_reconcile`]).
    pub async fn lease_reconcile(
        &self,
        source: SourceId,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
        force: bool,
    ) -> Result<Option<ReconcileLease>, StoreError> {
        if self.get_source(source).await?.is_none() {
            return Err(StoreError::OutOfScope);
        }
        self.store
            .lease_reconcile(source, owner, now, until, force)
            .await
    }

    /// Records a run of a source within the scope (see [`Store::finish_reconcile`]).
    pub async fn finish_reconcile(
        &self,
        run: ReconcileRun,
        owner: &str,
        cursor: Option<Timestamp>,
        next_run_at: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.scope.admits_all(&run.partners) {
            return Err(StoreError::OutOfScope);
        }
        self.store
            .finish_reconcile(run, owner, cursor, next_run_at)
            .await
    }

    /// Runs started at or after `since`, newest first, of one source or of every source, within
    /// the scope: a run is seen when all its partners are.
    pub async fn list_reconcile_runs(
        &self,
        source: Option<SourceId>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ReconcileRun>, StoreError> {
        let mut runs = self.store.list_reconcile_runs(source, since, limit).await?;
        runs.retain(|r| self.scope.admits_all(&r.partners));
        Ok(runs)
    }

    /// Records a refused request. One naming a source is within the scope of the source's
    /// partners; one naming none belongs to no tenant and needs [`Scope::All`].
    pub async fn insert_rejection(&self, rejection: RejectionRecord) -> Result<(), StoreError> {
        if !self.scope.admits_all(&rejection.partners)
            || (rejection.partners.is_empty() && self.scope != Scope::All)
        {
            return Err(StoreError::OutOfScope);
        }
        self.store.insert_rejection(rejection).await
    }

    pub async fn list_rejections(
        &self,
        filter: &RejectionFilter,
    ) -> Result<Vec<RejectionRecord>, StoreError> {
        let filter = RejectionFilter {
            partners: self.scope.narrow(filter.partners.as_deref()),
            ..filter.clone()
        };
        self.store.list_rejections(&filter).await
    }

    pub async fn rejection_summary(
        &self,
        since: Timestamp,
    ) -> Result<Vec<RejectionCount>, StoreError> {
        self.store
            .rejection_summary(self.scope.narrow(None), since)
            .await
    }

    /// Failures per bucket since `since`, of the partners within the scope.
    pub async fn failure_report(
        &self,
        since: Timestamp,
        bucket_secs: i64,
    ) -> Result<FailureReport, StoreError> {
        self.store
            .failure_report(self.scope.narrow(None), since, bucket_secs)
            .await
    }

    // --- orders ---

    pub async fn update_orders(
        &self,
        partner_id: &str,
        changes: Vec<OrderUpdate>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.check(partner_id)?;
        self.store.update_orders(partner_id, changes, now).await
    }

    // --- the console switch ---

    /// Switches the console on or off for a partner within the scope.
    pub async fn set_console_enabled(
        &self,
        partner_id: &str,
        enabled: bool,
    ) -> Result<(), StoreError> {
        self.check(partner_id)?;
        self.store.set_console_enabled(partner_id, enabled).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_narrows_what_a_filter_asks_to_its_partners() {
        let mine: Vec<PartnerId> = vec!["a".into(), "b".into()];
        let scope = Scope::Partners(&mine);
        assert_eq!(scope.narrow(None), Some(mine.clone()));
        let asked: Vec<PartnerId> = vec!["b".into(), "c".into()];
        assert_eq!(scope.narrow(Some(&asked)), Some(vec!["b".into()]));
        assert_eq!(Scope::All.narrow(None), None);
        assert_eq!(Scope::All.narrow(Some(&asked)), Some(asked.clone()));
        assert!(scope.admits_all(&["a".into(), "b".into()]));
        assert!(!scope.admits_all(&["a".into(), "c".into()]));
        // No partners at all: nothing is within a partner scope's reach to ask for.
        assert_eq!(Scope::Partners(&[]).narrow(None), Some(vec![]));
    }
}
