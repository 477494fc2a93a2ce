//! What the tests of one workflow share: a test-mode tenant, and a started
//! session of one workflow definition.

use korala_domain::catalog::Catalog;
use korala_domain::configuration::ConfigurationDraft;
use korala_domain::ids::OrgId;
use korala_domain::session::{AccessToken, Origin, Session, SessionDraft};
use korala_domain::tenancy::{Actor, Mode, Tenant};
use korala_domain::testing::{SequentialIds, t0};
use korala_domain::workflow::WorkflowDefinition;
use serde_json::{Value, json};

/// Test mode: its sessions are sandbox sessions.
pub fn org() -> Tenant {
    Tenant::new(OrgId::parse("org_0001").unwrap(), Mode::Test)
}

/// A started session, created by `actor`, of a configuration of
/// `definition` alone (`{slug}-config`), whose context is `context`.
pub fn started(definition: WorkflowDefinition, context: Value, actor: Actor, ids: &SequentialIds) -> Session {
    let (name, slug) = (definition.name.clone(), definition.slug.clone());
    let config_slug = format!("{slug}-config");
    let catalog = Catalog::new([definition]);
    let config = serde_json::from_value::<ConfigurationDraft>(json!({
        "name": name, "slug": config_slug, "workflowSlugs": [slug]
    }))
    .unwrap()
    .validate(org(), &catalog, t0())
    .unwrap();
    let draft: SessionDraft = serde_json::from_value(json!({
        "configurationSlug": config_slug,
        "externalUserId": "usr_1",
        "participants": [{"role": "subject", "displayName": "Jane Doe"}],
        "context": context,
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
    let created = Session::create(draft, origin, actor, t0(), ids).unwrap();
    created.session.start(t0(), ids).unwrap().unwrap().session
}
