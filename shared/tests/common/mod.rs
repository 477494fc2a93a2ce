//! Fixtures the domain's integration tests share.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use korala_domain::Timestamp;
use korala_domain::ids::IdGenerator;

/// Ids `…_0000000001`, `…_0000000002`, …: deterministic and sorted.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl IdGenerator for Counter {
    fn next_body(&self) -> String {
        format!("{:010}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// The fixed "now" the tests start from.
pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}
