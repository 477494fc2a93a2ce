//! The raw-SDK baseline of the cold-start benchmark: a `lambda_http`
//! function that loads the AWS configuration and builds one DynamoDB client
//! at init (as a function does), and on each invocation sends the DynamoDB
//! requests a function's handler sent (recorded, given as JSON in
//! `KORALA_BASELINE_CALLS`) in order, through the SDK and nothing else.
//!
//! It answers 200 with `{"calls": n, "refused": m}` (m requests DynamoDB
//! refused, a failed condition say: still full round trips), or 500 when a
//! request did not reach DynamoDB.

use aws_config::BehaviorVersion;
use korala_bench::replay::{Call, replay_all};
use lambda_http::{Body, Error, Request, Response, service_fn};

const CALLS_ENV: &str = "KORALA_BASELINE_CALLS";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let calls: Vec<Call> = match std::env::var(CALLS_ENV) {
        Ok(json) => serde_json::from_str(&json).map_err(|e| format!("{CALLS_ENV} is not a list of calls: {e}"))?,
        Err(_) => Vec::new(),
    };
    let (client, calls) = (&client, &calls);
    lambda_http::run(service_fn(move |_: Request| async move {
        let (status, body) = match replay_all(client, calls).await {
            Ok(refused) => (200, serde_json::json!({ "calls": calls.len(), "refused": refused })),
            Err(e) => (500, serde_json::json!({ "error": e.to_string() })),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .map_err(Error::from)
    }))
    .await
}
