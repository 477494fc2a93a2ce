use functions::api::access;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    functions::lambda::serve(functions::handler!(access::start)).await
}
