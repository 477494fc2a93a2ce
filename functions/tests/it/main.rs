//! The functions' integration tests, one binary (one link) for all of them:
//! the handlers driven by the sample events, every route refused without
//! its credential, the real binaries started as
//! processes (init, logs, a crash, descriptor pressure), the EMF documents,
//! and what `cargo codegen` writes held up to date.

mod crash;
mod local_server;
mod logs;
mod metrics_emf;
mod routes;
mod sample_events;
mod startup;
mod support;
mod template;
