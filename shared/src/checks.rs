//! Provider-backed checks: what a check screens, the verdict its findings
//! give, and recording a provider's answer as a transition.
//!
//! A `check` step records a pending [`Check`](crate::session::Check) and
//! emits `session_check_requested`; the workflow waits. The checks worker
//! runs the provider and hands its answer to [`Session::record_check`]:
//!
//! | verdict | the workflow |
//! |---|---|
//! | clear | goes on past the check step |
//! | possible match (any kind), strong PEP or adverse-media match | pauses for the partner's review; approving it goes on |
//! | strong sanctions match | fails: a sanctioned party is not onboarded |
//! | the provider failed (retries spent) | fails |
//!
//! Recording is idempotent: an answer for a check that is no longer pending
//! (answered already, reset by a resubmission, or the session closed) is
//! `None`, so a redelivered job records nothing twice.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::configuration::SubjectKind as SessionSubjectKind;
use crate::error::DomainError;
use crate::ids::{CheckId, IdGenerator};
use crate::lifecycle::{Change, Transition};
use crate::participant::Role;
use crate::pipeline;
use crate::screening::{Finding, MatchStrength, Subject, SubjectKind};
use crate::session::{CheckStatus, Session, SessionStatus, Waiting};
use crate::tenancy::Actor;
use crate::workflow::CheckKind;

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckOutcome {
    /// The provider screened the subject; no findings means clear.
    Screened { provider: String, findings: Vec<Finding> },
    /// The provider could not answer, and its retries are spent.
    Failed { provider: String, reason: String },
}

/// What a check's answer means for its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    Clear,
    PossibleMatch,
    StrongMatch,
    Failed,
}

impl CheckVerdict {
    pub fn of(outcome: &CheckOutcome) -> Self {
        match outcome {
            CheckOutcome::Failed { .. } => CheckVerdict::Failed,
            CheckOutcome::Screened { findings, .. } => {
                if findings.iter().any(|f| f.strength == MatchStrength::Strong) {
                    CheckVerdict::StrongMatch
                } else if findings.is_empty() {
                    CheckVerdict::Clear
                } else {
                    CheckVerdict::PossibleMatch
                }
            }
        }
    }
}

/// What the workflow does with a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Consequence {
    Continue,
    Review(String),
    Fail(String),
}

/// The table in the module docs.
pub(crate) fn consequence(kind: CheckKind, outcome: &CheckOutcome) -> Consequence {
    let names = |findings: &[Finding]| {
        let mut names: Vec<&str> = findings.iter().map(|f| f.entity_name.as_str()).collect();
        names.dedup();
        names.truncate(3);
        names.join(", ")
    };
    let what = kind_name(kind);
    match (CheckVerdict::of(outcome), outcome) {
        (CheckVerdict::Failed, CheckOutcome::Failed { reason, .. }) => {
            Consequence::Fail(format!("the {what} check could not be completed: {reason}"))
        }
        (CheckVerdict::Clear, _) => Consequence::Continue,
        (CheckVerdict::StrongMatch, CheckOutcome::Screened { findings, .. }) if kind == CheckKind::Sanctions => {
            Consequence::Fail(format!("strong sanctions match: {}", names(findings)))
        }
        (CheckVerdict::StrongMatch, CheckOutcome::Screened { findings, .. }) => {
            Consequence::Review(format!("strong {what} match: {}", names(findings)))
        }
        (_, CheckOutcome::Screened { findings, .. }) => {
            Consequence::Review(format!("possible {what} match: {}", names(findings)))
        }
        (_, CheckOutcome::Failed { reason, .. }) => {
            Consequence::Fail(format!("the {what} check could not be completed: {reason}"))
        }
    }
}

fn kind_name(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Pep => "PEP",
        CheckKind::Sanctions => "sanctions",
        CheckKind::AdverseMedia => "adverse media",
        CheckKind::Registry => "registry",
    }
}

impl Session {
    /// The provider's answer for a pending check: the check completes (or
    /// fails) and its workflow goes on, pauses for review or fails. `None`
    /// when the check is not pending any more, or the session is closed.
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

    /// Who a pending check screens: its participant, by the name the
    /// partner gave or (failing that) the one on the participant's identity
    /// document, with the birth date and countries the earlier workflows of
    /// that participant (or its attributes) know. `None` for an unknown
    /// check or a participant with no name at all.
    pub fn screening_subject(&self, check_id: &CheckId) -> Option<Subject> {
        let check = self.checks.iter().find(|c| &c.id == check_id)?;
        let participant = self.participants.iter().find(|p| p.id == check.participant_id)?;
        let outputs: Vec<&crate::JsonMap> = self
            .workflows
            .iter()
            .filter(|w| w.participant_id == participant.id)
            .filter_map(|w| w.output.as_ref())
            .chain(std::iter::once(&participant.attributes))
            .collect();
        let text = |keys: &[&str]| {
            outputs.iter().find_map(|map| {
                keys.iter()
                    .find_map(|k| map.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
            })
        };
        let name = participant
            .display_name
            .clone()
            .or_else(|| text(&["fullName", "name", "legalName"]))?;
        let mut countries: Vec<String> = ["nationality", "issuingCountry", "country", "countryOfIncorporation"]
            .iter()
            .filter_map(|k| text(&[k]))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        countries.sort();
        countries.dedup();
        let entity = if participant.role == Role::Subject && self.subject_kind == SessionSubjectKind::Business {
            SubjectKind::Organization
        } else {
            SubjectKind::Person
        };
        Some(Subject {
            name,
            birth_date: text(&["dateOfBirth", "birthDate"]),
            countries,
            entity,
        })
    }
}
