//! Keys the verifiers need from elsewhere (Amazon SNS signing certificates, eBay public keys):
//! kept for an hour, fetched once however many requests ask for one at the same time, a failed
//! fetch remembered and retried only after a backoff that doubles, and all fetches together held
//! to a rate. A flood of forged requests naming random keys therefore costs at most
//! [`BURST`] fetches, then [`PER_SECOND`] a second, and neither the cache nor the failures
//! grow past their bounds.
//!
//! Kept here rather than taken from a crate: it is a few maps under one lock, and its rules
//! (what a failure costs, which clock) are the verifiers' own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

use switchyard_marketplaces::KeyRef;

/// How long a fetched key is used.
pub const KEY_TTL: SignedDuration = SignedDuration::from_hours(1);
/// Keys kept at most; past it the oldest go.
pub const MAX_KEYS: usize = 1_000;
/// Failures remembered at most; past it the oldest go.
pub const MAX_FAILURES: usize = 10_000;
/// The first retry after a failed fetch waits this long, doubling up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: SignedDuration = SignedDuration::from_secs(30);
pub const MAX_BACKOFF: SignedDuration = SignedDuration::from_mins(30);
/// Fetches allowed at once, and over time.
pub const BURST: f64 = 20.0;
pub const PER_SECOND: f64 = 2.0;

#[derive(Default)]
struct State {
    keys: HashMap<KeyRef, (Vec<u8>, Timestamp)>,
    /// Failed keys: when they may be tried again, and how many times they failed in a row.
    failed: HashMap<KeyRef, (Timestamp, u32)>,
    /// One lock per key being fetched, so concurrent askers wait for one fetch.
    in_flight: HashMap<KeyRef, Arc<tokio::sync::Mutex<()>>>,
    /// The fetch budget: tokens, and when they were counted.
    tokens: Option<(f64, Instant)>,
}

#[derive(Default, Clone)]
pub struct KeyFetcher {
    state: Arc<Mutex<State>>,
}

impl KeyFetcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A key fetched within [`KEY_TTL`] of `now`.
    pub fn cached(&self, key: &KeyRef, now: Timestamp) -> Option<Vec<u8>> {
        self.lock()
            .keys
            .get(key)
            .filter(|(_, at)| now.duration_since(*at) < KEY_TTL)
            .map(|(bytes, _)| bytes.clone())
    }

    fn failed_until(&self, key: &KeyRef, now: Timestamp) -> Option<Timestamp> {
        self.lock()
            .failed
            .get(key)
            .map(|(until, _)| *until)
            .filter(|until| *until > now)
    }

    /// Spends one fetch of the budget, if there is one.
    fn take_token(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let (tokens, at) = state.tokens.unwrap_or((BURST, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * PER_SECOND).min(BURST);
        if tokens < 1.0 {
            state.tokens = Some((tokens, now));
            return false;
        }
        state.tokens = Some((tokens - 1.0, now));
        true
    }

    /// The key, from the cache or fetched by `fetch` (once, whoever else asks meanwhile).
    pub async fn get_or_fetch<F>(
        &self,
        key: &KeyRef,
        now: Timestamp,
        fetch: F,
    ) -> Result<Vec<u8>, String>
    where
        F: Future<Output = Result<Vec<u8>, String>>,
    {
        if let Some(bytes) = self.cached(key, now) {
            return Ok(bytes);
        }
        let refused = |until: Timestamp| {
            format!("fetching this key failed recently; it is tried again after {until}")
        };
        if let Some(until) = self.failed_until(key, now) {
            return Err(refused(until));
        }
        let flight = self
            .lock()
            .in_flight
            .entry(key.clone())
            .or_default()
            .clone();
        let result = {
            let _one_at_a_time = flight.lock().await;
            // Whoever held the lock before may have fetched it, or failed to.
            if let Some(bytes) = self.cached(key, now) {
                Ok(bytes)
            } else if let Some(until) = self.failed_until(key, now) {
                Err(refused(until))
            } else if !self.take_token() {
                Err("too many keys fetched lately; try again shortly".to_string())
            } else {
                let fetched = fetch.await;
                self.record(key, now, &fetched);
                fetched
            }
        };
        let mut state = self.lock();
        // The last one out removes the key's lock (the map holds one reference, `flight` one).
        if Arc::strong_count(&flight) <= 2 {
            state.in_flight.remove(key);
        }
        result
    }

    /// Keeps a fetch's result: the key, or the failure and when to try again.
    fn record(&self, key: &KeyRef, now: Timestamp, fetched: &Result<Vec<u8>, String>) {
        let mut state = self.lock();
        match fetched {
            Ok(bytes) => {
                if state.keys.len() >= MAX_KEYS {
                    evict_oldest(&mut state.keys, |(_, at)| *at);
                }
                state.keys.insert(key.clone(), (bytes.clone(), now));
                state.failed.remove(key);
            }
            Err(_) => {
                if state.failed.len() >= MAX_FAILURES {
                    evict_oldest(&mut state.failed, |(until, _)| *until);
                }
                let failures = state.failed.get(key).map_or(0, |(_, n)| *n) + 1;
                let backoff = FIRST_BACKOFF
                    .checked_mul(1 << (failures - 1).min(10))
                    .unwrap_or(MAX_BACKOFF)
                    .min(MAX_BACKOFF);
                state.failed.insert(key.clone(), (now + backoff, failures));
            }
        }
    }

    /// Keys cached, failures remembered, fetches under way: for tests of the bounds.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (state.keys.len(), state.failed.len(), state.in_flight.len())
    }
}

/// Drops the tenth of the entries whose `at` is oldest.
fn evict_oldest<V>(map: &mut HashMap<KeyRef, V>, at: impl Fn(&V) -> Timestamp) {
    let mut times: Vec<Timestamp> = map.values().map(&at).collect();
    times.sort();
    let cut = times[times.len() / 10];
    map.retain(|_, v| at(v) > cut);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t0() -> Timestamp {
        "2026-11-25T15:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_failures_back_off() {
        let keys = KeyFetcher::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let key = KeyRef::EbayPublicKey("kid-1".into());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (keys, fetches, key) = (keys.clone(), fetches.clone(), key.clone());
            tasks.spawn(async move {
                keys.get_or_fetch(&key, t0(), async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(b"pem".to_vec())
                })
                .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.unwrap().unwrap(), b"pem");
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch for twenty askers"
        );
        assert_eq!(keys.sizes().2, 0, "no lock left behind");

        let bad = KeyRef::EbayPublicKey("kid-bad".into());
        let fail = || async { Err::<Vec<u8>, _>("404".to_string()) };
        assert!(keys.get_or_fetch(&bad, t0(), fail()).await.is_err());
        // Within the backoff nothing is fetched.
        let counted = Arc::new(AtomicUsize::new(0));
        let c = counted.clone();
        let r = keys
            .get_or_fetch(&bad, t0() + SignedDuration::from_secs(10), async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(vec![])
            })
            .await;
        assert!(r.is_err());
        assert_eq!(counted.load(Ordering::SeqCst), 0);
        // After it, one more try; a second failure waits twice as long.
        assert!(
            keys.get_or_fetch(&bad, t0() + SignedDuration::from_secs(31), fail())
                .await
                .is_err()
        );
        assert!(
            keys.failed_until(&bad, t0() + SignedDuration::from_secs(31))
                .is_some_and(|u| u == t0() + SignedDuration::from_secs(31 + 60))
        );
    }

    #[tokio::test]
    async fn random_keys_cost_a_bounded_number_of_fetches() {
        let keys = KeyFetcher::default();
        let fetches = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        for i in 0..500 {
            let f = fetches.clone();
            let _ = keys
                .get_or_fetch(
                    &KeyRef::EbayPublicKey(format!("random-{i}")),
                    t0(),
                    async move {
                        f.fetch_add(1, Ordering::SeqCst);
                        Err("no such key".to_string())
                    },
                )
                .await;
        }
        let allowed = BURST + started.elapsed().as_secs_f64() * PER_SECOND + 1.0;
        assert!(
            (fetches.load(Ordering::SeqCst) as f64) <= allowed,
            "{} fetches",
            fetches.load(Ordering::SeqCst)
        );
        let (cached, failed, in_flight) = keys.sizes();
        assert_eq!((cached, in_flight), (0, 0));
        assert!(failed <= MAX_FAILURES);
    }
}
