//! Organisations and their API keys. Secrets appear here only sealed: the
//! adapters encrypt them with a key the deployment supplies.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::OrgId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: Timestamp,
}

/// Test keys run sessions in sandbox mode; live keys do real work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    Test,
    Live,
}

impl KeyMode {
    pub fn key_prefix(self) -> &'static str {
        match self {
            KeyMode::Test => "ak_test_",
            KeyMode::Live => "ak_live_",
        }
    }

    pub fn of_key_id(key_id: &str) -> Option<KeyMode> {
        if key_id.starts_with("ak_test_") {
            Some(KeyMode::Test)
        } else if key_id.starts_with("ak_live_") {
            Some(KeyMode::Live)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// `ak_test_…` or `ak_live_…`.
    pub id: String,
    pub org_id: OrgId,
    pub mode: KeyMode,
    /// The signing secret, encrypted (never stored in plain text).
    pub sealed_secret: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Who asked for a change: recorded on every event of the session's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// The end user, through the session's access token.
    EndUser,
    /// A partner, through a signed API call with this key.
    Partner {
        #[serde(rename = "apiKeyId")]
        api_key_id: String,
    },
    /// The service itself (expiry, check results, automatic resolution).
    System,
}
