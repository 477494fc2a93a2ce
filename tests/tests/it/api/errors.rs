//! Bad requests that depend on what is stored: unknown and foreign ids, state
//! conflicts, access tokens, replayed signatures, rate limits and keys. Each
//! gets the right 4xx problem document and changes nothing. No request may
//! cause a 5xx (the harness checks every answer for that).

use std::sync::Arc;

use acceptance::api::{Api, Raw, Reply, assert_invalid, assert_problem, full_path, str_of, unmetered, workflow_ids};
use functions::admin::{self, AdminError, Credentials};
use functions::app::Settings;
use korala_domain::limits::Rate;
use korala_domain::tenancy::Mode;
use serde_json::{Value, json};

use crate::world::{World, custom_workflow};

#[tokio::test]
async fn a_refused_submission_costs_no_attempt() {
    let world = World::new().await;
    let open = &world.open;
    let before = world.api.session(&open.id).await;
    let mut poa = world.api.proof_of_address("Jane Doe");
    poa["issueDate"] = json!("yesterday");
    let reply = world.api.submit(&open.token, &open.wf[1], poa).await;
    assert_invalid(&reply, "data.issueDate");
    let after = world.api.session(&open.id).await;
    assert_eq!(after, before);
    assert_eq!(after["workflows"][1]["attempts"], 0);
    assert_eq!(
        world.api.access(&open.token).await["currentStep"]["attemptsRemaining"],
        3
    );
}
// ------------------------------------------------------ unknown and foreign

#[tokio::test]
async fn unknown_ids_are_404() {
    let world = World::new().await;
    let api = &world.api;
    let open = &world.open;
    let other_session = &world.completed;
    let resolve = json!({"resolution": "approved", "reason": "x"});
    let review = json!({"decision": "approved", "reason": "x"});
    let mut requests = Vec::new();
    for id in [
        "ses_0000000000000000000000000000000",
        "ses_unknown",
        "not-a-session",
        "swf_123",
        "ses_a%2Fb",
    ] {
        requests.push(world.api.signed(&api.key, "GET", &format!("/sessions/{id}"), None));
        requests.push(
            world
                .api
                .signed(&api.key, "GET", &format!("/sessions/{id}/events"), None),
        );
        requests.push(world.json("POST", &format!("/sessions/{id}/resolve"), resolve.clone()));
        requests.push(world.json(
            "POST",
            &format!("/sessions/{id}/workflows/{}/review", open.wf[0]),
            review.clone(),
        ));
        requests.push(world.api.signed(
            &api.key,
            "POST",
            &format!("/sessions/{id}/workflows/{}/resubmit", open.wf[0]),
            None,
        ));
    }
    // Session workflows: unknown, malformed, and one of another session.
    for wf in [
        "swf_0000000000000000000000000000000",
        "nope",
        other_session.wf[0].as_str(),
    ] {
        requests.push(world.json(
            "POST",
            &format!("/sessions/{}/workflows/{wf}/review", open.id),
            review.clone(),
        ));
        requests.push(world.api.signed(
            &api.key,
            "POST",
            &format!("/sessions/{}/workflows/{wf}/resubmit", open.id),
            None,
        ));
        requests.push(
            Raw::new("POST", &full_path(&format!("/access/{}/workflows/{wf}", open.token)))
                .header("Content-Type", "application/json")
                .body(json!({"data": {}}).to_string()),
        );
    }
    for slug in ["nope", "Not-A-Slug"] {
        requests.push(
            world
                .api
                .signed(&api.key, "GET", &format!("/session-configurations/{slug}"), None),
        );
        requests.push(world.json(
            "PATCH",
            &format!("/session-configurations/{slug}"),
            json!({"name": "N"}),
        ));
        requests.push(
            world
                .api
                .signed(&api.key, "DELETE", &format!("/session-configurations/{slug}"), None),
        );
        requests.push(world.api.signed(&api.key, "GET", &format!("/workflows/{slug}"), None));
        requests.push(
            world
                .api
                .signed(&api.key, "DELETE", &format!("/workflows/{slug}"), None),
        );
    }
    requests.push(world.json("PUT", "/workflows/nope", custom_workflow("nope")));
    for raw in requests {
        world.refuse(raw, 404, "not_found").await;
    }
}

/// Another tenant's resources do not exist for a key: another
/// organisation's, and the same organisation's in the other mode (test and
/// live are separate worlds, as at Stripe and Persona).
#[tokio::test]
async fn another_tenants_resources_are_404() {
    let world = World::new().await;
    let api = &world.api;
    let resolve = json!({"resolution": "approved", "reason": "x"});
    let review = json!({"decision": "approved", "reason": "x"});
    let (open, reviewing, endpoint) = (&world.open, &world.reviewing, &world.endpoint);
    for (them, theirs) in [(api.other.clone(), "theirs"), (api.live.clone(), "live-only")] {
        let requests = vec![
            api.signed(&them, "GET", &format!("/sessions/{}", open.id), None),
            api.signed(&them, "GET", &format!("/sessions/{}/events", open.id), None),
            api.signed(&them, "POST", &format!("/sessions/{}/resolve", open.id), Some(&resolve)),
            api.signed(
                &them,
                "POST",
                &format!("/sessions/{}/workflows/{}/review", reviewing.id, reviewing.wf[1]),
                Some(&review),
            ),
            api.signed(
                &them,
                "POST",
                &format!("/sessions/{}/workflows/{}/resubmit", open.id, open.wf[0]),
                None,
            ),
            api.signed(&them, "GET", "/session-configurations/kyc", None),
            api.signed(
                &them,
                "PATCH",
                "/session-configurations/kyc",
                Some(&json!({"name": "Mine now"})),
            ),
            api.signed(&them, "DELETE", "/session-configurations/kyc", None),
            api.signed(&them, "GET", "/workflows/custom", None),
            api.signed(&them, "PUT", "/workflows/custom", Some(&custom_workflow("custom"))),
            api.signed(&them, "DELETE", "/workflows/custom", None),
            api.signed(&them, "GET", &format!("/webhook-endpoints/{endpoint}"), None),
            api.signed(
                &them,
                "PATCH",
                &format!("/webhook-endpoints/{endpoint}"),
                Some(&json!({"enabled": false})),
            ),
            api.signed(&them, "DELETE", &format!("/webhook-endpoints/{endpoint}"), None),
            api.signed(&them, "POST", &format!("/webhook-endpoints/{endpoint}/test"), None),
            api.signed(&them, "GET", &format!("/webhook-endpoints/{endpoint}/deliveries"), None),
            // And the other way round.
            api.signed(&api.key, "GET", &format!("/session-configurations/{theirs}"), None),
            api.signed(&api.key, "DELETE", &format!("/session-configurations/{theirs}"), None),
        ];
        for raw in requests {
            world.refuse(raw, 404, "not_found").await;
        }
        // Their lists show none of ours; our things are untouched (checked by `refuse`).
        let (_, sessions, _) = api.partner_as(&them, "GET", "/sessions", None).await;
        assert_eq!(sessions["data"], json!([]), "{theirs}");
        let (_, endpoints, _) = api.partner_as(&them, "GET", "/webhook-endpoints", None).await;
        assert_eq!(endpoints["data"], json!([]), "{theirs}");
        // Their configurations cannot be used by us, nor ours by them.
        let body = json!({"configurationSlug": "kyc", "externalUserId": "u"});
        world
            .invalid(api.signed(&them, "POST", "/sessions", Some(&body)), "configurationSlug")
            .await;
        let body = json!({"configurationSlug": theirs, "externalUserId": "u"});
        world
            .invalid(
                api.signed(&api.key, "POST", "/sessions", Some(&body)),
                "configurationSlug",
            )
            .await;
    }
}

// ------------------------------------------------------- state conflicts

#[tokio::test]
async fn submitting_to_a_step_that_is_not_current_is_409() {
    let world = World::new().await;
    let open = &world.open;
    let api = &world.api;
    // The identity document is done; the proof of address is current.
    let done = Raw::new(
        "POST",
        &full_path(&format!("/access/{}/workflows/{}", open.token, open.wf[0])),
    )
    .header("Content-Type", "application/json")
    .body(json!({"data": api.id_document("Jane Doe")}).to_string());
    world.refuse(done, 409, "workflow_not_current").await;
    // A fresh session: the second step is not current yet.
    let fresh = api.session_of("kyc", "usr_fresh").await;
    let (token, wf) = (str_of(&fresh, "accessToken"), workflow_ids(&fresh));
    let early = Raw::new("POST", &full_path(&format!("/access/{token}/workflows/{}", wf[1])))
        .header("Content-Type", "application/json")
        .body(json!({"data": api.proof_of_address("Jane Doe")}).to_string());
    let problem = world.refuse(early, 409, "workflow_not_current").await;
    assert!(str_of(&problem, "detail").contains(&wf[1]), "{problem}");
    assert_eq!(
        api.session(str_of(&fresh, "id")).await["status"],
        "created",
        "a refused submission starts nothing"
    );
    // A step waiting for the partner's review takes no submission.
    let reviewing = &world.reviewing;
    let paused = Raw::new(
        "POST",
        &full_path(&format!("/access/{}/workflows/{}", reviewing.token, reviewing.wf[1])),
    )
    .header("Content-Type", "application/json")
    .body(json!({"data": api.proof_of_address("John Smith")}).to_string());
    world.refuse(paused, 409, "workflow_not_current").await;
}

#[tokio::test]
async fn a_closed_session_accepts_no_submissions() {
    let world = World::new().await;
    let api = &world.api;
    for case in [&world.completed, &world.failed] {
        for wf in &case.wf {
            let raw = Raw::new("POST", &full_path(&format!("/access/{}/workflows/{wf}", case.token)))
                .header("Content-Type", "application/json")
                .body(json!({"data": api.proof_of_address("Jane Doe")}).to_string());
            world.refuse(raw, 409, "session_closed").await;
        }
        // Starting a closed session is a no-op, not an error.
        let (status, view, _) = api
            .end_user("POST", &format!("/access/{}/start", case.token), None)
            .await;
        assert_eq!(status, 200);
        assert!(view["currentStep"].is_null());
    }
    // A session waiting for its final review is closed to the end user too.
    api.simple_configuration("final", &["id-document"], json!({"finalManualReviewRequired": true}))
        .await;
    let session = api.session_of("final", "usr_final").await;
    let (token, wf) = (str_of(&session, "accessToken"), workflow_ids(&session));
    api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;
    let raw = Raw::new("POST", &full_path(&format!("/access/{token}/workflows/{}", wf[0])))
        .header("Content-Type", "application/json")
        .body(json!({"data": api.id_document("Jane Doe")}).to_string());
    world.refuse(raw, 409, "session_closed").await;
}

#[tokio::test]
async fn reviewing_a_workflow_that_is_not_pending_review_is_409() {
    let world = World::new().await;
    let review = json!({"decision": "approved", "reason": "x"});
    let targets = [
        (&world.open, 0),
        (&world.open, 1),
        (&world.completed, 1),
        (&world.failed, 1),
        (&world.reviewing, 0),
    ];
    for (case, index) in targets {
        let raw = world.json(
            "POST",
            &format!("/sessions/{}/workflows/{}/review", case.id, case.wf[index]),
            review.clone(),
        );
        world.refuse(raw, 409, "workflow_not_pending_review").await;
    }
    // Resubmitting a workflow that never started is refused as well.
    let raw = world.api.signed(
        &world.api.key,
        "POST",
        &format!(
            "/sessions/{}/workflows/{}/resubmit",
            world.reviewing.id, world.reviewing.wf[1]
        ),
        None,
    );
    assert_eq!(world.api.send(raw).await.0, 200, "a paused workflow can be redone");
    let fresh = world.api.session_of("kyc", "usr_fresh").await;
    let raw = world.api.signed(
        &world.api.key,
        "POST",
        &format!(
            "/sessions/{}/workflows/{}/resubmit",
            str_of(&fresh, "id"),
            workflow_ids(&fresh)[1]
        ),
        None,
    );
    world.refuse(raw, 409, "workflow_not_started").await;
}

#[tokio::test]
async fn duplicate_slugs_are_409_within_an_organisation_only() {
    let world = World::new().await;
    let api = &world.api;
    let config = json!({"name": "Again", "slug": "kyc", "workflowSlugs": ["proof-of-address"]});
    let problem = world
        .refuse(
            world.json("POST", "/session-configurations", config.clone()),
            409,
            "slug_taken",
        )
        .await;
    assert!(str_of(&problem, "detail").contains("kyc"));
    assert_eq!(
        api.get("/session-configurations/kyc").await["workflowSlugs"],
        json!(["id-document", "proof-of-address"])
    );
    world
        .refuse(
            world.json("POST", "/workflows", custom_workflow("custom")),
            409,
            "slug_taken",
        )
        .await;
    // The same slugs are free in another organisation.
    let them = api.other.clone();
    let (status, body, _) = api
        .partner_as(&them, "POST", "/session-configurations", Some(config))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = api
        .partner_as(&them, "POST", "/workflows", Some(custom_workflow("custom")))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_workflow_in_use_or_a_builtin_cannot_be_deleted() {
    let world = World::new().await;
    world
        .refuse(
            world.api.signed(&world.api.key, "DELETE", "/workflows/custom", None),
            409,
            "workflow_in_use",
        )
        .await;
    for builtin in ["id-document", "proof-of-address", "pep-check", "sanctions-check"] {
        let raw = world
            .api
            .signed(&world.api.key, "DELETE", &format!("/workflows/{builtin}"), None);
        world.refuse(raw, 409, "builtin_workflow").await;
    }
}

// ------------------------------------------------------------ authentication

#[tokio::test]
async fn access_tokens_that_do_not_exist_or_are_malformed_are_404() {
    let world = World::new().await;
    let open = &world.open;
    let unknown = format!("at_{}", "A".repeat(43));
    let mut tampered = open.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let tokens = [
        unknown.as_str(),
        tampered.as_str(),
        "at_short",
        "not-a-token",
        &open.id,
        &open.token[3..],
        "at_%2F%2E%2E",
    ];
    for token in tokens {
        for (method, path, body) in [
            ("GET", format!("/access/{token}"), None),
            ("POST", format!("/access/{token}/start"), None),
            (
                "POST",
                format!("/access/{token}/workflows/{}", open.wf[1]),
                Some(json!({"data": {}})),
            ),
        ] {
            let mut raw = Raw::new(method, &full_path(&path));
            if let Some(body) = body {
                raw = raw.header("Content-Type", "application/json").body(body.to_string());
            }
            world.refuse(raw, 404, "not_found").await;
        }
    }
    // The partner's signature is no access token.
    let raw = world
        .api
        .signed(&world.api.key, "GET", &format!("/access/{}", open.id), None);
    world.refuse(raw, 404, "not_found").await;
}

/// An access token opens its own session's end-user routes and nothing
/// else: not another session's workflows, not the partner API, not after
/// the session is closed for submissions.
#[tokio::test]
async fn an_access_token_is_good_for_its_own_session_only() {
    let world = World::new().await;
    let (open, reviewing) = (&world.open, &world.reviewing);
    // Another session's workflow, through this session's token.
    let raw = Raw::new(
        "POST",
        &full_path(&format!("/access/{}/workflows/{}", open.token, reviewing.wf[1])),
    )
    .header("Content-Type", "application/json")
    .body(json!({"data": world.api.proof_of_address("Jane Doe")}).to_string());
    world.refuse(raw, 404, "not_found").await;
    // The token is no partner credential, in any header.
    for (name, value) in [
        ("X-API-Key", open.token.clone()),
        ("Authorization", format!("Bearer {}", open.token)),
    ] {
        let raw = Raw::new("GET", &full_path(&format!("/sessions/{}", open.id))).header(name, value);
        world.refuse(raw, 401, "unauthorized").await;
    }
    // A completed session's token still shows the end user the outcome, but
    // takes no more submissions.
    let done = &world.completed;
    world.api.access(&done.token).await;
    let raw = Raw::new(
        "POST",
        &full_path(&format!("/access/{}/workflows/{}", done.token, done.wf[0])),
    )
    .header("Content-Type", "application/json")
    .body(json!({"data": world.api.id_document("Mallory")}).to_string());
    world.refuse(raw, 409, "session_closed").await;
}

/// A captured signed request, sent again: a read reads what it read, a
/// mutation is refused (its signature is good once: issue 15 saw three
/// sessions from one captured create, and an old `approve` replayed after a
/// later `reject` flip the decision back), it cannot be bent to another
/// body, path or key, and it dies with its timestamp.
#[tokio::test]
async fn a_replayed_signature_buys_nothing_new() {
    let world = World::new().await;
    let api = &world.api;
    let read = api.signed(&api.key, "GET", &format!("/sessions/{}", world.open.id), None);
    let first = api.send(read.clone()).await;
    let again = api.send(read.clone()).await;
    assert_eq!((first.0, &first.1), (again.0, &again.1));

    // A create, keyed or not, creates once.
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_replayed"});
    let unkeyed = api.signed(&api.key, "POST", "/sessions", Some(&body));
    let create = api
        .signed(&api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "replayed-create");
    for raw in [&unkeyed, &create] {
        let first = api.send(raw.clone()).await;
        assert_eq!(first.0, 201, "{}", first.1);
        world.refuse(raw.clone(), 401, "unauthorized").await;
    }
    assert_eq!(api.count("/sessions?externalUserId=usr_replayed").await, 2);
    // The keyed create's retry, signed anew, hears its first answer.
    let retry = api
        .signed(&api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "replayed-create");
    let (status, _, headers) = api.send(retry).await;
    assert_eq!(status, 201);
    assert_eq!(
        headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );

    // An approval captured, then overruled: replaying it changes nothing.
    let resolve = |resolution: &str| {
        api.signed(
            &api.key,
            "POST",
            &format!("/sessions/{}/resolve", world.open.id),
            Some(&json!({"resolution": resolution, "reason": "checked by hand"})),
        )
    };
    let approve = resolve("approved");
    assert_eq!(api.send(approve.clone()).await.0, 200);
    assert_eq!(api.send(resolve("rejected")).await.0, 200);
    world.refuse(approve, 401, "unauthorized").await;
    assert_eq!(api.session(&world.open.id).await["resolution"], "rejected");

    // Bent to another body, path or key: refused as unsigned.
    let other_body = json!({"configurationSlug": "kyc", "externalUserId": "usr_mallory"});
    let mut other_path = read.clone();
    other_path.path = full_path(&format!("/sessions/{}", world.completed.id));
    for (what, raw) in [
        ("another body", create.clone().body(other_body.to_string())),
        ("another path", other_path),
        (
            "another key",
            read.clone().set_header("X-API-Key", api.other.api_key_id.clone()),
        ),
    ] {
        let reply = api.send(raw).await;
        assert_eq!(reply.0, 401, "{what}: {}", reply.1);
    }

    // Five minutes on, the same bytes are refused.
    api.clock.advance_seconds(301);
    for raw in [read, create] {
        world.refuse(raw, 401, "unauthorized").await;
    }
}

// ------------------------------------------------------------- rate limits

/// An application whose rates are small enough to reach in a test.
fn metered(mut api: Api, partner: Rate, access: Rate) -> Api {
    api.app.settings = Arc::new(Settings {
        partner_rate: partner,
        access_rate: access,
        ..(*api.app.settings).clone()
    });
    api
}

fn retry_after(reply: &Reply) -> Option<&str> {
    reply.2.get("retry-after").and_then(|v| v.to_str().ok())
}

/// Past its rate an organisation hears `429` with `Retry-After`, as a
/// problem document, whichever of its keys and modes it uses; another
/// organisation goes on as before, and the first one's requests pass again
/// once the wait is over.
#[tokio::test]
async fn an_organisation_past_its_rate_is_429_and_no_one_else_is() {
    let api = metered(Api::new().await, Rate::new(2, 4).unwrap(), unmetered());
    for _ in 0..4 {
        assert_eq!(api.partner("GET", "/session-configurations", None).await.0, 200);
    }
    let refused = api.partner_as(&api.live, "GET", "/workflows", None).await;
    assert_problem(&refused, 429, "rate_limited");
    assert_eq!(retry_after(&refused), Some("1"), "the next place is half a second away");
    // Mutations too, and nothing is done.
    let body = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"]});
    let refused = api.partner("POST", "/session-configurations", Some(body.clone())).await;
    assert_problem(&refused, 429, "rate_limited");
    // The other organisation is not metered with it.
    for _ in 0..4 {
        assert_eq!(api.partner_as(&api.other, "GET", "/workflows", None).await.0, 200);
    }
    api.clock.advance_seconds(1);
    assert_eq!(api.partner("POST", "/session-configurations", Some(body)).await.0, 201);
    assert_eq!(
        api.partner("GET", "/session-configurations", None).await.1["data"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// An operator may give an organisation a rate of its own.
#[tokio::test]
async fn an_organisation_may_have_a_rate_of_its_own() {
    let api = metered(Api::new().await, Rate::new(1, 1).unwrap(), unmetered());
    let mut other = api
        .app
        .store
        .get_organization(&api.other.org_id)
        .await
        .unwrap()
        .unwrap();
    other.rate = Some(Rate::new(5, 10).unwrap());
    api.app.store.update_organization(&other).await.unwrap();
    let mut passed = 0;
    for _ in 0..12 {
        if api.partner_as(&api.other, "GET", "/workflows", None).await.0 == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, 10);
    assert_eq!(api.partner("GET", "/workflows", None).await.0, 200);
    assert_eq!(api.partner("GET", "/workflows", None).await.0, 429);
}

/// Each access token has its own allowance: one end user's page polling
/// too fast slows no other.
#[tokio::test]
async fn an_access_token_past_its_rate_is_429_and_no_other_token_is() {
    let api = metered(Api::new().await, unmetered(), Rate::new(1, 3).unwrap());
    api.kyc_configuration("kyc").await;
    let first = api.session_of("kyc", "usr_1").await;
    let second = api.session_of("kyc", "usr_2").await;
    let path = |s: &Value| format!("/access/{}", str_of(s, "accessToken"));
    for _ in 0..3 {
        assert_eq!(api.end_user("GET", &path(&first), None).await.0, 200);
    }
    let refused = api.end_user("POST", &format!("{}/start", path(&first)), None).await;
    assert_problem(&refused, 429, "rate_limited");
    assert_eq!(retry_after(&refused), Some("1"));
    assert_eq!(
        api.session(str_of(&first, "id")).await["status"],
        "created",
        "not started"
    );
    assert_eq!(api.end_user("GET", &path(&second), None).await.0, 200);
    // Unknown tokens of the right shape are metered each on its own, and
    // stay 404s.
    let unknown = api
        .end_user("GET", "/access/at_0000000000000000000000000000000000000000000", None)
        .await;
    assert_problem(&unknown, 404, "not_found");
}

/// Test events and redeliveries make us send requests to the partner's URL:
/// ten at once, then one every second.
#[tokio::test]
async fn test_events_and_redeliveries_have_an_allowance_of_their_own() {
    let mut api = Api::new().await;
    api.app.settings = Arc::new(Settings {
        send_rate: korala_domain::limits::WEBHOOK_SENDS,
        ..(*api.app.settings).clone()
    });
    let _relay = api.relay().await;
    let hook = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
    let endpoint = str_of(&api.expect(201, "POST", "/webhook-endpoints", Some(hook)).await, "id").to_owned();
    let test = format!("/webhook-endpoints/{endpoint}/test");
    for _ in 0..10 {
        assert_eq!(api.partner("POST", &test, None).await.0, 202);
    }
    let refused = api.partner("POST", &test, None).await;
    assert_problem(&refused, 429, "rate_limited");
    assert_eq!(retry_after(&refused), Some("1"));
    // The rest of the API is not held back with them.
    assert_eq!(api.partner("GET", "/webhook-endpoints", None).await.0, 200);
    api.clock.advance_seconds(1);
    assert_eq!(api.partner("POST", &test, None).await.0, 202);
}

// ------------------------------------------------------------ key lifecycle

/// A rotation: a second key beside the first (two active per mode at most),
/// the first revoked once the partner has switched. A revoked key stops
/// working within a minute on an instance that had it; an unknown key id is
/// remembered as unknown for ten seconds, then a key minted under it works.
#[tokio::test]
async fn keys_rotate_and_revocation_takes_effect_within_the_stated_bound() {
    let api = Api::new().await;
    let old = api.key.clone();
    assert_eq!(api.partner_as(&old, "GET", "/workflows", None).await.0, 200);
    let new = admin::rotate_key(&api.app, &old.api_key_id).await.unwrap();
    assert_eq!(
        (new.org_id.clone(), new.api_key_id.starts_with("ak_test_")),
        (old.org_id.clone(), true)
    );
    assert!(matches!(
        admin::create_key(&api.app, &old.org_id, Mode::Test).await,
        Err(AdminError::TooManyKeys(Mode::Test))
    ));
    assert_eq!(api.partner_as(&new, "GET", "/workflows", None).await.0, 200);

    let revoked = admin::revoke_key(&api.app, &old.api_key_id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let listed = admin::list_keys(&api.app, &old.org_id).await.unwrap();
    assert_eq!(
        listed.iter().filter(|k| k.revoked_at.is_none()).count(),
        2,
        "the new test key and the live one"
    );
    // Within the bound, an instance that had the key may still take it...
    api.clock.advance_seconds(30);
    assert_eq!(api.partner_as(&old, "GET", "/workflows", None).await.0, 200);
    // ... and past it, none does.
    api.clock.advance_seconds(31);
    let refused = api.partner_as(&old, "GET", "/workflows", None).await;
    assert_problem(&refused, 401, "unauthorized");
    assert_eq!(api.partner_as(&new, "GET", "/workflows", None).await.0, 200);

    // An id nobody has yet: refused, and remembered as unknown.
    let id = "ak_test_00000000000000000000late";
    let early = Credentials {
        org_id: old.org_id.clone(),
        api_key_id: id.to_owned(),
        api_secret: "sk_late".to_owned(),
    };
    assert_eq!(api.partner_as(&early, "GET", "/workflows", None).await.0, 401);
    admin::revoke_key(&api.app, &new.api_key_id).await.unwrap();
    admin::add_key(&api.app, &old.org_id, id, "sk_late").await.unwrap();
    api.clock.advance_seconds(5);
    assert_eq!(
        api.partner_as(&early, "GET", "/workflows", None).await.0,
        401,
        "still taken as unknown"
    );
    api.clock.advance_seconds(6);
    assert_eq!(api.partner_as(&early, "GET", "/workflows", None).await.0, 200);
}
