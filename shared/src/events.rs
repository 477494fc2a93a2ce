//! Domain events: one or more for every transition, appended to the session's
//! history and, for the six webhook types, delivered to partners.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::{CheckId, EventId, OrgId, SessionId, SessionWorkflowId};
use crate::session::{Decision, ResolvedBy, SessionStatus, ValidationOutcome};
use crate::tenancy::Actor;
use crate::workflow::CheckKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    pub org_id: OrgId,
    pub session_id: SessionId,
    pub external_user_id: String,
    pub sandbox: bool,
    /// The session version this event's transition produced: the history is
    /// ordered by (version, position within the transition).
    pub version: u64,
    pub sequence: u32,
    pub occurred_at: Timestamp,
    pub actor: Actor,
    /// The session's status and resolution once the transition committed.
    pub status: SessionStatus,
    pub resolution: Option<Decision>,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum EventKind {
    SessionCreated,
    SessionStarted,
    SessionWorkflowStarted {
        session_workflow_id: SessionWorkflowId,
    },
    SessionWorkflowSubmitted {
        session_workflow_id: SessionWorkflowId,
        attempt: u32,
    },
    SessionWorkflowValidated {
        session_workflow_id: SessionWorkflowId,
        attempt: u32,
        outcome: ValidationOutcome,
    },
    SessionWorkflowRetryRequested {
        session_workflow_id: SessionWorkflowId,
        attempts_remaining: u32,
    },
    SessionWorkflowPendingReview {
        session_workflow_id: SessionWorkflowId,
        reason: Option<String>,
    },
    SessionWorkflowReviewed {
        session_workflow_id: SessionWorkflowId,
        decision: Decision,
        reason: String,
    },
    SessionWorkflowCompleted {
        session_workflow_id: SessionWorkflowId,
    },
    SessionWorkflowFailed {
        session_workflow_id: SessionWorkflowId,
        reason: String,
    },
    SessionWorkflowResubmitted {
        session_workflow_id: SessionWorkflowId,
        reset: Vec<SessionWorkflowId>,
    },
    SessionCheckRequested {
        session_workflow_id: SessionWorkflowId,
        check_id: CheckId,
        kind: CheckKind,
    },
    SessionWorkflowWebhookRequested {
        session_workflow_id: SessionWorkflowId,
        url: String,
    },
    SessionPendingReview,
    SessionCompleted,
    SessionFailed,
    SessionResolved {
        resolution: Decision,
        resolved_by: ResolvedBy,
        reason: Option<String>,
    },
    SessionExpired,
}

/// The event types partners subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    SessionCompleted,
    SessionExpired,
    SessionFailed,
    SessionResolved,
    SessionWorkflowCompleted,
    SessionWorkflowFailed,
}

impl EventKind {
    /// The webhook type of this event, for the six that partners receive.
    pub fn webhook(&self) -> Option<WebhookEvent> {
        Some(match self {
            EventKind::SessionCompleted => WebhookEvent::SessionCompleted,
            EventKind::SessionExpired => WebhookEvent::SessionExpired,
            EventKind::SessionFailed => WebhookEvent::SessionFailed,
            EventKind::SessionResolved { .. } => WebhookEvent::SessionResolved,
            EventKind::SessionWorkflowCompleted { .. } => WebhookEvent::SessionWorkflowCompleted,
            EventKind::SessionWorkflowFailed { .. } => WebhookEvent::SessionWorkflowFailed,
            _ => return None,
        })
    }

    pub fn session_workflow_id(&self) -> Option<&SessionWorkflowId> {
        match self {
            EventKind::SessionWorkflowStarted { session_workflow_id }
            | EventKind::SessionWorkflowSubmitted {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowValidated {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowRetryRequested {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowPendingReview {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowReviewed {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowCompleted { session_workflow_id }
            | EventKind::SessionWorkflowFailed {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowResubmitted {
                session_workflow_id, ..
            }
            | EventKind::SessionCheckRequested {
                session_workflow_id, ..
            }
            | EventKind::SessionWorkflowWebhookRequested {
                session_workflow_id, ..
            } => Some(session_workflow_id),
            _ => None,
        }
    }

    /// The `type` string, as serialised.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
            .unwrap_or_default()
    }
}
