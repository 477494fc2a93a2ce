//! The business metrics count each fact once, where it becomes final: the
//! sessions' and checks' facts as the outbox publishes their events, the
//! delivery attempts as the dispatcher records them. The counts are checked
//! against the sessions' own event histories, and do not move when the
//! relay runs again. (The EMF documents themselves: functions/tests/it/metrics_emf.rs.)

use std::collections::BTreeMap;

use acceptance::api::{Api, str_of, workflow_ids};
use acceptance::receiver::Receiver;
use functions::runtime::metrics::Tally;
use serde_json::{Value, json};

/// A port nothing listens on: every delivery there is unreachable.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

fn count(events: &[Value], kind: &str) -> u64 {
    events.iter().filter(|e| e["type"] == kind).count() as u64
}

#[tokio::test]
async fn sessions_checks_and_deliveries_are_counted_once() {
    acceptance::require!(StandardWebhooks);
    let tally = Tally::default();
    let _recording = tally.record_here();
    let mut api = Api::new().await;
    let relay = api.relay().await;
    // Answers 200 to every delivery.
    let receiver = Receiver::start(None);
    let (open, closed) = (receiver.port(), closed_port().await);
    let subscribed = ["session_completed", "session_failed", "session_resolved"];
    let endpoint =
        |port: u16, events: &[&str]| json!({"url": format!("http://127.0.0.1:{port}/hooks"), "events": events});
    api.expect(201, "POST", "/webhook-endpoints", Some(endpoint(open, &subscribed)))
        .await;
    api.expect(
        201,
        "POST",
        "/webhook-endpoints",
        Some(endpoint(closed, &["session_completed"])),
    )
    .await;
    api.simple_configuration("screened", &["id-document", "sanctions-check", "pep-check"], json!({}))
        .await;
    api.simple_configuration("sanctions", &["sanctions-check"], json!({}))
        .await;
    let subject = |config: &str, name: &str| {
        json!({"configurationSlug": config, "externalUserId": "usr_metrics",
               "participants": [{"role": "subject", "displayName": name}]})
    };
    let clean = api.create_session(subject("screened", "Maria Clean Example")).await;
    let mut document = api.id_document("Maria Clean Example");
    document["dateOfBirth"] = json!("1988-02-03");
    document["issuingCountry"] = json!("pt");
    api.submit_ok(str_of(&clean, "accessToken"), &workflow_ids(&clean)[0], document)
        .await;
    let mut sessions = vec![clean];
    // The sandbox forces a strong and a possible match by name.
    for name in ["Sandbox Strong Match", "Sandbox Possible Match"] {
        let session = api.create_session(subject("sanctions", name)).await;
        let start = format!("/access/{}/start", str_of(&session, "accessToken"));
        let (status, body, _) = api.end_user("POST", &start, None).await;
        assert_eq!(status, 200, "{body}");
        sessions.push(session);
    }
    relay.run_until_idle(100).await.expect("the relay steps");

    let mut history = Vec::new();
    for session in &sessions {
        history.extend(api.events(str_of(session, "id")).await);
    }
    let mut expected = BTreeMap::new();
    let mut expect = |key: String, n: u64| {
        if n > 0 {
            *expected.entry(key).or_insert(0) += n;
        }
    };
    expect(
        "SessionsCreated{Mode=sandbox}".into(),
        count(&history, "session_created"),
    );
    for (kind, status) in [
        ("session_completed", "completed"),
        ("session_failed", "failed"),
        ("session_pending_review", "pending_review"),
        ("session_expired", "expired"),
    ] {
        expect(
            format!("SessionOutcomes{{Mode=sandbox,Status={status}}}"),
            count(&history, kind),
        );
    }
    for event in &history {
        match event["type"].as_str() {
            Some("session_resolved") => expect(
                format!(
                    "SessionsResolved{{Mode=sandbox,Decision={},ResolvedBy={}}}",
                    str_of(event, "decision"),
                    str_of(event, "resolvedBy")
                ),
                1,
            ),
            Some("session_check_completed") => expect(
                format!(
                    "ChecksCompleted{{Mode=sandbox,Kind={},Verdict={}}}",
                    str_of(event, "kind"),
                    str_of(event, "verdict")
                ),
                1,
            ),
            _ => {}
        }
    }
    let delivered = subscribed.iter().map(|kind| count(&history, kind)).sum::<u64>();
    let retried = count(&history, "session_completed");
    expect("WebhookDeliveryAttempts{Outcome=delivered}".into(), delivered);
    expect("WebhookDeliveryAttempts{Outcome=retried}".into(), retried);

    // Each branch happened, so every kind of count is exercised.
    for key in [
        "SessionOutcomes{Mode=sandbox,Status=completed}",
        "SessionOutcomes{Mode=sandbox,Status=failed}",
        "SessionOutcomes{Mode=sandbox,Status=pending_review}",
        "ChecksCompleted{Mode=sandbox,Kind=sanctions,Verdict=clear}",
        "ChecksCompleted{Mode=sandbox,Kind=sanctions,Verdict=strong_match}",
        "ChecksCompleted{Mode=sandbox,Kind=sanctions,Verdict=possible_match}",
        "ChecksCompleted{Mode=sandbox,Kind=pep,Verdict=clear}",
    ] {
        assert!(
            expected.contains_key(key),
            "the sessions never produced {key}: {expected:?}"
        );
    }
    assert_eq!(tally.counters(), expected);
    assert_eq!(
        tally.samples("WebhookDeliveryLatency").len() as u64,
        delivered + retried,
        "one latency per attempt sent"
    );

    // Nothing new happened, so nothing more is counted.
    relay.run_until_idle(100).await.expect("the relay steps");
    assert_eq!(tally.counters(), expected);
}
