//! Provider-backed checks: what a check screens, the verdict a provider's
//! answer gives, and what the verdict means for its workflow.
//!
//! This module only reads: recording an answer is a transition like the
//! others, in [`crate::lifecycle`], and the pipeline carries the workflow on.
//! So the events and the pipeline, which name a verdict, stand above checks
//! and never reach back up through it.
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

use serde::{Deserialize, Serialize};

use crate::configuration::SubjectKind as SessionSubjectKind;
use crate::ids::CheckId;
use crate::participant::Role;
use crate::screening::{Finding, MatchStrength, Subject, SubjectKind};
use crate::session::Session;
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
