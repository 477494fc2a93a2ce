//! A transition: a session's next state and the events that explain it.
//!
//! Every transition is made through a [`Change`], which settles the status,
//! applies automatic resolution, checks the invariants, bumps the version
//! and stamps the events — in one place, so no transition can skip any of
//! it. The transitions themselves (in [`crate::lifecycle`] and
//! [`crate::resubmission`]) and the pipeline they run all stand above this
//! module: it names no workflow step and no action.
//!
//! Transitions are pure: they take the session by reference and return the
//! next state with its events, leaving the input untouched. Refusing a change
//! therefore changes nothing.

use crate::Timestamp;
use crate::error::DomainError;
use crate::events::{Event, EventKind};
use crate::ids::{EventId, IdGenerator};
use crate::invariants;
use crate::resolution;
use crate::rules::Budget;
use crate::session::{Resolution, ResolvedBy, Session, SessionStatus};
use crate::tenancy::Actor;

/// A committed-to-be state and the events that explain it. The store writes
/// both together, conditional on the version the transition started from.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub session: Session,
    pub events: Vec<Event>,
}

impl Transition {
    /// The version the store must still hold for this transition to apply
    /// (`None` for a new session).
    pub fn expected_version(&self) -> Option<u64> {
        (self.session.version > 1).then(|| self.session.version - 1)
    }
}

/// A transition in the making.
pub(crate) struct Change<'a> {
    pub session: Session,
    pub now: Timestamp,
    pub ids: &'a dyn IdGenerator,
    /// What the rules this change evaluates may still spend: however many
    /// workflows and steps it runs through, one budget bounds them all.
    pub budget: Budget,
    actor: Actor,
    events: Vec<(EventKind, Actor)>,
}

impl<'a> Change<'a> {
    pub fn begin(session: &Session, actor: Actor, now: Timestamp, ids: &'a dyn IdGenerator) -> Self {
        Self {
            session: session.clone(),
            now,
            ids,
            budget: Budget::per_transition(),
            actor,
            events: Vec::new(),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn emit(&mut self, kind: EventKind) {
        self.events.push((kind, self.actor.clone()));
    }

    /// Emits an event the service caused on its own (automatic resolution,
    /// status changes that follow from the workflows).
    fn emit_system(&mut self, kind: EventKind) {
        self.events.push((kind, Actor::System));
    }

    /// Derives the status from the workflows, resolves automatically when the
    /// policy says so, and records why.
    fn settle(&mut self) {
        if self.session.status == SessionStatus::Expired {
            return;
        }
        let derived = self.session.derived_status();
        if derived != self.session.status {
            self.session.status = derived;
            match derived {
                SessionStatus::Completed => {
                    self.session.completed_at = Some(self.now);
                    self.emit_system(EventKind::SessionCompleted);
                }
                SessionStatus::Failed => {
                    self.session.completed_at = Some(self.now);
                    self.emit_system(EventKind::SessionFailed);
                }
                SessionStatus::PendingReview => self.emit_system(EventKind::SessionPendingReview),
                SessionStatus::Created | SessionStatus::InProgress | SessionStatus::Expired => {
                    self.session.completed_at = None;
                }
            }
        }
        if let Some(decision) = resolution::automatic(&self.session) {
            self.session.resolution = Some(Resolution {
                decision,
                reason: Some(resolution::automatic_reason(decision).to_owned()),
                resolved_by: ResolvedBy::Auto,
                actor: Actor::System,
                resolved_at: self.now,
            });
            self.emit_system(EventKind::SessionResolved {
                decision,
                resolved_by: ResolvedBy::Auto,
                reason: Some(resolution::automatic_reason(decision).to_owned()),
            });
        }
    }

    pub fn finish(mut self) -> Result<Transition, DomainError> {
        self.settle();
        let session = &mut self.session;
        session.version += 1;
        session.updated_at = self.now;
        invariants::check(session).map_err(DomainError::InvariantViolated)?;
        let events = self
            .events
            .into_iter()
            .enumerate()
            .map(|(i, (kind, actor))| Event {
                id: EventId::generate(self.ids),
                tenant: session.tenant.clone(),
                session_id: session.id.clone(),
                external_user_id: session.external_user_id.clone(),
                version: session.version,
                sequence: i as u32,
                occurred_at: self.now,
                actor,
                status: session.status,
                resolution: session.resolution.as_ref().map(|r| r.decision),
                kind,
            })
            .collect();
        Ok(Transition {
            session: self.session,
            events,
        })
    }
}
