//! The raw-SDK baseline: the DynamoDB requests a handler sent, recorded as
//! they were serialised for the wire, and sent again through the SDK with
//! nothing of ours around them. The difference between the two is what our
//! code costs: parsing, signing checks, the domain, (de)serialising items.
//!
//! A replay sends the recorded body through the matching SDK operation (its
//! endpoint, signing, retries and response parsing), so it costs what the
//! SDK costs for that request, minus building the typed input.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpRequest;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use serde::{Deserialize, Serialize};

/// One request as it went on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The DynamoDB operation (`GetItem`, `TransactWriteItems`, …).
    pub operation: String,
    /// The request's JSON body.
    pub body: String,
}

/// Records every request of the client it is installed on
/// (`aws_sdk_dynamodb::config::Builder::interceptor`).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recorder {
    /// The requests recorded so far, leaving none.
    pub fn take(&self) -> Vec<Call> {
        self.calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    /// Once per operation, before the retry loop: a retried request is
    /// recorded once.
    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let body = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call { operation, body });
        }
        Ok(())
    }
}

/// How a replayed request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// DynamoDB refused it (a failed condition, say): still a full round trip.
    Refused,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot replay a {0} request")]
    Unsupported(String),
    #[error("the replayed {0} did not reach DynamoDB: {1}")]
    Transport(String, String),
}

/// Swaps the typed input's serialisation for the recorded body.
fn with_body(body: &str) -> impl Fn(&mut HttpRequest) + Send + Sync + 'static {
    let body = body.to_owned();
    move |request: &mut HttpRequest| {
        request.headers_mut().insert("content-length", body.len().to_string());
        *request.body_mut() = SdkBody::from(body.clone());
    }
}

/// Sends `call` again through `client`.
pub async fn replay(client: &Client, call: &Call) -> Result<Outcome, ReplayError> {
    // The typed input only selects the operation (and names the table, as
    // the SDK's endpoint resolution wants); its body is replaced.
    let table = serde_json::from_str::<serde_json::Value>(&call.body)
        .ok()
        .and_then(|b| b.get("TableName")?.as_str().map(str::to_owned));
    macro_rules! send {
        ($operation:ident) => {
            send!(@ client.$operation())
        };
        ($operation:ident, table) => {
            send!(@ client.$operation().set_table_name(table))
        };
        (@ $builder:expr) => {
            $builder
                .customize()
                .mutate_request(with_body(&call.body))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    aws_sdk_dynamodb::error::SdkError::ServiceError(_) => None,
                    other => Some(aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string()),
                })
        };
    }
    let result = match call.operation.as_str() {
        "GetItem" => send!(get_item, table),
        "Query" => send!(query, table),
        "Scan" => send!(scan, table),
        "PutItem" => send!(put_item, table),
        "UpdateItem" => send!(update_item, table),
        "DeleteItem" => send!(delete_item, table),
        "BatchGetItem" => send!(batch_get_item),
        "BatchWriteItem" => send!(batch_write_item),
        "TransactWriteItems" => send!(transact_write_items),
        "TransactGetItems" => send!(transact_get_items),
        other => return Err(ReplayError::Unsupported(other.to_owned())),
    };
    match result {
        Ok(()) => Ok(Outcome::Ok),
        Err(None) => Ok(Outcome::Refused),
        Err(Some(e)) => Err(ReplayError::Transport(call.operation.clone(), e)),
    }
}

/// Replays `calls` in order, as the handler sent them; returns how many
/// DynamoDB refused.
pub async fn replay_all(client: &Client, calls: &[Call]) -> Result<usize, ReplayError> {
    let mut refused = 0;
    for call in calls {
        if replay(client, call).await? == Outcome::Refused {
            refused += 1;
        }
    }
    Ok(refused)
}
