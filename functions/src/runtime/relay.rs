//! The event relay, in process: what the outbox publisher, the EventBridge
//! rule and the two queue-triggered functions do on AWS, run as one loop by
//! the local server (and step by step by the tests).
//!
//! Each step publishes what the outbox holds to the bus, then lets the
//! fan-out and the dispatcher take what their queues hold. The adapters decide
//! where it runs: the embedded store's outbox, the in-process bus and queues
//! in its tables; or the emulated AWS path — DynamoDB Local's stream, read as
//! the event source mapping reads it and handed to the same
//! [`publish_stream`] the `outbox-publisher` function runs, then EventBridge
//! and SQS (moto's).

use std::sync::Arc;
use std::time::Duration;

use korala_domain::ports::{EventBus, Outbox, Queue, QueueError};
use tracing::Instrument;

use crate::adapters::bus::InProcessBus;
use crate::adapters::bus::eventbridge::EventBridgeBus;
use crate::adapters::providers::Providers;
use crate::adapters::queue::sqs::SqsQueue;
use crate::adapters::store::sqlite::SqliteStore;
use crate::adapters::stream::{StreamError, StreamReader};
use crate::app::App;
use crate::consumers::checks_worker::ChecksWorker;
use crate::consumers::dispatcher::Dispatcher;
use crate::consumers::fanout::FanOut;
use crate::consumers::outbox::{OutboxError, publish_pending, publish_stream};
use crate::consumers::{Consumer, poll_once};

/// The queue names in the embedded store.
pub const WEBHOOK_EVENTS_QUEUE: &str = "webhook-events";
pub const WEBHOOK_DELIVERIES_QUEUE: &str = "webhook-deliveries";
pub const CHECKS_QUEUE: &str = "checks";

/// Events (or stream records) read from the outbox per step.
const OUTBOX_BATCH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("the outbox publisher did not publish record {0}; it is read again next step")]
    NotPublished(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AwsRelayError {
    #[error(transparent)]
    Provision(#[from] crate::adapters::topology::ProvisionError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the relay reads committed events from.
enum Source {
    /// The embedded store's unpublished events.
    Outbox(Arc<dyn Outbox>),
    /// A DynamoDB table's stream.
    Stream(Box<StreamReader>),
}

pub struct Relay {
    app: App,
    source: Source,
    bus: Arc<dyn EventBus>,
    webhook_events: Arc<dyn Queue>,
    deliveries: Arc<dyn Queue>,
    checks: Arc<dyn Queue>,
    fanout: Arc<dyn Consumer>,
    dispatcher: Arc<dyn Consumer>,
    checks_worker: Arc<dyn Consumer>,
}

/// The queues a relay consumes.
pub struct Queues {
    pub webhook_events: Arc<dyn Queue>,
    pub deliveries: Arc<dyn Queue>,
    pub checks: Arc<dyn Queue>,
}

impl Relay {
    /// The relay over the embedded store: its outbox, the in-process bus and
    /// queues in its tables. Also sets `app.deliveries`, so the API's
    /// redeliveries and test events go to the same queue.
    pub fn embedded(app: &mut App, store: &Arc<SqliteStore>, providers: Arc<Providers>) -> std::io::Result<Self> {
        let queue = |name| -> Arc<dyn Queue> { Arc::new(store.queue(name, app.clock.clone())) };
        let queues = Queues {
            webhook_events: queue(WEBHOOK_EVENTS_QUEUE),
            deliveries: queue(WEBHOOK_DELIVERIES_QUEUE),
            checks: queue(CHECKS_QUEUE),
        };
        let bus = Arc::new(InProcessBus::new(queues.webhook_events.clone()).with_checks(queues.checks.clone()));
        let outbox: Arc<dyn Outbox> = store.clone();
        Self::new(app, Source::Outbox(outbox), bus, queues, providers)
    }

    /// The emulated AWS path over `table` (the store of `app`): reads its
    /// stream and provisions a bus, rules and queues named after `prefix`
    /// wherever the SQS and EventBridge endpoints point (moto, or a
    /// development account), as `topology` defines them for the stack.
    pub async fn emulated_aws(
        app: &mut App,
        table: &str,
        prefix: &str,
        providers: Arc<Providers>,
    ) -> Result<Self, AwsRelayError> {
        let (sqs, eventbridge) = crate::adapters::topology::clients().await;
        let provisioned = crate::adapters::topology::provision(&sqs, &eventbridge, prefix).await?;
        let dynamodb = crate::adapters::store::dynamodb::DynamoStore::connect(table).await;
        let reader = StreamReader::connect(
            dynamodb.client(),
            crate::adapters::stream::streams_client().await,
            table,
        )
        .await?;
        let bus = Arc::new(EventBridgeBus::new(eventbridge, provisioned.bus_name));
        let queue = |url: String| -> Arc<dyn Queue> { Arc::new(SqsQueue::new(sqs.clone(), url)) };
        let queues = Queues {
            webhook_events: queue(provisioned.webhook_events.url),
            deliveries: queue(provisioned.webhook_deliveries.url),
            checks: queue(provisioned.checks.url),
        };
        Ok(Self::new(
            app,
            Source::Stream(Box::new(reader)),
            bus,
            queues,
            providers,
        )?)
    }

    fn new(
        app: &mut App,
        source: Source,
        bus: Arc<dyn EventBus>,
        queues: Queues,
        providers: Arc<Providers>,
    ) -> std::io::Result<Self> {
        app.deliveries = Some(queues.deliveries.clone());
        let fanout = FanOut::new(app.store.clone(), app.clock.clone(), queues.deliveries.clone());
        let dispatcher = Dispatcher::new(app)?;
        let checks_worker = ChecksWorker::new(app, providers);
        Ok(Self {
            app: app.clone(),
            source,
            bus,
            webhook_events: queues.webhook_events,
            deliveries: queues.deliveries,
            checks: queues.checks,
            fanout: Arc::new(fanout),
            dispatcher: Arc::new(dispatcher),
            checks_worker: Arc::new(checks_worker),
        })
    }

    /// One pass: publish, run checks, fan out, dispatch. Returns how many
    /// events and messages it handled (0: nothing is due).
    /// Each stage runs in a span of its own, named after its Lambda
    /// function with a fresh request id, as each would be invoked on AWS.
    pub async fn step(&self) -> Result<usize, RelayError> {
        let result = self.stages().await;
        crate::runtime::metrics::flush(None);
        result
    }

    async fn stages(&self) -> Result<usize, RelayError> {
        let stage = crate::runtime::telemetry::local_invocation_span;
        let mut handled = self.publish().instrument(stage("outbox-publisher")).await?;
        handled += poll_once(&self.checks_worker, self.checks.as_ref())
            .instrument(stage("checks-worker"))
            .await?;
        handled += poll_once(&self.fanout, self.webhook_events.as_ref())
            .instrument(stage("webhook-fanout"))
            .await?;
        handled += poll_once(&self.dispatcher, self.deliveries.as_ref())
            .instrument(stage("webhook-dispatcher"))
            .await?;
        Ok(handled)
    }

    /// Hands the committed events to the bus; returns how many records it
    /// took from the source.
    async fn publish(&self) -> Result<usize, RelayError> {
        match &self.source {
            Source::Outbox(outbox) => {
                let clock = self.app.clock.as_ref();
                Ok(publish_pending(outbox.as_ref(), self.bus.as_ref(), clock, OUTBOX_BATCH as u32).await?)
            }
            Source::Stream(reader) => {
                let batch = reader.next_batch(OUTBOX_BATCH).await?;
                if batch.records.is_empty() {
                    return Ok(0);
                }
                let taken = batch.records.len();
                let response = publish_stream(self.bus.as_ref(), batch.clone()).await;
                reader.commit(&batch, &response);
                match response.batch_item_failures.first() {
                    None => Ok(taken),
                    Some(failure) => Err(RelayError::NotPublished(
                        failure.item_identifier.clone().unwrap_or_default(),
                    )),
                }
            }
        }
    }

    /// Steps until a step finds nothing to do (or `max_steps` ran): what is
    /// due now is delivered, and what waits for a retry still waits.
    pub async fn run_until_idle(&self, max_steps: usize) -> Result<usize, RelayError> {
        let mut handled = 0;
        for _ in 0..max_steps {
            match self.step().await? {
                0 => break,
                n => handled += n,
            }
        }
        Ok(handled)
    }

    /// Runs until the task is dropped, pausing `idle` whenever a step found
    /// nothing to do.
    pub fn spawn(self, idle: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.step().await {
                    Ok(0) => tokio::time::sleep(idle).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "event relay step failed");
                        tokio::time::sleep(idle).await;
                    }
                }
            }
        })
    }
}
