//! Malformed, oversized, unsigned and misrouted requests: each gets the right
//! 4xx problem document and changes nothing. They are refused before anything
//! the store does could matter, so they run once, on the embedded store (the
//! refusals that depend on stored state are `api::errors`, on both stores).

use acceptance::api::{Api, Raw, Reply, assert_problem, full_path, str_of, wire, workflow_ids};
use serde_json::{Value, json};

use crate::world::{World, custom_workflow};

// --------------------------------------------------------------- bad bodies

#[tokio::test]
async fn malformed_json_is_400_and_stores_nothing() {
    let world = World::new().await;
    for (method, path, signed) in world.body_endpoints() {
        for body in [
            &b"not json"[..],
            b"{",
            b"{\"unterminated",
            b"{'name': 'x'}",
            b"{name: 1}",
            b"\xff\xfe",
            b"<xml/>",
        ] {
            let raw = world.request(method, &path, signed, body);
            let problem = world.refuse(raw, 400, "malformed_json").await;
            assert!(str_of(&problem, "detail").contains("not valid JSON"), "{problem}");
        }
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422() {
    let world = World::new().await;
    for (method, path, signed) in world.body_endpoints() {
        for body in [&b"\"text\""[..], b"42", b"true", b"null"] {
            let raw = world.request(method, &path, signed, body);
            let before = world.snapshot().await;
            let reply = world.api.send(raw).await;
            assert_problem(&reply, 422, "validation_failed");
            assert_eq!(world.snapshot().await, before);
        }
    }
}

#[tokio::test]
async fn wrong_types_are_422_naming_the_field() {
    let world = World::new().await;
    let (open, review) = (&world.open, &world.reviewing);
    let cases = [
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": 5, "slug": "x", "workflowSlugs": ["id-document"]}),
            "name",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": "id-document"}),
            "workflowSlugs",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "isVerification": "yes"}),
            "isVerification",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "defaultExpiresInMinutes": -1}),
            "defaultExpiresInMinutes",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "defaultExpiresInMinutes": 1e12}),
            "defaultExpiresInMinutes",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowBindings": [{"workflowSlug": 1}]}),
            "workflowBindings[0].workflowSlug",
        ),
        (
            "PATCH",
            "/session-configurations/kyc".to_owned(),
            json!({"autoResolve": 1}),
            "autoResolve",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": 7}),
            "externalUserId",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "context": [1]}),
            "context",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "metadata": "m"}),
            "metadata",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "expiresInMinutes": "60"}),
            "expiresInMinutes",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": {"role": "subject"}}),
            "participants",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{"role": "subject", "displayName": 3}]}),
            "participants[0].displayName",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"resolution": "approved", "reason": 5}),
            "reason",
        ),
        (
            "POST",
            format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
            json!({"decision": "approved", "reason": ["x"]}),
            "reason",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"name": "W", "slug": "w", "maxAttempts": "3", "steps": []}),
            "maxAttempts",
        ),
    ];
    for (method, path, body, field) in cases {
        world.invalid(world.json(method, &path, body), field).await;
    }
    // The end user's submission: the envelope, then the step's fields.
    let submit = format!("/access/{}/workflows/{}", open.token, open.wf[1]);
    let raw = |body: Value| {
        Raw::new("POST", &full_path(&submit))
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    world.invalid(raw(json!({"data": "x"})), "data").await;
    let mut poa = world.api.proof_of_address("Jane Doe");
    poa["city"] = json!(12);
    poa["issueDate"] = json!("12/01/2020");
    poa["country"] = json!("Great Britain");
    poa["documentType"] = json!("selfie");
    let problem = world.invalid(raw(json!({"data": poa})), "data.city").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| str_of(e, "field"))
        .collect();
    for field in ["data.issueDate", "data.country", "data.documentType"] {
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    }
}

#[tokio::test]
async fn unknown_enum_values_are_422_naming_the_field() {
    let world = World::new().await;
    let (open, review) = (&world.open, &world.reviewing);
    let cases = [
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{"role": "ceo"}]}),
            "participants[0].role",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowBindings": [{"workflowSlug": "id-document", "participantRoles": ["ceo"]}]}),
            "workflowBindings[0].participantRoles[0]",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "subjectKind": "corporation"}),
            "subjectKind",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"resolution": "maybe", "reason": "x"}),
            "resolution",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"resolution": "Approved", "reason": "x"}),
            "resolution",
        ),
        (
            "POST",
            format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
            json!({"decision": "escalate", "reason": "x"}),
            "decision",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"name": "W", "slug": "w", "steps": [{"type": "teleport", "config": {}}]}),
            "steps[0].type",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"name": "W", "slug": "w", "steps": [{"type": "capture", "config": {"fields": [{"name": "a", "type": "photo"}]}}]}),
            "steps[0]",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"name": "W", "slug": "w", "steps": [{"type": "validate", "config": {"rules": [{"name": "r", "expression": "true", "onFailure": "ignore"}]}}]}),
            "steps[0]",
        ),
    ];
    for (method, path, body, field) in cases {
        let problem = world.invalid(world.json(method, &path, body), field).await;
        let message = problem["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("unknown variant") || message.contains("expected"),
            "{problem}"
        );
    }
    for query in ["status=bogus", "status=COMPLETED", "status="] {
        world
            .invalid(
                world
                    .api
                    .signed(&world.api.key, "GET", &format!("/sessions?{query}"), None),
                "status",
            )
            .await;
    }
}

#[tokio::test]
async fn missing_required_fields_are_422() {
    let world = World::new().await;
    let (open, review) = (&world.open, &world.reviewing);
    let cases = [
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"slug": "x", "workflowSlugs": ["id-document"]}),
            "name",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "workflowSlugs": ["id-document"]}),
            "slug",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowBindings": [{"participantRoles": []}]}),
            "workflowSlug",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"externalUserId": "u"}),
            "configurationSlug",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc"}),
            "externalUserId",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{"displayName": "A"}]}),
            "role",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"reason": "x"}),
            "resolution",
        ),
        (
            "POST",
            format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
            json!({"reason": "x"}),
            "decision",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"slug": "w", "steps": []}),
            "name",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            json!({"name": "W", "slug": "w"}),
            "steps",
        ),
    ];
    for (method, path, body, missing) in cases {
        let before = world.snapshot().await;
        let reply = world.api.send(world.json(method, &path, body)).await;
        let problem = assert_problem(&reply, 422, "validation_failed");
        assert!(problem["errors"].to_string().contains(missing), "{missing}: {problem}");
        assert_eq!(world.snapshot().await, before);
    }
    // An empty body is an empty object: every required field is missing.
    let reply = world.api.send(world.bytes("POST", "/sessions", b"")).await;
    assert_problem(&reply, 422, "validation_failed");
    // The end user's submission needs `data`, and the step's required fields.
    let submit = full_path(&format!("/access/{}/workflows/{}", open.token, open.wf[1]));
    let raw = |body: Value| {
        Raw::new("POST", &submit)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    let reply = world.api.send(raw(json!({}))).await;
    assert_problem(&reply, 422, "validation_failed");
    world
        .invalid(raw(json!({"data": {"fullName": "Jane Doe"}})), "data.city")
        .await;
    world.invalid(raw(json!({"data": {}})), "data.fullName").await;
    world
        .invalid(
            world.json(
                "POST",
                &format!("/sessions/{}/resolve", open.id),
                json!({"resolution": "approved"}),
            ),
            "reason",
        )
        .await;
    world
        .invalid(
            world.json(
                "POST",
                &format!("/sessions/{}/resolve", open.id),
                json!({"resolution": "approved", "reason": "  "}),
            ),
            "reason",
        )
        .await;
}

/// Well-formed JSON of the wrong type is a validation error naming the
/// field, whatever the field's Rust type; JSON followed by garbage is
/// malformed.
#[tokio::test]
async fn well_formed_json_of_the_wrong_type_is_422_and_trailing_garbage_400() {
    let world = World::new().await;
    let (open, review) = (&world.open, &world.reviewing);
    let cases = [
        (
            "POST",
            format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
            json!({"decision": true, "reason": "x"}),
            "decision",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"resolution": 5, "reason": "x"}),
            "resolution",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{"role": 1}]}),
            "participants[0].role",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "subjectKind": ["business"]}),
            "subjectKind",
        ),
    ];
    for (method, path, body, field) in cases {
        world.invalid(world.json(method, &path, body), field).await;
    }
    for body in [&b"{} trailing"[..], b"{\"bogus\": 1,}", b"{\"name\": 1 ]"] {
        world
            .refuse(
                world.bytes("POST", "/session-configurations", body),
                400,
                "malformed_json",
            )
            .await;
    }
}

/// `errors[].field` should name the missing field, as it does for every
/// other kind of field error.
#[tokio::test]
async fn a_missing_field_is_named_in_the_field_path() {
    let world = World::new().await;
    world
        .invalid(
            world.json("POST", "/sessions", json!({"externalUserId": "u"})),
            "configurationSlug",
        )
        .await;
    world
        .invalid(
            world.json(
                "POST",
                "/sessions",
                json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{}]}),
            ),
            "participants[0].role",
        )
        .await;
}

#[tokio::test]
async fn unknown_fields_are_422_naming_the_field() {
    let world = World::new().await;
    let (open, review) = (&world.open, &world.reviewing);
    let cases = [
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"], "autoresolve": false}),
            "autoresolve",
        ),
        (
            "POST",
            "/session-configurations".to_owned(),
            json!({"name": "X", "slug": "x", "workflowBindings": [{"workflowSlug": "id-document", "role": "subject"}]}),
            "workflowBindings[0].role",
        ),
        (
            "PATCH",
            "/session-configurations/kyc".to_owned(),
            json!({"slug": "renamed"}),
            "slug",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "expiresIn": 5}),
            "expiresIn",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            json!({"configurationSlug": "kyc", "externalUserId": "u", "participants": [{"role": "subject", "name": "A"}]}),
            "participants[0].name",
        ),
        (
            "POST",
            format!("/sessions/{}/resolve", open.id),
            json!({"resolution": "approved", "reason": "x", "notify": true}),
            "notify",
        ),
        (
            "POST",
            format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
            json!({"decision": "approved", "reason": "x", "by": "me"}),
            "by",
        ),
        (
            "POST",
            format!("/sessions/{}/workflows/{}/resubmit", open.id, open.wf[0]),
            json!({"force": true}),
            "force",
        ),
        (
            "POST",
            "/workflows".to_owned(),
            // Inside a step's config the path stops at the step (serde's tagged enums).
            json!({"name": "W", "slug": "w", "steps": [{"type": "review", "config": {"reason": "r", "sla": 3}}]}),
            "steps[0]",
        ),
    ];
    for (method, path, body, field) in cases {
        let problem = world.invalid(world.json(method, &path, body), field).await;
        assert!(problem["errors"].to_string().contains("unknown field"), "{problem}");
    }
    let submit = full_path(&format!("/access/{}/workflows/{}", world.open.token, world.open.wf[1]));
    let raw = |body: Value| {
        Raw::new("POST", &submit)
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    let mut poa = world.api.proof_of_address("Jane Doe");
    world
        .invalid(raw(json!({"data": poa.clone(), "extra": 1})), "extra")
        .await;
    poa["favouriteColour"] = json!("blue");
    world.invalid(raw(json!({"data": poa})), "data.favouriteColour").await;
    world
        .invalid(
            world.api.signed(&world.api.key, "GET", "/sessions?sort=asc", None),
            "query",
        )
        .await;
}

#[tokio::test]
async fn values_the_domain_refuses_are_422_naming_the_field() {
    let world = World::new().await;
    let config = |extra: Value| {
        let mut body = json!({"name": "X", "slug": "x", "workflowSlugs": ["id-document"]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        ("/session-configurations", config(json!({"slug": "Not A Slug"})), "slug"),
        ("/session-configurations", config(json!({"name": "  "})), "name"),
        (
            "/session-configurations",
            config(json!({"workflowSlugs": ["no-such-workflow"]})),
            "workflowSlugs[0]",
        ),
        (
            "/session-configurations",
            config(json!({"workflowSlugs": []})),
            "workflowSlugs",
        ),
        (
            "/session-configurations",
            config(json!({"workflowBindings": []})),
            "workflowBindings",
        ),
        (
            "/session-configurations",
            config(json!({"defaultExpiresInMinutes": 0})),
            "defaultExpiresInMinutes",
        ),
        (
            "/session-configurations",
            config(json!({"defaultExpiresInMinutes": 43201})),
            "defaultExpiresInMinutes",
        ),
        (
            "/session-configurations",
            config(json!({"defaultRedirectUrl": "javascript:alert(1)"})),
            "defaultRedirectUrl",
        ),
        (
            "/session-configurations",
            config(json!({"defaultRedirectUrl": "http://example.com/x"})),
            "defaultRedirectUrl",
        ),
        (
            "/session-configurations",
            json!({"name": "X", "slug": "x", "workflowBindings": [
                {"workflowSlug": "id-document", "outputKey": "same"},
                {"workflowSlug": "proof-of-address", "outputKey": "same"}
            ]}),
            "workflowBindings[1].outputKey",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "nope", "externalUserId": "u"}),
            "configurationSlug",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "theirs", "externalUserId": "u"}),
            "configurationSlug",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": ""}),
            "externalUserId",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": "u", "expiresInMinutes": 0}),
            "expiresInMinutes",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": "u", "redirectUrl": "ftp://x"}),
            "redirectUrl",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": "u", "metadata": {"blob": "x".repeat(17 * 1024)}}),
            "metadata",
        ),
        (
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": "u",
                   "participants": [{"role": "subject"}, {"role": "subject"}]}),
            "participants",
        ),
        (
            "/workflows",
            json!({"name": "W", "slug": "w", "steps": [{"type": "validate", "config": {"rules": [
                {"name": "r", "expression": "1 +", "onFailure": "fail"}]}}]}),
            "steps[0].config.rules[0].expression",
        ),
        (
            "/workflows",
            json!({"name": "W", "slug": "w", "steps": [{"type": "ocr", "config": {}}]}),
            "steps[0].type",
        ),
        ("/workflows", json!({"name": "W", "slug": "w", "steps": []}), "steps"),
        (
            "/workflows",
            json!({"name": "W", "slug": "w", "maxAttempts": 0, "steps": [{"type": "review", "config": {}}]}),
            "maxAttempts",
        ),
    ];
    for (path, body, field) in cases {
        world.invalid(world.json("POST", path, body), field).await;
    }
    // A KYB configuration needs the participants its bindings name.
    world
        .api
        .create_configuration(json!({"name": "KYB", "slug": "kyb", "workflowBindings": [
            {"workflowSlug": "id-document", "participantRoles": ["representative"]}
        ]}))
        .await;
    world
        .invalid(
            world.json(
                "POST",
                "/sessions",
                json!({"configurationSlug": "kyb", "externalUserId": "u"}),
            ),
            "participants",
        )
        .await;
    // The path's slug wins over a different one in the body.
    world
        .invalid(
            world.json("PUT", "/workflows/custom", custom_workflow("another")),
            "slug",
        )
        .await;
}

#[tokio::test]
async fn an_unsupported_content_type_is_415() {
    let world = World::new().await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "u"});
    let raw = world
        .json("POST", "/sessions", body)
        .set_header("Content-Type", "text/plain");
    world.refuse(raw, 415, "unsupported_media_type").await;
    // `application/json` with parameters, and `+json` types, are JSON.
    let raw = world
        .json(
            "POST",
            "/sessions",
            json!({"configurationSlug": "kyc", "externalUserId": "u"}),
        )
        .set_header("Content-Type", "application/json; charset=utf-8");
    assert_eq!(world.api.send(raw).await.0, 201);
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_a_server_error() {
    let world = World::new().await;
    let depth = 5000;
    let nested = format!(
        "{{\"configurationSlug\": \"kyc\", \"externalUserId\": \"u\", \"metadata\": {{\"a\": {}{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let raw = world.bytes("POST", "/sessions", nested.as_bytes());
    let before = world.snapshot().await;
    let (status, body, _) = world.api.send(raw).await;
    assert!(status.is_client_error(), "{status}: {body}");
    assert_eq!(world.snapshot().await, before);
}

// ---------------------------------------------------------------- body size

fn oversized(kilobytes: usize) -> Vec<u8> {
    json!({"configurationSlug": "kyc", "externalUserId": "u", "metadata": {"blob": "x".repeat(kilobytes * 1024)}})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let world = World::new().await;
    let body = oversized(257);
    assert!(body.len() > 256 * 1024);
    for (method, path, signed) in world.body_endpoints() {
        let raw = world.request(method, &path, signed, &body);
        let problem = world.refuse(raw, 413, "payload_too_large").await;
        assert!(str_of(&problem, "detail").contains("262144"), "{problem}");
    }
    // Just under the limit is read (and then refused for its content).
    let body = oversized(250);
    assert!(body.len() < 256 * 1024);
    world.invalid(world.bytes("POST", "/sessions", &body), "metadata").await;
}

#[tokio::test]
async fn oversized_bodies_are_413_through_the_tcp_server() {
    let world = World::new().await;
    let api = &world.api;
    let (addr, server) = api.spawn_server().await;
    let before = world.snapshot().await;
    for kilobytes in [257, 1024] {
        let body = oversized(kilobytes);
        for raw in [
            world.bytes("POST", "/sessions", &body),
            Raw::new(
                "POST",
                &full_path(&format!("/access/{}/workflows/{}", world.open.token, world.open.wf[1])),
            )
            .header("Content-Type", "application/json")
            .body(body.clone()),
            // Not even a route: the size is checked first.
            Raw::new("POST", "/api/v1/nowhere").body(body.clone()),
        ] {
            let response = wire(addr, raw).await;
            assert_eq!(response.status, 413, "{}", response.json());
            assert_eq!(response.header("content-type"), Some("application/problem+json"));
            let problem = response.json();
            assert_eq!(problem["code"], "payload_too_large");
            assert_eq!(problem["status"], 413);
        }
    }
    assert_eq!(world.snapshot().await, before);
    // The server still serves.
    let response = wire(addr, api.signed(&api.key, "GET", "/sessions", None)).await;
    assert_eq!(response.status, 200);
    let body = json!({"configurationSlug": "kyc", "externalUserId": "after"});
    let response = wire(addr, api.signed(&api.key, "POST", "/sessions", Some(&body))).await;
    assert_eq!(response.status, 201, "{}", response.json());
    server.abort();
}

// ------------------------------------------------------------ authentication

#[tokio::test]
async fn requests_that_are_not_signed_correctly_are_401() {
    let world = World::new().await;
    let api = &world.api;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "u"});
    let good = || world.json("POST", "/sessions", body.clone());
    let now = api.clock.unix();
    let path = "/api/v1/sessions";
    let bytes = body.to_string().into_bytes();
    let resign = |ts: i64| {
        let mut raw = good();
        for (name, value) in Api::signature_headers(&api.key, ts, "POST", path, &bytes) {
            raw = raw.set_header(&name, value);
        }
        raw
    };
    let mut bad: Vec<(&str, Raw)> = vec![
        ("no signature", good().without_header("X-Signature")),
        ("no key", good().without_header("X-API-Key")),
        ("no timestamp", good().without_header("X-Timestamp")),
        (
            "no headers at all",
            Raw::new("POST", path)
                .header("Content-Type", "application/json")
                .body(bytes.clone()),
        ),
        ("wrong signature", good().set_header("X-Signature", "0".repeat(64))),
        ("signature not hex", good().set_header("X-Signature", "not-hex")),
        ("empty signature", good().set_header("X-Signature", "")),
        (
            "tampered body",
            good().body(json!({"configurationSlug": "kyc", "externalUserId": "mallory"}).to_string()),
        ),
        (
            "unknown key",
            good().set_header("X-API-Key", "ak_test_000000000000000000000000"),
        ),
        ("key without a mode prefix", good().set_header("X-API-Key", "key_123")),
        (
            "another org's key id",
            good().set_header("X-API-Key", api.other.api_key_id.clone()),
        ),
        (
            "our live key id with the test secret",
            good().set_header("X-API-Key", api.live.api_key_id.clone()),
        ),
        ("timestamp not a number", good().set_header("X-Timestamp", "yesterday")),
        ("timestamp in milliseconds", resign(now * 1000)),
        ("timestamp 301 s old", resign(now - 301)),
        ("timestamp 301 s ahead", resign(now + 301)),
        ("timestamp an hour old", resign(now - 3600)),
        ("timestamp a day ahead", resign(now + 86_400)),
    ];
    // A signature for another path, query or method.
    let mut other_path = good();
    other_path.path = "/api/v1/sessions?limit=5".to_owned();
    bad.push(("signed for another query", other_path));
    let mut other_method = api.signed(&api.key, "GET", "/sessions", None);
    other_method.method = "POST".to_owned();
    other_method.body = bytes.clone();
    bad.push(("signed for another method", other_method));
    let mut without_prefix = good();
    for (name, value) in Api::signature_headers(&api.key, now, "POST", "/sessions", &bytes) {
        without_prefix = without_prefix.set_header(&name, value);
    }
    bad.push(("signed without the /api/v1 prefix", without_prefix));
    // Another organisation's signature over our request.
    let mut theirs = good();
    for (name, value) in Api::signature_headers(&api.other, now, "POST", path, &bytes) {
        theirs = theirs.set_header(&name, value);
    }
    theirs = theirs.set_header("X-API-Key", api.key.api_key_id.clone());
    bad.push(("signed with another org's secret", theirs));

    for (what, raw) in bad {
        let before = world.snapshot().await;
        let reply = api.send(raw).await;
        assert_eq!(reply.0, 401, "{what}: {}", reply.1);
        assert_problem(&reply, 401, "unauthorized");
        assert_eq!(world.snapshot().await, before, "{what} changed something");
    }
    // Within five minutes either way is fine.
    for skew in [-299, 299, 0] {
        assert_eq!(api.send(resign(now + skew)).await.0, 201, "skew {skew}");
    }
    // Reads are signed too, over the empty body.
    for path in [
        "/sessions",
        "/session-configurations",
        "/workflows",
        &format!("/sessions/{}", world.open.id),
    ] {
        let reply = api
            .send(
                api.signed(&api.key, "GET", path, None)
                    .set_header("X-Signature", "ab".repeat(32)),
            )
            .await;
        assert_problem(&reply, 401, "unauthorized");
        let reply = api.send(Raw::new("GET", &full_path(path))).await;
        assert_problem(&reply, 401, "unauthorized");
    }
}

// ------------------------------------------------------------------- routing

#[tokio::test]
async fn wrong_methods_are_405_and_unknown_routes_404() {
    let world = World::new().await;
    let api = &world.api;
    let open = &world.open;
    for (method, path) in [
        ("PUT", "/sessions".to_owned()),
        ("DELETE", "/sessions".to_owned()),
        ("DELETE", format!("/sessions/{}", open.id)),
        ("PATCH", format!("/sessions/{}", open.id)),
        ("GET", format!("/sessions/{}/resolve", open.id)),
        ("POST", format!("/sessions/{}/events", open.id)),
        ("PUT", "/session-configurations".to_owned()),
        ("POST", "/session-configurations/kyc".to_owned()),
        ("PATCH", "/workflows/custom".to_owned()),
        ("DELETE", format!("/access/{}", open.token)),
        ("GET", format!("/access/{}/start", open.token)),
        ("GET", format!("/access/{}/workflows/{}", open.token, open.wf[1])),
        ("OPTIONS", "/sessions".to_owned()),
    ] {
        world
            .refuse(api.signed(&api.key, method, &path, None), 405, "method_not_allowed")
            .await;
    }
    for path in [
        "/api/v1/nowhere",
        "/api/v1",
        "/api/v1/",
        "/",
        "/api/v2/sessions",
        "/sessions",
        "/api/v1/sessions/",
        "/api/v1/session-configurations/kyc/extra",
        "/api/v1/webhook-endpoints-nope",
    ] {
        for method in ["GET", "POST"] {
            let mut raw = api.signed(&api.key, method, "/", None);
            raw.path = path.to_owned();
            world.refuse(raw, 404, "not_found").await;
        }
    }
}

/// RFC 9110 §15.5.6: a 405 response MUST carry an `Allow` header listing
/// the methods the resource supports.
#[tokio::test]
async fn a_405_names_the_allowed_methods() {
    let api = Api::new().await;
    let reply: Reply = api.partner("PUT", "/sessions", None).await;
    assert_problem(&reply, 405, "method_not_allowed");
    let allow = reply
        .2
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow:?}");
}

#[tokio::test]
async fn an_idempotency_key_that_is_too_long_is_422() {
    let world = World::new().await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "u"});
    let raw = world
        .json("POST", "/sessions", body.clone())
        .header("Idempotency-Key", "k".repeat(256));
    world.invalid(raw, "Idempotency-Key").await;
    let raw = world
        .json("POST", "/sessions", body)
        .header("Idempotency-Key", "k".repeat(255));
    assert_eq!(world.api.send(raw).await.0, 201);
}

/// A timestamp near the far end of i64 overflowed the clock-skew check and
/// took the connection down (a 502 behind API Gateway) instead of a 401.
#[tokio::test]
async fn timestamps_at_the_ends_of_the_range_are_401() {
    let world = World::new().await;
    let api = &world.api;
    let path = "/api/v1/sessions";
    for timestamp in [i64::MIN, i64::MIN + 1, i64::MIN + 1_000_000, i64::MAX] {
        let mut raw = Raw::new("GET", path);
        raw.headers = Api::signature_headers(&api.key, timestamp, "GET", path, b"");
        world.refuse(raw, 401, "unauthorized").await;
    }
}

/// The local server serves its OpenAPI document, unsigned, before routing.
#[tokio::test]
async fn the_local_server_serves_the_openapi_document() {
    let api = Api::new().await;
    let (addr, server) = api.spawn_server().await;
    let response = wire(addr, Raw::new("GET", "/api/v1/openapi.json")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let document = response.json();
    assert!(
        document["openapi"].as_str().unwrap_or_default().starts_with("3.1."),
        "{document}"
    );
    let response = wire(addr, Raw::new("DELETE", "/api/v1/openapi.json")).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    assert_eq!(response.json()["code"], "method_not_allowed");
    server.abort();
}

/// Expressions deep enough to overflow a thread's stack in the CEL parser or
/// evaluator once aborted the whole server (a dozen nested brackets, or a
/// 1,500-term sum); now they are refused with a 422, or run.
#[tokio::test]
async fn deep_expressions_are_refused_or_run_never_a_crash() {
    let world = World::new().await;
    let api = &world.api;
    let workflow = |slug: &str, expression: String| {
        json!({
            "name": "Deep",
            "slug": slug,
            "steps": [
                {"type": "capture", "config": {"fields": [{"name": "answer", "type": "text"}]}},
                {"type": "validate", "config": {"rules": [{"name": "deep", "expression": expression, "onFailure": "fail"}]}},
                {"type": "output", "config": {}}
            ]
        })
    };
    let sum = vec!["1"; 1500].join("+");
    let too_deep = workflow("too-deep", format!("{sum} > 0"));
    world
        .invalid(
            world.json("POST", "/workflows", too_deep),
            "steps[1].config.rules[0].expression",
        )
        .await;
    let nested = format!("{}data.answer != ''{}", "(".repeat(60), ")".repeat(60));
    api.expect(201, "POST", "/workflows", Some(workflow("nested", nested)))
        .await;
    api.simple_configuration("nested-config", &["nested"], json!({})).await;
    let session = api.session_of("nested-config", "usr_deep").await;
    let view = api
        .submit_ok(
            str_of(&session, "accessToken"),
            &workflow_ids(&session)[0],
            json!({"answer": "yes"}),
        )
        .await;
    assert_eq!(view["status"], "completed", "{view}");
}
