//! Session configurations: org-scoped, reusable blueprints binding workflows
//! to participant roles.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::Catalog;
use crate::participant::Role;
use crate::tenancy::Tenant;
use crate::validation::{FieldErrors, check_json_size, check_redirect_url, check_text, is_identifier, is_slug};
use crate::{JsonMap, Timestamp};

pub const DEFAULT_EXPIRES_IN_MINUTES: u32 = 1440;
/// Sessions live at most 30 days.
pub const MAX_EXPIRES_IN_MINUTES: u32 = 43_200;
pub const MAX_BINDINGS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    #[default]
    Individual,
    Business,
}

/// One step of the plan: a workflow run for every participant with one of
/// `participant_roles` (for the subject when the list is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowBinding {
    pub workflow_slug: String,
    #[serde(default)]
    pub participant_roles: Vec<Role>,
    pub output_key: String,
    #[serde(default)]
    pub context: JsonMap,
}

/// How the partner wrote the plan, kept so responses echo it as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStyle {
    Slugs,
    Bindings,
}

/// The policy part of a configuration, copied into every session created
/// from it so later edits never change a running case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub is_verification: bool,
    pub auto_resolve: bool,
    pub final_manual_review_required: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    pub tenant: Tenant,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub plan_style: PlanStyle,
    pub bindings: Vec<WorkflowBinding>,
    pub subject_kind: SubjectKind,
    pub policy: Policy,
    pub default_expires_in_minutes: u32,
    pub default_redirect_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

/// A binding as a partner writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingInput {
    pub workflow_slug: String,
    #[serde(default)]
    pub participant_roles: Vec<Role>,
    pub output_key: Option<String>,
    #[serde(default)]
    pub context: JsonMap,
}

/// `POST /session-configurations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationDraft {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub workflow_slugs: Option<Vec<String>>,
    pub workflow_bindings: Option<Vec<BindingInput>>,
    pub subject_kind: Option<SubjectKind>,
    pub is_verification: Option<bool>,
    pub auto_resolve: Option<bool>,
    pub final_manual_review_required: Option<bool>,
    pub default_expires_in_minutes: Option<u32>,
    pub default_redirect_url: Option<String>,
}

/// `PATCH /session-configurations/{slug}`: absent fields stay, `null` clears
/// the optional ones.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    pub workflow_slugs: Option<Vec<String>>,
    pub workflow_bindings: Option<Vec<BindingInput>>,
    pub subject_kind: Option<SubjectKind>,
    pub is_verification: Option<bool>,
    pub auto_resolve: Option<bool>,
    pub final_manual_review_required: Option<bool>,
    pub default_expires_in_minutes: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub default_redirect_url: Option<Option<String>>,
}

/// Tells "absent" (outer `None`, via `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl ConfigurationDraft {
    pub fn validate(self, tenant: Tenant, catalog: &Catalog, now: Timestamp) -> Result<Configuration, FieldErrors> {
        let mut errors = FieldErrors::new();
        check_text(&mut errors, "name", &self.name, 200);
        if !is_slug(&self.slug) {
            errors.push(
                "slug",
                "must be lowercase letters, digits and single dashes (at most 64)",
            );
        }
        if let Some(d) = &self.description
            && d.chars().count() > 1000
        {
            errors.push("description", "must be at most 1000 characters");
        }
        let one_plan_given = self.workflow_slugs.is_some() != self.workflow_bindings.is_some();
        let (plan_style, inputs) = match (self.workflow_slugs, self.workflow_bindings) {
            (Some(_), Some(_)) => {
                errors.push(
                    "workflowBindings",
                    "give either workflowSlugs or workflowBindings, not both",
                );
                (PlanStyle::Bindings, vec![])
            }
            (None, None) => {
                errors.push("workflowSlugs", "give workflowSlugs or workflowBindings");
                (PlanStyle::Slugs, vec![])
            }
            (Some(slugs), None) => (
                PlanStyle::Slugs,
                slugs
                    .into_iter()
                    .map(|workflow_slug| BindingInput {
                        workflow_slug,
                        participant_roles: vec![],
                        output_key: None,
                        context: JsonMap::new(),
                    })
                    .collect(),
            ),
            (None, Some(bindings)) => (PlanStyle::Bindings, bindings),
        };
        // A session without workflows would complete (and approve itself) the
        // moment it is created.
        if one_plan_given && inputs.is_empty() {
            let list = match plan_style {
                PlanStyle::Slugs => "workflowSlugs",
                PlanStyle::Bindings => "workflowBindings",
            };
            errors.push(list, "give at least one workflow");
        }
        let bindings = check_bindings(&mut errors, plan_style, inputs, catalog);
        let expires = self.default_expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
        check_expiry(&mut errors, "defaultExpiresInMinutes", expires);
        if let Some(url) = &self.default_redirect_url {
            check_redirect_url(&mut errors, "defaultRedirectUrl", url);
        }
        errors.finish(Configuration {
            tenant,
            name: self.name.trim().to_owned(),
            slug: self.slug,
            description: self.description,
            plan_style,
            bindings,
            subject_kind: self.subject_kind.unwrap_or_default(),
            policy: Policy {
                is_verification: self.is_verification.unwrap_or(true),
                auto_resolve: self.auto_resolve.unwrap_or(true),
                final_manual_review_required: self.final_manual_review_required.unwrap_or(false),
            },
            default_expires_in_minutes: expires,
            default_redirect_url: self.default_redirect_url,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

pub fn check_expiry(errors: &mut FieldErrors, field: &str, minutes: u32) {
    if !(1..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
        errors.push(field, format!("must be between 1 and {MAX_EXPIRES_IN_MINUTES} minutes"));
    }
}

fn check_bindings(
    errors: &mut FieldErrors,
    style: PlanStyle,
    inputs: Vec<BindingInput>,
    catalog: &Catalog,
) -> Vec<WorkflowBinding> {
    let list = match style {
        PlanStyle::Slugs => "workflowSlugs",
        PlanStyle::Bindings => "workflowBindings",
    };
    if inputs.len() > MAX_BINDINGS {
        errors.push(list, format!("at most {MAX_BINDINGS} workflows"));
    }
    let mut keys = BTreeSet::new();
    let mut bindings = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let at = match style {
            PlanStyle::Slugs => format!("{list}[{i}]"),
            PlanStyle::Bindings => format!("{list}[{i}].workflowSlug"),
        };
        if catalog.get(&input.workflow_slug).is_none() {
            errors.push(at, format!("no workflow `{}` exists", input.workflow_slug));
        }
        let output_key = input
            .output_key
            .unwrap_or_else(|| input.workflow_slug.replace('-', "_"));
        if !is_identifier(&output_key) {
            errors.push(
                format!("{list}[{i}].outputKey"),
                "must be a lowercase identifier (letters, digits, _)",
            );
        } else if !keys.insert(output_key.clone()) {
            errors.push(
                format!("{list}[{i}].outputKey"),
                format!("output key `{output_key}` is used twice; give each binding its own outputKey"),
            );
        }
        let mut roles = input.participant_roles;
        roles.dedup();
        check_json_size(errors, &format!("{list}[{i}].context"), &input.context, 8192);
        bindings.push(WorkflowBinding {
            workflow_slug: input.workflow_slug,
            participant_roles: roles,
            output_key,
            context: input.context,
        });
    }
    bindings
}

impl Configuration {
    /// The draft this configuration would be created from, for patching.
    fn to_draft(&self) -> ConfigurationDraft {
        let inputs = || {
            self.bindings
                .iter()
                .map(|b| BindingInput {
                    workflow_slug: b.workflow_slug.clone(),
                    participant_roles: b.participant_roles.clone(),
                    output_key: Some(b.output_key.clone()),
                    context: b.context.clone(),
                })
                .collect()
        };
        ConfigurationDraft {
            name: self.name.clone(),
            slug: self.slug.clone(),
            description: self.description.clone(),
            workflow_slugs: (self.plan_style == PlanStyle::Slugs)
                .then(|| self.bindings.iter().map(|b| b.workflow_slug.clone()).collect()),
            workflow_bindings: (self.plan_style == PlanStyle::Bindings).then(inputs),
            subject_kind: Some(self.subject_kind),
            is_verification: Some(self.policy.is_verification),
            auto_resolve: Some(self.policy.auto_resolve),
            final_manual_review_required: Some(self.policy.final_manual_review_required),
            default_expires_in_minutes: Some(self.default_expires_in_minutes),
            default_redirect_url: self.default_redirect_url.clone(),
        }
    }

    /// Applies a partial update, validating the result as a whole.
    pub fn patch(
        &self,
        patch: ConfigurationPatch,
        catalog: &Catalog,
        now: Timestamp,
    ) -> Result<Configuration, FieldErrors> {
        let mut draft = self.to_draft();
        if patch.workflow_slugs.is_some() && patch.workflow_bindings.is_some() {
            return Err(FieldErrors::single(
                "workflowBindings",
                "give either workflowSlugs or workflowBindings, not both",
            ));
        }
        if let Some(slugs) = patch.workflow_slugs {
            draft.workflow_slugs = Some(slugs);
            draft.workflow_bindings = None;
        }
        if let Some(bindings) = patch.workflow_bindings {
            draft.workflow_bindings = Some(bindings);
            draft.workflow_slugs = None;
        }
        macro_rules! overlay {
            ($($field:ident),*) => { $( if let Some(v) = patch.$field { draft.$field = Some(v); } )* };
        }
        overlay!(
            subject_kind,
            is_verification,
            auto_resolve,
            final_manual_review_required,
            default_expires_in_minutes
        );
        if let Some(name) = patch.name {
            draft.name = name;
        }
        if let Some(description) = patch.description {
            draft.description = description;
        }
        if let Some(url) = patch.default_redirect_url {
            draft.default_redirect_url = url;
        }
        let mut updated = draft.validate(self.tenant.clone(), catalog, now)?;
        updated.created_at = self.created_at;
        updated.version = self.version + 1;
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn org() -> Tenant {
        Tenant::new(crate::ids::OrgId::parse("org_1").unwrap(), crate::tenancy::Mode::Live)
    }

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn draft(v: serde_json::Value) -> ConfigurationDraft {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_product_pages_kyb_configuration_is_accepted() {
        let config = draft(crate::testing::product_page::kyb_standard())
            .validate(org(), &Catalog::builtins(), now())
            .unwrap();
        assert_eq!(config.bindings.len(), 3);
        assert_eq!(config.subject_kind, SubjectKind::Business);
        assert!(!config.policy.auto_resolve);
    }

    #[test]
    fn defaults_follow_the_product_page() {
        let c =
            draft(json!({"name": "KYC", "slug": "kyc-standard", "workflowSlugs": ["id-document", "proof-of-address"]}))
                .validate(org(), &Catalog::builtins(), now())
                .unwrap();
        assert_eq!(
            c.policy,
            Policy {
                is_verification: true,
                auto_resolve: true,
                final_manual_review_required: false
            }
        );
        assert_eq!(c.default_expires_in_minutes, 1440);
        assert_eq!(c.subject_kind, SubjectKind::Individual);
        assert_eq!(c.bindings[1].output_key, "proof_of_address");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = draft(json!({
            "name": " ",
            "slug": "Bad Slug",
            "workflowBindings": [
                {"workflowSlug": "nope"},
                {"workflowSlug": "id-document", "outputKey": "x"},
                {"workflowSlug": "id-document", "outputKey": "x"}
            ],
            "defaultExpiresInMinutes": 0,
            "defaultRedirectUrl": "ftp://x"
        }))
        .validate(org(), &Catalog::builtins(), now())
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "slug",
                "workflowBindings[0].workflowSlug",
                "workflowBindings[2].outputKey",
                "defaultExpiresInMinutes",
                "defaultRedirectUrl"
            ]
        );
    }

    #[test]
    fn patch_overlays_and_revalidates() {
        let c = draft(json!({"name": "KYC", "slug": "kyc", "workflowSlugs": ["id-document"], "defaultRedirectUrl": "https://a.example/x"}))
            .validate(org(), &Catalog::builtins(), now())
            .unwrap();
        let patch: ConfigurationPatch =
            serde_json::from_value(json!({"defaultExpiresInMinutes": 2880, "defaultRedirectUrl": null})).unwrap();
        let p = c.patch(patch, &Catalog::builtins(), now()).unwrap();
        assert_eq!(p.default_expires_in_minutes, 2880);
        assert_eq!(p.default_redirect_url, None);
        assert_eq!(p.version, 2);
        assert_eq!(p.plan_style, PlanStyle::Slugs);
        let bad: ConfigurationPatch = serde_json::from_value(json!({"workflowSlugs": ["missing"]})).unwrap();
        assert!(c.patch(bad, &Catalog::builtins(), now()).is_err());
        assert!(serde_json::from_value::<ConfigurationPatch>(json!({"slug": "other"})).is_err());
    }
}
