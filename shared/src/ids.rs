//! Typed, prefixed identifiers (`ses_…`, `swf_…`, …) and the port that mints
//! their time-ordered bodies.

use serde::{Deserialize, Serialize};

/// Mints the body of a new identifier. Implementations must return bodies that
/// sort in creation order (the adapters use UUIDv7), so that ids double as a
/// newest-first sort key.
pub trait IdGenerator: Send + Sync {
    fn next_body(&self) -> String;
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate(ids: &dyn IdGenerator) -> Self {
                Self(format!("{}_{}", $prefix, ids.next_body()))
            }

            /// Accepts only well-formed ids of this type, so a path segment of
            /// the wrong kind is a plain "not found".
            pub fn parse(s: &str) -> Option<Self> {
                let body = s.strip_prefix($prefix)?.strip_prefix('_')?;
                let ok = !body.is_empty()
                    && body.len() <= 64
                    && body.bytes().all(|b| b.is_ascii_alphanumeric());
                ok.then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An organisation: the tenant every resource belongs to.
    OrgId, "org");
id_type!(SessionId, "ses");
id_type!(SessionWorkflowId, "swf");
id_type!(ParticipantId, "par");
id_type!(CheckId, "chk");
id_type!(EventId, "evt");
id_type!(
    /// A partner's webhook endpoint: where an organisation's events are sent.
    WebhookEndpointId, "whe");
id_type!(
    /// A file an end user was given a URL to upload, until a submission claims it.
    UploadId, "upl");
id_type!(
    /// A file of a case: an upload a submission claimed.
    DocumentId, "doc");
id_type!(
    /// One event's delivery to one endpoint, with its attempts: stable across
    /// retries and redeliveries.
    WebhookDeliveryId, "whd");

impl WebhookDeliveryId {
    /// The one delivery of `event` to `endpoint`: the same however often the
    /// event is fanned out (a redelivered queue message finds it taken).
    /// Both bodies are time-ordered, so deliveries sort by their event.
    pub fn for_event(event: &EventId, endpoint: &WebhookEndpointId) -> Self {
        let body = |id: &str| id.split_once('_').map_or("", |(_, body)| body).to_owned();
        Self(format!("{}_{}{}", Self::PREFIX, body(&event.0), body(&endpoint.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl IdGenerator for Fixed {
        fn next_body(&self) -> String {
            "0192abcd".into()
        }
    }

    #[test]
    fn prefixes_are_checked() {
        let id = SessionId::generate(&Fixed);
        assert_eq!(id.as_str(), "ses_0192abcd");
        assert_eq!(SessionId::parse("ses_0192abcd"), Some(id));
        assert_eq!(SessionId::parse("swf_0192abcd"), None);
        assert_eq!(SessionId::parse("ses_"), None);
        assert_eq!(SessionId::parse("ses_a/b"), None);
        assert_eq!(SessionId::parse("session_1"), None);
    }

    #[test]
    fn webhook_ids_have_their_own_prefixes() {
        let endpoint = WebhookEndpointId::generate(&Fixed);
        assert_eq!(endpoint.as_str(), "whe_0192abcd");
        assert_eq!(WebhookEndpointId::parse("whe_0192abcd"), Some(endpoint));
        assert_eq!(WebhookEndpointId::parse("whd_0192abcd"), None);
        let delivery = WebhookDeliveryId::generate(&Fixed);
        assert_eq!(delivery.as_str(), "whd_0192abcd");
        assert_eq!(WebhookDeliveryId::parse("whd_0192abcd"), Some(delivery));
        assert_eq!(WebhookDeliveryId::parse("whe_0192abcd"), None);
    }
}
