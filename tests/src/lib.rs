//! The store conformance suite, and test support shared by the acceptance tests.

pub mod api;
pub mod conformance;
pub mod dynamodb;
pub mod support;
