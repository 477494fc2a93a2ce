//! The deliveries queue's message, between what fills it (the fan-out, a
//! test send, a redelivery) and the dispatcher that signs and sends each
//! delivery until it is delivered or dead-lettered.

use korala_domain::delivery::WebhookDelivery;
use korala_domain::ids::WebhookDeliveryId;
use korala_domain::ports::Outgoing;
use korala_domain::tenancy::Tenant;
use serde::{Deserialize, Serialize};

/// A message of the deliveries queue: which delivery to attempt. The
/// delivery itself (body, attempts, when it is due) lives in the store, so a
/// duplicate or late message only re-reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryMessage {
    pub tenant: Tenant,
    pub delivery_id: WebhookDeliveryId,
}

impl DeliveryMessage {
    pub fn of(delivery: &WebhookDelivery) -> Self {
        Self {
            tenant: delivery.tenant.clone(),
            delivery_id: delivery.id.clone(),
        }
    }

    /// The message to send now.
    pub fn outgoing(&self) -> Outgoing {
        Outgoing {
            // Two ids serialise without fail.
            body: serde_json::to_string(self).unwrap_or_default(),
            delay_seconds: 0,
        }
    }
}
