//! Running the functions on Lambda: one API handler behind API Gateway, or
//! one of the event functions ([`EVENT_ENTRIES`]: the expiry sweeper on its
//! schedule, the outbox publisher on the table's stream, the checks worker,
//! the fan-out and the dispatcher on their SQS queues). Each builds its
//! clients once per execution environment.
//!
//! Every invocation runs in the span the runtime's own tracing layer opens
//! (`requestId`, `xrayTraceId`), with the function's name added
//! ([`Invocations`]), and ends by flushing the metrics it recorded.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use korala_domain::ports::Queue;
use lambda_http::{Error, Request, RequestExt, service_fn};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime};
use tokio::sync::OnceCell;
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::adapters::aws::Aws;
use crate::adapters::bus::eventbridge::EventBridgeBus;
use crate::adapters::providers::{PendingProviders, Providers};
use crate::adapters::queue::sqs::SqsQueue;
use crate::api::routes::Handler;
use crate::app::{
    App, CHECKS_QUEUE_ENV, DELIVERIES_QUEUE_ENV, EVENT_BUS_ENV, EVENTS_QUEUE_ENV, Environment, StartupError,
    required_env,
};
use crate::consumers::checks_worker::ChecksWorker;
use crate::consumers::dispatcher::Dispatcher;
use crate::consumers::fanout::FanOut;
use crate::consumers::{Consumer, sqs_batch};

/// The runtime layer that opens each invocation's span: what
/// `lambda_runtime::layers::TracingLayer` opens, plus `function`, so every
/// line an invocation logs names both. Replaces that layer (a
/// `lambda_runtime::run` would add it; these functions build the runtime
/// themselves).
#[derive(Debug, Clone, Copy)]
pub struct Invocations {
    function: &'static str,
}

impl Invocations {
    pub fn new(function: &'static str) -> Self {
        Self { function }
    }
}

impl<S> Layer<S> for Invocations {
    type Service = InvocationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvocationService {
            inner,
            function: self.function,
        }
    }
}

pub struct InvocationService<S> {
    inner: S,
    function: &'static str,
}

impl<S> Service<LambdaInvocation> for InvocationService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let context = &invocation.context;
        let span = crate::runtime::telemetry::invocation_span(
            self.function,
            &context.request_id,
            context.xray_trace_id.as_deref(),
        );
        // Entered while the inner service builds its future, so spans it
        // opens there are children of this one (as the runtime's layer does).
        let future = {
            let _entered = span.enter();
            self.inner.call(invocation)
        };
        future.instrument(span)
    }
}

/// The application of one execution environment, built on its first
/// invocation rather than at init. Loading the AWS configuration and the TLS
/// roots is most of a start-up (BENCHMARKS.md, cold start); deferred, an
/// init is little more than the runtime's own, and the first response costs
/// the same. What can be checked without building anything (the master key,
/// the variables that name resources) is checked at init, so a
/// misconfigured function still fails its init, before any request.
pub struct LazyApp {
    environment: Environment,
    aws: Aws,
    connect: Connect,
    app: OnceCell<App>,
}

/// How the application is built: [`Environment::connect`], or
/// [`Environment::connect_with_deliveries`] for the functions that queue
/// deliveries. A pointer rather than a flag, so a binary links only the one
/// its function names.
type Connect = for<'a> fn(&'a Environment, &'a Aws) -> BoxFuture<'a, Result<App, StartupError>>;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl LazyApp {
    pub fn from_env() -> Result<Self, StartupError> {
        Ok(Self::with(Environment::read()?, |environment, aws| {
            Box::pin(environment.connect(aws))
        }))
    }

    /// For the functions that queue deliveries: their init fails without
    /// the deliveries queue.
    pub fn with_deliveries_queue() -> Result<Self, StartupError> {
        let environment = Environment::read()?;
        environment.require_deliveries_queue()?;
        Ok(Self::with(environment, |environment, aws| {
            Box::pin(environment.connect_with_deliveries(aws))
        }))
    }

    fn with(environment: Environment, connect: Connect) -> Self {
        Self {
            environment,
            aws: Aws::default(),
            connect,
            app: OnceCell::new(),
        }
    }

    /// The application, built by the first call. A build that fails (the
    /// embedded store cannot be opened) fails that invocation and is tried
    /// again by the next.
    pub async fn get(&self) -> Result<&App, StartupError> {
        self.app
            .get_or_try_init(|| (self.connect)(&self.environment, &self.aws))
            .await
    }

    /// The configuration the application's clients were built from, for a
    /// function's own clients.
    pub fn aws(&self) -> &Aws {
        &self.aws
    }

    /// The application and the deliveries queue, for the functions built
    /// [`with_deliveries_queue`](Self::with_deliveries_queue).
    async fn with_deliveries(&self) -> Result<(&App, Arc<dyn Queue>), StartupError> {
        let app = self.get().await?;
        let deliveries = app
            .deliveries
            .clone()
            .ok_or(StartupError::MissingVariable(DELIVERIES_QUEUE_ENV))?;
        Ok((app, deliveries))
    }
}

/// Why a function's init failed, logged with its message: the runtime
/// prints only the error's `Debug` form as the process exits, which names
/// a variant but not what the deployment must supply.
pub fn failed_init(error: impl std::fmt::Display) -> Error {
    let message = error.to_string();
    tracing::error!(error = %message, "init failed");
    message.into()
}

/// Serves `handler` with the application of this execution environment
/// (clients and keys are reused across invocations). Handler errors are
/// already HTTP responses, so the runtime never sees a failed invocation for
/// anything a client sent. The response's `X-Request-Id` is the
/// invocation's request id, the one its log lines carry.
pub async fn serve(function: &'static str, handler: Handler) -> Result<(), Error> {
    crate::runtime::telemetry::init();
    serve_app(function, handler, LazyApp::from_env().map_err(failed_init)?).await
}

/// [`serve`], for a handler that queues deliveries.
pub async fn serve_with_deliveries_queue(function: &'static str, handler: Handler) -> Result<(), Error> {
    crate::runtime::telemetry::init();
    serve_app(
        function,
        handler,
        LazyApp::with_deliveries_queue().map_err(failed_init)?,
    )
    .await
}

async fn serve_app(function: &'static str, handler: Handler, app: LazyApp) -> Result<(), Error> {
    let app = Arc::new(app);
    let service = service_fn(move |req: Request| {
        let app = app.clone();
        async move {
            let app = app.get().await?.clone();
            let request_id = req
                .lambda_context_ref()
                .map(|c| c.request_id.clone())
                .unwrap_or_default();
            let response = crate::api::routes::handle(function, handler, app, req, &request_id).await;
            crate::runtime::metrics::flush(Some(&request_id));
            Ok::<_, Error>(response)
        }
    });
    Runtime::new(lambda_http::Adapter::from(service))
        .layer(Invocations::new(function))
        .run()
        .await
}

/// A function run by events rather than by a route: its binary's `main`
/// is `functions::runtime::lambda::{serve}().await` (`cargo codegen` writes it).
/// Their SAM blocks are written by hand, each trigger being its own.
pub struct EventEntry {
    pub function: &'static str,
    /// The `serve_*` function of this module its binary runs.
    pub serve: &'static str,
    /// What it does, for its binary's doc comment.
    pub about: &'static str,
}

pub const EVENT_ENTRIES: [EventEntry; 5] = [
    EventEntry {
        function: "expiry-sweeper",
        serve: "serve_expiry_sweeper",
        about: "Expires overdue sessions, invoked by an EventBridge schedule.",
    },
    EventEntry {
        function: "outbox-publisher",
        serve: "serve_outbox_publisher",
        about: "Publishes the outbox (the table's stream) to the event bus.",
    },
    EventEntry {
        function: "webhook-fanout",
        serve: "serve_fanout",
        about: "Turns webhook events into one delivery per subscribed endpoint.",
    },
    EventEntry {
        function: "webhook-dispatcher",
        serve: "serve_dispatcher",
        about: "Signs and sends webhook deliveries, retrying on the Standard Webhooks schedule.",
    },
    EventEntry {
        function: "checks-worker",
        serve: "serve_checks_worker",
        about: "Runs the providers of check steps (PEP and sanctions screening) and records their answers.",
    },
];

/// The expiry sweeper, on its schedule. A failed sweep fails the
/// invocation, so the schedule's retries and alarms see it.
pub async fn serve_expiry_sweeper() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    let app = LazyApp::from_env().map_err(failed_init)?;
    let app = &app;
    let service = service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        crate::consumers::expiry::run(app.get().await?, std::time::Duration::from_secs(20))
            .await
            .map_err(Error::from)
    });
    Runtime::new(service)
        .layer(Invocations::new("expiry-sweeper"))
        .run()
        .await
}

/// The outbox publisher: DynamoDB stream batches onto the event bus. Its
/// answer names the first record not published; Lambda retries from there.
pub async fn serve_outbox_publisher() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    let bus_name = required_env(EVENT_BUS_ENV).map_err(failed_init)?;
    let aws = Aws::default();
    let bus = OnceCell::new();
    let (aws, bus, bus_name) = (&aws, &bus, &bus_name);
    let service = service_fn(move |event: LambdaEvent<StreamEvent>| async move {
        let bus = bus
            .get_or_init(|| async { EventBridgeBus::new(aws.eventbridge().await, bus_name.clone()) })
            .await;
        let response = crate::consumers::outbox::publish_stream(bus, event.payload).await;
        crate::runtime::metrics::flush(Some(&event.context.request_id));
        Ok::<_, Error>(response)
    });
    Runtime::new(service)
        .layer(Invocations::new("outbox-publisher"))
        .run()
        .await
}

/// The fan-out, on the webhook events queue.
pub async fn serve_fanout() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    let app = Arc::new(LazyApp::with_deliveries_queue().map_err(failed_init)?);
    let events_queue = required_env(EVENTS_QUEUE_ENV).map_err(failed_init)?;
    serve_queue("webhook-fanout", move || {
        let (lazy, events_queue) = (app.clone(), events_queue.clone());
        async move {
            let (app, deliveries) = lazy.with_deliveries().await?;
            let events = SqsQueue::new(lazy.aws().sqs().await, events_queue);
            Ok(Wired {
                consumer: Arc::new(FanOut::new(app.store.clone(), app.clock.clone(), deliveries)),
                queue: Arc::new(events),
            })
        }
    })
    .await
}

/// The dispatcher, on the webhook deliveries queue.
pub async fn serve_dispatcher() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    let app = Arc::new(LazyApp::with_deliveries_queue().map_err(failed_init)?);
    serve_queue("webhook-dispatcher", move || {
        let lazy = app.clone();
        async move {
            let (app, deliveries) = lazy.with_deliveries().await?;
            Ok(Wired {
                consumer: Arc::new(Dispatcher::new(app)?),
                queue: deliveries,
            })
        }
    })
    .await
}

/// The checks worker, on the checks queue; its providers (the screening
/// list, the vendors' entries) are checked at init, so a list that does not
/// parse fails it, and the vendors' secrets are read from Secrets Manager
/// on the first invocation.
pub async fn serve_checks_worker() -> Result<(), Error> {
    crate::runtime::telemetry::init();
    let app = Arc::new(LazyApp::from_env().map_err(failed_init)?);
    let pending = PendingProviders::from_env().map_err(failed_init)?;
    let checks_queue = required_env(CHECKS_QUEUE_ENV).map_err(failed_init)?;
    let (pending, providers) = (Arc::new(pending), Arc::new(OnceCell::new()));
    serve_queue("checks-worker", move || {
        let (lazy, pending, providers, checks_queue) =
            (app.clone(), pending.clone(), providers.clone(), checks_queue.clone());
        async move {
            // Read once; a read that fails fails this invocation, and the
            // next one tries again. Boxed: the SDK's futures nested in the
            // runtime's are deeper than the compiler's default layout limit.
            let providers: &Arc<Providers> = providers
                .get_or_try_init(|| async { Box::pin(pending.read(lazy.aws())).await.map(Arc::new) })
                .await?;
            let providers = providers.clone();
            let app = lazy.get().await?;
            let checks = SqsQueue::new(lazy.aws().sqs().await, checks_queue);
            Ok(Wired {
                consumer: Arc::new(ChecksWorker::new(app, providers)),
                queue: Arc::new(checks),
            })
        }
    })
    .await
}

/// A queue consumer and the queue it answers to, built on first use.
struct Wired {
    consumer: Arc<dyn Consumer>,
    queue: Arc<dyn Queue>,
}

/// An SQS-triggered consumer, answering with the batch's item failures. It
/// is wired by `wire` on the first invocation (see [`LazyApp`]).
async fn serve_queue<W, F>(function: &'static str, wire: W) -> Result<(), Error>
where
    W: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<Wired, Error>> + Send,
{
    let wired = Arc::new((OnceCell::new(), wire));
    let service = service_fn(move |event: LambdaEvent<SqsEvent>| {
        let wired = wired.clone();
        async move {
            let (cell, wire) = &*wired;
            let Wired { consumer, queue } = cell.get_or_try_init(wire).await?;
            let response = sqs_batch(consumer.clone(), queue.as_ref(), event.payload).await;
            crate::runtime::metrics::flush(Some(&event.context.request_id));
            Ok::<_, Error>(response)
        }
    });
    Runtime::new(service).layer(Invocations::new(function)).run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::telemetry::testing::{Capture, lambda};

    #[tokio::test]
    async fn every_line_of_an_invocation_names_its_request_and_function() {
        let capture = Capture::new(&lambda("info"));
        let handler = lambda_runtime::tower::service_fn(|_: LambdaInvocation| async {
            tracing::info!("handled");
            // Work a handler spawns keeps the span (the queue consumers do).
            let spawned = tokio::spawn(async { tracing::warn!("in a task") }.in_current_span());
            spawned.await.map_err(Error::from)
        });
        let mut service = Invocations::new("webhook-dispatcher").layer(handler);
        let mut context = lambda_runtime::Context::default();
        context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
        context.xray_trace_id = Some("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".into());
        let invocation = LambdaInvocation {
            parts: http::Response::new(()).into_parts().0,
            body: Default::default(),
            context,
        };
        service.call(invocation).await.unwrap();
        let lines = capture.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        for line in &lines {
            assert_eq!(
                line["span"]["name"],
                crate::runtime::telemetry::INVOCATION_SPAN,
                "{line}"
            );
            assert_eq!(
                line["span"]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                "{line}"
            );
            assert_eq!(line["span"]["function"], "webhook-dispatcher", "{line}");
            assert_eq!(line["span"]["xrayTraceId"], "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700");
        }
    }
}
