//! Webhook deliveries end to end: session events committed through the API
//! travel the relay (outbox, bus, fan-out, dispatcher) to a partner's
//! receiver in another process, which verifies every delivery with the PyPI
//! `standardwebhooks` library. On the embedded store the relay runs in
//! process; with `KORALA_TEST_STORE=dynamodb` it is the emulated AWS path
//! (DynamoDB Local's stream, EventBridge and SQS on moto).

use std::collections::BTreeSet;
use std::sync::Arc;

use acceptance::api::{Api, near_match, str_of, workflow_ids};
use acceptance::receiver::{Received, Receiver};
use functions::runtime::relay::Relay;
use korala_domain::delivery::{ATTEMPTS_PER_ROUND, RETRY_DELAYS_SECONDS};
use serde_json::{Value, json};

const SIX: [&str; 6] = [
    "session_completed",
    "session_expired",
    "session_failed",
    "session_resolved",
    "session_workflow_completed",
    "session_workflow_failed",
];

struct World {
    api: Api,
    relay: Relay,
    receiver: Receiver,
    endpoint: String,
    secret: String,
}

/// An application with its relay, a receiver, and an endpoint for `events`
/// pointing at it.
async fn world(events: &[&str]) -> World {
    let mut api = Api::new().await;
    let relay = api.relay().await;
    let receiver = Receiver::start(None);
    let created = api
        .expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(json!({ "url": receiver.url(), "events": events })),
        )
        .await;
    receiver.set(json!({ "secret": str_of(&created, "secret") }));
    receiver.sync_clock(api.clock.now());
    World {
        endpoint: str_of(&created, "id").to_owned(),
        secret: str_of(&created, "secret").to_owned(),
        api,
        relay,
        receiver,
    }
}

impl World {
    /// Whether queue visibility follows the test's clock (the embedded
    /// store's queues do; SQS's run in real time, so the hours-long schedule
    /// is tested on the embedded path, and the first retry on both).
    fn clock_drives_the_queues(&self) -> bool {
        if self.api.sqlite.is_none() {
            eprintln!("skipped on the emulated AWS path: SQS visibility timeouts run in real time");
        }
        self.api.sqlite.is_some()
    }

    /// Relays everything that is due now.
    async fn relay(&self) {
        self.relay.run_until_idle(100).await.expect("the relay steps");
    }

    /// Moves the clock (the application's and the receiver's) and relays.
    async fn after(&self, seconds: i64) {
        self.api.clock.advance_seconds(seconds);
        self.receiver.sync_clock(self.api.clock.now());
        self.relay().await;
    }

    async fn deliveries(&self) -> Vec<Value> {
        let page = self
            .api
            .get(&format!("/webhook-endpoints/{}/deliveries?limit=100", self.endpoint))
            .await;
        page["data"].as_array().expect("a delivery list").clone()
    }

    /// A KYC session that completes (both documents in one name).
    async fn completed_session(&self, user: &str) -> String {
        let session = self.session(user).await;
        let (token, wf) = (str_of(&session, "accessToken"), workflow_ids(&session));
        self.api
            .submit_ok(token, &wf[0], self.api.id_document("Jane Doe"))
            .await;
        let view = self
            .api
            .submit_ok(token, &wf[1], self.api.proof_of_address("Jane Doe"))
            .await;
        assert_eq!(view["status"], "completed", "{view}");
        str_of(&session, "id").to_owned()
    }

    async fn session(&self, user: &str) -> Value {
        let (status, _, _) = self.api.partner("GET", "/session-configurations/kyc", None).await;
        if status == 404 {
            self.api.kyc_configuration("kyc").await;
        }
        self.api.session_of("kyc", user).await
    }
}

fn events_received(received: &[Received]) -> BTreeSet<String> {
    received.iter().map(|r| r.event().to_owned()).collect()
}

/// Test mode and live mode are separate worlds: an event is delivered only
/// to the endpoints of its own mode (a test key's endpoint received live
/// `session_resolved` events before issue 15), and each mode's log shows its
/// own deliveries.
#[tokio::test]
async fn an_endpoint_receives_only_its_own_modes_events() {
    acceptance::require!(StandardWebhooks);
    let w = world(&SIX).await;
    let live = w.api.live.clone();
    let live_receiver = Receiver::start(None);
    let (status, created, _) = w
        .api
        .partner_as(
            &live,
            "POST",
            "/webhook-endpoints",
            Some(json!({ "url": live_receiver.url(), "events": SIX })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    live_receiver.set(json!({ "secret": str_of(&created, "secret") }));
    live_receiver.sync_clock(w.api.clock.now());
    let live_endpoint = str_of(&created, "id").to_owned();

    let test_session = w.completed_session("usr_shared").await;
    let kyc = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]});
    let (status, _, _) = w
        .api
        .partner_as(&live, "POST", "/session-configurations", Some(kyc))
        .await;
    assert_eq!(status, 201);
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_shared"});
    let (status, session, _) = w.api.partner_as(&live, "POST", "/sessions", Some(body)).await;
    assert_eq!(status, 201, "{session}");
    let (token, wf) = (str_of(&session, "accessToken"), workflow_ids(&session));
    w.api.submit_ok(token, &wf[0], w.api.id_document("Jane Doe")).await;
    w.api.submit_ok(token, &wf[1], w.api.proof_of_address("Jane Doe")).await;
    let live_session = str_of(&session, "id").to_owned();
    w.relay().await;

    for (receiver, session, sandbox) in [
        (&w.receiver, &test_session, true),
        (&live_receiver, &live_session, false),
    ] {
        let received = receiver.received();
        assert_eq!(
            events_received(&received),
            BTreeSet::from(["session_completed", "session_resolved", "session_workflow_completed"].map(String::from)),
        );
        for delivery in &received {
            assert_eq!(
                delivery.body["data"]["sessionId"],
                json!(session),
                "{:?}",
                delivery.body
            );
            assert_eq!(delivery.body["data"]["sandbox"], sandbox);
        }
    }
    // Each mode's delivery log is its own, and the other's endpoint is not there.
    let (_, log, _) = w
        .api
        .partner_as(
            &live,
            "GET",
            &format!("/webhook-endpoints/{live_endpoint}/deliveries"),
            None,
        )
        .await;
    assert_eq!(
        log["data"].as_array().map(Vec::len),
        Some(live_receiver.received().len())
    );
    assert_eq!(w.deliveries().await.len(), w.receiver.received().len());
    let (status, _, _) = w
        .api
        .partner_as(
            &live,
            "GET",
            &format!("/webhook-endpoints/{}/deliveries", w.endpoint),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn all_six_session_events_reach_a_subscribed_endpoint_signed() {
    acceptance::require!(StandardWebhooks);
    let w = world(&SIX).await;
    // Completed and auto-approved.
    let completed = w.completed_session("usr_completed").await;
    // Rejected in review: the workflow and the session fail.
    let session = w.session("usr_rejected").await;
    let (token, wf) = (str_of(&session, "accessToken"), workflow_ids(&session));
    let (id_name, poa_name) = near_match();
    w.api.submit_ok(token, &wf[0], w.api.id_document(id_name)).await;
    w.api.submit_ok(token, &wf[1], w.api.proof_of_address(poa_name)).await;
    let rejected = str_of(&session, "id").to_owned();
    w.api
        .expect(
            200,
            "POST",
            &format!("/sessions/{rejected}/workflows/{}/review", wf[1]),
            Some(json!({"decision": "rejected", "reason": "Different person"})),
        )
        .await;
    // Left alone until it expires (the sweep, as the schedule runs it).
    let expiring = str_of(&w.session("usr_expiring").await, "id").to_owned();
    w.api.clock.advance(24 * 60 + 1);
    w.receiver.sync_clock(w.api.clock.now());
    functions::consumers::expiry::sweep(&w.api.app, 100)
        .await
        .expect("the sweep runs");
    w.relay().await;

    let received = w.receiver.received();
    for r in &received {
        assert!(r.verified, "standardwebhooks refused {}: {:?}", r.id, r.error);
        assert_eq!(r.body["eventId"], r.id.as_str(), "webhook-id is the event id");
    }
    assert_eq!(events_received(&received), SIX.iter().map(|s| s.to_string()).collect());
    // Exactly the webhook events of the three histories, each once.
    let mut expected = Vec::new();
    for id in [&completed, &rejected, &expiring] {
        for event in w.api.events(id).await {
            if SIX.contains(&str_of(&event, "type")) {
                expected.push((str_of(&event, "id").to_owned(), str_of(&event, "type").to_owned()));
            }
        }
    }
    let mut got: Vec<(String, String)> = received.iter().map(|r| (r.id.clone(), r.event().to_owned())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // The body as api.md documents it.
    let resolved = received
        .iter()
        .find(|r| r.event() == "session_resolved" && r.body["data"]["sessionId"] == completed.as_str())
        .expect("the completed session's resolution");
    let data = &resolved.body["data"];
    assert_eq!(data["externalUserId"], "usr_completed");
    assert_eq!(data["status"], "completed");
    assert_eq!(data["resolution"], "approved");
    assert_eq!(data["sandbox"], true);
    let failed_workflow = received
        .iter()
        .find(|r| r.event() == "session_workflow_failed")
        .expect("the workflow failure");
    assert_eq!(failed_workflow.body["data"]["sessionWorkflowId"], wf[1].as_str());
    // The log shows each one delivered at the first attempt.
    let log = w.deliveries().await;
    assert_eq!(log.len(), received.len());
    for delivery in &log {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"][0]["statusCode"], 200, "{delivery}");
    }
}

#[tokio::test]
async fn endpoints_receive_only_the_types_they_subscribe_to() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    let disabled = w
        .api
        .expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(json!({ "url": w.receiver.url(), "events": SIX, "enabled": false })),
        )
        .await;
    w.completed_session("usr_1").await;
    w.relay().await;
    let received = w.receiver.received();
    assert_eq!(
        events_received(&received),
        BTreeSet::from(["session_completed".to_owned()])
    );
    assert_eq!(received.len(), 1);
    let none = w
        .api
        .get(&format!("/webhook-endpoints/{}/deliveries", str_of(&disabled, "id")))
        .await;
    assert_eq!(none["data"], json!([]), "a disabled endpoint gets no deliveries");
}

#[tokio::test]
async fn a_receiver_that_fails_for_a_while_gets_the_event_when_it_recovers() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    if !w.clock_drives_the_queues() {
        return;
    }
    // Down for three attempts: the first, and the retries after 5 s and 5 min.
    w.receiver.set(json!({ "fail": 3 }));
    w.completed_session("usr_1").await;
    w.relay().await;
    let log = w.deliveries().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"][0]["statusCode"], 503);
    // Nothing is attempted before it is due.
    w.after(RETRY_DELAYS_SECONDS[0] - 1).await;
    assert_eq!(w.receiver.received().len(), 1, "no retry before 5 s");
    w.after(1).await;
    assert_eq!(w.receiver.received().len(), 2, "the retry after 5 s");
    w.after(RETRY_DELAYS_SECONDS[1]).await;
    w.after(RETRY_DELAYS_SECONDS[2]).await;
    let received = w.receiver.received();
    let answers: Vec<u16> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [503, 503, 503, 200]);
    assert!(
        received.iter().all(|r| r.verified && r.id == received[0].id),
        "{received:?}"
    );
    let log = w.deliveries().await;
    assert_eq!(log[0]["status"], "delivered", "{}", log[0]);
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 4);
    // Delivered means done: later steps send nothing more.
    w.after(RETRY_DELAYS_SECONDS[3]).await;
    assert_eq!(w.receiver.received().len(), 4);
}

/// The first retry, on both paths: on SQS the message really comes back
/// after 5 s, through the visibility timeout the dispatcher set.
#[tokio::test]
async fn a_failed_attempt_is_retried_through_the_queue() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    w.receiver.set(json!({ "fail": 1 }));
    w.completed_session("usr_1").await;
    w.relay().await;
    assert_eq!(w.deliveries().await[0]["status"], "pending");
    let wait = RETRY_DELAYS_SECONDS[0];
    if w.api.sqlite.is_none() {
        tokio::time::sleep(std::time::Duration::from_secs(wait as u64 + 1)).await;
    }
    w.after(wait).await;
    let received = w.receiver.received();
    let answers: Vec<u16> = received.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [503, 200]);
    assert!(received[1].verified, "{:?}", received[1].error);
    assert_eq!(w.deliveries().await[0]["status"], "delivered");
}

#[tokio::test]
async fn a_receiver_down_for_the_whole_schedule_is_dead_lettered_then_redelivered() {
    acceptance::require!(StandardWebhooks);
    let mut w = world(&["session_completed"]).await;
    if !w.clock_drives_the_queues() {
        return;
    }
    let port = w.receiver.port();
    w.receiver.kill();
    w.completed_session("usr_1").await;
    w.relay().await;
    for delay in RETRY_DELAYS_SECONDS {
        w.after(delay).await;
    }
    let log = w.deliveries().await;
    assert_eq!(log[0]["status"], "failed", "{}", log[0]);
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), ATTEMPTS_PER_ROUND as usize);
    // A category only: nothing of this network (addresses, messages) shows.
    assert!(
        attempts
            .iter()
            .all(|a| a["error"] == "connect" && a.get("statusCode").is_none()),
        "{attempts:?}"
    );
    let total: i64 = RETRY_DELAYS_SECONDS.iter().sum();
    assert!(total >= 24 * 3600, "retried for at least 24 hours");
    // Nothing more happens by itself.
    w.after(24 * 3600).await;
    assert_eq!(
        w.deliveries().await[0]["attempts"].as_array().unwrap().len(),
        attempts.len()
    );

    // The receiver is back (on its old port, with its old secret).
    let back = Receiver::start(Some(port));
    back.set(json!({ "secret": w.secret }));
    back.sync_clock(w.api.clock.now());
    let id = str_of(&log[0], "id");
    let accepted = w
        .api
        .expect(202, "POST", &format!("/webhook-deliveries/{id}/redeliver"), None)
        .await;
    assert_eq!(accepted["status"], "pending");
    assert_eq!(accepted["round"], 2);
    w.relay().await;
    let received = back.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].verified, "{:?}", received[0].error);
    assert_eq!(
        received[0].id,
        str_of(&log[0], "eventId"),
        "the same webhook-id as every attempt"
    );
    let log = w.deliveries().await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), attempts.len() + 1);
}

#[tokio::test]
async fn the_test_event_is_signed_and_logged() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    // Sent twice with one Idempotency-Key: one test event.
    let path = format!("/webhook-endpoints/{}/test", w.endpoint);
    let mut replies = Vec::new();
    for _ in 0..2 {
        let raw = w
            .api
            .signed(&w.api.key, "POST", &path, None)
            .header("Idempotency-Key", "test-1");
        let (status, body, _) = w.api.send(raw).await;
        assert_eq!(status, 202, "{body}");
        replies.push(body);
    }
    assert_eq!(replies[0], replies[1]);
    let accepted = replies.remove(0);
    assert_eq!(accepted["event"], "webhook_test");
    assert_eq!(accepted["status"], "pending");
    w.relay().await;
    let received = w.receiver.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].verified, "{:?}", received[0].error);
    assert_eq!(received[0].event(), "webhook_test");
    assert_eq!(received[0].body["data"]["webhookEndpointId"], w.endpoint.as_str());
    let log = w.deliveries().await;
    assert_eq!(log[0]["id"], accepted["id"]);
    assert_eq!(log[0]["status"], "delivered");
    // Redelivering a delivered event sends it again, with the same id.
    w.api
        .expect(
            202,
            "POST",
            &format!("/webhook-deliveries/{}/redeliver", accepted["id"].as_str().unwrap()),
            None,
        )
        .await;
    w.relay().await;
    let again = w.receiver.received();
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].id, again[0].id);
}

#[tokio::test]
async fn the_delivery_api_refuses_what_it_should() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    w.receiver.set(json!({ "fail": 1 }));
    w.completed_session("usr_1").await;
    w.relay().await;
    let log = w.deliveries().await;
    let id = str_of(&log[0], "id");
    // Still being retried.
    let (status, body, _) = w
        .api
        .partner("POST", &format!("/webhook-deliveries/{id}/redeliver"), None)
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("delivery_pending")),
        "{body}"
    );
    // Another organisation sees neither the delivery nor the endpoint.
    let other_org = [
        ("POST", format!("/webhook-deliveries/{id}/redeliver")),
        ("GET", format!("/webhook-endpoints/{}/deliveries", w.endpoint)),
        ("POST", format!("/webhook-endpoints/{}/test", w.endpoint)),
    ];
    for (method, path) in other_org {
        let (status, _, _) = w.api.partner_as(&w.api.other, method, &path, None).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    for path in [
        "/webhook-deliveries/whd_nope/redeliver",
        "/webhook-deliveries/whe_1/redeliver",
    ] {
        let (status, _, _) = w.api.partner("POST", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    // Bad listing parameters are named.
    for query in ["limit=0", "limit=101", "cursor=nope", "colour=red"] {
        let (status, body, _) = w
            .api
            .partner(
                "GET",
                &format!("/webhook-endpoints/{}/deliveries?{query}", w.endpoint),
                None,
            )
            .await;
        assert!(status == 422 || status == 400, "{query}: {status} {body}");
    }
}

#[tokio::test]
async fn the_delivery_log_pages_newest_first() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    for user in ["usr_1", "usr_2", "usr_3"] {
        w.completed_session(user).await;
    }
    w.relay().await;
    let all = w.deliveries().await;
    assert_eq!(all.len(), 3);
    let ids: Vec<&str> = all.iter().map(|d| str_of(d, "id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let path = format!("/webhook-endpoints/{}/deliveries?limit=2", w.endpoint);
    let first = w.api.get(&path).await;
    assert_eq!(first["hasMore"], true);
    let cursor = str_of(&first, "nextCursor");
    let second = w.api.get(&format!("{path}&cursor={cursor}")).await;
    assert_eq!(second["hasMore"], false);
    let paged: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|d| str_of(d, "id"))
        .collect();
    assert_eq!(paged, ids);
}

#[tokio::test]
async fn a_deleted_endpoint_gets_nothing_more() {
    acceptance::require!(StandardWebhooks);
    let w = world(&["session_completed"]).await;
    if !w.clock_drives_the_queues() {
        return;
    }
    w.receiver.set(json!({ "fail": 1 }));
    w.completed_session("usr_1").await;
    w.relay().await;
    let id = str_of(&w.deliveries().await[0], "id").to_owned();
    w.api
        .expect(204, "DELETE", &format!("/webhook-endpoints/{}", w.endpoint), None)
        .await;
    w.after(RETRY_DELAYS_SECONDS[0]).await;
    assert_eq!(w.receiver.received().len(), 1, "no attempt after the deletion");
    let delivery = w
        .api
        .app
        .store
        .deliveries()
        .get(
            &w.api.key.tenant().unwrap(),
            &korala_domain::ids::WebhookDeliveryId::parse(&id).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(delivery.state, korala_domain::delivery::DeliveryState::Failed { .. }),
        "{delivery:?}"
    );
}

/// At least once, not twice: the bus publishing the same events again (an
/// outbox batch retried after a crash, a redelivered queue message) finds
/// the deliveries made and sends nothing more.
#[tokio::test]
async fn events_published_twice_are_delivered_once() {
    acceptance::require!(StandardWebhooks);
    let w = world(&SIX).await;
    let Some(store) = w.api.sqlite.clone() else {
        return; // The emulated AWS path re-reads its stream in dynamodb_stream.rs.
    };
    let session = w.completed_session("usr_1").await;
    w.relay().await;
    let first = w.receiver.received();
    assert_eq!(first.len(), 4, "{first:?}");
    let org = w.api.key.tenant().unwrap();
    let events = w
        .api
        .app
        .store
        .sessions()
        .list_events(&org, &korala_domain::ids::SessionId::parse(&session).unwrap())
        .await
        .unwrap();
    let queue = Arc::new(store.queue(functions::runtime::relay::WEBHOOK_EVENTS_QUEUE, w.api.app.clock.clone()));
    let bus = functions::adapters::bus::InProcessBus::new(queue);
    for _ in 0..2 {
        korala_domain::ports::EventBus::publish(&bus, &events).await.unwrap();
    }
    w.after(60).await;
    assert_eq!(w.receiver.received().len(), first.len());
    assert_eq!(w.deliveries().await.len(), first.len());
}
