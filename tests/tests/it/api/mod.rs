//! The API end to end, through the route table and the handlers, on the store
//! `KORALA_TEST_STORE` names (the embedded store unless it says `dynamodb`).

mod checks;
mod checks_http;
mod documents;
mod errors;
mod expiry;
mod journeys;
mod metrics;
mod races;
mod webhook_deliveries;
mod webhooks;
