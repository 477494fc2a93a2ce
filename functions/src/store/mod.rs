//! Store adapters: implementations of `korala_domain::ports::Store`.

pub mod dynamodb;
pub mod sqlite;
