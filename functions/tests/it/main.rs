//! The functions' integration tests, one binary (one link) for all of them:
//! the handlers driven by the sample events, the real binaries started as
//! processes (init, logs, a crash, descriptor pressure), the EMF documents,
//! and the SAM template held to the binaries.

mod crash;
mod events;
mod local_server;
mod logs;
mod metrics_emf;
mod startup;
mod support;
mod template;
