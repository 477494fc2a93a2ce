//! The hello-world baseline of the cold-start benchmark: a `lambda_http`
//! function that answers "hello" and does nothing else, built with the same
//! profile as the functions. Its init is what any `lambda_http` binary pays.

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { Ok::<_, Error>("hello") })).await
}
