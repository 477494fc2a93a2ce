//! Turns webhook events into one delivery per subscribed endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::serve_fanout().await
}
