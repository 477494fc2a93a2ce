//! The session state machine. Each partner, end-user or checks-worker action
//! has one transition function here (or in [`crate::resubmission`]); all of
//! them go through a `Change` (see [`crate::transition`]) and run the
//! workflows with [`crate::pipeline`], which stands below them.

use crate::Timestamp;
use crate::checks::CheckOutcome;
use crate::configuration::Configuration;
use crate::documents::Files;
use crate::error::DomainError;
use crate::events::EventKind;
use crate::ids::{CheckId, IdGenerator, SessionId};
use crate::pipeline;
use crate::session::{
    CheckStatus, Decision, Origin, Resolution, ResolvedBy, Session, SessionDraft, SessionStatus, Waiting,
};
use crate::tenancy::Actor;
use crate::transition::{Change, Transition};
use crate::validation::{FieldErrors, check_text};

impl Session {
    /// `POST /sessions`: a new session from a configuration.
    pub fn create(
        draft: SessionDraft,
        origin: Origin<'_>,
        actor: Actor,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        let mut errors = FieldErrors::new();
        Session::check_draft(&draft, &mut errors);
        let participants = match Session::admit_participants(&draft, ids) {
            Ok(p) => p,
            Err(e) => {
                errors.extend(e);
                return Err(errors.into());
            }
        };
        let workflows = match Session::plan(&origin, &participants, ids) {
            Ok(w) => w,
            Err(e) => {
                errors.extend(e);
                return Err(errors.into());
            }
        };
        let config: &Configuration = origin.configuration;
        let minutes = draft.expires_in_minutes.unwrap_or(config.default_expires_in_minutes);
        let session = errors.finish(Session {
            id: SessionId::generate(ids),
            // The configuration's tenant, which is the caller's: a session
            // can only be made from a configuration of its own mode.
            tenant: config.tenant.clone(),
            configuration_slug: config.slug.clone(),
            external_user_id: draft.external_user_id.trim().to_owned(),
            subject_kind: config.subject_kind,
            policy: config.policy,
            status: SessionStatus::Created,
            resolution: None,
            access_token: origin.access_token,
            expires_at: now + chrono::Duration::minutes(i64::from(minutes)),
            redirect_url: draft.redirect_url.or_else(|| config.default_redirect_url.clone()),
            participants,
            context: draft.context,
            metadata: draft.metadata,
            workflows,
            checks: Vec::new(),
            risk: None,
            uploads: Vec::new(),
            documents: Vec::new(),
            started_at: None,
            completed_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        })?;
        let mut change = Change::begin(&session, actor, now, ids);
        change.emit(EventKind::SessionCreated);
        change.finish()
    }

    /// `POST /access/{token}/start`: the end user begins. Idempotent: `None`
    /// when there is nothing to start (already started, or closed).
    pub fn start(&self, now: Timestamp, ids: &dyn IdGenerator) -> Result<Option<Transition>, DomainError> {
        if self.status != SessionStatus::Created {
            return Ok(None);
        }
        if self.is_overdue(now) {
            return Err(DomainError::SessionExpired);
        }
        let mut change = Change::begin(self, Actor::EndUser, now, ids);
        begin_session(&mut change);
        change.finish().map(Some)
    }

    /// `POST /access/{token}/workflows/{id}`: the end user's submission for
    /// the current step, naming no uploads.
    pub fn submit(
        &self,
        session_workflow_id: &str,
        data: &crate::JsonMap,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        self.submit_with_files(session_workflow_id, data, &Files::new(), now, ids)
    }

    /// The end user's submission for the current step, with what storage
    /// holds for the uploads it names (see [`crate::documents`]).
    pub fn submit_with_files(
        &self,
        session_workflow_id: &str,
        data: &crate::JsonMap,
        files: &Files,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        let (mut change, index) = self.begin_input(session_workflow_id, now, ids)?;
        pipeline::submit(&mut change, index, data, files)?;
        change.finish()
    }

    /// `POST /sessions/{id}/workflows/{swf}/review`: the partner decides on a
    /// workflow paused for review.
    pub fn review(
        &self,
        session_workflow_id: &str,
        decision: Decision,
        reason: &str,
        actor: Actor,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        let index = self
            .workflow_index(session_workflow_id)
            .ok_or_else(|| DomainError::UnknownSessionWorkflow(session_workflow_id.to_owned()))?;
        if self.workflows[index].waiting != Some(Waiting::Review) || self.status == SessionStatus::Expired {
            return Err(DomainError::NotAwaitingReview(session_workflow_id.to_owned()));
        }
        let reason = checked_reason(reason)?;
        let mut change = Change::begin(self, actor, now, ids);
        pipeline::review(&mut change, index, decision, reason);
        change.finish()
    }

    /// The provider's answer for a pending check: the check completes (or
    /// fails) and its workflow goes on, pauses for review or fails. `None`
    /// when the check is not pending any more, or the session is closed.
    ///
    /// The checks worker's call (see [`crate::checks`]). It is idempotent:
    /// an answer for a check that is no longer pending (answered already,
    /// reset by a resubmission, or the session closed) records nothing, so
    /// a redelivered job records nothing twice.
    pub fn record_check(
        &self,
        check_id: &CheckId,
        outcome: CheckOutcome,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Option<Transition>, DomainError> {
        let Some(check) = self.checks.iter().position(|c| &c.id == check_id) else {
            return Ok(None);
        };
        let waiting = Some(Waiting::Check {
            check_id: check_id.clone(),
        });
        let Some(index) = self.workflows.iter().position(|w| w.waiting == waiting) else {
            return Ok(None);
        };
        let closed = matches!(
            self.status,
            SessionStatus::Expired | SessionStatus::Completed | SessionStatus::Failed
        );
        if closed || self.checks[check].status != CheckStatus::Pending {
            return Ok(None);
        }
        let mut change = Change::begin(self, Actor::System, now, ids);
        pipeline::check_answered(&mut change, index, check, outcome);
        change.finish().map(Some)
    }

    /// `POST /sessions/{id}/resolve`: the partner's decision, at any time; it
    /// overrides any earlier resolution and closes a final review.
    pub fn resolve(
        &self,
        decision: Decision,
        reason: &str,
        actor: Actor,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        if !self.policy.is_verification {
            return Err(DomainError::ResolutionDisabled);
        }
        let reason = checked_reason(reason)?;
        let mut change = Change::begin(self, actor.clone(), now, ids);
        change.session.resolution = Some(Resolution {
            decision,
            reason: Some(reason.clone()),
            resolved_by: ResolvedBy::Partner,
            actor,
            resolved_at: now,
        });
        change.emit(EventKind::SessionResolved {
            decision,
            resolved_by: ResolvedBy::Partner,
            reason: Some(reason),
        });
        change.finish()
    }

    /// The session's deadline passed while it waited for the end user.
    /// `None` when it is not due (or not expirable).
    pub fn expire(&self, now: Timestamp, ids: &dyn IdGenerator) -> Result<Option<Transition>, DomainError> {
        if !self.is_overdue(now) {
            return Ok(None);
        }
        let mut change = Change::begin(self, Actor::System, now, ids);
        change.session.status = SessionStatus::Expired;
        change.session.completed_at = Some(now);
        change.emit(EventKind::SessionExpired);
        change.finish().map(Some)
    }

    /// The common opening of the end user's input: the session takes input,
    /// the workflow is the current one and waits for it; a session not yet
    /// begun begins.
    pub(crate) fn begin_input<'a>(
        &self,
        session_workflow_id: &str,
        now: Timestamp,
        ids: &'a dyn IdGenerator,
    ) -> Result<(Change<'a>, usize), DomainError> {
        self.ensure_accepts_input(now)?;
        let index = self
            .workflow_index(session_workflow_id)
            .ok_or_else(|| DomainError::UnknownSessionWorkflow(session_workflow_id.to_owned()))?;
        let mut change = Change::begin(self, Actor::EndUser, now, ids);
        if change.session.status == SessionStatus::Created {
            begin_session(&mut change);
        }
        let current = change.session.current_index();
        let workflow = &change.session.workflows[index];
        if current != Some(index) || workflow.waiting != Some(Waiting::Input) {
            return Err(DomainError::WorkflowNotCurrent(session_workflow_id.to_owned()));
        }
        Ok((change, index))
    }

    pub(crate) fn ensure_accepts_input(&self, now: Timestamp) -> Result<(), DomainError> {
        if self.status == SessionStatus::Expired || self.is_overdue(now) {
            return Err(DomainError::SessionExpired);
        }
        if matches!(self.status, SessionStatus::Completed | SessionStatus::Failed) || self.current_index().is_none() {
            return Err(DomainError::SessionClosed(self.status));
        }
        Ok(())
    }
}

pub(crate) fn begin_session(change: &mut Change<'_>) {
    change.session.started_at = Some(change.now);
    change.emit(EventKind::SessionStarted);
    if let Some(first) = change.session.current_index() {
        pipeline::activate(change, first);
    }
}

fn checked_reason(reason: &str) -> Result<String, DomainError> {
    let mut errors = FieldErrors::new();
    check_text(&mut errors, "reason", reason, 1000);
    errors.finish(reason.trim().to_owned()).map_err(DomainError::from)
}
