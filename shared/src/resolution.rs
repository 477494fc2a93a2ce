//! When a session resolves itself.
//!
//! A verification session (`isVerification`) with `autoResolve` and without
//! `finalManualReviewRequired` resolves when it closes: approved when every
//! workflow completed (anything that needed a human was reviewed on the way),
//! rejected when a workflow failed. A partner's resolution always wins: once
//! set, only the partner (or a resubmission, which clears it) changes it.

use crate::session::{Decision, Session, SessionStatus};

pub fn automatic(session: &Session) -> Option<Decision> {
    let policy = session.policy;
    if !policy.is_verification
        || !policy.auto_resolve
        || policy.final_manual_review_required
        || session.resolution.is_some()
    {
        return None;
    }
    match session.status {
        SessionStatus::Completed => Some(Decision::Approved),
        SessionStatus::Failed => Some(Decision::Rejected),
        _ => None,
    }
}

pub fn automatic_reason(decision: Decision) -> &'static str {
    match decision {
        Decision::Approved => "All workflows passed validation.",
        Decision::Rejected => "A workflow failed validation.",
    }
}
