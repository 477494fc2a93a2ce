//! The store conformance suite against the embedded SQLite adapter, in
//! memory and on disk (WAL mode behaves differently from memory, and the
//! file path is what the local server uses).

use std::sync::Arc;

use acceptance::conformance;
use acceptance::support::TempDir;
use functions::adapters::store::AppStore;
use functions::adapters::store::sqlite::SqliteStore;
use korala_domain::ports::Store;

fn in_memory() -> Arc<dyn AppStore> {
    Arc::new(SqliteStore::in_memory().expect("an in-memory database"))
}

/// A store in a fresh file, removed with the directory after the case.
struct OnDisk {
    _dir: TempDir,
    store: Arc<dyn AppStore>,
}

impl OnDisk {
    fn new() -> Self {
        let dir = TempDir::new("sqlite-store");
        let path = dir.path().join("data").join("store.db");
        let store = Arc::new(SqliteStore::open(&path).expect("a database file"));
        Self { _dir: dir, store }
    }
}

impl conformance::Fixture for OnDisk {
    fn store(&self) -> Arc<dyn AppStore> {
        Arc::clone(&self.store)
    }
}

mod memory {
    acceptance::store_conformance_tests!(|| async { Some(super::in_memory()) });
}

mod file {
    acceptance::store_conformance_tests!(|| async { Some(super::OnDisk::new()) });
}

/// `run_all` is what other adapters may call instead of the macro: it must
/// run every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_passes_in_memory() {
    conformance::run_all(|| async { in_memory() }).await;
}

/// A file keeps what was committed when the store is opened again.
#[tokio::test]
async fn a_reopened_file_keeps_its_data() {
    use acceptance::support::{SequentialIds, configuration, create_session, t0, tenant};
    let dir = TempDir::new("sqlite-reopen");
    let path = dir.path().join("store.db");
    let ids = SequentialIds::new();
    let created = create_session(&configuration(&tenant("acme"), "kyc"), "user-1", t0(), 60, &ids);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.sessions().commit(&created).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.sessions().get(&tenant("acme"), &created.session.id).await,
        Ok(Some(created.session.clone()))
    );
    assert_eq!(
        store.sessions().list_events(&tenant("acme"), &created.session.id).await,
        Ok(created.events)
    );
}

// ---------------------------------------------------------------------------
// The outbox: the events table, read by the publisher.

mod outbox {
    use acceptance::support::{
        SequentialIds, configuration, create_session, minutes, partner, seconds, start, t0, tenant,
    };
    use functions::adapters::store::sqlite::SqliteStore;
    use korala_domain::events::Event;
    use korala_domain::ids::EventId;
    use korala_domain::ports::{Outbox, Store, StoreError};
    use korala_domain::session::Decision;

    fn ids_of(events: &[Event]) -> Vec<EventId> {
        events.iter().map(|e| e.id.clone()).collect()
    }

    /// Every event, in the order the outbox promises: by occurrence, then id.
    fn oldest_first(mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
        events
    }

    #[tokio::test]
    async fn committed_events_come_out_oldest_first_until_marked() {
        let store = SqliteStore::in_memory().unwrap();
        let ids = SequentialIds::new();
        let config = configuration(&tenant("acme"), "kyc");
        // Committed in another order than they occurred.
        let later = create_session(&config, "user-2", seconds(30), 60, &ids);
        let earlier = create_session(&config, "user-1", t0(), 60, &ids);
        let started = start(&earlier.session, minutes(1), &ids);
        for transition in [&later, &earlier, &started] {
            store.sessions().commit(transition).await.unwrap();
        }
        let all = oldest_first(
            [&later, &earlier, &started]
                .iter()
                .flat_map(|t| t.events.clone())
                .collect(),
        );
        assert!(all.len() >= 4, "several events: {all:?}");
        assert_eq!(ids_of(&all[..earlier.events.len()]), ids_of(&earlier.events));

        assert_eq!(
            store.unpublished_events(100).await,
            Ok(all.clone()),
            "every event, oldest first"
        );
        assert_eq!(
            store.unpublished_events(2).await,
            Ok(all[..2].to_vec()),
            "at most the limit"
        );
        assert_eq!(store.unpublished_events(0).await, Ok(vec![]));

        store.mark_published(&ids_of(&all[..3]), minutes(2)).await.unwrap();
        assert_eq!(
            store.unpublished_events(100).await,
            Ok(all[3..].to_vec()),
            "a published event does not come back"
        );
        let unknown = EventId::generate(&ids);
        assert_eq!(
            store.mark_published(&[all[0].id.clone(), unknown], minutes(3)).await,
            Ok(()),
            "published and unknown ids are ignored"
        );
        assert_eq!(store.mark_published(&[], minutes(3)).await, Ok(()));
        assert_eq!(store.unpublished_events(100).await, Ok(all[3..].to_vec()));

        let resolved = started
            .session
            .resolve(Decision::Approved, "Checked", partner(), minutes(5), &ids)
            .expect("the partner resolves");
        store.sessions().commit(&resolved).await.unwrap();
        let mut waiting = all[3..].to_vec();
        waiting.extend(resolved.events.clone());
        assert_eq!(
            store.unpublished_events(100).await,
            Ok(waiting.clone()),
            "a later commit's events follow"
        );
        store.mark_published(&ids_of(&waiting), minutes(6)).await.unwrap();
        assert_eq!(store.unpublished_events(100).await, Ok(vec![]));
    }

    #[tokio::test]
    async fn a_refused_commit_adds_no_event() {
        let store = SqliteStore::in_memory().unwrap();
        let ids = SequentialIds::new();
        let created = create_session(&configuration(&tenant("acme"), "kyc"), "user-1", t0(), 60, &ids);
        store.sessions().commit(&created).await.unwrap();
        let started = start(&created.session, minutes(1), &ids);
        store.sessions().commit(&started).await.unwrap();
        store
            .mark_published(&ids_of(&created.events), minutes(1))
            .await
            .unwrap();

        assert_eq!(store.sessions().commit(&created).await, Err(StoreError::AlreadyExists));
        let stale = created
            .session
            .resolve(Decision::Rejected, "Too late", partner(), minutes(2), &ids)
            .expect("the partner resolves");
        assert_eq!(store.sessions().commit(&stale).await, Err(StoreError::Conflict));
        assert_eq!(
            store.unpublished_events(100).await,
            Ok(started.events.clone()),
            "only the committed transition's events wait"
        );
    }

    /// The outbox survives a restart: what was not published is published
    /// by the next process.
    #[tokio::test]
    async fn unpublished_events_outlive_the_process() {
        let dir = acceptance::support::TempDir::new("sqlite-outbox");
        let path = dir.path().join("store.db");
        let ids = SequentialIds::new();
        let created = create_session(&configuration(&tenant("acme"), "kyc"), "user-1", t0(), 60, &ids);
        {
            let store = SqliteStore::open(&path).unwrap();
            store.sessions().commit(&created).await.unwrap();
            store
                .mark_published(&ids_of(&created.events[..1]), minutes(1))
                .await
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.unpublished_events(100).await, Ok(created.events[1..].to_vec()));
    }
}

// ---------------------------------------------------------------------------
// The embedded work queue.

mod queue {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use acceptance::api::TestClock;
    use acceptance::support::{TempDir, t0};
    use functions::adapters::queue::sqlite::{MAX_DELAY_SECONDS, MAX_RECEIVES, SqliteQueue};
    use functions::adapters::store::sqlite::SqliteStore;
    use korala_domain::ports::{Clock, MAX_VISIBILITY_SECONDS, Outgoing, Queue, Received};

    /// A queue on a fresh in-memory store, and the clock that moves it.
    fn queue(name: &str) -> (SqliteQueue, Arc<TestClock>) {
        let store = SqliteStore::in_memory().unwrap();
        let clock = Arc::new(TestClock::new(t0()));
        (store.queue(name, Arc::clone(&clock) as Arc<dyn Clock>), clock)
    }

    fn now(bodies: &[&str]) -> Vec<Outgoing> {
        bodies.iter().map(|body| delayed(body, 0)).collect()
    }

    fn delayed(body: &str, delay_seconds: u32) -> Outgoing {
        Outgoing {
            body: body.to_owned(),
            delay_seconds,
        }
    }

    fn bodies(received: &[Received]) -> Vec<&str> {
        received.iter().map(|r| r.body.as_str()).collect()
    }

    fn counts(received: &[Received]) -> Vec<u32> {
        received.iter().map(|r| r.receive_count).collect()
    }

    #[tokio::test]
    async fn a_received_message_is_hidden_until_deleted_or_its_timeout_passes() {
        let (queue, clock) = queue("deliveries");
        queue.send(&now(&["a", "b", "c"])).await.unwrap();
        let first = queue.receive(10, 30).await.unwrap();
        assert_eq!(bodies(&first), ["a", "b", "c"], "oldest first");
        assert_eq!(counts(&first), [1, 1, 1]);
        let receipts: BTreeSet<&str> = first.iter().map(|r| r.receipt.as_str()).collect();
        assert_eq!(receipts.len(), 3, "a receipt per message");
        assert_eq!(
            queue.receive(10, 30).await.unwrap(),
            vec![],
            "hidden while being worked on"
        );

        queue.delete(&first[1].receipt).await.unwrap();
        clock.advance_seconds(29);
        assert_eq!(queue.receive(10, 30).await.unwrap(), vec![]);
        clock.advance_seconds(1);
        let again = queue.receive(10, 30).await.unwrap();
        assert_eq!(
            bodies(&again),
            ["a", "c"],
            "back once the timeout passes; the deleted one is gone"
        );
        assert_eq!(counts(&again), [2, 2]);
        assert!(
            again.iter().all(|r| !receipts.contains(r.receipt.as_str())),
            "fresh receipts"
        );
        for received in &again {
            queue.delete(&received.receipt).await.unwrap();
        }
        clock.advance_seconds(3600);
        assert_eq!(queue.receive(10, 30).await.unwrap(), vec![], "the queue is empty");
    }

    #[tokio::test]
    async fn receive_takes_at_most_max_messages() {
        let (queue, _clock) = queue("deliveries");
        queue.send(&now(&["1", "2", "3", "4", "5"])).await.unwrap();
        assert_eq!(queue.receive(0, 30).await.unwrap(), vec![]);
        assert_eq!(bodies(&queue.receive(2, 30).await.unwrap()), ["1", "2"]);
        assert_eq!(bodies(&queue.receive(2, 30).await.unwrap()), ["3", "4"]);
        assert_eq!(bodies(&queue.receive(2, 30).await.unwrap()), ["5"]);
        assert_eq!(queue.send(&[]).await, Ok(()));
    }

    #[tokio::test]
    async fn a_visibility_timeout_is_at_most_twelve_hours() {
        let (queue, clock) = queue("deliveries");
        queue.send(&now(&["a"])).await.unwrap();
        assert_eq!(queue.receive(1, u32::MAX).await.unwrap().len(), 1);
        clock.advance_seconds(i64::from(MAX_VISIBILITY_SECONDS) - 1);
        assert_eq!(queue.receive(1, 30).await.unwrap(), vec![]);
        clock.advance_seconds(1);
        assert_eq!(bodies(&queue.receive(1, 30).await.unwrap()), ["a"]);
    }

    #[tokio::test]
    async fn retry_after_brings_a_message_back_after_the_seconds_given() {
        let (queue, clock) = queue("deliveries");
        queue.send(&now(&["sooner", "later"])).await.unwrap();
        let received = queue.receive(2, 600).await.unwrap();
        queue.retry_after(&received[0].receipt, 5).await.unwrap();
        queue.retry_after(&received[1].receipt, 3600).await.unwrap();
        clock.advance_seconds(4);
        assert_eq!(queue.receive(10, 600).await.unwrap(), vec![]);
        clock.advance_seconds(1);
        let sooner = queue.receive(10, 600).await.unwrap();
        assert_eq!(bodies(&sooner), ["sooner"], "earlier than its visibility timeout");
        assert_eq!(counts(&sooner), [2]);
        queue.delete(&sooner[0].receipt).await.unwrap();
        clock.advance_seconds(600);
        assert_eq!(
            queue.receive(10, 600).await.unwrap(),
            vec![],
            "later than its visibility timeout"
        );
        clock.advance_seconds(3600 - 605);
        assert_eq!(bodies(&queue.receive(10, 600).await.unwrap()), ["later"]);

        // The receipt stays valid after a retry, as on SQS.
        let (queue, clock) = self::queue("deliveries");
        queue.send(&now(&["kept"])).await.unwrap();
        let received = queue.receive(1, 30).await.unwrap();
        queue.retry_after(&received[0].receipt, 10).await.unwrap();
        queue.delete(&received[0].receipt).await.unwrap();
        clock.advance_seconds(60);
        assert_eq!(
            queue.receive(10, 30).await.unwrap(),
            vec![],
            "deleted with the same receipt"
        );
    }

    #[tokio::test]
    async fn a_stale_receipt_changes_nothing() {
        let (queue, clock) = queue("deliveries");
        queue.send(&now(&["a"])).await.unwrap();
        let first = queue.receive(1, 10).await.unwrap().remove(0);
        clock.advance_seconds(10);
        let second = queue.receive(1, 10).await.unwrap().remove(0);
        assert_eq!((second.body.as_str(), second.receive_count), ("a", 2));
        assert_ne!(first.receipt, second.receipt);

        assert_eq!(queue.delete(&first.receipt).await, Ok(()), "not an error");
        assert_eq!(queue.retry_after(&first.receipt, 0).await, Ok(()), "not an error");
        assert_eq!(queue.delete("no-such-receipt").await, Ok(()));
        assert_eq!(
            queue.receive(1, 10).await.unwrap(),
            vec![],
            "still hidden for its latest receiver"
        );
        clock.advance_seconds(10);
        let third = queue.receive(1, 10).await.unwrap().remove(0);
        assert_eq!((third.body.as_str(), third.receive_count), ("a", 3), "still there");
        queue.delete(&third.receipt).await.unwrap();
        clock.advance_seconds(10);
        assert_eq!(queue.receive(1, 10).await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn send_honours_the_delay_up_to_sqs_limit() {
        let (queue, clock) = queue("deliveries");
        queue
            .send(&[delayed("now", 0), delayed("in 30 s", 30), delayed("in an hour", 3600)])
            .await
            .unwrap();
        assert_eq!(bodies(&queue.receive(10, 7200).await.unwrap()), ["now"]);
        clock.advance_seconds(29);
        assert_eq!(queue.receive(10, 7200).await.unwrap(), vec![]);
        clock.advance_seconds(1);
        assert_eq!(bodies(&queue.receive(10, 7200).await.unwrap()), ["in 30 s"]);
        clock.advance_seconds(i64::from(MAX_DELAY_SECONDS) - 30);
        assert_eq!(
            bodies(&queue.receive(10, 7200).await.unwrap()),
            ["in an hour"],
            "a longer delay is cut to SQS's limit"
        );
    }

    #[tokio::test]
    async fn a_message_received_too_often_is_dead_lettered() {
        let (queue, clock) = queue("deliveries");
        queue.send(&now(&["poison"])).await.unwrap();
        let mut last = None;
        for count in 1..=MAX_RECEIVES {
            let received = queue.receive(10, 10).await.unwrap();
            assert_eq!(counts(&received), [count]);
            last = received.into_iter().next();
            clock.advance_seconds(10);
        }
        queue.send(&now(&["healthy"])).await.unwrap();
        let received = queue.receive(10, 10).await.unwrap();
        assert_eq!(
            bodies(&received),
            ["healthy"],
            "the spent message is not returned again"
        );
        assert_eq!(queue.dead_letters().await, Ok(vec!["poison".to_owned()]));

        let late = last.expect("the last receipt");
        queue.delete(&late.receipt).await.unwrap();
        queue.retry_after(&late.receipt, 0).await.unwrap();
        assert_eq!(
            queue.dead_letters().await,
            Ok(vec!["poison".to_owned()]),
            "a late receiver cannot remove or revive a dead letter"
        );
        queue.delete(&received[0].receipt).await.unwrap();
        clock.advance_seconds(3600);
        assert_eq!(queue.receive(10, 10).await.unwrap(), vec![]);
        assert_eq!(queue.dead_letters().await, Ok(vec!["poison".to_owned()]), "kept");
    }

    #[tokio::test]
    async fn named_queues_in_one_store_are_separate() {
        let store = SqliteStore::in_memory().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(TestClock::new(t0()));
        let deliveries = store.queue("deliveries", Arc::clone(&clock));
        let fanout = store.queue("fanout", Arc::clone(&clock));
        assert_eq!((deliveries.name(), fanout.name()), ("deliveries", "fanout"));
        deliveries.send(&now(&["d1", "d2"])).await.unwrap();
        fanout.send(&now(&["f1"])).await.unwrap();

        let from_fanout = fanout.receive(10, 30).await.unwrap();
        assert_eq!(bodies(&from_fanout), ["f1"]);
        let from_deliveries = deliveries.receive(10, 30).await.unwrap();
        assert_eq!(bodies(&from_deliveries), ["d1", "d2"]);
        fanout.delete(&from_deliveries[0].receipt).await.unwrap();
        deliveries.delete(&from_fanout[0].receipt).await.unwrap();
        assert_eq!(fanout.dead_letters().await, Ok(vec![]));

        // Neither receipt worked on the other queue: both messages come back.
        let later: Arc<TestClock> = Arc::new(TestClock::new(t0() + chrono::Duration::seconds(30)));
        let deliveries = store.queue("deliveries", Arc::clone(&later) as Arc<dyn Clock>);
        let fanout = store.queue("fanout", later as Arc<dyn Clock>);
        assert_eq!(bodies(&deliveries.receive(10, 30).await.unwrap()), ["d1", "d2"]);
        assert_eq!(bodies(&fanout.receive(10, 30).await.unwrap()), ["f1"]);
    }

    /// Workers polling at once each get different messages: a receive is one
    /// write transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_receivers_never_share_a_message() {
        let (queue, _clock) = queue("deliveries");
        let sent: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
        let outgoing: Vec<Outgoing> = sent.iter().map(|body| delayed(body, 0)).collect();
        queue.send(&outgoing).await.unwrap();
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let batch = queue.receive(3, 300).await.unwrap();
                        if batch.is_empty() {
                            return got;
                        }
                        got.extend(batch.into_iter().map(|r| r.body));
                    }
                })
            })
            .collect();
        let mut received = Vec::new();
        for worker in workers {
            received.extend(worker.await.unwrap());
        }
        received.sort();
        assert_eq!(received, sent, "every message once");
    }

    /// The queue lives in the store's file: messages outlive the process.
    #[tokio::test]
    async fn messages_outlive_the_process() {
        let dir = TempDir::new("sqlite-queue");
        let path = dir.path().join("store.db");
        let clock: Arc<dyn Clock> = Arc::new(TestClock::new(t0()));
        {
            let store = SqliteStore::open(&path).unwrap();
            store
                .queue("deliveries", Arc::clone(&clock))
                .send(&now(&["kept"]))
                .await
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let received = store.queue("deliveries", clock).receive(10, 30).await.unwrap();
        assert_eq!(bodies(&received), ["kept"]);
    }
}

/// Reads do not queue behind a write: while the store's writer waits for
/// the file's write lock (another process holds it here; in the local
/// server, another organisation's long transaction), a read still answers
/// from a reader connection of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answers_while_a_write_waits_for_the_lock() {
    use acceptance::support::{configuration, tenant};
    use std::time::Duration;
    let dir = TempDir::new("sqlite-readers");
    let path = dir.path().join("store.db");
    let store = Arc::new(SqliteStore::open(&path).expect("a database file"));
    let acme = tenant("acme");
    store
        .configurations()
        .insert(&configuration(&acme, "kyc"))
        .await
        .unwrap();

    let outside = rusqlite::Connection::open(&path).unwrap();
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();
    let writer = {
        let store = Arc::clone(&store);
        let config = configuration(&acme, "kyb");
        tokio::spawn(async move { store.configurations().insert(&config).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished(), "the write waits for the lock");
    let read = tokio::time::timeout(Duration::from_secs(2), store.configurations().get(&acme, "kyc")).await;
    assert!(
        matches!(read, Ok(Ok(Some(_)))),
        "the read waited for the write: {read:?}"
    );
    let listed = tokio::time::timeout(Duration::from_secs(2), store.configurations().list(&acme)).await;
    assert_eq!(listed.map(|l| l.map(|l| l.len())), Ok(Ok(1)), "only what was committed");

    outside.execute_batch("COMMIT").unwrap();
    writer
        .await
        .unwrap()
        .expect("the write goes through once the lock is free");
    assert_eq!(store.configurations().list(&acme).await.map(|l| l.len()), Ok(2));
}
