//! One partner's rules must not stall or exhaust the service: a rule whose
//! cost its own structure makes huge is refused when its workflow is
//! written, and one that real inputs make too dear fails instead of running.

use korala_domain::catalog::Catalog;
use korala_domain::configuration::ConfigurationDraft;
use korala_domain::session::{AccessToken, Origin, Session, SessionDraft, ValidationOutcome, WorkflowStatus};
use korala_domain::tenancy::Actor;
use korala_domain::testing::{SequentialIds, t0};

use crate::support::{self, org};
use korala_domain::webhooks::UrlPolicy;
use korala_domain::workflow::{WorkflowDefinition, WorkflowDraft};
use korala_domain::{FieldErrors, JsonMap};
use serde_json::{Value, json};

/// Test mode: its sessions are sandbox sessions.
fn partner() -> Actor {
    Actor::Partner {
        api_key_id: "ak_test_budget".into(),
    }
}

fn validate(v: Value) -> Result<WorkflowDefinition, FieldErrors> {
    serde_json::from_value::<WorkflowDraft>(v)
        .expect("a well-formed workflow draft")
        .validate(None, UrlPolicy::Production)
}

/// The field errors of a refused draft, as `(field, message)`.
fn refused(v: Value) -> Vec<(String, String)> {
    validate(v)
        .expect_err("the draft is refused")
        .iter()
        .map(|e| (e.field.clone(), e.message.clone()))
        .collect()
}

fn with_rules(rules: Value) -> Value {
    json!({
        "name": "Hostile",
        "slug": "hostile",
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "name", "type": "text"}]}},
            {"type": "validate", "config": {"rules": rules}}
        ]
    })
}

fn rule(name: &str, expression: &str, on_failure: &str) -> Value {
    json!({"name": name, "expression": expression, "onFailure": on_failure})
}

/// `[0,1,…,n-1]`, written out.
fn literal(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// A started session of `definition` whose context is `context`.
fn started(definition: WorkflowDefinition, context: Value, ids: &SequentialIds) -> Session {
    support::started(definition, context, partner(), ids)
}

fn submit(session: &Session, data: Value, ids: &SequentialIds) -> Session {
    let data: JsonMap = data.as_object().cloned().unwrap();
    let swf = session.workflows[0].id.to_string();
    session
        .submit(&swf, &data, t0(), ids)
        .expect("the submission is accepted")
        .session
}

fn ints(n: i64) -> Value {
    json!((0..n).collect::<Vec<_>>())
}

// ------------------------------------------------------- when it is written

#[test]
fn a_rule_nesting_four_comprehensions_is_refused_naming_the_rule() {
    let hostile = "context.L.all(v0, context.L.all(v1, context.L.all(v2, context.L.all(v3, true))))";
    let errors = refused(with_rules(json!([
        rule("named", "size(data.name) > 0", "retry"),
        rule("hostile", hostile, "review"),
    ])));
    assert_eq!(
        errors,
        [(
            "steps[1].config.rules[1].expression".to_owned(),
            "nests 4 comprehensions; at most 2".to_owned()
        )]
    );
}

#[test]
fn an_output_of_nested_maps_is_refused_naming_the_field() {
    let errors = refused(json!({
        "name": "Big output",
        "slug": "big-output",
        "steps": [{"type": "output", "config": {"fields": {
            "fine": "data.name",
            "big": "context.L.map(a, context.L.map(b, context.L.map(c, [a, b, c])))"
        }}}]
    }));
    assert_eq!(
        errors,
        [(
            "steps[0].config.fields.big".to_owned(),
            "nests 3 comprehensions; at most 2".to_owned()
        )]
    );
}

#[test]
fn a_rule_over_large_literal_lists_is_refused_with_its_estimated_cost() {
    let square = format!("{0}.all(a, {0}.all(b, a != b || a == b))", literal(300));
    let errors = refused(with_rules(json!([rule("square", &square, "fail")])));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (field, message) = &errors[0];
    assert_eq!(field, "steps[1].config.rules[0].expression");
    assert!(
        message.starts_with("estimated cost ") && message.contains("exceeds the budget 5000000"),
        "{message}"
    );
}

#[test]
fn lists_grown_by_concatenation_are_priced_at_their_grown_length() {
    let square = |list: &str| format!("{list}.all(a, {list}.all(b, true))");
    assert!(validate(with_rules(json!([rule("square", &square("context.L"), "fail")]))).is_ok());
    let grown = "(context.L + context.L + context.L + context.L)";
    let errors = refused(with_rules(json!([rule("square", &square(grown), "fail")])));
    assert!(errors[0].1.contains("exceeds the budget"), "{errors:?}");
}

#[test]
fn rules_that_together_exceed_what_one_change_may_spend_are_refused() {
    // Each fits the rule budget at nominal sizes; eight of them do not fit
    // in one change.
    let square = "context.L.all(a, context.L.all(b, a != b || a == b))";
    let rules: Vec<Value> = (0..8).map(|i| rule(&format!("r{i}"), square, "review")).collect();
    assert!(validate(with_rules(json!(rules[..2]))).is_ok());
    let errors = refused(with_rules(json!(rules)));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "steps");
    assert!(errors[0].1.contains("budget"), "{errors:?}");
}

// ------------------------------------------------------------ when it runs

#[test]
fn a_rule_over_budget_for_the_real_inputs_fails_with_why_and_its_outcome_applies() {
    let ids = SequentialIds::default();
    let square = "context.L.all(a, context.L.all(b, a != b || a == b))";
    let definition = validate(with_rules(json!([
        rule("named", "size(data.name) > 0", "retry"),
        rule("square", square, "review"),
    ])))
    .expect("priced at nominal sizes, the rule fits");
    // 200 elements: 40,000 turns, far over the budget.
    let session = started(definition, json!({"L": ints(200)}), &ids);
    let session = submit(&session, json!({"name": "Jane"}), &ids);
    let workflow = &session.workflows[0];
    let report = workflow.validation.as_ref().unwrap();
    assert!(report.rules[0].passed);
    let square = &report.rules[1];
    assert!(!square.passed);
    let error = square.error.as_deref().unwrap_or_default();
    assert!(error.contains("exceeds the budget 5000000 for these inputs"), "{error}");
    assert_eq!(report.outcome, ValidationOutcome::Review);
    assert_eq!(workflow.status, WorkflowStatus::PendingReview);
}

#[test]
fn the_rules_of_one_change_share_a_budget() {
    let ids = SequentialIds::default();
    let square = rule("square", "context.L.all(a, context.L.all(b, true))", "review");
    let mut definition = with_rules(json!([square]));
    definition["steps"]
        .as_array_mut()
        .unwrap()
        .extend((0..5).map(|_| json!({"type": "validate", "config": {"rules": [square]}})));
    let definition = validate(definition).expect("six steps of one rule each fit at nominal sizes");
    // 75 elements: each rule fits the budget alone (about a fifth of what a
    // change may spend), not all six together.
    let session = started(definition, json!({"L": ints(75)}), &ids);
    let session = submit(&session, json!({"name": "Jane"}), &ids);
    let workflow = &session.workflows[0];
    assert_eq!(workflow.status, WorkflowStatus::PendingReview);
    assert_eq!(
        workflow.step, 6,
        "the first four validate steps passed, the fifth paused"
    );
    let report = workflow.validation.as_ref().unwrap();
    let error = report.rules[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("spent their budget"), "{error}");
}

#[test]
fn an_output_over_budget_for_the_real_inputs_fails_the_workflow() {
    let ids = SequentialIds::default();
    let definition = validate(json!({
        "name": "Pairs",
        "slug": "pairs",
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "name", "type": "text"}]}},
            {"type": "output", "config": {"fields": {"pairs": "context.L.map(a, context.L.filter(b, a == b))"}}}
        ]
    }))
    .expect("priced at nominal sizes, the mapping fits");
    let session = started(definition, json!({"L": ints(300)}), &ids);
    let session = submit(&session, json!({"name": "Jane"}), &ids);
    let workflow = &session.workflows[0];
    assert_eq!(workflow.status, WorkflowStatus::Failed);
    let failure = workflow.failure.as_deref().unwrap_or_default();
    assert!(
        failure.starts_with("output step: pairs: estimated cost") && failure.contains("exceeds the budget"),
        "{failure}"
    );
}

/// The built-ins' rules at the largest inputs they can see (names as long as
/// a text field and a participant's name may be) run within the budget.
#[test]
fn builtins_run_within_the_budget_at_their_largest_inputs() {
    let ids = SequentialIds::default();
    let catalog = Catalog::builtins();
    let config = serde_json::from_value::<ConfigurationDraft>(json!({
        "name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document", "proof-of-address"]
    }))
    .unwrap()
    .validate(org(), &catalog, t0())
    .unwrap();
    let long = |n: usize| "Jane Doe ".repeat(n / 9 + 1)[..n].trim().to_owned();
    let draft: SessionDraft = serde_json::from_value(json!({
        "configurationSlug": "kyc",
        "externalUserId": "usr_1",
        "participants": [{"role": "subject", "displayName": long(200)}],
    }))
    .unwrap();
    let origin = Origin {
        access_token: AccessToken {
            hash: "hash".into(),
            sealed: "sealed".into(),
        },
        configuration: &config,
        catalog: &catalog,
    };
    let session = Session::create(draft, origin, partner(), t0(), &ids).unwrap().session;
    let session = session.start(t0(), &ids).unwrap().unwrap().session;
    let name = long(500);
    let document = json!({
        "documentType": "passport", "documentNumber": "X".repeat(500), "fullName": name,
        "dateOfBirth": "1990-04-12", "expiryDate": "2030-01-01", "issuingCountry": "gb"
    });
    let session = session
        .submit(
            &session.workflows[0].id.to_string(),
            document.as_object().unwrap(),
            t0(),
            &ids,
        )
        .unwrap()
        .session;
    let address = json!({
        "documentType": "utility_bill", "fullName": name, "addressLine1": "1".repeat(500),
        "city": "London", "country": "GB", "issueDate": "2026-11-01"
    });
    let session = session
        .submit(
            &session.workflows[1].id.to_string(),
            address.as_object().unwrap(),
            t0(),
            &ids,
        )
        .unwrap()
        .session;
    for workflow in &session.workflows {
        let report = workflow.validation.as_ref().unwrap();
        for rule in &report.rules {
            assert_eq!(rule.error, None, "{}: {}", workflow.workflow_slug, rule.name);
        }
        assert_eq!(workflow.status, WorkflowStatus::Completed, "{}", workflow.workflow_slug);
    }
}
