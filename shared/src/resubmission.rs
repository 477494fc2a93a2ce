//! Resubmission: redo a workflow. Later workflows may have read its output,
//! so it and every workflow after it go back to their initial state, with the
//! checks and the risk summary that depended on them; the session reopens and
//! any resolution is cleared, since the evidence behind it changed.

use std::collections::BTreeSet;

use crate::Timestamp;
use crate::error::DomainError;
use crate::events::EventKind;
use crate::ids::IdGenerator;
use crate::pipeline;
use crate::session::{Session, SessionStatus, WorkflowStatus};
use crate::tenancy::Actor;
use crate::transition::{Change, Transition};

impl Session {
    pub fn resubmit(
        &self,
        session_workflow_id: &str,
        actor: Actor,
        now: Timestamp,
        ids: &dyn IdGenerator,
    ) -> Result<Transition, DomainError> {
        // A resubmission hands the session back to the end user, which the
        // deadline forbids once it has passed, whatever the status: a closed
        // or reviewed session would otherwise reopen already overdue.
        if self.status == SessionStatus::Expired || now >= self.expires_at {
            return Err(DomainError::SessionExpired);
        }
        let index = self
            .workflow_index(session_workflow_id)
            .ok_or_else(|| DomainError::UnknownSessionWorkflow(session_workflow_id.to_owned()))?;
        if self.workflows[index].status == WorkflowStatus::Pending {
            return Err(DomainError::NothingToResubmit(session_workflow_id.to_owned()));
        }
        let mut change = Change::begin(self, actor, now, ids);
        let session = &mut change.session;
        let reset: Vec<_> = session.workflows[index..].iter().map(|w| w.id.clone()).collect();
        session.workflows[index..].iter_mut().for_each(|w| w.reset());
        let reset_set: BTreeSet<_> = reset.iter().collect();
        session.checks.retain(|c| !reset_set.contains(&c.session_workflow_id));
        // The risk summary goes only if the workflow that computed it is
        // reset (it then runs again); one computed earlier still stands.
        if session
            .risk
            .as_ref()
            .is_some_and(|r| r.session_workflow_id.as_ref().is_none_or(|id| reset_set.contains(id)))
        {
            session.risk = None;
        }
        session.resolution = None;
        session.completed_at = None;
        // A closed session reopens; `settle` derives where it now stands.
        if !session.status.is_open() {
            session.status = SessionStatus::InProgress;
        }
        change.emit(EventKind::SessionWorkflowResubmitted {
            session_workflow_id: reset[0].clone(),
            reset,
        });
        pipeline::activate(&mut change, index);
        change.finish()
    }
}
