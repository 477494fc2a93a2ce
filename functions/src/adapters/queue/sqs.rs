//! SQS as a work queue: the webhook events and deliveries queues on AWS (the
//! messaging topology is in [`crate::adapters::topology`]).
//!
//! Where SQS differs from the port's wording:
//! - a batch send can succeed as a request and still refuse some entries; the
//!   refused ones are sent again, alone, unless SQS blames the message itself
//!   (a sender fault), which no retry can fix;
//! - a receipt that no longer names a message in flight (deleted, or received
//!   again by someone else since) is not an error for delete or retry: the
//!   message is done, or another consumer's now, and a slow consumer must not
//!   fail over it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::types::{BatchResultErrorEntry, Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use korala_domain::ports::{MAX_VISIBILITY_SECONDS, Outgoing, Queue, QueueError, Received};

/// SQS takes at most this many entries in one `SendMessageBatch` and returns
/// at most this many messages from one `ReceiveMessage`.
const MAX_BATCH: usize = 10;
/// How many times a batch's refused entries are sent in all (the first
/// request included), after a pause that doubles from [`FIRST_BACKOFF`].
const SEND_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The `Queue` on one SQS queue. Cloning shares the client (and its
/// connection pool).
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends one batch of at most [`MAX_BATCH`] messages, whose entry ids are
    /// their positions in the whole `send` (so an error names the message).
    async fn send_batch(&self, batch: &[(usize, &Outgoing)]) -> Result<(), QueueError> {
        let mut pending: Vec<(usize, &Outgoing)> = batch.to_vec();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=SEND_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(index, message)| entry(*index, message))
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| failure("SendMessageBatch", e))?;
            if output.failed().is_empty() {
                return Ok(());
            }
            let refused: Vec<&BatchResultErrorEntry> = output.failed().iter().filter(|f| f.sender_fault()).collect();
            if !refused.is_empty() {
                return Err(QueueError::Unavailable(format!(
                    "SQS refused {}",
                    describe(&refused.into_iter().cloned().collect::<Vec<_>>())
                )));
            }
            if attempt == SEND_ATTEMPTS {
                return Err(QueueError::Unavailable(format!(
                    "SQS did not take {} after {SEND_ATTEMPTS} attempts",
                    describe(output.failed())
                )));
            }
            pending.retain(|(index, _)| output.failed().iter().any(|f| f.id() == index.to_string()));
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Ok(())
    }
}

fn entry(index: usize, message: &Outgoing) -> Result<SendMessageBatchRequestEntry, QueueError> {
    SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(&message.body)
        .delay_seconds(seconds(message.delay_seconds))
        .build()
        .map_err(|e| QueueError::Unavailable(format!("cannot build the SendMessageBatch entry: {e}")))
}

/// "message 3: InternalError (…), message 7: …" from a batch's failed entries.
fn describe(failed: &[BatchResultErrorEntry]) -> String {
    let each: Vec<String> = failed
        .iter()
        .map(|f| match f.message() {
            Some(why) => format!("message {}: {} ({why})", f.id(), f.code()),
            None => format!("message {}: {}", f.id(), f.code()),
        })
        .collect();
    each.join(", ")
}

/// The SDK takes seconds as `i32`; a value past it is out of SQS's range
/// anyway, and SQS says so.
fn seconds(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A failed request, after the SDK's own retries of throttling, timeouts and
/// 5xx answers. `DisplayErrorContext` because the `SdkError`'s Display alone
/// only says "service error".
fn failure<E>(operation: &str, error: SdkError<E>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    QueueError::Unavailable(format!("SQS {operation} failed: {}", DisplayErrorContext(&error)))
}

/// How many times the message was received, this time included. SQS always
/// returns the attribute when asked; were it missing, 1 keeps the consumer
/// going (the queue's redrive policy still catches a poison message).
fn receive_count(message: &Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError> {
        let numbered: Vec<(usize, &Outgoing)> = messages.iter().enumerate().collect();
        for batch in numbered.chunks(MAX_BATCH) {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    async fn receive(&self, max: u32, visibility_seconds: u32) -> Result<Vec<Received>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(MAX_BATCH as u32);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(seconds(max))
            .visibility_timeout(seconds(visibility_seconds.min(MAX_VISIBILITY_SECONDS)))
            // Short polling: the callers poll on their own schedule (or are
            // invoked by the event source mapping) and must not block here.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| failure("ReceiveMessage", e))?;
        let mut received = Vec::new();
        for message in output.messages() {
            // Without a receipt handle the message cannot be deleted or
            // retried; SQS always sends one, and if it did not, the message
            // would simply come back after its visibility timeout.
            let Some(receipt) = message.receipt_handle() else {
                tracing::warn!(
                    message_id = message.message_id(),
                    "SQS returned a message without a receipt handle"
                );
                continue;
            };
            received.push(Received {
                receipt: receipt.to_owned(),
                body: message.body().unwrap_or_default().to_owned(),
                receive_count: receive_count(message),
            });
        }
        Ok(received)
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let result = self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteMessageError::ReceiptHandleIsInvalid(_))
                ) =>
            {
                tracing::debug!("deleting with a stale receipt: the message is no longer this consumer's");
                Ok(())
            }
            Err(e) => Err(failure("DeleteMessage", e)),
        }
    }

    async fn retry_after(&self, receipt: &str, seconds_from_now: u32) -> Result<(), QueueError> {
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(seconds_from_now.min(MAX_VISIBILITY_SECONDS)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(
                        ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)
                            | ChangeMessageVisibilityError::MessageNotInflight(_)
                    )
                ) =>
            {
                tracing::debug!("retrying with a stale receipt: the message is no longer this consumer's");
                Ok(())
            }
            Err(e) => Err(failure("ChangeMessageVisibility", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str, code: &str, message: Option<&str>) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .code(code)
            .sender_fault(false)
            .set_message(message.map(str::to_owned))
            .build()
            .unwrap()
    }

    #[test]
    fn failures_name_each_message_and_why() {
        let text = describe(&[
            failed("3", "InternalError", Some("try again")),
            failed("12", "ServiceUnavailable", None),
        ]);
        assert_eq!(
            text,
            "message 3: InternalError (try again), message 12: ServiceUnavailable"
        );
    }

    #[test]
    fn entries_carry_their_position_and_delay() {
        let message = Outgoing {
            body: "{}".into(),
            delay_seconds: 30,
        };
        let built = entry(17, &message).unwrap();
        assert_eq!(
            (built.id(), built.message_body(), built.delay_seconds()),
            ("17", "{}", Some(30))
        );
    }

    #[test]
    fn a_missing_receive_count_counts_as_the_first() {
        let without = Message::builder().receipt_handle("r").body("b").build();
        assert_eq!(receive_count(&without), 1);
        let with = Message::builder()
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "4")
            .build();
        assert_eq!(receive_count(&with), 4);
    }
}
