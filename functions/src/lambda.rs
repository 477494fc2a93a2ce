//! Running the functions on Lambda: one API handler behind API Gateway, or
//! one of the event functions (the outbox publisher on the table's stream,
//! the checks worker, the fan-out and the dispatcher on their SQS queues). Each builds its
//! clients once per execution environment.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Error, Request, service_fn};
use lambda_runtime::LambdaEvent;

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

/// Builds the application once per execution environment (clients and keys
/// are reused across invocations) and serves `handler`. Handler errors are
/// already HTTP responses, so the runtime never sees a failed invocation for
/// anything a client sent.
pub async fn serve(handler: Handler) -> Result<(), Error> {
    crate::telemetry::init();
    let app = App::from_env().await?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handler(app, req).await) }
    }))
    .await
}

/// Serves the route of the table named `function`: each endpoint binary is
/// this one call, so a binary cannot serve another handler than its route's.
pub async fn serve_route(function: &str) -> Result<(), Error> {
    let route = crate::routes::all()
        .into_iter()
        .find(|r| r.function == function)
        .ok_or_else(|| format!("no route is served by a function named {function}"))?;
    serve(route.handler).await
}

/// The outbox publisher: DynamoDB stream batches onto the event bus. Its
/// answer names the first record not published; Lambda retries from there.
pub async fn serve_outbox_publisher() -> Result<(), Error> {
    crate::telemetry::init();
    let bus = EventBridgeBus::new(Aws::default().eventbridge().await, required_env(EVENT_BUS_ENV)?);
    let bus = &bus;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamEvent>| async move {
        Ok::<_, Error>(crate::outbox::publish_stream(bus, event.payload).await)
    }))
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
    serve_queue(fanout, Arc::new(events)).await
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
    serve_queue(dispatcher, deliveries).await
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
    serve_queue(worker, Arc::new(checks)).await
}

/// An SQS-triggered consumer, answering with the batch's item failures.
async fn serve_queue(consumer: Arc<dyn Consumer>, queue: Arc<dyn korala_domain::ports::Queue>) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (consumer, queue) = (consumer.clone(), queue.clone());
        async move { Ok::<_, Error>(sqs_batch(consumer, queue.as_ref(), event.payload).await) }
    }))
    .await
}
