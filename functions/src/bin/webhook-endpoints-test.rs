#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::serve_route!("webhook-endpoints-test").await
}
