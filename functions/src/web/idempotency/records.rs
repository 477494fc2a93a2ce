//! The port of the idempotency records, which each store adapter
//! implements: apart from the HTTP logic that uses them ([`super`]), so an
//! adapter depends on the records' types and not on the application.

use async_trait::async_trait;
use korala_domain::Timestamp;
use korala_domain::configuration::Configuration;
use korala_domain::ports::{Store, StoreError};
use korala_domain::tenancy::Tenant;
use korala_domain::transition::Transition;
use korala_domain::webhooks::WebhookEndpoint;
use korala_domain::workflow::StoredWorkflow;

/// An in-progress claim older than this belongs to a request that died
/// without completing or releasing it (a crashed Lambda runs no cleanup),
/// so a retry takes it over rather than hearing "in progress" forever.
pub const CLAIM_TIMEOUT_SECONDS: i64 = 60;
/// Idempotency records are kept this long, then the key is new again.
pub const RETENTION_HOURS: i64 = 24;

/// A stored HTTP response, replayed for a retried request with the same
/// idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// What a creating request writes: one new record, or a new session with
/// its first events.
#[derive(Debug, Clone, Copy)]
pub enum Creation<'a> {
    Session(&'a Transition),
    Configuration(&'a Configuration),
    Workflow(&'a StoredWorkflow),
    WebhookEndpoint(&'a WebhookEndpoint),
}

impl Creation<'_> {
    /// Writes what an unkeyed request created, as the domain's ports write it.
    pub async fn write(self, store: &dyn Store) -> Result<(), StoreError> {
        match self {
            Creation::Session(transition) => store.sessions().commit(transition).await,
            Creation::Configuration(config) => store.configurations().insert(config).await,
            Creation::Workflow(workflow) => store.workflows().insert(workflow).await,
            Creation::WebhookEndpoint(endpoint) => store.endpoints().insert(endpoint).await,
        }
    }
}

/// The answer to a request under an idempotency key, completing the claim
/// made at `claimed_at` (a claim taken over since has another time).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub tenant: &'a Tenant,
    pub key: &'a str,
    pub claimed_at: Timestamp,
    pub response: &'a StoredResponse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new: the caller runs the request and then completes it.
    Acquired,
    /// The same request ran before: replay its response.
    Completed(StoredResponse),
    /// The same key with another request (method, path or body).
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// The idempotency records, scoped to the tenant like everything a partner
/// makes: a key used in test mode is new in live mode.
#[async_trait]
pub trait IdempotencyRecords: Send + Sync {
    async fn claim_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Completes the claim with its answer: `NotFound` when the claim is
    /// not there or no longer the one made at `claimed_at`.
    async fn complete_idempotency_key(&self, answer: &Answer<'_>) -> Result<(), StoreError>;
    /// Forgets the claim made at `claimed_at` if its request failed, so a
    /// retry can run again; a claim taken over since, or completed, stays.
    async fn release_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        claimed_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Writes what a keyed request created and completes its key with the
    /// answer, in one transaction: a retry finds both or neither, so it
    /// never runs the request again after the creation landed. Fails as the
    /// creation's own write would (`AlreadyExists` for a taken slug), or
    /// with `Conflict` when the claim is no longer this request's (another
    /// took it over as abandoned); either way nothing is written.
    async fn create_answered(&self, creation: Creation<'_>, answer: &Answer<'_>) -> Result<(), StoreError>;
}
