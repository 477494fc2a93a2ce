use functions::api::workflows;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::handler!(workflows::update)).await
}
