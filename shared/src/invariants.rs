//! The rules every stored session obeys, checked in one place after every
//! transition (and by the property tests).

use crate::session::{Session, SessionStatus, Waiting, WorkflowStatus};

pub fn check(session: &Session) -> Result<(), String> {
    if session.version == 0 {
        return Err("version starts at 1".into());
    }
    // Workflows: completed ones, then at most one active (in progress,
    // pending review or failed), then untouched ones.
    #[derive(PartialEq, PartialOrd)]
    enum Phase {
        Done,
        Active,
        Untouched,
    }
    let mut phase = Phase::Done;
    for (i, w) in session.workflows.iter().enumerate() {
        let this = match w.status {
            WorkflowStatus::Completed => Phase::Done,
            WorkflowStatus::InProgress | WorkflowStatus::PendingReview | WorkflowStatus::Failed => Phase::Active,
            WorkflowStatus::Pending => Phase::Untouched,
        };
        if this < phase || (this == Phase::Active && phase == Phase::Active) {
            return Err(format!("workflow {i} is {:?} out of order", w.status));
        }
        phase = this;
        if w.attempts > w.definition.max_attempts {
            return Err(format!(
                "workflow {i} has {} attempts of {}",
                w.attempts, w.definition.max_attempts
            ));
        }
        if session.participant(&w.participant_id).is_none() {
            return Err(format!("workflow {i} runs for an unknown participant"));
        }
        let waiting_ok = match w.status {
            WorkflowStatus::Pending => w.is_pristine(),
            WorkflowStatus::InProgress => matches!(w.waiting, Some(Waiting::Input | Waiting::Check { .. })),
            WorkflowStatus::PendingReview => w.waiting == Some(Waiting::Review),
            WorkflowStatus::Completed => w.waiting.is_none() && w.output.is_some() && w.failure.is_none(),
            WorkflowStatus::Failed => w.waiting.is_none() && w.failure.is_some(),
        };
        if !waiting_ok {
            return Err(format!("workflow {i} is {:?} but waits for {:?}", w.status, w.waiting));
        }
        if let Some(Waiting::Check { check_id }) = &w.waiting
            && !session
                .checks
                .iter()
                .any(|c| &c.id == check_id && c.session_workflow_id == w.id)
        {
            return Err(format!("workflow {i} waits for a check the session does not have"));
        }
    }
    for check in &session.checks {
        let owner = session.workflows.iter().find(|w| w.id == check.session_workflow_id);
        if owner.is_none_or(|w| w.status == WorkflowStatus::Pending) {
            return Err(format!("check {} belongs to no started workflow", check.id));
        }
    }
    if session.status == SessionStatus::Created
        && (session.started_at.is_some() || session.workflows.iter().any(|w| !w.is_pristine()))
    {
        return Err("a created session has not started".into());
    }
    if session.status != SessionStatus::Expired && session.status != session.derived_status() {
        return Err(format!(
            "status {} does not follow from the workflows ({})",
            session.status,
            session.derived_status()
        ));
    }
    if session.resolution.is_some() && !session.policy.is_verification {
        return Err("resolution on a session that is not a verification".into());
    }
    if session.status.is_open() != session.completed_at.is_none() {
        return Err("completedAt is set exactly when the session is closed".into());
    }
    Ok(())
}
