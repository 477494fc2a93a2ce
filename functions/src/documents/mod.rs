//! The files end users upload (identity documents, proofs of address) and the checks they pass.

pub mod inspect;
