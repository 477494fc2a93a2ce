//! Every function's sample event (events/<function>.json, API Gateway HTTP API
//! payload v2) drives that function's handler, in an order that builds state,
//! after re-signing it with a key of a fresh organisation.

use std::sync::Arc;

use functions::admin;
use functions::app::App;
use functions::crypto::Sealer;
use functions::http::auth::{sign, signing_payload};
use functions::routes;
use functions::store::sqlite::SqliteStore;
use http::HeaderValue;

/// (function, expected status) in the order the events run.
const PLAN: &[(&str, u16)] = &[
    ("configurations-create", 201),
    ("configurations-list", 200),
    ("configurations-get", 200),
    ("configurations-update", 200),
    ("sessions-create", 201),
    ("sessions-list", 200),
    // The sample ids and token belong to no session of this organisation.
    ("sessions-get", 404),
    ("sessions-resolve", 404),
    ("sessions-resubmit", 404),
    ("sessions-review", 404),
    ("sessions-events", 404),
    ("webhook-endpoints-create", 201),
    ("webhook-endpoints-list", 200),
    // The sample endpoint id belongs to no endpoint of this organisation.
    ("webhook-endpoints-get", 404),
    ("webhook-endpoints-update", 404),
    ("webhook-endpoints-delete", 404),
    ("access-get", 404),
    ("access-start", 404),
    ("access-submit", 404),
    ("workflows-list", 200),
    ("workflows-get", 200),
    ("workflows-create", 201),
    ("workflows-update", 200),
    ("workflows-delete", 204),
    ("configurations-delete", 204),
];

#[tokio::test]
async fn every_sample_event_drives_its_handler() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(store, Sealer::from_base64(&Sealer::generate_key()).unwrap());
    let org = admin::create_organization(&app, "Events").await.unwrap();
    let key = admin::create_key(&app, &org.id, korala_domain::tenancy::KeyMode::Test)
        .await
        .unwrap();
    let all = routes::all();
    assert_eq!(PLAN.len(), all.len(), "every function has a planned event");
    for (function, expected) in PLAN {
        let route = all.iter().find(|r| r.function == *function).unwrap();
        let path = format!("{}/../events/{function}.json", env!("CARGO_MANIFEST_DIR"));
        let json = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}"));
        let mut req = lambda_http::request::from_str(&json).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(req.method(), route.method, "{function}");
        let pattern = format!("{}{}", routes::PREFIX, route.path);
        let mut matcher = matchit::Router::new();
        matcher.insert(pattern.as_str(), ()).unwrap();
        assert!(
            matcher.at(req.uri().path()).is_ok(),
            "{function}: {} does not match {pattern}",
            req.uri().path()
        );
        if req.headers().contains_key("x-signature") {
            let ts = app.clock.now().timestamp().to_string();
            let path_and_query = req.uri().path_and_query().unwrap().as_str().to_owned();
            let payload = signing_payload(&ts, req.method().as_str(), &path_and_query, req.body().as_ref());
            let signature = sign(&key.api_secret, &payload).unwrap();
            let headers = req.headers_mut();
            headers.insert("x-api-key", HeaderValue::from_str(&key.api_key_id).unwrap());
            headers.insert("x-timestamp", HeaderValue::from_str(&ts).unwrap());
            headers.insert("x-signature", HeaderValue::from_str(&signature).unwrap());
        }
        let response = (route.handler)(app.clone(), req).await;
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert_eq!(response.status().as_u16(), *expected, "{function}: {body}");
    }
}
