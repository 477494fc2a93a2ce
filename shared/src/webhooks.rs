//! Webhook endpoints: where an organisation wants its session events sent,
//! which of the six [`WebhookEvent`] types, and the secret that signs them.
//!
//! The signing secret (`whsec_…`) is minted and sealed by the caller: the
//! domain only ever holds the sealed form, as it does for API keys.
//!
//! [`check_url`] is the URL policy, judged on the URL as written: the scheme,
//! and a host that is an IP literal that is not globally reachable unicast
//! (see [`crate::addresses`]: private, loopback, link-local, documentation,
//! and every other special-purpose range), or the name `localhost`. It
//! cannot see where a host name *resolves*; the dispatcher
//! resolves each name at delivery time and refuses the addresses that
//! [`UrlPolicy::allows_address`] refuses, so a name that points at (or is
//! re-pointed at) an internal address is stopped there.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Deserializer, Serialize};
use url::{Host, Url};

use crate::Timestamp;
pub use crate::addresses::{AddressKind, forbidden_address};
use crate::ids::WebhookEndpointId;
use crate::tenancy::Tenant;
use crate::validation::{FieldErrors, check_text};

/// The longest URL an endpoint may have, in bytes.
pub const MAX_URL_LENGTH: usize = 2048;
/// The longest description an endpoint may have, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// The event types partners subscribe to: the six of the session's events
/// ([`crate::events::EventKind::webhook`]) that are sent out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    SessionCompleted,
    SessionExpired,
    SessionFailed,
    SessionResolved,
    SessionWorkflowCompleted,
    SessionWorkflowFailed,
}

/// A partner's webhook endpoint, as stored.
///
/// Serialising it includes `sealedSecret`: it is the stored document, not an
/// API view, so responses must be built from its other fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub tenant: Tenant,
    /// An absolute URL that passed [`check_url`], as the `url` crate
    /// serialises it (scheme and host lower-cased, default port dropped).
    pub url: String,
    /// The event types sent here: never empty, each once, in the order the
    /// partner first gave them.
    pub events: Vec<WebhookEvent>,
    /// A disabled endpoint keeps its settings but receives nothing.
    pub enabled: bool,
    /// The `whsec_…` signing secret, sealed by the caller.
    pub sealed_secret: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// 1 when created, one more with every update (the store's write guard).
    pub version: u64,
}

impl WebhookEndpoint {
    /// Whether an event of this type is to be sent here now.
    pub fn subscribes_to(&self, event: WebhookEvent) -> bool {
        self.enabled && self.events.contains(&event)
    }

    /// Applies a partial update, checking the fields it sets; the fields it
    /// leaves alone are kept as stored, so an endpoint whose URL a stricter
    /// policy would now refuse can still be disabled or deleted. The result
    /// is the next version, updated at `now`.
    pub fn apply(
        &self,
        patch: WebhookEndpointPatch,
        policy: UrlPolicy,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, FieldErrors> {
        let mut errors = FieldErrors::new();
        let url = patch.url.map(|url| check_url_field(&mut errors, &url, policy));
        let events = patch.events.map(|events| check_events(&mut errors, events));
        let description = patch
            .description
            .map(|description| check_description(&mut errors, description));
        errors.finish(WebhookEndpoint {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            url: url.unwrap_or_else(|| self.url.clone()),
            events: events.unwrap_or_else(|| self.events.clone()),
            enabled: patch.enabled.unwrap_or(self.enabled),
            sealed_secret: self.sealed_secret.clone(),
            description: description.unwrap_or_else(|| self.description.clone()),
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
        })
    }
}

/// `POST /webhook-endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpointDraft {
    pub url: String,
    pub events: Vec<WebhookEvent>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

impl WebhookEndpointDraft {
    /// The new endpoint (version 1, created and updated at `now`), or every
    /// problem with the draft by field. `id` and `sealed_secret` come from
    /// the caller, which mints the id and the secret and seals the secret.
    pub fn validate(
        self,
        id: WebhookEndpointId,
        tenant: Tenant,
        sealed_secret: String,
        policy: UrlPolicy,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, FieldErrors> {
        let mut errors = FieldErrors::new();
        let url = check_url_field(&mut errors, &self.url, policy);
        let events = check_events(&mut errors, self.events);
        let description = check_description(&mut errors, self.description);
        errors.finish(WebhookEndpoint {
            id,
            tenant,
            url,
            events,
            enabled: self.enabled,
            sealed_secret,
            description,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }
}

/// `PATCH /webhook-endpoints/{id}`: absent fields stay as they are; `null`
/// clears the description and is refused for the other fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[serde(default, deserialize_with = "not_null")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    pub events: Option<Vec<WebhookEvent>>,
    #[serde(default, deserialize_with = "not_null")]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
}

impl WebhookEndpointPatch {
    /// Checks the fields the patch sets, without the endpoint it will apply
    /// to: a bad patch can be refused before the store is read.
    /// [`WebhookEndpoint::apply`] makes the same checks.
    pub fn validate(&self, policy: UrlPolicy) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Some(url) = &self.url {
            check_url_field(&mut errors, url, policy);
        }
        if let Some(events) = &self.events {
            check_events(&mut errors, events.clone());
        }
        if let Some(description) = &self.description {
            check_description(&mut errors, description.clone());
        }
        errors.finish(())
    }
}

/// A present field's value; `null` is refused with serde's own message
/// ("invalid type: null, expected …"). Absent fields are `None` through
/// `#[serde(default)]`.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Tells "absent" (outer `None`, via `default`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The URL as it will be stored, or an error pushed on `url`.
fn check_url_field(errors: &mut FieldErrors, url: &str, policy: UrlPolicy) -> String {
    match check_url(url, policy) {
        Ok(url) => url.into(),
        Err(refusal) => {
            errors.push("url", refusal.to_string());
            String::new()
        }
    }
}

/// Deduplicated, keeping each type's first position.
fn check_events(errors: &mut FieldErrors, events: Vec<WebhookEvent>) -> Vec<WebhookEvent> {
    let mut unique = Vec::with_capacity(events.len());
    for event in events {
        if !unique.contains(&event) {
            unique.push(event);
        }
    }
    if unique.is_empty() {
        errors.push("events", "give at least one event type");
    }
    unique
}

/// Trimmed; a blank description is refused rather than stored.
fn check_description(errors: &mut FieldErrors, description: Option<String>) -> Option<String> {
    let description = description?;
    check_text(errors, "description", &description, MAX_DESCRIPTION_CHARS);
    Some(description.trim().to_owned())
}

/// Which URLs and addresses an endpoint may use: the deployment's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    /// `https` only, to a host that is neither `localhost` (nor a name under
    /// it) nor an IP literal that is not globally reachable unicast.
    Production,
    /// As production, and also `http` (or `https`) to `127.0.0.1` or
    /// `localhost`, on any port: a receiver on the developer's machine.
    Development,
}

impl UrlPolicy {
    /// Whether a delivery may connect to `ip`, an address a URL's host
    /// resolved to. The dispatcher asks this for every address at delivery
    /// time, since [`check_url`] only sees literals. Development also allows
    /// loopback addresses (`localhost` may resolve to `::1`).
    pub fn allows_address(self, ip: IpAddr) -> bool {
        match forbidden_address(ip) {
            None => true,
            // The machine itself only: 127/8, ::1, and `::ffff:127.x.y.z`,
            // which the kernel delivers to 127.x.y.z; not an address that
            // merely embeds a loopback one (`::127.0.0.1`, NAT64, 6to4), which
            // would go to some translator or relay instead.
            Some(_) => self == UrlPolicy::Development && ip.to_canonical().is_loopback(),
        }
    }
}

/// Why [`check_url`] refused a URL; `Display` is the field message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an absolute URL (the parser's reason).
    Malformed(String),
    TooLong,
    /// Not `https`, and not the `http` the development policy allows.
    NotHttps(UrlPolicy),
    /// `user:password@` in the URL: it would be stored and shown in clear.
    Credentials,
    NoHost,
    /// `localhost` or a name under it.
    Localhost,
    /// An IP literal of this kind.
    Address(AddressKind),
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlRefusal::Malformed(reason) => write!(f, "must be an absolute URL ({reason})"),
            UrlRefusal::TooLong => write!(f, "must be at most {MAX_URL_LENGTH} characters"),
            UrlRefusal::NotHttps(UrlPolicy::Production) => f.write_str("must be an https URL"),
            UrlRefusal::NotHttps(UrlPolicy::Development) => {
                f.write_str("must be an https URL (or http to 127.0.0.1 or localhost)")
            }
            UrlRefusal::Credentials => f.write_str("must not contain a user name or password"),
            UrlRefusal::NoHost => f.write_str("must name a host"),
            UrlRefusal::Localhost => f.write_str("must not point at localhost"),
            UrlRefusal::Address(AddressKind::Unspecified) => f.write_str("must not point at an unspecified address"),
            UrlRefusal::Address(kind) => write!(f, "must not point at a {kind} address"),
        }
    }
}

impl std::error::Error for UrlRefusal {}

/// Judges an endpoint URL as written, under `policy`, and returns it parsed.
///
/// The host is judged as the URL parser reads it, so the other spellings of
/// an address (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are caught as
/// the address they are. Host *names* other than `localhost` pass: whether
/// one resolves to an internal address is only known, and only true, at
/// delivery time, when the dispatcher resolves it and re-checks every
/// address with [`UrlPolicy::allows_address`].
pub fn check_url(url: &str, policy: UrlPolicy) -> Result<Url, UrlRefusal> {
    if url.len() > MAX_URL_LENGTH {
        return Err(UrlRefusal::TooLong);
    }
    let parsed = Url::parse(url).map_err(|e| UrlRefusal::Malformed(e.to_string()))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(UrlRefusal::NotHttps(policy));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let development = policy == UrlPolicy::Development;
    let local = match parsed.host() {
        None => return Err(UrlRefusal::NoHost),
        Some(Host::Domain(name)) => {
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            let is_localhost = name == "localhost" || name.ends_with(".localhost");
            if is_localhost && !(development && name == "localhost") {
                return Err(UrlRefusal::Localhost);
            }
            is_localhost
        }
        Some(Host::Ipv4(ip)) if development && ip == Ipv4Addr::LOCALHOST => true,
        Some(Host::Ipv4(ip)) => match forbidden_address(IpAddr::V4(ip)) {
            Some(kind) => return Err(UrlRefusal::Address(kind)),
            None => false,
        },
        Some(Host::Ipv6(ip)) => match forbidden_address(IpAddr::V6(ip)) {
            Some(kind) => return Err(UrlRefusal::Address(kind)),
            None => false,
        },
    };
    if parsed.scheme() == "http" && !local {
        return Err(UrlRefusal::NotHttps(policy));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    use UrlPolicy::{Development, Production};

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn later() -> Timestamp {
        now() + chrono::Duration::minutes(5)
    }

    fn id() -> WebhookEndpointId {
        WebhookEndpointId::parse("whe_1").unwrap()
    }

    fn org() -> Tenant {
        Tenant::new(crate::ids::OrgId::parse("org_1").unwrap(), crate::tenancy::Mode::Live)
    }

    fn draft(v: serde_json::Value) -> WebhookEndpointDraft {
        serde_json::from_value(v).unwrap()
    }

    fn create(v: serde_json::Value, policy: UrlPolicy) -> Result<WebhookEndpoint, FieldErrors> {
        draft(v).validate(id(), org(), "sealed".into(), policy, now())
    }

    fn endpoint() -> WebhookEndpoint {
        create(
            json!({"url": "https://partner.example/hooks", "events": ["session_completed"], "description": "Main"}),
            Production,
        )
        .unwrap()
    }

    fn patch(v: serde_json::Value) -> WebhookEndpointPatch {
        serde_json::from_value(v).unwrap()
    }

    fn fields(errors: &FieldErrors) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn refusal(url: &str, policy: UrlPolicy) -> UrlRefusal {
        match check_url(url, policy) {
            Ok(parsed) => panic!("{url} was accepted as {parsed}"),
            Err(refusal) => refusal,
        }
    }

    #[test]
    fn a_draft_becomes_version_one_of_an_endpoint() {
        let e = create(
            json!({
                "url": "HTTPS://Partner.Example:443/hooks?x=1",
                "events": ["session_failed", "session_completed", "session_failed"],
                "description": "  Primary receiver "
            }),
            Production,
        )
        .unwrap();
        assert_eq!(e.id, id());
        assert_eq!(e.tenant, org());
        assert_eq!(e.url, "https://partner.example/hooks?x=1", "stored as parsed");
        assert_eq!(
            e.events,
            [WebhookEvent::SessionFailed, WebhookEvent::SessionCompleted],
            "deduplicated, first positions kept"
        );
        assert!(e.enabled, "enabled by default");
        assert_eq!(e.sealed_secret, "sealed");
        assert_eq!(e.description.as_deref(), Some("Primary receiver"));
        assert_eq!((e.created_at, e.updated_at, e.version), (now(), now(), 1));

        let disabled = create(
            json!({"url": "https://a.example", "events": ["session_expired"], "enabled": false}),
            Production,
        )
        .unwrap();
        assert!(!disabled.enabled);
        assert_eq!(disabled.description, None);
    }

    #[test]
    fn every_problem_of_a_draft_is_reported_with_its_field() {
        let errors = create(
            json!({"url": "http://partner.example", "events": [], "description": "x".repeat(1001)}),
            Production,
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["url", "events", "description"]);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must be an https URL",
                "give at least one event type",
                "must be at most 1000 characters"
            ]
        );
        let blank = create(
            json!({"url": "https://a.example", "events": ["session_expired"], "description": " "}),
            Production,
        )
        .unwrap_err();
        assert_eq!(fields(&blank), ["description"]);
    }

    #[test]
    fn drafts_are_strict_json() {
        let parse = serde_json::from_value::<WebhookEndpointDraft>;
        assert!(parse(json!({"url": "https://a.example", "events": ["session_completed"], "secret": "x"})).is_err());
        assert!(parse(json!({"url": "https://a.example", "events": ["session_created"]})).is_err());
        assert!(parse(json!({"events": ["session_completed"]})).is_err());
        assert!(parse(json!({"url": "https://a.example"})).is_err());
        assert!(parse(json!({"url": "https://a.example", "events": ["session_completed"], "enabled": null})).is_err());
        let all = parse(json!({
            "url": "https://a.example",
            "events": ["session_completed", "session_expired", "session_failed", "session_resolved",
                       "session_workflow_completed", "session_workflow_failed"]
        }))
        .unwrap();
        assert_eq!(all.events.len(), 6);
    }

    #[test]
    fn a_patch_overlays_the_fields_it_sets() {
        let e = endpoint();
        let p = e
            .apply(
                patch(json!({"events": ["session_expired", "session_expired"], "enabled": false})),
                Production,
                later(),
            )
            .unwrap();
        assert_eq!(p.events, [WebhookEvent::SessionExpired]);
        assert!(!p.enabled);
        assert_eq!(p.url, e.url);
        assert_eq!(p.description, e.description, "absent: kept");
        assert_eq!(
            (p.id, p.tenant, p.sealed_secret),
            (e.id.clone(), e.tenant.clone(), e.sealed_secret.clone())
        );
        assert_eq!((p.created_at, p.updated_at, p.version), (now(), later(), 2));

        let cleared = e
            .apply(
                patch(json!({"description": null, "url": "https://b.example/x"})),
                Production,
                later(),
            )
            .unwrap();
        assert_eq!(cleared.description, None, "null clears the description");
        assert_eq!(cleared.url, "https://b.example/x");

        let unchanged = e.apply(WebhookEndpointPatch::default(), Production, later()).unwrap();
        assert_eq!(unchanged.version, 2);
        assert_eq!(unchanged.events, e.events);
    }

    #[test]
    fn a_patch_is_checked_field_by_field() {
        let e = endpoint();
        let bad = patch(json!({"url": "https://10.1.2.3/x", "events": [], "description": ""}));
        let errors = e.apply(bad.clone(), Production, later()).unwrap_err();
        assert_eq!(fields(&errors), ["url", "events", "description"]);
        assert_eq!(bad.validate(Production), Err(errors));
        assert_eq!(patch(json!({"enabled": true})).validate(Production), Ok(()));

        let parse = serde_json::from_value::<WebhookEndpointPatch>;
        assert!(
            parse(json!({"url": null})).is_err(),
            "only the description can be cleared"
        );
        assert!(parse(json!({"events": null})).is_err());
        assert!(parse(json!({"enabled": null})).is_err());
        assert!(parse(json!({"sealedSecret": "x"})).is_err());
        assert!(parse(json!({"version": 3})).is_err());
        assert_eq!(parse(json!({})).unwrap(), WebhookEndpointPatch::default());
    }

    #[test]
    fn a_patch_that_leaves_the_url_does_not_recheck_it() {
        let local = create(
            json!({"url": "http://localhost:3000/hooks", "events": ["session_completed"]}),
            Development,
        )
        .unwrap();
        let disabled = local
            .apply(patch(json!({"enabled": false})), Production, later())
            .unwrap();
        assert_eq!(disabled.url, "http://localhost:3000/hooks");
        assert!(!disabled.enabled);
        let errors = local
            .apply(
                patch(json!({"url": "http://localhost:3001/hooks"})),
                Production,
                later(),
            )
            .unwrap_err();
        assert_eq!(fields(&errors), ["url"]);
    }

    #[test]
    fn production_accepts_https_to_public_hosts() {
        for url in [
            "https://partner.example/hooks",
            "https://partner.example:8443/a/b?c=d",
            "https://93.184.216.34/hook",
            "https://[2606:4700:4700::1111]/hook",
            "https://172.15.255.255/",
            "https://172.32.0.1/",
            "https://11.0.0.1/",
            "https://169.253.1.1/",
            "https://192.169.0.1/",
            "https://100.63.255.255/",
            "https://100.128.0.1/",
            "https://[64:ff9b::808:808]/",
            "https://notlocalhost.example/",
            "https://localhost.example/",
        ] {
            assert!(check_url(url, Production).is_ok(), "{url}");
        }
    }

    #[test]
    fn production_refuses_other_schemes_and_malformed_urls() {
        assert_eq!(
            refusal("http://partner.example/hooks", Production),
            UrlRefusal::NotHttps(Production)
        );
        assert_eq!(
            refusal("ftp://partner.example/", Production),
            UrlRefusal::NotHttps(Production)
        );
        assert_eq!(
            refusal("javascript:alert(1)", Production),
            UrlRefusal::NotHttps(Production)
        );
        assert!(matches!(
            refusal("/relative/path", Production),
            UrlRefusal::Malformed(_)
        ));
        assert!(matches!(refusal("https://", Production), UrlRefusal::Malformed(_)));
        assert!(matches!(refusal("", Production), UrlRefusal::Malformed(_)));
        assert_eq!(
            refusal("https://user:pw@partner.example/", Production),
            UrlRefusal::Credentials
        );
        assert_eq!(
            refusal("https://user@partner.example/", Production),
            UrlRefusal::Credentials
        );
        let long = format!("https://partner.example/{}", "a".repeat(MAX_URL_LENGTH));
        assert_eq!(refusal(&long, Production), UrlRefusal::TooLong);
        let longest = format!("https://partner.example/{}", "a".repeat(MAX_URL_LENGTH - 24));
        assert_eq!(longest.len(), MAX_URL_LENGTH);
        assert!(check_url(&longest, Production).is_ok());
    }

    #[test]
    fn production_refuses_internal_addresses_however_written() {
        use AddressKind::*;
        for (url, kind) in [
            ("https://10.0.0.1/", Private),
            ("https://10.255.255.255/", Private),
            ("https://172.16.0.1/", Private),
            ("https://172.31.255.255/", Private),
            ("https://192.168.1.10:8443/x", Private),
            ("https://100.64.0.1/", Private),
            ("https://[fc00::1]/", Private),
            ("https://[fd12:3456::1]/", Private),
            ("https://[fec0::1]/", Private),
            ("https://127.0.0.1/", Loopback),
            ("https://127.1.2.3/", Loopback),
            ("https://[::1]/", Loopback),
            ("https://169.254.169.254/latest/meta-data/", LinkLocal),
            ("https://[fe80::1]/", LinkLocal),
            ("https://0.0.0.0/", Unspecified),
            ("https://0.1.2.3/", Unspecified),
            ("https://[::]/", Unspecified),
            ("https://255.255.255.255/", Broadcast),
            ("https://224.0.0.1/", Multicast),
            ("https://[ff02::1]/", Multicast),
            ("https://240.0.0.1/", Reserved),
            // Other spellings of the same addresses.
            ("https://2130706433/", Loopback),
            ("https://0x7f.1/", Loopback),
            ("https://127.0.0.1./", Loopback),
            ("https://[::ffff:127.0.0.1]/", Loopback),
            ("https://[::ffff:a9fe:a9fe]/", LinkLocal),
            ("https://[::ffff:10.0.0.1]/", Private),
            ("https://[64:ff9b::a00:1]/", Private),
        ] {
            assert_eq!(refusal(url, Production), UrlRefusal::Address(kind), "{url}");
        }
        for url in [
            "https://localhost/",
            "https://LOCALHOST:8443/",
            "https://localhost./",
            "https://api.localhost/",
        ] {
            assert_eq!(refusal(url, Production), UrlRefusal::Localhost, "{url}");
        }
    }

    /// What the blocklist this replaced let through: a test delivery reached
    /// a listener on this host through 192.0.2.0/24.
    #[test]
    fn production_refuses_every_address_that_is_not_globally_reachable() {
        use AddressKind::*;
        for (url, kind) in [
            ("https://192.0.2.10/hook", Documentation),
            ("https://192.0.0.1/", SpecialPurpose),
            ("https://198.18.0.1/", Benchmarking),
            ("https://198.51.100.7/", Documentation),
            ("https://203.0.113.9/", Documentation),
            ("https://[::127.0.0.1]/", Loopback),
            ("https://[::8.8.8.8]/", Reserved),
            ("https://[::ffff:0:169.254.169.254]/", LinkLocal),
            ("https://[64:ff9b:1::a00:1]/", SpecialPurpose),
            ("https://[2002:a9fe:a9fe::1]/", LinkLocal),
            ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", Documentation),
            ("https://[2001:0:808:404::f5ff:fffe]/", Private),
            ("https://[2001:db8::1]/", Documentation),
            ("https://[2001:2::1]/", Benchmarking),
            ("https://[2001:10::1]/", SpecialPurpose),
            ("https://[3fff::1]/", Documentation),
            ("https://[5f00::1]/", SpecialPurpose),
            ("https://[4000::1]/", Reserved),
            ("https://[100::1]/", SpecialPurpose),
        ] {
            assert_eq!(refusal(url, Production), UrlRefusal::Address(kind), "{url}");
        }
        for url in [
            "https://192.0.0.9/",
            "https://192.31.196.1/",
            "https://[2001:4:112::1]/",
            "https://[2001:20::1]/",
            "https://[2002:808:808::1]/",
            "https://[2001:0:808:404::f7f7:f7f7]/",
        ] {
            assert!(check_url(url, Production).is_ok(), "{url}");
        }
    }

    #[test]
    fn development_allows_only_the_machine_itself_among_refused_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(Development.allows_address(ip(local)), "{local}");
            assert!(!Production.allows_address(ip(local)), "{local}");
        }
        // These embed a loopback address but go to a translator or relay.
        for embedded in [
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:0:808:404::80ff:fffe",
        ] {
            assert!(!Development.allows_address(ip(embedded)), "{embedded}");
        }
        for other in ["192.0.2.1", "10.0.0.1", "fe80::1", "2001:db8::1"] {
            assert!(!Development.allows_address(ip(other)), "{other}");
        }
    }

    #[test]
    fn development_also_allows_the_developers_machine() {
        for url in [
            "http://127.0.0.1/hooks",
            "http://127.0.0.1:8080/hooks",
            "http://localhost/",
            "http://localhost:3000/hooks",
            "https://localhost:8443/",
            "https://partner.example/hooks",
        ] {
            assert!(check_url(url, Development).is_ok(), "{url}");
        }
        assert_eq!(
            refusal("http://partner.example/", Development),
            UrlRefusal::NotHttps(Development)
        );
        assert_eq!(
            refusal("http://10.0.0.1/", Development),
            UrlRefusal::Address(AddressKind::Private)
        );
        assert_eq!(
            refusal("https://192.168.0.1/", Development),
            UrlRefusal::Address(AddressKind::Private)
        );
        assert_eq!(
            refusal("http://127.0.0.2/", Development),
            UrlRefusal::Address(AddressKind::Loopback)
        );
        assert_eq!(
            refusal("http://[::1]/", Development),
            UrlRefusal::Address(AddressKind::Loopback)
        );
        assert_eq!(refusal("http://api.localhost/", Development), UrlRefusal::Localhost);
        assert_eq!(refusal("http://user@localhost/", Development), UrlRefusal::Credentials);
    }

    #[test]
    fn refusals_read_as_field_messages() {
        assert_eq!(UrlRefusal::NotHttps(Production).to_string(), "must be an https URL");
        assert_eq!(
            UrlRefusal::NotHttps(Development).to_string(),
            "must be an https URL (or http to 127.0.0.1 or localhost)"
        );
        assert_eq!(
            UrlRefusal::Address(AddressKind::LinkLocal).to_string(),
            "must not point at a link-local address"
        );
        assert_eq!(UrlRefusal::Localhost.to_string(), "must not point at localhost");
        assert_eq!(
            UrlRefusal::Address(AddressKind::Unspecified).to_string(),
            "must not point at an unspecified address"
        );
        assert_eq!(
            UrlRefusal::Address(AddressKind::Documentation).to_string(),
            "must not point at a documentation address"
        );
        let errors = create(
            json!({"url": "https://[::1]/", "events": ["session_completed"]}),
            Production,
        )
        .unwrap_err();
        assert_eq!(
            errors.iter().next().map(|e| e.message.as_str()),
            Some("must not point at a loopback address")
        );
    }

    #[test]
    fn resolved_addresses_are_judged_by_the_same_ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(Production.allows_address(ip("93.184.216.34")));
        assert!(Production.allows_address(ip("2606:4700:4700::1111")));
        for internal in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(!Production.allows_address(ip(internal)), "{internal}");
        }
        assert!(Development.allows_address(ip("127.0.0.1")));
        assert!(Development.allows_address(ip("::1")));
        assert!(!Development.allows_address(ip("10.0.0.1")));
        assert_eq!(forbidden_address(ip("8.8.8.8")), None);
        assert_eq!(forbidden_address(ip("172.20.1.1")), Some(AddressKind::Private));
    }

    #[test]
    fn only_enabled_endpoints_subscribe() {
        let mut e = endpoint();
        assert!(e.subscribes_to(WebhookEvent::SessionCompleted));
        assert!(!e.subscribes_to(WebhookEvent::SessionFailed));
        e.enabled = false;
        assert!(!e.subscribes_to(WebhookEvent::SessionCompleted));
    }

    #[test]
    fn endpoints_are_stored_as_camel_case_json() {
        let e = endpoint();
        let value = serde_json::to_value(&e).unwrap();
        assert_eq!(value["tenant"], json!({"orgId": "org_1", "mode": "live"}));
        assert_eq!(value["sealedSecret"], "sealed");
        assert_eq!(value["events"], json!(["session_completed"]));
        assert_eq!(value["createdAt"], "2026-11-25T12:00:00Z");
        let back: WebhookEndpoint = serde_json::from_value(value).unwrap();
        assert_eq!(back, e);
    }
}
