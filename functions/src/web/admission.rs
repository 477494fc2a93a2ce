//! Rate limits on the request path: each request draws on its bucket in the
//! store ([`Admission::admit`]), which every instance shares, so the limit
//! holds however many Lambda instances serve a tenant. A refusal is also
//! remembered in this process until it lapses, so a caller hammering past
//! its limit costs no store write per request here, and cannot slow what
//! the store does for anyone else.

use std::collections::HashMap;
use std::sync::RwLock;

use korala_domain::Timestamp;
use korala_domain::limits::{Admit, Bucket, Rate};

use super::ApiError;
use crate::app::App;

/// Buckets refused in this process, until when.
#[derive(Default)]
pub struct Refusals {
    until: RwLock<HashMap<Bucket, Timestamp>>,
}

/// A flood of distinct buckets (random access tokens) cannot grow the map
/// past this: when full, lapsed refusals are dropped, and if none had
/// lapsed, all are (the store still meters every bucket).
const MAX_REMEMBERED: usize = 10_000;

impl Refusals {
    fn refused_until(&self, bucket: &Bucket, now: Timestamp) -> Option<Timestamp> {
        let until = self.until.read().ok()?.get(bucket).copied()?;
        (until > now).then_some(until)
    }

    fn remember(&self, bucket: &Bucket, until: Timestamp, now: Timestamp) {
        if let Ok(mut map) = self.until.write() {
            if map.len() >= MAX_REMEMBERED {
                map.retain(|_, until| *until > now);
                if map.len() >= MAX_REMEMBERED {
                    map.clear();
                }
            }
            map.insert(bucket.clone(), until);
        }
    }
}

/// Lets the request through if `bucket` has room at `rate`; otherwise
/// `429` with how long to wait. An unmetered rate lets everything through
/// without a store write.
pub async fn admit(app: &App, bucket: &Bucket, rate: Rate) -> Result<(), ApiError> {
    if rate.is_unmetered() {
        return Ok(());
    }
    let now = app.clock.now();
    if let Some(until) = app.refusals.refused_until(bucket, now) {
        return Err(ApiError::RateLimited {
            retry_after: Admit::retry_after_seconds(until - now),
        });
    }
    match app.store.admit(bucket, rate, now).await? {
        Admit::Admitted { .. } => Ok(()),
        Admit::Refused { retry_after } => {
            app.refusals.remember(bucket, now + retry_after, now);
            tracing::info!(bucket = bucket.kind(), "rate limit reached");
            Err(ApiError::RateLimited {
                retry_after: Admit::retry_after_seconds(retry_after),
            })
        }
    }
}
