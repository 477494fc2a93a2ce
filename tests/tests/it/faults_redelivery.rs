//! Queues deliver at least once. Every queue consumer — the checks worker,
//! the webhook fan-out, the dispatcher — given each message twice at once,
//! given a whole batch twice, or given a message again after its first copy
//! succeeded, ends where it would given each message once: one answer per
//! check, one delivery per (event, endpoint), one POST per delivery attempt,
//! no extra session events.
//!
//! On the emulated AWS path (DynamoDB Local's stream, EventBridge and SQS on
//! moto, which `scripts/test` starts) and on the embedded store's queues.
//! The pipeline is stepped stage by stage, so the test can redeliver
//! between the stages what SQS may redeliver.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use acceptance::api::{Api, event_types, str_of, workflow_ids};
use acceptance::dynamodb::Table;
use acceptance::receiver::Receiver;
use async_trait::async_trait;
use functions::adapters::bus::InProcessBus;
use functions::adapters::bus::eventbridge::EventBridgeBus;
use functions::adapters::providers::{Provider, ProviderError, Providers, ScreenCall, ScreeningProvider};
use functions::adapters::queue::sqs::SqsQueue;
use functions::adapters::store::sqlite::SqliteStore;
use functions::adapters::stream::{StreamReader, streams_client};
use functions::consumers::checks_worker::ChecksWorker;
use functions::consumers::dispatcher::Dispatcher;
use functions::consumers::fanout::FanOut;
use functions::consumers::outbox::{publish_pending, publish_stream};
use functions::consumers::{Consumer, VISIBILITY_SECONDS, poll_once, sqs_batch};
use functions::runtime::relay::{CHECKS_QUEUE, WEBHOOK_DELIVERIES_QUEUE, WEBHOOK_EVENTS_QUEUE};
use korala_domain::ports::{EventBus, Outgoing, Queue};
use korala_domain::screening::{Finding, SAMPLE_LIST, ScreeningList};
use korala_domain::webhooks::UrlPolicy;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// DynamoDB Local's stream, EventBridge and SQS on moto.
    Aws,
    /// The embedded store's outbox and queues.
    Embedded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redelivery {
    Once,
    /// Two copies of every message on the queue, received in one batch and
    /// handled at once, as two pollers holding the same message would.
    Twice,
    /// Every batch handed to the function twice, as the event source mapping
    /// does when an invocation times out after doing its work.
    BatchTwice,
    /// Each message once; after everything settled, every message again.
    AgainAfterSuccess,
}

/// The built-in screening, counting its calls: with a vendor behind it, each
/// is a paid request outside the system.
struct CountedScreening {
    screening: ScreeningProvider,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Provider for CountedScreening {
    fn name(&self) -> &str {
        self.screening.name()
    }

    fn is_vendor(&self) -> bool {
        false
    }

    async fn screen(&self, call: &ScreenCall<'_>) -> Result<Vec<Finding>, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.screening.screen(call).await
    }
}

/// Where committed events come from.
enum Source {
    Stream(Box<StreamReader>),
    Outbox(Arc<SqliteStore>),
}

/// A queue and its consumer, and every message body it was given.
struct Stage {
    queue: Arc<dyn Queue>,
    consumer: Arc<dyn Consumer>,
    bodies: Mutex<Vec<String>>,
}

/// What a run ends with, in terms two runs can be compared on.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    /// The session's event types, sorted (checks answer in any order).
    history: Vec<String>,
    /// Each check's kind, status and number of findings.
    checks: Vec<(String, String, usize)>,
    /// Per endpoint, each delivery's event, status and number of attempts.
    deliveries: Vec<Vec<(String, String, usize)>>,
    /// Per receiver, the event of each POST it got, sorted.
    posts: Vec<Vec<String>>,
    /// How often the checks' provider was asked.
    screenings: usize,
}

struct World {
    api: Api,
    source: Source,
    bus: Arc<dyn EventBus>,
    /// The checks worker, the fan-out and the dispatcher, in pipeline order.
    stages: [Stage; 3],
    receivers: [Receiver; 2],
    endpoints: [String; 2],
    session: String,
    screenings: Arc<AtomicUsize>,
}

async fn world(path: Path) -> World {
    let (mut api, source, bus, queues) = match path {
        Path::Aws => {
            let table = Arc::new(Table::new().await);
            let mut api = Api::with_store(Arc::new(table.store.clone())).await;
            let (sqs, eventbridge) = functions::adapters::topology::clients().await;
            let topology = functions::adapters::topology::provision(&sqs, &eventbridge, &table.name)
                .await
                .unwrap_or_else(|e| panic!("provisioning the queues on moto: {e}"));
            let reader = StreamReader::connect(table.store.client(), streams_client().await, &table.name)
                .await
                .unwrap_or_else(|e| panic!("reading the stream of {}: {e}", table.name));
            api.table = Some(table);
            let queue = |url: String| -> Arc<dyn Queue> { Arc::new(SqsQueue::new(sqs.clone(), url)) };
            let queues = [
                queue(topology.checks.url),
                queue(topology.webhook_events.url),
                queue(topology.webhook_deliveries.url),
            ];
            let bus: Arc<dyn EventBus> = Arc::new(EventBridgeBus::new(eventbridge, topology.bus_name));
            (api, Source::Stream(Box::new(reader)), bus, queues)
        }
        Path::Embedded => {
            let store = Arc::new(SqliteStore::in_memory().expect("an in-memory store"));
            let mut api = Api::with_store(store.clone()).await;
            api.sqlite = Some(store.clone());
            let queue = |name| -> Arc<dyn Queue> { Arc::new(store.queue(name, api.app.clock.clone())) };
            let queues = [
                queue(CHECKS_QUEUE),
                queue(WEBHOOK_EVENTS_QUEUE),
                queue(WEBHOOK_DELIVERIES_QUEUE),
            ];
            let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new(queues[1].clone()).with_checks(queues[0].clone()));
            (api, Source::Outbox(store), bus, queues)
        }
    };
    let mut settings = (*api.app.settings).clone();
    settings.webhook_urls = UrlPolicy::Development;
    api.app.settings = Arc::new(settings);
    let [checks, webhook_events, deliveries] = queues;
    let stage = |queue: Arc<dyn Queue>, consumer: Arc<dyn Consumer>| Stage {
        queue,
        consumer,
        bodies: Mutex::default(),
    };
    let fanout = FanOut::new(api.app.store.clone(), api.app.clock.clone(), deliveries.clone());
    let screenings = Arc::new(AtomicUsize::new(0));
    let list = ScreeningList::parse(SAMPLE_LIST).expect("the sample list parses");
    let screening = CountedScreening {
        screening: ScreeningProvider::new(list),
        calls: screenings.clone(),
    };
    let providers = Arc::new(Providers::new(Arc::new(screening)));
    let stages = [
        stage(checks, Arc::new(ChecksWorker::new(&api.app, providers))),
        stage(webhook_events, Arc::new(fanout)),
        stage(deliveries, Arc::new(Dispatcher::new(&api.app).expect("the dispatcher"))),
    ];

    // Two endpoints, one taking every webhook type and one a part of them,
    // each at a receiver of its own (a receiver checks one secret).
    let receivers = [Receiver::start(None), Receiver::start(None)];
    let subscriptions = [
        json!(functions::adapters::topology::WEBHOOK_EVENTS),
        json!(["session_completed", "session_workflow_completed"]),
    ];
    let mut endpoints = Vec::new();
    for (receiver, events) in receivers.iter().zip(subscriptions) {
        let body = json!({ "url": receiver.url(), "events": events });
        let created = api.expect(201, "POST", "/webhook-endpoints", Some(body)).await;
        receiver.set(json!({ "secret": str_of(&created, "secret") }));
        receiver.sync_clock(api.clock.now());
        endpoints.push(str_of(&created, "id").to_owned());
    }

    // A case whose two screening checks run in the checks worker.
    let name = "Maria Clean Example";
    api.simple_configuration("screened", &["id-document", "sanctions-check", "pep-check"], json!({}))
        .await;
    let session = api
        .create_session(json!({
            "configurationSlug": "screened",
            "externalUserId": "usr_maria",
            "participants": [{"role": "subject", "displayName": name}],
        }))
        .await;
    let mut document = api.id_document(name);
    document["dateOfBirth"] = json!("1988-02-03");
    api.submit_ok(str_of(&session, "accessToken"), &workflow_ids(&session)[0], document)
        .await;
    World {
        source,
        bus,
        stages,
        receivers,
        endpoints: endpoints.try_into().expect("two endpoints"),
        session: str_of(&session, "id").to_owned(),
        screenings,
        api,
    }
}

fn message(body: &str) -> Outgoing {
    Outgoing {
        body: body.to_owned(),
        delay_seconds: 0,
    }
}

impl World {
    /// Publishes what was committed since the last call; returns how many
    /// records or events it took.
    async fn publish(&self) -> usize {
        match &self.source {
            Source::Stream(reader) => {
                let batch = reader.next_batch(100).await.expect("the stream reads");
                let taken = batch.records.len();
                if taken > 0 {
                    let response = publish_stream(self.bus.as_ref(), batch.clone()).await;
                    reader.commit(&batch, &response);
                    assert!(response.batch_item_failures.is_empty(), "the publisher failed");
                }
                taken
            }
            Source::Outbox(store) => {
                publish_pending(store.as_ref(), self.bus.as_ref(), self.api.app.clock.as_ref(), 100)
                    .await
                    .expect("the outbox publishes")
            }
        }
    }

    /// Runs the pipeline until a pass finds nothing to do.
    async fn relay(&self, redelivery: Redelivery) {
        for _ in 0..30 {
            let mut handled = self.publish().await;
            for stage in &self.stages {
                handled += self.run(stage, redelivery).await;
            }
            if handled == 0 {
                return;
            }
        }
        panic!("the pipeline did not settle under {redelivery:?}");
    }

    /// Hands a stage what its queue holds; returns how many messages it took.
    async fn run(&self, stage: &Stage, redelivery: Redelivery) -> usize {
        let copies = match redelivery {
            Redelivery::Twice => 2,
            Redelivery::AgainAfterSuccess => 1,
            Redelivery::Once | Redelivery::BatchTwice => 0,
        };
        if copies > 0 {
            // Taken off the queue and put back as fresh messages, `copies`
            // of each side by side (so one batch holds both copies), the
            // bodies kept for redelivering everything at the end.
            let taken = take_all(stage.queue.as_ref()).await;
            let bodies: Vec<String> = taken.iter().map(|m| m.body.clone()).collect();
            let again: Vec<Outgoing> = bodies
                .iter()
                .flat_map(|b| std::iter::repeat_n(message(b), copies))
                .collect();
            stage.queue.send(&again).await.expect("the copies are queued");
            for m in &taken {
                stage.queue.delete(&m.receipt).await.expect("the original is deleted");
            }
            stage.bodies.lock().expect("the stage's log").extend(bodies);
        }
        let mut handled = 0;
        loop {
            let n = match redelivery {
                Redelivery::BatchTwice => lambda_twice(stage).await,
                _ => poll_once(&stage.consumer, stage.queue.as_ref())
                    .await
                    .expect("the queue answers"),
            };
            if n == 0 {
                return handled;
            }
            handled += n;
        }
    }

    /// Every message each stage was ever given, queued to it once more.
    async fn redeliver_everything(&self) {
        for stage in &self.stages {
            let bodies = stage.bodies.lock().expect("the stage's log").clone();
            let again: Vec<Outgoing> = bodies.iter().map(|b| message(b)).collect();
            if !again.is_empty() {
                stage.queue.send(&again).await.expect("the messages are queued again");
            }
        }
    }

    async fn outcome(&self) -> Outcome {
        let api = &self.api;
        let mut history = event_types(&api.events(&self.session).await);
        history.sort();
        let session = api.session(&self.session).await;
        let checks = session["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| (text(&c["kind"]), text(&c["status"]), count(&c["findings"])))
            .collect();
        let mut deliveries = Vec::new();
        for endpoint in &self.endpoints {
            let page = api
                .get(&format!("/webhook-endpoints/{endpoint}/deliveries?limit=100"))
                .await;
            let mut log: Vec<(String, String, usize)> = page["data"]
                .as_array()
                .expect("a delivery log")
                .iter()
                .map(|d| (text(&d["event"]), text(&d["status"]), count(&d["attempts"])))
                .collect();
            log.sort();
            deliveries.push(log);
        }
        let posts = self
            .receivers
            .iter()
            .map(|r| {
                let mut events: Vec<String> = r.received().iter().map(|p| p.event().to_owned()).collect();
                events.sort();
                events
            })
            .collect();
        Outcome {
            history,
            checks,
            deliveries,
            posts,
            screenings: self.screenings.load(Ordering::SeqCst),
        }
    }

    /// Each webhook id reached each receiver once: the dispatcher's effect
    /// outside the system, which no later write can take back.
    fn assert_each_post_once(&self) {
        for (receiver, endpoint) in self.receivers.iter().zip(&self.endpoints) {
            let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
            for post in receiver.received() {
                *per_id.entry(post.id).or_default() += 1;
            }
            let repeated: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                repeated.is_empty(),
                "webhook ids POSTed to endpoint {endpoint} more than once: {repeated:?}"
            );
        }
    }
}
fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn count(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// Everything visible on the queue, received (and so hidden) until deleted.
async fn take_all(queue: &dyn Queue) -> Vec<korala_domain::ports::Received> {
    let mut taken = Vec::new();
    loop {
        let batch = queue.receive(10, VISIBILITY_SECONDS).await.expect("the queue answers");
        if batch.is_empty() {
            return taken;
        }
        taken.extend(batch);
    }
}

/// One batch as the event source mapping hands it to the function, handed
/// over twice; then, as the mapping does, the messages the last invocation
/// did not report as failures are deleted. Returns the batch's size.
async fn lambda_twice(stage: &Stage) -> usize {
    let received = stage
        .queue
        .receive(10, VISIBILITY_SECONDS)
        .await
        .expect("the queue answers");
    if received.is_empty() {
        return 0;
    }
    let records: Vec<Value> = received
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "messageId": format!("message-{i}"),
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": { "ApproximateReceiveCount": m.receive_count.to_string() },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            })
        })
        .collect();
    let event = json!({ "Records": records });
    let invoke = || async {
        let event = serde_json::from_value(event.clone()).expect("an SQS event");
        sqs_batch(stage.consumer.clone(), stage.queue.as_ref(), event).await
    };
    invoke().await;
    let response = invoke().await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    for (i, m) in received.iter().enumerate() {
        if !failed.contains(&format!("message-{i}")) {
            stage.queue.delete(&m.receipt).await.expect("the message is deleted");
        }
    }
    received.len()
}

/// The outcome of each path with every message delivered once, run once
/// for all the tests to compare with.
async fn once(path: Path) -> &'static Outcome {
    static AWS: OnceCell<Outcome> = OnceCell::const_new();
    static EMBEDDED: OnceCell<Outcome> = OnceCell::const_new();
    let cell = match path {
        Path::Aws => &AWS,
        Path::Embedded => &EMBEDDED,
    };
    cell.get_or_init(|| async {
        let w = world(path).await;
        w.relay(Redelivery::Once).await;
        w.assert_each_post_once();
        let outcome = w.outcome().await;
        assert_eq!(
            w.api.session(&w.session).await["status"],
            "completed",
            "the case completes"
        );
        let requested = outcome.history.iter().filter(|t| *t == "session_check_requested");
        assert_eq!(requested.count(), 2, "{outcome:?}");
        assert!(outcome.posts.iter().all(|p| !p.is_empty()), "{outcome:?}");
        outcome
    })
    .await
}

async fn assert_like_once(path: Path, redelivery: Redelivery) {
    match path {
        Path::Aws => acceptance::require!(DynamoDbLocal, Moto, StandardWebhooks),
        Path::Embedded => acceptance::require!(StandardWebhooks),
    }
    let w = world(path).await;
    w.relay(redelivery).await;
    if redelivery == Redelivery::AgainAfterSuccess {
        w.redeliver_everything().await;
        w.relay(Redelivery::Once).await;
    }
    let (got, once) = (w.outcome().await, once(path).await);
    let under = format!("{redelivery:?} on the {path:?} path");
    assert_eq!(got.history, once.history, "no extra session events, {under}");
    assert_eq!(got.checks, once.checks, "one answer per check, {under}");
    assert_eq!(
        got.deliveries, once.deliveries,
        "one delivery per event and endpoint, attempted once, {under}"
    );
    w.assert_each_post_once();
    assert_eq!(got.posts, once.posts, "one POST per delivery, {under}");
    // Copies handled at the same moment may each ask the provider before
    // either records its answer; a copy handled after an answer never does.
    match redelivery {
        Redelivery::Twice => assert!(got.screenings <= 2 * once.screenings, "{under}"),
        _ => assert_eq!(got.screenings, once.screenings, "one screening per check, {under}"),
    }
}

mod aws {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_message_twice_at_once_is_handled_once() {
        assert_like_once(Path::Aws, Redelivery::Twice).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_batch_twice_is_handled_once() {
        assert_like_once(Path::Aws, Redelivery::BatchTwice).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_again_after_success_changes_nothing() {
        assert_like_once(Path::Aws, Redelivery::AgainAfterSuccess).await;
    }
}

mod embedded {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_message_twice_at_once_is_handled_once() {
        assert_like_once(Path::Embedded, Redelivery::Twice).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_batch_twice_is_handled_once() {
        assert_like_once(Path::Embedded, Redelivery::BatchTwice).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_message_again_after_success_changes_nothing() {
        assert_like_once(Path::Embedded, Redelivery::AgainAfterSuccess).await;
    }
}
