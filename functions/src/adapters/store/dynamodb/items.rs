//! Domain objects as DynamoDB items: the whole object as a JSON document in
//! `doc` (so the table never follows the domain types' evolution), plus the
//! few attributes the keys, indexes and conditions need — for a session, its
//! summary as JSON in `summary`, which is what the listing indexes keep.
//!
//! A webhook delivery keeps its JSON in `summary` instead of `doc`: the
//! listing index copies `summary`, so an endpoint's log reads whole
//! deliveries from the index with one query, and the item holds the
//! document once.
//!
//! A session's `doc` is stored deflated (zlib, binary): it carries its
//! workflow definitions and the submitted data, and DynamoDB bills every
//! write — to the table and to the token index that copies it — per
//! kilobyte. Readers accept both forms.

use std::collections::HashMap;
use std::io::{Read, Write};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use korala_domain::delivery::WebhookDelivery;
use korala_domain::events::Event;
use korala_domain::ids::{SessionId, WebhookDeliveryId};
use korala_domain::ports::StoreError;
use korala_domain::session::{Session, SessionSummary};
use korala_domain::tenancy::Tenant;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys;
use super::table::{BY_ORG, BY_STATUS, BY_TOKEN, BY_USER, DUE, Index, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
pub use super::table::{STATUS, SUMMARY};

pub type Item = HashMap<String, AttributeValue>;

pub const DOC: &str = "doc";
pub const ORG: &str = "org";
pub const VERSION: &str = "version";
/// A random id per write request: when the SDK retries a conditional write
/// whose first attempt landed but whose answer was lost, the condition fails
/// on our own item, and this tells that apart from someone else's.
pub const WRITE_ID: &str = "writeId";

/// DynamoDB deletes a webhook delivery this long after its last change (the
/// table's TTL), so the log of a busy endpoint does not grow forever. It is
/// far longer than a round of retries (about 27 hours), so a delivery still
/// being attempted is never deleted; one that lingers past its expiration
/// (TTL deletion can lag by days) is simply shown a little longer.
pub const DELIVERY_RETENTION_DAYS: i64 = 30;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// A fresh random token (write ids, transaction tokens).
pub fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode the {what}: {e}")))
}

/// The domain object an item holds.
pub fn decode<T: DeserializeOwned>(what: &str, item: &Item) -> Result<T, StoreError> {
    decode_attribute(what, item, DOC)
}

pub fn decode_all<T: DeserializeOwned>(what: &str, items: &[Item]) -> Result<Vec<T>, StoreError> {
    items.iter().map(|item| decode(what, item)).collect()
}

/// The summary a session item (or its copy in a listing index) holds.
pub fn decode_summaries(items: &[Item]) -> Result<Vec<SessionSummary>, StoreError> {
    items
        .iter()
        .map(|item| decode_attribute("session summary", item, SUMMARY))
        .collect()
}

fn decode_attribute<T: DeserializeOwned>(what: &str, item: &Item, attribute: &str) -> Result<T, StoreError> {
    let unreadable = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("the stored {what} is unreadable: {e}"));
    match item.get(attribute) {
        Some(AttributeValue::S(json)) => serde_json::from_str(json).map_err(|e| unreadable(&e)),
        Some(AttributeValue::B(blob)) => {
            // Inflated whole, then parsed: parsing from the decoder would
            // inflate a byte at a time (0.28 ms for 8 KB of JSON, against 0.08).
            let mut json = Vec::with_capacity(blob.as_ref().len() * 4);
            ZlibDecoder::new(blob.as_ref())
                .read_to_end(&mut json)
                .map_err(|e| unreadable(&e))?;
            serde_json::from_slice(&json).map_err(|e| unreadable(&e))
        }
        _ => {
            let pk = string(item, PARTITION_KEY).unwrap_or("?");
            Err(StoreError::Corrupt(format!(
                "the stored {what} {pk} has no `{attribute}` document"
            )))
        }
    }
}

/// The value as deflated JSON.
fn deflated<T: Serialize>(what: &str, value: &T) -> Result<AttributeValue, StoreError> {
    let failed = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("cannot encode the {what}: {e}"));
    // Serialised whole, then compressed in one write: serde_json writes a
    // document in hundreds of small pieces, and the encoder compresses each
    // piece as it comes (2.6 ms for 8 KB of JSON, against 0.13 ms).
    let json = serde_json::to_vec(value).map_err(|e| failed(&e))?;
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(json.len() / 2), Compression::default());
    encoder.write_all(&json).map_err(|e| failed(&e))?;
    let bytes = encoder.finish().map_err(|e| failed(&e))?;
    Ok(AttributeValue::B(Blob::new(bytes)))
}

pub fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PARTITION_KEY.to_owned(), s(pk)), (SORT_KEY.to_owned(), s(sk))])
}

/// The table key of the item an index entry copies (every index entry
/// carries it, whatever the projection).
pub fn table_key(entry: &Item) -> Result<Item, StoreError> {
    let part = |name: &str| {
        entry
            .get(name)
            .cloned()
            .map(|value| (name.to_owned(), value))
            .ok_or_else(|| StoreError::Corrupt(format!("an index entry lacks the table key `{name}`")))
    };
    Ok(HashMap::from([part(PARTITION_KEY)?, part(SORT_KEY)?]))
}

fn index(item: &mut Item, index: Index, partition: String, sort: Option<String>) {
    item.insert(index.partition_key.to_owned(), s(partition));
    if let (Some(name), Some(value)) = (index.sort_key, sort) {
        item.insert(name.to_owned(), s(value));
    }
}

/// The session item with every index key it belongs under. It is always
/// written whole, so a session that can no longer expire simply lacks the
/// `due` keys and drops out of that sparse index.
pub fn session(session: &Session) -> Result<Item, StoreError> {
    let id = session.id.to_string();
    let tenant = &session.tenant;
    let mut item = key(keys::session_pk(tenant, &session.id), keys::SESSION_SK);
    item.insert(VERSION.to_owned(), n(session.version));
    item.insert(STATUS.to_owned(), s(session.status.as_str()));
    item.insert(DOC.to_owned(), deflated("session", session)?);
    item.insert(
        SUMMARY.to_owned(),
        s(encode("session summary", &SessionSummary::from(session))?),
    );
    index(&mut item, BY_ORG, keys::tenant_pk(tenant), Some(id.clone()));
    index(
        &mut item,
        BY_USER,
        keys::user_pk(tenant, &session.external_user_id),
        Some(id.clone()),
    );
    index(
        &mut item,
        BY_STATUS,
        keys::status_pk(tenant, session.status),
        Some(id.clone()),
    );
    index(&mut item, BY_TOKEN, keys::token_pk(&session.access_token.hash), None);
    if session.status.can_expire() {
        index(
            &mut item,
            DUE,
            keys::due_pk(keys::due_shard(&session.id)),
            Some(keys::due_sk(&session.expires_at, &session.id)),
        );
    }
    Ok(item)
}

/// Where a listing resumes after `id`: an index's start key must name the
/// index keys and the table keys of the item it follows. The item need not
/// exist, so a cursor from elsewhere simply positions in this partition.
pub fn session_start_key(index: Index, partition: &str, tenant: &Tenant, id: &SessionId) -> Item {
    let mut item = key(keys::session_pk(tenant, id), keys::SESSION_SK);
    item.insert(index.partition_key.to_owned(), s(partition));
    if let Some(sort_key) = index.sort_key {
        item.insert(sort_key.to_owned(), s(id.as_str()));
    }
    item
}

pub fn event(event: &Event) -> Result<Item, StoreError> {
    let mut item = key(
        keys::session_pk(&event.tenant, &event.session_id),
        keys::event_sk(event.version, event.sequence),
    );
    item.insert(DOC.to_owned(), s(encode("event", event)?));
    Ok(item)
}

/// The delivery item: the document in `summary` (see the module's doc), the
/// version that guards updates, its expiration, and its place in its
/// endpoint's log.
pub fn delivery(delivery: &WebhookDelivery) -> Result<Item, StoreError> {
    let tenant = &delivery.tenant;
    let expiration = delivery.updated_at.timestamp() + DELIVERY_RETENTION_DAYS * 24 * 3600;
    let mut item = key(keys::delivery_pk(tenant, &delivery.id), keys::DELIVERY_SK);
    item.insert(VERSION.to_owned(), n(delivery.version));
    item.insert(SUMMARY.to_owned(), s(encode("webhook delivery", delivery)?));
    item.insert(TTL_ATTRIBUTE.to_owned(), n(expiration));
    index(
        &mut item,
        BY_ORG,
        keys::delivery_log_pk(tenant, &delivery.endpoint_id),
        Some(delivery.id.to_string()),
    );
    Ok(item)
}

/// The delivery a delivery item (or its copy in the `by_org` index) holds.
pub fn decode_delivery(item: &Item) -> Result<WebhookDelivery, StoreError> {
    decode_attribute("webhook delivery", item, SUMMARY)
}

pub fn decode_deliveries(items: &[Item]) -> Result<Vec<WebhookDelivery>, StoreError> {
    items.iter().map(decode_delivery).collect()
}

/// Where an endpoint's log resumes after delivery `id` (see
/// [`session_start_key`]; the delivery need not exist either).
pub fn delivery_start_key(log: &str, tenant: &Tenant, id: &WebhookDeliveryId) -> Item {
    let mut item = key(keys::delivery_pk(tenant, id), keys::DELIVERY_SK);
    item.insert(BY_ORG.partition_key.to_owned(), s(log));
    if let Some(sort_key) = BY_ORG.sort_key {
        item.insert(sort_key.to_owned(), s(id.as_str()));
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use korala_domain::ids::{IdGenerator, OrgId, WebhookEndpointId};
    use korala_domain::tenancy::Mode;
    use korala_domain::webhooks::WebhookEndpoint;
    use korala_domain::webhooks::WebhookEvent;

    struct Fixed;
    impl IdGenerator for Fixed {
        fn next_body(&self) -> String {
            "0192abcd".into()
        }
    }

    /// The layout the README and the `by_org` listing rely on: the document
    /// once, in `summary` (which the index copies), keyed by its own id, and
    /// an expiration 30 days after the last change.
    #[test]
    fn a_delivery_item_is_listed_by_its_endpoint_and_expires() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::generate(&Fixed),
            tenant: Tenant::new(OrgId::parse("org_1").unwrap(), Mode::Test),
            url: "https://hooks.example.com/".into(),
            events: vec![WebhookEvent::SessionCompleted],
            enabled: true,
            sealed_secret: "sealed".into(),
            description: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let delivery = WebhookDelivery::test(&endpoint, &Fixed, now);
        let item = self::delivery(&delivery).unwrap();
        let text = |name: &str| string(&item, name).map(str::to_owned);
        let id = delivery.id.to_string();
        assert_eq!(text(PARTITION_KEY), Some(format!("DELIVERY#org_1#test#{id}")));
        assert_eq!(text(SORT_KEY).as_deref(), Some("DELIVERY"));
        assert_eq!(item.get(VERSION), Some(&n(1)));
        assert_eq!(
            text(BY_ORG.partition_key).as_deref(),
            Some("ORG#org_1#test#ENDPOINT#whe_0192abcd")
        );
        assert_eq!(BY_ORG.sort_key.and_then(text), Some(id));
        let expiration = now.timestamp() + 30 * 24 * 3600;
        assert_eq!(item.get(TTL_ATTRIBUTE), Some(&n(expiration)));
        assert!(!item.contains_key(DOC), "the document is stored once");
        assert_eq!(decode_delivery(&item), Ok(delivery));
    }
}
