//! Integration tests of `peergroup_record_db::search`: attribute XML, query XML, matching,
//! and property tests. One test binary built from several files.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed unwrap or panic is a failed test"
)]

mod attributes;
mod matching;
mod props;
mod query;
mod support;
