//! The metric documents as CloudWatch reads them (the Embedded Metric Format
//! specification): `_aws.Timestamp` in epoch milliseconds,
//! `_aws.CloudWatchMetrics[{Namespace, Dimensions, Metrics[{Name, Unit}]}]`,
//! and every dimension and metric named there as a top-level member.
//!
//! The EMF recorder is the process's global recorder, and the other tests of
//! this binary record metrics too: the test runs in a process of its own
//! (rusty-fork runs the test binary again for just this test).

use async_trait::async_trait;
use korala_domain::delivery::{AttemptOutcome, WebhookDelivery};
use korala_domain::events::Event;
use korala_domain::ids::{IdGenerator, WebhookEndpointId};
use korala_domain::ports::{EventBus, PublishError};
use korala_domain::webhooks::WebhookEndpoint;
use korala_domain::webhooks::WebhookEvent;
use rusty_fork::rusty_fork_test;
use serde_json::Value;

struct Accepting;

#[async_trait]
impl EventBus for Accepting {
    async fn publish(&self, _: &[Event]) -> Result<(), PublishError> {
        Ok(())
    }
}

struct Ids;

impl IdGenerator for Ids {
    fn next_body(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
}

/// A delivery of `event` with one attempt recorded.
fn attempted(event: &Event, outcome: AttemptOutcome, latency_ms: u64) -> WebhookDelivery {
    let now = chrono::Utc::now();
    let endpoint = WebhookEndpoint {
        id: WebhookEndpointId::generate(&Ids),
        tenant: event.tenant.clone(),
        url: "https://hooks.example.com/korala".into(),
        events: vec![WebhookEvent::SessionCompleted],
        enabled: true,
        sealed_secret: "sealed".into(),
        description: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let delivery = WebhookDelivery::for_event(event, &endpoint, now).unwrap();
    delivery.record(outcome, latency_ms, now).0
}

/// The documents flushed now, by the dimension values they carry.
fn flush() -> Vec<Value> {
    let mut out = Vec::new();
    functions::runtime::metrics::flush_into(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The document of `metric` whose dimensions include `dimension`.
fn document<'a>(documents: &'a [Value], metric: &str, dimension: (&str, &str)) -> &'a Value {
    documents
        .iter()
        .find(|d| d.get(metric).is_some() && d[dimension.0] == dimension.1)
        .unwrap_or_else(|| panic!("no {metric} with {dimension:?} in {documents:#?}"))
}

fn unit_of<'a>(document: &'a Value, metric: &str) -> &'a str {
    document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == metric)
        .and_then(|m| m["Unit"].as_str())
        .unwrap_or_else(|| panic!("{metric} has no unit in {document}"))
}

rusty_fork_test! {
    #[test]
    fn the_documents_follow_the_embedded_metric_format() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(documents_follow_the_embedded_metric_format());
    }
}

async fn documents_follow_the_embedded_metric_format() {
    assert!(functions::runtime::metrics::install(
        "Korala/Test".into(),
        Some("test".into())
    ));
    assert!(flush().is_empty(), "nothing recorded, nothing written");

    // A session completed and resolved (the stream fixture), and two
    // delivery attempts of its completion: one answered, one unreachable.
    let stream: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(include_str!("../../../events/outbox-publisher.json")).unwrap();
    let completed: Event = stream
        .records
        .iter()
        .filter_map(|r| match r.change.new_image.get("doc") {
            Some(serde_dynamo::AttributeValue::S(doc)) => serde_json::from_str::<Event>(doc).ok(),
            _ => None,
        })
        .find(|e| e.kind.name() == "session_completed")
        .expect("the fixture completes a session");
    functions::consumers::outbox::publish_stream(&Accepting, stream).await;
    let delivered = attempted(&completed, AttemptOutcome::Responded { status_code: 204 }, 120);
    let retried = attempted(
        &completed,
        AttemptOutcome::Unreachable {
            error: korala_domain::delivery::Unreachable::Connect,
        },
        3000,
    );
    functions::runtime::metrics::delivery_attempt(&delivered);
    functions::runtime::metrics::delivery_attempt(&retried);

    let documents = flush();
    let now = chrono::Utc::now().timestamp_millis();
    for document in &documents {
        let aws = &document["_aws"];
        let timestamp = aws["Timestamp"].as_i64().unwrap();
        assert!((now - timestamp).abs() < 60_000, "{document}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Korala/Test");
        let dimensions = directive["Dimensions"][0].as_array().unwrap();
        assert_eq!(dimensions[0], "Environment", "{document}");
        for dimension in dimensions {
            assert!(document[dimension.as_str().unwrap()].is_string(), "{document}");
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(document.get(metric["Name"].as_str().unwrap()).is_some(), "{document}");
        }
        assert_eq!(document["Environment"], "test");
        // Ids belong in properties at most, never in dimensions.
        for id in [&completed.session_id.to_string(), &completed.id.to_string()] {
            assert!(!document.to_string().contains(id.as_str()), "{document}");
        }
    }

    let outcome = document(&documents, "SessionOutcomes", ("Status", "completed"));
    assert_eq!(outcome["SessionOutcomes"], 1);
    assert_eq!(outcome["Mode"], "sandbox");
    assert_eq!(unit_of(outcome, "SessionOutcomes"), "Count");
    let dimensions = &outcome["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0];
    assert_eq!(*dimensions, serde_json::json!(["Environment", "Mode", "Status"]));

    let resolved = document(&documents, "SessionsResolved", ("Decision", "approved"));
    assert_eq!(resolved["SessionsResolved"], 1);
    assert_eq!(resolved["ResolvedBy"], "auto");

    for outcome in ["delivered", "retried"] {
        let attempts = document(&documents, "WebhookDeliveryAttempts", ("Outcome", outcome));
        assert_eq!(attempts["WebhookDeliveryAttempts"], 1, "{attempts}");
        assert_eq!(unit_of(attempts, "WebhookDeliveryAttempts"), "Count");
    }
    let latency = document(&documents, "WebhookDeliveryLatency", ("Environment", "test"));
    assert_eq!(latency["WebhookDeliveryLatency"], serde_json::json!([120.0, 3000.0]));
    assert_eq!(unit_of(latency, "WebhookDeliveryLatency"), "Milliseconds");

    assert!(flush().is_empty(), "a flush starts the next invocation from zero");
}
