//! How domain identities become DynamoDB keys. Every key is built here, so the
//! layout the README documents and the template indexes has one source.
//!
//! Separators are `#`. Ids and slugs never contain one, and the free-form
//! parts (the partner's external user id, an idempotency key) are always the
//! last segment, so no two identities can build the same key.
//!
//! Every record a partner can reach is keyed by its tenant, the organisation
//! and the mode (`ORG#{org}#{mode}…`, `SESSION#{org}#{mode}#{id}`, …): test
//! mode and live mode are separate partitions, so a read names the tenant's
//! own partition and can find nothing of another's. No read filters by
//! tenant after the fact.

use chrono::SecondsFormat;
use korala_domain::Timestamp;
use korala_domain::ids::{OrgId, SessionId, WebhookDeliveryId, WebhookEndpointId};
use korala_domain::limits::{Bucket, Quota};
use korala_domain::ports::RecordKind;
use korala_domain::session::SessionStatus;
use korala_domain::tenancy::Tenant;

/// The sweep index is split over this many partitions, so the write traffic
/// of every open session in every tenant does not land on one partition.
pub const DUE_SHARDS: u32 = 16;

/// The sort-key form of the one item of its kind in a partition.
pub const ORG_SK: &str = "ORG";
pub const KEY_SK: &str = "KEY";
pub const SESSION_SK: &str = "SESSION";
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
pub const DELIVERY_SK: &str = "DELIVERY";
pub const RATE_SK: &str = "RATE";
pub const SIGNATURE_SK: &str = "SIGNATURE";
pub const CONFIG_PREFIX: &str = "CONFIG#";
pub const WORKFLOW_PREFIX: &str = "WORKFLOW#";
pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";
pub const EVENT_PREFIX: &str = "EVENT#";

/// RFC 3339 with a fixed number of digits: comparing the strings compares
/// the instants (the SQLite adapter stores them the same way).
pub fn text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The organisation's own item (its name; no tenant's data).
pub fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

/// An organisation's API keys in the `by_org` index. It never equals a
/// [`tenant_pk`] (no mode is `KEYS`).
pub fn org_keys_pk(org: &OrgId) -> String {
    format!("ORG#{org}#KEYS")
}

/// A tenant's partition: its configurations, workflow definitions and
/// webhook endpoints, and (in the `by_org` index) its sessions. It never
/// equals an [`org_pk`]: the mode is always there.
pub fn tenant_pk(tenant: &Tenant) -> String {
    format!("ORG#{}#{}", tenant.org_id, tenant.mode)
}

pub fn key_pk(key_id: &str) -> String {
    format!("KEY#{key_id}")
}

/// Where a tenant's documents of one kind begin in its partition.
pub fn document_prefix(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Configuration => CONFIG_PREFIX,
        RecordKind::Workflow => WORKFLOW_PREFIX,
        RecordKind::WebhookEndpoint => WEBHOOK_PREFIX,
    }
}

/// A document's sort key: its kind's prefix, then its key (a slug, an id).
/// Endpoint ids are time-ordered, so the partition reads a tenant's
/// endpoints in creation order.
pub fn document_sk(kind: RecordKind, key: &(impl std::fmt::Display + ?Sized)) -> String {
    format!("{}{key}", document_prefix(kind))
}

/// A session and its history share a partition, under its tenant: reading a
/// session by id names the tenant, so another tenant's id is not there.
pub fn session_pk(tenant: &Tenant, id: &SessionId) -> String {
    format!("SESSION#{}#{}#{id}", tenant.org_id, tenant.mode)
}

/// Zero-padded so the history reads in (version, sequence) order. Five
/// digits are enough: a transaction holds at most 100 items, so no
/// transition carries 100 000 events.
pub fn event_sk(version: u64, sequence: u32) -> String {
    format!("{EVENT_PREFIX}{version:020}#{sequence:05}")
}

pub fn user_pk(tenant: &Tenant, external_user_id: &str) -> String {
    format!("{}#USER#{external_user_id}", tenant_pk(tenant))
}

pub fn status_pk(tenant: &Tenant, status: SessionStatus) -> String {
    format!("{}#STATUS#{status}", tenant_pk(tenant))
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

/// A delivery's own partition, under its tenant like a session's.
pub fn delivery_pk(tenant: &Tenant, id: &WebhookDeliveryId) -> String {
    format!("DELIVERY#{}#{}#{id}", tenant.org_id, tenant.mode)
}

/// An endpoint's delivery log in the `by_org` index, sorted by delivery id
/// (time-ordered by event). It never equals a [`tenant_pk`], which the
/// session listing queries by equality in the same index.
pub fn delivery_log_pk(tenant: &Tenant, endpoint: &WebhookEndpointId) -> String {
    format!("{}#ENDPOINT#{endpoint}", tenant_pk(tenant))
}

/// A tenant's count of one kind of record, in its partition beside them.
/// It matches none of the listing prefixes.
pub fn count_sk(quota: Quota) -> &'static str {
    match quota {
        Quota::Configurations => "COUNT#CONFIG",
        Quota::Workflows => "COUNT#WORKFLOW",
        Quota::WebhookEndpoints => "COUNT#WEBHOOK",
    }
}

/// A rate bucket: its name is the last segment (see [`Bucket`]).
pub fn rate_pk(bucket: &Bucket) -> String {
    format!("RATE#{bucket}")
}

/// A used signature (lowercase hex, scoped by the key id before it).
pub fn signature_pk(signature: &str) -> String {
    format!("SIGNATURE#{signature}")
}

pub fn idempotency_pk(tenant: &Tenant, key: &str) -> String {
    format!("IDEMPOTENCY#{}#{}#{key}", tenant.org_id, tenant.mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use korala_domain::tenancy::Mode;

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
            (document_sk(RecordKind::Configuration, "kyc"), Some(CONFIG_PREFIX)),
            (document_sk(RecordKind::Workflow, "kyc"), Some(WORKFLOW_PREFIX)),
            (document_sk(RecordKind::WebhookEndpoint, &id), Some(WEBHOOK_PREFIX)),
        ];
        for (key, own) in &keys {
            for prefix in [CONFIG_PREFIX, WORKFLOW_PREFIX, WEBHOOK_PREFIX] {
                assert_eq!(key.starts_with(prefix), *own == Some(prefix), "{key} under {prefix}");
            }
        }
        assert_eq!(org_pk(&org), "ORG#org_1");
        assert_eq!(document_sk(RecordKind::WebhookEndpoint, &id), "WEBHOOK#whe_0192abcd");
    }

    fn tenants() -> [Tenant; 3] {
        let acme = OrgId::parse("org_1").unwrap();
        [
            Tenant::new(acme.clone(), Mode::Test),
            Tenant::new(acme, Mode::Live),
            Tenant::new(OrgId::parse("org_2").unwrap(), Mode::Live),
        ]
    }

    /// Mode is part of every partition a partner's data lives in: the same
    /// id, slug or key under two tenants builds two keys, and no tenant's
    /// partition is the organisation's own item.
    #[test]
    fn every_tenant_has_partitions_of_its_own() {
        let session = SessionId::parse("ses_0192abcd").unwrap();
        let delivery = WebhookDeliveryId::parse("whd_0192abcd").unwrap();
        let endpoint = WebhookEndpointId::parse("whe_0192abcd").unwrap();
        let keys_of = |t: &Tenant| {
            vec![
                tenant_pk(t),
                session_pk(t, &session),
                delivery_pk(t, &delivery),
                delivery_log_pk(t, &endpoint),
                user_pk(t, "usr_1"),
                status_pk(t, SessionStatus::Completed),
                idempotency_pk(t, "key-1"),
            ]
        };
        let all: Vec<Vec<String>> = tenants().iter().map(keys_of).collect();
        for (i, mine) in all.iter().enumerate() {
            for (j, theirs) in all.iter().enumerate().filter(|(j, _)| *j != i) {
                for key in mine {
                    assert!(!theirs.contains(key), "{key} of tenant {i} is also tenant {j}'s");
                }
            }
            assert!(!mine.contains(&org_pk(&tenants()[i].org_id)));
        }
        assert_eq!(tenant_pk(&tenants()[0]), "ORG#org_1#test");
        assert_eq!(session_pk(&tenants()[1], &session), "SESSION#org_1#live#ses_0192abcd");
    }

    #[test]
    fn a_delivery_log_is_its_own_partition_of_the_org_index() {
        let [test, ..] = tenants();
        let endpoint = WebhookEndpointId::parse("whe_0192abcd").unwrap();
        assert_eq!(
            delivery_log_pk(&test, &endpoint),
            "ORG#org_1#test#ENDPOINT#whe_0192abcd"
        );
        assert_ne!(delivery_log_pk(&test, &endpoint), tenant_pk(&test));
        let id = WebhookDeliveryId::parse("whd_0192abcd").unwrap();
        assert_eq!(delivery_pk(&test, &id), "DELIVERY#org_1#test#whd_0192abcd");
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
