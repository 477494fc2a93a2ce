//! Publishes the outbox (the table's stream) to the event bus.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::serve_outbox_publisher().await
}
