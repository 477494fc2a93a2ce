//! Running the functions on Lambda: one API handler behind API Gateway, or
//! one of the event functions (the outbox publisher on the table's stream,
//! the checks worker, the fan-out and the dispatcher on their SQS queues). Each builds its
//! clients once per execution environment.
//!
//! Every invocation runs in the span the runtime's own tracing layer opens
//! (`requestId`, `xrayTraceId`), with the function's name added
//! ([`Invocations`]), and ends by flushing the metrics it recorded.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Error, Request, RequestExt, service_fn};
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::app::{
    App, CHECKS_QUEUE_ENV, DELIVERIES_QUEUE_ENV, EVENT_BUS_ENV, EVENTS_QUEUE_ENV, StartupError, required_env,
};
use crate::aws::Aws;
use crate::bus::eventbridge::EventBridgeBus;
use crate::checks::ChecksWorker;
use crate::checks::provider::Providers;
use crate::queue::sqs::SqsQueue;
use crate::routes::Handler;
use crate::webhooks::dispatch::Dispatcher;
use crate::webhooks::fanout::FanOut;
use crate::workers::{Consumer, sqs_batch};

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
        let span =
            crate::telemetry::invocation_span(self.function, &context.request_id, context.xray_trace_id.as_deref());
        // Entered while the inner service builds its future, so spans it
        // opens there are children of this one (as the runtime's layer does).
        let future = {
            let _entered = span.enter();
            self.inner.call(invocation)
        };
        future.instrument(span)
    }
}

/// Builds the application once per execution environment (clients and keys
/// are reused across invocations) and serves `handler`. Handler errors are
/// already HTTP responses, so the runtime never sees a failed invocation for
/// anything a client sent. The response's `X-Request-Id` is the
/// invocation's request id, the one its log lines carry.
pub async fn serve(function: &'static str, handler: Handler) -> Result<(), Error> {
    crate::telemetry::init();
    let app = App::from_env().await?;
    let service = service_fn(move |req: Request| {
        let app = app.clone();
        async move {
            let request_id = req
                .lambda_context_ref()
                .map(|c| c.request_id.clone())
                .unwrap_or_default();
            let response = crate::routes::handle(function, handler, app, req, &request_id).await;
            crate::metrics::flush(Some(&request_id));
            Ok::<_, Infallible>(response)
        }
    });
    Runtime::new(lambda_http::Adapter::from(service))
        .layer(Invocations::new(function))
        .run()
        .await
}

/// The outbox publisher: DynamoDB stream batches onto the event bus. Its
/// answer names the first record not published; Lambda retries from there.
pub async fn serve_outbox_publisher() -> Result<(), Error> {
    crate::telemetry::init();
    let bus = EventBridgeBus::new(Aws::default().eventbridge().await, required_env(EVENT_BUS_ENV)?);
    let bus = &bus;
    let service = service_fn(move |event: LambdaEvent<StreamEvent>| async move {
        let response = crate::outbox::publish_stream(bus, event.payload).await;
        crate::metrics::flush(Some(&event.context.request_id));
        Ok::<_, Error>(response)
    });
    Runtime::new(service)
        .layer(Invocations::new("outbox-publisher"))
        .run()
        .await
}

/// The fan-out, on the webhook events queue.
pub async fn serve_fanout() -> Result<(), Error> {
    crate::telemetry::init();
    let aws = Aws::default();
    let app = App::from_env_with(&aws).await?;
    let deliveries = app
        .deliveries
        .clone()
        .ok_or(StartupError::MissingVariable(DELIVERIES_QUEUE_ENV))?;
    let events = SqsQueue::new(aws.sqs().await, required_env(EVENTS_QUEUE_ENV)?);
    let fanout: Arc<dyn Consumer> = Arc::new(FanOut::new(app.store.clone(), app.clock.clone(), deliveries));
    serve_queue("webhook-fanout", fanout, Arc::new(events)).await
}

/// The dispatcher, on the webhook deliveries queue.
pub async fn serve_dispatcher() -> Result<(), Error> {
    crate::telemetry::init();
    let app = App::from_env().await?;
    let deliveries = app
        .deliveries
        .clone()
        .ok_or(StartupError::MissingVariable(DELIVERIES_QUEUE_ENV))?;
    let dispatcher: Arc<dyn Consumer> = Arc::new(Dispatcher::new(&app)?);
    serve_queue("webhook-dispatcher", dispatcher, deliveries).await
}

/// The checks worker, on the checks queue; its providers (the screening
/// list) are loaded once per execution environment.
pub async fn serve_checks_worker() -> Result<(), Error> {
    crate::telemetry::init();
    let aws = Aws::default();
    let app = App::from_env_with(&aws).await?;
    let providers = Arc::new(Providers::from_env()?);
    let checks = SqsQueue::new(aws.sqs().await, required_env(CHECKS_QUEUE_ENV)?);
    let worker: Arc<dyn Consumer> = Arc::new(ChecksWorker::new(&app, providers));
    serve_queue("checks-worker", worker, Arc::new(checks)).await
}

/// An SQS-triggered consumer, answering with the batch's item failures.
async fn serve_queue(
    function: &'static str,
    consumer: Arc<dyn Consumer>,
    queue: Arc<dyn korala_domain::ports::Queue>,
) -> Result<(), Error> {
    let service = service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (consumer, queue) = (consumer.clone(), queue.clone());
        async move {
            let response = sqs_batch(consumer, queue.as_ref(), event.payload).await;
            crate::metrics::flush(Some(&event.context.request_id));
            Ok::<_, Error>(response)
        }
    });
    Runtime::new(service).layer(Invocations::new(function)).run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::testing::{Capture, lambda};

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
            assert_eq!(line["span"]["name"], crate::telemetry::INVOCATION_SPAN, "{line}");
            assert_eq!(
                line["span"]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                "{line}"
            );
            assert_eq!(line["span"]["function"], "webhook-dispatcher", "{line}");
            assert_eq!(line["span"]["xrayTraceId"], "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700");
        }
    }
}
