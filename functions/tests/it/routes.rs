//! Authentication is a property of the route, not a line each handler must
//! remember: every route of the table, called unsigned (an end user's with
//! a token that cannot be one), is refused before its handler runs.

use std::sync::Arc;

use functions::adapters::crypto::Sealer;
use functions::adapters::store::sqlite::SqliteStore;
use functions::api::routes::{self, Auth, PREFIX, Router};
use functions::app::App;
use lambda_http::Body;

#[tokio::test]
async fn every_route_refuses_a_request_without_its_credential() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(store, Sealer::from_base64(&Sealer::generate_key()).unwrap());
    let router = Router::new();
    for route in routes::all() {
        let path: Vec<&str> = route
            .path
            .split('/')
            .map(|segment| match segment {
                "{accessToken}" => "at_not-a-token",
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect();
        let req = http::Request::builder()
            .method(route.method.clone())
            .uri(format!("{PREFIX}{}", path.join("/")))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = router.dispatch(app.clone(), req).await;
        let expected = match route.auth {
            Auth::Partner => 401,
            Auth::EndUser => 404,
        };
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert_eq!(response.status().as_u16(), expected, "{}: {body}", route.function);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{}",
            route.function
        );
    }
}
