//! The session: one verification or onboarding case, its participants and its
//! ordered workflow instances.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::configuration::{Configuration, Policy, SubjectKind, check_expiry};
use crate::documents::{Document, Upload};
use crate::ids::{CheckId, IdGenerator, ParticipantId, SessionId, SessionWorkflowId};
use crate::participant::{self, Participant, ParticipantInput, Role};
use crate::tenancy::Actor;
use crate::tenancy::Tenant;
use crate::validation::{FieldErrors, check_json_size, check_redirect_url, check_text};
use crate::workflow::{CheckKind, FailureOutcome, WorkflowDefinition};
use crate::{JsonMap, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Created,
    InProgress,
    PendingReview,
    Completed,
    Expired,
    Failed,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 6] = [
        SessionStatus::Created,
        SessionStatus::InProgress,
        SessionStatus::PendingReview,
        SessionStatus::Completed,
        SessionStatus::Expired,
        SessionStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Created => "created",
            SessionStatus::InProgress => "in_progress",
            SessionStatus::PendingReview => "pending_review",
            SessionStatus::Completed => "completed",
            SessionStatus::Expired => "expired",
            SessionStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Open sessions still change; closed ones only take a resolution.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            SessionStatus::Created | SessionStatus::InProgress | SessionStatus::PendingReview
        )
    }

    /// Only sessions that wait for the end user expire; a case waiting for the
    /// partner's review is the partner's to close.
    pub fn can_expire(self) -> bool {
        matches!(self, SessionStatus::Created | SessionStatus::InProgress)
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    Auto,
    Partner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub decision: Decision,
    pub reason: Option<String>,
    pub resolved_by: ResolvedBy,
    pub actor: Actor,
    pub resolved_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowStatus {
    Pending,
    InProgress,
    PendingReview,
    Completed,
    Failed,
}

/// What a current workflow waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    /// The end user's submission for the capture step.
    Input,
    /// A provider's result for this check.
    Check {
        #[serde(rename = "checkId")]
        check_id: CheckId,
    },
    /// A partner's review decision.
    Review,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationOutcome {
    Passed,
    Review,
    Retry,
    Failed,
}

impl From<FailureOutcome> for ValidationOutcome {
    fn from(o: FailureOutcome) -> Self {
        match o {
            FailureOutcome::Review => ValidationOutcome::Review,
            FailureOutcome::Retry => ValidationOutcome::Retry,
            FailureOutcome::Fail => ValidationOutcome::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub name: String,
    pub passed: bool,
    pub on_failure: FailureOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the rule could not be evaluated (counts as a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    pub outcome: ValidationOutcome,
    pub attempt: u32,
    pub rules: Vec<RuleResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    pub decision: Decision,
    pub reason: String,
    pub actor: Actor,
    pub reviewed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionWorkflow {
    pub id: SessionWorkflowId,
    pub workflow_slug: String,
    pub output_key: String,
    pub participant_id: ParticipantId,
    /// The binding's per-step context, overlaid on the session's.
    pub context: JsonMap,
    /// The definition as it was when the session was created.
    pub definition: WorkflowDefinition,
    pub status: WorkflowStatus,
    /// Index of the step that runs next (or waits).
    pub step: usize,
    pub waiting: Option<Waiting>,
    pub attempts: u32,
    pub data: Option<JsonMap>,
    pub output: Option<JsonMap>,
    pub validation: Option<ValidationReport>,
    pub review: Option<ReviewRecord>,
    pub failure: Option<String>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
}

impl SessionWorkflow {
    fn new(
        binding_slug: &str,
        output_key: &str,
        context: &JsonMap,
        participant: &Participant,
        definition: &WorkflowDefinition,
        ids: &dyn IdGenerator,
    ) -> Self {
        Self {
            id: SessionWorkflowId::generate(ids),
            workflow_slug: binding_slug.to_owned(),
            output_key: output_key.to_owned(),
            participant_id: participant.id.clone(),
            context: context.clone(),
            definition: definition.clone(),
            status: WorkflowStatus::Pending,
            step: 0,
            waiting: None,
            attempts: 0,
            data: None,
            output: None,
            validation: None,
            review: None,
            failure: None,
            started_at: None,
            completed_at: None,
        }
    }

    /// Back to the state it had before it ever started (resubmission).
    pub fn reset(&mut self) {
        self.status = WorkflowStatus::Pending;
        self.step = 0;
        self.waiting = None;
        self.attempts = 0;
        self.data = None;
        self.output = None;
        self.validation = None;
        self.review = None;
        self.failure = None;
        self.started_at = None;
        self.completed_at = None;
    }

    pub fn is_pristine(&self) -> bool {
        self.status == WorkflowStatus::Pending
            && self.step == 0
            && self.waiting.is_none()
            && self.attempts == 0
            && self.data.is_none()
            && self.output.is_none()
            && self.validation.is_none()
            && self.review.is_none()
            && self.failure.is_none()
            && self.started_at.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pending,
    Completed,
    Failed,
}

/// A provider-backed check requested by a workflow's `check` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub id: CheckId,
    pub session_workflow_id: SessionWorkflowId,
    pub participant_id: ParticipantId,
    pub kind: CheckKind,
    pub provider: Option<String>,
    pub status: CheckStatus,
    /// What the provider found, strongest first (none: clear).
    #[serde(default)]
    pub findings: Vec<crate::screening::Finding>,
    /// Why the check failed (its provider never answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub requested_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

/// One reason a risk score is what it is (see [`crate::risk`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskFactor {
    /// A stable machine code (`sanctions_strong_match`, `country_high_risk`…):
    /// what a partner's integration matches on.
    pub name: String,
    /// The points the factor adds to the score; 0 for evidence worth recording
    /// that changes nothing (a review that approved).
    pub weight: i32,
    /// What the factor means for this session, for a human.
    pub detail: Option<String>,
    /// The participant the factor concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<ParticipantId>,
    /// The session workflow whose evidence gave the factor, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_workflow_id: Option<SessionWorkflowId>,
}

/// The native risk score, computed by a `risk` step from the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskSummary {
    pub score: u8,
    pub level: RiskLevel,
    pub factors: Vec<RiskFactor>,
    pub computed_at: Timestamp,
    /// The workflow whose `risk` step computed it: a resubmission that
    /// resets that workflow drops the summary, and only such a one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_workflow_id: Option<SessionWorkflowId>,
}

/// The end user's access token, as the session keeps it: a hash to find the
/// session by, and the token sealed with the deployment's key so the partner
/// can read it back. The plain token never reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub hash: String,
    pub sealed: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: SessionId,
    /// Created with a test key, the session is a sandbox session: its checks
    /// run their providers in test mode.
    pub tenant: Tenant,
    pub configuration_slug: String,
    pub external_user_id: String,
    pub subject_kind: SubjectKind,
    pub policy: Policy,
    pub status: SessionStatus,
    pub resolution: Option<Resolution>,
    pub access_token: AccessToken,
    pub expires_at: Timestamp,
    pub redirect_url: Option<String>,
    pub participants: Vec<Participant>,
    pub context: JsonMap,
    pub metadata: JsonMap,
    pub workflows: Vec<SessionWorkflow>,
    pub checks: Vec<Check>,
    pub risk: Option<RiskSummary>,
    /// Files the end user may upload and no submission has claimed yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<Upload>,
    /// The files of the case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// What a listing shows of a session: enough to find the case, without its
/// evidence. Stores may keep it beside the session so that a listing never
/// reads the whole session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: SessionId,
    pub tenant: Tenant,
    pub configuration_slug: String,
    pub external_user_id: String,
    pub status: SessionStatus,
    pub resolution: Option<Decision>,
    pub resolved_by: Option<ResolvedBy>,
    pub expires_at: Timestamp,
    pub workflows_total: usize,
    pub workflows_completed: usize,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl SessionSummary {
    /// The same rule as [`Session::is_overdue`].
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        overdue(self.status, self.expires_at, now)
    }

    /// The summary as it reads at `now`: an overdue session is expired even
    /// before the sweep (or a read of the session) records it.
    pub fn as_of(&self, now: Timestamp) -> SessionSummary {
        let mut summary = self.clone();
        if summary.is_overdue(now) {
            summary.status = SessionStatus::Expired;
        }
        summary
    }
}

fn overdue(status: SessionStatus, expires_at: Timestamp, now: Timestamp) -> bool {
    status.can_expire() && now >= expires_at
}

impl From<&Session> for SessionSummary {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.clone(),
            tenant: s.tenant.clone(),
            configuration_slug: s.configuration_slug.clone(),
            external_user_id: s.external_user_id.clone(),
            status: s.status,
            resolution: s.resolution.as_ref().map(|r| r.decision),
            resolved_by: s.resolution.as_ref().map(|r| r.resolved_by),
            expires_at: s.expires_at,
            workflows_total: s.workflows.len(),
            workflows_completed: s
                .workflows
                .iter()
                .filter(|w| w.status == WorkflowStatus::Completed)
                .count(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// `POST /sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionDraft {
    pub configuration_slug: String,
    pub external_user_id: String,
    #[serde(default)]
    pub participants: Vec<ParticipantInput>,
    #[serde(default)]
    pub context: JsonMap,
    #[serde(default)]
    pub metadata: JsonMap,
    pub expires_in_minutes: Option<u32>,
    pub redirect_url: Option<String>,
}

pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Everything a new session needs besides the partner's draft.
pub struct Origin<'a> {
    pub access_token: AccessToken,
    pub configuration: &'a Configuration,
    pub catalog: &'a Catalog,
}

impl Session {
    /// Index of the workflow the session is on: the first one not completed.
    pub fn current_index(&self) -> Option<usize> {
        self.workflows
            .iter()
            .position(|w| w.status != WorkflowStatus::Completed)
    }

    /// The status the workflows imply (for a session that has not expired).
    /// A fact about the session, not a step of its changes: the lifecycle
    /// settles every change on it and the invariants hold every stored
    /// session to it, so it stands here, below both.
    pub fn derived_status(&self) -> SessionStatus {
        let workflows = &self.workflows;
        if workflows.iter().any(|w| w.status == WorkflowStatus::Failed) {
            return SessionStatus::Failed;
        }
        match self.current_index() {
            None => {
                let policy = self.policy;
                if policy.is_verification && policy.final_manual_review_required && self.resolution.is_none() {
                    SessionStatus::PendingReview
                } else {
                    SessionStatus::Completed
                }
            }
            Some(i) if workflows[i].status == WorkflowStatus::PendingReview => SessionStatus::PendingReview,
            Some(_) if self.started_at.is_some() => SessionStatus::InProgress,
            Some(_) => SessionStatus::Created,
        }
    }

    pub fn workflow_index(&self, id: &str) -> Option<usize> {
        self.workflows.iter().position(|w| w.id.as_str() == id)
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<&Participant> {
        self.participants.iter().find(|p| &p.id == id)
    }

    /// Past its deadline while still waiting for the end user.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        overdue(self.status, self.expires_at, now)
    }

    /// Builds the session's workflow instances from the configuration: one per
    /// participant whose role a binding names, in binding order, or one for
    /// the subject when the binding names no role.
    pub(crate) fn plan(
        origin: &Origin<'_>,
        participants: &[Participant],
        ids: &dyn IdGenerator,
    ) -> Result<Vec<SessionWorkflow>, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut workflows = Vec::new();
        for binding in &origin.configuration.bindings {
            let Some(definition) = origin.catalog.get(&binding.workflow_slug) else {
                errors.push(
                    "configurationSlug",
                    format!(
                        "the configuration uses workflow `{}`, which no longer exists",
                        binding.workflow_slug
                    ),
                );
                continue;
            };
            let roles: &[Role] = if binding.participant_roles.is_empty() {
                &[Role::Subject]
            } else {
                &binding.participant_roles
            };
            let matching: Vec<&Participant> = participants.iter().filter(|p| roles.contains(&p.role)).collect();
            if matching.is_empty() {
                let names: Vec<String> = roles
                    .iter()
                    .map(|r| serde_json::to_value(r).map(|v| v.to_string()).unwrap_or_default())
                    .collect();
                errors.push(
                    "participants",
                    format!(
                        "workflow `{}` runs for role {}, and no participant has it",
                        binding.workflow_slug,
                        names.join(" or ")
                    ),
                );
            }
            workflows.extend(matching.into_iter().map(|p| {
                SessionWorkflow::new(
                    &binding.workflow_slug,
                    &binding.output_key,
                    &binding.context,
                    p,
                    definition,
                    ids,
                )
            }));
        }
        errors.finish(workflows)
    }

    pub(crate) fn check_draft(draft: &SessionDraft, errors: &mut FieldErrors) {
        check_text(errors, "externalUserId", &draft.external_user_id, 255);
        check_json_size(errors, "context", &draft.context, MAX_CONTEXT_BYTES);
        check_json_size(errors, "metadata", &draft.metadata, MAX_METADATA_BYTES);
        if let Some(minutes) = draft.expires_in_minutes {
            check_expiry(errors, "expiresInMinutes", minutes);
        }
        if let Some(url) = &draft.redirect_url {
            check_redirect_url(errors, "redirectUrl", url);
        }
    }

    pub(crate) fn admit_participants(
        draft: &SessionDraft,
        ids: &dyn IdGenerator,
    ) -> Result<Vec<Participant>, FieldErrors> {
        participant::admit(&draft.participants, ids)
    }
}
