//! The messaging topology on moto: provisioning it (twice), the EventBridge
//! bus publishing real domain events through the rule into the webhook events
//! queue, and the queues' redrive to their dead-letter queues. Each test
//! provisions a topology of its own under a unique prefix.
//!
//! moto must be running and `AWS_ENDPOINT_URL_SQS` / `_EVENTBRIDGE` point at
//! it: `scripts/test` starts it around `cargo test`. Without it these tests
//! fail in CI and skip, saying so, elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use acceptance::engines::Engine;
use acceptance::support::{SequentialIds, seconds, tenant};
use functions::adapters::bus::eventbridge::{EventBridgeBus, SOURCE};
use functions::adapters::queue::sqs::SqsQueue;
use functions::adapters::topology::{self, Provisioned};
use korala_domain::events::{Event, EventKind};
use korala_domain::ids::{CheckId, EventId, SessionId, SessionWorkflowId};
use korala_domain::ports::{EventBus, Outgoing, Queue, Received};
use korala_domain::session::{Decision, ResolvedBy, SessionStatus, ValidationOutcome};
use korala_domain::tenancy::Actor;
use korala_domain::workflow::CheckKind;
use serde_json::Value;

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "t{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Every kind of event, once, as the history of one session.
fn every_kind(ids: &SequentialIds) -> Vec<EventKind> {
    let swf = SessionWorkflowId::generate(ids);
    vec![
        EventKind::SessionCreated,
        EventKind::SessionStarted,
        EventKind::SessionWorkflowStarted {
            session_workflow_id: swf.clone(),
        },
        EventKind::SessionWorkflowSubmitted {
            session_workflow_id: swf.clone(),
            attempt: 1,
        },
        EventKind::SessionWorkflowValidated {
            session_workflow_id: swf.clone(),
            attempt: 1,
            outcome: ValidationOutcome::Review,
        },
        EventKind::SessionWorkflowRetryRequested {
            session_workflow_id: swf.clone(),
            attempts_remaining: 2,
        },
        EventKind::SessionWorkflowPendingReview {
            session_workflow_id: swf.clone(),
            reason: Some("a blurred photo".into()),
        },
        EventKind::SessionWorkflowReviewed {
            session_workflow_id: swf.clone(),
            decision: Decision::Approved,
            reason: "checked by hand".into(),
        },
        EventKind::SessionWorkflowCompleted {
            session_workflow_id: swf.clone(),
        },
        EventKind::SessionWorkflowFailed {
            session_workflow_id: swf.clone(),
            reason: "document expired".into(),
        },
        EventKind::SessionWorkflowResubmitted {
            session_workflow_id: swf.clone(),
            reset: vec![swf.clone()],
        },
        EventKind::SessionCheckRequested {
            session_workflow_id: swf.clone(),
            check_id: CheckId::generate(ids),
            kind: CheckKind::Pep,
        },
        EventKind::SessionWorkflowWebhookRequested {
            session_workflow_id: swf,
            url: "https://partner.example/hook".into(),
        },
        EventKind::SessionPendingReview,
        EventKind::SessionCompleted,
        EventKind::SessionFailed,
        EventKind::SessionResolved {
            decision: Decision::Rejected,
            resolved_by: ResolvedBy::Partner,
            reason: Some("duplicate account".into()),
        },
        EventKind::SessionExpired,
    ]
}

fn event(session: &SessionId, version: u64, kind: EventKind, ids: &SequentialIds) -> Event {
    Event {
        id: EventId::generate(ids),
        tenant: tenant("acme"),
        session_id: session.clone(),
        external_user_id: "user-1".into(),
        version,
        sequence: 0,
        occurred_at: seconds(i64::try_from(version).unwrap_or_default()),
        actor: Actor::System,
        status: SessionStatus::InProgress,
        resolution: None,
        kind,
    }
}

/// Receives from the queue until `count` messages came or three seconds
/// passed (EventBridge delivers asynchronously on AWS; moto at once).
async fn receive(queue: &SqsQueue, count: usize) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut received = Vec::new();
    while received.len() < count && tokio::time::Instant::now() < deadline {
        received.extend(queue.receive(10, 30).await.unwrap());
        if received.len() < count {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    received
}

async fn provisioned() -> Option<(Provisioned, SqsQueue, EventBridgeBus)> {
    if !Engine::Moto.here() {
        return None;
    }
    let (sqs, eventbridge) = topology::clients().await;
    let provisioned = topology::provision(&sqs, &eventbridge, &unique_prefix())
        .await
        .unwrap_or_else(|e| panic!("provisioning on moto: {e}"));
    let queue = SqsQueue::new(sqs, &provisioned.webhook_events.url);
    let bus = EventBridgeBus::new(eventbridge, &provisioned.bus_name);
    Some((provisioned, queue, bus))
}

/// EventBridge's `time`, RFC 3339 to the second.
fn envelope_time(envelope: &Value) -> Option<i64> {
    let text = envelope["time"].as_str()?;
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_twice_is_harmless() {
    if !Engine::Moto.here() {
        return;
    }
    let (sqs, eventbridge) = topology::clients().await;
    let prefix = unique_prefix();
    let first = topology::provision(&sqs, &eventbridge, &prefix).await.unwrap();
    let again = topology::provision(&sqs, &eventbridge, &prefix).await.unwrap();
    assert_eq!(first, again, "the same resources, found again");
    let expected = topology::Topology::new(&prefix);
    assert_eq!(first.bus_name, expected.bus);
    assert_eq!(
        [
            &first.webhook_events.name,
            &first.webhook_events_dlq.name,
            &first.webhook_deliveries.name,
            &first.webhook_deliveries_dlq.name
        ],
        [
            &expected.webhook_events.name,
            &expected.webhook_events.dead_letter_name,
            &expected.webhook_deliveries.name,
            &expected.webhook_deliveries.dead_letter_name
        ]
    );
    assert!(first.rule_arn.contains(&expected.rule), "{}", first.rule_arn);
    assert!(first.webhook_events.arn.ends_with(&expected.webhook_events.name));
}

/// The six webhook types reach the webhook events queue, each in the full
/// EventBridge envelope around the event's own JSON; the other types do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_routes_the_webhook_types_to_the_events_queue() {
    let Some((_, queue, bus)) = provisioned().await else {
        return;
    };
    let ids = SequentialIds::new();
    let session = SessionId::generate(&ids);
    let events: Vec<Event> = every_kind(&ids)
        .into_iter()
        .enumerate()
        .map(|(i, kind)| event(&session, i as u64 + 1, kind, &ids))
        .collect();
    bus.publish(&events).await.unwrap();

    let webhook: BTreeMap<String, &Event> = events
        .iter()
        .filter(|e| e.kind.webhook().is_some())
        .map(|e| (e.id.to_string(), e))
        .collect();
    assert_eq!(webhook.len(), 6);
    let received = receive(&queue, webhook.len()).await;
    let mut routed = BTreeSet::new();
    for message in &received {
        let envelope: Value = serde_json::from_str(&message.body).unwrap();
        let id = envelope["detail"]["id"].as_str().unwrap_or_default().to_owned();
        let sent = webhook
            .get(&id)
            .unwrap_or_else(|| panic!("an event the rule should have filtered out: {envelope}"));
        assert_eq!(
            envelope["detail"],
            serde_json::to_value(sent).unwrap(),
            "the event's JSON"
        );
        assert_eq!(envelope["detail-type"], sent.kind.name());
        assert_eq!(envelope["source"], SOURCE);
        assert_eq!(
            envelope_time(&envelope),
            Some(sent.occurred_at.timestamp()),
            "{envelope}"
        );
        // AWS adds `account` too; moto leaves it out of what it sends to SQS.
        for field in ["id", "region", "resources", "version"] {
            assert!(envelope.get(field).is_some(), "the envelope has {field}: {envelope}");
        }
        routed.insert(sent.kind.name());
    }
    let expected: BTreeSet<String> = webhook.values().map(|e| e.kind.name()).collect();
    assert_eq!(routed, expected, "each webhook type once");
    assert_eq!(received.len(), 6);
    assert!(
        queue.receive(10, 30).await.unwrap().is_empty(),
        "nothing else arrives: session_created and the others are filtered out"
    );
}

/// More events than one `PutEvents` takes are published in several.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_events_are_published_at_once() {
    let Some((_, queue, bus)) = provisioned().await else {
        return;
    };
    let ids = SequentialIds::new();
    let events: Vec<Event> = (0..25)
        .map(|_| event(&SessionId::generate(&ids), 3, EventKind::SessionCompleted, &ids))
        .collect();
    bus.publish(&events).await.unwrap();
    let received = receive(&queue, 25).await;
    let got: BTreeSet<String> = received
        .iter()
        .map(|m| {
            let envelope: Value = serde_json::from_str(&m.body).unwrap();
            envelope["detail"]["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let sent: BTreeSet<String> = events.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(got, sent);
    assert_eq!(received.len(), 25, "each once");
}

/// Receives the one message and lets it come back at once, `times` times.
async fn receive_and_give_back(queue: &SqsQueue, times: u32) {
    for n in 1..=times {
        let got = receive(queue, 1).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        queue.retry_after(&got[0].receipt, 0).await.unwrap();
    }
}

/// Each queue's redrive policy moves a message that was received its
/// `max_receive_count` times to its dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_move_to_the_dead_letter_queues() {
    let Some((provisioned, events, _)) = provisioned().await else {
        return;
    };
    let client = events.client().clone();
    let topology = topology::Topology::new("unused");
    let pairs = [
        (
            events,
            &provisioned.webhook_events_dlq,
            topology.webhook_events.max_receive_count,
        ),
        (
            SqsQueue::new(client.clone(), &provisioned.webhook_deliveries.url),
            &provisioned.webhook_deliveries_dlq,
            topology.webhook_deliveries.max_receive_count,
        ),
    ];
    for (queue, dlq, max_receive_count) in pairs {
        let body = format!("poison for {}", queue.url());
        let poison = Outgoing {
            body: body.clone(),
            delay_seconds: 0,
        };
        queue.send(&[poison]).await.unwrap();
        receive_and_give_back(&queue, max_receive_count).await;
        assert!(
            queue.receive(10, 30).await.unwrap().is_empty(),
            "{}: gone after {max_receive_count} receives",
            queue.url()
        );
        let dead = receive(&SqsQueue::new(client.clone(), &dlq.url), 1).await;
        assert_eq!(dead.len(), 1, "{}: in the dead-letter queue", dlq.name);
        assert_eq!(dead[0].body, body);
    }
}

// ---------------------------------------------------------------------------
// Secrets on Secrets Manager (moto): what a deployed function reads instead
// of keeping the master key and vendor secrets in its environment.

/// A secret on moto holding `value`, named uniquely, and its ARN.
async fn stored_secret(aws: &functions::adapters::aws::Aws, value: &str) -> String {
    let created = aws
        .secrets_manager()
        .await
        .create_secret()
        .name(format!("korala/{}", unique_prefix()))
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret");
    created.arn().expect("a created secret has an ARN").to_owned()
}

fn secrets_manager_running() -> bool {
    if !Engine::Moto.here() {
        return false;
    }
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_some(),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set beside AWS_ENDPOINT_URL_SQS: start moto with scripts/moto"
    );
    true
}

#[tokio::test]
async fn a_deployed_functions_master_key_is_read_from_secrets_manager() {
    use functions::adapters::crypto::Sealer;
    use functions::adapters::secrets::SecretError;
    use functions::app::{StartupError, stored_sealer};
    if !secrets_manager_running() {
        return;
    }
    let aws = functions::adapters::aws::Aws::default();
    let key = Sealer::generate_key();
    let arn = stored_secret(&aws, &key).await;
    let sealed = Sealer::from_base64(&key).unwrap().seal("whsec_partners_secret");
    let sealer = stored_sealer(&aws, &arn).await.expect("the stored key");
    assert_eq!(sealer.open(&sealed).unwrap(), "whsec_partners_secret");

    // What goes wrong says which secret, never what it holds.
    let missing = format!("{arn}-gone");
    match stored_sealer(&aws, &missing).await {
        Err(StartupError::Secret(SecretError::NotFound(id))) => assert_eq!(id, missing),
        other => panic!("a missing secret gave {:?}", other.err()),
    }
    let not_a_key = stored_secret(&aws, "hunter2-not-a-key").await;
    let error = stored_sealer(&aws, &not_a_key)
        .await
        .err()
        .expect("not a key")
        .to_string();
    assert!(error.contains("32 bytes"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn a_check_vendors_secret_is_read_from_secrets_manager() {
    use functions::adapters::providers::PendingProviders;
    use functions::adapters::standard_webhooks::SigningSecret;
    if !secrets_manager_running() {
        return;
    }
    let aws = functions::adapters::aws::Aws::default();
    let arn = stored_secret(&aws, &SigningSecret::generate()).await;
    let config = serde_json::json!({
        "acme": {"url": "https://screening.acme.example/v1/screen", "secretId": arn},
        "globex": {"url": "https://screening.globex.example/v1/screen", "secretId": arn},
    })
    .to_string();
    let pending = PendingProviders::from_lookup(&|var| (var == "KORALA_CHECK_PROVIDERS").then(|| config.clone()))
        .expect("the entries check without their secrets");
    let providers = pending.read(&aws).await.expect("the secrets are read");
    for name in ["acme", "globex"] {
        assert_eq!(providers.get(Some(name)).expect("configured").name(), name);
    }

    let missing =
        serde_json::json!({"acme": {"url": "https://screening.acme.example/", "secretId": format!("{arn}-gone")}})
            .to_string();
    let pending = PendingProviders::from_lookup(&|var| (var == "KORALA_CHECK_PROVIDERS").then(|| missing.clone()))
        .expect("the entry checks without its secret");
    let error = pending.read(&aws).await.err().expect("a missing secret").to_string();
    assert!(error.contains("does not exist") && error.contains("-gone"), "{error}");
}
