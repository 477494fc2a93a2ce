//! Runs a session workflow's steps in order until one waits: `capture` for
//! the end user, `check` for its provider, `review` for a partner. Steps that
//! need nobody (`extract`, `validate`, `webhook`, `output`) run at once.

use crate::JsonMap;
use crate::capture;
use crate::checks::{self, CheckOutcome, CheckVerdict, Consequence};
use crate::documents::{self, Files};
use crate::error::DomainError;
use crate::events::EventKind;
use crate::footprint::{self, MAX_FINDINGS_BYTES, MAX_SUBMISSION_BYTES};
use crate::ids::CheckId;
use crate::risk::{self, CountryRisk, RiskDecision};
use crate::rules::{self, Scope, Variables};
use crate::session::{
    Check, CheckStatus, Decision, ReviewRecord, RuleResult, Session, ValidationOutcome, ValidationReport, Waiting,
    WorkflowStatus,
};
use crate::transition::Change;
use crate::validation::FieldErrors;
use crate::workflow::{MappingStep, RiskStep, Step, ValidateStep};

/// Makes workflow `index` the current one and runs it as far as it goes.
pub(crate) fn activate(change: &mut Change<'_>, index: usize) {
    let now = change.now;
    let workflow = &mut change.session.workflows[index];
    workflow.status = WorkflowStatus::InProgress;
    workflow.started_at = Some(now);
    workflow.step = 0;
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowStarted {
        session_workflow_id: id,
    });
    run(change, index);
}

/// The end user's submission for the capture step workflow `index` waits on.
pub(crate) fn submit(change: &mut Change<'_>, index: usize, data: &JsonMap, files: &Files) -> Result<(), DomainError> {
    let workflow = &change.session.workflows[index];
    let Some(Step::Capture(capture)) = workflow.definition.steps.get(workflow.step) else {
        return Err(DomainError::WorkflowNotCurrent(workflow.id.to_string()));
    };
    let capture = capture.clone();
    let mut accepted = capture::accept(&capture.fields, data)?;
    documents::claim(change, index, &mut accepted, files)?;
    let workflow = &mut change.session.workflows[index];
    if footprint::check_size("data", &accepted, MAX_SUBMISSION_BYTES).is_err() {
        let message = format!("must serialise to at most {MAX_SUBMISSION_BYTES} bytes");
        return Err(FieldErrors::single("data", message).into());
    }
    // An attempt is a round through the workflow: its first submission, and
    // each one after a retry. Later capture steps of the same round (the back
    // of a document after its front) belong to the same attempt.
    let new_round = workflow.attempts == 0
        || workflow
            .validation
            .as_ref()
            .is_some_and(|v| v.outcome == ValidationOutcome::Retry);
    if new_round {
        workflow.attempts += 1;
    }
    // The step's own fields are replaced (a retry's answers replace the
    // last ones); what earlier capture steps collected stays.
    let collected = workflow.data.get_or_insert_with(JsonMap::new);
    for field in &capture.fields {
        collected.remove(&field.name);
    }
    collected.extend(accepted);
    if let Err(overflow) = footprint::check_session(&change.session) {
        return Err(FieldErrors::single("data", overflow.to_string()).into());
    }
    let workflow = &mut change.session.workflows[index];
    workflow.waiting = None;
    workflow.step += 1;
    let event = EventKind::SessionWorkflowSubmitted {
        session_workflow_id: workflow.id.clone(),
        attempt: workflow.attempts,
    };
    change.emit(event);
    run(change, index);
    Ok(())
}

/// A provider's answer for the check workflow `index` waits on (the
/// session's check `check`): the check records it, and the workflow goes on,
/// pauses for review or fails (see [`crate::checks`]).
pub(crate) fn check_answered(change: &mut Change<'_>, index: usize, check: usize, outcome: CheckOutcome) {
    let outcome = storable(&change.session, outcome);
    let now = change.now;
    let verdict = CheckVerdict::of(&outcome);
    let record = &mut change.session.checks[check];
    let consequence = checks::consequence(record.kind, &outcome);
    match outcome {
        CheckOutcome::Screened { provider, findings } => {
            record.status = CheckStatus::Completed;
            record.provider = Some(provider);
            record.findings = findings;
        }
        CheckOutcome::Failed { provider, reason } => {
            record.status = CheckStatus::Failed;
            record.provider = Some(provider);
            record.failure = Some(reason);
        }
    }
    record.completed_at = Some(now);
    let (check_id, kind, matches) = (record.id.clone(), record.kind, record.findings.len());
    let workflow = &mut change.session.workflows[index];
    workflow.waiting = None;
    workflow.step += 1;
    // What later steps and workflows see of the check: its outcome, not
    // the findings (which stay on the check, for the partner).
    let data = workflow.data.get_or_insert_with(JsonMap::new);
    data.insert("checkId".into(), serde_json::json!(check_id));
    data.insert("verdict".into(), serde_json::json!(verdict));
    data.insert("matches".into(), serde_json::json!(matches));
    let session_workflow_id = workflow.id.clone();
    change.emit(EventKind::SessionCheckCompleted {
        session_workflow_id,
        check_id,
        kind,
        verdict,
    });
    match consequence {
        Consequence::Continue => run(change, index),
        Consequence::Review(reason) => pause_for_review(change, index, Some(reason)),
        Consequence::Fail(reason) => fail(change, index, reason),
    }
}

/// A provider's answer as the session can keep it: findings over their
/// budget, or that would take the session past its own, fail the check
/// instead (the provider's answer is the service's to bound, not the end
/// user's); a failure's reason is cut short.
fn storable(session: &Session, outcome: CheckOutcome) -> CheckOutcome {
    match outcome {
        CheckOutcome::Screened { provider, findings } => {
            let findings_size = footprint::json_size(&findings);
            let projected = footprint::json_size(session).saturating_add(findings_size);
            let overflow = if findings_size > MAX_FINDINGS_BYTES {
                Some(footprint::Overflow::TooLarge {
                    what: "the provider's answer",
                    size: findings_size,
                    max: MAX_FINDINGS_BYTES,
                })
            } else if projected > footprint::MAX_SESSION_BYTES {
                Some(footprint::Overflow::SessionTooLarge { size: projected })
            } else {
                None
            };
            match overflow {
                None => CheckOutcome::Screened { provider, findings },
                Some(overflow) => CheckOutcome::Failed {
                    provider,
                    reason: overflow.to_string(),
                },
            }
        }
        CheckOutcome::Failed { provider, reason } => CheckOutcome::Failed {
            provider,
            reason: footprint::shortened(reason),
        },
    }
}

/// The partner's decision on a workflow paused for review.
pub(crate) fn review(change: &mut Change<'_>, index: usize, decision: Decision, reason: String) {
    let actor = change_actor(change);
    let now = change.now;
    let workflow = &mut change.session.workflows[index];
    workflow.review = Some(ReviewRecord {
        decision,
        reason: reason.clone(),
        actor,
        reviewed_at: now,
    });
    workflow.waiting = None;
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowReviewed {
        session_workflow_id: id,
        decision,
        reason: reason.clone(),
    });
    match decision {
        Decision::Approved => {
            change.session.workflows[index].status = WorkflowStatus::InProgress;
            run(change, index);
        }
        Decision::Rejected => fail(change, index, format!("rejected in review: {reason}")),
    }
}

fn change_actor(change: &Change<'_>) -> crate::tenancy::Actor {
    change.actor().clone()
}

fn run(change: &mut Change<'_>, index: usize) {
    loop {
        let workflow = &change.session.workflows[index];
        let Some(step) = workflow.definition.steps.get(workflow.step).cloned() else {
            complete(change, index);
            return;
        };
        match step {
            Step::Capture(_) => {
                change.session.workflows[index].waiting = Some(Waiting::Input);
                return;
            }
            Step::Extract(mapping) => match evaluate_mapping(change, index, &mapping) {
                Ok(extracted) => {
                    if let Err(overflow) = footprint::check_mapping("the extracted data", &extracted) {
                        return fail(change, index, format!("extract step: {overflow}"));
                    }
                    let workflow = &mut change.session.workflows[index];
                    let before = workflow.data.clone();
                    workflow.data.get_or_insert_with(JsonMap::new).extend(extracted);
                    if let Err(overflow) = footprint::check_session(&change.session) {
                        change.session.workflows[index].data = before;
                        return fail(change, index, format!("extract step: {overflow}"));
                    }
                    change.session.workflows[index].step += 1;
                }
                Err(e) => return fail(change, index, format!("extract step: {e}")),
            },
            Step::Validate(validate) => {
                if !apply_validation(change, index, &validate) {
                    return;
                }
            }
            Step::Check(check) => {
                let id = CheckId::generate(change.ids);
                let workflow = &mut change.session.workflows[index];
                workflow.waiting = Some(Waiting::Check { check_id: id.clone() });
                let record = Check {
                    id: id.clone(),
                    session_workflow_id: workflow.id.clone(),
                    participant_id: workflow.participant_id.clone(),
                    kind: check.kind,
                    provider: check.provider.clone(),
                    status: CheckStatus::Pending,
                    findings: Vec::new(),
                    failure: None,
                    requested_at: change.now,
                    completed_at: None,
                };
                let event = EventKind::SessionCheckRequested {
                    session_workflow_id: workflow.id.clone(),
                    check_id: id,
                    kind: check.kind,
                };
                change.session.checks.push(record);
                change.emit(event);
                return;
            }
            Step::Review(review) => {
                change.session.workflows[index].step += 1;
                pause_for_review(change, index, review.reason.clone());
                return;
            }
            Step::Webhook(webhook) => {
                let workflow = &mut change.session.workflows[index];
                workflow.step += 1;
                let event = EventKind::SessionWorkflowWebhookRequested {
                    session_workflow_id: workflow.id.clone(),
                    url: webhook.url,
                };
                change.emit(event);
            }
            Step::Output(mapping) => match evaluate_mapping(change, index, &mapping) {
                Ok(output) => {
                    let workflow = &mut change.session.workflows[index];
                    let output = if mapping.fields.is_empty() {
                        workflow.data.clone().unwrap_or_default()
                    } else {
                        output
                    };
                    if let Err(overflow) = footprint::check_mapping("the output", &output) {
                        return fail(change, index, format!("output step: {overflow}"));
                    }
                    workflow.output = Some(output);
                    if let Err(overflow) = footprint::check_session(&change.session) {
                        change.session.workflows[index].output = None;
                        return fail(change, index, format!("output step: {overflow}"));
                    }
                    change.session.workflows[index].step += 1;
                }
                Err(e) => return fail(change, index, format!("output step: {e}")),
            },
            Step::Risk(step) => {
                if !assess_risk(change, index, &step) {
                    return;
                }
            }
            // Definitions with these steps are refused when they are created;
            // a session holding one (from a future version) cannot run it.
            Step::Ocr(_) | Step::Enrich(_) => {
                return fail(change, index, format!("the `{}` step is not available", step.kind()));
            }
        }
    }
}

/// The native risk score of the evidence so far (see [`crate::risk`]),
/// kept on the session; the step's thresholds pass it, send it to review
/// or reject it. Returns whether the pipeline goes on.
fn assess_risk(change: &mut Change<'_>, index: usize, step: &RiskStep) -> bool {
    let countries = match CountryRisk::builtin() {
        Ok(countries) => countries,
        Err(e) => {
            fail(
                change,
                index,
                format!("risk step: the country table is unreadable: {e}"),
            );
            return false;
        }
    };
    let summary = risk::assess(&change.session, index, countries, change.now);
    let decision = risk::decide(&summary, step);
    let workflow = &mut change.session.workflows[index];
    workflow.step += 1;
    let data = workflow.data.get_or_insert_with(JsonMap::new);
    data.insert("riskScore".into(), serde_json::json!(summary.score));
    data.insert("riskLevel".into(), serde_json::json!(summary.level));
    let session_workflow_id = workflow.id.clone();
    change.emit(EventKind::SessionRiskAssessed {
        session_workflow_id,
        score: summary.score,
        level: summary.level,
    });
    change.session.risk = Some(summary);
    match decision {
        RiskDecision::Pass => true,
        RiskDecision::Review(reason) => {
            pause_for_review(change, index, Some(reason));
            false
        }
        RiskDecision::Reject(reason) => {
            fail(change, index, reason);
            false
        }
    }
}

/// Runs the rules; returns whether the pipeline goes on.
fn apply_validation(change: &mut Change<'_>, index: usize, validate: &ValidateStep) -> bool {
    let results: Vec<RuleResult> = {
        let session = &change.session;
        let budget = &mut change.budget;
        let inputs = Inputs::of(session, index);
        let scope = inputs.scope(session, index, change.now);
        let expressions = validate.rules.iter().map(|rule| rule.expression.as_str());
        let variables = Variables::of(&scope, expressions, budget);
        validate
            .rules
            .iter()
            .map(|rule| {
                let verdict = match &variables {
                    Ok(variables) => rules::evaluate_bool(&rule.expression, variables, budget),
                    Err(e) => Err(e.clone()),
                };
                let (passed, error) = match verdict {
                    Ok(passed) => (passed, None),
                    Err(e) => (false, Some(e.to_string())),
                };
                RuleResult {
                    name: rule.name.clone(),
                    passed,
                    on_failure: rule.on_failure,
                    message: (!passed).then(|| rule.message.clone()).flatten(),
                    error,
                }
            })
            .collect()
    };
    let worst = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| ValidationOutcome::from(r.on_failure))
        .max();
    let workflow = &mut change.session.workflows[index];
    let attempt = workflow.attempts;
    let outcome = match worst {
        Some(ValidationOutcome::Retry) if workflow.attempts >= workflow.definition.max_attempts => {
            ValidationOutcome::Failed
        }
        Some(outcome) => outcome,
        None => ValidationOutcome::Passed,
    };
    let failed_messages: Vec<String> = results
        .iter()
        .filter(|r| !r.passed && ValidationOutcome::from(r.on_failure) == worst.unwrap_or(ValidationOutcome::Passed))
        .map(|r| {
            r.message
                .clone()
                .or_else(|| r.error.clone())
                .unwrap_or_else(|| r.name.clone())
        })
        .collect();
    workflow.validation = Some(ValidationReport {
        outcome,
        attempt,
        rules: results,
    });
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowValidated {
        session_workflow_id: id.clone(),
        attempt,
        outcome,
    });
    match outcome {
        ValidationOutcome::Passed => {
            change.session.workflows[index].step += 1;
            true
        }
        ValidationOutcome::Review => {
            change.session.workflows[index].step += 1;
            pause_for_review(change, index, Some(failed_messages.join(" ")));
            false
        }
        ValidationOutcome::Retry => {
            let workflow = &mut change.session.workflows[index];
            let capture = workflow.definition.steps[..workflow.step]
                .iter()
                .rposition(|s| matches!(s, Step::Capture(_)));
            match capture {
                Some(capture) => {
                    workflow.step = capture;
                    workflow.waiting = Some(Waiting::Input);
                    let remaining = workflow.definition.max_attempts - workflow.attempts;
                    change.emit(EventKind::SessionWorkflowRetryRequested {
                        session_workflow_id: id,
                        attempts_remaining: remaining,
                    });
                }
                // Nothing the end user could submit again: the rule decides.
                None => fail(change, index, failed_messages.join(" ")),
            }
            false
        }
        ValidationOutcome::Failed => {
            let reason = if worst == Some(ValidationOutcome::Retry) {
                format!("no attempts remain: {}", failed_messages.join(" "))
            } else {
                failed_messages.join(" ")
            };
            fail(change, index, reason);
            false
        }
    }
}

/// Pauses for a partner; `step` already points past the step that paused.
fn pause_for_review(change: &mut Change<'_>, index: usize, reason: Option<String>) {
    let workflow = &mut change.session.workflows[index];
    workflow.status = WorkflowStatus::PendingReview;
    workflow.waiting = Some(Waiting::Review);
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowPendingReview {
        session_workflow_id: id,
        reason,
    });
}

fn complete(change: &mut Change<'_>, index: usize) {
    let now = change.now;
    let workflow = &mut change.session.workflows[index];
    workflow.status = WorkflowStatus::Completed;
    workflow.waiting = None;
    workflow.completed_at = Some(now);
    workflow.output.get_or_insert_with(JsonMap::new);
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowCompleted {
        session_workflow_id: id,
    });
    if index + 1 < change.session.workflows.len() {
        activate(change, index + 1);
    }
}

pub(crate) fn fail(change: &mut Change<'_>, index: usize, reason: String) {
    let now = change.now;
    let workflow = &mut change.session.workflows[index];
    workflow.status = WorkflowStatus::Failed;
    workflow.waiting = None;
    workflow.failure = Some(reason.clone());
    workflow.completed_at = Some(now);
    let id = workflow.id.clone();
    change.emit(EventKind::SessionWorkflowFailed {
        session_workflow_id: id,
        reason,
    });
}

fn evaluate_mapping(change: &mut Change<'_>, index: usize, mapping: &MappingStep) -> Result<JsonMap, String> {
    let session = &change.session;
    let budget = &mut change.budget;
    let inputs = Inputs::of(session, index);
    let scope = inputs.scope(session, index, change.now);
    let expressions = mapping.fields.values().map(String::as_str);
    let variables = Variables::of(&scope, expressions, budget).map_err(|e| e.to_string())?;
    mapping
        .fields
        .iter()
        .map(|(name, expr)| {
            rules::evaluate_json(expr, &variables, budget)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("{name}: {e}"))
        })
        .collect()
}

/// The variables a workflow's expressions read, gathered from the session.
struct Inputs {
    data: JsonMap,
    context: JsonMap,
    outputs: JsonMap,
    participant_outputs: JsonMap,
}

impl Inputs {
    fn of(session: &Session, index: usize) -> Self {
        let workflow = &session.workflows[index];
        let mut context = session.context.clone();
        context.extend(workflow.context.clone());
        let mut outputs = JsonMap::new();
        let mut participant_outputs = JsonMap::new();
        for earlier in &session.workflows[..index] {
            let Some(output) = &earlier.output else { continue };
            if earlier.status != WorkflowStatus::Completed {
                continue;
            }
            let by_participant = outputs
                .entry(earlier.output_key.clone())
                .or_insert_with(|| serde_json::Value::Object(JsonMap::new()));
            if let Some(map) = by_participant.as_object_mut() {
                map.insert(
                    earlier.participant_id.to_string(),
                    serde_json::Value::Object(output.clone()),
                );
            }
            if earlier.participant_id == workflow.participant_id {
                participant_outputs.insert(earlier.workflow_slug.clone(), serde_json::Value::Object(output.clone()));
                participant_outputs.insert(earlier.output_key.clone(), serde_json::Value::Object(output.clone()));
            }
        }
        Self {
            data: workflow.data.clone().unwrap_or_default(),
            context,
            outputs,
            participant_outputs,
        }
    }

    fn scope<'a>(&'a self, session: &'a Session, index: usize, now: crate::Timestamp) -> Scope<'a> {
        let participant = session
            .participant(&session.workflows[index].participant_id)
            .unwrap_or(&session.participants[0]);
        Scope {
            data: &self.data,
            participant,
            context: &self.context,
            outputs: &self.outputs,
            participant_outputs: &self.participant_outputs,
            now,
        }
    }
}
