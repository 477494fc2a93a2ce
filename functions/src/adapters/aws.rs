//! The AWS SDK configuration every client is built from, with the retries
//! and timeouts that keep a request inside a function's budget. A process
//! loads it once (a Lambda function on its first invocation, see
//! `lambda::LazyApp`) and builds each client once from it; it is not cached
//! in a static, as the SDK's connection pool belongs to the runtime that
//! first used it, and tests run many runtimes.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// The environment's account and region, or the endpoints the standard
/// variables name (`AWS_ENDPOINT_URL_DYNAMODB`, `…_SQS`, `…_EVENTBRIDGE`,
/// `…_SECRETS_MANAGER`).
/// Three attempts of at most 2 s each, 5 s in all, so a request and its
/// retries fit the API functions' 10 s.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(2))
                .connect_timeout(Duration::from_secs(1))
                .build(),
        )
        .load()
        .await
}

/// The configuration a process's clients share, loaded on first use: a
/// function builds its DynamoDB, SQS and EventBridge clients from one load
/// of the environment and credentials chain instead of one each. Made in
/// `main` and dropped with it, so it never outlives its runtime.
#[derive(Default)]
pub struct Aws {
    config: tokio::sync::OnceCell<SdkConfig>,
}

impl Aws {
    pub async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(sdk_config).await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(self.config().await)
    }

    pub async fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(self.config().await)
    }

    pub async fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(self.config().await)
    }
}
