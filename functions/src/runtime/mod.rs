//! What runs the functions: the Lambda runtime (one API handler or one
//! consumer per function), and on this machine the local server with its
//! listener and the in-process relay; logs and metrics for both.

pub mod lambda;
#[cfg(feature = "embedded")]
pub mod listener;
#[cfg(feature = "embedded")]
pub mod local;
pub mod metrics;
pub mod private;
// The local server's (and the tests'): no Lambda function relays in process.
#[cfg(feature = "embedded")]
pub mod relay;
pub mod telemetry;
