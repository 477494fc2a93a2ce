//! The ports the domain needs from the outside world. Adapters (the embedded
//! SQLite store, DynamoDB, the system clock, UUIDv7 ids) implement them in the
//! `functions` crate; no storage or cloud type crosses these traits.

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Timestamp;
use crate::configuration::Configuration;
use crate::delivery::WebhookDelivery;
use crate::events::Event;
use crate::ids::{EventId, OrgId, SessionId, WebhookDeliveryId, WebhookEndpointId};
use crate::limits::{Admit, Bucket, Quota, Rate};
use crate::session::{Session, SessionStatus, SessionSummary};
use crate::tenancy::{ApiKey, Organization, Tenant};
use crate::transition::Transition;
use crate::webhooks::WebhookEndpoint;
use crate::workflow::StoredWorkflow;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A create found the key taken (a slug, an id, an idempotency key).
    #[error("the item already exists")]
    AlreadyExists,
    /// A conditional write found another version than the one it read.
    #[error("the item changed since it was read")]
    Conflict,
    /// The item to update or delete is not there.
    #[error("the item does not exist")]
    NotFound,
    /// A create found its tenant at its quota of that kind of record.
    #[error("{0}")]
    LimitReached(Quota),
    /// The engine failed; retrying may help.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored item could not be decoded: a bug or a corrupted record.
    #[error("a stored item is unreadable: {0}")]
    Corrupt(String),
}

/// Organisations and their API keys: above the tenants (an organisation has
/// both modes, a key names its own).
#[async_trait]
pub trait Tenancy: Send + Sync {
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError>;
    async fn get_organization(&self, id: &OrgId) -> Result<Option<Organization>, StoreError>;
    /// Replaces an organisation's record (its name, its rate): `NotFound`
    /// if there is none.
    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError>;
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError>;
    /// The organisation's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKey>, StoreError>;
    /// Replaces a key's record (its revocation): `NotFound` if there is none.
    async fn update_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
}

// The versioned records, sessions and deliveries below belong to a tenant, an
// organisation in one mode, and every method names it: another tenant's
// record (another organisation's, or the same organisation's in the other
// mode) reads as missing, cannot be changed or deleted, and is never
// listed. Adapters keep the tenant in the key of every record, so no read
// can find another tenant's.

/// The kinds of [`VersionedRecord`]: what an adapter keys its tables and prefixes
/// by, and whose quota a creation counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Configuration,
    Workflow,
    WebhookEndpoint,
}

impl RecordKind {
    /// How many of this kind a tenant may have.
    pub const fn quota(self) -> Quota {
        match self {
            RecordKind::Configuration => Quota::Configurations,
            RecordKind::Workflow => Quota::Workflows,
            RecordKind::WebhookEndpoint => Quota::WebhookEndpoints,
        }
    }

    /// What one is called (in the store's errors).
    pub const fn noun(self) -> &'static str {
        match self {
            RecordKind::Configuration => "configuration",
            RecordKind::Workflow => "workflow",
            RecordKind::WebhookEndpoint => "webhook endpoint",
        }
    }
}

/// What a partner configures: a tenant's record unique by its key (a slug,
/// an id) and replaced version by version. Configurations, workflow
/// definitions and webhook endpoints are kept alike, so one port,
/// [`VersionedRecords`], stores all three, and each adapter implements it
/// once. (The end user's files are [`DocumentStorage`]'s.)
pub trait VersionedRecord: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: RecordKind;
    /// What the record is found by within its tenant.
    type Key: std::fmt::Display + Sync + ?Sized;

    fn tenant(&self) -> &Tenant;
    fn key(&self) -> &Self::Key;
    /// 1 when created, one more with every update (the store's write guard).
    fn version(&self) -> u64;
    fn updated_at(&self) -> Timestamp;
}

impl VersionedRecord for Configuration {
    const KIND: RecordKind = RecordKind::Configuration;
    type Key = str;

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    fn key(&self) -> &str {
        &self.slug
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

impl VersionedRecord for StoredWorkflow {
    const KIND: RecordKind = RecordKind::Workflow;
    type Key = str;

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    fn key(&self) -> &str {
        &self.definition.slug
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

impl VersionedRecord for WebhookEndpoint {
    const KIND: RecordKind = RecordKind::WebhookEndpoint;
    type Key = WebhookEndpointId;

    fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    fn key(&self) -> &WebhookEndpointId {
        &self.id
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

/// A tenant's versioned records of one kind, unique by (tenant, key).
#[async_trait]
pub trait VersionedRecords<D: VersionedRecord>: Send + Sync {
    /// Stores a new record; `AlreadyExists` if the tenant has one under
    /// its key, `LimitReached` if it has its quota of the kind (the store
    /// counts them in the creating write).
    async fn insert(&self, record: &D) -> Result<(), StoreError>;
    /// Replaces the record if it is still at `record.version() - 1`:
    /// `Conflict` if it holds another version, `NotFound` if the tenant has
    /// none under its key; either way nothing is written.
    async fn update(&self, record: &D) -> Result<(), StoreError>;
    async fn get(&self, tenant: &Tenant, key: &D::Key) -> Result<Option<D>, StoreError>;
    /// The tenant's records of this kind in key order: for webhook
    /// endpoints, whose ids are time-ordered (see
    /// [`IdGenerator`](crate::ids::IdGenerator)), creation order.
    async fn list(&self, tenant: &Tenant) -> Result<Vec<D>, StoreError>;
    /// Deletes the record, which frees its place in the quota: `NotFound`
    /// if the tenant has none under this key.
    async fn delete(&self, tenant: &Tenant, key: &D::Key) -> Result<(), StoreError>;
}

/// Which sessions to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQuery {
    pub external_user_id: Option<String>,
    pub status: Option<SessionStatus>,
    pub limit: u32,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based page of `limit` sessions (cost grows with the page number).
    Page(u32),
    /// The sessions after this one: constant cost however deep.
    After(SessionId),
}

/// A page of a listing: the sessions' summaries, not the sessions, so a store
/// can answer from an index that keeps only what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    /// Another page follows this one.
    pub has_more: bool,
}

/// Sessions and their history, scoped to the tenant. Only the end user's
/// token lookup and the expiry sweep span tenants, as they must.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Writes the transition's session and events together: the session is
    /// new (`expected_version() == None`), or still at the version the
    /// transition started from — otherwise `Conflict` and nothing is written.
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError>;
    async fn get(&self, tenant: &Tenant, id: &SessionId) -> Result<Option<Session>, StoreError>;
    async fn find_by_token_hash(&self, token_hash: &str) -> Result<Option<Session>, StoreError>;
    /// The tenant's sessions that match the query, newest first, as
    /// summaries of their latest committed version (or, on an eventually
    /// consistent store, of a recent one).
    async fn list(&self, tenant: &Tenant, query: &SessionQuery) -> Result<SessionPage, StoreError>;
    /// The session's history, oldest first.
    async fn list_events(&self, tenant: &Tenant, id: &SessionId) -> Result<Vec<Event>, StoreError>;
    /// The session and its history (oldest first) read together — one
    /// request where the store keeps them side by side. `None` for a missing
    /// session or another tenant's.
    async fn get_with_events(
        &self,
        tenant: &Tenant,
        id: &SessionId,
    ) -> Result<Option<(Session, Vec<Event>)>, StoreError>;
    /// Sessions of every organisation that wait for the end user past their
    /// deadline, earliest deadline first (then by id), at most `limit`: whole
    /// sessions, as the expiry sweep commits a transition of each.
    async fn due(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError>;
}

/// Which of an endpoint's deliveries to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub limit: u32,
    /// The deliveries older than this one (the previous page's last).
    pub after: Option<WebhookDeliveryId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    pub deliveries: Vec<WebhookDelivery>,
    /// Older deliveries follow this page.
    pub has_more: bool,
}

/// Webhook deliveries, scoped to the tenant like the endpoints.
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Stores a new delivery; `AlreadyExists` if its id is taken (the same
    /// event fanned out to the same endpoint before).
    async fn insert(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    /// Replaces the delivery if it is still at `delivery.version - 1`:
    /// `Conflict` if it holds another version, `NotFound` if the
    /// tenant has no delivery with this id.
    async fn update(&self, delivery: &WebhookDelivery) -> Result<(), StoreError>;
    async fn get(&self, tenant: &Tenant, id: &WebhookDeliveryId) -> Result<Option<WebhookDelivery>, StoreError>;
    /// An endpoint's deliveries, newest (highest id) first. Deleting an
    /// endpoint does not delete its deliveries.
    async fn list(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError>;
}

/// Whether a signature was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstUse {
    /// Never seen (or seen so long ago that it has been forgotten).
    Yes,
    /// Already used, and still remembered.
    No,
}

/// Admission control that holds across processes: every Lambda instance
/// meters against, and remembers in, the same store.
#[async_trait]
pub trait Admission: Send + Sync {
    /// Meters one request against `bucket` at `now` (see [`Rate::admit`]),
    /// and records the bucket's new state when it is admitted. Concurrent
    /// calls never admit more than the rate allows together.
    async fn admit(&self, bucket: &Bucket, rate: Rate, now: Timestamp) -> Result<Admit, StoreError>;
    /// Remembers `signature` as used until `until`: [`FirstUse::No`] when it
    /// was used before and is still remembered at `now`. Of two concurrent
    /// calls with one signature, exactly one hears `Yes`.
    async fn use_once(&self, signature: &str, until: Timestamp, now: Timestamp) -> Result<FirstUse, StoreError>;
}

/// The store of sessions and everything partners configure: every port
/// above, in one adapter. Every store is also the admission adapter: the
/// rate meters and the used signatures are state all instances share, and
/// the store is where such state lives.
///
/// Tenancy and admission are called on the store itself. The other records
/// share their methods' names (`get`, `list`, …), so each is reached
/// through the accessor named after it:
/// `store.sessions().get(&tenant, &id)`, `store.configurations().list(&tenant)`.
pub trait Store:
    Tenancy
    + Admission
    + Sessions
    + Deliveries
    + VersionedRecords<Configuration>
    + VersionedRecords<StoredWorkflow>
    + VersionedRecords<WebhookEndpoint>
{
    fn sessions(&self) -> &dyn Sessions;
    fn deliveries(&self) -> &dyn Deliveries;
    fn configurations(&self) -> &dyn VersionedRecords<Configuration>;
    fn workflows(&self) -> &dyn VersionedRecords<StoredWorkflow>;
    fn endpoints(&self) -> &dyn VersionedRecords<WebhookEndpoint>;
}

/// An adapter of every port is a store.
impl<S> Store for S
where
    S: Tenancy
        + Admission
        + Sessions
        + Deliveries
        + VersionedRecords<Configuration>
        + VersionedRecords<StoredWorkflow>
        + VersionedRecords<WebhookEndpoint>,
{
    fn sessions(&self) -> &dyn Sessions {
        self
    }

    fn deliveries(&self) -> &dyn Deliveries {
        self
    }

    fn configurations(&self) -> &dyn VersionedRecords<Configuration> {
        self
    }

    fn workflows(&self) -> &dyn VersionedRecords<StoredWorkflow> {
        self
    }

    fn endpoints(&self) -> &dyn VersionedRecords<WebhookEndpoint> {
        self
    }
}

/// The embedded store's side of the transactional outbox: events committed
/// with their transition and not yet handed to the bus. (On DynamoDB the
/// table's stream plays this part.)
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Committed events not yet published, oldest first, at most `limit`.
    async fn unpublished_events(&self, limit: u32) -> Result<Vec<Event>, StoreError>;
    /// Marks events published; unknown or already published ids are ignored.
    async fn mark_published(&self, ids: &[EventId], at: Timestamp) -> Result<(), StoreError>;
}

/// Hands committed events to the event bus (EventBridge, or in process).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes every event, at least once: on error, the events in
    /// [`PublishError::failed`] were not published (the others were) and
    /// the caller publishes those again later.
    async fn publish(&self, events: &[Event]) -> Result<(), PublishError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} event(s) not published: {reason}", failed.len())]
pub struct PublishError {
    pub failed: Vec<EventId>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

/// A message to send, visible after `delay_seconds` (at most 900, as SQS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub body: String,
    pub delay_seconds: u32,
}

/// A received message: hidden from other consumers until it is deleted or
/// its visibility timeout passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Names this receipt of the message, for delete and retry.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// The longest a message can be hidden (SQS's limit): 12 hours.
pub const MAX_VISIBILITY_SECONDS: u32 = 12 * 3600;

/// A work queue (SQS, or a table in the embedded store), at least once:
/// consumers must be idempotent.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends every message, or fails; after a failure some may have been
    /// sent, and sending again duplicates them.
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError>;
    /// Up to `max` visible messages, each then hidden for `visibility_seconds`.
    async fn receive(&self, max: u32, visibility_seconds: u32) -> Result<Vec<Received>, QueueError>;
    /// Done with the message.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    /// The message comes back after `seconds` (at most
    /// [`MAX_VISIBILITY_SECONDS`]) instead of its visibility timeout.
    async fn retry_after(&self, receipt: &str, seconds: u32) -> Result<(), QueueError>;
}

/// Where a signed upload URL sends the file, and the headers the client must
/// send with it (they are part of the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The object is larger than the reader would take; nothing was read.
    #[error("the stored object has {size} bytes, more than {max}")]
    TooLarge { size: u64, max: u64 },
    /// The engine failed; retrying may help.
    #[error("document storage is unavailable: {0}")]
    Unavailable(String),
}

/// The end user's files: S3 on AWS, sealed files on disk locally. No file
/// passes through a function on its way in: the client sends it to a URL
/// this port signs, for one key, type and size, for a few minutes.
#[async_trait]
pub trait DocumentStorage: Send + Sync {
    /// A URL that takes `size` bytes of `content_type` at `key` until
    /// `expires_at` (signed at `now`).
    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<UploadTarget, StorageError>;
    /// The object's bytes, `None` when nothing is stored at `key`, and
    /// `TooLarge` without reading them when it holds more than `max`.
    async fn read(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// Copies an object within storage (on S3 the bytes never leave it).
    /// Copying onto an existing key replaces it.
    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError>;
    /// A URL that serves the object as a download named `file_name` until
    /// `expires_at`.
    async fn download_url(
        &self,
        key: &str,
        file_name: &str,
        content_type: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<String, StorageError>;
    /// Removes the object; nothing stored there is no error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// What the text is for: an MRZ is read with the zone's alphabet only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcrPurpose {
    /// The machine-readable zone of a travel document (`A`–`Z`, `0`–`9`,
    /// `<`), for [`mrz::find`](crate::mrz::find).
    MachineReadableZone,
    /// Any printed text (a letter, a bill), read as the page lays it out.
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// The engine is missing or failed (a crash, a timeout); retrying may help.
    #[error("the OCR engine is unavailable: {0}")]
    Unavailable(String),
    /// The image cannot be read (not an image, a format the engine does not
    /// know, too large): the same bytes will fail again.
    #[error("the image cannot be read: {0}")]
    Unreadable(String),
}

/// Reads the text of an image of a document (a photo, a scan).
#[async_trait]
pub trait Ocr: Send + Sync {
    /// Which engine read it ("tesseract"), for the record of a reading.
    fn engine(&self) -> &'static str;
    /// The text of the image (PNG, JPEG, …), lines separated by `\n`; empty
    /// when the engine saw no text.
    async fn read(&self, image: &[u8], purpose: OcrPurpose) -> Result<String, OcrError>;
}
