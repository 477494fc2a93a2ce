//! The workflow definitions every organisation has. An organisation may
//! override one by creating its own definition with the same slug.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::workflow::{
    CaptureStep, CheckKind, CheckStep, DEFAULT_MAX_ATTEMPTS, FailureOutcome, Field, FieldKind, MappingStep, RiskStep,
    Rule, Step, ValidateStep, WorkflowDefinition,
};

pub const ID_DOCUMENT: &str = "id-document";
pub const PROOF_OF_ADDRESS: &str = "proof-of-address";
pub const PEP_CHECK: &str = "pep-check";
pub const SANCTIONS_CHECK: &str = "sanctions-check";
pub const RISK_ASSESSMENT: &str = "risk-assessment";

/// Name similarity at or above which two names are the same person.
pub const NAME_MATCH: f64 = 0.93;
/// Name similarity below which two names are clearly different people; in
/// between, a human decides.
pub const NAME_MISMATCH: f64 = 0.75;
/// How old a proof of address may be.
pub const POA_MAX_AGE_DAYS: i64 = 90;

static BUILTINS: LazyLock<Vec<WorkflowDefinition>> = LazyLock::new(|| {
    vec![
        id_document(),
        proof_of_address(),
        check(PEP_CHECK, "PEP check", CheckKind::Pep),
        check(SANCTIONS_CHECK, "Sanctions check", CheckKind::Sanctions),
        risk_assessment(),
    ]
});

pub fn all() -> &'static [WorkflowDefinition] {
    &BUILTINS
}

pub fn get(slug: &str) -> Option<&'static WorkflowDefinition> {
    BUILTINS.iter().find(|d| d.slug == slug)
}

fn field(name: &str, kind: FieldKind, label: &str) -> Field {
    Field {
        name: name.into(),
        kind,
        required: true,
        label: Some(label.into()),
        options: vec![],
    }
}

fn optional(mut f: Field) -> Field {
    f.required = false;
    f
}

fn select(name: &str, label: &str, options: &[&str]) -> Field {
    Field {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        ..field(name, FieldKind::Select, label)
    }
}

fn rule(name: &str, expression: &str, on_failure: FailureOutcome, message: &str) -> Rule {
    Rule {
        name: name.into(),
        expression: expression.into(),
        on_failure,
        message: Some(message.into()),
    }
}

fn mapping(pairs: &[(&str, &str)]) -> MappingStep {
    MappingStep {
        fields: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn id_document() -> WorkflowDefinition {
    WorkflowDefinition {
        slug: ID_DOCUMENT.into(),
        name: "Identity document".into(),
        description: Some("A passport, national ID card or driving licence: holder details, validity and age.".into()),
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        steps: vec![
            Step::Capture(CaptureStep {
                fields: vec![
                    select(
                        "documentType",
                        "Document type",
                        &["passport", "id_card", "driving_licence"],
                    ),
                    field("documentNumber", FieldKind::Text, "Document number"),
                    field("fullName", FieldKind::Text, "Full name as printed"),
                    field("dateOfBirth", FieldKind::Date, "Date of birth"),
                    field("expiryDate", FieldKind::Date, "Expiry date"),
                    field("issuingCountry", FieldKind::Country, "Issuing country"),
                    optional(field("documentImage", FieldKind::Document, "Photo of the document")),
                ],
            }),
            Step::Validate(ValidateStep {
                rules: vec![
                    rule(
                        "document_not_expired",
                        "date(data.expiryDate) > now",
                        FailureOutcome::Retry,
                        "The document has expired; use a valid document.",
                    ),
                    rule(
                        "born_in_the_past",
                        "date(data.dateOfBirth) < now",
                        FailureOutcome::Retry,
                        "The date of birth is in the future.",
                    ),
                    rule(
                        "adult",
                        "age_years(data.dateOfBirth) >= 18",
                        FailureOutcome::Fail,
                        "The holder must be at least 18 years old.",
                    ),
                    rule(
                        "name_matches_participant",
                        &format!(
                            "participant.displayName == null || name_match(data.fullName, participant.displayName) >= {NAME_MISMATCH}"
                        ),
                        FailureOutcome::Review,
                        "The name on the document differs from the participant's name.",
                    ),
                ],
            }),
            Step::Output(mapping(&[
                ("fullName", "data.fullName"),
                ("dateOfBirth", "data.dateOfBirth"),
                ("documentType", "data.documentType"),
                ("documentNumber", "data.documentNumber"),
                ("expiryDate", "data.expiryDate"),
                ("issuingCountry", "data.issuingCountry"),
            ])),
        ],
    }
}

fn proof_of_address() -> WorkflowDefinition {
    let id_name = r#"participantOutputs["id-document"].fullName"#;
    let no_id = r#"!("id-document" in participantOutputs)"#;
    WorkflowDefinition {
        slug: PROOF_OF_ADDRESS.into(),
        name: "Proof of address".into(),
        description: Some("A recent utility bill, bank statement or official letter; the name must match the participant's identity document.".into()),
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        steps: vec![
            Step::Capture(CaptureStep {
                fields: vec![
                    select("documentType", "Document type", &["utility_bill", "bank_statement", "tax_letter", "government_letter"]),
                    field("fullName", FieldKind::Text, "Name on the document"),
                    field("addressLine1", FieldKind::Text, "Address"),
                    optional(field("addressLine2", FieldKind::Text, "Address (line 2)")),
                    field("city", FieldKind::Text, "City"),
                    optional(field("postalCode", FieldKind::Text, "Postal code")),
                    field("country", FieldKind::Country, "Country"),
                    field("issueDate", FieldKind::Date, "Date of issue"),
                    optional(field("documentImage", FieldKind::Document, "Photo or scan of the document")),
                ],
            }),
            Step::Validate(ValidateStep {
                rules: vec![
                    rule("issued_in_the_past", "days_since(data.issueDate) >= 0", FailureOutcome::Retry, "The date of issue is in the future."),
                    rule(
                        "recent",
                        &format!("days_since(data.issueDate) <= {POA_MAX_AGE_DAYS}"),
                        FailureOutcome::Retry,
                        "The document must be issued within the last 90 days.",
                    ),
                    rule(
                        "identity_document_on_file",
                        &format!("!{no_id}"),
                        FailureOutcome::Review,
                        "There is no identity document for this participant to compare the name with.",
                    ),
                    rule(
                        "name_not_mismatched",
                        &format!("{no_id} || name_match(data.fullName, {id_name}) >= {NAME_MISMATCH}"),
                        FailureOutcome::Retry,
                        "The name on the document does not match the name on the identity document.",
                    ),
                    rule(
                        "name_matches_identity_document",
                        &format!("{no_id} || name_match(data.fullName, {id_name}) >= {NAME_MATCH}"),
                        FailureOutcome::Review,
                        "The name on the document is close to, but not the same as, the name on the identity document.",
                    ),
                ],
            }),
            Step::Output(mapping(&[
                ("fullName", "data.fullName"),
                ("addressLine1", "data.addressLine1"),
                ("addressLine2", "has(data.addressLine2) ? data.addressLine2 : null"),
                ("city", "data.city"),
                ("postalCode", "has(data.postalCode) ? data.postalCode : null"),
                ("country", "data.country"),
                ("issueDate", "data.issueDate"),
                ("documentType", "data.documentType"),
            ])),
        ],
    }
}

fn check(slug: &str, name: &str, kind: CheckKind) -> WorkflowDefinition {
    WorkflowDefinition {
        slug: slug.into(),
        name: name.into(),
        description: Some("Screens the participant against watch lists through the configured provider.".into()),
        max_attempts: 1,
        steps: vec![
            Step::Check(CheckStep { kind, provider: None }),
            Step::Output(MappingStep::default()),
        ],
    }
}

/// The native risk score over the workflows before it, with the default
/// thresholds (review at 50, reject at 80); a partner overrides the built-in
/// by slug to set its own.
fn risk_assessment() -> WorkflowDefinition {
    WorkflowDefinition {
        slug: RISK_ASSESSMENT.into(),
        name: "Risk assessment".into(),
        description: Some(
            "Scores the evidence so far (checks, validation, reviews, documents, countries) and sends high \
             scores to review or rejects them."
                .into(),
        ),
        max_attempts: 1,
        steps: vec![
            Step::Risk(RiskStep {
                review_threshold: None,
                reject_threshold: None,
            }),
            Step::Output(MappingStep::default()),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{self, cost};
    use crate::workflow::WorkflowDraft;

    fn expressions(def: &WorkflowDefinition) -> Vec<&str> {
        def.steps
            .iter()
            .flat_map(|step| match step {
                Step::Validate(v) => v.rules.iter().map(|r| r.expression.as_str()).collect(),
                Step::Extract(m) | Step::Output(m) => m.fields.values().map(String::as_str).collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Partners override built-ins and copy their rules: they are far inside
    /// the budget, so a copy has room to grow.
    #[test]
    fn builtins_cost_a_small_part_of_the_budget() {
        for def in all() {
            let mut total = 0;
            for expression in expressions(def) {
                let estimate = rules::check(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
                assert_eq!(estimate.nesting, 0, "{expression}");
                assert!(
                    estimate.cost <= cost::RULE_BUDGET / 20,
                    "{expression}: {}",
                    estimate.cost
                );
                total += estimate.cost;
            }
            assert!(total <= cost::TRANSITION_BUDGET / 20, "{}: {total}", def.slug);
        }
    }

    #[test]
    fn builtins_pass_the_same_validation_as_partner_definitions() {
        for def in all() {
            let draft = WorkflowDraft {
                name: def.name.clone(),
                slug: Some(def.slug.clone()),
                description: def.description.clone(),
                max_attempts: Some(def.max_attempts),
                steps: def.steps.clone(),
            };
            assert_eq!(
                draft.validate(None, crate::webhooks::UrlPolicy::Production).as_ref(),
                Ok(def),
                "{}",
                def.slug
            );
        }
    }
}
