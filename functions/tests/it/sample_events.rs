//! Every function's sample event drives that function's handler: the API
//! functions' (API Gateway HTTP API payload v2) in an order that builds
//! state (the table's), after re-signing each with a key of a fresh organisation; the event
//! functions' (a DynamoDB stream batch, SQS batches) in the order the events
//! flow, outbox to delivery.

use std::sync::Arc;

use functions::adapters::crypto::Sealer;
use functions::adapters::store::sqlite::SqliteStore;
use functions::admin;
use functions::api::routes;
use functions::app::App;
use functions::web::auth::{sign, signing_payload};
use http::HeaderValue;

/// What a sample event should get: its route's success status, unless it
/// names a record by id or token, which belongs to no record of the fresh
/// organisation the events run for (`404`); slugs are the samples' own.
fn expected(route: &routes::Route) -> u16 {
    let names_a_record = route
        .path
        .split('/')
        .any(|segment| segment.starts_with('{') && segment != "{slug}");
    if names_a_record { 404 } else { route.status }
}

#[tokio::test]
async fn every_sample_event_drives_its_handler() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(store, Sealer::from_base64(&Sealer::generate_key()).unwrap());
    let org = admin::create_organization(&app, "Events").await.unwrap();
    let key = admin::create_key(&app, &org.id, korala_domain::tenancy::Mode::Test)
        .await
        .unwrap();
    // In the table's order, which creates before it reads, with the
    // deletions last (a configuration before the workflow it uses).
    let (deletions, others): (Vec<_>, Vec<_>) = routes::all()
        .into_iter()
        .partition(|r| r.method == http::Method::DELETE);
    for route in others.iter().chain(&deletions) {
        let function = route.function;
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
        assert_eq!(response.status().as_u16(), expected(route), "{function}: {body}");
    }
}

/// The stream batch publishes its two events; the fan-out's message (the
/// first of them, as EventBridge delivers it) makes one delivery for the
/// endpoint that subscribes; the dispatcher's message (that delivery) sends
/// it to a receiver on this machine.
#[tokio::test]
async fn the_event_functions_handle_their_sample_events() {
    use functions::adapters::bus::InProcessBus;
    use functions::adapters::standard_webhooks::SigningSecret;
    use functions::app::Settings;
    use functions::consumers::dispatcher::Dispatcher;
    use functions::consumers::fanout::FanOut;
    use functions::consumers::{Consumer, sqs_batch};
    use korala_domain::delivery::DeliveryState;
    use korala_domain::ids::{OrgId, WebhookDeliveryId, WebhookEndpointId};
    use korala_domain::ports::Queue;
    use korala_domain::tenancy::{Mode, Tenant};
    use korala_domain::webhooks::WebhookEvent;
    use korala_domain::webhooks::{UrlPolicy, WebhookEndpoint};

    let read = |name: &str| {
        let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}"))
    };
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = receiver.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = receiver.accept().await {
            let mut buffer = vec![0; 64 * 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
        }
    });

    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let mut app = App::new(store.clone(), Sealer::from_base64(&Sealer::generate_key()).unwrap());
    app.settings = Arc::new(Settings {
        webhook_urls: UrlPolicy::Development,
        ..Settings::default()
    });
    // The tenant the sample events name.
    let org = Tenant::new(
        OrgId::parse("org_0192f0a1b2c37d4e8f90a1b2c3d4e5f6").unwrap(),
        Mode::Test,
    );
    let now = app.clock.now();
    let endpoint = WebhookEndpoint {
        id: WebhookEndpointId::parse("whe_0195f2c4a3b27c1e9d3a7b5c6d7e8f92").unwrap(),
        tenant: org.clone(),
        url: format!("http://127.0.0.1:{port}/hooks"),
        events: vec![WebhookEvent::SessionCompleted],
        enabled: true,
        sealed_secret: app.sealer.seal(&SigningSecret::generate()),
        description: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    app.store.endpoints().insert(&endpoint).await.unwrap();
    let events = Arc::new(store.queue("webhook-events", app.clock.clone()));
    let deliveries = Arc::new(store.queue("webhook-deliveries", app.clock.clone()));

    let stream = serde_json::from_str(&read("outbox-publisher")).unwrap();
    let response = functions::consumers::outbox::publish_stream(&InProcessBus::new(events.clone()), stream).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(events.receive(10, 30).await.unwrap().len(), 2, "both events routed");

    let fanout: Arc<dyn Consumer> = Arc::new(FanOut::new(app.store.clone(), app.clock.clone(), deliveries.clone()));
    let batch = serde_json::from_str(&read("webhook-fanout")).unwrap();
    let response = sqs_batch(fanout, events.as_ref(), batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!(
        deliveries.receive(10, 30).await.unwrap().len(),
        1,
        "one delivery queued"
    );

    let dispatcher: Arc<dyn Consumer> = Arc::new(Dispatcher::new(&app).unwrap());
    let batch = serde_json::from_str(&read("webhook-dispatcher")).unwrap();
    let response = sqs_batch(dispatcher, deliveries.as_ref(), batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    let id = WebhookDeliveryId::parse("whd_0192f0a1b2c37d4e8f90a1b2c3d4e6010195f2c4a3b27c1e9d3a7b5c6d7e8f92").unwrap();

    // A check request whose session this store does not have: handled
    // (acknowledged), nothing run.
    let list = korala_domain::screening::ScreeningList::parse(korala_domain::screening::SAMPLE_LIST).unwrap();
    let providers = functions::adapters::providers::Providers::new(Arc::new(
        functions::adapters::providers::ScreeningProvider::new(list),
    ));
    let worker: Arc<dyn Consumer> = Arc::new(functions::consumers::checks_worker::ChecksWorker::new(
        &app,
        Arc::new(providers),
    ));
    let checks = Arc::new(store.queue("checks", app.clock.clone()));
    let batch = serde_json::from_str(&read("checks-worker")).unwrap();
    let response = sqs_batch(worker, checks.as_ref(), batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    let delivery = app.store.deliveries().get(&org, &id).await.unwrap().unwrap();
    assert!(
        matches!(delivery.state, DeliveryState::Delivered { .. }),
        "{delivery:?}"
    );
}
