//! A work queue in the embedded store (being written).
