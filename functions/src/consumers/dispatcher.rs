//! The dispatcher: the deliveries queue's consumer. Each message names a
//! delivery; the dispatcher signs its body (Standard Webhooks), POSTs it,
//! records the attempt with a conditional write and says when the message
//! should come back — the retry schedule is the domain's
//! ([`WebhookDelivery::record`]), carried out by the queue's visibility
//! timeout, never by sleeping.
//!
//! At least once, each attempt once: a duplicate message finds the delivery
//! finished (dropped) or not yet due (put back until it is), and of two
//! copies racing on one attempt only the one whose claim is written sends
//! ([`WebhookDelivery::claim`]): one more write per attempt, so a partner
//! never receives the same attempt twice.

use std::sync::Arc;

use korala_domain::delivery::{ATTEMPT_LEASE_SECONDS, AttemptOutcome, DeliveredEvent, Next, WebhookDelivery};
use korala_domain::ids::WebhookDeliveryId;
use korala_domain::ports::{Clock, Store, StoreError};
use korala_domain::tenancy::Tenant;
use korala_domain::webhooks::{UrlPolicy, check_url};

use super::deliveries::DeliveryMessage;
use crate::adapters::crypto::Sealer;
use crate::adapters::outbound::{DeliveryClient, Posted};
use crate::adapters::standard_webhooks::SigningSecret;
use crate::app::App;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("not a delivery message: {0}")]
    BadMessage(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The endpoint's sealed secret does not open: a deployment problem
    /// (another master key), retried until an operator fixes it.
    #[error("cannot open the signing secret of endpoint {endpoint}: {reason}")]
    Secret { endpoint: String, reason: String },
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sealer: Arc<Sealer>,
    policy: UrlPolicy,
    client: DeliveryClient,
}

impl Dispatcher {
    pub fn new(app: &App) -> std::io::Result<Self> {
        Ok(Self {
            store: app.store.clone(),
            clock: app.clock.clone(),
            sealer: app.sealer.clone(),
            policy: app.settings.webhook_urls,
            client: DeliveryClient::new(app.settings.webhook_urls)?,
        })
    }

    /// Handles one queue message.
    pub async fn handle(&self, body: &str) -> Result<Next, DispatchError> {
        let message: DeliveryMessage = serde_json::from_str(body)?;
        self.deliver(&message.tenant, &message.delivery_id).await
    }

    pub async fn deliver(&self, tenant: &Tenant, id: &WebhookDeliveryId) -> Result<Next, DispatchError> {
        let Some(delivery) = self.store.deliveries().get(tenant, id).await? else {
            tracing::warn!(delivery = %id, "a message names a delivery that does not exist");
            return Ok(Next::Done);
        };
        let claimed = match delivery.claim(self.clock.now()) {
            Ok(claimed) => claimed,
            Err(not_due) => return Ok(not_due),
        };
        // Claimed before sending: of two copies of this message handled at
        // once, the one whose claim loses sends nothing.
        match self.store.deliveries().update(&claimed).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(Next::RetryIn(ATTEMPT_LEASE_SECONDS)),
            Err(StoreError::NotFound) => return Ok(Next::Done),
            Err(e) => return Err(e.into()),
        }
        let posted = self.attempt(&claimed).await?;
        let (recorded, next) = claimed.record(posted.outcome, posted.latency_ms, self.clock.now());
        match self.store.deliveries().update(&recorded).await {
            Ok(()) => {
                log(&recorded, posted.detail.as_deref());
                crate::runtime::metrics::delivery_attempt(&recorded);
                Ok(next)
            }
            // Changed since the claim (a redelivery through the API, or a
            // claim that lapsed); the current record says what to do.
            Err(StoreError::Conflict) => Ok(self
                .store
                .deliveries()
                .get(tenant, id)
                .await?
                .and_then(|current| current.due(self.clock.now()))
                .unwrap_or(Next::RetryIn(1))),
            Err(StoreError::NotFound) => Ok(Next::Done),
            Err(e) => Err(e.into()),
        }
    }

    /// One attempt, or the reason none is made. Signed at the moment of
    /// sending: `webhook-timestamp` is the attempt's time, so receivers that
    /// refuse old timestamps accept a retry hours later.
    async fn attempt(&self, delivery: &WebhookDelivery) -> Result<Posted, DispatchError> {
        let skipped = |reason: &str| {
            Ok(Posted {
                outcome: AttemptOutcome::Skipped { reason: reason.into() },
                latency_ms: 0,
                detail: None,
            })
        };
        let Some(endpoint) = self
            .store
            .endpoints()
            .get(&delivery.tenant, &delivery.endpoint_id)
            .await?
        else {
            return skipped("the webhook endpoint was deleted");
        };
        // A test event goes out even to a disabled endpoint: the partner
        // asked for it, to check the endpoint before enabling it.
        if !endpoint.enabled && matches!(delivery.event, DeliveredEvent::Session(_)) {
            return skipped("the webhook endpoint is disabled");
        }
        if let Err(refusal) = check_url(&endpoint.url, self.policy) {
            return skipped(&format!("the endpoint's URL is no longer allowed: {refusal}"));
        }
        let secret_error = |reason: String| DispatchError::Secret {
            endpoint: endpoint.id.to_string(),
            reason,
        };
        let secret = self
            .sealer
            .open(&endpoint.sealed_secret)
            .map_err(|e| secret_error(e.to_string()))?;
        let secret = SigningSecret::parse(&secret).map_err(|e| secret_error(e.to_string()))?;
        let payload = delivery.payload.as_bytes();
        let headers = secret
            .headers(delivery.event_id.as_str(), self.clock.now().timestamp(), payload)
            .map_err(|e| secret_error(e.to_string()))?;
        Ok(self.client.post(&endpoint.url, &headers, &delivery.payload).await)
    }
}

/// The attempt just recorded, with the client's `detail` of a failure (the
/// delivery log has only its category).
fn log(delivery: &WebhookDelivery, detail: Option<&str>) {
    let Some(attempt) = delivery.attempts.last() else {
        return;
    };
    let (status_code, error) = match &attempt.outcome {
        AttemptOutcome::Responded { status_code } => (Some(*status_code), None),
        AttemptOutcome::Unreachable { error } => (None, Some(error.to_string())),
        AttemptOutcome::Skipped { reason } => (None, Some(reason.clone())),
    };
    tracing::info!(
        delivery = %delivery.id,
        endpoint = %delivery.endpoint_id,
        event = %delivery.event_id,
        round = delivery.round,
        attempt = delivery.attempts_this_round(),
        status_code,
        error,
        detail,
        latency_ms = attempt.latency_ms,
        succeeded = attempt.outcome.succeeded(),
        "webhook delivery attempt"
    );
}
