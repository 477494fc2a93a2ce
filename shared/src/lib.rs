//! The session engine of the identity-verification service.
//!
//! Everything here is pure: the state machine, the rules, resolution and
//! resubmission take the clock reading and an id generator from the caller and
//! perform no I/O. The store, clock and id ports are traits in [`ports`]; the
//! adapters that implement them live in the `functions` crate.

pub mod address_proof;
pub mod addresses;
pub mod builtin;
pub mod capture;
pub mod catalog;
pub mod checks;
pub mod configuration;
pub mod delivery;
pub mod documents;
pub mod error;
pub mod events;
pub mod footprint;
pub mod ids;
pub mod invariants;
pub mod lifecycle;
pub mod limits;
pub mod mrz;
pub mod names;
pub mod participant;
pub mod pipeline;
pub mod ports;
pub mod resolution;
pub mod resubmission;
pub mod risk;
pub mod rules;
pub mod screening;
pub mod session;
pub mod tenancy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transition;
pub mod validation;
pub mod webhooks;
pub mod workflow;

pub use error::DomainError;
pub use validation::{FieldError, FieldErrors};

/// The time type used everywhere in the domain.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Free-form JSON objects (context, metadata, submitted data, outputs).
pub type JsonMap = serde_json::Map<String, serde_json::Value>;
