//! The store and queue conformance suites, and test support shared by the acceptance tests.

pub mod api;
pub mod aws;
pub mod conformance;
pub mod dynamodb;
pub mod engines;
pub mod faults;
pub mod files;
pub mod queues;
pub mod receiver;
pub mod specimens;
pub mod support;
