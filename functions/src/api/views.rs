//! The API's representations of domain objects: what partners and end users
//! see, with internal fields (org ids, hashes, sealed secrets, definition
//! snapshots) left out.

use korala_domain::configuration::{Configuration, PlanStyle, WorkflowBinding};
use korala_domain::events::Event;
use korala_domain::participant::Participant;
use korala_domain::session::{
    Check, Decision, Resolution, ResolvedBy, ReviewRecord, RiskSummary, Session, SessionStatus, SessionWorkflow,
    ValidationReport, Waiting, WorkflowStatus,
};
use korala_domain::tenancy::Mode;
use korala_domain::workflow::{FailureOutcome, Field, Step, StoredWorkflow, WorkflowDefinition};
use korala_domain::{JsonMap, Timestamp};
use serde::Serialize;

use crate::adapters::crypto::Sealer;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationView<'a> {
    name: &'a str,
    slug: &'a str,
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_slugs: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_bindings: Option<&'a [WorkflowBinding]>,
    subject_kind: korala_domain::configuration::SubjectKind,
    is_verification: bool,
    auto_resolve: bool,
    final_manual_review_required: bool,
    default_expires_in_minutes: u32,
    default_redirect_url: Option<&'a str>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
}

impl<'a> From<&'a Configuration> for ConfigurationView<'a> {
    fn from(c: &'a Configuration) -> Self {
        Self {
            name: &c.name,
            slug: &c.slug,
            description: c.description.as_deref(),
            workflow_slugs: (c.plan_style == PlanStyle::Slugs)
                .then(|| c.bindings.iter().map(|b| b.workflow_slug.as_str()).collect()),
            workflow_bindings: (c.plan_style == PlanStyle::Bindings).then_some(c.bindings.as_slice()),
            subject_kind: c.subject_kind,
            is_verification: c.policy.is_verification,
            auto_resolve: c.policy.auto_resolve,
            final_manual_review_required: c.policy.final_manual_review_required,
            default_expires_in_minutes: c.default_expires_in_minutes,
            default_redirect_url: c.default_redirect_url.as_deref(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowSource {
    Builtin,
    Organization,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView<'a> {
    #[serde(flatten)]
    definition: &'a WorkflowDefinition,
    source: WorkflowSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
}

impl<'a> WorkflowView<'a> {
    pub fn builtin(definition: &'a WorkflowDefinition) -> Self {
        Self {
            definition,
            source: WorkflowSource::Builtin,
            created_at: None,
            updated_at: None,
            version: None,
        }
    }

    pub fn stored(w: &'a StoredWorkflow) -> Self {
        Self {
            definition: &w.definition,
            source: WorkflowSource::Organization,
            created_at: Some(w.created_at),
            updated_at: Some(w.updated_at),
            version: Some(w.version),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionWorkflowView<'a> {
    id: &'a str,
    workflow_slug: &'a str,
    name: &'a str,
    output_key: &'a str,
    participant_id: &'a str,
    status: WorkflowStatus,
    current: bool,
    waiting_for: Option<&'static str>,
    attempts: u32,
    max_attempts: u32,
    data: Option<&'a JsonMap>,
    output: Option<&'a JsonMap>,
    validation: Option<&'a ValidationReport>,
    review: Option<&'a ReviewRecord>,
    failure_reason: Option<&'a str>,
    started_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
}

fn waiting_for(w: &SessionWorkflow) -> Option<&'static str> {
    w.waiting.as_ref().map(|waiting| match waiting {
        Waiting::Input => "input",
        Waiting::Check { .. } => "check",
        Waiting::Review => "review",
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView<'a> {
    id: &'a str,
    configuration_slug: &'a str,
    external_user_id: &'a str,
    sandbox: bool,
    status: SessionStatus,
    resolution: Option<Decision>,
    resolution_reason: Option<&'a str>,
    resolved_by: Option<ResolvedBy>,
    resolved_at: Option<Timestamp>,
    access_token: String,
    expires_at: Timestamp,
    redirect_url: Option<&'a str>,
    subject_kind: korala_domain::configuration::SubjectKind,
    is_verification: bool,
    participants: &'a [Participant],
    context: &'a JsonMap,
    metadata: &'a JsonMap,
    workflows: Vec<SessionWorkflowView<'a>>,
    checks: &'a [Check],
    risk: Option<&'a RiskSummary>,
    documents: Vec<DocumentView<'a>>,
    started_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
}

/// A document of the case as the partner sees it: what it is, not where
/// it is kept (`GET …/documents/{id}/content` hands out a short-lived URL).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView<'a> {
    id: &'a str,
    session_workflow_id: &'a str,
    participant_id: &'a str,
    field: &'a str,
    file_name: &'a str,
    content_type: &'a str,
    size: u64,
    sha256: &'a str,
    pages: u32,
    submitted_at: Timestamp,
}

impl<'a> DocumentView<'a> {
    pub fn new(d: &'a korala_domain::documents::Document) -> Self {
        Self {
            id: d.id.as_str(),
            session_workflow_id: d.session_workflow_id.as_str(),
            participant_id: d.participant_id.as_str(),
            field: &d.field,
            file_name: &d.file_name,
            content_type: &d.content_type,
            size: d.size,
            sha256: &d.sha256,
            pages: d.pages,
            submitted_at: d.submitted_at,
        }
    }
}

impl<'a> SessionView<'a> {
    pub fn new(s: &'a Session, sealer: &Sealer) -> Self {
        let current = s.current_index();
        let resolution: Option<&Resolution> = s.resolution.as_ref();
        Self {
            id: s.id.as_str(),
            configuration_slug: &s.configuration_slug,
            external_user_id: &s.external_user_id,
            sandbox: s.tenant.is_sandbox(),
            status: s.status,
            resolution: resolution.map(|r| r.decision),
            resolution_reason: resolution.and_then(|r| r.reason.as_deref()),
            resolved_by: resolution.map(|r| r.resolved_by),
            resolved_at: resolution.map(|r| r.resolved_at),
            // Sealed with the deployment's key; unreadable only if the key was
            // rotated without re-sealing, and then the partner gets "".
            access_token: sealer.open(&s.access_token.sealed).unwrap_or_default(),
            expires_at: s.expires_at,
            redirect_url: s.redirect_url.as_deref(),
            subject_kind: s.subject_kind,
            is_verification: s.policy.is_verification,
            participants: &s.participants,
            context: &s.context,
            metadata: &s.metadata,
            workflows: s
                .workflows
                .iter()
                .enumerate()
                .map(|(i, w)| SessionWorkflowView {
                    id: w.id.as_str(),
                    workflow_slug: &w.workflow_slug,
                    name: &w.definition.name,
                    output_key: &w.output_key,
                    participant_id: w.participant_id.as_str(),
                    status: w.status,
                    current: current == Some(i) && s.status.is_open(),
                    waiting_for: waiting_for(w),
                    attempts: w.attempts,
                    max_attempts: w.definition.max_attempts,
                    data: w.data.as_ref(),
                    output: w.output.as_ref(),
                    validation: w.validation.as_ref(),
                    review: w.review.as_ref(),
                    failure_reason: w.failure.as_deref(),
                    started_at: w.started_at,
                    completed_at: w.completed_at,
                })
                .collect(),
            checks: &s.checks,
            risk: s.risk.as_ref(),
            documents: s.documents.iter().map(DocumentView::new).collect(),
            started_at: s.started_at,
            completed_at: s.completed_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        }
    }
}

/// A row of the session list: the store's summary as it reads now, enough to
/// find the case without its evidence (the tenant is the caller's).
pub fn session_summary(s: &korala_domain::session::SessionSummary, now: Timestamp) -> serde_json::Value {
    as_partner_sees(serde_json::to_value(s.as_of(now)))
}

/// An entry of the session's history (the tenant is the caller's).
pub fn event(e: &Event) -> serde_json::Value {
    as_partner_sees(serde_json::to_value(e))
}

/// The stored form without its tenant, which the partner knows as the key
/// it called with: only `sandbox` says which mode the record is in.
fn as_partner_sees(value: Result<serde_json::Value, serde_json::Error>) -> serde_json::Value {
    let mut value = value.unwrap_or_default();
    if let Some(map) = value.as_object_mut()
        && let Some(tenant) = map.remove("tenant")
    {
        let sandbox = tenant.get("mode").and_then(serde_json::Value::as_str) == Some(Mode::Test.as_str());
        map.insert("sandbox".to_owned(), serde_json::Value::Bool(sandbox));
    }
    value
}

/// What the end user's frontend needs, and nothing of the partner's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessView<'a> {
    session_id: &'a str,
    status: SessionStatus,
    expires_at: Timestamp,
    redirect_url: Option<&'a str>,
    steps: Vec<AccessStep<'a>>,
    current_step: Option<CurrentStep<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessStep<'a> {
    id: &'a str,
    workflow_slug: &'a str,
    name: &'a str,
    status: WorkflowStatus,
    current: bool,
    participant: ParticipantRef<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ParticipantRef<'a> {
    role: korala_domain::participant::Role,
    display_name: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CurrentStep<'a> {
    id: &'a str,
    workflow_slug: &'a str,
    status: WorkflowStatus,
    waiting_for: Option<&'static str>,
    fields: &'a [Field],
    attempts_remaining: u32,
    /// Why the last attempt was refused, when the end user must try again.
    messages: Vec<&'a str>,
}

impl<'a> AccessView<'a> {
    pub fn new(s: &'a Session) -> Self {
        let current = s.current_index().filter(|_| s.status.is_open());
        let participant = |w: &'a SessionWorkflow| {
            let p = s.participant(&w.participant_id);
            ParticipantRef {
                role: p.map(|p| p.role).unwrap_or(korala_domain::participant::Role::Subject),
                display_name: p.and_then(|p| p.display_name.as_deref()),
            }
        };
        let current_step = current.map(|i| {
            let w = &s.workflows[i];
            // Before the start, the first step is what the end user will fill
            // in (a submission starts the session implicitly).
            let waits_for_input = w.waiting == Some(Waiting::Input) || s.status == SessionStatus::Created;
            let fields: &[Field] = match w.definition.steps.get(w.step) {
                Some(Step::Capture(c)) if waits_for_input => &c.fields,
                _ => &[],
            };
            let messages = match (&w.waiting, &w.validation) {
                (Some(Waiting::Input), Some(report)) => report
                    .rules
                    .iter()
                    .filter(|r| !r.passed && r.on_failure == FailureOutcome::Retry)
                    .filter_map(|r| r.message.as_deref())
                    .collect(),
                _ => Vec::new(),
            };
            CurrentStep {
                id: w.id.as_str(),
                workflow_slug: &w.workflow_slug,
                status: w.status,
                waiting_for: if s.status == SessionStatus::Created && !fields.is_empty() {
                    Some("input")
                } else {
                    waiting_for(w)
                },
                fields,
                attempts_remaining: w.definition.max_attempts.saturating_sub(w.attempts),
                messages,
            }
        });
        Self {
            session_id: s.id.as_str(),
            status: s.status,
            expires_at: s.expires_at,
            redirect_url: s.redirect_url.as_deref(),
            steps: s
                .workflows
                .iter()
                .enumerate()
                .map(|(i, w)| AccessStep {
                    id: w.id.as_str(),
                    workflow_slug: &w.workflow_slug,
                    name: &w.definition.name,
                    status: w.status,
                    current: current == Some(i),
                    participant: participant(w),
                })
                .collect(),
            current_step,
        }
    }
}

/// A webhook endpoint; its signing secret appears only in the response that
/// created it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointView<'a> {
    id: &'a str,
    url: &'a str,
    events: &'a [korala_domain::webhooks::WebhookEvent],
    enabled: bool,
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: u64,
}

impl<'a> WebhookEndpointView<'a> {
    pub fn new(e: &'a korala_domain::webhooks::WebhookEndpoint) -> Self {
        Self {
            id: e.id.as_str(),
            url: &e.url,
            events: &e.events,
            enabled: e.enabled,
            description: e.description.as_deref(),
            secret: None,
            created_at: e.created_at,
            updated_at: e.updated_at,
            version: e.version,
        }
    }

    pub fn with_secret(e: &'a korala_domain::webhooks::WebhookEndpoint, secret: &'a str) -> Self {
        Self {
            secret: Some(secret),
            ..Self::new(e)
        }
    }
}

/// A delivery in the endpoint's log: everything but the organisation and
/// the write guard; the body as the JSON it is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryView<'a> {
    id: &'a str,
    webhook_endpoint_id: &'a str,
    event_id: &'a str,
    event: korala_domain::delivery::DeliveredEvent,
    #[serde(flatten)]
    state: korala_domain::delivery::DeliveryState,
    round: u32,
    attempts: &'a [korala_domain::delivery::Attempt],
    payload: serde_json::Value,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl<'a> WebhookDeliveryView<'a> {
    pub fn new(d: &'a korala_domain::delivery::WebhookDelivery) -> Self {
        Self {
            id: d.id.as_str(),
            webhook_endpoint_id: d.endpoint_id.as_str(),
            event_id: d.event_id.as_str(),
            event: d.event,
            state: d.state,
            round: d.round,
            attempts: &d.attempts,
            // The body was rendered from our own types; shown as a string
            // should it ever not parse.
            payload: serde_json::from_str(&d.payload).unwrap_or_else(|_| serde_json::Value::String(d.payload.clone())),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}
