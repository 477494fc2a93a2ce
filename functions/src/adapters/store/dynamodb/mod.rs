//! The DynamoDB store, for the Lambda deployment: one table for every tenant
//! and every kind of record (the layout is in the README's "DynamoDB table
//! design" and in [`keys`]; the table itself in [`table`]).
//!
//! It keeps the embedded SQLite store's semantics, which the conformance
//! suite checks on both. Where DynamoDB differs:
//! - every guarded write is one conditional request, and the outcome of a
//!   refused one is read from the item DynamoDB returns with the refusal
//!   (`ReturnValuesOnConditionCheckFailure`), never from a second read;
//! - single items are read strongly consistent; the listings go through
//!   global secondary indexes, which are eventually consistent, so a session
//!   committed a moment ago may be missing from a listing or the token lookup
//!   may return its previous version (a write based on it then conflicts and
//!   is retried by the handler, as any lost race is);
//! - the listing indexes keep each session's summary only, the token index
//!   the whole session, and the sweep's index the keys only: the sweep reads
//!   the due sessions themselves from the table, consistently;
//! - webhook deliveries expire 30 days after their last change (the table's
//!   TTL, [`items::DELIVERY_RETENTION_DAYS`]), where the embedded store keeps
//!   them; an endpoint's log is read from the `by_org` index, so a delivery
//!   written a moment ago may be missing from it;
//! - the SDK retries throttling, timeouts and 5xx answers; a write whose
//!   answer was lost is recognised on retry (the `writeId` attribute, the
//!   transaction's client token), so a retry does not report its own write as a
//!   conflict.

mod admission;
mod calls;
mod items;
pub mod keys;
pub mod table;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, KeysAndAttributes, Put, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use korala_domain::Timestamp;
use korala_domain::delivery::WebhookDelivery;
use korala_domain::events::Event;
use korala_domain::ids::{OrgId, SessionId, WebhookDeliveryId, WebhookEndpointId};
use korala_domain::limits::{Admit, Bucket, Quota, Rate};
use korala_domain::ports::{
    Admission, Deliveries, DeliveryPage, DeliveryQuery, FirstUse, Position, SessionPage, SessionQuery, Sessions,
    StoreError, Tenancy, VersionedRecord, VersionedRecords,
};
use korala_domain::session::Session;
use korala_domain::tenancy::{ApiKey, Organization, Tenant};
use korala_domain::transition::Transition;
use serde::de::DeserializeOwned;

pub use calls::{Call, CallLog};
use calls::{Consumed, failure};
/// The attribute of an event item that holds the event (the stream publisher reads it).
pub use items::DOC as EVENT_DOCUMENT;
use items::{DOC, Item, ORG, VERSION, WRITE_ID, decode, decode_all, encode, n, s, string};
use table::{BY_ORG, BY_STATUS, BY_TOKEN, BY_USER, DUE, Index, SORT_KEY};
pub use table::{cloudformation_yaml, create_table, delete_table};

use crate::web::idempotency::records::{
    Answer, CLAIM_TIMEOUT_SECONDS, Creation, IdempotencyClaim, IdempotencyRecords, RETENTION_HOURS, StoredResponse,
};

/// The environment variable the template sets to the table's name.
pub const TABLE_ENV: &str = "SESSIONS_TABLE";

/// DynamoDB refuses larger transactions.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// How often a commit is re-sent when DynamoDB cancels it because another
/// transaction held the session at that moment: the retry then either wins
/// or sees the other writer's version and reports `Conflict`.
const TRANSACTION_CONFLICT_RETRIES: u32 = 8;
/// DynamoDB takes at most this many keys in one `BatchGetItem`.
const MAX_BATCH_GET_KEYS: usize = 100;
/// How often the keys a `BatchGetItem` left unprocessed (a throttled
/// partition, an answer over 16 MB) are asked for again, after a growing
/// pause, before the read fails as `Unavailable`.
const UNPROCESSED_KEYS_RETRIES: u32 = 8;
/// With a filter, a query's `Limit` counts the items read rather than the
/// ones returned; read at least this many per request so a sparse filter
/// does not take one request per match.
const FILTERED_PAGE: usize = 25;

// Idempotency record attributes.
const FINGERPRINT: &str = "fingerprint";
const STATE: &str = "state";
const RESPONSE: &str = "response";
const CREATED_AT: &str = "createdAt";
const IN_PROGRESS: &str = "in_progress";
/// A tenant's count of one kind of record (its quota's counter item).
const COUNT: &str = "count";
const COMPLETED: &str = "completed";

/// The `Store` on DynamoDB. Cloning shares the client (and its connection
/// pool), so build one per process and clone it into each handler.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    calls: Option<Arc<CallLog>>,
    /// What this process last saw of each rate bucket (see [`admission`]).
    buckets: Arc<admission::Seen>,
}

/// How a conditional put ended: written (possibly by an earlier attempt of
/// the same request), or refused, with the item that refused it (`None` when
/// there is no item under the key).
enum Written {
    Yes,
    Refused(Option<Item>),
}

fn names(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> Option<HashMap<String, AttributeValue>> {
    (!pairs.is_empty()).then(|| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn built<T>(what: &str, result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Corrupt(format!("cannot build the {what} request: {e}")))
}

/// `attribute_not_exists(PK)`: the create-only condition.
const ABSENT: &str = "attribute_not_exists(PK)";

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
            calls: None,
            buckets: Arc::default(),
        }
    }

    /// A store on the environment's account and region (or the endpoint in
    /// `AWS_ENDPOINT_URL_DYNAMODB`). The timeouts keep a request inside the
    /// functions' 10 s budget with its retries: three attempts of at most
    /// 2 s each, 5 s in all.
    pub async fn connect(table: &str) -> DynamoStore {
        Self::from_config(&crate::adapters::aws::sdk_config().await, table)
    }

    /// A store whose client shares an already loaded configuration.
    pub fn from_config(config: &aws_config::SdkConfig, table: &str) -> DynamoStore {
        Self::new(Client::new(config), table)
    }

    /// Records every request this store (and its clones) sends from now on.
    pub fn with_call_log(mut self, log: Arc<CallLog>) -> Self {
        self.calls = Some(log);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Every request goes through here, so the call log sees all of them.
    async fn send<T: Consumed, E>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, SdkError<E>> {
        let result = request.await;
        if let Some(log) = &self.calls {
            log.record(operation, result.as_ref().map(Consumed::consumed).unwrap_or(0.0));
        }
        result
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let request = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send();
        let output = self
            .send("GetItem", request)
            .await
            .map_err(|e| failure("GetItem", &e.into_service_error()))?;
        Ok(output.item)
    }

    /// The items under `keys`, read consistently in as few `BatchGetItem`
    /// requests as DynamoDB allows, in no particular order; a key without an
    /// item is left out.
    async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let wanted = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build();
                let request = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), built("batch read", wanted)?)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send();
                let output = self
                    .send("BatchGetItem", request)
                    .await
                    .map_err(|e| failure("BatchGetItem", &e.into_service_error()))?;
                found.extend(
                    output
                        .responses
                        .and_then(|mut r| r.remove(self.table()))
                        .unwrap_or_default(),
                );
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table()))
                    .map(|unprocessed| unprocessed.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= UNPROCESSED_KEYS_RETRIES {
                    return Err(StoreError::Unavailable(format!(
                        "DynamoDB left {} keys of a BatchGetItem unprocessed after {attempt} retries",
                        pending.len()
                    )));
                }
                attempt += 1;
                let pause = rand::random_range(25..=50) * 2_u64.pow(attempt.min(4));
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
        Ok(found)
    }

    /// Runs `request` page by page from `start` until it has `enough` items
    /// or reaches the end. `filtered` says the request has a filter, so its
    /// `Limit` bounds items read rather than items returned.
    async fn query(
        &self,
        request: QueryFluentBuilder,
        mut start: Option<Item>,
        enough: usize,
        filtered: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        loop {
            let remaining = enough.saturating_sub(found.len());
            let limit = match (enough, filtered) {
                (usize::MAX, _) => None,
                (_, true) => Some(remaining.max(FILTERED_PAGE)),
                (_, false) => Some(remaining),
            };
            let page = request
                .clone()
                .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send();
            let output = self
                .send("Query", page)
                .await
                .map_err(|e| failure("Query", &e.into_service_error()))?;
            found.extend(output.items.unwrap_or_default());
            if found.len() >= enough {
                return Ok(found);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    fn query_on(&self, index: Option<Index>) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table())
            .set_index_name(index.map(|i| i.name.to_owned()))
    }

    /// One conditional `PutItem`, stamped with a fresh write id so that a
    /// refusal caused by this very request's earlier attempt counts as
    /// written.
    async fn put(
        &self,
        item: Item,
        condition: &str,
        attribute_names: &[(&str, &str)],
        attribute_values: Vec<(&str, AttributeValue)>,
    ) -> Result<Written, StoreError> {
        self.put_as("PutItem", item, condition, attribute_names, attribute_values)
            .await
    }

    /// [`put`](Self::put), recorded in the call log as `label`.
    async fn put_as(
        &self,
        label: &'static str,
        mut item: Item,
        condition: &str,
        attribute_names: &[(&str, &str)],
        attribute_values: Vec<(&str, AttributeValue)>,
    ) -> Result<Written, StoreError> {
        let write_id = items::token();
        item.insert(WRITE_ID.to_owned(), s(&write_id));
        let request = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names(attribute_names))
            .set_expression_attribute_values(values(attribute_values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send();
        match self.send(label, request).await {
            Ok(_) => Ok(Written::Yes),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(refused) => {
                    let old = refused.item.filter(|item| !item.is_empty());
                    if old.as_ref().and_then(|item| string(item, WRITE_ID)) == Some(write_id.as_str()) {
                        Ok(Written::Yes)
                    } else {
                        Ok(Written::Refused(old))
                    }
                }
                other => Err(failure("PutItem", &other)),
            },
        }
    }

    /// A conditional put of a new item: `AlreadyExists` if its key is taken.
    async fn insert_item(&self, item: Item) -> Result<(), StoreError> {
        match self.put(item, ABSENT, &[], vec![]).await? {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::AlreadyExists),
        }
    }

    // Configurations, workflow definitions and webhook endpoints: a tenant's
    // document under `ORG#{org}#{mode}` / `{prefix}{slug or id}`, replaced
    // version by version.

    /// Replaces the item only if it still holds the version before this one;
    /// the refused item tells a lost race (`Conflict`) from a missing one
    /// (`NotFound`) without a second read.
    async fn update_versioned(&self, item: Item, version: u64) -> Result<(), StoreError> {
        // Version 0 has no predecessor: -1 matches nothing, as it should.
        let expected = i128::from(version) - 1;
        let outcome = self
            .put(
                item,
                "#version = :expected",
                &[("#version", VERSION)],
                vec![(":expected", n(expected))],
            )
            .await?;
        match outcome {
            Written::Yes => Ok(()),
            Written::Refused(Some(_)) => Err(StoreError::Conflict),
            Written::Refused(None) => Err(StoreError::NotFound),
        }
    }

    async fn get_versioned<T: DeserializeOwned>(
        &self,
        what: &str,
        tenant: &Tenant,
        sort_key: String,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(items::key(keys::tenant_pk(tenant), sort_key))
            .await?
            .map(|item| decode(what, &item))
            .transpose()
    }

    async fn list_versioned<T: DeserializeOwned>(
        &self,
        what: &str,
        tenant: &Tenant,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let request = self
            .query_on(None)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::tenant_pk(tenant)))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        let found = self.query(request, None, usize::MAX, false).await?;
        decode_all(what, &found)
    }

    /// The write that keeps a tenant's count of one kind of record, beside
    /// the records: one more (refused at the quota) or one fewer.
    fn count_write(&self, tenant: &Tenant, quota: Quota, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(items::key(keys::tenant_pk(tenant), keys::count_sk(quota))))
            .update_expression("ADD #count :delta")
            .expression_attribute_names("#count", COUNT)
            .expression_attribute_values(":delta", n(delta));
        let update = if delta > 0 {
            update
                .condition_expression("attribute_not_exists(#count) OR #count < :max")
                .expression_attribute_values(":max", n(quota.max()))
        } else {
            update
        };
        Ok(TransactWriteItem::builder()
            .update(built("count", update.build())?)
            .build())
    }

    /// A new record, counted against its tenant's quota in the same
    /// transaction: `AlreadyExists` for a taken key, `LimitReached` at the
    /// quota; either way nothing is written. `answer` completes an
    /// idempotency key in it too.
    async fn insert_counted(
        &self,
        item: Item,
        tenant: &Tenant,
        quota: Quota,
        answer: Option<TransactWriteItem>,
    ) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression(ABSENT)
            .build();
        let mut writes = vec![
            TransactWriteItem::builder().put(built("create", put)?).build(),
            self.count_write(tenant, quota, 1)?,
        ];
        let answered = answer.is_some();
        writes.extend(answer);
        let Transacted::Cancelled(reasons) = self.transact(writes).await? else {
            return Ok(());
        };
        let refused = |i: usize| reasons.get(i).is_some_and(|r| code(r) == "ConditionalCheckFailed");
        Err(if refused(0) {
            StoreError::AlreadyExists
        } else if refused(1) {
            StoreError::LimitReached(quota)
        } else if answered && refused(2) {
            StoreError::Conflict
        } else {
            let name = |i: usize| {
                match i {
                    0 => "the new item",
                    1 => "its tenant's count",
                    _ => "the idempotency answer",
                }
                .to_owned()
            };
            StoreError::Unavailable(format!("DynamoDB cancelled a create: {}", described(&reasons, name)))
        })
    }

    /// Deletes an item that must exist, and counts it out of its tenant's
    /// quota, in one transaction: its client token makes the SDK's retry of
    /// a delete whose answer was lost succeed again, where a retried
    /// `DeleteItem` would find the item gone and report `NotFound` for its
    /// own delete.
    async fn delete_versioned(&self, tenant: &Tenant, sort_key: String, quota: Quota) -> Result<(), StoreError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table())
            .set_key(Some(items::key(keys::tenant_pk(tenant), sort_key)))
            .condition_expression("attribute_exists(PK)");
        let writes = vec![
            TransactWriteItem::builder()
                .delete(built("delete", delete.build())?)
                .build(),
            self.count_write(tenant, quota, -1)?,
        ];
        match self.transact(writes).await? {
            Transacted::Yes => Ok(()),
            Transacted::Cancelled(reasons) if reasons.first().is_some_and(|r| code(r) == "ConditionalCheckFailed") => {
                Err(StoreError::NotFound)
            }
            Transacted::Cancelled(reasons) => Err(StoreError::Unavailable(format!(
                "DynamoDB cancelled a delete: {}",
                described(&reasons, |i| if i == 0 { "the item" } else { "its tenant's count" }
                    .to_owned())
            ))),
        }
    }

    /// The writes of a session commit: the session, conditional on being new
    /// or on its version, and each event, refusing to overwrite one. `more`
    /// items will join them in the transaction.
    fn session_writes(&self, transition: &Transition, more: usize) -> Result<Vec<TransactWriteItem>, StoreError> {
        let session = &transition.session;
        let count = 1 + transition.events.len() + more;
        if count > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::Corrupt(format!(
                "a transition of session {} writes {count} items, more than the {MAX_TRANSACTION_ITEMS} a \
                 DynamoDB transaction holds",
                session.id
            )));
        }
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(items::session(session)?));
        let put = match transition.expected_version() {
            None => put.condition_expression(ABSENT),
            // The key names the tenant: no other tenant's session can match.
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", VERSION)
                .expression_attribute_values(":expected", n(version)),
        };
        let mut writes = vec![TransactWriteItem::builder().put(built("session", put.build())?).build()];
        for event in &transition.events {
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(items::event(event)?))
                .condition_expression(ABSENT);
            writes.push(TransactWriteItem::builder().put(built("event", put.build())?).build());
        }
        Ok(writes)
    }

    /// Completes the claimed key with its answer, if the claim is still the
    /// one made at `claimed_at`.
    fn answer_write(&self, answer: &Answer<'_>) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(items::key(
                keys::idempotency_pk(answer.tenant, answer.key),
                keys::IDEMPOTENCY_SK,
            )))
            .update_expression("SET #state = :completed, #response = :response")
            .condition_expression("#state = :in_progress AND #createdAt = :claimed")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#response", RESPONSE)
            .expression_attribute_names("#createdAt", CREATED_AT)
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":claimed", s(keys::text(&answer.claimed_at)))
            .expression_attribute_values(":response", s(encode("idempotent response", answer.response)?))
            .build();
        Ok(TransactWriteItem::builder()
            .update(built("idempotency answer", update)?)
            .build())
    }

    /// Sends one transaction. DynamoDB cancels it when another transaction
    /// held one of its items at that moment; it is sent again then, and the
    /// retry either lands or meets the other writer's result in a condition.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<Transacted, StoreError> {
        let mut attempt = 0;
        loop {
            // A fresh token per attempt of ours: the SDK's own retries resend
            // it, so a transaction that landed before its answer was lost
            // succeeds again instead of conflicting with itself; a second
            // commit of the same writes is a new request and conflicts.
            let request = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .client_request_token(items::token())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send();
            let error = match self.send("TransactWriteItems", request).await {
                Ok(_) => return Ok(Transacted::Yes),
                Err(e) => e.into_service_error(),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
                return Err(failure("TransactWriteItems", &error));
            };
            let reasons = cancelled.cancellation_reasons();
            let refused = reasons.iter().any(|r| code(r) == "ConditionalCheckFailed");
            let contended = reasons.iter().any(|r| code(r) == "TransactionConflict");
            if !refused && contended && attempt < TRANSACTION_CONFLICT_RETRIES {
                attempt += 1;
                let pause = rand::random_range(10..=40) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
            return Ok(Transacted::Cancelled(reasons.to_vec()));
        }
    }

    /// The sweep's candidates in one shard, earliest deadline first.
    async fn due_in_shard(&self, shard: u32, upto: String, limit: usize) -> Result<Vec<Item>, StoreError> {
        let request = self
            .query_on(Some(DUE))
            .key_condition_expression("#pk = :pk AND #sk <= :upto")
            .expression_attribute_names("#pk", DUE.partition_key)
            .expression_attribute_names("#sk", DUE.sort_key.unwrap_or(SORT_KEY))
            .expression_attribute_values(":pk", s(keys::due_pk(shard)))
            .expression_attribute_values(":upto", s(upto))
            .scan_index_forward(true);
        self.query(request, None, limit, false).await
    }
}

/// A key's item: its own partition (authentication reads it by id), and a
/// place among its organisation's keys in `by_org`.
fn api_key_item(key: &ApiKey) -> Result<Item, StoreError> {
    let mut item = items::key(keys::key_pk(&key.id), keys::KEY_SK);
    item.insert(ORG.to_owned(), s(key.org_id.as_str()));
    item.insert(DOC.to_owned(), s(encode("API key", key)?));
    item.insert(BY_ORG.partition_key.to_owned(), s(keys::org_keys_pk(&key.org_id)));
    if let Some(sort_key) = BY_ORG.sort_key {
        item.insert(sort_key.to_owned(), s(key.id.as_str()));
    }
    Ok(item)
}

/// A document under its tenant's partition, its kind's prefix before its key.
fn document_item<D: VersionedRecord>(document: &D) -> Result<Item, StoreError> {
    let mut item = items::key(
        keys::tenant_pk(document.tenant()),
        keys::document_sk(D::KIND, document.key()),
    );
    item.insert(VERSION.to_owned(), n(document.version()));
    item.insert(DOC.to_owned(), s(encode(D::KIND.noun(), document)?));
    Ok(item)
}

/// A document to create, with what its creation is counted against.
fn counted<D: VersionedRecord>(document: &D) -> Result<(Item, &Tenant, Quota), StoreError> {
    Ok((document_item(document)?, document.tenant(), D::KIND.quota()))
}

/// How a transaction ended: written, or cancelled with each item's reason
/// (code `None` for the items that were not the cause).
enum Transacted {
    Yes,
    Cancelled(Vec<CancellationReason>),
}

fn code(reason: &CancellationReason) -> &str {
    reason.code().unwrap_or("None")
}

/// Why a session commit was cancelled, as the store reports it. Its items
/// are the session, its events, and, when `answered`, the idempotency
/// answer last.
fn session_refusal(transition: &Transition, reasons: &[CancellationReason], answered: bool) -> StoreError {
    let session = &transition.session;
    let answer = answered.then(|| reasons.len().saturating_sub(1));
    let refused = |i: usize| reasons.get(i).is_some_and(|r| code(r) == "ConditionalCheckFailed");
    if refused(0) {
        return match transition.expected_version() {
            None => StoreError::AlreadyExists,
            Some(_) => StoreError::Conflict,
        };
    }
    if answer.is_some_and(refused) {
        return StoreError::Conflict;
    }
    let describe = |i: usize| match i {
        0 => "the session".to_owned(),
        i if Some(i) == answer => "the idempotency answer".to_owned(),
        i => format!("event {}", i - 1),
    };
    if (1..reasons.len()).any(refused) {
        return StoreError::Corrupt(format!(
            "session {} at version {} already has events of the version being committed: {}",
            session.id,
            session.version,
            described(reasons, describe)
        ));
    }
    StoreError::Unavailable(format!(
        "DynamoDB cancelled the commit of session {}: {}",
        session.id,
        described(reasons, describe)
    ))
}

/// The reasons of the items that caused a cancellation, each named.
fn described(reasons: &[CancellationReason], name: impl Fn(usize) -> String) -> String {
    reasons
        .iter()
        .enumerate()
        .filter(|(_, r)| code(r) != "None")
        .map(|(i, r)| {
            format!(
                "{}: {}{}",
                name(i),
                code(r),
                r.message().map(|m| format!(" ({m})")).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an existing idempotency record means for a new claim, when the
/// record is neither expired nor abandoned.
fn existing_claim(key: &str, fingerprint: &str, old: &Item) -> Result<IdempotencyClaim, StoreError> {
    let same_request = string(old, FINGERPRINT) == Some(fingerprint);
    match string(old, STATE) {
        Some(COMPLETED) if !same_request => Ok(IdempotencyClaim::Mismatch),
        Some(COMPLETED) => {
            let response = string(old, RESPONSE)
                .ok_or_else(|| StoreError::Corrupt(format!("idempotency key {key} is completed without a response")))?;
            serde_json::from_str::<StoredResponse>(response)
                .map(IdempotencyClaim::Completed)
                .map_err(|e| StoreError::Corrupt(format!("the stored idempotent response is unreadable: {e}")))
        }
        Some(IN_PROGRESS) if same_request => Ok(IdempotencyClaim::InProgress),
        Some(IN_PROGRESS) => Ok(IdempotencyClaim::Mismatch),
        other => Err(StoreError::Corrupt(format!(
            "idempotency key {key} has the unknown state {}",
            other.unwrap_or("(none)")
        ))),
    }
}

#[async_trait]
impl Admission for DynamoStore {
    async fn admit(&self, bucket: &Bucket, rate: Rate, now: Timestamp) -> Result<Admit, StoreError> {
        self.admit_request(bucket, rate, now).await
    }

    async fn use_once(&self, signature: &str, until: Timestamp, now: Timestamp) -> Result<FirstUse, StoreError> {
        self.use_signature_once(signature, until, now).await
    }
}

#[async_trait]
impl Tenancy for DynamoStore {
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let mut item = items::key(keys::org_pk(&org.id), keys::ORG_SK);
        item.insert(DOC.to_owned(), s(encode("organization", org)?));
        self.insert_item(item).await
    }

    async fn get_organization(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        self.get_item(items::key(keys::org_pk(id), keys::ORG_SK))
            .await?
            .map(|item| decode("organization", &item))
            .transpose()
    }

    async fn update_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let mut item = items::key(keys::org_pk(&org.id), keys::ORG_SK);
        item.insert(DOC.to_owned(), s(encode("organization", org)?));
        match self.put(item, "attribute_exists(PK)", &[], vec![]).await? {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::NotFound),
        }
    }

    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.insert_item(api_key_item(key)?).await
    }

    /// One query on the organisation's keys in `by_org` (keys only there:
    /// the sealed secrets stay in the table), then the keys themselves.
    async fn list_api_keys(&self, org: &OrgId) -> Result<Vec<ApiKey>, StoreError> {
        let request = self
            .query_on(Some(BY_ORG))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", BY_ORG.partition_key)
            .expression_attribute_values(":pk", s(keys::org_keys_pk(org)));
        let listed = self.query(request, None, usize::MAX, false).await?;
        let table_keys = listed.iter().map(items::table_key).collect::<Result<Vec<_>, _>>()?;
        let mut keys: Vec<ApiKey> = decode_all("API key", &self.get_many(table_keys).await?)?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        match self
            .put(api_key_item(key)?, "attribute_exists(PK)", &[], vec![])
            .await?
        {
            Written::Yes => Ok(()),
            Written::Refused(_) => Err(StoreError::NotFound),
        }
    }

    async fn get_api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get_item(items::key(keys::key_pk(key_id), keys::KEY_SK))
            .await?
            .map(|item| decode("API key", &item))
            .transpose()
    }
}

/// One implementation for every kind of document: the kind gives the sort
/// key's prefix and the counter of the quota.
#[async_trait]
impl<D: VersionedRecord> VersionedRecords<D> for DynamoStore {
    async fn insert(&self, document: &D) -> Result<(), StoreError> {
        let quota = D::KIND.quota();
        self.insert_counted(document_item(document)?, document.tenant(), quota, None)
            .await
    }

    async fn update(&self, document: &D) -> Result<(), StoreError> {
        self.update_versioned(document_item(document)?, document.version())
            .await
    }

    async fn get(&self, tenant: &Tenant, key: &D::Key) -> Result<Option<D>, StoreError> {
        self.get_versioned(D::KIND.noun(), tenant, keys::document_sk(D::KIND, key))
            .await
    }

    /// The sort keys are the documents' keys after their kind's prefix, so
    /// the query's order is key order.
    async fn list(&self, tenant: &Tenant) -> Result<Vec<D>, StoreError> {
        self.list_versioned(D::KIND.noun(), tenant, keys::document_prefix(D::KIND))
            .await
    }

    async fn delete(&self, tenant: &Tenant, key: &D::Key) -> Result<(), StoreError> {
        self.delete_versioned(tenant, keys::document_sk(D::KIND, key), D::KIND.quota())
            .await
    }
}

// Webhook deliveries: `DELIVERY#{org}#{mode}#{id}` / `DELIVERY`, with the
// document in `summary` and a place in its endpoint's log in `by_org`.
#[async_trait]
impl Deliveries for DynamoStore {
    async fn insert(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        self.insert_item(items::delivery(delivery)?).await
    }

    /// One conditional put on the version, under the tenant's key; the
    /// refused item tells a lost race (`Conflict`) from a missing delivery
    /// (`NotFound`: another tenant's is under another key).
    async fn update(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        self.update_versioned(items::delivery(delivery)?, delivery.version)
            .await
    }

    async fn get(&self, tenant: &Tenant, id: &WebhookDeliveryId) -> Result<Option<WebhookDelivery>, StoreError> {
        self.get_item(items::key(keys::delivery_pk(tenant, id), keys::DELIVERY_SK))
            .await?
            .map(|item| items::decode_delivery(&item))
            .transpose()
    }

    /// One query on the endpoint's log in `by_org`, newest first, one
    /// delivery more than the page to tell whether another follows; the
    /// index keeps the whole delivery, so nothing else is read.
    async fn list(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        query: &DeliveryQuery,
    ) -> Result<DeliveryPage, StoreError> {
        let log = keys::delivery_log_pk(tenant, endpoint);
        let request = self
            .query_on(Some(BY_ORG))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", BY_ORG.partition_key)
            .expression_attribute_values(":pk", s(log.clone()))
            .scan_index_forward(false);
        let start = query
            .after
            .as_ref()
            .map(|id| items::delivery_start_key(&log, tenant, id));
        let limit = query.limit as usize;
        let found = self.query(request, start, limit.saturating_add(1), false).await?;
        let has_more = found.len() > limit;
        let page: Vec<Item> = found.into_iter().take(limit).collect();
        Ok(DeliveryPage {
            deliveries: items::decode_deliveries(&page)?,
            has_more,
        })
    }
}

#[async_trait]
impl Sessions for DynamoStore {
    /// One `TransactWriteItems`: the session, conditional on being new or on
    /// its version, and every event, each refusing to overwrite one.
    async fn commit(&self, transition: &Transition) -> Result<(), StoreError> {
        let writes = self.session_writes(transition, 0)?;
        match self.transact(writes).await? {
            Transacted::Yes => Ok(()),
            Transacted::Cancelled(reasons) => Err(session_refusal(transition, &reasons, false)),
        }
    }

    async fn get(&self, tenant: &Tenant, id: &SessionId) -> Result<Option<Session>, StoreError> {
        // The key names the tenant: another tenant's session is not there.
        self.get_item(items::key(keys::session_pk(tenant, id), keys::SESSION_SK))
            .await?
            .map(|item| decode("session", &item))
            .transpose()
    }

    async fn find_by_token_hash(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let request = self
            .query_on(Some(BY_TOKEN))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", BY_TOKEN.partition_key)
            .expression_attribute_values(":pk", s(keys::token_pk(token_hash)));
        // Two, to notice the duplicate an index cannot forbid.
        let found = self.query(request, None, 2, false).await?;
        match &found[..] {
            [] => Ok(None),
            [item] => decode("session", item).map(Some),
            _ => Err(StoreError::Corrupt(
                "two sessions carry the same access-token hash".to_owned(),
            )),
        }
    }

    /// Newest first from the index that matches the filters. A page number
    /// reads and drops every session of the pages before it; the cursor
    /// (`After`) starts right after its session, whatever the depth.
    async fn list(&self, tenant: &Tenant, query: &SessionQuery) -> Result<SessionPage, StoreError> {
        let (index, partition) = match (&query.external_user_id, query.status) {
            (Some(user), _) => (BY_USER, keys::user_pk(tenant, user)),
            (None, Some(status)) => (BY_STATUS, keys::status_pk(tenant, status)),
            (None, None) => (BY_ORG, keys::tenant_pk(tenant)),
        };
        let mut request = self
            .query_on(Some(index))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.partition_key)
            .expression_attribute_values(":pk", s(partition.clone()))
            .scan_index_forward(false);
        let filtered = query.external_user_id.is_some() && query.status.is_some();
        if let (true, Some(status)) = (filtered, query.status) {
            request = request
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", items::STATUS)
                .expression_attribute_values(":status", s(status.as_str()));
        }
        let limit = query.limit as usize;
        let (skip, start) = match &query.position {
            Position::Page(page) => ((((*page).max(1) - 1) as usize).saturating_mul(limit), None),
            Position::After(id) => (0, Some(items::session_start_key(index, &partition, tenant, id))),
        };
        // One session more than the page tells whether another follows.
        let wanted = skip.saturating_add(limit).saturating_add(1);
        let found = self.query(request, start, wanted, filtered).await?;
        let has_more = found.len() > skip.saturating_add(limit);
        let page: Vec<Item> = found.into_iter().skip(skip).take(limit).collect();
        Ok(SessionPage {
            sessions: items::decode_summaries(&page)?,
            has_more,
        })
    }

    /// One query on the session's partition, which is under the tenant: for
    /// another tenant's session it finds nothing, as for a missing one.
    async fn list_events(&self, tenant: &Tenant, id: &SessionId) -> Result<Vec<Event>, StoreError> {
        let request = self
            .query_on(None)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(keys::session_pk(tenant, id)))
            .expression_attribute_values(":prefix", s(keys::EVENT_PREFIX))
            .consistent_read(true);
        let found = self.query(request, None, usize::MAX, false).await?;
        decode_all("event", &found)
    }

    /// The session's partition holds the session and its history side by
    /// side: one consistent Query reads both (events sort before `SESSION`).
    async fn get_with_events(
        &self,
        tenant: &Tenant,
        id: &SessionId,
    ) -> Result<Option<(Session, Vec<Event>)>, StoreError> {
        let request = self
            .query_on(None)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::session_pk(tenant, id)))
            .consistent_read(true);
        let found = self.query(request, None, usize::MAX, false).await?;
        let (sessions, events): (Vec<Item>, Vec<Item>) = found
            .into_iter()
            .partition(|item| string(item, SORT_KEY) == Some(keys::SESSION_SK));
        let Some(session) = sessions.first() else {
            return Ok(None);
        };
        Ok(Some((decode("session", session)?, decode_all("event", &events)?)))
    }

    /// Every shard of the sparse, keys-only `due` index at once (each already
    /// in deadline order), merged and cut to `limit`; then the sessions
    /// themselves, read consistently with `BatchGetItem`, so the reads grow
    /// with the number of due sessions rather than with the table. A session
    /// that the index still lists but that has left the due set meanwhile
    /// (completed, expired) is dropped.
    async fn due(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let limit = limit as usize;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let upto = keys::due_upto(&now);
        let mut shards = tokio::task::JoinSet::new();
        for shard in 0..keys::DUE_SHARDS {
            let (store, upto) = (self.clone(), upto.clone());
            shards.spawn(async move { store.due_in_shard(shard, upto, limit).await });
        }
        let mut due = Vec::new();
        while let Some(joined) = shards.join_next().await {
            let found = joined.map_err(|e| StoreError::Unavailable(format!("a sweep query did not finish: {e}")))??;
            due.extend(found);
        }
        let due_key = DUE.sort_key.unwrap_or(SORT_KEY);
        due.sort_by(|a, b| string(a, due_key).cmp(&string(b, due_key)));
        due.truncate(limit);
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let keys = due.iter().map(items::table_key).collect::<Result<Vec<_>, _>>()?;
        let mut sessions: Vec<Session> = decode_all("session", &self.get_many(keys).await?)?;
        sessions.retain(|session| session.is_overdue(now));
        sessions.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        Ok(sessions)
    }
}

#[async_trait]
impl IdempotencyRecords for DynamoStore {
    /// One conditional put takes the key when it is new, expired or
    /// abandoned; otherwise the record DynamoDB returns with the refusal
    /// says what the earlier request left.
    async fn claim_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyClaim, StoreError> {
        let expiration = now.timestamp() + RETENTION_HOURS * 3600;
        let abandoned_before = keys::text(&(now - chrono::Duration::seconds(CLAIM_TIMEOUT_SECONDS)));
        let mut item = items::key(keys::idempotency_pk(tenant, key), keys::IDEMPOTENCY_SK);
        item.insert(FINGERPRINT.to_owned(), s(fingerprint));
        item.insert(STATE.to_owned(), s(IN_PROGRESS));
        item.insert(CREATED_AT.to_owned(), s(keys::text(&now)));
        item.insert(table::TTL_ATTRIBUTE.to_owned(), n(expiration));
        let outcome = self
            .put(
                item,
                "attribute_not_exists(PK) OR #expiration < :now \
                 OR (#state = :in_progress AND #createdAt < :abandoned)",
                &[
                    ("#expiration", table::TTL_ATTRIBUTE),
                    ("#state", STATE),
                    ("#createdAt", CREATED_AT),
                ],
                vec![
                    (":now", n(now.timestamp())),
                    (":in_progress", s(IN_PROGRESS)),
                    (":abandoned", s(abandoned_before)),
                ],
            )
            .await?;
        match outcome {
            Written::Yes => Ok(IdempotencyClaim::Acquired),
            Written::Refused(Some(old)) => existing_claim(key, fingerprint, &old),
            Written::Refused(None) => Err(StoreError::Unavailable(format!(
                "DynamoDB refused idempotency key {key} without returning the record that refused it"
            ))),
        }
    }

    /// A one-item transaction rather than an `UpdateItem`: its client token
    /// makes the SDK's retry of a completion whose answer was lost succeed
    /// again, where a retried update would find the claim completed.
    async fn complete_idempotency_key(&self, answer: &Answer<'_>) -> Result<(), StoreError> {
        match self.transact(vec![self.answer_write(answer)?]).await? {
            Transacted::Yes => Ok(()),
            Transacted::Cancelled(reasons) if reasons.iter().any(|r| code(r) == "ConditionalCheckFailed") => {
                Err(StoreError::NotFound)
            }
            Transacted::Cancelled(reasons) => Err(StoreError::Unavailable(format!(
                "DynamoDB cancelled the completion of an idempotency key: {}",
                described(&reasons, |_| "the answer".to_owned())
            ))),
        }
    }

    /// One `TransactWriteItems`: the creation's writes (each refusing to
    /// overwrite an item, or, for a session, as `commit` writes it) and the
    /// key's completion, conditional on the claim being this request's.
    async fn create_answered(&self, creation: Creation<'_>, answer: &Answer<'_>) -> Result<(), StoreError> {
        let answered = self.answer_write(answer)?;
        let (item, tenant, quota) = match creation {
            Creation::Session(transition) => {
                let mut writes = self.session_writes(transition, 1)?;
                writes.push(answered);
                return match self.transact(writes).await? {
                    Transacted::Yes => Ok(()),
                    Transacted::Cancelled(reasons) => Err(session_refusal(transition, &reasons, true)),
                };
            }
            Creation::Configuration(config) => counted(config)?,
            Creation::Workflow(workflow) => counted(workflow)?,
            Creation::WebhookEndpoint(endpoint) => counted(endpoint)?,
        };
        self.insert_counted(item, tenant, quota, Some(answered)).await
    }

    async fn release_idempotency_key(
        &self,
        tenant: &Tenant,
        key: &str,
        claimed_at: Timestamp,
    ) -> Result<(), StoreError> {
        // A completed record stays: releasing it would let a retry run the
        // request a second time. So does another request's takeover.
        let request = self
            .client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(items::key(
                keys::idempotency_pk(tenant, key),
                keys::IDEMPOTENCY_SK,
            )))
            .condition_expression("#state = :in_progress AND #createdAt = :claimed")
            .expression_attribute_names("#state", STATE)
            .expression_attribute_names("#createdAt", CREATED_AT)
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":claimed", s(keys::text(&claimed_at)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send();
        match self.send("DeleteItem", request).await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                DeleteItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(failure("DeleteItem", &other)),
            },
        }
    }
}
