//! The record database: validation, merge laws, stores, export/import, crash safety.

mod batches;
mod deferred;
mod frames;
mod import;
mod kill9;
mod membership;
mod merge_laws;
mod revocations;
mod store;
mod support;
mod sync;
mod sync_bounds;
mod timing;
mod validation;
mod versions;
