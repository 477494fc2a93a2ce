//! The queue conformance suite against the SQS adapter on moto, each case on
//! a queue of its own, deleted after it.
//!
//! moto must be running and `AWS_ENDPOINT_URL_SQS` point at it: `scripts/test`
//! starts it around `cargo test`. Without it these tests fail in CI and skip,
//! saying so, elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use acceptance::engines::Engine;
use acceptance::queues::QueueFixture;
use functions::adapters::queue::sqs::SqsQueue;
use functions::adapters::topology;
use korala_domain::ports::Queue;

/// A queue of its own for one case, deleted when the case ends.
struct MotoQueue {
    queue: SqsQueue,
}

impl MotoQueue {
    async fn new() -> Option<Self> {
        if !Engine::Moto.here() {
            return None;
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "korala-test-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let (sqs, _) = topology::clients().await;
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating queue {name} on moto: {e:?}"))
            .queue_url
            .expect("a queue URL");
        Some(Self {
            queue: SqsQueue::new(sqs, url),
        })
    }
}

impl QueueFixture for MotoQueue {
    fn queue(&self) -> Arc<dyn Queue> {
        Arc::new(self.queue.clone())
    }
}

impl Drop for MotoQueue {
    /// Keeps moto's memory flat over the run. Dropping happens inside the
    /// case's multi-threaded runtime, which may block one worker.
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let request = self.queue.client().delete_queue().queue_url(self.queue.url());
        tokio::task::block_in_place(|| {
            let _ = handle.block_on(request.send());
        });
    }
}

mod moto {
    acceptance::queue_conformance_tests!(|| async { super::MotoQueue::new().await });
}
