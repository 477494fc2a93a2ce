//! Fixtures for tests, ours and the other crates' (the `testing` feature,
//! which no deployed build turns on): ids from a counter, a fixed instant and
//! a clock the test moves, and the product page's examples. One copy of each,
//! so that a test in any crate starts from the same world.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};

use crate::Timestamp;
use crate::ids::IdGenerator;
use crate::ports::Clock;

/// Ids from a counter, zero-padded to 26 digits (the length of a ULID) so
/// that string order is creation order, as the real generator promises.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdGenerator for SequentialIds {
    fn next_body(&self) -> String {
        format!("{:026}", self.next.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// The instant every test starts from: 2026-11-25 12:00:00 UTC.
pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// `n` minutes after [`t0`].
pub fn minutes(n: i64) -> Timestamp {
    t0() + Duration::minutes(n)
}

/// `n` seconds after [`t0`].
pub fn seconds(n: i64) -> Timestamp {
    t0() + Duration::seconds(n)
}

/// A clock the test moves by hand, from the instant it is made with.
#[derive(Debug)]
pub struct TestClock {
    now: Mutex<Timestamp>,
}

impl TestClock {
    pub fn new(start: Timestamp) -> Self {
        Self { now: Mutex::new(start) }
    }

    fn lock(&self) -> MutexGuard<'_, Timestamp> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The time the code under test sees.
    pub fn now(&self) -> Timestamp {
        *self.lock()
    }

    pub fn advance(&self, minutes: i64) {
        self.advance_seconds(minutes * 60);
    }

    pub fn advance_seconds(&self, seconds: i64) {
        *self.lock() += Duration::seconds(seconds);
    }

    pub fn set(&self, to: Timestamp) {
        *self.lock() = to;
    }

    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// The current day, `days` ago, as `YYYY-MM-DD`.
    pub fn days_ago(&self, days: i64) -> String {
        (self.now().date_naive() - Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

/// The examples of the product page (`korala-sessions.txt`), as a partner
/// sends them.
pub mod product_page {
    use super::{Value, json};

    /// The "KYB Standard" session configuration: the representative's
    /// identity document and proof of address, the beneficial owner's PEP
    /// check, a final manual review.
    pub fn kyb_standard() -> Value {
        json!({
            "name": "KYB Standard",
            "slug": "kyb-standard",
            "description": "Business onboarding with participant-aware verification",
            "workflowBindings": [
                {"workflowSlug": "id-document", "participantRoles": ["representative"], "outputKey": "representative_id"},
                {"workflowSlug": "proof-of-address", "participantRoles": ["representative"], "outputKey": "representative_poa"},
                {"workflowSlug": "pep-check", "participantRoles": ["beneficial_owner"], "outputKey": "ubo_pep_check"}
            ],
            "subjectKind": "business",
            "isVerification": true,
            "autoResolve": false,
            "finalManualReviewRequired": true,
            "defaultExpiresInMinutes": 1440,
            "defaultRedirectUrl": "https://yourapp.com/verification/complete"
        })
    }

    /// The KYB session's participants: Acme Corp, Jane Smith as beneficial
    /// owner, John Smith as representative.
    pub fn kyb_participants() -> Value {
        json!([
            {"role": "subject", "displayName": "Acme Corp"},
            {"role": "beneficial_owner", "displayName": "Jane Smith"},
            {"role": "representative", "displayName": "John Smith"}
        ])
    }

    /// The product page's KYB session, made from [`kyb_standard`].
    pub fn kyb_session() -> Value {
        json!({
            "externalUserId": "org_abc123",
            "configurationSlug": "kyb-standard",
            "participants": kyb_participants(),
            "context": {"partnerName": "Acme Corp", "applicationType": "merchant_onboarding"},
            "metadata": {"applicationId": "app_001"},
            "expiresInMinutes": 720,
            "redirectUrl": "https://yourapp.com/custom-redirect"
        })
    }
}
