//! Retry policies: when a failed delivery is tried again, and when it is given up.
//!
//! Each policy is a pure function of the attempt history, so schedules of days are tested without
//! waiting. The ladders come from the seed documents:
//! - `walmart`: "retry three times ... at 5 minutes, 15 minutes, and 45 minutes after the previous
//!   attempt" (`seeds/001_*`).
//! - `sellercenter`: 1, 5, 10, 30, 60, 120, 300, 600 minutes, then every 1440 minutes, "until 30 days
//!   have passed", after which the callback is dropped (`seeds/003_*`).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::CoreError;

const MINUTE: f64 = 60.0;
const WALMART_DELAYS_MIN: [f64; 3] = [5.0, 15.0, 45.0];
const SELLERCENTER_DELAYS_MIN: [f64; 8] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
const SELLERCENTER_DAILY_MIN: f64 = 1440.0;
const SELLERCENTER_GIVE_UP_DAYS: f64 = 30.0;

/// A named retry policy, chosen per subscription (`retryPolicy`).
#[derive(Debug, Clone, PartialEq, Serialize, Default, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RetryPolicy {
    /// 5, 15, 45 minutes after the previous attempt, then failed.
    #[default]
    Walmart,
    /// SellerCenter's ladder, then daily, until 30 days after the first attempt.
    Sellercenter,
    /// `base * factor^(n-1)`, capped, with +/- `jitter` (a fraction), until `giveUpAfterSeconds`
    /// after the first attempt.
    #[serde(rename_all = "camelCase")]
    Exponential {
        base_seconds: f64,
        factor: f64,
        jitter: f64,
        cap_seconds: f64,
        give_up_after_seconds: f64,
    },
    /// An explicit list of delays (seconds after the previous attempt), then failed.
    #[serde(rename_all = "camelCase")]
    Delays { delays_seconds: Vec<f64> },
}

/// What the policy needs to know about the attempts made so far.
#[derive(Debug, Clone, Copy)]
pub struct AttemptHistory {
    pub first_attempt_at: Timestamp,
    pub last_attempt_at: Timestamp,
    /// Attempts made, including the one that just failed (so at least 1).
    pub attempts_made: u32,
}

impl RetryPolicy {
    pub fn exponential_default() -> Self {
        RetryPolicy::Exponential {
            base_seconds: 30.0,
            factor: 2.0,
            jitter: 0.2,
            cap_seconds: 6.0 * 3600.0,
            give_up_after_seconds: 3.0 * 86400.0,
        }
    }

    /// The policy's short name, as shown in lists and logs.
    pub fn name(&self) -> &'static str {
        match self {
            RetryPolicy::Walmart => "walmart",
            RetryPolicy::Sellercenter => "sellercenter",
            RetryPolicy::Exponential { .. } => "exponential",
            RetryPolicy::Delays { .. } => "delays",
        }
    }

    /// Checks the numbers of a configurable policy.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: &str| Err(CoreError::invalid("retryPolicy", m));
        match self {
            RetryPolicy::Exponential {
                base_seconds,
                factor,
                jitter,
                cap_seconds,
                give_up_after_seconds,
            } => {
                let finite = [
                    *base_seconds,
                    *factor,
                    *jitter,
                    *cap_seconds,
                    *give_up_after_seconds,
                ]
                .iter()
                .all(|v| v.is_finite());
                if !finite || *base_seconds <= 0.0 || *cap_seconds < *base_seconds {
                    return bad("baseSeconds must be > 0 and capSeconds >= baseSeconds");
                }
                if *factor < 1.0 || !(0.0..=1.0).contains(jitter) {
                    return bad("factor must be >= 1 and jitter between 0 and 1");
                }
                if *give_up_after_seconds <= 0.0 || *give_up_after_seconds > 90.0 * 86400.0 {
                    return bad("giveUpAfterSeconds must be > 0 and at most 90 days");
                }
                Ok(())
            }
            RetryPolicy::Delays { delays_seconds } => {
                if delays_seconds.len() > 100 {
                    return bad("at most 100 delays");
                }
                if delays_seconds
                    .iter()
                    .any(|d| !d.is_finite() || *d < 0.0 || *d > 30.0 * 86400.0)
                {
                    return bad("each delay must be between 0 and 30 days (in seconds)");
                }
                Ok(())
            }
            RetryPolicy::Walmart | RetryPolicy::Sellercenter => Ok(()),
        }
    }

    /// The delay (seconds, unscaled) after the `attempts_made`-th attempt, ignoring give-up age.
    fn base_delay(&self, attempts_made: u32, jitter_sample: f64) -> Option<f64> {
        let index = attempts_made.saturating_sub(1) as usize;
        match self {
            RetryPolicy::Walmart => WALMART_DELAYS_MIN.get(index).map(|m| m * MINUTE),
            RetryPolicy::Sellercenter => Some(
                SELLERCENTER_DELAYS_MIN
                    .get(index)
                    .copied()
                    .unwrap_or(SELLERCENTER_DAILY_MIN)
                    * MINUTE,
            ),
            RetryPolicy::Exponential {
                base_seconds,
                factor,
                jitter,
                cap_seconds,
                ..
            } => {
                let raw = base_seconds * factor.powi(index.min(1000) as i32);
                let capped = raw.min(*cap_seconds);
                let spread = jitter * (2.0 * jitter_sample.clamp(0.0, 1.0) - 1.0);
                Some((capped * (1.0 + spread)).max(0.0))
            }
            RetryPolicy::Delays { delays_seconds } => delays_seconds.get(index).copied(),
        }
    }

    /// The longest delay the policy ever asks for: the bound on an endpoint's `Retry-After`.
    fn max_delay(&self) -> f64 {
        match self {
            RetryPolicy::Walmart => 45.0 * MINUTE,
            RetryPolicy::Sellercenter => SELLERCENTER_DAILY_MIN * MINUTE,
            RetryPolicy::Exponential { cap_seconds, .. } => *cap_seconds,
            RetryPolicy::Delays { delays_seconds } => {
                delays_seconds.iter().copied().fold(0.0, f64::max)
            }
        }
    }

    /// The age (seconds after the first attempt) past which no attempt is made.
    fn give_up_after(&self) -> Option<f64> {
        match self {
            RetryPolicy::Sellercenter => Some(SELLERCENTER_GIVE_UP_DAYS * 86400.0),
            RetryPolicy::Exponential {
                give_up_after_seconds,
                ..
            } => Some(*give_up_after_seconds),
            RetryPolicy::Walmart | RetryPolicy::Delays { .. } => None,
        }
    }

    /// When to try again after a failed attempt, or `None` when the policy gives up.
    ///
    /// `retry_after` is the endpoint's `Retry-After`: honoured when it asks for more than the
    /// policy would wait, but never beyond the policy's longest delay. `scale` multiplies every
    /// delay and the give-up age (`SWITCHYARD_DELIVERY_TIME_SCALE`); `jitter_sample` is a number in
    /// [0, 1) that the exponential policy turns into jitter.
    pub fn next_attempt_at(
        &self,
        history: &AttemptHistory,
        retry_after: Option<SignedDuration>,
        scale: f64,
        jitter_sample: f64,
    ) -> Option<Timestamp> {
        let mut delay = self.base_delay(history.attempts_made, jitter_sample)?;
        if let Some(asked) = retry_after {
            let asked = asked.as_secs_f64().max(0.0);
            delay = delay.max(asked.min(self.max_delay()));
        }
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let next = history
            .last_attempt_at
            .checked_add(SignedDuration::from_secs_f64(delay * scale))
            .ok()?;
        if let Some(age) = self.give_up_after() {
            let deadline = history
                .first_attempt_at
                .checked_add(SignedDuration::from_secs_f64(age * scale))
                .ok()?;
            if next > deadline {
                return None;
            }
        }
        Some(next)
    }

    /// Every attempt time the policy makes when each attempt fails at once, starting at `first`:
    /// the schedule a user sees documented (jitter taken as zero).
    pub fn ladder(&self, first: Timestamp) -> Vec<Timestamp> {
        let mut times = vec![first];
        while times.len() < 10_000 {
            let history = AttemptHistory {
                first_attempt_at: first,
                last_attempt_at: *times.last().unwrap_or(&first),
                attempts_made: times.len() as u32,
            };
            match self.next_attempt_at(&history, None, 1.0, 0.5) {
                Some(t) => times.push(t),
                None => break,
            }
        }
        times
    }
}

/// `retryPolicy` as the API takes it: a name (`"walmart"`, `"sellercenter"`, `"exponential"`) or
/// an object with `type` and that policy's fields.
impl<'de> Deserialize<'de> for RetryPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Name(String),
            Object(Tagged),
        }
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
        enum Tagged {
            Walmart,
            Sellercenter,
            #[serde(rename_all = "camelCase")]
            Exponential {
                base_seconds: Option<f64>,
                factor: Option<f64>,
                jitter: Option<f64>,
                cap_seconds: Option<f64>,
                give_up_after_seconds: Option<f64>,
            },
            #[serde(rename_all = "camelCase")]
            Delays {
                delays_seconds: Vec<f64>,
            },
        }
        let defaults = RetryPolicy::exponential_default();
        let RetryPolicy::Exponential {
            base_seconds: b0,
            factor: f0,
            jitter: j0,
            cap_seconds: c0,
            give_up_after_seconds: g0,
        } = defaults
        else {
            unreachable!("exponential_default is Exponential")
        };
        match Wire::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "retryPolicy must be \"walmart\", \"sellercenter\", \"exponential\" or an object \
                 {\"type\": \"exponential\"|\"delays\", ...}",
            )
        })? {
            Wire::Name(name) => match name.as_str() {
                "walmart" => Ok(RetryPolicy::Walmart),
                "sellercenter" => Ok(RetryPolicy::Sellercenter),
                "exponential" => Ok(RetryPolicy::exponential_default()),
                other => Err(serde::de::Error::custom(format!(
                    "unknown retry policy {other:?}: use walmart, sellercenter, exponential or delays"
                ))),
            },
            Wire::Object(Tagged::Walmart) => Ok(RetryPolicy::Walmart),
            Wire::Object(Tagged::Sellercenter) => Ok(RetryPolicy::Sellercenter),
            Wire::Object(Tagged::Exponential {
                base_seconds,
                factor,
                jitter,
                cap_seconds,
                give_up_after_seconds,
            }) => Ok(RetryPolicy::Exponential {
                base_seconds: base_seconds.unwrap_or(b0),
                factor: factor.unwrap_or(f0),
                jitter: jitter.unwrap_or(j0),
                cap_seconds: cap_seconds.unwrap_or(c0),
                give_up_after_seconds: give_up_after_seconds.unwrap_or(g0),
            }),
            Wire::Object(Tagged::Delays { delays_seconds }) => {
                Ok(RetryPolicy::Delays { delays_seconds })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2026-11-01T12:00:00Z".parse().unwrap()
    }

    fn minutes_after_first(policy: &RetryPolicy) -> Vec<i64> {
        policy
            .ladder(t0())
            .iter()
            .map(|t| t.duration_since(t0()).as_secs() / 60)
            .collect()
    }

    #[test]
    fn walmart_retries_at_5_20_65_minutes_then_gives_up() {
        assert_eq!(
            minutes_after_first(&RetryPolicy::Walmart),
            vec![0, 5, 20, 65]
        );
    }

    #[test]
    fn sellercenter_ladder_matches_the_seed_table_and_stops_at_30_days() {
        let minutes = minutes_after_first(&RetryPolicy::Sellercenter);
        // Seed 003: total delays 1, 6, 16, 46, 106 (1:46), 226 (3:46), 526 (8:46), 1126 (18:46),
        // then a day more each time.
        assert_eq!(&minutes[..9], &[0, 1, 6, 16, 46, 106, 226, 526, 1126]);
        assert_eq!(minutes[9], 1126 + 1440);
        assert_eq!(minutes[10], 1126 + 2 * 1440);
        let last = *minutes.last().unwrap();
        assert!(
            last <= 30 * 1440,
            "last attempt {last} min is within 30 days"
        );
        assert!(last + 1440 > 30 * 1440, "one more day would pass 30 days");
        // 9 ladder attempts, then daily ones while within 30 days of the first.
        assert_eq!(minutes.len(), 9 + ((30 * 1440 - 1126) / 1440) as usize);
    }

    #[test]
    fn explicit_delays_then_failed() {
        let p = RetryPolicy::Delays {
            delays_seconds: vec![60.0, 120.0],
        };
        assert_eq!(minutes_after_first(&p), vec![0, 1, 3]);
    }

    #[test]
    fn exponential_grows_caps_jitters_and_gives_up() {
        let p = RetryPolicy::Exponential {
            base_seconds: 60.0,
            factor: 2.0,
            jitter: 0.0,
            cap_seconds: 600.0,
            give_up_after_seconds: 3600.0,
        };
        assert_eq!(
            minutes_after_first(&p),
            vec![0, 1, 3, 7, 15, 25, 35, 45, 55]
        );
        let jittery = RetryPolicy::Exponential {
            base_seconds: 100.0,
            factor: 1.0,
            jitter: 0.5,
            cap_seconds: 100.0,
            give_up_after_seconds: 3600.0,
        };
        let h = AttemptHistory {
            first_attempt_at: t0(),
            last_attempt_at: t0(),
            attempts_made: 1,
        };
        let low = jittery.next_attempt_at(&h, None, 1.0, 0.0).unwrap();
        let high = jittery.next_attempt_at(&h, None, 1.0, 0.999_999).unwrap();
        assert_eq!(low.duration_since(t0()).as_secs(), 50);
        assert_eq!(high.duration_since(t0()).as_secs(), 149);
    }

    #[test]
    fn retry_after_is_honoured_within_the_policy_bounds() {
        let h = AttemptHistory {
            first_attempt_at: t0(),
            last_attempt_at: t0(),
            attempts_made: 1,
        };
        let p = RetryPolicy::Walmart;
        let asked = |secs| Some(SignedDuration::from_secs(secs));
        // Shorter than the policy: the policy wins.
        let at = p.next_attempt_at(&h, asked(10), 1.0, 0.0).unwrap();
        assert_eq!(at.duration_since(t0()).as_secs(), 300);
        // Longer: honoured.
        let at = p.next_attempt_at(&h, asked(1200), 1.0, 0.0).unwrap();
        assert_eq!(at.duration_since(t0()).as_secs(), 1200);
        // Beyond the policy's longest delay: bounded by it.
        let at = p.next_attempt_at(&h, asked(86400), 1.0, 0.0).unwrap();
        assert_eq!(at.duration_since(t0()).as_secs(), 45 * 60);
    }

    #[test]
    fn time_scale_shrinks_delays_and_give_up_age_alike() {
        let ladder_full = RetryPolicy::Sellercenter.ladder(t0()).len();
        let h = AttemptHistory {
            first_attempt_at: t0(),
            last_attempt_at: t0(),
            attempts_made: 1,
        };
        let at = RetryPolicy::Walmart
            .next_attempt_at(&h, None, 0.001, 0.0)
            .unwrap();
        assert_eq!(at.duration_since(t0()).as_millis(), 300);
        assert!(ladder_full > 9);
    }

    #[test]
    fn parses_names_and_objects() {
        let p: RetryPolicy = serde_json::from_str("\"sellercenter\"").unwrap();
        assert_eq!(p, RetryPolicy::Sellercenter);
        let p: RetryPolicy =
            serde_json::from_str(r#"{"type":"delays","delaysSeconds":[1,2]}"#).unwrap();
        assert_eq!(
            p,
            RetryPolicy::Delays {
                delays_seconds: vec![1.0, 2.0]
            }
        );
        let p: RetryPolicy =
            serde_json::from_str(r#"{"type":"exponential","baseSeconds":5}"#).unwrap();
        assert!(matches!(p, RetryPolicy::Exponential { base_seconds, .. } if base_seconds == 5.0));
        assert!(serde_json::from_str::<RetryPolicy>("\"hourly\"").is_err());
        let back = serde_json::to_value(RetryPolicy::Walmart).unwrap();
        assert_eq!(back, serde_json::json!({"type":"walmart"}));
    }
}
