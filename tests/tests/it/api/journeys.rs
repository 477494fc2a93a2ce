//! End-to-end journeys through the HTTP API, as partners and end users play
//! them: configurations, workflows, sessions from creation to resolution,
//! listing, history, expiry and idempotent creation.

use std::collections::HashSet;

use acceptance::api::{
    Api, Raw, assert_problem, event_types, merge, near_match, occurrences, str_of, wire, workflow_ids,
};
use chrono::{DateTime, Utc};
use korala_domain::builtin::NAME_MISMATCH;
use korala_domain::names::similarity;
use korala_domain::testing::product_page::{kyb_session, kyb_standard};
use serde_json::{Value, json};

const WEBHOOK_EVENTS: [&str; 6] = [
    "session_completed",
    "session_expired",
    "session_failed",
    "session_resolved",
    "session_workflow_completed",
    "session_workflow_failed",
];

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("{value} is not an RFC 3339 timestamp"))
}

/// Every field of `sent` comes back as written (bindings may gain defaults).
fn assert_echoes(sent: &Value, got: &Value) {
    for (key, value) in sent.as_object().expect("an object") {
        if key == "workflowBindings" {
            let got = got[key].as_array().expect("bindings echoed");
            let sent = value.as_array().expect("bindings");
            assert_eq!(got.len(), sent.len(), "{got:?}");
            for (s, g) in sent.iter().zip(got) {
                for (k, v) in s.as_object().expect("a binding") {
                    assert_eq!(&g[k], v, "binding field {k}: {g}");
                }
            }
        } else {
            assert_eq!(&got[key], value, "field {key}: {got}");
        }
    }
}

/// A KYC configuration and a session of it with its token and workflow ids.
async fn kyc_session(api: &Api, config: &str, user: &str) -> (Value, String, Vec<String>) {
    let (status, _, _) = api
        .partner("GET", &format!("/session-configurations/{config}"), None)
        .await;
    if status == 404 {
        api.kyc_configuration(config).await;
    }
    let session = api.session_of(config, user).await;
    let token = str_of(&session, "accessToken").to_owned();
    let workflows = workflow_ids(&session);
    (session, token, workflows)
}

/// Brings a fresh KYC session to `pending_review` on its proof of address.
async fn pending_review_session(api: &Api, config: &str) -> (String, String, Vec<String>) {
    let (id_name, poa_name) = near_match();
    let (session, token, wf) = kyc_session(api, config, "usr_review").await;
    api.submit_ok(&token, &wf[0], api.id_document(id_name)).await;
    let view = api.submit_ok(&token, &wf[1], api.proof_of_address(poa_name)).await;
    assert_eq!(view["status"], "pending_review", "{view}");
    (str_of(&session, "id").to_owned(), token, wf)
}

// ------------------------------------------------------------ configurations

#[tokio::test]
async fn the_product_pages_kyb_configuration_is_created_and_read_back_as_written() {
    let api = Api::new().await;
    let sent = kyb_standard();
    let (status, created, headers) = api.partner("POST", "/session-configurations", Some(sent.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        headers.get("location").and_then(|l| l.to_str().ok()),
        Some("/api/v1/session-configurations/kyb-standard")
    );
    assert_echoes(&sent, &created);
    assert!(
        created.get("workflowSlugs").is_none_or(Value::is_null),
        "written with bindings: {created}"
    );
    let now = api.clock.now();
    assert_eq!(time(&created["createdAt"]), now);
    assert_eq!(time(&created["updatedAt"]), now);

    let read = api.get("/session-configurations/kyb-standard").await;
    assert_echoes(&sent, &read);
    assert_eq!(read, created, "a read returns what the create answered");
}

#[tokio::test]
async fn defaults_are_filled_in_as_the_product_page_says() {
    let api = Api::new().await;
    let created = api.kyc_configuration("kyc-standard").await;
    assert_eq!(created["workflowSlugs"], json!(["id-document", "proof-of-address"]));
    assert_eq!(created["subjectKind"], "individual");
    assert_eq!(created["isVerification"], true);
    assert_eq!(created["autoResolve"], true);
    assert_eq!(created["finalManualReviewRequired"], false);
    assert_eq!(created["defaultExpiresInMinutes"], 1440);
    assert!(created["defaultRedirectUrl"].is_null());
}

#[tokio::test]
async fn configurations_are_listed_fetched_patched_and_deleted() {
    let api = Api::new().await;
    assert_eq!(api.count("/session-configurations").await, 0);
    let created = api.kyc_configuration("kyc-standard").await;
    api.create_configuration(kyb_standard()).await;

    let list = api.get("/session-configurations").await;
    let slugs: HashSet<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "slug"))
        .collect();
    assert_eq!(slugs, HashSet::from(["kyc-standard", "kyb-standard"]));
    assert_eq!(api.get("/session-configurations/kyc-standard").await, created);

    // A session made before the change keeps the old default.
    let before = api.session_of("kyc-standard", "usr_before").await;

    api.clock.advance(1);
    let patched = api
        .expect(
            200,
            "PATCH",
            "/session-configurations/kyc-standard",
            Some(json!({"defaultExpiresInMinutes": 2880})),
        )
        .await;
    assert_eq!(patched["defaultExpiresInMinutes"], 2880);
    assert_eq!(patched["name"], created["name"]);
    assert_eq!(patched["workflowSlugs"], created["workflowSlugs"]);
    assert_eq!(patched["createdAt"], created["createdAt"]);
    assert!(time(&patched["updatedAt"]) > time(&created["updatedAt"]), "{patched}");
    assert_eq!(api.get("/session-configurations/kyc-standard").await, patched);

    let after = api.session_of("kyc-standard", "usr_after").await;
    assert_eq!(
        time(&after["expiresAt"]),
        api.clock.now() + chrono::Duration::minutes(2880)
    );

    let (status, body, _) = api
        .partner("DELETE", "/session-configurations/kyc-standard", None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(body.is_null());
    let gone = api.partner("GET", "/session-configurations/kyc-standard", None).await;
    assert_problem(&gone, 404, "not_found");
    assert_eq!(api.count("/session-configurations").await, 1);

    // Sessions already created keep working.
    let token = str_of(&before, "accessToken");
    let wf = workflow_ids(&before);
    let view = api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;
    assert_eq!(view["status"], "in_progress");
    assert_eq!(
        api.session(str_of(&before, "id")).await["workflows"][0]["status"],
        "completed"
    );
}

// ----------------------------------------------------------------- workflows

#[tokio::test]
async fn builtin_workflows_are_listed_and_fetched() {
    let api = Api::new().await;
    let list = api.get("/workflows").await;
    let slugs: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| str_of(w, "slug"))
        .collect();
    for builtin in ["id-document", "proof-of-address", "pep-check", "sanctions-check"] {
        assert!(slugs.contains(&builtin), "{builtin} missing from {slugs:?}");
    }
    let id = api.get("/workflows/id-document").await;
    assert_eq!(id["source"], "builtin");
    let steps: Vec<&str> = id["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_of(s, "type"))
        .collect();
    assert_eq!(steps, ["capture", "validate", "output"]);
    let fields: Vec<&str> = id["steps"][0]["config"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| str_of(f, "name"))
        .collect();
    assert!(
        fields.contains(&"fullName") && fields.contains(&"dateOfBirth"),
        "{fields:?}"
    );

    let pep = api.get("/workflows/pep-check").await;
    assert_eq!(pep["steps"][0]["type"], "check");
    assert_eq!(pep["steps"][0]["config"]["kind"], "pep");
}

fn employment_workflow() -> Value {
    json!({
        "name": "Employment",
        "slug": "employment",
        "description": "Employer and income, checked by a person.",
        "maxAttempts": 2,
        "steps": [
            {"type": "capture", "config": {"fields": [
                {"name": "employer", "type": "text", "required": true, "label": "Employer"},
                {"name": "annualIncome", "type": "number", "required": true, "label": "Annual income"}
            ]}},
            {"type": "validate", "config": {"rules": [
                {"name": "income_positive", "expression": "data.annualIncome > 0", "onFailure": "retry",
                 "message": "The income must be positive."},
                {"name": "has_identity", "expression": "'id_document' in outputs", "onFailure": "fail",
                 "message": "An identity document must come first."}
            ]}},
            {"type": "review", "config": {"reason": "Check the employer"}},
            {"type": "output", "config": {"fields": {
                "employer": "data.employer",
                "income": "data.annualIncome",
                "holder": "participantOutputs[\"id-document\"].fullName"
            }}}
        ]
    })
}

#[tokio::test]
async fn a_custom_workflow_with_a_rule_a_review_and_an_output_runs_in_a_session() {
    let api = Api::new().await;
    let (status, created, headers) = api.partner("POST", "/workflows", Some(employment_workflow())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        headers.get("location").and_then(|l| l.to_str().ok()),
        Some("/api/v1/workflows/employment")
    );
    assert_eq!(created["source"], "organization");
    assert_eq!(created["steps"], employment_workflow()["steps"]);
    assert_eq!(api.get("/workflows/employment").await, created);
    let listed = api.get("/workflows").await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["slug"] == "employment")
    );
    // The other organisation does not see it.
    let theirs = api.partner_as(&api.other, "GET", "/workflows/employment", None).await;
    assert_problem(&theirs, 404, "not_found");

    api.simple_configuration("employment-check", &["id-document", "employment"], json!({}))
        .await;
    let session = api.session_of("employment-check", "usr_emp").await;
    let (id, token, wf) = (
        str_of(&session, "id"),
        str_of(&session, "accessToken"),
        workflow_ids(&session),
    );
    api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;

    let view = api.access(token).await;
    assert_eq!(view["currentStep"]["id"], wf[1].as_str());
    let names: Vec<&str> = view["currentStep"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| str_of(f, "name"))
        .collect();
    assert_eq!(names, ["employer", "annualIncome"]);

    // The CEL rule asks for another attempt.
    let retry = api
        .submit_ok(token, &wf[1], json!({"employer": "Initech", "annualIncome": -5}))
        .await;
    assert_eq!(
        retry["currentStep"]["messages"],
        json!(["The income must be positive."])
    );
    assert_eq!(retry["currentStep"]["attemptsRemaining"], 1);

    let paused = api
        .submit_ok(token, &wf[1], json!({"employer": "Initech", "annualIncome": 52000}))
        .await;
    assert_eq!(paused["status"], "pending_review", "{paused}");
    let detail = api.session(id).await;
    assert_eq!(detail["workflows"][1]["status"], "pending_review");
    assert_eq!(detail["workflows"][1]["waitingFor"], "review");

    let reviewed = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/review", wf[1]),
            Some(json!({"decision": "approved", "reason": "Employer confirmed"})),
        )
        .await;
    assert_eq!(reviewed["status"], "completed", "{reviewed}");
    assert_eq!(reviewed["resolution"], "approved");
    assert_eq!(
        reviewed["workflows"][1]["output"],
        json!({"employer": "Initech", "income": 52000, "holder": "Jane Doe"})
    );
    assert_eq!(reviewed["workflows"][1]["review"]["decision"], "approved");

    // A definition in use cannot be deleted.
    let in_use = api.partner("DELETE", "/workflows/employment", None).await;
    assert_problem(&in_use, 409, "workflow_in_use");
}

#[tokio::test]
async fn a_builtin_can_be_overridden_with_put_and_restored_but_not_deleted() {
    let api = Api::new().await;
    let builtin = api.get("/workflows/id-document").await;
    let mut stricter = json!({
        "name": "Identity document (strict)",
        "description": builtin["description"],
        "maxAttempts": 1,
        "steps": builtin["steps"],
    });
    let (status, overridden, _) = api
        .partner("PUT", "/workflows/id-document", Some(stricter.clone()))
        .await;
    assert_eq!(status, 200, "{overridden}");
    assert_eq!(overridden["source"], "organization");
    assert_eq!(overridden["maxAttempts"], 1);
    assert_eq!(overridden["version"], 1);
    assert_eq!(
        api.get("/workflows/id-document").await["name"],
        "Identity document (strict)"
    );
    let list = api.get("/workflows").await;
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["slug"] == "id-document")
        .collect();
    assert_eq!(ids.len(), 1, "one definition per slug: {ids:?}");
    assert_eq!(ids[0]["source"], "organization");
    // Other organisations keep the built-in.
    let theirs = api.partner_as(&api.other, "GET", "/workflows/id-document", None).await;
    assert_eq!(theirs.1["source"], "builtin");

    // A second PUT replaces the override.
    merge(&mut stricter, json!({"maxAttempts": 2}));
    let again = api.expect(200, "PUT", "/workflows/id-document", Some(stricter)).await;
    assert_eq!(again["version"], 2);

    // Sessions use the override.
    api.kyc_configuration("kyc").await;
    let session = api.session_of("kyc", "usr_1").await;
    assert_eq!(session["workflows"][0]["maxAttempts"], 2);

    let (status, _, _) = api.partner("DELETE", "/workflows/id-document", None).await;
    assert_eq!(status, 204);
    let restored = api.get("/workflows/id-document").await;
    assert_eq!(restored, builtin, "deleting the override brings the built-in back");
    let refused = api.partner("DELETE", "/workflows/id-document", None).await;
    assert_problem(&refused, 409, "builtin_workflow");
    assert_eq!(api.get("/workflows/id-document").await, builtin);
}

// ------------------------------------------------------------------ sessions

#[tokio::test]
async fn a_kyc_session_is_created_with_the_configurations_defaults_or_overrides() {
    let api = Api::new().await;
    api.simple_configuration(
        "kyc-standard",
        &["id-document", "proof-of-address"],
        json!({"defaultRedirectUrl": "https://yourapp.com/verification/complete"}),
    )
    .await;
    let (status, session, headers) = api
        .partner(
            "POST",
            "/sessions",
            Some(json!({
                "configurationSlug": "kyc-standard",
                "externalUserId": "usr_abc123",
                "context": {"channel": "web", "nested": {"a": [1, 2]}},
                "metadata": {"applicationId": "app_001"},
            })),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let id = str_of(&session, "id");
    assert!(id.starts_with("ses_"), "{id}");
    assert_eq!(
        headers.get("location").and_then(|l| l.to_str().ok()),
        Some(format!("/api/v1/sessions/{id}").as_str())
    );
    assert!(str_of(&session, "accessToken").starts_with("at_"));
    assert_eq!(session["sandbox"], true, "created with an ak_test_ key");
    assert_eq!(session["status"], "created");
    assert!(session["resolution"].is_null());
    assert_eq!(session["configurationSlug"], "kyc-standard");
    assert_eq!(session["externalUserId"], "usr_abc123");
    assert_eq!(
        time(&session["expiresAt"]),
        api.clock.now() + chrono::Duration::minutes(1440)
    );
    assert_eq!(session["redirectUrl"], "https://yourapp.com/verification/complete");
    assert_eq!(session["context"], json!({"channel": "web", "nested": {"a": [1, 2]}}));
    assert_eq!(session["metadata"], json!({"applicationId": "app_001"}));
    assert_eq!(session["version"], 1);
    let participants = session["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 1, "an anonymous subject: {participants:?}");
    assert_eq!(participants[0]["role"], "subject");
    assert!(str_of(&participants[0], "id").starts_with("par_"));
    let workflows = session["workflows"].as_array().unwrap();
    assert_eq!(workflows.len(), 2);
    for (w, slug) in workflows.iter().zip(["id-document", "proof-of-address"]) {
        assert!(str_of(w, "id").starts_with("swf_"));
        assert_eq!(w["workflowSlug"], slug);
        assert_eq!(w["status"], "pending");
        assert_eq!(w["attempts"], 0);
        assert_eq!(w["participantId"], participants[0]["id"]);
    }
    assert_eq!(api.session(id).await, session, "the detail reads back as created");

    // Overrides of the defaults, and a live key: live mode is another world,
    // so it needs its configuration of its own (under the same slug).
    let (status, _, _) = api
        .partner_as(
            &api.live.clone(),
            "POST",
            "/session-configurations",
            Some(json!({
                "name": "KYC live",
                "slug": "kyc-standard",
                "workflowSlugs": ["id-document", "proof-of-address"],
                "defaultRedirectUrl": "https://yourapp.com/verification/complete",
            })),
        )
        .await;
    assert_eq!(status, 201);
    let (status, live, _) = api
        .partner_as(
            &api.live.clone(),
            "POST",
            "/sessions",
            Some(json!({
                "configurationSlug": "kyc-standard",
                "externalUserId": "usr_live",
                "expiresInMinutes": 720,
                "redirectUrl": "https://yourapp.com/custom-redirect",
            })),
        )
        .await;
    assert_eq!(status, 201, "{live}");
    assert_eq!(live["sandbox"], false, "created with an ak_live_ key");
    assert_eq!(live["redirectUrl"], "https://yourapp.com/custom-redirect");
    assert_eq!(
        time(&live["expiresAt"]),
        api.clock.now() + chrono::Duration::minutes(720)
    );
    assert_ne!(live["accessToken"], session["accessToken"]);
}

#[tokio::test]
async fn an_end_user_completes_a_kyc_session_and_it_is_approved_automatically() {
    let api = Api::new().await;
    api.simple_configuration(
        "kyc-standard",
        &["id-document", "proof-of-address"],
        json!({"defaultRedirectUrl": "https://yourapp.com/done"}),
    )
    .await;
    let (session, token, wf) = kyc_session(&api, "kyc-standard", "usr_1").await;
    let id = str_of(&session, "id");

    let view = api.access(&token).await;
    assert_eq!(view["status"], "created");
    assert_eq!(view["redirectUrl"], "https://yourapp.com/done");
    let steps = view["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["id"], wf[0].as_str());
    assert_eq!(steps[0]["workflowSlug"], "id-document");
    assert_eq!(steps[0]["current"], true);
    assert_eq!(steps[1]["current"], false);
    assert!(
        view.get("accessToken").is_none() && view.get("metadata").is_none(),
        "nothing of the partner's: {view}"
    );

    let (status, started, _) = api.end_user("POST", &format!("/access/{token}/start"), None).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    let current = &started["currentStep"];
    assert_eq!(current["id"], wf[0].as_str());
    assert_eq!(current["waitingFor"], "input");
    assert_eq!(current["attemptsRemaining"], 3);
    let fields = current["fields"].as_array().unwrap();
    let full_name = fields
        .iter()
        .find(|f| f["name"] == "fullName")
        .expect("a fullName field");
    assert_eq!(full_name["type"], "text");
    assert_eq!(full_name["required"], true);
    assert!(full_name["label"].is_string());
    assert_eq!(api.access(&token).await, started, "GET shows what start answered");

    // Starting again changes nothing.
    let version = api.session(id).await["version"].clone();
    let (status, again, _) = api.end_user("POST", &format!("/access/{token}/start"), None).await;
    assert_eq!(status, 200);
    assert_eq!(again, started);
    assert_eq!(api.session(id).await["version"], version);
    assert_eq!(occurrences(&api.events(id).await, "session_started"), 1);

    let after_id = api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    assert_eq!(after_id["status"], "in_progress");
    assert_eq!(after_id["steps"][0]["status"], "completed");
    assert_eq!(after_id["currentStep"]["id"], wf[1].as_str());
    assert_eq!(after_id["currentStep"]["workflowSlug"], "proof-of-address");
    assert!(!after_id["currentStep"]["fields"].as_array().unwrap().is_empty());

    let done = api.submit_ok(&token, &wf[1], api.proof_of_address("JANE DOE")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["currentStep"].is_null(), "{done}");
    assert_eq!(done["redirectUrl"], "https://yourapp.com/done");

    let detail = api.session(id).await;
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["resolution"], "approved");
    assert_eq!(detail["resolvedBy"], "auto");
    assert!(detail["resolvedAt"].is_string() && detail["completedAt"].is_string());
    assert_eq!(detail["workflows"][0]["output"]["fullName"], "Jane Doe");
    assert_eq!(detail["workflows"][0]["output"]["issuingCountry"], "GB", "normalised");
    assert_eq!(detail["workflows"][1]["output"]["fullName"], "JANE DOE");
    assert_eq!(detail["workflows"][1]["validation"]["outcome"], "passed");
    let rules = detail["workflows"][1]["validation"]["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| r["passed"] == true), "{rules:?}");
    assert!(rules.iter().any(|r| r["name"] == "name_matches_identity_document"));

    // The closed session still shows its final state to the end user.
    let closed = api.access(&token).await;
    assert_eq!(closed["status"], "completed");
    assert_eq!(closed["redirectUrl"], "https://yourapp.com/done");
}

#[tokio::test]
async fn a_clearly_different_name_asks_the_end_user_to_try_again() {
    let api = Api::new().await;
    assert!(similarity("Jane Doe", "Maria Garcia") < NAME_MISMATCH);
    let (session, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let id = str_of(&session, "id");
    let view = api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    assert_eq!(view["currentStep"]["attemptsRemaining"], 3);
    assert_eq!(view["currentStep"]["messages"], json!([]));

    let retry = api
        .submit_ok(&token, &wf[1], api.proof_of_address("Maria Garcia"))
        .await;
    assert_eq!(retry["status"], "in_progress", "{retry}");
    let current = &retry["currentStep"];
    assert_eq!(current["id"], wf[1].as_str());
    assert_eq!(current["waitingFor"], "input");
    assert_eq!(current["attemptsRemaining"], 2);
    assert_eq!(
        current["messages"],
        json!(["The name on the document does not match the name on the identity document."])
    );
    assert!(!current["fields"].as_array().unwrap().is_empty());
    let detail = api.session(id).await;
    assert_eq!(detail["workflows"][1]["attempts"], 1);
    assert_eq!(detail["workflows"][1]["validation"]["outcome"], "retry");

    let again = api
        .submit_ok(&token, &wf[1], api.proof_of_address("Maria Garcia"))
        .await;
    assert_eq!(again["currentStep"]["attemptsRemaining"], 1);

    let fixed = api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;
    assert_eq!(fixed["status"], "completed", "{fixed}");
    let detail = api.session(id).await;
    assert_eq!(detail["workflows"][1]["attempts"], 3);
    assert_eq!(detail["resolution"], "approved");
    let events = api.events(id).await;
    assert_eq!(occurrences(&events, "session_workflow_retry_requested"), 2);
}

#[tokio::test]
async fn the_last_failed_attempt_fails_the_session_and_rejects_it() {
    let api = Api::new().await;
    let (session, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let id = str_of(&session, "id");
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    for _ in 0..3 {
        api.submit_ok(&token, &wf[1], api.proof_of_address("Maria Garcia"))
            .await;
    }
    let detail = api.session(id).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["resolution"], "rejected");
    assert_eq!(detail["resolvedBy"], "auto");
    assert_eq!(detail["workflows"][1]["status"], "failed");
    assert!(detail["workflows"][1]["failureReason"].is_string());
    let closed = api.access(&token).await;
    assert_eq!(closed["status"], "failed");
    assert!(closed["currentStep"].is_null());
}

#[tokio::test]
async fn a_near_match_name_goes_to_review_and_approval_completes_the_session() {
    let api = Api::new().await;
    let (id, token, wf) = pending_review_session(&api, "kyc").await;
    let detail = api.session(&id).await;
    assert_eq!(detail["status"], "pending_review");
    assert!(detail["resolution"].is_null());
    let poa = &detail["workflows"][1];
    assert_eq!(poa["status"], "pending_review");
    assert_eq!(poa["waitingFor"], "review");
    assert_eq!(poa["validation"]["outcome"], "review");
    let failed: Vec<&str> = poa["validation"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| str_of(r, "name"))
        .collect();
    assert_eq!(failed, ["name_matches_identity_document"]);
    let view = api.access(&token).await;
    assert_eq!(view["status"], "pending_review");
    assert_eq!(view["currentStep"]["waitingFor"], "review");
    assert_eq!(view["currentStep"]["fields"], json!([]));

    let reviewed = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/review", wf[1]),
            Some(json!({"decision": "approved", "reason": "Same person, married name"})),
        )
        .await;
    assert_eq!(reviewed["status"], "completed", "{reviewed}");
    assert_eq!(reviewed["resolution"], "approved");
    assert_eq!(reviewed["resolvedBy"], "auto");
    assert_eq!(reviewed["workflows"][1]["status"], "completed");
    assert_eq!(reviewed["workflows"][1]["review"]["decision"], "approved");
    assert_eq!(
        reviewed["workflows"][1]["review"]["reason"],
        "Same person, married name"
    );
    assert_eq!(api.session(&id).await, reviewed);
    let events = api.events(&id).await;
    let reviewed_event = events
        .iter()
        .find(|e| e["type"] == "session_workflow_reviewed")
        .expect("a review event");
    assert_eq!(reviewed_event["actor"]["type"], "partner");
    assert_eq!(reviewed_event["actor"]["apiKeyId"], api.key.api_key_id.as_str());
}

#[tokio::test]
async fn a_rejected_review_fails_the_session_and_rejects_it() {
    let api = Api::new().await;
    let (id, token, wf) = pending_review_session(&api, "kyc").await;
    let reviewed = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/review", wf[1]),
            Some(json!({"decision": "rejected", "reason": "Different person"})),
        )
        .await;
    assert_eq!(reviewed["status"], "failed", "{reviewed}");
    assert_eq!(reviewed["resolution"], "rejected");
    assert_eq!(reviewed["resolvedBy"], "auto");
    assert_eq!(reviewed["workflows"][1]["status"], "failed");
    assert!(str_of(&reviewed["workflows"][1], "failureReason").contains("Different person"));
    assert_eq!(api.access(&token).await["status"], "failed");
    let types = event_types(&api.events(&id).await);
    let tail: Vec<&str> = types.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "session_workflow_reviewed",
            "session_workflow_failed",
            "session_failed",
            "session_resolved"
        ]
    );
}

#[tokio::test]
async fn resubmitting_the_first_workflow_after_completion_resets_both_and_reopens_the_session() {
    let api = Api::new().await;
    let (session, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let id = str_of(&session, "id");
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;
    assert_eq!(api.session(id).await["resolution"], "approved");

    let (status, reopened, _) = api
        .partner("POST", &format!("/sessions/{id}/workflows/{}/resubmit", wf[0]), None)
        .await;
    assert_eq!(status, 200, "{reopened}");
    assert_eq!(reopened["status"], "in_progress");
    assert!(reopened["resolution"].is_null() && reopened["resolvedBy"].is_null());
    assert!(reopened["completedAt"].is_null());
    let first = &reopened["workflows"][0];
    assert_eq!(first["status"], "in_progress");
    assert_eq!(first["waitingFor"], "input");
    assert_eq!(first["attempts"], 0);
    assert!(first["output"].is_null() && first["data"].is_null());
    let second = &reopened["workflows"][1];
    assert_eq!(second["status"], "pending");
    assert!(second["output"].is_null() && second["validation"].is_null());
    assert_eq!(workflow_ids(&reopened), wf, "the same workflow instances, reset");

    let events = api.events(id).await;
    let resubmitted = events
        .iter()
        .find(|e| e["type"] == "session_workflow_resubmitted")
        .expect("the event");
    assert_eq!(resubmitted["sessionWorkflowId"], wf[0].as_str());
    assert_eq!(resubmitted["reset"], json!(wf));

    // The end user goes through both again.
    let view = api.access(&token).await;
    assert_eq!(view["currentStep"]["id"], wf[0].as_str());
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    let done = api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(api.session(id).await["resolution"], "approved");

    // Resubmitting the second only resets the second.
    let second_only = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/resubmit", wf[1]),
            None,
        )
        .await;
    assert_eq!(second_only["workflows"][0]["status"], "completed");
    assert_eq!(second_only["workflows"][1]["status"], "in_progress");
}

#[tokio::test]
async fn a_partner_resolves_a_session_at_any_time() {
    let api = Api::new().await;
    let (session, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let id = str_of(&session, "id");
    let resolve = |resolution: &str, reason: &str| json!({"resolution": resolution, "reason": reason});

    // Before the end user even started.
    let early = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(resolve("rejected", "Known fraud")),
        )
        .await;
    assert_eq!(early["status"], "created");
    assert_eq!(early["resolution"], "rejected");
    assert_eq!(early["resolutionReason"], "Known fraud");
    assert_eq!(early["resolvedBy"], "partner");
    assert!(early["resolvedAt"].is_string());

    // After completion, overriding the automatic decision.
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;
    let completed = api.session(id).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["resolution"], "rejected",
        "a partner's resolution wins over automatic resolution"
    );
    assert_eq!(completed["resolvedBy"], "partner");

    let late = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(resolve("approved", "Manually verified after review")),
        )
        .await;
    assert_eq!(late["status"], "completed");
    assert_eq!(late["resolution"], "approved");
    assert_eq!(late["resolutionReason"], "Manually verified after review");
    assert_eq!(late["resolvedBy"], "partner");

    let events = api.events(id).await;
    let resolved: Vec<&Value> = events.iter().filter(|e| e["type"] == "session_resolved").collect();
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    assert!(resolved.iter().all(|e| e["resolvedBy"] == "partner"));
    assert_eq!(resolved[1]["decision"], "approved");
}

#[tokio::test]
async fn final_manual_review_waits_for_the_partners_resolution() {
    let api = Api::new().await;
    api.simple_configuration(
        "kyc-reviewed",
        &["id-document", "proof-of-address"],
        json!({"finalManualReviewRequired": true}),
    )
    .await;
    let (session, token, wf) = kyc_session(&api, "kyc-reviewed", "usr_1").await;
    let id = str_of(&session, "id");
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    let view = api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;
    assert_eq!(view["status"], "pending_review", "{view}");
    let waiting = api.session(id).await;
    assert_eq!(waiting["status"], "pending_review");
    assert!(waiting["resolution"].is_null());
    assert!(
        waiting["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["status"] == "completed")
    );

    let resolved = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(json!({"resolution": "approved", "reason": "Looks good"})),
        )
        .await;
    assert_eq!(resolved["status"], "completed", "{resolved}");
    assert_eq!(resolved["resolution"], "approved");
    assert_eq!(resolved["resolvedBy"], "partner");
    let types = event_types(&api.events(id).await);
    assert!(types.contains(&"session_pending_review".to_owned()), "{types:?}");
    let tail: Vec<&str> = types.iter().rev().take(2).rev().map(String::as_str).collect();
    assert_eq!(tail, ["session_resolved", "session_completed"]);
}

#[tokio::test]
async fn resolution_is_disabled_for_sessions_that_are_not_verifications() {
    let api = Api::new().await;
    api.simple_configuration("onboarding", &["id-document"], json!({"isVerification": false}))
        .await;
    let session = api.session_of("onboarding", "usr_1").await;
    let id = str_of(&session, "id");
    let (token, wf) = (str_of(&session, "accessToken"), workflow_ids(&session));
    let refused = api
        .partner(
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(json!({"resolution": "approved", "reason": "ok"})),
        )
        .await;
    assert_problem(&refused, 409, "resolution_disabled");

    let done = api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;
    assert_eq!(done["status"], "completed");
    let detail = api.session(id).await;
    assert!(
        detail["resolution"].is_null(),
        "no resolution without verification: {detail}"
    );
    assert_eq!(occurrences(&api.events(id).await, "session_resolved"), 0);
    let refused = api
        .partner(
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(json!({"resolution": "rejected", "reason": "no"})),
        )
        .await;
    assert_problem(&refused, 409, "resolution_disabled");
    assert_eq!(api.session(id).await, detail);
}

// ------------------------------------------------------------------- listing

#[tokio::test]
async fn sessions_are_listed_newest_first_with_every_filter() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let mut created = Vec::new();
    for user in ["usr_a", "usr_b", "usr_a", "usr_c", "usr_a"] {
        created.push(api.session_of("kyc", user).await);
        api.clock.advance_seconds(1);
    }
    let ids: Vec<&str> = created.iter().map(|s| str_of(s, "id")).collect();
    // Complete the second usr_a session.
    let (token, wf) = (str_of(&created[2], "accessToken"), workflow_ids(&created[2]));
    api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;
    api.submit_ok(token, &wf[1], api.proof_of_address("Jane Doe")).await;

    let all = api.get("/sessions").await;
    let listed: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_of(s, "id"))
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().copied().collect();
    assert_eq!(listed, newest_first);
    assert_eq!(all["page"], 1);
    assert_eq!(all["limit"], 10);
    assert_eq!(all["hasMore"], false);
    assert!(all["nextCursor"].is_null());
    let summary = &all["data"][2];
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["resolution"], "approved");
    assert_eq!(summary["workflowsTotal"], 2);
    assert_eq!(summary["workflowsCompleted"], 2);

    let by_user = api.get("/sessions?externalUserId=usr_a").await;
    let users: Vec<&str> = by_user["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_of(s, "id"))
        .collect();
    assert_eq!(users, [ids[4], ids[2], ids[0]]);

    let completed = api.get("/sessions?status=completed").await;
    assert_eq!(completed["data"].as_array().unwrap().len(), 1);
    assert_eq!(completed["data"][0]["id"], ids[2]);
    let both = api.get("/sessions?externalUserId=usr_a&status=created").await;
    let both: Vec<&str> = both["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_of(s, "id"))
        .collect();
    assert_eq!(both, [ids[4], ids[0]]);
    assert_eq!(api.count("/sessions?status=expired").await, 0);
    assert_eq!(api.count("/sessions?externalUserId=nobody").await, 0);

    let first = api.get("/sessions?page=1&limit=2").await;
    assert_eq!(first["page"], 1);
    assert_eq!(first["limit"], 2);
    assert_eq!(first["hasMore"], true);
    assert!(first["nextCursor"].is_string());
    let second = api.get("/sessions?page=2&limit=2").await;
    let third = api.get("/sessions?page=3&limit=2").await;
    assert_eq!(second["hasMore"], true);
    assert_eq!(third["hasMore"], false);
    assert!(third["nextCursor"].is_null());
    let paged: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().iter().map(|s| str_of(s, "id")))
        .collect();
    assert_eq!(paged, newest_first);
    assert_eq!(api.count("/sessions?page=4&limit=2").await, 0);

    // The other organisation sees none of them.
    let (_, theirs, _) = api.partner_as(&api.other.clone(), "GET", "/sessions", None).await;
    assert_eq!(theirs["data"], json!([]));
}

#[tokio::test]
async fn cursor_paging_visits_every_session_exactly_once() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(str_of(&api.session_of("kyc", &format!("usr_{}", i % 2)).await, "id").to_owned());
    }
    for filter in ["", "&externalUserId=usr_0"] {
        let mut seen = Vec::new();
        let mut path = format!("/sessions?limit=2{filter}");
        let mut pages = 0;
        loop {
            let page = api.get(&path).await;
            pages += 1;
            assert!(page["page"].is_null() || pages == 1, "{page}");
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            seen.extend(data.iter().map(|s| str_of(s, "id").to_owned()));
            match (page["hasMore"].as_bool(), page["nextCursor"].as_str()) {
                (Some(true), Some(cursor)) => path = format!("/sessions?limit=2{filter}&cursor={cursor}"),
                (Some(false), None) => break,
                other => panic!("hasMore and nextCursor disagree: {other:?} in {page}"),
            }
            assert!(pages < 10, "paging does not end");
        }
        let expected: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| filter.is_empty() || i % 2 == 0)
            .map(|(_, id)| id.clone())
            .rev()
            .collect();
        assert_eq!(seen, expected, "filter {filter:?}");
    }
}

// ------------------------------------------------------------------- history

#[tokio::test]
async fn the_history_is_oldest_first_with_the_webhook_events_where_expected() {
    let api = Api::new().await;
    let (session, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let id = str_of(&session, "id");
    api.end_user("POST", &format!("/access/{token}/start"), None).await;
    api.clock.advance(1);
    api.submit_ok(&token, &wf[0], api.id_document("Jane Doe")).await;
    api.clock.advance(1);
    api.submit_ok(&token, &wf[1], api.proof_of_address("Jane Doe")).await;

    let events = api.events(id).await;
    assert_eq!(
        event_types(&events),
        [
            "session_created",
            "session_started",
            "session_workflow_started",
            "session_workflow_submitted",
            "session_workflow_validated",
            "session_workflow_completed",
            "session_workflow_started",
            "session_workflow_submitted",
            "session_workflow_validated",
            "session_workflow_completed",
            "session_completed",
            "session_resolved",
        ]
    );
    let mut last = (0, 0);
    let mut last_time = time(&events[0]["occurredAt"]);
    for event in &events {
        assert!(str_of(event, "id").starts_with("evt_"));
        assert_eq!(event["sessionId"], id);
        assert_eq!(event["externalUserId"], "usr_1");
        assert_eq!(event["sandbox"], true);
        assert!(event.get("orgId").is_none(), "{event}");
        let at = (event["version"].as_u64().unwrap(), event["sequence"].as_u64().unwrap());
        assert!(at > last, "oldest first: {at:?} after {last:?}");
        last = at;
        assert!(time(&event["occurredAt"]) >= last_time);
        last_time = time(&event["occurredAt"]);
    }
    assert_eq!(events[0]["actor"]["type"], "partner");
    assert_eq!(events[1]["actor"]["type"], "end_user");
    assert_eq!(events[5]["sessionWorkflowId"], wf[0].as_str());
    assert_eq!(events[9]["sessionWorkflowId"], wf[1].as_str());
    assert_eq!(events[10]["status"], "completed");
    assert_eq!(events[11]["decision"], "approved");
    assert_eq!(events[11]["resolvedBy"], "auto");
    assert_eq!(events[11]["actor"]["type"], "system");
    assert_eq!(events.last().unwrap()["version"], api.session(id).await["version"]);

    // A failed session: the failure events.
    let (failed_id, _, fwf) = pending_review_session(&api, "kyc").await;
    api.expect(
        200,
        "POST",
        &format!("/sessions/{failed_id}/workflows/{}/review", fwf[1]),
        Some(json!({"decision": "rejected", "reason": "no"})),
    )
    .await;
    let failed = api.events(&failed_id).await;
    for kind in ["session_workflow_failed", "session_failed", "session_resolved"] {
        assert_eq!(occurrences(&failed, kind), 1, "{kind}");
    }
    let failure = failed.iter().find(|e| e["type"] == "session_workflow_failed").unwrap();
    assert_eq!(failure["sessionWorkflowId"], fwf[1].as_str());

    // An expired session: the expiry event.
    let (expiring, _, _) = kyc_session(&api, "kyc", "usr_2").await;
    let expiring = str_of(&expiring, "id");
    api.clock.advance(24 * 60 + 1);
    let expired = api.events(expiring).await;
    assert_eq!(event_types(&expired), ["session_created", "session_expired"]);
    assert_eq!(expired[1]["actor"]["type"], "system");

    let mut seen: HashSet<String> = HashSet::new();
    for history in [&events, &failed, &expired] {
        seen.extend(
            event_types(history)
                .into_iter()
                .filter(|t| WEBHOOK_EVENTS.contains(&t.as_str())),
        );
    }
    assert_eq!(seen.len(), WEBHOOK_EVENTS.len(), "{seen:?}");
}

// ----------------------------------------------------------------------- KYB

#[tokio::test]
async fn the_kyb_session_runs_each_workflow_for_its_participant_and_waits_for_the_pep_check() {
    let api = Api::new().await;
    api.create_configuration(kyb_standard()).await;
    let sent = kyb_session();
    let session = api.create_session(sent.clone()).await;
    let id = str_of(&session, "id");
    assert_eq!(session["subjectKind"], "business");
    assert_eq!(session["context"], sent["context"]);
    assert_eq!(session["metadata"], sent["metadata"]);
    assert_eq!(session["redirectUrl"], "https://yourapp.com/custom-redirect");
    assert_eq!(
        time(&session["expiresAt"]),
        api.clock.now() + chrono::Duration::minutes(720)
    );

    let participants = session["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 3);
    let by_name = |name: &str| {
        participants
            .iter()
            .find(|p| p["displayName"] == name)
            .expect(name)
            .clone()
    };
    let (acme, jane, john) = (by_name("Acme Corp"), by_name("Jane Smith"), by_name("John Smith"));
    assert_eq!(acme["role"], "subject");
    assert_eq!(jane["role"], "beneficial_owner");
    assert_eq!(john["role"], "representative");

    let workflows = session["workflows"].as_array().unwrap();
    let plan: Vec<(&str, &str, &Value)> = workflows
        .iter()
        .map(|w| (str_of(w, "workflowSlug"), str_of(w, "outputKey"), &w["participantId"]))
        .collect();
    assert_eq!(
        plan,
        [
            ("id-document", "representative_id", &john["id"]),
            ("proof-of-address", "representative_poa", &john["id"]),
            ("pep-check", "ubo_pep_check", &jane["id"]),
        ]
    );
    let wf = workflow_ids(&session);
    let token = str_of(&session, "accessToken");

    let view = api.access(token).await;
    assert_eq!(
        view["steps"][0]["participant"],
        json!({"role": "representative", "displayName": "John Smith"})
    );
    assert_eq!(
        view["steps"][2]["participant"],
        json!({"role": "beneficial_owner", "displayName": "Jane Smith"})
    );

    api.submit_ok(token, &wf[0], api.id_document("John Smith")).await;
    let view = api.submit_ok(token, &wf[1], api.proof_of_address("John Smith")).await;
    assert_eq!(view["status"], "in_progress", "{view}");
    assert_eq!(view["currentStep"]["id"], wf[2].as_str());
    assert_eq!(view["currentStep"]["waitingFor"], "check");
    assert_eq!(view["currentStep"]["fields"], json!([]));

    let detail = api.session(id).await;
    assert_eq!(detail["status"], "in_progress");
    assert!(detail["resolution"].is_null());
    assert_eq!(detail["workflows"][0]["status"], "completed");
    assert_eq!(detail["workflows"][1]["status"], "completed");
    assert_eq!(detail["workflows"][1]["validation"]["outcome"], "passed");
    let pep = &detail["workflows"][2];
    assert_eq!(pep["status"], "in_progress");
    assert_eq!(pep["waitingFor"], "check");
    assert_eq!(pep["current"], true);
    let checks = detail["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(str_of(&checks[0], "id").starts_with("chk_"));
    assert_eq!(checks[0]["kind"], "pep");
    assert_eq!(checks[0]["status"], "pending");
    assert_eq!(checks[0]["sessionWorkflowId"], wf[2].as_str());
    assert_eq!(checks[0]["participantId"], jane["id"]);
    let events = api.events(id).await;
    assert_eq!(occurrences(&events, "session_check_requested"), 1);

    // The end user has nothing to submit for a check.
    let refused = api.submit(token, &wf[2], json!({})).await;
    assert_problem(&refused, 409, "workflow_not_current");
}

// -------------------------------------------------------------------- expiry

#[tokio::test]
async fn an_overdue_session_expires_once_and_refuses_submissions() {
    let api = Api::new().await;
    api.simple_configuration(
        "kyc",
        &["id-document", "proof-of-address"],
        json!({"defaultRedirectUrl": "https://yourapp.com/done"}),
    )
    .await;
    let session = api
        .create_session(json!({"configurationSlug": "kyc", "externalUserId": "usr_1", "expiresInMinutes": 30}))
        .await;
    let (id, token, wf) = (
        str_of(&session, "id"),
        str_of(&session, "accessToken"),
        workflow_ids(&session),
    );
    api.submit_ok(token, &wf[0], api.id_document("Jane Doe")).await;

    api.clock.advance(29);
    assert_eq!(api.session(id).await["status"], "in_progress", "not yet due");
    api.clock.advance(2);
    let expired = api.session(id).await;
    assert_eq!(expired["status"], "expired");
    assert!(expired["completedAt"].is_string());
    for _ in 0..3 {
        assert_eq!(api.session(id).await["status"], "expired");
        api.events(id).await;
    }
    let view = api.access(token).await;
    assert_eq!(view["status"], "expired");
    assert_eq!(view["redirectUrl"], "https://yourapp.com/done");
    assert!(view["currentStep"].is_null());

    let refused = api.submit(token, &wf[1], api.proof_of_address("Jane Doe")).await;
    assert_problem(&refused, 409, "session_expired");
    let resubmit = api
        .partner("POST", &format!("/sessions/{id}/workflows/{}/resubmit", wf[0]), None)
        .await;
    assert_problem(&resubmit, 409, "session_expired");
    assert_eq!(api.get("/sessions?status=expired").await["data"][0]["id"], id);

    let events = api.events(id).await;
    assert_eq!(occurrences(&events, "session_expired"), 1, "{:?}", event_types(&events));
    assert_eq!(api.session(id).await["version"], events.last().unwrap()["version"]);
}

#[tokio::test]
async fn the_expiry_sweep_expires_due_sessions_once() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let short = api
        .create_session(json!({"configurationSlug": "kyc", "externalUserId": "u", "expiresInMinutes": 5}))
        .await;
    let long = api.session_of("kyc", "u").await;
    api.clock.advance(6);
    assert_eq!(
        functions::consumers::expiry::sweep(&api.app, 100)
            .await
            .expect("a sweep"),
        1
    );
    assert_eq!(
        functions::consumers::expiry::sweep(&api.app, 100)
            .await
            .expect("a sweep"),
        0
    );
    assert_eq!(api.session(str_of(&short, "id")).await["status"], "expired");
    assert_eq!(api.session(str_of(&long, "id")).await["status"], "created");
    assert_eq!(
        occurrences(&api.events(str_of(&short, "id")).await, "session_expired"),
        1
    );
}

#[tokio::test]
async fn a_session_waiting_for_the_partners_review_does_not_expire() {
    let api = Api::new().await;
    let (id, _, wf) = pending_review_session(&api, "kyc").await;
    api.clock.advance(3 * 24 * 60);
    assert_eq!(api.session(&id).await["status"], "pending_review");
    let reviewed = api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/review", wf[1]),
            Some(json!({"decision": "approved", "reason": "ok"})),
        )
        .await;
    assert_eq!(reviewed["status"], "completed");
}

// ------------------------------------------------------------------- modes

/// Test mode and live mode are two worlds of one organisation. Each of
/// these was seen with an `ak_test_` key on live data before they were
/// (issue 15): reading and resolving a live session, reshaping the next live
/// session's workflow, a sandbox session in the live listing, an
/// idempotency key answering across modes.
#[tokio::test]
async fn a_test_key_can_neither_reach_nor_shape_live_data() {
    let api = Api::new().await;
    let (test, live) = (api.key.clone(), api.live.clone());
    let kyc = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]});
    // The same slug in both worlds.
    for key in [&test, &live] {
        let (status, body, _) = api
            .partner_as(key, "POST", "/session-configurations", Some(kyc.clone()))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // A permissive override of the built-in, made with the test key.
    let permissive = json!({
        "name": "Anything goes",
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "fullName", "type": "text", "label": "Name"}]}},
            {"type": "output", "config": {}}
        ]
    });
    let (status, body, _) = api
        .partner_as(&test, "PUT", "/workflows/id-document", Some(permissive))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, builtin, _) = api.partner_as(&live, "GET", "/workflows/id-document", None).await;
    assert_eq!(builtin["source"], "builtin", "live mode keeps the built-in");

    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_shared"});
    let (status, live_session, _) = api.partner_as(&live, "POST", "/sessions", Some(body.clone())).await;
    assert_eq!(status, 201, "{live_session}");
    assert_eq!(live_session["sandbox"], false);
    let (status, test_session, _) = api.partner_as(&test, "POST", "/sessions", Some(body)).await;
    assert_eq!(status, 201, "{test_session}");
    assert_eq!(test_session["sandbox"], true);

    // The live session follows the built-in: a name alone is not a document.
    let token = str_of(&live_session, "accessToken");
    let steps = workflow_ids(&live_session);
    let refused = api.submit(token, &steps[0], json!({"fullName": "Anyone"})).await;
    assert_problem(&refused, 422, "validation_failed");
    // The test session follows the test mode's override.
    let accepted = api
        .submit(
            str_of(&test_session, "accessToken"),
            &workflow_ids(&test_session)[0],
            json!({"fullName": "Anyone"}),
        )
        .await;
    assert_eq!(accepted.0, 200, "{}", accepted.1);

    // A live session is not there for the test key: not to read, not to resolve.
    let live_id = str_of(&live_session, "id");
    let resolve = json!({"resolution": "approved", "reason": "looks fine"});
    for (method, path, body) in [
        ("GET", format!("/sessions/{live_id}"), None),
        ("GET", format!("/sessions/{live_id}/events"), None),
        ("POST", format!("/sessions/{live_id}/resolve"), Some(resolve)),
    ] {
        let reply = api.partner_as(&test, method, &path, body).await;
        assert_problem(&reply, 404, "not_found");
    }
    let (_, after, _) = api
        .partner_as(&live, "GET", &format!("/sessions/{live_id}"), None)
        .await;
    assert!(after["resolution"].is_null(), "{after}");

    // Each listing of the shared end user shows its own mode's session only.
    for (key, session) in [(&test, &test_session), (&live, &live_session)] {
        let (_, list, _) = api
            .partner_as(key, "GET", "/sessions?externalUserId=usr_shared", None)
            .await;
        let ids: Vec<&Value> = list["data"].as_array().unwrap().iter().map(|s| &s["id"]).collect();
        assert_eq!(ids, vec![&session["id"]]);
    }
    // An idempotency key of the test key is new to the live key.
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_keyed"});
    let mut answers = Vec::new();
    for key in [&test, &live] {
        let request = api
            .signed(key, "POST", "/sessions", Some(&body))
            .header("Idempotency-Key", "onboard-usr_keyed");
        let (status, session, headers) = api.send(request).await;
        assert_eq!(status, 201, "{session}");
        assert!(headers.get("idempotent-replayed").is_none());
        answers.push(session);
    }
    assert_ne!(answers[0]["id"], answers[1]["id"]);
    assert_eq!(
        (&answers[0]["sandbox"], &answers[1]["sandbox"]),
        (&json!(true), &json!(false))
    );

    // A cursor of one mode does not position the other's listing.
    let (_, page, _) = api.partner_as(&test, "GET", "/sessions?limit=1", None).await;
    assert_eq!(page["hasMore"], true, "{page}");
    let next = format!("/sessions?limit=1&cursor={}", str_of(&page, "nextCursor"));
    let (status, _, _) = api.partner_as(&test, "GET", &next, None).await;
    assert_eq!(status, 200);
    let reply = api.partner_as(&live, "GET", &next, None).await;
    assert_problem(&reply, 422, "validation_failed");
}

// --------------------------------------------------------------- idempotency

#[tokio::test]
async fn an_idempotency_key_replays_the_first_create_and_refuses_another_body() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_1", "metadata": {"attempt": 1}});
    // Each attempt signed anew, as a client retries: a signature is good once.
    let request = || {
        api.signed(&api.key, "POST", "/sessions", Some(&body))
            .header("Idempotency-Key", "create-usr_1")
    };
    let (status, first, headers) = api.send(request()).await;
    assert_eq!(status, 201, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());

    let (status, replay, headers) = api.send(request()).await;
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay, first, "the first response, byte for byte");
    assert_eq!(
        headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    // A retry signed later (a new timestamp) is the same request.
    api.clock.advance_seconds(30);
    let later = api
        .signed(&api.key, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "create-usr_1");
    let (status, again, _) = api.send(later).await;
    assert_eq!((status.as_u16(), &again["id"]), (201, &first["id"]));
    assert_eq!(api.all_sessions().await.len(), 1);

    let other_body = json!({"configurationSlug": "kyc", "externalUserId": "usr_2"});
    let reused = api
        .signed(&api.key, "POST", "/sessions", Some(&other_body))
        .header("Idempotency-Key", "create-usr_1");
    let reply = api.send(reused).await;
    assert_problem(&reply, 422, "idempotency_key_reused");
    assert_eq!(api.all_sessions().await.len(), 1);

    // Keys are the organisation's own.
    api.partner_as(
        &api.other.clone(),
        "POST",
        "/session-configurations",
        Some(json!({
            "name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"]
        })),
    )
    .await;
    let theirs = api
        .signed(&api.other, "POST", "/sessions", Some(&body))
        .header("Idempotency-Key", "create-usr_1");
    let (status, their_session, headers) = api.send(theirs).await;
    assert_eq!(status, 201, "{their_session}");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_ne!(their_session["id"], first["id"]);

    // A refused request leaves the key free for the corrected one.
    let bad = json!({"configurationSlug": "nope", "externalUserId": "usr_3"});
    let refused = api
        .send(
            api.signed(&api.key, "POST", "/sessions", Some(&bad))
                .header("Idempotency-Key", "k3"),
        )
        .await;
    assert_invalid_slug(&refused);
    let good = json!({"configurationSlug": "kyc", "externalUserId": "usr_3"});
    let (status, _, _) = api
        .send(
            api.signed(&api.key, "POST", "/sessions", Some(&good))
                .header("Idempotency-Key", "k3"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(api.all_sessions().await.len(), 2);
}

fn assert_invalid_slug(reply: &acceptance::api::Reply) {
    acceptance::api::assert_invalid(reply, "configurationSlug");
}

#[tokio::test]
async fn an_idempotency_key_replays_configuration_and_workflow_creation() {
    let api = Api::new().await;
    let config = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"]});
    // Each attempt signed anew, as a client retries: a signature is good once.
    let request = || {
        api.signed(&api.key, "POST", "/session-configurations", Some(&config))
            .header("Idempotency-Key", "c1")
    };
    let (s1, first, _) = api.send(request()).await;
    let (s2, second, headers) = api.send(request()).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (201, 201), "{second}");
    assert_eq!(first, second);
    assert_eq!(
        headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(api.count("/session-configurations").await, 1);

    let workflow = employment_workflow();
    // Each attempt signed anew, as a client retries: a signature is good once.
    let request = || {
        api.signed(&api.key, "POST", "/workflows", Some(&workflow))
            .header("Idempotency-Key", "w1")
    };
    let (s1, first, _) = api.send(request()).await;
    let (s2, second, _) = api.send(request()).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (201, 201), "{second}");
    assert_eq!(first, second);
}

/// Plain tokens must not be stored. The session keeps only a hash and a
/// sealed copy; the idempotency record must not undo that.
#[tokio::test]
async fn access_tokens_are_not_stored_in_plain_text_even_for_idempotent_creates() {
    let dir = acceptance::support::TempDir::new("api-token-at-rest");
    let path = dir.path().join("sessions.db");
    let store =
        std::sync::Arc::new(functions::adapters::store::sqlite::SqliteStore::open(&path).expect("a database file"));
    let api = Api::with_store(store).await;
    api.kyc_configuration("kyc").await;
    let plain = api.session_of("kyc", "usr_plain").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_keyed"});
    let (status, keyed, _) = api
        .send(
            api.signed(&api.key, "POST", "/sessions", Some(&body))
                .header("Idempotency-Key", "k"),
        )
        .await;
    assert_eq!(status, 201);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("the database directory") {
        stored.extend(std::fs::read(entry.expect("an entry").path()).unwrap_or_default());
    }
    let contains = |needle: &str| stored.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !contains(str_of(&plain, "accessToken")),
        "the session row holds the token in plain text"
    );
    assert!(
        !contains(str_of(&keyed, "accessToken")),
        "the idempotency record holds the token in plain text"
    );
}

// ---------------------------------------------------------------------- wire

#[tokio::test]
async fn the_local_server_serves_the_api_over_tcp() {
    let api = Api::new().await;
    let (addr, server) = api.spawn_server().await;

    let config = json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]});
    let response = wire(
        addr,
        api.signed(&api.key, "POST", "/session-configurations", Some(&config)),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.json());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json()["slug"], "kyc");

    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_tcp"});
    let response = wire(addr, api.signed(&api.key, "POST", "/sessions", Some(&body))).await;
    assert_eq!(response.status, 201, "{}", response.json());
    let session = response.json();
    let token = str_of(&session, "accessToken");

    let response = wire(
        addr,
        api.signed(&api.key, "GET", "/sessions?externalUserId=usr_tcp", None),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["data"][0]["id"], session["id"]);

    let view = wire(addr, Raw::new("GET", &format!("/api/v1/access/{token}"))).await;
    assert_eq!(view.status, 200);
    assert_eq!(view.json()["sessionId"], session["id"]);

    let unsigned = wire(addr, Raw::new("GET", "/api/v1/sessions")).await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.header("content-type"), Some("application/problem+json"));
    assert_eq!(unsigned.json()["code"], "unauthorized");
    let nowhere = wire(addr, Raw::new("GET", "/nowhere")).await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.json()["code"], "not_found");
    server.abort();
}

/// A replay is "the first response": its `Location` header included.
#[tokio::test]
async fn an_idempotent_replay_keeps_the_location_header() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_1"});
    // Each attempt signed anew, as a client retries: a signature is good once.
    let request = || {
        api.signed(&api.key, "POST", "/sessions", Some(&body))
            .header("Idempotency-Key", "loc")
    };
    let (_, _, first) = api.send(request()).await;
    let (_, _, replay) = api.send(request()).await;
    assert!(first.get("location").is_some());
    assert_eq!(replay.get("location"), first.get("location"));
}

/// api.md: GET /access/{token} shows "for the current step its `fields`";
/// the first step is current (and marked so) before the end user starts.
#[tokio::test]
async fn the_end_user_sees_the_first_steps_fields_before_starting() {
    let api = Api::new().await;
    let (_, token, wf) = kyc_session(&api, "kyc", "usr_1").await;
    let view = api.access(&token).await;
    assert_eq!(view["status"], "created");
    assert_eq!(view["currentStep"]["id"], wf[0].as_str());
    let fields = view["currentStep"]["fields"].as_array().expect("fields");
    assert!(fields.iter().any(|f| f["name"] == "fullName"), "{view}");
}

#[tokio::test]
async fn listing_refuses_bad_parameters_naming_them() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    for i in 0..3 {
        api.session_of("kyc", &format!("usr_{i}")).await;
    }
    // A cursor the other organisation got.
    let them = api.other.clone();
    api.partner_as(
        &them,
        "POST",
        "/session-configurations",
        Some(json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"]})),
    )
    .await;
    for i in 0..3 {
        let body = json!({"configurationSlug": "kyc", "externalUserId": format!("their_{i}")});
        assert_eq!(api.partner_as(&them, "POST", "/sessions", Some(body)).await.0, 201);
    }
    let (_, theirs, _) = api.partner_as(&them, "GET", "/sessions?limit=1", None).await;
    let foreign = str_of(&theirs, "nextCursor").to_owned();
    let ours = str_of(&api.get("/sessions?limit=1").await, "nextCursor").to_owned();
    assert_eq!(api.count(&format!("/sessions?limit=5&cursor={ours}")).await, 2);

    let cases = [
        ("limit=101", "limit"),
        ("limit=1000", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("status=bogus", "status"),
        ("status=Completed", "status"),
        ("externalUserId=", "externalUserId"),
        (&format!("cursor={foreign}") as &str, "cursor"),
        ("cursor=garbage", "cursor"),
        ("cursor=", "cursor"),
        (&format!("page=2&cursor={ours}") as &str, "cursor"),
        ("order=asc", "query"),
    ];
    let before = api.all_sessions().await;
    for (query, field) in cases {
        let reply = api.partner("GET", &format!("/sessions?{query}"), None).await;
        acceptance::api::assert_invalid(&reply, field);
    }
    assert_eq!(api.all_sessions().await, before);
    // The limits themselves are fine.
    assert_eq!(api.get("/sessions?limit=100").await["limit"], 100);
    assert_eq!(api.get("/sessions?limit=1").await["data"].as_array().unwrap().len(), 1);
}
