//! Domain events: one or more for every transition, appended to the session's
//! history and, for the six webhook types, delivered to partners.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::checks::CheckVerdict;
use crate::ids::{CheckId, EventId, SessionId, SessionWorkflowId};
use crate::session::{Decision, ResolvedBy, RiskLevel, SessionStatus, ValidationOutcome};
use crate::tenancy::Actor;
use crate::tenancy::Tenant;
use crate::webhooks::WebhookEvent;
use crate::workflow::CheckKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    /// The session's tenant: an event is delivered only to its own mode's
    /// endpoints.
    pub tenant: Tenant,
    pub session_id: SessionId,
    pub external_user_id: String,
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
    SessionCheckCompleted {
        session_workflow_id: SessionWorkflowId,
        check_id: CheckId,
        kind: CheckKind,
        verdict: CheckVerdict,
    },
    SessionRiskAssessed {
        session_workflow_id: SessionWorkflowId,
        score: u8,
        level: RiskLevel,
    },
    SessionWorkflowWebhookRequested {
        session_workflow_id: SessionWorkflowId,
        url: String,
    },
    SessionPendingReview,
    SessionCompleted,
    SessionFailed,
    SessionResolved {
        decision: Decision,
        resolved_by: ResolvedBy,
        reason: Option<String>,
    },
    SessionExpired,
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
            | EventKind::SessionCheckCompleted {
                session_workflow_id, ..
            }
            | EventKind::SessionRiskAssessed {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{IdGenerator, OrgId};
    use crate::tenancy::Mode;

    struct Ids;
    impl IdGenerator for Ids {
        fn next_body(&self) -> String {
            "1".into()
        }
    }

    /// Events are stored as JSON: every kind must read back as written (the
    /// flattened kind shares one object with the envelope).
    #[test]
    fn every_kind_round_trips() {
        let swf = || SessionWorkflowId::generate(&Ids);
        let kinds = vec![
            EventKind::SessionCreated,
            EventKind::SessionStarted,
            EventKind::SessionWorkflowStarted {
                session_workflow_id: swf(),
            },
            EventKind::SessionWorkflowSubmitted {
                session_workflow_id: swf(),
                attempt: 1,
            },
            EventKind::SessionWorkflowValidated {
                session_workflow_id: swf(),
                attempt: 1,
                outcome: ValidationOutcome::Review,
            },
            EventKind::SessionWorkflowRetryRequested {
                session_workflow_id: swf(),
                attempts_remaining: 2,
            },
            EventKind::SessionWorkflowPendingReview {
                session_workflow_id: swf(),
                reason: Some("r".into()),
            },
            EventKind::SessionWorkflowReviewed {
                session_workflow_id: swf(),
                decision: Decision::Approved,
                reason: "ok".into(),
            },
            EventKind::SessionWorkflowCompleted {
                session_workflow_id: swf(),
            },
            EventKind::SessionWorkflowFailed {
                session_workflow_id: swf(),
                reason: "x".into(),
            },
            EventKind::SessionWorkflowResubmitted {
                session_workflow_id: swf(),
                reset: vec![swf()],
            },
            EventKind::SessionCheckRequested {
                session_workflow_id: swf(),
                check_id: CheckId::generate(&Ids),
                kind: CheckKind::Pep,
            },
            EventKind::SessionCheckCompleted {
                session_workflow_id: swf(),
                check_id: CheckId::generate(&Ids),
                kind: CheckKind::Sanctions,
                verdict: CheckVerdict::PossibleMatch,
            },
            EventKind::SessionRiskAssessed {
                session_workflow_id: swf(),
                score: 42,
                level: RiskLevel::Medium,
            },
            EventKind::SessionWorkflowWebhookRequested {
                session_workflow_id: swf(),
                url: "https://a.example".into(),
            },
            EventKind::SessionPendingReview,
            EventKind::SessionCompleted,
            EventKind::SessionFailed,
            EventKind::SessionResolved {
                decision: Decision::Rejected,
                resolved_by: ResolvedBy::Partner,
                reason: None,
            },
            EventKind::SessionExpired,
        ];
        for kind in kinds {
            let event = Event {
                id: EventId::generate(&Ids),
                tenant: Tenant::new(OrgId::generate(&Ids), Mode::Test),
                session_id: SessionId::generate(&Ids),
                external_user_id: "u".into(),
                version: 3,
                sequence: 1,
                occurred_at: chrono::DateTime::UNIX_EPOCH,
                actor: Actor::System,
                status: SessionStatus::Completed,
                resolution: Some(Decision::Approved),
                kind,
            };
            let json = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(back, event);
        }
    }
}
