//! What a domain operation can refuse. The HTTP layer maps each variant to a
//! status and a stable `code` once, in one place.

use crate::session::SessionStatus;
use crate::validation::FieldErrors;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("the request is invalid: {0}")]
    Invalid(FieldErrors),
    #[error("session workflow {0} does not belong to this session")]
    UnknownSessionWorkflow(String),
    #[error("session workflow {0} is not the current step")]
    WorkflowNotCurrent(String),
    #[error("the session has expired")]
    SessionExpired,
    #[error("the session is {0} and accepts no more submissions")]
    SessionClosed(SessionStatus),
    #[error("session workflow {0} is not waiting for a review")]
    NotAwaitingReview(String),
    #[error("session workflow {0} has not started, so there is nothing to resubmit")]
    NothingToResubmit(String),
    #[error("this session already waits for {0} uploads: submit them, or let them expire, before asking for more")]
    TooManyUploads(usize),
    #[error("resolution is disabled: the session's configuration has isVerification=false")]
    ResolutionDisabled,
    /// A bug: a transition produced a state that breaks an invariant. Never
    /// caused by input; the change is refused rather than stored.
    #[error("invariant violated: {0}")]
    InvariantViolated(String),
}

impl From<FieldErrors> for DomainError {
    fn from(errors: FieldErrors) -> Self {
        DomainError::Invalid(errors)
    }
}
