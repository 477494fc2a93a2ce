//! `/webhook-endpoints`: registering where session events go, with the
//! signing secret shown once and URLs that cannot point inside our network.

use acceptance::api::{Api, assert_invalid, assert_problem, str_of};
use serde_json::{Value, json};

fn endpoint(url: &str) -> Value {
    json!({"url": url, "events": ["session_completed", "session_resolved"], "description": "Onboarding"})
}

#[tokio::test]
async fn an_endpoint_shows_its_secret_once_and_can_be_read_updated_and_deleted() {
    let api = Api::new().await;
    let (status, created, headers) = api
        .partner(
            "POST",
            "/webhook-endpoints",
            Some(endpoint("https://hooks.partner.example/korala")),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{created}");
    let id = str_of(&created, "id").to_owned();
    assert!(id.starts_with("whe_"), "{created}");
    assert!(str_of(&created, "secret").starts_with("whsec_"), "{created}");
    assert_eq!(created["events"], json!(["session_completed", "session_resolved"]));
    assert_eq!(created["enabled"], true);
    assert_eq!(
        headers.get("location").and_then(|l| l.to_str().ok()),
        Some(format!("/api/v1/webhook-endpoints/{id}").as_str())
    );

    let read = api.expect(200, "GET", &format!("/webhook-endpoints/{id}"), None).await;
    assert!(read.get("secret").is_none(), "the secret is shown once: {read}");
    assert_eq!(read["url"], "https://hooks.partner.example/korala");
    let list = api.expect(200, "GET", "/webhook-endpoints", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(list["data"][0].get("secret").is_none());

    let patched = api
        .expect(
            200,
            "PATCH",
            &format!("/webhook-endpoints/{id}"),
            Some(json!({"enabled": false, "events": ["session_failed"], "description": null})),
        )
        .await;
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["events"], json!(["session_failed"]));
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["version"], 2);

    api.expect(204, "DELETE", &format!("/webhook-endpoints/{id}"), None)
        .await;
    let gone = api.partner("GET", &format!("/webhook-endpoints/{id}"), None).await;
    assert_problem(&gone, 404, "not_found");
}

#[tokio::test]
async fn urls_must_be_public_https() {
    let api = Api::new().await;
    for url in [
        "http://hooks.partner.example/korala",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.7/hook",
        "https://192.168.1.20/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "not a url",
    ] {
        let reply = api.partner("POST", "/webhook-endpoints", Some(endpoint(url))).await;
        assert_invalid(&reply, "url");
    }
    let list = api.expect(200, "GET", "/webhook-endpoints", None).await;
    assert_eq!(list["data"], json!([]), "nothing was stored");

    let created = api
        .expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(endpoint("https://hooks.partner.example/a")),
        )
        .await;
    let id = str_of(&created, "id");
    let reply = api
        .partner(
            "PATCH",
            &format!("/webhook-endpoints/{id}"),
            Some(json!({"url": "https://10.1.2.3/x"})),
        )
        .await;
    assert_invalid(&reply, "url");
    let read = api.expect(200, "GET", &format!("/webhook-endpoints/{id}"), None).await;
    assert_eq!(
        read["url"], "https://hooks.partner.example/a",
        "the refused patch changed nothing"
    );
}

#[tokio::test]
async fn bad_bodies_are_refused_by_field() {
    let api = Api::new().await;
    let reply = api
        .partner(
            "POST",
            "/webhook-endpoints",
            Some(json!({"url": "https://hooks.partner.example/a", "events": ["session_exploded"]})),
        )
        .await;
    assert_invalid(&reply, "events[0]");
    let reply = api
        .partner(
            "POST",
            "/webhook-endpoints",
            Some(json!({"url": "https://hooks.partner.example/a", "events": []})),
        )
        .await;
    assert_invalid(&reply, "events");
    let reply = api
        .partner(
            "POST",
            "/webhook-endpoints",
            Some(json!({"events": ["session_completed"]})),
        )
        .await;
    assert_invalid(&reply, "url");
}

#[tokio::test]
async fn endpoints_belong_to_their_organisation() {
    let api = Api::new().await;
    let created = api
        .expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(endpoint("https://hooks.partner.example/a")),
        )
        .await;
    let path = format!("/webhook-endpoints/{}", str_of(&created, "id"));
    let other = api.other.clone();
    assert_problem(&api.partner_as(&other, "GET", &path, None).await, 404, "not_found");
    assert_problem(
        &api.partner_as(&other, "PATCH", &path, Some(json!({"enabled": false})))
            .await,
        404,
        "not_found",
    );
    assert_problem(&api.partner_as(&other, "DELETE", &path, None).await, 404, "not_found");
    let theirs = api.partner_as(&other, "GET", "/webhook-endpoints", None).await;
    assert_eq!(theirs.1["data"], json!([]));
    let ours = api.expect(200, "GET", &path, None).await;
    assert_eq!(ours["enabled"], true, "untouched by the other organisation");
}

#[tokio::test]
async fn an_organisation_has_at_most_sixteen_endpoints() {
    let api = Api::new().await;
    for i in 0..16 {
        api.expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(endpoint(&format!("https://hooks.partner.example/{i}"))),
        )
        .await;
    }
    let reply = api
        .partner(
            "POST",
            "/webhook-endpoints",
            Some(endpoint("https://hooks.partner.example/16")),
        )
        .await;
    let problem = assert_problem(&reply, 422, "limit_reached");
    assert_eq!(
        problem["detail"],
        "each mode of an organisation has at most 16 webhook endpoints; delete one before adding another"
    );
    // The other mode has a quota of its own.
    let (status, _, _) = api
        .partner_as(
            &api.live,
            "POST",
            "/webhook-endpoints",
            Some(endpoint("https://hooks.partner.example/live")),
        )
        .await;
    assert_eq!(status, 201);
    // A deleted endpoint frees its place.
    let list = api.get("/webhook-endpoints").await;
    let first = list["data"][0]["id"].as_str().unwrap().to_owned();
    api.expect(204, "DELETE", &format!("/webhook-endpoints/{first}"), None)
        .await;
    api.expect(
        201,
        "POST",
        "/webhook-endpoints",
        Some(endpoint("https://hooks.partner.example/16")),
    )
    .await;
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_creates_one_endpoint() {
    let api = Api::new().await;
    let body = endpoint("https://hooks.partner.example/a");
    let send = || async {
        let raw = api
            .signed(&api.key, "POST", "/webhook-endpoints", Some(&body))
            .header("Idempotency-Key", "endpoint-1");
        api.send(raw).await
    };
    let first = send().await;
    let again = send().await;
    assert_eq!(first.0.as_u16(), 201);
    assert_eq!(again.0.as_u16(), 201);
    assert_eq!(first.1, again.1, "the replay is the first response, secret included");
    let list = api.expect(200, "GET", "/webhook-endpoints", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
}
