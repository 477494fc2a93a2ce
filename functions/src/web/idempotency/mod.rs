//! `Idempotency-Key` on creating `POST`s: a retry with the same key and body
//! replays the first response and creates nothing new; the same key with a
//! different request is refused.
//!
//! A request that creates a record writes it with its answer in one
//! transaction ([`Keyed::create`]), so a retry that takes over a claim
//! abandoned after the write cannot run the request again: the key was
//! completed in the same write. The records of the keys are the HTTP
//! layer's, not the domain's: their port, [`IdempotencyRecords`] ([`records`]), is
//! implemented by each store adapter beside the domain's ports, as only the
//! store that holds a creation can write its answer with it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use korala_domain::Timestamp;
use korala_domain::ports::StoreError;
use korala_domain::tenancy::Tenant;
use lambda_http::Request;
use sha2::{Digest, Sha256};

pub mod records;

use self::records::{Answer, Creation, IdempotencyClaim, StoredResponse};
use super::auth::Caller;
use super::{ApiError, ApiResult, Reply};
use crate::app::App;

/// A request's claim on its key, made at `claimed_at`.
struct Claim {
    tenant: Tenant,
    key: String,
    claimed_at: Timestamp,
    /// The answer was written with what the request created.
    answered: AtomicBool,
}

impl Claim {
    fn answer<'a>(&'a self, response: &'a StoredResponse) -> Answer<'a> {
        Answer {
            tenant: &self.tenant,
            key: &self.key,
            claimed_at: self.claimed_at,
            response,
        }
    }
}

/// How a request run by [`once`] writes what it creates.
pub struct Keyed {
    claim: Option<Arc<Claim>>,
}

impl Keyed {
    /// Writes `creation`; under a key, with `reply` as the key's answer in
    /// the same transaction. `Conflict` means another request took the key
    /// over meanwhile, and nothing was written.
    pub async fn create(self, app: &App, creation: Creation<'_>, reply: &Reply) -> Result<(), StoreError> {
        let Some(claim) = self.claim else {
            return creation.write(&*app.store).await;
        };
        let response = stored(app, reply);
        app.store.create_answered(creation, &claim.answer(&response)).await?;
        claim.answered.store(true, Ordering::Release);
        Ok(())
    }
}

/// The reply as kept for a retry. It holds the access token or signing
/// secret and personal data: it is sealed like every other secret at rest.
fn stored(app: &App, reply: &Reply) -> StoredResponse {
    StoredResponse {
        status: reply.status.as_u16(),
        body: app.sealer.seal(reply.body.as_deref().unwrap_or_default()),
        location: reply.location.clone(),
    }
}

/// Runs a creating request once per idempotency key. `run` writes what it
/// creates through the [`Keyed`] it is given; a request that writes
/// otherwise has its answer stored after it succeeds.
pub async fn once<F, Fut>(app: &App, caller: &Caller, req: &Request, run: F) -> ApiResult
where
    F: FnOnce(Keyed) -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let Some(key) = req.headers().get("idempotency-key") else {
        return run(Keyed { claim: None }).await;
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::Invalid(korala_domain::FieldErrors::single(
                "Idempotency-Key",
                "must be 1 to 255 visible characters",
            ))
        })?;
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update([0]);
    hasher.update(req.uri().path());
    hasher.update([0]);
    hasher.update(req.body().as_ref());
    let fingerprint = hex::encode(hasher.finalize());
    let now = app.clock.now();
    match app
        .store
        .claim_idempotency_key(&caller.tenant, key, &fingerprint, now)
        .await?
    {
        IdempotencyClaim::Completed(stored) => Ok(Reply {
            status: http::StatusCode::from_u16(stored.status).unwrap_or(http::StatusCode::OK),
            body: Some(
                app.sealer
                    .open(&stored.body)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            location: stored.location,
            replayed: true,
        }),
        IdempotencyClaim::Mismatch => Err(ApiError::IdempotencyKeyReused),
        IdempotencyClaim::InProgress => Err(ApiError::IdempotencyInProgress),
        IdempotencyClaim::Acquired => {
            let claim = Arc::new(Claim {
                tenant: caller.tenant.clone(),
                key: key.to_owned(),
                claimed_at: now,
                answered: AtomicBool::new(false),
            });
            let result = run(Keyed {
                claim: Some(Arc::clone(&claim)),
            })
            .await;
            match result {
                Ok(reply) if claim.answered.load(Ordering::Acquire) => Ok(reply),
                Ok(reply) => {
                    // The request did what it was asked: its answer stands even
                    // if it cannot be stored (a retry with the key then runs
                    // it again, which is why creations store it with their
                    // write instead).
                    let response = stored(app, &reply);
                    if let Err(e) = app.store.complete_idempotency_key(&claim.answer(&response)).await {
                        tracing::warn!(error = %e, "could not store the answer to an idempotent request");
                    }
                    Ok(reply)
                }
                Err(error) => {
                    // Nothing was created: let a retry run again.
                    if let Err(e) = app.store.release_idempotency_key(&claim.tenant, &claim.key, now).await {
                        tracing::warn!(error = %e, "could not release an idempotency key");
                    }
                    Err(error)
                }
            }
        }
    }
}
