//! What is derived from a stored event after it was acknowledged: the change it makes to its
//! order's facts, and its entry in the resource search. Neither is needed to acknowledge an
//! event durably, so neither is on the ack path: each backend's deriver reads the events it has
//! not derived yet from a durable record (SQLite: a cursor over the event log; PostgreSQL: a
//! queue table written in the event's own transaction), applies what this module says, and
//! records its progress in the same transaction, so a crash loses nothing and nothing is applied
//! twice. It catches up on start.

use std::collections::BTreeMap;

use serde_json::Value;

use switchyard_core::performance::OrderFacts;

use crate::{OrderChange, OrderUpdate, StoreError};

/// Events one derive transaction takes at most.
pub(crate) const DERIVE_BATCH: usize = 64;

/// How long the deriver waits after being woken, so that one transaction takes what a burst of
/// events brought rather than one each.
pub(crate) const DERIVE_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// How often the deriver looks without being woken (another process's events, a restart).
pub(crate) const DERIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The order-facts change of a normalized order event (its `resource.type` is `order`), which
/// it keeps (moved, not copied: a copy of the whole form was a tenth of deriving an event).
pub(crate) fn order_update(normalized: Value) -> Option<OrderUpdate> {
    if normalized["resource"]["type"] != "order" {
        return None;
    }
    Some(OrderUpdate {
        marketplace: normalized["marketplace"].as_str()?.to_string(),
        po_number: match &normalized["resource"]["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        },
        change: OrderChange::Normalized(normalized),
    })
}

/// An event the deriver takes, as either store reads it.
pub(crate) struct PendingEvent {
    /// Names the event in errors (its id or log position).
    pub label: String,
    pub partner_id: String,
    pub received_at: i64,
    pub normalized: Option<String>,
    pub native_elided: bool,
    pub payload: Option<String>,
    /// Read only when it is the payload the normalized form refers to.
    pub raw_body: Option<Vec<u8>>,
}

impl PendingEvent {
    /// The order-facts change of the event, with its normalized form whole (the payload
    /// put back as its `native`); `None` for an event not about an order.
    fn order_update(&self) -> Result<Option<OrderUpdate>, StoreError> {
        let Some(text) = &self.normalized else {
            return Ok(None);
        };
        let corrupt =
            |e: serde_json::Error| StoreError::Corrupt(format!("event {}: {e}", self.label));
        let mut normalized: Value = serde_json::from_str(text).map_err(corrupt)?;
        if normalized["resource"]["type"] != "order" {
            return Ok(None);
        }
        if self.native_elided {
            let native = match (&self.payload, &self.raw_body) {
                (Some(text), _) => serde_json::from_str(text).map_err(corrupt)?,
                (None, Some(raw)) => serde_json::from_slice(raw).map_err(corrupt)?,
                (None, None) => Value::Null,
            };
            if let Some(map) = normalized.as_object_mut() {
                map.insert("native".into(), native);
            }
        }
        Ok(order_update(normalized))
    }
}

/// (partner, marketplace, order number).
pub(crate) type OrderKey = (String, String, String);

/// The order changes of a batch of events, by order, each order's in the events' order, with
/// the time of its last event.
pub(crate) fn orders_of(
    pending: &[PendingEvent],
) -> Result<BTreeMap<OrderKey, (Vec<OrderUpdate>, i64)>, StoreError> {
    let mut orders: BTreeMap<OrderKey, (Vec<OrderUpdate>, i64)> = BTreeMap::new();
    for p in pending {
        if let Some(update) = p.order_update()? {
            let entry = orders
                .entry((
                    p.partner_id.clone(),
                    update.marketplace.clone(),
                    update.po_number.clone(),
                ))
                .or_default();
            entry.0.push(update);
            entry.1 = p.received_at;
        }
    }
    Ok(orders)
}

/// Applies an order's changes in order; one that does not apply is left out, never the others.
pub(crate) fn apply_changes(facts: &mut OrderFacts, changes: &[OrderUpdate]) {
    for change in changes {
        let before = facts.clone();
        if let Err(e) = change.change.apply(facts) {
            tracing::warn!(error = %e, order = %change.po_number, "order facts of an event left out");
            *facts = before;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_order_events_change_order_facts() {
        let order = json!({"marketplace": "walmart", "resource": {"type": "order", "id": "PO-1"}});
        let u = order_update(order).expect("an order");
        assert_eq!(
            (u.marketplace.as_str(), u.po_number.as_str()),
            ("walmart", "PO-1")
        );
        let item = json!({"marketplace": "walmart", "resource": {"type": "item", "id": "SKU"}});
        assert!(order_update(item).is_none());
        assert!(order_update(json!({"resource": {"type": "order", "id": "X"}})).is_none());
    }
}
