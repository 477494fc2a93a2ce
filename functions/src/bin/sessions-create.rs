use functions::api::sessions;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::handler!(sessions::create)).await
}
