//! The stream reader that plays Lambda's event source mapping, on DynamoDB
//! Local's real stream: transitions committed through the store come out
//! of it in commit order and in the Lambda event format, its commits take
//! the outbox publisher's responses as the mapping does, and the publisher
//! fed from it publishes exactly the committed events.
//!
//! DynamoDB Local must be running and `AWS_ENDPOINT_URL_DYNAMODB` point at
//! it: `scripts/test` starts it around `cargo test`. Without it these tests
//! fail rather than pass by skipping.

use std::cmp::Ordering;
use std::sync::Mutex;

use acceptance::dynamodb::Table;
use acceptance::support::{
    SequentialIds, configuration, create_session, minutes, organization, start, submit, t0, tenant, webhook_endpoint,
};
use async_trait::async_trait;
use functions::adapters::stream::{StreamReader, streams_client};
use functions::consumers::outbox::publish_stream;
use korala_domain::events::Event;
use korala_domain::ids::EventId;
use korala_domain::ports::{EventBus, PublishError, Store, Tenancy};
use korala_domain::transition::Transition;
use serde_json::{Value, json};

async fn reader(table: &Table) -> StreamReader {
    StreamReader::connect(table.store.client(), streams_client().await, &table.name)
        .await
        .unwrap_or_else(|e| panic!("reading the stream of {}: {e}", table.name))
}

async fn commit(store: &dyn Store, transitions: &[&Transition]) {
    for transition in transitions {
        store
            .sessions()
            .commit(transition)
            .await
            .expect("the transition commits");
    }
}

/// A session created, started and submitted (so completed), and another
/// one created: four transactions, committed in this order.
fn transitions(ids: &SequentialIds) -> [Transition; 4] {
    let config = configuration(&tenant("acme"), "kyc");
    let created = create_session(&config, "user-1", t0(), 60, ids);
    let started = start(&created.session, minutes(1), ids);
    let submitted = submit(&started.session, minutes(2), ids);
    let other = create_session(&config, "user-2", minutes(3), 60, ids);
    [created, started, submitted, other]
}

/// The batch as the function receives it, in Lambda's JSON.
fn records(batch: Value) -> Vec<Value> {
    match batch.get("Records") {
        Some(Value::Array(records)) => records.clone(),
        other => panic!("a batch holds `Records`: {other:?}"),
    }
}

fn sequence(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap_or_else(|| panic!("a record has a SequenceNumber: {record}"))
        .to_owned()
}

fn sequences(records: &[Value]) -> Vec<String> {
    records.iter().map(sequence).collect()
}

/// The domain events the records insert, in stream order.
fn inserted_events(records: &[Value]) -> Vec<Event> {
    records
        .iter()
        .filter(|r| r["eventName"] == "INSERT" && r["dynamodb"]["Keys"]["SK"]["S"].as_str().is_some_and(is_event_key))
        .map(|r| {
            let doc = r["dynamodb"]["NewImage"]["doc"]["S"]
                .as_str()
                .expect("an event item's doc");
            serde_json::from_str(doc).expect("an event item's doc decodes")
        })
        .collect()
}

fn is_event_key(sk: &str) -> bool {
    sk.starts_with(functions::adapters::store::dynamodb::keys::EVENT_PREFIX)
}

fn event_ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id.clone()).collect()
}

/// Sequence numbers are decimal strings longer than a u64.
fn sequence_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_delivers_committed_transitions_in_order_until_committed() {
    acceptance::require!(DynamoDbLocal);
    let table = Table::new().await;
    let store = &table.store;
    let ids = SequentialIds::new();
    let [created, started, submitted, other] = transitions(&ids);
    commit(store, &[&created, &started, &submitted, &other]).await;
    let reader = reader(&table).await;

    let batch = reader.next_batch(1000).await.expect("a batch");
    let delivered = records(serde_json::to_value(&batch).expect("the batch serialises"));
    // Each transaction writes the session and its events; the session item is
    // inserted once per session and modified by the two later transitions.
    let event_count: usize = [&created, &started, &submitted, &other]
        .iter()
        .map(|t| t.events.len())
        .sum();
    assert_eq!(delivered.len(), event_count + 4, "{delivered:#?}");
    let events = inserted_events(&delivered);
    let expected: Vec<Event> = [&created, &started, &submitted, &other]
        .iter()
        .flat_map(|t| t.events.iter().cloned())
        .collect();
    assert_eq!(events, expected, "every committed event, in commit order");

    // The format Lambda delivers.
    for record in &delivered {
        assert_eq!(record["eventSource"], "aws:dynamodb", "{record}");
        assert_eq!(record["eventSourceARN"], reader.stream_arn(), "{record}");
        assert!(record["awsRegion"].as_str().is_some_and(|r| !r.is_empty()), "{record}");
        assert!(record["eventID"].as_str().is_some_and(|id| !id.is_empty()), "{record}");
        assert_eq!(record["eventVersion"], "1.1", "{record}");
        let change = &record["dynamodb"];
        assert_eq!(change["StreamViewType"], "NEW_AND_OLD_IMAGES", "{record}");
        assert!(change["SizeBytes"].as_i64().is_some_and(|n| n > 0), "{record}");
        assert!(
            change["ApproximateCreationDateTime"]
                .as_f64()
                .is_some_and(|t| t > 1.6e9),
            "{record}"
        );
        assert!(change["Keys"]["PK"]["S"].is_string() && change["Keys"]["SK"]["S"].is_string());
        assert_eq!(change["NewImage"]["PK"], change["Keys"]["PK"]);
        match record["eventName"].as_str() {
            Some("INSERT") => assert!(change.get("OldImage").is_none_or(|old| old == &json!({})), "{record}"),
            // The session's update: the version it replaced, and the new one.
            Some("MODIFY") => {
                let version = |image: &str| change[image]["version"]["N"].as_str().map(str::parse::<u64>);
                let (Some(Ok(old)), Some(Ok(new))) = (version("OldImage"), version("NewImage")) else {
                    panic!("a session update carries both versions: {record}");
                };
                assert_eq!(old + 1, new, "{record}");
            }
            other => panic!("only inserts and updates were committed, not {other:?}"),
        }
    }
    let order = sequences(&delivered);
    assert!(
        order.windows(2).all(|w| sequence_order(&w[0], &w[1]) == Ordering::Less),
        "in stream order: {order:?}"
    );

    // Nothing is done until committed.
    let again = reader.next_batch(1000).await.expect("a batch");
    assert_eq!(
        records(serde_json::to_value(&again).expect("the batch serialises")),
        delivered,
        "the same records again"
    );

    let done = serde_json::from_value(json!({ "batchItemFailures": [] })).expect("a response");
    reader.commit(&again, &done);
    let empty = reader.next_batch(1000).await.expect("a batch");
    assert!(empty.records.is_empty(), "every record committed: {empty:?}");

    // What is committed next comes after.
    let restarted = start(&other.session, minutes(4), &ids);
    commit(store, &[&restarted]).await;
    let next = records(serde_json::to_value(reader.next_batch(1000).await.expect("a batch")).expect("JSON"));
    assert_eq!(inserted_events(&next), restarted.events);
    assert_eq!(
        next.len(),
        restarted.events.len() + 1,
        "its events and the session's update"
    );
    assert_eq!(
        sequence_order(&order[order.len() - 1], &sequence(&next[0])),
        Ordering::Less
    );
    drop(table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_failure_is_where_the_next_batch_starts() {
    acceptance::require!(DynamoDbLocal);
    let table = Table::new().await;
    let store = &table.store;
    let ids = SequentialIds::new();
    let [created, started, submitted, other] = transitions(&ids);
    commit(store, &[&created, &started, &submitted, &other]).await;
    let reader = reader(&table).await;

    // A batch of two, then the rest.
    let first = reader.next_batch(2).await.expect("a batch");
    let all = records(serde_json::to_value(reader.next_batch(1000).await.expect("a batch")).expect("JSON"));
    assert_eq!(
        records(serde_json::to_value(&first).expect("JSON")),
        all[..2].to_vec(),
        "the oldest two"
    );
    let done = serde_json::from_value(json!({ "batchItemFailures": [] })).expect("a response");
    reader.commit(&first, &done);
    let batch = reader.next_batch(1000).await.expect("a batch");
    let rest = records(serde_json::to_value(&batch).expect("JSON"));
    assert_eq!(rest, all[2..].to_vec(), "the records after the two committed");

    // The batch's fifth record failed: the next batch starts with it.
    let failed = sequence(&rest[4]);
    let response =
        serde_json::from_value(json!({ "batchItemFailures": [{ "itemIdentifier": failed }] })).expect("a response");
    reader.commit(&batch, &response);
    let retried = records(serde_json::to_value(reader.next_batch(1000).await.expect("a batch")).expect("JSON"));
    assert_eq!(sequence(&retried[0]), failed);
    assert_eq!(retried, rest[4..].to_vec(), "from the failed record on");

    // A failure that names no record of the batch fails all of it, as on Lambda.
    let retried_batch = reader.next_batch(1000).await.expect("a batch");
    let unknown =
        serde_json::from_value(json!({ "batchItemFailures": [{ "itemIdentifier": "1" }] })).expect("a response");
    reader.commit(&retried_batch, &unknown);
    let again = records(serde_json::to_value(reader.next_batch(1000).await.expect("a batch")).expect("JSON"));
    assert_eq!(again, retried);

    let last = reader.next_batch(1000).await.expect("a batch");
    reader.commit(&last, &done);
    assert!(reader.next_batch(1000).await.expect("a batch").records.is_empty());
    drop(table);
}

/// A bus that keeps what it publishes and refuses the events whose type is listed.
#[derive(Default)]
struct Recording {
    published: Mutex<Vec<Event>>,
    refuse: Vec<&'static str>,
}

impl Recording {
    fn refusing(kinds: &[&'static str]) -> Self {
        Self {
            refuse: kinds.to_vec(),
            ..Self::default()
        }
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.published.lock().expect("the recording"))
    }
}

#[async_trait]
impl EventBus for Recording {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let (refused, taken): (Vec<&Event>, Vec<&Event>) = events
            .iter()
            .partition(|e| self.refuse.contains(&e.kind.name().as_str()));
        self.published
            .lock()
            .expect("the recording")
            .extend(taken.into_iter().cloned());
        if refused.is_empty() {
            Ok(())
        } else {
            Err(PublishError {
                failed: refused.iter().map(|e| e.id.clone()).collect(),
                reason: "refused".into(),
            })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_publisher_fed_from_the_stream_publishes_exactly_the_committed_events() {
    acceptance::require!(DynamoDbLocal);
    let table = Table::new().await;
    let store = &table.store;
    let ids = SequentialIds::new();
    let acme = tenant("acme");
    // Records that are not events are in the stream too.
    store
        .insert_organization(&organization(&acme.org_id, "Acme"))
        .await
        .expect("the organisation");
    let [created, started, submitted, other] = transitions(&ids);
    commit(store, &[&created, &started, &submitted, &other]).await;
    store
        .endpoints()
        .insert(&webhook_endpoint(&acme, "https://example.com/hook", t0(), &ids))
        .await
        .expect("the endpoint");
    let reader = reader(&table).await;

    let bus = Recording::default();
    let batch = reader.next_batch(1000).await.expect("a batch");
    let response = publish_stream(&bus, batch.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let mut history = store
        .sessions()
        .list_events(&acme, &created.session.id)
        .await
        .expect("the history");
    history.extend(
        store
            .sessions()
            .list_events(&acme, &other.session.id)
            .await
            .expect("the history"),
    );
    assert_eq!(bus.take(), history, "every committed event once, in commit order");
    reader.commit(&batch, &response);
    let empty = reader.next_batch(1000).await.expect("a batch");
    assert!(publish_stream(&bus, empty).await.batch_item_failures.is_empty());
    assert_eq!(bus.take(), vec![], "nothing published twice");

    // The other session completes, and the bus refuses its completion: the
    // stream delivers it again, and the events after it.
    let started_other = start(&other.session, minutes(4), &ids);
    let completed_other = submit(&started_other.session, minutes(5), &ids);
    commit(store, &[&started_other, &completed_other]).await;
    let refusing = Recording::refusing(&["session_completed"]);
    let batch = reader.next_batch(1000).await.expect("a batch");
    let response = publish_stream(&refusing, batch.clone()).await;
    assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    let first_try = refusing.take();
    reader.commit(&batch, &response);

    let batch = reader.next_batch(1000).await.expect("a batch");
    let retried = records(serde_json::to_value(&batch).expect("JSON"));
    assert_eq!(
        Some(sequence(&retried[0])),
        response.batch_item_failures[0].item_identifier,
        "the next batch starts at the refused event"
    );
    let response = publish_stream(&bus, batch.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let second_try = bus.take();
    assert_eq!(second_try[0].kind.name(), "session_completed");
    reader.commit(&batch, &response);
    assert!(reader.next_batch(1000).await.expect("a batch").records.is_empty());

    // Every new event published, the refused one only on the retry and
    // those after it (published already) again: at least once, in order.
    let new_events: Vec<Event> = [&started_other, &completed_other]
        .iter()
        .flat_map(|t| t.events.iter().cloned())
        .collect();
    let refused_at = new_events
        .iter()
        .position(|e| e.kind.name() == "session_completed")
        .expect("the session completed");
    let mut expected_first = new_events.clone();
    expected_first.remove(refused_at);
    assert_eq!(event_ids(&first_try), event_ids(&expected_first));
    assert_eq!(event_ids(&second_try), event_ids(&new_events[refused_at..]));
    let history = store
        .sessions()
        .list_events(&acme, &other.session.id)
        .await
        .expect("the history");
    assert!(history.ends_with(&new_events), "the store's history holds them");
    drop(table);
}
