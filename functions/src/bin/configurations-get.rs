use functions::api::configurations;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::handler!(configurations::get)).await
}
