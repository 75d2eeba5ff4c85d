//! The group's replicated record database (work in progress).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
mod db;
mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod members;
pub mod merge;
pub mod reconcile;
mod record;
mod record_search;
pub mod reserved;
pub mod search;
pub mod store;
pub mod sync;
pub mod validate;

pub use db::{
    ApplyReport, Change, ChangeKind, Database, LocalSigner, MAX_DEFERRED, NewRecord, RecordUpdate,
};
pub use error::{DecodeError, Error, StoreError, ValidationError};
pub use record::{Record, RecordFlags, RecordId, RecordType, SecurityData};
