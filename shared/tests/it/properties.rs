//! Property tests of the session state machine: random sequences of end-user,
//! partner and service actions against a few configurations, checking after
//! every step what must hold whatever happened before.

use chrono::Duration;
use korala_domain::catalog::Catalog;
use korala_domain::configuration::{Configuration, ConfigurationDraft};
use korala_domain::events::Event;
use korala_domain::ids::OrgId;
use korala_domain::invariants;
use korala_domain::session::{
    AccessToken, Decision, Origin, ResolvedBy, Session, SessionDraft, SessionStatus, SessionSummary, SessionWorkflow,
    Waiting, WorkflowStatus,
};
use korala_domain::tenancy::{Actor, Mode, Tenant};
use korala_domain::testing::{SequentialIds, t0};
use korala_domain::transition::Transition;
use korala_domain::workflow::{Step, WorkflowDefinition, WorkflowDraft};
use korala_domain::{DomainError, JsonMap};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

fn partner() -> Actor {
    Actor::Partner {
        api_key_id: "ak_test_properties".into(),
    }
}

/// Two capture steps, a rule that may ask for review or a retry, and a
/// `review` step that pauses every completed round for the partner.
fn source_of_funds() -> WorkflowDefinition {
    serde_json::from_value::<WorkflowDraft>(json!({
        "name": "Source of funds",
        "slug": "source-of-funds",
        "maxAttempts": 2,
        "steps": [
            {"type": "capture", "config": {"fields": [
                {"name": "amount", "type": "number"},
                {"name": "origin", "type": "select", "options": ["salary", "savings", "inheritance"]}
            ]}},
            {"type": "validate", "config": {"rules": [
                {"name": "positive", "expression": "data.amount > 0", "onFailure": "retry"},
                {"name": "moderate", "expression": "data.amount < 1000000", "onFailure": "review"}
            ]}},
            {"type": "capture", "config": {"fields": [{"name": "evidence", "type": "document"}]}},
            {"type": "review", "config": {"reason": "Checked by hand."}},
            {"type": "output", "config": {"fields": {"amount": "data.amount", "origin": "data.origin"}}}
        ]
    }))
    .unwrap()
    .validate(None, korala_domain::webhooks::UrlPolicy::Production)
    .unwrap()
}

struct World {
    catalog: Catalog,
    configurations: Vec<(Configuration, Value)>,
}

fn world() -> World {
    let catalog = Catalog::new([source_of_funds()]);
    let configure = |v: Value| {
        serde_json::from_value::<ConfigurationDraft>(v)
            .unwrap()
            .validate(Tenant::new(OrgId::parse("org_1").unwrap(), Mode::Live), &catalog, t0())
            .unwrap()
    };
    let kyc = ["id-document", "proof-of-address"];
    let configurations = vec![
        (
            configure(json!({"name": "KYC", "slug": "kyc", "workflowSlugs": kyc})),
            json!([]),
        ),
        (
            configure(
                json!({"name": "KYC reviewed", "slug": "kyc-reviewed", "workflowSlugs": kyc,
                             "finalManualReviewRequired": true}),
            ),
            json!([{"role": "subject", "displayName": "John Smith"}]),
        ),
        (
            configure(json!({"name": "Collect", "slug": "collect", "workflowSlugs": kyc, "isVerification": false})),
            json!([]),
        ),
        (
            configure(json!({"name": "Funds", "slug": "funds",
                             "workflowSlugs": ["id-document", "source-of-funds", "proof-of-address"]})),
            json!([{"role": "subject", "displayName": "John Smith"}]),
        ),
        (
            configure(json!({
                "name": "KYB", "slug": "kyb",
                "workflowBindings": [
                    {"workflowSlug": "id-document", "participantRoles": ["representative", "director"], "outputKey": "rep_id"},
                    {"workflowSlug": "proof-of-address", "participantRoles": ["representative", "director"], "outputKey": "rep_poa"},
                    {"workflowSlug": "pep-check", "participantRoles": ["beneficial_owner"], "outputKey": "ubo_pep"}
                ],
                "subjectKind": "business", "autoResolve": false, "finalManualReviewRequired": true
            })),
            json!([
                {"role": "subject", "displayName": "Acme Corp"},
                {"role": "director", "displayName": "John Smith"},
                {"role": "beneficial_owner", "displayName": "Jane Smith"},
                {"role": "representative", "displayName": "John Smith"}
            ]),
        ),
    ];
    World {
        catalog,
        configurations,
    }
}

fn create(world: &World, which: usize, ids: &SequentialIds) -> Session {
    let (configuration, participants) = &world.configurations[which];
    let draft: SessionDraft = serde_json::from_value(json!({
        "configurationSlug": configuration.slug,
        "externalUserId": "usr_1",
        "participants": participants,
    }))
    .unwrap();
    let origin = Origin {
        access_token: AccessToken {
            hash: "h".into(),
            sealed: "s".into(),
        },
        configuration,
        catalog: &world.catalog,
    };
    let t = Session::create(draft, origin, partner(), t0(), ids).expect("created");
    check_transition(None, &t);
    t.session
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Valid,
    Invalid,
    NearMatch,
    Mismatch,
}

#[derive(Debug, Clone)]
enum Op {
    Start,
    /// `None` submits to the current workflow.
    Submit(Option<usize>, Kind),
    Review(Option<usize>, Decision),
    Resolve(Decision),
    Resubmit(usize),
    /// Advance the clock, then run the expiry sweep.
    Wait(i64),
}

fn decision() -> impl Strategy<Value = Decision> {
    prop_oneof![Just(Decision::Approved), Just(Decision::Rejected)]
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        6 => Just(Kind::Valid),
        1 => Just(Kind::Invalid),
        2 => Just(Kind::NearMatch),
        2 => Just(Kind::Mismatch),
    ];
    let target = prop_oneof![3 => Just(None), 1 => (0usize..8).prop_map(Some)];
    prop_oneof![
        1 => Just(Op::Start),
        10 => (target.clone(), kind).prop_map(|(t, k)| Op::Submit(t, k)),
        3 => (target, decision()).prop_map(|(t, d)| Op::Review(t, d)),
        1 => decision().prop_map(Op::Resolve),
        2 => (0usize..8).prop_map(Op::Resubmit),
        1 => prop_oneof![Just(0i64), 1i64..720, Just(1500)].prop_map(Op::Wait),
    ]
}

/// What the end user sends for the capture step a workflow waits on (or its
/// first one), recognised by its fields.
fn data_for(w: &SessionWorkflow, kind: Kind) -> JsonMap {
    let steps = &w.definition.steps;
    let capture = match steps.get(w.step) {
        Some(Step::Capture(c)) => Some(c),
        _ => steps.iter().find_map(|s| match s {
            Step::Capture(c) => Some(c),
            _ => None,
        }),
    };
    let has = |name: &str| capture.is_some_and(|c| c.fields.iter().any(|f| f.name == name));
    let name = match kind {
        Kind::NearMatch => "J. Smith",
        Kind::Mismatch => "Maria Garcia",
        _ => "John Smith",
    };
    let v = if matches!(kind, Kind::Invalid) {
        json!({"fullName": 42, "unexpected": true})
    } else if has("dateOfBirth") {
        let expiry = if matches!(kind, Kind::Mismatch) {
            "2020-01-01"
        } else {
            "2031-01-01"
        };
        json!({"documentType": "passport", "documentNumber": "X1", "fullName": name,
               "dateOfBirth": "1990-04-12", "expiryDate": expiry, "issuingCountry": "GB"})
    } else if has("issueDate") {
        json!({"documentType": "bank_statement", "fullName": name, "addressLine1": "1 High Street",
               "city": "London", "country": "GB", "issueDate": "2026-11-01"})
    } else if has("amount") {
        let amount = match kind {
            Kind::NearMatch => 5_000_000,
            Kind::Mismatch => -1,
            _ => 5_000,
        };
        json!({"amount": amount, "origin": "salary"})
    } else if has("evidence") {
        json!({"evidence": "doc_payslip"})
    } else {
        json!({})
    };
    v.as_object().cloned().unwrap()
}

/// What every committed transition satisfies.
fn check_transition(before: Option<&Session>, t: &Transition) {
    let after = &t.session;
    if let Err(e) = invariants::check(after) {
        panic!("invariant broken: {e}\n{after:#?}");
    }
    let previous = before.map_or(0, |s| s.version);
    assert_eq!(after.version, previous + 1);
    assert_eq!(t.expected_version(), before.map(|s| s.version));
    assert!(!t.events.is_empty());
    for (i, e) in t.events.iter().enumerate() {
        assert_eq!(e.version, after.version);
        assert_eq!(e.sequence as usize, i);
        assert_eq!(e.status, after.status);
        assert_eq!(e.resolution, after.resolution.as_ref().map(|r| r.decision));
        // Events are stored and delivered as JSON.
        let json = serde_json::to_value(e).unwrap();
        assert_eq!(
            serde_json::from_value::<Event>(json.clone()).ok().as_ref(),
            Some(e),
            "{json}"
        );
    }
    // So are sessions.
    let json = serde_json::to_value(after).unwrap();
    assert_eq!(serde_json::from_value::<Session>(json).ok().as_ref(), Some(after));
    // And their summaries, which listings read instead of the session.
    let summary = SessionSummary::from(after);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(
        serde_json::from_value::<SessionSummary>(json).ok().as_ref(),
        Some(&summary)
    );
    assert_eq!((&summary.id, summary.status), (&after.id, after.status));
    for minutes in [0, 1, 10, 60, 600, 6000] {
        let at = after.updated_at + Duration::minutes(minutes);
        assert_eq!(
            summary.is_overdue(at),
            after.is_overdue(at),
            "overdue at +{minutes} min"
        );
    }
    assert_eq!(summary.is_overdue(after.expires_at), after.is_overdue(after.expires_at));
    if let Some(before) = before {
        assert_eq!(after.id, before.id);
        assert_eq!(after.participants, before.participants);
        assert_eq!(after.created_at, before.created_at);
        assert_eq!(
            after.workflows.iter().map(|w| &w.id).collect::<Vec<_>>(),
            before.workflows.iter().map(|w| &w.id).collect::<Vec<_>>()
        );
        if before.status == SessionStatus::Expired {
            assert_eq!(after.status, SessionStatus::Expired, "a session never leaves `expired`");
        }
    }
}

fn is_closed(status: SessionStatus) -> bool {
    matches!(
        status,
        SessionStatus::Completed | SessionStatus::Failed | SessionStatus::Expired
    )
}

fn pick(session: &Session, target: Option<usize>) -> usize {
    target.map_or_else(
        || session.current_index().unwrap_or(session.workflows.len() - 1),
        |i| i % session.workflows.len(),
    )
}

fn run(which: usize, ops: Vec<Op>) {
    let world = world();
    let ids = SequentialIds::default();
    let mut now = t0();
    let mut session = create(&world, which, &ids);
    for op in ops {
        let before = session.clone();
        let result: Result<Option<Transition>, DomainError> = match &op {
            Op::Start => session.start(now, &ids),
            Op::Submit(target, kind) => {
                let i = pick(&session, *target);
                let data = data_for(&session.workflows[i], *kind);
                let result = session.submit(session.workflows[i].id.as_str(), &data, now, &ids);
                if is_closed(before.status) {
                    assert!(result.is_err(), "a {} session took a submission", before.status);
                }
                if matches!(kind, Kind::Invalid) {
                    let awaited = before.status == SessionStatus::InProgress
                        && !before.is_overdue(now)
                        && before.current_index() == Some(i)
                        && before.workflows[i].waiting == Some(Waiting::Input);
                    if awaited {
                        assert!(matches!(result, Err(DomainError::Invalid(_))), "{result:?}");
                    } else {
                        assert!(result.is_err(), "malformed data was accepted: {result:?}");
                    }
                }
                if let Ok(t) = &result {
                    assert_eq!(Some(i), before.current_index(), "only the current workflow takes data");
                    if before.status != SessionStatus::Created {
                        assert_eq!(before.workflows[i].waiting, Some(Waiting::Input));
                    }
                    assert_eq!(t.session.workflows[..i], before.workflows[..i]);
                }
                result.map(Some)
            }
            Op::Review(target, decision) => {
                let i = pick(&session, *target);
                session
                    .review(
                        session.workflows[i].id.as_str(),
                        *decision,
                        "looked at it",
                        partner(),
                        now,
                        &ids,
                    )
                    .map(Some)
            }
            Op::Resolve(decision) => {
                let result = session.resolve(*decision, "partner decision", partner(), now, &ids);
                if !session.policy.is_verification {
                    assert_eq!(result, Err(DomainError::ResolutionDisabled));
                }
                if let Ok(t) = &result {
                    let r = t.session.resolution.as_ref().expect("resolved");
                    assert_eq!((r.decision, r.resolved_by), (*decision, ResolvedBy::Partner));
                }
                result.map(Some)
            }
            Op::Resubmit(target) => {
                let i = target % session.workflows.len();
                let result = session.resubmit(session.workflows[i].id.as_str(), partner(), now, &ids);
                if let Ok(t) = &result {
                    let after = &t.session;
                    assert_eq!(
                        after.workflows[..i],
                        before.workflows[..i],
                        "earlier workflows are kept"
                    );
                    assert!(
                        after.workflows[i + 1..].iter().all(SessionWorkflow::is_pristine),
                        "later workflows are reset"
                    );
                    assert_eq!(after.workflows[i].attempts, 0);
                    assert_eq!(after.workflows[i].output, None);
                    assert_eq!(after.workflows[i].validation, None);
                    assert_eq!(after.current_index(), Some(i));
                    assert!(after.status.is_open());
                    assert_eq!(after.resolution, None);
                    assert!(
                        after
                            .checks
                            .iter()
                            .all(|c| after.workflow_index(c.session_workflow_id.as_str()) <= Some(i))
                    );
                }
                result.map(Some)
            }
            Op::Wait(minutes) => {
                now += Duration::minutes(*minutes);
                let result = session.expire(now, &ids);
                if let Ok(Some(t)) = &result {
                    assert!(before.status.can_expire());
                    assert_eq!(t.session.status, SessionStatus::Expired);
                    assert_eq!(
                        t.events.last().map(|e| e.kind.name()).as_deref(),
                        Some("session_expired")
                    );
                }
                if matches!(result, Ok(None)) {
                    assert!(!session.is_overdue(now), "an overdue session was not expired");
                }
                result
            }
        };
        match result {
            Ok(Some(t)) => {
                check_transition(Some(&before), &t);
                let after = &t.session;
                // The partner's decision stands until the partner or a
                // resubmission changes it.
                if let Some(r) = &before.resolution
                    && r.resolved_by == ResolvedBy::Partner
                    && !matches!(op, Op::Resolve(_) | Op::Resubmit(_))
                {
                    assert_eq!(after.resolution.as_ref(), Some(r), "{op:?}");
                }
                // Closed sessions stay closed, except that a resubmission
                // reopens them.
                if is_closed(before.status) && !matches!(op, Op::Resubmit(_)) {
                    assert_eq!(after.status, before.status, "{op:?}");
                }
                // Automatic resolution follows the policy.
                if after
                    .resolution
                    .as_ref()
                    .is_some_and(|r| r.resolved_by == ResolvedBy::Auto)
                {
                    let p = after.policy;
                    assert!(p.is_verification && p.auto_resolve && !p.final_manual_review_required);
                }
                let p = after.policy;
                if after.status == SessionStatus::Completed
                    && p.is_verification
                    && (p.final_manual_review_required || p.auto_resolve)
                {
                    assert!(after.resolution.is_some(), "a completed verification is resolved");
                }
                session = t.session;
            }
            Ok(None) => {}
            Err(e) => {
                assert!(!matches!(e, DomainError::InvariantViolated(_)), "{op:?}: {e}");
                assert_eq!(session, before, "a refused change changes nothing");
            }
        }
        assert_eq!(
            session
                .workflows
                .iter()
                .filter(|w| w.status == WorkflowStatus::Completed)
                .count()
                + session.workflows.iter().filter(|w| w.is_pristine()).count()
                + usize::from(
                    session
                        .current_index()
                        .is_some_and(|i| !session.workflows[i].is_pristine())
                ),
            session.workflows.len(),
            "completed, then at most one active, then untouched"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_journeys_keep_the_invariants(which in 0usize..5, ops in prop::collection::vec(op(), 0..30)) {
        run(which, ops);
    }
}

/// The generators reach the interesting states; without this, the property
/// above could pass by never leaving `created`.
#[test]
fn the_operations_reach_every_outcome() {
    let world = world();
    let mut reached = std::collections::HashSet::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (0usize..5, prop::collection::vec(op(), 0..30));
    for _ in 0..100 {
        let (which, ops) = strategy.new_tree(&mut runner).unwrap().current();
        let ids = SequentialIds::default();
        let mut now = t0();
        let mut session = create(&world, which, &ids);
        reached.insert(session.status);
        for op in ops {
            let next = match op {
                Op::Start => session.start(now, &ids).ok().flatten(),
                Op::Submit(target, kind) => {
                    let i = pick(&session, target);
                    let data = data_for(&session.workflows[i], kind);
                    session.submit(session.workflows[i].id.as_str(), &data, now, &ids).ok()
                }
                Op::Review(target, d) => {
                    let i = pick(&session, target);
                    session
                        .review(session.workflows[i].id.as_str(), d, "r", partner(), now, &ids)
                        .ok()
                }
                Op::Resolve(d) => session.resolve(d, "r", partner(), now, &ids).ok(),
                Op::Resubmit(i) => {
                    let i = i % session.workflows.len();
                    session
                        .resubmit(session.workflows[i].id.as_str(), partner(), now, &ids)
                        .ok()
                }
                Op::Wait(m) => {
                    now += Duration::minutes(m);
                    session.expire(now, &ids).ok().flatten()
                }
            };
            if let Some(t) = next {
                session = t.session;
                reached.insert(session.status);
            }
        }
    }
    for status in SessionStatus::ALL {
        assert!(reached.contains(&status), "{status} never reached: {reached:?}");
    }
}
