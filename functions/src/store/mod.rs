//! Store adapters: implementations of `korala_domain::ports::Store`.

pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod sqlite;
