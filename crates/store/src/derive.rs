//! What is derived from a stored event after it was acknowledged: the change it makes to its
//! order's facts, and its entry in the resource search. Neither is needed to acknowledge an
//! event durably, so neither is on the ack path: each backend's deriver reads the events it has
//! not derived yet from a durable record (SQLite: a cursor over the event log; PostgreSQL: a
//! queue table written in the event's own transaction), applies what this module says, and
//! records its progress in the same transaction, so a crash loses nothing and nothing is applied
//! twice. It catches up on start.

use serde_json::Value;

use crate::{OrderChange, OrderUpdate};

/// Events one derive transaction takes at most.
pub(crate) const DERIVE_BATCH: usize = 64;

/// How long the deriver waits after being woken, so that one transaction takes what a burst of
/// events brought rather than one each.
pub(crate) const DERIVE_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// How often the deriver looks without being woken (another process's events, a restart).
pub(crate) const DERIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The order-facts change of a normalized order event (its `resource.type` is `order`).
pub(crate) fn order_update(normalized: &Value) -> Option<OrderUpdate> {
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
        change: OrderChange::Normalized(normalized.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_order_events_change_order_facts() {
        let order = json!({"marketplace": "walmart", "resource": {"type": "order", "id": "PO-1"}});
        let u = order_update(&order).expect("an order");
        assert_eq!(
            (u.marketplace.as_str(), u.po_number.as_str()),
            ("walmart", "PO-1")
        );
        let item = json!({"marketplace": "walmart", "resource": {"type": "item", "id": "SKU"}});
        assert!(order_update(&item).is_none());
        assert!(order_update(&json!({"resource": {"type": "order", "id": "X"}})).is_none());
    }
}
