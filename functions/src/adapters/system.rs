//! The system adapters of the clock and id ports.

use korala_domain::Timestamp;
use korala_domain::ids::IdGenerator;
use korala_domain::ports::Clock;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// UUIDv7 bodies: time-ordered, so ids sort newest-last and double as the
/// listing order, with 74 random bits against collisions.
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn next_body(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
}
