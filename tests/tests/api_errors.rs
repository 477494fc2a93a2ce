//! Bad requests of every kind: each gets the right 4xx problem document and
//! changes nothing. No request may cause a 5xx (the harness checks every
//! answer for that).

use std::sync::Arc;

use acceptance::api::{
    Api, Raw, Reply, assert_invalid, assert_problem, full_path, near_match, str_of, unmetered, wire, workflow_ids,
};
use functions::admin::{self, AdminError, Credentials};
use functions::app::Settings;
use korala_domain::limits::Rate;
use korala_domain::tenancy::Mode;
use serde_json::{Value, json};

/// A world with something in every state, to show bad requests leave it be.
struct World {
    api: Api,
    /// In progress: the identity document is done, proof of address waits.
    open: Case,
    /// Completed and approved.
    completed: Case,
    /// Failed: the review of its proof of address was rejected.
    failed: Case,
    /// Waiting for the partner's review of its proof of address.
    reviewing: Case,
    /// A webhook endpoint of the test key's (no events are relayed here).
    endpoint: String,
}

struct Case {
    id: String,
    token: String,
    wf: Vec<String>,
}

fn custom_workflow(slug: &str) -> Value {
    json!({
        "name": "Custom",
        "slug": slug,
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "answer", "type": "text", "label": "Answer"}]}},
            {"type": "output", "config": {}}
        ]
    })
}

impl World {
    async fn new() -> Self {
        let api = Api::new().await;
        api.kyc_configuration("kyc").await;
        api.expect(201, "POST", "/workflows", Some(custom_workflow("custom")))
            .await;
        api.simple_configuration("custom-config", &["custom"], json!({})).await;
        // The other organisation has its own things, which must stay as they are.
        let other = api.other.clone();
        let (s, b, _) = api
            .partner_as(
                &other,
                "POST",
                "/session-configurations",
                Some(json!({"name": "Theirs", "slug": "theirs", "workflowSlugs": ["id-document"]})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        // So has the main organisation's live mode, a world of its own.
        let live = api.live.clone();
        let (s, b, _) = api
            .partner_as(
                &live,
                "POST",
                "/session-configurations",
                Some(json!({"name": "Live", "slug": "live-only", "workflowSlugs": ["id-document"]})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let hook = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
        let endpoint = str_of(&api.expect(201, "POST", "/webhook-endpoints", Some(hook)).await, "id").to_owned();

        let case = |session: Value| Case {
            id: str_of(&session, "id").to_owned(),
            token: str_of(&session, "accessToken").to_owned(),
            wf: workflow_ids(&session),
        };
        let open = case(api.session_of("kyc", "usr_open").await);
        api.submit_ok(&open.token, &open.wf[0], api.id_document("Jane Doe"))
            .await;

        let completed = case(api.session_of("kyc", "usr_done").await);
        api.submit_ok(&completed.token, &completed.wf[0], api.id_document("Jane Doe"))
            .await;
        api.submit_ok(&completed.token, &completed.wf[1], api.proof_of_address("Jane Doe"))
            .await;

        let (id_name, poa_name) = near_match();
        let reviewing = case(api.session_of("kyc", "usr_review").await);
        api.submit_ok(&reviewing.token, &reviewing.wf[0], api.id_document(id_name))
            .await;
        let view = api
            .submit_ok(&reviewing.token, &reviewing.wf[1], api.proof_of_address(poa_name))
            .await;
        assert_eq!(view["status"], "pending_review", "{view}");

        let failed = case(api.session_of("kyc", "usr_failed").await);
        api.submit_ok(&failed.token, &failed.wf[0], api.id_document(id_name))
            .await;
        api.submit_ok(&failed.token, &failed.wf[1], api.proof_of_address(poa_name))
            .await;
        api.expect(
            200,
            "POST",
            &format!("/sessions/{}/workflows/{}/review", failed.id, failed.wf[1]),
            Some(json!({"decision": "rejected", "reason": "no"})),
        )
        .await;
        Self {
            api,
            open,
            completed,
            failed,
            reviewing,
            endpoint,
        }
    }

    fn cases(&self) -> [&Case; 4] {
        [&self.open, &self.completed, &self.failed, &self.reviewing]
    }

    /// Everything either organisation can read.
    async fn snapshot(&self) -> Value {
        let api = &self.api;
        let mut sessions = Vec::new();
        for case in self.cases() {
            sessions.push(json!({
                "detail": api.session(&case.id).await,
                "events": api.events(&case.id).await.len(),
                "view": api.access(&case.token).await,
            }));
        }
        let (other, live) = (api.other.clone(), api.live.clone());
        json!({
            "configurations": api.get("/session-configurations").await,
            "workflows": api.get("/workflows").await,
            "webhookEndpoints": api.get("/webhook-endpoints").await,
            "list": api.all_sessions().await,
            "sessions": sessions,
            "theirConfigurations": api.partner_as(&other, "GET", "/session-configurations", None).await.1,
            "theirWorkflows": api.partner_as(&other, "GET", "/workflows", None).await.1,
            "theirSessions": api.partner_as(&other, "GET", "/sessions?limit=100", None).await.1,
            "liveConfigurations": api.partner_as(&live, "GET", "/session-configurations", None).await.1,
            "liveWorkflows": api.partner_as(&live, "GET", "/workflows", None).await.1,
            "liveSessions": api.partner_as(&live, "GET", "/sessions?limit=100", None).await.1,
            "liveWebhookEndpoints": api.partner_as(&live, "GET", "/webhook-endpoints", None).await.1,
        })
    }

    /// Sends `raw`, asserts the problem, and that nothing changed.
    async fn refuse(&self, raw: Raw, status: u16, code: &str) -> Value {
        let before = self.snapshot().await;
        let reply = self.api.send(raw.clone()).await;
        let problem = assert_problem(&reply, status, code);
        assert_eq!(
            self.snapshot().await,
            before,
            "{} {} changed something",
            raw.method,
            raw.path
        );
        problem
    }

    /// A signed partner request with this raw body.
    fn bytes(&self, method: &str, path: &str, body: &[u8]) -> Raw {
        self.api.signed_bytes(&self.api.key, method, path, body)
    }

    fn json(&self, method: &str, path: &str, body: Value) -> Raw {
        self.api.signed(&self.api.key, method, path, Some(&body))
    }

    /// Asserts a 422 naming `field`, with nothing changed.
    async fn invalid(&self, raw: Raw, field: &str) -> Value {
        let before = self.snapshot().await;
        let reply = self.api.send(raw.clone()).await;
        let problem = assert_invalid(&reply, field);
        assert_eq!(
            self.snapshot().await,
            before,
            "{} {} changed something",
            raw.method,
            raw.path
        );
        problem
    }

    /// Every endpoint that reads a body, with a valid target.
    fn body_endpoints(&self) -> Vec<(&'static str, String, bool)> {
        let (open, review) = (&self.open, &self.reviewing);
        vec![
            ("POST", "/session-configurations".to_owned(), true),
            ("PATCH", "/session-configurations/kyc".to_owned(), true),
            ("POST", "/workflows".to_owned(), true),
            ("PUT", "/workflows/custom".to_owned(), true),
            ("POST", "/sessions".to_owned(), true),
            ("POST", format!("/sessions/{}/resolve", open.id), true),
            (
                "POST",
                format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
                true,
            ),
            (
                "POST",
                format!("/sessions/{}/workflows/{}/resubmit", open.id, open.wf[0]),
                true,
            ),
            (
                "POST",
                format!("/access/{}/workflows/{}", open.token, open.wf[1]),
                false,
            ),
        ]
    }

    fn request(&self, method: &str, path: &str, signed: bool, body: &[u8]) -> Raw {
        if signed {
            self.bytes(method, path, body)
        } else {
            Raw::new(method, &full_path(path))
                .header("Content-Type", "application/json")
                .body(body.to_vec())
        }
    }
}

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
