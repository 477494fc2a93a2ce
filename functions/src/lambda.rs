//! Running one handler as a Lambda function behind API Gateway.

use lambda_http::{Error, Request, service_fn};

use crate::app::App;
use crate::routes::Handler;

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
