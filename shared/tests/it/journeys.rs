//! Scenario tests of the session engine through its public API: configurations
//! validated against a catalog, sessions created from them, and every action
//! of the end user, the partner and the service played out in order.

use chrono::Duration;
use korala_domain::builtin::{self, NAME_MATCH, NAME_MISMATCH};
use korala_domain::catalog::Catalog;
use korala_domain::checks::CheckOutcome;
use korala_domain::configuration::{Configuration, ConfigurationDraft};
use korala_domain::events::{Event, EventKind};
use korala_domain::ids::{CheckId, OrgId};
use korala_domain::invariants;
use korala_domain::names;
use korala_domain::participant::Role;
use korala_domain::screening::{Finding, MatchStrength, SubjectKind};
use korala_domain::session::{
    AccessToken, CheckStatus, Decision, Origin, ResolvedBy, Session, SessionDraft, SessionStatus, SessionWorkflow,
    ValidationOutcome, Waiting, WorkflowStatus,
};
use korala_domain::tenancy::{Actor, Mode, Tenant};
use korala_domain::testing::product_page::{self, kyb_participants};
use korala_domain::testing::{SequentialIds, t0};
use korala_domain::transition::Transition;
use korala_domain::workflow::{CheckKind, WorkflowDraft};
use korala_domain::{DomainError, JsonMap, Timestamp};
use serde_json::{Value, json};

// ---------------------------------------------------------------- harness

/// The journeys run in test mode: their sessions are sandbox sessions.
fn org() -> Tenant {
    Tenant::new(OrgId::parse("org_0001").unwrap(), Mode::Test)
}

fn partner() -> Actor {
    Actor::Partner {
        api_key_id: "ak_test_journeys".into(),
    }
}

fn obj(v: Value) -> JsonMap {
    v.as_object().cloned().expect("a JSON object")
}

fn configure(v: Value, catalog: &Catalog) -> Configuration {
    serde_json::from_value::<ConfigurationDraft>(v)
        .expect("a well-formed draft")
        .validate(org(), catalog, t0())
        .expect("a valid configuration")
}

fn kyc(catalog: &Catalog) -> Configuration {
    configure(
        json!({"name": "KYC", "slug": "kyc-standard", "workflowSlugs": ["id-document", "proof-of-address"]}),
        catalog,
    )
}

fn kyb(catalog: &Catalog) -> Configuration {
    configure(product_page::kyb_standard(), catalog)
}

fn id_doc(name: &str) -> Value {
    json!({
        "documentType": "passport",
        "documentNumber": "X1234567",
        "fullName": name,
        "dateOfBirth": "1990-04-12",
        "expiryDate": "2030-01-01",
        "issuingCountry": "gb"
    })
}

fn id_doc_with(name: &str, dob: &str, expiry: &str) -> Value {
    let mut v = id_doc(name);
    v["dateOfBirth"] = json!(dob);
    v["expiryDate"] = json!(expiry);
    v
}

fn poa(name: &str, issued: &str) -> Value {
    json!({
        "documentType": "utility_bill",
        "fullName": name,
        "addressLine1": "1 High Street",
        "city": "London",
        "postalCode": "N1 9GU",
        "country": "GB",
        "issueDate": issued
    })
}

fn draft(config: &Configuration, participants: Value) -> SessionDraft {
    serde_json::from_value(json!({
        "configurationSlug": config.slug,
        "externalUserId": "usr_abc123",
        "participants": participants,
        "context": {"partnerName": "Acme Corp"},
        "metadata": {"applicationId": "app_001"}
    }))
    .expect("a well-formed session draft")
}

fn try_create(
    config: &Configuration,
    catalog: &Catalog,
    participants: Value,
    ids: &SequentialIds,
) -> Result<Transition, DomainError> {
    let origin = Origin {
        access_token: AccessToken {
            hash: "hash".into(),
            sealed: "sealed".into(),
        },
        configuration: config,
        catalog,
    };
    Session::create(draft(config, participants), origin, partner(), t0(), ids)
}

/// A session and its history, advanced one checked transition at a time.
struct Case {
    ids: SequentialIds,
    now: Timestamp,
    session: Session,
    history: Vec<Event>,
}

impl Case {
    fn new(config: &Configuration, catalog: &Catalog, participants: Value) -> Case {
        let ids = SequentialIds::default();
        let created = try_create(config, catalog, participants, &ids).expect("the session is created");
        assert_eq!(created.session.version, 1);
        assert_eq!(created.expected_version(), None);
        let mut case = Case {
            ids,
            now: t0(),
            session: created.session.clone(),
            history: Vec::new(),
        };
        case.session.version = 0;
        case.apply(created);
        assert_eq!(case.session.status, SessionStatus::Created);
        case
    }

    fn kyc() -> Case {
        let catalog = Catalog::builtins();
        Case::new(&kyc(&catalog), &catalog, json!([]))
    }

    /// Checks what every transition must satisfy, adopts its state and returns
    /// its events' type names.
    fn apply(&mut self, t: Transition) -> Vec<String> {
        assert_eq!(
            t.session.version,
            self.session.version + 1,
            "a transition bumps the version by one"
        );
        if self.session.version > 0 {
            assert_eq!(t.expected_version(), Some(self.session.version));
        }
        assert!(!t.events.is_empty(), "every transition explains itself");
        invariants::check(&t.session).expect("invariants hold");
        for (i, e) in t.events.iter().enumerate() {
            assert_eq!(e.version, t.session.version, "{e:?}");
            assert_eq!(e.sequence as usize, i);
            assert_eq!(e.status, t.session.status, "events carry the post-transition status");
            assert_eq!(e.resolution, t.session.resolution.as_ref().map(|r| r.decision));
            assert_eq!(e.session_id, t.session.id);
            assert_eq!(e.occurred_at, self.now);
            assert_eq!(e.tenant, t.session.tenant);
            assert!(e.tenant.is_sandbox());
        }
        assert_eq!(t.session.updated_at, self.now);
        let mut ids = self.history.iter().chain(&t.events).map(|e| &e.id);
        let mut last = ids.next();
        for id in ids {
            assert!(Some(id) > last, "event ids are minted in order: {id} after {last:?}");
            last = Some(id);
        }
        let names = t.events.iter().map(|e| e.kind.name()).collect();
        self.session = t.session;
        self.history.extend(t.events);
        names
    }

    fn swf(&self, index: usize) -> String {
        self.session.workflows[index].id.to_string()
    }

    fn wf(&self, index: usize) -> &SessionWorkflow {
        &self.session.workflows[index]
    }

    fn start(&mut self) -> Vec<String> {
        let t = self
            .session
            .start(self.now, &self.ids)
            .expect("start succeeds")
            .expect("a created session starts");
        self.apply(t)
    }

    fn try_submit(&self, index: usize, data: Value) -> Result<Transition, DomainError> {
        self.session.submit(&self.swf(index), &obj(data), self.now, &self.ids)
    }

    fn submit(&mut self, index: usize, data: Value) -> Vec<String> {
        let t = self.try_submit(index, data).expect("the submission is accepted");
        self.apply(t)
    }

    fn review(&mut self, index: usize, decision: Decision) -> Vec<String> {
        let t = self
            .session
            .review(
                &self.swf(index),
                decision,
                "Checked by hand",
                partner(),
                self.now,
                &self.ids,
            )
            .expect("the review is accepted");
        self.apply(t)
    }

    fn try_resolve(&self, decision: Decision) -> Result<Transition, DomainError> {
        self.session.resolve(
            decision,
            "Manually verified after review",
            partner(),
            self.now,
            &self.ids,
        )
    }

    fn resolve(&mut self, decision: Decision) -> Vec<String> {
        let t = self.try_resolve(decision).expect("the resolution is accepted");
        self.apply(t)
    }

    fn try_resubmit(&self, index: usize) -> Result<Transition, DomainError> {
        self.session.resubmit(&self.swf(index), partner(), self.now, &self.ids)
    }

    fn resubmit(&mut self, index: usize) -> Vec<String> {
        let t = self.try_resubmit(index).expect("the resubmission is accepted");
        self.apply(t)
    }

    /// The webhook-type events of the whole history, in order.
    fn webhooks(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|e| e.kind.webhook().is_some())
            .map(|e| e.kind.name())
            .collect()
    }

    fn status(&self) -> SessionStatus {
        self.session.status
    }

    fn resolution(&self) -> Option<(Decision, ResolvedBy)> {
        self.session.resolution.as_ref().map(|r| (r.decision, r.resolved_by))
    }

    fn failed_rules(&self, index: usize) -> Vec<String> {
        let report = self.wf(index).validation.as_ref().expect("a validation report");
        report
            .rules
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.clone())
            .collect()
    }

    fn outcome(&self, index: usize) -> ValidationOutcome {
        self.wf(index).validation.as_ref().expect("a validation report").outcome
    }

    /// Both documents of the KYC configuration, accepted first time.
    fn pass_kyc(&mut self) {
        self.start();
        self.submit_both_documents();
    }

    fn submit_both_documents(&mut self) {
        self.submit(0, id_doc("John Smith"));
        self.submit(1, poa("John Smith", "2026-11-01"));
    }
}

fn retry_remaining(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SessionWorkflowRetryRequested { attempts_remaining, .. } => Some(attempts_remaining),
            _ => None,
        })
        .collect()
}

fn ends_with(events: &[String], tail: &[&str]) -> bool {
    events.len() >= tail.len()
        && events[events.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}

// ---------------------------------------------------------------- KYC

#[test]
fn kyc_completed_by_the_end_user_is_approved_automatically() {
    let mut case = Case::kyc();
    assert_eq!(case.session.workflows.len(), 2);
    assert!(case.session.workflows.iter().all(|w| w.is_pristine()));
    assert_eq!(case.session.participants.len(), 1, "an anonymous subject is added");
    assert_eq!(case.session.participants[0].role, Role::Subject);
    assert_eq!(case.session.expires_at, t0() + Duration::minutes(1440));

    assert_eq!(
        case.start(),
        ["session_started", "session_workflow_started"],
        "starting activates the first workflow"
    );
    assert_eq!(case.status(), SessionStatus::InProgress);
    assert_eq!(case.wf(0).waiting, Some(Waiting::Input));
    assert_eq!(case.wf(1).status, WorkflowStatus::Pending);

    let events = case.submit(0, id_doc("John Smith"));
    assert_eq!(
        events,
        [
            "session_workflow_submitted",
            "session_workflow_validated",
            "session_workflow_completed",
            "session_workflow_started"
        ]
    );
    assert_eq!(case.wf(0).status, WorkflowStatus::Completed);
    assert_eq!(case.wf(0).attempts, 1);
    assert_eq!(case.outcome(0), ValidationOutcome::Passed);
    let output = case.wf(0).output.as_ref().expect("the id document's output");
    assert_eq!(output["fullName"], "John Smith");
    assert_eq!(output["issuingCountry"], "GB", "country codes are normalised");
    assert_eq!(case.session.current_index(), Some(1));

    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.session.completed_at, Some(t0()));
    assert!(
        case.session
            .workflows
            .iter()
            .all(|w| w.status == WorkflowStatus::Completed)
    );
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
    assert_eq!(case.session.resolution.as_ref().unwrap().actor, Actor::System);
    assert_eq!(
        case.webhooks(),
        [
            "session_workflow_completed",
            "session_workflow_completed",
            "session_completed",
            "session_resolved"
        ]
    );
    let versions: Vec<u64> = case.history.iter().map(|e| e.version).collect();
    assert_eq!(versions.first(), Some(&1));
    assert_eq!(case.session.version, 4, "create, start and two submissions");
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "the history is ordered");

    // A closed session takes no more submissions.
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::SessionClosed(SessionStatus::Completed))
    );
}

#[test]
fn an_expired_id_document_is_retried_then_accepted() {
    let mut case = Case::kyc();
    case.start();
    let before = case.history.len();
    let events = case.submit(0, id_doc_with("John Smith", "1990-04-12", "2025-01-01"));
    assert!(
        ends_with(
            &events,
            &["session_workflow_validated", "session_workflow_retry_requested"]
        ),
        "{events:?}"
    );
    assert_eq!(retry_remaining(&case.history[before..]), [2]);
    assert_eq!(case.wf(0).status, WorkflowStatus::InProgress);
    assert_eq!(case.wf(0).waiting, Some(Waiting::Input));
    assert_eq!(case.wf(0).attempts, 1);
    assert_eq!(case.outcome(0), ValidationOutcome::Retry);
    assert_eq!(case.failed_rules(0), ["document_not_expired"]);
    assert_eq!(case.wf(0).output, None);
    assert_eq!(case.status(), SessionStatus::InProgress);

    case.submit(0, id_doc("John Smith"));
    assert_eq!(case.wf(0).status, WorkflowStatus::Completed);
    assert_eq!(case.wf(0).attempts, 2);
    assert_eq!(case.wf(0).validation.as_ref().unwrap().attempt, 2);
    assert_eq!(case.session.current_index(), Some(1));
    assert_eq!(case.status(), SessionStatus::InProgress);
}

#[test]
fn three_expired_documents_fail_the_session_and_reject_it() {
    let mut case = Case::kyc();
    case.start();
    let expired = id_doc_with("John Smith", "1990-04-12", "2026-11-24");
    let before = case.history.len();
    case.submit(0, expired.clone());
    case.submit(0, expired.clone());
    assert_eq!(retry_remaining(&case.history[before..]), [2, 1]);
    let events = case.submit(0, expired.clone());
    assert_eq!(
        events,
        [
            "session_workflow_submitted",
            "session_workflow_validated",
            "session_workflow_failed",
            "session_failed",
            "session_resolved"
        ]
    );
    assert_eq!(case.wf(0).status, WorkflowStatus::Failed);
    assert_eq!(case.wf(0).attempts, 3);
    assert_eq!(case.outcome(0), ValidationOutcome::Failed);
    assert!(case.wf(0).failure.as_deref().unwrap().starts_with("no attempts remain"));
    assert_eq!(case.wf(1).status, WorkflowStatus::Pending);
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Auto)));
    assert_eq!(
        case.webhooks(),
        ["session_workflow_failed", "session_failed", "session_resolved"]
    );
    assert_eq!(
        case.try_submit(0, expired),
        Err(DomainError::SessionClosed(SessionStatus::Failed))
    );
}

#[test]
fn an_under_age_holder_fails_at_once() {
    let mut case = Case::kyc();
    case.start();
    // Eighteen tomorrow.
    case.submit(0, id_doc_with("John Smith", "2008-11-26", "2030-01-01"));
    assert_eq!(case.wf(0).attempts, 1);
    assert_eq!(case.wf(0).status, WorkflowStatus::Failed);
    assert_eq!(case.failed_rules(0), ["adult"]);
    assert_eq!(case.outcome(0), ValidationOutcome::Failed);
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Auto)));
}

#[test]
fn an_adult_since_today_passes() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc_with("John Smith", "2008-11-25", "2030-01-01"));
    assert_eq!(case.wf(0).status, WorkflowStatus::Completed);
}

#[test]
fn a_proof_of_address_in_another_name_is_retried() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    assert!(names::similarity("Maria Garcia", "John Smith") < NAME_MISMATCH);
    let before = case.history.len();
    case.submit(1, poa("Maria Garcia", "2026-11-01"));
    assert_eq!(case.outcome(1), ValidationOutcome::Retry);
    let failed = case.failed_rules(1);
    assert!(failed.contains(&"name_not_mismatched".to_owned()), "{failed:?}");
    assert_eq!(retry_remaining(&case.history[before..]), [2]);
    assert_eq!(case.wf(1).status, WorkflowStatus::InProgress);
    assert_eq!(case.status(), SessionStatus::InProgress);

    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
}

#[test]
fn a_near_match_pauses_for_review_and_approval_completes_the_session() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    let near = "J. Smith";
    let similarity = names::similarity(near, "John Smith");
    assert!(
        (NAME_MISMATCH..NAME_MATCH).contains(&similarity),
        "{near} scores {similarity}"
    );
    let events = case.submit(1, poa(near, "2026-11-01"));
    assert!(
        ends_with(&events, &["session_workflow_pending_review", "session_pending_review"]),
        "{events:?}"
    );
    assert_eq!(case.outcome(1), ValidationOutcome::Review);
    assert_eq!(case.failed_rules(1), ["name_matches_identity_document"]);
    assert_eq!(case.wf(1).status, WorkflowStatus::PendingReview);
    assert_eq!(case.wf(1).waiting, Some(Waiting::Review));
    assert_eq!(case.status(), SessionStatus::PendingReview);
    assert_eq!(case.resolution(), None);
    // The end user has nothing to do while the partner looks.
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::WorkflowNotCurrent(case.swf(1)))
    );
    // A workflow that is not paused cannot be reviewed.
    assert_eq!(
        case.session
            .review(&case.swf(0), Decision::Approved, "ok", partner(), case.now, &case.ids),
        Err(DomainError::NotAwaitingReview(case.swf(0)))
    );
    // Waiting for the partner, the session does not expire.
    assert_eq!(case.session.expire(t0() + Duration::days(30), &case.ids), Ok(None));

    let events = case.review(1, Decision::Approved);
    assert_eq!(events[0], "session_workflow_reviewed");
    assert!(
        ends_with(
            &events,
            &["session_workflow_completed", "session_completed", "session_resolved"]
        ),
        "{events:?}"
    );
    let review = case.wf(1).review.as_ref().expect("the review is recorded");
    assert_eq!(review.decision, Decision::Approved);
    assert_eq!(review.actor, partner());
    assert_eq!(case.wf(1).status, WorkflowStatus::Completed);
    assert_eq!(case.wf(1).output.as_ref().unwrap()["fullName"], near);
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
}

#[test]
fn a_rejected_review_fails_the_session() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("J. Smith", "2026-11-01"));
    let events = case.review(1, Decision::Rejected);
    assert!(
        ends_with(
            &events,
            &["session_workflow_failed", "session_failed", "session_resolved"]
        ),
        "{events:?}"
    );
    assert_eq!(case.wf(1).status, WorkflowStatus::Failed);
    assert!(case.wf(1).failure.as_deref().unwrap().contains("rejected in review"));
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Auto)));
    // Reviewed once is reviewed.
    assert_eq!(
        case.session.review(
            &case.swf(1),
            Decision::Approved,
            "again",
            partner(),
            case.now,
            &case.ids
        ),
        Err(DomainError::NotAwaitingReview(case.swf(1)))
    );
}

#[test]
fn typo_level_differences_count_as_the_same_name() {
    // The product's matcher treats a dropped letter as a typo, not a near match.
    for typo in ["Jon Smith", "John Smyth"] {
        assert!(names::similarity(typo, "John Smith") >= NAME_MATCH, "{typo}");
        let mut case = Case::kyc();
        case.start();
        case.submit(0, id_doc("John Smith"));
        case.submit(1, poa(typo, "2026-11-01"));
        assert_eq!(case.status(), SessionStatus::Completed, "{typo}");
    }
}

#[test]
fn a_proof_of_address_older_than_90_days_is_retried() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    let issued = (t0() - Duration::days(builtin::POA_MAX_AGE_DAYS + 1))
        .format("%Y-%m-%d")
        .to_string();
    case.submit(1, poa("John Smith", &issued));
    assert_eq!(case.outcome(1), ValidationOutcome::Retry);
    assert_eq!(case.failed_rules(1), ["recent"]);
    assert_eq!(case.wf(1).waiting, Some(Waiting::Input));
    // Exactly 90 days old is still recent.
    let issued = (t0() - Duration::days(builtin::POA_MAX_AGE_DAYS))
        .format("%Y-%m-%d")
        .to_string();
    case.submit(1, poa("John Smith", &issued));
    assert_eq!(case.status(), SessionStatus::Completed);
}

#[test]
fn a_proof_of_address_dated_in_the_future_is_retried() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("John Smith", "2026-11-26"));
    assert_eq!(case.failed_rules(1), ["issued_in_the_past"]);
    assert_eq!(case.outcome(1), ValidationOutcome::Retry);
}

// ---------------------------------------------------------------- KYB

#[test]
fn the_kyb_configuration_expands_per_participant_and_waits_for_the_pep_check() {
    let catalog = Catalog::builtins();
    let mut case = Case::new(&kyb(&catalog), &catalog, kyb_participants());
    let s = &case.session;
    let by_name = |name: &str| {
        s.participants
            .iter()
            .find(|p| p.display_name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("participant {name}"))
    };
    let (acme, jane, john) = (by_name("Acme Corp"), by_name("Jane Smith"), by_name("John Smith"));
    assert_eq!(s.participants.len(), 3, "the listed subject is the only subject");
    assert_eq!(acme.role, Role::Subject);
    assert_eq!(jane.role, Role::BeneficialOwner);
    assert_eq!(john.role, Role::Representative);
    let plan: Vec<(&str, &str, &str)> = s
        .workflows
        .iter()
        .map(|w| {
            (
                w.workflow_slug.as_str(),
                w.output_key.as_str(),
                w.participant_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        plan,
        [
            ("id-document", "representative_id", john.id.as_str()),
            ("proof-of-address", "representative_poa", john.id.as_str()),
            ("pep-check", "ubo_pep_check", jane.id.as_str()),
        ]
    );
    let jane_id = jane.id.clone();
    assert_eq!(
        s.redirect_url.as_deref(),
        Some("https://yourapp.com/verification/complete")
    );

    case.start();
    case.submit(0, id_doc("John Smith"));
    let events = case.submit(1, poa("John Smith", "2026-11-01"));
    assert!(
        ends_with(&events, &["session_workflow_started", "session_check_requested"]),
        "{events:?}"
    );
    assert_eq!(case.status(), SessionStatus::InProgress);
    assert_eq!(case.wf(2).status, WorkflowStatus::InProgress);
    assert_eq!(case.session.checks.len(), 1);
    let check = &case.session.checks[0];
    assert_eq!(check.status, CheckStatus::Pending);
    assert_eq!(check.kind, CheckKind::Pep);
    assert_eq!(check.participant_id, jane_id);
    assert_eq!(check.session_workflow_id, case.wf(2).id);
    assert_eq!(
        case.wf(2).waiting,
        Some(Waiting::Check {
            check_id: check.id.clone()
        })
    );
    assert_eq!(case.resolution(), None);
    let requested = case.history.last().unwrap();
    assert_eq!(
        requested.kind,
        EventKind::SessionCheckRequested {
            session_workflow_id: case.wf(2).id.clone(),
            check_id: check.id.clone(),
            kind: CheckKind::Pep
        }
    );
    // The end user cannot answer a check.
    assert_eq!(
        case.try_submit(2, json!({})),
        Err(DomainError::WorkflowNotCurrent(case.swf(2)))
    );
}

#[test]
fn the_kyb_id_document_is_compared_with_the_representatives_name() {
    let catalog = Catalog::builtins();
    let mut case = Case::new(&kyb(&catalog), &catalog, kyb_participants());
    case.start();
    case.submit(0, id_doc("Maria Garcia"));
    assert_eq!(case.failed_rules(0), ["name_matches_participant"]);
    assert_eq!(case.status(), SessionStatus::PendingReview);
}

#[test]
fn a_binding_whose_role_has_no_participant_is_refused_at_creation() {
    let catalog = Catalog::builtins();
    let config = kyb(&catalog);
    let ids = SequentialIds::default();
    let result = try_create(
        &config,
        &catalog,
        json!([{"role": "subject", "displayName": "Acme Corp"}, {"role": "representative", "displayName": "John Smith"}]),
        &ids,
    );
    let Err(DomainError::Invalid(errors)) = result else {
        panic!("expected Invalid, got {result:?}");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["participants"]);
    assert!(errors.iter().next().unwrap().message.contains("pep-check"));
}

// ---------------------------------------------------------------- policies

#[test]
fn a_final_manual_review_waits_for_the_partner() {
    let catalog = Catalog::builtins();
    let config = configure(
        json!({"name": "KYC reviewed", "slug": "kyc-reviewed", "workflowSlugs": ["id-document", "proof-of-address"],
               "finalManualReviewRequired": true}),
        &catalog,
    );
    let mut case = Case::new(&config, &catalog, json!([]));
    case.start();
    case.submit(0, id_doc("John Smith"));
    let events = case.submit(1, poa("John Smith", "2026-11-01"));
    assert!(
        ends_with(&events, &["session_workflow_completed", "session_pending_review"]),
        "{events:?}"
    );
    assert!(
        case.session
            .workflows
            .iter()
            .all(|w| w.status == WorkflowStatus::Completed)
    );
    assert_eq!(case.status(), SessionStatus::PendingReview);
    assert_eq!(case.session.completed_at, None);
    assert_eq!(case.resolution(), None, "no automatic resolution");
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::SessionClosed(SessionStatus::PendingReview))
    );
    assert_eq!(case.session.expire(t0() + Duration::days(2), &case.ids), Ok(None));

    let events = case.resolve(Decision::Approved);
    assert_eq!(events, ["session_resolved", "session_completed"]);
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Partner)));
    let resolution = case.session.resolution.as_ref().unwrap();
    assert_eq!(resolution.actor, partner());
    assert_eq!(resolution.reason.as_deref(), Some("Manually verified after review"));
    assert_eq!(case.session.completed_at, Some(case.now));
}

#[test]
fn the_kyb_session_is_not_resolved_automatically_when_a_document_fails() {
    let catalog = Catalog::builtins();
    let mut case = Case::new(&kyb(&catalog), &catalog, kyb_participants());
    case.start();
    case.submit(0, id_doc_with("John Smith", "2010-01-01", "2030-01-01"));
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), None);
    case.resolve(Decision::Rejected);
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Partner)));
}

#[test]
fn a_session_that_is_not_a_verification_completes_without_resolution() {
    let catalog = Catalog::builtins();
    let config = configure(
        json!({"name": "Collect", "slug": "collect", "workflowSlugs": ["id-document", "proof-of-address"],
               "isVerification": false, "finalManualReviewRequired": true}),
        &catalog,
    );
    let mut case = Case::new(&config, &catalog, json!([]));
    assert_eq!(
        case.try_resolve(Decision::Approved),
        Err(DomainError::ResolutionDisabled)
    );
    case.pass_kyc();
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), None);
    assert!(!case.webhooks().contains(&"session_resolved".to_owned()));
    assert_eq!(
        case.try_resolve(Decision::Approved),
        Err(DomainError::ResolutionDisabled)
    );
}

#[test]
fn without_auto_resolve_a_completed_session_stays_unresolved() {
    let catalog = Catalog::builtins();
    let config = configure(
        json!({"name": "KYC manual", "slug": "kyc-manual", "workflowSlugs": ["id-document"], "autoResolve": false}),
        &catalog,
    );
    let mut case = Case::new(&config, &catalog, json!([]));
    case.start();
    case.submit(0, id_doc("John Smith"));
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), None);
    case.resolve(Decision::Approved);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Partner)));
}

#[test]
fn the_partners_decision_is_never_overridden_automatically() {
    let mut case = Case::kyc();
    // Before the end user even starts.
    let events = case.resolve(Decision::Rejected);
    assert_eq!(events, ["session_resolved"]);
    assert_eq!(case.status(), SessionStatus::Created);
    case.start();
    case.submit(0, id_doc("John Smith"));
    // While in progress: the partner changes their mind.
    case.resolve(Decision::Approved);
    assert_eq!(case.status(), SessionStatus::InProgress);
    case.resolve(Decision::Rejected);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Partner)));

    let events = case.submit(1, poa("John Smith", "2026-11-01"));
    assert!(ends_with(&events, &["session_completed"]), "{events:?}");
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(
        case.resolution(),
        Some((Decision::Rejected, ResolvedBy::Partner)),
        "completion does not overwrite the partner's decision"
    );
    let resolved: Vec<&Event> = case
        .history
        .iter()
        .filter(|e| matches!(e.kind, EventKind::SessionResolved { .. }))
        .collect();
    assert_eq!(resolved.len(), 3);
    assert!(resolved.iter().all(|e| matches!(
        e.kind,
        EventKind::SessionResolved {
            resolved_by: ResolvedBy::Partner,
            ..
        }
    )));

    // And after completion the partner can still override.
    case.resolve(Decision::Approved);
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Partner)));
}

#[test]
fn the_partner_overrides_an_automatic_resolution() {
    let mut case = Case::kyc();
    case.pass_kyc();
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
    case.resolve(Decision::Rejected);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Partner)));
    assert_eq!(case.status(), SessionStatus::Completed);
}

#[test]
fn a_resolution_needs_a_reason() {
    let mut case = Case::kyc();
    case.start();
    let before = case.session.clone();
    let result = case
        .session
        .resolve(Decision::Approved, "   ", partner(), case.now, &case.ids);
    assert!(matches!(result, Err(DomainError::Invalid(_))), "{result:?}");
    assert_eq!(case.session, before);
}

// ---------------------------------------------------------------- resubmission

#[test]
fn resubmitting_the_first_of_two_completed_workflows_resets_both() {
    let mut case = Case::kyc();
    case.pass_kyc();
    assert_eq!(case.status(), SessionStatus::Completed);
    let first_id = case.wf(0).id.clone();
    case.now += Duration::hours(1);
    let events = case.resubmit(0);
    assert_eq!(events, ["session_workflow_resubmitted", "session_workflow_started"]);
    let resubmitted = &case.history[case.history.len() - 2];
    assert_eq!(resubmitted.actor, partner());
    assert_eq!(
        resubmitted.kind,
        EventKind::SessionWorkflowResubmitted {
            session_workflow_id: first_id.clone(),
            reset: vec![case.wf(0).id.clone(), case.wf(1).id.clone()],
        }
    );
    for w in &case.session.workflows {
        assert_eq!(w.attempts, 0);
        assert_eq!(w.output, None);
        assert_eq!(w.validation, None);
        assert_eq!(w.data, None);
        assert_eq!(w.completed_at, None);
    }
    assert_eq!(case.wf(0).status, WorkflowStatus::InProgress);
    assert_eq!(case.wf(0).waiting, Some(Waiting::Input));
    assert_eq!(case.wf(0).id, first_id, "the instance keeps its id");
    assert!(case.wf(1).is_pristine());
    assert_eq!(case.session.current_index(), Some(0));
    assert_eq!(case.status(), SessionStatus::InProgress);
    assert_eq!(case.resolution(), None);
    assert_eq!(case.session.completed_at, None);

    // And it runs again, to a new automatic resolution.
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
}

#[test]
fn resubmitting_the_second_workflow_keeps_the_first() {
    let mut case = Case::kyc();
    case.pass_kyc();
    let first = case.wf(0).clone();
    case.resubmit(1);
    assert_eq!(case.wf(0), &first);
    assert_eq!(case.wf(1).status, WorkflowStatus::InProgress);
    assert_eq!(case.wf(1).attempts, 0);
    assert_eq!(case.status(), SessionStatus::InProgress);
}

#[test]
fn resubmitting_a_failed_workflow_reopens_a_failed_session() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc_with("John Smith", "2010-01-01", "2030-01-01"));
    assert_eq!(case.status(), SessionStatus::Failed);
    assert!(case.resolution().is_some());
    case.resubmit(0);
    assert_eq!(case.status(), SessionStatus::InProgress);
    assert_eq!(case.resolution(), None);
    assert_eq!(case.wf(0).failure, None);
    case.submit(0, id_doc("John Smith"));
    assert_eq!(case.wf(0).status, WorkflowStatus::Completed);
}

#[test]
fn resubmitting_during_a_review_or_a_check_resets_from_there() {
    let catalog = Catalog::builtins();
    let mut case = Case::new(&kyb(&catalog), &catalog, kyb_participants());
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.session.checks.len(), 1);
    let old_check = case.session.checks[0].id.clone();
    case.resubmit(1);
    assert!(
        case.session.checks.is_empty(),
        "the check depended on the reset workflows"
    );
    assert!(case.wf(2).is_pristine());
    case.submit(1, poa("J. Smith", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::PendingReview);
    case.resubmit(0);
    assert_eq!(case.status(), SessionStatus::InProgress);
    assert!(case.session.workflows[1..].iter().all(|w| w.is_pristine()));
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.session.checks.len(), 1);
    assert_ne!(case.session.checks[0].id, old_check, "a fresh check is requested");
}

#[test]
fn no_resubmission_after_the_deadline() {
    // Completed, or waiting for the partner's review: neither expires, but a
    // resubmission would hand the session back to an end user out of time.
    let mut completed = Case::kyc();
    completed.pass_kyc();
    let mut reviewed = Case::kyc();
    reviewed.start();
    reviewed.submit(0, id_doc("John Smith"));
    reviewed.submit(1, poa("J. Smith", "2026-11-01"));
    assert_eq!(reviewed.status(), SessionStatus::PendingReview);
    for mut case in [completed, reviewed] {
        case.now = case.session.expires_at;
        let before = case.session.clone();
        assert_eq!(case.try_resubmit(0), Err(DomainError::SessionExpired));
        assert_eq!(case.session, before);
        case.now -= Duration::seconds(1);
        case.resubmit(0);
        assert_eq!(case.status(), SessionStatus::InProgress);
    }
    // The partner still decides a review that outlived the deadline.
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("J. Smith", "2026-11-01"));
    case.now = case.session.expires_at + Duration::days(3);
    case.review(1, Decision::Approved);
    assert_eq!(case.status(), SessionStatus::Completed);
}

#[test]
fn resubmitting_a_pending_workflow_is_refused() {
    let mut case = Case::kyc();
    assert_eq!(case.try_resubmit(0), Err(DomainError::NothingToResubmit(case.swf(0))));
    case.start();
    assert_eq!(case.try_resubmit(1), Err(DomainError::NothingToResubmit(case.swf(1))));
    assert_eq!(
        case.session.resubmit("swf_9999", partner(), case.now, &case.ids),
        Err(DomainError::UnknownSessionWorkflow("swf_9999".into()))
    );
}

// ---------------------------------------------------------------- refusals

#[test]
fn a_submission_for_another_step_is_refused_and_changes_nothing() {
    let mut case = Case::kyc();
    case.start();
    let before = case.session.clone();
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::WorkflowNotCurrent(case.swf(1)))
    );
    assert_eq!(case.session, before);
    case.submit(0, id_doc("John Smith"));
    assert_eq!(
        case.try_submit(0, id_doc("John Smith")),
        Err(DomainError::WorkflowNotCurrent(case.swf(0))),
        "a completed step is not current"
    );
    assert_eq!(
        case.session.submit("swf_9999", &obj(json!({})), case.now, &case.ids),
        Err(DomainError::UnknownSessionWorkflow("swf_9999".into()))
    );
}

#[test]
fn a_submission_for_a_later_step_does_not_start_the_session() {
    let case = Case::kyc();
    let before = case.session.clone();
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::WorkflowNotCurrent(case.swf(1)))
    );
    assert_eq!(case.session, before);
}

#[test]
fn the_first_submission_starts_the_session() {
    let mut case = Case::kyc();
    let events = case.submit(0, id_doc("John Smith"));
    assert_eq!(&events[..2], ["session_started", "session_workflow_started"]);
    assert_eq!(case.session.started_at, Some(t0()));
    assert_eq!(case.wf(0).status, WorkflowStatus::Completed);
}

#[test]
fn a_malformed_submission_costs_no_attempt() {
    let mut case = Case::kyc();
    case.start();
    let before = case.session.clone();
    let result = case.try_submit(
        0,
        json!({"documentType": "visa", "fullName": "", "dateOfBirth": "12/04/1990", "extra": 1}),
    );
    let Err(DomainError::Invalid(errors)) = result else {
        panic!("expected Invalid, got {result:?}");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"data.extra") && fields.contains(&"data.documentType"),
        "{fields:?}"
    );
    assert_eq!(case.session, before);
    assert_eq!(case.wf(0).attempts, 0);
    // Wrong types are refused the same way.
    let mut wrong = id_doc("John Smith");
    wrong["documentNumber"] = json!(1234);
    assert!(matches!(case.try_submit(0, wrong), Err(DomainError::Invalid(_))));
    case.submit(0, id_doc("John Smith"));
    assert_eq!(case.wf(0).attempts, 1);
}

// ---------------------------------------------------------------- expiry

#[test]
fn an_overdue_session_expires() {
    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    let deadline = case.session.expires_at;
    assert_eq!(
        case.session.expire(deadline - Duration::seconds(1), &case.ids),
        Ok(None)
    );
    case.now = deadline;
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::SessionExpired),
        "an overdue session takes no submission even before the sweep"
    );
    let t = case.session.expire(case.now, &case.ids).unwrap().expect("it is due");
    assert_eq!(case.apply(t), ["session_expired"]);
    assert_eq!(case.status(), SessionStatus::Expired);
    assert_eq!(case.session.completed_at, Some(deadline));
    assert_eq!(case.resolution(), None);
    let expired = case.history.last().unwrap();
    assert_eq!(expired.actor, Actor::System);
    assert_eq!(expired.status, SessionStatus::Expired);
    assert_eq!(case.webhooks().last().map(String::as_str), Some("session_expired"));

    // Nothing brings it back.
    case.now += Duration::days(1);
    assert_eq!(
        case.try_submit(1, poa("John Smith", "2026-11-01")),
        Err(DomainError::SessionExpired)
    );
    assert_eq!(case.try_resubmit(0), Err(DomainError::SessionExpired));
    assert_eq!(case.session.expire(case.now, &case.ids), Ok(None));
    assert_eq!(case.session.start(case.now, &case.ids), Ok(None));
    // The partner may still record a decision; it stays expired.
    case.resolve(Decision::Rejected);
    assert_eq!(case.status(), SessionStatus::Expired);
}

#[test]
fn a_session_that_never_started_expires_too() {
    let mut case = Case::kyc();
    case.now = case.session.expires_at + Duration::minutes(5);
    assert_eq!(
        case.session.start(case.now, &case.ids),
        Err(DomainError::SessionExpired)
    );
    let t = case.session.expire(case.now, &case.ids).unwrap().expect("it is due");
    case.apply(t);
    assert_eq!(case.status(), SessionStatus::Expired);
}

#[test]
fn completed_and_reviewed_sessions_do_not_expire() {
    let mut case = Case::kyc();
    case.pass_kyc();
    assert_eq!(case.session.expire(t0() + Duration::days(60), &case.ids), Ok(None));

    let mut case = Case::kyc();
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("J. Smith", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::PendingReview);
    assert_eq!(case.session.expire(t0() + Duration::days(60), &case.ids), Ok(None));
}

#[test]
fn expiry_follows_the_requested_duration() {
    let catalog = Catalog::builtins();
    let config = kyc(&catalog);
    let ids = SequentialIds::default();
    let origin = Origin {
        access_token: AccessToken {
            hash: "h".into(),
            sealed: "s".into(),
        },
        configuration: &config,
        catalog: &catalog,
    };
    let mut d = draft(&config, json!([]));
    d.expires_in_minutes = Some(720);
    let t = Session::create(d, origin, partner(), t0(), &ids).unwrap();
    assert_eq!(t.session.expires_at, t0() + Duration::minutes(720));
}

// ---------------------------------------------------------------- start

#[test]
fn start_is_idempotent() {
    let mut case = Case::kyc();
    case.start();
    let started = case.session.clone();
    assert_eq!(case.session.start(case.now, &case.ids), Ok(None));
    assert_eq!(case.session.start(case.now + Duration::hours(1), &case.ids), Ok(None));
    assert_eq!(case.session, started);
    case.submit_both_documents();
    assert_eq!(case.session.start(case.now, &case.ids), Ok(None));
}

// ---------------------------------------------------------------- custom workflows

fn custom(v: Value) -> korala_domain::workflow::WorkflowDefinition {
    serde_json::from_value::<WorkflowDraft>(v)
        .expect("a well-formed workflow draft")
        .validate(None, korala_domain::webhooks::UrlPolicy::Production)
        .expect("a valid workflow")
}

#[test]
fn a_review_step_pauses_every_submission_for_the_partner() {
    let def = custom(json!({
        "name": "Source of funds",
        "slug": "source-of-funds",
        "maxAttempts": 2,
        "steps": [
            {"type": "capture", "config": {"fields": [
                {"name": "amount", "type": "number"},
                {"name": "origin", "type": "select", "options": ["salary", "savings", "inheritance"]}
            ]}},
            {"type": "validate", "config": {"rules": [
                {"name": "positive", "expression": "data.amount > 0", "onFailure": "retry", "message": "Give a positive amount."}
            ]}},
            {"type": "review", "config": {"reason": "Every source of funds is checked by hand."}},
            {"type": "output", "config": {"fields": {"amount": "data.amount", "origin": "data.origin"}}}
        ]
    }));
    let catalog = Catalog::new([def]);
    let config = configure(
        json!({"name": "Funds", "slug": "funds", "workflowSlugs": ["id-document", "source-of-funds"]}),
        &catalog,
    );
    let mut case = Case::new(
        &config,
        &catalog,
        json!([{"role": "subject", "displayName": "John Smith"}]),
    );
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, json!({"amount": -5, "origin": "salary"}));
    assert_eq!(case.outcome(1), ValidationOutcome::Retry);
    let events = case.submit(1, json!({"amount": 5000, "origin": "salary"}));
    assert!(
        ends_with(&events, &["session_workflow_pending_review", "session_pending_review"]),
        "{events:?}"
    );
    let paused = case
        .history
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::SessionWorkflowPendingReview { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(paused.as_deref(), Some("Every source of funds is checked by hand."));
    case.review(1, Decision::Approved);
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(
        case.wf(1).output.as_ref().unwrap(),
        &obj(json!({"amount": 5000, "origin": "salary"}))
    );
    assert_eq!(case.resolution(), Some((Decision::Approved, ResolvedBy::Auto)));
}

#[test]
fn a_workflow_with_two_capture_steps_counts_one_attempt_per_round() {
    let def = custom(json!({
        "name": "Two sides",
        "slug": "two-sides",
        "maxAttempts": 2,
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "front", "type": "text"}]}},
            {"type": "capture", "config": {"fields": [
                {"name": "back", "type": "text"},
                {"name": "note", "type": "text", "required": false}
            ]}},
            {"type": "validate", "config": {"rules": [
                {"name": "sharp", "expression": "data.back != 'blurry'", "onFailure": "retry"}
            ]}},
            {"type": "output", "config": {}}
        ]
    }));
    let catalog = Catalog::new([def]);
    let config = configure(
        json!({"name": "Two sides", "slug": "two-sides", "workflowSlugs": ["two-sides"]}),
        &catalog,
    );
    let mut case = Case::new(&config, &catalog, json!([]));
    case.start();
    case.submit(0, json!({"front": "doc_front"}));
    assert_eq!(case.wf(0).attempts, 1);
    case.submit(0, json!({"back": "blurry", "note": "sorry"}));
    assert_eq!(case.wf(0).attempts, 1, "the second capture belongs to the same attempt");
    assert_eq!(case.outcome(0), ValidationOutcome::Retry);
    assert_eq!(case.wf(0).waiting, Some(Waiting::Input));
    // The retry asks for the back again, not the front.
    assert!(matches!(
        case.try_submit(0, json!({"front": "x"})),
        Err(DomainError::Invalid(_))
    ));
    case.submit(0, json!({"back": "doc_back"}));
    assert_eq!(case.wf(0).attempts, 2);
    assert_eq!(case.status(), SessionStatus::Completed);
    assert_eq!(
        case.wf(0).output.as_ref().unwrap(),
        &obj(json!({"front": "doc_front", "back": "doc_back"})),
        "earlier captures are kept, the retried step's answers replaced"
    );

    // Two blurry rounds use up both attempts.
    let mut case = Case::new(&config, &catalog, json!([]));
    case.start();
    for _ in 0..2 {
        if case.wf(0).attempts == 0 {
            case.submit(0, json!({"front": "doc_front"}));
        }
        case.submit(0, json!({"back": "blurry"}));
    }
    assert_eq!(case.wf(0).attempts, 2);
    assert_eq!(case.wf(0).status, WorkflowStatus::Failed);
    assert_eq!(case.status(), SessionStatus::Failed);
}

// ---------------------------------------------------------------- configurations

#[test]
fn a_configuration_without_workflows_is_refused() {
    let catalog = Catalog::builtins();
    for plan in [json!({"workflowSlugs": []}), json!({"workflowBindings": []})] {
        let mut v = json!({"name": "Empty", "slug": "empty"});
        v.as_object_mut().unwrap().extend(obj(plan.clone()));
        let result = serde_json::from_value::<ConfigurationDraft>(v)
            .unwrap()
            .validate(org(), &catalog, t0());
        assert!(result.is_err(), "{plan}: {result:?}");
    }
}

// ---------------------------------------------------------------- checks

/// A KYB case waiting for its beneficial owner's PEP check.
fn kyb_at_the_check() -> Case {
    let catalog = Catalog::builtins();
    let mut case = Case::new(&kyb(&catalog), &catalog, kyb_participants());
    case.start();
    case.submit(0, id_doc("John Smith"));
    case.submit(1, poa("John Smith", "2026-11-01"));
    assert_eq!(case.session.checks.len(), 1);
    case
}

/// A plain configuration screening the subject against sanctions lists.
fn sanctions_case() -> Case {
    let catalog = Catalog::builtins();
    let config = configure(
        json!({"name": "Sanctions", "slug": "sanctions", "workflowSlugs": ["id-document", "sanctions-check"]}),
        &catalog,
    );
    let mut case = Case::new(
        &config,
        &catalog,
        json!([{"role": "subject", "displayName": "Ivan Example"}]),
    );
    case.start();
    case.submit(0, id_doc("Ivan Example"));
    case
}

fn finding(name: &str, strength: MatchStrength) -> Finding {
    Finding {
        entity_id: format!("ex-{}", name.to_lowercase().replace(' ', "-")),
        entity_name: name.into(),
        matched_name: name.into(),
        score: 0.97,
        strength,
        topics: vec!["role.pep".into()],
        datasets: vec!["example".into()],
        birth_date_match: None,
        country_match: Some(true),
    }
}

fn screened(findings: Vec<Finding>) -> CheckOutcome {
    CheckOutcome::Screened {
        provider: "korala-screening".into(),
        findings,
    }
}

impl Case {
    fn check_id(&self) -> CheckId {
        self.session.checks.last().expect("a check").id.clone()
    }

    fn try_record(&self, outcome: CheckOutcome) -> Option<Transition> {
        self.session
            .record_check(&self.check_id(), outcome, self.now, &self.ids)
            .expect("recording succeeds")
    }

    fn record(&mut self, outcome: CheckOutcome) -> Vec<String> {
        let t = self.try_record(outcome).expect("the check was pending");
        self.apply(t)
    }
}

#[test]
fn a_clear_check_completes_its_workflow_and_the_case_waits_for_the_final_review() {
    let mut case = kyb_at_the_check();
    let subject = case.session.screening_subject(&case.check_id()).expect("a subject");
    assert_eq!(
        subject.name, "Jane Smith",
        "the beneficial owner is screened, not the representative"
    );
    assert_eq!(subject.entity, SubjectKind::Person);
    assert_eq!(subject.birth_date, None, "John's document says nothing of Jane");
    let events = case.record(screened(vec![]));
    assert!(
        ends_with(
            &events,
            &[
                "session_check_completed",
                "session_workflow_completed",
                "session_pending_review"
            ]
        ),
        "{events:?}"
    );
    let check = &case.session.checks[0];
    assert_eq!(check.status, CheckStatus::Completed);
    assert_eq!(check.provider.as_deref(), Some("korala-screening"));
    assert_eq!(case.wf(2).output.as_ref().unwrap()["verdict"], "clear");
    assert_eq!(case.status(), SessionStatus::PendingReview, "final manual review");
    // Recording again (a redelivered job) records nothing.
    assert!(case.try_record(screened(vec![])).is_none());
}

#[test]
fn a_possible_pep_match_waits_for_the_partners_review() {
    let mut case = kyb_at_the_check();
    let events = case.record(screened(vec![finding("Jane Smith", MatchStrength::Possible)]));
    assert!(
        ends_with(
            &events,
            &[
                "session_check_completed",
                "session_workflow_pending_review",
                "session_pending_review"
            ]
        ),
        "{events:?}"
    );
    assert_eq!(case.wf(2).status, WorkflowStatus::PendingReview);
    let paused = case.history.iter().rev().find_map(|e| match &e.kind {
        EventKind::SessionWorkflowPendingReview { reason, .. } => reason.clone(),
        _ => None,
    });
    assert_eq!(paused.as_deref(), Some("possible PEP match: Jane Smith"));
    assert_eq!(case.session.checks[0].findings.len(), 1);
    let events = case.review(2, Decision::Approved);
    assert!(events.contains(&"session_workflow_completed".to_owned()), "{events:?}");
    assert_eq!(case.wf(2).status, WorkflowStatus::Completed);
    assert_eq!(case.wf(2).output.as_ref().unwrap()["verdict"], "possible_match");
    assert_eq!(case.status(), SessionStatus::PendingReview, "now the final review");
}

#[test]
fn a_strong_sanctions_match_fails_the_workflow_and_the_session() {
    let mut case = sanctions_case();
    let subject = case.session.screening_subject(&case.check_id()).expect("a subject");
    assert_eq!(
        subject.birth_date.as_deref(),
        Some("1990-04-12"),
        "from the identity document"
    );
    assert_eq!(subject.countries, ["gb"]);
    let events = case.record(screened(vec![
        finding("Ivan Example", MatchStrength::Strong),
        finding("Ivan Exampel", MatchStrength::Possible),
    ]));
    assert!(
        ends_with(
            &events,
            &[
                "session_check_completed",
                "session_workflow_failed",
                "session_failed",
                "session_resolved"
            ]
        ),
        "{events:?}"
    );
    assert_eq!(case.status(), SessionStatus::Failed);
    assert_eq!(case.resolution(), Some((Decision::Rejected, ResolvedBy::Auto)));
    assert!(
        case.wf(1)
            .failure
            .as_deref()
            .unwrap()
            .starts_with("strong sanctions match: Ivan Example")
    );
}

#[test]
fn a_strong_pep_match_is_reviewed_not_refused() {
    let mut case = kyb_at_the_check();
    case.record(screened(vec![finding("Jane Smith", MatchStrength::Strong)]));
    assert_eq!(case.wf(2).status, WorkflowStatus::PendingReview);
}

#[test]
fn a_provider_that_never_answers_fails_the_check_and_its_workflow() {
    let mut case = sanctions_case();
    let events = case.record(CheckOutcome::Failed {
        provider: "korala-screening".into(),
        reason: "the provider timed out 5 times".into(),
    });
    assert!(events.contains(&"session_workflow_failed".to_owned()), "{events:?}");
    let check = &case.session.checks[0];
    assert_eq!(check.status, CheckStatus::Failed);
    assert_eq!(check.failure.as_deref(), Some("the provider timed out 5 times"));
    assert_eq!(case.status(), SessionStatus::Failed);
}

#[test]
fn an_answer_for_a_reset_check_records_nothing() {
    let mut case = kyb_at_the_check();
    let old = case.check_id();
    case.resubmit(1);
    assert!(
        case.session.checks.iter().all(|c| c.id != old),
        "the reset workflow's check is gone"
    );
    let answer = case.session.record_check(&old, screened(vec![]), case.now, &case.ids);
    assert_eq!(answer, Ok(None));
}

// ---------------------------------------------------------------- risk

#[test]
fn the_risk_step_scores_the_evidence_before_it_and_resubmission_recomputes_only_what_depended_on_it() {
    let catalog = Catalog::builtins();
    let config = configure(
        json!({"name": "Risk", "slug": "risk", "workflowSlugs": ["id-document", "risk-assessment", "proof-of-address"]}),
        &catalog,
    );
    let mut case = Case::new(
        &config,
        &catalog,
        json!([{"role": "subject", "displayName": "Jane Doe"}]),
    );
    case.start();
    let mut document = id_doc("Jane Doe");
    document["issuingCountry"] = json!("ir");
    let events = case.submit(0, document);
    assert!(events.contains(&"session_risk_assessed".to_owned()), "{events:?}");
    let risk = case.session.risk.clone().expect("a risk summary");
    assert_eq!(risk.session_workflow_id.as_ref(), Some(&case.wf(1).id));
    assert!(risk.factors.iter().any(|f| f.name == "country_high_risk"), "{risk:?}");
    assert_eq!(risk.score, 50, "{risk:?}");
    // 50 is the default review threshold: the partner looks before it goes on.
    assert_eq!(case.wf(1).status, WorkflowStatus::PendingReview);
    case.review(1, Decision::Approved);
    assert_eq!(case.wf(1).output.as_ref().unwrap()["riskScore"], 50);
    case.submit(2, poa("Jane Doe", "2026-11-01"));
    assert_eq!(case.status(), SessionStatus::Completed);

    // Redoing the proof of address (after the risk step) keeps the score...
    case.resubmit(2);
    assert_eq!(case.session.risk.as_ref(), Some(&risk));
    // ...redoing the document (before it) drops it, and it is computed again.
    case.resubmit(0);
    assert_eq!(case.session.risk, None);
    case.submit(0, id_doc("Jane Doe"));
    let again = case.session.risk.clone().expect("recomputed");
    assert!(again.score < 30, "a British passport scores low: {again:?}");
    assert_eq!(case.wf(1).status, WorkflowStatus::Completed);
}
