//! The group's replicated record database (work in progress).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod reconcile;
pub mod search;
