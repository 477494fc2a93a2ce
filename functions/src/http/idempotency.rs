//! `Idempotency-Key` on creating `POST`s: a retry with the same key and body
//! replays the first response and creates nothing new; the same key with a
//! different request is refused.

use std::future::Future;

use korala_domain::ports::{IdempotencyClaim, StoredResponse};
use lambda_http::Request;
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::{ApiError, ApiResult, Reply};
use crate::app::App;

pub async fn once<F, Fut>(app: &App, caller: &Caller, req: &Request, run: F) -> ApiResult
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let Some(key) = req.headers().get("idempotency-key") else {
        return run().await;
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
        .claim_idempotency_key(&caller.org_id, key, &fingerprint, now)
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
        IdempotencyClaim::Acquired => match run().await {
            Ok(reply) => {
                // The response holds the access token and personal data: it is
                // sealed like every other secret at rest.
                let body = app.sealer.seal(reply.body.as_deref().unwrap_or_default());
                let stored = StoredResponse {
                    status: reply.status.as_u16(),
                    body,
                    location: reply.location.clone(),
                };
                app.store.complete_idempotency_key(&caller.org_id, key, &stored).await?;
                Ok(reply)
            }
            Err(error) => {
                // Nothing was created: let a retry run again.
                if let Err(e) = app.store.release_idempotency_key(&caller.org_id, key).await {
                    tracing::warn!(error = %e, "could not release an idempotency key");
                }
                Err(error)
            }
        },
    }
}
