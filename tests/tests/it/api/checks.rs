//! Provider-backed checks end to end: a check step's request leaves through
//! the outbox, the checks worker screens the participant against the sample
//! list (or the sandbox's magic names) and records the answer, and the case
//! goes on, waits for review or fails. On the embedded store the relay runs
//! in process; with `KORALA_TEST_STORE=dynamodb` through DynamoDB Local's
//! stream, EventBridge and SQS on moto.

use acceptance::api::{Api, str_of, workflow_ids};
use acceptance::receiver::Receiver;
use functions::consumers::checks_worker::MAX_PROVIDER_ATTEMPTS;
use functions::runtime::relay::Relay;
use korala_domain::testing::product_page;
use serde_json::{Value, json};

struct Case {
    api: Api,
    relay: Relay,
}

impl Case {
    async fn new() -> Self {
        let mut api = Api::new().await;
        let relay = api.relay().await;
        Self { api, relay }
    }

    async fn relay(&self) {
        self.relay.run_until_idle(100).await.expect("the relay steps");
    }

    async fn session(&self, id: &str) -> Value {
        self.api.session(id).await
    }

    async fn configure(&self, slug: &str, workflows: &[&str]) {
        self.api.simple_configuration(slug, workflows, json!({})).await;
    }

    /// A session of `config` for a subject with this name.
    async fn session_for(&self, config: &str, name: &str) -> Value {
        self.api
            .create_session(json!({
                "configurationSlug": config,
                "externalUserId": format!("usr_{}", name.replace(' ', "_")),
                "participants": [{"role": "subject", "displayName": name}],
            }))
            .await
    }

    async fn submit(&self, session: &Value, index: usize, data: Value) -> Value {
        let (token, wf) = (str_of(session, "accessToken"), workflow_ids(session));
        self.api.submit_ok(token, &wf[index], data).await
    }

    /// The partner's review decision on a workflow paused for review.
    async fn review(&self, session: &str, workflow: &str, decision: &str, reason: &str) -> Value {
        let path = format!("/sessions/{session}/workflows/{workflow}/review");
        let body = json!({"decision": decision, "reason": reason});
        self.api.expect(200, "POST", &path, Some(body)).await
    }

    fn document(&self, name: &str, born: &str, country: &str) -> Value {
        let mut doc = self.api.id_document(name);
        doc["dateOfBirth"] = json!(born);
        doc["issuingCountry"] = json!(country);
        doc
    }
}

fn check_of(session: &Value, index: usize) -> Value {
    let id = &session["workflows"][index]["id"];
    session["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| &c["sessionWorkflowId"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The machine names of a risk summary's factors.
fn factor_codes(risk: &Value) -> Vec<&str> {
    risk["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect()
}

fn events_of(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

#[tokio::test]
async fn a_clean_subject_passes_and_the_case_completes() {
    let c = Case::new().await;
    c.configure("screened", &["id-document", "sanctions-check", "pep-check"])
        .await;
    let session = c.session_for("screened", "Maria Clean Example").await;
    let view = c
        .submit(&session, 0, c.document("Maria Clean Example", "1988-02-03", "pt"))
        .await;
    assert_eq!(view["status"], "in_progress", "the checks run after the submission");
    c.relay().await;
    let id = str_of(&session, "id");
    let detail = c.session(id).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(detail["resolution"], "approved");
    for index in [1, 2] {
        let check = check_of(&detail, index);
        assert_eq!(check["status"], "completed", "{check}");
        assert_eq!(check["provider"], "korala-screening");
        assert_eq!(check["findings"], json!([]));
        assert_eq!(detail["workflows"][index]["output"]["verdict"], "clear");
    }
    assert_eq!(check_of(&detail, 1)["kind"], "sanctions");
    assert_eq!(check_of(&detail, 2)["kind"], "pep");
    let events = c.api.events(id).await;
    assert_eq!(events_of(&events, "session_check_requested"), 2);
    assert_eq!(events_of(&events, "session_check_completed"), 2);
}

#[tokio::test]
async fn a_strong_sanctions_match_is_rejected() {
    let c = Case::new().await;
    c.configure("sanctions", &["id-document", "sanctions-check"]).await;
    let session = c.session_for("sanctions", "Vladimir Petrov").await;
    // The document's birth date and country corroborate the list's entry.
    c.submit(&session, 0, c.document("Vladimir Petrov", "1961-05-12", "ru"))
        .await;
    c.relay().await;
    let detail = c.session(str_of(&session, "id")).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["resolution"], "rejected");
    assert_eq!(detail["workflows"][1]["status"], "failed");
    assert!(
        str_of(&detail["workflows"][1], "failureReason").starts_with("strong sanctions match: Vladimir Petrov"),
        "{}",
        detail["workflows"][1]
    );
    let finding = &check_of(&detail, 1)["findings"][0];
    assert_eq!(finding["entityId"], "ex-person-petrov-v");
    assert_eq!(finding["strength"], "strong");
    assert_eq!(finding["birthDateMatch"], true);
    assert_eq!(finding["countryMatch"], true);
    assert!(finding["score"].as_f64().unwrap() > 0.9);
}

#[tokio::test]
async fn the_sandbox_forces_each_branch_by_name() {
    let c = Case::new().await;
    c.configure("sanctions", &["sanctions-check"]).await;
    let strong = c.session_for("sanctions", "Sandbox Strong Match").await;
    let possible = c.session_for("sanctions", "Sandbox Possible Match").await;
    for session in [&strong, &possible] {
        let (status, body, _) = c
            .api
            .end_user(
                "POST",
                &format!("/access/{}/start", str_of(session, "accessToken")),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    c.relay().await;
    let strong = c.session(str_of(&strong, "id")).await;
    assert_eq!(strong["status"], "failed", "{strong}");
    assert_eq!(check_of(&strong, 0)["findings"][0]["datasets"][0], "korala_sandbox");
    let possible = c.session(str_of(&possible, "id")).await;
    assert_eq!(possible["status"], "pending_review", "{possible}");
    assert_eq!(possible["workflows"][0]["status"], "pending_review");
}

#[tokio::test]
async fn a_provider_outage_is_retried_then_fails_the_check() {
    let c = Case::new().await;
    if c.api.sqlite.is_none() {
        // SQS redelivers in real time: the backoff (10 s … 80 s) is tested
        // on the embedded queue, whose visibility follows the test clock.
        eprintln!("skipped on the emulated AWS path: SQS visibility timeouts run in real time");
        return;
    }
    c.configure("sanctions", &["sanctions-check"]).await;
    let session = c.session_for("sanctions", "Sandbox Provider Error").await;
    let token = str_of(&session, "accessToken");
    c.api.end_user("POST", &format!("/access/{token}/start"), None).await;
    let id = str_of(&session, "id");
    c.relay().await;
    let mut waits = Vec::new();
    for attempt in 1..MAX_PROVIDER_ATTEMPTS {
        let detail = c.session(id).await;
        assert_eq!(check_of(&detail, 0)["status"], "pending", "attempt {attempt}: {detail}");
        // Not before its backoff...
        let wait = 10 * 2_i64.pow(attempt - 1);
        c.api.clock.advance_seconds(wait - 1);
        c.relay().await;
        assert_eq!(check_of(&c.session(id).await, 0)["status"], "pending");
        // ...then again.
        c.api.clock.advance_seconds(1);
        c.relay().await;
        waits.push(wait);
    }
    assert_eq!(waits, [10, 20, 40, 80]);
    let detail = c.session(id).await;
    let check = check_of(&detail, 0);
    assert_eq!(check["status"], "failed", "{detail}");
    assert!(str_of(&check, "failure").contains("after 5 attempts"), "{check}");
    assert_eq!(detail["status"], "failed");
    assert_eq!(detail["workflows"][0]["status"], "failed");
}

/// The product page's KYB case: Acme Corp, Jane Smith as beneficial owner
/// (a PEP in the sample list), John Smith as representative — documents,
/// the PEP check's possible match reviewed by the partner, the final manual
/// review, the resolution, and the webhooks each step sends.
#[tokio::test]
async fn the_kyb_standard_case_runs_end_to_end() {
    kyb_standard_case(false).await;
}

/// The same case with the native risk score before the final review: a
/// `risk-assessment` workflow bound to the business itself.
#[tokio::test]
async fn the_kyb_standard_case_with_a_risk_assessment_runs_end_to_end() {
    kyb_standard_case(true).await;
}

async fn kyb_standard_case(with_risk: bool) {
    acceptance::require!(StandardWebhooks);
    let c = Case::new().await;
    let receiver = Receiver::start(None);
    let endpoint = c
        .api
        .expect(
            201,
            "POST",
            "/webhook-endpoints",
            Some(json!({"url": receiver.url(), "events": [
                "session_completed", "session_resolved", "session_workflow_completed", "session_workflow_failed"]})),
        )
        .await;
    receiver.set(json!({ "secret": str_of(&endpoint, "secret") }));
    receiver.sync_clock(c.api.clock.now());
    let mut configuration = product_page::kyb_standard();
    if with_risk {
        configuration["workflowBindings"]
            .as_array_mut()
            .unwrap()
            .push(json!({"workflowSlug": "risk-assessment", "participantRoles": ["subject"], "outputKey": "risk"}));
    }
    c.api.create_configuration(configuration).await;
    let session = c.api.create_session(product_page::kyb_session()).await;
    let id = str_of(&session, "id").to_owned();
    let wf = workflow_ids(&session);
    c.submit(&session, 0, c.api.id_document("John Smith")).await;
    c.submit(&session, 1, c.api.proof_of_address("John Smith")).await;
    c.relay().await;

    // Jane Smith is on the sample list as a PEP; with no birth date or
    // country of hers to corroborate, a possible match for the partner.
    let detail = c.session(&id).await;
    assert_eq!(detail["status"], "pending_review", "{detail}");
    assert_eq!(detail["workflows"][2]["status"], "pending_review");
    let check = check_of(&detail, 2);
    assert_eq!(check["kind"], "pep");
    let jane = detail["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["displayName"] == "Jane Smith")
        .unwrap();
    assert_eq!(check["participantId"], jane["id"]);
    let finding = &check["findings"][0];
    assert_eq!(finding["entityName"], "Jane Smith");
    assert_eq!(finding["strength"], "possible");
    assert_eq!(finding["topics"][0], "role.pep");

    c.review(
        &id,
        &wf[2],
        "approved",
        "Not the listed PEP: different birth date on file",
    )
    .await;
    let detail = c.session(&id).await;
    assert_eq!(detail["workflows"][2]["status"], "completed");
    if with_risk {
        // The business, a PEP among its owners (reviewed): low, and on it goes.
        let risk = &detail["risk"];
        assert_eq!(detail["workflows"][3]["status"], "completed", "{risk}");
        assert_eq!(risk["level"], "low", "{risk}");
        let codes = factor_codes(risk);
        assert!(codes.contains(&"subject_business"), "{codes:?}");
        assert!(codes.contains(&"pep_possible_match"), "{codes:?}");
        assert_eq!(risk["sessionWorkflowId"], wf[3].as_str());
    } else {
        assert_eq!(detail["risk"], Value::Null);
    }
    assert_eq!(detail["status"], "pending_review", "the final manual review");
    assert_eq!(detail["resolution"], Value::Null);
    c.api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/resolve"),
            Some(json!({"resolution": "approved", "reason": "Manually verified after review"})),
        )
        .await;
    let detail = c.session(&id).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(detail["resolution"], "approved");
    assert_eq!(detail["resolvedBy"], "partner");
    c.relay().await;

    let received = receiver.received();
    assert!(received.iter().all(|r| r.verified), "{received:?}");
    let kinds: Vec<&str> = received.iter().map(|r| r.event()).collect();
    let workflows = if with_risk { 4 } else { 3 };
    assert_eq!(
        kinds.iter().filter(|k| **k == "session_workflow_completed").count(),
        workflows,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "session_completed").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "session_resolved").count(),
        1,
        "{kinds:?}"
    );
    let resolved = received.iter().find(|r| r.event() == "session_resolved").unwrap();
    assert_eq!(resolved.body["data"]["resolution"], "approved");
}

/// Resubmission recomputes the checks that depended on the reset workflows,
/// and only those.
#[tokio::test]
async fn a_resubmission_recomputes_exactly_the_dependent_checks() {
    let c = Case::new().await;
    c.configure("layered", &["sanctions-check", "id-document", "pep-check"])
        .await;
    let session = c.session_for("layered", "Maria Clean Example").await;
    let token = str_of(&session, "accessToken");
    c.api.end_user("POST", &format!("/access/{token}/start"), None).await;
    c.relay().await;
    c.submit(&session, 1, c.document("Maria Clean Example", "1988-02-03", "pt"))
        .await;
    c.relay().await;
    let id = str_of(&session, "id");
    let before = c.session(id).await;
    assert_eq!(before["status"], "completed", "{before}");
    let (sanctions, pep) = (check_of(&before, 0), check_of(&before, 2));

    let wf = workflow_ids(&session);
    c.api
        .expect(
            200,
            "POST",
            &format!("/sessions/{id}/workflows/{}/resubmit", wf[1]),
            None,
        )
        .await;
    let reset = c.session(id).await;
    assert_eq!(
        reset["checks"].as_array().unwrap().len(),
        1,
        "the PEP check went with its workflow"
    );
    assert_eq!(
        check_of(&reset, 0),
        sanctions,
        "the sanctions check before it is kept as it was"
    );
    c.submit(&session, 1, c.document("Maria Clean Example", "1988-02-03", "pt"))
        .await;
    c.relay().await;
    let after = c.session(id).await;
    assert_eq!(after["status"], "completed", "{after}");
    assert_eq!(check_of(&after, 0), sanctions);
    let recomputed = check_of(&after, 2);
    assert_ne!(recomputed["id"], pep["id"], "a new PEP check");
    assert_eq!(recomputed["status"], "completed");
    let events = c.api.events(id).await;
    assert_eq!(events_of(&events, "session_check_requested"), 3);
}

/// The native risk score after the checks: explained on the session, and
/// its thresholds send a risky case to the partner.
#[tokio::test]
async fn the_risk_assessment_scores_the_checks_and_documents_before_it() {
    let c = Case::new().await;
    c.configure("risk", &["id-document", "pep-check", "risk-assessment"])
        .await;
    let clean = c.session_for("risk", "Maria Clean Example").await;
    c.submit(&clean, 0, c.document("Maria Clean Example", "1988-02-03", "pt"))
        .await;
    // A PEP's own passport, from a jurisdiction on the FATF call for action.
    let pep = c.session_for("risk", "Jane Smith").await;
    c.submit(&pep, 0, c.document("Jane Smith", "1975-03-14", "ir")).await;
    c.relay().await;

    let clean = c.session(str_of(&clean, "id")).await;
    assert_eq!(clean["status"], "completed", "{clean}");
    assert_eq!(clean["risk"]["level"], "low", "{}", clean["risk"]);
    assert_eq!(clean["workflows"][2]["output"]["riskLevel"], "low");

    let pep_id = str_of(&pep, "id").to_owned();
    let pep = c.session(&pep_id).await;
    // The PEP match (possible: the list says gb, the passport ir) is
    // reviewed first (the check step), then scored.
    assert_eq!(pep["workflows"][1]["status"], "pending_review", "{pep}");
    let wf = workflow_ids(&pep);
    c.review(&pep_id, &wf[1], "approved", "Known PEP, enhanced due diligence done")
        .await;
    let pep = c.session(&pep_id).await;
    let risk = &pep["risk"];
    assert_eq!(risk["level"], "high", "{risk}");
    let codes = factor_codes(risk);
    assert!(codes.contains(&"pep_possible_match"), "{codes:?}");
    assert!(codes.contains(&"country_high_risk"), "{codes:?}");
    assert_eq!(risk["score"], 65, "15 + 50: {risk}");
    // At or above 50 (below 80): the partner decides.
    assert_eq!(pep["workflows"][2]["status"], "pending_review", "{risk}");
    assert_eq!(pep["status"], "pending_review");
    c.review(&pep_id, &wf[2], "rejected", "Risk too high for this product")
        .await;
    let pep = c.session(&pep_id).await;
    assert_eq!(pep["status"], "failed");
    assert_eq!(pep["resolution"], "rejected");
}
