//! The event bus port's adapters: EventBridge on AWS, in process on this
//! machine. Either way the webhook events queue receives the same message:
//! an EventBridge envelope whose `detail` is the event.

pub mod eventbridge;

use std::sync::Arc;

use async_trait::async_trait;
use korala_domain::events::{Event, EventKind};
use korala_domain::ports::{EventBus, Outgoing, PublishError, Queue};
use serde::{Deserialize, Serialize};

pub use eventbridge::SOURCE;

/// The envelope EventBridge wraps an event in when a rule sends it to a
/// queue: the fields the consumers read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: Event,
}

impl Envelope {
    pub fn of(event: &Event) -> Self {
        Self {
            detail_type: event.kind.name(),
            source: SOURCE.to_owned(),
            detail: event.clone(),
        }
    }
}

/// The bus of the local server: what the EventBridge rules do on AWS, in
/// process — the six webhook types go to the webhook events queue, check
/// requests to the checks queue, the others nowhere.
pub struct InProcessBus {
    webhook_events: Arc<dyn Queue>,
    checks: Option<Arc<dyn Queue>>,
}

impl InProcessBus {
    pub fn new(webhook_events: Arc<dyn Queue>) -> Self {
        Self {
            webhook_events,
            checks: None,
        }
    }

    /// Also routes check requests, to `checks`.
    pub fn with_checks(mut self, checks: Arc<dyn Queue>) -> Self {
        self.checks = Some(checks);
        self
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError> {
        let is_request = |e: &&Event| matches!(e.kind, EventKind::SessionCheckRequested { .. });
        let requests: Vec<&Event> = events.iter().filter(is_request).collect();
        let webhooks: Vec<&Event> = events.iter().filter(|e| e.kind.webhook().is_some()).collect();
        let mut failures = Vec::new();
        if let Some(checks) = &self.checks {
            failures.extend(send(checks.as_ref(), &requests).await.err());
        }
        failures.extend(send(self.webhook_events.as_ref(), &webhooks).await.err());
        // Both routes are tried: a refused one fails only its own events.
        match failures.into_iter().reduce(|mut all, more| {
            all.failed.extend(more.failed);
            all.reason = format!("{}; {}", all.reason, more.reason);
            all
        }) {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}

/// Each event in its envelope, in one batch.
async fn send(queue: &dyn Queue, routed: &[&Event]) -> Result<(), PublishError> {
    let mut messages = Vec::with_capacity(routed.len());
    for event in routed {
        let body = serde_json::to_string(&Envelope::of(event)).map_err(|e| PublishError {
            failed: vec![event.id.clone()],
            reason: e.to_string(),
        })?;
        messages.push(Outgoing { body, delay_seconds: 0 });
    }
    if messages.is_empty() {
        return Ok(());
    }
    queue.send(&messages).await.map_err(|e| PublishError {
        failed: routed.iter().map(|e| e.id.clone()).collect(),
        reason: e.to_string(),
    })
}
