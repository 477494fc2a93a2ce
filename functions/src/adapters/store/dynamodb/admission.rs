//! Admission on DynamoDB: a rate bucket is one item holding its theoretical
//! arrival time (`tat`, unix microseconds), changed by conditional updates
//! that carry the whole decision, so concurrent requests on any number of
//! instances never admit more than the rate; a used signature is one item
//! put if absent. Both expire through the table's TTL.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use korala_domain::Timestamp;
use korala_domain::limits::{Admit, Bucket, Rate};
use korala_domain::ports::{FirstUse, StoreError};

use super::calls::failure;
use super::items::{self, Item, n};
use super::{DynamoStore, Written, keys, table};

/// The bucket's instant attribute.
const TAT: &str = "tat";

/// How often one request re-meters when other requests changed its bucket
/// between its two conditional updates. Past this, the bucket is so busy
/// that the request is refused for an interval rather than failed.
const ADMIT_ATTEMPTS: u32 = 4;

/// Items outlive their last use by this much before TTL may delete them:
/// by then a rate bucket is full again and a signature's window has shut.
const KEEP_SECONDS: i64 = 3600;

/// The instant this process last saw in each rate bucket: a guess at
/// whether the bucket is busy, never a decision (the store decides).
#[derive(Default)]
pub struct Seen {
    tats: std::sync::Mutex<HashMap<Bucket, i64>>,
}

/// Past this many buckets the guesses start over, so a flood of distinct
/// buckets (random access tokens) cannot grow the map.
const MAX_SEEN: usize = 10_000;

impl Seen {
    fn get(&self, bucket: &Bucket) -> Option<i64> {
        self.tats.lock().ok()?.get(bucket).copied()
    }

    fn saw(&self, bucket: &Bucket, tat: i64) {
        if let Ok(mut tats) = self.tats.lock() {
            if tats.len() >= MAX_SEEN {
                tats.clear();
            }
            tats.insert(bucket.clone(), tat);
        }
    }
}

/// How one conditional update ended.
enum Updated {
    /// Written; the item as it is now.
    Yes(Item),
    /// Refused; the item that refused it, if there is one.
    No(Option<Item>),
}

fn micros(item: &Item) -> Option<i64> {
    match item.get(TAT) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("a rate bucket holds the instant {micros}, out of range")))
}

impl DynamoStore {
    async fn update_if(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Updated, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#tat", TAT)
            .expression_attribute_names("#expiration", table::TTL_ATTRIBUTE)
            .set_expression_attribute_values(super::values(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send();
        match self.send("UpdateItem (rate)", request).await {
            Ok(output) => Ok(Updated::Yes(output.attributes.unwrap_or_default())),
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(refused) => {
                    Ok(Updated::No(refused.item.filter(|item| !item.is_empty())))
                }
                other => Err(failure("UpdateItem", &other)),
            },
        }
    }

    /// Meters one request (see [`Rate::admit`]) with conditional updates
    /// that each carry the whole decision. A bucket is *busy* when its
    /// instant is ahead of now (push it one interval on, if it is within the
    /// tolerance) and *idle* otherwise (start it at now + interval). Which
    /// one it is, this process guesses from what it last saw of the bucket,
    /// so a request costs one write when the guess holds; when it does not,
    /// the refused update returns the item, which says what to do instead.
    /// A bucket too far ahead is a refusal, with the wait.
    pub(super) async fn admit_request(&self, bucket: &Bucket, rate: Rate, now: Timestamp) -> Result<Admit, StoreError> {
        let key = items::key(keys::rate_pk(bucket), keys::RATE_SK);
        let now_us = now.timestamp_micros();
        let interval = rate.interval().num_microseconds().unwrap_or(i64::MAX);
        let latest = now_us.saturating_add(rate.tolerance().num_microseconds().unwrap_or(i64::MAX));
        let expiration = latest / 1_000_000 + KEEP_SECONDS;
        let mut busy = self.buckets.get(bucket).is_some_and(|tat| tat >= now_us);
        for _ in 0..ADMIT_ATTEMPTS {
            let outcome = if busy {
                self.update_if(
                    key.clone(),
                    "SET #tat = #tat + :interval, #expiration = :expiration",
                    "#tat >= :now AND #tat <= :latest",
                    vec![
                        (":interval", n(interval)),
                        (":expiration", n(expiration)),
                        (":now", n(now_us)),
                        (":latest", n(latest)),
                    ],
                )
                .await?
            } else {
                self.update_if(
                    key.clone(),
                    "SET #tat = :first, #expiration = :expiration",
                    "attribute_not_exists(#tat) OR #tat < :now",
                    vec![
                        (":first", n(now_us.saturating_add(interval))),
                        (":expiration", n(expiration)),
                        (":now", n(now_us)),
                    ],
                )
                .await?
            };
            match outcome {
                Updated::Yes(item) => {
                    let tat =
                        micros(&item).ok_or_else(|| StoreError::Corrupt("a rate bucket without its instant".into()))?;
                    self.buckets.saw(bucket, tat);
                    return Ok(Admit::Admitted { tat: instant(tat)? });
                }
                Updated::No(old) => {
                    let tat = old.as_ref().and_then(micros);
                    if let Some(tat) = tat {
                        self.buckets.saw(bucket, tat);
                    }
                    match tat {
                        Some(tat) if tat > latest => {
                            return Ok(Admit::Refused {
                                retry_after: instant(tat)? - instant(latest)?,
                            });
                        }
                        Some(tat) => busy = tat >= now_us,
                        None => busy = false,
                    }
                }
            }
        }
        Ok(Admit::Refused {
            retry_after: rate.interval(),
        })
    }

    /// One conditional put: absent, or remembered past its expiration (TTL
    /// deletes lazily).
    pub(super) async fn use_signature_once(
        &self,
        signature: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<FirstUse, StoreError> {
        let mut item = items::key(keys::signature_pk(signature), keys::SIGNATURE_SK);
        item.insert(table::TTL_ATTRIBUTE.to_owned(), n(until.timestamp() + KEEP_SECONDS));
        item.insert(EXPIRES.to_owned(), n(until.timestamp_micros()));
        let written = self
            .put_as(
                "PutItem (signature)",
                item,
                "attribute_not_exists(PK) OR #expires <= :now",
                &[("#expires", EXPIRES)],
                vec![(":now", n(now.timestamp_micros()))],
            )
            .await?;
        Ok(match written {
            Written::Yes => FirstUse::Yes,
            Written::Refused(_) => FirstUse::No,
        })
    }
}

/// When a used signature may be used again (unix microseconds): the end of
/// its window, which TTL's lazy deletion must not extend.
const EXPIRES: &str = "expiresAt";
