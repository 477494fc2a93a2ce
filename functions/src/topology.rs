//! The messaging topology (being written).
