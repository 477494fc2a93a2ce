//! Webhook deliveries to partners.

pub mod signature;
