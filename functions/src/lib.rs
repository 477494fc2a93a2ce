//! The service around the domain crate: HTTP handlers shared by the Lambda
//! binaries and the local server, request signing, the store adapters and
//! the system adapters (clock, ids, encryption).

pub mod store;
