//! The transactional outbox's publisher. Every transition commits its events
//! with the session (one SQLite transaction, one DynamoDB transaction); this
//! hands them to the event bus afterwards, at least once, so an event a
//! committed change produced is never lost — a crash between the commit and
//! the publish only delays it.
//!
//! On AWS the table's stream is the outbox: the `outbox-publisher` function
//! receives its records ([`publish_stream`]). On this machine a loop reads
//! the embedded store's unpublished events ([`publish_pending`]).

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use korala_domain::events::Event;
use korala_domain::ports::{Clock, EventBus, Outbox, PublishError, StoreError};

use crate::adapters::store::dynamodb::EVENT_DOCUMENT as DOC;
use crate::adapters::store::dynamodb::keys::EVENT_PREFIX;
use crate::adapters::store::dynamodb::table::SORT_KEY;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Publishes up to `limit` of the embedded store's unpublished events and
/// marks those the bus took; returns how many. Events the bus refused stay
/// unpublished for the next call.
pub async fn publish_pending(
    outbox: &dyn Outbox,
    bus: &dyn EventBus,
    clock: &dyn Clock,
    limit: u32,
) -> Result<usize, OutboxError> {
    let events = outbox.unpublished_events(limit).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let result = bus.publish(&events).await;
    let failed = match &result {
        Ok(()) => &[][..],
        Err(error) => &error.failed[..],
    };
    let taken: Vec<&Event> = events.iter().filter(|e| !failed.contains(&e.id)).collect();
    let published: Vec<_> = taken.iter().map(|e| e.id.clone()).collect();
    outbox.mark_published(&published, clock.now()).await?;
    // Counted once marked: unmarked events are published again.
    crate::runtime::metrics::published(taken);
    result?;
    Ok(published.len())
}

/// What a stream record holds for the publisher.
#[derive(Debug)]
enum Record {
    /// A new event item.
    Event(Event),
    /// Any other change (sessions, endpoints, deliveries, removals).
    Other,
    /// An event item that does not decode: a bug, reported rather than
    /// skipped so the stream stops there (and its failure destination gets
    /// it) instead of losing the event.
    Unreadable(String),
}

fn classify(record: &EventRecord) -> Record {
    let is_event = matches!(
        record.change.keys.get(SORT_KEY),
        Some(serde_dynamo::AttributeValue::S(sk)) if sk.starts_with(EVENT_PREFIX)
    );
    if !is_event || record.event_name != "INSERT" {
        return Record::Other;
    }
    match record.change.new_image.get(DOC) {
        Some(serde_dynamo::AttributeValue::S(doc)) => match serde_json::from_str(doc) {
            Ok(event) => Record::Event(event),
            // Not the error's message: serde quotes the values it could not
            // read, and events hold external user ids and reasons.
            Err(e) => Record::Unreadable(format!(
                "the event item does not decode ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            )),
        },
        _ => Record::Unreadable(format!(
            "the event item has no `{DOC}` string (is the stream NEW_IMAGE?)"
        )),
    }
}

/// The `outbox-publisher` function: publishes the event items among the
/// stream records and reports the first record not published, so Lambda
/// retries the batch from there (the stream keeps order; the events after it
/// are published again, which at least once allows).
pub async fn publish_stream(bus: &dyn EventBus, stream: StreamEvent) -> DynamoDbEventResponse {
    let mut events = Vec::new();
    // (sequence number, event id) of each event, in stream order.
    let mut positions = Vec::new();
    let mut first_failure: Option<String> = None;
    for record in &stream.records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        match classify(record) {
            Record::Event(event) => {
                positions.push((sequence, event.id.clone()));
                events.push(event);
            }
            Record::Other => {}
            Record::Unreadable(reason) => {
                tracing::error!(sequence = %sequence, reason, "unreadable outbox record");
                first_failure = Some(sequence);
                break;
            }
        }
    }
    // Events up to the first refused one are published for good: Lambda
    // retries the batch from the refused one, publishing those after it again.
    let mut settled = events.len();
    if !events.is_empty()
        && let Err(error) = bus.publish(&events).await
    {
        tracing::warn!(error = %error, "publishing outbox events failed");
        if let Some(index) = positions.iter().position(|(_, id)| error.failed.contains(id)) {
            first_failure = Some(positions[index].0.clone());
            settled = index;
        }
    }
    crate::runtime::metrics::published(&events[..settled]);
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = first_failure {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    tracing::info!(
        events = events.len(),
        records = stream.records.len(),
        "outbox stream batch"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use korala_domain::ids::EventId;
    use std::sync::Mutex;

    /// A bus that refuses the events whose type is listed.
    #[derive(Default)]
    struct Recording {
        published: Mutex<Vec<EventId>>,
        refuse: Vec<&'static str>,
    }

    #[async_trait]
    impl EventBus for Recording {
        async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
            let (refused, taken): (Vec<&Event>, Vec<&Event>) = events
                .iter()
                .partition(|e| self.refuse.contains(&e.kind.name().as_str()));
            self.published
                .lock()
                .unwrap()
                .extend(taken.iter().map(|e| e.id.clone()));
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

    fn stream() -> StreamEvent {
        serde_json::from_str(include_str!("../../../events/outbox-publisher.json")).unwrap()
    }

    #[tokio::test]
    async fn only_event_inserts_are_published() {
        let bus = Recording::default();
        let response = publish_stream(&bus, stream()).await;
        assert!(response.batch_item_failures.is_empty());
        let published = bus.published.lock().unwrap().clone();
        assert_eq!(published.len(), 2, "{published:?}");
    }

    /// The fixture's events: the session completed, then resolved.
    const COMPLETED: &str = "SessionOutcomes{Mode=sandbox,Status=completed}";
    const RESOLVED: &str = "SessionsResolved{Mode=sandbox,Decision=approved,ResolvedBy=auto}";

    #[tokio::test]
    async fn published_events_are_counted() {
        let tally = crate::runtime::metrics::Tally::default();
        let _local = tally.record_here();
        publish_stream(&Recording::default(), stream()).await;
        let counted = tally.counters();
        assert_eq!(counted.len(), 2, "{counted:?}");
        assert_eq!((counted[COMPLETED], counted[RESOLVED]), (1, 1));
    }

    #[tokio::test]
    async fn events_published_again_after_a_refusal_are_counted_once() {
        let tally = crate::runtime::metrics::Tally::default();
        let _local = tally.record_here();
        let refusing = Recording {
            refuse: vec!["session_completed"],
            ..Default::default()
        };
        publish_stream(&refusing, stream()).await;
        assert!(tally.counters().is_empty(), "{:?}", tally.counters());
        // Lambda retries from the refused record: both are published now.
        publish_stream(&Recording::default(), stream()).await;
        assert_eq!((tally.counter(COMPLETED), tally.counter(RESOLVED)), (1, 1));
    }

    #[tokio::test]
    async fn an_unreadable_event_is_reported_without_its_values() {
        let mut stream = stream();
        let record = stream
            .records
            .iter_mut()
            .find(|r| matches!(classify(r), Record::Event(_)))
            .unwrap();
        let Some(serde_dynamo::AttributeValue::S(doc)) = record.change.new_image.get_mut(DOC) else {
            panic!("the fixture's event has a document");
        };
        *doc = doc.replace("\"version\":", "\"version\":\"Jane Marker\",\"was\":");
        let Record::Unreadable(reason) = classify(record) else {
            panic!("the altered event should not decode");
        };
        assert!(!reason.contains("Marker"), "{reason}");
        assert!(reason.contains("line 1"), "{reason}");
    }

    #[tokio::test]
    async fn the_first_refused_event_is_the_failure_reported() {
        let bus = Recording {
            refuse: vec!["session_completed"],
            ..Default::default()
        };
        let stream = stream();
        let completed = stream
            .records
            .iter()
            .find(|r| matches!(classify(r), Record::Event(e) if e.kind.name() == "session_completed"))
            .and_then(|r| r.change.sequence_number.clone())
            .unwrap();
        let response = publish_stream(&bus, stream).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier, Some(completed));
    }
}
