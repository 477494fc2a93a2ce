//! Partner authentication: HMAC-SHA256 request signing, as the product's own
//! client signs requests. `X-Signature` is the lowercase hex
//! `HMAC-SHA256(apiSecret, "{timestamp}.{METHOD}.{path}.{body}")`, where
//! `path` includes the query string; `X-Timestamp` (unix seconds) must be
//! within five minutes of our clock.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use http::Method;
use korala_domain::Timestamp;
use korala_domain::limits::{Bucket, Rate};
use korala_domain::ports::FirstUse;
use korala_domain::tenancy::{Actor, ApiKey, Mode, Tenant};
use lambda_http::Request;
use sha2::Sha256;

use super::{ApiError, admission};
use crate::adapters::crypto::{looks_like_token, token_hash};
use crate::app::App;

/// The authenticated partner: every read and write is scoped to its
/// tenant, the key's organisation in the key's mode.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub key_id: String,
}

impl Caller {
    /// The partner who signed the request (see [`authenticate`]).
    pub async fn identify(app: &App, req: &Request) -> Result<Self, ApiError> {
        authenticate(app, req).await
    }

    pub fn actor(&self) -> Actor {
        Actor::Partner {
            api_key_id: self.key_id.clone(),
        }
    }
}

/// The end user, known by the access token in the path: the only
/// credential of the `/access` routes. A token that cannot be one (wrong
/// shape) names no session: it is refused as an unknown one is, a plain
/// `404`, before anything else is read and without a store read or a
/// meter.
#[derive(Debug, Clone)]
pub struct EndUser {
    /// The token's hash, which the store keys sessions by.
    pub token_hash: String,
}

impl EndUser {
    /// Reads the token and meters the request against the token's own
    /// allowance.
    pub async fn identify(app: &App, req: &Request) -> Result<Self, ApiError> {
        let token = super::path_param(req, "accessToken")?;
        if !looks_like_token(&token) {
            return Err(ApiError::NotFound("session"));
        }
        let token_hash = token_hash(&token);
        admission::admit(app, &Bucket::access_token(&token_hash), app.settings.access_rate).await?;
        Ok(Self { token_hash })
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Result<&'r str, ApiError> {
    req.headers()
        .get(name)
        .ok_or_else(|| ApiError::Unauthorized(format!("the {name} header is missing")))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized(format!("the {name} header is not valid")))
}

/// The string a partner signs.
pub fn signing_payload(timestamp: &str, method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut payload = format!("{timestamp}.{method}.{path_and_query}.").into_bytes();
    payload.extend_from_slice(body);
    payload
}

fn mac(secret: &str) -> Result<Hmac<Sha256>, ApiError> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The signature a partner sends for this payload (for clients and tests).
pub fn sign(secret: &str, payload: &[u8]) -> Result<String, ApiError> {
    let mut mac = mac(secret)?;
    mac.update(payload);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// API keys with their opened secrets and their organisation's rate, kept
/// per process for a minute: the hot path then costs no store read, and a
/// revoked key stops working within that minute. A key id the store does not
/// know (or a revoked one) is remembered as unknown for ten seconds, so a
/// flood of requests naming it costs one store read per process, not one
/// each.
#[derive(Default)]
pub struct KeyCache {
    /// Each key id's answer and when it was read (the application's clock,
    /// so tests can hold the bounds below to it).
    entries: std::sync::RwLock<HashMap<String, (Option<Known>, Timestamp)>>,
}

/// A usable key: the key, its opened secret, its organisation's own rate.
#[derive(Clone)]
pub struct Known {
    pub key: ApiKey,
    pub secret: String,
    pub rate: Option<Rate>,
}

/// How long a usable key is trusted without reading it again: the bound on
/// how late a revocation takes effect on an instance.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long an unknown key id is taken as unknown: a key created meanwhile
/// works after at most this long on an instance that was asked for it.
pub const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(10);
const KEY_CACHE_MAX: usize = 10_000;

/// Whether an answer read at `at` still holds at `now`.
fn fresh(known: &Option<Known>, at: Timestamp, now: Timestamp) -> bool {
    let ttl = if known.is_some() {
        KEY_CACHE_TTL
    } else {
        UNKNOWN_KEY_TTL
    };
    chrono::Duration::from_std(ttl).is_ok_and(|ttl| now - at < ttl)
}

impl KeyCache {
    /// The key with its secret and rate, if the key exists and is not revoked.
    pub async fn get(&self, app: &App, key_id: &str) -> Result<Option<Known>, ApiError> {
        let now = app.clock.now();
        if let Ok(entries) = self.entries.read()
            && let Some((known, at)) = entries.get(key_id)
            && fresh(known, *at, now)
        {
            return Ok(known.clone());
        }
        let known = match app.store.get_api_key(key_id).await?.filter(|k| k.revoked_at.is_none()) {
            None => None,
            Some(key) => {
                let secret = app
                    .sealer
                    .open(&key.sealed_secret)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let rate = app.store.get_organization(&key.org_id).await?.and_then(|org| org.rate);
                Some(Known { key, secret, rate })
            }
        };
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= KEY_CACHE_MAX {
                entries.retain(|_, (known, at)| fresh(known, *at, now));
                if entries.len() >= KEY_CACHE_MAX {
                    // A flood of distinct ids: start over rather than grow.
                    entries.clear();
                }
            }
            entries.insert(key_id.to_owned(), (known.clone(), now));
        }
        Ok(known)
    }
}

pub async fn authenticate(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let key_id = header(req, "x-api-key")?;
    let timestamp = header(req, "x-timestamp")?;
    let signature = header(req, "x-signature")?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| ApiError::Unauthorized("X-Timestamp must be unix seconds".into()))?;
    // `abs_diff`: a timestamp near i64::MIN would overflow a subtraction.
    let skew = app.clock.now().timestamp().abs_diff(sent);
    if skew > app.settings.signature_tolerance.as_secs() {
        return Err(ApiError::Unauthorized(
            "X-Timestamp is more than 5 minutes away from the server's clock".into(),
        ));
    }
    let invalid = || ApiError::Unauthorized("the API key or the signature is not valid".into());
    let mode = Mode::of_key_id(key_id).ok_or_else(invalid)?;
    let Known { key, secret, rate } = app.keys.get(app, key_id).await?.ok_or_else(invalid)?;
    // The id's prefix and the stored mode agree for every key the admin
    // command mints; a key that says otherwise acts for neither world.
    if key.mode != mode {
        return Err(invalid());
    }
    let expected = hex::decode(signature).map_err(|_| invalid())?;
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let payload = signing_payload(timestamp, req.method().as_str(), path, req.body().as_ref());
    let mut mac = mac(&secret)?;
    mac.update(&payload);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).map_err(|_| invalid())?;
    // Metered after the signature, so nobody can spend another
    // organisation's allowance with requests that name its key.
    admission::admit(
        app,
        &Bucket::organization(&key.org_id),
        rate.unwrap_or(app.settings.partner_rate),
    )
    .await?;
    if changes_state(req.method()) {
        refuse_replays(app, &key.id, signature, sent).await?;
    }
    Ok(Caller {
        tenant: key.tenant(),
        key_id: key.id,
    })
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A signed mutation is good once: a captured request sent again within the
/// signing window (three sessions from one request; an old `approve` replayed
/// after a later `reject`) is refused. A legitimate retry signs anew, with a
/// new timestamp. The signature is remembered until its timestamp leaves the
/// window, after which the timestamp check refuses it anyway.
async fn refuse_replays(app: &App, key_id: &str, signature: &str, sent: i64) -> Result<(), ApiError> {
    let now = app.clock.now();
    let window = chrono::Duration::from_std(app.settings.signature_tolerance).unwrap_or(chrono::Duration::MAX);
    let until = chrono::DateTime::from_timestamp(sent, 0).unwrap_or(now) + window;
    let used = format!("{key_id}:{}", signature.to_ascii_lowercase());
    match app.store.use_once(&used, until, now).await? {
        FirstUse::Yes => Ok(()),
        FirstUse::No => Err(ApiError::Unauthorized(
            "this signed request was received before: sign every request, and every retry, anew".into(),
        )),
    }
}
