//! Workflow definitions: named pipelines of typed steps.
//!
//! A session workflow runs its definition's steps in order and waits where a
//! step waits: `capture` for the end user, `check` for its provider, `review`
//! for a partner. The definition is copied into the session when it is
//! created, so editing or deleting a definition never changes a running case.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::rules;
use crate::rules::cost::TRANSITION_BUDGET;
use crate::tenancy::Tenant;
use crate::validation::{FieldErrors, check_text, is_identifier, is_slug};
use crate::webhooks::{self, UrlPolicy};

pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDefinition {
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// How many submissions the end user gets before a `retry` failure fails
    /// the workflow.
    pub max_attempts: u32,
    pub steps: Vec<Step>,
}

/// An organisation's own definition (or its override of a built-in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredWorkflow {
    pub tenant: Tenant,
    pub definition: WorkflowDefinition,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// Steps as the API spells them: `{"type": "capture", "config": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Capture(CaptureStep),
    Ocr(ProviderStep),
    Extract(MappingStep),
    Validate(ValidateStep),
    Enrich(ProviderStep),
    Check(CheckStep),
    Risk(RiskStep),
    Review(ReviewStep),
    Webhook(WebhookStep),
    Output(MappingStep),
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Capture(_) => "capture",
            Step::Ocr(_) => "ocr",
            Step::Extract(_) => "extract",
            Step::Validate(_) => "validate",
            Step::Enrich(_) => "enrich",
            Step::Check(_) => "check",
            Step::Risk(_) => "risk",
            Step::Review(_) => "review",
            Step::Webhook(_) => "webhook",
            Step::Output(_) => "output",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CaptureStep {
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    #[serde(default = "yes")]
    pub required: bool,
    pub label: Option<String>,
    /// The allowed values of a `select` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text (at most 500 characters).
    Text,
    /// A calendar date, `YYYY-MM-DD`, from 1900-01-01 to 2199-12-31 (`capture::FIRST_DATE`..=`capture::LAST_DATE`).
    Date,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    Number,
    Boolean,
    /// One of `options`.
    Select,
    /// A reference to an uploaded document (the upload itself happens
    /// elsewhere; the step keeps the reference).
    Document,
}

/// Steps that call an external provider (OCR, enrichment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderStep {
    pub provider: Option<String>,
}

/// `extract` and `output`: named CEL expressions over the rule context.
/// An `output` step with no fields outputs everything captured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingStep {
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateStep {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// A CEL expression that must evaluate to `true` for the rule to pass.
    pub expression: String,
    pub on_failure: FailureOutcome,
    /// Shown to the end user (retry) or the partner (review, fail).
    pub message: Option<String>,
}

/// What a failed rule means. Ordered by severity: when several rules fail,
/// the most severe outcome decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureOutcome {
    /// A human looks at it: the workflow pauses in `pending_review`.
    Review,
    /// The end user may submit again while attempts remain; then the workflow fails.
    Retry,
    /// The workflow fails at once.
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Pep,
    Sanctions,
    AdverseMedia,
    Registry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckStep {
    pub kind: CheckKind,
    pub provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskStep {
    pub review_threshold: Option<u8>,
    pub reject_threshold: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewStep {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookStep {
    pub url: String,
}

/// A definition as a partner submits it (`POST /workflows`, `PUT /workflows/{slug}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowDraft {
    pub name: String,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub max_attempts: Option<u32>,
    pub steps: Vec<Step>,
}

impl WorkflowDraft {
    /// Checks a draft; `slug` is the path's slug on update. A `webhook`
    /// step's URL is held to the deployment's webhook URL policy, as an
    /// endpoint's is: it is the same kind of outbound POST.
    pub fn validate(self, slug_from_path: Option<&str>, urls: UrlPolicy) -> Result<WorkflowDefinition, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = match (slug_from_path, self.slug) {
            (Some(path), Some(body)) if path != body => {
                errors.push("slug", "must match the slug in the path (slugs cannot be renamed)");
                path.to_owned()
            }
            (Some(path), _) => path.to_owned(),
            (None, Some(body)) => body,
            (None, None) => {
                errors.push("slug", "is required");
                String::new()
            }
        };
        if !slug.is_empty() && !is_slug(&slug) {
            errors.push(
                "slug",
                "must be lowercase letters, digits and single dashes (at most 64)",
            );
        }
        check_text(&mut errors, "name", &self.name, 200);
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=10).contains(&max_attempts) {
            errors.push("maxAttempts", "must be between 1 and 10");
        }
        check_steps(&mut errors, &self.steps, urls);
        errors.finish(WorkflowDefinition {
            slug,
            name: self.name.trim().to_owned(),
            description: self.description,
            max_attempts,
            steps: self.steps,
        })
    }
}

fn check_steps(errors: &mut FieldErrors, steps: &[Step], urls: UrlPolicy) {
    if steps.is_empty() {
        errors.push("steps", "a workflow needs at least one step");
    }
    if steps.len() > 20 {
        errors.push("steps", "at most 20 steps");
    }
    // What all the expressions cost together at nominal sizes: a run of the
    // workflow may evaluate every one of them in one change.
    let mut total: u64 = 0;
    let mut check = |errors: &mut FieldErrors, field: String, expression: &str| match rules::check(expression) {
        Ok(estimate) => total = total.saturating_add(estimate.cost),
        Err(e) => errors.push(field, e.to_string()),
    };
    for (i, step) in steps.iter().enumerate() {
        let at = format!("steps[{i}].config");
        match step {
            Step::Capture(c) => check_fields(errors, &at, &c.fields),
            Step::Extract(m) | Step::Output(m) => {
                for (name, expr) in &m.fields {
                    if !is_field_name(name) {
                        errors.push(
                            format!("{at}.fields.{name}"),
                            "must be a letter followed by letters, digits or _",
                        );
                    }
                    check(errors, format!("{at}.fields.{name}"), expr);
                }
            }
            Step::Validate(v) => {
                if v.rules.is_empty() {
                    errors.push(format!("{at}.rules"), "a validate step needs at least one rule");
                }
                let mut names = BTreeSet::new();
                for (j, rule) in v.rules.iter().enumerate() {
                    if !is_identifier(&rule.name) {
                        errors.push(format!("{at}.rules[{j}].name"), "must be a lowercase identifier");
                    }
                    if !names.insert(&rule.name) {
                        errors.push(format!("{at}.rules[{j}].name"), "rule names must be unique");
                    }
                    check(errors, format!("{at}.rules[{j}].expression"), &rule.expression);
                }
            }
            Step::Risk(r) => {
                for (name, value) in [
                    ("reviewThreshold", r.review_threshold),
                    ("rejectThreshold", r.reject_threshold),
                ] {
                    if value.is_some_and(|v| v > 100) {
                        errors.push(format!("{at}.{name}"), "must be between 0 and 100");
                    }
                }
                if let (Some(review), Some(reject)) = (r.review_threshold, r.reject_threshold)
                    && review > reject
                {
                    errors.push(
                        format!("{at}.reviewThreshold"),
                        "must not be above rejectThreshold (a score that rejects is past review)",
                    );
                }
            }
            Step::Ocr(_) | Step::Enrich(_) => {
                errors.push(
                    format!("steps[{i}].type"),
                    format!(
                        "the `{}` step needs a provider, and none is configured for it yet",
                        step.kind()
                    ),
                );
            }
            Step::Webhook(w) => {
                if let Err(refusal) = webhooks::check_url(&w.url, urls) {
                    errors.push(format!("{at}.url"), refusal.to_string());
                }
            }
            Step::Check(_) | Step::Review(_) => {}
        }
    }
    if total > TRANSITION_BUDGET {
        errors.push(
            "steps",
            format!(
                "the expressions together have an estimated cost of {total}, over the budget {TRANSITION_BUDGET} \
                 of what one change may evaluate"
            ),
        );
    }
}

fn check_fields(errors: &mut FieldErrors, at: &str, fields: &[Field]) {
    let mut names = BTreeSet::new();
    for (j, field) in fields.iter().enumerate() {
        if !is_field_name(&field.name) {
            errors.push(
                format!("{at}.fields[{j}].name"),
                "must be a letter followed by letters, digits or _",
            );
        }
        if !names.insert(&field.name) {
            errors.push(format!("{at}.fields[{j}].name"), "field names must be unique");
        }
        if field.kind == FieldKind::Select && field.options.is_empty() {
            errors.push(format!("{at}.fields[{j}].options"), "a select field needs options");
        }
    }
}

/// Captured field names are camelCase identifiers (`fullName`, `dateOfBirth`).
pub fn is_field_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook_step(url: &str) -> Result<WorkflowDefinition, FieldErrors> {
        serde_json::from_value::<WorkflowDraft>(json!({
            "name": "Notify", "slug": "notify",
            "steps": [{"type": "webhook", "config": {"url": url}}]
        }))
        .unwrap()
        .validate(None, UrlPolicy::Production)
    }

    fn url_error(url: &str) -> String {
        let errors = webhook_step(url).expect_err(url);
        let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(found.len(), 1, "{url}: {found:?}");
        assert_eq!(found[0].0, "steps[0].config.url", "{url}");
        found[0].1.to_owned()
    }

    #[test]
    fn a_webhook_step_url_follows_the_webhook_url_policy() {
        assert!(webhook_step("https://partner.example/step").is_ok());
        assert_eq!(
            url_error("https://169.254.169.254/latest/meta-data"),
            "must not point at a link-local address"
        );
        assert_eq!(url_error("https://10.0.0.1/"), "must not point at a private address");
        assert_eq!(
            url_error("https://192.0.2.1/"),
            "must not point at a documentation address"
        );
        assert_eq!(url_error("https://[::1]/"), "must not point at a loopback address");
        assert_eq!(
            url_error("https://user:pw@partner.example/"),
            "must not contain a user name or password"
        );
        assert_eq!(url_error("http://partner.example/"), "must be an https URL");
    }

    #[test]
    fn a_webhook_step_may_reach_the_developers_machine_only_under_the_development_policy() {
        let draft = serde_json::from_value::<WorkflowDraft>(json!({
            "name": "Notify", "slug": "notify",
            "steps": [{"type": "webhook", "config": {"url": "http://localhost:3000/step"}}]
        }))
        .unwrap();
        assert!(draft.clone().validate(None, UrlPolicy::Development).is_ok());
        assert!(draft.validate(None, UrlPolicy::Production).is_err());
    }
}
