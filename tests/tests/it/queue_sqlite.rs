//! The queue conformance suite against the embedded store's queue, on a
//! store file of its own per case (the local server's setup), on the real
//! clock: visibility timeouts and delays pass in real time, as on SQS.

use std::sync::Arc;

use acceptance::queues::QueueFixture;
use acceptance::support::TempDir;
use functions::adapters::store::sqlite::SqliteStore;
use functions::adapters::system::SystemClock;
use korala_domain::ports::Queue;

/// A queue in a fresh store file, removed with the directory after the case.
struct OnDisk {
    _dir: TempDir,
    queue: Arc<dyn Queue>,
}

impl OnDisk {
    fn new() -> Self {
        let dir = TempDir::new("sqlite-queue");
        let store = SqliteStore::open(&dir.path().join("store.db")).expect("a database file");
        let queue = Arc::new(store.queue("webhook-deliveries", Arc::new(SystemClock)));
        Self { _dir: dir, queue }
    }
}

impl QueueFixture for OnDisk {
    fn queue(&self) -> Arc<dyn Queue> {
        Arc::clone(&self.queue)
    }
}

mod file {
    acceptance::queue_conformance_tests!(|| async { Some(super::OnDisk::new()) });
}
