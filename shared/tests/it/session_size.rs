//! A session is stored as one item (DynamoDB keeps at most 400 KB a
//! item): what end users submit, what mappings produce and what providers
//! answer is bounded, and exceeding a bound is refused (a submission) or
//! fails its step (what the service produces), never an item too large to
//! store.

use korala_domain::checks::CheckOutcome;
use korala_domain::screening::{Finding, MatchStrength};
use korala_domain::session::{CheckStatus, Session, WorkflowStatus};
use korala_domain::tenancy::Actor;
use korala_domain::testing::{SequentialIds, t0};

use crate::support;
use korala_domain::webhooks::UrlPolicy;
use korala_domain::workflow::WorkflowDraft;
use korala_domain::{DomainError, JsonMap};
use serde_json::{Value, json};

/// Whole sessions are kept under this, uncompressed.
const SESSION_BYTES: usize = 256 * 1024;

/// A started session of the workflow `steps` describe, with `context`.
fn started(steps: Value, context: Value, ids: &SequentialIds) -> Session {
    let definition = serde_json::from_value::<WorkflowDraft>(json!({
        "name": "Sized", "slug": "sized", "steps": steps
    }))
    .unwrap()
    .validate(None, UrlPolicy::Production)
    .expect("a valid workflow");
    let actor = Actor::Partner {
        api_key_id: "ak_test_sizes".into(),
    };
    support::started(definition, context, actor, ids)
}

fn try_submit(session: &Session, data: Value, ids: &SequentialIds) -> Result<Session, DomainError> {
    let data: JsonMap = data.as_object().cloned().unwrap();
    let swf = session.workflows[0].id.to_string();
    session.submit(&swf, &data, t0(), ids).map(|t| t.session)
}

fn size(session: &Session) -> usize {
    serde_json::to_vec(session).unwrap().len()
}

fn capture_one() -> Value {
    json!({"type": "capture", "config": {"fields": [{"name": "name", "type": "text"}]}})
}

/// A context string of 15,000 bytes, which mappings can copy cheaply.
fn fifteen_k() -> Value {
    json!({"s": "x".repeat(15_000)})
}

#[test]
fn a_submission_over_its_budget_is_refused_naming_the_data() {
    let ids = SequentialIds::default();
    let fields: Vec<Value> = (0..140)
        .map(|i| json!({"name": format!("f{i}"), "type": "text"}))
        .collect();
    let session = started(
        json!([{"type": "capture", "config": {"fields": fields}}]),
        json!({}),
        &ids,
    );
    let data: JsonMap = (0..140).map(|i| (format!("f{i}"), json!("y".repeat(500)))).collect();
    match try_submit(&session, Value::Object(data), &ids) {
        Err(DomainError::Invalid(errors)) => {
            let errors: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
            assert_eq!(errors, [("data", "must serialise to at most 65536 bytes")]);
        }
        other => panic!("not refused: {:?}", other.map(|s| s.status)),
    }
    // Half of it is fine.
    let data: JsonMap = (0..140)
        .map(|i| (format!("f{i}"), json!("y".repeat(if i < 70 { 500 } else { 1 }))))
        .collect();
    assert!(try_submit(&session, Value::Object(data), &ids).is_ok());
}

#[test]
fn a_submission_that_would_outgrow_the_session_is_refused_naming_the_data() {
    let ids = SequentialIds::default();
    let capture = |step: usize| {
        let fields: Vec<Value> = (0..120)
            .map(|i| json!({"name": format!("s{step}f{i}"), "type": "text"}))
            .collect();
        json!({"type": "capture", "config": {"fields": fields}})
    };
    let mut session = started(json!((0..6).map(capture).collect::<Vec<_>>()), json!({}), &ids);
    let mut accepted = 0;
    let refusal = loop {
        let data: JsonMap = (0..120)
            .map(|i| (format!("s{accepted}f{i}"), json!("y".repeat(500))))
            .collect();
        match try_submit(&session, Value::Object(data), &ids) {
            Ok(next) => {
                session = next;
                accepted += 1;
                assert!(accepted < 6, "every submission was accepted");
            }
            Err(refusal) => break refusal,
        }
    };
    assert!(accepted >= 3, "{accepted}");
    assert!(size(&session) <= SESSION_BYTES);
    match refusal {
        DomainError::Invalid(errors) => {
            let errors: Vec<_> = errors.iter().collect();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, "data");
            assert!(
                errors[0].message.starts_with("the session would hold ")
                    && errors[0].message.ends_with("at most 262144"),
                "{}",
                errors[0].message
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_output_over_its_budget_fails_the_workflow() {
    let ids = SequentialIds::default();
    let copies = "[context.s, context.s, context.s, context.s, context.s]";
    let session = started(
        json!([capture_one(), {"type": "output", "config": {"fields": {"copies": copies}}}]),
        fifteen_k(),
        &ids,
    );
    let session = try_submit(&session, json!({"name": "Jane"}), &ids).unwrap();
    let workflow = &session.workflows[0];
    assert_eq!(workflow.status, WorkflowStatus::Failed);
    assert_eq!(workflow.output, None);
    let failure = workflow.failure.as_deref().unwrap_or_default();
    assert!(
        failure.starts_with("output step: the output serialises to ") && failure.ends_with("at most 65536"),
        "{failure}"
    );
}

#[test]
fn extracted_data_that_would_outgrow_the_session_fails_the_workflow() {
    let ids = SequentialIds::default();
    let copies = "[context.s, context.s, context.s, context.s]";
    let extract = |name: &str| json!({"type": "extract", "config": {"fields": {name: copies}}});
    let session = started(
        json!([
            capture_one(),
            extract("a"),
            extract("b"),
            extract("c"),
            extract("d"),
            extract("e")
        ]),
        fifteen_k(),
        &ids,
    );
    let session = try_submit(&session, json!({"name": "Jane"}), &ids).unwrap();
    let workflow = &session.workflows[0];
    assert_eq!(workflow.status, WorkflowStatus::Failed);
    let failure = workflow.failure.as_deref().unwrap_or_default();
    assert!(
        failure.starts_with("extract step: the session would hold ") && failure.ends_with("at most 262144"),
        "{failure}"
    );
    assert!(size(&session) < SESSION_BYTES, "{}", size(&session));
    // What fitted was kept.
    assert!(workflow.data.as_ref().unwrap().contains_key("c"));
}

#[test]
fn an_output_nested_deeper_than_a_session_can_hold_fails_the_workflow() {
    let ids = SequentialIds::default();
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let session = started(
        json!([capture_one(), {"type": "output", "config": {"fields": {"deep": deep}}}]),
        json!({}),
        &ids,
    );
    let session = try_submit(&session, json!({"name": "Jane"}), &ids).unwrap();
    let workflow = &session.workflows[0];
    assert_eq!(workflow.status, WorkflowStatus::Failed);
    let failure = workflow.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("nests 41 levels deep; at most 32"), "{failure}");
    // The stored form reads back: serde_json refuses JSON past 128 levels.
    let stored = serde_json::to_string(&session).unwrap();
    assert!(serde_json::from_str::<Session>(&stored).is_ok());
}

fn finding(i: usize, padding: usize) -> Finding {
    Finding {
        entity_id: format!("ex-{i}"),
        entity_name: "Jane Doe".into(),
        matched_name: "Jane Doe".into(),
        score: 0.97,
        strength: MatchStrength::Strong,
        topics: vec!["role.pep".into()],
        datasets: vec!["d".repeat(padding)],
        birth_date_match: None,
        country_match: Some(true),
    }
}

#[test]
fn a_providers_answer_over_its_budget_fails_the_check() {
    let ids = SequentialIds::default();
    let session = started(
        json!([{"type": "check", "config": {"kind": "pep"}}, {"type": "output", "config": {}}]),
        json!({}),
        &ids,
    );
    let check = session.checks[0].id.clone();
    let outcome = CheckOutcome::Screened {
        provider: "p".into(),
        findings: (0..10).map(|i| finding(i, 5_000)).collect(),
    };
    let session = session
        .record_check(&check, outcome, t0(), &ids)
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(session.checks[0].status, CheckStatus::Failed);
    assert!(session.checks[0].findings.is_empty());
    let reason = session.checks[0].failure.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("the provider's answer serialises to ") && reason.ends_with("at most 32768"),
        "{reason}"
    );
    assert_eq!(session.workflows[0].status, WorkflowStatus::Failed);
}

#[test]
fn a_providers_failure_reason_is_kept_short() {
    let ids = SequentialIds::default();
    let session = started(
        json!([{"type": "check", "config": {"kind": "pep"}}, {"type": "output", "config": {}}]),
        json!({}),
        &ids,
    );
    let check = session.checks[0].id.clone();
    let outcome = CheckOutcome::Failed {
        provider: "p".into(),
        reason: "z".repeat(100_000),
    };
    let session = session
        .record_check(&check, outcome, t0(), &ids)
        .unwrap()
        .unwrap()
        .session;
    let reason = session.checks[0].failure.as_deref().unwrap_or_default();
    assert!(reason.len() <= 1_000, "{}", reason.len());
    assert!(size(&session) < 50_000, "{}", size(&session));
}

#[test]
fn a_rules_error_is_kept_short_however_large_the_values_it_names() {
    let ids = SequentialIds::default();
    let session = started(
        json!([capture_one(), {"type": "validate", "config": {"rules": [
            {"name": "odd", "expression": "context.s + 1 == 2", "onFailure": "review"}
        ]}}]),
        fifteen_k(),
        &ids,
    );
    let session = try_submit(&session, json!({"name": "Jane"}), &ids).unwrap();
    let report = session.workflows[0].validation.as_ref().unwrap();
    let error = report.rules[0].error.as_deref().unwrap_or_default();
    assert!(!error.is_empty() && error.chars().count() <= 500, "{}", error.len());
}
