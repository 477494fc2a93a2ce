//! EventBridge as the event bus (being written).
