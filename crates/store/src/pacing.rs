//! Pacing, decided inside the claim so it holds for every worker and node: how many of a
//! subscription's due deliveries may be leased now, given its `maxInFlight` and its `rateLimit`
//! (a token bucket whose state lives on the subscription row).
//!
//! Pure arithmetic: each store reads the state in the claim transaction, asks [`select`] which
//! candidates to lease, and writes the spent tokens back in the same transaction.

use std::collections::HashMap;

use jiff::Timestamp;
use uuid::Uuid;

/// One subscription's pacing state, as the claim read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    pub subscription_id: Uuid,
    /// Requests in flight allowed at once; `None`: no cap.
    pub max_in_flight: Option<u32>,
    /// Deliveries of this subscription leased right now (by any node).
    pub in_flight: u32,
    /// Deliveries per second; `None`: no rate limit.
    pub rate_per_sec: Option<f64>,
    /// Largest burst (bucket size).
    pub burst: f64,
    /// Tokens in the bucket at `updated_at` (`None`: never used, a full bucket).
    pub tokens: Option<f64>,
    pub updated_at: Option<Timestamp>,
    /// The breaker is open and its probe time has come: one delivery at a time, as a probe.
    pub probe_only: bool,
}

impl Pace {
    /// Tokens available at `now`.
    fn available(&self, now: Timestamp) -> Option<f64> {
        let rate = self.rate_per_sec?;
        let tokens = match (self.tokens, self.updated_at) {
            (Some(tokens), Some(at)) => {
                let elapsed = now.duration_since(at).as_secs_f64().max(0.0);
                (tokens + elapsed * rate).min(self.burst)
            }
            _ => self.burst,
        };
        Some(tokens)
    }
}

/// What the claim leases, and the bucket each rate-limited subscription is left with.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    pub deliveries: Vec<Uuid>,
    /// (subscription, tokens left at `now`) for every rate-limited subscription that leased.
    pub spent: Vec<(Uuid, f64)>,
    /// Subscriptions whose probe was leased: their breaker waits for its answer.
    pub probes: Vec<Uuid>,
}

/// Picks, in the candidates' order, at most `limit` deliveries that each subscription's pace
/// allows. Candidates of subscriptions without a `Pace` entry are unpaced.
pub fn select(
    now: Timestamp,
    candidates: &[(Uuid, Uuid)],
    paces: &[Pace],
    limit: usize,
) -> Selection {
    let mut room: HashMap<Uuid, (Option<u32>, Option<f64>)> = paces
        .iter()
        .map(|p| {
            let cap = if p.probe_only {
                Some(p.max_in_flight.unwrap_or(1).min(1))
            } else {
                p.max_in_flight
            };
            let in_flight_room = cap.map(|cap| cap.saturating_sub(p.in_flight));
            (p.subscription_id, (in_flight_room, p.available(now)))
        })
        .collect();
    let mut selection = Selection::default();
    for (delivery, subscription) in candidates {
        if selection.deliveries.len() >= limit {
            break;
        }
        match room.get_mut(subscription) {
            None => selection.deliveries.push(*delivery),
            Some((in_flight_room, tokens)) => {
                let slot = in_flight_room.is_none_or(|r| r > 0);
                let token = tokens.is_none_or(|t| t >= 1.0);
                if slot && token {
                    if let Some(r) = in_flight_room {
                        *r -= 1;
                    }
                    if let Some(t) = tokens {
                        *t -= 1.0;
                    }
                    selection.deliveries.push(*delivery);
                    if paces
                        .iter()
                        .any(|p| p.subscription_id == *subscription && p.probe_only)
                    {
                        selection.probes.push(*subscription);
                    }
                }
            }
        }
    }
    for pace in paces {
        if let (Some((_, Some(tokens))), Some(_)) =
            (room.get(&pace.subscription_id), pace.rate_per_sec)
            && pace.available(now) != Some(*tokens)
        {
            selection.spent.push((pace.subscription_id, *tokens));
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: f64) -> Timestamp {
        Timestamp::from_millisecond((secs * 1000.0) as i64).unwrap()
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn unpaced_subscriptions_take_everything_up_to_the_limit() {
        let sub = Uuid::now_v7();
        let candidates: Vec<_> = ids(5).into_iter().map(|d| (d, sub)).collect();
        assert_eq!(select(t(0.0), &candidates, &[], 3).deliveries.len(), 3);
    }

    #[test]
    fn max_in_flight_counts_what_is_already_leased() {
        let sub = Uuid::now_v7();
        let candidates: Vec<_> = ids(5).into_iter().map(|d| (d, sub)).collect();
        let pace = Pace {
            subscription_id: sub,
            max_in_flight: Some(3),
            in_flight: 1,
            rate_per_sec: None,
            burst: 0.0,
            tokens: None,
            updated_at: None,
            probe_only: false,
        };
        let s = select(t(0.0), &candidates, &[pace], 100);
        assert_eq!(
            s.deliveries,
            candidates[..2].iter().map(|c| c.0).collect::<Vec<_>>()
        );
        assert!(s.spent.is_empty());
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_the_burst() {
        let sub = Uuid::now_v7();
        let other = Uuid::now_v7();
        let mut candidates: Vec<_> = ids(100).into_iter().map(|d| (d, sub)).collect();
        candidates.push((Uuid::now_v7(), other));
        let fresh = Pace {
            subscription_id: sub,
            max_in_flight: None,
            in_flight: 0,
            rate_per_sec: Some(50.0),
            burst: 50.0,
            tokens: None,
            updated_at: None,
            probe_only: false,
        };
        let s = select(t(10.0), &candidates, std::slice::from_ref(&fresh), 1000);
        assert_eq!(
            s.deliveries.len(),
            51,
            "a full bucket of 50, and the other subscription's one"
        );
        assert_eq!(s.spent, vec![(sub, 0.0)]);
        // 100 ms later: 5 more tokens.
        let after = Pace {
            tokens: Some(0.0),
            updated_at: Some(t(10.0)),
            ..fresh.clone()
        };
        assert_eq!(
            select(
                t(10.1),
                &candidates[..100],
                std::slice::from_ref(&after),
                1000
            )
            .deliveries
            .len(),
            5
        );
        // Never more than the burst, however long it rested.
        assert_eq!(
            select(t(1000.0), &candidates[..100], &[after], 1000)
                .deliveries
                .len(),
            50
        );
    }
}
