//! Signs and sends webhook deliveries, retrying on the Standard Webhooks schedule.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::serve_dispatcher().await
}
