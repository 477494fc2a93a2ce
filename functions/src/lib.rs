//! The service around the domain crate: HTTP handlers shared by the Lambda
//! binaries and the local server, request signing, the store adapters and
//! the system adapters (clock, ids, encryption).

pub mod admin;
pub mod api;
pub mod app;
pub mod aws;
pub mod bus;
pub mod checks;
pub mod codegen;
pub mod crypto;
pub mod evaluation;
pub mod expiry;
pub mod http;
pub mod lambda;
#[cfg(feature = "embedded")]
pub mod listener;
#[cfg(feature = "embedded")]
pub mod local;
pub mod metrics;
pub mod outbox;
#[cfg(feature = "embedded")]
pub mod private;
pub mod queue;
// The local server's (and the tests'): no Lambda function relays in process.
#[cfg(feature = "embedded")]
pub mod relay;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod stream;
pub mod system;
pub mod telemetry;
pub mod topology;
pub mod webhooks;
pub mod workers;
