//! Partner authentication: HMAC-SHA256 request signing, as the product's own
//! client signs requests. `X-Signature` is the lowercase hex
//! `HMAC-SHA256(apiSecret, "{timestamp}.{METHOD}.{path}.{body}")`, where
//! `path` includes the query string; `X-Timestamp` (unix seconds) must be
//! within five minutes of our clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use korala_domain::tenancy::{Actor, ApiKey, Mode, Tenant};
use lambda_http::Request;
use sha2::Sha256;

use super::ApiError;
use crate::app::App;

/// The authenticated partner: every read and write is scoped to its
/// tenant, the key's organisation in the key's mode.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    pub key_id: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::Partner {
            api_key_id: self.key_id.clone(),
        }
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

/// API keys with their opened secrets, kept per process for a minute: the
/// hot path then costs no store read, and a revoked key stops working within
/// that minute.
#[derive(Default)]
pub struct KeyCache {
    entries: std::sync::RwLock<HashMap<String, (ApiKey, String, Instant)>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    /// The key and its secret, if the key exists and is not revoked.
    pub async fn get(&self, app: &App, key_id: &str) -> Result<Option<(ApiKey, String)>, ApiError> {
        if let Ok(entries) = self.entries.read()
            && let Some((key, secret, at)) = entries.get(key_id)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Some((key.clone(), secret.clone())));
        }
        let Some(key) = app.store.get_api_key(key_id).await?.filter(|k| k.revoked_at.is_none()) else {
            return Ok(None);
        };
        let secret = app
            .sealer
            .open(&key.sealed_secret)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= KEY_CACHE_MAX {
                entries.retain(|_, (_, _, at)| at.elapsed() < KEY_CACHE_TTL);
            }
            entries.insert(key_id.to_owned(), (key.clone(), secret.clone(), Instant::now()));
        }
        Ok(Some((key, secret)))
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
    let (key, secret) = app.keys.get(app, key_id).await?.ok_or_else(invalid)?;
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
    Ok(Caller {
        tenant: key.tenant(),
        key_id: key.id,
    })
}
