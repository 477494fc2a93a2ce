//! The embedded store: one SQLite database, used by the local server and by
//! single-node deployments.
//!
//! Every record is kept whole as a JSON document, so the schema never has to
//! follow the domain types; the few fields the store filters, sorts or guards
//! on are copied into columns beside it. Timestamps in those columns are
//! RFC 3339 text with a fixed number of digits, so comparing the strings
//! compares the instants.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool. One
//! connection behind a mutex serialises the calls of this process; the write
//! transactions are `IMMEDIATE` so that other processes sharing the file wait
//! on the busy timeout instead of failing half-way through.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use korala_domain::Timestamp;
use korala_domain::delivery::WebhookDelivery;
use korala_domain::events::Event;
use korala_domain::ids::{EventId, OrgId, SessionId, WebhookDeliveryId, WebhookEndpointId};
use korala_domain::limits::{Admit, Bucket, Quota, Rate};
use korala_domain::ports::{
    Admission, Deliveries, DeliveryPage, DeliveryQuery, FirstUse, Outbox, Position, RecordKind, SessionPage,
    SessionQuery, Sessions, StoreError, Tenancy, VersionedRecord, VersionedRecords,
};
use korala_domain::session::{Session, SessionSummary};
use korala_domain::tenancy::{ApiKey, Organization, Tenant};
use korala_domain::transition::Transition;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, ffi, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::web::idempotency::records::{
    Answer, CLAIM_TIMEOUT_SECONDS, Creation, IdempotencyClaim, IdempotencyRecords, RETENTION_HOURS,
};

/// How long a writer waits for another process's lock before giving up with
/// `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema changes in order; `PRAGMA user_version` records how many ran, so an
/// existing database picks up only the ones it lacks. Append; never edit one
/// that has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE organizations (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    doc         TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    doc         TEXT NOT NULL
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys (org_id);

CREATE TABLE configurations (
    org_id      TEXT NOT NULL,
    slug        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, slug)
) STRICT, WITHOUT ROWID;

CREATE TABLE workflows (
    org_id      TEXT NOT NULL,
    slug        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, slug)
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
    id                TEXT NOT NULL PRIMARY KEY,
    org_id            TEXT NOT NULL,
    version           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    external_user_id  TEXT NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    doc               TEXT NOT NULL
) STRICT;
-- Session ids are time-ordered, so (org, id) lists an organisation's sessions
-- newest first when read backwards.
CREATE INDEX sessions_by_org ON sessions (org_id, id);
CREATE INDEX sessions_by_user ON sessions (org_id, external_user_id, id);
CREATE INDEX sessions_by_status ON sessions (org_id, status, id);
-- Only sessions that wait for the end user can expire; the sweep reads this.
CREATE INDEX sessions_due ON sessions (expires_at, id) WHERE status IN ('created', 'in_progress');

CREATE TABLE events (
    id            TEXT NOT NULL PRIMARY KEY,
    org_id        TEXT NOT NULL,
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    version       INTEGER NOT NULL,
    sequence      INTEGER NOT NULL,
    occurred_at   TEXT NOT NULL,
    doc           TEXT NOT NULL,
    -- Set once the event has been handed to the delivery queue: events and
    -- their session are written in one transaction, so nothing is lost if
    -- the process dies between the commit and the hand-off.
    published_at  TEXT,
    UNIQUE (session_id, version, sequence)
) STRICT;
CREATE INDEX events_unpublished ON events (occurred_at, id) WHERE published_at IS NULL;

CREATE TABLE idempotency (
    org_id       TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response     TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
) STRICT, WITHOUT ROWID;
"#,
    r#"
-- Webhook endpoints. Their ids are time-ordered, so the primary key lists an
-- organisation's endpoints in creation order.
CREATE TABLE webhook_endpoints (
    org_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;
"#,
    r#"
-- Webhook deliveries. A delivery id begins with its event's time-ordered id,
-- so (org, endpoint, id) read backwards is an endpoint's log newest first.
CREATE TABLE webhook_deliveries (
    org_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (org_id, endpoint_id, id);

-- The embedded work queues (`SqliteQueue`), several by name in one table.
-- The rowid is the send order. Each receive hands out a new receipt, so only
-- the latest receiver can delete or delay a message; a message received too
-- often is dead-lettered (dead_at set) and kept for an operator to look at.
CREATE TABLE queue_messages (
    id             INTEGER PRIMARY KEY,
    queue          TEXT NOT NULL,
    body           TEXT NOT NULL,
    sent_at        TEXT NOT NULL,
    visible_at     TEXT NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt        TEXT,
    dead_at        TEXT
) STRICT;
CREATE INDEX queue_messages_ready ON queue_messages (queue, visible_at) WHERE dead_at IS NULL;
CREATE INDEX queue_messages_by_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
CREATE INDEX queue_messages_dead ON queue_messages (queue, id) WHERE dead_at IS NOT NULL;
"#,
    r#"
-- Test mode and live mode are two separate worlds of one organisation:
-- every record a partner reaches is keyed by its tenant, (org_id, mode), and
-- every statement names both. The records of the single-mode layout are
-- dropped, not moved: nothing was deployed on it, and their documents (no
-- tenant in them) cannot be read by this build. Organisations and API keys
-- stay (a key already has its mode).
DELETE FROM queue_messages;
DROP TABLE events;
DROP TABLE sessions;
DROP TABLE configurations;
DROP TABLE workflows;
DROP TABLE webhook_endpoints;
DROP TABLE webhook_deliveries;
DROP TABLE idempotency;

CREATE TABLE configurations (
    org_id      TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    slug        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, mode, slug)
) STRICT, WITHOUT ROWID;

CREATE TABLE workflows (
    org_id      TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    slug        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, mode, slug)
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_endpoints (
    org_id      TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (org_id, mode, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
    org_id       TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    id           TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    updated_at   TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (org_id, mode, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (org_id, mode, endpoint_id, id);

CREATE TABLE sessions (
    id                TEXT NOT NULL PRIMARY KEY,
    org_id            TEXT NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    version           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    external_user_id  TEXT NOT NULL,
    token_hash        TEXT NOT NULL UNIQUE,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    doc               TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_by_tenant ON sessions (org_id, mode, id);
CREATE INDEX sessions_by_user ON sessions (org_id, mode, external_user_id, id);
CREATE INDEX sessions_by_status ON sessions (org_id, mode, status, id);
CREATE INDEX sessions_due ON sessions (expires_at, id) WHERE status IN ('created', 'in_progress');

CREATE TABLE events (
    id            TEXT NOT NULL PRIMARY KEY,
    org_id        TEXT NOT NULL,
    mode          TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    session_id    TEXT NOT NULL REFERENCES sessions (id),
    version       INTEGER NOT NULL,
    sequence      INTEGER NOT NULL,
    occurred_at   TEXT NOT NULL,
    doc           TEXT NOT NULL,
    published_at  TEXT,
    UNIQUE (session_id, version, sequence)
) STRICT;
CREATE INDEX events_unpublished ON events (occurred_at, id) WHERE published_at IS NULL;

CREATE TABLE idempotency (
    org_id       TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response     TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, mode, key)
) STRICT, WITHOUT ROWID;
"#,
    r#"
-- Admission: each rate bucket's theoretical arrival time (unix
-- microseconds), and the signatures of mutating requests already used, kept
-- until their timestamps leave the signing window. A bucket whose instant
-- has passed is a full one, so old rows are pruned as they are met.
CREATE TABLE rate_buckets (
    bucket  TEXT NOT NULL PRIMARY KEY,
    tat     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_buckets_by_tat ON rate_buckets (tat);

CREATE TABLE used_signatures (
    signature   TEXT NOT NULL PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX used_signatures_by_expiry ON used_signatures (expires_at);
"#,
];

/// The `Store` on SQLite. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    readers: Option<Arc<Readers>>,
}

/// Read-only connections to a database file, for the reads: with WAL they
/// read while the writer holds its connection, so one organisation's writes
/// (a submission whose rules take their whole budget, a burst of creates)
/// do not queue another's reads behind them. An in-memory database is one
/// connection's alone: there every read takes the writer's.
struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle readers kept open; more are opened while many reads run at once,
/// and closed when they finish.
const IDLE_READERS: usize = 8;

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(engine)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(engine)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file and brings its schema up to
    /// date. Blocks: call it at start-up, not while serving.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::runtime::private::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        // The sessions hold personal data: the file is created 0600 before
        // SQLite opens it, and SQLite gives its `-wal` and `-shm` the
        // database's mode. Files an earlier version left readable are
        // tightened, the companions with them.
        crate::runtime::private::create_file(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            crate::runtime::private::restrict(Path::new(&companion))
                .map_err(|e| StoreError::Unavailable(format!("cannot make {} private: {e}", path.display())))?;
        }
        let conn = Connection::open(path).map_err(engine)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(engine)?;
        // WAL lets readers in other processes (an admin shell, a backup) run
        // while a request writes.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(engine)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{} cannot use write-ahead logging (journal mode {mode})",
                path.display()
            )));
        }
        // With WAL, NORMAL only risks the last transactions on power loss,
        // never the file's integrity.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(engine)?;
        Self::prepare(conn, Some(path.to_owned()))
    }

    /// A private database that vanishes with the store: for tests and
    /// throw-away local runs.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::prepare(Connection::open_in_memory().map_err(engine)?, None)
    }

    fn prepare(mut conn: Connection, path: Option<std::path::PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", true).map_err(engine)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            readers: path.map(|path| {
                Arc::new(Readers {
                    path,
                    idle: Mutex::new(Vec::new()),
                })
            }),
        })
    }

    /// Runs `work`, which only reads, on the blocking pool with a reader
    /// of its own (the writer's connection for an in-memory database). A
    /// reader sees every transaction committed before it starts.
    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(readers) = self.readers.clone() else {
            return self.run(work).await;
        };
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let result = work(&mut conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("the database task did not finish: {e}")))?
    }

    /// Runs `work` on the blocking pool with the connection to itself (the
    /// queues of this store share it).
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().map_err(|_| {
                StoreError::Unavailable("the database connection is poisoned by an earlier panic".into())
            })?;
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("the database task did not finish: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = write(conn)?;
    let applied: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(engine)?;
    let known = MIGRATIONS.len() as i64;
    if applied > known {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {applied}, newer than this build's {known}"
        )));
    }
    for migration in MIGRATIONS.iter().skip(applied as usize) {
        tx.execute_batch(migration).map_err(engine)?;
    }
    if applied < known {
        tx.pragma_update(None, "user_version", known).map_err(engine)?;
    }
    tx.commit().map_err(engine)
}

/// Takes the write lock up front: a deferred transaction that reads first
/// and writes later can fail with `SQLITE_BUSY` without waiting, when another
/// process wrote in between.
pub(crate) fn write(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(engine)
}

pub(crate) fn engine(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    failure.extended_code,
                    ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE
                ) =>
            {
                StoreError::AlreadyExists
            }
            // Any other constraint (NOT NULL, CHECK, foreign key) means the
            // adapter wrote something malformed: retrying cannot help.
            ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch => StoreError::Corrupt(e.to_string()),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Unavailable(e.to_string()),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

pub(crate) fn text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode the {what}: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("the stored {what} is unreadable: {e}")))
}

/// SQLite integers are signed; a version past `i64::MAX` can only be a bug.
fn integer(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("the {what} {n} does not fit the store")))
}

/// Reads the JSON documents a query yields, in order.
fn documents<T: DeserializeOwned>(
    conn: &Connection,
    what: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(engine)?;
    let docs = statement
        .query_map(args, |row| row.get::<_, String>(0))
        .map_err(engine)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(engine)?;
    docs.iter().map(|doc| decode(what, doc)).collect()
}

fn document<T: DeserializeOwned>(
    conn: &Connection,
    what: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let doc: Option<String> = conn.query_row(sql, args, |row| row.get(0)).optional().map_err(engine)?;
    doc.map(|doc| decode(what, &doc)).transpose()
}

/// A table of versioned documents, and the column that (with the tenant's
/// `org_id` and `mode`) keys it. Both are constants, never input, so formatting them into SQL is safe.
#[derive(Clone, Copy)]
struct Table {
    name: &'static str,
    key: &'static str,
    /// How many rows a tenant may have, counted by the insert itself.
    quota: Option<Quota>,
}

const CONFIGURATIONS: Table = Table {
    name: "configurations",
    key: "slug",
    quota: Some(Quota::Configurations),
};
const WORKFLOWS: Table = Table {
    name: "workflows",
    key: "slug",
    quota: Some(Quota::Workflows),
};
const WEBHOOK_ENDPOINTS: Table = Table {
    name: "webhook_endpoints",
    key: "id",
    quota: Some(Quota::WebhookEndpoints),
};
impl Table {
    /// Where each kind of document is kept.
    const fn of(kind: RecordKind) -> Self {
        match kind {
            RecordKind::Configuration => CONFIGURATIONS,
            RecordKind::Workflow => WORKFLOWS,
            RecordKind::WebhookEndpoint => WEBHOOK_ENDPOINTS,
        }
    }
}

const WEBHOOK_DELIVERIES: Table = Table {
    name: "webhook_deliveries",
    key: "id",
    quota: None,
};

/// A tenant as the columns that key its rows.
#[derive(Clone)]
struct Owner {
    org_id: String,
    mode: &'static str,
}

impl Owner {
    fn of(tenant: &Tenant) -> Self {
        Self {
            org_id: tenant.org_id.to_string(),
            mode: tenant.mode.as_str(),
        }
    }
}

/// Configurations, workflow definitions, webhook endpoints and their
/// deliveries share one shape in the store: a tenant's document unique by
/// its key (a slug, an id), replaced version by version.
struct Versioned {
    table: Table,
    owner: Owner,
    key: String,
    version: i64,
    updated_at: String,
    doc: String,
}

impl Versioned {
    fn of<D: VersionedRecord>(document: &D) -> Result<Self, StoreError> {
        let what = D::KIND.noun();
        Ok(Self {
            table: Table::of(D::KIND),
            owner: Owner::of(document.tenant()),
            key: document.key().to_string(),
            version: integer(&format!("{what} version"), document.version())?,
            updated_at: text(&document.updated_at()),
            doc: encode(what, document)?,
        })
    }

    fn of_webhook_delivery(delivery: &WebhookDelivery) -> Result<Self, StoreError> {
        Ok(Self {
            table: WEBHOOK_DELIVERIES,
            owner: Owner::of(&delivery.tenant),
            key: delivery.id.to_string(),
            version: integer("webhook delivery version", delivery.version)?,
            updated_at: text(&delivery.updated_at),
            doc: encode("webhook delivery", delivery)?,
        })
    }

    /// Inserts the row in the caller's write transaction, refusing it when
    /// its tenant is past its quota: counted after the insert, inside the
    /// transaction, so two inserts racing for the last place cannot both
    /// pass, and a taken key is `AlreadyExists` whatever the count (as on
    /// DynamoDB). On a refusal the caller's transaction is dropped, and
    /// with it the insert.
    fn insert(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let Table { name, key, quota } = self.table;
        let sql = format!(
            "INSERT INTO {name} (org_id, mode, {key}, version, updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        );
        let Owner { org_id, mode } = self.owner;
        tx.execute(
            &sql,
            params![org_id, mode, self.key, self.version, self.updated_at, self.doc],
        )
        .map_err(engine)?;
        if let Some(quota) = quota {
            let count: i64 = tx
                .query_row(
                    &format!("SELECT COUNT(*) FROM {name} WHERE org_id = ?1 AND mode = ?2"),
                    params![org_id, mode],
                    |row| row.get(0),
                )
                .map_err(engine)?;
            if count > i64::from(quota.max()) {
                return Err(StoreError::LimitReached(quota));
            }
        }
        Ok(())
    }

    /// [`insert`](Self::insert) in a write transaction of its own.
    fn create(self, conn: &mut Connection) -> Result<(), StoreError> {
        let tx = write(conn)?;
        self.insert(&tx)?;
        tx.commit().map_err(engine)
    }

    /// Replaces the row only if it still holds the version before this one,
    /// and tells a lost race (`Conflict`) from a deleted row (`NotFound`).
    fn update(self, conn: &mut Connection) -> Result<(), StoreError> {
        let Table { name, key, .. } = self.table;
        let tx = write(conn)?;
        let changed = match self.version.checked_sub(1) {
            Some(previous) => {
                let sql = format!(
                    "UPDATE {name} SET version = ?1, updated_at = ?2, doc = ?3 \
                     WHERE org_id = ?4 AND mode = ?5 AND {key} = ?6 AND version = ?7"
                );
                tx.execute(
                    &sql,
                    params![
                        self.version,
                        self.updated_at,
                        self.doc,
                        self.owner.org_id,
                        self.owner.mode,
                        self.key,
                        previous
                    ],
                )
                .map_err(engine)?
            }
            None => 0,
        };
        if changed == 0 {
            let sql = format!("SELECT 1 FROM {name} WHERE org_id = ?1 AND mode = ?2 AND {key} = ?3");
            let exists = tx
                .query_row(&sql, params![self.owner.org_id, self.owner.mode, self.key], |_| Ok(()))
                .optional()
                .map_err(engine)?
                .is_some();
            return Err(if exists {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        }
        tx.commit().map_err(engine)
    }
}

fn get_versioned<T: DeserializeOwned>(
    conn: &Connection,
    table: Table,
    what: &str,
    owner: &Owner,
    key_value: &str,
) -> Result<Option<T>, StoreError> {
    let Table { name, key, .. } = table;
    let sql = format!("SELECT doc FROM {name} WHERE org_id = ?1 AND mode = ?2 AND {key} = ?3");
    document(conn, what, &sql, params![owner.org_id, owner.mode, key_value])
}

/// The tenant's documents in key order (for webhook endpoints, whose ids
/// are time-ordered, creation order).
fn list_versioned<T: DeserializeOwned>(
    conn: &Connection,
    table: Table,
    what: &str,
    owner: &Owner,
) -> Result<Vec<T>, StoreError> {
    let Table { name, key, .. } = table;
    let sql = format!("SELECT doc FROM {name} WHERE org_id = ?1 AND mode = ?2 ORDER BY {key}");
    documents(conn, what, &sql, params![owner.org_id, owner.mode])
}

/// A delivery is a versioned document that also carries its endpoint, which
/// its log is listed by.
fn insert_delivery(conn: &Connection, row: Versioned, endpoint_id: String) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhook_deliveries (org_id, mode, id, endpoint_id, version, updated_at, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.owner.org_id,
            row.owner.mode,
            row.key,
            endpoint_id,
            row.version,
            row.updated_at,
            row.doc
        ],
    )
    .map_err(engine)?;
    Ok(())
}

fn list_deliveries(
    conn: &Connection,
    owner: Owner,
    endpoint: String,
    query: DeliveryQuery,
) -> Result<DeliveryPage, StoreError> {
    let mut sql = String::from("SELECT doc FROM webhook_deliveries WHERE org_id = ? AND mode = ? AND endpoint_id = ?");
    let mut args = vec![
        Value::Text(owner.org_id),
        Value::Text(owner.mode.to_owned()),
        Value::Text(endpoint),
    ];
    if let Some(after) = query.after {
        sql.push_str(" AND id < ?");
        args.push(Value::Text(after.to_string()));
    }
    // One row more than asked tells whether another page follows.
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let limit = i64::from(query.limit);
    args.push(Value::Integer(limit + 1));
    let mut deliveries: Vec<WebhookDelivery> =
        documents(conn, "webhook delivery", &sql, rusqlite::params_from_iter(args))?;
    let has_more = deliveries.len() as i64 > limit;
    deliveries.truncate(query.limit as usize);
    Ok(DeliveryPage { deliveries, has_more })
}

fn delete_versioned(conn: &Connection, table: Table, owner: &Owner, key_value: &str) -> Result<(), StoreError> {
    let Table { name, key, .. } = table;
    let sql = format!("DELETE FROM {name} WHERE org_id = ?1 AND mode = ?2 AND {key} = ?3");
    match conn
        .execute(&sql, params![owner.org_id, owner.mode, key_value])
        .map_err(engine)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// The columns of a session row, prepared before the blocking call.
struct SessionRow {
    id: String,
    owner: Owner,
    version: i64,
    expected: Option<i64>,
    status: &'static str,
    external_user_id: String,
    token_hash: String,
    expires_at: String,
    created_at: String,
    updated_at: String,
    doc: String,
}

struct EventRow {
    id: String,
    owner: Owner,
    session_id: String,
    version: i64,
    sequence: i64,
    occurred_at: String,
    doc: String,
}

impl SessionRow {
    fn of(transition: &Transition) -> Result<Self, StoreError> {
        let session = &transition.session;
        Ok(Self {
            id: session.id.to_string(),
            owner: Owner::of(&session.tenant),
            version: integer("session version", session.version)?,
            expected: transition
                .expected_version()
                .map(|v| integer("session version", v))
                .transpose()?,
            status: session.status.as_str(),
            external_user_id: session.external_user_id.clone(),
            token_hash: session.access_token.hash.clone(),
            expires_at: text(&session.expires_at),
            created_at: text(&session.created_at),
            updated_at: text(&session.updated_at),
            doc: encode("session", session)?,
        })
    }
}

impl EventRow {
    fn of(event: &Event) -> Result<Self, StoreError> {
        Ok(Self {
            id: event.id.to_string(),
            owner: Owner::of(&event.tenant),
            session_id: event.session_id.to_string(),
            version: integer("event version", event.version)?,
            sequence: i64::from(event.sequence),
            occurred_at: text(&event.occurred_at),
            doc: encode("event", event)?,
        })
    }
}

fn commit(conn: &mut Connection, session: SessionRow, events: Vec<EventRow>) -> Result<(), StoreError> {
    let tx = write(conn)?;
    write_session(&tx, session, events)?;
    tx.commit().map_err(engine)
}

/// The session and its events, inside the caller's transaction.
fn write_session(tx: &Connection, session: SessionRow, events: Vec<EventRow>) -> Result<(), StoreError> {
    match session.expected {
        None => {
            tx.execute(
                "INSERT INTO sessions (id, org_id, mode, version, status, external_user_id, token_hash, \
                 expires_at, created_at, updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    session.id,
                    session.owner.org_id,
                    session.owner.mode,
                    session.version,
                    session.status,
                    session.external_user_id,
                    session.token_hash,
                    session.expires_at,
                    session.created_at,
                    session.updated_at,
                    session.doc
                ],
            )
            .map_err(engine)?;
        }
        Some(expected) => {
            let changed = tx
                .execute(
                    "UPDATE sessions SET version = ?1, status = ?2, external_user_id = ?3, token_hash = ?4, \
                     expires_at = ?5, updated_at = ?6, doc = ?7 \
                     WHERE org_id = ?8 AND mode = ?9 AND id = ?10 AND version = ?11",
                    params![
                        session.version,
                        session.status,
                        session.external_user_id,
                        session.token_hash,
                        session.expires_at,
                        session.updated_at,
                        session.doc,
                        session.owner.org_id,
                        session.owner.mode,
                        session.id,
                        expected
                    ],
                )
                .map_err(engine)?;
            if changed == 0 {
                return Err(StoreError::Conflict);
            }
        }
    }
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (id, org_id, mode, session_id, version, sequence, occurred_at, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(engine)?;
        for event in events {
            insert
                .execute(params![
                    event.id,
                    event.owner.org_id,
                    event.owner.mode,
                    event.session_id,
                    event.version,
                    event.sequence,
                    event.occurred_at,
                    event.doc
                ])
                .map_err(engine)?;
        }
    }
    Ok(())
}

/// What a keyed request created, and its key completed with the answer, in
/// one transaction: the answer's update finds the claim gone or taken over
/// (`Conflict`) and the creation is rolled back with it.
fn create_answered(conn: &mut Connection, creation: Row, answer: AnswerRow) -> Result<(), StoreError> {
    let tx = write(conn)?;
    match creation {
        Row::Session(session, events) => write_session(&tx, session, events)?,
        Row::Versioned(row) => row.insert(&tx)?,
    }
    let changed = tx
        .execute(
            "UPDATE idempotency SET state = 'completed', response = ?1 \
             WHERE org_id = ?2 AND mode = ?3 AND key = ?4 AND state = 'in_progress' AND created_at = ?5",
            params![
                answer.response,
                answer.owner.org_id,
                answer.owner.mode,
                answer.key,
                answer.claimed_at
            ],
        )
        .map_err(engine)?;
    if changed == 0 {
        return Err(StoreError::Conflict);
    }
    tx.commit().map_err(engine)
}

/// A [`Creation`] as rows.
enum Row {
    Session(SessionRow, Vec<EventRow>),
    Versioned(Versioned),
}

impl Row {
    fn of(creation: Creation<'_>) -> Result<Self, StoreError> {
        Ok(match creation {
            Creation::Session(transition) => Self::Session(SessionRow::of(transition)?, event_rows(transition)?),
            Creation::Configuration(config) => Self::Versioned(Versioned::of(config)?),
            Creation::Workflow(workflow) => Self::Versioned(Versioned::of(workflow)?),
            Creation::WebhookEndpoint(endpoint) => Self::Versioned(Versioned::of(endpoint)?),
        })
    }
}

fn event_rows(transition: &Transition) -> Result<Vec<EventRow>, StoreError> {
    transition.events.iter().map(EventRow::of).collect()
}

struct AnswerRow {
    owner: Owner,
    key: String,
    claimed_at: String,
    response: String,
}

fn list_sessions(conn: &Connection, owner: Owner, query: SessionQuery) -> Result<SessionPage, StoreError> {
    let mut sql = String::from("SELECT doc FROM sessions WHERE org_id = ? AND mode = ?");
    let mut args = vec![Value::Text(owner.org_id), Value::Text(owner.mode.to_owned())];
    if let Some(user) = query.external_user_id {
        sql.push_str(" AND external_user_id = ?");
        args.push(Value::Text(user));
    }
    if let Some(status) = query.status {
        sql.push_str(" AND status = ?");
        args.push(Value::Text(status.as_str().to_owned()));
    }
    let limit = i64::from(query.limit);
    let offset = match query.position {
        Position::Page(page) => i64::from(page.max(1) - 1) * limit,
        Position::After(id) => {
            sql.push_str(" AND id < ?");
            args.push(Value::Text(id.to_string()));
            0
        }
    };
    // One row more than asked tells whether another page follows.
    sql.push_str(" ORDER BY id DESC LIMIT ? OFFSET ?");
    args.push(Value::Integer(limit + 1));
    args.push(Value::Integer(offset));
    let mut sessions: Vec<Session> = documents(conn, "session", &sql, rusqlite::params_from_iter(args))?;
    let has_more = sessions.len() as i64 > limit;
    sessions.truncate(query.limit as usize);
    // The embedded store reads the whole document anyway; the summary is
    // derived from it rather than stored beside it.
    Ok(SessionPage {
        sessions: sessions.iter().map(SessionSummary::from).collect(),
        has_more,
    })
}

fn claim(
    conn: &mut Connection,
    owner: Owner,
    key: String,
    fingerprint: String,
    now: Timestamp,
) -> Result<IdempotencyClaim, StoreError> {
    let tx = write(conn)?;
    // A record past its retention is forgotten: the key is new again.
    let retained_after = text(&(now - chrono::Duration::hours(RETENTION_HOURS)));
    tx.execute(
        "DELETE FROM idempotency WHERE org_id = ?1 AND mode = ?2 AND key = ?3 AND created_at < ?4",
        params![owner.org_id, owner.mode, key, retained_after],
    )
    .map_err(engine)?;
    let existing: Option<(String, String, Option<String>, String)> = tx
        .query_row(
            "SELECT fingerprint, state, response, created_at FROM idempotency \
             WHERE org_id = ?1 AND mode = ?2 AND key = ?3",
            params![owner.org_id, owner.mode, key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()
        .map_err(engine)?;
    let abandoned_before = text(&(now - chrono::Duration::seconds(CLAIM_TIMEOUT_SECONDS)));
    let claim = match existing {
        None => {
            tx.execute(
                "INSERT INTO idempotency (org_id, mode, key, fingerprint, state, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'in_progress', ?5)",
                params![owner.org_id, owner.mode, key, fingerprint, text(&now)],
            )
            .map_err(engine)?;
            IdempotencyClaim::Acquired
        }
        Some((stored, state, response, _)) if state == "completed" => {
            if stored != fingerprint {
                IdempotencyClaim::Mismatch
            } else {
                let response = response.ok_or_else(|| {
                    StoreError::Corrupt(format!("idempotency key {key} is completed without a response"))
                })?;
                IdempotencyClaim::Completed(decode("idempotent response", &response)?)
            }
        }
        Some((_, state, _, created_at)) if state == "in_progress" && created_at < abandoned_before => {
            tx.execute(
                "UPDATE idempotency SET fingerprint = ?1, created_at = ?2 \
                 WHERE org_id = ?3 AND mode = ?4 AND key = ?5",
                params![fingerprint, text(&now), owner.org_id, owner.mode, key],
            )
            .map_err(engine)?;
            IdempotencyClaim::Acquired
        }
        Some((stored, state, _, _)) if state == "in_progress" => {
            if stored == fingerprint {
                IdempotencyClaim::InProgress
            } else {
                IdempotencyClaim::Mismatch
            }
        }
        Some((_, state, _, _)) => {
            return Err(StoreError::Corrupt(format!(
                "idempotency key {key} has the unknown state {state}"
            )));
        }
    };
    tx.commit().map_err(engine)?;
    Ok(claim)
}

/// Unix microseconds: the admission tables' instants.
fn micros(t: &Timestamp) -> i64 {
    t.timestamp_micros()
}

fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("the stored instant {micros} is out of range")))
}

/// A bucket met this long after its instant is a full bucket whatever its
/// rate (no rate's burst lasts an hour), so its row can go.
const STALE_BUCKET_MICROS: i64 = 3_600_000_000;

fn admit(conn: &mut Connection, bucket: &str, rate: Rate, now: Timestamp) -> Result<Admit, StoreError> {
    let tx = write(conn)?;
    tx.execute(
        "DELETE FROM rate_buckets WHERE tat < ?1",
        params![micros(&now) - STALE_BUCKET_MICROS],
    )
    .map_err(engine)?;
    let tat: Option<i64> = tx
        .query_row(
            "SELECT tat FROM rate_buckets WHERE bucket = ?1",
            params![bucket],
            |row| row.get(0),
        )
        .optional()
        .map_err(engine)?;
    let decision = rate.admit(tat.map(instant).transpose()?, now);
    if let Admit::Admitted { tat } = decision {
        tx.execute(
            "INSERT INTO rate_buckets (bucket, tat) VALUES (?1, ?2) \
             ON CONFLICT (bucket) DO UPDATE SET tat = excluded.tat",
            params![bucket, micros(&tat)],
        )
        .map_err(engine)?;
    }
    tx.commit().map_err(engine)?;
    Ok(decision)
}

fn use_once(conn: &mut Connection, signature: &str, until: Timestamp, now: Timestamp) -> Result<FirstUse, StoreError> {
    let tx = write(conn)?;
    tx.execute(
        "DELETE FROM used_signatures WHERE expires_at <= ?1",
        params![micros(&now)],
    )
    .map_err(engine)?;
    let inserted = tx
        .execute(
            "INSERT INTO used_signatures (signature, expires_at) VALUES (?1, ?2) ON CONFLICT (signature) DO NOTHING",
            params![signature, micros(&until)],
        )
        .map_err(engine)?;
    tx.commit().map_err(engine)?;
    Ok(if inserted == 1 { FirstUse::Yes } else { FirstUse::No })
}

#[async_trait]
impl Admission for SqliteStore {
    async fn admit(&self, bucket: &Bucket, rate: Rate, now: Timestamp) -> Result<Admit, StoreError> {
        let bucket = bucket.to_string();
        self.run(move |conn| admit(conn, &bucket, rate, now)).await
    }

    async fn use_once(&self, signature: &str, until: Timestamp, now: Timestamp) -> Result<FirstUse, StoreError> {
        let signature = signature.to_owned();
        self.run(move |conn| use_once(conn, &signature, until, now)).await
    }
}

#[async_trait]
impl Tenancy for SqliteStore {
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let (id, name, created_at, doc) = (
            org.id.to_string(),
            org.name.clone(),
            text(&org.created_at),
            encode("organization", org)?,
        );
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO organizations (id, name, created_at, doc) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, created_at, doc],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn get_organization(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            document(
                conn,
                "organization",
                "SELECT doc FROM organizations WHERE id = ?1",
                params![id],
            )
        })
        .await
    }

    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let (id, name, doc) = (org.id.to_string(), org.name.clone(), encode("organization", org)?);
        self.run(move |conn| {
            match conn
                .execute(
                    "UPDATE organizations SET name = ?1, doc = ?2 WHERE id = ?3",
                    params![name, doc, id],
                )
                .map_err(engine)?
            {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let id = key.id.clone();
        let org_id = key.org_id.to_string();
        let mode = key.mode.as_str();
        let created_at = text(&key.created_at);
        let revoked_at = key.revoked_at.as_ref().map(text);
        let doc = encode("API key", key)?;
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (id, org_id, mode, created_at, revoked_at, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, org_id, mode, created_at, revoked_at, doc],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }

    async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKey>, StoreError> {
        let org = org.to_string();
        self.read(move |conn| {
            documents(
                conn,
                "API key",
                "SELECT doc FROM api_keys WHERE org_id = ?1 ORDER BY created_at, id",
                params![org],
            )
        })
        .await
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let (id, revoked_at, doc) = (
            key.id.clone(),
            key.revoked_at.as_ref().map(text),
            encode("API key", key)?,
        );
        self.run(move |conn| {
            match conn
                .execute(
                    "UPDATE api_keys SET revoked_at = ?1, doc = ?2 WHERE id = ?3",
                    params![revoked_at, doc, id],
                )
                .map_err(engine)?
            {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
        let id = key_id.to_owned();
        self.read(move |conn| document(conn, "API key", "SELECT doc FROM api_keys WHERE id = ?1", params![id]))
            .await
    }
}

/// Configurations, workflow definitions and webhook endpoints, each kind
/// in its own table.
#[async_trait]
impl<D: VersionedRecord> VersionedRecords<D> for SqliteStore {
    async fn insert(&self, document: &D) -> Result<(), StoreError> {
        let row = Versioned::of(document)?;
        self.run(move |conn| row.create(conn)).await
    }

    async fn update(&self, document: &D) -> Result<(), StoreError> {
        let row = Versioned::of(document)?;
        self.run(move |conn| row.update(conn)).await
    }

    async fn get(&self, tenant: &Tenant, key: &D::Key) -> Result<Option<D>, StoreError> {
        let (owner, key) = (Owner::of(tenant), key.to_string());
        self.read(move |conn| get_versioned(conn, Table::of(D::KIND), D::KIND.noun(), &owner, &key))
            .await
    }

    async fn list(&self, tenant: &Tenant) -> Result<Vec<D>, StoreError> {
        let owner = Owner::of(tenant);
        self.read(move |conn| list_versioned(conn, Table::of(D::KIND), D::KIND.noun(), &owner))
            .await
    }

    async fn delete(&self, tenant: &Tenant, key: &D::Key) -> Result<(), StoreError> {
        let (owner, key) = (Owner::of(tenant), key.to_string());
        self.run(move |conn| delete_versioned(conn, Table::of(D::KIND), &owner, &key))
            .await
    }
}

#[async_trait]
impl Deliveries for SqliteStore {
    async fn insert(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        let row = Versioned::of_webhook_delivery(delivery)?;
        let endpoint_id = delivery.endpoint_id.to_string();
        self.run(move |conn| insert_delivery(conn, row, endpoint_id)).await
    }

    async fn update(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        // The endpoint column is left as inserted: a delivery never moves to
        // another endpoint.
        let row = Versioned::of_webhook_delivery(delivery)?;
        self.run(move |conn| row.update(conn)).await
    }

    async fn get(&self, tenant: &Tenant, id: &WebhookDeliveryId) -> Result<Option<WebhookDelivery>, StoreError> {
        let (owner, id) = (Owner::of(tenant), id.to_string());
        self.read(move |conn| get_versioned(conn, WEBHOOK_DELIVERIES, "webhook delivery", &owner, &id))
            .await
    }

    async fn list(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError> {
        let (owner, endpoint, query) = (Owner::of(tenant), endpoint.to_string(), query.clone());
        self.read(move |conn| list_deliveries(conn, owner, endpoint, query))
            .await
    }
}

#[async_trait]
impl Sessions for SqliteStore {
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError> {
        let session = SessionRow::of(transition)?;
        let events = event_rows(transition)?;
        self.run(move |conn| commit(conn, session, events)).await
    }

    async fn get(&self, tenant: &Tenant, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let (owner, id) = (Owner::of(tenant), id.to_string());
        self.read(move |conn| {
            document(
                conn,
                "session",
                "SELECT doc FROM sessions WHERE org_id = ?1 AND mode = ?2 AND id = ?3",
                params![owner.org_id, owner.mode, id],
            )
        })
        .await
    }

    async fn find_by_token_hash(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let hash = token_hash.to_owned();
        self.read(move |conn| {
            document(
                conn,
                "session",
                "SELECT doc FROM sessions WHERE token_hash = ?1",
                params![hash],
            )
        })
        .await
    }

    async fn list(&self, tenant: &Tenant, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        let (owner, query) = (Owner::of(tenant), query.clone());
        self.read(move |conn| list_sessions(conn, owner, query)).await
    }

    async fn list_events(&self, tenant: &Tenant, id: &SessionId) -> Result<Vec<Event>, StoreError> {
        let (owner, id) = (Owner::of(tenant), id.to_string());
        self.read(move |conn| {
            documents(
                conn,
                "event",
                "SELECT doc FROM events WHERE org_id = ?1 AND mode = ?2 AND session_id = ?3 \
                 ORDER BY version, sequence",
                params![owner.org_id, owner.mode, id],
            )
        })
        .await
    }

    async fn get_with_events(
        &self,
        tenant: &Tenant,
        id: &SessionId,
    ) -> Result<Option<(Session, Vec<Event>)>, StoreError> {
        let (owner, id) = (Owner::of(tenant), id.to_string());
        self.read(move |conn| {
            // One read transaction, so the history matches the session.
            let tx = conn.transaction().map_err(engine)?;
            let Some(session) = document(
                &tx,
                "session",
                "SELECT doc FROM sessions WHERE org_id = ?1 AND mode = ?2 AND id = ?3",
                params![owner.org_id, owner.mode, id],
            )?
            else {
                return Ok(None);
            };
            let events = documents(
                &tx,
                "event",
                "SELECT doc FROM events WHERE org_id = ?1 AND mode = ?2 AND session_id = ?3 \
                 ORDER BY version, sequence",
                params![owner.org_id, owner.mode, id],
            )?;
            Ok(Some((session, events)))
        })
        .await
    }

    async fn due(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let now = text(&now);
        self.read(move |conn| {
            documents(
                conn,
                "session",
                "SELECT doc FROM sessions WHERE status IN ('created', 'in_progress') AND expires_at <= ?1 \
                 ORDER BY expires_at, id LIMIT ?2",
                params![now, i64::from(limit)],
            )
        })
        .await
    }
}

#[async_trait]
impl IdempotencyRecords for SqliteStore {
    async fn claim_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyClaim, StoreError> {
        let (owner, key, fingerprint) = (Owner::of(tenant), key.to_owned(), fingerprint.to_owned());
        self.run(move |conn| claim(conn, owner, key, fingerprint, now)).await
    }

    async fn complete_idempotency_key(&self, answer: &Answer<'_>) -> Result<(), StoreError> {
        let (owner, key, claimed_at) = (
            Owner::of(answer.tenant),
            answer.key.to_owned(),
            text(&answer.claimed_at),
        );
        let response = encode("idempotent response", answer.response)?;
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE idempotency SET state = 'completed', response = ?1 \
                     WHERE org_id = ?2 AND mode = ?3 AND key = ?4 AND state = 'in_progress' AND created_at = ?5",
                    params![response, owner.org_id, owner.mode, key, claimed_at],
                )
                .map_err(engine)?;
            match changed {
                0 => Err(StoreError::NotFound),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn create_answered(&self, creation: Creation<'_>, answer: &Answer<'_>) -> Result<(), StoreError> {
        let row = Row::of(creation)?;
        let answer = AnswerRow {
            owner: Owner::of(answer.tenant),
            key: answer.key.to_owned(),
            claimed_at: text(&answer.claimed_at),
            response: encode("idempotent response", answer.response)?,
        };
        self.run(move |conn| create_answered(conn, row, answer)).await
    }

    async fn release_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        claimed_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (owner, key, claimed_at) = (Owner::of(tenant), key.to_owned(), text(&claimed_at));
        // A completed record stays: releasing it would let a retry run the
        // request a second time.
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM idempotency WHERE org_id = ?1 AND mode = ?2 AND key = ?3 \
                 AND state = 'in_progress' AND created_at = ?4",
                params![owner.org_id, owner.mode, key, claimed_at],
            )
            .map_err(engine)?;
            Ok(())
        })
        .await
    }
}

/// Read through the partial index `events_unpublished`, so a poll costs the
/// unpublished events, not the whole history.
const UNPUBLISHED_EVENTS: &str = "SELECT doc FROM events WHERE published_at IS NULL ORDER BY occurred_at, id LIMIT ?1";

/// The events table is the outbox: `commit` writes each event with its
/// session, unpublished, and the publisher marks it once the bus has it.
#[async_trait]
impl Outbox for SqliteStore {
    async fn unpublished_events(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.run(move |conn| documents(conn, "event", UNPUBLISHED_EVENTS, params![i64::from(limit)]))
            .await
    }

    async fn mark_published(&self, ids: &[EventId], at: Timestamp) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let at = text(&at);
        self.run(move |conn| mark_published(conn, &ids, &at)).await
    }
}

/// Keeps the first publication's time: an event published twice (at least
/// once delivery) was first out at the earlier instant.
fn mark_published(conn: &mut Connection, ids: &[String], at: &str) -> Result<(), StoreError> {
    let tx = write(conn)?;
    {
        let mut mark = tx
            .prepare_cached("UPDATE events SET published_at = ?1 WHERE id = ?2 AND published_at IS NULL")
            .map_err(engine)?;
        for id in ids {
            mark.execute(params![at, id]).map_err(engine)?;
        }
    }
    tx.commit().map_err(engine)
}

#[cfg(test)]
mod tests {
    use korala_domain::ports::Store;

    use super::*;

    #[test]
    fn timestamps_sort_as_text() {
        use chrono::TimeZone;
        let a = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::seconds(1);
        assert_eq!(text(&a), "2026-01-02T03:04:05.000000Z");
        assert!(text(&a) < text(&b) && text(&b) < text(&c));
    }

    #[test]
    fn reopening_a_file_keeps_its_schema() {
        let dir = std::env::temp_dir().join(format!("korala-sqlite-unit-{}", std::process::id()));
        let path = dir.join("nested").join("store.db");
        drop(SqliteStore::open(&path).unwrap());
        let store = SqliteStore::open(&path).unwrap();
        let conn = store.conn.lock().unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(conn);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unpublished_events_are_read_through_their_index() {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn.lock().unwrap();
        let mut explain = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {UNPUBLISHED_EVENTS}"))
            .unwrap();
        let plan: Vec<String> = explain
            .query_map([1], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("events_unpublished"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "the index gives the order: {plan}");
    }

    /// A database made by an earlier build gains the tables added since, and
    /// keeps what it held.
    #[tokio::test]
    async fn an_older_database_takes_only_the_migrations_it_lacks() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO organizations (id, name, created_at, doc) VALUES ('org_old', 'Old', ?1, ?2)",
            params![
                "2026-01-01T00:00:00.000000Z",
                r#"{"id":"org_old","name":"Old","createdAt":"2026-01-01T00:00:00Z"}"#
            ],
        )
        .unwrap();
        let store = SqliteStore::prepare(conn, None).unwrap();
        let org = korala_domain::ids::OrgId::parse("org_old").unwrap();
        let tenant = Tenant::new(org, korala_domain::tenancy::Mode::Live);
        assert_eq!(store.endpoints().list(&tenant).await, Ok(vec![]));
        let conn = store.conn.lock().unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let kept: String = conn
            .query_row("SELECT name FROM organizations WHERE id = 'org_old'", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(kept, "Old");
    }
}
