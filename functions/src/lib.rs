//! The service around the domain crate, by role:
//!
//! - [`api`]: the endpoints (the route table, the handlers, their views and
//!   the OpenAPI document) and [`web`], the HTTP layer under them (request
//!   signing and the end user's token, problem documents, admission,
//!   idempotency records);
//! - [`adapters`]: the domain's ports and the outside world (the SQLite and
//!   DynamoDB stores, SQS and SQLite queues, EventBridge, DynamoDB Streams,
//!   encryption, secrets, outbound requests, Standard Webhooks, check
//!   providers, the messaging topology);
//! - [`consumers`]: the work behind the API, each with its own entry (the
//!   outbox publisher, the webhook fan-out and dispatcher, the checks worker,
//!   the expiry sweeper);
//! - [`runtime`]: what runs them (Lambda, the local server and its relay,
//!   logs and metrics);
//!
//! and the application they share ([`app`]), the operators' commands
//! ([`admin`]), rule evaluation off the async threads ([`evaluation`]), the
//! checks on the files end users upload ([`documents`]) and what
//! `cargo codegen` writes from the route table ([`codegen`]).

pub mod adapters;
pub mod admin;
pub mod api;
pub mod app;
pub mod codegen;
pub mod consumers;
pub mod documents;
pub mod evaluation;
pub mod runtime;
pub mod web;
