//! Minting organisations and API keys (the admin command and the local
//! server's development key).

use korala_domain::ids::OrgId;
use korala_domain::ports::StoreError;
use korala_domain::tenancy::{ApiKey, Mode, Organization, Tenant};

use crate::app::App;
use crate::crypto::new_api_secret;

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
    };
    app.store.insert_organization(&org).await?;
    Ok(org)
}

/// Stores a key with the given id and secret (both chosen by the caller).
pub async fn add_key(app: &App, org: &OrgId, key_id: &str, secret: &str) -> Result<Credentials, StoreError> {
    let mode = Mode::of_key_id(key_id)
        .ok_or_else(|| StoreError::Corrupt(format!("`{key_id}` must start with ak_test_ or ak_live_")))?;
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

pub async fn create_key(app: &App, org: &OrgId, mode: Mode) -> Result<Credentials, StoreError> {
    add_key(app, org, &new_key_id(mode), &new_api_secret()).await
}
