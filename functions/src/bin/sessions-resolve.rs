#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve_route("sessions-resolve").await
}
