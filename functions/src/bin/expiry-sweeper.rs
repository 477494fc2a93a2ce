//! Expires overdue sessions, invoked by an EventBridge schedule.

use std::time::Duration;

use functions::lambda::{Invocations, LazyApp, failed_init};
use lambda_runtime::{LambdaEvent, Runtime, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::telemetry::init();
    let app = LazyApp::from_env().map_err(failed_init)?;
    // A failed sweep fails the invocation, so the schedule's retries and
    // alarms see it.
    let service = service_fn(|_: LambdaEvent<serde_json::Value>| async {
        functions::expiry::run(app.get().await?, Duration::from_secs(20))
            .await
            .map_err(lambda_runtime::Error::from)
    });
    Runtime::new(service)
        .layer(Invocations::new("expiry-sweeper"))
        .run()
        .await
}
