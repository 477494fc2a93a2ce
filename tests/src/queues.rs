//! The behaviour every `Queue` adapter must show (SQS on moto, the embedded
//! store's queue). Each case takes a fresh, empty queue, so a failure names
//! the one contract that broke. Adapters run the cases with
//! [`queue_conformance_tests!`](crate::queue_conformance_tests), one test per
//! case.
//!
//! The engines keep visibility timeouts and delays in real time, so the cases
//! wait for real: about a second at most each, with the shortest timeouts the
//! port takes (whole seconds).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use korala_domain::ports::{Outgoing, Queue, Received};

/// What a case needs from whatever set a queue up: the queue itself. A
/// fixture may hold more (a queue to delete, a temporary directory) and clean
/// it up when dropped after the case.
pub trait QueueFixture {
    fn queue(&self) -> Arc<dyn Queue>;
}

impl QueueFixture for Arc<dyn Queue> {
    fn queue(&self) -> Arc<dyn Queue> {
        Arc::clone(self)
    }
}

/// Generates one `#[tokio::test]` per case. `$setup` is a closure returning
/// a future of `Option` of a [`QueueFixture`]; it runs once per case, and
/// `None` skips the case (the setup says why: its engine is not running
/// here). Invoke it inside its own module per adapter so the test names do
/// not clash.
#[macro_export]
macro_rules! queue_conformance_tests {
    ($setup:expr) => {
        $crate::queue_conformance_tests!(@generate ($setup);
            sent_messages_are_received_once_each,
            received_messages_hide_for_their_visibility_timeout,
            deleted_messages_do_not_come_back,
            retry_after_brings_a_message_back_with_its_count_grown,
            a_stale_receipt_is_harmless,
            delayed_messages_wait_for_their_delay,
            batches_larger_than_ten_are_sent_whole,
        );
    };
    (@generate $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = ($setup)().await else {
                    return;
                };
                $crate::queues::$case($crate::queues::QueueFixture::queue(&fixture)).await;
                drop(fixture);
            }
        )*
    };
}

fn message(body: &str) -> Outgoing {
    Outgoing {
        body: body.to_owned(),
        delay_seconds: 0,
    }
}

/// Long enough that nothing comes back by itself during a case.
const HIDDEN: u32 = 30;
/// A one-second timeout has passed.
const PAST_ONE_SECOND: Duration = Duration::from_millis(1300);

/// Receives until `count` messages came (an engine may return fewer than
/// are visible in one call, as SQS's short polling does) or a second passed.
async fn receive_at_least(queue: &dyn Queue, count: usize, visibility_seconds: u32) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut received = Vec::new();
    while received.len() < count {
        received.extend(queue.receive(10, visibility_seconds).await.unwrap());
        if received.len() >= count || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received
}

fn bodies(received: &[Received]) -> BTreeSet<String> {
    received.iter().map(|r| r.body.clone()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn nothing_visible(queue: &dyn Queue) -> bool {
    queue.receive(10, HIDDEN).await.unwrap().is_empty()
}

pub async fn sent_messages_are_received_once_each(queue: Arc<dyn Queue>) {
    assert!(nothing_visible(&*queue).await, "a fresh queue is empty");
    queue
        .send(&[message("one"), message("two"), message("{\"three\":3}")])
        .await
        .unwrap();
    let received = receive_at_least(&*queue, 3, HIDDEN).await;
    assert_eq!(received.len(), 3, "{received:?}");
    assert_eq!(
        bodies(&received),
        set(&["one", "two", "{\"three\":3}"]),
        "bodies as sent"
    );
    assert!(received.iter().all(|r| r.receive_count == 1), "{received:?}");
    let receipts: BTreeSet<&str> = received.iter().map(|r| r.receipt.as_str()).collect();
    assert_eq!(receipts.len(), 3, "a receipt per message");
    assert!(nothing_visible(&*queue).await, "received messages are hidden");
    assert_eq!(queue.receive(0, HIDDEN).await.unwrap(), vec![], "max 0 asks for none");
}

pub async fn received_messages_hide_for_their_visibility_timeout(queue: Arc<dyn Queue>) {
    queue.send(&[message("m")]).await.unwrap();
    let first = receive_at_least(&*queue, 1, 1).await;
    assert_eq!(first.len(), 1);
    assert!(nothing_visible(&*queue).await, "hidden for the visibility timeout");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let again = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(again.len(), 1, "back once the timeout passed");
    assert_eq!(again[0].body, "m");
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt, first[0].receipt, "each receive is a new receipt");
}

pub async fn deleted_messages_do_not_come_back(queue: Arc<dyn Queue>) {
    queue.send(&[message("keep"), message("done")]).await.unwrap();
    let received = receive_at_least(&*queue, 2, 1).await;
    assert_eq!(received.len(), 2);
    let done = received
        .iter()
        .find(|r| r.body == "done")
        .expect("the message to delete");
    queue.delete(&done.receipt).await.unwrap();
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let back = receive_at_least(&*queue, 2, HIDDEN).await;
    assert_eq!(bodies(&back), set(&["keep"]), "only the message not deleted comes back");
}

pub async fn retry_after_brings_a_message_back_with_its_count_grown(queue: Arc<dyn Queue>) {
    queue.send(&[message("flaky")]).await.unwrap();
    let first = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);

    queue.retry_after(&first[0].receipt, 0).await.unwrap();
    let second = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(second.len(), 1, "retry_after(0) makes it visible at once");
    assert_eq!((second[0].body.as_str(), second[0].receive_count), ("flaky", 2));

    queue.retry_after(&second[0].receipt, 1).await.unwrap();
    assert!(nothing_visible(&*queue).await, "hidden until the retry time");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let third = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(third.len(), 1, "back after the retry time");
    assert_eq!((third[0].body.as_str(), third[0].receive_count), ("flaky", 3));
}

/// A consumer slower than its visibility timeout still holds the first
/// receipt when another has received the message again: its delete or retry
/// must not fail. (Whether it acts on the message differs: SQS may honour it,
/// the embedded queue ignores it; consumers are idempotent either way.)
pub async fn a_stale_receipt_is_harmless(queue: Arc<dyn Queue>) {
    queue.send(&[message("slow")]).await.unwrap();
    let stale = receive_at_least(&*queue, 1, 1).await;
    assert_eq!(stale.len(), 1);
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let current = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(current.len(), 1, "received again");

    queue.retry_after(&stale[0].receipt, HIDDEN).await.unwrap();
    queue.delete(&stale[0].receipt).await.unwrap();
    queue.delete(&current[0].receipt).await.unwrap();
    // The message is gone now: its receipts are stale too.
    queue.delete(&current[0].receipt).await.unwrap();
    queue.retry_after(&current[0].receipt, 0).await.unwrap();
    assert!(nothing_visible(&*queue).await, "deleted for good");
}

pub async fn delayed_messages_wait_for_their_delay(queue: Arc<dyn Queue>) {
    let later = Outgoing {
        body: "later".into(),
        delay_seconds: 1,
    };
    queue.send(&[later, message("now")]).await.unwrap();
    let at_once = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(bodies(&at_once), set(&["now"]));
    assert!(nothing_visible(&*queue).await, "the delayed message waits");
    tokio::time::sleep(PAST_ONE_SECOND).await;
    let after = receive_at_least(&*queue, 1, HIDDEN).await;
    assert_eq!(bodies(&after), set(&["later"]));
    assert_eq!(after[0].receive_count, 1, "waiting is not a receive");
}

pub async fn batches_larger_than_ten_are_sent_whole(queue: Arc<dyn Queue>) {
    let sent: Vec<String> = (0..25).map(|i| format!("message {i:02}")).collect();
    let messages: Vec<Outgoing> = sent.iter().map(|b| message(b)).collect();
    queue.send(&messages).await.unwrap();

    let few = queue.receive(3, HIDDEN).await.unwrap();
    assert!(!few.is_empty() && few.len() <= 3, "at most max: {}", few.len());
    let mut received = few;
    received.extend(receive_at_least(&*queue, 25 - received.len(), HIDDEN).await);
    assert_eq!(received.len(), 25, "every message once");
    assert_eq!(bodies(&received), sent.into_iter().collect::<BTreeSet<_>>());
}
