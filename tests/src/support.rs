//! Deterministic building blocks for the acceptance tests: ids that sort in
//! creation order, fixed instants, and domain objects made the way the API
//! makes them, so the stores are tested with real sessions rather than
//! hand-written JSON.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use korala_domain::builtin;
use korala_domain::catalog::Catalog;
use korala_domain::configuration::{Configuration, ConfigurationDraft};
use korala_domain::ids::{IdGenerator, OrgId, WebhookEndpointId};
use korala_domain::session::{AccessToken, Origin, Session, SessionDraft};
use korala_domain::tenancy::{Actor, ApiKey, Mode, Organization, Tenant};
use korala_domain::transition::Transition;
use korala_domain::webhooks::WebhookEvent;
use korala_domain::webhooks::{UrlPolicy, WebhookEndpoint, WebhookEndpointDraft};
use korala_domain::workflow::StoredWorkflow;
use korala_domain::{JsonMap, Timestamp};
use serde_json::json;

pub use korala_domain::testing::{SequentialIds, minutes, seconds, t0};

pub fn org(name: &str) -> OrgId {
    OrgId::parse(&format!("org_{name}")).expect("a well-formed org id")
}

/// The organisation `name` in live mode.
pub fn tenant(name: &str) -> Tenant {
    Tenant::new(org(name), Mode::Live)
}

/// The organisation `name` in test mode: the other world of [`tenant`]'s.
pub fn sandbox(name: &str) -> Tenant {
    Tenant::new(org(name), Mode::Test)
}

pub fn organization(id: &OrgId, name: &str) -> Organization {
    Organization {
        id: id.clone(),
        name: name.to_owned(),
        created_at: t0(),
        rate: None,
        providers: Vec::new(),
    }
}

pub fn api_key(id: &str, org: &OrgId) -> ApiKey {
    ApiKey {
        id: id.to_owned(),
        org_id: org.clone(),
        mode: Mode::of_key_id(id).expect("an ak_test_ or ak_live_ key id"),
        sealed_secret: format!("sealed:{id}"),
        created_at: t0(),
        revoked_at: None,
    }
}

pub fn partner() -> Actor {
    Actor::Partner {
        api_key_id: "ak_test_conformance".into(),
    }
}

/// A KYC configuration running the built-in identity-document workflow,
/// resolved automatically when it completes.
pub fn configuration(tenant: &Tenant, slug: &str) -> Configuration {
    ConfigurationDraft {
        name: format!("Configuration {slug}"),
        slug: slug.to_owned(),
        workflow_slugs: Some(vec![builtin::ID_DOCUMENT.to_owned()]),
        ..ConfigurationDraft::default()
    }
    .validate(tenant.clone(), &Catalog::builtins(), t0())
    .expect("a valid configuration")
}

/// Like [`configuration`], but a partner must resolve every session: a
/// session whose workflows all completed waits in `pending_review`.
pub fn reviewed_configuration(tenant: &Tenant, slug: &str) -> Configuration {
    ConfigurationDraft {
        name: format!("Configuration {slug}"),
        slug: slug.to_owned(),
        workflow_slugs: Some(vec![builtin::ID_DOCUMENT.to_owned()]),
        auto_resolve: Some(false),
        final_manual_review_required: Some(true),
        ..ConfigurationDraft::default()
    }
    .validate(tenant.clone(), &Catalog::builtins(), t0())
    .expect("a valid configuration")
}

/// A tenant's own copy of the identity-document workflow.
pub fn stored_workflow(tenant: &Tenant, slug: &str) -> StoredWorkflow {
    let mut definition = builtin::get(builtin::ID_DOCUMENT)
        .expect("the built-in identity-document workflow")
        .clone();
    definition.slug = slug.to_owned();
    definition.name = format!("Workflow {slug}");
    StoredWorkflow {
        tenant: tenant.clone(),
        definition,
        created_at: t0(),
        updated_at: t0(),
        version: 1,
    }
}

/// A webhook endpoint for `url` as `POST /webhook-endpoints` makes it at
/// `now`: a fresh id from `ids`, subscribed to completed and failed
/// sessions, with a stand-in for the sealed secret.
pub fn webhook_endpoint(tenant: &Tenant, url: &str, now: Timestamp, ids: &dyn IdGenerator) -> WebhookEndpoint {
    let id = WebhookEndpointId::generate(ids);
    let sealed_secret = format!("sealed:whsec_{id}");
    WebhookEndpointDraft {
        url: url.to_owned(),
        events: vec![WebhookEvent::SessionCompleted, WebhookEvent::SessionFailed],
        enabled: true,
        description: None,
    }
    .validate(id, tenant.clone(), sealed_secret, UrlPolicy::Production, now)
    .expect("a valid webhook endpoint")
}

/// `POST /sessions` for `user`, at `now`, expiring `expires_in_minutes`
/// later. The access token's hash is unique per session.
pub fn create_session(
    config: &Configuration,
    user: &str,
    now: Timestamp,
    expires_in_minutes: u32,
    ids: &dyn IdGenerator,
) -> Transition {
    let token = ids.next_body();
    let origin = Origin {
        access_token: AccessToken {
            hash: format!("hash-{token}"),
            sealed: format!("sealed-{token}"),
        },
        configuration: config,
        catalog: &Catalog::builtins(),
    };
    let draft = SessionDraft {
        configuration_slug: config.slug.clone(),
        external_user_id: user.to_owned(),
        participants: vec![],
        context: JsonMap::new(),
        metadata: JsonMap::new(),
        expires_in_minutes: Some(expires_in_minutes),
        redirect_url: None,
    };
    Session::create(draft, origin, partner(), now, ids).expect("a valid session")
}

/// A submission that passes every rule of the identity-document workflow.
pub fn id_document_data() -> JsonMap {
    match json!({
        "documentType": "passport",
        "documentNumber": "X1234567",
        "fullName": "Ada Lovelace",
        "dateOfBirth": "1990-12-10",
        "expiryDate": "2035-01-01",
        "issuingCountry": "gb"
    }) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The end user starts the session.
pub fn start(session: &Session, now: Timestamp, ids: &dyn IdGenerator) -> Transition {
    session
        .start(now, ids)
        .expect("the session can start")
        .expect("the session had not started")
}

/// The end user submits the current (first) workflow's capture step.
pub fn submit(session: &Session, now: Timestamp, ids: &dyn IdGenerator) -> Transition {
    let workflow = session
        .current_index()
        .map(|i| session.workflows[i].id.to_string())
        .expect("a current workflow");
    session
        .submit(&workflow, &id_document_data(), now, ids)
        .expect("the submission is accepted")
}

/// A session created at `now` and submitted a minute later, so that it
/// completes: its two transitions, whose events include ones that partners
/// receive as webhooks.
pub fn completed_session(config: &Configuration, user: &str, now: Timestamp, ids: &dyn IdGenerator) -> [Transition; 2] {
    let created = create_session(config, user, now, 60, ids);
    let completed = submit(&created.session, now + chrono::Duration::minutes(1), ids);
    [created, completed]
}

/// A directory under the system's temporary directory, removed (with its
/// contents) when dropped, so file-backed stores clean up even when a case
/// panics.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "korala-{label}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("a writable temporary directory");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
