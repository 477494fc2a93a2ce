//! The fan-out: the webhook events queue's consumer. Each session event the
//! bus routed here becomes one delivery per endpoint of the organisation
//! that subscribes to its type, stored, then queued for the dispatcher.
//!
//! Idempotent: a delivery's id is its event's and endpoint's, so a
//! redelivered message finds the deliveries already stored and only queues
//! them again (the dispatcher drops messages for finished deliveries). A
//! failure before the queue accepted every message fails the message, and
//! the queue brings it back.

use std::sync::Arc;

use korala_domain::delivery::WebhookDelivery;
use korala_domain::events::Event;
use korala_domain::ports::{Clock, Queue, QueueError, Store, StoreError};

use super::deliveries::DeliveryMessage;
use crate::adapters::bus::Envelope;

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error("not an event envelope: {0}")]
    BadMessage(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Clone)]
pub struct FanOut {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    deliveries: Arc<dyn Queue>,
}

impl FanOut {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, deliveries: Arc<dyn Queue>) -> Self {
        Self {
            store,
            clock,
            deliveries,
        }
    }

    /// Handles one queue message: an EventBridge envelope around an event.
    pub async fn handle(&self, body: &str) -> Result<usize, FanOutError> {
        let envelope: Envelope = serde_json::from_str(body)?;
        self.fan_out(&envelope.detail).await
    }

    /// Stores and queues the event's deliveries; returns how many endpoints
    /// receive it.
    pub async fn fan_out(&self, event: &Event) -> Result<usize, FanOutError> {
        let Some(kind) = event.kind.webhook() else {
            return Ok(0);
        };
        let now = self.clock.now();
        let mut messages = Vec::new();
        for endpoint in self.store.endpoints().list(&event.tenant).await? {
            if !endpoint.subscribes_to(kind) {
                continue;
            }
            let Some(delivery) = WebhookDelivery::for_event(event, &endpoint, now) else {
                continue;
            };
            match self.store.deliveries().insert(&delivery).await {
                Ok(()) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
            messages.push(DeliveryMessage::of(&delivery).outgoing());
        }
        if !messages.is_empty() {
            self.deliveries.send(&messages).await?;
        }
        Ok(messages.len())
    }
}
