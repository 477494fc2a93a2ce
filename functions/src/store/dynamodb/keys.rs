//! How domain identities become DynamoDB keys. Every key is built here, so the
//! layout the README documents and the template indexes has one source.
//!
//! Separators are `#`. Ids and slugs never contain one, and the one free-form
//! part (the partner's external user id) is always the last segment, so no
//! two identities can build the same key.

use chrono::SecondsFormat;
use korala_domain::Timestamp;
use korala_domain::ids::{OrgId, SessionId, WebhookDeliveryId, WebhookEndpointId};
use korala_domain::session::SessionStatus;

/// The sweep index is split over this many partitions, so the write traffic
/// of every open session in every tenant does not land on one partition.
pub const DUE_SHARDS: u32 = 16;

/// The sort-key form of the one item of its kind in a partition.
pub const ORG_SK: &str = "ORG";
pub const KEY_SK: &str = "KEY";
pub const SESSION_SK: &str = "SESSION";
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
pub const DELIVERY_SK: &str = "DELIVERY";
pub const CONFIG_PREFIX: &str = "CONFIG#";
pub const WORKFLOW_PREFIX: &str = "WORKFLOW#";
pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";
pub const EVENT_PREFIX: &str = "EVENT#";

/// RFC 3339 with a fixed number of digits: comparing the strings compares
/// the instants (the SQLite adapter stores them the same way).
pub fn text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub fn key_pk(key_id: &str) -> String {
    format!("KEY#{key_id}")
}

pub fn config_sk(slug: &str) -> String {
    format!("{CONFIG_PREFIX}{slug}")
}

pub fn workflow_sk(slug: &str) -> String {
    format!("{WORKFLOW_PREFIX}{slug}")
}

/// Endpoint ids are time-ordered, so the organisation's partition reads its
/// endpoints in creation order.
pub fn webhook_sk(id: &WebhookEndpointId) -> String {
    format!("{WEBHOOK_PREFIX}{id}")
}

pub fn session_pk(id: &SessionId) -> String {
    format!("SESSION#{id}")
}

/// Zero-padded so the history reads in (version, sequence) order. Five
/// digits are enough: a transaction holds at most 100 items, so no
/// transition carries 100 000 events.
pub fn event_sk(version: u64, sequence: u32) -> String {
    format!("{EVENT_PREFIX}{version:020}#{sequence:05}")
}

pub fn user_pk(org: &OrgId, external_user_id: &str) -> String {
    format!("ORG#{org}#USER#{external_user_id}")
}

pub fn status_pk(org: &OrgId, status: SessionStatus) -> String {
    format!("ORG#{org}#STATUS#{status}")
}

pub fn token_pk(token_hash: &str) -> String {
    format!("TOKEN#{token_hash}")
}

pub fn due_pk(shard: u32) -> String {
    format!("DUE#{shard}")
}

/// The deadline first, so each shard reads in sweep order; the id last, so
/// equal deadlines stay distinct and ordered as SQLite orders them.
pub fn due_sk(expires_at: &Timestamp, id: &SessionId) -> String {
    format!("{}#{id}", text(expires_at))
}

/// The largest sort key due at `now`: `~` sorts after every id character,
/// so a session due exactly at `now` is included.
pub fn due_upto(now: &Timestamp) -> String {
    format!("{}#~", text(now))
}

/// FNV-1a: stable across processes and releases (std's hasher is seeded per
/// process), which the shard of a stored item depends on.
pub fn due_shard(id: &SessionId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % DUE_SHARDS
}

/// A delivery's own partition: its id is global (made from its event's and
/// endpoint's), so a read by id needs no organisation in the key; the item's
/// `org` attribute scopes it.
pub fn delivery_pk(id: &WebhookDeliveryId) -> String {
    format!("DELIVERY#{id}")
}

/// An endpoint's delivery log in the `by_org` index, sorted by delivery id
/// (time-ordered by event). It never equals an [`org_pk`], which the
/// session listing queries by equality in the same index.
pub fn delivery_log_pk(org: &OrgId, endpoint: &WebhookEndpointId) -> String {
    format!("ORG#{org}#ENDPOINT#{endpoint}")
}

pub fn idempotency_pk(org: &OrgId, key: &str) -> String {
    format!("IDEMPOTENCY#{org}#{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn event_keys_sort_in_history_order() {
        let keys = [
            event_sk(1, 0),
            event_sk(1, 1),
            event_sk(1, 10),
            event_sk(2, 0),
            event_sk(10, 0),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    /// An organisation's partition holds several kinds of item; each
    /// listing's prefix must match its own kind only.
    #[test]
    fn the_prefixes_of_an_organisations_items_do_not_overlap() {
        let org = OrgId::parse("org_1").unwrap();
        let id = WebhookEndpointId::parse("whe_0192abcd").unwrap();
        let keys = [
            (ORG_SK.to_owned(), None),
            (config_sk("kyc"), Some(CONFIG_PREFIX)),
            (workflow_sk("kyc"), Some(WORKFLOW_PREFIX)),
            (webhook_sk(&id), Some(WEBHOOK_PREFIX)),
        ];
        for (key, own) in &keys {
            for prefix in [CONFIG_PREFIX, WORKFLOW_PREFIX, WEBHOOK_PREFIX] {
                assert_eq!(key.starts_with(prefix), *own == Some(prefix), "{key} under {prefix}");
            }
        }
        assert_eq!(org_pk(&org), "ORG#org_1");
        assert_eq!(webhook_sk(&id), "WEBHOOK#whe_0192abcd");
    }

    #[test]
    fn a_delivery_log_is_its_own_partition_of_the_org_index() {
        let org = OrgId::parse("org_1").unwrap();
        let endpoint = WebhookEndpointId::parse("whe_0192abcd").unwrap();
        assert_eq!(delivery_log_pk(&org, &endpoint), "ORG#org_1#ENDPOINT#whe_0192abcd");
        assert_ne!(delivery_log_pk(&org, &endpoint), org_pk(&org));
        let id = WebhookDeliveryId::parse("whd_0192abcd").unwrap();
        assert_eq!(delivery_pk(&id), "DELIVERY#whd_0192abcd");
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned: a changed hash would strand stored sessions in other shards.
        // FNV-1a("ses_0192abcd") = 2881083095, and 2881083095 mod 16 = 7.
        assert_eq!(due_shard(&SessionId::parse("ses_0192abcd").unwrap()), 7);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            let id = SessionId::parse(&format!("ses_{i:026}")).unwrap();
            let shard = due_shard(&id);
            assert!(shard < DUE_SHARDS);
            seen.insert(shard);
        }
        assert_eq!(seen.len(), DUE_SHARDS as usize);
    }

    #[test]
    fn a_session_due_now_is_within_the_bound() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let id = SessionId::parse("ses_zzzz").unwrap();
        assert!(due_sk(&now, &id) <= due_upto(&now));
        let later = now + chrono::Duration::microseconds(1);
        assert!(due_sk(&later, &id) > due_upto(&now));
    }
}
