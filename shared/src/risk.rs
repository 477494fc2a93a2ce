//! The native risk score: an explainable score from 0 to 100 that a `risk`
//! step computes from the evidence a session has gathered before it, and the
//! decision the step's thresholds make of it.
//!
//! # Evidence
//!
//! [`assess`] reads the workflows before the risk step's own (index `upto`)
//! — their validation reports, review decisions, outputs and checks — and the
//! risk step's own workflow as far as it has run: its captured `data` and the
//! validation, review and checks of its earlier steps. Later workflows are
//! never read: they have not run yet (workflows run in order), and what they
//! held before a resubmission is stale. Participants' attributes, given by the
//! partner when the session was created, count for every participant.
//!
//! # Factors
//!
//! Each piece of evidence that says something becomes a [`RiskFactor`]: its
//! stable [`FactorCode`] (in `name`), the points it adds (`weight`), what it
//! means for this session (`detail`) and the participant and workflow it
//! concerns. Weights never go below zero, so evidence can only raise a score:
//! a review that approved records the factor with weight 0 rather than
//! lowering the score, because the partner approved *that* workflow, not the
//! case.
//!
//! | code | weight | why |
//! |---|---|---|
//! | `subject_individual` | 0 | the baseline: recorded so every score says what it is about |
//! | `subject_business` | 10 | legal persons can hide their owners behind structures |
//! | `sanctions_strong_match` | 90 | a sanctioned party is not onboarded: alone it reaches the default reject threshold |
//! | `sanctions_possible_match` | 30 | a name close to a sanctioned party's, nothing corroborating |
//! | `pep_strong_match` | 40 | politically exposed: enhanced due diligence, not refusal |
//! | `pep_possible_match` | 15 | often a namesake, but a human should rule it out |
//! | `adverse_media_strong_match` | 30 | reported wrongdoing weighs less than a listing |
//! | `adverse_media_possible_match` | 10 | namesakes are common in the press |
//! | `registry_finding` | 10 | no registry provider exists yet; a finding is worth a look, no more |
//! | `check_failed` | 25 | screening that could not be done is missing evidence |
//! | `validation_review` | 10 | a rule asked for a human look |
//! | `validation_retried` | 5 per extra attempt, at most 15 | repeated corrections |
//! | `validation_failed` | 40 | the evidence broke a rule outright |
//! | `review_approved` | 0 | recorded, lowers nothing |
//! | `review_rejected` | 60 | a partner refused part of the case: high on its own |
//! | `document_expired` | 25 | an `expiryDate` on or before the day of the assessment |
//! | `document_near_expiry` | 5 | expires within [`NEAR_EXPIRY_DAYS`] |
//! | `country_high_risk`, `country_medium_risk`, `country_low_risk` | the country table's | a participant's `issuingCountry`, `nationality`, `countryOfIncorporation` or address `country` is listed in [`CountryRisk`] |
//! | `company_young` | 15 | incorporated less than [`YOUNG_COMPANY_DAYS`] ago: shell companies are young |
//!
//! A check gives one factor, from its most serious finding: a check with ten
//! possible matches is one question for the partner, not ten. A finding counts
//! as the more serious of what its check screens for and what its topics say:
//! a PEP list entity that is also sanctioned (`sanction` topic) is a sanctions
//! match. A listed country counts once per session (its first participant);
//! later participants with it are recorded with weight 0, so a company with
//! five directors of one nationality is not five times riskier for it.
//!
//! The score is the sum of the weights, capped at [`MAX_SCORE`]; the level is
//! `low` below [`MEDIUM_FROM`], `medium` below [`HIGH_FROM`], `high` from
//! there. Factors come in a stable order: the subject kind, then each workflow
//! in session order (validation, review, its checks in the order they were
//! requested, its document), then each participant in session order
//! (countries in order of appearance, company age).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::configuration::SubjectKind;
use crate::participant::{Participant, Role};
use crate::screening::{Finding, MatchStrength};
use crate::session::{
    Check, CheckStatus, Decision, RiskFactor, RiskLevel, RiskSummary, Session, SessionWorkflow, ValidationOutcome,
};
use crate::workflow::{CheckKind, RiskStep};
use crate::{JsonMap, Timestamp};

/// Scores are capped here, however much evidence piles up.
pub const MAX_SCORE: u8 = 100;
/// Scores from here are [`RiskLevel::Medium`].
pub const MEDIUM_FROM: u8 = 30;
/// Scores from here are [`RiskLevel::High`].
pub const HIGH_FROM: u8 = 60;
/// A `risk` step without `reviewThreshold` sends scores from here to review:
/// inside the `medium` band, so one strong PEP match plus any other concern
/// gets a human look.
pub const DEFAULT_REVIEW_THRESHOLD: u8 = 50;
/// A `risk` step without `rejectThreshold` rejects scores from here: a strong
/// sanctions match alone reaches it.
pub const DEFAULT_REJECT_THRESHOLD: u8 = 80;
/// A document expiring within this many days of the assessment is near expiry.
pub const NEAR_EXPIRY_DAYS: i64 = 90;
/// A company incorporated less than this many days before the assessment is young.
pub const YOUNG_COMPANY_DAYS: i64 = 365;

/// The points each kind of evidence adds (see the module docs for why).
pub mod weights {
    pub const SUBJECT_INDIVIDUAL: u8 = 0;
    pub const SUBJECT_BUSINESS: u8 = 10;
    pub const SANCTIONS_STRONG: u8 = 90;
    pub const SANCTIONS_POSSIBLE: u8 = 30;
    pub const PEP_STRONG: u8 = 40;
    pub const PEP_POSSIBLE: u8 = 15;
    pub const ADVERSE_MEDIA_STRONG: u8 = 30;
    pub const ADVERSE_MEDIA_POSSIBLE: u8 = 10;
    pub const REGISTRY_FINDING: u8 = 10;
    pub const CHECK_FAILED: u8 = 25;
    pub const VALIDATION_REVIEW: u8 = 10;
    /// Per submission after the first.
    pub const VALIDATION_RETRY: u8 = 5;
    /// At most this much for one workflow's retries: attempts are bounded by
    /// the definition, and a clumsy end user is not a criminal.
    pub const VALIDATION_RETRIES_MAX: u8 = 15;
    pub const VALIDATION_FAILED: u8 = 40;
    pub const REVIEW_APPROVED: u8 = 0;
    pub const REVIEW_REJECTED: u8 = 60;
    pub const DOCUMENT_EXPIRED: u8 = 25;
    pub const DOCUMENT_NEAR_EXPIRY: u8 = 5;
    pub const COMPANY_YOUNG: u8 = 15;
}

/// What a factor is about: the stable machine code a [`RiskFactor`] carries
/// in `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorCode {
    SubjectIndividual,
    SubjectBusiness,
    SanctionsStrongMatch,
    SanctionsPossibleMatch,
    PepStrongMatch,
    PepPossibleMatch,
    AdverseMediaStrongMatch,
    AdverseMediaPossibleMatch,
    RegistryFinding,
    CheckFailed,
    ValidationReview,
    ValidationRetried,
    ValidationFailed,
    ReviewApproved,
    ReviewRejected,
    DocumentExpired,
    DocumentNearExpiry,
    CountryHighRisk,
    CountryMediumRisk,
    CountryLowRisk,
    CompanyYoung,
}

impl FactorCode {
    pub const ALL: [FactorCode; 21] = [
        FactorCode::SubjectIndividual,
        FactorCode::SubjectBusiness,
        FactorCode::SanctionsStrongMatch,
        FactorCode::SanctionsPossibleMatch,
        FactorCode::PepStrongMatch,
        FactorCode::PepPossibleMatch,
        FactorCode::AdverseMediaStrongMatch,
        FactorCode::AdverseMediaPossibleMatch,
        FactorCode::RegistryFinding,
        FactorCode::CheckFailed,
        FactorCode::ValidationReview,
        FactorCode::ValidationRetried,
        FactorCode::ValidationFailed,
        FactorCode::ReviewApproved,
        FactorCode::ReviewRejected,
        FactorCode::DocumentExpired,
        FactorCode::DocumentNearExpiry,
        FactorCode::CountryHighRisk,
        FactorCode::CountryMediumRisk,
        FactorCode::CountryLowRisk,
        FactorCode::CompanyYoung,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FactorCode::SubjectIndividual => "subject_individual",
            FactorCode::SubjectBusiness => "subject_business",
            FactorCode::SanctionsStrongMatch => "sanctions_strong_match",
            FactorCode::SanctionsPossibleMatch => "sanctions_possible_match",
            FactorCode::PepStrongMatch => "pep_strong_match",
            FactorCode::PepPossibleMatch => "pep_possible_match",
            FactorCode::AdverseMediaStrongMatch => "adverse_media_strong_match",
            FactorCode::AdverseMediaPossibleMatch => "adverse_media_possible_match",
            FactorCode::RegistryFinding => "registry_finding",
            FactorCode::CheckFailed => "check_failed",
            FactorCode::ValidationReview => "validation_review",
            FactorCode::ValidationRetried => "validation_retried",
            FactorCode::ValidationFailed => "validation_failed",
            FactorCode::ReviewApproved => "review_approved",
            FactorCode::ReviewRejected => "review_rejected",
            FactorCode::DocumentExpired => "document_expired",
            FactorCode::DocumentNearExpiry => "document_near_expiry",
            FactorCode::CountryHighRisk => "country_high_risk",
            FactorCode::CountryMediumRisk => "country_medium_risk",
            FactorCode::CountryLowRisk => "country_low_risk",
            FactorCode::CompanyYoung => "company_young",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }

    /// The points a factor with this code adds, when they do not depend on
    /// the evidence (retries add per attempt; countries what the table says).
    pub fn fixed_weight(self) -> Option<u8> {
        let weight = match self {
            FactorCode::SubjectIndividual => weights::SUBJECT_INDIVIDUAL,
            FactorCode::SubjectBusiness => weights::SUBJECT_BUSINESS,
            FactorCode::SanctionsStrongMatch => weights::SANCTIONS_STRONG,
            FactorCode::SanctionsPossibleMatch => weights::SANCTIONS_POSSIBLE,
            FactorCode::PepStrongMatch => weights::PEP_STRONG,
            FactorCode::PepPossibleMatch => weights::PEP_POSSIBLE,
            FactorCode::AdverseMediaStrongMatch => weights::ADVERSE_MEDIA_STRONG,
            FactorCode::AdverseMediaPossibleMatch => weights::ADVERSE_MEDIA_POSSIBLE,
            FactorCode::RegistryFinding => weights::REGISTRY_FINDING,
            FactorCode::CheckFailed => weights::CHECK_FAILED,
            FactorCode::ValidationReview => weights::VALIDATION_REVIEW,
            FactorCode::ValidationFailed => weights::VALIDATION_FAILED,
            FactorCode::ReviewApproved => weights::REVIEW_APPROVED,
            FactorCode::ReviewRejected => weights::REVIEW_REJECTED,
            FactorCode::DocumentExpired => weights::DOCUMENT_EXPIRED,
            FactorCode::DocumentNearExpiry => weights::DOCUMENT_NEAR_EXPIRY,
            FactorCode::CompanyYoung => weights::COMPANY_YOUNG,
            FactorCode::ValidationRetried
            | FactorCode::CountryHighRisk
            | FactorCode::CountryMediumRisk
            | FactorCode::CountryLowRisk => return None,
        };
        Some(weight)
    }

    /// The code of a recorded factor (`None` for a code this version does not know).
    pub fn of(factor: &RiskFactor) -> Option<Self> {
        Self::parse(&factor.name)
    }
}

impl std::fmt::Display for FactorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `risk` step does with a score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskDecision {
    Pass,
    /// The score reached the review threshold; the reason names the top factors.
    Review(String),
    /// The score reached the reject threshold; the reason names the top factors.
    Reject(String),
}

/// The risk summary of `session` for the `risk` step of workflow `upto`, at
/// `now` (see the module docs). An `upto` past the last workflow reads them all.
pub fn assess(session: &Session, upto: usize, countries: &CountryRisk, now: Timestamp) -> RiskSummary {
    let factors = factors(session, upto, countries, now);
    let score = score(&factors);
    RiskSummary {
        score,
        level: level(score),
        factors,
        computed_at: now,
        session_workflow_id: session.workflows.get(upto).map(|w| w.id.clone()),
    }
}

/// The sum of the factors' weights, within `0..=MAX_SCORE`.
pub fn score(factors: &[RiskFactor]) -> u8 {
    let sum: i64 = factors.iter().map(|f| i64::from(f.weight)).sum();
    u8::try_from(sum.clamp(0, i64::from(MAX_SCORE))).unwrap_or(MAX_SCORE)
}

/// The level a score falls in.
pub fn level(score: u8) -> RiskLevel {
    if score >= HIGH_FROM {
        RiskLevel::High
    } else if score >= MEDIUM_FROM {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

/// Rejects at or above the step's reject threshold, sends to review at or
/// above its review threshold, passes below both. Rejection is looked at
/// first, so a step whose review threshold is above its reject threshold
/// still rejects what it should.
pub fn decide(summary: &RiskSummary, step: &RiskStep) -> RiskDecision {
    let reject = step.reject_threshold.unwrap_or(DEFAULT_REJECT_THRESHOLD);
    let review = step.review_threshold.unwrap_or(DEFAULT_REVIEW_THRESHOLD);
    if summary.score >= reject {
        RiskDecision::Reject(reason(summary, "reject", reject))
    } else if summary.score >= review {
        RiskDecision::Review(reason(summary, "review", review))
    } else {
        RiskDecision::Pass
    }
}

/// How many factors a decision's reason names.
const REASON_FACTORS: usize = 3;

fn reason(summary: &RiskSummary, threshold_name: &str, threshold: u8) -> String {
    let mut top: Vec<&RiskFactor> = summary.factors.iter().filter(|f| f.weight > 0).collect();
    // Stable: equal weights keep the assessment's order.
    top.sort_by_key(|f| std::cmp::Reverse(f.weight));
    let named: Vec<String> = top
        .iter()
        .take(REASON_FACTORS)
        .map(|f| format!("{} (+{})", f.detail.as_deref().unwrap_or(&f.name), f.weight))
        .collect();
    let head = format!(
        "risk score {} ({}) is at or above the {threshold_name} threshold {threshold}",
        summary.score,
        level_name(summary.level)
    );
    if named.is_empty() {
        head
    } else {
        format!("{head}: {}", named.join("; "))
    }
}

fn level_name(level: RiskLevel) -> &'static str {
    match level {
        RiskLevel::Low => "low",
        RiskLevel::Medium => "medium",
        RiskLevel::High => "high",
    }
}

// ---------------------------------------------------------------- evidence

/// One workflow whose evidence counts, with the fields its document shows:
/// the output of an earlier workflow (what it published), the captured data
/// of the risk step's own workflow (it has no output yet).
struct Source<'a> {
    workflow: &'a SessionWorkflow,
    fields: Option<&'a JsonMap>,
}

fn sources(session: &Session, upto: usize) -> Vec<Source<'_>> {
    let end = upto.min(session.workflows.len());
    let earlier = session.workflows[..end].iter().map(|workflow| Source {
        workflow,
        fields: workflow.output.as_ref(),
    });
    let own = session.workflows.get(upto).map(|workflow| Source {
        workflow,
        fields: workflow.data.as_ref(),
    });
    earlier.chain(own).collect()
}

fn factors(session: &Session, upto: usize, countries: &CountryRisk, now: Timestamp) -> Vec<RiskFactor> {
    let today = now.date_naive();
    let sources = sources(session, upto);
    let mut factors = vec![subject_kind(session)];
    for source in &sources {
        let workflow = source.workflow;
        factors.extend(validation(workflow));
        factors.extend(review(workflow));
        factors.extend(
            session
                .checks
                .iter()
                .filter(|c| c.session_workflow_id == workflow.id)
                .filter_map(check),
        );
        if let Some(fields) = source.fields {
            factors.extend(document_expiry(workflow, fields, today));
        }
    }
    let mut counted: BTreeMap<String, &Participant> = BTreeMap::new();
    for participant in &session.participants {
        let fields: Vec<&JsonMap> = sources
            .iter()
            .filter(|s| s.workflow.participant_id == participant.id)
            .filter_map(|s| s.fields)
            .chain(std::iter::once(&participant.attributes))
            .collect();
        factors.extend(country_factors(participant, &fields, countries, &mut counted));
        factors.extend(company_age(participant, &fields, today));
    }
    factors
}

fn factor(code: FactorCode, weight: u8, detail: String) -> RiskFactor {
    RiskFactor {
        name: code.as_str().to_owned(),
        weight: i32::from(weight),
        detail: Some(detail),
        participant_id: None,
        session_workflow_id: None,
    }
}

fn of_workflow(mut f: RiskFactor, workflow: &SessionWorkflow) -> RiskFactor {
    f.participant_id = Some(workflow.participant_id.clone());
    f.session_workflow_id = Some(workflow.id.clone());
    f
}

fn of_participant(mut f: RiskFactor, participant: &Participant) -> RiskFactor {
    f.participant_id = Some(participant.id.clone());
    f
}

fn subject_kind(session: &Session) -> RiskFactor {
    let f = match session.subject_kind {
        SubjectKind::Individual => factor(
            FactorCode::SubjectIndividual,
            weights::SUBJECT_INDIVIDUAL,
            "the subject is an individual".into(),
        ),
        SubjectKind::Business => factor(
            FactorCode::SubjectBusiness,
            weights::SUBJECT_BUSINESS,
            "the subject is a business".into(),
        ),
    };
    match session.participants.iter().find(|p| p.role == Role::Subject) {
        Some(subject) => of_participant(f, subject),
        None => f,
    }
}

fn validation(workflow: &SessionWorkflow) -> Vec<RiskFactor> {
    let slug = &workflow.workflow_slug;
    let mut factors = Vec::new();
    if let Some(report) = &workflow.validation {
        let failed: Vec<&str> = report
            .rules
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.as_str())
            .collect();
        let rules = if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join(", "))
        };
        match report.outcome {
            ValidationOutcome::Review => factors.push(factor(
                FactorCode::ValidationReview,
                weights::VALIDATION_REVIEW,
                format!("the `{slug}` workflow needed a review{rules}"),
            )),
            ValidationOutcome::Failed => factors.push(factor(
                FactorCode::ValidationFailed,
                weights::VALIDATION_FAILED,
                format!("the `{slug}` workflow failed validation{rules}"),
            )),
            // A pending retry shows in the attempts once the end user answers it.
            ValidationOutcome::Passed | ValidationOutcome::Retry => {}
        }
    }
    if workflow.attempts > 1 {
        let retries = workflow.attempts - 1;
        let points = u32::from(weights::VALIDATION_RETRY)
            .saturating_mul(retries)
            .min(u32::from(weights::VALIDATION_RETRIES_MAX));
        factors.push(factor(
            FactorCode::ValidationRetried,
            u8::try_from(points).unwrap_or(weights::VALIDATION_RETRIES_MAX),
            format!(
                "the `{slug}` workflow was submitted {} times ({retries} {})",
                workflow.attempts,
                if retries == 1 { "retry" } else { "retries" }
            ),
        ));
    }
    factors.into_iter().map(|f| of_workflow(f, workflow)).collect()
}

fn review(workflow: &SessionWorkflow) -> Option<RiskFactor> {
    let record = workflow.review.as_ref()?;
    let slug = &workflow.workflow_slug;
    let f = match record.decision {
        Decision::Approved => factor(
            FactorCode::ReviewApproved,
            weights::REVIEW_APPROVED,
            format!("the `{slug}` workflow was approved in review: {}", record.reason),
        ),
        Decision::Rejected => factor(
            FactorCode::ReviewRejected,
            weights::REVIEW_REJECTED,
            format!("the `{slug}` workflow was rejected in review: {}", record.reason),
        ),
    };
    Some(of_workflow(f, workflow))
}

/// What a finding is, as far as the risk score is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Sanctions,
    Pep,
    AdverseMedia,
    Registry,
}

impl Screen {
    fn of_kind(kind: CheckKind) -> Screen {
        match kind {
            CheckKind::Sanctions => Screen::Sanctions,
            CheckKind::Pep => Screen::Pep,
            CheckKind::AdverseMedia => Screen::AdverseMedia,
            CheckKind::Registry => Screen::Registry,
        }
    }

    /// What a topic says about the entity. Only a listing on a sanctions
    /// programme (`sanction`) escalates: `sanction.linked` and
    /// `sanction.counter` are not listings of the entity itself.
    fn of_topic(topic: &str) -> Option<Screen> {
        if topic == "sanction" {
            Some(Screen::Sanctions)
        } else if topic == "role.pep" || topic.starts_with("role.pep.") || topic == "role.rca" {
            Some(Screen::Pep)
        } else {
            None
        }
    }

    fn code(self, strength: MatchStrength) -> FactorCode {
        use MatchStrength::{Possible, Strong};
        match (self, strength) {
            (Screen::Sanctions, Strong) => FactorCode::SanctionsStrongMatch,
            (Screen::Sanctions, Possible) => FactorCode::SanctionsPossibleMatch,
            (Screen::Pep, Strong) => FactorCode::PepStrongMatch,
            (Screen::Pep, Possible) => FactorCode::PepPossibleMatch,
            (Screen::AdverseMedia, Strong) => FactorCode::AdverseMediaStrongMatch,
            (Screen::AdverseMedia, Possible) => FactorCode::AdverseMediaPossibleMatch,
            (Screen::Registry, _) => FactorCode::RegistryFinding,
        }
    }

    fn label(self, strength: MatchStrength) -> String {
        let strength = match strength {
            MatchStrength::Strong => "strong",
            MatchStrength::Possible => "possible",
        };
        match self {
            Screen::Sanctions => format!("{strength} sanctions match"),
            Screen::Pep => format!("{strength} PEP match"),
            Screen::AdverseMedia => format!("{strength} adverse-media match"),
            Screen::Registry => "registry finding".to_owned(),
        }
    }
}

/// The most serious reading of a finding, its check's kind or one of its
/// topics, with its weight.
fn finding_screen(kind: CheckKind, finding: &Finding) -> (Screen, u8) {
    let weight = |screen: Screen| screen.code(finding.strength).fixed_weight().unwrap_or(0);
    let own = Screen::of_kind(kind);
    let mut best = (own, weight(own));
    for screen in finding.topics.iter().filter_map(|t| Screen::of_topic(t)) {
        if weight(screen) > best.1 {
            best = (screen, weight(screen));
        }
    }
    best
}

fn check_name(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Pep => "PEP",
        CheckKind::Sanctions => "sanctions",
        CheckKind::AdverseMedia => "adverse-media",
        CheckKind::Registry => "registry",
    }
}

fn check(check: &Check) -> Option<RiskFactor> {
    let what = check_name(check.kind);
    let mut f = match check.status {
        // Not answered yet: nothing is known.
        CheckStatus::Pending => return None,
        CheckStatus::Failed => factor(
            FactorCode::CheckFailed,
            weights::CHECK_FAILED,
            format!(
                "the {what} check could not be completed: {}",
                check.failure.as_deref().unwrap_or("no reason given")
            ),
        ),
        CheckStatus::Completed => {
            // Strictly greater: the first of equally serious findings (the
            // provider lists the strongest first) names the factor.
            let mut best: Option<(Screen, u8, &Finding)> = None;
            for finding in &check.findings {
                let (screen, weight) = finding_screen(check.kind, finding);
                if best.is_none_or(|(_, w, _)| weight > w) {
                    best = Some((screen, weight, finding));
                }
            }
            let (screen, weight, finding) = best?;
            let more = match check.findings.len().saturating_sub(1) {
                0 => String::new(),
                1 => ", and 1 other finding".to_owned(),
                n => format!(", and {n} other findings"),
            };
            factor(
                screen.code(finding.strength),
                weight,
                format!(
                    "{} in the {what} check: {} (name score {:.3}){more}",
                    screen.label(finding.strength),
                    finding.entity_name,
                    finding.score
                ),
            )
        }
    };
    f.participant_id = Some(check.participant_id.clone());
    f.session_workflow_id = Some(check.session_workflow_id.clone());
    Some(f)
}

/// A calendar date as captured (`YYYY-MM-DD`), or the date of a timestamp.
fn parse_date(value: &serde_json::Value) -> Option<NaiveDate> {
    let s = value.as_str()?.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.date_naive()))
}

fn document_expiry(workflow: &SessionWorkflow, fields: &JsonMap, today: NaiveDate) -> Option<RiskFactor> {
    // An unreadable date is the validate step's concern, not a risk signal.
    let expiry = fields.get("expiryDate").and_then(parse_date)?;
    let slug = &workflow.workflow_slug;
    let days_left = (expiry - today).num_days();
    // Expired on its expiry date, as the built-in `document_not_expired`
    // rule (`date(data.expiryDate) > now`) reads it.
    let f = if days_left <= 0 {
        factor(
            FactorCode::DocumentExpired,
            weights::DOCUMENT_EXPIRED,
            format!("the document of the `{slug}` workflow expired on {expiry}"),
        )
    } else if days_left <= NEAR_EXPIRY_DAYS {
        factor(
            FactorCode::DocumentNearExpiry,
            weights::DOCUMENT_NEAR_EXPIRY,
            format!("the document of the `{slug}` workflow expires on {expiry}, in {days_left} days"),
        )
    } else {
        return None;
    };
    Some(of_workflow(f, workflow))
}

/// The fields that name a participant's countries, and what each one is.
const COUNTRY_FIELDS: [(&str, &str); 4] = [
    ("issuingCountry", "document country"),
    ("nationality", "nationality"),
    ("countryOfIncorporation", "country of incorporation"),
    ("country", "address country"),
];

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Subject => "subject",
        Role::BeneficialOwner => "beneficial owner",
        Role::Controller => "controller",
        Role::Director => "director",
        Role::Representative => "representative",
    }
}

fn who(participant: &Participant) -> String {
    match &participant.display_name {
        Some(name) => format!("the {} {name}", role_name(participant.role)),
        None => format!("the {}", role_name(participant.role)),
    }
}

/// Normalises a country code as the capture step does; `None` for anything
/// that is not two letters.
fn country_code(value: &serde_json::Value) -> Option<String> {
    let code = value.as_str()?.trim().to_ascii_uppercase();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

fn country_factors<'a>(
    participant: &'a Participant,
    fields: &[&JsonMap],
    table: &CountryRisk,
    counted: &mut BTreeMap<String, &'a Participant>,
) -> Vec<RiskFactor> {
    // Each code once per participant, with every field that names it.
    let mut found: Vec<(String, Vec<&str>)> = Vec::new();
    for map in fields {
        for (key, label) in COUNTRY_FIELDS {
            let Some(code) = map.get(key).and_then(country_code) else {
                continue;
            };
            match found.iter_mut().find(|(c, _)| *c == code) {
                Some((_, labels)) if !labels.contains(&label) => labels.push(label),
                Some(_) => {}
                None => found.push((code, vec![label])),
            }
        }
    }
    let mut factors = Vec::new();
    for (code, labels) in found {
        let Some(entry) = table.get(&code) else { continue };
        let factor_code = match entry.level {
            RiskLevel::High => FactorCode::CountryHighRisk,
            RiskLevel::Medium => FactorCode::CountryMediumRisk,
            RiskLevel::Low => FactorCode::CountryLowRisk,
        };
        let level = level_name(entry.level);
        let base = format!(
            "{} ({code}), a {level}-risk jurisdiction, is the {} of {}",
            entry.name,
            labels.join(" and "),
            who(participant)
        );
        let f = match counted.get(&code) {
            Some(first) => factor(factor_code, 0, format!("{base}; already counted for {}", who(first))),
            None => {
                counted.insert(code.clone(), participant);
                factor(factor_code, entry.weight, base)
            }
        };
        factors.push(of_participant(f, participant));
    }
    factors
}

fn company_age(participant: &Participant, fields: &[&JsonMap], today: NaiveDate) -> Option<RiskFactor> {
    let incorporated = fields
        .iter()
        .find_map(|map| map.get("incorporationDate").and_then(parse_date))?;
    let age = (today - incorporated).num_days();
    // A date in the future is no older than today: young.
    if age >= YOUNG_COMPANY_DAYS {
        return None;
    }
    let f = factor(
        FactorCode::CompanyYoung,
        weights::COMPANY_YOUNG,
        format!(
            "{} was incorporated on {incorporated}, {} days before the assessment",
            who(participant),
            age.max(0)
        ),
    );
    Some(of_participant(f, participant))
}

// ---------------------------------------------------------------- countries

/// The shipped country table (see its header for its source).
pub const COUNTRY_RISK_TABLE: &str = include_str!("../data/country-risk.csv");

/// One row of the country table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountryEntry {
    /// ISO 3166-1 alpha-2, uppercase.
    pub code: String,
    pub name: String,
    pub level: RiskLevel,
    /// Points a participant's country adds to the score, `0..=100`.
    pub weight: u8,
}

/// Jurisdiction risk by ISO 3166-1 alpha-2 code. Countries the table does not
/// list count 0.
///
/// The text format is CSV without quoting: `#` comment lines, blank lines,
/// the header `code,name,level,weight`, then one country per line (`level` is
/// `low`, `medium` or `high`; `weight` a whole number from 0 to 100).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryRisk {
    by_code: BTreeMap<String, CountryEntry>,
}

/// Why a country table was refused; lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CountryTableError {
    #[error("the country table has no header line `{HEADER}`")]
    NoHeader,
    #[error("line {line}: expected the header `{HEADER}`, found `{found}`")]
    Header { line: usize, found: String },
    #[error("line {line}: expected 4 comma-separated fields (code,name,level,weight), found {found}")]
    Fields { line: usize, found: usize },
    #[error("line {line}: `{code}` is not an ISO 3166-1 alpha-2 code")]
    Code { line: usize, code: String },
    #[error("line {line}: the country name is empty")]
    Name { line: usize },
    #[error("line {line}: level `{level}` is not low, medium or high")]
    Level { line: usize, level: String },
    #[error("line {line}: weight `{weight}` is not a whole number from 0 to 100")]
    Weight { line: usize, weight: String },
    #[error("line {line}: `{code}` is already listed on line {first}")]
    Duplicate { line: usize, code: String, first: usize },
}

impl CountryTableError {
    /// The line the error is on (none for a table without a header).
    pub fn line(&self) -> Option<usize> {
        match self {
            CountryTableError::NoHeader => None,
            CountryTableError::Header { line, .. }
            | CountryTableError::Fields { line, .. }
            | CountryTableError::Code { line, .. }
            | CountryTableError::Name { line }
            | CountryTableError::Level { line, .. }
            | CountryTableError::Weight { line, .. }
            | CountryTableError::Duplicate { line, .. } => Some(*line),
        }
    }
}

const HEADER: &str = "code,name,level,weight";

static BUILTIN: LazyLock<Result<CountryRisk, CountryTableError>> =
    LazyLock::new(|| CountryRisk::parse(COUNTRY_RISK_TABLE));

impl CountryRisk {
    /// Reads a table; the first bad line refuses the whole table, because a
    /// silently dropped country would silently lower scores.
    pub fn parse(text: &str) -> Result<Self, CountryTableError> {
        let mut by_code = BTreeMap::new();
        let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
        let mut header_seen = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            // Checking the header catches a table whose columns moved.
            if !header_seen {
                let found: Vec<&str> = trimmed.split(',').map(str::trim).collect();
                if found.join(",") != HEADER {
                    return Err(CountryTableError::Header {
                        line,
                        found: trimmed.to_owned(),
                    });
                }
                header_seen = true;
                continue;
            }
            let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            let [code, name, level, weight] = fields[..] else {
                return Err(CountryTableError::Fields {
                    line,
                    found: fields.len(),
                });
            };
            let code_upper = code.to_ascii_uppercase();
            if code_upper.len() != 2 || !code_upper.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(CountryTableError::Code {
                    line,
                    code: code.to_owned(),
                });
            }
            if name.is_empty() {
                return Err(CountryTableError::Name { line });
            }
            let level = match level {
                "low" => RiskLevel::Low,
                "medium" => RiskLevel::Medium,
                "high" => RiskLevel::High,
                other => {
                    return Err(CountryTableError::Level {
                        line,
                        level: other.to_owned(),
                    });
                }
            };
            let weight = match weight.parse::<u8>() {
                Ok(w) if w <= MAX_SCORE => w,
                _ => {
                    return Err(CountryTableError::Weight {
                        line,
                        weight: weight.to_owned(),
                    });
                }
            };
            if let Some(first) = first_line.get(&code_upper) {
                return Err(CountryTableError::Duplicate {
                    line,
                    code: code_upper,
                    first: *first,
                });
            }
            first_line.insert(code_upper.clone(), line);
            by_code.insert(
                code_upper.clone(),
                CountryEntry {
                    code: code_upper,
                    name: name.to_owned(),
                    level,
                    weight,
                },
            );
        }
        if !header_seen {
            return Err(CountryTableError::NoHeader);
        }
        Ok(Self { by_code })
    }

    /// The shipped table ([`COUNTRY_RISK_TABLE`]), parsed once.
    pub fn builtin() -> Result<&'static CountryRisk, CountryTableError> {
        BUILTIN.as_ref().map_err(Clone::clone)
    }

    /// The entry for a code, in any case.
    pub fn get(&self, code: &str) -> Option<&CountryEntry> {
        self.by_code.get(&code.trim().to_ascii_uppercase())
    }

    /// The points a country adds: 0 for a country the table does not list.
    pub fn weight(&self, code: &str) -> u8 {
        self.get(code).map_or(0, |e| e.weight)
    }

    /// The entries, by code.
    pub fn iter(&self) -> impl Iterator<Item = &CountryEntry> {
        self.by_code.values()
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::catalog::Catalog;
    use crate::checks::CheckOutcome;
    use crate::configuration::{Configuration, ConfigurationDraft};
    use crate::ids::{CheckId, OrgId};
    use crate::session::{AccessToken, Origin, ReviewRecord, SessionDraft, Waiting};
    use crate::tenancy::Actor;
    use crate::tenancy::{Mode, Tenant};
    use crate::testing::{SequentialIds, t0};

    // ------------------------------------------------------------ harness

    fn partner() -> Actor {
        Actor::Partner {
            api_key_id: "ak_test_risk".into(),
        }
    }

    fn table() -> &'static CountryRisk {
        CountryRisk::builtin().unwrap()
    }

    /// A session advanced through the real engine.
    struct Case {
        ids: SequentialIds,
        session: Session,
    }

    impl Case {
        fn new(config: Value, participants: Value) -> Case {
            let catalog = Catalog::builtins();
            let config: Configuration = serde_json::from_value::<ConfigurationDraft>(config)
                .unwrap()
                .validate(
                    Tenant::new(OrgId::parse("org_0001").unwrap(), Mode::Test),
                    &catalog,
                    t0(),
                )
                .unwrap();
            let draft: SessionDraft = serde_json::from_value(json!({
                "configurationSlug": config.slug,
                "externalUserId": "usr_risk",
                "participants": participants,
            }))
            .unwrap();
            let origin = Origin {
                access_token: AccessToken {
                    hash: "hash".into(),
                    sealed: "sealed".into(),
                },
                configuration: &config,
                catalog: &catalog,
            };
            let ids = SequentialIds::default();
            let session = Session::create(draft, origin, partner(), t0(), &ids).unwrap().session;
            Case { ids, session }
        }

        fn slugs(slugs: &[&str], participants: Value) -> Case {
            Case::new(
                json!({"name": "Risk", "slug": "risk-test", "workflowSlugs": slugs}),
                participants,
            )
        }

        fn kyc() -> Case {
            Case::slugs(&["id-document", "proof-of-address"], json!([]))
        }

        /// Starts the session: a first workflow that needs no input (a check) runs.
        fn start(&mut self) -> &mut Self {
            self.session = self.session.start(t0(), &self.ids).unwrap().unwrap().session;
            self
        }

        fn submit(&mut self, index: usize, data: Value) -> &mut Self {
            let id = self.session.workflows[index].id.to_string();
            let data = data.as_object().cloned().unwrap();
            self.session = self.session.submit(&id, &data, t0(), &self.ids).unwrap().session;
            self
        }

        fn review(&mut self, index: usize, decision: Decision) -> &mut Self {
            let id = self.session.workflows[index].id.to_string();
            let t = self
                .session
                .review(&id, decision, "Checked by hand", partner(), t0(), &self.ids)
                .unwrap();
            self.session = t.session;
            self
        }

        /// Answers the check the current workflow waits on.
        fn answer(&mut self, outcome: CheckOutcome) -> &mut Self {
            let check_id = self
                .session
                .workflows
                .iter()
                .find_map(|w| match &w.waiting {
                    Some(Waiting::Check { check_id }) => Some(check_id.clone()),
                    _ => None,
                })
                .unwrap();
            let t = self.session.record_check(&check_id, outcome, t0(), &self.ids).unwrap();
            self.session = t.unwrap().session;
            self
        }

        fn assess(&self) -> RiskSummary {
            assess(&self.session, self.session.workflows.len(), table(), t0())
        }

        /// A check of `kind` answered for workflow `index`, added directly.
        fn push_check(&mut self, index: usize, kind: CheckKind, status: CheckStatus, findings: Vec<Finding>) {
            let workflow = &self.session.workflows[index];
            self.session.checks.push(Check {
                id: CheckId::generate(&self.ids),
                session_workflow_id: workflow.id.clone(),
                participant_id: workflow.participant_id.clone(),
                kind,
                provider: Some("test".into()),
                status,
                findings,
                failure: (status == CheckStatus::Failed).then(|| "the provider timed out".to_owned()),
                requested_at: t0(),
                completed_at: Some(t0()),
            });
        }
    }

    fn id_doc(name: &str, expiry: &str, country: &str) -> Value {
        json!({
            "documentType": "passport",
            "documentNumber": "X1234567",
            "fullName": name,
            "dateOfBirth": "1990-04-12",
            "expiryDate": expiry,
            "issuingCountry": country
        })
    }

    fn poa(name: &str, country: &str) -> Value {
        json!({
            "documentType": "utility_bill",
            "fullName": name,
            "addressLine1": "1 High Street",
            "city": "London",
            "country": country,
            "issueDate": "2026-11-01"
        })
    }

    fn finding(name: &str, strength: MatchStrength, topics: &[&str]) -> Finding {
        Finding {
            entity_id: format!("ex-{}", name.to_lowercase().replace(' ', "-")),
            entity_name: name.into(),
            matched_name: name.into(),
            score: 0.97,
            strength,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            datasets: vec!["example".into()],
            birth_date_match: Some(true),
            country_match: None,
        }
    }

    fn codes(summary: &RiskSummary) -> Vec<(FactorCode, i32)> {
        summary
            .factors
            .iter()
            .map(|f| (FactorCode::of(f).unwrap(), f.weight))
            .collect()
    }

    fn only(summary: &RiskSummary, code: FactorCode) -> &RiskFactor {
        let found: Vec<&RiskFactor> = summary.factors.iter().filter(|f| f.name == code.as_str()).collect();
        assert_eq!(found.len(), 1, "{code} in {:#?}", summary.factors);
        found[0]
    }

    fn explained(f: &RiskFactor, words: &[&str]) {
        let detail = f.detail.as_deref().unwrap();
        for word in words {
            assert!(detail.contains(word), "`{detail}` mentions `{word}`");
        }
    }

    // ------------------------------------------------------------ sessions

    #[test]
    fn a_clean_session_scores_low() {
        let mut case = Case::kyc();
        case.submit(0, id_doc("John Smith", "2030-01-01", "GB"))
            .submit(1, poa("John Smith", "GB"));
        let summary = case.assess();
        assert_eq!(summary.score, 0);
        assert_eq!(summary.level, RiskLevel::Low);
        assert_eq!(summary.computed_at, t0());
        assert_eq!(codes(&summary), [(FactorCode::SubjectIndividual, 0)]);
        assert_eq!(
            summary.factors[0].participant_id.as_ref(),
            Some(&case.session.participants[0].id)
        );
        assert_eq!(decide(&summary, &RiskStep::default_thresholds()), RiskDecision::Pass);
    }

    #[test]
    fn a_strong_sanctions_finding_rejects_by_default() {
        let mut case = Case::slugs(&["id-document", "sanctions-check"], json!([]));
        case.submit(0, id_doc("Ivan Petrov", "2030-01-01", "GB"))
            .answer(CheckOutcome::Screened {
                provider: "builtin".into(),
                findings: vec![finding("Ivan Petrov", MatchStrength::Strong, &["sanction"])],
            });
        let summary = case.assess();
        let f = only(&summary, FactorCode::SanctionsStrongMatch);
        assert_eq!(f.weight, i32::from(weights::SANCTIONS_STRONG));
        explained(f, &["strong sanctions match", "sanctions check", "Ivan Petrov"]);
        assert_eq!(f.session_workflow_id.as_ref(), Some(&case.session.workflows[1].id));
        assert!(summary.score >= DEFAULT_REJECT_THRESHOLD);
        assert_eq!(summary.level, RiskLevel::High);
        match decide(&summary, &RiskStep::default_thresholds()) {
            RiskDecision::Reject(reason) => {
                assert!(reason.contains("reject threshold 80"), "{reason}");
                assert!(reason.contains("Ivan Petrov"), "{reason}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_sanctioned_entity_found_by_a_pep_check_counts_as_sanctions() {
        let mut case = Case::new(
            json!({
                "name": "KYB", "slug": "kyb",
                "workflowBindings": [
                    {"workflowSlug": "pep-check", "participantRoles": ["beneficial_owner"], "outputKey": "ubo_pep"}
                ],
                "subjectKind": "business"
            }),
            json!([
                {"role": "subject", "displayName": "Acme Corp"},
                {"role": "beneficial_owner", "displayName": "Jane Smith"}
            ]),
        );
        case.start().answer(CheckOutcome::Screened {
            provider: "builtin".into(),
            findings: vec![finding(
                "Jane Smith",
                MatchStrength::Possible,
                &["role.pep", "sanction"],
            )],
        });
        let summary = case.assess();
        let f = only(&summary, FactorCode::SanctionsPossibleMatch);
        explained(f, &["possible sanctions match", "PEP check", "Jane Smith"]);
        assert_eq!(f.participant_id.as_ref(), Some(&case.session.participants[1].id));
        assert!(
            summary
                .factors
                .iter()
                .all(|f| f.name != FactorCode::PepPossibleMatch.as_str())
        );
    }

    #[test]
    fn every_kind_of_finding_contributes_and_is_explained() {
        use MatchStrength::{Possible, Strong};
        #[rustfmt::skip] // One case a line reads as a table.
        let cases = [
            (CheckKind::Sanctions, Strong, &[][..], FactorCode::SanctionsStrongMatch, "strong sanctions match"),
            (CheckKind::Sanctions, Possible, &[], FactorCode::SanctionsPossibleMatch, "possible sanctions match"),
            (CheckKind::Pep, Strong, &["role.pep"], FactorCode::PepStrongMatch, "strong PEP match"),
            (CheckKind::Pep, Possible, &["role.rca"], FactorCode::PepPossibleMatch, "possible PEP match"),
            (CheckKind::AdverseMedia, Strong, &["crime"], FactorCode::AdverseMediaStrongMatch, "strong adverse-media match"),
            (CheckKind::AdverseMedia, Possible, &[], FactorCode::AdverseMediaPossibleMatch, "possible adverse-media match"),
            (CheckKind::Registry, Strong, &[], FactorCode::RegistryFinding, "registry finding"),
            // A topic escalates a finding beyond what its check screens for.
            (CheckKind::AdverseMedia, Strong, &["role.pep.national"], FactorCode::PepStrongMatch, "strong PEP match"),
            (CheckKind::Registry, Possible, &["sanction"], FactorCode::SanctionsPossibleMatch, "possible sanctions match"),
            // `sanction.linked` is not a listing: the check's kind decides.
            (CheckKind::Pep, Possible, &["sanction.linked"], FactorCode::PepPossibleMatch, "possible PEP match"),
        ];
        for (kind, strength, topics, code, label) in cases {
            let weight = code.fixed_weight().unwrap();
            let mut case = Case::kyc();
            case.push_check(
                0,
                kind,
                CheckStatus::Completed,
                vec![finding("Jo Bloggs", strength, topics)],
            );
            let summary = case.assess();
            let f = only(&summary, code);
            assert_eq!(f.weight, i32::from(weight), "{code}");
            explained(f, &[label, "Jo Bloggs", "0.970"]);
            assert_eq!(f.session_workflow_id.as_ref(), Some(&case.session.workflows[0].id));
            assert_eq!(summary.score, weight);
        }
    }

    #[test]
    fn a_check_counts_once_by_its_most_serious_finding() {
        let mut case = Case::kyc();
        case.push_check(
            0,
            CheckKind::Pep,
            CheckStatus::Completed,
            vec![
                finding("Jo Bloggs", MatchStrength::Possible, &["role.pep"]),
                finding("Joe Blogs", MatchStrength::Strong, &["role.pep"]),
                finding("J Bloggs", MatchStrength::Strong, &["role.pep"]),
            ],
        );
        let summary = case.assess();
        let f = only(&summary, FactorCode::PepStrongMatch);
        explained(f, &["Joe Blogs", "and 2 other findings"]);
        assert_eq!(summary.score, weights::PEP_STRONG);
    }

    #[test]
    fn failed_pending_and_clear_checks() {
        let mut case = Case::kyc();
        case.push_check(0, CheckKind::Sanctions, CheckStatus::Failed, vec![]);
        case.push_check(0, CheckKind::Pep, CheckStatus::Pending, vec![]);
        case.push_check(1, CheckKind::Pep, CheckStatus::Completed, vec![]);
        let summary = case.assess();
        assert_eq!(
            codes(&summary),
            [
                (FactorCode::SubjectIndividual, 0),
                (FactorCode::CheckFailed, i32::from(weights::CHECK_FAILED))
            ]
        );
        explained(
            only(&summary, FactorCode::CheckFailed),
            &["sanctions check", "timed out"],
        );
    }

    #[test]
    fn a_review_approved_is_recorded_without_weight() {
        let mut case = Case::slugs(
            &["id-document"],
            json!([{"role": "subject", "displayName": "Maria Garcia"}]),
        );
        case.submit(0, id_doc("John Smith", "2030-01-01", "GB"));
        assert_eq!(case.session.workflows[0].waiting, Some(Waiting::Review));
        case.review(0, Decision::Approved);
        let summary = case.assess();
        assert_eq!(
            codes(&summary),
            [
                (FactorCode::SubjectIndividual, 0),
                (FactorCode::ValidationReview, i32::from(weights::VALIDATION_REVIEW)),
                (FactorCode::ReviewApproved, 0),
            ]
        );
        explained(
            only(&summary, FactorCode::ValidationReview),
            &["`id-document`", "needed a review", "name_matches_participant"],
        );
        explained(
            only(&summary, FactorCode::ReviewApproved),
            &["approved", "Checked by hand"],
        );
        assert_eq!(summary.score, weights::VALIDATION_REVIEW);
    }

    #[test]
    fn a_review_rejected_is_high() {
        let mut case = Case::slugs(
            &["id-document"],
            json!([{"role": "subject", "displayName": "Maria Garcia"}]),
        );
        case.submit(0, id_doc("John Smith", "2030-01-01", "GB"))
            .review(0, Decision::Rejected);
        let summary = case.assess();
        let f = only(&summary, FactorCode::ReviewRejected);
        assert_eq!(f.weight, i32::from(weights::REVIEW_REJECTED));
        explained(f, &["rejected", "Checked by hand"]);
        assert_eq!(summary.level, RiskLevel::High);
    }

    #[test]
    fn retries_and_failed_validation_contribute() {
        let mut case = Case::kyc();
        case.submit(0, id_doc("John Smith", "2025-01-01", "GB"))
            .submit(0, id_doc("John Smith", "2025-01-01", "GB"))
            .submit(0, id_doc("John Smith", "2030-01-01", "GB"));
        let summary = case.assess();
        let f = only(&summary, FactorCode::ValidationRetried);
        assert_eq!(f.weight, 2 * i32::from(weights::VALIDATION_RETRY));
        explained(f, &["submitted 3 times", "2 retries"]);

        // Retries are capped per workflow.
        case.session.workflows[0].attempts = 10;
        let summary = case.assess();
        assert_eq!(
            only(&summary, FactorCode::ValidationRetried).weight,
            i32::from(weights::VALIDATION_RETRIES_MAX)
        );

        let mut minor = Case::kyc();
        let mut doc = id_doc("John Smith", "2030-01-01", "GB");
        doc["dateOfBirth"] = json!("2015-01-01");
        minor.submit(0, doc);
        let summary = minor.assess();
        let f = only(&summary, FactorCode::ValidationFailed);
        assert_eq!(f.weight, i32::from(weights::VALIDATION_FAILED));
        explained(f, &["failed validation", "adult"]);
    }

    #[test]
    fn expired_and_near_expiry_documents() {
        let mut case = Case::kyc();
        // 46 days after t0: accepted by the rules, near expiry for the score.
        case.submit(0, id_doc("John Smith", "2027-01-10", "GB"));
        let summary = case.assess();
        let f = only(&summary, FactorCode::DocumentNearExpiry);
        assert_eq!(f.weight, i32::from(weights::DOCUMENT_NEAR_EXPIRY));
        explained(f, &["2027-01-10", "in 46 days"]);
        assert_eq!(f.session_workflow_id.as_ref(), Some(&case.session.workflows[0].id));

        // By a later assessment it has expired.
        let later = t0() + Duration::days(60);
        let summary = assess(&case.session, 2, table(), later);
        let f = only(&summary, FactorCode::DocumentExpired);
        assert_eq!(f.weight, i32::from(weights::DOCUMENT_EXPIRED));
        explained(f, &["expired on 2027-01-10"]);
        assert!(summary.factors.iter().all(|f| f.name != "document_near_expiry"));

        // Far from expiry: nothing.
        let summary = assess(&case.session, 2, table(), t0() - Duration::days(400));
        assert_eq!(codes(&summary), [(FactorCode::SubjectIndividual, 0)]);
    }

    #[test]
    fn listed_countries_count_once_per_session() {
        let mut case = Case::slugs(
            &["id-document"],
            json!([
                {"role": "subject", "displayName": "Ali Rezaei", "attributes": {"nationality": "ir"}},
                {"role": "director", "displayName": "Sara Rezaei", "attributes": {"nationality": "IR", "country": "NA"}},
                {"role": "controller", "attributes": {"nationality": "GB", "country": "ZZ"}}
            ]),
        );
        case.submit(0, id_doc("Ali Rezaei", "2030-01-01", "IR"));
        let summary = case.assess();
        let subject = &case.session.participants[0];
        let director = &case.session.participants[1];
        let countries: Vec<&RiskFactor> = summary
            .factors
            .iter()
            .filter(|f| f.name.starts_with("country_"))
            .collect();
        assert_eq!(countries.len(), 3, "{countries:#?}");
        assert_eq!(countries[0].name, "country_high_risk");
        assert_eq!(countries[0].weight, 50);
        assert_eq!(countries[0].participant_id.as_ref(), Some(&subject.id));
        explained(
            countries[0],
            &[
                "Iran (IR)",
                "high-risk",
                "document country and nationality",
                "Ali Rezaei",
            ],
        );
        assert_eq!(countries[1].name, "country_high_risk");
        assert_eq!(countries[1].weight, 0, "Iran is counted once");
        assert_eq!(countries[1].participant_id.as_ref(), Some(&director.id));
        explained(countries[1], &["already counted for the subject Ali Rezaei"]);
        assert_eq!(countries[2].name, "country_medium_risk");
        assert_eq!(countries[2].weight, 20);
        explained(
            countries[2],
            &["Namibia (NA)", "address country", "the director Sara Rezaei"],
        );
        assert_eq!(summary.score, 70);
    }

    #[test]
    fn a_young_company_and_a_business_subject() {
        let case = Case::new(
            json!({"name": "KYB", "slug": "kyb", "workflowSlugs": ["id-document"], "subjectKind": "business"}),
            json!([
                {"role": "subject", "displayName": "Acme Corp", "attributes": {"incorporationDate": "2026-09-01", "countryOfIncorporation": "VG"}}
            ]),
        );
        let summary = case.assess();
        assert_eq!(
            codes(&summary),
            [
                (FactorCode::SubjectBusiness, i32::from(weights::SUBJECT_BUSINESS)),
                (FactorCode::CountryMediumRisk, 20),
                (FactorCode::CompanyYoung, i32::from(weights::COMPANY_YOUNG)),
            ]
        );
        explained(only(&summary, FactorCode::SubjectBusiness), &["business"]);
        explained(
            only(&summary, FactorCode::CountryMediumRisk),
            &["Virgin Islands (British) (VG)", "country of incorporation"],
        );
        explained(
            only(&summary, FactorCode::CompanyYoung),
            &["Acme Corp", "2026-09-01", "85 days"],
        );

        let mut old = case.session.clone();
        old.participants[0]
            .attributes
            .insert("incorporationDate".into(), json!("2001-02-03"));
        let summary = assess(&old, 1, table(), t0());
        assert!(summary.factors.iter().all(|f| f.name != "company_young"));
    }

    #[test]
    fn only_evidence_before_the_risk_step_counts() {
        let mut case = Case::kyc();
        case.submit(0, id_doc("John Smith", "2030-01-01", "GB"))
            .submit(1, poa("John Smith", "GB"));
        // Workflow 1 as if its risk step were running: its captured data
        // counts, its output (not published yet) does not.
        let own = &mut case.session.workflows[1];
        own.data
            .as_mut()
            .unwrap()
            .insert("expiryDate".into(), json!("2027-01-10"));
        own.output.as_mut().unwrap().insert("country".into(), json!("IR"));
        let summary = assess(&case.session, 1, table(), t0());
        assert_eq!(
            codes(&summary),
            [
                (FactorCode::SubjectIndividual, 0),
                (FactorCode::DocumentNearExpiry, i32::from(weights::DOCUMENT_NEAR_EXPIRY))
            ]
        );
        // Nothing of a later workflow counts: not its checks, not its data.
        case.push_check(1, CheckKind::Sanctions, CheckStatus::Failed, vec![]);
        let summary = assess(&case.session, 0, table(), t0());
        assert_eq!(codes(&summary), [(FactorCode::SubjectIndividual, 0)]);
        // Past the end: every workflow, by its output.
        let summary = assess(&case.session, 99, table(), t0());
        assert_eq!(
            codes(&summary),
            [
                (FactorCode::SubjectIndividual, 0),
                (FactorCode::CheckFailed, i32::from(weights::CHECK_FAILED)),
                (FactorCode::CountryHighRisk, 50),
            ]
        );
    }

    #[test]
    fn the_score_is_capped() {
        let mut case = Case::kyc();
        for _ in 0..3 {
            case.push_check(
                0,
                CheckKind::Sanctions,
                CheckStatus::Completed,
                vec![finding("Ivan Petrov", MatchStrength::Strong, &["sanction"])],
            );
        }
        let summary = case.assess();
        let sum: i32 = summary.factors.iter().map(|f| f.weight).sum();
        assert_eq!(sum, 3 * i32::from(weights::SANCTIONS_STRONG));
        assert_eq!(summary.score, MAX_SCORE);
        assert_eq!(summary.level, RiskLevel::High);
    }

    #[test]
    fn levels_at_the_boundaries() {
        assert_eq!(level(0), RiskLevel::Low);
        assert_eq!(level(MEDIUM_FROM - 1), RiskLevel::Low);
        assert_eq!(level(MEDIUM_FROM), RiskLevel::Medium);
        assert_eq!(level(HIGH_FROM - 1), RiskLevel::Medium);
        assert_eq!(level(HIGH_FROM), RiskLevel::High);
        assert_eq!(level(MAX_SCORE), RiskLevel::High);
        assert_eq!((MEDIUM_FROM, HIGH_FROM), (30, 60));
    }

    #[test]
    fn assessments_are_deterministic() {
        let build = || {
            let mut case = Case::slugs(
                &["id-document", "proof-of-address"],
                json!([{"role": "subject", "displayName": "John Smith", "attributes": {"nationality": "KP"}}]),
            );
            case.submit(0, id_doc("John Smith", "2027-01-10", "MM"))
                .submit(1, poa("John Smith", "SY"));
            case.push_check(
                0,
                CheckKind::Pep,
                CheckStatus::Completed,
                vec![finding("John Smith", MatchStrength::Possible, &["role.pep"])],
            );
            case.push_check(1, CheckKind::Sanctions, CheckStatus::Failed, vec![]);
            case
        };
        let (a, b) = (build(), build());
        let first = a.assess();
        assert_eq!(first, a.assess());
        assert_eq!(first, b.assess());
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&b.assess()).unwrap()
        );
        // Subject kind, then by workflow (its checks, its document), then by participant.
        assert_eq!(
            codes(&first),
            [
                (FactorCode::SubjectIndividual, 0),
                (FactorCode::PepPossibleMatch, 15),
                (FactorCode::DocumentNearExpiry, 5),
                (FactorCode::CheckFailed, 25),
                // Countries in order of appearance: the document's (MM), the
                // address's (SY), then the attributes' (KP).
                (FactorCode::CountryHighRisk, 50),
                (FactorCode::CountryMediumRisk, 20),
                (FactorCode::CountryHighRisk, 50),
            ]
        );
        assert_eq!(first.score, 100);
    }

    #[test]
    fn risk_factors_read_the_old_shape_and_write_camel_case() {
        let old: RiskFactor =
            serde_json::from_value(json!({"name": "pep_strong_match", "weight": 40, "detail": null})).unwrap();
        assert_eq!(old.participant_id, None);
        assert_eq!(old.session_workflow_id, None);
        let mut case = Case::kyc();
        case.push_check(0, CheckKind::Pep, CheckStatus::Failed, vec![]);
        let summary = case.assess();
        let written = serde_json::to_value(only(&summary, FactorCode::CheckFailed)).unwrap();
        assert!(written.get("participantId").is_some(), "{written}");
        assert!(written.get("sessionWorkflowId").is_some(), "{written}");
        let round: RiskFactor = serde_json::from_value(written).unwrap();
        assert_eq!(&round, only(&summary, FactorCode::CheckFailed));
        for code in FactorCode::ALL {
            assert_eq!(FactorCode::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
    }

    // ------------------------------------------------------------ decide

    impl RiskStep {
        fn default_thresholds() -> RiskStep {
            RiskStep {
                review_threshold: None,
                reject_threshold: None,
            }
        }
    }

    fn summary_of(weights: &[(FactorCode, u8)]) -> RiskSummary {
        let factors: Vec<RiskFactor> = weights
            .iter()
            .map(|(code, w)| factor(*code, *w, format!("{code} evidence")))
            .collect();
        let score = score(&factors);
        RiskSummary {
            score,
            level: level(score),
            factors,
            computed_at: t0(),
            session_workflow_id: None,
        }
    }

    #[test]
    fn decide_at_the_thresholds() {
        let defaults = RiskStep::default_thresholds();
        let at = |s: u8, step: &RiskStep| decide(&summary_of(&[(FactorCode::CheckFailed, s)]), step);
        assert_eq!(at(DEFAULT_REVIEW_THRESHOLD - 1, &defaults), RiskDecision::Pass);
        assert!(matches!(
            at(DEFAULT_REVIEW_THRESHOLD, &defaults),
            RiskDecision::Review(_)
        ));
        assert!(matches!(
            at(DEFAULT_REJECT_THRESHOLD - 1, &defaults),
            RiskDecision::Review(_)
        ));
        assert!(matches!(
            at(DEFAULT_REJECT_THRESHOLD, &defaults),
            RiskDecision::Reject(_)
        ));
        assert!(matches!(at(100, &defaults), RiskDecision::Reject(_)));

        let custom = RiskStep {
            review_threshold: Some(20),
            reject_threshold: Some(40),
        };
        assert_eq!(at(19, &custom), RiskDecision::Pass);
        assert!(matches!(at(20, &custom), RiskDecision::Review(_)));
        assert!(matches!(at(40, &custom), RiskDecision::Reject(_)));

        // Only a reject threshold: the review default still applies below it.
        let reject_only = RiskStep {
            review_threshold: None,
            reject_threshold: Some(90),
        };
        assert!(matches!(at(85, &reject_only), RiskDecision::Review(_)));
        // A review threshold above the reject threshold: rejection wins.
        let inverted = RiskStep {
            review_threshold: Some(70),
            reject_threshold: Some(60),
        };
        assert!(matches!(at(65, &inverted), RiskDecision::Reject(_)));
        // A threshold of 0 catches every score, even one without factors.
        let zero = RiskStep {
            review_threshold: Some(0),
            reject_threshold: Some(100),
        };
        assert_eq!(
            decide(&summary_of(&[]), &zero),
            RiskDecision::Review("risk score 0 (low) is at or above the review threshold 0".into())
        );
    }

    #[test]
    fn reasons_name_the_top_three_factors_by_weight() {
        let summary = summary_of(&[
            (FactorCode::ReviewApproved, 0),
            (FactorCode::ValidationReview, 10),
            (FactorCode::PepStrongMatch, 40),
            (FactorCode::CheckFailed, 25),
            (FactorCode::DocumentExpired, 25),
        ]);
        assert_eq!(summary.score, 100);
        let RiskDecision::Reject(reason) = decide(&summary, &RiskStep::default_thresholds()) else {
            panic!("expected a rejection");
        };
        assert_eq!(
            reason,
            "risk score 100 (high) is at or above the reject threshold 80: pep_strong_match evidence (+40); \
             check_failed evidence (+25); document_expired evidence (+25)"
        );
    }

    // ------------------------------------------------------------ countries

    #[test]
    fn the_builtin_table_parses_and_reflects_the_fatf_lists() {
        let table = table();
        let header = COUNTRY_RISK_TABLE.lines().next().unwrap();
        assert!(header.starts_with("# ") && header.contains("FATF") && header.contains("24 October 2025"));
        assert!(header.contains("reviewed by compliance"));
        for code in ["KP", "IR", "MM"] {
            assert_eq!(table.get(code).unwrap().level, RiskLevel::High, "{code}");
        }
        assert_eq!(table.iter().filter(|e| e.level == RiskLevel::High).count(), 3);
        assert_eq!(table.iter().filter(|e| e.level == RiskLevel::Medium).count(), 20);
        assert_eq!(table.get("ir").map(|e| e.name.as_str()), Some("Iran"));
        assert_eq!(table.weight("vn"), 20);
        assert_eq!(table.weight("GB"), 0, "unknown countries count 0");
        assert_eq!(table.weight("??"), 0);
        assert_eq!(table.len(), 23);
        assert!(!table.is_empty());
    }

    #[test]
    fn country_tables_are_parsed_strictly() {
        let good = "# a comment\n\ncode,name,level,weight\nir,Iran,high,50\n  FR , France , low , 0 \n";
        let parsed = CountryRisk::parse(good).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed.get("FR"),
            Some(&CountryEntry {
                code: "FR".into(),
                name: "France".into(),
                level: RiskLevel::Low,
                weight: 0
            })
        );
        assert_eq!(parsed.get("IR").unwrap().code, "IR");

        let head = "# comment\ncode,name,level,weight\n";
        let cases: [(&str, CountryTableError); 8] = [
            (
                "ir,Iran,severe,50",
                CountryTableError::Level {
                    line: 3,
                    level: "severe".into(),
                },
            ),
            ("ir,Iran,high", CountryTableError::Fields { line: 3, found: 3 }),
            ("ir,Iran,high,50,extra", CountryTableError::Fields { line: 3, found: 5 }),
            (
                "IRN,Iran,high,50",
                CountryTableError::Code {
                    line: 3,
                    code: "IRN".into(),
                },
            ),
            ("ir,,high,50", CountryTableError::Name { line: 3 }),
            (
                "ir,Iran,high,101",
                CountryTableError::Weight {
                    line: 3,
                    weight: "101".into(),
                },
            ),
            (
                "ir,Iran,high,-1",
                CountryTableError::Weight {
                    line: 3,
                    weight: "-1".into(),
                },
            ),
            (
                "ir,Iran,high,50\nIR,Iran again,high,50",
                CountryTableError::Duplicate {
                    line: 4,
                    code: "IR".into(),
                    first: 3,
                },
            ),
        ];
        for (body, expected) in cases {
            let error = parse_err(&format!("{head}{body}"));
            assert_eq!(error, expected, "{body}");
            let line = expected.line().unwrap();
            assert!(error.to_string().starts_with(&format!("line {line}: ")), "{error}");
        }
        assert_eq!(parse_err("# only comments\n"), CountryTableError::NoHeader);
        assert_eq!(
            parse_err("code,level,name,weight\n"),
            CountryTableError::Header {
                line: 1,
                found: "code,level,name,weight".into()
            }
        );
        assert_eq!(CountryTableError::NoHeader.line(), None);
    }

    fn parse_err(text: &str) -> CountryTableError {
        CountryRisk::parse(text).unwrap_err()
    }

    // ------------------------------------------------------------ properties

    #[derive(Debug, Clone)]
    struct CheckSpec {
        workflow: usize,
        kind: CheckKind,
        failed: bool,
        findings: Vec<(MatchStrength, &'static str)>,
    }

    #[derive(Debug, Clone)]
    struct WorkflowSpec {
        outcome: Option<ValidationOutcome>,
        attempts: u32,
        review: Option<Decision>,
    }

    fn check_spec() -> impl Strategy<Value = CheckSpec> {
        let kind = prop_oneof![
            Just(CheckKind::Pep),
            Just(CheckKind::Sanctions),
            Just(CheckKind::AdverseMedia),
            Just(CheckKind::Registry),
        ];
        let strength = prop_oneof![Just(MatchStrength::Possible), Just(MatchStrength::Strong)];
        let topic = prop_oneof![
            Just("role.pep"),
            Just("sanction"),
            Just("crime"),
            Just("role.rca"),
            Just("")
        ];
        (
            0..2usize,
            kind,
            any::<bool>(),
            prop::collection::vec((strength, topic), 0..4),
        )
            .prop_map(|(workflow, kind, failed, findings)| CheckSpec {
                workflow,
                kind,
                failed,
                findings,
            })
    }

    fn workflow_spec() -> impl Strategy<Value = WorkflowSpec> {
        let outcome = prop::option::of(prop_oneof![
            Just(ValidationOutcome::Passed),
            Just(ValidationOutcome::Review),
            Just(ValidationOutcome::Retry),
            Just(ValidationOutcome::Failed),
        ]);
        let review = prop::option::of(prop_oneof![Just(Decision::Approved), Just(Decision::Rejected)]);
        (outcome, 0..12u32, review).prop_map(|(outcome, attempts, review)| WorkflowSpec {
            outcome,
            attempts,
            review,
        })
    }

    fn apply_check(case: &mut Case, spec: &CheckSpec) {
        let status = if spec.failed {
            CheckStatus::Failed
        } else {
            CheckStatus::Completed
        };
        let findings = spec
            .findings
            .iter()
            .enumerate()
            .map(|(i, (strength, topic))| {
                let topics: &[&str] = if topic.is_empty() {
                    &[]
                } else {
                    std::slice::from_ref(topic)
                };
                finding(&format!("Entity {i}"), *strength, topics)
            })
            .collect();
        case.push_check(spec.workflow, spec.kind, status, findings);
    }

    fn apply_workflow(case: &mut Case, index: usize, spec: &WorkflowSpec) {
        let workflow = &mut case.session.workflows[index];
        workflow.attempts = spec.attempts;
        workflow.validation = spec.outcome.map(|outcome| crate::session::ValidationReport {
            outcome,
            attempt: spec.attempts,
            rules: vec![],
        });
        workflow.review = spec.review.map(|decision| ReviewRecord {
            decision,
            reason: "Checked by hand".into(),
            actor: partner(),
            reviewed_at: t0(),
        });
    }

    proptest! {
        #[test]
        fn scores_are_bounded_sums_that_evidence_only_raises(
            workflows in prop::collection::vec(workflow_spec(), 2),
            checks in prop::collection::vec(check_spec(), 0..6),
            extra in check_spec(),
            business in any::<bool>(),
        ) {
            let mut case = if business {
                Case::new(
                    json!({"name": "KYB", "slug": "kyb", "workflowSlugs": ["id-document", "proof-of-address"], "subjectKind": "business"}),
                    json!([]),
                )
            } else {
                Case::kyc()
            };
            for (i, spec) in workflows.iter().enumerate() {
                apply_workflow(&mut case, i, spec);
            }
            for spec in &checks {
                apply_check(&mut case, spec);
            }
            let before = case.assess();
            prop_assert!(before.score <= MAX_SCORE);
            prop_assert!(before.factors.iter().all(|f| f.weight >= 0));
            let sum: i32 = before.factors.iter().map(|f| f.weight).sum();
            prop_assert_eq!(i32::from(before.score), sum.min(100));
            prop_assert_eq!(before.level, level(before.score));
            prop_assert!(before.factors.iter().all(|f| FactorCode::of(f).is_some() && f.detail.is_some()));
            prop_assert_eq!(&before, &case.assess(), "deterministic");

            apply_check(&mut case, &extra);
            let after = case.assess();
            prop_assert!(after.score >= before.score, "{} then {}", before.score, after.score);
            prop_assert!(after.factors.len() >= before.factors.len());
            let sum: i32 = after.factors.iter().map(|f| f.weight).sum();
            prop_assert_eq!(i32::from(after.score), sum.min(100));
        }

        #[test]
        fn adding_a_factor_never_lowers_the_score(
            ws in prop::collection::vec(0..=100u8, 0..12),
            extra in 0..=100u8,
        ) {
            let mut factors: Vec<RiskFactor> =
                ws.iter().map(|w| factor(FactorCode::CheckFailed, *w, String::new())).collect();
            let before = score(&factors);
            let sum: u32 = ws.iter().map(|w| u32::from(*w)).sum();
            prop_assert_eq!(u32::from(before), sum.min(100));
            factors.push(factor(FactorCode::CheckFailed, extra, String::new()));
            prop_assert!(score(&factors) >= before);
        }
    }
}
