//! What operators do with `korala-admin` (and the local server with its
//! development key): organisations, their API keys through their lifecycle
//! (create, list, rotate, revoke), their rate, and the check vendors they
//! may use.

use korala_domain::ids::OrgId;
use korala_domain::limits::Rate;
use korala_domain::ports::StoreError;
use korala_domain::tenancy::{ApiKey, Mode, Organization, Tenant};

use crate::adapters::crypto::new_api_secret;
use crate::app::App;

/// A key as its owner sees it once: the secret is sealed in the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub org_id: OrgId,
    pub api_key_id: String,
    pub api_secret: String,
}

impl Credentials {
    /// The tenant the key acts for: its organisation in the mode its id names.
    pub fn tenant(&self) -> Option<Tenant> {
        Mode::of_key_id(&self.api_key_id).map(|mode| Tenant::new(self.org_id.clone(), mode))
    }
}

pub fn new_key_id(mode: Mode) -> String {
    format!("{}{}", mode.key_prefix(), hex::encode(rand::random::<[u8; 12]>()))
}

pub async fn create_organization(app: &App, name: &str) -> Result<Organization, StoreError> {
    let org = Organization {
        id: OrgId::generate(app.ids.as_ref()),
        name: name.to_owned(),
        created_at: app.clock.now(),
        rate: None,
        providers: Vec::new(),
    };
    app.store.insert_organization(&org).await?;
    Ok(org)
}

/// Why an operator's command did nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{0}` is not an organisation id (org_…) nor an API key id (ak_test_…, ak_live_…)")]
    NotAnOrganization(String),
    #[error("there is no organisation {0}")]
    NoOrganization(OrgId),
    #[error("there is no API key {0}")]
    NoKey(String),
    #[error("`{0}` must start with ak_test_ or ak_live_")]
    BadKeyId(String),
    #[error(
        "the organisation already has {MAX_ACTIVE_KEYS} active {0} keys, the most a rotation needs: revoke the \
         one being replaced first"
    )]
    TooManyKeys(Mode),
    #[error("the deployment has no check provider `{0}` (KORALA_CHECK_PROVIDERS names them)")]
    UnknownProvider(String),
}

/// Active keys an organisation may have per mode: two, so that a key can
/// be rotated (the new one issued, the partner switched, the old one
/// revoked) without a moment with none.
pub const MAX_ACTIVE_KEYS: usize = 2;

/// Stores a key with the given id and secret (both chosen by the caller).
pub async fn add_key(app: &App, org: &OrgId, key_id: &str, secret: &str) -> Result<Credentials, AdminError> {
    let mode = Mode::of_key_id(key_id).ok_or_else(|| AdminError::BadKeyId(key_id.to_owned()))?;
    let active = app
        .store
        .list_api_keys(org)
        .await?
        .iter()
        .filter(|k| k.mode == mode && k.revoked_at.is_none())
        .count();
    if active >= MAX_ACTIVE_KEYS {
        return Err(AdminError::TooManyKeys(mode));
    }
    let key = ApiKey {
        id: key_id.to_owned(),
        org_id: org.clone(),
        mode,
        sealed_secret: app.sealer.seal(secret),
        created_at: app.clock.now(),
        revoked_at: None,
    };
    app.store.insert_api_key(&key).await?;
    Ok(Credentials {
        org_id: org.clone(),
        api_key_id: key.id,
        api_secret: secret.to_owned(),
    })
}

pub async fn create_key(app: &App, org: &OrgId, mode: Mode) -> Result<Credentials, AdminError> {
    add_key(app, org, &new_key_id(mode), &new_api_secret()).await
}

/// What an operator sees of a key: never its secret.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySummary {
    pub api_key_id: String,
    pub mode: Mode,
    pub created_at: korala_domain::Timestamp,
    pub revoked_at: Option<korala_domain::Timestamp>,
}

pub async fn list_keys(app: &App, org: &OrgId) -> Result<Vec<KeySummary>, AdminError> {
    Ok(app
        .store
        .list_api_keys(org)
        .await?
        .into_iter()
        .map(|k| KeySummary {
            api_key_id: k.id,
            mode: k.mode,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
        .collect())
}

/// Revokes a key (a revoked one stays as it was revoked). Every instance
/// stops accepting it within [`KEY_CACHE_TTL`](crate::web::auth::KEY_CACHE_TTL).
pub async fn revoke_key(app: &App, key_id: &str) -> Result<KeySummary, AdminError> {
    let mut key = app
        .store
        .get_api_key(key_id)
        .await?
        .ok_or_else(|| AdminError::NoKey(key_id.to_owned()))?;
    if key.revoked_at.is_none() {
        key.revoked_at = Some(app.clock.now());
        app.store.update_api_key(&key).await?;
    }
    Ok(KeySummary {
        api_key_id: key.id,
        mode: key.mode,
        created_at: key.created_at,
        revoked_at: key.revoked_at,
    })
}

/// A second key beside `key_id` (same organisation, same mode): the first
/// step of a rotation. The old key works until it is revoked.
pub async fn rotate_key(app: &App, key_id: &str) -> Result<Credentials, AdminError> {
    let old = app
        .store
        .get_api_key(key_id)
        .await?
        .ok_or_else(|| AdminError::NoKey(key_id.to_owned()))?;
    create_key(app, &old.org_id, old.mode).await
}

/// The organisation `org_or_key` names: an organisation id, or an API key
/// id (the key's organisation).
pub async fn organization_of(app: &App, org_or_key: &str) -> Result<Organization, AdminError> {
    let id = match (OrgId::parse(org_or_key), Mode::of_key_id(org_or_key)) {
        (Some(id), _) => id,
        (None, Some(_)) => {
            app.store
                .get_api_key(org_or_key)
                .await?
                .ok_or_else(|| AdminError::NoKey(org_or_key.to_owned()))?
                .org_id
        }
        (None, None) => return Err(AdminError::NotAnOrganization(org_or_key.to_owned())),
    };
    app.store
        .get_organization(&id)
        .await?
        .ok_or(AdminError::NoOrganization(id))
}

/// Gives the organisation a rate of its own (`None`: the deployment's).
/// Instances pick it up with the organisation's keys, within a minute.
pub async fn set_rate(app: &App, org: &OrgId, rate: Option<Rate>) -> Result<Organization, AdminError> {
    let mut organization = app
        .store
        .get_organization(org)
        .await?
        .ok_or_else(|| AdminError::NoOrganization(org.clone()))?;
    organization.rate = rate;
    app.store.update_organization(&organization).await?;
    Ok(organization)
}

/// Enables (or disables) an HTTP check vendor for the organisation. The
/// checks worker reads it for every check it sends to a vendor.
pub async fn enable_provider(
    app: &App,
    org: &OrgId,
    provider: &str,
    enabled: bool,
) -> Result<Organization, AdminError> {
    let mut organization = app
        .store
        .get_organization(org)
        .await?
        .ok_or_else(|| AdminError::NoOrganization(org.clone()))?;
    organization.providers.retain(|p| p != provider);
    if enabled {
        organization.providers.push(provider.to_owned());
        organization.providers.sort();
    }
    app.store.update_organization(&organization).await?;
    Ok(organization)
}
