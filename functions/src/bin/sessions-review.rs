#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::serve_route!("sessions-review").await
}
