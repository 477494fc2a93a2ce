//! What each store operation costs: every request the adapter sends goes
//! through [`DynamoStore::send`](super::DynamoStore), which notes it in an
//! optional [`CallLog`], and every failure is turned into a `StoreError` here.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::ConsumedCapacity;
use korala_domain::ports::StoreError;

/// One request to DynamoDB, as the adapter saw it complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub operation: &'static str,
    /// Capacity units DynamoDB reported (table and indexes together). A
    /// request refused with an error reports none, so it shows as 0 here
    /// although a failed conditional write is still billed.
    pub consumed_capacity: f64,
}

/// A shared record of the calls a store made, for tests and cost reports:
/// attach it with [`DynamoStore::with_call_log`](super::DynamoStore::with_call_log).
#[derive(Debug, Default)]
pub struct CallLog {
    entries: Mutex<Vec<Call>>,
}

impl CallLog {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn record(&self, operation: &'static str, consumed_capacity: f64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.push(Call {
                operation,
                consumed_capacity,
            });
        }
    }

    pub fn entries(&self) -> Vec<Call> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The calls so far, leaving the log empty for the next measurement.
    pub fn take(&self) -> Vec<Call> {
        self.entries
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }
}

/// The capacity a successful response reports.
pub trait Consumed {
    fn consumed(&self) -> f64;
}

fn units(capacity: Option<&ConsumedCapacity>) -> f64 {
    capacity.and_then(ConsumedCapacity::capacity_units).unwrap_or(0.0)
}

macro_rules! consumed_one {
    ($($output:ty),*) => {
        $(impl Consumed for $output {
            fn consumed(&self) -> f64 {
                units(self.consumed_capacity())
            }
        })*
    };
}

consumed_one!(
    GetItemOutput,
    PutItemOutput,
    UpdateItemOutput,
    DeleteItemOutput,
    QueryOutput
);

macro_rules! consumed_many {
    ($($output:ty),*) => {
        $(impl Consumed for $output {
            fn consumed(&self) -> f64 {
                self.consumed_capacity().iter().map(|c| units(Some(c))).sum()
            }
        })*
    };
}

consumed_many!(TransactWriteItemsOutput, BatchGetItemOutput);

/// A failure the operation has no specific meaning for. The SDK has already
/// retried throttling, timeouts and 5xx responses by the time one gets here.
pub fn failure<E>(operation: &str, error: &E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    let message = error.message().unwrap_or_default();
    match error.code() {
        // The request itself was malformed (an item over 400 KB, a key that
        // does not match the schema): a bug, and retrying cannot help.
        Some(code @ ("ValidationException" | "SerializationException")) => {
            StoreError::Corrupt(format!("DynamoDB refused the {operation}: {code}: {message}"))
        }
        Some(code) => StoreError::Unavailable(format!("DynamoDB {operation} failed: {code}: {message}")),
        None => StoreError::Unavailable(format!("DynamoDB {operation} failed: {}", DisplayErrorContext(error))),
    }
}
