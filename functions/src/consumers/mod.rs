//! The consumers: the work behind the API, each the entry of a function of
//! its own (`functions::runtime::lambda::EVENT_ENTRIES`).
//!
//! This module runs the queue consumers (the fan-out, the dispatcher, the
//! checks worker): as Lambda functions on SQS batches, or as loops polling
//! a queue in the local server.
//! Both run the same consumer on each message and treat its answer the same
//! way: done → the message goes; retry in n seconds → the message comes back
//! then (its visibility timeout is changed); error → it comes back after its
//! visibility timeout, and after the queue's receive limit it is
//! dead-lettered.

pub mod checks_worker;
pub mod deliveries;
pub mod dispatcher;
pub mod expiry;
pub mod fanout;
pub mod outbox;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use korala_domain::delivery::Next;
use korala_domain::ports::{MAX_VISIBILITY_SECONDS, Queue, QueueError};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::consumers::dispatcher::Dispatcher;
use crate::consumers::fanout::FanOut;

/// How long a received message stays hidden while it is handled: above a
/// delivery attempt's timeout, with room to record it.
pub const VISIBILITY_SECONDS: u32 = 60;

/// A received message, as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub body: String,
    /// How many times the queue has handed it out, this time included.
    pub receive_count: u32,
}

/// A queue's consumer: what to do with one message.
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    async fn handle(&self, message: &Message) -> Result<Next, String>;
}

#[async_trait]
impl Consumer for Dispatcher {
    async fn handle(&self, message: &Message) -> Result<Next, String> {
        Dispatcher::handle(self, &message.body).await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Consumer for FanOut {
    async fn handle(&self, message: &Message) -> Result<Next, String> {
        FanOut::handle(self, &message.body)
            .await
            .map(|_| Next::Done)
            .map_err(|e| e.to_string())
    }
}

/// Seconds as a visibility timeout.
fn visibility(seconds: i64) -> u32 {
    u32::try_from(seconds.max(0)).map_or(MAX_VISIBILITY_SECONDS, |s| s.min(MAX_VISIBILITY_SECONDS))
}

/// One message's outcome, by its receipt.
async fn handle_all(
    consumer: &Arc<dyn Consumer>,
    messages: Vec<(String, Message)>,
) -> Vec<(String, Result<Next, String>)> {
    let mut tasks = JoinSet::new();
    for (receipt, message) in messages {
        let consumer = consumer.clone();
        // Spawned tasks start outside any span: this keeps the invocation's
        // (its request id and function) on what each message's handling logs.
        let handled = async move {
            let outcome = consumer.handle(&message).await;
            (receipt, outcome)
        };
        tasks.spawn(handled.in_current_span());
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            // A panicking consumer loses only its message's answer: the
            // message comes back after its visibility timeout.
            Err(e) => tracing::error!(error = %e, "a queue consumer task failed"),
        }
    }
    outcomes
}

/// An SQS-triggered function's batch: every message handled concurrently;
/// the ones to retry later (or that failed) are reported as batch item
/// failures, so SQS keeps them and deletes the rest.
pub async fn sqs_batch(consumer: Arc<dyn Consumer>, queue: &dyn Queue, event: SqsEvent) -> SqsBatchResponse {
    let mut ids = Vec::new();
    let mut messages = Vec::new();
    for record in event.records {
        let (Some(id), Some(receipt)) = (record.message_id, record.receipt_handle) else {
            continue;
        };
        ids.push((receipt.clone(), id));
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let body = record.body.unwrap_or_default();
        messages.push((receipt, Message { body, receive_count }));
    }
    let mut response = SqsBatchResponse::default();
    for (receipt, outcome) in handle_all(&consumer, messages).await {
        let keep = match outcome {
            Ok(Next::Done) => false,
            Ok(Next::RetryIn(seconds)) => {
                if let Err(e) = queue.retry_after(&receipt, visibility(seconds)).await {
                    tracing::warn!(error = %e, "cannot reschedule a message; it returns after its visibility timeout");
                }
                true
            }
            Err(error) => {
                tracing::warn!(error, "a message failed; the queue brings it back");
                true
            }
        };
        if keep && let Some((_, id)) = ids.iter().find(|(r, _)| *r == receipt) {
            response.add_failure(id.clone());
        }
    }
    response
}

/// One pass of a local poller: receives a batch, handles it, deletes or
/// reschedules each message. Returns how many messages it received.
pub async fn poll_once(consumer: &Arc<dyn Consumer>, queue: &dyn Queue) -> Result<usize, QueueError> {
    let received = queue.receive(10, VISIBILITY_SECONDS).await?;
    let count = received.len();
    let messages = received
        .into_iter()
        .map(|m| {
            let message = Message {
                body: m.body,
                receive_count: m.receive_count,
            };
            (m.receipt, message)
        })
        .collect();
    for (receipt, outcome) in handle_all(consumer, messages).await {
        match outcome {
            Ok(Next::Done) => queue.delete(&receipt).await?,
            Ok(Next::RetryIn(seconds)) => queue.retry_after(&receipt, visibility(seconds)).await?,
            Err(error) => tracing::warn!(error, "a message failed; the queue brings it back"),
        }
    }
    Ok(count)
}
