//! Store adapters: each implements the domain's ports
//! (`korala_domain::ports::Store`) and the HTTP layer's idempotency records
//! ([`IdempotencyRecords`]).

use korala_domain::ports::Store;

use crate::web::idempotency::records::IdempotencyRecords;

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod sqlite;

/// The store the functions hold: the domain's ports and the idempotency
/// records in one adapter. They cannot live apart: a keyed creation writes
/// its record and its key's answer in one transaction.
pub trait AppStore: Store + IdempotencyRecords {}

impl<S: Store + IdempotencyRecords> AppStore for S {}
