//! The domain's integration tests, one binary (one link) for all of them:
//! scenario journeys, property tests of the state machine, the rule budget
//! and the session size bounds, on the domain's own fixtures
//! (`korala_domain::testing`).

mod documents;
mod journeys;
mod properties;
mod rule_budget;
mod session_size;
mod support;
