//! The event bus port's adapters: EventBridge on AWS, in process on this
//! machine.

pub mod eventbridge;
