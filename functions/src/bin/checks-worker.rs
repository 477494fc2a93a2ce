//! Runs the providers of check steps (PEP and sanctions screening) and records their answers.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::serve_checks_worker().await
}
