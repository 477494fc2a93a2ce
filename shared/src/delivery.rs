//! Webhook deliveries: one event sent to one endpoint, every attempt it
//! took, and when the next one is due.
//!
//! A delivery is identified by its event and endpoint together
//! ([`WebhookDeliveryId::for_event`]), so fanning the same event out twice
//! (a redelivered queue message) finds the delivery already there instead
//! of sending the event twice. The body is rendered once, when the delivery
//! is created, and sent byte for byte on every attempt: the signature covers
//! it, and a partner that de-duplicates on `webhook-id` sees the same event.
//!
//! Retries follow the Standard Webhooks schedule ([`RETRY_DELAYS_SECONDS`]):
//! eight attempts over about 27 hours, after which the delivery is
//! dead-lettered (`failed`) and waits in the log for a redelivery, which
//! starts a new round of eight.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::events::{Event, EventKind};
use crate::ids::{EventId, IdGenerator, WebhookDeliveryId, WebhookEndpointId};
use crate::session::{Decision, ResolvedBy, SessionStatus};
use crate::tenancy::Tenant;
use crate::webhooks::{WebhookEndpoint, WebhookEvent};

/// The wait before each retry: the first within seconds, then growing, for
/// more than 24 hours in all (the Standard Webhooks schedule).
pub const RETRY_DELAYS_SECONDS: [i64; 7] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600];
/// Attempts in one round: the first and its retries.
pub const ATTEMPTS_PER_ROUND: u32 = RETRY_DELAYS_SECONDS.len() as u32 + 1;
/// The log keeps this many attempts of a delivery, the latest: redeliveries
/// must not grow a stored item without bound.
pub const MAX_LOGGED_ATTEMPTS: usize = 40;
/// How long a dispatcher's claim on an attempt holds ([`WebhookDelivery::claim`]):
/// well beyond an attempt's timeout, so a claim never lapses mid-attempt.
pub const ATTEMPT_LEASE_SECONDS: i64 = 60;
/// A pending delivery this far past its due time has lost its queue message
/// (the queue refused it, or an operator purged it): it may be redelivered
/// like a finished one. Far above any message delay or visibility timeout.
pub const STALLED_AFTER_SECONDS: i64 = 15 * 60;

/// What a delivery carries: one of the six session events, or the test
/// event a partner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeliveredEvent {
    Session(WebhookEvent),
    Test(TestEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestEvent {
    WebhookTest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub tenant: Tenant,
    pub endpoint_id: WebhookEndpointId,
    /// Sent as `webhook-id`: the same on every attempt and redelivery.
    pub event_id: EventId,
    pub event: DeliveredEvent,
    /// The exact body sent, rendered once.
    pub payload: String,
    #[serde(flatten)]
    pub state: DeliveryState,
    /// 1 for the first round of attempts, one more per redelivery.
    pub round: u32,
    /// The latest attempts, oldest first (at most [`MAX_LOGGED_ATTEMPTS`]).
    pub attempts: Vec<Attempt>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// 1 when created, one more with every change (the store's write guard).
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum DeliveryState {
    /// Waiting for its next attempt, due at `next_attempt_at`.
    Pending { next_attempt_at: Timestamp },
    /// The endpoint answered 2xx.
    Delivered { delivered_at: Timestamp },
    /// Dead-lettered: the round's attempts are spent, or the endpoint is
    /// gone or disabled. A redelivery starts a new round.
    Failed { failed_at: Timestamp },
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub round: u32,
    pub attempted_at: Timestamp,
    pub latency_ms: u64,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, rename_all = "camelCase")]
pub enum AttemptOutcome {
    /// The endpoint answered with this HTTP status.
    Responded {
        #[serde(rename = "statusCode")]
        status_code: u16,
    },
    /// No answer, and why, as a category only.
    Unreachable { error: Unreachable },
    /// Not attempted: the endpoint was deleted or disabled meanwhile.
    Skipped { reason: String },
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, AttemptOutcome::Responded { status_code } if (200..300).contains(status_code))
    }
}

/// Why an attempt got no answer, as the partner's delivery log shows it.
///
/// A category and nothing more: the details (what a name resolved to, the
/// names on a certificate, the socket's error) describe this service's
/// network and resolver, not the partner's endpoint, so they go to the
/// operator's logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", from = "String")]
pub enum Unreachable {
    /// The host name does not resolve.
    Dns,
    /// It resolves only to addresses the URL policy refuses.
    RefusedAddress,
    /// No connection, or it broke before an answer.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer within the attempt's deadline.
    Timeout,
}

impl From<String> for Unreachable {
    /// A category by its name; any other text is an attempt stored when the
    /// log kept the client's error message, read as the category it names
    /// (the next write of the delivery stores the category alone).
    fn from(text: String) -> Self {
        match text.as_str() {
            "dns" => Unreachable::Dns,
            "refused_address" => Unreachable::RefusedAddress,
            "connect" => Unreachable::Connect,
            "tls" => Unreachable::Tls,
            "timeout" => Unreachable::Timeout,
            message => Unreachable::of_message(message),
        }
    }
}

impl Unreachable {
    /// The category of an error message as the client wrote them before
    /// categories: hyper's chain of causes, or the attempt's deadline.
    fn of_message(message: &str) -> Self {
        let lower = message.to_lowercase();
        if lower.contains("may not reach") {
            Unreachable::RefusedAddress
        } else if lower.contains("no response within") || lower.contains("timed out") {
            Unreachable::Timeout
        } else if lower.contains("dns error") {
            Unreachable::Dns
        } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            Unreachable::Tls
        } else {
            Unreachable::Connect
        }
    }
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unreachable::Dns => "dns",
            Unreachable::RefusedAddress => "refused_address",
            Unreachable::Connect => "connect",
            Unreachable::Tls => "tls",
            Unreachable::Timeout => "timeout",
        })
    }
}

/// What the dispatcher does with a delivery's queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing more to send: delivered or dead-lettered.
    Done,
    /// Try again after this many seconds.
    RetryIn(i64),
}

/// Why a delivery cannot be redelivered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedeliveryRefused {
    #[error("the delivery is still being attempted; redeliver it once it has been delivered or has failed")]
    StillPending,
}

impl WebhookDelivery {
    /// The delivery of a session event to an endpoint that subscribes to it,
    /// due now; `None` for an event partners do not receive, and for an
    /// endpoint of another tenant: a live event never reaches a test-mode
    /// endpoint, nor the reverse.
    pub fn for_event(event: &Event, endpoint: &WebhookEndpoint, now: Timestamp) -> Option<Self> {
        if event.tenant != endpoint.tenant {
            return None;
        }
        let webhook = event.kind.webhook()?;
        Some(Self::new(
            WebhookDeliveryId::for_event(&event.id, &endpoint.id),
            endpoint,
            event.id.clone(),
            DeliveredEvent::Session(webhook),
            render_event(event, webhook),
            now,
        ))
    }

    /// A signed test event for the endpoint, due now, whatever types it
    /// subscribes to and even if it is disabled: the partner asked for it.
    pub fn test(endpoint: &WebhookEndpoint, ids: &dyn IdGenerator, now: Timestamp) -> Self {
        let event_id = EventId::generate(ids);
        let payload = serde_json::json!({
            "eventId": event_id,
            "event": TestEvent::WebhookTest,
            "timestamp": now,
            "data": {
                "webhookEndpointId": endpoint.id,
                "message": "A test event from Korala. Verify its signature with this endpoint's secret.",
            },
        })
        .to_string();
        Self::new(
            WebhookDeliveryId::for_event(&event_id, &endpoint.id),
            endpoint,
            event_id,
            DeliveredEvent::Test(TestEvent::WebhookTest),
            payload,
            now,
        )
    }

    fn new(
        id: WebhookDeliveryId,
        endpoint: &WebhookEndpoint,
        event_id: EventId,
        event: DeliveredEvent,
        payload: String,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            tenant: endpoint.tenant.clone(),
            endpoint_id: endpoint.id.clone(),
            event_id,
            event,
            payload,
            state: DeliveryState::Pending { next_attempt_at: now },
            round: 1,
            attempts: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// What to do with a queue message for this delivery at `now`: attempt
    /// it (`None`), wait, or drop the message (a duplicate of one that
    /// already finished the delivery).
    pub fn due(&self, now: Timestamp) -> Option<Next> {
        match self.state {
            DeliveryState::Pending { next_attempt_at } if next_attempt_at > now => {
                Some(Next::RetryIn((next_attempt_at - now).num_seconds().max(1)))
            }
            DeliveryState::Pending { .. } => None,
            DeliveryState::Delivered { .. } | DeliveryState::Failed { .. } => Some(Next::Done),
        }
    }

    /// Takes the attempt that is due at `now` for one queue message: the
    /// next version, not due again for [`ATTEMPT_LEASE_SECONDS`]. Written
    /// with a version check before sending, so of two copies of a message
    /// only one sends; if its attempt is never recorded (the process died),
    /// a redelivered message finds the delivery due again when the lease
    /// ends. `Err` says what to do with a message for a delivery not due.
    pub fn claim(&self, now: Timestamp) -> Result<WebhookDelivery, Next> {
        if let Some(next) = self.due(now) {
            return Err(next);
        }
        let mut next = self.clone();
        next.state = DeliveryState::Pending {
            next_attempt_at: now + chrono::Duration::seconds(ATTEMPT_LEASE_SECONDS),
        };
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }

    /// The attempts of the current round so far.
    pub fn attempts_this_round(&self) -> u32 {
        self.attempts.iter().filter(|a| a.round == self.round).count() as u32
    }

    /// Records an attempt made at `now` and schedules what follows: delivered
    /// on a 2xx; otherwise the next retry of the schedule, or dead-lettered
    /// once the round's attempts are spent (at once if the endpoint is gone).
    /// The result is the next version.
    pub fn record(&self, outcome: AttemptOutcome, latency_ms: u64, now: Timestamp) -> (WebhookDelivery, Next) {
        let mut next = self.clone();
        let succeeded = outcome.succeeded();
        let skipped = matches!(outcome, AttemptOutcome::Skipped { .. });
        next.attempts.push(Attempt {
            round: self.round,
            attempted_at: now,
            latency_ms,
            outcome,
        });
        if next.attempts.len() > MAX_LOGGED_ATTEMPTS {
            let excess = next.attempts.len() - MAX_LOGGED_ATTEMPTS;
            next.attempts.drain(..excess);
        }
        let made = self.attempts_this_round() + 1;
        let (state, step) = if succeeded {
            (DeliveryState::Delivered { delivered_at: now }, Next::Done)
        } else if skipped || made >= ATTEMPTS_PER_ROUND {
            (DeliveryState::Failed { failed_at: now }, Next::Done)
        } else {
            let delay = RETRY_DELAYS_SECONDS[made as usize - 1];
            (
                DeliveryState::Pending {
                    next_attempt_at: now + chrono::Duration::seconds(delay),
                },
                Next::RetryIn(delay),
            )
        };
        next.state = state;
        next.updated_at = now;
        next.version += 1;
        (next, step)
    }

    /// A new round of attempts, the first due now: for a delivery that was
    /// delivered (the partner lost it), dead-lettered, or stalled.
    pub fn redeliver(&self, now: Timestamp) -> Result<WebhookDelivery, RedeliveryRefused> {
        if let DeliveryState::Pending { next_attempt_at } = self.state
            && (now - next_attempt_at).num_seconds() < STALLED_AFTER_SECONDS
        {
            return Err(RedeliveryRefused::StillPending);
        }
        let mut next = self.clone();
        next.state = DeliveryState::Pending { next_attempt_at: now };
        next.round += 1;
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }
}

/// The webhook body of a session event (api.md): `{eventId, event,
/// timestamp, data}`, with the session's status and resolution as of the
/// transition that produced the event.
fn render_event(event: &Event, webhook: WebhookEvent) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        event_id: &'a EventId,
        event: WebhookEvent,
        timestamp: &'a Timestamp,
        data: Data<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Data<'a> {
        session_id: &'a crate::ids::SessionId,
        external_user_id: &'a str,
        status: SessionStatus,
        resolution: Option<Decision>,
        #[serde(skip_serializing_if = "Option::is_none")]
        resolved_by: Option<ResolvedBy>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_workflow_id: Option<&'a crate::ids::SessionWorkflowId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        sandbox: bool,
    }
    let (resolved_by, reason) = match &event.kind {
        EventKind::SessionResolved {
            resolved_by, reason, ..
        } => (Some(*resolved_by), reason.as_deref()),
        EventKind::SessionWorkflowFailed { reason, .. } => (None, Some(reason.as_str())),
        _ => (None, None),
    };
    let body = Body {
        event_id: &event.id,
        event: webhook,
        timestamp: &event.occurred_at,
        data: Data {
            session_id: &event.session_id,
            external_user_id: &event.external_user_id,
            status: event.status,
            resolution: event.resolution,
            resolved_by,
            session_workflow_id: event.kind.session_workflow_id(),
            reason,
            sandbox: event.tenant.is_sandbox(),
        },
    };
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OrgId, SessionId};
    use crate::session::Decision;
    use crate::tenancy::{Actor, Mode};
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counter(AtomicU32);
    impl IdGenerator for Counter {
        fn next_body(&self) -> String {
            format!("{:08}", self.0.fetch_add(1, Ordering::Relaxed))
        }
    }

    fn at(seconds: i64) -> Timestamp {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(seconds)
    }

    fn endpoint(ids: &Counter) -> WebhookEndpoint {
        WebhookEndpoint {
            id: WebhookEndpointId::generate(ids),
            tenant: Tenant::new(OrgId::generate(ids), Mode::Test),
            url: "https://hooks.example.com/korala".into(),
            events: vec![WebhookEvent::SessionResolved],
            enabled: true,
            sealed_secret: "sealed".into(),
            description: None,
            created_at: at(0),
            updated_at: at(0),
            version: 1,
        }
    }

    fn event(ids: &Counter, tenant: &Tenant, kind: EventKind) -> Event {
        Event {
            id: EventId::generate(ids),
            tenant: tenant.clone(),
            session_id: SessionId::generate(ids),
            external_user_id: "user-1".into(),
            version: 4,
            sequence: 0,
            occurred_at: at(100),
            actor: Actor::System,
            status: SessionStatus::Completed,
            resolution: Some(Decision::Approved),
            kind,
        }
    }

    fn resolved() -> EventKind {
        EventKind::SessionResolved {
            decision: Decision::Approved,
            resolved_by: ResolvedBy::Auto,
            reason: None,
        }
    }

    /// Test mode and live mode are separate worlds: an event reaches only
    /// the endpoints of its own organisation in its own mode.
    #[test]
    fn an_event_is_delivered_only_to_its_own_tenants_endpoints() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let live = Tenant::new(endpoint.tenant.org_id.clone(), Mode::Live);
        let other_org = Tenant::new(OrgId::generate(&ids), Mode::Test);
        for tenant in [live, other_org] {
            let event = event(&ids, &tenant, resolved());
            assert_eq!(WebhookDelivery::for_event(&event, &endpoint, at(101)), None, "{tenant}");
        }
        let own = event(&ids, &endpoint.tenant, resolved());
        let delivery = WebhookDelivery::for_event(&own, &endpoint, at(101)).unwrap();
        assert_eq!(delivery.tenant, endpoint.tenant);
    }

    #[test]
    fn the_body_is_the_documented_shape() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let delivery = WebhookDelivery::for_event(&event, &endpoint, at(101)).unwrap();
        let body: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "eventId": event.id,
                "event": "session_resolved",
                "timestamp": "1970-01-01T00:01:40Z",
                "data": {
                    "sessionId": event.session_id,
                    "externalUserId": "user-1",
                    "status": "completed",
                    "resolution": "approved",
                    "resolvedBy": "auto",
                    "sandbox": true,
                },
            })
        );
        assert_eq!(delivery.event, DeliveredEvent::Session(WebhookEvent::SessionResolved));
    }

    #[test]
    fn only_the_six_webhook_types_are_delivered() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let started = event(&ids, &endpoint.tenant, EventKind::SessionStarted);
        assert!(WebhookDelivery::for_event(&started, &endpoint, at(1)).is_none());
    }

    #[test]
    fn the_id_is_the_same_for_the_same_event_and_endpoint() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let first = WebhookDelivery::for_event(&event, &endpoint, at(1)).unwrap();
        let again = WebhookDelivery::for_event(&event, &endpoint, at(9)).unwrap();
        assert_eq!(first.id, again.id);
        let other = WebhookEndpoint {
            id: WebhookEndpointId::generate(&ids),
            ..endpoint.clone()
        };
        assert_ne!(WebhookDelivery::for_event(&event, &other, at(1)).unwrap().id, first.id);
        assert!(WebhookDeliveryId::parse(first.id.as_str()).is_some());
    }

    #[test]
    fn failures_follow_the_schedule_then_dead_letter() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let mut delivery = WebhookDelivery::for_event(&event, &endpoint, at(0)).unwrap();
        let mut now = at(0);
        let mut waits = Vec::new();
        for _ in 0..ATTEMPTS_PER_ROUND {
            assert_eq!(delivery.due(now), None, "due at {now}");
            let (next, step) = delivery.record(AttemptOutcome::Responded { status_code: 503 }, 12, now);
            delivery = next;
            match step {
                Next::RetryIn(seconds) => {
                    assert_eq!(delivery.due(now), Some(Next::RetryIn(seconds)));
                    waits.push(seconds);
                    now += chrono::Duration::seconds(seconds);
                }
                Next::Done => break,
            }
        }
        assert_eq!(waits, RETRY_DELAYS_SECONDS);
        assert!(waits.iter().sum::<i64>() >= 24 * 3600);
        assert_eq!(delivery.state, DeliveryState::Failed { failed_at: now });
        assert_eq!(delivery.attempts.len(), ATTEMPTS_PER_ROUND as usize);
        assert_eq!(delivery.due(now), Some(Next::Done));
        assert_eq!(delivery.version, 1 + u64::from(ATTEMPTS_PER_ROUND));
    }

    #[test]
    fn a_2xx_delivers_and_a_redelivery_starts_a_new_round() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let delivery = WebhookDelivery::for_event(&event, &endpoint, at(0)).unwrap();
        assert_eq!(delivery.redeliver(at(1)), Err(RedeliveryRefused::StillPending));
        let stalled = delivery.redeliver(at(STALLED_AFTER_SECONDS)).unwrap();
        assert_eq!((stalled.round, stalled.due(at(STALLED_AFTER_SECONDS))), (2, None));
        let (failed_once, _) = delivery.record(
            AttemptOutcome::Unreachable {
                error: Unreachable::Connect,
            },
            3,
            at(0),
        );
        let (delivered, step) = failed_once.record(AttemptOutcome::Responded { status_code: 204 }, 8, at(5));
        assert_eq!(step, Next::Done);
        assert_eq!(delivered.state, DeliveryState::Delivered { delivered_at: at(5) });
        let again = delivered.redeliver(at(60)).unwrap();
        assert_eq!(again.round, 2);
        assert_eq!(again.attempts_this_round(), 0);
        assert_eq!(again.due(at(60)), None);
        assert_eq!(again.attempts.len(), 2, "the log keeps the earlier round");
    }

    #[test]
    fn a_gone_endpoint_dead_letters_at_once() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let delivery = WebhookDelivery::for_event(&event, &endpoint, at(0)).unwrap();
        let (next, step) = delivery.record(
            AttemptOutcome::Skipped {
                reason: "the endpoint is disabled".into(),
            },
            0,
            at(0),
        );
        assert_eq!(step, Next::Done);
        assert!(matches!(next.state, DeliveryState::Failed { .. }));
    }

    #[test]
    fn the_log_is_bounded() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let mut delivery = WebhookDelivery::test(&endpoint, &ids, at(0));
        for round in 0..10 {
            for _ in 0..ATTEMPTS_PER_ROUND {
                delivery = delivery
                    .record(
                        AttemptOutcome::Unreachable {
                            error: Unreachable::Tls,
                        },
                        1,
                        at(round),
                    )
                    .0;
            }
            delivery = delivery.redeliver(at(round)).unwrap();
        }
        assert_eq!(delivery.attempts.len(), MAX_LOGGED_ATTEMPTS);
    }

    #[test]
    fn deliveries_round_trip_as_stored() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let delivery = WebhookDelivery::test(&endpoint, &ids, at(0));
        let (delivery, _) = delivery.record(AttemptOutcome::Responded { status_code: 500 }, 7, at(1));
        let (delivery, _) = delivery.record(
            AttemptOutcome::Unreachable {
                error: Unreachable::Timeout,
            },
            7,
            at(6),
        );
        let (delivery, _) = delivery.record(AttemptOutcome::Skipped { reason: "gone".into() }, 0, at(9));
        let json = serde_json::to_string(&delivery).unwrap();
        assert_eq!(serde_json::from_str::<WebhookDelivery>(&json).unwrap(), delivery);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["status"], "failed");
        assert_eq!(value["event"], "webhook_test");
        assert_eq!(value["attempts"][0]["statusCode"], 500);
        assert_eq!(
            value["attempts"][1],
            json!({"round": 1, "attemptedAt": at(6), "latencyMs": 7, "error": "timeout"})
        );
    }

    #[test]
    fn a_failure_is_logged_as_its_category_alone() {
        for (category, name) in [
            (Unreachable::Dns, "dns"),
            (Unreachable::RefusedAddress, "refused_address"),
            (Unreachable::Connect, "connect"),
            (Unreachable::Tls, "tls"),
            (Unreachable::Timeout, "timeout"),
        ] {
            let outcome = AttemptOutcome::Unreachable { error: category };
            assert_eq!(serde_json::to_value(&outcome).unwrap(), json!({"error": name}));
            assert_eq!(category.to_string(), name);
            assert_eq!(
                serde_json::from_value::<AttemptOutcome>(json!({"error": name})).unwrap(),
                outcome
            );
        }
    }

    /// Attempts stored while the log kept the client's message read as the
    /// category the message names, and are written back as that alone.
    #[test]
    fn attempts_stored_with_a_message_read_as_its_category() {
        for (message, category) in [
            (
                "client error (Connect): dns error: hooks.example resolves only to addresses deliveries may not \
                 reach (10.0.0.7)",
                Unreachable::RefusedAddress,
            ),
            (
                "client error (Connect): dns error: failed to lookup address information: Name or service not known",
                Unreachable::Dns,
            ),
            (
                "client error (Connect): tcp connect error: Connection refused (os error 111)",
                Unreachable::Connect,
            ),
            (
                "client error (Connect): invalid peer certificate: certificate not valid for name \"a.example\"",
                Unreachable::Tls,
            ),
            ("no response within 10 seconds", Unreachable::Timeout),
            (
                "client error (Connect): tcp connect error: connection timed out",
                Unreachable::Timeout,
            ),
            (
                "client error (SendRequest): connection closed before message completed",
                Unreachable::Connect,
            ),
        ] {
            let read: AttemptOutcome = serde_json::from_value(json!({"error": message})).unwrap();
            assert_eq!(read, AttemptOutcome::Unreachable { error: category }, "{message}");
            assert_eq!(
                serde_json::to_value(&read).unwrap(),
                json!({"error": category.to_string()})
            );
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            /// An attempt when the delivery is next due, answered so (or
            /// unreachable with `None`).
            Attempt(Option<u16>),
            /// The endpoint was found deleted or disabled.
            Skip,
            /// The partner asks for a redelivery, this many seconds later.
            Redeliver(i64),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                6 => prop_oneof![Just(None), (100u16..600).prop_map(Some)].prop_map(Step::Attempt),
                1 => Just(Step::Skip),
                2 => (0i64..2 * STALLED_AFTER_SECONDS).prop_map(Step::Redeliver),
            ]
        }

        proptest! {
            /// Whatever happens, as the dispatcher and the API drive it: each
            /// change is one version; a round holds at most its attempts;
            /// the state agrees with the round's last attempt; the log stays
            /// bounded; nothing is due before the latest attempt.
            #[test]
            fn any_history_keeps_a_delivery_consistent(steps in prop::collection::vec(step(), 0..80)) {
                let ids = Counter(AtomicU32::new(1));
                let endpoint = endpoint(&ids);
                let mut delivery = WebhookDelivery::test(&endpoint, &ids, at(0));
                let mut now = at(0);
                let mut changes = 0u64;
                for step in steps {
                    let outcome = match step {
                        Step::Redeliver(later) => {
                            now += chrono::Duration::seconds(later);
                            if let Ok(next) = delivery.redeliver(now) {
                                delivery = next;
                                changes += 1;
                            }
                            None
                        }
                        Step::Skip => Some(AttemptOutcome::Skipped { reason: "gone".into() }),
                        Step::Attempt(Some(status_code)) => Some(AttemptOutcome::Responded { status_code }),
                        Step::Attempt(None) => Some(AttemptOutcome::Unreachable { error: Unreachable::Connect }),
                    };
                    if let Some(outcome) = outcome {
                        match delivery.due(now) {
                            Some(Next::Done) => {}
                            wait => {
                                if let Some(Next::RetryIn(seconds)) = wait {
                                    now += chrono::Duration::seconds(seconds);
                                }
                                prop_assert_eq!(delivery.due(now), None);
                                delivery = delivery.record(outcome, 1, now).0;
                                changes += 1;
                            }
                        }
                    }
                    prop_assert_eq!(delivery.version, 1 + changes);
                    prop_assert!(delivery.attempts.len() <= MAX_LOGGED_ATTEMPTS);
                    let made = delivery.attempts_this_round();
                    prop_assert!(made <= ATTEMPTS_PER_ROUND);
                    let last = delivery.attempts.last().filter(|a| a.round == delivery.round);
                    match delivery.state {
                        DeliveryState::Delivered { .. } => {
                            prop_assert!(last.is_some_and(|a| a.outcome.succeeded()));
                        }
                        DeliveryState::Failed { .. } => {
                            let skipped = last.is_some_and(|a| matches!(a.outcome, AttemptOutcome::Skipped { .. }));
                            prop_assert!(made == ATTEMPTS_PER_ROUND || skipped);
                        }
                        DeliveryState::Pending { next_attempt_at } => {
                            prop_assert!(made < ATTEMPTS_PER_ROUND);
                            prop_assert!(last.is_none_or(|a| !a.outcome.succeeded()));
                            prop_assert!(last.is_none_or(|a| next_attempt_at >= a.attempted_at));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_attempt_is_claimed_once_and_its_lease_lapses() {
        let ids = Counter(AtomicU32::new(1));
        let endpoint = endpoint(&ids);
        let event = event(&ids, &endpoint.tenant, resolved());
        let delivery = WebhookDelivery::for_event(&event, &endpoint, at(0)).unwrap();
        let claimed = delivery.claim(at(0)).unwrap();
        assert_eq!(claimed.version, delivery.version + 1);
        // A copy of the message reading the claimed version waits out the lease.
        assert_eq!(claimed.claim(at(10)), Err(Next::RetryIn(ATTEMPT_LEASE_SECONDS - 10)));
        // Recorded, the attempt follows the schedule, not the lease.
        let (recorded, next) = claimed.record(
            AttemptOutcome::Unreachable {
                error: Unreachable::Connect,
            },
            3,
            at(1),
        );
        assert_eq!(next, Next::RetryIn(RETRY_DELAYS_SECONDS[0]));
        assert_eq!(recorded.version, claimed.version + 1);
        // Never recorded (the process died): due again once the lease lapses.
        assert!(claimed.claim(at(ATTEMPT_LEASE_SECONDS)).is_ok());
        let (delivered, _) = recorded.record(AttemptOutcome::Responded { status_code: 200 }, 3, at(6));
        assert_eq!(delivered.claim(at(7)), Err(Next::Done));
    }
}
