//! Organisations and their API keys. Secrets appear here only sealed: the
//! adapters encrypt them with a key the deployment supplies.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::OrgId;
use crate::limits::Rate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: Timestamp,
    /// The organisation's own request rate, when an operator set one;
    /// otherwise [`Rate::PARTNER`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// The HTTP check vendors an operator enabled for this organisation, by
    /// the names the deployment gives them. The built-in screening is every
    /// organisation's; a vendor is a contract, so no organisation reaches
    /// one unless enabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
}

impl Organization {
    /// The rate its partner calls are metered at.
    pub fn rate(&self) -> Rate {
        self.rate.unwrap_or(Rate::PARTNER)
    }

    /// Whether its checks may call the vendor named `provider`.
    pub fn may_use(&self, provider: &str) -> bool {
        self.providers.iter().any(|p| p == provider)
    }
}

/// Test mode and live mode are two separate worlds of one organisation, as
/// at Stripe and Persona: a key has one mode and everything it creates or
/// sees belongs to that mode. Test-mode sessions are sandbox sessions: their
/// checks run providers in test mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Test, Mode::Live];

    pub fn key_prefix(self) -> &'static str {
        match self {
            Mode::Test => "ak_test_",
            Mode::Live => "ak_live_",
        }
    }

    pub fn of_key_id(key_id: &str) -> Option<Mode> {
        if key_id.starts_with("ak_test_") {
            Some(Mode::Test)
        } else if key_id.starts_with("ak_live_") {
            Some(Mode::Live)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    /// Test mode is the sandbox: what the API and webhooks call `sandbox`.
    pub fn is_sandbox(self) -> bool {
        self == Mode::Test
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose data a record is: one organisation in one mode. Every record a
/// partner can reach (sessions and their events, configurations, workflow
/// definitions, webhook endpoints and deliveries, idempotency records)
/// belongs to exactly one tenant, and every store read and write names the
/// tenant, so a test key never reaches live data nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub org_id: OrgId,
    pub mode: Mode,
}

impl Tenant {
    pub fn new(org_id: OrgId, mode: Mode) -> Self {
        Self { org_id, mode }
    }

    pub fn is_sandbox(&self) -> bool {
        self.mode.is_sandbox()
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.org_id, self.mode)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// `ak_test_…` or `ak_live_…`.
    pub id: String,
    pub org_id: OrgId,
    pub mode: Mode,
    /// The signing secret, encrypted (never stored in plain text).
    pub sealed_secret: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// The tenant every call signed with this key acts for.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.org_id.clone(), self.mode)
    }
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
