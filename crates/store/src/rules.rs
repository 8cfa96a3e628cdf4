//! The decisions both backends make about what they store, as pure functions: each backend
//! reads the state, asks here, and writes the answer back in the same transaction. Kept here,
//! they are written and tested once; the backends keep only their SQL.
//!
//! Pacing (in-flight caps and token buckets) is the same kind of rule and lives in
//! [`crate::pacing`].

use jiff::Timestamp;

use switchyard_core::model::ResourceSighting;

use crate::{AttemptEffects, FailurePolicy};

/// A subscription's failure streak, as stored on its row.
#[derive(Debug, Clone, PartialEq)]
pub struct Streak {
    pub consecutive_failures: u32,
    pub failing_since: Option<Timestamp>,
    /// While in the future, the breaker is open.
    pub breaker_until: Option<Timestamp>,
    /// Failures in a row that open the breaker.
    pub threshold: u32,
    /// The subscription is ACTIVE.
    pub active: bool,
}

/// What one attempt does to its subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The streak after the attempt.
    pub streak: Streak,
    /// The streak changed and must be written.
    pub changed: bool,
    /// Set the subscription INACTIVE for this reason (it was ACTIVE).
    pub disable: Option<String>,
    pub effects: AttemptEffects,
}

/// The streak after one attempt: a success ends it (closing the breaker, and saying so when it
/// had opened); a failure lengthens it, opens the breaker at the threshold until
/// `policy.reopen_at`, and disables an ACTIVE subscription whose endpoint is gone or whose
/// streak began at or before `policy.disable_if_failing_since`.
pub fn after_attempt(
    streak: &Streak,
    succeeded: bool,
    attempted_at: Timestamp,
    policy: &FailurePolicy,
) -> Verdict {
    if succeeded {
        let had_streak = streak.consecutive_failures > 0
            || streak.failing_since.is_some()
            || streak.breaker_until.is_some();
        return Verdict {
            streak: Streak {
                consecutive_failures: 0,
                failing_since: None,
                breaker_until: None,
                ..streak.clone()
            },
            // In the steady state a success writes nothing, so nodes delivering for one
            // subscription never wait on each other for its row.
            changed: had_streak,
            disable: None,
            effects: AttemptEffects {
                disabled: None,
                recovered: streak.consecutive_failures >= streak.threshold,
            },
        };
    }
    let failures = streak.consecutive_failures.saturating_add(1);
    let failing_since = streak.failing_since.unwrap_or(attempted_at);
    let breaker_until = if failures >= streak.threshold {
        Some(policy.reopen_at)
    } else {
        streak.breaker_until
    };
    let reason = if policy.gone {
        Some("the endpoint answered 410 Gone".to_string())
    } else if failing_since <= policy.disable_if_failing_since {
        Some(format!("failing continuously since {failing_since}"))
    } else {
        None
    };
    let disable = reason.filter(|_| streak.active);
    Verdict {
        streak: Streak {
            consecutive_failures: failures,
            failing_since: Some(failing_since),
            breaker_until,
            threshold: streak.threshold,
            active: streak.active && disable.is_none(),
        },
        changed: true,
        effects: AttemptEffects {
            disabled: disable.clone(),
            recovered: false,
        },
        disable,
    }
}

/// The topic an event is stored under: a resource never seen before takes the sighting's
/// first-sighting topic (an order whose first news is a status change is `order.created`).
pub fn topic_of(
    topic: Option<String>,
    sighting: Option<&ResourceSighting>,
    seen_before: bool,
) -> Option<String> {
    match sighting.and_then(|s| s.first_sighting_topic.as_ref()) {
        Some(first) if !seen_before => Some(first.clone()),
        _ => topic,
    }
}

/// A fan-out target's content filter, with the envelope its deliveries carry; parsed once, when
/// the targets are read, not per event.
#[derive(Debug, Clone)]
pub struct TargetFilter {
    filter: std::sync::Arc<switchyard_core::filter::Filter>,
    envelope: switchyard_core::model::Envelope,
}

impl TargetFilter {
    /// A subscription's stored filter (JSON text) as fan-out applies it; `None` without one. A
    /// stored filter that no longer parses (it was checked when set) filters nothing out.
    pub fn from_stored(filter: Option<&str>, envelope: &str) -> Option<TargetFilter> {
        let value: serde_json::Value = serde_json::from_str(filter?).ok()?;
        let filter = switchyard_core::filter::Filter::parse(&value)
            .map_err(|e| tracing::error!(error = %e, "a stored subscription filter does not parse"))
            .ok()?;
        Some(TargetFilter {
            filter: std::sync::Arc::new(filter),
            envelope: switchyard_core::model::Envelope::parse(envelope).unwrap_or_default(),
        })
    }

    /// Whether an event's delivery passes: the filter matched against the envelope the
    /// subscriber would receive. `by_topic`: the subscription names the event's topic (not
    /// only its native type).
    pub fn passes(&self, event: &switchyard_core::model::EventRecord, by_topic: bool) -> bool {
        let body = switchyard_core::envelope::body(event, self.envelope, by_topic);
        serde_json::from_slice::<serde_json::Value>(&body)
            .is_ok_and(|envelope| self.filter.matches(&envelope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn fresh() -> Streak {
        Streak {
            consecutive_failures: 0,
            failing_since: None,
            breaker_until: None,
            threshold: 3,
            active: true,
        }
    }

    fn policy(reopen: i64, disable_if_since: i64) -> FailurePolicy {
        FailurePolicy {
            reopen_at: t(reopen),
            disable_if_failing_since: t(disable_if_since),
            gone: false,
        }
    }

    #[test]
    fn a_success_without_a_streak_changes_nothing() {
        let v = after_attempt(&fresh(), true, t(10), &policy(70, 0));
        assert!(!v.changed);
        assert_eq!(v.effects, AttemptEffects::default());
    }

    #[test]
    fn failures_open_the_breaker_at_the_threshold_and_a_success_recovers() {
        let mut s = fresh();
        for (i, at) in [10, 20, 30].into_iter().enumerate() {
            let v = after_attempt(&s, false, t(at), &policy(at + 60, 0));
            assert!(v.changed);
            assert_eq!(
                v.streak.failing_since,
                Some(t(10)),
                "the streak began at the first"
            );
            assert_eq!(
                v.streak.breaker_until.is_some(),
                i == 2,
                "open only at the third failure"
            );
            s = v.streak;
        }
        assert_eq!(s.breaker_until, Some(t(90)));
        let v = after_attempt(&s, true, t(100), &policy(0, 0));
        assert!(v.changed && v.effects.recovered);
        assert_eq!(v.streak, fresh());
    }

    #[test]
    fn a_long_streak_or_a_gone_endpoint_disables_an_active_subscription_once() {
        let mut s = fresh();
        s.consecutive_failures = 1;
        s.failing_since = Some(t(100));
        let v = after_attempt(&s, false, t(500), &policy(560, 100));
        assert_eq!(
            v.disable.as_deref(),
            Some("failing continuously since 1970-01-01T00:01:40Z")
        );
        assert_eq!(v.effects.disabled, v.disable);
        assert!(!v.streak.active);
        // Already INACTIVE: the streak goes on, nothing is disabled again.
        let again = after_attempt(&v.streak, false, t(600), &policy(660, 100));
        assert_eq!(again.disable, None);
        assert_eq!(again.effects, AttemptEffects::default());
        let gone = FailurePolicy {
            gone: true,
            ..policy(0, -1)
        };
        let v = after_attempt(&fresh(), false, t(5), &gone);
        assert_eq!(v.disable.as_deref(), Some("the endpoint answered 410 Gone"));
    }

    #[test]
    fn a_never_seen_resource_takes_the_first_sighting_topic() {
        let sighting = ResourceSighting {
            marketplace: "tiktok".into(),
            partner_id: "p".into(),
            resource_kind: "order".into(),
            resource_id: "1".into(),
            status: None,
            first_sighting_topic: Some("order.created".into()),
            claim: None,
        };
        let updated = Some("order.updated".to_string());
        assert_eq!(
            topic_of(updated.clone(), Some(&sighting), false).as_deref(),
            Some("order.created")
        );
        assert_eq!(topic_of(updated.clone(), Some(&sighting), true), updated);
        assert_eq!(topic_of(updated.clone(), None, false), updated);
    }
}
