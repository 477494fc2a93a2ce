use functions::api::webhooks;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::handler!(webhooks::get)).await
}
