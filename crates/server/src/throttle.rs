//! Slows down guessing client secrets. After [`FREE_FAILURES`] wrong secrets for one client id,
//! `POST /v3/token` and the console's sign-in refuse that id (429, `Retry-After`) for a time that
//! doubles with each further failure, up to [`MAX_BLOCK_SECS`], whether the next secret is right
//! or not; a success clears the count, and so do 15 quiet minutes. Kept in each node's memory:
//! with several nodes, a guesser gets that many times the attempts, each still slowed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// Wrong secrets for one client id before any is slowed.
pub const FREE_FAILURES: u32 = 5;
/// The longest refusal, in seconds.
pub const MAX_BLOCK_SECS: i64 = 900;
/// Failures older than this are forgotten.
const FORGET_AFTER: SignedDuration = SignedDuration::from_mins(15);
/// Client ids tracked at most; past it the ones quiet longest are dropped.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Timestamp,
    blocked_until: Timestamp,
}

#[derive(Default, Clone)]
pub struct SignInThrottle {
    failures: Arc<Mutex<HashMap<String, Failures>>>,
}

impl SignInThrottle {
    /// `Err(seconds to wait)` while `client_id` is refused.
    pub fn check(&self, client_id: &str, now: Timestamp) -> Result<(), i64> {
        match self.lock().get(client_id) {
            Some(f) if f.blocked_until > now => {
                Err((f.blocked_until.duration_since(now).as_secs() + 1).min(MAX_BLOCK_SECS))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong secret (or an unknown id) and sets the refusal it earns.
    pub fn failed(&self, client_id: &str, now: Timestamp) {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        if failures.len() >= MAX_TRACKED {
            // A flood of fresh ids: the tenth quiet longest go, so the map never passes its
            // bound (those ids start afresh, still slowed after their free failures).
            let mut lasts: Vec<Timestamp> = failures.values().map(|f| f.last).collect();
            lasts.sort();
            let cut = lasts[lasts.len() / 10];
            failures.retain(|_, f| f.last > cut);
        }
        let entry = failures
            .entry(client_id.chars().take(200).collect())
            .or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: now,
            });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count > FREE_FAILURES {
            let exponent = (entry.count - FREE_FAILURES - 1).min(20);
            let seconds = (1i64 << exponent).min(MAX_BLOCK_SECS);
            entry.blocked_until = now + SignedDuration::from_secs(seconds);
        }
    }

    pub fn succeeded(&self, client_id: &str) {
        self.lock().remove(client_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_start_after_the_free_failures_and_double() {
        let throttle = SignInThrottle::default();
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.check("c", t0), Ok(()));
            throttle.failed("c", t0);
        }
        assert_eq!(throttle.check("c", t0), Ok(()));
        throttle.failed("c", t0);
        assert_eq!(throttle.check("c", t0), Err(2));
        let t1 = t0 + SignedDuration::from_secs(1);
        assert_eq!(throttle.check("c", t1), Ok(()));
        throttle.failed("c", t1);
        assert_eq!(throttle.check("c", t1), Err(3));
        // Another id is not affected; a success clears the count.
        assert_eq!(throttle.check("d", t1), Ok(()));
        throttle.succeeded("c");
        assert_eq!(throttle.check("c", t1), Ok(()));
    }

    #[test]
    fn refusals_are_capped_and_quiet_time_forgets() {
        let throttle = SignInThrottle::default();
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        for _ in 0..60 {
            throttle.failed("c", t0);
        }
        assert_eq!(throttle.check("c", t0), Err(MAX_BLOCK_SECS));
        let later = t0 + SignedDuration::from_mins(16);
        assert_eq!(throttle.check("c", later), Ok(()));
        throttle.failed("c", later);
        assert_eq!(throttle.check("c", later), Ok(()));
    }

    #[test]
    fn a_flood_of_fresh_ids_never_grows_the_map_past_its_bound() {
        let throttle = SignInThrottle::default();
        let t0 = Timestamp::from_second(1_800_000_000).expect("time");
        for i in 0..(MAX_TRACKED + 5_000) {
            let at = t0 + SignedDuration::from_millis(i as i64);
            throttle.failed(&format!("guess-{i}"), at);
        }
        assert!(throttle.lock().len() <= MAX_TRACKED);
        // The newest are still counted.
        let last = format!("guess-{}", MAX_TRACKED + 4_999);
        assert!(throttle.lock().contains_key(&last));
    }
}
