//! Request rates: how often a caller may ask, measured by the generic cell
//! rate algorithm (GCRA, the leaky bucket as a meter). A bucket keeps one
//! instant, its *theoretical arrival time*: when it would be empty again if
//! requests kept coming at the sustained rate. A request is admitted while
//! that instant is at most `burst - 1` intervals ahead of now, and pushes it
//! one interval further. So a quiet caller may send `burst` requests at
//! once, then `per_second` a second, and a refused caller learns exactly how
//! long to wait.
//!
//! The state is one instant per bucket, which a store can keep and change
//! with one conditional write; every process (every Lambda instance) meters
//! against the same bucket.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::OrgId;

/// A sustained rate with a burst: `per_second` requests a second on average,
/// up to `burst` at once after a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    per_second: u32,
    burst: u32,
}

/// The most a rate may allow: far beyond any partner's need, and small
/// enough that the arithmetic below never overflows.
pub const MAX_PER_SECOND: u32 = 100_000;
pub const MAX_BURST: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("a rate allows from 1 to {MAX_PER_SECOND} requests a second")]
    PerSecond,
    #[error("a burst is from 1 to {MAX_BURST} requests, and at least the rate of one second")]
    Burst,
}

impl Rate {
    /// A partner organisation's calls, all keys and modes together, unless
    /// the organisation has its own ([`OrgId`]'s `Organization::rate`).
    pub const PARTNER: Rate = Rate {
        per_second: 50,
        burst: 100,
    };
    /// One access token's calls: an end user's page, polling while checks
    /// run, needs a few a second.
    pub const ACCESS_TOKEN: Rate = Rate {
        per_second: 5,
        burst: 20,
    };

    pub fn new(per_second: u32, burst: u32) -> Result<Rate, RateError> {
        if !(1..=MAX_PER_SECOND).contains(&per_second) {
            return Err(RateError::PerSecond);
        }
        if !(per_second..=MAX_BURST).contains(&burst) {
            return Err(RateError::Burst);
        }
        Ok(Rate { per_second, burst })
    }

    /// The widest rate, which an operator gives to lift an organisation's
    /// limit (internal load tests): nothing is metered, and no bucket kept.
    pub fn unmetered() -> Rate {
        Rate {
            per_second: MAX_PER_SECOND,
            burst: MAX_BURST,
        }
    }

    pub fn is_unmetered(&self) -> bool {
        *self == Rate::unmetered()
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time one request uses up: a second over the rate.
    pub fn interval(&self) -> Duration {
        Duration::microseconds(1_000_000 / i64::from(self.per_second.max(1)))
    }

    /// How far ahead of now the bucket's instant may be for a request to
    /// pass: the other `burst - 1` requests of a burst.
    pub fn tolerance(&self) -> Duration {
        self.interval() * (self.burst.max(1) as i32 - 1)
    }

    /// Meters one request at `now` against a bucket whose theoretical
    /// arrival time is `tat` (`None` for a bucket never used, or forgotten).
    pub fn admit(&self, tat: Option<Timestamp>, now: Timestamp) -> Admit {
        let from = tat.filter(|tat| *tat > now).unwrap_or(now);
        let latest = now + self.tolerance();
        if from > latest {
            Admit::Refused {
                retry_after: from - latest,
            }
        } else {
            Admit::Admitted {
                tat: from + self.interval(),
            }
        }
    }
}

/// What metering one request decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead; the bucket's new theoretical arrival time.
    Admitted { tat: Timestamp },
    /// Not now: the same request would pass after this long.
    Refused { retry_after: Duration },
}

impl Admit {
    /// Whole seconds to wait, as `Retry-After` says it: at least one.
    pub fn retry_after_seconds(retry_after: Duration) -> u64 {
        let micros = retry_after.num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
        micros.div_ceil(1_000_000).max(1)
    }
}

/// Whose allowance a request draws on. Buckets of different kinds never
/// share a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket(String);

impl Bucket {
    /// A partner organisation's calls, whichever key and mode.
    pub fn organization(org: &OrgId) -> Bucket {
        Bucket(format!("org#{org}"))
    }

    /// One access token's calls (by the token's hash: the store never sees
    /// the token).
    pub fn access_token(token_hash: &str) -> Bucket {
        Bucket(format!("token#{token_hash}"))
    }

    /// A tenant's test events and redeliveries: each makes us send a request
    /// to a URL the partner chose.
    pub fn webhook_sends(org: &OrgId) -> Bucket {
        Bucket(format!("sends#{org}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What kind of bucket this is, without whose: fit for a log line.
    pub fn kind(&self) -> &str {
        self.0.split('#').next().unwrap_or_default()
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a tenant may have at most of each kind of record it makes. The
/// store enforces it in the creating write itself, so two creations racing
/// for the last place cannot both succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quota {
    Configurations,
    Workflows,
    WebhookEndpoints,
}

impl Quota {
    /// Per tenant (an organisation has as many again in its other mode).
    pub const fn max(self) -> u32 {
        match self {
            Quota::Configurations => 100,
            Quota::Workflows => 100,
            // Each is a delivery per event: the fan-out's work grows with them.
            Quota::WebhookEndpoints => 16,
        }
    }

    pub const fn noun(self) -> &'static str {
        match self {
            Quota::Configurations => "session configurations",
            Quota::Workflows => "workflow definitions",
            Quota::WebhookEndpoints => "webhook endpoints",
        }
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "each mode of an organisation has at most {} {}; delete one before adding another",
            self.max(),
            self.noun()
        )
    }
}

/// Test events and redeliveries: one every six seconds, ten at once.
pub const WEBHOOK_SENDS: Rate = Rate {
    per_second: 1,
    burst: 10,
};

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    /// Runs `n` requests at `now` through a bucket starting at `tat`.
    fn burst(rate: Rate, mut tat: Option<Timestamp>, now: Timestamp, n: u32) -> (u32, Option<Timestamp>, Admit) {
        let mut admitted = 0;
        let mut last = Admit::Admitted { tat: now };
        for _ in 0..n {
            last = rate.admit(tat, now);
            if let Admit::Admitted { tat: next } = last {
                tat = Some(next);
                admitted += 1;
            }
        }
        (admitted, tat, last)
    }

    #[test]
    fn a_quiet_caller_may_burst_then_waits_one_interval_a_request() {
        let rate = Rate::new(50, 100).unwrap();
        let (admitted, tat, last) = burst(rate, None, t0(), 150);
        assert_eq!(admitted, 100, "the burst, no more");
        assert_eq!(
            last,
            Admit::Refused {
                retry_after: Duration::milliseconds(20)
            },
            "the next place frees after one interval"
        );
        // Half a second later, 25 more places (50 a second).
        let (admitted, _, _) = burst(rate, tat, t0() + Duration::milliseconds(500), 100);
        assert_eq!(admitted, 25);
    }

    #[test]
    fn a_sustained_caller_gets_the_rate() {
        let rate = Rate::new(10, 10).unwrap();
        let mut tat = None;
        let mut admitted = 0;
        // Twenty requests a second for ten seconds: half pass, and the
        // first second's burst on top.
        for i in 0..200 {
            let now = t0() + Duration::milliseconds(50 * i);
            if let Admit::Admitted { tat: next } = rate.admit(tat, now) {
                tat = Some(next);
                admitted += 1;
            }
        }
        assert!((100..=110).contains(&admitted), "{admitted}");
    }

    #[test]
    fn an_old_instant_is_a_full_bucket() {
        let rate = Rate::PARTNER;
        let long_ago = Some(t0() - Duration::hours(3));
        assert_eq!(
            rate.admit(long_ago, t0()),
            Admit::Admitted {
                tat: t0() + rate.interval()
            }
        );
        let (admitted, _, _) = burst(rate, long_ago, t0(), 1000);
        assert_eq!(admitted, Rate::PARTNER.burst());
    }

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(Admit::retry_after_seconds(Duration::milliseconds(1)), 1);
        assert_eq!(Admit::retry_after_seconds(Duration::milliseconds(1000)), 1);
        assert_eq!(Admit::retry_after_seconds(Duration::milliseconds(1001)), 2);
        assert_eq!(Admit::retry_after_seconds(Duration::zero()), 1);
    }

    #[test]
    fn rates_are_bounded() {
        assert_eq!(Rate::new(0, 10), Err(RateError::PerSecond));
        assert_eq!(Rate::new(MAX_PER_SECOND + 1, MAX_BURST), Err(RateError::PerSecond));
        assert_eq!(
            Rate::new(10, 5),
            Err(RateError::Burst),
            "a burst below one second's rate"
        );
        assert_eq!(Rate::new(10, MAX_BURST + 1), Err(RateError::Burst));
        let widest = Rate::new(MAX_PER_SECOND, MAX_BURST).unwrap();
        assert!(widest.tolerance() > Duration::zero());
        for rate in [Rate::PARTNER, Rate::ACCESS_TOKEN, WEBHOOK_SENDS] {
            assert_eq!(Rate::new(rate.per_second(), rate.burst()), Ok(rate));
        }
    }

    #[test]
    fn buckets_of_different_kinds_never_share_a_name() {
        let org = OrgId::parse("org_1").unwrap();
        let names = [
            Bucket::organization(&org),
            Bucket::access_token("org_1"),
            Bucket::webhook_sends(&org),
        ];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
