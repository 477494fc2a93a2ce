//! The queue port's adapters: SQS on AWS, a table of the embedded store on
//! this machine.

#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod sqs;
