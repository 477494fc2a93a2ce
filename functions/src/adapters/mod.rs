//! The adapters: the domain's ports implemented over real engines, and the
//! other services the functions talk to.

pub mod aws;
pub mod bus;
pub mod crypto;
pub mod documents;
pub mod ocr;
pub mod outbound;
pub mod providers;
pub mod queue;
pub mod secrets;
pub mod standard_webhooks;
pub mod store;
pub mod stream;
pub mod system;
pub mod topology;
